"""Plans and plan results: what a solve returns, as data. Explanations, diagnoses and
relaxations are facts (the constraint, the value used, the limit, its unit and spec path);
the CLI and reports word them (planner/cli/wording.py). A result records its inputs and
round-trips through JSON (``PlanResult.from_dict``)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from planner.candidates.load import operating_point, pool_operating_point
from planner.candidates.objectives import OBJECTIVES
from planner.candidates.table import Candidates, nodes_for
from planner.catalog.checkpoints import serving_checkpoint
from planner.physics.perf import regime_of, regime_shares
from planner.physics.quant import SCHEMES
from planner.resolve.problem import Problem
from planner.units import MS


@dataclass
class Fact:
    """One reason, as data. ``constraint`` names what binds or rules out (memory, tpot,
    demand, budget, ...); ``value`` is the figure used against ``limit``, both in ``unit``;
    ``path`` is the spec path of the limit when the input sets it; ``context`` holds the other
    figures a sentence needs (named with their units)."""

    constraint: str
    value: float | None = None
    limit: float | None = None
    unit: str = ""
    path: str | None = None
    context: dict[str, Any] = field(default_factory=dict)


@dataclass
class Explanation:
    batch_limit: list[Fact]            # the first binds; the others would bind too
    count_limit: Fact
    regime: Fact
    headroom: list[Fact]               # memory, and each latency target at the operating point
    capacity: Fact | None = None       # what caps a replica's request rate (a target, or the utilisation ceiling)
    versus_next: Fact | None = None


@dataclass
class Plan:
    rank: int
    workload: str
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
    concurrency: float                # requests in flight, all replicas (Little's law at the operating point)
    ttft_ms: float
    tpot_ms: float
    e2e_latency_ms: float
    throughput_tokens_per_s: float
    throughput_tokens_per_s_per_gpu: float
    price_usd_per_gpu_hour: float | None
    price_kind: str | None            # on-demand, reserved, serverless, estimate (planner/catalog/data/gpus.yaml)
    price_date: str | None
    quality: str                      # what the weight format costs in accuracy (docs/support.md)
    cost_per_hour: float | None
    cost_per_million_tokens: float | None
    power_w: float | None
    memory: dict[str, float]
    mbu: float
    mfu: float
    regime: str
    regime_shares: dict[str, float]
    objective_value: float
    load: dict[str, Any] = field(default_factory=dict)   # the operating point: rate, utilisation, percentiles
    simulation: dict[str, Any] | None = None             # the simulator's re-score (planner/plan/rescore.py)
    explanation: Explanation | None = None
    candidate: int = -1
    role: str = "aggregated"          # a fleet's prefill or decode pool replica (docs/disaggregation.md)
    checkpoint: dict[str, Any] | None = None   # the checkpoint that serves its format (planner/catalog/checkpoints.py)


@dataclass
class Diagnosis:
    """Why a family of options (a GPU type, a quantization) is ruled out, as a fact."""

    family: str                 # gpu | quantization
    name: str
    fact: Fact


@dataclass
class Relaxation:
    limit: str            # YAML path of the limit
    current: Any
    needed: Any           # the smallest value that makes the instance feasible (None: no value does)
    patch: dict | None    # merge into the instance file to apply it
    plan: dict | None     # the plan the relaxed instance gives (None if still infeasible)


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
    inputs: dict[str, Any] = field(default_factory=dict)     # models, assumptions, calibration, prices, catalog
    notes: list[str] = field(default_factory=list)
    model_size: dict[str, int] = field(default_factory=dict)
    diagnosis: list[Diagnosis] = field(default_factory=list)      # when infeasible: per family
    relaxations: list[Relaxation] = field(default_factory=list)   # when infeasible: smallest change per limit
    interrupted: bool = False                                     # Ctrl-C: the plans found so far
    unsupported: list[dict[str, str]] = field(default_factory=list)  # searched combinations the engine does not run

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for plan in d["plans"]:
            plan.pop("candidate", None)
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> PlanResult:
        """The inverse of ``to_dict`` (a report rebuilt from a plan's JSON)."""
        def fact(x: dict) -> Fact:
            return Fact(**x)

        def explanation(e: dict | None) -> Explanation | None:
            if e is None:
                return None
            return Explanation(batch_limit=[fact(x) for x in e["batch_limit"]], count_limit=fact(e["count_limit"]),
                               regime=fact(e["regime"]), headroom=[fact(x) for x in e["headroom"]],
                               capacity=None if e.get("capacity") is None else fact(e["capacity"]),
                               versus_next=None if e.get("versus_next") is None else fact(e["versus_next"]))

        plans = [Plan(**{**p, "explanation": explanation(p.get("explanation"))}) for p in d["plans"]]
        rest = {f.name: d[f.name] for f in fields(PlanResult) if f.name in d and f.name not in
                ("plans", "diagnosis", "relaxations")}
        return PlanResult(**rest, plans=plans,
                          diagnosis=[Diagnosis(x["family"], x["name"], fact(x["fact"]))
                                     for x in d.get("diagnosis", [])],
                          relaxations=[Relaxation(**x) for x in d.get("relaxations", [])])


def quality_of(scheme: str, release: str | None = None) -> str:
    """The accuracy cost of a weight format, in words the plan carries (docs/support.md): the
    release format (``release``, the model's checkpoint as published) is the reference, whatever
    its bits; another format is judged by its fewest bits (a MoE's experts included)."""
    if scheme == (release or "w16a16"):
        return "the release format: the model as published" + ("" if release in (None, "w16a16") else
                                                                  f" ({SCHEMES[scheme].description})")
    bits = min(SCHEMES[scheme].bits_per_weight, SCHEMES[scheme].expert_bits)
    if bits >= 16:
        return "16-bit weights: the reference"
    if bits >= 8:
        return "8-bit weights: near-lossless for most models (check your task)"
    return "LOSSY: 4-bit weights; validate accuracy on your task before serving"


def _nan_none(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def make_plan(p: Problem, c: Candidates, j: int, replicas: int, rank: int, share: float = 1.0) -> Plan:
    """Row j with ``replicas`` replicas, its figures at the load it is priced at: the slot's
    demand (``share`` of it, when a fleet splits the traffic) shared by the replicas, or
    (without a demand) each replica at its capacity."""
    ev, d = c.ev, c.describe(j)
    slot = c.slots[int(c.slot[j])]
    assert c.load is not None
    one = c.configs.take(np.array([j]))
    if len(c.role) and c.role[j] != 0:     # a pool replica (disaggregation): its own pool's load model
        assert slot.demand is not None and slot.demand.requests_per_s is not None
        at = pool_operating_point(slot, p.table, one, p.assumptions, int(c.role[j]),
                                  share * float(slot.demand.requests_per_s) / replicas)
    elif slot.demand is not None and slot.demand.kind == "clients":
        at = operating_point(slot, p.table, one, p.assumptions, clients=share * slot.demand.value / replicas)
    elif slot.demand is not None:
        assert slot.demand.requests_per_s is not None
        at = operating_point(slot, p.table, one, p.assumptions,
                             rate=share * float(slot.demand.requests_per_s) / replicas)
    else:
        at = operating_point(slot, p.table, one, p.assumptions, rate=float(c.load.rate[j]))
    gpus_per_replica = int(ev.gpus[j])
    served = at["tokens_per_s"] * replicas
    cost_h = _nan_none(float(c.cost_per_hour[j] * replicas))
    shares = regime_shares(ev, j)
    binding = int(c.load.binding[j])
    load = {"requests_per_s_per_replica": at["rate"], "utilization": at["utilization"],
            "capacity_requests_per_s_per_replica": float(c.load.rate[j]),
            "capacity_tokens_per_s_per_replica": float(c.load.tokens_per_s[j]),
            "capacity_utilization": float(c.load.utilization[j]),
            "binding": slot.targets[binding].path if binding >= 0 else "slo.max_utilization",
            "running_per_lane": at["running_per_lane"],
            "percentiles_ms": {k: at[k] / MS for k in at if k.split("_")[0] in ("ttft", "tpot", "itl", "e2e")},
            "scheduler": {"max_num_seqs": int(at["max_seqs"]), "max_num_batched_tokens": int(at["token_budget"])},
            "idle": {"ttft_ms": float(ev.ttft[j] / MS), "tpot_ms": float(ev.tpot[j] / MS)}}
    return Plan(
        rank=rank, workload=c.slot_names[int(c.slot[j])], gpu=d["gpu"], gpus=gpus_per_replica * replicas,
        nodes=nodes_for(replicas, gpus_per_replica, int(c.per_node[j])), tp=d["tp"], pp=d["pp"], ep=d["ep"],
        replicas=replicas, quantization=d["quantization"], kv_dtype=d["kv_dtype"], batch=d["batch"],
        concurrency=at["concurrency"] * replicas,
        ttft_ms=at["ttft_mean"] / MS, tpot_ms=at["tpot_mean"] / MS, e2e_latency_ms=at["e2e_mean"] / MS,
        throughput_tokens_per_s=served, throughput_tokens_per_s_per_gpu=served / (gpus_per_replica * replicas),
        price_usd_per_gpu_hour=_nan_none(float(c.price[j])), cost_per_hour=cost_h,
        price_kind=p.price_kind(int(c.configs.gpu[j])), price_date=p.price_date(int(c.configs.gpu[j])),
        quality=quality_of(d["quantization"], slot.model.release_quantization),
        checkpoint=serving_checkpoint(slot.model, d["quantization"], gpu=p.gpus[int(c.configs.gpu[j])],
                                      kv=d["kv_dtype"], named=slot.named, engine=p.spec.search.engine).to_dict(),
        cost_per_million_tokens=None if cost_h is None or served <= 0 else cost_h / (served * 3600.0) * 1e6,
        power_w=_nan_none(float(ev.power_w[j] * replicas)),
        memory={k: float(getattr(ev, k)[j]) for k in ("weights_bytes", "kv_cache_bytes", "activation_bytes",
                                                      "reserve_bytes", "total_bytes", "usable_bytes",
                                                      "capacity_bytes")},
        mbu=float(ev.mbu[j]), mfu=float(ev.mfu[j]), regime=regime_of(shares), regime_shares=shares,
        objective_value=OBJECTIVES[c.objective].value(c, j, replicas), load=load, candidate=j,
    )
