"""Choice: exactly one deployment (configuration and batch) per slot, replicated y times.

x_j in {0,1} picks candidate j; y_j in {0..R_j} counts its replicas, linked by
x_j <= y_j <= R_j x_j. Without a demand or a throughput objective one replica is the
plan and y_j is x_j itself.

A fleet splits a slot's traffic (docs/fleet.md): 1 <= sum_j x_j <= K configurations per
slot (0 <= when the slot may go unserved, objective served_demand); the demand rows then
split the traffic in proportion to capacity.

A slot with disaggregated pools (docs/disaggregation.md section 7) counts its
configurations per role: at most K aggregated, K prefill and K decode configurations
(sum_{j in s, role r} x_j <= K for each role r), at least one of any role."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from constraints import objective
from constraints.model import Names
from planner.candidates.load import ROLE_NAMES
from planner.candidates.table import Candidates

if TYPE_CHECKING:
    from constraints import Formulation


def needs_replicas(c: Candidates) -> bool:
    return bool(c.has_demand.any()) or c.objective == "throughput"


def add(f: Formulation) -> None:
    """After screening and pruning: a choice variable per surviving candidate (none for the
    others, which are fixed to 0: ``f.x`` is -1 there), one deployment per slot and, if
    needed, replica counts.

    A fleet slot whose configuration count is not enforced (``Candidates.limited``; the fleet
    driver enforces it lazily, on the slots whose optimum uses more than K) needs no choice
    binary: its replica variable alone is the decision, and ``f.x`` points at it (y >= 1 is
    "chosen"; no objective puts a coefficient on x in a fleet)."""
    c, m = f.cands, f.model
    f.replicas = needs_replicas(c)
    free = free_slots(c)
    f.x = np.full(len(c), -1, dtype=np.int64)
    is_free = np.isin(c.slot[f.alive], list(free))
    bound = np.flatnonzero(~is_free)
    f.x[f.alive[bound]] = m.var_block(names(c, "x", f.alive[bound]), 0, np.ones(len(bound)), integer=True)
    for s in range(c.n_slots):
        if s not in free:
            _slot_rows(f, s)
    if not f.replicas:
        f.y = f.x
        return
    f.y = np.full(len(c), -1, dtype=np.int64)
    f.y[f.alive] = m.var_block(names(c, "replicas", f.alive), 0, c.replica_cap[f.alive], integer=True)
    f.x[f.alive[is_free]] = f.y[f.alive[is_free]]
    for j, label in zip(f.alive[bound].tolist(), c.labels(f.alive[bound])):
        _link(f, j, label)


def names(c: Candidates, kind: str, rows: np.ndarray) -> Names:
    """The names ``kind[label]`` of the variables of candidates ``rows``, made when read (a
    fleet's model has a million variables, and the solvers on its path read no name)."""
    return lambda at: [f"{kind}[{label}]" for label in c.labels(rows[at])]


def _slot_rows(f: Formulation, s: int) -> None:
    """Slot s's rows of configuration counts (at most K, per role with pools; at least one)."""
    c, m = f.cands, f.model
    coeffs = {int(f.x[j]): 1.0 for j in f.alive_in(s)}
    if not c.split:
        name = "one_deployment" if c.n_slots == 1 else f"one_deployment[slot={c.slot_names[s]}]"
        m.row(name, "choice", coeffs, "==", 1.0, "count")
        return
    suffix = "" if c.n_slots == 1 else f"[slot={c.slot_names[s]}]"
    if c.pooled(s):
        rows = f.alive_in(s)
        for r, role in enumerate(ROLE_NAMES):
            mine = {int(f.x[j]): 1.0 for j in rows[c.role[rows] == r]}
            if mine:
                m.row(f"max_configurations[slot={c.slot_names[s]},role={role}]", "choice", mine, "<=",
                      float(c.max_configs), "count")
    else:
        m.row("max_configurations" + suffix, "choice", coeffs, "<=", float(c.max_configs), "count")
    if not c.partial:
        m.row("at_least_one_deployment" + suffix, "choice", coeffs, ">=", 1.0, "count")


def _link(f: Formulation, j: int, label: str) -> None:
    """x_j <= y_j <= R_j x_j: replicas only of a chosen candidate, at least one if chosen."""
    xi, yi = int(f.x[j]), int(f.y[j])
    f.model.row(f"replicas_at_least_one[{label}]", "choice", {xi: 1.0, yi: -1.0}, "<=", 0.0, "count")
    f.model.row(f"replicas_only_if_chosen[{label}]", "choice", {yi: 1.0, xi: -float(f.cands.replica_cap[j])}, "<=",
                0.0, "count")


def limit(f: Formulation, slots: set[int]) -> bool:
    """The configuration limit of ``slots`` enforced in the model as built (the solve stage's
    lazy rounds, planner/plan/solve.py): a choice binary per candidate of those slots, its
    links to the replicas and the slot's count rows, added to the model, whose solver keeps
    it (planner/backends/base.py ``incremental``). The same model ``add`` builds with those
    slots limited, its variables in another order. False, and nothing changed, where the
    objective or an earlier phase's bound puts a coefficient on a choice (it would move from
    the replicas to the new binary): the caller then builds the model anew."""
    c = f.cands
    new = sorted(set(slots) & free_slots(c))
    if not f.replicas or c.limited is None or not new:
        return not new
    rows = np.concatenate([f.alive_in(s) for s in new])
    for name in {c.objective, *(n for n, _ in c.bounds)}:
        if np.any(objective.terms(c, name).x[rows]):
            return False
    f.cands = objective.share_terms(replace(c, limited=tuple(sorted({*c.limited, *new}))), c)
    labels = c.labels(rows)
    for j, label in zip(rows, labels):
        f.x[j] = f.model.var(f"x[{label}]", 0, 1, integer=True)
    for s in new:
        _slot_rows(f, s)
    for j, label in zip(rows, labels):
        _link(f, int(j), label)
    return True


def free_slots(c: Candidates) -> frozenset[int]:
    """Slots with no configuration limit in this model (split fleets, lazily limited); a slot
    with a spot row that carries spares is never free: its spares are paid on a choice binary."""
    if not c.split or c.limited is None:
        return frozenset()
    spared = frozenset(int(s) for s in c.slot[c.spares > 0]) if len(c.spares) else frozenset()
    return frozenset(range(c.n_slots)) - frozenset(c.limited) - spared
