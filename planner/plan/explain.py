"""Explanations, as facts: what binds the batch and the count, the regime, the headroom and
why each plan ranks above the next. Computed from the candidate table (and, for the next
batch, the physics), so every backend explains alike; the CLI words them."""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from planner.candidates.objectives import OBJECTIVES
from planner.candidates.table import Candidates, idle_rows, nodes_for
from planner.physics.quant import SCHEMES
from planner.physics.space import Configs
from planner.plan.result import Answer, Explanation, Fact, Plan
from planner.resolve.calibration import family_of
from planner.resolve.problem import Problem
from planner.resolve.uncertainty import band_of
from planner.units import MS


def explain_plans(p: Problem, c: Candidates, plans: list[Plan], answers: list[Answer]) -> None:
    """Each deployment's explanation, and on each rank's first deployment why that answer
    ranks above the next."""
    following = _next_batches(p, c, [plan.candidate for plan in plans])
    for plan in plans:
        j = plan.candidate
        plan.explanation = Explanation(
            batch_limit=_batch_limit(p, c, j, following[j]), count_limit=_count_limit(c, j, plan.replicas, plan.share),
            regime=Fact("regime", value=plan.load["idle"]["ttft_ms" if plan.phase == "prefill" else "tpot_ms"],
                        unit="ms", context={"regime": plan.regime, "shares": dict(plan.regime_shares),
                                            "phase": plan.phase}),
            headroom=_headroom(c, j, plan), capacity=_capacity(c, j))
    for a, b in zip(answers, answers[1:]):
        lead = next(x for x in plans if x.rank == a.rank)
        assert lead.explanation is not None
        lead.explanation.versus_next = _versus(c, [x for x in plans if x.rank == a.rank],
                                               [x for x in plans if x.rank == b.rank], a, b)


def _capacity(c: Candidates, j: int) -> Fact:
    """What caps a replica's request rate: the binding latency target, or the utilisation ceiling."""
    assert c.load is not None
    slot = c.slots[int(c.slot[j])]
    k = int(c.load.binding[j])
    ctx = {"capacity_requests_per_s": float(c.load.rate[j]), "saturation_requests_per_s":
           float(c.load.saturation_rate[j]), "utilization": float(c.load.utilization[j])}
    if k < 0:
        return Fact("max_utilization", value=float(c.load.utilization[j]), limit=slot.slo.max_utilization,
                    unit="share of saturation", path="slo.max_utilization", context=ctx)
    t = slot.targets[k]
    return Fact(t.metric, value=float(c.load.get(t.metric, t.statistic)[j]), limit=t.seconds, unit="s", path=t.path,
                context=ctx | {"statistic": t.statistic})


def _next_batches(p: Problem, c: Candidates, rows: list[int]) -> dict[int, tuple[bool, float, float]]:
    """Per row of ``rows``: whether its configuration one batch larger fits in memory, its total
    and usable bytes. The physics once per model for all its rows (a fleet's answer has a
    thousand deployments), each row as computed alone (``evaluate`` works row by row:
    planner/candidates/cache.py)."""
    by_model: dict[int, list[int]] = {}
    for j in dict.fromkeys(rows):
        by_model.setdefault(id(p.slots[int(c.slot[j])].model), []).append(j)
    cfg, out = c.configs, {}
    for js in by_model.values():
        at = np.array(js, dtype=np.int64)
        more = Configs(**{f.name: getattr(cfg, f.name)[at] for f in fields(cfg)} | {"batch": cfg.batch[at] + 1})
        ev = idle_rows(p, c, p.slots[int(c.slot[js[0]])], more)
        out.update({j: (bool(ev.fits[i]), float(ev.total_bytes[i]), float(ev.usable_bytes[i]))
                    for i, j in enumerate(js)})
    return out


def _batch_limit(p: Problem, c: Candidates, j: int, following: tuple[bool, float, float]) -> list[Fact]:
    """Why the batch (max sequences per lane) is not one larger (``following``: the next
    batch's memory, ``_next_batches``)."""
    assert c.load is not None
    b = float(c.configs.batch[j])
    facts = []
    fits, total, usable = following
    if not fits:
        facts.append(Fact("memory", value=total, limit=usable, unit="bytes", context={"batch": int(b) + 1}))
    if b >= p.spec.search.max_batch:
        facts.append(Fact("max_batch", value=b, limit=float(p.spec.search.max_batch), unit="sequences",
                          path="search.max_batch"))
    running = float(c.load.running[j])
    if not facts and running < b - 1:
        facts.append(Fact("running_batch", value=running, limit=b, unit="sequences per lane",
                          context={"batch": int(b) + 1}))
    if not facts:
        facts.append(Fact("objective", context={"objective": c.objective,
                                                "reason": OBJECTIVES[c.objective].batch_note, "running": running}))
    return facts


def _headroom(c: Candidates, j: int, plan: Plan) -> list[Fact]:
    """Memory, and each latency target at the plan's operating point."""
    ev = c.ev
    out = [Fact("memory", value=float(ev.total_bytes[j]), limit=float(ev.usable_bytes[j]), unit="bytes")]
    slot = c.slots[int(c.slot[j])]
    pct = plan.load.get("percentiles_ms", {})
    for t in slot.targets:
        key = f"{t.metric.replace('_latency', '')}_{t.statistic}"
        if key in pct:
            out.append(Fact(t.metric, value=pct[key] * MS, limit=t.seconds, unit="s", path=t.path,
                            context={"statistic": t.statistic}))
    return out


def _count_limit(c: Candidates, j: int, replicas: int, share: float = 1.0) -> Fact:
    thr = float(c.capacity[j])
    if c.objective == "throughput":
        return _upper_limit(c, j, replicas + 1)
    if c.has_demand[j]:
        unit = "tokens/s" if c.slots[int(c.slot[j])].demand_tokens_per_s is not None else "clients"
        return Fact("demand", value=replicas * thr, limit=share * float(c.demand[j]), unit=unit,
                    path=f"{c.slots[int(c.slot[j])].path}.demand",
                    context={"replicas": replicas, "tokens_per_s_per_replica": thr, "share": share,
                             "spare_replicas_within_limits": int(c.replicas_allowed[j] - replicas)})
    return Fact("none", context={"replicas": replicas})


def _upper_limit(c: Candidates, j: int, r: int) -> Fact:
    """The first limit that ``r`` replicas of row j would exceed."""
    ev, lim, gid = c.ev, c.limits, c.gpu_ids[int(c.configs.gpu[j])]
    checks: list[tuple[str, float, float | None, str, str]] = [
        ("budget", c.deployment_cost(j, r), lim.budget_usd_per_hour, "$/hour", "limits.budget_usd_per_hour"),
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


SUMMARY = ("gpus", "gpu", "quantization", "tp", "pp", "batch", "tpot_ms", "ttft_ms", "throughput_tokens_per_s_per_gpu")


def _summary(plans: list[Plan], a: Answer) -> dict:
    """One answer in the figures a comparison names: its first deployment's, with the GPUs and
    $/GPU-hour of the whole answer and each deployment's layout when it has several."""
    out = {k: getattr(plans[0], k) for k in SUMMARY}
    if a.totals is not None:
        out["gpus"] = a.totals.gpus
        if len(plans) > 1 and a.totals.gpus:       # the answer's, not its first deployment's
            out["throughput_tokens_per_s_per_gpu"] = sum(x.throughput_tokens_per_s for x in plans) / a.totals.gpus
    if len(plans) > 1:
        out["deployments"] = [{k: getattr(x, k) for k in ("workload", "role", "replicas", "gpus", "gpu", "tp", "pp",
                                                          "ep", "quantization")} for x in plans]
    return out


def _versus(c: Candidates, pa: list[Plan], pb: list[Plan], a: Answer, b: Answer) -> Fact:
    obj = OBJECTIVES[c.objective]
    va, vb = a.objective_value * obj.scale, b.objective_value * obj.scale
    ctx: dict = {"objective": c.objective, "sense": obj.sense, "relative": (va - vb) / vb if vb else 0.0,
                 "this": _summary(pa, a), "next": _summary(pb, b), "tied": b.tied_with is not None}
    cost_a = a.totals.cost_per_hour if a.totals is not None else None
    cost_b = b.totals.cost_per_hour if b.totals is not None else None
    if c.objective in ("cost_per_million_tokens", "cost_per_hour") and cost_a and cost_b:
        ctx["this"]["usd_per_gpu_hour"] = cost_a / ctx["this"]["gpus"]
        ctx["next"]["usd_per_gpu_hour"] = cost_b / ctx["next"]["gpus"]
    # a tie: the two differ by less than the model's own error on either plan's GPU family and
    # math format (planner/resolve/uncertainty.py, from published measurements), when they differ
    # in family or math format; on the same family and format the error is largely common to both
    # and cancels
    x, y = pa[0], pb[0]
    fmt = [SCHEMES[q.quantization].math_format for q in (x, y)]
    (band_a, why_a), (band_b, why_b) = band_of(x.gpu, fmt[0]), band_of(y.gpu, fmt[1])
    band, why = (band_a, why_a) if band_a >= band_b else (band_b, why_b)
    ctx["tie_band"], ctx["tie_band_source"] = band, why
    independent = family_of(x.gpu) != family_of(y.gpu) or fmt[0] != fmt[1]
    ctx["tie"] = bool(independent and abs(ctx["relative"]) <= band)
    return Fact("objective", value=va, limit=vb, unit=obj.unit, context=ctx)
