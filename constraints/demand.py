"""Demand: each slot's replicas, each loaded at most to its capacity at SLO, cover the
demand (docs/load.md section 6):

    sum_{j in slot} CAP_j y_j >= D_slot

CAP_j is output tokens/s at the highest rate meeting every latency target (open loop), or
the requests in flight at that rate (a closed loop of D clients).

When a slot may serve less than its demand (a fleet's objective served_demand), the share
served is a variable 0 <= served_slot <= 1 and the row reads

    sum_{j in slot} (CAP_j / D_slot) y_j >= served_slot."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from constraints import Formulation


def add(f: Formulation) -> None:
    c = f.cands
    thr = c.capacity
    for s in range(c.n_slots):
        rows = c.slot_rows(s)
        if not len(rows) or not c.has_demand[rows[0]]:
            continue
        name = "demand" if c.n_slots == 1 else f"demand[slot={c.slot_names[s]}]"
        unit = "tokens_per_s" if c.slots[s].demand_tokens_per_s is not None else "count"
        d = float(c.demand[rows[0]])
        if not c.partial:
            f.model.row(name, "demand", {int(f.y[j]): float(thr[j]) for j in f.alive_in(s)}, ">=", d, unit)
            continue
        served = f.scalar_name("served", s)
        f.scalars[served] = f.model.var(served, 0.0, 1.0, integer=False, dimension="share")
        coeffs = {int(f.y[j]): float(thr[j]) / d for j in f.alive_in(s)}
        coeffs[f.scalars[served]] = -1.0
        f.model.row(name, "demand", coeffs, ">=", 0.0, "share")
