"""`planner plan`: build the formulation, solve it K times for K distinct plans, and map
each solution back to a plan with its explanation."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

import constraints
from planner.backends import HAS_SOLUTION, Feature, Status, get_backend
from planner.physics.perf import regime_of
from planner.plan.candidates import Candidates, Problem, build_candidates, resolve
from planner.plan.diagnose import diagnose
from planner.plan.explain import explain_plans
from planner.plan.relax import relaxations
from planner.plan.spec import PlanSpec
from planner.units import MS
from planner.yamlio import Document


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


def plan(spec: PlanSpec, doc: Document | None = None, *, backend: str = "cpsat", top_k: int | None = None,
         time_limit: float = 60.0, objective: str | None = None, relax: bool = True,
         calibration: str | None = None) -> PlanResult:
    t0 = time.perf_counter()
    if objective is not None and objective != spec.objective:
        spec = PlanSpec.model_validate(spec.model_dump() | {"objective": objective})
    problem = resolve(spec, doc, calibration)
    cands = build_candidates(problem)
    engine = get_backend(backend)
    k = top_k or spec.top_k
    f = constraints.build(problem, cands) if Feature.LINEAR_MODEL in engine.features else _OracleOnly(problem, cands)
    plans: list[Plan] = []
    status, gap = Status.INFEASIBLE, None
    deadline = time.perf_counter() + time_limit
    interrupted = False
    try:
        for rank in range(1, k + 1):
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            sol = engine.solve(f, remaining)
            if sol.status not in HAS_SOLUTION:
                if rank == 1:
                    status = sol.status
                break
            j, r = _decode(f, sol)
            if rank == 1:
                status, gap = sol.status, sol.gap
            plans.append(make_plan(problem, cands, j, r, rank))
            f.exclude_configuration(int(cands.config[j]), cands.label(j, problem.table, batch=False))
    except KeyboardInterrupt:
        interrupted = True     # keep what was found; the CLI exits 130
    explain_plans(problem, cands, plans)
    notes = [f"{gid} not searched: {why}" for gid, why in problem.excluded.items()]
    size = {}
    if isinstance(f, constraints.Formulation):
        size = {"variables": len(f.model.vars), "rows": len(f.model.rows),
                "candidates_fixed_by_screening": int(len(cands) - len(f.alive))}
    infeasible = not plans and status == Status.INFEASIBLE and not interrupted
    diagnosis = diagnose(problem, cands) if infeasible else []
    relaxed = [r.to_dict() for r in relaxations(spec, doc, backend=backend, time_limit=time_limit,
                                                calibration=calibration)] \
        if infeasible and relax else []
    return PlanResult(status=status.value, objective=spec.objective, backend=backend, plans=plans,
                      searched_configurations=cands.searched, solve_seconds=time.perf_counter() - t0, gap=gap,
                      excluded_gpus=dict(problem.excluded), notes=notes, model_size=size, diagnosis=diagnosis,
                      relaxations=relaxed, interrupted=interrupted)


def _decode(f, sol) -> tuple[int, int]:
    if sol.pick is not None:
        return sol.pick, int(sol.replicas or 1)
    xs = sol.values[f.x]
    j = int(np.argmax(xs))
    r = int(round(sol.values[f.y[j]])) if f.replicas else 1
    return j, max(r, 1)


class _OracleOnly:
    """What the oracle needs from a formulation: the problem, candidates and exclusions."""

    def __init__(self, problem: Problem, cands: Candidates) -> None:
        self.problem, self.cands, self.excluded = problem, cands, set()

    def exclude_configuration(self, config_id: int, label: str) -> None:
        self.excluded.add(config_id)
