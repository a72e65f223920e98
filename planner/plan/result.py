"""Plans and plan results: what a solve returns, JSON-ready."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from planner.candidates import Candidates
from planner.physics.perf import regime_of
from planner.resolve import Problem
from planner.units import MS


@dataclass
class Plan:
    rank: int
    gpu: str
    gpus: int
    nodes: int
    tp: int
    pp: int
    ep: int
    replicas: int
    quantization: str
    kv_dtype: str
    batch: int
    concurrency: int
    ttft_ms: float
    tpot_ms: float
    e2e_latency_ms: float
    throughput_tokens_per_s: float
    throughput_tokens_per_s_per_gpu: float
    cost_per_hour: float | None
    cost_per_million_tokens: float | None
    power_w: float | None
    memory: dict[str, float]
    mbu: float
    mfu: float
    regime: str
    regime_shares: dict[str, float]
    objective_value: float
    explanation: dict[str, Any] = field(default_factory=dict)
    candidate: int = -1


@dataclass
class PlanResult:
    status: str
    objective: str
    backend: str
    plans: list[Plan]
    searched_configurations: int
    solve_seconds: float | None
    gap: float | None
    excluded_gpus: dict[str, str]
    notes: list[str] = field(default_factory=list)
    model_size: dict[str, int] = field(default_factory=dict)
    diagnosis: list[dict] = field(default_factory=list)   # when infeasible: per family, what rules it out
    relaxations: list[dict] = field(default_factory=list)  # when infeasible: smallest change per limit
    interrupted: bool = False                              # Ctrl-C: the plans found so far

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for plan in d["plans"]:
            plan.pop("candidate", None)
        return d


def _nan_none(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def objective_value(p: Problem, c: Candidates, j: int, replicas: int) -> float:
    ev, obj = c.ev, p.spec.objective
    if obj == "cost_per_million_tokens" and p.demand_tokens_per_s is None:
        return float(ev.cost_per_million_tokens[j])
    if obj in ("cost_per_million_tokens", "cost_per_hour"):
        return float(ev.cost_per_hour[j] * replicas)
    if obj == "tpot":
        return float(ev.tpot[j])
    if obj == "ttft":
        return float(ev.ttft[j])
    if obj == "gpus":
        return float(ev.gpus[j] * replicas)
    return float(ev.throughput_tokens_per_s[j] * replicas)


def make_plan(p: Problem, c: Candidates, j: int, replicas: int, rank: int) -> Plan:
    ev, d = c.ev, c.describe(j, p.table)
    gpus_per_replica = int(ev.gpus[j])
    per_node = int(p.table.per_node[c.configs.gpu[j]])
    if gpus_per_replica <= per_node:
        nodes = math.ceil(replicas * gpus_per_replica / per_node)
    else:
        nodes = replicas * math.ceil(gpus_per_replica / per_node)
    capacity = float(ev.throughput_tokens_per_s[j] * replicas)
    served = min(capacity, p.demand_tokens_per_s) if p.demand_tokens_per_s else capacity
    cost_h = _nan_none(float(ev.cost_per_hour[j] * replicas))
    shares = {"weights": float(ev.share_weights[j]), "kv_cache": float(ev.share_kv[j]),
              "compute": float(ev.share_compute[j]), "communication": float(ev.share_comm[j]),
              "overhead": float(ev.share_overhead[j])}
    return Plan(
        rank=rank, gpu=d["gpu"], gpus=gpus_per_replica * replicas, nodes=nodes, tp=d["tp"], pp=d["pp"], ep=d["ep"],
        replicas=replicas, quantization=d["quantization"], kv_dtype=d["kv_dtype"], batch=d["batch"],
        concurrency=int(ev.concurrency[j]) * replicas,
        ttft_ms=float(ev.ttft[j] / MS), tpot_ms=float(ev.tpot[j] / MS),
        e2e_latency_ms=float((ev.ttft[j] + ev.tpot[j] * (p.spec.workload.output_tokens - 1)) / MS),
        throughput_tokens_per_s=capacity, throughput_tokens_per_s_per_gpu=capacity / (gpus_per_replica * replicas),
        cost_per_hour=cost_h,
        cost_per_million_tokens=None if cost_h is None else cost_h / (served * 3600.0) * 1e6,
        power_w=_nan_none(float(ev.power_w[j] * replicas)),
        memory={k: float(getattr(ev, k)[j]) for k in ("weights_bytes", "kv_cache_bytes", "activation_bytes",
                                                      "reserve_bytes", "total_bytes", "usable_bytes",
                                                      "capacity_bytes")},
        mbu=float(ev.mbu[j]), mfu=float(ev.mfu[j]), regime=regime_of(shares), regime_shares=shares,
        objective_value=objective_value(p, c, j, replicas), candidate=j,
    )


