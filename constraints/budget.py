"""Budget: the plan's hourly cost stays within the cap.

    sum_j C_j y_j <= budget      ($/hour; C_j = GPUs_j x $/GPU-hour)"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from constraints import Formulation


def add(f: Formulation) -> None:
    b = f.cands.limits.budget_usd_per_hour
    if b is None:
        return
    cost = np.nan_to_num(f.cands.cost_per_hour, nan=0.0)
    f.model.row("budget", "budget", {int(f.y[j]): float(cost[j]) for j in f.alive}, "<=", b, "usd_per_hour")
