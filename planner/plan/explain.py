"""Explanations, as facts: what binds the batch and the count, the regime, the headroom and
why each plan ranks above the next. Computed from the candidate table (and, for the next
batch, the physics), so every backend explains alike; the CLI words them."""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from planner.candidates import Candidates, nodes_for, slo_checks
from planner.candidates.objectives import OBJECTIVES
from planner.physics.perf import evaluate
from planner.physics.space import Configs
from planner.plan.result import Explanation, Fact, Plan
from planner.resolve import Problem


def explain_plans(p: Problem, c: Candidates, plans: list[Plan]) -> None:
    for i, plan in enumerate(plans):
        j = plan.candidate
        batch, headroom = _batch_limit(p, c, j)
        plan.explanation = Explanation(
            batch_limit=batch, count_limit=_count_limit(c, j, plan.replicas),
            regime=Fact("regime", value=plan.tpot_ms, unit="ms", context={"regime": plan.regime,
                                                                           "shares": dict(plan.regime_shares)}),
            headroom=headroom)
        if i + 1 < len(plans):
            plan.explanation.versus_next = _versus(c, plan, plans[i + 1])


def _batch_limit(p: Problem, c: Candidates, j: int) -> tuple[list[Fact], list[Fact]]:
    """Why the batch is not one larger (facts at batch + 1), and the headroom at the batch."""
    cfg = c.configs
    b = float(cfg.batch[j])
    k = int(c.slot[j])
    two = Configs(**{f.name: getattr(cfg, f.name)[[j, j]] for f in fields(cfg)} | {"batch": np.array([b, b + 1])})
    ev = evaluate(p.slots[k].model, p.table, two, p.assumptions)
    rows = np.array([k, k])
    checks = slo_checks(ev, p.slots, rows)
    facts = []
    if not ev.fits[1]:
        facts.append(Fact("memory", value=float(ev.total_bytes[1]), limit=float(ev.usable_bytes[1]), unit="bytes",
                          context={"batch": int(b) + 1}))
    for check in checks:
        if check.name in ("tpot", "e2e_latency") and not check.ok[1]:
            facts.append(Fact(check.name, value=float(check.value_s[1]), limit=float(check.target_s[1]), unit="s",
                              path=check.path, context={"batch": int(b) + 1}))
    if b >= p.spec.search.max_batch:
        facts.append(Fact("max_batch", value=b, limit=float(p.spec.search.max_batch), unit="sequences",
                          path="search.max_batch"))
    if not facts:
        facts.append(Fact("objective", context={"objective": c.objective,
                                                "reason": OBJECTIVES[c.objective].batch_note}))
    headroom = [Fact("memory", value=float(ev.total_bytes[0]), limit=float(ev.usable_bytes[0]), unit="bytes")]
    headroom += [Fact(ch.name, value=float(ch.value_s[0]), limit=float(ch.target_s[0]), unit="s", path=ch.path)
                 for ch in checks if ch.name in ("tpot", "ttft")]
    return facts, headroom


def _count_limit(c: Candidates, j: int, replicas: int) -> Fact:
    ev = c.ev
    thr = float(ev.throughput_tokens_per_s[j])
    if c.objective == "throughput":
        return _upper_limit(c, j, replicas + 1)
    if c.has_demand[j]:
        return Fact("demand", value=replicas * thr, limit=float(c.demand[j]), unit="tokens/s", path="workload.demand",
                    context={"replicas": replicas, "tokens_per_s_per_replica": thr,
                             "spare_replicas_within_limits": int(c.replicas_allowed[j] - replicas)})
    return Fact("none", context={"replicas": replicas})


def _upper_limit(c: Candidates, j: int, r: int) -> Fact:
    """The first limit that ``r`` replicas of row j would exceed."""
    ev, lim, gid = c.ev, c.limits, c.gpu_ids[int(c.configs.gpu[j])]
    checks: list[tuple[str, float, float | None, str, str]] = [
        ("budget", r * float(c.cost_per_hour[j]), lim.budget_usd_per_hour, "$/hour", "limits.budget_usd_per_hour"),
        ("inventory", r * float(ev.gpus[j]), lim.inventory.get(gid), "GPUs", f"limits.inventory.{gid}"),
        ("max_gpus", r * float(ev.gpus[j]), lim.max_gpus, "GPUs", "search.max_gpus"),
        ("power", r * float(ev.power_w[j]), lim.power_cap_w, "W", "limits.power_cap_w"),
        ("max_nodes", float(nodes_for(r, int(ev.gpus[j]), int(c.per_node[j]))), lim.max_nodes, "nodes",
         "search.max_nodes"),
    ]
    for name, used, cap, unit, path in checks:
        if cap is not None and used > cap:
            return Fact(name, value=used, limit=float(cap), unit=unit, path=path, context={"replicas": r - 1})
    return Fact("replica_cap", value=float(r), limit=float(c.replica_cap[j]), unit="replicas",
                context={"replicas": r - 1})


def _versus(c: Candidates, a: Plan, b: Plan) -> Fact:
    obj = OBJECTIVES[c.objective]
    va, vb = a.objective_value * obj.scale, b.objective_value * obj.scale
    ctx: dict = {"objective": c.objective, "sense": obj.sense, "relative": (va - vb) / vb if vb else 0.0,
                 "this": {k: getattr(a, k) for k in ("gpus", "gpu", "quantization", "tp", "pp", "batch", "tpot_ms",
                                                     "ttft_ms", "throughput_tokens_per_s_per_gpu")},
                 "next": {k: getattr(b, k) for k in ("gpus", "gpu", "quantization", "tp", "pp", "batch", "tpot_ms",
                                                     "ttft_ms", "throughput_tokens_per_s_per_gpu")}}
    if c.objective in ("cost_per_million_tokens", "cost_per_hour") and a.cost_per_hour and b.cost_per_hour:
        ctx["this"]["usd_per_gpu_hour"] = a.cost_per_hour / a.gpus
        ctx["next"]["usd_per_gpu_hour"] = b.cost_per_hour / b.gpus
    return Fact("objective", value=va, limit=vb, unit=obj.unit, context=ctx)
