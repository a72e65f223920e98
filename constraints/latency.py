"""Latency: TPOT from the roofline and communication terms, TTFT from the prefill, and the
SLOs on them (seconds):

    tpot >= t_linear + t_attention + t_comm + sum_j x_j T_overhead,j
           (with overlapped communication: tpot - overhead >= t_linear + t_attention and >= t_comm)
    ttft >= sum_j x_j TTFT_j
    tpot <= TPOT_slo,  ttft <= TTFT_slo,  ttft + (O - 1) tpot <= E2E_slo

Strengthening: the same SLOs per configuration, sum_b (TPOT_cb - TPOT_slo) x_cb <= 0. They
are implied by the rows above (exactly one candidate is chosen) but let presolve drop every
candidate that misses a target, which the aggregated rows alone only do in the LP's
fractional mix (docs/formulation.md section 3)."""

from __future__ import annotations

import numpy as np


def add(f) -> None:
    p, c, m = f.problem, f.cands, f.model
    ev, alive = c.ev, f.alive
    s = f.scalars
    top = float(np.nanmax(ev.tpot[alive], initial=0.0)) * 4 + 1
    s["tpot"] = m.var("tpot", 0, top, integer=False, dimension="seconds")
    s["ttft"] = m.var("ttft", 0, float(np.nanmax(ev.ttft[alive], initial=0.0)) * 2 + 1, integer=False,
                      dimension="seconds")
    overhead = {int(f.x[j]): float(ev.t_overhead[j]) for j in alive}
    parts = [[s["t_linear"], s["t_attention"]], [s["t_comm"]]] if p.assumptions.overlap_comm else \
        [[s["t_linear"], s["t_attention"], s["t_comm"]]]
    for i, group in enumerate(parts):
        coeffs = dict(overhead) | {v: 1.0 for v in group}
        coeffs[s["tpot"]] = -1.0
        m.row(f"latency.tpot_definition[{i}]", "latency", coeffs, "<=", 0.0, "seconds")
    coeffs = {int(f.x[j]): float(ev.ttft[j]) for j in alive}
    coeffs[s["ttft"]] = -1.0
    m.row("latency.ttft_definition", "latency", coeffs, "<=", 0.0, "seconds")
    slo = p.spec.slo
    if slo.tpot_ms is not None:
        m.row("latency.tpot_slo", "latency", {s["tpot"]: 1.0}, "<=", slo.tpot_ms * 1e-3, "seconds")
    if slo.ttft_ms is not None:
        m.row("latency.ttft_slo", "latency", {s["ttft"]: 1.0}, "<=", slo.ttft_ms * 1e-3, "seconds")
    if slo.e2e_latency_ms is not None:
        out = p.spec.workload.output_tokens
        m.row("latency.e2e_slo", "latency", {s["ttft"]: 1.0, s["tpot"]: float(out - 1)}, "<=",
              slo.e2e_latency_ms * 1e-3, "seconds")


def add_screening(f) -> None:
    """The SLOs per configuration: sum_b (value_cb - target) x_cb <= 0."""
    p, c, m = f.problem, f.cands, f.model
    ev, slo, out = c.ev, p.spec.slo, p.spec.workload.output_tokens
    per_config = [("tpot", slo.tpot_ms, ev.tpot), ("ttft", slo.ttft_ms, ev.ttft),
                  ("e2e_latency", slo.e2e_latency_ms, ev.ttft + ev.tpot * (out - 1))]
    for name, target, value in per_config:
        if target is None:
            continue
        for rows in f.config_groups():
            label = c.label(int(rows[0]), p.table, batch=False)
            coeffs = {int(f.x[j]): float(value[j] - target * 1e-3) for j in rows}
            m.row(f"{name}[{label}]", "latency", coeffs, "<=", 0.0, "seconds")
