"""A demand profile resolved (docs/workloads.md, "Demand over time: schedules"): the periods
every workload shares, each workload's demand in each period (in the unit of its stated
demand: output tokens/s of an open loop) and its latency targets there (its own slo, or
the period's), and which GPU types are committed (held and paid in every period) and which
are burst (held, and paid, in the periods they run)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from planner.errors import InputError
from planner.resolve.problem import Problem, Slot
from planner.resolve.workload import DemandSpec, targets, trace_figures
from planner.schemas.fleet import FleetSpec
from planner.schemas.plan import MAX_DEMAND_TOKENS_PER_S, Demand, PlanSpec
from planner.schemas.schedule import Period, ScheduleOptions, TraceShape
from planner.schemas.slo import STATISTICS, Percentiles, Slo
from planner.yamlio import Document

Factors = tuple[tuple[float, ...], np.ndarray, tuple[tuple[Slo, str] | None, ...]]
"""Per period of a workload's profile: hours, rate over the stated rate, its own SLO and its path (or None)."""

HOURS_TOLERANCE = 1e-9
"""Two workloads' periods are the same when their hours agree within this (relative)."""


@dataclass(frozen=True)
class Periods:
    """The periods of a schedule and what each slot must serve in each."""

    hours: tuple[float, ...]                      # per period
    slots: tuple[tuple[Slot, ...], ...]           # per period: the problem's slots at that period's demand
    committed: tuple[bool, ...]                   # per GPU of the problem's table
    options: ScheduleOptions
    profiled: tuple[str, ...] = ()                # workloads whose demand varies (the others keep their rate)

    @property
    def count(self) -> int:
        return len(self.hours)

    @property
    def cycle_hours(self) -> float:
        return float(sum(self.hours))

    def demand(self) -> np.ndarray:
        """(periods, slots): each slot's demand per period, in its capacity's unit."""
        return np.array([[s.demand.value if s.demand is not None else np.nan for s in slots] for slots in self.slots])

    def peak(self, members: tuple[int, ...] | None = None) -> tuple[Slot, ...]:
        """The slots at their own busiest period's demand (of ``members``, default every
        period): what a static fleet is sized for."""
        rows = list(range(self.count)) if members is None else list(members)
        top = np.argmax(np.nan_to_num(self.demand()[rows], nan=0.0), axis=0)
        return tuple(self.slots[rows[int(top[s])]][s] for s in range(len(self.slots[0])))

    def cases(self) -> tuple[int, ...]:
        """Per period, its SLO case: periods whose workloads all have the same latency targets
        share one (numbered in order of first appearance); one case when no period states its own."""
        # a workload off in a period (zero demand) has no target there: it fits any case
        keys = [tuple(None if s.off else s.slo for s in slots) for slots in self.slots]
        first: list[list[Slo | None]] = []
        out = []
        for k in keys:
            for i, c in enumerate(first):
                if all(a is None or b is None or a == b for a, b in zip(k, c)):
                    first[i] = [b if a is None else a for a, b in zip(k, c)]
                    out.append(i)
                    break
            else:
                out.append(len(first))
                first.append(list(k))
        return tuple(out)

    def strictest(self) -> tuple[Slot, ...]:
        """Each slot at its busiest demand under every target any period states for it (per
        metric and statistic the smallest, the smallest utilisation ceiling): a fleet meeting
        these meets each period's targets at each period's demand (docs/workloads.md)."""
        return tuple(under_every_target(slot, [slots[s].slo for slots in self.slots if not slots[s].off])
                     for s, slot in enumerate(self.peak()))


def under_every_target(slot: Slot, slos: list[Slo]) -> Slot:
    """``slot`` under every target of ``slos`` (its periods' SLOs; ``strictest_slo``), located
    at its profile's SLOs; ``slot`` itself where they are all one SLO."""
    if all(x == slos[0] for x in slos):
        return slot
    merged = strictest_slo(slos)
    return replace(slot, slo=merged, targets=targets(merged, f"{slot.path}.demand.profile[*].slo"))


def strictest_slo(slos: list[Slo]) -> Slo:
    """One SLO holding every target of ``slos``: per metric and statistic the smallest."""
    fields: dict[str, object] = {"max_utilization": min(x.max_utilization for x in slos)}
    for key in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_latency_ms"):
        stats: dict[str, float] = {}
        for x in slos:
            v = getattr(x, key)
            for stat, ms in ({"mean": v} if isinstance(v, (int, float)) else
                             {} if v is None else {k: getattr(v, k) for k in STATISTICS}).items():
                if ms is not None:
                    stats[stat] = min(stats.get(stat, float(ms)), float(ms))
        if stats:
            fields[key] = Percentiles(**stats)
    return Slo.model_validate(fields)


def scaled(d: DemandSpec, factor: float) -> DemandSpec:
    """An open-loop demand at ``factor`` times its rate (the same arrival process)."""
    rps = None if d.requests_per_s is None else d.requests_per_s * factor
    return replace(d, value=d.value * factor, requests_per_s=rps)


def resolve_periods(spec: PlanSpec | FleetSpec, problem: Problem, doc: Document | None = None) -> Periods:
    """The periods of an instance's profiles, or a located input error: every profiled
    workload must use the same periods, and the schedule's program covers cost-minimising,
    aggregated instances without a node limit or a fleet running today (docs/workloads.md).
    With the instance's ``doc``, an error names the line of its YAML path, as a schema error
    does."""
    try:
        return _periods(spec, problem)
    except InputError as e:
        raise _on_line(e, doc) from None


def _on_line(e: InputError, doc: Document | None) -> InputError:
    """``e`` with the line of its YAML path in ``doc``, as a schema error has (in its text too)."""
    if doc is None or e.line is not None or not e.path:
        return e
    line = doc.line_of(tuple(int(i) if i else k for k, i in re.findall(r"([^.\[\]]+)|\[(\d+)\]", e.path)))
    return type(e)(e.message, file=e.file, path=e.path, value=e.value, accepted=e.accepted, line=line)


def _periods(spec: PlanSpec | FleetSpec, problem: Problem) -> Periods:
    where: dict[str, Any] = {"file": problem.file}
    _supported(spec, problem, where)
    given = _given(spec)
    factors: list[Factors | None] = []
    for (d, path, w), slot in zip(given, problem.slots):
        if d is None or d.profile is None:
            factors.append(None)
            continue
        assert slot.demand is not None
        factors.append(_factors(d, slot, w, path, where))
    named = [(path, f) for (_, path, _), f in zip(given, factors) if f is not None]
    if not named:
        first = given[0][1]
        raise InputError("no demand profile: a schedule needs the rate over time", path=f"{first}.demand.profile",
                         accepted="demand: {requests_per_s: R, profile: [{hours: H, multiplier: M}, ...]}", **where)
    hours = named[0][1][0]
    for path, (h, _, _) in named[1:]:
        if len(h) != len(hours) or not np.allclose(h, hours, rtol=HOURS_TOLERANCE, atol=0.0):
            raise InputError(f"its periods differ from {named[0][0]}.demand.profile's", path=f"{path}.demand.profile",
                             value=list(h), accepted=f"the same hours per period: {list(hours)}", **where)
    for (_, path, _), slot, f in zip(given, problem.slots, factors):
        _within_limit(slot, f, path, where)
    per_period = []
    for p in range(len(hours)):
        per_period.append(tuple(slot if f is None or slot.demand is None else
                                _in_period(slot, scaled(slot.demand, float(f[1][p])), f[2][p])
                                for (_, path, _), slot, f in zip(given, problem.slots, factors)))
    return Periods(hours=tuple(float(h) for h in hours), slots=tuple(per_period),
                   committed=_committed(spec.schedule, problem, where), options=spec.schedule,
                   profiled=tuple(s.name for s, f in zip(problem.slots, factors) if f is not None))


def _in_period(slot: Slot, demand: DemandSpec, slo: tuple[Slo, str] | None) -> Slot:
    """A workload's slot in a period: its demand there and, where the period states its own
    SLO (other than the workload's), the period's targets (located at ``slo``'s path). A
    period of zero demand needs no replica of it, so its targets are vacuous there: it keeps
    the workload's own, which binds nothing either (``Periods.cases`` fits the period into any
    case, ``Periods.strictest`` and ``at_peak`` leave it out)."""
    if slo is None or slo[0] == slot.slo or demand.value == 0.0:
        return replace(slot, demand=demand)
    return replace(slot, demand=demand, slo=slo[0], targets=targets(slo[0], slo[1]))


def at_peak(spec: PlanSpec | FleetSpec, problem: Problem, doc: Document | None = None) -> Problem:
    """What `planner plan` and `planner fleet` solve for an instance whose demand has a profile
    (docs/workloads.md section 8): a fleet it can run all day, with a note saying so;
    ``problem`` itself where no workload has a profile. Each profiled workload at its busiest
    period's rate under that period's targets; where some of its periods state other targets,
    under every target its periods state (per metric and statistic the smallest,
    ``strictest_slo``), so that a quieter period with a stricter SLO is served too: a fleet that
    serves every period, not proven the cheapest such fleet (`planner schedule` proves that one,
    its static fleet, constraints/schedule_static.py). The instance stays one plan or fleet,
    solved, checked and explained by the one path. Schedule settings (``schedule:``, other
    than the defaults) where no workload has a profile are a located error: no schedule is
    solved from such a file, by this or by `planner schedule`, so they would change nothing."""
    where: dict[str, Any] = {"file": problem.file}
    if spec.schedule != ScheduleOptions() and not any(d is not None and d.profile is not None
                                                       for d, _, _ in _given(spec)):
        raise _on_line(InputError(
            "schedule settings without a demand profile: no schedule is solved, so they would change nothing",
            path="schedule", accepted="a workload's demand profile (demand: {requests_per_s: R, profile: [{hours: H, "
            "multiplier: M}, ...]}, then `planner schedule FILE`), or no schedule block", **where), doc)
    slots, notes = list(problem.slots), []
    for k, ((d, path, w), slot) in enumerate(zip(_given(spec), problem.slots)):
        if d is None or d.profile is None or slot.demand is None:
            continue
        f = _factors(d, slot, w, path, where)
        _within_limit(slot, f, path, where)
        top = int(np.argmax(f[1]))
        busiest = _in_period(slot, scaled(slot.demand, float(f[1][top])), f[2][top])
        slots[k] = under_every_target(busiest, [slot.slo if x is None else x[0]
                                                for p, x in enumerate(f[2]) if f[1][p] > 0.0])
        several = slots[k] is not busiest         # its periods state other targets
        rps = slots[k].demand.requests_per_s     # type: ignore[union-attr]
        tail = ("under every target its periods state (the strictest of each): a fleet that serves every "
                "period, not proven the cheapest one" if several else "the fleet a static plan runs all day")
        notes.append(f"{path}.demand.profile: planned at its busiest period, period {top + 1} of {len(f[0])} "
                     f"({f[0][top]:g} h, {rps:,.4g} requests/s, {f[1][top]:.4g} x the stated rate), {tail}; "
                     "`planner schedule FILE` plans each period and its saving")
    if not notes:
        return problem
    return replace(problem, slots=tuple(slots), notes=problem.notes + tuple(notes))


def _given(spec: PlanSpec | FleetSpec) -> list[tuple[Demand | None, str, Any]]:
    """(its demand, its YAML path, the workload) per workload of an instance, in slot order."""
    if isinstance(spec, FleetSpec):
        return [(w.demand, f"workloads[{i}]", w) for i, w in enumerate(spec.workloads)]
    return [(spec.workload.demand, "workload", spec.workload)]


def _within_limit(slot: Slot, f: Factors | None, path: str,
                  where: dict[str, Any]) -> None:
    """A located error where a period's rate passes the demand limit of a stated rate."""
    top = slot.demand.value * float(f[1].max()) if f is not None and slot.demand is not None else 0.0
    if top > MAX_DEMAND_TOKENS_PER_S:
        raise InputError(f"a period's rate is {top:.3g} output tokens/s, above "
                         f"the limit of {MAX_DEMAND_TOKENS_PER_S:.0e}", path=f"{path}.demand.profile",
                         accepted="smaller rates or multipliers", **where)


def _factors(d: Demand, slot: Slot, w: Any, path: str, where: dict[str, Any]) -> Factors:
    """(hours, rate / the stated rate, its own SLO and that SLO's YAML path, or None) per
    period of one workload's profile."""
    assert slot.demand is not None and d.profile is not None
    base = slot.demand
    if isinstance(d.profile, TraceShape):
        hours, factors = _trace_shape(d.profile, w, path, where)
        return hours, factors, _trace_slos(d.profile, f"{path}.demand.profile", where)
    out = np.array([_factor(p, base, slot) for p in d.profile])
    if not out.max() > 0.0:
        raise InputError("every period's demand is zero: a profile needs some period with demand",
                         path=f"{path}.demand.profile", value=[float(x) for x in out],
                         accepted="a positive rate or multiplier in at least one period (0 turns the workload off "
                         "in a period)", **where)
    return tuple(p.hours for p in d.profile), out, tuple(
        None if p.slo is None else (p.slo, f"{path}.demand.profile[{k}].slo") for k, p in enumerate(d.profile))


def _trace_slos(shape: TraceShape, path: str, where: dict[str, Any]) -> tuple[tuple[Slo, str] | None, ...]:
    """Per period of a trace-shaped profile, the SLO of the run ``slos[k]`` that covers it (and
    its path), or None; a located error where a run starts or ends past the last period, ends
    before it starts, or overlaps an earlier run."""
    out: list[tuple[Slo, str] | None] = [None] * shape.periods
    given: list[int | None] = [None] * shape.periods
    for k, run in enumerate(shape.slos):
        at = f"{path}.slos[{k}]"
        if run.first >= shape.periods:
            raise InputError(f"past the profile's last period ({shape.periods} periods, numbered from 0)",
                             path=f"{at}.first", value=run.first, accepted=f"0..{shape.periods - 1}", **where)
        if run.last >= shape.periods:
            raise InputError(f"past the profile's last period ({shape.periods} periods, numbered from 0)",
                             path=f"{at}.last", value=run.last, accepted=f"0..{shape.periods - 1}", **where)
        if run.last < run.first:
            raise InputError(f"ends before its first period, {run.first}", path=f"{at}.last", value=run.last,
                             accepted=f"{run.first}..{shape.periods - 1}", **where)
        for p in range(run.first, run.last + 1):
            if given[p] is not None:
                raise InputError(f"period {p} already has its SLO from {path}.slos[{given[p]}]", path=at,
                                 value=[run.first, run.last], accepted="runs of periods that do not overlap", **where)
            given[p], out[p] = k, (run.slo, f"{at}.slo")
    return tuple(out)


def _factor(p: Period, base: DemandSpec, slot: Slot) -> float:
    if p.multiplier is not None:
        return p.multiplier
    if p.requests_per_s is not None:
        return p.requests_per_s * slot.output_tokens / base.value
    assert p.output_tokens_per_s is not None
    return p.output_tokens_per_s / base.value


def _trace_shape(shape: TraceShape, w: Any, path: str, where: dict[str, Any]) -> tuple[tuple[float, ...], np.ndarray]:
    """The workload trace's requests counted in ``shape.periods`` equal bins of its span, each
    bin's count over the busiest bin's (the stated rate is the busiest period's)."""
    if getattr(w, "trace", None) is None:
        raise InputError("a profile from a trace's shape needs the workload's trace", path=f"{path}.demand.profile",
                         accepted="trace: FILE in the workload, or periods [{hours, multiplier}, ...]", **where)
    part, _ = trace_figures(w, where["file"], path)
    t = np.asarray(part.time_s, dtype=float)
    span = float(t.max() - t.min()) if t.size else 0.0
    if span <= 0.0:
        raise InputError("the trace's requests arrive at one instant: it has no shape over time",
                         path=f"{path}.demand.profile", accepted="a trace spanning some time, or periods", **where)
    counts, _ = np.histogram(t, bins=shape.periods, range=(float(t.min()), float(t.max())))
    # a bin without requests is a period of zero demand (the workload is off then)
    hours = tuple([shape.hours / shape.periods] * shape.periods)
    return hours, counts.astype(float) / float(counts.max())


def _committed(options: ScheduleOptions, problem: Problem, where: dict[str, Any]) -> tuple[bool, ...]:
    """Per GPU entry of the table, whether it is committed: owned, a term offer, or listed in
    ``schedule.committed``; a located error where a listed name is not a searched entry or is
    a spot offer (burst capacity: it may be taken back, so it is never held under a term)."""
    ids = problem.table.ids
    spot = {gid for g, gid in enumerate(ids) if problem.offer_kind(g) == "spot"}
    for i, name in enumerate(options.committed):
        if name not in ids or name in spot:
            why = ("a spot offer is burst capacity, preempted at the provider's will, never committed" if name in spot
                   else "not a searched GPU")
            raise InputError(why, path=f"schedule.committed[{i}]", value=name,
                             accepted=", ".join(gid for gid in ids if gid not in spot), **where)
    return tuple(problem.committed(g) or gid in options.committed for g, gid in enumerate(ids))


def _supported(spec: PlanSpec | FleetSpec, problem: Problem, where: dict[str, Any]) -> None:
    """What the schedule's program does not cover yet, refused where the file says it."""
    if isinstance(spec, FleetSpec):
        if spec.phases != ("cost_per_hour",):
            raise InputError("a schedule minimises the cost of its periods", path="objective", value=spec.objective,
                             accepted="cost_per_hour", **where)
        if spec.current:
            raise InputError("a schedule starts from no fleet running today", path="current",
                             accepted="no current (the schedule repeats every cycle)", **where)
    elif spec.objective not in ("cost_per_hour", "cost_per_million_tokens"):
        raise InputError("a schedule minimises the cost of its periods", path="objective", value=spec.objective,
                         accepted="cost_per_hour, cost_per_million_tokens", **where)
    if spec.search.max_nodes is not None:
        raise InputError("a schedule does not pack nodes per period yet", path="search.max_nodes",
                         value=spec.search.max_nodes, accepted="no max_nodes (limit GPUs with search.max_gpus)",
                         **where)
    for s in problem.slots:
        if s.disaggregation != "never":
            raise InputError("a schedule plans aggregated replicas only", path=f"{s.path}.disaggregation"
                             if s.path != "workload" else "disaggregation", value=s.disaggregation,
                             accepted="never", **where)
        if s.demand is None:
            raise InputError("a schedule needs every workload's demand", path=f"{s.path}.demand",
                             accepted="demand: {requests_per_s: R, profile: [...]}", **where)
