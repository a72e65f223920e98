"""The independent oracle of a schedule (docs/workloads.md, "Demand over time: schedules"),
by enumeration and in its own terms: no constraint model, no code shared with
constraints/schedule.py. Per period, on that period's table (its SLO case's rows, each
screened against the targets the period's slots state), every set of at most K rows per workload with every
replica count up to what the period's demand needs of a row alone, kept when it covers the
demand (a spot row's spares, read from its rule for the period's need, run beside it: its
GPUs and watts count them; a workload of zero demand in the period has one option there,
no replica); the workloads' options joined into the period's fleets (kept when they meet the
power cap, and only those no other fleet of the period beats on GPUs of every type and
power); then every choice of one fleet per period, each priced with the cheapest holding
of GPUs it allows: a committed type held all cycle at its busiest period's count, a burst
type held in period p at least as many as serve in periods p..p+L (started L periods
before serving), at most the inventory, every held count tried from that floor to the
cycle's largest floor when starting or stopping GPUs costs or is limited. Tiny cases only."""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING

import numpy as np

from planner.backends.base import Status
from planner.backends.exhaustive import (
    MAX_FLEET_STATES,
    _choices,
    _in_time,
    _OutOfTime,
    _too_many,
    oracle_spares,
    replica_bounds,
)

if TYPE_CHECKING:
    from planner.candidates.schedule import PeriodTables
    from planner.candidates.table import Candidates

SLACK = 1e-12
"""The oracle's own relative tolerance on a limit (a budget of exactly n GPUs' worth buys n)."""

Fleet = tuple[tuple[tuple[int, int], ...], np.ndarray, float]     # (row, replicas) picks, GPUs per type, watts


def solve_schedule(t: PeriodTables, deadline: float | None = None
                   ) -> tuple[Status, list[list[tuple[int, int]]], np.ndarray, float]:
    """(status, picks per period, GPUs held per period and type, $ per cycle)."""
    try:
        return _solve(t, deadline)
    except _OutOfTime:
        return Status.TIME_LIMIT, [], np.zeros((0, 0)), math.nan


def _solve(t: PeriodTables, deadline: float | None) -> tuple[Status, list[list[tuple[int, int]]], np.ndarray, float]:
    n_t = len(t.peak.gpu_ids)
    fleets: list[list[Fleet]] = []
    for c in t.periods:          # each period's table: its own SLO case's rows and capacities
        view, ev, load = c, c.ev, c.load
        assert load is not None
        ok, top, spares = _usable(c)
        per_slot: list[list[tuple[tuple[int, int], ...]]] = []
        for k, s in enumerate(view.slots):
            assert s.demand is not None
            d = float(s.demand.value)
            if d == 0.0:                     # off in this period: served by no replica at all
                per_slot.append([()])
                continue
            rows = [int(j) for j in np.nonzero(ok & (c.slot == k))[0] if top[j] >= 1]
            options: list[tuple[tuple[int, int], ...]] = []
            for subset, reps in _choices(rows, top, c.max_configs):
                _in_time(deadline)
                if subset and sum(load.tokens_per_s[j] * r for j, r in zip(subset, reps)) >= d * (1 - SLACK):
                    options.append(tuple(zip(subset, reps)))
            per_slot.append(options)
        if math.prod(float(len(o)) for o in per_slot) > MAX_FLEET_STATES:
            raise _too_many(math.prod(float(len(o)) for o in per_slot))
        period = []
        for combo in itertools.product(*per_slot):
            picks = tuple(x for option in combo for x in option)
            gpus = np.zeros(n_t)
            for j, r in picks:
                gpus[c.configs.gpu[j]] += ev.gpus[j] * (r + spares[j])
            watts = float(sum(np.nan_to_num(ev.power_w[j]) * (r + spares[j]) for j, r in picks))
            if c.limits.power_cap_w is None or watts <= c.limits.power_cap_w * (1 + SLACK):
                period.append((picks, gpus, watts))
        fleets.append(_undominated(period))
    if math.prod(float(len(p)) for p in fleets) > MAX_FLEET_STATES:
        raise _too_many(math.prod(float(len(p)) for p in fleets))
    best: tuple[float, list[list[tuple[int, int]]], np.ndarray] | None = None
    for choice in itertools.product(*fleets):
        _in_time(deadline)
        serving = np.array([f[1] for f in choice])
        held = _cheapest_holding(t, serving, deadline)
        if held is not None and (best is None or held[0] < best[0]):
            best = (held[0], [list(f[0]) for f in choice], held[1])
    if best is None:
        return Status.INFEASIBLE, [], np.zeros((0, 0)), math.nan
    return Status.OPTIMAL, best[1], best[2], best[0]


def _usable(c: Candidates) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of a period's table: whether it fits and meets the targets the period's slots
    state at its capacity, the most replicas worth enumerating (what the period's demand needs
    of it alone, within the limits) and its spot spares (run beside it wherever it runs)."""
    load = c.load
    assert load is not None
    ok = c.ev.fits & (load.rate > 0)
    for k, s in enumerate(c.slots):          # the period's targets, read from its slots
        for target in s.targets:
            ok &= (c.slot != k) | (load.get(target.metric, target.statistic) <= target.seconds)
    lo, hi = replica_bounds(c)
    return ok, np.minimum(hi, np.where(np.isfinite(lo), lo, 0.0)), np.nan_to_num(oracle_spares(c))


def solve_static(t: PeriodTables, deadline: float | None = None
                 ) -> tuple[Status, list[tuple[int, int, int]], float]:
    """The static fleet, by enumeration: one fleet of deployments held all cycle that serves
    every period's demand under that period's targets (status, (period, row, replicas) per
    deployment, a table holding its row, and $ per cycle). A configuration (a workload's row
    label) serves in a period what that period's table gives it at the period's targets, and
    nothing where the table lacks it or it misses them; its GPUs, watts and spares are the most
    any period gives it. Per workload every set of at most K configurations with every replica
    count up to the most a period needs of one alone, kept when it covers every period; the
    workloads' sets joined, kept within the power cap, and priced by the cheapest holding of
    the same GPUs in every period."""
    try:
        return _static(t, deadline)
    except _OutOfTime:
        return Status.TIME_LIMIT, [], math.nan


def _static(t: PeriodTables, deadline: float | None) -> tuple[Status, list[tuple[int, int, int]], float]:
    n_t, n_p = len(t.peak.gpu_ids), t.count
    index: dict[tuple[int, str], int] = {}
    home: list[tuple[int, int]] = []
    usable = [_usable(c) for c in t.periods]
    for p, c in enumerate(t.periods):
        for j in np.flatnonzero(usable[p][0]).tolist():
            if index.setdefault((int(c.slot[j]), c.label(j)), len(home)) == len(home):
                home.append((p, j))
    n = len(home)
    tokens, top = np.zeros((n_p, n)), np.zeros(n)
    gpus, watts, spare, gpu = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64)
    for p, c in enumerate(t.periods):
        ok, most, k = usable[p]
        assert c.load is not None
        for j in np.flatnonzero(ok).tolist():
            i = index[int(c.slot[j]), c.label(j)]
            tokens[p, i] = float(c.load.tokens_per_s[j])
            top[i] = max(top[i], float(most[j]))
            gpus[i] = max(gpus[i], float(c.ev.gpus[j]))
            watts[i] = max(watts[i], float(np.nan_to_num(c.ev.power_w[j])))
            spare[i] = max(spare[i], float(k[j]))
            gpu[i] = int(c.configs.gpu[j])
    per_slot = []
    for s in range(t.peak.n_slots):
        need = [float(v.slots[s].demand.value) for v in t.periods]      # type: ignore[union-attr]
        mine = [i for i, (s2, _) in enumerate(index) if s2 == s and top[i] >= 1]
        options = []
        for subset, reps in _choices(mine, top, t.peak.max_configs):
            _in_time(deadline)
            if subset and all(sum(tokens[p, i] * r for i, r in zip(subset, reps)) >= need[p] * (1 - SLACK)
                              for p in range(n_p)):
                options.append(tuple(zip(subset, reps)))
        per_slot.append(options)
    if math.prod(float(len(o)) for o in per_slot) > MAX_FLEET_STATES:
        raise _too_many(math.prod(float(len(o)) for o in per_slot))
    cap = t.peak.limits.power_cap_w
    best: tuple[float, tuple[tuple[int, int], ...]] | None = None
    for combo in itertools.product(*per_slot):
        _in_time(deadline)
        picks = tuple(x for option in combo for x in option)
        run = np.zeros(n_t)
        for i, r in picks:
            run[gpu[i]] += gpus[i] * (r + spare[i])
        if cap is not None and sum(watts[i] * (r + spare[i]) for i, r in picks) > cap * (1 + SLACK):
            continue
        held = _cheapest_holding(t, np.tile(run, (n_p, 1)), deadline)
        if held is not None and (best is None or held[0] < best[0]):
            best = (held[0], picks)
    if best is None:
        return Status.INFEASIBLE, [], math.nan
    return Status.OPTIMAL, [(*home[i], r) for i, r in best[1]], best[0]


def _undominated(fleets: list[Fleet]) -> list[Fleet]:
    """The fleets no other one beats (no more GPUs of any type, no more watts, one of them fewer;
    of equal ones the first): only GPU counts and watts reach the cost and the limits."""
    out: list[Fleet] = []
    for i, (picks, g, w) in enumerate(fleets):
        beaten = False
        for k, (_, g2, w2) in enumerate(fleets):
            if k != i and np.all(g2 <= g) and w2 <= w and (np.any(g2 < g) or w2 < w or k < i):
                beaten = True
                break
        if not beaten:
            out.append((picks, g, w))
    return out


def _cheapest_holding(t: PeriodTables, serving: np.ndarray, deadline: float | None
                      ) -> tuple[float, np.ndarray] | None:
    """($ per cycle, GPUs held per period and type) of the cheapest holding that serves
    ``serving`` (periods x types) within the limits, or None."""
    c, o = t.peak, t.options             # the limits and GPU types every period's table shares
    periods, n_t = serving.shape
    lim = c.limits
    lag = min(o.startup_periods, periods - 1) if periods > 1 else 0
    floor = np.zeros_like(serving)
    for p in range(periods):
        floor[p] = serving[[(p + k) % periods for k in range(lag + 1)]].max(axis=0)
    committed = t.committed
    floor[:, committed] = serving[:, committed].max(axis=0)       # committed: held all cycle at the busiest count
    for g, gid in enumerate(c.gpu_ids):
        if gid in lim.inventory and floor[:, g].max() > lim.inventory[gid]:
            return None
    switching = periods > 1 and (o.usd_per_gpu_started > 0 or o.max_gpus_started_per_period is not None
                                 or o.max_gpus_stopped_per_period is not None)
    burst = [g for g in range(n_t) if not committed[g] and floor[:, g].max() > 0]
    cells = [(p, g) for g in burst for p in range(periods)] if switching else []
    ranges = [range(int(floor[p, g]), int(floor[:, g].max()) + 1) for p, g in cells]
    if math.prod(float(len(r)) for r in ranges) > MAX_FLEET_STATES:
        raise _too_many(math.prod(float(len(r)) for r in ranges))
    best: tuple[float, np.ndarray] | None = None
    for values in itertools.product(*ranges):
        _in_time(deadline)
        held = floor.copy()
        for (p, g), v in zip(cells, values):
            held[p, g] = v
        cost = _cost(t, held)
        if cost is not None and (best is None or cost < best[0]):
            best = (cost, held)
    return best


def _cost(t: PeriodTables, held: np.ndarray) -> float | None:
    """$ per cycle of holding ``held`` (periods x types), or None past a limit."""
    c, o = t.peak, t.options
    lim, price, hours = c.limits, t.usd_per_gpu_hour, t.hours
    periods = held.shape[0]
    burst = ~t.committed
    per_hour = np.nan_to_num(price) * held             # $/hour per period and type
    if lim.budget_usd_per_hour is not None and per_hour.sum(axis=1).max() > lim.budget_usd_per_hour * (1 + SLACK):
        return None
    if lim.max_gpus is not None and held.sum(axis=1).max() > lim.max_gpus:
        return None
    started = 0.0
    if periods > 1:
        for p in range(periods):
            up = np.maximum(held[p] - held[p - 1], 0.0)[burst]
            down = np.maximum(held[p - 1] - held[p], 0.0)[burst]
            if o.max_gpus_started_per_period is not None and up.sum() > o.max_gpus_started_per_period:
                return None
            if o.max_gpus_stopped_per_period is not None and down.sum() > o.max_gpus_stopped_per_period:
                return None
            started += float(up.sum())
    return float((per_hour * hours[:, None]).sum()) + o.usd_per_gpu_started * started

