"""The cost-latency Pareto frontier of one instance (issue 13, item 5; docs/whatif.md), by
epsilon-constraint re-solves.

1. Minimise cost with the instance as written: the cheapest plan and its latency statistic
   (TTFT or TPOT, mean or a percentile, at the plan's operating point): the slow end.
2. Minimise the latency itself (objective ``ttft`` or ``tpot``): the fast end.
3. Tighten the latency target step by step from the slow end to the fast end, each time
   minimising cost under the tighter target, with every other limit of the instance as
   written: the next target is the next geometric step between the two ends, or just below
   the last plan's own figure when that is lower (else the same plan comes back); at most
   ``points`` solves in all, stopping at the fast end or at the first target nothing meets.
4. Keep the non-dominated points: no other point is at most as dear and at most as slow,
   and strictly better in one.

Each solve minimises cost only, with no latency tie-break: another plan at the same cost may
be faster than the one a solve returned (issue pareto26: on instances/fleet_three_models.yaml
a point at 8.1456 $/hour and TTFT p99 1757 ms while a plan at that cost reaches 1638 ms), so
a point is non-dominated among the points solved only; ``FRONTIER_SCOPE`` says so in the
JSON and the text. A tie-break on the frontier's statistic is not expressible in one solve
(the latency objectives ``ttft``/``tpot`` read the mean at capacity, not this statistic at
the operating point, and a fleet has no latency objective per workload). Probing each point
just below its own figure was tried and dropped: on that fleet the plans at the cheapest
cost differ by a few per cent each, and 8 probes walked from 1638 to 1347 ms without leaving
that cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from planner.candidates.cache import PhysicsCache
from planner.candidates.table import Candidates, build_candidates
from planner.errors import InputError
from planner.plan.result import Plan, PlanResult
from planner.plan.solve import default_backend, first_phase_view, plan, resolved, solve
from planner.resolve.problem import Problem
from planner.schemas.fleet import FleetSpec
from planner.schemas.plan import STATISTICS, Percentiles, PlanSpec, Slo
from planner.whatif.interrupts import whole
from planner.yamlio import Document

METRICS = ("ttft", "tpot")
PARETO_STATISTICS = ("mean", "p50", "p90", "p99")
"""The statistics every plan reports at its operating point (``Plan.load['percentiles_ms']``)."""
FRONTIER_SCOPE = ("non-dominated among the points solved only: each solve minimises cost under its target with no "
                  "latency tie-break, so a plan at the same cost with a lower latency may exist that no solve returned")
"""What ``on_frontier`` claims (and does not): the JSON's ``frontier_scope``, the text's note."""


@dataclass
class ParetoPoint:
    target_ms: float | None      # the latency target of this solve (None: the instance as written)
    status: str
    latency_ms: float | None     # the plan's statistic at its operating point
    cost: float | None           # the objective's value ($/hour, or $ per million tokens)
    plan: dict[str, Any] | None
    on_frontier: bool = False


@dataclass
class ParetoResult:
    x: str
    statistic: str
    objective: str
    unit: str
    points: list[ParetoPoint] = field(default_factory=list)   # every solve, loosest target first

    @property
    def frontier(self) -> list[ParetoPoint]:
        return sorted((p for p in self.points if p.on_frontier), key=lambda p: (p.latency_ms or 0.0, p.cost or 0.0))

    def to_dict(self) -> dict[str, Any]:
        return {"x": self.x, "statistic": self.statistic, "objective": self.objective, "unit": self.unit,
                "frontier_scope": FRONTIER_SCOPE, "frontier": [asdict(p) for p in self.frontier],
                "solves": [asdict(p) for p in self.points]}


def statistic_of(p: Plan, x: str, statistic: str) -> float | None:
    value = p.load.get("percentiles_ms", {}).get(f"{x}_{statistic}")
    return None if value is None else float(value)


def _summary(p: Plan) -> dict[str, Any]:
    return {k: getattr(p, k) for k in ("gpu", "gpus", "replicas", "tp", "pp", "ep", "quantization", "kv_dtype",
                                      "batch", "ttft_ms", "tpot_ms", "cost_per_hour", "cost_per_million_tokens")}


def tightened(slo: Slo, x: str, statistic: str, ms: float) -> Slo:
    """``slo`` with the target on ``x``'s ``statistic`` at most ``ms`` (a tighter existing
    target stays)."""
    key = f"{x}_ms"
    value = getattr(slo, key)
    if isinstance(value, Percentiles):
        old = getattr(value, statistic)
        return slo.model_copy(update={key: value.model_copy(update={statistic: ms if old is None else min(old, ms)})})
    if value is None:
        return slo.model_copy(update={key: Percentiles(**{statistic: ms})})
    if statistic == "mean":                         # a bare number is the mean
        return slo.model_copy(update={key: min(float(value), ms)})
    return slo.model_copy(update={key: Percentiles(**{"mean": float(value), statistic: ms})})


def pareto(spec: PlanSpec, doc: Document | None = None, *, x: str = "ttft", statistic: str = "p99",
           points: int = 8, backend: str | None = None, time_limit: float = 60.0,
           calibration: str | None = None) -> ParetoResult:
    """Cost against the latency ``statistic`` of ``x``, ``points`` epsilon-constraint solves."""
    if x not in METRICS or statistic not in PARETO_STATISTICS or statistic not in STATISTICS:
        raise ValueError(f"x must be one of {METRICS} and statistic one of {PARETO_STATISTICS}")
    objective = "cost_per_hour" if spec.workload.rate_given else "cost_per_million_tokens"
    unit = "$/hour" if objective == "cost_per_hour" else "$ per million output tokens"
    out = ParetoResult(x=x, statistic=statistic, objective=objective, unit=unit)

    def run(s: PlanSpec, target: float | None) -> tuple[ParetoPoint, PlanResult]:
        r = whole(plan(s, doc, backend=backend or default_backend(spec), top_k=1, time_limit=time_limit,
                       calibration=calibration))
        best = r.plans[0] if r.plans else None
        return ParetoPoint(target, r.status, statistic_of(best, x, statistic) if best else None,
                           best.objective_value if best else None, _summary(best) if best else None), r

    cheapest = spec.model_copy(update={"objective": objective, "top_k": 1})
    first, _ = run(cheapest, None)
    out.points.append(first)
    if first.latency_ms is None:
        return out
    fast, _ = run(spec.model_copy(update={"objective": x, "top_k": 1}), None)
    fast_ms = fast.latency_ms if fast.latency_ms is not None else first.latency_ms
    _tighten(out, first.latency_ms, fast_ms, points, lambda t: run(
        cheapest.model_copy(update={"slo": tightened(spec.slo, x, statistic, t)}), t)[0])
    return out


def _tighten(out: ParetoResult, slow_ms: float, fast_ms: float, points: int,
             solve_at: Callable[[float], ParetoPoint]) -> None:
    """Steps 3 and 4 of the module: targets tightened geometrically from ``slow_ms`` toward
    ``fast_ms`` (or just below the last point's own figure), one ``solve_at(target)`` each,
    at most ``points`` - 1 of them; then the frontier marked."""
    steps = max(points - 1, 0)
    last = slow_ms
    for i in range(1, steps + 1):
        if fast_ms >= last:
            break
        grid = slow_ms * (fast_ms / slow_ms) ** (i / steps)
        # a step tightens below the last plan's own figure (else it returns the same plan)
        t = min(grid, last * (1 - 1e-6))
        t = round(max(t, fast_ms * (1 + 1e-6)), 6)
        point = solve_at(t)
        out.points.append(point)
        if point.latency_ms is None:
            break
        last = point.latency_ms
    _mark_frontier(out.points)


def pareto_fleet(spec: FleetSpec, doc: Document | None = None, *, workload: str | None = None, x: str = "ttft",
                 statistic: str = "p99", points: int = 8, backend: str | None = None, time_limit: float = 60.0,
                 calibration: str | None = None) -> ParetoResult:
    """A fleet's $/hour against one workload's latency ``statistic`` (docs/fleet.md): the
    cheapest fleet as written, then that workload's target tightened geometrically toward the
    tightest any of its configurations meets at its capacity, each time the cheapest fleet
    again (every other workload and limit as written). The latency of a point is the worst
    of the workload's deployments at the load each runs at."""
    if x not in METRICS or statistic not in PARETO_STATISTICS:
        raise ValueError(f"x must be one of {METRICS} and statistic one of {PARETO_STATISTICS}")
    names = [w.name for w in spec.workloads]
    if workload is None and len(names) == 1:
        workload = names[0]
    if workload not in names:
        raise InputError("name the workload whose latency the frontier trades against cost", path="--workload",
                         value=workload, accepted=", ".join(names))
    k = names.index(workload)
    out = ParetoResult(x=x, statistic=statistic, objective="cost_per_hour", unit="$/hour")
    spec = spec.model_copy(update={"objective": "cost_per_hour"})

    name = backend or default_backend(spec)
    cache = PhysicsCache()      # the points differ in one workload's target: the rest of the physics is shared

    def run(s: FleetSpec, target: float | None) -> tuple[ParetoPoint, Problem, Candidates]:
        problem = resolved(s, doc, calibration)
        cands = build_candidates(problem, cache=cache)
        r = whole(solve(problem, cands, backend=name, top_k=1, time_limit=time_limit))
        mine = [d for d in r.deployments(1) if d.workload == workload]
        lat = max((statistic_of(d, x, statistic) or 0.0 for d in mine), default=None) if mine else None
        a = r.answer(1)
        cost = a.totals.cost_per_hour if a is not None and a.totals is not None else None
        point = ParetoPoint(target, r.status, lat, cost, _fleet_summary(r, workload) if r.plans else None)
        return point, problem, cands

    def tightened_fleet(t: float) -> FleetSpec:
        w = spec.workloads[k]
        tighter = w.model_copy(update={"slo": tightened(w.slo, x, statistic, t)})
        return spec.model_copy(update={"workloads": [*spec.workloads[:k], tighter, *spec.workloads[k + 1:]]})

    first, problem, cands = run(spec, None)
    out.points.append(first)
    fast_ms = _tightest(first_phase_view(problem, cands), k, x, statistic)   # the fast end, from the table
    if first.latency_ms is None or fast_ms is None:
        return out
    _tighten(out, first.latency_ms, fast_ms, points, lambda t: run(tightened_fleet(t), t)[0])
    return out


def _tightest(c: Candidates, k: int, x: str, statistic: str) -> float | None:
    """The lowest ``statistic`` of ``x`` (ms) any configuration of slot k reaches at its
    capacity while meeting its targets: where tightening the target must stop."""
    assert c.load is not None
    rows = c.slot_rows(k)
    rows = rows[c.meets_slo[rows]]
    if not len(rows):
        return None
    return float(np.min(c.load.get(x, statistic)[rows])) * 1e3


def _fleet_summary(r: PlanResult, workload: str) -> dict[str, Any]:
    mine = [p for p in r.deployments(1) if p.workload == workload]
    a = r.answer(1)
    assert a is not None and a.totals is not None
    return {"deployments": [f"{p.replicas} x {p.gpu} TP{p.tp} PP{p.pp} {p.quantization} b{p.batch}" for p in mine],
            "gpus": a.totals.gpus, "cost_per_hour": a.totals.cost_per_hour}


def _mark_frontier(points: list[ParetoPoint]) -> None:
    """On the frontier: feasible, and no other point at most as slow and as dear, better in one
    (of points at the same figures, the first)."""
    done = [(p.latency_ms, p.cost, i) for i, p in enumerate(points) if p.latency_ms is not None and p.cost is not None]
    best_cost = None
    for _, cost, i in sorted(done):
        if best_cost is None or cost < best_cost:
            points[i].on_frontier = True
            best_cost = cost
