"""Objectives (docs/formulation.md section 4), from the registry in
planner/candidates/objectives.py. The ratio objective $/token is linear here: with one
candidate chosen, its cost per million tokens C_j / THR_j is a constant per candidate
(exact); with a demand, the served tokens are fixed and $/token is $/hour / D."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from constraints import latency
from constraints.model import Coeffs
from planner.candidates.objectives import OBJECTIVES, Terms
from planner.candidates.table import Candidates

if TYPE_CHECKING:
    from constraints import Formulation


def terms(c: Candidates, name: str) -> Terms:
    """``OBJECTIVES[name].terms(c)``, once per table and the tables ``share_terms`` ties to it
    (a fleet's model reads each objective's terms in screening, pruning, its rows and its
    value: the tie-break order's positions alone are a sort of every row)."""
    store = c.__dict__.setdefault("_terms", {})
    if name not in store:
        store[name] = OBJECTIVES[name].terms(c)
    held: Terms = store[name]
    return held


def share_terms(c: Candidates, like: Candidates) -> Candidates:
    """``c``, holding the terms of ``like``: for ``c`` that is ``like`` under another objective,
    earlier phases' bounds, enforced limits or partial service (planner/plan/solve.py's
    phases), none of which an objective's terms read (planner/candidates/objectives.py); and
    the last dominance pruning of any of them, which the next reuses where sound
    (constraints/prune.py ``Memo``: its criteria and rows are checked, not assumed); and each
    objective's per-row values (``Candidates.per_row``: the tie-break order's one sort)."""
    c.__dict__["_terms"] = like.__dict__.setdefault("_terms", {})
    c.__dict__["_pruning"] = like.__dict__.setdefault("_pruning", {})
    c.__dict__["_per_row"] = like.__dict__.setdefault("_per_row", {})
    return c


def add(f: Formulation) -> None:
    c, m = f.cands, f.model
    obj = OBJECTIVES[c.objective]
    coeffs = coefficients(f, c.objective)
    m.objective, m.objective_dimension, m.objective_sense, m.objective_name = (
        coeffs, terms(c, c.objective).dimension, obj.sense, obj.name)


def coefficients(f: Formulation, name: str) -> Coeffs:
    """The linear expression of objective ``name`` over the model's variables (as arrays: a
    fleet's has a million terms)."""
    c = f.cands
    t = terms(c, name)
    # each alive row's x term, then its y term, the nonzero ones (NaN included), in that order;
    # x and y one variable (a slot without a choice binary): their sum
    rows = f.alive
    var = np.stack([f.x[rows], f.y[rows]], axis=1).ravel()
    val = np.stack([np.asarray(t.x, dtype=float)[rows], np.asarray(t.y, dtype=float)[rows]], axis=1).ravel()
    on = val != 0
    var, val = var[on], val[on]
    keep = np.ones(len(var), dtype=bool)
    same = np.flatnonzero(var[1:] == var[:-1])
    val[same] += val[same + 1]
    keep[same + 1] = False
    extra: dict[int, float] = {}       # each variable once: a row's x and y are merged above, scalars are their own
    for name, a in t.scalars.items():
        for s in range(c.n_slots):
            key = f.scalar_name(name, s)
            if key in f.scalars:
                extra[f.scalars[key]] = float(a[s]) if isinstance(a, np.ndarray) else a
    return Coeffs(np.concatenate([var[keep], np.fromiter(extra.keys(), dtype=np.int64, count=len(extra))]),
                  np.concatenate([val[keep], np.fromiter(extra.values(), dtype=float, count=len(extra))]))


def add_bounds(f: Formulation) -> None:
    """The lexicographic phases (docs/formulation.md section 4b): each earlier objective kept
    at the value it reached (within the tolerance the solve stage chose, planner/plan/solve.py):
    sum <= bound when it was minimised, >= when maximised."""
    for name, bound in f.cands.bounds:
        obj = OBJECTIVES[name]
        f.model.row(f"keep[{name}]", "lexicographic", coefficients(f, name), "<=" if obj.sense == "min" else ">=",
                    bound, terms(f.cands, name).dimension)


def screened(c: Candidates, replicas: bool) -> np.ndarray:
    """Rows that cannot be in any answer within an earlier phase's bound (a minimised
    objective kept at its optimum, ``add_bounds``). Every term of such an objective is >= 0,
    so an answer using row j costs at least its own least contribution:

    - with one deployment per slot, j's coefficients at the fewest replicas it can run (the
      demand's count, else one);
    - when slots split their traffic, for an objective on replicas only ($/hour, GPUs), one
      replica of j, plus the rest of j's demand at the lowest value per unit of capacity any
      row of its slot offers, plus every other slot's demand likewise (a lower bound on
      each slot, as in planner/plan/start.py cost_lower_bound; 0 for a slot that may serve
      less, or runs pools).

    A row whose bound exceeds the kept value is fixed to 0; the later phases of a ranked
    answer then see little more than the rows tied at the optimum."""
    dead = np.zeros(len(c), dtype=bool)
    fixed = c.has_demand & replicas & (c.objective != "throughput") & (not c.split)
    least = np.where(fixed, c.replicas_needed, 1.0)
    for name, bound in c.bounds:
        obj = OBJECTIVES[name]
        if obj.sense != "min":
            continue
        t = terms(c, name)
        if t.scalars:
            if c.split or not set(t.scalars) <= {"tpot", "ttft"}:
                continue        # no per-row value: change, or a latency with several deployments
            tpot, ttft = latency.per_row(c)
            value = {"tpot": tpot, "ttft": ttft}[next(iter(t.scalars))]
        else:
            value = t.x + t.y * least
            if c.split and not t.x.any():
                value = value + _rest(c, np.nan_to_num(t.y, nan=0.0))
        with np.errstate(invalid="ignore"):
            dead |= value > bound
    return dead


def _rest(c: Candidates, per_replica: np.ndarray) -> np.ndarray:
    """Per row j: a lower bound on what the answer's other replicas add to an objective of
    ``per_replica`` value each, given one replica of j: its slot's demand left after j's
    capacity, and every other slot's demand, each at its slot's lowest value per unit of
    capacity (no slot that may serve less or runs pools counts)."""
    ok = c.meets_slo & (c.capacity > 0) & c.has_demand
    with np.errstate(divide="ignore", invalid="ignore"):
        unit = np.where(ok, per_replica / c.capacity, np.inf)
    best = np.zeros(c.n_slots)
    demand = np.zeros(c.n_slots)
    for s in range(c.n_slots):
        rows = c.slot_rows(s)
        if c.partial or c.pooled(s) or not len(rows) or not c.has_demand[rows[0]]:
            continue
        u = float(np.min(unit[rows], initial=np.inf))
        if np.isfinite(u):
            best[s], demand[s] = u, float(c.demand[rows[0]])
    slot = c.slot
    total = float((best * demand).sum())
    own = best[slot] * np.maximum(0.0, demand[slot] - np.nan_to_num(c.capacity, nan=0.0))
    return own + total - (best * demand)[slot]
