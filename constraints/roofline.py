"""Roofline step time: a decode stage costs the larger of reading its weights and doing its
linear-layer FLOPs, plus the larger of reading the KV cache and doing attention. A max of
terms is two linear lower bounds on a continuous variable:

    t_linear    >= sum_j x_j PP_j W_j / (BW_j eta_M)      t_linear    >= sum_j x_j PP_j FLOP_j / (F_j eta_F)
    t_attention >= sum_j x_j PP_j KV_j / (BW_j eta_M)     t_attention >= sum_j x_j PP_j FLOPattn_j / (F_j eta_F)

(seconds per output token, summed over the PP stages of one pipeline cycle)."""

from __future__ import annotations

import numpy as np


def _lower_bound(f, var: int, name: str, values: np.ndarray) -> None:
    coeffs = {int(f.x[j]): float(values[j]) for j in f.alive}
    coeffs[var] = -1.0
    f.model.row(name, "roofline", coeffs, "<=", 0.0, "seconds")


def add(f) -> None:
    ev, pp, m = f.cands.ev, f.cands.configs.pp, f.model
    terms = pp * np.maximum.reduce([ev.t_weights, ev.t_linear_compute, ev.t_kv, ev.t_attn_compute])
    bound = float(np.nanmax(terms[f.alive], initial=0.0))
    f.scalars["t_linear"] = m.var("t_linear", 0, bound * 2 + 1, integer=False, dimension="seconds")
    f.scalars["t_attention"] = m.var("t_attention", 0, bound * 2 + 1, integer=False, dimension="seconds")
    _lower_bound(f, f.scalars["t_linear"], "roofline.weight_bandwidth", pp * ev.t_weights)
    _lower_bound(f, f.scalars["t_linear"], "roofline.linear_compute", pp * ev.t_linear_compute)
    _lower_bound(f, f.scalars["t_attention"], "roofline.kv_bandwidth", pp * ev.t_kv)
    _lower_bound(f, f.scalars["t_attention"], "roofline.attention_compute", pp * ev.t_attn_compute)
