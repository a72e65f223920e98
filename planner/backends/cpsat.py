"""OR-Tools CP-SAT. Integer coefficients in the units of constraints.model.UNITS, rounded
conservatively: a <= row rounds coefficients up and the bound down, so a CP-SAT plan is
always feasible for the real-valued model (docs/formulation.md section 5)."""

from __future__ import annotations

import functools
import math
import threading
import time
from typing import Any

import numpy as np
from ortools.sat.python import cp_model

from constraints.model import UNITS, LinearModel
from planner.backends.base import Feature, Solution, Status, at_gap, incremental, relative_gap
from planner.errors import InputError

SAFE = 2 ** 61
"""Largest magnitude of an integer variable bound, and of a row's largest possible activity
(sum of |coefficient| x |bound|), kept below CP-SAT's int64 overflow checks with margin."""


class CpSatBackend:
    name = "cpsat"
    features = frozenset({Feature.LINEAR_MODEL, Feature.INTEGER, Feature.TIME_LIMIT, Feature.PROVEN_GAP})

    def solve(self, f: Any, time_limit: float, seed: int = 0, gap: float = 0.0) -> Solution:
        """CP-SAT from the formulation's hint, stopped once proven within ``gap`` (its
        relative_gap_limit); an answer stopped there is FEASIBLE with its gap."""
        t0 = time.perf_counter()
        cp, vs = incremental(f, "_cpsat", translate, _add_row, add_var)
        add_hints(cp, vs, f.model, getattr(f, "hint", None))
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = float(time_limit)
        solver.parameters.num_workers = 1          # deterministic: same input, same answer
        solver.parameters.random_seed = seed
        if gap:
            solver.parameters.relative_gap_limit = float(gap)
        # Ctrl-C is ours, not CP-SAT's: its own handler would end the search as if out of time.
        solver.parameters.catch_sigint_signal = False
        if getattr(f, "covering", False):
            # a fleet is an integer covering program: the full LP relaxation in the search is what
            # proves its optimum (level 1 left a 100 % gap after 60 s on 10 workloads; level 2
            # proves it in about 1 s: benchmarks/fleet_scale.py)
            solver.parameters.linearization_level = 2
        # Presolve stays at its defaults: with cp_model_probing_level = 0, CP-SAT 9.15 proved a
        # wrong optimum on a generated instance (16.8 ms TPOT "optimal" while a 6.2 ms plan
        # was feasible), caught by the exhaustive oracle (docs/formulation.md section 5).
        code = _solve_interruptibly(solver, cp)
        elapsed = time.perf_counter() - t0
        if code == cp_model.MODEL_INVALID:
            raise RuntimeError(f"CP-SAT rejected the model: {cp.Validate()}")
        status = status_of(code, elapsed, time_limit)
        values = None
        within = None
        if status in (Status.OPTIMAL, Status.FEASIBLE):
            units = f.model.vars.units(UNITS).tolist()
            values = np.array([solver.Value(x) * u for x, u in zip(vs, units)], dtype=float)
            obj, bound = solver.ObjectiveValue(), solver.BestObjectiveBound()
            reached = relative_gap(obj, bound)
            status = at_gap(status, gap, reached)
            within = 0.0 if status == Status.OPTIMAL else reached
        return Solution(status, values, gap=within, seconds=time.perf_counter() - t0)


def add_hints(cp: cp_model.CpModel, vs: list, m: LinearModel, hint: dict[int, float] | None) -> None:
    """A starting assignment (constraints.incumbent) as CP-SAT hints: every variable, those not
    listed at 0, in the model's integer units and inside each domain."""
    cp.clear_hints()
    if not hint:
        return
    _, _, integer, dimension = m.vars.columns()
    for i in range(len(m.vars)):
        lo, hi = _dom(m, i)
        val = hint.get(i, 0.0)
        k = round(val) if integer[i] else _ceil(val / UNITS[dimension[i]])
        cp.add_hint(vs[i], min(max(k, lo), hi))


def status_of(code: int, elapsed: float, time_limit: float) -> Status:
    """CP-SAT's status in ours. UNKNOWN is a time limit only when the limit was reached."""
    if code == cp_model.OPTIMAL:
        return Status.OPTIMAL
    if code == cp_model.FEASIBLE:
        return Status.FEASIBLE
    if code == cp_model.INFEASIBLE:
        return Status.INFEASIBLE
    if code == cp_model.UNKNOWN and elapsed >= 0.95 * time_limit:
        return Status.TIME_LIMIT
    return Status.UNKNOWN


def _solve_interruptibly(solver: cp_model.CpSolver, cp: cp_model.CpModel) -> int:
    """Solve in a worker thread (CP-SAT releases the GIL) so that Ctrl-C reaches Python in
    the main thread: stop the search, wait for the worker to end, and raise KeyboardInterrupt.
    The wait is on an Event, not Thread.join: an interrupted join can report a live thread
    as finished (CPython < 3.13), and exiting under a running solve aborts the process. So
    the worker begins its solve only once this thread is inside the loop that waits for it
    (``go``): a Ctrl-C that lands in ``Thread.start`` (after the thread began, or not) or just
    after leaves an idle thread, never a running solve."""
    out: dict = {}
    go, done, stopped = threading.Event(), threading.Event(), threading.Event()

    def work() -> None:
        go.wait()
        try:
            if not stopped.is_set():
                out["code"] = solver.Solve(cp)
        except BaseException as exc:      # re-raised in the caller's thread
            out["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(target=work, name="cpsat-solve", daemon=True)
    worker.start()
    while not done.is_set():
        try:
            go.set()
            if stopped.is_set():
                solver.StopSearch()     # each time: a stop sent before the search began is not kept
            done.wait(0.05)
        except KeyboardInterrupt:
            stopped.set()
    if stopped.is_set():
        raise KeyboardInterrupt
    if "error" in out:
        raise out["error"]
    return out["code"]


REL_EPS = 1e-9
"""Values within a relative 1e-9 of an integer are that integer: 23.6 $/h / 1e-6 is
23599999.999999996 in floating point, and must not round below 23,600,000."""


def _floor(x: float) -> int:
    return math.floor(x + REL_EPS * max(1.0, abs(x)))


def _ceil(x: float) -> int:
    return math.ceil(x - REL_EPS * max(1.0, abs(x)))


def _clamp(x: int) -> int:
    return max(-SAFE, min(SAFE, x))


def add_var(cp: cp_model.CpModel, vs: list, m: LinearModel, i: int) -> None:
    lo, hi = _dom(m, i)
    name = m.vars.name(i)
    vs.append(cp.new_bool_var(name) if m.vars.columns()[2][i] and (lo, hi) == (0, 1) else cp.new_int_var(lo, hi, name))


def translate(m: LinearModel) -> tuple[cp_model.CpModel, list]:
    cp = cp_model.CpModel()
    vs: list[Any] = []
    for i in range(len(m.vars)):
        add_var(cp, vs, m, i)
    for k in range(len(m.rows)):
        _add_row(cp, vs, m, k)
    idx, ks, ids = [], [], []
    for i, s in m.in_units(m.objective, m.objective_dimension, UNITS).items():
        if not math.isfinite(s):
            raise _too_large(f"the objective ({m.objective_name})")
        k = round(s)
        if k:
            idx.append(vs[i])
            ks.append(k)
            ids.append(i)
    if sum(abs(k) * _reach_at(m, i) for i, k in zip(ids, ks)) > SAFE:
        raise _too_large(f"the objective ({m.objective_name})")
    total = cp_model.LinearExpr.WeightedSum(idx, ks)
    cp.minimize(total) if m.objective_sense == "min" else cp.maximize(total)
    return cp, vs


@functools.lru_cache(maxsize=65536)
def _domain_of(integer: bool, lb: float, ub: float, dimension: str) -> tuple[int, int]:
    """The integer domain of a model variable in CP-SAT (continuous ones in UNITS), clamped
    to +-2**61: 27 days in picoseconds, 2.3e12 $/hour in micro-dollars; by its bounds (cached:
    every row's terms ask again)."""
    if integer:
        lo, hi = _ceil(lb), _floor(ub)
    else:
        u = UNITS[dimension]
        flo, fhi = lb / u, ub / u
        lo = -SAFE if flo < -SAFE else _floor(flo)
        hi = SAFE if fhi > SAFE else _ceil(fhi) + 1
    return _clamp(lo), _clamp(hi)


def _dom(m: LinearModel, i: int) -> tuple[int, int]:
    """``_domain`` of the model's variable ``i`` from its columns (no ``Var`` made, no name)."""
    lb, ub, integer, dimension = m.vars.columns()
    return _domain_of(integer[i], lb[i], ub[i], dimension[i])


def _reach_at(m: LinearModel, i: int) -> int:
    lo, hi = _dom(m, i)
    return max(abs(lo), abs(hi))


def _too_large(what: str) -> InputError:
    return InputError(f"{what} needs integers beyond the 64-bit range of the cpsat backend",
                      path="--backend", value="cpsat",
                      accepted="smaller limits or prices, or --backend highs / milp / exhaustive")


def _add_row(cp: cp_model.CpModel, vs: list, m: LinearModel, k: int) -> None:
    """One row, coefficients rounded conservatively: <= rounds up, >= rounds down.

    Each row is then made exact in 64-bit integers: a row no assignment can violate is
    dropped (an SLO of 1e7 ms on a 20 ms plan), a row no assignment can meet becomes a
    false constraint, and a coefficient of a variable that can only be 0 (any step up
    already breaks the row) is cut to the smallest value that still breaks it. A row still
    beyond the range is refused with an error, never rounded into a different problem."""
    r = m.rows[k]
    idx, ks = [], []
    coeffs = m.in_units(r.coeffs, r.dimension, UNITS)
    rhs = r.rhs / UNITS[r.dimension]
    factor = _refinement(m, coeffs, rhs) if r.sense == ">=" else 1
    for i, s in coeffs.items():
        if not math.isfinite(s):
            raise _too_large(f"row {r.name}")
        s *= factor
        c = _ceil(s) if r.sense == "<=" else _floor(s) if r.sense == ">=" else round(s)
        if c:
            idx.append(i)
            ks.append(c)
    rhs *= factor
    if r.sense == "==":
        if not math.isfinite(rhs):
            _false(cp, r.name)
            return
        terms = list(zip(idx, ks))
        lo_act, hi_act = _activity(m, terms)
        target = round(rhs)
        if not lo_act <= target <= hi_act:
            _false(cp, r.name)
            return
        _check_reach(m, terms, target, r.name)
        cp.add(cp_model.LinearExpr.WeightedSum([vs[i] for i in idx], ks) == target).with_name(r.name)
        return
    # as "a.x <= b"
    sign = 1 if r.sense == "<=" else -1
    if math.isnan(rhs):
        raise _too_large(f"row {r.name}")
    if math.isinf(rhs):
        if (rhs > 0) == (sign > 0):
            return                                  # no bound at all
        _false(cp, r.name)
        return
    b = _floor(rhs) if sign > 0 else -_ceil(rhs)
    terms = [(i, sign * c) for i, c in zip(idx, ks)]
    lo_act, hi_act = _activity(m, terms)
    if hi_act <= b:
        return                                      # redundant: every assignment meets it
    if lo_act > b:
        _false(cp, r.name)
        return
    clipped = []
    for i, c in terms:
        lo, hi = _dom(m, i)
        if c > 0 and lo == 0:
            others = lo_act - min(c * lo, c * hi)
            c = min(c, b - others + 1)              # x >= 1 breaks the row with either coefficient
        clipped.append((i, c))
    _check_reach(m, clipped, b, r.name)
    expr = cp_model.LinearExpr.WeightedSum([vs[i] for i, _ in clipped], [c for _, c in clipped])
    cp.add(expr <= b).with_name(r.name)


MAX_REFINEMENT = 2 ** 30
"""The most a covering row's integer unit is refined (``_refinement``)."""


def _refinement(m: LinearModel, coeffs: dict[int, float], rhs: float) -> int:
    """A power of two to multiply a covering (>=) row by before its coefficients are rounded
    down: as large as keeps its activity within a quarter of the 64-bit range (at most
    ``MAX_REFINEMENT``), 1 when its coefficients are whole already. Rounding each of N replicas'
    capacity down by one unit (1e-6 tokens/s) loses up to N units: at 85,365 replicas of 4 H100
    the rounded row needed one replica more than the demand's own count, which is the replica
    variable's upper bound, and CP-SAT called a feasible instance infeasible (tests/test_plan_random.py)."""
    if all(float(s).is_integer() for s in coeffs.values()) or not math.isfinite(rhs):
        return 1
    total = abs(rhs) + sum(abs(s) * _reach_at(m, i) for i, s in coeffs.items())
    if not math.isfinite(total) or total <= 0:
        return 1
    room = SAFE / 4 / total
    return int(2 ** max(0, min(math.floor(math.log2(room)), round(math.log2(MAX_REFINEMENT))))) if room >= 2 else 1


def _activity(m: LinearModel, terms: list) -> tuple[int, int]:
    lo = hi = 0
    for i, c in terms:
        a, z = _dom(m, i)
        lo += min(c * a, c * z)
        hi += max(c * a, c * z)
    return lo, hi


def _check_reach(m: LinearModel, terms: list, rhs: int, name: str) -> None:
    if abs(rhs) > SAFE or sum(abs(c) * _reach_at(m, i) for i, c in terms) > SAFE:
        raise _too_large(f"row {name}")


def _false(cp: cp_model.CpModel, name: str) -> None:
    zero = cp.new_constant(0)
    cp.add(zero >= 1).with_name(name)
