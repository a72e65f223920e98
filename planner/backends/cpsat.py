"""OR-Tools CP-SAT. Integer coefficients in the units of constraints.model.UNITS, rounded
conservatively: a <= row rounds coefficients up and the bound down, so a CP-SAT plan is
always feasible for the real-valued model (docs/formulation.md section 5)."""

from __future__ import annotations

import math
import time

import numpy as np
from ortools.sat.python import cp_model

from constraints.model import UNITS, LinearModel
from planner.backends import Feature, Solution, Status, incremental


class CpSatBackend:
    name = "cpsat"
    features = frozenset({Feature.LINEAR_MODEL, Feature.INTEGER, Feature.TIME_LIMIT, Feature.PROVEN_GAP})

    def solve(self, f, time_limit: float, seed: int = 0) -> Solution:
        t0 = time.perf_counter()
        cp, vs = incremental(f, "_cpsat", translate, _add_row)
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = float(time_limit)
        solver.parameters.num_workers = 1          # deterministic: same input, same answer
        solver.parameters.random_seed = seed
        # Presolve stays at its defaults: with cp_model_probing_level = 0, CP-SAT 9.15 proved a
        # wrong optimum on a generated instance (16.8 ms TPOT "optimal" while a 6.2 ms plan
        # was feasible), caught by the exhaustive oracle (docs/formulation.md section 5).
        code = solver.Solve(cp)
        status = {cp_model.OPTIMAL: Status.OPTIMAL, cp_model.FEASIBLE: Status.FEASIBLE,
                  cp_model.INFEASIBLE: Status.INFEASIBLE}.get(code, Status.TIME_LIMIT)
        if code == cp_model.MODEL_INVALID:
            raise RuntimeError(f"CP-SAT rejected the model: {cp.Validate()}")
        values = None
        gap = None
        if status in (Status.OPTIMAL, Status.FEASIBLE):
            units = [UNITS[v.dimension] if not v.integer else 1.0 for v in f.model.vars]
            values = np.array([solver.Value(x) * u for x, u in zip(vs, units)], dtype=float)
            obj, bound = solver.ObjectiveValue(), solver.BestObjectiveBound()
            gap = 0.0 if status == Status.OPTIMAL else abs(obj - bound) / max(abs(obj), 1e-12)
        return Solution(status, values, gap=gap, seconds=time.perf_counter() - t0)


REL_EPS = 1e-9
"""Values within a relative 1e-9 of an integer are that integer: 23.6 $/h / 1e-6 is
23599999.999999996 in floating point, and must not round below 23,600,000."""


def _floor(x: float) -> int:
    return math.floor(x + REL_EPS * max(1.0, abs(x)))


def _ceil(x: float) -> int:
    return math.ceil(x - REL_EPS * max(1.0, abs(x)))


def translate(m: LinearModel) -> tuple[cp_model.CpModel, list]:
    cp = cp_model.CpModel()
    vs = []
    for v in m.vars:
        if v.integer:
            lo, hi = _ceil(v.lb), _floor(v.ub)
            vs.append(cp.NewBoolVar(v.name) if (lo, hi) == (0, 1) else cp.NewIntVar(lo, hi, v.name))
        else:
            u = UNITS[v.dimension]
            vs.append(cp.NewIntVar(_floor(v.lb / u), _ceil(v.ub / u) + 1, v.name))
    for k in range(len(m.rows)):
        _add_row(cp, vs, m, k)
    idx, ks = [], []
    for i, s in m.in_units(m.objective, m.objective_dimension, UNITS).items():
        k = round(s)
        if k:
            idx.append(vs[i])
            ks.append(k)
    total = cp_model.LinearExpr.WeightedSum(idx, ks)
    cp.Minimize(total) if m.objective_sense == "min" else cp.Maximize(total)
    return cp, vs


def _add_row(cp: cp_model.CpModel, vs: list, m: LinearModel, k: int) -> None:
    """One row, coefficients rounded conservatively: <= rounds up, >= rounds down."""
    r = m.rows[k]
    idx, ks = [], []
    for i, s in m.in_units(r.coeffs, r.dimension, UNITS).items():
        k = _ceil(s) if r.sense == "<=" else _floor(s) if r.sense == ">=" else round(s)
        if k:
            idx.append(vs[i])
            ks.append(k)
    expr = cp_model.LinearExpr.WeightedSum(idx, ks)
    rhs = r.rhs / UNITS[r.dimension]
    if r.sense == "<=":
        cp.Add(expr <= _floor(rhs)).WithName(r.name)
    elif r.sense == ">=":
        cp.Add(expr >= _ceil(rhs)).WithName(r.name)
    else:
        cp.Add(expr == round(rhs)).WithName(r.name)
