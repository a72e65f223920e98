"""MILP through PuLP, solved by CBC (shipped with PuLP). Rows are scaled per dimension for
numerical conditioning (milliseconds, gigabytes, dollars), not rounded."""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pulp

from constraints.model import LinearModel
from planner.backends.base import OPTIMAL_GAP, Feature, Solution, Status, incremental, relative_gap

CONDITIONING = {"count": 1.0, "bytes": 1e9, "seconds": 1e-3, "usd_per_hour": 1.0, "usd_per_million_tokens": 1.0,
                "tokens_per_s": 1e3, "watts": 1e3, "nodes": 1.0, "share": 1.0, "clients": 1.0, "usd": 1.0}


class MilpBackend:
    name = "milp"
    features = frozenset({Feature.LINEAR_MODEL, Feature.INTEGER, Feature.TIME_LIMIT})

    def solve(self, f: Any, time_limit: float, seed: int = 0, gap: float = 0.0) -> Solution:
        """CBC from the formulation's hint, stopped once proven within ``gap`` (its gapRel);
        an answer stopped there is FEASIBLE with the gap and bound of CBC's own log (``_bound``)."""
        t0 = time.perf_counter()
        hint = getattr(f, "hint", None) or {}
        sol = self._solve(f, time_limit, seed, hint, gap)
        if sol.status == Status.OPTIMAL and sol.values is not None and _beats(f.model, hint, sol.values):
            # CBC (PuLP 3.3) warm-started with the incumbent of a generated plan (mixtral-8x7b on
            # l4/mi300x, objective tpot; tests/test_plan_random.py) returned 4.71 ms as optimal,
            # dearer than the 4.53 ms start it was given, which it proves without the start
            left = time_limit - (time.perf_counter() - t0)
            sol = replace(self._solve(f, max(left, 1.0), seed, {}, gap), seconds=time.perf_counter() - t0)
        return sol

    def _solve(self, f: Any, time_limit: float, seed: int, hint: dict[int, float], gap: float = 0.0) -> Solution:
        t0 = time.perf_counter()
        prob, vs = incremental(f, "_milp", translate, _add_row, add_var)
        scale = f.model.vars.units(CONDITIONING).tolist()
        for i, (x, s) in enumerate(zip(vs, scale) if hint else ()):   # a starting plan (constraints.incumbent)
            v = hint.get(i, 0.0)
            v = v if s == 1.0 else v / s
            x.setInitialValue(min(max(v, x.lowBound), x.upBound))
        with tempfile.TemporaryDirectory() if gap else contextlib.nullcontext() as logs:
            log = None if logs is None else os.path.join(logs, "cbc.log")
            solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=max(1, int(time_limit)), gapRel=float(gap), threads=1,
                                       warmStart=bool(hint), logPath=log,
                                       options=[f"randomSeed {seed + 1}", f"randomCbcSeed {seed + 1}"])
            prob.solve(solver)
            reached = _reached(log) if log is not None and os.path.exists(log) else None
        sol = getattr(prob, "sol_status", None)
        if prob.status == pulp.LpStatusInfeasible or sol == pulp.LpSolutionInfeasible:
            return Solution(Status.INFEASIBLE, None, seconds=time.perf_counter() - t0)
        if sol == pulp.LpSolutionOptimal and prob.status == pulp.LpStatusOptimal:
            status = Status.OPTIMAL
        elif sol == pulp.LpSolutionIntegerFeasible:
            status = Status.FEASIBLE
        else:
            # out of time only when the time was used; any other status is not an answer
            elapsed = time.perf_counter() - t0
            status = Status.TIME_LIMIT if elapsed >= 0.95 * time_limit else Status.UNKNOWN
            return Solution(status, None, seconds=elapsed)
        values = np.array([(x.value() or 0.0) * s for x, s in zip(vs, scale)], dtype=float)
        if gap and not isinstance(reached, tuple) and reached != "optimal":
            # a gap target was given and CBC's log states neither its bound nor a proven optimum (stopped
            # within the gap without a bound, or a log absent, truncated or unread): PuLP's "optimal" may
            # be a stop at the gap, so the answer is feasible, its gap unknown; never a proof not stated
            return Solution(Status.FEASIBLE, values, seconds=time.perf_counter() - t0)
        if isinstance(reached, tuple):  # a gap target was given: CBC's own gap (a time-out's too)
            found = f.model.objective_at(values)
            within = relative_gap(*reached)
            bound = found * reached[1] / reached[0] if reached[0] and f.model.objective_sense == "min" else None
            if not math.isfinite(within):
                return Solution(Status.FEASIBLE, values, seconds=time.perf_counter() - t0)
            if within > OPTIMAL_GAP:
                return Solution(Status.FEASIBLE, values, gap=within, seconds=time.perf_counter() - t0, bound=bound)
        return Solution(status, values, gap=0.0 if status == Status.OPTIMAL else None,
                        seconds=time.perf_counter() - t0)


BOUND_LINES = ("Lower bound", "Upper bound")
"""The lines of CBC's closing summary that state its best bound: lower when minimising, upper
when maximising (PuLP runs CBC with -max)."""


def _reached(log: str) -> tuple[float, float] | str | None:
    """CBC's objective and best bound as its log states them at the end of a run stopped short
    of the optimum (on the gap target or the time limit), in its own (scaled) units; "optimal"
    when its result line states a proven optimum (not one within a gap tolerance) and no bound;
    "stopped" when it says it stopped within the gap tolerance but states no bound; None when it
    states none of these (no answer, or a log truncated or unread)."""
    found = {}
    result = None
    with open(log, errors="replace") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if line.startswith("Result - "):
                result = line.strip()
            if key.strip() in ("Objective value", *BOUND_LINES):
                with contextlib.suppress(ValueError, IndexError):
                    found["bound" if key.strip() in BOUND_LINES else "value"] = float(rest.split()[0])
    if len(found) == 2 and result is not None:
        return found["value"], found["bound"]
    if result is None:
        return None
    if "gap" in result.lower():
        return "stopped"
    return "optimal" if result == "Result - Optimal solution found" else None


def _beats(m: LinearModel, hint: dict[int, float] | None, values: np.ndarray) -> bool:
    """The hint keeps every bound and row (within a relative 1e-9) and is strictly better than
    ``values`` on the objective: an answer called optimal that it beats is not."""
    if not hint:
        return False
    x = np.zeros(len(m.vars))
    for i, v in hint.items():
        x[i] = v
    # bounds within an absolute 1e-9 (tighter than ``holds``' relative one), rows as ``holds``
    if not ((m.vars.lb - 1e-9 <= x) & (x <= m.vars.ub + 1e-9)).all() or not m.holds(x.tolist(), 1e-9):
        return False
    mine, found = m.objective_at(x), m.objective_at(values)
    better = mine < found if m.objective_sense == "min" else mine > found
    return better and abs(mine - found) > 1e-9 * max(1.0, abs(found))


def translate(m: LinearModel) -> tuple[pulp.LpProblem, list]:
    prob = pulp.LpProblem("plan", pulp.LpMinimize if m.objective_sense == "min" else pulp.LpMaximize)
    vs: list[Any] = []
    for i in range(len(m.vars)):
        add_var(prob, vs, m, i)

    for k in range(len(m.rows)):
        _add_row(prob, vs, m, k)
    obj = objective_scaled(m.in_units(m.objective, m.objective_dimension, CONDITIONING))
    prob += pulp.LpAffineExpression([(vs[i], a) for i, a in obj.items()])
    return prob, vs


def add_var(prob: pulp.LpProblem, vs: list, m: LinearModel, i: int) -> None:
    """Variable i (PuLP's problem learns its variables from the rows and objective using them)."""
    lb, ub, integer, dimension = m.vars.bounds(i)
    if integer:
        cat = pulp.LpBinary if (lb, ub) == (0.0, 1.0) else pulp.LpInteger
        vs.append(pulp.LpVariable(f"v{len(vs)}", lb, ub, cat))
    else:
        s = CONDITIONING[dimension]
        vs.append(pulp.LpVariable(f"v{len(vs)}", lb / s, ub / s, pulp.LpContinuous))


def objective_scaled(coeffs: dict[int, float]) -> dict[int, float]:
    """The objective divided by a power of two that brings its smallest nonzero coefficient to
    [1, 2) (the largest kept at most 2**30): the same optimum, but differences between cheap
    candidates no longer fall below the solver's optimality tolerances. With the largest
    coefficient at 1, a $1e-6/GPU-hour price beside catalog prices left the optimum's
    competitors 4e-7 apart and HiGHS returned a plan 50-73 % dearer (tests/test_fuzz.py)."""
    mags = [abs(a) for a in coeffs.values() if math.isfinite(a) and a != 0.0]
    if not mags:
        return coeffs
    small, top = min(mags), max(mags)
    exponent = min(math.floor(math.log2(small)), math.floor(math.log2(top)) - 30)
    scale = 2.0 ** max(exponent, math.floor(math.log2(top)) - 60)
    return {i: a / scale for i, a in coeffs.items()}


def _expr(vs: list, m: LinearModel, coeffs: Mapping[int, float], dim: str) -> pulp.LpAffineExpression:
    return pulp.LpAffineExpression([(vs[i], a) for i, a in m.in_units(coeffs, dim, CONDITIONING).items()])


def _add_row(prob: pulp.LpProblem, vs: list, m: LinearModel, k: int) -> None:
    r = m.rows[k]
    e, rhs = _expr(vs, m, r.coeffs, r.dimension), r.rhs / CONDITIONING[r.dimension]
    prob += (e <= rhs if r.sense == "<=" else e >= rhs if r.sense == ">=" else e == rhs), f"r{k}"
