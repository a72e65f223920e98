"""MILP solved by HiGHS through its own Python API (highspy), in this process: the model is
handed over once, in bulk (column and row arrays), and kept in one ``Highs`` object for the
formulation's life, so the rows and columns the solve stage adds between its lazy
configuration-limit rounds (and the ranking's cuts) are added to it, not rebuilt
(issue 26). A run stopped by its time limit reports the gap to HiGHS's proven dual bound.
It takes no starting answer (``hint``): HiGHS 1.16 given one (``setSolution``) may return a
worse answer as optimal (fleet_disagg_wins' order phase: 280 where 268 is, the value CBC and
HiGHS without the start find; on tests/test_schedule.py's DAY schedule the columns it returns
are the start's, $40.80, while its reported objective and dual bound are the optimum's,
$28.20); the solve stage keeps the better of the start and the answer
(planner/plan/solve.py). A formulation's ``checked_hint`` (a schedule's) is given; an answer
whose columns' objective is not HiGHS's reported one (``REPORTED``), or that does not beat
the start, is solved again without it. A
fleet of the shape planner/backends/decompose.py takes is solved by that decomposition
first. The model is the same conditioned float model the CBC backend builds
(milp.CONDITIONING)."""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import select
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import highspy
import numpy as np

from constraints.model import LinearModel
from planner.backends import decompose
from planner.backends.base import Feature, Solution, Status, at_gap, incremental, relative_gap
from planner.backends.milp import CONDITIONING, objective_scaled

OPTIONS: dict[str, Any] = {"output_flag": False, "mip_rel_gap": 0.0, "mip_abs_gap": 0.0, "random_seed": 0,
                           "threads": 1, "mip_feasibility_tolerance": 1e-9}
"""Quiet (the banner would corrupt --json on stdout), exact, deterministic. The integrality
tolerance is 1e-9, not 1e-6: an x_j = 1e-6 on a candidate whose $/token is 1e6 times the
optimum's (a $1e-6/GPU-hour price beside catalog prices, found by tests/test_fuzz.py) moved
the optimum by 50 %."""

INF = highspy.kHighsInf

CHECKED_START = 1e-9
"""A checked start's answer is kept when its objective beats the start's by more than this
(relative): HiGHS 1.16 given a start (``setSolution``) may return the start's columns as
"optimal" (``REPORTED`` catches those whose reported objective differs from the columns'),
so an answer no better than the start is proven by a solve without it. A schedule's option
model (24 hourly periods, benchmarks/schedule_scale.py) solves in about half the time from
its static fleet."""

REPORTED = 1e-6
"""An answer to a run given a start is kept only where the objective of its columns is
HiGHS's reported objective within this (relative): HiGHS 1.16 given a start (``setSolution``)
may return the start's column values while its objective_function_value and mip_dual_bound
are another, better answer's (the DAY schedule from its static fleet: columns worth $40.80
per cycle, objective and bound $28.20). On a mismatch the run is solved again without the
start, and a gap is always computed from the returned columns' objective."""

LOOSE_TOLERANCE = 1e-6
EXACT = 1e-9
"""A formulation marked ``integral`` (every variable an integer: a schedule's program) is solved
at HiGHS's default feasibility tolerance, LOOSE_TOLERANCE, and its answer, rounded, checked
against every bound and row within EXACT (relative) before it is kept (``_once``). OPTIONS'
1e-9 branched 302 nodes on the hourly day's option program where 1e-6 proves the same optimum
at the root node (2.5 against 0.45 CPU s)."""

WHOLE_MODEL_COLUMNS = 20_000
"""A fleet the decomposition does not prove optimal is solved again as one model with half the
time (the better of the two answers stands), when it has at most this many columns (a few
workloads: the tests' fleets, which every backend must solve to the oracle's optimum); a
larger one keeps the decomposition's fleet and its proven bound, which the whole model does
not improve on in its time (benchmarks/fleet_scale.py)."""


GRACE_SHARE, GRACE_SECONDS = 0.05, 1.0
"""A MIP run that has not ended this long after its own time limit (this share of it, plus
these seconds) is stopped from outside (``run_within``): HiGHS 1.16 may never return from a
run, whatever its ``time_limit`` (fleet_three_models.yaml's ``order`` tie-break, given 8 s or
more: an endless loop inside ``HighsNodeQueue::link_estim`` in its branch and bound, where
neither the time limit nor a user interrupt is checked; tests/data/highs_hang.mps)."""


@dataclass
class Outcome:
    """What a run left: HiGHS's model status, whether it has a primal solution, its dual bound and
    objective (the solver's scaled units), and the columns' values (None: no solution)."""

    status: highspy.HighsModelStatus
    has_solution: bool
    dual_bound: float
    objective: float
    columns: np.ndarray | None


def _outcome(h: highspy.Highs) -> Outcome:
    info = h.getInfo()
    has = info.primal_solution_status == 2        # kSolutionStatusFeasible
    return Outcome(h.getModelStatus(), has, float(info.mip_dual_bound), float(info.objective_function_value),
                   np.asarray(h.getSolution().col_value, dtype=float) if has else None)


def run_within(h: highspy.Highs, time_limit: float) -> Outcome | None:
    """``h.run()`` under its ``time_limit`` option, and None when it outlasts it by the grace
    (GRACE_SHARE, GRACE_SECONDS) or Ctrl-C comes (KeyboardInterrupt raised): the run is made in
    a forked copy of this process, which is killed then, so a run that never ends cannot hold
    the command past its limit. ``h`` itself is left as it was before the run (the copy ran),
    so a caller may add rows to it and run it again. Without ``os.fork`` (Windows), or where
    no copy can be made (fork fails: ENOMEM, EAGAIN), it runs here, trusting HiGHS's own limit."""
    if not hasattr(os, "fork"):
        return _here(h)
    read, write = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        pid = os.fork()
    except OSError:         # no copy to be had (strict overcommit and a large process, a process limit)
        os.close(read)
        os.close(write)
        return _here(h)
    if pid == 0:                                   # the copy: run, say it ended, send what it left
        code = 0
        try:
            os.close(read)
            with contextlib.suppress(ValueError):         # the parent handles Ctrl-C and ends this copy
                signal.signal(signal.SIGINT, signal.SIG_IGN)
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 1)
            # HiGHS's task scheduler is global: one started in this process with worker threads
            # (a run at threads > 1) was copied without them, and a run here would hand its tasks
            # to workers that do not exist and wait for good; drop it (not waiting for its
            # workers) so the run starts its own
            highspy.Highs.resetGlobalScheduler(False)
            h.run()
            os.write(write, b"!")
            left = _outcome(h)
            with os.fdopen(write, "wb") as out:
                pickle.dump((int(left.status), left.has_solution, left.dual_bound, left.objective, left.columns), out,
                            protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write)
    reaped = False
    try:
        # poll, not select: select refuses a descriptor above 1023 (a process with many files open)
        waiting = select.poll()
        waiting.register(read, select.POLLIN)
        if not waiting.poll(1000 * (max(time_limit, 0.0) * (1 + GRACE_SHARE) + GRACE_SECONDS)):
            return None                             # still running past its limit: ended below
        with os.fdopen(read, "rb", closefd=False) as got:   # the first byte comes when the run ended
            if got.read(1) != b"!":
                raise RuntimeError("the HiGHS run ended without an answer (its process died)")
            status, has, bound, objective, columns = pickle.load(got)
        _reap(pid)
        reaped = True
        return Outcome(highspy.HighsModelStatus(status), has, bound, objective, columns)
    finally:
        os.close(read)
        if not reaped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _reap(pid)


def _here(h: highspy.Highs) -> Outcome:
    """``h.run()`` in this process, trusting HiGHS's own time limit."""
    with stdout_silenced():
        h.run()
    return _outcome(h)


def _reap(pid: int) -> None:
    """Wait for the copy ``pid`` to end; where SIGCHLD is ignored (a daemon or server embedding
    the planner may set it so) the system reaps it itself and there is nothing to wait for."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


class HighsBackend:
    name = "highs"
    features = frozenset({Feature.LINEAR_MODEL, Feature.INTEGER, Feature.TIME_LIMIT, Feature.PROVEN_GAP})

    def solve(self, f: Any, time_limit: float, seed: int = 0, gap: float = 0.0) -> Solution:
        """A fleet of the shape planner/backends/decompose.py takes is solved by decomposition
        first (its configuration limits enforced on every workload); any other model, or a small
        fleet it leaves outside ``gap`` of its bound, as one model (mip_rel_gap ``gap``). An
        answer within ``gap`` but not within OPTIMAL_GAP is FEASIBLE, with its gap and bound."""
        t0 = time.perf_counter()
        blocks = decompose.blocks(f)
        if blocks is None:
            return self.whole(f, time_limit, seed, gap)
        whole = len(f.model.vars) <= WHOLE_MODEL_COLUMNS
        r = decompose.solve(f, blocks, time_limit / 2 if whole else time_limit, getattr(f, "hint", None), gap)
        if r.values is None and not math.isfinite(r.bound):
            return Solution(Status.INFEASIBLE, None, seconds=time.perf_counter() - t0)
        proven = r.values is not None and r.value - r.bound <= decompose.OPTIMAL_GAP * max(1.0, abs(r.value))
        within = r.values is not None and decompose.within(r.value, r.bound, gap)
        if proven or within or not whole:
            if r.values is None:
                return Solution(Status.TIME_LIMIT, None, seconds=time.perf_counter() - t0, bound=r.bound)
            return Solution(Status.OPTIMAL if proven else Status.FEASIBLE, r.values,
                            gap=0.0 if proven else max(0.0, r.value - r.bound) / max(abs(r.value), 1e-12),
                            seconds=time.perf_counter() - t0, bound=None if proven else r.bound)
        sol = self.whole(f, max(time_limit - (time.perf_counter() - t0), 0.01), seed, gap)
        if sol.status in (Status.OPTIMAL, Status.INFEASIBLE) or r.values is None:
            return replace(sol, seconds=time.perf_counter() - t0)
        found = decompose.value_of(f, sol.values) if sol.values is not None else math.inf
        bound = max(b for b in (r.bound, sol.bound, -math.inf) if b is not None)
        values, value = (sol.values, found) if found < r.value else (r.values, r.value)
        return Solution(Status.FEASIBLE, values, gap=max(0.0, value - bound) / max(abs(value), 1e-12),
                        seconds=time.perf_counter() - t0, bound=bound)

    def whole(self, f: Any, time_limit: float, seed: int = 0, gap: float = 0.0) -> Solution:
        """The formulation's model as one MIP in HiGHS, stopped once proven within ``gap``; from
        ``f.checked_hint`` where the formulation gives one (a schedule's static fleet), kept
        only when the answer beats it: an answer no better than the start is solved again
        without it (``CHECKED_START``). A formulation marked ``integral`` (a schedule's) is
        solved at the loose tolerance first (``_loose``)."""
        t0 = time.perf_counter()
        start = getattr(f, "checked_hint", None)
        loose = bool(getattr(f, "integral", False))
        model = incremental(f, "_highspy", translate, add_row, add_var)[0]
        sol = self._once(f, model, time_limit, seed, start, loose, gap)
        if start and sol.status == Status.OPTIMAL and sol.values is not None and not _beats(f.model, sol.values, start):
            left = max(time_limit - (time.perf_counter() - t0), 0.01)
            sol = self._once(f, translate(f.model)[0], left, seed, None, loose, gap)
        return replace(sol, seconds=time.perf_counter() - t0)

    def _once(self, f: Any, model: Model, time_limit: float, seed: int, start: dict[int, float] | None,
              loose: bool, gap: float = 0.0) -> Solution:
        """One run; with ``loose``, at LOOSE_TOLERANCE first, its answer rounded to integers
        and kept only when every bound and row holds within EXACT (relative) and, if proven
        optimal there, its objective is the loose run's within EXACT (the loose problem relaxes
        the exact one, so its optimum bounds the exact one's from below); otherwise, and where
        the loose run has no answer but a time-out, run again at OPTIONS' tolerance."""
        if not loose:
            return self._run(f, model, time_limit, seed, start, gap)
        t0 = time.perf_counter()
        model.highs.setOptionValue("mip_feasibility_tolerance", LOOSE_TOLERANCE)
        sol = self._run(f, model, time_limit, seed, start, gap)
        if sol.status == Status.INFEASIBLE:
            return sol                   # infeasible even relaxed: infeasible
        if sol.values is not None:
            exact, relaxed = _rounded(f.model, sol.values), f.model.objective_at(sol.values)
            if exact is not None and (sol.status != Status.OPTIMAL or f.model.objective_at(exact) <=
                                      relaxed + EXACT * max(1.0, abs(relaxed))):
                return replace(sol, values=exact)
        left = max(time_limit - (time.perf_counter() - t0), 0.01)
        return self._run(f, translate(f.model)[0], left, seed, start, gap)

    def _run(self, f: Any, model: Model, time_limit: float, seed: int, start: dict[int, float] | None,
             gap: float = 0.0) -> Solution:
        t0 = time.perf_counter()
        h = model.highs
        h.setOptionValue("time_limit", max(float(time_limit), 0.01))
        h.setOptionValue("mip_rel_gap", float(gap))      # OPTIONS' 0 unless a gap target is given
        h.setOptionValue("random_seed", int(seed))
        if start:
            given = np.zeros(len(f.model.vars))
            for i, v in start.items():
                given[i] = v
            s = highspy.HighsSolution()
            s.col_value = list(given / model.scale_of(f.model))
            s.value_valid = True
            h.setSolution(s)
        run = run_within(h, time_limit)
        elapsed = time.perf_counter() - t0
        if run is None:                 # stopped from outside past its limit: no answer, no bound
            return Solution(Status.TIME_LIMIT, None, seconds=elapsed)
        code, has = run.status, run.has_solution
        if code == highspy.HighsModelStatus.kInfeasible:
            return Solution(Status.INFEASIBLE, None, seconds=elapsed)
        bound = model.unscaled(run.dual_bound)
        if code == highspy.HighsModelStatus.kOptimal and has:
            status = Status.OPTIMAL
        elif has and code in (highspy.HighsModelStatus.kTimeLimit, highspy.HighsModelStatus.kInterrupt,
                              highspy.HighsModelStatus.kSolutionLimit, highspy.HighsModelStatus.kIterationLimit):
            status = Status.FEASIBLE
        else:
            # out of time only when the time was used; any other status is not an answer
            status = Status.TIME_LIMIT if elapsed >= 0.95 * time_limit else Status.UNKNOWN
            return Solution(status, None, seconds=elapsed, bound=bound)
        assert run.columns is not None
        values = run.columns * model.scale_of(f.model)
        found = f.model.objective_at(values)
        if start and not _agrees(found, model.unscaled(run.objective)):
            # the start's columns under HiGHS's own objective: distrust both, solve without the start
            fresh = translate(f.model)[0]
            fresh.highs.setOptionValue("mip_feasibility_tolerance", h.getOptionValue("mip_feasibility_tolerance")[1])
            return self._run(f, fresh, max(time_limit - elapsed, 0.01), seed, None, gap)
        status = at_gap(status, gap, None if bound is None else relative_gap(found, bound))
        reached: float | None = 0.0
        if status == Status.FEASIBLE:
            reached = None if bound is None else relative_gap(found, bound)
        return Solution(status, values, gap=reached, seconds=time.perf_counter() - t0,
                        bound=bound if status == Status.FEASIBLE else None)


def _agrees(found: float, reported: float | None) -> bool:
    """The objective of the returned columns is HiGHS's reported one within REPORTED."""
    return reported is not None and abs(found - reported) <= REPORTED * max(1.0, abs(found), abs(reported))


def _rounded(m: LinearModel, values: np.ndarray) -> np.ndarray | None:
    """``values`` with every integer variable rounded, or None where a bound or a row then
    fails by more than EXACT (relative to its right-hand side, at least 1)."""
    x = np.asarray(values, dtype=float).copy()
    ints = np.flatnonzero(m.vars.integer)
    x[ints] = np.round(x[ints])          # half to even, as round()
    return x if m.holds(x.tolist(), EXACT) else None


def _beats(m: LinearModel, values: np.ndarray, start: dict[int, float]) -> bool:
    """The answer's objective is better than the start's by more than CHECKED_START."""
    found = m.objective_at(values)
    given = m.objective_at(start)
    better = given - found if m.objective_sense == "min" else found - given
    return better > CHECKED_START * max(1.0, abs(given))


class Model:
    """A ``Highs`` object holding a formulation's model, its objective's scale factor."""

    def __init__(self, m: LinearModel) -> None:
        with stdout_silenced():              # the banner is printed when the object is made
            self.highs = highspy.Highs()
        for k, v in OPTIONS.items():
            self.highs.setOptionValue(k, v)
        self.objective_factor = 1.0      # the solver's objective per unit of the conditioned one
        self.objective_unit = CONDITIONING[m.objective_dimension]

    def unscaled(self, value: float) -> float | None:
        """An objective value of the solver's (conditioned, scaled) objective in the model's units."""
        if not np.isfinite(value):
            return None
        return float(value) / self.objective_factor * self.objective_unit

    @staticmethod
    def scale_of(m: LinearModel) -> np.ndarray:
        return m.vars.units(CONDITIONING)


def translate(m: LinearModel) -> tuple[Model, list]:
    """The whole model in one call per part: columns, integrality, rows (CSR), objective."""
    model = Model(m)
    h = model.highs
    scale = model.scale_of(m)
    h.addVars(len(m.vars), m.vars.lb / scale, m.vars.ub / scale)
    ints = np.flatnonzero(m.vars.integer).astype(np.int32)
    if len(ints):
        h.changeColsIntegrality(len(ints), ints, np.full(len(ints), highspy.HighsVarType.kInteger))
    _add_rows(model, m, range(len(m.rows)))
    obj = m.in_units(m.objective, m.objective_dimension, CONDITIONING)
    scaled = objective_scaled(obj)
    first = next((i for i, a in obj.items() if a != 0.0), None)
    model.objective_factor = scaled[first] / obj[first] if first is not None else 1.0
    if scaled:
        idx = np.fromiter(scaled.keys(), dtype=np.int32)
        h.changeColsCost(len(idx), idx, np.fromiter(scaled.values(), dtype=float))
    h.changeObjectiveSense(highspy.ObjSense.kMinimize if m.objective_sense == "min" else highspy.ObjSense.kMaximize)
    return model, []


def add_var(model: Model, vs: list, m: LinearModel, i: int) -> None:
    """Column i of the model (a variable added after the first translation, or during it)."""
    lb, ub, integer, dimension = m.vars.bounds(i)
    s = 1.0 if integer else CONDITIONING[dimension]
    model.highs.addVar(lb / s, ub / s)
    if integer:
        model.highs.changeColIntegrality(i, highspy.HighsVarType.kInteger)


def add_row(model: Model, vs: list, m: LinearModel, k: int) -> None:
    _add_rows(model, m, range(k, k + 1))


def _add_rows(model: Model, m: LinearModel, which: range) -> None:
    lower: list[float] = []
    upper: list[float] = []
    starts: list[int] = []
    index: list[int] = []
    value: list[float] = []
    for k in which:
        r = m.rows[k]
        c = m.in_units(r.coeffs, r.dimension, CONDITIONING)
        rhs = r.rhs / CONDITIONING[r.dimension]
        lower.append(rhs if r.sense in (">=", "==") else -INF)
        upper.append(rhs if r.sense in ("<=", "==") else INF)
        starts.append(len(index))
        index.extend(c.keys())
        value.extend(c.values())
    if lower:
        model.highs.addRows(len(lower), np.array(lower), np.array(upper), len(index), np.array(starts, dtype=np.int32),
                            np.array(index, dtype=np.int32), np.array(value, dtype=np.float64))


@contextlib.contextmanager
def stdout_silenced() -> Iterator[None]:
    """File descriptor 1 sent to the null device while HiGHS runs: its banner and some MIP
    debugging lines reach stdout despite output_flag=false, which would corrupt --json
    output."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
