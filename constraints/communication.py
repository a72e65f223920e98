"""Interconnect communication per output token: tensor-parallel all-reduces and
expert-parallel all-to-alls of every stage, plus the pipeline hops (alpha-beta costs
from the physics, section 5 of docs/model.md):

    t_comm >= sum_j x_j (PP_j (T_TP,j + T_EP,j) + T_PP,j)      (seconds)"""

from __future__ import annotations

import numpy as np


def add(f) -> None:
    ev, pp, m = f.cands.ev, f.cands.configs.pp, f.model
    per_token = pp * (ev.t_tp_comm + ev.t_ep_comm) + ev.t_pp_comm
    f.scalars["t_comm"] = m.var("t_comm", 0, float(np.nanmax(per_token[f.alive], initial=0.0)) * 2 + 1, integer=False, dimension="seconds")
    coeffs = {int(f.x[j]): float(per_token[j]) for j in f.alive}
    coeffs[f.scalars["t_comm"]] = -1.0
    m.row("communication.per_token", "communication", coeffs, "<=", 0.0, "seconds")
