"""Memory capacity, per configuration: the chosen batch's weights + KV cache + activations
+ reserve fit in the engine's usable memory of each GPU.

    sum_b (M_cb - U_c) x_cb <= 0     (bytes per GPU; M affine in the batch b)

With the one-hot choice this is exactly M <= U for the chosen candidate; the
coefficient (M - U) keeps its sign under any integer rounding (docs/formulation.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from constraints import Formulation


def add_screening(f: Formulation) -> None:
    c, m = f.cands, f.model
    ev = c.ev
    for rows in c.config_groups():
        label = c.label(int(rows[0]), batch=False)
        coeffs = {int(f.x[j]): float(ev.total_bytes[j] - ev.usable_bytes[j]) for j in rows}
        m.row(f"memory[{label}]", "memory", coeffs, "<=", 0.0, "bytes")
