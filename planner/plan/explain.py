"""Explanations, in figures: what binds the batch and the count, the regime, and why each
plan ranks above the next. Computed from the physics, so every backend explains alike."""

from __future__ import annotations

import numpy as np

from planner.backends.exhaustive import replica_bounds
from planner.physics.perf import evaluate
from planner.physics.space import Configs
from planner.units import GB, MS

OBJECTIVE_UNITS = {"cost_per_million_tokens": ("$ per million output tokens", 1.0),
                   "cost_per_hour": ("$/hour", 1.0), "tpot": ("ms TPOT", 1 / MS), "ttft": ("ms TTFT", 1 / MS),
                   "throughput": ("output tokens/s", 1.0), "gpus": ("GPUs", 1.0)}


def explain_plans(p, cands, plans) -> None:
    for i, plan in enumerate(plans):
        j = plan.candidate
        plan.explanation = {
            "batch_limit": _batch_limit(p, cands, j),
            "count_limit": _count_limit(p, cands, j, plan.replicas),
            "regime": _regime_text(plan),
        }
        if i + 1 < len(plans):
            plan.explanation["versus_next"] = _versus(p, plan, plans[i + 1])


def _headroom(p, ev, k: int) -> dict[str, str]:
    out = {"memory": f"{ev.total_bytes[k] / GB:.1f} of {ev.usable_bytes[k] / GB:.1f} GB usable per GPU "
                     f"({ev.total_bytes[k] / ev.usable_bytes[k]:.0%})"}
    slo = p.spec.slo
    if slo.tpot_ms is not None:
        out["tpot"] = f"{ev.tpot[k] / MS:.1f} of {slo.tpot_ms:g} ms ({ev.tpot[k] / MS / slo.tpot_ms:.0%})"
    if slo.ttft_ms is not None:
        out["ttft"] = f"{ev.ttft[k] / MS:.0f} of {slo.ttft_ms:g} ms ({ev.ttft[k] / MS / slo.ttft_ms:.0%})"
    return out


def _batch_limit(p, cands, j: int) -> dict:
    c = cands.configs
    b = float(c.batch[j])
    fields = {k: getattr(c, k)[[j, j]] for k in c.__dataclass_fields__}
    fields["batch"] = np.array([b, b + 1])
    ev = evaluate(p.model, p.table, Configs(**fields), p.assumptions)
    slo, out = p.spec.slo, p.spec.workload.output_tokens
    reasons = []
    if not ev.fits[1]:
        reasons.append(("memory", f"batch {int(b) + 1} would need {ev.total_bytes[1] / GB:.2f} GB per GPU of "
                                  f"{ev.usable_bytes[1] / GB:.2f} GB usable"))
    if slo.tpot_ms is not None and ev.tpot[1] > slo.tpot_ms * MS:
        reasons.append(("tpot", f"batch {int(b) + 1} would take {ev.tpot[1] / MS:.2f} ms per token, over the "
                                f"{slo.tpot_ms:g} ms TPOT target"))
    e2e = ev.ttft[1] + ev.tpot[1] * (out - 1)
    if slo.e2e_latency_ms is not None and e2e > slo.e2e_latency_ms * MS:
        reasons.append(("e2e_latency", f"batch {int(b) + 1} would take {e2e / MS:.0f} ms end to end, over "
                                       f"{slo.e2e_latency_ms:g} ms"))
    if b >= p.spec.search.max_batch:
        reasons.append(("max_batch", f"search.max_batch is {p.spec.search.max_batch}"))
    if not reasons:
        why = {"tpot": "a smaller batch gives a shorter TPOT", "ttft": "TTFT does not depend on the batch here",
               "cost_per_hour": "a larger batch would not save a replica",
               "throughput": "a larger batch would not add throughput within the limits",
               "gpus": "a larger batch would not save a replica"}
        reasons.append(("objective", why.get(p.spec.objective, "the next batch level is not better")))
    binding, detail = reasons[0]
    return {"binding": binding, "detail": detail, "others": [r[1] for r in reasons[1:]],
            "headroom": _headroom(p, ev, 0)}


def _count_limit(p, cands, j: int, replicas: int) -> dict:
    ev = cands.ev
    thr = float(ev.throughput_tokens_per_s[j])
    demand = p.demand_tokens_per_s
    lo, hi = replica_bounds(p, cands)
    if p.spec.objective == "throughput":
        limit = _upper_limit(p, cands, j, replicas + 1)
        return {"binding": limit[0], "detail": f"{replicas} replicas; {replicas + 1} would exceed {limit[1]}"}
    if demand is not None:
        return {"binding": "demand",
                "detail": f"{replicas} replicas x {thr:,.0f} tokens/s = {replicas * thr:,.0f} >= {demand:,.0f} "
                          f"tokens/s demanded; {replicas - 1} would give {(replicas - 1) * thr:,.0f}",
                "spare_replicas_within_limits": int(hi[j] - replicas)}
    return {"binding": "none", "detail": "one replica: no demand given, so the plan is priced per replica"}


def _upper_limit(p, cands, j: int, r: int) -> tuple[str, str]:
    ev, gpu = cands.ev, cands.configs.gpu[j]
    lim, s = p.spec.limits, p.spec.search
    gid = p.table.ids[gpu]
    checks = []
    if lim.budget_usd_per_hour is not None:
        checks.append(("budget", r * ev.cost_per_hour[j], lim.budget_usd_per_hour,
                       f"the ${lim.budget_usd_per_hour:,.2f}/h budget (${r * ev.cost_per_hour[j]:,.2f}/h)"))
    if gid in lim.inventory:
        checks.append(("inventory", r * ev.gpus[j], lim.inventory[gid],
                       f"the inventory of {lim.inventory[gid]} {gid} ({int(r * ev.gpus[j])} GPUs)"))
    if s.max_gpus is not None:
        checks.append(("max_gpus", r * ev.gpus[j], s.max_gpus, f"max_gpus {s.max_gpus} ({int(r * ev.gpus[j])})"))
    if lim.power_cap_w is not None:
        checks.append(("power", r * ev.power_w[j], lim.power_cap_w,
                       f"the {lim.power_cap_w / 1e3:g} kW power cap ({r * ev.power_w[j] / 1e3:.1f} kW)"))
    if s.max_nodes is not None:
        per_node = p.table.per_node[gpu]
        g = ev.gpus[j]
        nodes = np.ceil(r * g / per_node) if g <= per_node else r * np.ceil(g / per_node)
        checks.append(("max_nodes", nodes, s.max_nodes, f"max_nodes {s.max_nodes} ({int(nodes)} nodes)"))
    for name, used, cap, text in checks:
        if used > cap:
            return name, text
    return "replica_cap", "the search's replica cap"


def _regime_text(plan) -> str:
    s = plan.regime_shares
    parts = ", ".join(f"{k.replace('_', ' ')} {v:.0%}" for k, v in s.items() if v >= 0.005)
    return f"{plan.regime}: of the {plan.tpot_ms:.2f} ms per token, {parts}"


def _versus(p, a, b) -> str:
    name, scale = OBJECTIVE_UNITS[p.spec.objective]
    va, vb = a.objective_value * scale, b.objective_value * scale
    better = "higher" if p.spec.objective == "throughput" else "lower"
    rel = (va - vb) / vb if vb else 0.0
    text = f"{va:,.4g} vs {vb:,.4g} {name} ({rel:+.1%}, {better} is better)"
    drivers = []
    if a.gpu != b.gpu or a.quantization != b.quantization or a.tp != b.tp or a.pp != b.pp:
        drivers.append(f"{a.gpus} x {a.gpu} {a.quantization} TP{a.tp}/PP{a.pp} vs "
                       f"{b.gpus} x {b.gpu} {b.quantization} TP{b.tp}/PP{b.pp}")
    if p.spec.objective in ("cost_per_million_tokens", "cost_per_hour") and a.cost_per_hour and b.cost_per_hour:
        drivers.append(f"${a.cost_per_hour / a.gpus:.2f} vs ${b.cost_per_hour / b.gpus:.2f} per GPU-hour")
        drivers.append(f"{a.throughput_tokens_per_s_per_gpu:,.0f} vs {b.throughput_tokens_per_s_per_gpu:,.0f} "
                       f"tokens/s per GPU (batch {a.batch} vs {b.batch})")
    else:
        drivers.append(f"TPOT {a.tpot_ms:.2f} vs {b.tpot_ms:.2f} ms, TTFT {a.ttft_ms:.0f} vs {b.ttft_ms:.0f} ms")
    return text + ": " + "; ".join(drivers)
