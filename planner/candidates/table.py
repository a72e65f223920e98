"""From a resolved problem to the candidate table: every (slot, configuration, batch level)
row with the physics the constraint families need, and every quantity derived from it
computed once, here: SLO checks and margins, end-to-end latency, GPU slots and nodes per
replica, prices and costs, the fewest replicas a demand needs and the most the limits allow
(docs/formulation.md section 2). Constraint families, explanations and the diagnosis read
them from here; the exhaustive oracle and the tests' checker keep their own, deliberately
independent copies.

Only what cannot exist is filtered here (an invalid parallel layout, a GPU without the
scheme's math format or without a price for a cost objective, TP across nodes when not
allowed). Memory, latency, demand, inventory, budget and power stay constraints of the
model, so the solvers see them and the diagnosis can name them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import TypeVar

import numpy as np

from planner.candidates.cache import PhysicsCache, digest, grouped, scatter
from planner.candidates.load import (
    AGGREGATED,
    ROLE_NAMES,
    RowLoad,
    load_targets,
    pool_load,
    row_loads,
    together,
    workload_of,
)
from planner.candidates.rows import dedupe, levels_to, unique_rows, with_batch, with_scheme
from planner.candidates.search import Probe, bisect, grid
from planner.candidates.slo import SloCheck, e2e_seconds, meets_slo, role_checks, slo_checks
from planner.errors import InputError
from planner.physics.perf import Evaluation, evaluate
from planner.physics.quant import DEFAULT_SCHEMES
from planner.physics.space import KV_NAMES, SCHEME_NAMES, Configs
from planner.pricing import SpareRule, cost_per_hour, cost_per_million_tokens
from planner.resolve.problem import Problem, Slot
from planner.schemas.plan import MAX_CANDIDATES

MAX_REPLICAS = 100_000
"""Replicas of one configuration in one plan, at most: the domain of the replica variables
when no limit given bounds them (docs/instances.md)."""


def node_slots(gpus: np.ndarray, per_node: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(GPU slots, nodes) one replica takes: its GPUs and a fraction of a node when it fits
    in one node (replicas share nodes); whole nodes when it spans several."""
    inside = gpus <= per_node
    slots = np.where(inside, gpus, np.ceil(gpus / per_node) * per_node)
    nodes = np.where(inside, gpus / per_node, np.ceil(gpus / per_node))
    return slots, nodes


def nodes_for(replicas: int, gpus: int, per_node: int) -> int:
    """Nodes that ``replicas`` replicas of ``gpus`` GPUs occupy on one GPU type: shared nodes
    when a replica fits in one, whole nodes each when it spans several."""
    if gpus <= per_node:
        return math.ceil(replicas * gpus / per_node)
    return replicas * math.ceil(gpus / per_node)


@dataclass(frozen=True)
class Limits:
    """The plan-wide limits of the spec, as the constraint families read them."""

    budget_usd_per_hour: float | None
    power_cap_w: float | None
    max_gpus: int | None
    max_nodes: int | None
    inventory: Mapping[str, int]


@dataclass(frozen=True)
class Candidates:
    """One row per (slot, configuration, batch level); ``config`` indexes distinct
    configurations (same id = same slot and layout, another batch). Per-row arrays are per
    replica unless their name says otherwise."""

    configs: Configs
    ev: Evaluation                 # the idle physics (memory, step terms, power)
    load: RowLoad | None           # each row under load at its capacity at SLO (planner/candidates/load.py)
    config: np.ndarray             # configuration id of each row
    slot: np.ndarray               # slot index of each row
    slot_names: tuple[str, ...]
    slots: tuple[Slot, ...]        # the resolved slots (raw targets and demands, for the oracle)
    gpu_ids: tuple[str, ...]       # GPU id of each value of configs.gpu
    per_node: np.ndarray           # GPUs per node of each row's GPU
    output_tokens: np.ndarray      # per row (its slot's)
    demand: np.ndarray             # what the row's slot must serve, in ``capacity``'s unit (NaN: none)
    capacity: np.ndarray           # per replica at SLO: output tokens/s (open loop) or clients (closed loop)
    tokens_per_s: np.ndarray       # output tokens/s per replica at capacity
    ttft: np.ndarray               # mean seconds at capacity
    tpot: np.ndarray               # mean seconds at capacity
    e2e: np.ndarray                # mean seconds at capacity
    slo: tuple[SloCheck, ...]
    meets_slo: np.ndarray          # fits in memory and meets every target of its slot
    slots_per_replica: np.ndarray  # GPU slots (whole nodes when the replica spans several)
    nodes_per_replica: np.ndarray  # fraction of a node, or whole nodes
    price: np.ndarray              # $/GPU-hour (NaN: none)
    cost_per_hour: np.ndarray      # $/hour per replica (NaN: no price)
    cost_per_million_tokens: np.ndarray  # $ per million output tokens of one replica at capacity
    replicas_needed: np.ndarray    # fewest replicas meeting the slot's demand (1 without one)
    replicas_allowed: np.ndarray   # most replicas the limits allow (MAX_REPLICAS when none bounds them)
    replica_cap: np.ndarray        # the domain of the replica variables (>= 1)
    limits: Limits
    objective: str
    overlap_comm: bool
    searched: int                  # rows evaluated
    max_configs: int = 1           # configurations a slot may split its traffic over (1: one deployment)
    weight: np.ndarray = field(default_factory=lambda: np.ones(1))   # per slot: priority (served_demand)
    current: np.ndarray | None = None   # per row: replicas of its configuration running today (a fleet's)
    unmatched: tuple[tuple[int, float, float], ...] = ()   # (slot, GPUs, replicas) run today, no row matches
    partial: bool = False          # a slot may serve less than its demand (objective served_demand)
    bounds: tuple[tuple[str, float], ...] = ()   # earlier lexicographic objectives and the values they keep
    limited: tuple[int, ...] | None = None   # split slots whose configuration count is enforced (None: all)
    role: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """per row: 0 aggregated, 1 a prefill-pool replica, 2 a decode-pool replica (planner/candidates/load.py
    ROLE_NAMES); pool rows exist only in slots whose disaggregation is auto or always"""
    modes: tuple[str, ...] = ()    # per slot: never | always | auto (which roles may be chosen)
    spare_rules: tuple[SpareRule | None, ...] = ()   # per GPU entry: a spot offer's preemption rule (prices.offers)
    spares: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """per row: spare replicas a deployment of it carries (spot offers; 0 for any other; NaN:
    more than the rule allows), counted in cost, never in capacity (docs/workloads.md)"""
    physics: tuple[PhysicsCache, _Keys] | None = field(default=None, compare=False, repr=False)
    """the physics cache the table was built with, and its keys: what an answer computes of its
    rows beyond the table (each deployment at the load it carries, planner/plan/describe.py)
    is kept there too, computed once per case and load for as long as the cache is kept"""

    @cached_property
    def spare_cost(self) -> np.ndarray:
        """$/hour per row that a deployment pays for its spare replicas, whatever its count (0 without):
        computed once per table (``deployment_cost`` reads one row of it per deployment)."""
        if not len(self.spares):
            return np.zeros(len(self))
        with np.errstate(invalid="ignore"):
            return np.where(self.spares > 0, self.spares * self.cost_per_hour, 0.0)

    def per_row(self, key: Hashable, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """``compute()``, a per-row array of this table (an objective's values), once per table."""
        store = self.__dict__.setdefault("_per_row", {})
        if key not in store:
            store[key] = compute()
        return store[key]

    def deployment_cost(self, j: int, replicas: int) -> float:
        """$/hour of ``replicas`` serving replicas of row j and, when there are any, its spares (NaN: no price)."""
        return float(self.cost_per_hour[j]) * replicas + (float(self.spare_cost[j]) if replicas > 0 else 0.0)

    @property
    def split(self) -> bool:
        """Replicas are not forced to the demand's count: a slot splits its traffic over several
        configurations, serves part of it, or runs pools."""
        return self.max_configs > 1 or self.partial or self.has_pools

    @property
    def has_pools(self) -> bool:
        return bool(len(self.role)) and bool((self.role != AGGREGATED).any())

    def pooled(self, s: int) -> bool:
        """Slot s may run disaggregated pools (its table has pool rows and its mode allows them)."""
        return bool(self.modes) and self.modes[s] != "never" and bool((self.role[self.slot == s] != AGGREGATED).any())

    def role_allowed(self) -> np.ndarray:
        """Per row: its role may be chosen under its slot's mode (always: pools only; never:
        aggregated only; auto: any)."""
        if not self.modes or not len(self.role):
            return np.ones(len(self), dtype=bool)
        mode = np.array(self.modes, dtype=object)[self.slot]
        return np.where(self.role == AGGREGATED, mode != "always", mode != "never")

    def __len__(self) -> int:
        return len(self.configs)

    @property
    def n_slots(self) -> int:
        return len(self.slot_names)

    @cached_property
    def has_demand(self) -> np.ndarray:
        return ~np.isnan(self.demand)

    def describe(self, i: int) -> dict:
        c = self.configs
        return {"gpu": self.gpu_ids[int(c.gpu[i])], "tp": int(c.tp[i]), "pp": int(c.pp[i]), "ep": int(c.ep[i]),
                "quantization": SCHEME_NAMES[int(c.scheme[i])], "kv_dtype": KV_NAMES[int(c.kv[i])],
                "batch": int(c.batch[i])}

    def label(self, i: int, *, batch: bool = True) -> str:
        return self.labels(np.array([i], dtype=np.int64), batch=batch)[0]

    def labels(self, rows: np.ndarray, *, batch: bool = True) -> list[str]:
        """``label`` of each of ``rows``, built from whole columns at once (a fleet's model
        names hundreds of thousands of variables)."""
        c = self.configs
        cols = [c.gpu[rows].tolist(), c.tp[rows].astype(np.int64).tolist(), c.pp[rows].astype(np.int64).tolist(),
                c.ep[rows].astype(np.int64).tolist(), c.scheme[rows].tolist(), c.kv[rows].tolist(),
                c.batch[rows].astype(np.int64).tolist()]
        slots = self.slot[rows].tolist() if self.n_slots > 1 else [None] * len(rows)
        roles = self.role[rows].tolist() if len(self.role) else [AGGREGATED] * len(rows)
        out = []
        for s, r, g, tp, pp, ep, q, kv, b in zip(slots, roles, *cols):
            slot = f"slot={self.slot_names[s]}," if s is not None else ""
            if r != AGGREGATED:
                slot += f"role={ROLE_NAMES[r]},"
            text = f"{slot}gpu={self.gpu_ids[g]},tp={tp},pp={pp},ep={ep},q={SCHEME_NAMES[q]},kv={KV_NAMES[kv]}"
            out.append(text + (f",batch={b}" if batch else ""))
        return out

    def config_groups(self) -> list[np.ndarray]:
        """Rows grouped by configuration (same slot and layout, different batch)."""
        if not len(self.config):
            return []
        order = np.argsort(self.config, kind="stable")
        _, starts = np.unique(self.config[order], return_index=True)
        return np.split(order, starts[1:])

    def slot_rows(self, s: int) -> np.ndarray:
        """The rows of slot s, in order."""
        return self._by_slot[s] if 0 <= s < len(self._by_slot) else np.zeros(0, dtype=np.int64)

    @cached_property
    def _by_slot(self) -> list[np.ndarray]:
        """Every slot's rows, grouped once (a fleet's families read each of a thousand slots')."""
        return grouped(self.slot, self.n_slots)


def row_order(c: Candidates) -> np.ndarray:
    """Each row's position (0 first) in the documented tie-break order (docs/formulation.md
    section 4b), every key smaller first: the latency (TTFT p99, then mean TPOT, each at the
    row's capacity at SLO), then the simpler layout (nodes per replica, TP, PP, EP, batch),
    then the GPU id, weight format and KV format by name, the role, the workload and the
    configuration id. The exhaustive oracle keeps its own copy."""
    if not len(c):
        return np.zeros(0, dtype=np.int64)
    assert c.load is not None
    cfg = c.configs
    role = c.role if len(c.role) == len(c) else np.zeros(len(c), dtype=np.int64)

    def by_name(names: tuple[str, ...] | list[str], index: np.ndarray) -> np.ndarray:
        rank = {n: k for k, n in enumerate(sorted(names))}
        return np.array([rank[n] for n in names])[index]

    ttft99 = np.nan_to_num(c.load.get("ttft", "p99"), nan=np.inf)
    keys = (ttft99, np.nan_to_num(c.tpot, nan=np.inf), c.nodes_per_replica, cfg.tp, cfg.pp, cfg.ep, cfg.batch,
            by_name(c.gpu_ids, cfg.gpu), by_name(SCHEME_NAMES, cfg.scheme), by_name(KV_NAMES, cfg.kv), role, c.slot,
            c.config)
    order = np.lexsort(tuple(reversed(keys)))
    out = np.empty(len(c), dtype=np.int64)
    out[order] = np.arange(len(c))
    return out


def _ep_degrees(p: Problem, slot: Slot) -> list[int]:
    s = p.spec.search
    if s.ep is not None:
        return sorted(set(s.ep))
    if slot.model.moe is None:
        return [1]
    return sorted({1, *[e for e in (2, 4, 8, 16, 32, 64) if slot.model.moe.num_experts % e == 0]})


def build_candidates(p: Problem, timings: dict[str, float] | None = None, cache: PhysicsCache | None = None
                     ) -> Candidates:
    """The candidate table of every slot, with the derived quantities of each row.
    ``timings``, if given, receives the seconds spent in each stage of the build: ``physics``
    (rows and their idle physics), ``load`` (capacity at SLO, planner/candidates/load.py)
    and ``derive`` (every other derived quantity); benchmarks/candidate_table.py reads it.
    ``cache``: the physics of the distinct cases computed so far (planner/candidates/cache.py);
    a new one, shared by this build's workloads, when none is given (the table then keeps an
    empty one for what its answers compute: ``Candidates.physics``)."""
    t0 = time.perf_counter()
    given, cache = cache is not None, PhysicsCache() if cache is None else cache
    keys = _Keys(p)
    fewest = _smallest_batches_for_demand(p, cache, keys)
    parts = [_with_roles(_slot_rows(p, k, slot, cache, keys, fewest[k]), slot) for k, slot in enumerate(p.slots)]
    n_cfg = np.cumsum([0] + [int(r.max(initial=-1)) + 1 for _, r, _ in parts])
    configs = _concat([c for c, _, _ in parts], Configs)
    config = np.concatenate([r + n_cfg[k] for k, (_, r, _) in enumerate(parts)])
    slot = np.concatenate([np.full(len(r), k, dtype=np.int64) for k, (_, r, _) in enumerate(parts)])
    role = np.concatenate([x for _, _, x in parts])
    del parts          # the slots' copies of their rows, now in the table's (a fleet: hundreds of MiB)
    ev = _idle_all(p, configs, slot, cache, keys)
    t1 = time.perf_counter()
    out = _derive(p, configs, ev, config, slot, timings=timings, role=role, cache=cache, keys=keys)
    if not given:     # this build's own cache not kept alive by the table (at 50 workloads 93 bytes a row)
        out = replace(out, physics=(PhysicsCache(), keys))
    if timings is not None:
        timings["physics"] = t1 - t0
        timings["derive"] = time.perf_counter() - t1 - timings["load"]
    return out


def _with_roles(part: tuple[Configs, np.ndarray], slot: Slot) -> tuple[Configs, np.ndarray, np.ndarray]:
    """A slot's rows with their roles: aggregated only, or (disaggregation auto or always)
    every configuration three times, as an aggregated replica, a prefill-pool replica and a
    decode-pool replica, each role its own configuration id."""
    configs, rows = part
    if slot.disaggregation == "never":
        return configs, rows, np.zeros(len(rows), dtype=np.int64)
    n = int(rows.max(initial=-1)) + 1
    return (_concat([configs] * 3, Configs), np.concatenate([rows + n * r for r in range(3)]),
            np.repeat(np.arange(3, dtype=np.int64), len(rows)))


def _idle_all(p: Problem, configs: Configs, slot: np.ndarray, cache: PhysicsCache, keys: _Keys) -> Evaluation:
    """The idle physics of every row, the rows of all slots with one key read together (one
    copy of the table's physics, not one per slot and another of their concatenation)."""
    groups: dict[Hashable, list[int]] = {}
    for k, sl in enumerate(p.slots):
        groups.setdefault(keys.idle(sl), []).append(k)
    parts = []
    for members in groups.values():
        every = np.flatnonzero(np.isin(slot, members))
        parts.append((every, _idle(p, p.slots[members[0]], configs.take(every), cache, keys)))
    return scatter(len(configs), parts)


def _derive(p: Problem, configs: Configs, ev: Evaluation, config: np.ndarray, slot: np.ndarray,
            with_load: bool = True, timings: dict[str, float] | None = None,
            role: np.ndarray | None = None, cache: PhysicsCache | None = None, keys: _Keys | None = None
            ) -> Candidates:
    role = np.zeros(len(slot), dtype=np.int64) if role is None else role
    out_tokens = np.array([s.output_tokens for s in p.slots], dtype=float)[slot]
    t0 = time.perf_counter()
    load = _load(p, configs, ev, slot, role, cache or PhysicsCache(), keys or _Keys(p)) if with_load else None
    if timings is not None:
        timings["load"] = time.perf_counter() - t0
    demand = slot_demand(p.slots, slot)
    clients = np.array([s.demand is not None and s.demand.kind == "clients" for s in p.slots])[slot]
    if load is not None:
        tokens_per_s = load.tokens_per_s
        capacity = np.where(clients, load.clients, load.tokens_per_s)
        checks = role_checks(slo_checks(p.slots, slot, lambda t: load.get(t.metric, t.statistic)), role)
        ok = meets_slo(ev.fits & (load.rate > 0), checks)
    else:                      # the batch-level generator's bound: idle figures, no load
        tokens_per_s = capacity = ev.throughput_tokens_per_s
        checks, ok = (), ev.fits.copy()
    per_node = p.table.per_node[configs.gpu]
    slots_per_replica, nodes = node_slots(ev.gpus, per_node)
    price = p.prices[configs.gpu]
    cost_h = cost_per_hour(ev.gpus, price)
    lim, s = p.spec.limits, p.spec.search
    limits = Limits(budget_usd_per_hour=lim.budget_usd_per_hour, power_cap_w=lim.power_cap_w, max_gpus=s.max_gpus,
                    max_nodes=s.max_nodes, inventory=dict(lim.inventory))
    needed = replicas_needed(demand, capacity)
    rules = tuple(p.spare_rule(g) for g in range(len(p.gpus)))
    spares, allowed = spares_and_allowed(limits, p.table.ids, configs.gpu, ev.gpus, cost_h, ev.power_w,
                                         slots_per_replica, per_node, rules, p.objective, needed)
    current, unmatched = running_replicas(p, configs, slot, role)
    cap = replica_domain(p.objective, demand, needed, allowed, current)
    e2e = load.get("e2e", "mean") if load is not None else e2e_seconds(ev, out_tokens)
    return Candidates(
        configs=configs, ev=ev, load=load, config=config, slot=slot, slot_names=tuple(x.name for x in p.slots),
        slots=p.slots, gpu_ids=p.table.ids, per_node=per_node, output_tokens=out_tokens, demand=demand,
        capacity=capacity, tokens_per_s=tokens_per_s,
        ttft=load.get("ttft", "mean") if load is not None else ev.ttft,
        tpot=load.get("tpot", "mean") if load is not None else ev.tpot,
        e2e=e2e, slo=checks, meets_slo=ok,
        slots_per_replica=slots_per_replica, nodes_per_replica=nodes, price=price, cost_per_hour=cost_h,
        cost_per_million_tokens=cost_per_million_tokens(cost_h, tokens_per_s),
        replicas_needed=needed, replicas_allowed=allowed, replica_cap=cap, limits=limits,
        objective=p.objective, overlap_comm=p.assumptions.overlap_comm, searched=len(configs),
        max_configs=p.max_configs, weight=np.array([x.weight for x in p.slots], dtype=float), current=current,
        unmatched=unmatched, role=role, modes=tuple(x.disaggregation for x in p.slots), spare_rules=rules,
        spares=spares, physics=None if cache is None or keys is None else (cache, keys))


def spares_and_allowed(limits: Limits, gpu_ids: tuple[str, ...], gpu: np.ndarray, gpus: np.ndarray,
                       cost_h: np.ndarray, power_w: np.ndarray, slots: np.ndarray, per_node: np.ndarray,
                       rules: tuple[SpareRule | None, ...], objective: str, needed: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(spare replicas, most replicas the limits allow) per row. A spot row's spares are those
    its preemption rule asks of a deployment serving with the most replicas it may run: the
    replicas it needs to carry its slot's demand alone (a deployment carrying part of a split
    demand runs fewer, and an availability target never needs more spares for fewer
    replicas), or under objective throughput the most the limits allow before spares; the
    limits then bound the replicas with the spares paid."""
    allowed = replicas_allowed(limits, gpu_ids, gpu, gpus, cost_h, power_w, slots, per_node)
    if all(r is None for r in rules):
        return np.zeros(len(gpu)), allowed
    serving = allowed if objective == "throughput" else needed
    spares = np.zeros(len(gpu))
    for g, rule in enumerate(rules):
        mine = gpu == g
        if rule is not None and mine.any():
            spares[mine] = rule.spares(serving[mine])
    return spares, replicas_allowed(limits, gpu_ids, gpu, gpus, cost_h, power_w, slots, per_node, spares)


def replica_domain(objective: str, demand: np.ndarray, needed: np.ndarray, allowed: np.ndarray,
                   current: np.ndarray | None = None) -> np.ndarray:
    """The upper bound of each row's replica variable (>= 1): what the limits allow, and with a
    demand and any objective but throughput no more than the demand needs (or, minimising
    change, than run today: keeping a spare replica may be the smaller change)."""
    need = needed if current is None else np.maximum(needed, current)
    cap = allowed if objective == "throughput" else np.where(np.isnan(demand), allowed, np.minimum(allowed, need))
    return np.maximum(cap, 1.0)


def with_objective(c: Candidates, objective: str) -> Candidates:
    """The same table under another objective: no physics re-run (the benchmarks' sweep, a
    fleet's lexicographic phases)."""
    return replace(c, objective=objective,
                   replica_cap=replica_domain(objective, c.demand, c.replicas_needed, c.replicas_allowed, c.current))


def slot_demand(slots: tuple[Slot, ...], slot: np.ndarray) -> np.ndarray:
    """Per row: what its slot must serve, in the capacity's unit (NaN: no demand)."""
    return np.array([np.nan if s.demand is None else s.demand.value for s in slots])[slot]


def with_demand(c: Candidates, slots: tuple[Slot, ...]) -> Candidates:
    """The same table at other demands (``slots``: the table's slots, each with its demand of
    one period, planner/plan/schedule.py): the demand rows and replica counts follow, no
    physics re-run (an open loop's capacity per replica does not depend on the rate)."""
    demand = slot_demand(slots, c.slot)
    needed = replicas_needed(demand, c.capacity)
    return replace(c, slots=slots, demand=demand, replicas_needed=needed,
                   replica_cap=replica_domain(c.objective, demand, needed, c.replicas_allowed, c.current))


def with_limits(c: Candidates, limits: Limits) -> Candidates:
    """The same table under other plan-wide limits (one more GPU, a larger budget): the
    replica bounds follow, no physics re-run (a fleet's marginal values, planner/fleet)."""
    spares, allowed = spares_and_allowed(limits, c.gpu_ids, c.configs.gpu, c.ev.gpus, c.cost_per_hour, c.ev.power_w,
                                         c.slots_per_replica, c.per_node, c.spare_rules, c.objective,
                                         c.replicas_needed)
    return replace(c, limits=limits, replicas_allowed=allowed, spares=spares,
                   replica_cap=replica_domain(c.objective, c.demand, c.replicas_needed, allowed, c.current))


def with_capacity(c: Candidates, rows: Mapping[int, tuple[float, int]]) -> Candidates:
    """The table with the capacity at SLO of each row j in ``rows`` lowered to ``rows[j][0]``:
    requests/s per replica, or clients per replica where the row's slot is a closed loop (what
    the simulator found it holds its targets at: planner/whatif/verify.py), the target it
    missed above that (``rows[j][1]``, an index into the slot's targets) now binding. The
    throughput and utilisation at capacity scale with it and the replica counts follow; the
    latency figures at capacity stay the closed form's at the higher load, so they are not
    optimistic. A row lowered to 0 no longer meets its targets."""
    assert c.load is not None
    load = c.load
    rate, tokens, clients = load.rate.copy(), load.tokens_per_s.copy(), load.clients.copy()
    util, binding = load.utilization.copy(), load.binding.copy()
    closed = np.array([s.demand is not None and s.demand.kind == "clients" for s in c.slots])[c.slot]
    meets = c.meets_slo.copy()
    for j, (value, target) in rows.items():
        old = clients[j] if closed[j] else rate[j]
        scale = min(1.0, max(0.0, value / old)) if old > 0 else 0.0
        rate[j], tokens[j], clients[j], util[j] = rate[j] * scale, tokens[j] * scale, clients[j] * scale, \
            util[j] * scale
        binding[j] = target
        meets[j] &= scale > 0
    capacity = np.where(closed, clients, tokens)
    needed = replicas_needed(c.demand, capacity)
    spares, allowed = spares_and_allowed(c.limits, c.gpu_ids, c.configs.gpu, c.ev.gpus, c.cost_per_hour,
                                         c.ev.power_w, c.slots_per_replica, c.per_node, c.spare_rules, c.objective,
                                         needed)
    return replace(c, load=replace(load, rate=rate, tokens_per_s=tokens, clients=clients, utilization=util,
                                   binding=binding), spares=spares, replicas_allowed=allowed,
                   capacity=capacity, tokens_per_s=tokens, meets_slo=meets, replicas_needed=needed,
                   cost_per_million_tokens=cost_per_million_tokens(c.cost_per_hour, tokens),
                   replica_cap=replica_domain(c.objective, c.demand, needed, allowed, c.current))


def repriced(c: Candidates, p: Problem) -> Candidates:
    """The candidate table ``c`` with the prices and limits of ``p``, a problem with the same
    physics (a sweep's scenario that changes only prices, planner/whatif/sweep.py
    ``physics_key``): no physics is re-run. Equal, field by field, to ``build_candidates(p)``
    (tests/test_sweep.py checks it)."""
    price = p.prices[c.configs.gpu]
    cost_h = cost_per_hour(c.ev.gpus, price)
    lim, s = p.spec.limits, p.spec.search
    limits = Limits(budget_usd_per_hour=lim.budget_usd_per_hour, power_cap_w=lim.power_cap_w, max_gpus=s.max_gpus,
                    max_nodes=s.max_nodes, inventory=dict(lim.inventory))
    spares, allowed = spares_and_allowed(limits, p.table.ids, c.configs.gpu, c.ev.gpus, cost_h, c.ev.power_w,
                                         c.slots_per_replica, c.per_node, c.spare_rules, p.objective,
                                         c.replicas_needed)
    return replace(c, slots=p.slots, price=price, cost_per_hour=cost_h, spares=spares,
                   cost_per_million_tokens=cost_per_million_tokens(cost_h, c.tokens_per_s),
                   replicas_allowed=allowed, limits=limits,
                   replica_cap=replica_domain(p.objective, c.demand, c.replicas_needed, allowed, c.current))


def running_replicas(p: Problem, configs: Configs, slot: np.ndarray, role: np.ndarray | None = None
                     ) -> tuple[np.ndarray | None, tuple[tuple[int, float, float], ...]]:
    """Per row: the replicas of its configuration (slot, GPU, layout, precision; any batch)
    running today, from a fleet's ``current`` (None without one); and the deployments no row
    matches, as (slot, GPUs per replica, replicas). Today's deployments are aggregated: they
    match aggregated rows only."""
    if not p.current:
        return None, ()
    out = np.zeros(len(configs))
    unmatched = []
    for r in p.current:
        mine = np.zeros(len(configs), dtype=bool)
        if r.gpu in p.table.ids and r.scheme in SCHEME_NAMES and r.kv in KV_NAMES:
            agg = role == AGGREGATED if role is not None else np.ones(len(configs), dtype=bool)
            mine = ((slot == r.slot) & agg & (configs.gpu == p.table.ids.index(r.gpu)) & (configs.tp == r.tp)
                    & (configs.pp == r.pp) & (configs.ep == r.ep) & (configs.scheme == SCHEME_NAMES.index(r.scheme))
                    & (configs.kv == KV_NAMES.index(r.kv)))
        if mine.any():
            out[mine] += r.replicas
        else:
            unmatched.append((r.slot, float(max(r.tp, r.ep) * r.pp), float(r.replicas)))
    return out, tuple(unmatched)


def _load(p: Problem, configs: Configs, ev: Evaluation, slot: np.ndarray, role: np.ndarray, cache: PhysicsCache,
          keys: _Keys) -> RowLoad:
    """Every row under load; the rows of all slots (and roles) with one load key computed
    together, each distinct case once, and the keys of slots ``together`` alike in one pass."""
    groups: dict[Hashable, tuple[Slot, int, list[np.ndarray]]] = {}
    n_roles = len(ROLE_NAMES)
    by_case = grouped(slot * n_roles + role, len(p.slots) * n_roles)
    for k, sl in enumerate(p.slots):
        for r, mine in enumerate(by_case[k * n_roles:(k + 1) * n_roles]):
            if r == AGGREGATED or len(mine):
                groups.setdefault(keys.load(sl, r), (sl, r, []))[2].append(mine)
    passes: dict[Hashable, list[tuple[Hashable, Slot, int, np.ndarray]]] = {}
    for j, (key, (sl, r, members)) in enumerate(groups.items()):
        along = together(sl) if r == AGGREGATED else None
        passes.setdefault(j if along is None else along, []).append((key, sl, r, np.concatenate(members)))
    parts = []
    for one in passes.values():
        def compute(fresh: list[np.ndarray], one: list = one) -> list[RowLoad]:
            got = [(configs.take(every[i]), ev.fits[every[i]]) for (_, _, _, every), i in zip(one, fresh)]
            if one[0][2] == AGGREGATED:
                return row_loads([sl for _, sl, _, _ in one], p.table, got, p.assumptions)
            return [pool_load(one[0][1], p.table, got[0][0], p.assumptions, got[0][1], one[0][2])]
        done = cache.rows_together([(key, configs.take(every)) for key, _, _, every in one], compute)
        parts += [(every, d) for (_, _, _, every), d in zip(one, done)]
    return scatter(len(configs), parts)


def replicas_needed(demand: np.ndarray, tokens_per_s: np.ndarray) -> np.ndarray:
    """Fewest replicas whose throughput covers the demand (1 where there is none)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        need = np.ceil(demand / tokens_per_s)
    return np.where(np.isnan(demand), 1.0, np.maximum(need, 1.0))


def replicas_allowed(limits: Limits, gpu_ids: tuple[str, ...], gpu: np.ndarray, gpus: np.ndarray,
                     cost_h: np.ndarray, power_w: np.ndarray, slots: np.ndarray, per_node: np.ndarray,
                     spares: np.ndarray | None = None) -> np.ndarray:
    """Most replicas of each row that the plan-wide limits allow on their own (0 if none; 0 for
    a spot row whose availability target needs more spares than allowed). ``spares``: per row,
    the spare replicas a deployment pays for and runs (each limit counts what is left after them)."""
    cap = np.full(len(gpus), float(MAX_REPLICAS))
    spares = np.zeros(len(gpus)) if spares is None or not len(spares) else spares
    cap, k = np.where(np.isnan(spares), 0.0, cap), np.nan_to_num(spares)
    if limits.max_gpus is not None:
        cap = np.minimum(cap, np.floor(limits.max_gpus / gpus) - k)
    for gid, count in limits.inventory.items():
        if gid in gpu_ids:
            mine = gpu == gpu_ids.index(gid)
            cap = np.where(mine, np.minimum(cap, np.floor(count / gpus)), cap)
    # a relative 1e-12 so that a cap of exactly n replicas' worth allows n: 8.85 / 2.95 is 2.9999999999999996
    if limits.budget_usd_per_hour is not None:     # no price: none allowed (an unknown cost is never free)
        cost = np.nan_to_num(np.asarray(cost_h, dtype=float), nan=np.inf)
        with np.errstate(invalid="ignore"):      # no spares x an unknown price
            left = limits.budget_usd_per_hour * (1 + 1e-12) - np.where(spares > 0, spares * cost, 0.0)
        cap = np.minimum(cap, np.floor(left / np.maximum(cost, 1e-12)))
    if limits.power_cap_w is not None:
        power = np.nan_to_num(power_w, nan=0.0)
        cap = np.minimum(cap, np.floor(limits.power_cap_w * (1 + 1e-12) / np.maximum(power, 1e-12)) - k)
    if limits.max_nodes is not None:
        cap = np.minimum(cap, np.floor(limits.max_nodes * per_node / slots) - k)
    return np.maximum(cap, 0.0)


T = TypeVar("T", Configs, Evaluation)


def _concat(parts: list[T], cls: type[T]) -> T:
    return cls(**{f.name: np.concatenate([getattr(x, f.name) for x in parts]) for f in fields(cls)})


@dataclass(frozen=True)
class _Keys:
    """The physics keys of a problem's slots (planner/candidates/cache.py): the problem's GPU
    table, assumptions, search space and engine support digested once."""

    problem: str

    def __init__(self, p: Problem) -> None:
        object.__setattr__(self, "problem", digest((p.table, p.assumptions, p.spec.search, p.support)))

    def idle(self, slot: Slot) -> tuple[str, str, str]:
        """The idle physics (``evaluate``): the model, the GPU table and the assumptions."""
        return ("idle", self.problem, digest(slot.model))

    def rows(self, slot: Slot) -> tuple[str, str, str]:
        """A slot's configurations and their largest feasible batch (``_slot_rows``)."""
        means = [(t.metric, t.seconds) for t in slot.targets if t.statistic == "mean"]
        return ("rows", self.problem, digest((slot.model, slot.schemes, slot.pools, means, slot.input.mean,
                                              slot.output.mean)))

    def operating(self, slot: Slot) -> tuple[str, str, str]:
        """An aggregated replica at a given load (``operating_points``): the model, the
        lengths, the arrival variability and the prefix cache; not the targets."""
        return ("operating", self.problem, digest((slot.model, workload_of(slot), slot.cache)))

    def load(self, slot: Slot, role: int) -> tuple[str, str, str]:
        """The load model of a role (planner/candidates/load.py): also the lengths, the
        arrival variability, the targets, the utilisation ceiling, the KV link, whether the
        demand is a closed loop's clients (``row_load`` bisects those under the closed loop) and
        the prefix cache (a trace's reuse curve gives each KV pool its own cached tokens:
        ``workload_of(slot)`` holds only the unbounded cache's)."""
        closed = slot.demand is not None and slot.demand.kind == "clients"
        return ("load", self.problem, digest((role, slot.model, workload_of(slot), load_targets(slot),
                                              slot.slo.max_utilization, slot.output.mean, slot.kv_link, closed,
                                              slot.cache)))


def _slot_rows(p: Problem, k: int, slot: Slot, cache: PhysicsCache, keys: _Keys, fewest: np.ndarray
               ) -> tuple[Configs, np.ndarray]:
    """(configurations, configuration id of each row) of one slot; ``fewest``: the smallest
    batch of each configuration meeting its demand (``_smallest_batches_for_demand``)."""
    base, best = cache.memo(keys.rows(slot), lambda: _slot_bases(p, [slot], cache, keys)[0])
    s = p.spec.search
    levels = sorted(set(s.batch_levels or levels_to(s.max_batch)))
    n = len(base)
    if n * (len(levels) + 1) > MAX_CANDIDATES:
        raise InputError(f"the search space has {n * (len(levels) + 1):,} candidates, above the limit of "
                         f"{MAX_CANDIDATES:,}; narrow search.gpus, quantizations, tp, pp or batch_levels",
                         path="search", file=p.file)
    rows = np.repeat(np.arange(n), len(levels))
    batch = np.tile(np.asarray(levels, dtype=float), n)
    for extra_batch in (best, fewest):
        extra = np.nonzero((extra_batch >= 1) & ~np.isin(extra_batch, levels))[0]
        rows = np.concatenate([rows, extra])
        batch = np.concatenate([batch, extra_batch[extra]])
    rows, batch = unique_rows(rows, batch)
    return with_batch(base.take(rows), batch), rows


def idle_rows(p: Problem, c: Candidates, slot: Slot, configs: Configs) -> Evaluation:
    """The idle physics of ``configs``, rows of ``slot``'s model beside table ``c`` (an
    answer's configurations one batch larger, planner/plan/explain.py): through the table's
    physics cache where it has one, each distinct case once (the same figures)."""
    if c.physics is None:
        return evaluate(slot.model, p.table, configs, p.assumptions)
    return _idle(p, slot, configs, *c.physics)


def _idle(p: Problem, slot: Slot, configs: Configs, cache: PhysicsCache, keys: _Keys) -> Evaluation:
    """The idle physics of every row, each distinct case computed once."""
    return cache.rows(keys.idle(slot), configs, lambda i: evaluate(slot.model, p.table, configs.take(i), p.assumptions))


def _slot_bases(p: Problem, slots: list[Slot], cache: PhysicsCache | None = None, keys: _Keys | None = None
                ) -> list[tuple[Configs, np.ndarray]]:
    """``_slot_base`` of slots of one model, their physics computed together (each row its own);
    the batches searched through ``cache`` when given (the table's rows read them back)."""
    s, o = p.spec.search, p.assumptions
    bases = []
    for slot in slots:
        schemes = [SCHEME_NAMES.index(q) for q in (slot.schemes if slot.schemes is not None else
                                                   s.quantizations if s.quantizations is not None else DEFAULT_SCHEMES)]
        base = Configs.grid(range(len(p.gpus)), schemes, [KV_NAMES.index(k) for k in s.kv_dtypes], sorted(set(s.tp)),
                            sorted(set(s.pp)), _ep_degrees(p, slot), [1], [slot.input_tokens], [slot.output_tokens])
        if p.support is not None:      # only what the engine runs on that GPU, as it runs it (docs/support.md)
            ok = p.support.ok[base.gpu, base.scheme, base.kv]
            runs_as = p.support.runs_as[base.gpu, base.scheme, base.kv]
            base = base.take(np.nonzero(ok)[0])
            base = dedupe(with_scheme(base, np.where(runs_as[ok] >= 0, runs_as[ok], base.scheme)))
        if slot.pools is not None:     # a fleet workload kept to some pools (docs/fleet.md)
            inside = np.array([gid.partition("@")[2] in slot.pools for gid in p.table.ids])
            base = base.take(np.nonzero(inside[base.gpu])[0])
        bases.append(base)
    whole, owner = _concat(bases, Configs), np.repeat(np.arange(len(slots)), [len(b) for b in bases])
    keep = evaluate(slots[0].model, p.table, whole, o).valid.copy()
    if not s.allow_cross_node_tp:
        keep &= whole.tp <= p.table.domain[whole.gpu]
    levels = sorted(set(s.batch_levels or levels_to(s.max_batch)))
    mine = [np.flatnonzero(keep & (owner == j)) for j in range(len(slots))]
    out = [(whole.take(m), np.zeros(len(m))) for m in mine]
    some = [j for j, m in enumerate(mine) if len(m) * (len(levels) + 1) <= MAX_CANDIDATES]   # else _slot_rows says why
    if some:
        rows = np.concatenate([mine[j] for j in some])
        best = _largest_feasible_batch(p, [slots[j] for j in some], np.repeat(np.arange(len(some)), [len(
            mine[j]) for j in some]), whole.take(rows), min(s.max_batch, max(levels)), cache, keys)
        ends = np.cumsum([0] + [len(mine[j]) for j in some])
        for i, j in enumerate(some):
            out[j] = (out[j][0], best[ends[i]:ends[i + 1]])
    return out


def _probe(p: Problem, slot: Slot, base: Configs, cache: PhysicsCache | None = None, keys: _Keys | None = None
           ) -> Probe:
    def run(index: np.ndarray, batch: np.ndarray) -> Evaluation:
        rows = with_batch(base.take(index), batch)
        if cache is None or keys is None:
            return evaluate(slot.model, p.table, rows, p.assumptions)
        return _idle(p, slot, rows, cache, keys)
    return run


def _largest_feasible_batch(p: Problem, slots: list[Slot], owner: np.ndarray, base: Configs, cap: int,
                            cache: PhysicsCache | None = None, keys: _Keys | None = None) -> np.ndarray:
    """Per configuration, the largest batch <= cap that fits in memory and whose idle step
    meets its slot's (``slots[owner]``) mean TPOT/ITL and TTFT targets (0 if none): a batch
    level worth offering the solver (all are monotone in the batch). Under load the running
    batch is smaller than this cap (docs/load.md section 2); the load stage prices every level."""
    n = len(base)

    def ok(ev: Evaluation, index: np.ndarray) -> np.ndarray:
        good = ev.fits.copy()
        for j, slot in enumerate(slots):
            mine = owner[index] == j
            for t in slot.targets:
                if t.statistic == "mean" and t.metric in ("tpot", "itl", "ttft"):
                    good[mine] &= (ev.ttft if t.metric == "ttft" else ev.tpot)[mine] <= t.seconds
        return good

    return bisect(grid(_probe(p, slots[0], base, cache, keys), n, cap), ok, np.zeros(n), np.full(n, cap + 1.0))


def _smallest_batches_for_demand(p: Problem, cache: PhysicsCache, keys: _Keys) -> list[np.ndarray]:
    """Per slot, per configuration of the slot, the smallest batch whose replicas, as many as
    the limits allow, still meet the demand (0 if none). Throughput per replica grows with the
    batch and the replica cap does not depend on it; a smaller batch has a shorter TPOT, so
    this is the TPOT-optimal batch of the configuration under a demand.

    The slots sharing their configurations (``_Keys.rows``: a fleet's workloads of one model
    and length profile) are bisected together, one lane per (slot, configuration), each lane's
    steps its own: one physics call per step for all of them, each distinct (configuration,
    batch) computed once (planner/candidates/cache.py)."""
    out = [np.zeros(0)] * len(p.slots)
    groups: dict[Hashable, dict[tuple[str, str, str], list[int]]] = {}      # model -> configurations -> slots
    for k, slot in enumerate(p.slots):
        groups.setdefault(keys.idle(slot), {}).setdefault(keys.rows(slot), []).append(k)
    # the replicas the limits allow follow the limits, the prices (a budget), the offers'
    # spares, the objective and, through the spares, the demand: a cache kept across scenarios
    # sees them all
    spared = any(p.spare_rule(g) is not None for g in range(len(p.gpus)))
    limits = digest((p.spec.limits, p.spec.search.max_gpus, p.spec.search.max_nodes, p.prices, p.offers,
                     p.objective))
    levels = set(p.spec.search.batch_levels or levels_to(p.spec.search.max_batch))
    for by_rows in groups.values():       # a model's slots: their configurations found together
        held = cache.memo_together(list(by_rows), lambda new: _slot_bases(p, [p.slots[by_rows[key][0]] for key in new],
                                                                          cache, keys))
        bases: list[Configs] = []
        lanes: list[tuple[int, int, int]] = []        # (slot, its first lane row, rows)
        demand, r_max, config, top = [], [], [], []
        at = start = 0                                # the first row of a base, of a lane
        for (key, members), (base, largest) in zip(by_rows.items(), held):
            first = p.slots[members[0]]
            n = len(base)
            bases.append(base)
            for k in members:
                d = p.slots[k].demand_tokens_per_s
                out[k] = np.zeros(n)
                if d is None or n * (len(levels) + 1) > MAX_CANDIDATES:     # too many: _slot_rows says so
                    continue

                def most(k: int = k, first: Slot = first, base: Configs = base) -> np.ndarray:
                    at1, rows = _idle(p, first, base, cache, keys), np.full(len(base), k, dtype=np.int64)
                    return _derive(p, base, at1, np.arange(len(base)), rows, with_load=False).replicas_allowed
                lanes.append((k, start, n))
                demand.append(np.full(n, d))
                r_max.append(cache.memo(("most replicas", *key, limits, d if spared else None), most))
                config.append(at + np.arange(n))
                top.append(largest)
                start += n
            at += n
        if not lanes:
            continue
        need, most_r = np.concatenate(demand), np.concatenate(r_max)
        highest = np.concatenate(top)
        probe = grid(_probe(p, p.slots[lanes[0][0]], _concat(bases, Configs), cache, keys), at,
                      int(highest.max(initial=0)))

        def meets(ev: Evaluation, index: np.ndarray, need: np.ndarray = need, most_r: np.ndarray = most_r
                  ) -> np.ndarray:
            return ev.throughput_tokens_per_s * most_r[index] < need[index]  # true below the boundary

        def lane(i: np.ndarray, b: np.ndarray, config: np.ndarray = np.concatenate(config), probe: Probe = probe
                 ) -> Evaluation:
            return probe(config[i], b)

        smallest = bisect(lane, meets, np.zeros(len(highest)), highest + 1.0) + 1.0
        whole = np.where((highest >= 1) & (smallest <= highest), smallest, 0.0)
        for k, start, n in lanes:
            out[k] = whole[start:start + n]
    return out
