"""Power: the plan's GPUs draw at most the cap at TDP.

    sum_j P_j (y_j + k_j x_j) <= cap      (watts; P_j = GPUs_j x TDP; k_j a spot deployment's
                                           spare replicas, running though they serve nothing)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from constraints.inventory import with_spares

if TYPE_CHECKING:
    from constraints import Formulation


def add(f: Formulation) -> None:
    cap = f.cands.limits.power_cap_w
    if cap is None:
        return
    pw = f.cands.ev.power_w
    f.model.row("power", "power", with_spares(f, f.alive, pw), "<=", cap, "watts")
