"""`planner plan`: build the formulation, solve it K times for K distinct plans, and map
each solution back to a plan (planner/plan/result.py) with its explanation."""

from __future__ import annotations

import time

import numpy as np

import constraints
from planner.backends.base import HAS_SOLUTION, Feature, Solution, Status, get_backend
from planner.candidates.table import Candidates, build_candidates
from planner.plan.diagnose import diagnose
from planner.plan.explain import explain_plans
from planner.plan.rescore import simulate_plans
from planner.plan.result import Plan, PlanResult, make_plan
from planner.resolve.problem import Problem, resolve
from planner.schemas.plan import PlanSpec
from planner.yamlio import Document


def plan(spec: PlanSpec, doc: Document | None = None, *, backend: str = "cpsat", top_k: int | None = None,
         time_limit: float = 60.0, objective: str | None = None,
         calibration: str | None = None, simulate: bool = False) -> PlanResult:
    """Solve the instance ``top_k`` times for distinct plans. When nothing is feasible the
    result carries the per-family diagnosis; the smallest relaxations are a what-if above
    this function (planner/whatif/relax.py)."""
    t0 = time.perf_counter()
    if objective is not None and objective != spec.objective:
        spec = PlanSpec.model_validate(spec.model_dump() | {"objective": objective})
    problem = resolve(spec, doc, calibration)
    cands = build_candidates(problem)
    result = solve(problem, cands, backend=backend, top_k=top_k or spec.top_k, time_limit=time_limit, started=t0)
    if simulate and result.plans:
        try:
            simulate_plans(problem, cands, result.plans)
        except KeyboardInterrupt:       # Ctrl-C while re-scoring: the plans stand, some unsimulated
            result.interrupted = True
    return result


def solve(problem: Problem, cands: Candidates, *, backend: str = "cpsat", top_k: int = 5, time_limit: float = 60.0,
          started: float | None = None) -> PlanResult:
    """Rank up to ``top_k`` distinct plans of a resolved problem's candidate table."""
    t0 = time.perf_counter() if started is None else started
    engine = get_backend(backend)
    f: constraints.Formulation | OracleInput
    if not len(cands):
        f = OracleInput(cands)          # an empty search space: nothing to solve, the diagnosis says why
    elif Feature.LINEAR_MODEL in engine.features:
        f = constraints.build(cands, ranks=top_k)
    else:
        f = OracleInput(cands)
    plans: list[Plan] = []
    # until a solve says otherwise, no time left is no answer; an empty search space is proven infeasible
    status, gap = (Status.TIME_LIMIT if len(cands) else Status.INFEASIBLE), None
    deadline = time.perf_counter() + time_limit
    interrupted = False
    notes: list[str] = []
    try:
        for rank in range(1, top_k + 1 if len(cands) else 1):
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            start = constraints.incumbent(f) if isinstance(f, constraints.Formulation) else None
            if start is not None and isinstance(f, constraints.Formulation):
                f.hint = start.values
            sol = engine.solve(f, remaining)
            if sol.status not in HAS_SOLUTION and start is not None and sol.status in (Status.TIME_LIMIT,
                                                                                          Status.UNKNOWN):
                # the solver ended without a plan: the starting plan is feasible, optimality unproven
                notes.append(f"plan {rank} is the starting plan (enumerated incumbent): {backend} found none "
                             f"and proved no bound within the time limit ({sol.status.value})")
                sol = Solution(Status.FEASIBLE, None, picks=(start.row,), replicas=(start.replicas,), gap=None,
                               seconds=sol.seconds)
            if sol.status not in HAS_SOLUTION:
                if rank == 1:
                    status = sol.status
                break
            picks = _decode(f, sol)
            if rank == 1:
                status, gap = sol.status, sol.gap
            plans += [make_plan(problem, cands, j, r, rank) for j, r in picks]
            f.exclude([j for j, _ in picks])
    except KeyboardInterrupt:
        interrupted = True     # keep what was found; the CLI exits 130
        status = status if plans else Status.INTERRUPTED
    explain_plans(problem, cands, plans)
    notes = problem.excluded_notes() + notes
    size = {}
    if isinstance(f, constraints.Formulation):
        size = dict(f.size) | {"candidates_fixed_by_screening": int(len(cands) - f.size["after_screening"]),
                               "candidates_pruned_as_dominated": int(f.size["after_screening"] - len(f.alive))}
    infeasible = not plans and status == Status.INFEASIBLE and not interrupted
    diagnosis = diagnose(problem, cands) if infeasible else []
    return PlanResult(status=status.value, objective=cands.objective, backend=backend, plans=plans,
                      searched_configurations=cands.searched, solve_seconds=time.perf_counter() - t0, gap=gap,
                      excluded_gpus=dict(problem.excluded), inputs=problem.inputs(), notes=notes, model_size=size,
                      diagnosis=diagnosis, interrupted=interrupted, unsupported=problem.unsupported())


def _decode(f: constraints.Formulation | OracleInput, sol: Solution) -> list[tuple[int, int]]:
    """(row, replicas) chosen in each slot."""
    if sol.picks is not None:
        return [(j, max(int(r), 1)) for j, r in zip(sol.picks, sol.replicas or [1] * len(sol.picks))]
    assert isinstance(f, constraints.Formulation) and sol.values is not None
    out = []
    for s in range(f.cands.n_slots):
        rows = f.alive_in(s)
        j = int(rows[np.argmax(sol.values[f.x[rows]])])
        r = int(round(sol.values[f.y[j]])) if f.replicas else 1
        out.append((j, max(r, 1)))
    return out


class OracleInput:
    """What the oracle needs from a formulation: the candidate table and the ranking's cuts."""

    def __init__(self, cands: Candidates) -> None:
        self.cands = cands
        self.excluded: list[tuple[int, ...]] = []

    def exclude(self, rows: list[int]) -> None:
        self.excluded.append(tuple(int(self.cands.config[j]) for j in rows))
