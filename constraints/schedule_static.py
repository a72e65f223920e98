"""The static fleet a schedule is compared with, as one integer program (docs/workloads.md
section 8, "The static fleet"): one fleet of deployments run unchanged all cycle that serves
every period at the period's own demand under the period's own SLO. It is the schedule's
program with every period's fleet tied equal: the replicas of a configuration are one
variable shared by the SLO cases, and the GPUs it runs are held all cycle.

Keys k are configurations of a workload (a row's label: GPU type, layout, batch) found in
some SLO case's table c (each case's table at its busiest demand D_cs per workload s);
CAP_ck is the capacity at SLO of k in case c (0 where case c's table lacks k or screens it
out: it runs there but is given no traffic); GPUs_k, W_k and the spot spares k_k are the
largest any case's table gives k; P_g $/GPU-hour, H the cycle's hours:

    y_k in {0..N_k}, x_k in {0,1}:  x_k <= y_k <= N_k x_k    N_k: the most any case needs of k alone
    sum_{k in s} x_k <= K                                     per workload
    sum_{k in s} min(CAP_ck / D_cs, 1) y_k >= 1               per SLO case and workload   (share)
    G_g = sum_{k on g} GPUs_k (y_k + k_k x_k) <= inventory_g,  sum_g G_g <= max_gpus,
    sum_g P_g G_g <= budget,  sum_k W_k (y_k + k_k x_k) <= power cap

    minimise  H sum_g P_g G_g                                 ($ per cycle)

A configuration beaten in every case by another of the same workload, GPU type, GPUs, spares
(and, under a power cap, no more watts), with at least its capacity in each case, is dropped:
the other replaces it in any static fleet at no more cost. With one SLO case this is the
fleet program at each workload's busiest demand, which the schedule's driver solves as today
(planner/plan/schedule.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from constraints.formulation import Formulation, screen
from constraints.model import LinearModel
from constraints.schedule_options import spares
from planner.candidates.schedule import PeriodTables
from planner.candidates.table import Candidates

Key = tuple[int, str]           # (workload, configuration label)


@dataclass
class StaticFormulation:
    """The model and the map back to the cases' tables; the backends read ``model`` and ``hint``."""

    tables: PeriodTables
    model: LinearModel = field(default_factory=LinearModel)
    keys: list[Key] = field(default_factory=list)
    where: list[tuple[int, int]] = field(default_factory=list)     # per key: (case, row) of a table holding it
    y: list[int] = field(default_factory=list)                     # per key: replicas variable
    x: list[int] = field(default_factory=list)                     # per key: choice variable
    hint: dict[int, float] | None = None
    covering: bool = True
    size: dict[str, int] = field(default_factory=dict)


def screened(c: Candidates) -> np.ndarray:
    """Rows of a case's table that meet its single-configuration rows (memory, SLOs) alone."""
    f = Formulation(cands=c, covering=True)
    f.replicas = True
    screen(f)
    return f.alive


@dataclass(frozen=True)
class Keys:
    """Each configuration's figures over the SLO cases (``where``: a table row holding it)."""

    keys: list[Key]
    where: list[tuple[int, int]]
    cap: np.ndarray        # (cases, keys): capacity at SLO, 0 where the case lacks or screens it out
    need: np.ndarray       # per key: the most replicas any case needs of it alone (within the limits)
    gpus: np.ndarray
    watts: np.ndarray
    spare: np.ndarray
    gpu: np.ndarray        # per key: its GPU type


def keys_of(t: PeriodTables) -> Keys:
    """The configurations a static fleet may run: those some case's table keeps after screening."""
    index: dict[Key, int] = {}
    where: list[tuple[int, int]] = []
    cases = t.cases or (t.peak,)
    rows = [[(int(j), (int(c.slot[j]), c.label(int(j)))) for j in screened(c)] for c in cases]
    for ci, per in enumerate(rows):
        for j, key in per:
            if key not in index:
                index[key] = len(where)
                where.append((ci, j))
    n = len(where)
    cap, need = np.zeros((len(cases), n)), np.zeros(n)
    gpus, watts, spare, gpu = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64)
    for ci, per in enumerate(rows):
        c, k = cases[ci], spares(cases[ci])
        for j, key in per:
            i = index[key]
            cap[ci, i] = float(c.capacity[j])
            need[i] = max(need[i], float(np.nan_to_num(c.replica_cap[j])))
            gpus[i] = max(gpus[i], float(c.ev.gpus[j]))
            watts[i] = max(watts[i], float(np.nan_to_num(c.ev.power_w[j])))
            spare[i] = max(spare[i], float(k[j]))
            gpu[i] = int(c.configs.gpu[j])
    return Keys(list(index), where, cap, need, gpus, watts, spare, gpu)


def _undominated(k: Keys, power: bool) -> np.ndarray:
    """Indices of the keys no other of the same workload, GPU type, GPUs and spares (and no
    more watts under a power cap) beats on capacity in every case (of equals the first)."""
    out = []
    for i, (s, _) in enumerate(k.keys):
        beaten = False
        for o, (s2, _) in enumerate(k.keys):
            if o == i or s2 != s or k.gpu[o] != k.gpu[i] or k.gpus[o] != k.gpus[i] or k.spare[o] != k.spare[i]:
                continue
            if power and k.watts[o] > k.watts[i]:
                continue
            if np.all(k.cap[:, o] >= k.cap[:, i]) and (np.any(k.cap[:, o] > k.cap[:, i]) or o < i):
                beaten = True
                break
        if not beaten and k.need[i] >= 1 and np.any(k.cap[:, i] > 0):
            out.append(i)
    return np.asarray(out, dtype=np.int64)


def build(t: PeriodTables) -> StaticFormulation:
    """The static fleet's program (module docstring) over the SLO cases' tables."""
    f = StaticFormulation(tables=t)
    m, lim = f.model, t.peak.limits
    cases = t.cases or (t.peak,)
    k = keys_of(t)
    live = _undominated(k, lim.power_cap_w is not None)
    f.keys, f.where = [k.keys[i] for i in live], [k.where[i] for i in live]
    price = np.nan_to_num(t.usd_per_gpu_hour)
    per_type: dict[int, dict[int, float]] = {}
    for i in live:
        s, label = k.keys[i]
        y = m.var(f"replicas[slot={t.peak.slot_names[s]},{label}]", 0, float(k.need[i]), integer=True)
        x = m.var(f"x[slot={t.peak.slot_names[s]},{label}]", 0, 1, integer=True)
        m.row(f"replicas_at_least_one[{label}]", "choice", {x: 1.0, y: -1.0}, "<=", 0.0, "count")
        m.row(f"replicas_only_if_chosen[{label}]", "choice", {y: 1.0, x: -float(k.need[i])}, "<=", 0.0, "count")
        f.y.append(y)
        f.x.append(x)
        run = per_type.setdefault(int(k.gpu[i]), {})
        run[y] = run.get(y, 0.0) + float(k.gpus[i])
        run[x] = run.get(x, 0.0) + float(k.gpus[i] * k.spare[i])
    for s, name in enumerate(t.peak.slot_names):
        mine = [n for n, i in enumerate(live) if k.keys[i][0] == s]
        m.row(f"max_configurations[slot={name}]", "choice", {f.x[n]: 1.0 for n in mine}, "<=",
              float(t.peak.max_configs), "count")
        for ci, c in enumerate(cases):
            demand = c.slots[s].demand
            assert demand is not None          # a schedule needs every workload's demand (resolve_periods)
            d = float(demand.value)
            if d == 0.0:
                continue                       # off in every period of this case: nothing to serve
            m.row(f"demand[case={ci},slot={name}]", "demand",
                  {f.y[n]: min(float(k.cap[ci, live[n]]) / d, 1.0) for n in mine}, ">=", 1.0, "share")
    ids = t.peak.gpu_ids
    for g, run in per_type.items():
        if ids[g] in lim.inventory:
            m.row(f"inventory[gpu={ids[g]}]", "inventory", run, "<=", float(lim.inventory[ids[g]]), "count")
    every = [(g, v, a) for g, run in per_type.items() for v, a in run.items()]
    if lim.max_gpus is not None:
        m.row("max_gpus", "inventory", _sum((v, a) for _, v, a in every), "<=", float(lim.max_gpus), "count")
    if lim.budget_usd_per_hour is not None:
        m.row("budget", "budget", _sum((v, a * price[g]) for g, v, a in every), "<=",
              float(lim.budget_usd_per_hour), "usd_per_hour")
    if lim.power_cap_w is not None:
        m.row("power", "power", _sum(p for n, i in enumerate(live) for p in
                                     ((f.y[n], k.watts[i]), (f.x[n], k.watts[i] * k.spare[i]))), "<=",
              float(lim.power_cap_w), "watts")
    m.objective = _sum((v, a * price[g] * t.cycle_hours) for g, v, a in every)
    m.objective_dimension, m.objective_sense, m.objective_name = "usd", "min", "usd_per_cycle"
    f.size = {"keys": len(k.keys), "keys_alive": len(live), "slo_cases": len(cases), "variables": len(m.vars),
              "rows": len(m.rows)}
    return f


def _sum(terms: object) -> dict[int, float]:
    out: dict[int, float] = {}
    for v, a in terms:          # type: ignore[attr-defined]
        out[v] = out.get(v, 0.0) + float(a)
    return out


def assignment(f: StaticFormulation, picks: list[tuple[int, int]]) -> dict[int, float] | None:
    """``picks`` ((row, replicas) of the static peak table ``tables.peak``) as a start, or
    None when one of its configurations is not a key of the program."""
    c, values = f.tables.peak, {}
    index = {key: n for n, key in enumerate(f.keys)}
    for j, r in picks:
        n = index.get((int(c.slot[j]), c.label(int(j))))
        if n is None:
            return None
        values[f.y[n]] = float(r)
        values[f.x[n]] = 1.0
    return values


def decode(f: StaticFormulation, values: np.ndarray) -> tuple[list[tuple[int, int, int]], float]:
    """((case, row, replicas) per configuration run, $ per cycle)."""
    picks = [(ci, j, int(round(values[y]))) for (ci, j), y in zip(f.where, f.y) if values[y] > 0.5]
    return picks, f.model.objective_at(values)
