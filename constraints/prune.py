"""Dominance pruning: drop, before the solver sees them, the candidates that another one of
the same slot and GPU type beats or ties on everything the model can ask of it
(docs/formulation.md section 3b).

Row k dominates row j when, in every criterion below (each "smaller is better"), k is no
worse, and k is strictly better in one or, all equal, comes first:

- the objective: its coefficients on x and y (and, for a TPOT/TTFT objective, the value of
  the slot's latency scalar that the row alone sets, constraints.latency.per_row);
- every limit that is active: GPUs (max_gpus, inventory), GPU slots (max_nodes), $/hour
  (budget), watts (power cap);
- the replica variable's domain (larger is better) and the capacity at SLO (larger is
  better) when replicas are free.

Two cases of replicas. With a demand in the slot and an objective other than throughput,
the replica domain is [1, needed] and the demand row forces y_j = needed: every quantity is
compared as a plan total (per replica x needed) and a row whose replicas cannot meet the
demand is dropped outright. Otherwise y is free (or is x): the same y on row k is feasible
wherever it is on row j, so per-replica figures are compared.

Ranking. The solve loop cuts whole configurations (all batch levels of a layout) after each
plan, so a row is dropped only if a row of its own configuration dominates it, or rows of at
least ``ranks`` other configurations do: whatever the first ``ranks`` - 1 cuts remove, a
dominating row survives, and by transitivity an optimal row always stays in the model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from constraints import latency
from planner.candidates.objectives import OBJECTIVES

if TYPE_CHECKING:
    from constraints import Formulation

CHUNK = 256
"""Dominated rows compared per block (memory: group size x CHUNK x criteria booleans)."""


def criteria(f: Formulation) -> tuple[np.ndarray, np.ndarray]:
    """(criteria per candidate, shape (n, d), smaller is better; rows that cannot meet their
    slot's demand). NaN criteria never dominate nor are dominated."""
    c = f.cands
    obj = OBJECTIVES[c.objective]
    t = obj.terms(c)
    sign = -1.0 if obj.sense == "max" else 1.0
    n = len(c)
    fixed = c.has_demand & f.replicas & (c.objective != "throughput")
    reps = np.where(fixed, c.replica_cap, 1.0)
    cols = []
    ox, oy = sign * t.x, sign * t.y
    if not f.replicas:                      # y is x: one coefficient
        cols.append(ox + oy)
    else:
        cols += [np.where(fixed, ox + oy * reps, ox), np.where(fixed, 0.0, oy)]
    if t.scalars:
        tpot, ttft = latency.per_row(c)
        for name in t.scalars:
            cols.append({"tpot": tpot, "ttft": ttft}.get(name, np.full(n, np.nan)))
    lim = c.limits
    if lim.max_gpus is not None or lim.inventory:
        cols.append(c.ev.gpus * reps)
    if lim.max_nodes is not None:
        cols.append(c.slots_per_replica * reps)
    if lim.budget_usd_per_hour is not None:
        cols.append(np.nan_to_num(c.cost_per_hour, nan=0.0) * reps)
    if lim.power_cap_w is not None:
        cols.append(c.ev.power_w * reps)
    if f.replicas:                           # free replicas: a wider domain, more capacity per replica
        cols.append(np.where(fixed, 0.0, -c.replica_cap))
        cols.append(np.where(fixed | ~c.has_demand, 0.0, -c.capacity))
    with np.errstate(invalid="ignore"):
        short = c.has_demand & ~(c.capacity * c.replica_cap >= c.demand)
        short |= c.replicas_allowed < 1     # one replica already breaks a limit on its own
    return np.stack(cols, axis=1).astype(float), short


def pruned(f: Formulation, ranks: int) -> np.ndarray:
    """Mask over candidates: the alive rows dropped (dominated, or unable to meet the demand)."""
    c = f.cands
    out = np.zeros(len(c), dtype=bool)
    alive = f.alive
    if not len(alive):
        return out
    crit, short = criteria(f)
    out[alive[short[alive]]] = True
    alive = alive[~short[alive]]
    key = c.slot[alive] * (len(c.gpu_ids) + 1) + c.configs.gpu[alive]
    order = np.lexsort((c.config[alive], key))
    rows, key = alive[order], key[order]
    bounds = np.flatnonzero(np.diff(key)) + 1
    for group in np.split(rows, bounds):
        out[group[_dominated(crit[group], c.config[group], ranks)]] = True
    return out


def _dominated(v: np.ndarray, cfg: np.ndarray, ranks: int) -> np.ndarray:
    """Rows of one group (sorted by configuration) that are dominated as the module says."""
    m = len(v)
    out = np.zeros(m, dtype=bool)
    if m < 2:
        return out
    starts = np.flatnonzero(np.r_[True, cfg[1:] != cfg[:-1]])
    idx = np.arange(m)
    for a in range(0, m, CHUNK):
        b = min(a + CHUNK, m)
        vj = v[None, a:b, :]
        le = np.all(v[:, None, :] <= vj, axis=2)
        lt = np.any(v[:, None, :] < vj, axis=2)
        dom = le & (lt | (idx[:, None] < idx[None, a:b]))
        same = cfg[:, None] == cfg[None, a:b]
        by_own = (dom & same).any(axis=0)
        others = np.logical_or.reduceat(dom & ~same, starts, axis=0).sum(axis=0)
        out[a:b] = by_own | (others >= ranks)
    return out
