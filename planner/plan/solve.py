"""`planner plan`: build the formulation, solve it K times for K distinct plans, and map
each solution back to a plan (planner/plan/result.py) with its explanation."""

from __future__ import annotations

import time

import numpy as np

import constraints
from planner.backends import HAS_SOLUTION, Feature, Status, get_backend
from planner.candidates import Candidates, build_candidates
from planner.plan.result import Plan, PlanResult, make_plan
from planner.resolve import Problem, resolve
from planner.plan.diagnose import diagnose
from planner.plan.explain import explain_plans
from planner.schemas.plan import PlanSpec
from planner.yamlio import Document


def plan(spec: PlanSpec, doc: Document | None = None, *, backend: str = "cpsat", top_k: int | None = None,
         time_limit: float = 60.0, objective: str | None = None,
         calibration: str | None = None) -> PlanResult:
    """Solve the instance ``top_k`` times for distinct plans. When nothing is feasible the
    result carries the per-family diagnosis; the smallest relaxations are a what-if above
    this function (planner/whatif/relax.py)."""
    t0 = time.perf_counter()
    if objective is not None and objective != spec.objective:
        spec = PlanSpec.model_validate(spec.model_dump() | {"objective": objective})
    problem = resolve(spec, doc, calibration)
    cands = build_candidates(problem)
    engine = get_backend(backend)
    k = top_k or spec.top_k
    f = constraints.build(problem, cands) if Feature.LINEAR_MODEL in engine.features else _OracleOnly(problem, cands)
    plans: list[Plan] = []
    status, gap = Status.TIME_LIMIT, None     # until a solve says otherwise: no time left is no answer
    deadline = time.perf_counter() + time_limit
    interrupted = False
    try:
        for rank in range(1, k + 1):
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            sol = engine.solve(f, remaining)
            if sol.status not in HAS_SOLUTION:
                if rank == 1:
                    status = sol.status
                break
            j, r = _decode(f, sol)
            if rank == 1:
                status, gap = sol.status, sol.gap
            plans.append(make_plan(problem, cands, j, r, rank))
            f.exclude_configuration(int(cands.config[j]), cands.label(j, problem.table, batch=False))
    except KeyboardInterrupt:
        interrupted = True     # keep what was found; the CLI exits 130
        status = status if plans else Status.INTERRUPTED
    explain_plans(problem, cands, plans)
    notes = [f"{gid} not searched: {why}" for gid, why in problem.excluded.items()]
    size = {}
    if isinstance(f, constraints.Formulation):
        size = {"variables": len(f.model.vars), "rows": len(f.model.rows),
                "candidates_fixed_by_screening": int(len(cands) - len(f.alive))}
    infeasible = not plans and status == Status.INFEASIBLE and not interrupted
    diagnosis = diagnose(problem, cands) if infeasible else []
    return PlanResult(status=status.value, objective=spec.objective, backend=backend, plans=plans,
                      searched_configurations=cands.searched, solve_seconds=time.perf_counter() - t0, gap=gap,
                      excluded_gpus=dict(problem.excluded), notes=notes, model_size=size, diagnosis=diagnosis,
                      interrupted=interrupted)


def _decode(f, sol) -> tuple[int, int]:
    if sol.pick is not None:
        return sol.pick, int(sol.replicas or 1)
    xs = sol.values[f.x]
    j = int(np.argmax(xs))
    r = int(round(sol.values[f.y[j]])) if f.replicas else 1
    return j, max(r, 1)


class _OracleOnly:
    """What the oracle needs from a formulation: the problem, candidates and exclusions."""

    def __init__(self, problem: Problem, cands: Candidates) -> None:
        self.problem, self.cands, self.excluded = problem, cands, set()

    def exclude_configuration(self, config_id: int, label: str) -> None:
        self.excluded.add(config_id)
