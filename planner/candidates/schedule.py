"""The candidate table of a schedule (docs/workloads.md, "Demand over time: schedules"): one
table, its physics computed once at the busiest demand, seen at each period's demand (only
the demand rows and the replica counts differ: an open loop's capacity per replica does not
depend on the rate), with the periods' hours and which GPU types are committed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.candidates.table import Candidates, with_demand, with_objective
from planner.resolve.schedule import Periods
from planner.schemas.schedule import ScheduleOptions


@dataclass(frozen=True)
class PeriodTables:
    peak: Candidates                  # the table at each slot's busiest demand (a static fleet's)
    periods: tuple[Candidates, ...]   # the same table at each period's demand
    hours: np.ndarray                 # per period
    committed: np.ndarray             # per GPU of the table (``gpu_ids``): held and paid in every period
    usd_per_gpu_hour: np.ndarray      # per GPU of the table (NaN: no price)
    options: ScheduleOptions

    @property
    def count(self) -> int:
        return len(self.periods)

    @property
    def cycle_hours(self) -> float:
        return float(self.hours.sum())


def period_tables(cands: Candidates, periods: Periods, prices: np.ndarray) -> PeriodTables:
    """``cands`` (built at the peak demand) at each period's demand, priced per $/hour."""
    base = with_objective(cands, "cost_per_hour")
    return PeriodTables(peak=with_demand(base, periods.peak()),
                        periods=tuple(with_demand(base, slots) for slots in periods.slots),
                        hours=np.array(periods.hours, dtype=float), committed=np.array(periods.committed, dtype=bool),
                        usd_per_gpu_hour=np.asarray(prices, dtype=float), options=periods.options)
