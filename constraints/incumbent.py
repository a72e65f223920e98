"""A starting plan for every backend: the best single-slot plan found by enumerating the
surviving candidates in the model's own terms (the quantities of planner/candidates that the
rows read), as a full assignment of the model's variables.

With one slot every shared limit involves that slot's one deployment only, so a row with n
replicas is feasible exactly when n is within its replica domain, n <= the replicas the
limits allow (which meets each limit on its own), and, with a demand, n x capacity covers
it. Replicas: the demand's (fixed), or for throughput the most allowed. This is a hint, not
a proof: the solver still proves the optimum (or reports its gap), and a plan from here is
reported as such when the solver returns none (planner/plan/solve.py)."""

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


def incumbent(f: Formulation) -> Incumbent | None:
    c = f.cands
    if c.n_slots != 1 or not len(f.alive) or c.split or c.current is not None or c.bounds:
        return None
    obj = OBJECTIVES[c.objective]
    t = obj.terms(c)
    rows = f.alive
    if f.excluded:
        rows = rows[~np.isin(c.config[rows], [e[0] for e in f.excluded])]
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
    lin, att = roofline.per_row(c)
    comm = communication.per_token(c)
    vals: dict[int, float] = {int(f.x[j]): 1.0}
    if f.replicas:
        vals[int(f.y[j])] = float(n)
    for name, arr in (("t_linear", lin), ("t_attention", att), ("t_comm", comm), ("tpot", tpot), ("ttft", ttft)):
        if f.scalar_name(name, 0) in f.scalars:
            vals[f.scalars[f.scalar_name(name, 0)]] = float(arr[j])
    g = int(c.configs.gpu[j])
    if g in f.nodes:
        vals[f.nodes[g]] = float(nodes_for(n, int(c.ev.gpus[j]), int(c.per_node[j])))
    total = sum(f.model.objective.get(i, 0.0) * v for i, v in vals.items())
    return Incumbent(j, n, vals, total)
