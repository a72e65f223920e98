"""Interconnect communication per output token: tensor-parallel all-reduces and
expert-parallel all-to-alls of every stage, plus the pipeline hops (alpha-beta costs
from the physics, section 5 of docs/model.md), one variable per slot:

    t_comm >= sum_j x_j (PP_j (T_TP,j + T_EP,j) + T_PP,j)      (seconds)"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from planner.candidates.table import Candidates

if TYPE_CHECKING:
    from constraints import Formulation


def per_token(c: Candidates) -> np.ndarray:
    ev, pp = c.ev, c.configs.pp
    return pp * (ev.t_tp_comm + ev.t_ep_comm) + ev.t_pp_comm


def add(f: Formulation) -> None:
    m = f.model
    values = per_token(f.cands)
    for s in range(f.cands.n_slots):
        rows = f.alive_in(s)
        name = f.scalar_name("t_comm", s)
        f.scalars[name] = m.var(name, 0, float(np.nanmax(values[rows], initial=0.0)) * 2 + 1, integer=False,
                                dimension="seconds")
        coeffs = {int(f.x[j]): float(values[j]) for j in rows}
        coeffs[f.scalars[name]] = -1.0
        suffix = "" if f.cands.n_slots == 1 else f"[slot={f.cands.slot_names[s]}]"
        m.row("communication.per_token" + suffix, "communication", coeffs, "<=", 0.0, "seconds")
