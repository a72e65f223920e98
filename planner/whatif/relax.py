"""Minimal relaxation of an infeasible instance (issue 4).

For each limit the instance sets, drop that one limit and re-solve with the objective set
to the limit's own quantity ($/hour, GPUs): the optimum is the smallest value of the limit
that makes the problem feasible, with the plan it gives. A latency target (a statistic
under load) is relaxed to the smallest value any row reaches at the lowest load the other
limits allow (``_smallest_target``), then the instance is re-solved with it. For the allowed
quantizations, try each scheme not yet allowed. Every other limit stays as written, so the
change reported is the only one needed, and applying the patch to the file gives a plan.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from planner.backends.base import Status
from planner.candidates.load import workload_of
from planner.candidates.table import build_candidates
from planner.physics.load import engine, load_metrics, step_physics
from planner.physics.quant import DEFAULT_SCHEMES as SCHEMES
from planner.plan.result import Plan, PlanResult, Relaxation
from planner.plan.solve import plan
from planner.resolve.problem import resolve
from planner.resolve.workload import LatencyTarget, targets
from planner.schemas.plan import STATISTICS, Percentiles, PlanSpec, Slo
from planner.units import MS
from planner.yamlio import Document


def _up(x: float, step: float) -> float:
    """Round up to a multiple of ``step`` (a limit slightly above what is needed); the final
    round() only removes floating-point noise (9.120000000000001), never below ``x``."""
    return round(math.ceil(x / step - 1e-9) * step, 9)


def _summary(p: Plan) -> dict:
    return {k: getattr(p, k) for k in ("gpu", "gpus", "tp", "pp", "ep", "replicas", "quantization", "kv_dtype",
                                      "batch", "ttft_ms", "tpot_ms", "throughput_tokens_per_s", "cost_per_hour",
                                      "cost_per_million_tokens")}


def plan_and_relax(spec: PlanSpec, doc: Document | None = None, *, backend: str = "cpsat", top_k: int | None = None,
                   time_limit: float = 60.0,
                   objective: str | None = None, calibration: str | None = None,
                   simulate: bool = False) -> PlanResult:
    """`plan()`, and when nothing is feasible (and the run was not interrupted), the smallest
    change to each limit that alone makes the instance feasible."""
    result = plan(spec, doc, backend=backend, top_k=top_k, time_limit=time_limit, objective=objective,
                  calibration=calibration, simulate=simulate)
    if result.status == Status.INFEASIBLE.value and not result.plans and not result.interrupted:
        if objective is not None and objective != spec.objective:
            spec = spec.model_copy(update={"objective": objective})
        result.relaxations = relaxations(spec, doc, backend=backend, time_limit=time_limit, calibration=calibration)
    return result


def relaxations(spec: PlanSpec, doc: Document | None, *, backend: str, time_limit: float,
                calibration: str | None = None) -> list[Relaxation]:
    def solve(**update: Any) -> PlanResult:
        relaxed = spec.model_copy(update=update)   # not re-validated: objectives here are internal
        return plan(relaxed, doc, backend=backend, top_k=1, time_limit=time_limit,
                    calibration=calibration)

    out: list[Relaxation] = []
    slo, lim, s = spec.slo, spec.limits, spec.search
    for t in targets(slo):
        key = t.path.split(".")[1]
        unit = 0.01 if t.metric in ("tpot", "itl") else 1.0
        loose = _without(slo, key, t.statistic)
        smallest = _smallest_target(spec.model_copy(update={"slo": loose}), doc, t, calibration)
        if smallest is None:
            out.append(_make(t.path, t.seconds / MS, None, None, None))
            continue
        needed: Any = _up(smallest / MS, unit)
        patch = {"slo": {key: needed}} if t.path.count(".") == 1 else {"slo": {key: {t.statistic: needed}}}
        r = solve(slo=_with(loose, key, t.statistic, needed, bare=t.path.count(".") == 1))
        out.append(_make(t.path, t.seconds / MS, needed, patch, r))
    if lim.budget_usd_per_hour is not None:
        r = solve(limits=lim.model_copy(update={"budget_usd_per_hour": None}), objective="cost_per_hour")
        needed = _up(r.plans[0].cost_per_hour, 0.01) if r.plans and r.plans[0].cost_per_hour else None
        out.append(_make("limits.budget_usd_per_hour", lim.budget_usd_per_hour, needed,
                         {"limits": {"budget_usd_per_hour": needed}}, r))
    for gid, count in sorted(lim.inventory.items()):
        rest = {k: v for k, v in lim.inventory.items() if k != gid}
        r = solve(limits=lim.model_copy(update={"inventory": rest}), objective="gpus")
        ok = bool(r.plans) and r.plans[0].gpu == gid
        gpus_needed = r.plans[0].gpus if ok else None
        out.append(_make(f"limits.inventory.{gid}", count, gpus_needed,
                         {"limits": {"inventory": {gid: gpus_needed}}} if ok else None, r if ok else None))
    if s.max_gpus is not None:
        r = solve(search=s.model_copy(update={"max_gpus": None}), objective="gpus")
        max_needed = r.plans[0].gpus if r.plans else None
        out.append(_make("search.max_gpus", s.max_gpus, max_needed, {"search": {"max_gpus": max_needed}}, r))
    if s.quantizations is not None:
        best: tuple[str, PlanResult] | None = None
        for scheme in SCHEMES:
            if scheme in s.quantizations:
                continue
            r = solve(search=s.model_copy(update={"quantizations": [*s.quantizations, scheme]}))
            if r.plans and (best is None or _better(spec, r.plans[0], best[1].plans[0])):
                best = (scheme, r)
        if best is None:
            out.append(_make("search.quantizations", s.quantizations, None, None, None))
        else:
            scheme, r = best
            out.append(_make("search.quantizations", s.quantizations, [*s.quantizations, scheme],
                             {"search": {"quantizations": [*s.quantizations, scheme]}}, r))
    return out


def _without(slo: Slo, key: str, statistic: str) -> Slo:
    """The SLO with one statistic of one target dropped."""
    value = getattr(slo, key)
    if isinstance(value, Percentiles):
        rest = value.model_copy(update={statistic: None})
        if any(getattr(rest, k) is not None for k in STATISTICS):
            return slo.model_copy(update={key: rest})
    return slo.model_copy(update={key: None})


def _with(slo: Slo, key: str, statistic: str, ms: float, *, bare: bool) -> Slo:
    value = getattr(slo, key)
    if bare:
        return slo.model_copy(update={key: ms})
    base = value if isinstance(value, Percentiles) else Percentiles(**{statistic: ms})
    return slo.model_copy(update={key: base.model_copy(update={statistic: ms})})


def _smallest_target(spec: PlanSpec, doc: Document | None, t: LatencyTarget, calibration: str | None) -> float | None:
    """The smallest value of target ``t`` (seconds) at which some row is feasible, with every
    other limit as written: a row meets it iff its statistic, at the lowest load the limits
    let it run at (the demand over the most replicas allowed, or a vanishing rate without a
    demand), is within it; the statistic grows with the load (docs/load.md)."""
    p = resolve(spec, doc, calibration)
    c = build_candidates(p)
    if c.load is None:
        return None
    best = None
    for k, slot in enumerate(p.slots):
        rows = np.nonzero((c.slot == k) & c.meets_slo & (c.replicas_needed <= c.replicas_allowed))[0]
        if not len(rows):
            continue
        phys = step_physics(slot.model, p.table, c.configs.take(rows), p.assumptions)
        allowed = np.maximum(c.replicas_allowed[rows], 1.0)
        d = slot.demand
        if d is not None and d.kind == "clients":
            at = load_metrics(phys, engine(phys), workload_of(slot), clients=d.value / allowed)
        else:
            rate = d.requests_per_s / allowed if d is not None else c.load.saturation_rate[rows] * 1e-6
            at = load_metrics(phys, engine(phys), workload_of(slot), rate=rate)
        metric = "e2e" if t.metric == "e2e_latency" else t.metric
        value = np.where(at.stable, at.get(metric, t.statistic), np.inf)
        if np.isfinite(value).any():
            v = float(np.min(value))
            best = v if best is None else min(best, v)
    return best


def _better(spec: PlanSpec, a: Plan, b: Plan) -> bool:
    return a.objective_value > b.objective_value if spec.objective == "throughput" else \
        a.objective_value < b.objective_value


def _make(limit: str, current: Any, needed: Any, patch: dict | None, result: PlanResult | None) -> Relaxation:
    if needed is None or result is None or not result.plans:
        return Relaxation(limit, current, None, None, None)
    return Relaxation(limit, current, needed, patch, _summary(result.plans[0]))


def apply_patch(data: dict, patch: dict) -> dict:
    """Merge a relaxation patch into instance data (a new dict)."""
    out = dict(data)
    for key, value in patch.items():
        out[key] = apply_patch(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out
