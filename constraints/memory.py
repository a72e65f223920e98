"""Memory capacity, per configuration: the chosen batch's weights + KV cache + activations
+ reserve fit in the engine's usable memory of each GPU.

    sum_b (M_cb - U_c) x_cb <= 0     (bytes per GPU; M affine in the batch b)

With the one-hot choice this is exactly M <= U for the chosen candidate; the
coefficient (M - U) keeps its sign under any integer rounding (docs/formulation.md)."""

from __future__ import annotations

import numpy as np

from planner.candidates.table import Candidates


def screened(c: Candidates) -> np.ndarray:
    """Rows whose coefficient (M - U) is positive: with one candidate chosen, x_j = 1 breaks
    the row on its own, so x_j is fixed to 0 and the row (whose other terms are <= 0) can
    never bind. Vectorised; the row itself is not built (constraints.screen)."""
    with np.errstate(invalid="ignore"):
        return (c.ev.total_bytes - c.ev.usable_bytes) > 0
