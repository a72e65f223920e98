"""The independent oracle: enumerate every candidate and evaluate the spec's limits on the
physics directly, with no constraint model. Replicas: the fewest that meet the demand
(every other limit caps them from above), or for the throughput objective the most the
limits allow."""

from __future__ import annotations

import time

import numpy as np

from planner.backends import Feature, Solution, Status


class ExhaustiveBackend:
    name = "exhaustive"
    features = frozenset({Feature.INDEPENDENT_ORACLE, Feature.INTEGER, Feature.TIME_LIMIT})

    def solve(self, f, time_limit: float, seed: int = 0) -> Solution:
        t0 = time.perf_counter()
        value, replicas, ok = evaluate_all(f.problem, f.cands, f.excluded)
        if not ok.any():
            return Solution(Status.INFEASIBLE, None, seconds=time.perf_counter() - t0)
        sense = -1.0 if f.problem.spec.objective == "throughput" else 1.0
        score = np.where(ok, sense * value, np.inf)
        pick = int(np.argmin(score))           # ties: the first candidate (stable, deterministic)
        return Solution(Status.OPTIMAL, None, pick=pick, replicas=int(replicas[pick]), gap=0.0,
                        seconds=time.perf_counter() - t0)


def replica_bounds(p, cands) -> tuple[np.ndarray, np.ndarray]:
    """(fewest replicas the demand needs, most the limits allow) per candidate."""
    ev, gpu = cands.ev, cands.configs.gpu
    lim, s = p.spec.limits, p.spec.search
    hi = np.full(len(cands), 100_000.0)
    if s.max_gpus is not None:
        hi = np.minimum(hi, np.floor(s.max_gpus / ev.gpus))
    for gid, count in lim.inventory.items():
        if gid in p.table.ids:
            hi = np.where(gpu == p.table.ids.index(gid), np.minimum(hi, np.floor(count / ev.gpus)), hi)
    if lim.budget_usd_per_hour is not None:
        hi = np.minimum(hi, np.floor(lim.budget_usd_per_hour / np.maximum(np.nan_to_num(ev.cost_per_hour), 1e-300)))
    if lim.power_cap_w is not None:
        hi = np.minimum(hi, np.floor(lim.power_cap_w / np.maximum(np.nan_to_num(ev.power_w), 1e-300)))
    if s.max_nodes is not None:
        per_node = p.table.per_node[gpu]
        slots = np.where(ev.gpus <= per_node, ev.gpus, np.ceil(ev.gpus / per_node) * per_node)
        hi = np.minimum(hi, np.floor(s.max_nodes * per_node / slots))
    demand = p.demand_tokens_per_s
    lo = np.ones(len(cands)) if demand is None else np.maximum(1.0, np.ceil(demand / ev.throughput_tokens_per_s))
    return lo, hi


def evaluate_all(p, cands, excluded: set[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Objective value, replicas and feasibility of every candidate, from the physics."""
    ev, slo, out = cands.ev, p.spec.slo, p.spec.workload.output_tokens
    ok = ev.fits.copy()
    if slo.tpot_ms is not None:
        ok &= ev.tpot <= slo.tpot_ms * 1e-3
    if slo.ttft_ms is not None:
        ok &= ev.ttft <= slo.ttft_ms * 1e-3
    if slo.e2e_latency_ms is not None:
        ok &= ev.ttft + ev.tpot * (out - 1) <= slo.e2e_latency_ms * 1e-3
    if excluded:
        ok &= ~np.isin(cands.config, list(excluded))
    lo, hi = replica_bounds(p, cands)
    ok &= lo <= hi
    obj = p.spec.objective
    replicas = hi if obj == "throughput" else lo
    if p.demand_tokens_per_s is None and obj != "throughput":
        replicas = np.ones(len(cands))
    if obj == "cost_per_million_tokens" and p.demand_tokens_per_s is None:
        value = ev.cost_per_million_tokens
    elif obj in ("cost_per_million_tokens", "cost_per_hour"):
        value = ev.cost_per_hour * replicas
    elif obj == "tpot":
        value = ev.tpot
    elif obj == "ttft":
        value = ev.ttft
    elif obj == "gpus":
        value = ev.gpus * replicas
    else:
        value = ev.throughput_tokens_per_s * replicas
    ok &= np.isfinite(value)
    return value, replicas, ok
