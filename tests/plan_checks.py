"""An independent check of a returned plan: re-evaluate its configuration with the physics,
idle and under load at the plan's own operating point, and test every limit of the spec
directly (no constraint model, no candidate table involved)."""

from __future__ import annotations

import math

import numpy as np

from planner.physics.load import Workload, engine, load_metrics, step_physics
from planner.physics.perf import evaluate
from planner.physics.space import Configs

REL = 1e-6


def violations(problem, plan) -> list[str]:
    """The checker's own copy of every limit (deliberately independent of planner/candidates)."""
    s, t = problem.spec, problem.table
    gi = t.ids.index(plan.gpu)
    slot = next(x for x in problem.slots if x.name == plan.workload)
    cfg = Configs.single(gi, plan.quantization, plan.kv_dtype, plan.tp, plan.pp, plan.ep, plan.batch,
                         slot.input.mean, slot.output.mean)
    ev = evaluate(slot.model, t, cfg, problem.assumptions).row(0)
    out = []
    if not ev["valid"]:
        out.append("invalid layout")
    if not ev["fits"]:
        out.append(f"memory {ev['total_bytes']} > {ev['usable_bytes']}")
    r = plan.replicas
    phys = step_physics(slot.model, t, cfg, problem.assumptions)
    # a prefix cache (docs/workloads.md section 7): the slot's cached tokens on this configuration's KV pool
    cached = 0.0 if slot.cache is None else float(np.asarray(slot.cache.cached_at(engine(phys).kv_pool_tokens))
                                                  .reshape(-1)[0])
    wl = Workload(isl=slot.input.mean, osl=slot.output.mean, isl_cv2=slot.input.cv2,
                  arrival_cv2=1.0 if slot.demand is None else slot.demand.arrival_cv2, cached=cached,
                  isl_m3=slot.input.moment(3), isl_m4=slot.input.moment(4))   # the prefill time's CV^2 (load.md 4)
    d = slot.demand
    if d is not None and d.kind == "clients":
        at = load_metrics(phys, engine(phys), wl, clients=plan.share * d.value / r)
    else:
        rate = plan.share * d.requests_per_s / r if d is not None else plan.load["requests_per_s_per_replica"]
        at = load_metrics(phys, engine(phys), wl, rate=rate)
    if not bool(at.stable[0]):
        out.append("unstable at the operating point")
    if d is None or d.kind != "clients":
        if float(at.rho[0]) > s.slo.max_utilization * (1 + REL):
            out.append(f"utilization {float(at.rho[0]):.3f} > {s.slo.max_utilization}")
    for target in slot.targets:
        metric = "e2e" if target.metric == "e2e_latency" else target.metric
        value = float(at.get(metric, target.statistic)[0])
        if value > target.seconds * (1 + 1e-3):
            out.append(f"{target.path}: {value * 1e3:.2f} ms > {target.seconds * 1e3:g} ms")
    O = slot.output.mean
    x = plan.throughput_tokens_per_s / O
    little = x * (plan.ttft_ms + (O - 1) * plan.tpot_ms) / 1e3
    if not math.isclose(little, plan.concurrency, rel_tol=0.05):
        out.append(f"Little's law: concurrency {plan.concurrency:.1f} vs throughput x latency {little:.1f}")
    if d is not None and d.kind == "tokens_per_s" and plan.throughput_tokens_per_s < plan.share * d.value * (1 - 1e-6):
        out.append("demand")
    gpus = r * ev["gpus"]
    if plan.gpu in s.limits.inventory and gpus > s.limits.inventory[plan.gpu]:
        out.append("inventory")
    if s.search.max_gpus is not None and gpus > s.search.max_gpus:
        out.append("max_gpus")
    if s.limits.budget_usd_per_hour is not None and \
            not r * ev["gpus"] * problem.prices[gi] <= s.limits.budget_usd_per_hour * (1 + 1e-9):   # NaN: no price
        out.append("budget")
    if s.limits.power_cap_w is not None and r * ev["power_w"] > s.limits.power_cap_w * (1 + 1e-9):
        out.append("power")
    if s.search.max_nodes is not None:
        per_node = t.per_node[gi]
        g = ev["gpus"]
        nodes = math.ceil(r * g / per_node) if g <= per_node else r * math.ceil(g / per_node)
        if nodes > s.search.max_nodes:
            out.append("max_nodes")
    return out


def demand_met(problem, deployments) -> bool:
    """The deployments of one rank together carry each workload's whole demand (their shares
    sum to one, and a tokens/s demand is served in full)."""
    for slot in problem.slots:
        mine = [p for p in deployments if p.workload == slot.name and p.role != "prefill"]
        if slot.demand is None or not mine:
            continue
        if not math.isclose(sum(p.share for p in mine), 1.0, rel_tol=1e-6):
            return False
        if slot.demand.kind == "tokens_per_s" and \
                sum(p.throughput_tokens_per_s for p in mine) < slot.demand.value * (1 - 1e-6):
            return False
    return True
