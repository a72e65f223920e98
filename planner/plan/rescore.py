"""Re-score ranked plans with the discrete-event simulator (planner/simulate.py): each plan's
configuration at its own operating point (one lane fed its share of the replica's arrivals,
or of its closed-loop clients), with the slot's arrival process and whole length
distributions, next to the closed-form figures the plan reports (docs/load.md section 9)."""

from __future__ import annotations

import numpy as np

from planner.candidates.table import Candidates
from planner.physics.load import engine, step_physics
from planner.plan.result import Plan
from planner.resolve.problem import Problem
from planner.resolve.workload import Lengths as ResolvedLengths
from planner.simulate import Arrivals, Lengths, simulate_config

REQUESTS = 5000
METRICS = ("ttft", "tpot", "itl", "e2e")


def simulate_plans(p: Problem, c: Candidates, plans: list[Plan], *, requests: int = REQUESTS, seed: int = 0) -> None:
    """Attach ``plan.simulation``: simulated mean/p50/p90/p99 per metric (ms), the closed
    form's figures beside them, and the share of requests meeting each target."""
    for plan in plans:
        j = plan.candidate
        slot = c.slots[int(c.slot[j])]
        phys = step_physics(slot.model, p.table, c.configs.take(np.array([j])), p.assumptions)
        eng = engine(phys)
        d = slot.demand
        rate = plan.load["requests_per_s_per_replica"]
        if d is not None and d.kind == "clients":
            arrivals = Arrivals("closed", clients=max(1, int(round(plan.share * d.value / plan.replicas))))
        elif d is not None and d.arrival_cv2 != 1.0:
            arrivals = Arrivals("gamma", rate=rate, cv=float(np.sqrt(d.arrival_cv2)))
        else:
            arrivals = Arrivals("poisson", rate=rate)
        targets = [("e2e" if t.metric == "e2e_latency" else t.metric, t.statistic, t.seconds) for t in slot.targets]
        try:
            r = simulate_config(phys, eng, 0, arrivals, _lengths(slot.input), _lengths(slot.output),
                                n_requests=requests, seed=seed, targets=targets)
        except ValueError as exc:          # e.g. a request longer than the KV pool of one lane
            plan.simulation = {"error": str(exc)}
            continue
        s = r.summary
        pct = plan.load.get("percentiles_ms", {})
        figures = {f"{m}_{q}": s[f"{m}_{q}"] * 1e3 for m in METRICS for q in ("mean", "p50", "p90", "p99")
                   if f"{m}_{q}" in s}
        plan.simulation = {
            "requests": int(s["requests"]), "seed": seed, "arrivals": arrivals.kind,
            "simulated_ms": figures,
            "closed_form_ms": {k: pct[k] for k in figures if k in pct},
            "throughput_tokens_per_s_per_replica": s["throughput_tokens_per_s"],
            "concurrency_per_replica": s["concurrency"],
            "targets": [{"path": t.path, "statistic": t.statistic, "target_ms": t.seconds * 1e3,
                         "simulated_ms": s.get(f"{'e2e' if t.metric == 'e2e_latency' else t.metric}_{t.statistic}",
                                               float("nan")) * 1e3,
                         "met": bool(s.get(f"met_{'e2e' if t.metric == 'e2e_latency' else t.metric}_{t.statistic}",
                                           0.0)),
                         "share_of_requests_within": s.get(
                             f"attain_{'e2e' if t.metric == 'e2e_latency' else t.metric}_{t.statistic}")}
                        for t in slot.targets],
        }


def _lengths(x: ResolvedLengths) -> Lengths:
    values = np.round(np.asarray(x.values)).astype(np.int64)
    return Lengths(values.tolist() if len(values) > 1 else int(values[0]),
                   list(x.probabilities) if len(values) > 1 else None)
