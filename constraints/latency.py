"""Latency under load, per slot (seconds): the mean TPOT and TTFT at the chosen row's
capacity, bounded below by the idle step's roofline and communication terms, and every
latency target (a statistic of TTFT, TPOT, ITL or end-to-end latency) per configuration:

    tpot >= t_linear + t_attention + t_comm + sum_j x_j T_overhead,j     (the idle step)
           (with overlapped communication: tpot - overhead >= t_linear + t_attention and >= t_comm)
    tpot >= sum_j x_j TPOT_j,   ttft >= sum_j x_j TTFT_j                 (means under load)
    sum_b (V_cb - target) x_cb <= 0     for every target, V its statistic at capacity

With one candidate chosen the per-configuration rows are exact; they let presolve drop
every candidate that misses a target (docs/formulation.md section 3). Targets and values
come from the candidate table's SLO checks (planner/candidates), the one home of the ms -> s
conversion; the statistics come from the load model (docs/load.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from planner.candidates.table import Candidates

if TYPE_CHECKING:
    from constraints import Formulation


def add(f: Formulation) -> None:
    c, m = f.cands, f.model
    ev = c.ev
    for s in range(c.n_slots):
        rows = f.alive_in(s)
        tpot, ttft = f.scalar_name("tpot", s), f.scalar_name("ttft", s)
        top_tpot = float(np.nanmax(np.maximum(ev.tpot[rows], _finite(c.tpot[rows])), initial=0.0))
        f.scalars[tpot] = m.var(tpot, 0, top_tpot * 4 + 1, integer=False, dimension="seconds")
        f.scalars[ttft] = m.var(ttft, 0, float(np.nanmax(_finite(c.ttft[rows]), initial=0.0)) * 2 + 1,
                                integer=False, dimension="seconds")
        suffix = "" if c.n_slots == 1 else f"[slot={c.slot_names[s]}]"
        coeffs = {int(f.x[j]): float(c.tpot[j]) for j in rows}
        coeffs[f.scalars[tpot]] = -1.0
        m.row(f"latency.tpot_under_load{suffix}", "latency", coeffs, "<=", 0.0, "seconds")
        coeffs = {int(f.x[j]): float(c.ttft[j]) for j in rows}
        coeffs[f.scalars[ttft]] = -1.0
        m.row(f"latency.ttft_definition{suffix}", "latency", coeffs, "<=", 0.0, "seconds")


def _finite(x: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(x), x, 0.0)


def screened(c: Candidates) -> np.ndarray:
    """The SLO rows per configuration, sum_b (value_cb - target) x_cb <= 0, and the rows that
    no rate serves (sum x <= 0), as the mask of candidates they fix to 0: those with a
    positive coefficient (a value above the target, or +inf: a plain violation). The rows
    themselves never bind once those are fixed, so they are not built (constraints.screen)."""
    dead = np.zeros(len(c), dtype=bool)
    if c.load is not None:
        dead |= c.ev.fits & ~(c.load.rate > 0)
    for check in c.slo:
        target, value = check.target_s, check.value_s
        with np.errstate(invalid="ignore"):
            excess = np.where(np.isfinite(value), value - target, target)
            dead |= np.isfinite(target) & (excess > 0)
    return dead


def per_row(c: Candidates) -> tuple[np.ndarray, np.ndarray]:
    """(tpot, ttft) each row alone gives the slot's scalars: the rows above with one
    candidate chosen (the values pruning and the incumbent read)."""
    return c.tpot, c.ttft
