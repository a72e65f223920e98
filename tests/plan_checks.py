"""An independent check of a returned plan: re-evaluate its configuration with the physics
and test every limit of the spec directly (no constraint model involved)."""

from __future__ import annotations

import math

from planner.physics.perf import evaluate
from planner.physics.space import Configs


def violations(problem, plan) -> list[str]:
    """The checker's own copy of every limit (deliberately independent of planner/candidates)."""
    s, t = problem.spec, problem.table
    gi = t.ids.index(plan.gpu)
    slot = next(x for x in problem.slots if x.name == plan.workload)
    ev = evaluate(slot.model, t, Configs.single(gi, plan.quantization, plan.kv_dtype, plan.tp, plan.pp, plan.ep,
                                                  plan.batch, s.workload.input_tokens, s.workload.output_tokens),
                  problem.assumptions).row(0)
    out = []
    if not ev["valid"]:
        out.append("invalid layout")
    if not ev["fits"]:
        out.append(f"memory {ev['total_bytes']} > {ev['usable_bytes']}")
    if s.slo.tpot_ms is not None and ev["tpot"] > s.slo.tpot_ms * 1e-3:
        out.append("tpot")
    if s.slo.ttft_ms is not None and ev["ttft"] > s.slo.ttft_ms * 1e-3:
        out.append("ttft")
    e2e = ev["ttft"] + ev["tpot"] * (s.workload.output_tokens - 1)
    if s.slo.e2e_latency_ms is not None and e2e > s.slo.e2e_latency_ms * 1e-3:
        out.append("e2e")
    r = plan.replicas
    demand = slot.demand_tokens_per_s
    if demand is not None and r * ev["throughput_tokens_per_s"] < demand * (1 - 1e-9):
        out.append("demand")
    gpus = r * ev["gpus"]
    if plan.gpu in s.limits.inventory and gpus > s.limits.inventory[plan.gpu]:
        out.append("inventory")
    if s.search.max_gpus is not None and gpus > s.search.max_gpus:
        out.append("max_gpus")
    if s.limits.budget_usd_per_hour is not None and r * ev["gpus"] * problem.prices[gi] > s.limits.budget_usd_per_hour * (1 + 1e-9):
        out.append("budget")
    if s.limits.power_cap_w is not None and r * ev["power_w"] > s.limits.power_cap_w * (1 + 1e-9):
        out.append("power")
    if s.search.max_nodes is not None:
        per_node = t.per_node[gi]
        g = ev["gpus"]
        nodes = math.ceil(r * g / per_node) if g <= per_node else r * math.ceil(g / per_node)
        if nodes > s.search.max_nodes:
            out.append("max_nodes")
    return out
