"""Minimal relaxation of an infeasible instance (issue 4; issue 21 item 5, issue 23 item 3).

For each limit the instance sets (latency targets, the budget, the count of each owned GPU
type, search.max_gpus, search.max_nodes, limits.power_cap_w, the allowed quantizations), the
smallest change to that limit alone that makes the instance feasible, every other limit as
written, found by re-solving the instance with the change applied:

- a candidate value first: the optimum of the limit's own quantity with the limit lifted
  ($/hour for the budget, GPUs for max_gpus, watts for the power cap), or, for a latency
  target, the smallest value any row reaches at the lowest load the other limits allow
  (``_smallest_target``); for an owned GPU count or max_nodes, what a plan with the limit
  lifted uses of it;
- then the patched instance is solved (``_least``): the candidate is kept if it gives a
  plan, otherwise raised by doubling and the smallest working value found by bisection, on
  the limit's own grid ($0.01, 0.01 ms or 1 ms, 1 W, one GPU, one node). Every limit here
  only loosens as it grows, so the value that is reported gives a plan (the one shown: the
  instance's own objective under the patch) and one step less does not.

An inventory entry is relaxed by raising its count: a missing entry means "not owned", so
deleting it would forbid the type (with rent_outside_inventory, the rented units stay).
For the allowed quantizations, each scheme not yet allowed is tried. tests/test_infeasible.py
checks each claim against the exhaustive oracle.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from planner.backends.base import Status
from planner.candidates.cache import PhysicsCache
from planner.candidates.load import workload_of
from planner.candidates.table import build_candidates
from planner.physics.load import engine, load_metrics, step_physics
from planner.physics.quant import DEFAULT_SCHEMES as SCHEMES
from planner.plan.result import Plan, PlanResult, Relaxation, Unfinished
from planner.plan.solve import plan, resolved
from planner.resolve.workload import LatencyTarget, targets
from planner.schemas.plan import STATISTICS, Percentiles, PlanSpec, Slo
from planner.units import MS
from planner.whatif.budget import Budget, OutOfTime, left, until
from planner.whatif.interrupts import whole
from planner.yamlio import Document

LIFTED = {"inventory": 10**7, "max_gpus": 10**7, "max_nodes": 10**6, "power_cap_w": 1e10, "budget": 1e9,
          "target_ms": 1e7}
"""A limit "lifted": the largest value its schema accepts (planner/schemas/plan.py), so the
instance stays valid and a lifted power cap still leaves out GPUs without a power figure."""


def _up(x: float, step: float) -> float:
    """Round up to a multiple of ``step`` (a limit slightly above what is needed); the final
    round() only removes floating-point noise (9.120000000000001), never below ``x``."""
    return round(math.ceil(x / step - 1e-9) * step, 9)


def _summary(p: Plan) -> dict:
    return {k: getattr(p, k) for k in ("gpu", "gpus", "tp", "pp", "ep", "replicas", "quantization", "kv_dtype",
                                      "batch", "ttft_ms", "tpot_ms", "throughput_tokens_per_s", "cost_per_hour",
                                      "cost_per_million_tokens")}


def _answer(plans: list[Plan]) -> dict:
    """The answer a relaxed instance gives: its first deployment's figures (as before) and every
    deployment of the answer with its spot spares, and the GPUs it holds in all: an answer split
    over configurations (or carrying spares) is not its first deployment."""
    deployments = [_summary(p) | {"workload": p.workload, "spare_gpus": p.spare_replicas * p.gpus // max(p.replicas, 1)}
                   for p in plans]
    return _summary(plans[0]) | {"deployments": deployments,
                                 "gpus_held": sum(d["gpus"] + d["spare_gpus"] for d in deployments)}


def plan_and_relax(spec: PlanSpec, doc: Document | None = None, *, backend: str = "cpsat", top_k: int | None = None,
                   time_limit: float = 60.0,
                   objective: str | None = None, calibration: str | None = None,
                   simulate: bool = False) -> PlanResult:
    """`plan()`, and when nothing is feasible (and the run was not interrupted), the smallest
    change to each limit that alone makes the instance feasible."""
    budget = Budget(time_limit)
    result = plan(spec, doc, backend=backend, top_k=top_k, time_limit=time_limit, objective=objective,
                  calibration=calibration, simulate=simulate)
    if objective is not None and objective != spec.objective:
        spec = spec.model_copy(update={"objective": objective})
    relax_into(result, spec, doc, backend=backend, time_limit=budget.share(1), calibration=calibration)
    return result


def relax_into(result: PlanResult, spec: PlanSpec, doc: Document | None, *, backend: str, time_limit: float,
               calibration: str | None) -> None:
    """``result.relaxations`` when ``result`` is proven infeasible (not interrupted); a Ctrl-C
    during their search marks ``result`` interrupted (exit 130) and leaves them unset, never a
    relaxation read from a solve the Ctrl-C cut short. ``time_limit``: the seconds of all
    their solves together (planner/whatif/budget.py); the limits whose search it cut short
    have no relaxation, and ``result.unfinished`` names them."""
    if result.status != Status.INFEASIBLE.value or result.plans or result.interrupted:
        return
    left_out: list[str] = []
    try:
        result.relaxations = relaxations(spec, doc, backend=backend, time_limit=time_limit, calibration=calibration,
                                         left_out=left_out)
    except KeyboardInterrupt:
        result.interrupted = True
        return
    if left_out:
        result.unfinished.append(Unfinished("relaxations", time_limit, left_out))


def _least(at: Callable[[float], PlanResult], lo: float, hi: float, step: float, most: float
           ) -> tuple[float, PlanResult] | None:
    """The smallest value on multiples of ``step`` above ``lo`` (known to give no plan) at
    which ``at`` (a solve of the patched instance) gives a plan: ``hi`` first, raised by
    doubling up to ``most`` while it gives none, then bisected. None if ``most`` gives none."""
    hi = max(hi, _up(lo + step, step))
    r = at(hi)
    while not r.plans:
        if hi >= most or r.status != Status.INFEASIBLE.value:
            return None            # no value works, or a solve ended without an answer
        lo, hi = hi, min(most, _up(2 * hi, step))
        r = at(hi)
    best = (hi, r)
    while hi - lo > step * (1 + 1e-9):
        mid = _up((lo + hi) / 2, step)
        if mid >= hi:
            mid = _up(hi - step, step)
        if mid <= lo:
            break
        r = at(mid)
        if r.plans:
            hi, best = mid, (mid, r)
        else:
            lo = mid
    return best


def _target(numeric: Callable[..., Relaxation | None], spec: PlanSpec, doc: Document | None, t: LatencyTarget,
            calibration: str | None) -> Relaxation | None:
    """A latency target, loosened: the smallest value any row reaches at the lowest load the
    other limits allow is the candidate (nothing below it can work)."""
    key, bare = t.path.split(".")[1], t.path.count(".") == 1
    loose = _without(spec.slo, key, t.statistic)
    smallest = _smallest_target(spec.model_copy(update={"slo": loose}), doc, t, calibration)
    if smallest is None:
        return Relaxation(t.path, t.seconds / MS, None, None, None)

    def patch(ms: float) -> dict[str, Any]:
        return {"slo": {key: ms}} if bare else {"slo": {key: {t.statistic: ms}}}

    def update(ms: float) -> dict[str, Any]:
        return {"slo": _with(loose, key, t.statistic, ms, bare=bare)}

    return numeric(t.path, t.seconds / MS, patch, update, {"slo": loose}, LIFTED["target_ms"],
                   0.01 if t.metric in ("tpot", "itl") else 1.0, lambda _: smallest / MS, lower=True)


def _inventory(numeric: Callable[..., Relaxation | None], lim: Any, gid: str, count: int) -> Relaxation | None:
    """An owned GPU type's count, raised: what a plan with the count lifted uses of it is the
    candidate, bisected down from there."""
    def update(v: float) -> dict[str, Any]:
        return {"limits": lim.model_copy(update={"inventory": {**lim.inventory, gid: int(v)}})}

    return numeric(f"limits.inventory.{gid}", count, lambda v: {"limits": {"inventory": {gid: v}}}, update,
                   update(LIFTED["inventory"]), LIFTED["inventory"], 1.0,
                   lambda r: sum(p.gpus for p in _first(r) if p.gpu == gid), lower=False, integer=True)


def _first(r: PlanResult) -> list[Plan]:
    """The deployments of the best plan (one per slot)."""
    return [p for p in r.plans if p.rank == 1]


def relaxations(spec: PlanSpec, doc: Document | None, *, backend: str, time_limit: float,
                calibration: str | None = None, left_out: list[str] | None = None) -> list[Relaxation]:
    """The smallest change to each limit the instance sets, each alone. ``time_limit``: the
    seconds of all the solves together; a limit whose search is not finished within them
    (a solve stopped by the time limit without a plan proves nothing) has no relaxation, and
    its path goes to ``left_out``."""
    deadline = until(time_limit)
    cache = PhysicsCache()      # the relaxed instances differ in one limit: their physics is shared

    def solve(objective: str | None = None, **update: Any) -> PlanResult:
        relaxed = spec.model_copy(update=update | ({"objective": objective} if objective else {}))
        # not re-validated: the objectives used here to find a candidate value are internal
        r = whole(plan(relaxed, doc, backend=backend, top_k=1, time_limit=left(deadline), calibration=calibration,
                          cache=cache))
        if not r.plans and r.status == Status.TIME_LIMIT.value:
            raise OutOfTime        # neither feasible nor proven infeasible: the search cannot go on
        return r

    def limits(**kv: Any) -> dict[str, Any]:
        return {"limits": lim.model_copy(update=kv)}

    def search(**kv: Any) -> dict[str, Any]:
        return {"search": s.model_copy(update=kv)}

    def numeric(path: str, current: Any, patch: Callable[[float], dict], update: Callable[[float], dict],
                lifted: dict[str, Any], most: float, step: float, candidate: Callable[[PlanResult], float],
                lower: bool, objective: str | None = None, integer: bool = False) -> Relaxation | None:
        """One numeric limit: solved with the limit ``lifted`` (for ``objective``, the limit's
        own quantity, when there is one) for a candidate value, then ``_least`` on the patched
        instance. ``lower``: no value below the candidate can work (an optimum of the limit's
        quantity, the smallest a row reaches); otherwise the search starts above ``current``.
        None where the time ran out first (``path`` goes to ``missed``)."""
        try:
            return _numeric(path, current, patch, update, lifted, most, step, candidate, lower, objective, integer)
        except OutOfTime:
            missed.append(path)
            return None

    def _numeric(path: str, current: Any, patch: Callable[[float], dict], update: Callable[[float], dict],
                 lifted: dict[str, Any], most: float, step: float, candidate: Callable[[PlanResult], float],
                 lower: bool, objective: str | None, integer: bool) -> Relaxation:
        free = solve(objective, **lifted)
        if not free.plans:
            return Relaxation(path, current, None, None, None)
        start = _up(candidate(free), step)
        # the lifted solve's value bounds the limit from below only when proven optimal: one the
        # time limit stopped at a worse plan (feasible, unproven) is searched down from ``current``
        proven = objective is None or bool(free.phases) and free.phases[0].status == Status.OPTIMAL.value
        found = _least(lambda v: solve(**update(v)), start - step if lower and proven else float(current), start,
                       step, most)
        if found is None:
            return Relaxation(path, current, None, None, None)
        value, r = found
        needed: Any = int(value) if integer else value
        return Relaxation(path, current, needed, patch(needed), _answer(_first(r)))

    out: list[Relaxation | None] = []
    missed = left_out if left_out is not None else []
    slo, lim, s = spec.slo, spec.limits, spec.search
    for t in targets(slo):
        out.append(_target(numeric, spec, doc, t, calibration))
    if lim.budget_usd_per_hour is not None:
        out.append(numeric("limits.budget_usd_per_hour", lim.budget_usd_per_hour,
                           lambda v: {"limits": {"budget_usd_per_hour": v}},
                           lambda v: limits(budget_usd_per_hour=v), limits(budget_usd_per_hour=LIFTED["budget"]),
                           LIFTED["budget"], 0.01, lambda r: sum(p.cost_per_hour or 0.0 for p in _first(r)),
                           lower=True, objective="cost_per_hour"))
    for gid, count in sorted(lim.inventory.items()):
        out.append(_inventory(numeric, lim, gid, count))
    if s.max_gpus is not None:
        out.append(numeric("search.max_gpus", s.max_gpus, lambda v: {"search": {"max_gpus": v}},
                           lambda v: search(max_gpus=int(v)), search(max_gpus=LIFTED["max_gpus"]), LIFTED["max_gpus"],
                           1.0, lambda r: sum(p.gpus for p in _first(r)), lower=True, objective="gpus", integer=True))
    if s.max_nodes is not None:
        out.append(numeric("search.max_nodes", s.max_nodes, lambda v: {"search": {"max_nodes": v}},
                           lambda v: search(max_nodes=int(v)), search(max_nodes=LIFTED["max_nodes"]),
                           LIFTED["max_nodes"], 1.0, lambda r: sum(p.nodes for p in _first(r)), lower=False,
                           integer=True))
    if lim.power_cap_w is not None:
        out.append(numeric("limits.power_cap_w", lim.power_cap_w, lambda v: {"limits": {"power_cap_w": v}},
                           lambda v: limits(power_cap_w=v), limits(power_cap_w=LIFTED["power_cap_w"]),
                           LIFTED["power_cap_w"], 1.0, lambda r: sum(p.power_w or 0.0 for p in _first(r)),
                           lower=True, objective="power_w"))
    if s.quantizations is not None:
        try:
            out.append(_quantizations(spec, solve, search))
        except OutOfTime:
            missed.append("search.quantizations")
    return [x for x in out if x is not None]


def _quantizations(spec: PlanSpec, solve: Callable[..., PlanResult], search: Callable[..., dict[str, Any]]
                   ) -> Relaxation:
    """The allowed quantizations: each scheme not yet allowed tried, the best plan kept."""
    allowed = spec.search.quantizations or []
    best: tuple[str, PlanResult] | None = None
    for scheme in SCHEMES:
        if scheme in allowed:
            continue
        r = solve(**search(quantizations=[*allowed, scheme]))
        if r.plans and (best is None or _better(spec, r.plans[0], best[1].plans[0])):
            best = (scheme, r)
    if best is None:
        return Relaxation("search.quantizations", allowed, None, None, None)
    scheme, r = best
    return Relaxation("search.quantizations", allowed, [*allowed, scheme],
                      {"search": {"quantizations": [*allowed, scheme]}}, _answer(_first(r)))


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
    p = resolved(spec, doc, calibration)
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
        eng = engine(phys)
        if d is not None and d.kind == "clients":
            at = load_metrics(phys, eng, workload_of(slot, eng), clients=d.value / allowed)
        else:
            rate = d.requests_per_s / allowed if d is not None else c.load.saturation_rate[rows] * 1e-6
            at = load_metrics(phys, eng, workload_of(slot, eng), rate=rate)
        metric = "e2e" if t.metric == "e2e_latency" else t.metric
        value = np.where(at.stable, at.get(metric, t.statistic), np.inf)
        if np.isfinite(value).any():
            v = float(np.min(value))
            best = v if best is None else min(best, v)
    return best


def _better(spec: PlanSpec, a: Plan, b: Plan) -> bool:
    return a.objective_value > b.objective_value if spec.objective == "throughput" else \
        a.objective_value < b.objective_value


def apply_patch(data: dict, patch: dict) -> dict:
    """Merge a relaxation patch into instance data (a new dict)."""
    out = dict(data)
    for key, value in patch.items():
        out[key] = apply_patch(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out
