"""Budget: the plan's hourly cost stays within the cap.

    sum_j C_j y_j + k_j C_j x_j <= budget    ($/hour; C_j = GPUs_j x $/GPU-hour; k_j the spare
                                             replicas of a spot row, paid once it is chosen)
    y_j = 0                      for a row without a price (C_j unknown: never free)

Resolution leaves unpriced GPUs out of a question with a budget (planner/resolve/problem.py),
and their replica bound is 0 (planner/candidates/table.py ``replicas_allowed``); the second
row keeps the model right on its own."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from constraints.inventory import with_spares

if TYPE_CHECKING:
    from constraints import Formulation


def add(f: Formulation) -> None:
    b = f.cands.limits.budget_usd_per_hour
    if b is None:
        return
    cost = f.cands.cost_per_hour
    priced = f.alive[np.isfinite(cost[f.alive])]
    f.model.row("budget", "budget", with_spares(f, priced, cost), "<=", b, "usd_per_hour")
    unpriced = f.alive[~np.isfinite(cost[f.alive])]
    if len(unpriced):
        f.model.row("budget[no price]", "budget", {int(f.y[j]): 1.0 for j in unpriced}, "<=", 0.0, "count")
