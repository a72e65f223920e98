"""Objectives (docs/formulation.md section 4). The ratio objective $/token is linear here:
with one candidate chosen, its cost per million tokens C_j / THR_j is a constant per
candidate (exact); with a demand, the served tokens are fixed and $/token is $/hour / D."""

from __future__ import annotations

import numpy as np


def add(f) -> None:
    p, c, m = f.problem, f.cands, f.model
    ev, obj = c.ev, p.spec.objective
    if obj == "cost_per_million_tokens" and p.demand_tokens_per_s is None:
        cpm = np.nan_to_num(ev.cost_per_million_tokens, nan=0.0, posinf=0.0)
        m.objective = {int(f.x[j]): float(cpm[j]) for j in f.alive}
        m.objective_dimension, m.objective_sense = "usd_per_million_tokens", "min"
    elif obj in ("cost_per_million_tokens", "cost_per_hour"):
        cost = np.nan_to_num(ev.cost_per_hour, nan=0.0)
        m.objective = {int(f.y[j]): float(cost[j]) for j in f.alive}
        m.objective_dimension, m.objective_sense = "usd_per_hour", "min"
    elif obj == "tpot":
        m.objective, m.objective_dimension, m.objective_sense = {f.scalars["tpot"]: 1.0}, "seconds", "min"
    elif obj == "ttft":
        m.objective, m.objective_dimension, m.objective_sense = {f.scalars["ttft"]: 1.0}, "seconds", "min"
    elif obj == "gpus":
        m.objective = {int(f.y[j]): float(ev.gpus[j]) for j in f.alive}
        m.objective_dimension, m.objective_sense = "count", "min"
    else:
        thr = ev.throughput_tokens_per_s
        m.objective = {int(f.y[j]): float(thr[j]) for j in f.alive}
        m.objective_dimension, m.objective_sense = "tokens_per_s", "max"
    m.objective_name = obj
