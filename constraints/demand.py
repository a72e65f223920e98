"""Demand: each slot's replicas' output-token throughput covers its demanded rate.

    sum_{j in slot} THR_j y_j >= D_slot      (output tokens/s; THR_j per replica, prefill paid)"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from constraints import Formulation


def add(f: Formulation) -> None:
    c = f.cands
    thr = c.ev.throughput_tokens_per_s
    for s in range(c.n_slots):
        rows = c.slot_rows(s)
        if not len(rows) or not c.has_demand[rows[0]]:
            continue
        name = "demand" if c.n_slots == 1 else f"demand[slot={c.slot_names[s]}]"
        f.model.row(name, "demand", {int(f.y[j]): float(thr[j]) for j in f.alive_in(s)}, ">=",
                    float(c.demand[rows[0]]), "tokens_per_s")
