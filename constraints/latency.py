"""Latency: TPOT from the roofline and communication terms, TTFT from the prefill, and the
SLOs on them (seconds), per slot:

    tpot >= t_linear + t_attention + t_comm + sum_j x_j T_overhead,j
           (with overlapped communication: tpot - overhead >= t_linear + t_attention and >= t_comm)
    ttft >= sum_j x_j TTFT_j
    tpot <= TPOT_slo,  ttft <= TTFT_slo,  ttft + (O - 1) tpot <= E2E_slo

Strengthening: the same SLOs per configuration, sum_b (TPOT_cb - TPOT_slo) x_cb <= 0. They
are implied by the rows above (exactly one candidate is chosen) but let presolve drop every
candidate that misses a target, which the aggregated rows alone only do in the LP's
fractional mix (docs/formulation.md section 3). Targets and values come from the
candidate table's SLO checks (planner/candidates), the one home of the ms -> s conversion."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from constraints import Formulation


def add(f: Formulation) -> None:
    c, m = f.cands, f.model
    ev = c.ev
    for s in range(c.n_slots):
        rows = f.alive_in(s)
        tpot, ttft = f.scalar_name("tpot", s), f.scalar_name("ttft", s)
        f.scalars[tpot] = m.var(tpot, 0, float(np.nanmax(ev.tpot[rows], initial=0.0)) * 4 + 1, integer=False,
                                dimension="seconds")
        f.scalars[ttft] = m.var(ttft, 0, float(np.nanmax(ev.ttft[rows], initial=0.0)) * 2 + 1, integer=False,
                                dimension="seconds")
        lin, att, comm = (f.scalars[f.scalar_name(n, s)] for n in ("t_linear", "t_attention", "t_comm"))
        overhead = {int(f.x[j]): float(ev.t_overhead[j]) for j in rows}
        parts = [[lin, att], [comm]] if c.overlap_comm else [[lin, att, comm]]
        suffix = "" if c.n_slots == 1 else f"[slot={c.slot_names[s]}]"
        for i, group in enumerate(parts):
            coeffs = dict(overhead) | {v: 1.0 for v in group}
            coeffs[f.scalars[tpot]] = -1.0
            m.row(f"latency.tpot_definition[{i}]{suffix}", "latency", coeffs, "<=", 0.0, "seconds")
        coeffs = {int(f.x[j]): float(ev.ttft[j]) for j in rows}
        coeffs[f.scalars[ttft]] = -1.0
        m.row(f"latency.ttft_definition{suffix}", "latency", coeffs, "<=", 0.0, "seconds")
        mine = c.slot_rows(s)
        if not len(mine):
            continue
        out = float(c.output_tokens[mine[0]])
        for check in c.slo:
            target = float(check.target_s[mine[0]])
            if not np.isfinite(target):
                continue
            lhs = {"tpot": {f.scalars[tpot]: 1.0}, "ttft": {f.scalars[ttft]: 1.0},
                   "e2e_latency": {f.scalars[ttft]: 1.0, f.scalars[tpot]: out - 1.0}}[check.name]
            m.row(f"latency.{check.name}_slo{suffix}", "latency", lhs, "<=", target, "seconds")


def add_screening(f: Formulation) -> None:
    """The SLOs per configuration: sum_b (value_cb - target) x_cb <= 0."""
    c, m = f.cands, f.model
    for check in c.slo:
        for rows in c.config_groups():
            if not np.isfinite(check.target_s[rows[0]]):
                continue
            label = c.label(int(rows[0]), batch=False)
            coeffs = {int(f.x[j]): float(check.value_s[j] - check.target_s[j]) for j in rows}
            m.row(f"{check.name}[{label}]", "latency", coeffs, "<=", 0.0, "seconds")
