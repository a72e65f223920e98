"""MILP solved by HiGHS through OR-Tools' bundled copy (model_builder): no highspy, which
cannot share a process with OR-Tools on this platform. The model is the same conditioned
float model the CBC backend builds (milp.CONDITIONING)."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from ortools.linear_solver.python import model_builder as mb

from constraints.model import LinearModel
from planner.backends.base import Feature, Solution, Status, incremental
from planner.backends.milp import CONDITIONING, objective_scaled

OPTIONS = "output_flag=false\nmip_rel_gap=0\nmip_abs_gap=0\nrandom_seed=0\nthreads=1\nmip_feasibility_tolerance=1e-9"
"""Quiet (the banner would corrupt --json on stdout), exact, deterministic. The integrality
tolerance is 1e-9, not 1e-6: an x_j = 1e-6 on a candidate whose $/token is 1e6 times the
optimum's (a $1e-6/GPU-hour price beside catalog prices, found by tests/test_fuzz.py) moved
the optimum by 50 %."""


class HighsBackend:
    name = "highs"
    features = frozenset({Feature.LINEAR_MODEL, Feature.INTEGER, Feature.TIME_LIMIT, Feature.PROVEN_GAP})

    def solve(self, f: Any, time_limit: float, seed: int = 0) -> Solution:
        t0 = time.perf_counter()
        model, vs = incremental(f, "_highs", translate, _add_row)
        # No hint: OR-Tools 9.15's HiGHS wrapper segfaults on a model with hints (add_hint on a
        # two-variable model crashes the process). The solve loop still falls back on the
        # starting plan (constraints.incumbent) when HiGHS returns none (planner/plan/solve.py).
        solver = mb.Solver("highs")
        solver.enable_output(False)
        solver.set_solver_specific_parameters(OPTIONS)
        solver.set_time_limit_in_seconds(max(float(time_limit), 0.01))
        with stdout_silenced():
            code = solver.solve(model)
        if code == mb.SolveStatus.INFEASIBLE:
            return Solution(Status.INFEASIBLE, None, seconds=time.perf_counter() - t0)
        if code not in (mb.SolveStatus.OPTIMAL, mb.SolveStatus.FEASIBLE):
            # out of time only when the time was used; any other status is not an answer
            elapsed = time.perf_counter() - t0
            status = Status.TIME_LIMIT if elapsed >= 0.95 * time_limit else Status.UNKNOWN
            return Solution(status, None, seconds=elapsed)
        status = Status.OPTIMAL if code == mb.SolveStatus.OPTIMAL else Status.FEASIBLE
        scale = [CONDITIONING[v.dimension] if not v.integer else 1.0 for v in f.model.vars]
        values = np.array([solver.value(x) * s for x, s in zip(vs, scale)], dtype=float)
        gap = 0.0
        if status == Status.FEASIBLE:
            obj, bound = solver.objective_value, solver.best_objective_bound
            gap = abs(obj - bound) / max(abs(obj), 1e-12)
        return Solution(status, values, gap=gap, seconds=time.perf_counter() - t0)


@contextlib.contextmanager
def stdout_silenced() -> Iterator[None]:
    """File descriptor 1 sent to the null device while HiGHS runs: its MIP solver prints
    debugging lines to stdout despite output_flag=false ("HighsMipSolverData::
    transformNewIntegerFeasibleSolution tmpSolver.run();", OR-Tools 9.15), which would
    corrupt --json output."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def translate(m: LinearModel) -> tuple[mb.Model, list]:
    model = mb.Model()
    vs: list[Any] = []
    for v in m.vars:
        if v.integer:
            vs.append(model.new_int_var(v.lb, v.ub, f"v{len(vs)}"))
        else:
            s = CONDITIONING[v.dimension]
            vs.append(model.new_num_var(v.lb / s, v.ub / s, f"v{len(vs)}"))
    for k in range(len(m.rows)):
        _add_row(model, vs, m, k)
    obj = objective_scaled(m.in_units(m.objective, m.objective_dimension, CONDITIONING))
    expr = mb.LinearExpr.weighted_sum([vs[i] for i in obj], list(obj.values()))
    model.minimize(expr) if m.objective_sense == "min" else model.maximize(expr)
    return model, vs


def _add_row(model: mb.Model, vs: list, m: LinearModel, k: int) -> None:
    r = m.rows[k]
    c = m.in_units(r.coeffs, r.dimension, CONDITIONING)
    expr = mb.LinearExpr.weighted_sum([vs[i] for i in c], list(c.values()))
    rhs = r.rhs / CONDITIONING[r.dimension]
    model.add(expr <= rhs if r.sense == "<=" else expr >= rhs if r.sense == ">=" else expr == rhs)
