"""One time limit for a whole command (`planner plan`, `planner fleet`, docs/whatif.md
"One time limit"): ``--time-limit`` is the seconds for all solves together.

The answer is solved first and may use the whole limit, exactly as with no what-if asked, so
the plans never depend on which what-ifs are asked. The what-ifs (the simulator's check of
rank 1, its re-score, marginal values, the disaggregation verdicts, the smallest
relaxations) run only in what the answer left of the limit, one after the other, each with
an equal share of what is left when it starts (``share``): time one leaves unused goes to
the ones after it. A share is at least ``FLOOR`` seconds while that much is left, so that
the first of several what-ifs is not cut to a sliver of a short remainder. Each what-if
stops at the end of its share and says what it did not state (``Unfinished``); none is
started once the limit has passed, and none reads a figure from a solve the limit cut short."""

from __future__ import annotations

import time
from collections.abc import Callable

from planner.backends.base import Status
from planner.candidates.table import Candidates
from planner.plan.solve import Solved, solve_phases
from planner.resolve.problem import Problem

FLOOR = 1.0
"""The least seconds a what-if's share is cut to while that much of the limit is left."""

clock: Callable[[], float] = time.perf_counter
"""The clock the deadline is read on (a test replaces it)."""


class Budget:
    """The command's deadline: ``time_limit`` seconds from ``started`` (a ``clock()`` time,
    default now)."""

    def __init__(self, time_limit: float, started: float | None = None) -> None:
        self.time_limit = time_limit
        self.deadline = (clock() if started is None else started) + time_limit

    def left(self) -> float:
        """Seconds left before the deadline (0 once it has passed)."""
        return max(0.0, self.deadline - clock())

    def share(self, waiting: int) -> float:
        """The seconds of the next of ``waiting`` what-ifs (itself included): an equal share
        of what is left, at least ``FLOOR`` while that much is left; 0 once nothing is."""
        left = self.left()
        return max(left / max(1, waiting), min(FLOOR, left))


class OutOfTime(Exception):
    """A what-if's share ran out before one of its solves could prove its answer."""


def until(seconds: float) -> float:
    """The ``clock()`` time ``seconds`` from now: the end of a what-if's share, which its solves
    read with ``left`` (a simulation reads ``time.perf_counter()``: it is given seconds)."""
    return clock() + seconds


def left(deadline: float) -> float:
    """Seconds to ``deadline`` (a ``clock()`` time), or ``OutOfTime`` once it has passed."""
    rest = deadline - clock()
    if rest <= 0:
        raise OutOfTime
    return rest


def proven(problem: Problem, cands: Candidates, backend: str, deadline: float,
           phases: tuple[str, ...] | None = None) -> Solved | None:
    """A what-if's re-solve (``solve_phases``) in what is left before ``deadline``: its answer
    where proven (optimal or infeasible), None where the time ran out first (stopped by the
    limit, or never started): a what-if states nothing from a solve the limit cut short."""
    try:
        s = solve_phases(problem, cands, backend=backend, time_limit=left(deadline), phases=phases)
    except OutOfTime:
        return None
    return s if s.status in (Status.OPTIMAL, Status.INFEASIBLE) else None
