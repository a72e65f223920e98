"""Demand: the replicas' output-token throughput covers the demanded rate.

    sum_j THR_j y_j >= D      (output tokens/s; THR_j per replica, prefill paid)"""

from __future__ import annotations


def add(f) -> None:
    d = f.problem.demand_tokens_per_s
    if d is None:
        return
    thr = f.cands.ev.throughput_tokens_per_s
    f.model.row("demand", "demand", {int(f.y[j]): float(thr[j]) for j in f.alive}, ">=", d, "tokens_per_s")
