"""`planner fleet`: one joint optimisation of several workloads over a shared inventory,
budget and power cap (docs/fleet.md).

Each workload is a slot of the candidate table; a slot may split its traffic over up to K
configurations (possibly on different GPU types), each with integer replicas, and the
traffic goes to them in proportion to their capacity at SLO, so every replica runs at or
below the load its latency targets hold at. The objectives are solved lexicographically
(FleetSpec.phases): each later phase keeps the earlier ones at the value they reached.
The result is a fleet: per workload its deployments, per GPU type its use against the
inventory, what binds, what one more unit of each scarce resource is worth (re-solves), and
the saving over the baselines (planner/fleet/baselines.py)."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

import constraints
from planner.backends.base import HAS_SOLUTION, Feature, Solution, Status, get_backend
from planner.candidates.load import AGGREGATED, DECODE, PREFILL, ROLE_NAMES
from planner.candidates.objectives import OBJECTIVES
from planner.candidates.table import Candidates, build_candidates, nodes_for, with_limits, with_objective
from planner.errors import InputError
from planner.fleet.baselines import starting_fleet
from planner.plan.result import Plan, make_plan
from planner.resolve.problem import Problem, resolve_fleet
from planner.schemas.fleet import FleetSpec
from planner.yamlio import Document

KEEP_TOLERANCE = 1e-6
"""Relative slack on an earlier phase's optimum kept by a later phase: CP-SAT rounds the
row's coefficients conservatively, and an exact bound could cut off the optimum itself."""


@dataclass
class Deployment:
    """Replicas of one configuration serving a share of one workload's traffic."""

    workload: str
    share: float                        # of the workload's demand this deployment carries
    plan: Plan                          # the configuration, its figures at that load (planner/plan/result.py)
    slo_margins_ms: dict[str, float]    # target - value at the replica's capacity (>= 0), per target path
    role: str = "aggregated"            # aggregated | prefill | decode (docs/disaggregation.md section 7)


@dataclass
class FleetResult:
    status: str                          # optimal | feasible | infeasible | time_limit | unknown
    backend: str
    phases: list[dict[str, Any]]         # per objective: name, value, unit, status, gap, seconds
    deployments: list[Deployment]
    workloads: list[dict[str, Any]]      # per workload: demand, served share, $/h, GPUs, configurations
    gpus: list[dict[str, Any]]           # per GPU type: used, inventory, nodes, $/h
    totals: dict[str, Any]               # $/h, GPUs, nodes, power, served share
    binding: list[dict[str, Any]]        # limits used to within one unit
    marginal: list[dict[str, Any]] = field(default_factory=list)    # value of one more unit (re-solves)
    baselines: list[dict[str, Any]] = field(default_factory=list)   # planner/fleet/baselines.py
    notes: list[str] = field(default_factory=list)
    diagnosis: list[dict[str, Any]] = field(default_factory=list)    # when infeasible: why, per workload
    disaggregation: list[dict[str, Any]] = field(default_factory=list)  # per pooling workload: which mode wins, why
    model_size: dict[str, int] = field(default_factory=dict)
    solve_seconds: float = 0.0
    inputs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for dep in d["deployments"]:
            dep["plan"].pop("candidate", None)
        return d


@dataclass(frozen=True)
class Solved:
    """A fleet solve's raw answer: status, (row, replicas) chosen, served share per slot."""

    status: Status
    picks: list[tuple[int, int]]
    served: np.ndarray
    phases: list[dict[str, Any]]
    size: dict[str, int]
    notes: list[str] = field(default_factory=list)


def fleet(spec: FleetSpec, doc: Document | None = None, *, backend: str = "milp", time_limit: float = 60.0,
          calibration: str | None = None, marginal: bool = True, baselines: bool = True) -> FleetResult:
    t0 = time.perf_counter()
    problem = resolve_fleet(spec, doc, calibration)
    cands = build_candidates(problem)
    return solve_fleet(problem, cands, backend=backend, time_limit=time_limit, marginal=marginal,
                       baselines=baselines, started=t0)


def fleet_candidates(problem: Problem, cands: Candidates) -> Candidates:
    """The table as the fleet's first phase reads it: served share free if served_demand is
    an objective."""
    phases = _phases(problem)
    return replace(with_objective(cands, phases[0]), partial="served_demand" in phases)


def _phases(problem: Problem) -> tuple[str, ...]:
    phases = getattr(problem.spec, "phases", None)
    if not phases:
        raise InputError("a fleet solve needs a fleet instance (workloads:)", path="workloads")
    return tuple(phases)


def solve_lexicographic(problem: Problem, cands: Candidates, backend: str, time_limit: float) -> Solved:
    """Every phase in turn; each later phase keeps the earlier objectives (constraints/objective.py
    add_bounds). The status is the weakest of the phases' (optimal only if every phase is)."""
    engine = get_backend(backend)
    phases = _phases(problem)            # a located error unless the problem is a fleet's
    spec = problem.spec
    assert isinstance(spec, FleetSpec)
    slack = {name: _slack(spec, phases, k) for k, name in enumerate(phases)}
    if Feature.LINEAR_MODEL not in engine.features:      # the independent oracle: enumeration, no model
        t0 = time.perf_counter()
        st, chosen, shares, reached = engine.solve_fleet(fleet_candidates(problem, cands), phases,  # type: ignore
                                                         slack)
        done = [{"objective": n, "value": v, "unit": OBJECTIVES[n].unit, "status": st.value, "gap": 0.0,
                 "seconds": time.perf_counter() - t0} for n, v in reached.items()]
        return Solved(st, chosen, shares, done, {})
    base = fleet_candidates(problem, cands)
    deadline = time.perf_counter() + time_limit
    bounds: list[tuple[str, float]] = []
    picks: list[tuple[int, int]] = []
    served = np.zeros(cands.n_slots)
    log: list[dict[str, Any]] = []
    status = Status.OPTIMAL
    size: dict[str, int] = {}
    limited: tuple[int, ...] = ()
    rounds = 0
    empty: list[str] = []
    start, start_served = starting_fleet(base)     # the first phase starts from the best simple fleet
    notes: list[str] = []
    for k, name in enumerate(phases):
        while True:       # configuration limits enforced lazily: only on slots whose optimum breaks them
            c = replace(with_objective(base, name), partial=base.partial, bounds=tuple(bounds), limited=limited)
            f = constraints.build(c, ranks=1)
            size = dict(f.size)
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                sol = None
                break
            empty = [c.slot_names[s] for s in range(c.n_slots) if not len(f.alive_in(s))]
            if empty and not c.partial:       # a workload no configuration can serve: proven, no solver needed
                sol = Solution(Status.INFEASIBLE, None)
                break
            f.hint = _hint(f, start)
            sol = engine.solve(f, remaining)
            rounds += 1
            if sol.status not in HAS_SOLUTION or sol.values is None:
                break
            over = _over_limit(c, _decode(f, sol.values)) - set(limited)   # an enforced slot keeps its rows
            if not over:
                break
            if sol.status != Status.OPTIMAL:    # time is short: enforce every limit at once, no more rounds
                over = set(range(c.n_slots))
            limited = tuple(sorted(set(limited) | over))
        size["configuration_limit_rounds"] = rounds
        size["slots_with_enforced_limit"] = len(limited)
        no_time = sol is None or sol.status in (Status.TIME_LIMIT, Status.UNKNOWN)
        if k == 0 and no_time and _start_stands(base, start, start_served):
            # no answer within the time: the greedy fleet meets every limit; optimality unproven
            cost = float(sum(float(base.cost_per_hour[j]) * n for j, n in start))
            bound = cost_lower_bound(base) if name == "cost_per_hour" else None
            gap = (cost - bound) / cost if bound is not None and cost > 0 else None
            log.append({"objective": name, "status": Status.FEASIBLE.value, "gap": gap, "start": "starting fleet",
                        "value": cost if name == "cost_per_hour" else None, "unit": OBJECTIVES[name].unit,
                        "lower_bound": bound})
            notes.append(f"the fleet is the starting fleet (each workload alone, or greedy): {backend} found none "
                         f"within the time limit "
                         f"({'time_limit' if sol is None else sol.status.value}); optimality is not proven"
                         + (f", it is within {gap:.1%} of a lower bound (every demand at its cheapest $/token, "
                            "no integer replicas, no shared limit)" if gap is not None else ""))
            picks, served, status = list(start), np.asarray(start_served, dtype=float), Status.FEASIBLE
            break
        if sol is None:
            log.append({"objective": name, "status": Status.TIME_LIMIT.value})
            status = Status.FEASIBLE if picks else Status.TIME_LIMIT
            break
        if sol.status not in HAS_SOLUTION:
            entry: dict[str, Any] = {"objective": name, "status": sol.status.value, "seconds": sol.seconds}
            if empty and not c.partial:
                entry["unserved"] = empty
            log.append(entry)
            # a later phase without an answer leaves the earlier phase's fleet standing, unproven
            status = sol.status if not picks else Status.FEASIBLE
            break
        assert sol.values is not None
        value = float(sum(a * sol.values[i] for i, a in constraints.objective.coefficients(f, name).items()))
        obj = OBJECTIVES[name]
        log.append({"objective": name, "value": _reported(c, name, value), "unit": obj.unit,
                    "status": sol.status.value, "gap": sol.gap, "seconds": sol.seconds})
        if sol.status != Status.OPTIMAL:
            status = Status.FEASIBLE
        picks = start = _decode(f, sol.values)        # each later phase starts from this answer
        served = np.array([sol.values[f.scalars[f.scalar_name("served", s)]]
                           if f.scalar_name("served", s) in f.scalars else 1.0 for s in range(c.n_slots)])
        tol = slack[name]
        keep = value * (1 + tol) + KEEP_TOLERANCE if obj.sense == "min" else value * (1 - tol) - KEEP_TOLERANCE
        bounds.append((name, keep))
    return Solved(status, picks, served, log, size, notes)


def _hint(f: constraints.Formulation, picks: list[tuple[int, int]]) -> dict[int, float]:
    """A starting assignment from a fleet: its replicas (and choices) on the rows the model kept,
    every served share at what they cover. A hint: a backend may find it infeasible (a row
    pruned, a limit) and then starts from nothing."""
    c = f.cands
    vals: dict[int, float] = {}
    cover = np.zeros(c.n_slots)
    for j, n in picks:
        if f.y[j] < 0:
            continue
        vals[int(f.y[j])] = float(n)
        vals[int(f.x[j])] = 1.0 if f.x[j] != f.y[j] else float(n)
        cover[int(c.slot[j])] += float(c.capacity[j]) * n
    for s in range(c.n_slots):
        key = f.scalar_name("served", s)
        if key in f.scalars:
            rows = c.slot_rows(s)
            vals[f.scalars[key]] = float(min(1.0, cover[s] / float(c.demand[rows[0]]))) if len(rows) else 0.0
    return vals


def cost_lower_bound(c: Candidates) -> float | None:
    """A proven lower bound on any fleet's $/hour: every workload's demand served at the
    lowest $/hour per unit of capacity any of its configurations offers (aggregated, or a
    prefill plus a decode pool of one KV format), with fractional replicas and no shared
    limit; None when a workload has no configuration."""
    ok = c.meets_slo & np.isfinite(c.cost_per_hour) & (c.capacity > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        unit = np.where(ok, c.cost_per_hour / c.capacity, np.inf)
    roles = c.role if len(c.role) == len(c) else np.zeros(len(c), dtype=np.int64)
    total = 0.0
    for s in range(c.n_slots):
        rows = c.slot_rows(s)
        if not len(rows):
            return None
        best = float(np.min(unit[rows[roles[rows] == AGGREGATED]], initial=np.inf))
        for kv in set(c.configs.kv[rows].tolist()):
            same = rows[c.configs.kv[rows] == kv]
            pre = float(np.min(unit[same[roles[same] == PREFILL]], initial=np.inf))
            dec = float(np.min(unit[same[roles[same] == DECODE]], initial=np.inf))
            best = min(best, pre + dec)
        if not np.isfinite(best):
            return None
        total += best * float(c.demand[rows[0]])
    return total


def _start_stands(c: Candidates, picks: list[tuple[int, int]], served: list[float]) -> bool:
    """The starting fleet stands as an answer when it serves what the objective requires and
    keeps the limits it was not built to keep (inventory, budget and power it keeps already:
    baselines.starting_fleet)."""
    if not picks or _over_limit(c, picks):
        return False
    if not c.partial and min(served) < 1.0 - 1e-12:
        return False
    lim = c.limits
    if lim.max_nodes is not None:
        return False
    gpus = sum(float(c.ev.gpus[j]) * n for j, n in picks)
    return lim.max_gpus is None or gpus <= lim.max_gpus


def _over_limit(c: Candidates, picks: list[tuple[int, int]]) -> set[int]:
    """Slots whose answer uses more configurations than the fleet allows (K per role when the
    slot has prefill/decode pools: constraints/choice.py)."""
    roles = c.role if len(c.role) == len(c) else np.zeros(len(c), dtype=np.int64)
    count: dict[tuple[int, int], int] = {}
    for j, _ in picks:
        key = (int(c.slot[j]), int(roles[j]))
        count[key] = count.get(key, 0) + 1
    return {s for (s, _), n in count.items() if n > c.max_configs}


def _slack(spec: FleetSpec, phases: tuple[str, ...], k: int) -> float:
    """How far from its optimum a phase may be kept by the later ones: the change options'
    extra cost for the cost phase before change, the solver's tolerance otherwise."""
    if phases[k] == "cost_per_hour" and k + 1 < len(phases) and phases[k + 1] == "change":
        return spec.change.max_extra_cost
    return KEEP_TOLERANCE


def _reported(c: Candidates, name: str, value: float) -> float:
    """A phase's value as a person reads it: served_demand as the weighted share served (0..1)."""
    if name == "served_demand":
        from planner.candidates.objectives import served_weights
        return value / float(served_weights(c).sum())
    return value


def _decode(f: constraints.Formulation, values: np.ndarray) -> list[tuple[int, int]]:
    out = []
    for j in f.alive:
        if values[f.x[j]] > 0.5:
            r = int(round(values[f.y[j]])) if f.replicas else 1
            if r >= 1:
                out.append((int(j), r))
    return out


def solve_fleet(problem: Problem, cands: Candidates, *, backend: str = "milp", time_limit: float = 60.0,
                marginal: bool = True, baselines: bool = True, started: float | None = None) -> FleetResult:
    t0 = time.perf_counter() if started is None else started
    solved = solve_lexicographic(problem, cands, backend, time_limit)
    view = fleet_candidates(problem, cands)
    result = describe(problem, view, solved, backend)
    result.notes += solved.notes
    if marginal and solved.picks:
        result.marginal = marginal_values(problem, cands, result, backend, time_limit)
    if not solved.picks and solved.status == Status.INFEASIBLE:
        result.diagnosis = diagnose(view)
    if solved.picks and marginal:
        result.disaggregation = compare_modes(problem, cands, result, backend, time_limit)
    if baselines:
        from planner.fleet.baselines import baselines as compute_baselines
        result.baselines = compute_baselines(problem, view, result)
    result.notes = problem.excluded_notes() + result.notes
    result.solve_seconds = time.perf_counter() - t0
    return result


def diagnose(c: Candidates) -> list[dict[str, Any]]:
    """Why no fleet exists, as facts: per workload, whether any configuration meets its targets
    and fits the limits on its own, and the fewest GPUs and $/hour it needs alone; then, if
    every workload can be served alone, what the workloads together need against each shared
    limit (the cheapest of each alone, summed)."""
    out: list[dict[str, Any]] = []
    need_cost = 0.0
    need_gpus: dict[str, float] = {}
    alone_ok = True
    for s, slot in enumerate(c.slots):
        rows = c.slot_rows(s)
        meets = rows[c.meets_slo[rows]]
        usable = meets[(c.replicas_allowed[meets] >= 1)
                       & (c.capacity[meets] * c.replicas_allowed[meets] * c.max_configs >= c.demand[meets])]
        fact: dict[str, Any] = {"workload": slot.name, "path": slot.path, "configurations": int(len(rows)),
                                "meet_targets": int(len(meets)), "fit_limits_alone": int(len(usable))}
        if not len(meets):
            fact["why"] = "no configuration meets this workload's latency targets and fits in memory"
        elif not len(usable):
            fact["why"] = "every configuration meeting the targets needs more than the shared limits allow"
        if len(usable):
            cost = c.cost_per_hour[usable] * c.replicas_needed[usable]
            j = int(usable[np.argmin(cost)])
            fact["cheapest_alone"] = {"configuration": c.label(j), "replicas": int(c.replicas_needed[j]),
                                      "cost_per_hour": float(cost.min()),
                                      "gpus": int(c.ev.gpus[j] * c.replicas_needed[j])}
            need_cost += float(cost.min())
            gid = c.gpu_ids[int(c.configs.gpu[j])]
            need_gpus[gid] = need_gpus.get(gid, 0.0) + float(c.ev.gpus[j] * c.replicas_needed[j])
        else:
            alone_ok = False
        out.append(fact)
    if alone_ok:
        lim = c.limits
        together: dict[str, Any] = {"workload": None, "why": "each workload can be served alone, not all together "
                                    "within the shared limits (objective served_demand serves the most they allow)",
                                    "cheapest_alone_total_cost_per_hour": need_cost, "gpus": need_gpus}
        if lim.budget_usd_per_hour is not None:
            together["budget_usd_per_hour"] = lim.budget_usd_per_hour
        together["inventory"] = dict(lim.inventory)
        out.append(together)
    return out


def describe(problem: Problem, c: Candidates, solved: Solved, backend: str) -> FleetResult:
    """The chosen fleet in figures: deployments, per-workload and per-GPU tables, totals, what binds."""
    deployments: list[Deployment] = []
    workloads: list[dict[str, Any]] = []
    for s, slot in enumerate(c.slots):
        mine = [(j, r) for j, r in solved.picks if int(c.slot[j]) == s]
        served = float(min(1.0, solved.served[s]))
        shares, total_cap = traffic_shares(c, mine, served)
        for (j, r), share in zip(mine, shares):
            plan = make_plan(problem, c, j, r, rank=1, share=share)
            margins = slo_margins_ms(c, j)
            plan.role = ROLE_NAMES[role_of(c, j)]
            deployments.append(Deployment(slot.name, share, plan, margins, plan.role))
        d = slot.demand
        assert d is not None
        cost = sum(float(c.cost_per_hour[j]) * r for j, r in mine)
        workloads.append({
            "workload": slot.name, "model": slot.model.id or slot.model.name, "weight": slot.weight,
            "demand": {"kind": d.kind, "value": d.value, "requests_per_s": d.requests_per_s},
            "served_share": served, "configurations": len(mine), "replicas": sum(r for _, r in mine),
            "gpus": int(sum(float(c.ev.gpus[j]) * r for j, r in mine)), "cost_per_hour": cost,
            "capacity": total_cap, "load_vs_capacity": served * d.value / total_cap if total_cap > 0 else None})
    total_cost = sum(w["cost_per_hour"] for w in workloads)
    for w in workloads:
        w["cost_share"] = w["cost_per_hour"] / total_cost if total_cost > 0 else 0.0
    gpus = gpu_use(c, solved.picks)
    power = float(sum(float(c.ev.power_w[j]) * r for j, r in solved.picks))
    weights = np.array([s.weight for s in c.slots])
    totals: dict[str, Any] = {"cost_per_hour": total_cost, "gpus": sum(g["used"] for g in gpus),
              "nodes": sum(g["nodes"] for g in gpus), "power_w": power, "configurations": len(solved.picks),
              "served_share_weighted": float((weights * np.minimum(1.0, solved.served)).sum() / weights.sum())}
    return FleetResult(status=solved.status.value, backend=backend, phases=solved.phases, deployments=deployments,
                       workloads=workloads, gpus=gpus, totals=totals, binding=binding(c, gpus, totals),
                       model_size=solved.size, inputs=problem.inputs())


def role_of(c: Candidates, j: int) -> int:
    return int(c.role[j]) if len(c.role) else AGGREGATED


def traffic_shares(c: Candidates, picks: list[tuple[int, int]], served: float) -> tuple[list[float], float]:
    """The share of its workload's demand each chosen deployment of one workload carries, and
    the workload's capacity (in its demand unit). Aggregated deployments and each KV format's
    pair of pools take the served demand in proportion to their capacity, a pair's capacity
    being the smaller of its prefill and its decode pool's; inside a role, replicas share in
    proportion to capacity. A pool deployment's share is the traffic passing through it, so
    a workload's served share is its aggregated and prefill shares summed (decode carries
    the prefill's traffic again)."""
    cap = {j: float(c.capacity[j]) * r for j, r in picks}
    groups: dict[tuple[int, int], float] = {}
    for j, _ in picks:
        key = (role_of(c, j), int(c.configs.kv[j]) if role_of(c, j) != AGGREGATED else -1)
        groups[key] = groups.get(key, 0.0) + cap[j]
    routes = {AGGREGATED: groups.get((AGGREGATED, -1), 0.0)}
    for (role, kv), v in groups.items():
        if role == PREFILL:
            routes[kv + 1] = min(v, groups.get((DECODE, kv), 0.0))
    total = sum(routes.values())
    out = []
    for j, _ in picks:
        role = role_of(c, j)
        key = (role, int(c.configs.kv[j]) if role != AGGREGATED else -1)
        route = routes[AGGREGATED] if role == AGGREGATED else routes.get(key[1] + 1, 0.0)
        out.append(served * route / total * cap[j] / groups[key] if total > 0 and groups[key] > 0 else 0.0)
    return out, total


def slo_margins_ms(c: Candidates, j: int) -> dict[str, float]:
    """Per latency target of row j's workload (by its own YAML path): target minus the value at
    the replica's capacity at SLO, in ms (the load the replica runs at is at most that)."""
    slot = c.slots[int(c.slot[j])]
    out = {}
    for t in slot.targets:
        name = t.metric if t.statistic == "mean" else f"{t.metric}_{t.statistic}"
        chk = next(x for x in c.slo if x.name == name)
        if np.isfinite(chk.target_s[j]):      # a pool row answers for its own pool's targets only
            out[t.path] = float(t.seconds - chk.value_s[j]) * 1e3
    return out


def gpu_use(c: Candidates, picks: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """Per GPU type used or owned: GPUs used, the inventory, nodes (replicas packed: several
    per node when a replica fits in one, whole nodes otherwise), $/h."""
    out = []
    for g, gid in enumerate(c.gpu_ids):
        mine = [(j, r) for j, r in picks if int(c.configs.gpu[j]) == g]
        owned = c.limits.inventory.get(gid)
        if not mine and owned is None:
            continue
        used = int(sum(float(c.ev.gpus[j]) * r for j, r in mine))
        per_node = int(c.per_node[mine[0][0]]) if mine else None
        shared = sum(float(c.ev.gpus[j]) * r for j, r in mine if c.ev.gpus[j] <= c.per_node[j])
        whole = sum(nodes_for(r, int(c.ev.gpus[j]), int(c.per_node[j])) for j, r in mine
                    if c.ev.gpus[j] > c.per_node[j])
        nodes = whole + (math.ceil(shared / per_node - 1e-9) if per_node else 0)
        out.append({"gpu": gid, "used": used, "inventory": owned, "nodes": int(nodes),
                    "cost_per_hour": float(sum(float(c.cost_per_hour[j]) * r for j, r in mine))})
    return out


def binding(c: Candidates, gpus: list[dict[str, Any]], totals: dict[str, Any]) -> list[dict[str, Any]]:
    """The shared limits the fleet uses to within what one more replica of its smallest
    deployment would need: those that bind or nearly do."""
    lim = c.limits
    out = []
    for g in gpus:
        if g["inventory"] is not None and g["inventory"] - g["used"] < _smallest(c, "gpus", g["gpu"]):
            gid, _, pool = g["gpu"].partition("@")
            path = f"pools.{pool}.{gid}" if pool else f"limits.inventory.{gid}"
            out.append({"limit": path, "gpu": g["gpu"], "used": g["used"], "available": g["inventory"],
                        "unit": "GPUs"})
    if lim.budget_usd_per_hour is not None and \
            lim.budget_usd_per_hour - totals["cost_per_hour"] < _smallest(c, "cost", None):
        out.append({"limit": "limits.budget_usd_per_hour", "used": totals["cost_per_hour"],
                    "available": lim.budget_usd_per_hour, "unit": "$/hour"})
    if lim.power_cap_w is not None and lim.power_cap_w - totals["power_w"] < _smallest(c, "power", None):
        out.append({"limit": "limits.power_cap_w", "used": totals["power_w"], "available": lim.power_cap_w,
                    "unit": "W"})
    if lim.max_nodes is not None and lim.max_nodes - totals["nodes"] < 1:
        out.append({"limit": "search.max_nodes", "used": totals["nodes"], "available": lim.max_nodes,
                    "unit": "nodes"})
    if lim.max_gpus is not None and lim.max_gpus - totals["gpus"] < _smallest(c, "gpus", None):
        out.append({"limit": "search.max_gpus", "used": totals["gpus"], "available": lim.max_gpus, "unit": "GPUs"})
    return out


def _smallest(c: Candidates, what: str, gid: str | None) -> float:
    """What one replica of the smallest SLO-meeting configuration takes (on GPU type ``gid``)."""
    ok = c.meets_slo.copy()
    if gid is not None:
        ok &= c.configs.gpu == c.gpu_ids.index(gid)
    if not ok.any():
        return 1.0
    v = {"gpus": c.ev.gpus, "cost": np.nan_to_num(c.cost_per_hour, nan=np.inf), "power": c.ev.power_w}[what]
    return float(np.nanmin(v[ok]))


def marginal_values(problem: Problem, cands: Candidates, result: FleetResult, backend: str,
                    time_limit: float) -> list[dict[str, Any]]:
    """What one more unit of each binding limit is worth, by re-solving with it: one more GPU
    of a type, $1/hour more budget, 1 kW more power. Re-solves, not LP duals: the model is
    integer, and its duals price nothing."""
    out: list[dict[str, Any]] = []
    base_value = result.phases[0].get("value") if result.phases else None
    first = result.phases[0]["objective"] if result.phases else None
    if base_value is None or first is None:
        return out
    lim = cands.limits
    for b in result.binding:
        path = b["limit"]
        if "gpu" in b:
            gid = b["gpu"]
            more = replace(lim, inventory={**lim.inventory, gid: lim.inventory[gid] + 1})
            unit = f"one more {gid.replace('@', ' in ')}"
        elif path == "limits.budget_usd_per_hour":
            assert lim.budget_usd_per_hour is not None
            more = replace(lim, budget_usd_per_hour=lim.budget_usd_per_hour + 1.0)
            unit = "$1/hour more budget"
        elif path == "limits.power_cap_w":
            assert lim.power_cap_w is not None
            more = replace(lim, power_cap_w=lim.power_cap_w + 1000.0)
            unit = "1 kW more power"
        else:
            continue
        c = with_limits(cands, more)
        solved = solve_lexicographic(problem, c, backend, time_limit)
        if not solved.phases or solved.phases[0].get("value") is None:
            continue
        v = float(solved.phases[0]["value"])
        out.append({"limit": path, "unit": unit, "objective": first, "value": v,
                    "improvement": (base_value - v) if OBJECTIVES[first].sense == "min" else (v - base_value),
                    "status": solved.status.value})
    return out


UNCERTAINTY = 0.10
"""Relative margin under which the winner between aggregated and disaggregated serving is
not trusted: the prefill pool's TTFT is 8-29 % off the simulator at busy share >= 0.6 and the
aggregated TTFT p99 13-41 % optimistic at utilisation 0.6-0.8 (docs/disaggregation.md
section 5, docs/load.md section 9); capacities at SLO move by about a third of that."""


def compare_modes(problem: Problem, cands: Candidates, result: FleetResult, backend: str,
                  time_limit: float) -> list[dict[str, Any]]:
    """Per workload that may run pools: the fleet re-solved with that workload forced to
    aggregated replicas only (``never``) and to pools only (``always``), the others as asked;
    the cost of each, which won and by how much, and the figures that say why (the forced
    pools' busy shares, the aggregated replicas' binding target, or that no aggregated
    configuration meets the targets). Re-solves, as marginal values are."""
    out: list[dict[str, Any]] = []
    if not cands.modes:
        return out
    for s, slot in enumerate(cands.slots):
        if not cands.pooled(s):
            continue
        roles = {d.role for d in result.deployments if d.workload == slot.name}
        chosen = "aggregated" if roles == {"aggregated"} else "disaggregated" if "aggregated" not in roles else "mixed"
        fact: dict[str, Any] = {"workload": slot.name, "mode": cands.modes[s], "chosen": chosen,
                                "cost_per_hour": result.totals["cost_per_hour"]}
        for forced in ("never", "always"):
            modes = tuple(forced if k == s else m for k, m in enumerate(cands.modes))
            c = replace(cands, modes=modes)
            solved = solve_lexicographic(problem, c, backend, time_limit)
            entry: dict[str, Any] = {"status": solved.status.value, "cost_per_hour": None}
            if solved.picks:
                r = describe(problem, fleet_candidates(problem, c), solved, backend)
                entry["cost_per_hour"] = r.totals["cost_per_hour"]
                entry["deployments"] = [
                    {"role": d.role, "replicas": d.plan.replicas, "gpu": d.plan.gpu, "tp": d.plan.tp,
                     "utilization": d.plan.load.get("utilization"), "binding": d.plan.load.get("binding")}
                    for d in r.deployments if d.workload == slot.name]
            else:
                rows = cands.slot_rows(s)
                agg = cands.role[rows] == AGGREGATED
                entry["configurations_meeting_targets"] = int(
                    (cands.meets_slo[rows] & (agg if forced == "never" else ~agg)).sum())
            fact["aggregated" if forced == "never" else "disaggregated"] = entry
        fact.update(_verdict(fact))
        out.append(fact)
    return out


def _verdict(fact: dict[str, Any]) -> dict[str, Any]:
    """Which mode is cheaper, by what share, and a sentence of figures saying why."""
    agg, dis = fact["aggregated"]["cost_per_hour"], fact["disaggregated"]["cost_per_hour"]
    out: dict[str, Any] = {"winner": None, "margin": None, "within_uncertainty": False}
    if agg is None and dis is None:
        return out | {"why": "neither mode alone serves this workload within the fleet's limits"}
    if agg is None:
        n = fact["aggregated"].get("configurations_meeting_targets")
        why = "no aggregated configuration meets this workload's targets with prefill chunks mixed in" if n == 0 \
            else "aggregated replicas alone do not fit the fleet's limits"
        return out | {"winner": "disaggregated", "why": f"disaggregated wins: {why}"}
    if dis is None:
        n = fact["disaggregated"].get("configurations_meeting_targets")
        why = "no prefill or decode pool meets its targets" if n == 0 else "pools alone do not fit the fleet's limits"
        return out | {"winner": "aggregated", "why": f"aggregated wins: {why}"}
    winner = "disaggregated" if dis < agg else "aggregated"
    lo, hi = min(agg, dis), max(agg, dis)
    margin = (hi - lo) / lo if lo > 0 else 0.0
    pools = fact["disaggregated"].get("deployments", [])
    pre = [d["utilization"] for d in pools if d["role"] == "prefill" and d["utilization"] is not None]
    dec = [d["utilization"] for d in pools if d["role"] == "decode" and d["utilization"] is not None]
    binds = sorted({d["binding"] for d in fact["aggregated"].get("deployments", []) if d["binding"]})
    if agg == dis:
        why = f"a tie: ${agg:.2f}/hour either way"
    elif winner == "aggregated":
        why = f"aggregated wins by {margin:.0%}: ${agg:.2f}/hour against ${dis:.2f}/hour in pools"
        if pre:
            why += f"; a prefill pool would run at rho = {max(pre):.2f}"
        if dec:
            why += f", a decode pool at rho = {max(dec):.2f}"
    else:
        why = f"disaggregated wins by {margin:.0%}: ${dis:.2f}/hour against ${agg:.2f}/hour aggregated"
        if binds:
            why += f"; aggregated replicas are held back by {', '.join(binds)}"
        if pre:
            why += f"; the prefill pool runs at rho = {max(pre):.2f}"
    within = margin < UNCERTAINTY
    if within and agg != dis:
        why += f" (under the model's ~{UNCERTAINTY:.0%} uncertainty: a tie, check with the simulator)"
    return out | {"winner": winner if agg != dis else "tie", "margin": margin, "within_uncertainty": within,
                  "why": why}
