"""A schedule over periods as one integer program (docs/workloads.md, "Demand over time:
schedules"). Periods p = 0..P-1 of h_p hours repeat as a cycle (the period before 0 is
P-1); rows j of the candidate table (screened and pruned once, at the busiest demand), GPU
types g, committed types C (owned, or a term commitment) and burst types R:

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

with N_pj the replicas period p's demand needs of row j alone (within the limits), k_pj the
spare replicas a spot deployment of row j carries in period p (planner/pricing.py, for the
period's N; 0 off spot: a slot with a spot row always has its choice binaries x_pj), CAP_j
its capacity at SLO, P_g $/GPU-hour, H = sum_p h_p, c_start $ per GPU started and L the
start-up lag in periods. A type with one period has nothing to start or stop."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from constraints.formulation import Formulation, screen
from constraints.model import LinearModel
from constraints.prune import pruned
from planner.candidates.schedule import PeriodTables
from planner.candidates.table import Candidates


@dataclass
class ScheduleFormulation:
    """The model and the map back to the table: the backends read ``model``, ``hint`` and
    ``covering`` as of a plan's formulation."""

    tables: PeriodTables
    model: LinearModel = field(default_factory=LinearModel)
    alive: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    y: list[dict[int, int]] = field(default_factory=list)       # per period: row -> replicas variable
    x: list[dict[int, int]] = field(default_factory=list)       # per period: row -> choice variable
    held: dict[tuple[int, int], int] = field(default_factory=dict)   # (period, GPU type) -> A (burst)
    committed: dict[int, int] = field(default_factory=dict)     # GPU type -> B
    started: dict[tuple[int, int], int] = field(default_factory=dict)
    stopped: dict[tuple[int, int], int] = field(default_factory=dict)
    hint: dict[int, float] | None = None
    covering: bool = True
    size: dict[str, int] = field(default_factory=dict)


def alive_rows(t: PeriodTables) -> np.ndarray:
    """Rows that may serve in some period: screened as a plan's (memory, SLOs), then rows
    another row of the same slot and GPU type beats per replica (cost, GPUs, power,
    capacity: constraints/prune.py with replicas free, as when traffic splits; it may replace
    the beaten row in every period) are dropped."""
    view = replace(t.peak, max_configs=max(2, t.peak.max_configs))
    f = Formulation(cands=view, covering=True)
    f.replicas = True
    screen(f)
    return f.alive[~pruned(f, 1)[f.alive]]


def build(t: PeriodTables, limited: frozenset[tuple[int, int]] | None = None,
          keep: tuple[int, ...] = ()) -> ScheduleFormulation:
    """The program; ``limited``: the (period, workload) pairs whose configuration count K is
    enforced (None: all). The solve enforces it lazily, as a fleet's (planner/plan/solve.py):
    without it a replica variable alone is the decision, no choice binary. ``keep``: rows
    never pruned (the starting answer's, so that it stays a schedule of the model)."""
    f = ScheduleFormulation(tables=t)
    m, c = f.model, t.peak
    f.alive = np.union1d(alive_rows(t), np.asarray(keep, dtype=np.int64))
    rows, gpu, gpus = f.alive, c.configs.gpu, c.ev.gpus
    types = sorted(set(gpu[rows].tolist()))
    period_names = [f"p{p}" for p in range(t.count)]
    lim = c.limits
    top = {g: 0.0 for g in types}
    for p, view in enumerate(t.periods):
        f.y.append({})
        f.x.append({})
        tag = period_names[p]
        for s in range(c.n_slots):
            mine = rows[c.slot[rows] == s]
            xs: dict[int, float] = {}
            # a spot row's spares sit on its choice binary: such a slot always has them
            enforced = limited is None or (p, s) in limited or bool((_spares(view)[mine] > 0).any())
            for j in mine:
                n = float(view.replica_cap[j])
                label = f"{tag},{c.label(int(j))}"
                y = f.y[p][int(j)] = m.var(f"replicas[{label}]", 0, n, integer=True)
                if not enforced:
                    continue
                x = f.x[p][int(j)] = m.var(f"x[{label}]", 0, 1, integer=True)
                m.row(f"replicas_at_least_one[{label}]", "choice", {x: 1.0, y: -1.0}, "<=", 0.0, "count")
                m.row(f"replicas_only_if_chosen[{label}]", "choice", {y: 1.0, x: -n}, "<=", 0.0, "count")
                xs[x] = 1.0
            slot = f"period={tag},slot={c.slot_names[s]}"
            if enforced:
                m.row(f"max_configurations[{slot}]", "choice", xs, "<=", float(c.max_configs), "count")
            demand = view.slots[s].demand
            assert demand is not None          # a schedule needs every workload's demand (resolve_periods)
            # the demand as a share served, each replica's share clipped at the whole demand (the same
            # integer points: a replica that covers D alone satisfies either form), so that a tiny D_ps
            # is a row of unit size and no solver meets it at y = 0 within its feasibility tolerance
            d = float(demand.value)
            m.row(f"demand[{slot}]", "demand", {f.y[p][int(j)]: min(float(c.capacity[j]) / d, 1.0) for j in mine},
                  ">=", 1.0, "share")
        k = _spares(view)
        for g in types:
            top[g] = max(top[g], float(sum(gpus[j] * (view.replica_cap[j] + k[j]) for j in rows[gpu[rows] == g])))
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
    f.size = {"candidates": len(c), "rows_alive": len(rows), "periods": t.count, "variables": len(m.vars),
              "rows": len(m.rows), "limited_pairs": t.count * c.n_slots if limited is None else len(limited)}
    return f


def _spares(view: Candidates) -> np.ndarray:
    """Spare replicas per row of a period's table (0 off spot; NaN rows have no replicas)."""
    return np.nan_to_num(view.spares) if len(view.spares) else np.zeros(len(view))


def running(f: ScheduleFormulation, p: int, rows: list[int], per_replica: np.ndarray) -> dict[int, float]:
    """``per_replica[j]`` on the replicas of ``rows`` in period p and, for a spot row, its
    k_pj spares' share on its choice binary: what runs, serving or spare."""
    k = _spares(f.tables.periods[p])
    out = {f.y[p][j]: float(per_replica[j]) for j in rows}
    for j in rows:
        if k[j] > 0:
            out[f.x[p][j]] = out.get(f.x[p][j], 0.0) + float(k[j] * per_replica[j])
    return out


def serving(f: ScheduleFormulation, p: int, g: int) -> dict[int, float]:
    """G_pg: the GPUs of type g running in period p (serving replicas and spot spares)."""
    c = f.tables.peak
    return running(f, p, [j for j in f.y[p] if c.configs.gpu[j] == g], c.ev.gpus)


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
    c, lim, price = t.peak, t.peak.limits, t.usd_per_gpu_hour
    for p in range(t.count):
        held = {**{b: 1.0 for b in f.committed.values()}, **{a: 1.0 for (pp, _), a in f.held.items() if pp == p}}
        if lim.max_gpus is not None:
            m.row(f"max_gpus[{names[p]}]", "inventory", held, "<=", float(lim.max_gpus), "count")
        if lim.budget_usd_per_hour is not None:
            cost = {b: float(price[g]) for g, b in f.committed.items()}
            cost |= {a: float(price[g]) for (pp, g), a in f.held.items() if pp == p}
            m.row(f"budget[{names[p]}]", "budget", cost, "<=", float(lim.budget_usd_per_hour), "usd_per_hour")
        if lim.power_cap_w is not None:
            m.row(f"power[{names[p]}]", "power", running(f, p, list(f.y[p]), c.ev.power_w), "<=",
                  float(lim.power_cap_w), "watts")


def assignment(f: ScheduleFormulation, static: list[tuple[int, int]]) -> dict[int, float] | None:
    """The static fleet as a starting schedule (each row capped at what a period needs of it
    alone, where it then covers that period by itself), or None when a row of it is not in
    the schedule's model."""
    t = f.tables
    if not static or any(j not in f.y[0] for j, _ in static):
        return None
    c = t.peak
    values: dict[int, float] = {}
    for p, view in enumerate(t.periods):
        for j, r in static:
            values[f.y[p][j]] = float(min(r, view.replica_cap[j]))
            if j in f.x[p]:
                values[f.x[p][j]] = 1.0
    top: dict[int, float] = {}
    k = _spares(c)          # the peak's spares: never fewer than a period's
    for j, r in static:
        g = int(c.configs.gpu[j])
        top[g] = top.get(g, 0.0) + float(c.ev.gpus[j]) * (r + k[j])
    values |= {b: top.get(g, 0.0) for g, b in f.committed.items()}
    values |= {a: top.get(g, 0.0) for (_, g), a in f.held.items()}
    return values


def decode(f: ScheduleFormulation, values: np.ndarray) -> tuple[list[list[tuple[int, int]]], np.ndarray, float]:
    """(row, replicas) per period, GPUs held per period and type, $ per cycle."""
    t = f.tables
    picks = [[(j, int(round(values[y]))) for j, y in sorted(per.items()) if values[y] > 0.5] for per in f.y]
    held = np.zeros((t.count, len(t.peak.gpu_ids)))
    for g, b in f.committed.items():
        held[:, g] = round(values[b])
    for (p, g), a in f.held.items():
        held[p, g] = round(values[a])
    cost = float(sum(a * values[i] for i, a in f.model.objective.items()))
    return picks, held, cost


def over_limit(f: ScheduleFormulation, picks: list[list[tuple[int, int]]]) -> set[tuple[int, int]]:
    """The (period, workload) pairs whose picks use more configurations than K."""
    c = f.tables.peak
    out = set()
    for p, chosen in enumerate(picks):
        for s in range(c.n_slots):
            if sum(1 for j, _ in chosen if c.slot[j] == s) > c.max_configs:
                out.add((p, s))
    return out
