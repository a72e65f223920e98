"""Roofline step time: a decode stage costs the larger of reading its weights and doing its
linear-layer FLOPs, plus the larger of reading the KV cache and doing attention. A max of
terms is two linear lower bounds on a continuous variable (one pair per slot):

    t_linear    >= sum_j x_j PP_j W_j / (BW_j eta_M)      t_linear    >= sum_j x_j PP_j FLOP_j / (F_j eta_F)
    t_attention >= sum_j x_j PP_j KV_j / (BW_j eta_M)     t_attention >= sum_j x_j PP_j FLOPattn_j / (F_j eta_F)

(seconds per output token, summed over the PP stages of one pipeline cycle)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from planner.candidates.table import Candidates

if TYPE_CHECKING:
    from constraints import Formulation


def _lower_bound(f: Formulation, rows: np.ndarray, var: int, name: str, values: np.ndarray) -> None:
    coeffs = {int(f.x[j]): float(values[j]) for j in rows}
    coeffs[var] = -1.0
    f.model.row(name, "roofline", coeffs, "<=", 0.0, "seconds")


def per_row(c: Candidates) -> tuple[np.ndarray, np.ndarray]:
    """(t_linear, t_attention) that each row alone sets: the larger of each pair below."""
    ev, pp = c.ev, c.configs.pp
    return pp * np.maximum(ev.t_weights, ev.t_linear_compute), pp * np.maximum(ev.t_kv, ev.t_attn_compute)


def add(f: Formulation) -> None:
    ev, pp, m = f.cands.ev, f.cands.configs.pp, f.model
    terms = pp * np.maximum.reduce([ev.t_weights, ev.t_linear_compute, ev.t_kv, ev.t_attn_compute])
    for s in range(f.cands.n_slots):
        rows = f.alive_in(s)
        bound = float(np.nanmax(terms[rows], initial=0.0))
        lin, att = f.scalar_name("t_linear", s), f.scalar_name("t_attention", s)
        f.scalars[lin] = m.var(lin, 0, bound * 2 + 1, integer=False, dimension="seconds")
        f.scalars[att] = m.var(att, 0, bound * 2 + 1, integer=False, dimension="seconds")
        suffix = "" if f.cands.n_slots == 1 else f"[slot={f.cands.slot_names[s]}]"
        _lower_bound(f, rows, f.scalars[lin], "roofline.weight_bandwidth" + suffix, pp * ev.t_weights)
        _lower_bound(f, rows, f.scalars[lin], "roofline.linear_compute" + suffix, pp * ev.t_linear_compute)
        _lower_bound(f, rows, f.scalars[att], "roofline.kv_bandwidth" + suffix, pp * ev.t_kv)
        _lower_bound(f, rows, f.scalars[att], "roofline.attention_compute" + suffix, pp * ev.t_attn_compute)
