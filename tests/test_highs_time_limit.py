"""The HiGHS backend keeps its time limit even where HiGHS does not (issue 26): HiGHS 1.16 can
stay in one branch-and-bound run for good, whatever its ``time_limit`` (fleet_three_models.yaml's
``order`` tie-break given 8 s or more looped inside ``HighsNodeQueue::link_estim``, 49 minutes
under ``--time-limit 600`` until killed). Each MIP run is made in a forked copy of the process,
ended once it outlasts its limit (planner/backends/highs.py ``run_within``). The fake run below
never honours its limit: a run waited for writes its marker, a run ended from outside does not.
No assertion here reads a clock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import highspy
import numpy as np
import pytest
from test_decompose import _problem

import planner.backends.highs as highs
from planner.plan.solve import solve

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="runs are ended from outside where os.fork exists")

REAL_RUN = highspy.Highs.run


def _hanging(marker: Path):
    """A ``Highs.run`` that, on a model with integer columns, ignores its time limit for 20 s and
    then writes ``marker`` (the LPs of the decomposition run as HiGHS runs them)."""

    def run(self: highspy.Highs, *args, **kwargs):
        integrality = np.asarray(self.getLp().integrality_)
        if not (integrality == highspy.HighsVarType.kInteger).any():
            return REAL_RUN(self, *args, **kwargs)
        time.sleep(20)
        marker.write_text("waited for")
        return REAL_RUN(self, *args, **kwargs)

    return run


def test_a_run_past_its_limit_is_ended_and_says_so(monkeypatch, tmp_path):
    marker = tmp_path / "ran"
    monkeypatch.setattr(highspy.Highs, "run", _hanging(marker))
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.addVars(1, np.array([0.0]), np.array([3.0]))
    h.changeColsIntegrality(1, np.array([0], dtype=np.int32), np.array([highspy.HighsVarType.kInteger]))
    h.setOptionValue("time_limit", 0.2)
    assert highs.run_within(h, 0.2) is None
    assert not marker.exists()
    h.addRows(1, np.array([1.5]), np.array([highspy.kHighsInf]), 1, np.array([0], dtype=np.int32),
              np.array([0], dtype=np.int32), np.array([1.0]))            # the model is still the caller's
    monkeypatch.setattr(highspy.Highs, "run", REAL_RUN)
    h.changeColCost(0, 1.0)
    left = highs.run_within(h, 5.0)
    assert left is not None and left.status == highspy.HighsModelStatus.kOptimal
    assert left.columns is not None and left.columns[0] == pytest.approx(2.0)


def test_a_fleet_whose_runs_never_end_keeps_its_start_and_says_where_it_stopped(monkeypatch, tmp_path):
    """Every MIP run hangs: each run is ended past its limit and the solve comes back with a fleet
    (the decomposition's from the starting fleet), no dearer than the proven optimum allows a
    start to be, each phase saying optimal, feasible or time_limit."""
    problem, cands = _problem({"h100-sxm": 4, "l40s": 8}, small=True)
    marker = tmp_path / "ran"
    monkeypatch.setattr(highspy.Highs, "run", _hanging(marker))
    r = solve(problem, cands, backend="highs", time_limit=2.0)
    assert not marker.exists()
    assert r.plans
    assert all(p.status in ("optimal", "feasible", "time_limit") for p in r.phases)
    monkeypatch.setattr(highspy.Highs, "run", REAL_RUN)
    free = solve(problem, cands, backend="highs", time_limit=60.0)
    assert free.phases[0].value <= r.phases[0].value + 1e-9


HANG = ROOT / "tests" / "data" / "highs_hang.mps"      # the order tie-break's model of fleet_three_models.yaml

THREADED = """
import sys
import highspy
import numpy as np
import planner.backends.highs as highs
lp = highspy.Highs()
lp.setOptionValue("output_flag", False)
lp.setOptionValue("threads", 2)          # HiGHS's global scheduler starts here with a worker thread
lp.addVars(1, np.array([0.0]), np.array([1.0]))
lp.run()
h = highspy.Highs()
for k, v in highs.OPTIONS.items():
    h.setOptionValue(k, v)
h.setOptionValue("threads", 2)
h.readModel(sys.argv[1])
h.setOptionValue("time_limit", 2.0)
print("ended" if highs.run_within(h, 2.0) is not None else "killed")
"""


def test_the_model_highs_loops_on_comes_back_from_its_run():
    """The real HiGHS on the model it loops on (fleet_three_models.yaml's ``order`` tie-break,
    tests/data/highs_hang.mps) at the backend's options: given 6 s, HiGHS 1.16 never returns
    from ``run()`` (no return in 20 s with the limit at 6 or 8 s, 44 s at 14 s, on the 2-core
    machine; a faster machine reaches the loop sooner); the run is ended from outside. It comes
    back either way (ended, or HiGHS stopping itself on a machine too slow to reach the loop),
    which the old in-process run did not. Replaces the CLI run of that fleet (20 s): the same
    HiGHS run, without the phases before it; the backend's phases through ``run_within`` are
    the test above."""
    h = highspy.Highs()
    for k, v in highs.OPTIONS.items():
        h.setOptionValue(k, v)
    h.readModel(str(HANG))
    h.setOptionValue("time_limit", 6.0)
    left = highs.run_within(h, 6.0)
    assert left is None or left.status in (highspy.HighsModelStatus.kTimeLimit, highspy.HighsModelStatus.kOptimal)


def test_a_run_ends_in_its_copy_after_this_process_ran_highs_on_several_threads():
    """HiGHS's task scheduler is global and started by the first run: a copy made after a run at
    threads > 1 holds the scheduler without its worker threads, and its run waited for them for
    good (killed past its limit every time: no answer from any run). The copy drops it first.
    In a process of its own, as the scheduler is the process's."""
    out = subprocess.run([sys.executable, "-c", THREADED, str(HANG)], capture_output=True, text=True, timeout=120,
                         cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "ended"


def _integer_model() -> highspy.Highs:
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.addVars(1, np.array([0.0]), np.array([3.0]))
    h.changeColsIntegrality(1, np.array([0], dtype=np.int32), np.array([highspy.HighsVarType.kInteger]))
    h.addRows(1, np.array([1.5]), np.array([highspy.kHighsInf]), 1, np.array([0], dtype=np.int32),
              np.array([0], dtype=np.int32), np.array([1.0]))
    h.changeColCost(0, 1.0)
    return h


def test_a_run_has_its_answer_where_sigchld_is_ignored():
    """A process that ignores SIGCHLD (a daemon embedding the planner) has its children reaped by
    the system: waiting for the copy found none (ChildProcessError), not the answer."""
    old = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        left = highs.run_within(_integer_model(), 5.0)
    finally:
        signal.signal(signal.SIGCHLD, old)
    assert left is not None and left.columns is not None and left.columns[0] == pytest.approx(2.0)


def test_a_run_has_its_answer_when_its_pipe_is_above_descriptor_1023(monkeypatch):
    """A process with many files open (a long sweep, a Ray driver) gets pipe descriptors above
    1023, which select() refuses (ValueError)."""
    real = os.pipe

    def high() -> tuple[int, int]:
        r, w = real()
        hr, hw = os.dup2(r, 1500), os.dup2(w, 1501)
        os.close(r)
        os.close(w)
        return hr, hw

    monkeypatch.setattr(os, "pipe", high)
    left = highs.run_within(_integer_model(), 5.0)
    assert left is not None and left.columns is not None and left.columns[0] == pytest.approx(2.0)


def test_a_run_is_made_here_when_no_copy_can_be_made(monkeypatch):
    """fork fails where a large process cannot be copied (strict overcommit: ENOMEM) or a process
    limit is reached (EAGAIN): the run is made in this process, not an internal error."""

    def refused() -> int:
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(os, "fork", refused)
    left = highs.run_within(_integer_model(), 5.0)
    assert left is not None and left.columns is not None and left.columns[0] == pytest.approx(2.0)
