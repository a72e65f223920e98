"""Demand: each slot's replicas, each loaded at most to its capacity at SLO, cover the
demand (docs/load.md section 6):

    sum_{j in slot} CAP_j y_j >= D_slot

CAP_j is output tokens/s at the highest rate meeting every latency target (open loop), or
the requests in flight at that rate (a closed loop of D clients)."""

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
        f.model.row(name, "demand", {int(f.y[j]): float(thr[j]) for j in f.alive_in(s)}, ">=",
                    float(c.demand[rows[0]]), unit)
