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

from typing import TYPE_CHECKING

import numpy as np

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
    for j in f.alive:
        if int(c.slot[j]) not in free:
            f.x[j] = m.var(f"x[{c.label(int(j))}]", 0, 1, integer=True)
    for s in range(c.n_slots):
        if s in free:
            continue
        coeffs = {int(f.x[j]): 1.0 for j in f.alive_in(s)}
        if not c.split:
            name = "one_deployment" if c.n_slots == 1 else f"one_deployment[slot={c.slot_names[s]}]"
            m.row(name, "choice", coeffs, "==", 1.0, "count")
            continue
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
    if not f.replicas:
        f.y = f.x
        return
    caps = c.replica_cap
    f.y = np.full(len(c), -1, dtype=np.int64)
    for j in f.alive:
        label = c.label(int(j))
        if int(c.slot[j]) in free:
            f.y[j] = f.x[j] = m.var(f"replicas[{label}]", 0, caps[j], integer=True)
            continue
        xi = int(f.x[j])
        yi = f.y[j] = m.var(f"replicas[{label}]", 0, caps[j], integer=True)
        m.row(f"replicas_at_least_one[{label}]", "choice", {xi: 1.0, yi: -1.0}, "<=", 0.0, "count")
        m.row(f"replicas_only_if_chosen[{label}]", "choice", {yi: 1.0, xi: -float(caps[j])}, "<=", 0.0, "count")


def free_slots(c: Candidates) -> frozenset[int]:
    """Slots with no configuration limit in this model (split fleets, lazily limited); a slot
    with a spot row that carries spares is never free: its spares are paid on a choice binary."""
    if not c.split or c.limited is None:
        return frozenset()
    spared = frozenset(int(s) for s in c.slot[c.spare_cost > 0]) if len(c.spares) else frozenset()
    return frozenset(range(c.n_slots)) - frozenset(c.limited) - spared
