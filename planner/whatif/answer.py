"""The answer the CLI prints, for one workload or a fleet: the ranked answers
(planner/plan/solve.py), then the what-ifs that re-solve or compare around them: the
simulator's re-score, the smallest relaxations when nothing is feasible (relax.py), what
one more unit of each binding limit is worth (marginal.py), aggregated against
disaggregated serving (modes.py) and the baselines of a fleet (baselines.py). One time
limit for all the solves together (budget.py): the answer's solve may use the whole of it,
the what-ifs share what it leaves."""

from __future__ import annotations

import time

from planner.backends.base import Status
from planner.candidates.table import Candidates
from planner.plan.result import PlanResult, Unfinished
from planner.plan.solve import default_backend, first_phase_view, prepare, rescore, solve, with_priors
from planner.resolve.problem import Problem
from planner.schemas.fleet import FleetSpec
from planner.schemas.plan import PlanSpec
from planner.simulate import TIME_CUT
from planner.whatif.baselines import baselines as baselines_of
from planner.whatif.budget import Budget
from planner.whatif.marginal import marginal_values, raised
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
    gap); then the what-ifs (``around``: exact, each compares optima). ``time_limit``: the
    seconds of all the solves together, from the start of the answer's solve (budget.py)."""
    t0 = time.perf_counter()
    spec, problem, cands = prepare(spec, doc, objective=objective, calibration=calibration)
    backend = backend or default_backend(spec)
    ranks = top_k or spec.ranks()
    budget = Budget(time_limit)       # the answer's solve has the whole limit from here, as with no what-if
    result = solve(problem, cands, backend=backend, top_k=ranks, time_limit=time_limit, started=t0, gap=gap)
    relaxing = (spec, doc, calibration) if relax and isinstance(spec, PlanSpec) else None
    if simulate and result.plans:       # the simulator in the verdict: rank 1 re-solved until it simulates within
        share = budget.share(1 + asked(cands, result, marginal=marginal, relax=relaxing is not None))
        result, cands = verify(problem, cands, result, backend=backend, top_k=ranks, time_limit=share, gap=gap)
        cut = [result.label(p) for p in result.plans if p.role == "aggregated" and not result.interrupted
               and TIME_CUT in (p.simulation or {"error": TIME_CUT}).get("error", "")]
        if cut:         # the re-score of the ranks, run inside the check: what its share left unsimulated
            result.unfinished.append(Unfinished("simulation", share, cut))
    with_priors(spec, doc, cands, result, calibration)
    around(problem, cands, result, backend=backend, time_limit=time_limit, budget=budget, simulate=False,
           marginal=marginal, baselines=baselines, relax=relaxing, gap=gap)
    result.solve_seconds = time.perf_counter() - t0
    return result


def asked(cands: Candidates, result: PlanResult, *, simulate: bool = False, marginal: bool = False,
          relax: bool = False) -> int:
    """How many of ``around``'s timed what-ifs re-solve or simulate around ``result``: those that
    share what the answer's solve left (the baselines solve nothing; marginal values without a
    binding limit that has one, and the verdicts without a workload that may run pools, solve
    nothing either, and take no share)."""
    first = result.answer(1)
    answered = first is not None and bool(result.plans) and not result.interrupted
    infeasible = result.status == Status.INFEASIBLE.value and not result.plans and not result.interrupted
    worth = answered and first is not None and any(raised(cands.limits, b.limit, b.gpu) is not None
                                                   for b in first.binding)
    return (int(simulate and bool(result.plans)) + int(marginal and worth)
            + int(marginal and answered and any(cands.pooled(s) for s in range(cands.n_slots)))
            + int(relax and infeasible))


def around(problem: Problem, cands: Candidates, result: PlanResult, *, backend: str, time_limit: float,
           budget: Budget | None = None, simulate: bool = False, marginal: bool = False, baselines: bool = False,
           relax: tuple[PlanSpec, Document | None, str | None] | None = None, gap: float = 0.0) -> None:
    """The what-ifs around a ranked result: the simulator's re-score (``simulate``); with an
    answer, the value of each binding limit and, per workload that may run pools, which mode
    wins (``marginal``: both re-solve); the baselines of several workloads (``baselines``);
    without one (proven infeasible, not interrupted), the smallest change to each limit of a
    one-workload instance (``relax``: its spec, document and calibration) that makes it
    feasible. ``gap``: the target the answer was solved to (the marginal values compare optima).
    ``budget``: the command's deadline (default: ``time_limit`` from now); the what-ifs run one
    after the other, each in its share of what is left (``Budget.share``), and each cut short
    says so in ``result.unfinished``."""
    budget = budget or Budget(time_limit)
    waiting = asked(cands, result, simulate=simulate, marginal=marginal, relax=relax is not None)
    if simulate and result.plans:
        share = budget.share(waiting)
        waiting -= 1         # what comes after: the marginal values and the verdicts, or the relaxations
        deadline = time.perf_counter() + share      # the simulation's own clock
        rescore(problem, cands, result, deadline=deadline)
        cut = [result.label(p) for p in result.plans if "error" in (p.simulation or {})]
        if cut and time.perf_counter() >= deadline:
            result.unfinished.append(Unfinished("simulation", share, cut))
    if result.plans and marginal and not result.interrupted:
        result.marginal = marginal_values(problem, cands, result, backend, budget.share(waiting), gap)
        result.disaggregation = compare_modes(problem, cands, result, backend, budget.share(1))   # the last

    if baselines and isinstance(problem.spec, FleetSpec):
        result.baselines = baselines_of(first_phase_view(problem, cands), result)
    if relax is not None:
        spec, doc, calibration = relax
        relax_into(result, spec, doc, backend=backend, time_limit=budget.share(1), calibration=calibration)  # alone
