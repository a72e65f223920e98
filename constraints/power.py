"""Power: the plan's GPUs draw at most the cap at TDP.

    sum_j P_j y_j <= cap      (watts; P_j = GPUs_j x TDP)"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from constraints import Formulation


def add(f: Formulation) -> None:
    cap = f.cands.limits.power_cap_w
    if cap is None:
        return
    pw = f.cands.ev.power_w
    f.model.row("power", "power", {int(f.y[j]): float(pw[j]) for j in f.alive}, "<=", cap, "watts")
