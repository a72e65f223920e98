"""Minimal relaxation of an infeasible instance (issue 4).

For each limit the instance sets, drop that one limit and re-solve with the objective set
to the limit's own quantity (TPOT, TTFT, $/hour, GPUs): the optimum is the smallest value
of the limit that makes the problem feasible, with the plan it gives. For the allowed
quantizations, try each scheme not yet allowed. Every other limit stays as written, so the
change reported is the only one needed, and applying the patch to the file gives a plan.
"""

from __future__ import annotations

import math
from typing import Any

from planner.backends import Status
from planner.physics.quant import DEFAULT_SCHEMES as SCHEMES
from planner.plan.result import Plan, PlanResult, Relaxation
from planner.plan.solve import plan
from planner.schemas.plan import PlanSpec
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
                   objective: str | None = None, calibration: str | None = None) -> PlanResult:
    """`plan()`, and when nothing is feasible (and the run was not interrupted), the smallest
    change to each limit that alone makes the instance feasible."""
    result = plan(spec, doc, backend=backend, top_k=top_k, time_limit=time_limit, objective=objective,
                  calibration=calibration)
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
    for field, unit, objective in (("tpot_ms", 0.01, "tpot"), ("ttft_ms", 1.0, "ttft")):
        current = getattr(slo, field)
        if current is None:
            continue
        r = solve(slo=slo.model_copy(update={field: None}), objective=objective)
        value = getattr(r.plans[0], field) if r.plans else None
        needed = _up(value, unit) if value is not None else None
        out.append(_make(f"slo.{field}", current, needed, {"slo": {field: needed}}, r))
    if lim.budget_usd_per_hour is not None:
        r = solve(limits=lim.model_copy(update={"budget_usd_per_hour": None}), objective="cost_per_hour")
        needed = _up(r.plans[0].cost_per_hour, 0.01) if r.plans and r.plans[0].cost_per_hour else None
        out.append(_make("limits.budget_usd_per_hour", lim.budget_usd_per_hour, needed,
                         {"limits": {"budget_usd_per_hour": needed}}, r))
    for gid, count in sorted(lim.inventory.items()):
        rest = {k: v for k, v in lim.inventory.items() if k != gid}
        r = solve(limits=lim.model_copy(update={"inventory": rest}), objective="gpus")
        ok = r.plans and r.plans[0].gpu == gid
        needed = r.plans[0].gpus if ok else None
        out.append(_make(f"limits.inventory.{gid}", count, needed,
                         {"limits": {"inventory": {gid: needed}}} if ok else None, r if ok else None))
    if s.max_gpus is not None:
        r = solve(search=s.model_copy(update={"max_gpus": None}), objective="gpus")
        needed = r.plans[0].gpus if r.plans else None
        out.append(_make("search.max_gpus", s.max_gpus, needed, {"search": {"max_gpus": needed}}, r))
    if s.quantizations is not None:
        best = None
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
