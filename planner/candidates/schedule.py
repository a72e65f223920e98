"""The candidate tables of a schedule (docs/workloads.md, "Demand over time: schedules"): one
table per SLO case (the periods whose workloads share their latency targets; one case when
no period states its own SLO), its physics computed once at the case's busiest demand and
seen at each of its periods' demand (only the demand rows and the replica counts differ:
an open loop's capacity per replica does not depend on the rate), with the periods' hours
and which GPU types are committed. Every table shares the problem's GPU types."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from planner.candidates.cache import PhysicsCache
from planner.candidates.table import Candidates, build_candidates, with_demand, with_objective
from planner.resolve.problem import Problem
from planner.resolve.schedule import Periods
from planner.schemas.schedule import ScheduleOptions


@dataclass(frozen=True)
class PeriodTables:
    peak: Candidates                  # the static fleet's: each slot's busiest demand, every period's targets
    periods: tuple[Candidates, ...]   # each period's: its case's table at the period's demand
    hours: np.ndarray                 # per period
    committed: np.ndarray             # per GPU type (``gpu_ids``): held and paid in every period
    usd_per_gpu_hour: np.ndarray      # per GPU type (NaN: no price)
    options: ScheduleOptions
    cases: tuple[Candidates, ...] = ()   # per SLO case: its table at its busiest demand (rows screened there)
    case: tuple[int, ...] = ()           # per period: its SLO case

    @property
    def count(self) -> int:
        return len(self.periods)

    @property
    def cycle_hours(self) -> float:
        return float(self.hours.sum())

    def case_table(self, p: int) -> Candidates:
        """Period p's case at its busiest demand (the peak's table when no case is given)."""
        return self.cases[self.case[p]] if self.cases else self.peak


def period_tables(problem: Problem, periods: Periods, cache: PhysicsCache | None = None) -> PeriodTables:
    """Each SLO case's table built once (the physics cache shares what the cases have in
    common), at its busiest demand, seen at each of its periods' demand, priced per $/hour.
    With one case the static fleet's table is that case's; with several it is built under
    every period's targets at each slot's busiest demand (``Periods.strictest``)."""
    cache = PhysicsCache() if cache is None else cache
    case = periods.cases()
    n = max(case) + 1

    def table(slots: tuple) -> Candidates:
        return with_objective(build_candidates(replace(problem, slots=slots), cache=cache), "cost_per_hour")

    cases = tuple(table(periods.peak(tuple(p for p in range(periods.count) if case[p] == k))) for k in range(n))
    peak = with_demand(cases[0], periods.peak()) if n == 1 else table(periods.strictest())
    return PeriodTables(peak=peak, periods=tuple(with_demand(cases[case[p]], slots) for p, slots in
                                                 enumerate(periods.slots)),
                        hours=np.array(periods.hours, dtype=float), committed=np.array(periods.committed, dtype=bool),
                        usd_per_gpu_hour=np.asarray(problem.prices, dtype=float), options=periods.options,
                        cases=cases, case=case)
