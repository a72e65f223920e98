"""A schedule over a demand profile (docs/workloads.md, "Demand over time: schedules"): one
program over the periods (constraints/schedule.py) on one candidate table whose physics is
computed once, at each workload's busiest demand; beside it, on the same table and through
the one solve path (planner/plan/solve.py), the static fleet (one fleet of deployments that
serves every period under its own SLO; an upper bound: it is one schedule) and each
period's own optimum (their sum over the periods, a lower bound: committed GPUs paid only
while they serve, starts free, no lag; a period where a workload is off is solved without it,
and costs nothing where every workload is off). The
exhaustive oracle solves the schedule by enumeration in its own terms."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from constraints.schedule import Start, idle
from planner.backends.base import HAS_SOLUTION, Status
from planner.candidates.schedule import PeriodTables, period_tables
from planner.candidates.table import Candidates
from planner.plan.describe import spare_count
from planner.plan.solve import solve_phases, solve_schedule, solve_static
from planner.resolve.problem import Problem, resolve, resolve_fleet
from planner.resolve.schedule import Periods, resolve_periods
from planner.schemas.fleet import FleetSpec
from planner.schemas.plan import PlanSpec
from planner.units import HOURS_PER_DAY
from planner.yamlio import Document

Picks = list[tuple[int, int]]
STAND_IN_MARGIN = 1e-9
"""The fleet under the strictest targets stands in for the static program's answer only when
cheaper by more than this share (the same cost summed in another order differs in its last bits)."""


@dataclass
class Deployment:
    workload: str
    gpu: str
    tp: int
    pp: int
    ep: int
    quantization: str
    kv_dtype: str
    batch: int
    replicas: int
    gpus: int
    spare_replicas: int = 0       # a spot deployment's spares: running and paid (in the GPUs held), not serving


@dataclass
class PeriodPlan:
    """One period of the schedule: its demand, deployments and GPUs."""

    period: int
    hours: float
    requests_per_s: dict[str, float]          # per workload
    deployments: list[Deployment]
    gpus_serving: dict[str, int]              # per GPU type
    gpus_held: dict[str, int]                 # per GPU type: committed all cycle, burst in this period
    usd_per_hour: float                       # what the GPUs held cost per hour in this period
    gpus_started: int = 0                     # burst GPUs started at the period's start
    slo: dict[str, dict[str, Any]] = field(default_factory=dict)   # per workload on here: the targets it meets


@dataclass
class Bound:
    """A comparison: the static fleet (``_static``), or the sum of per-period optima."""

    status: str
    usd_per_cycle: float | None
    proven: bool                              # each solve it sums was proven optimal
    usd_per_hour: list[float | None] = field(default_factory=list)   # per period (the static fleet: one value)
    deployments: list[Deployment] = field(default_factory=list)      # the static fleet's


@dataclass
class Autoscale:
    """The replicas one deployment runs over the cycle: an autoscaler's bounds. A spot
    deployment's spare replicas run beside its serving ones (held and paid), so they are in
    the bounds, as in `planner launch --k8s`; ``spare_replicas`` says how many of them are
    spares (the most in any period)."""

    workload: str
    deployment: str
    min_replicas: int
    max_replicas: int
    spare_replicas: int = 0


@dataclass
class StartCost:
    """The schedule at one $ per GPU started (a sweep, planner/whatif/schedule_sweep.py)."""

    usd_per_gpu_started: float
    status: str
    usd_per_day: float | None
    gpus_started_per_day: float | None        # burst GPUs started over the cycle, per day
    gpu_hours_held_per_day: float | None      # every GPU held, committed or burst


@dataclass
class ScheduleResult:
    status: str
    backend: str
    model: str                                 # where the figures come from
    cycle_hours: float
    usd_per_cycle: float | None
    usd_per_day: float | None
    committed: dict[str, int]                  # GPUs held all cycle per committed type
    periods: list[PeriodPlan]
    static: Bound
    per_period_optima: Bound
    autoscaler: list[Autoscale]
    saving_vs_static: float | None             # share of the static fleet's cost
    gap: float | None
    solve_seconds: float | None                # None with --reproducible (planner/cli/schedule_cmd.py)
    model_size: dict[str, int]
    options: dict[str, Any]
    start_costs: list[StartCost] = field(default_factory=list)   # a sweep over $ per GPU started (what-if)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Prepared:
    """A schedule's instance resolved, its table per period, and the two comparisons, which
    do not depend on the schedule's options (a sweep over them re-solves the schedule only)."""

    problem: Problem
    periods: Periods
    tables: PeriodTables
    static: Bound
    static_picks: Start               # the static fleet's deployments: the schedule's start
    lower: Bound


def prepare(spec: PlanSpec | FleetSpec, doc: Document | None = None, *, backend: str = "milp",
            time_limit: float = 30.0, calibration: str | None = None) -> Prepared:
    """Resolve, build the table once at the peak, and solve the static fleet and each
    period's optimum through the one solve path (``time_limit`` split between them)."""
    problem = resolve_fleet(spec, doc, calibration) if isinstance(spec, FleetSpec) else resolve(spec, doc,
                                                                                                calibration)
    periods = resolve_periods(spec, problem, doc)
    t = period_tables(problem, periods)
    static, static_picks = _static(problem, periods, t, backend, time_limit / 2.0)
    lower = _optima(problem, periods, t, backend, time_limit / 2.0)
    return Prepared(problem, periods, t, static, static_picks, lower)


def with_start_cost(p: Prepared, usd_per_gpu_started: float) -> Prepared:
    """The same schedule with another $ per GPU started (the comparisons stand)."""
    options = p.tables.options.model_copy(update={"usd_per_gpu_started": float(usd_per_gpu_started)})
    return replace(p, tables=replace(p.tables, options=options))


def schedule(spec: PlanSpec | FleetSpec, doc: Document | None = None, *, backend: str = "milp",
             time_limit: float = 60.0, calibration: str | None = None, gap: float = 0.0) -> ScheduleResult:
    """The cheapest schedule of an instance's demand profile, with the static fleet and
    the sum of per-period optima beside it (half the time for those two, the rest for the
    schedule; ``gap``: the schedule's solve stops once proven within it, the two it is
    compared with stay exact)."""
    t0 = time.perf_counter()
    p = prepare(spec, doc, backend=backend, time_limit=time_limit / 2.0, calibration=calibration)
    return solve_prepared(p, backend=backend, time_limit=max(time_limit - (time.perf_counter() - t0), 1e-3),
                          started=t0, gap=gap)


def solve_prepared(p: Prepared, *, backend: str = "milp", time_limit: float = 60.0, started: float | None = None,
                   gap: float = 0.0) -> ScheduleResult:
    """The schedule's program on a prepared instance, and its result (stopped once proven
    within the relative ``gap``)."""
    t0 = time.perf_counter() if started is None else started
    t, periods, static = p.tables, p.periods, p.static
    status, picks, held, cost, reached, size = solve_schedule(t, backend=backend, time_limit=time_limit,
                                                              start=p.static_picks, gap=gap)
    ok = status in HAS_SOLUTION
    plans = [_period(t, periods, k, picks[k], held[k], held[k - 1]) for k in range(t.count)] if ok else []
    committed = {t.peak.gpu_ids[g]: int(round(held[0, g])) for g in range(len(t.peak.gpu_ids))
                 if t.committed[g] and ok and held[0, g] > 0}
    cycle = t.cycle_hours
    usd = float(cost) if ok and cost is not None else None
    return ScheduleResult(
        status=status.value, backend=backend,
        model="closed form: each replica at its capacity at SLO (docs/load.md), " +
              ("the same table in every period" if len(t.cases) <= 1 else
               f"one table per SLO case ({len(t.cases)}), each period at its own targets"),
        cycle_hours=cycle, usd_per_cycle=usd, usd_per_day=None if usd is None else usd * HOURS_PER_DAY / cycle,
        committed=committed, periods=plans, static=static, per_period_optima=p.lower,
        autoscaler=autoscale(t, picks) if ok else [],
        saving_vs_static=None if usd is None or not static.usd_per_cycle else 1.0 - usd / static.usd_per_cycle,
        gap=reached if ok else None, solve_seconds=time.perf_counter() - t0, model_size=size,
        options=t.options.model_dump())


def _deployments(c: Candidates, picks: Picks) -> list[Deployment]:
    out = []
    for j, r in picks:
        d = c.describe(j)
        out.append(Deployment(workload=c.slot_names[int(c.slot[j])], gpu=d["gpu"], tp=d["tp"], pp=d["pp"], ep=d["ep"],
                              quantization=d["quantization"], kv_dtype=d["kv_dtype"], batch=d["batch"], replicas=r,
                              gpus=int(c.ev.gpus[j]) * r, spare_replicas=spare_count(c, j)))
    return out


def _static(problem: Problem, periods: Periods, t: PeriodTables, backend: str, seconds: float
            ) -> tuple[Bound, Start]:
    """The cheapest static fleet: one fleet of deployments held all cycle that serves every
    period at its own demand under its own targets, priced over the whole cycle. With one
    SLO case it is the fleet a plan at each workload's busiest demand gives (the one solve
    path); with several, the program of constraints/schedule_static.py (every period's fleet
    tied equal), started from, and never dearer than, the cheapest fleet under every period's
    targets at the peak, which stands in when the program gives no better one. Returns the
    bound and its deployments as the schedule's start."""
    share = seconds / 2.0 if len(t.cases) > 1 else seconds
    s = solve_phases(replace(problem, slots=t.peak.slots), t.peak, backend=backend, time_limit=share,
                     phases=("cost_per_hour",), tie_break=True)
    strictest: Bound | None = None
    if s.status in HAS_SOLUTION and "cost_per_hour" in s.values:
        hourly = float(s.values["cost_per_hour"])
        strictest = Bound(s.status.value, hourly * t.cycle_hours, s.status == Status.OPTIMAL, [hourly],
                          _deployments(t.peak, s.picks))
    at_peak: Start = [(t.peak, j, r) for j, r in s.picks] if strictest else []
    if len(t.cases) <= 1:
        return strictest or Bound(s.status.value, None, False), at_peak
    status, picks, cost, _ = solve_static(t, backend=backend, time_limit=share, start=list(s.picks))
    if cost is None or (strictest is not None and strictest.usd_per_cycle is not None
                        and strictest.usd_per_cycle < cost * (1.0 - STAND_IN_MARGIN)):
        if strictest is None:
            return Bound(status.value, None, False), []
        return replace(strictest, status=Status.FEASIBLE.value, proven=False), at_peak
    deployments = [d for p, j, r in picks for d in _deployments(t.periods[p], [(j, r)])]
    return (Bound(status.value, cost, status == Status.OPTIMAL, [cost / t.cycle_hours], deployments),
            [(t.periods[p], j, r) for p, j, r in picks])


def _optima(problem: Problem, periods: Periods, t: PeriodTables, backend: str, seconds: float) -> Bound:
    """Each period's cheapest fleet on its own (GPUs paid while they serve, no start costs,
    no lag), summed over the periods' hours: a lower bound when each is proven optimal."""
    hourly: list[float | None] = []
    proven = True
    worst = Status.OPTIMAL
    for p, view in enumerate(t.periods):
        off = [idle(view, k) for k in range(view.n_slots)]
        if all(off):                      # no workload has demand: no GPU serves
            hourly.append(0.0)
            continue
        if any(off):
            # a plan serves every workload it names: a period with a workload off is the schedule's
            # program over that period alone (no switching, no lag), which serves only the others
            alone = replace(t, periods=(view,), hours=t.hours[p:p + 1], cases=(t.case_table(p),) if t.cases else (),
                            case=(0,) if t.cases else ())
            status, _, _, cost, _, _ = solve_schedule(alone, backend=backend, time_limit=seconds / t.count)
            hourly.append(float(cost) / float(t.hours[p]) if status in HAS_SOLUTION and cost is not None else None)
        else:
            s = solve_phases(replace(problem, slots=periods.slots[p]), view, backend=backend,
                             time_limit=seconds / t.count, phases=("cost_per_hour",), tie_break=False)
            status = s.status
            ok = s.status in HAS_SOLUTION and "cost_per_hour" in s.values
            hourly.append(float(s.values["cost_per_hour"]) if ok else None)
        proven &= status == Status.OPTIMAL
        worst = status if status != Status.OPTIMAL else worst
    if any(h is None for h in hourly):
        return Bound(worst.value, None, False, hourly)
    total = float(sum(h * float(t.hours[p]) for p, h in enumerate(hourly) if h is not None))
    return Bound(worst.value, total, proven, hourly)


def _period(t: PeriodTables, periods: Periods, p: int, picks: Picks, held: np.ndarray,
            before: np.ndarray) -> PeriodPlan:
    c = t.periods[p]
    serving = np.zeros(len(c.gpu_ids))
    for j, r in picks:
        serving[c.configs.gpu[j]] += c.ev.gpus[j] * r
    started = int(np.maximum(held - before, 0.0)[~t.committed].sum()) if t.count > 1 else 0
    return PeriodPlan(
        period=p, hours=float(t.hours[p]),
        requests_per_s={s.name: float(s.demand.requests_per_s) for s in periods.slots[p]
                        if s.demand is not None and s.demand.requests_per_s is not None},
        deployments=_deployments(t.periods[p], picks),
        gpus_serving={gid: int(serving[g]) for g, gid in enumerate(c.gpu_ids) if serving[g] > 0},
        gpus_held={gid: int(held[g]) for g, gid in enumerate(c.gpu_ids) if held[g] > 0},
        usd_per_hour=float((np.nan_to_num(t.usd_per_gpu_hour) * held).sum()), gpus_started=started,
        slo={s.name: s.slo.model_dump(mode="json", exclude_none=True) for s in periods.slots[p]
             if not s.off})     # an off workload meets no target here


def autoscale(t: PeriodTables, picks: list[Picks]) -> list[Autoscale]:
    """Per deployment (workload and configuration with its batch: rows of the periods' tables
    alike), the fewest and most replicas it runs over the periods (0 where a period does not
    run it; a spot row's spares included), in the order of their rows."""
    counts: dict[tuple[str, str], list[int]] = {}
    spares: dict[tuple[str, str], int] = {}
    first: dict[tuple[str, str], int] = {}
    for p, per in enumerate(picks):
        c = t.periods[p]
        for j, r in per:
            key = (c.slot_names[int(c.slot[j])], "gpu=" + c.label(j).split("gpu=", 1)[1])
            k = spare_count(c, j)           # a spot row's spares run beside its serving replicas
            counts.setdefault(key, [0] * len(picks))[p] += r + k
            spares[key] = max(spares.get(key, 0), k)
            first[key] = min(first.get(key, j), j)
    return [Autoscale(w, d, min(n), max(n), spares[(w, d)])
            for (w, d), n in sorted(counts.items(), key=lambda x: (first[x[0]], x[0]))]
