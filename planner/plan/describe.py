"""From a solve's choice (rows and replicas, the share served per workload) to a ranked
answer in figures: each deployment at the load it carries (``deployment``), the traffic
split, the totals per workload and per GPU type, what binds, and the moves from the fleet
running today. One decoder for one workload or many (planner/plan/solve.py)."""

from __future__ import annotations

import math
from dataclasses import asdict, replace

import numpy as np

from planner.candidates.cache import digest, row_matrix
from planner.candidates.load import (
    AGGREGATED,
    DECODE,
    PREFILL,
    ROLE_NAMES,
    RowLoad,
    operating_point,
    pool_load,
    pool_operating_point,
    row_load,
)
from planner.candidates.load import operating_points as operating_points_of
from planner.candidates.objectives import OBJECTIVES
from planner.candidates.table import Candidates, nodes_for
from planner.catalog.checkpoints import serving_checkpoint
from planner.physics.load import Workload, idle_ttft, step_physics
from planner.physics.perf import regime_of, regime_shares
from planner.physics.space import Configs
from planner.plan.result import (
    PLAN_UNCALIBRATED,
    PLAN_UNCALIBRATED_LOAD,
    Answer,
    Binding,
    GpuMoves,
    GpuUse,
    Layout,
    Move,
    Plan,
    Totals,
    WorkloadUse,
    beside,
    quality_of,
)
from planner.resolve.problem import Problem, Slot
from planner.units import HOURS_PER_YEAR, MS

Picks = list[tuple[int, int]]
"""(candidate row, replicas) chosen."""


def _nan_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def role_of(c: Candidates, j: int) -> int:
    return int(c.role[j]) if len(c.role) else AGGREGATED


def _carried(c: Candidates, j: int, replicas: int, share: float) -> tuple[str, float]:
    """The load one aggregated replica of row j carries: ("clients", n) for a closed loop,
    else ("rate", requests/s): ``share`` of its slot's demand over the replicas, or (without a
    demand) its capacity."""
    slot = c.slots[int(c.slot[j])]
    assert c.load is not None
    if slot.demand is not None and slot.demand.kind == "clients":
        return "clients", share * slot.demand.value / replicas
    if slot.demand is not None:
        assert slot.demand.requests_per_s is not None
        return "rate", share * float(slot.demand.requests_per_s) / replicas
    return "rate", float(c.load.rate[j])


def operating_points(p: Problem, c: Candidates, picks: list[tuple[int, int, float]]) -> dict[int, dict[str, float]]:
    """The figures of each aggregated (row, replicas, share) of ``picks`` at the load it
    carries, the rows of one model and one kind of load computed together (a fleet's answer
    has a deployment or two per workload, a few models): each row as computed alone."""
    groups: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for j, replicas, share in picks:
        if role_of(c, j) == AGGREGATED:
            kind, value = _carried(c, j, replicas, share)
            groups.setdefault((digest(c.slots[int(c.slot[j])].model), kind), []).append((j, value))
    out: dict[int, dict[str, float]] = {}
    for (_, kind), rows in groups.items():
        out.update(zip([j for j, _ in rows], _at_loads(p, c, kind, rows)))
    return out


def _at_loads(p: Problem, c: Candidates, kind: str, rows: list[tuple[int, float]]) -> list[dict[str, float]]:
    """``operating_points`` of (row, load) pairs of one model and one kind of load, computed
    together; with the table's physics cache (``Candidates.physics``) each (case, load) once
    while the cache is kept (a sweep's scenarios, a test's variants, the simulator's re-solves
    that choose the row again): the figures of each row are its own, so the same either way."""
    def compute(part: list[tuple[int, float]]) -> list[dict[str, float]]:
        js = np.array([j for j, _ in part], dtype=np.int64)
        return operating_points_of(tuple(c.slots[int(c.slot[j])] for j in js), p.table, c.configs.take(js),
                                   p.assumptions, **{kind: np.array([v for _, v in part])})
    if c.physics is None:
        return compute(rows)
    cache, keys = c.physics
    cases = row_matrix(c.configs.take(np.array([j for j, _ in rows], dtype=np.int64))).tolist()
    slot = {s: keys.operating(c.slots[s]) for s in {int(c.slot[j]) for j, _ in rows}}
    each = [(slot[int(c.slot[j])], tuple(case), kind, float(v)) for (j, v), case in zip(rows, cases)]
    at = dict(zip(each, rows))        # two rows of one case at one load: either computes it
    got = cache.memo_together(each, lambda missing: compute([at[k] for k in missing]))
    return [dict(x) for x in got]


def deployment(p: Problem, c: Candidates, j: int, replicas: int, rank: int, share: float = 1.0,
               at: dict[str, float] | None = None) -> Plan:
    """Row j with ``replicas`` replicas, its figures at the load it carries: ``share`` of its
    slot's demand shared by the replicas, or (without a demand) each replica at its capacity.
    A prefill-pool replica is described by its prefill (MFU of one prompt's prefill, compute
    or communication bound), every other replica by its decode step. ``at``: an aggregated
    row's figures at that load, if computed already (``operating_points``)."""
    ev, d = c.ev, c.describe(j)
    slot = c.slots[int(c.slot[j])]
    assert c.load is not None
    one = c.configs.take(np.array([j]))
    role = role_of(c, j)
    if role != AGGREGATED:     # a pool replica (disaggregation): its own pool's load model
        assert slot.demand is not None and slot.demand.requests_per_s is not None
        at = pool_operating_point(slot, p.table, one, p.assumptions, role,
                                  share * float(slot.demand.requests_per_s) / replicas)
    elif at is None:
        kind, value = _carried(c, j, replicas, share)
        at = operating_point(slot, p.table, one, p.assumptions, **{kind: value})
    gpus_per_replica = int(ev.gpus[j])
    served = at["tokens_per_s"] * replicas
    cost_h = _nan_none(c.deployment_cost(j, replicas))     # with a spot deployment's spares
    offer = p.offer(int(c.configs.gpu[j]))
    term = offer.term if offer is not None else None
    binding = int(c.load.binding[j])
    idle = {"ttft_ms": float(ev.ttft[j] / MS), "tpot_ms": float(ev.tpot[j] / MS)}
    if "cached_prompt_tokens" in at:      # the prefill of the computed part (review finding 5)
        idle["ttft_ms"] = _idle_ttft(p, slot, one, float(ev.ttft[j]), at["cached_prompt_tokens"]) / MS
    load = {"requests_per_s_per_replica": at["rate"], "utilization": at["utilization"],
            "capacity_requests_per_s_per_replica": float(c.load.rate[j]),
            "capacity_tokens_per_s_per_replica": float(c.load.tokens_per_s[j]),
            "capacity_utilization": float(c.load.utilization[j]),
            "binding": slot.targets[binding].path if binding >= 0 else "slo.max_utilization",
            "running_per_lane": at["running_per_lane"],
            "percentiles_ms": {k: at[k] / MS for k in at if k.split("_")[0] in ("ttft", "tpot", "itl", "e2e")},
            "scheduler": {"max_num_seqs": int(at["max_seqs"]), "max_num_batched_tokens": int(at["token_budget"])},
            "idle": idle}
    if "cached_prompt_tokens" in at:       # a prefix cache (docs/workloads.md section 7): only where there is one
        load["prompt_tokens"] = {"cached_per_request": at["cached_prompt_tokens"],
                                 "computed_per_request": at["computed_prompt_tokens"]}
    if role == PREFILL:
        shares, regime, mbu, mfu, phase = *prefill_regime(c, j), None, prefill_mfu(c, j), "prefill"
    else:
        shares = regime_shares(ev, j)
        regime, mbu, mfu, phase = regime_of(shares), float(ev.mbu[j]), float(ev.mfu[j]), "decode"
    return Plan(
        rank=rank, workload=c.slot_names[int(c.slot[j])], gpu=d["gpu"], gpus=gpus_per_replica * replicas,
        nodes=nodes_for(replicas, gpus_per_replica, int(c.per_node[j])), tp=d["tp"], pp=d["pp"], ep=d["ep"],
        replicas=replicas, quantization=d["quantization"], kv_dtype=d["kv_dtype"], batch=d["batch"],
        concurrency=at["concurrency"] * replicas,
        ttft_ms=at["ttft_mean"] / MS, tpot_ms=at["tpot_mean"] / MS, e2e_latency_ms=at["e2e_mean"] / MS,
        throughput_tokens_per_s=served, throughput_tokens_per_s_per_gpu=served / (gpus_per_replica * replicas),
        price_usd_per_gpu_hour=_nan_none(float(c.price[j])), cost_per_hour=cost_h,
        price_kind=p.price_kind(int(c.configs.gpu[j])), price_date=p.price_date(int(c.configs.gpu[j])),
        offer=p.offer_kind(int(c.configs.gpu[j])), committed=p.committed(int(c.configs.gpu[j])),
        spare_replicas=spare_count(c, j), term_years=term, commitment_usd=None if term is None or cost_h is None
        else cost_h * term * HOURS_PER_YEAR,
        quality=quality_of(d["quantization"], slot.model.release_quantization),
        checkpoint=serving_checkpoint(slot.model, d["quantization"], gpu=p.gpus[int(c.configs.gpu[j])],
                                      kv=d["kv_dtype"], named=slot.named, engine=p.spec.search.engine).to_dict(),
        cost_per_million_tokens=None if cost_h is None or served <= 0 else cost_h / (served * 3600.0) * 1e6,
        power_w=_nan_none(float(ev.power_w[j] * replicas)),
        memory={k: float(getattr(ev, k)[j]) for k in ("weights_bytes", "kv_cache_bytes", "activation_bytes",
                                                      "reserve_bytes", "total_bytes", "usable_bytes",
                                                      "capacity_bytes")},
        mbu=mbu, mfu=mfu, regime=regime, regime_shares=shares, phase=phase,
        objective_value=OBJECTIVES[c.objective].value(c, j, replicas), load=load, candidate=j,
        role=ROLE_NAMES[role], share=share, slo_margins_ms=slo_margins_ms(c, j))


def _idle_ttft(p: Problem, slot: Slot, one: Configs, whole: float, cached: float) -> float:
    """The zero-load TTFT of a configuration whose prompts have ``cached`` tokens a request in
    the prefix cache: its computed part prefilled, as the loaded figures take it
    (``physics.load.idle_ttft``, docs/load.md section 1b)."""
    phys = step_physics(slot.model, p.table, one, p.assumptions)
    wl = Workload(isl=slot.input.mean, osl=slot.output.mean, cached=cached)
    return float(idle_ttft(phys, wl, np.array([whole]))[0])


def under_priors(prior: Problem, c: Candidates, plans: list[Plan]) -> None:
    """Each plan's figures that a calibration moves, as the priors give them (issue 22 item 4):
    the same row, replicas and share of its workload, its capacity at SLO and operating point
    computed under ``prior`` (the instance resolved without the calibration: its assumptions
    and GPU table); no re-solve, so the configuration is the calibrated answer's."""
    for plan in plans:
        j = plan.candidate
        one = c.configs.take(np.array([j]))
        slot, role = prior.slots[int(c.slot[j])], role_of(c, j)
        fits = c.ev.fits[[j]]
        cap = row_load(slot, prior.table, one, prior.assumptions, fits) if role == AGGREGATED \
            else pool_load(slot, prior.table, one, prior.assumptions, fits, role)
        view = replace(c, load=_with_row(c.load, j, cap))
        d = deployment(prior, view, j, plan.replicas, plan.rank, plan.share)
        plan.uncalibrated = beside(asdict(d), PLAN_UNCALIBRATED, {"load": PLAN_UNCALIBRATED_LOAD})


def _with_row(load: RowLoad | None, j: int, row: RowLoad) -> RowLoad:
    """``load`` with its row ``j`` replaced by the one-row ``row``."""
    assert load is not None

    def put(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a = a.copy()
        a[j] = b[0]
        return a
    return RowLoad(**{f: put(getattr(load, f), getattr(row, f)) for f in RowLoad.__dataclass_fields__ if f != "stats"},
                   stats={k: put(v, row.stats[k]) if k in row.stats else v for k, v in load.stats.items()})


def prefill_mfu(c: Candidates, j: int) -> float:
    """Model FLOP utilisation of one prompt's prefill on an idle replica: its FLOPs per GPU
    over the prefill time at the GPU's peak."""
    ev = c.ev
    t = float(ev.ttft[j])
    return float(ev.prefill_flops[j] / (t * ev.peak_flops[j])) if t > 0 and ev.peak_flops[j] > 0 else 0.0


def prefill_regime(c: Candidates, j: int) -> tuple[dict[str, float], str]:
    """(shares of one prompt's prefill time, the regime): its compute and its communication."""
    ev = c.ev
    t = float(ev.ttft[j])
    shares = {"compute": float(ev.ttft_compute[j]) / t if t > 0 else 0.0,
              "communication": float(ev.ttft_comm[j]) / t if t > 0 else 0.0}
    return shares, "communication-bound" if shares["communication"] > shares["compute"] else "compute-bound"


def traffic_shares(c: Candidates, picks: Picks, served: float) -> tuple[list[float], float]:
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


def gpu_use(p: Problem, c: Candidates, picks: Picks) -> list[GpuUse]:
    """Per GPU entry used or owned: GPUs used, the inventory, nodes (replicas packed: several
    per node when a replica fits in one, whole nodes otherwise), $/h (spares included), how it
    is paid for (its offer), committed or burst, and the GPUs of its spot deployments' spares."""
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
        spare = int(sum(float(c.ev.gpus[j]) * spare_count(c, j) for j, _ in mine))
        out.append(GpuUse(gid, used, owned, int(nodes), _cost(c, mine), offer=p.offer_kind(g),
                          committed=p.committed(g), spare_gpus=spare))
    return out


def spare_count(c: Candidates, j: int) -> int:
    """Spare replicas a deployment of row j carries (a spot offer's preemption rule; 0 otherwise)."""
    return int(c.spares[j]) if len(c.spares) and np.isfinite(c.spares[j]) else 0


def _cost(c: Candidates, picks: Picks) -> float | None:
    """$/hour of some deployments, their spares included (None when one has no price)."""
    return _nan_none(float(sum(c.deployment_cost(j, r) for j, r in picks)))


def binding(c: Candidates, gpus: list[GpuUse], totals: Totals) -> list[Binding]:
    """The shared limits the answer uses to within what one more replica of its smallest
    configuration meeting targets would need: those that bind or nearly do."""
    lim = c.limits
    out = []
    for g in gpus:
        if g.inventory is not None and g.inventory - g.used < _smallest(c, "gpus", g.gpu):
            gid, _, pool = g.gpu.partition("@")
            path = f"pools.{pool}.{gid}" if pool else f"limits.inventory.{gid}"
            out.append(Binding(path, g.used, g.inventory, "GPUs", g.gpu))
    cost = totals.cost_per_hour or 0.0
    if lim.budget_usd_per_hour is not None and lim.budget_usd_per_hour - cost < _smallest(c, "cost", None):
        out.append(Binding("limits.budget_usd_per_hour", cost, lim.budget_usd_per_hour, "$/hour"))
    power = totals.power_w or 0.0
    if lim.power_cap_w is not None and lim.power_cap_w - power < _smallest(c, "power", None):
        out.append(Binding("limits.power_cap_w", power, lim.power_cap_w, "W"))
    if lim.max_nodes is not None and lim.max_nodes - totals.nodes < 1:
        out.append(Binding("search.max_nodes", totals.nodes, lim.max_nodes, "nodes"))
    if lim.max_gpus is not None and lim.max_gpus - totals.gpus < _smallest(c, "gpus", None):
        out.append(Binding("search.max_gpus", totals.gpus, lim.max_gpus, "GPUs"))
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


def moves(p: Problem, c: Candidates, picks: Picks) -> tuple[list[Move], list[GpuMoves]]:
    """Against the fleet running today (``current``): per configuration of each workload (any
    batch: the scheduler's batch is a flag, not a move) the replicas started, stopped and
    kept, then the GPUs per type. Today's deployments no row matches any more stop."""
    if not p.current:
        return [], []
    table: dict[tuple, list[int]] = {}
    for r in p.current:
        key = (r.slot, r.gpu, r.tp, r.pp, r.ep, r.scheme, r.kv, "aggregated")
        table.setdefault(key, [0, 0, max(r.tp, r.ep) * r.pp])     # GPUs per replica (planner/physics/perf.py)
        table[key][0] += r.replicas
    for j, n in picks:
        d = c.describe(j)
        key = (int(c.slot[j]), d["gpu"], d["tp"], d["pp"], d["ep"], d["quantization"], d["kv_dtype"],
               ROLE_NAMES[role_of(c, j)])
        table.setdefault(key, [0, 0, int(c.ev.gpus[j])])
        table[key][1] += n
        table[key][2] = int(c.ev.gpus[j])
    out = []
    per_gpu: dict[str, list[int]] = {}
    for key, (before, after, g) in table.items():
        s, gid, tp, pp, ep, q, kv, role = key
        m = Move(c.slot_names[s], Layout(gid, tp, pp, ep, q, kv, role), g, before, after,
                 start=max(after - before, 0), stop=max(before - after, 0), keep=min(before, after))
        out.append(m)
        acc = per_gpu.setdefault(str(gid), [0, 0, 0])
        acc[0] += m.start * g
        acc[1] += m.stop * g
        acc[2] += m.keep * g
    out.sort(key=lambda m: (m.workload, m.layout.gpu, m.layout.tp, m.layout.pp, m.layout.ep, m.layout.quantization,
                            m.layout.kv_dtype, m.layout.role))
    return out, [GpuMoves(gid, *v) for gid, v in sorted(per_gpu.items())]


def describe(p: Problem, c: Candidates, picks: Picks, served: np.ndarray, rank: int, values: dict[str, float],
             objective_value: float) -> tuple[list[Plan], Answer]:
    """The deployments of one ranked answer, each at the load it carries, and what they add
    up to. ``served``: the share of each slot's demand served (1 unless the objective lets a
    workload go short)."""
    plans: list[Plan] = []
    workloads: list[WorkloadUse] = []
    per_slot = []
    picked: dict[int, Picks] = {}
    for j, r in picks:
        picked.setdefault(int(c.slot[j]), []).append((j, r))
    for s, slot in enumerate(c.slots):
        mine = picked.get(s, [])
        share_served = float(min(1.0, served[s]))
        if slot.demand is None:
            shares, total_cap = [1.0] * len(mine), float(sum(float(c.capacity[j]) * r for j, r in mine))
        else:
            shares, total_cap = traffic_shares(c, mine, share_served)
        per_slot.append((mine, share_served, shares, total_cap))
    ats = operating_points(p, c, [(j, r, share) for mine, _, shares, _ in per_slot
                                  for (j, r), share in zip(mine, shares)])
    for slot, (mine, share_served, shares, total_cap) in zip(c.slots, per_slot):
        for (j, r), share in zip(mine, shares):
            plans.append(deployment(p, c, j, r, rank, share, ats.get(j)))
        d = slot.demand
        workloads.append(WorkloadUse(
            workload=slot.name, model=slot.model.id or slot.model.name, weight=slot.weight,
            demand_kind=d.kind if d is not None else "none", demand=d.value if d is not None else 0.0,
            requests_per_s=d.requests_per_s if d is not None else None, served_share=share_served,
            configurations=len(mine), replicas=sum(r for _, r in mine),
            gpus=int(sum(float(c.ev.gpus[j]) * r for j, r in mine)), cost_per_hour=_cost(c, mine), cost_share=0.0,
            capacity=total_cap, load_vs_capacity=share_served * d.value / total_cap
            if d is not None and total_cap > 0 else None))
    total_cost = _cost(c, picks)
    for w in workloads:
        w.cost_share = (w.cost_per_hour or 0.0) / total_cost if total_cost else 0.0
    gpus = gpu_use(p, c, picks)
    weights = np.array([s.weight for s in c.slots])
    totals = Totals(cost_per_hour=total_cost, gpus=sum(g.used for g in gpus), nodes=sum(g.nodes for g in gpus),
                    power_w=_nan_none(float(sum(float(c.ev.power_w[j]) * r for j, r in picks))),
                    replicas=sum(r for _, r in picks), configurations=len(picks),
                    served_share_weighted=float((weights * np.minimum(1.0, served)).sum() / weights.sum()))
    move_list, gpu_moves = moves(p, c, picks)
    return plans, Answer(rank=rank, objective_value=objective_value, values=values, totals=totals,
                         workloads=workloads, gpus=gpus, binding=binding(c, gpus, totals), moves=move_list,
                         gpu_moves=gpu_moves)
