"""A schedule over periods as one integer program (docs/workloads.md, "Demand over time:
schedules"). Periods p = 0..P-1 of h_p hours repeat as a cycle (the period before 0 is
P-1); rows j of period p's candidate table (its SLO case's, screened and pruned once, at the
case's busiest demand), GPU types g, committed types C (owned, or a term commitment) and
burst types R:

    y_pj in {0..N_pj} replicas, x_pj in {0,1}:   x_pj <= y_pj <= N_pj x_pj        (count)
    sum_{j in s} x_pj <= K                                   per slot and period   (count)
    sum_{j in s} min(CAP_j / D_ps, 1) y_pj >= 1              per slot and period   (share of D_ps)
    G_pg = sum_{j on g} GPUs_j (y_pj + k_pj x_pj)            GPUs running          (count)
    G_pg <= B_g                    g in C: B_g GPUs held all cycle (<= inventory_g)
    G_pg <= A_{p-k,g}, k = 0..L    g in R: A_pg GPUs held in period p, started L periods early
    U_pg >= A_pg - A_{p-1,g},  V_pg >= A_{p-1,g} - A_pg          started, stopped (count)
    sum_g U_pg <= max_started,  sum_g V_pg <= max_stopped           per period
    sum_{g in C} P_g B_g + sum_{g in R} P_g A_pg <= budget          per period   ($/hour)
    sum_{g in C} B_g + sum_{g in R} A_pg <= max_gpus                per period   (count)
    sum_j W_j (y_pj + k_pj x_pj) <= power cap                       per period   (W)

    minimise  sum_{g in C} P_g H B_g + sum_p h_p sum_{g in R} P_g A_pg + c_start sum_pg U_pg     ($)

A workload whose demand in period p is zero (D_ps = 0: off at night) has no variable and no
row in that period: it needs nothing there, and only committed GPUs, a start-up lag or a
stop limit keep GPUs held.

with N_pj the replicas period p's demand needs of row j alone (within the limits), k_pj the
spare replicas a spot deployment of row j carries in period p (planner/pricing.py, for the
period's N; 0 off spot: a slot with a spot row always has its choice binaries x_pj), CAP_j
its capacity at SLO, P_g $/GPU-hour, H = sum_p h_p, c_start $ per GPU started and L the
start-up lag in periods. A type with one period has nothing to start or stop.

With K = 1 (one configuration per workload, a plan's and a fleet's default) the same
program is written over options: a row alone runs exactly N_pj replicas, so y_pj = N_pj x_pj
and sum_{j in s} x_pj = 1, over the rows that cover D_ps alone and that no other row of the
workload and GPU type beats in period p on GPUs running (and watts under a power cap): the
same optimum, with a binary per (period, workload, GPU type) or so instead of a replica
variable and its binary per alive row (``options``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from constraints.formulation import Formulation, screen
from constraints.model import LinearModel
from constraints.prune import pruned
from constraints.schedule_options import MAX_SPLIT, Option, options, spares
from planner.candidates.schedule import PeriodTables
from planner.candidates.table import Candidates


@dataclass
class ScheduleFormulation:
    """The model and the map back to the tables: the backends read ``model``, ``hint`` and
    ``covering`` as of a plan's formulation. Rows j are rows of each period's own table."""

    tables: PeriodTables
    model: LinearModel = field(default_factory=LinearModel)
    alive: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))   # the first case's
    y: list[dict[int, int]] = field(default_factory=list)       # per period: row -> replicas variable
    x: list[dict[int, int]] = field(default_factory=list)       # per period: row -> choice variable
    opts: list[list[tuple[int, Option]]] = field(default_factory=list)   # per period: (binary, option) (K <= 2)
    held: dict[tuple[int, int], int] = field(default_factory=dict)   # (period, GPU type) -> A (burst)
    committed: dict[int, int] = field(default_factory=dict)     # GPU type -> B
    started: dict[tuple[int, int], int] = field(default_factory=dict)
    stopped: dict[tuple[int, int], int] = field(default_factory=dict)
    hint: dict[int, float] | None = None
    checked_hint: dict[int, float] | None = None    # a start for a backend that checks its answer beats it
    integral: bool = False         # every variable an integer: a backend may check a rounded answer exactly
    covering: bool = True
    size: dict[str, int] = field(default_factory=dict)

    @property
    def enumerated(self) -> bool:
        """Every workload's choice in every period is one of its options (no replica variables)."""
        return not any(self.y)


def alive_rows(c: Candidates, keep: np.ndarray | None = None) -> np.ndarray:
    """Rows of a case's table (at its busiest demand) that may serve in some period: screened
    as a plan's (memory, SLOs), then rows another row of the same slot and GPU type beats per
    replica (cost, GPUs, power, capacity: constraints/prune.py with replicas free, as when
    traffic splits; it may replace the beaten row in every period) are dropped, except those
    of ``keep`` (rows of this table) that pass the screen."""
    view = replace(c, max_configs=max(2, c.max_configs))
    f = Formulation(cands=view, covering=True)
    f.replicas = True
    screen(f)
    alive = f.alive[~pruned(f, 1)[f.alive]]
    return alive if keep is None or not len(keep) else np.union1d(alive, np.intersect1d(f.alive, keep))


def build(t: PeriodTables, limited: frozenset[tuple[int, int]] | None = None,
          keep: tuple[tuple[Candidates, int], ...] = ()) -> ScheduleFormulation:
    """The program; ``limited``: the (period, workload) pairs whose configuration count K is
    enforced (None: all). With K = 1 each period's choice per workload is one option of
    ``options`` (a binary, its replicas fixed). With K > 1 the solve enforces K lazily, as a
    fleet's (planner/plan/solve.py): without it a replica variable alone is the decision, no
    choice binary. ``keep``: (table, row) of the static fleet's deployments, never pruned
    from any SLO case's table that holds them (matched by label, ``_same_row``) and screens
    them in, so that the starting answer stays a schedule of the model: a pick another row
    beats in one case still serves that case's periods as the static fleet does."""
    f = ScheduleFormulation(tables=t)
    m, c = f.model, t.peak
    alive: dict[int, np.ndarray] = {}
    for p in range(t.count):
        case = t.case[p] if t.cases else 0
        if case not in alive:
            table = t.case_table(p)
            extra = [i for c, j in keep if (i := _same_row(table, c, j)) is not None]
            alive[case] = alive_rows(table, np.asarray(extra, dtype=np.int64))
    f.alive = alive[t.case[0] if t.cases else 0]
    types = sorted({int(g) for p, view in enumerate(t.periods)
                    for g in view.configs.gpu[alive[t.case[p] if t.cases else 0]]})
    period_names = [f"p{p}" for p in range(t.count)]
    lim = c.limits
    split = max(view.max_configs for view in t.periods)
    enumerated = split <= MAX_SPLIT
    top = {g: 0.0 for g in types}
    for p, view in enumerate(t.periods):
        f.y.append({})
        f.x.append({})
        f.opts.append([])
        tag = period_names[p]
        rows = alive[t.case[p] if t.cases else 0]
        gpu, gpus = view.configs.gpu, view.ev.gpus
        here: dict[int, float] = {}          # per type: the most GPUs of it the period's choices run
        k = spares(view)
        for s in range(view.n_slots):
            if idle(view, s):
                continue                     # off in this period: no replica, no row
            mine = rows[view.slot[rows] == s]
            slot = f"period={tag},slot={view.slot_names[s]}"
            most: dict[int, float] = {}          # per type: the most GPUs of it this workload runs here
            choices = options(view, mine, split, lim.power_cap_w is not None) if enumerated else None
            if choices is not None:
                xs = {}
                for o in choices:
                    z = m.var(f"option[{tag},{'+'.join(f'{r}x{view.label(j)}' for j, r in o.picks)}]", 0, 1,
                              integer=True)
                    f.opts[p].append((z, o))
                    xs[z] = 1.0
                    for t_ in np.flatnonzero(o.gpus).tolist():
                        most[t_] = max(most.get(t_, 0.0), float(o.gpus[t_]))
                m.row(f"one_option[{slot}]", "choice", xs, "==", 1.0, "count")
            else:
                _replicas(f, p, s, mine, limited)
                most = {g: float(sum(gpus[j] * (view.replica_cap[j] + k[j]) for j in mine[gpu[mine] == g]))
                        for g in types}
            for g, n in most.items():
                here[g] = here.get(g, 0.0) + n
        for g, n in here.items():
            top[g] = max(top[g], n)
    for g in types:
        gid = c.gpu_ids[g]
        ub = top[g] if gid not in lim.inventory else min(top[g], float(lim.inventory[gid]))
        ub = ub if lim.max_gpus is None else min(ub, float(lim.max_gpus))
        if t.committed[g]:
            f.committed[g] = m.var(f"committed[gpu={gid}]", 0, ub, integer=True)
        else:
            for p in range(t.count):
                f.held[p, g] = m.var(f"held[{period_names[p]},gpu={gid}]", 0, ub, integer=True)
    _serving(f, types, period_names)
    _switching(f, types, period_names)
    _limits(f, types, period_names)
    price = t.usd_per_gpu_hour
    obj: dict[int, float] = {b: float(price[g]) * t.cycle_hours for g, b in f.committed.items()}
    obj |= {a: float(price[g]) * float(t.hours[p]) for (p, g), a in f.held.items()}
    if t.options.usd_per_gpu_started:
        obj |= {u: float(t.options.usd_per_gpu_started) for u in f.started.values()}
    m.objective, m.objective_dimension, m.objective_sense, m.objective_name = obj, "usd", "min", "usd_per_cycle"
    f.integral = all(v.integer for v in m.vars)
    f.size = {"candidates": len(c), "rows_alive": int(sum(len(a) for a in alive.values())), "periods": t.count,
              "slo_cases": len(alive), "variables": len(m.vars), "rows": len(m.rows),
              "limited_pairs": t.count * c.n_slots if limited is None or enumerated else len(limited),
              "options": sum(len(o) for o in f.opts)}
    return f


def idle(view: Candidates, s: int) -> bool:
    """Workload s has no demand in the period of table ``view``: it needs no capacity there
    (no replica unless the GPUs held keep one, and its SLOs are vacuous; ``Slot.off``)."""
    return view.slots[s].off


def _replicas(f: ScheduleFormulation, p: int, s: int, mine: np.ndarray,
              limited: frozenset[tuple[int, int]] | None) -> None:
    """Workload s in period p with K > 1: a replica variable per row, its choice binary and
    the K row where the limit is enforced, and the demand row."""
    m, view = f.model, f.tables.periods[p]
    tag = f"p{p}"
    xs: dict[int, float] = {}
    # a spot row's spares sit on its choice binary: such a slot always has them
    enforced = limited is None or (p, s) in limited or bool((spares(view)[mine] > 0).any())
    for j in mine:
        n = float(view.replica_cap[j])
        label = f"{tag},{view.label(int(j))}"
        y = f.y[p][int(j)] = m.var(f"replicas[{label}]", 0, n, integer=True)
        if not enforced:
            continue
        x = f.x[p][int(j)] = m.var(f"x[{label}]", 0, 1, integer=True)
        m.row(f"replicas_at_least_one[{label}]", "choice", {x: 1.0, y: -1.0}, "<=", 0.0, "count")
        m.row(f"replicas_only_if_chosen[{label}]", "choice", {y: 1.0, x: -n}, "<=", 0.0, "count")
        xs[x] = 1.0
    slot = f"period={tag},slot={view.slot_names[s]}"
    if enforced:
        m.row(f"max_configurations[{slot}]", "choice", xs, "<=", float(view.max_configs), "count")
    demand = view.slots[s].demand
    assert demand is not None          # a schedule needs every workload's demand (resolve_periods)
    # the demand as a share served, each replica's share clipped at the whole demand (the same
    # integer points: a replica that covers D alone satisfies either form), so that a tiny D_ps
    # is a row of unit size and no solver meets it at y = 0 within its feasibility tolerance
    d = float(demand.value)
    m.row(f"demand[{slot}]", "demand", {f.y[p][int(j)]: min(float(view.capacity[j]) / d, 1.0) for j in mine},
          ">=", 1.0, "share")


def running(f: ScheduleFormulation, p: int, rows: list[int], per_replica: np.ndarray) -> dict[int, float]:
    """``per_replica[j]`` on the replicas of ``rows`` in period p and, for a spot row, its
    k_pj spares' share on its choice binary: what runs, serving or spare."""
    k = spares(f.tables.periods[p])
    out = {f.y[p][j]: float(per_replica[j]) for j in rows}
    for j in rows:
        if k[j] > 0:
            out[f.x[p][j]] = out.get(f.x[p][j], 0.0) + float(k[j] * per_replica[j])
    return out


def serving(f: ScheduleFormulation, p: int, g: int) -> dict[int, float]:
    """G_pg: the GPUs of type g running in period p (serving replicas and spot spares)."""
    c = f.tables.periods[p]
    return running(f, p, [j for j in f.y[p] if c.configs.gpu[j] == g], c.ev.gpus) | \
        {z: float(o.gpus[g]) for z, o in f.opts[p] if o.gpus[g] > 0}


def _serving(f: ScheduleFormulation, types: list[int], names: list[str]) -> None:
    t, m = f.tables, f.model
    lag = t.options.startup_periods if t.count > 1 else 0
    for p in range(t.count):
        for g in types:
            gid = t.peak.gpu_ids[g]
            use = serving(f, p, g)
            if g in f.committed:
                m.row(f"committed[{names[p]},gpu={gid}]", "schedule", {**use, f.committed[g]: -1.0}, "<=", 0.0,
                      "count")
                continue
            for k in sorted({(p - k) % t.count for k in range(min(lag, t.count - 1) + 1)}):
                m.row(f"held[{names[p]},since={names[k]},gpu={gid}]", "schedule", {**use, f.held[k, g]: -1.0}, "<=",
                      0.0, "count")


def _switching(f: ScheduleFormulation, types: list[int], names: list[str]) -> None:
    t, m = f.tables, f.model
    if t.count < 2:
        return
    for p in range(t.count):
        q = (p - 1) % t.count
        for g in types:
            if g in f.committed:
                continue
            gid, a, before = t.peak.gpu_ids[g], f.held[p, g], f.held[q, g]
            ub = m.vars[a].ub
            u = f.started[p, g] = m.var(f"started[{names[p]},gpu={gid}]", 0, ub, integer=True)
            v = f.stopped[p, g] = m.var(f"stopped[{names[p]},gpu={gid}]", 0, ub, integer=True)
            m.row(f"started[{names[p]},gpu={gid}]", "schedule", {a: 1.0, before: -1.0, u: -1.0}, "<=", 0.0, "count")
            m.row(f"stopped[{names[p]},gpu={gid}]", "schedule", {before: 1.0, a: -1.0, v: -1.0}, "<=", 0.0, "count")
        o = t.options
        if o.max_gpus_started_per_period is not None:
            m.row(f"max_started[{names[p]}]", "schedule", {u: 1.0 for (pp, _), u in f.started.items() if pp == p},
                  "<=", float(o.max_gpus_started_per_period), "count")
        if o.max_gpus_stopped_per_period is not None:
            m.row(f"max_stopped[{names[p]}]", "schedule", {v: 1.0 for (pp, _), v in f.stopped.items() if pp == p},
                  "<=", float(o.max_gpus_stopped_per_period), "count")


def _limits(f: ScheduleFormulation, types: list[int], names: list[str]) -> None:
    t, m = f.tables, f.model
    lim, price = t.peak.limits, t.usd_per_gpu_hour
    for p in range(t.count):
        held = {**{b: 1.0 for b in f.committed.values()}, **{a: 1.0 for (pp, _), a in f.held.items() if pp == p}}
        if lim.max_gpus is not None:
            m.row(f"max_gpus[{names[p]}]", "inventory", held, "<=", float(lim.max_gpus), "count")
        if lim.budget_usd_per_hour is not None:
            cost = {b: float(price[g]) for g, b in f.committed.items()}
            cost |= {a: float(price[g]) for (pp, g), a in f.held.items() if pp == p}
            m.row(f"budget[{names[p]}]", "budget", cost, "<=", float(lim.budget_usd_per_hour), "usd_per_hour")
        if lim.power_cap_w is not None:
            m.row(f"power[{names[p]}]", "power", running(f, p, list(f.y[p]), t.periods[p].ev.power_w) |
                  {z: o.watts for z, o in f.opts[p]}, "<=",
                  float(lim.power_cap_w), "watts")


Start = list[tuple[Candidates, int, int]]
"""A static fleet as a start: (a table of the schedule's, row, replicas) per deployment."""
START_TOLERANCE = 1e-9
"""A start is given only where every bound and row of the model holds within this (relative)."""


def assignment(f: ScheduleFormulation, static: Start) -> dict[int, float] | None:
    """The static fleet (each deployment a row of a table of the schedule's: the peak's, or a
    period's) as a starting schedule, or None when it is not one of the model's. Each GPU type
    held at the static fleet's count; in each period each workload either as the option that
    runs fewest GPUs among those running no more of any type (and no more watts) than the
    static fleet's deployments of it, or, in the replica model, as its own rows (matched by
    label; one the period's model lacks, not in its table or screened out, serves nothing there)
    capped at what the period needs of each alone. Checked against every row of the model
    (``START_TOLERANCE``): a start that misses a demand or a limit is no start."""
    t = f.tables
    if not static:
        return None
    n_types = len(t.peak.gpu_ids)
    vec = np.zeros((t.peak.n_slots, n_types))
    watts = np.zeros(t.peak.n_slots)
    for c, j, r in static:
        k, s = spares(c), int(c.slot[j])
        vec[s, int(c.configs.gpu[j])] += float(c.ev.gpus[j]) * (r + k[j])
        watts[s] += float(np.nan_to_num(c.ev.power_w[j])) * (r + k[j])
    values: dict[int, float] = {}
    for p, view in enumerate(t.periods):
        enumerated = {int(view.slot[o.picks[0][0]]) for _, o in f.opts[p]}
        for s in enumerated:
            z = _stand_in(f, p, s, vec[s], watts[s])
            if z is None:
                return None
            values[z] = 1.0
        for c, j, r in static:
            if int(c.slot[j]) in enumerated:
                continue
            i = _same_row(view, c, j)
            if i is None or i not in f.y[p]:
                continue                 # serves nothing here (held all the same); the check below
            values[f.y[p][i]] = float(min(r, view.replica_cap[i]))
            if i in f.x[p]:
                values[f.x[p][i]] = 1.0
    top = vec.sum(axis=0)
    values |= {b: float(top[g]) for g, b in f.committed.items()}
    values |= {a: float(top[g]) for (_, g), a in f.held.items()}
    dense = [0.0] * len(f.model.vars)
    for i, v in values.items():
        dense[i] = v
    return values if f.model.holds(dense, START_TOLERANCE) else None


def _stand_in(f: ScheduleFormulation, p: int, s: int, gpus: np.ndarray, watts: float) -> int | None:
    """The binary of workload s's option in period p that runs fewest GPUs among those running
    no more of any type than ``gpus`` (and, under a power cap, no more than ``watts``), or None."""
    view = f.tables.periods[p]
    power = view.limits.power_cap_w is not None
    best: tuple[float, int] | None = None
    for z, o in f.opts[p]:
        if int(view.slot[o.picks[0][0]]) != s or bool(np.any(o.gpus > gpus)):
            continue
        if power and o.watts > watts * (1 + 1e-9):
            continue
        if best is None or o.gpus.sum() < best[0]:
            best = (float(o.gpus.sum()), z)
    return None if best is None else best[1]


def _same_row(view: Candidates, c: Candidates, j: int) -> int | None:
    """Row j of table c as a row of ``view`` (the same row when view is c at another demand;
    else the row of the same workload and label), or None."""
    if view.ev is c.ev:
        return j
    label, s = c.label(j), int(c.slot[j])
    for i in np.flatnonzero(view.slot == s):
        if view.label(int(i)) == label:
            return int(i)
    return None


def decode(f: ScheduleFormulation, values: np.ndarray) -> tuple[list[list[tuple[int, int]]], np.ndarray, float]:
    """(row, replicas) per period, GPUs held per period and type, $ per cycle."""
    t = f.tables
    picks = [sorted([(j, int(round(values[y]))) for j, y in per.items() if values[y] > 0.5] +
                    [x for z, o in f.opts[p] if values[z] > 0.5 for x in o.picks]) for p, per in enumerate(f.y)]
    held = np.zeros((t.count, len(t.peak.gpu_ids)))
    for g, b in f.committed.items():
        held[:, g] = round(values[b])
    for (p, g), a in f.held.items():
        held[p, g] = round(values[a])
    cost = f.model.objective_at(values)
    return picks, held, cost


def over_limit(f: ScheduleFormulation, picks: list[list[tuple[int, int]]]) -> set[tuple[int, int]]:
    """The (period, workload) pairs whose picks use more configurations than K."""
    out = set()
    for p, chosen in enumerate(picks):
        c = f.tables.periods[p]
        for s in range(c.n_slots):
            if sum(1 for j, _ in chosen if c.slot[j] == s) > c.max_configs:
                out.add((p, s))
    return out
