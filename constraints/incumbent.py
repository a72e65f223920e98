"""Starting assignments for every backend, in the model's own terms (the quantities of
planner/candidates that the rows read):

- ``assignment(f, picks)``: the model's variables for a given choice of rows and replicas
  (replicas, choices, each slot's latency terms when it has one deployment, node counts,
  served shares); a hint, which a backend may find infeasible (a row pruned, a limit) and
  then starts from nothing.
- ``incumbent(f)``: the best single-slot plan, by enumerating the surviving candidates.
  With one slot every shared limit involves that slot's one deployment only, so a row with
  n replicas is feasible exactly when n is within its replica domain, n <= the replicas the
  limits allow (which meets each limit on its own), and, with a demand, n x capacity covers
  it. Replicas: the demand's (fixed), or for throughput the most allowed.

Neither is a proof: the solver still proves the optimum (or reports its gap), and an answer
from here is reported as such when the solver returns none (planner/plan/solve.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from constraints import communication, latency, roofline
from planner.candidates.objectives import OBJECTIVES
from planner.candidates.table import nodes_for

if TYPE_CHECKING:
    from constraints import Formulation


@dataclass(frozen=True)
class Incumbent:
    row: int
    replicas: int
    values: dict[int, float]       # model variable -> value (every variable not listed is 0)
    objective: float               # the model's objective at ``values``


def assignment(f: Formulation, picks: list[tuple[int, int]]) -> dict[int, float]:
    """The model's variables at (row, replicas) ``picks`` (rows without a variable skipped)."""
    c = f.cands
    vals: dict[int, float] = {}
    cover = np.zeros(c.n_slots)
    nodes: dict[int, list[tuple[int, int]]] = {}
    for j, n in picks:
        if f.x[j] < 0:
            continue
        if f.replicas:
            vals[int(f.y[j])] = float(n)
        vals[int(f.x[j])] = 1.0 if f.x[j] != f.y[j] else float(n if f.replicas else 1)
        cover[int(c.slot[j])] += float(c.capacity[j]) * n
        nodes.setdefault(int(c.configs.gpu[j]), []).append((j, n))
    names = ("t_linear", "t_attention", "t_comm", "tpot", "ttft")
    if any(f.scalar_name(name, s) in f.scalars for s in range(c.n_slots) for name in names):
        lin, att = roofline.per_row(c)      # whole-table arrays: read only where a slot has these scalars
        tpot, ttft = latency.per_row(c)
        comm = communication.per_token(c)
    picked: dict[int, list[int]] = {}
    for j, _ in picks:
        if f.x[j] >= 0:
            picked.setdefault(int(c.slot[j]), []).append(j)
    for s in range(c.n_slots):
        mine = picked.get(s, [])
        if len(mine) == 1:
            for name in names:
                if f.scalar_name(name, s) in f.scalars:
                    arr = {"t_linear": lin, "t_attention": att, "t_comm": comm, "tpot": tpot, "ttft": ttft}[name]
                    vals[f.scalars[f.scalar_name(name, s)]] = float(arr[mine[0]])
        key = f.scalar_name("served", s)
        if key in f.scalars:
            rows = c.slot_rows(s)
            vals[f.scalars[key]] = float(min(1.0, cover[s] / float(c.demand[rows[0]]))) if len(rows) else 0.0
    for g, mine_g in nodes.items():
        if g in f.nodes:
            vals[f.nodes[g]] = float(sum(nodes_for(n, int(c.ev.gpus[j]), int(c.per_node[j])) for j, n in mine_g))
    return vals


def incumbent(f: Formulation) -> Incumbent | None:
    c = f.cands
    if c.n_slots != 1 or not len(f.alive) or c.split or c.current is not None or c.bounds:
        return None
    obj = OBJECTIVES[c.objective]
    t = obj.terms(c)
    rows = f.alive                       # earlier answers' configurations are not alive (constraints.build)
    if f.replicas and c.objective == "throughput":
        reps = np.floor(c.replica_cap[rows])
    elif f.replicas and c.has_demand[0]:
        reps = np.floor(c.replica_cap[rows])
    else:
        reps = np.ones(len(rows))
    with np.errstate(invalid="ignore"):
        ok = (reps >= 1) & (reps <= c.replicas_allowed[rows])
        if c.has_demand[0]:
            ok &= c.capacity[rows] * reps >= c.demand[rows]
    tpot, ttft = latency.per_row(c)
    scalar = {"tpot": tpot, "ttft": ttft}
    value = t.x[rows] + t.y[rows] * reps
    for name, a in t.scalars.items():
        if name not in scalar:
            return None
        value = value + a * scalar[name][rows]
    score = np.where(ok & np.isfinite(value), value if obj.sense == "min" else -value, np.inf)
    if not len(score) or not np.isfinite(score.min()):
        return None
    k = int(np.argmin(score))
    j, n = int(rows[k]), int(reps[k])
    vals = assignment(f, [(j, n)])
    total = sum(f.model.objective.get(i, 0.0) * v for i, v in vals.items())
    return Incumbent(j, n, vals, total)
