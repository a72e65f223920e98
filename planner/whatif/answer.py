"""The answer the CLI prints, for one workload or a fleet: the ranked answers
(planner/plan/solve.py), then the what-ifs that re-solve or compare around them: the
simulator's re-score, the smallest relaxations when nothing is feasible (relax.py), what
one more unit of each binding limit is worth (marginal.py), aggregated against
disaggregated serving (modes.py) and the baselines of a fleet (baselines.py)."""

from __future__ import annotations

import time

from planner.candidates.table import Candidates
from planner.plan.result import PlanResult
from planner.plan.solve import default_backend, first_phase_view, prepare, rescore, solve, with_priors
from planner.resolve.problem import Problem
from planner.schemas.fleet import FleetSpec
from planner.schemas.plan import PlanSpec
from planner.whatif.baselines import baselines as baselines_of
from planner.whatif.marginal import marginal_values
from planner.whatif.modes import compare_modes
from planner.whatif.relax import relax_into
from planner.whatif.verify import verify
from planner.yamlio import Document


def answer(spec: PlanSpec | FleetSpec, doc: Document | None = None, *, backend: str | None = None,
           top_k: int | None = None, time_limit: float = 60.0, objective: str | None = None,
           calibration: str | None = None, simulate: bool = False, marginal: bool = False,
           baselines: bool = False, relax: bool = True, gap: float = 0.0) -> PlanResult:
    """Rank the answers (``prepare`` and ``solve``, stopped once proven within ``gap``); with
    ``simulate``, check rank 1 by simulation and re-solve where it misses (``verify``, at the same
    gap); then the what-ifs (``around``: exact, each compares optima)."""
    t0 = time.perf_counter()
    spec, problem, cands = prepare(spec, doc, objective=objective, calibration=calibration)
    backend = backend or default_backend(spec)
    ranks = top_k or spec.ranks()
    result = solve(problem, cands, backend=backend, top_k=ranks, time_limit=time_limit, started=t0, gap=gap)
    if simulate and result.plans:       # the simulator in the verdict: rank 1 re-solved until it simulates within
        result, cands = verify(problem, cands, result, backend=backend, top_k=ranks, time_limit=time_limit, gap=gap)
    with_priors(spec, doc, cands, result, calibration)
    around(problem, cands, result, backend=backend, time_limit=time_limit, simulate=False, marginal=marginal,
           baselines=baselines, relax=(spec, doc, calibration) if relax and isinstance(spec, PlanSpec) else None,
           gap=gap)
    result.solve_seconds = time.perf_counter() - t0
    return result


def around(problem: Problem, cands: Candidates, result: PlanResult, *, backend: str, time_limit: float,
           simulate: bool = False, marginal: bool = False, baselines: bool = False,
           relax: tuple[PlanSpec, Document | None, str | None] | None = None, gap: float = 0.0) -> None:
    """The what-ifs around a ranked result: the simulator's re-score (``simulate``); with an
    answer, the value of each binding limit and, per workload that may run pools, which mode
    wins (``marginal``: both re-solve); the baselines of several workloads (``baselines``);
    without one (proven infeasible, not interrupted), the smallest change to each limit of a
    one-workload instance (``relax``: its spec, document and calibration) that makes it
    feasible. ``gap``: the target the answer was solved to (the marginal values compare optima)."""
    if simulate:
        rescore(problem, cands, result, deadline=time.perf_counter() + time_limit)
    if result.plans and marginal and not result.interrupted:
        result.marginal = marginal_values(problem, cands, result, backend, time_limit, gap)
        result.disaggregation = compare_modes(problem, cands, result, backend, time_limit)
    if baselines and isinstance(problem.spec, FleetSpec):
        result.baselines = baselines_of(first_phase_view(problem, cands), result)
    if relax is not None:
        spec, doc, calibration = relax
        relax_into(result, spec, doc, backend=backend, time_limit=time_limit, calibration=calibration)
