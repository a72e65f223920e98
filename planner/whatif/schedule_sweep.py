"""A schedule with a sweep over what a GPU start costs (docs/workloads.md section 8): the
trade-off between following the demand closely (many starts) and keeping GPUs up through
quiet periods. The instance, its table and the two comparisons are prepared once; only the
schedule's program is re-solved per cost."""

from __future__ import annotations

import time
from collections.abc import Sequence

from planner.errors import InputError
from planner.plan.schedule import ScheduleResult, StartCost, prepare, solve_prepared, with_start_cost
from planner.schemas.fleet import FleetSpec
from planner.schemas.plan import PlanSpec
from planner.units import HOURS_PER_DAY
from planner.yamlio import Document

MAX_POINTS = 50


def schedule_with_sweep(spec: PlanSpec | FleetSpec, doc: Document | None = None, *, backend: str = "milp",
                        time_limit: float = 60.0, calibration: str | None = None,
                        start_costs: Sequence[float] = (), gap: float = 0.0) -> ScheduleResult:
    """`planner schedule`: the schedule as the instance states it and, for each $ per GPU
    started in ``start_costs``, the schedule at that cost (``result.start_costs``). The
    time limit is shared: a quarter for the comparisons, the rest split between the solves.
    ``gap``: each schedule's solve stops once proven within it (the comparisons stay exact)."""
    if len(start_costs) > MAX_POINTS or any(not 0 <= c <= 1e4 for c in start_costs):
        raise InputError("start costs out of range", path="--start-costs", value=list(start_costs),
                         accepted=f"at most {MAX_POINTS} values, each 0..10000 $ per GPU started")
    t0 = time.perf_counter()
    p = prepare(spec, doc, backend=backend, time_limit=time_limit / 4.0, calibration=calibration)
    each = (time_limit - (time.perf_counter() - t0)) / (1 + len(start_costs))
    result = solve_prepared(p, backend=backend, time_limit=max(each, 1e-3), started=t0, gap=gap)
    for cost in start_costs:
        r = solve_prepared(with_start_cost(p, cost), backend=backend, time_limit=max(each, 1e-3), gap=gap)
        per_day = HOURS_PER_DAY / r.cycle_hours
        ok = bool(r.periods)
        result.start_costs.append(StartCost(
            usd_per_gpu_started=float(cost), status=r.status, usd_per_day=r.usd_per_day,
            gpus_started_per_day=sum(x.gpus_started for x in r.periods) * per_day if ok else None,
            gpu_hours_held_per_day=sum(x.hours * sum(x.gpus_held.values()) for x in r.periods) * per_day
            if ok else None))
    result.solve_seconds = time.perf_counter() - t0
    return result
