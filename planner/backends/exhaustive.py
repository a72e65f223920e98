"""The independent oracle: enumerate every candidate and evaluate the spec's limits on the
physics directly, with no constraint model. Replicas: the fewest that meet the demand
(every other limit caps them from above), or for the throughput objective the most the
limits allow. It reads the physics, idle and under load (the capacity at SLO and the
statistics there, planner/candidates/load.py), as given: they are the model's inputs.

Deliberately independent: the SLO comparisons, replica bounds, costs and objective values
below restate, in their own words, what planner/candidates and its objective registry
compute for the model. Code shared by the model and the oracle that checks it could make
both agree on a wrong answer. With several slots sharing a limit, the oracle enumerates
the product of the slots' feasible rows (small instances only); a slot that splits its
traffic enumerates sets of rows with their replicas (``solve_fleet``).

Answers are ranked by the phases of the lexicographic order (the instance's objectives,
then fewer GPUs, then the documented order of rows, docs/formulation.md section 4b), each
phase keeping the entries tied with its best (``_tied``, the oracle's own tie rule), and an
earlier answer is never repeated (its configuration set is cut)."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from planner.backends.base import Feature, PhaseInterrupted, Solution, Status
from planner.errors import InputError
from planner.physics.space import KV_NAMES, SCHEME_NAMES

if TYPE_CHECKING:
    from constraints import Formulation
    from planner.candidates.schedule import PeriodTables
    from planner.candidates.table import Candidates

MAX_COMBINATIONS = 2_000_000
ORACLE_REPLICA_CAP = 100_000.0   # the oracle's own copy of the replica domain bound
TIE_RELATIVE = 1e-6
TIE_ABSOLUTE = 1e-6
"""The oracle's own copy of the tie rule (docs/formulation.md section 4b): a value within
TIE_RELATIVE of the best, or TIE_ABSOLUTE in the unit a person reads it in (``READ_AS``: ms
for a latency, else its SI unit), ties it, and the next phase decides."""
READ_AS = {"tpot": 1e-3, "ttft": 1e-3}
"""Seconds per unit read, per latency objective (the oracle's own copy)."""


class ExhaustiveBackend:
    name = "exhaustive"
    features = frozenset({Feature.INDEPENDENT_ORACLE, Feature.INTEGER, Feature.TIME_LIMIT})

    def rank(self, c: Candidates, phases: tuple[str, ...], slack: dict[str, float],
             cuts: tuple[frozenset[int], ...] = (), deadline: float | None = None
             ) -> tuple[Status, list[tuple[int, int]], np.ndarray, dict[str, float]]:
        """The best answer under the lexicographic ``phases`` that repeats no earlier answer
        (``cuts``: each earlier answer's configuration ids): status, (row, replicas) chosen,
        served share per slot, each phase's value (SI units; served_demand a share).
        ``deadline`` (a ``time.perf_counter()`` time): past it the enumeration stops, status
        time_limit (nothing proven)."""
        try:
            if c.split:
                return solve_fleet(c, phases, slack, cuts, deadline)
            return _rank_single(c, phases, slack, cuts, deadline)
        except _OutOfTime:
            return Status.TIME_LIMIT, [], np.zeros(c.n_slots), {}

    def schedule(self, t: PeriodTables, deadline: float | None = None
                 ) -> tuple[Status, list[list[tuple[int, int]]], np.ndarray, float]:
        """A schedule over periods by enumeration (planner/backends/schedule_oracle.py): status,
        (row, replicas) per period, GPUs held per period and type, $ per cycle."""
        from planner.backends.schedule_oracle import solve_schedule
        return solve_schedule(t, deadline)

    def static(self, t: PeriodTables, deadline: float | None = None
               ) -> tuple[Status, list[tuple[int, int, int]], float]:
        """The static fleet a schedule is compared with, by enumeration
        (planner/backends/schedule_oracle.py): status, (period, row, replicas), $ per cycle."""
        from planner.backends.schedule_oracle import solve_static
        return solve_static(t, deadline)

    def solve(self, f: Formulation, time_limit: float, seed: int = 0, gap: float = 0.0) -> Solution:
        """The formulation's own objective (no tie-break), in the oracle's terms. ``gap`` is
        ignored: the oracle enumerates every answer, and its answer is the proven optimum."""
        t0 = time.perf_counter()
        st, picks, _, _ = self.rank(f.cands, (f.cands.objective,), {}, f.cuts, deadline=t0 + time_limit)
        if st != Status.OPTIMAL:
            return Solution(st, None, seconds=time.perf_counter() - t0)
        return Solution(Status.OPTIMAL, None, picks=tuple(j for j, _ in picks), replicas=tuple(r for _, r in picks),
                        gap=0.0, seconds=time.perf_counter() - t0)


class _OutOfTime(Exception):
    """The enumeration passed its deadline."""


def _in_time(deadline: float | None) -> None:
    if deadline is not None and time.perf_counter() > deadline:
        raise _OutOfTime


def _shared_limits(c: Candidates) -> bool:
    lim = c.limits
    return bool(lim.inventory) or any(v is not None for v in (lim.max_gpus, lim.max_nodes,
                                                              lim.budget_usd_per_hour, lim.power_cap_w))


def _tied(v: np.ndarray, keep: np.ndarray, sense: str, tol: float, name: str = "") -> np.ndarray:
    """``keep`` narrowed to the entries tied with the best of ``v`` among them."""
    room = TIE_ABSOLUTE * READ_AS.get(name, 1.0)
    if sense == "max":
        best = v[keep].max()
        return keep & (v >= best - tol * abs(best) - room)
    best = v[keep].min()
    return keep & (v <= best + tol * abs(best) + room)


def _lexicographic(values_of: Callable[[str, np.ndarray], np.ndarray], n: int, phases: tuple[str, ...],
                   slack: dict[str, float]) -> tuple[np.ndarray, dict[str, float], np.ndarray]:
    """Of ``n`` entries, those tied with the best phase by phase (each phase among the previous
    one's ties; ``values_of(name, entries)`` gives a phase's values of those entries only, so
    that each phase reads the ties left): the entries, each phase's best value, and the last
    phase's values of the entries. A Ctrl-C once the first phase is decided is ``_Stopped``
    with the same of the phases decided."""
    idx = np.arange(n)
    reached: dict[str, float] = {}
    last = np.zeros(n)
    for name in phases:
        try:
            v = values_of(name, idx)
            tied = _tied(v, np.ones(len(v), dtype=bool), SENSE.get(name, "min"), slack.get(name, TIE_RELATIVE), name)
            best = float(v[tied].max() if SENSE.get(name, "min") == "max" else v[tied].min())
        except KeyboardInterrupt:
            if not reached:      # nothing decided: the caller's Ctrl-C, as in the enumeration
                raise
            raise _Stopped(idx, reached, last, name) from None
        idx, last, reached = idx[tied], v[tied], reached | {name: best}
    return idx, reached, last


class _Stopped(Exception):
    """A Ctrl-C in a phase of ``_lexicographic`` after the first: what the phases decided left."""

    def __init__(self, idx: np.ndarray, reached: dict[str, float], last: np.ndarray, phase: str) -> None:
        super().__init__(phase)
        self.idx, self.reached, self.last, self.phase = idx, reached, last, phase


SENSE = {"throughput": "max", "served_demand": "max"}
"""The oracle's own copy of each objective's sense (every other one is minimised)."""


def _rank_single(c: Candidates, phases: tuple[str, ...], slack: dict[str, float],
                 cuts: tuple[frozenset[int], ...], deadline: float | None = None
                 ) -> tuple[Status, list[tuple[int, int]], np.ndarray, dict[str, float]]:
    """One deployment per slot: every row (one slot) or every combination of one row per slot
    under the shared limits, ranked phase by phase."""
    n = c.n_slots
    gone = frozenset().union(*cuts) if n == 1 and cuts else frozenset()
    replicas, ok = feasible_rows(c, gone)
    spares = oracle_spares(c)
    rows_v = {name: row_values(c, name, replicas) for name in phases}
    for v in rows_v.values():
        ok &= np.isfinite(v)
    if n == 1 or not cuts and not _shared_limits(c):      # each slot on its own
        keeps = [ok & (c.slot == s) for s in range(n)]
        if any(not keep.any() for keep in keeps):
            return Status.INFEASIBLE, [], np.zeros(n), {}

        def each(keeps: list[np.ndarray], done: tuple[str, ...]) -> tuple[Status, list[tuple[int, int]], np.ndarray,
                                                                            dict[str, float]]:
            """Per slot the first of the entries tied on the phases ``done`` by the last of them."""
            picks = [int(np.nonzero(keep)[0][np.argmin(rows_v[done[-1]][keep])]) for keep in keeps]
            return (Status.OPTIMAL, [(j, int(replicas[j])) for j in picks], np.ones(n),
                    {name: float(sum(rows_v[name][j] for j in picks)) for name in done})

        for k, name in enumerate(phases):
            try:
                keeps = [_tied(rows_v[name], keep, SENSE.get(name, "min"), slack.get(name, TIE_RELATIVE), name)
                         for keep in keeps]
            except KeyboardInterrupt:
                if k == 0:            # nothing decided: the caller's Ctrl-C
                    raise
                raise PhaseInterrupted(each(keeps, phases[:k]), name) from None
        return each(keeps, phases)
    options = [np.nonzero(ok & (c.slot == s))[0] for s in range(n)]
    if any(not len(o) for o in options):
        return Status.INFEASIBLE, [], np.zeros(n), {}
    count = float(np.prod([len(o) for o in options], dtype=float))
    if count > MAX_COMBINATIONS:
        raise _too_many(count)
    cut = set(cuts)
    combos = []
    for i, combo in enumerate(itertools.product(*options)):
        if not i & 4095:
            _in_time(deadline)
        if frozenset(int(c.config[j]) for j in combo) not in cut and _within_limits(c, combo, replicas, spares):
            combos.append(combo)
    if not combos:
        return Status.INFEASIBLE, [], np.zeros(n), {}

    def totals(name: str, idx: np.ndarray) -> np.ndarray:
        return np.array([sum(float(rows_v[name][j]) for j in combos[i]) for i in idx])

    def best(idx: np.ndarray, reached: dict[str, float], last: np.ndarray
             ) -> tuple[Status, list[tuple[int, int]], np.ndarray, dict[str, float]]:
        combo = combos[int(idx[np.argmin(last)])]
        return Status.OPTIMAL, [(int(j), int(replicas[j])) for j in combo], np.ones(n), reached

    try:
        return best(*_lexicographic(totals, len(combos), phases, slack))
    except _Stopped as s:
        raise PhaseInterrupted(best(s.idx, s.reached, s.last), s.phase) from None


def row_order(c: Candidates) -> np.ndarray:
    """The oracle's own copy of the documented tie-break order of rows (docs/formulation.md
    section 4b): position 0 first, ordered by TTFT p99 at capacity, mean TPOT at capacity,
    nodes per replica, TP, PP, EP, batch, GPU id, weight format and KV format by name, role,
    workload, configuration id."""
    ev, cfg = c.ev, c.configs
    assert c.load is not None
    per_node = c.per_node.astype(float)
    nodes = np.where(ev.gpus <= per_node, ev.gpus / per_node, np.ceil(ev.gpus / per_node))
    gpu_names = [c.gpu_ids[int(g)] for g in cfg.gpu]
    q_names = [SCHEME_NAMES[int(q)] for q in cfg.scheme]
    kv_names = [KV_NAMES[int(k)] for k in cfg.kv]
    role = c.role if len(c.role) == len(c) else np.zeros(len(c), dtype=np.int64)
    ttft99 = c.load.stats[("ttft", "p99")]
    tpot = c.load.stats[("tpot", "mean")]

    def finite(x: Any) -> float:
        return float(x) if np.isfinite(x) else math.inf

    key = sorted(range(len(c)), key=lambda j: (
        finite(ttft99[j]), finite(tpot[j]), float(nodes[j]), int(cfg.tp[j]), int(cfg.pp[j]), int(cfg.ep[j]),
        float(cfg.batch[j]), gpu_names[j], q_names[j], kv_names[j], int(role[j]), int(c.slot[j]), int(c.config[j])))
    out = np.empty(len(c), dtype=np.int64)
    out[np.array(key, dtype=np.int64)] = np.arange(len(c))
    return out


def _within_limits(c: Candidates, combo: tuple, replicas: np.ndarray, spares: np.ndarray) -> bool:
    lim, ev = c.limits, c.ev
    r = np.array([replicas[j] for j in combo])
    g = np.array([ev.gpus[j] for j in combo])
    gpu = np.array([c.configs.gpu[j] for j in combo])
    k = np.array([spares[j] for j in combo])      # a spot deployment pays and runs its spare replicas too
    running = r + np.nan_to_num(k)                # physical replicas: GPUs, watts and nodes count them
    if lim.max_gpus is not None and (running * g).sum() > lim.max_gpus:
        return False
    for gid, count in lim.inventory.items():
        if gid in c.gpu_ids and (r * g)[gpu == c.gpu_ids.index(gid)].sum() > count:
            return False
    price = np.array([c.price[j] for j in combo])
    # the oracle's own rule: a GPU without a price is never free under a budget
    if lim.budget_usd_per_hour is not None and not ((r + k) * g * price).sum() <= lim.budget_usd_per_hour * (1 + 1e-12):
        return False
    power = np.array([ev.power_w[j] for j in combo])
    if lim.power_cap_w is not None and np.nansum(running * power) > lim.power_cap_w * (1 + 1e-12):
        return False
    if lim.max_nodes is not None:
        nodes = 0.0
        for t in set(gpu.tolist()):
            per_node = c.per_node[[j for j in combo if c.configs.gpu[j] == t][0]]
            whole = sum(rr * np.ceil(gg / per_node) for rr, gg, tt in zip(running, g, gpu) if tt == t and gg > per_node)
            shared = sum(rr * gg for rr, gg, tt in zip(running, g, gpu) if tt == t and gg <= per_node)
            nodes += whole + np.ceil(shared / per_node - 1e-12)
        if nodes > lim.max_nodes:
            return False
    return True



def replica_bounds(c: Candidates) -> tuple[np.ndarray, np.ndarray]:
    """(fewest replicas the demand needs, most the limits allow) per candidate: the oracle's
    own copy (planner/candidates computes the model's)."""
    return _needed(c), _most(c, oracle_spares(c))


def _most(c: Candidates, spares: np.ndarray) -> np.ndarray:
    """Most replicas of each candidate the limits allow, a spot deployment's ``spares`` paid."""
    ev, gpu, lim = c.ev, c.configs.gpu, c.limits
    hi = np.where(np.isnan(spares), 0.0, ORACLE_REPLICA_CAP)     # a spot row whose target needs too many spares
    k = np.nan_to_num(spares)       # spare replicas run: they take GPUs, watts and node slots as well
    if lim.max_gpus is not None:
        hi = np.minimum(hi, np.floor(lim.max_gpus / ev.gpus) - k)
    for gid, count in lim.inventory.items():
        if gid in c.gpu_ids:
            hi = np.where(gpu == c.gpu_ids.index(gid), np.minimum(hi, np.floor(count / ev.gpus)), hi)
    if lim.budget_usd_per_hour is not None:
        cost = np.where(np.isnan(c.price), np.inf, ev.gpus * c.price)     # no price: none within a budget
        # the same relative tolerance as the sums of _feasible: a budget of exactly n replicas buys n,
        # after a spot deployment's spares
        left = lim.budget_usd_per_hour * (1 + 1e-12) - np.nan_to_num(spares) * np.nan_to_num(cost, posinf=0.0)
        hi = np.minimum(hi, np.floor(left / np.maximum(cost, 1e-300)))
    if lim.power_cap_w is not None:
        hi = np.minimum(hi, np.floor(lim.power_cap_w * (1 + 1e-12) / np.maximum(np.nan_to_num(ev.power_w), 1e-300)) - k)
    if lim.max_nodes is not None:
        per_node = c.per_node
        slots = np.where(ev.gpus <= per_node, ev.gpus, np.ceil(ev.gpus / per_node) * per_node)
        hi = np.minimum(hi, np.floor(lim.max_nodes * per_node / slots) - k)
    return np.maximum(hi, 0.0)


def _needed(c: Candidates) -> np.ndarray:
    """Fewest replicas of each row that meet its slot's demand alone (1 without one): the oracle's own."""
    assert c.load is not None
    demand = np.array([np.nan if s.demand is None else s.demand.value for s in c.slots])[c.slot]
    closed = np.array([s.demand is not None and s.demand.kind == "clients" for s in c.slots])[c.slot]
    per_replica = np.where(closed, c.load.clients, c.load.tokens_per_s)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isnan(demand), 1.0, np.maximum(1.0, np.ceil(demand / per_replica)))


ORACLE_MAX_SPARES = 64   # the oracle's own copy of the most spares one spot deployment may carry


def oracle_spares(c: Candidates) -> np.ndarray:
    """Spare replicas per row, the oracle's own reading of each spot entry's preemption rule
    (``Candidates.spare_rules``, the instance's input): k as given, or for an availability
    target A with replicas up a share a, the fewest k whose N + k replicas keep N up with
    probability >= A, N the replicas the row needs for its slot's demand alone; summed
    directly over the ways k or fewer replicas are down (NaN: more than ORACLE_MAX_SPARES).
    Under objective throughput, where replicas run up to the limits, N is the most the limits
    allow before spares."""
    out = np.zeros(len(c))
    if all(rule is None for rule in c.spare_rules):
        return out
    need = _most(c, out) if c.objective == "throughput" else _needed(c)
    for j in range(len(c)):
        rule = c.spare_rules[int(c.configs.gpu[j])]
        if rule is None:
            continue
        if rule.spare_replicas is not None:
            out[j] = rule.spare_replicas
            continue
        n, a = need[j], float(rule.replica_availability)     # type: ignore[arg-type]
        out[j] = math.nan
        if not np.isfinite(n):
            continue
        for k in range(ORACLE_MAX_SPARES + 1):
            total = int(n) + k
            up = sum(math.exp(math.log(math.comb(total, down)) + (total - down) * math.log(a) + down * math.log(1 - a))
                     for down in range(k + 1))
            if up >= float(rule.availability) * (1 - 1e-12):     # type: ignore[arg-type]
                out[j] = k
                break
    return out


def feasible_rows(c: Candidates, gone: frozenset[int] = frozenset()) -> tuple[np.ndarray, np.ndarray]:
    """Replicas and feasibility of every candidate, from the physics (rows of the
    configurations in ``gone`` are out). Replicas: the fewest that meet the demand, or for
    the throughput objective the most the limits allow."""
    ev, load = c.ev, c.load
    assert load is not None
    ok = ev.fits & (load.rate > 0)
    for k, s in enumerate(c.slots):
        mine = c.slot == k
        for t in s.targets:
            ok &= ~mine | (load.get(t.metric, t.statistic) <= t.seconds)
    if gone:
        ok &= ~np.isin(c.config, list(gone))
    lo, hi = replica_bounds(c)
    ok &= lo <= hi
    has_demand = np.array([s.demand is not None for s in c.slots])[c.slot]     # open loop or N clients
    replicas = hi if c.objective == "throughput" else np.where(has_demand, lo, 1.0)
    return replicas, ok


def row_values(c: Candidates, name: str, replicas: np.ndarray) -> np.ndarray:
    """Objective ``name`` of each candidate alone at ``replicas`` (SI units), from the physics."""
    ev, load = c.ev, c.load
    assert load is not None
    has_demand = np.array([s.demand is not None for s in c.slots])[c.slot]     # open loop or N clients
    cost_h = ev.gpus * c.price
    paid = replicas + oracle_spares(c)       # a spot deployment pays for its spare replicas, serves with the rest
    with np.errstate(divide="ignore", invalid="ignore"):
        if name == "cost_per_million_tokens":
            return np.where(has_demand, cost_h * paid, cost_h * (paid / replicas) / (load.tokens_per_s * 3600.0) * 1e6)
        if name == "cost_per_hour":
            return cost_h * paid
        if name == "tpot":
            return load.get("tpot", "mean")
        if name == "ttft":
            return load.get("ttft", "mean")
        if name == "gpus":
            return ev.gpus * replicas
        if name == "power_w":
            return ev.power_w * replicas
        if name == "order":                    # each GPU counts its row's position
            return row_order(c).astype(float) * ev.gpus * replicas
        if name == "workload_order":           # ... times n for the first of n workloads, ..., 1 for the last
            return row_order(c).astype(float) * ev.gpus * replicas * (c.n_slots - c.slot)
        if name == "throughput":
            return load.tokens_per_s * replicas
    raise ValueError(f"the exhaustive oracle ranks one deployment per slot by {name} only in a fleet")


MAX_FLEET_STATES = 3_000_000
"""Fleets (combinations of the workloads' options) the oracle would join, at most: their
count, the product of the options per workload, is checked before the first is built."""


def solve_fleet(c: Candidates, phases: tuple[str, ...], slack: dict[str, float],
                cuts: tuple[frozenset[int], ...] = (), deadline: float | None = None
                ) -> tuple[Status, list[tuple[int, int]], np.ndarray, dict[str, float]]:
    """A fleet by enumeration, in its own terms (docs/fleet.md): per workload every set of at
    most K rows with every replica count from 1 to the most its demand alone needs (or runs
    today), then every combination of the workloads' options under the shared limits, ranked
    lexicographically by ``phases`` (an earlier phase kept within ``slack`` of its optimum;
    GPUs and the rows' order as the tie-breaks name them), none using exactly the
    configurations of an earlier answer (``cuts``). Small instances only: each workload's
    options and then their product are counted before they are enumerated, and refused past
    ``MAX_OPTIONS`` and ``MAX_FLEET_STATES``; ``deadline`` stops it (``_OutOfTime``). Returns
    status, (row, replicas) chosen, served share per slot and each phase's value."""
    ev, load = c.ev, c.load
    assert load is not None
    ok = ev.fits & (load.rate > 0)
    role = c.role if len(c.role) else np.zeros(len(c), dtype=np.int64)
    modes = c.modes or tuple("never" for _ in c.slots)
    for k, s in enumerate(c.slots):
        mine = c.slot == k
        # the oracle's own reading of the roles: aggregated rows answer for every target, a
        # prefill row for TTFT only, a decode row for TPOT and ITL only; the mode says which
        # roles a workload may use
        ok &= ~mine | np.where(role == 0, modes[k] != "always", modes[k] != "never")
        for t in s.targets:
            applies = (role == 0) | ((role == 1) & (t.metric == "ttft")) | ((role == 2) & (t.metric in ("tpot", "itl")))
            ok &= ~mine | ~applies | (load.get(t.metric, t.statistic) <= t.seconds)
    lo, hi = replica_bounds(c)
    closed = np.array([s.demand is not None and s.demand.kind == "clients" for s in c.slots])[c.slot]
    per_replica = np.where(closed, load.clients, load.tokens_per_s)
    need = np.where(np.isfinite(lo), lo, 0.0)     # a row with no capacity gets no replica
    today = np.zeros(len(c)) if c.current is None else c.current
    top = np.minimum(hi, np.maximum(need, today))
    partial = "served_demand" in phases
    types = list(c.gpu_ids)
    n_t = len(types)
    weights = np.array([s.weight for s in c.slots], dtype=float)
    order = row_order(c)
    spares = oracle_spares(c)
    # state: picks, cost, gpus per type, GPUs on shared nodes per type, whole nodes per type, power, served, change,
    # GPUs in all (serving), the rows' order positions summed per GPU, spare GPUs (spot), those positions
    # weighted n for the first of n workloads in the file, ..., 1 for the last
    each: list[list[tuple]] = []       # every workload's options, all counted before any fleet is joined
    for k, s in enumerate(c.slots):
        rows = [int(j) for j in np.nonzero(ok & (c.slot == k))[0] if top[j] >= 1]
        d = float(s.demand.value)   # type: ignore[union-attr]
        options = []
        if (role[rows] != 0).any():
            options = [_option(c, k, sub, reps, served, today, n_t, order, spares)
                       for sub, reps, served in _pooled(c, role, rows, top, per_replica, d, partial,
                                                        c.current is None, deadline)]
            rows = []
        if rows:
            _small_enough(rows, top, c.max_configs)
        for m in range(0 if partial else 1, c.max_configs + 1 if rows else 0):
            for subset in itertools.combinations(rows, m):
                _in_time(deadline)
                for reps in itertools.product(*[range(1, int(top[j]) + 1) for j in subset]):
                    capacity = sum(per_replica[j] * r for j, r in zip(subset, reps))
                    if capacity < d * (1 - 1e-12) and not partial:
                        continue
                    options.append(_option(c, k, subset, reps, min(1.0, capacity / d), today, n_t, order, spares))
        options += [_option(c, k, (), (), 0.0, today, n_t, order, spares)] if partial and not options else []
        each.append(options)
    fleets = math.prod(float(len(o)) for o in each)
    if fleets > MAX_FLEET_STATES:
        raise _too_many(fleets)
    states: list[tuple] = [((), 0.0, np.zeros(n_t), np.zeros(n_t), np.zeros(n_t), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)]
    for k, options in enumerate(each):
        joined = []
        for a in states:
            _in_time(deadline)
            joined += [x for b in options if _fits(c, x := _join(a, b, weights[k]))]
        states = joined
    if cuts:
        cut = set(cuts)
        states = [x for x in states if frozenset(int(c.config[j]) for j, _ in x[0]) not in cut]
    if not states:
        return Status.INFEASIBLE, [], np.zeros(c.n_slots), {}
    served_total = weights.sum()
    values = {"cost_per_hour": np.array([x[1] for x in states]),
              "served_demand": np.array([x[6] for x in states]) / served_total,
              "change": np.array([x[7] for x in states]),
              "gpus": np.array([x[8] for x in states]),
              "order": np.array([x[9] for x in states]),
              "workload_order": np.array([x[11] for x in states])}
    values["cost_per_million_tokens"] = values["cost_per_hour"]     # with a demand: $/hour over a fixed rate
    unknown = [n for n in phases if n not in values]
    if unknown:
        raise InputError(f"the exhaustive backend ranks split deployments by cost, served demand, change and GPUs, "
                         f"not {unknown[0]}", path="--backend", value="exhaustive", accepted="milp, cpsat, highs")

    def best(idx: np.ndarray, reached: dict[str, float], last: np.ndarray
             ) -> tuple[Status, list[tuple[int, int]], np.ndarray, dict[str, float]]:
        """The first of the entries tied on the phases ``reached`` by the last of them."""
        pick = int(idx[np.argmax(last)] if SENSE.get(list(reached)[-1], "min") == "max" else idx[np.argmin(last)])
        picks = list(states[pick][0])
        served = np.zeros(c.n_slots)
        for k, s in enumerate(c.slots):
            mine = [(j, r) for j, r in picks if c.slot[j] == k]
            served[k] = min(1.0, _served(role, c.configs.kv, per_replica, mine) / float(s.demand.value))  # type: ignore
        return Status.OPTIMAL, picks, served, reached

    try:
        return best(*_lexicographic(lambda name, idx: values[name][idx], len(states), phases, slack))
    except _Stopped as stop:
        raise PhaseInterrupted(best(stop.idx, stop.reached, stop.last), stop.phase) from None


def _served(role: np.ndarray, kv: np.ndarray, per_replica: np.ndarray, picks: list[tuple[int, int]]) -> float:
    """What a workload's deployments serve, in its demand unit: its aggregated replicas'
    capacity plus, per KV format, the smaller of its prefill and its decode pool's."""
    agg = sum(per_replica[j] * r for j, r in picks if role[j] == 0)
    pools: dict[tuple[int, int], float] = {}
    for j, r in picks:
        if role[j] != 0:
            pools[(int(role[j]), int(kv[j]))] = pools.get((int(role[j]), int(kv[j])), 0.0) + per_replica[j] * r
    return float(agg + sum(min(v, pools.get((2, f), 0.0)) for (rl, f), v in pools.items() if rl == 1))


def _choices(rows: list[int], top: np.ndarray, most: int) -> list[tuple[tuple, tuple]]:
    """Every set of at most ``most`` rows (the empty one included) with every replica count
    (refused first if their count could pass ``MAX_OPTIONS``)."""
    if rows:
        _small_enough(rows, top, most)
    out: list[tuple[tuple, tuple]] = []
    for m in range(0, most + 1):
        for subset in itertools.combinations(rows, m):
            out += [(subset, reps) for reps in itertools.product(*[range(1, int(top[j]) + 1) for j in subset])]
    return out


def _pooled(c: Candidates, role: np.ndarray, rows: list[int], top: np.ndarray, per_replica: np.ndarray, d: float,
            partial: bool, minimal: bool, deadline: float | None = None) -> list[tuple[tuple, tuple, float]]:
    """A disaggregating workload's options, enumerated in the oracle's own terms: up to K
    aggregated configurations, and per KV format up to K prefill and K decode configurations
    (a prefill pool without a decode pool in its format, or the reverse, serves nothing and is
    skipped), each with every replica count. ``minimal``: drop options from which a replica
    can be removed with the demand still met (every cost, GPU count and power only grows with
    replicas; not used when minimising change, where a kept replica may be the smaller move).
    Returns (rows, replicas, served share). Each role's choices (``MAX_OPTIONS``) and then
    their product (``MAX_FLEET_STATES``) are counted before they are enumerated."""
    kv = c.configs.kv
    agg = _choices([j for j in rows if role[j] == 0], top, c.max_configs)
    pools = []
    for f in sorted({int(kv[j]) for j in rows if role[j] != 0}):
        pre = _choices([j for j in rows if role[j] == 1 and kv[j] == f], top, c.max_configs)
        dec = _choices([j for j in rows if role[j] == 2 and kv[j] == f], top, c.max_configs)
        if len(pre) * len(dec) > MAX_FLEET_STATES:
            raise _too_many(float(len(pre) * len(dec)))
        pools.append([(a[0] + b[0], a[1] + b[1]) for a in pre for b in dec if bool(a[0]) == bool(b[0])])
    count = math.prod(float(len(p)) for p in [agg, *pools])
    if count > MAX_FLEET_STATES:        # enumerated lazily, kept only when they serve the demand
        raise _too_many(count)
    # what each part serves, and with each of its replica counts one lower, summed as _served sums
    # them (the aggregated replicas in order; a format's pools each in order, then the smaller):
    # a fleet's figure is then _served's, bit for bit, from its parts' (``_joined``)
    agg_s = [_part_served(role, per_replica, list(zip(*a)), pooled=False) for a in agg]
    pools_s = [[_part_served(role, per_replica, list(zip(*b)), pooled=True) for b in p] for p in pools]
    agg_v, pools_v = [a for a, _ in agg_s], [[m for m, _ in p] for p in pools_s]
    keep = _kept(agg_s, pools_s, d, partial, minimal)
    out = []
    for i, flat in enumerate(np.flatnonzero(keep)):
        if not i & 4095:
            _in_time(deadline)
        picked = np.unravel_index(flat, keep.shape)
        parts = [agg[picked[0]], *(p[q] for p, q in zip(pools, picked[1:]))]
        sub = tuple(j for p in parts for j in p[0])
        if not sub and not partial:
            continue
        cap = _joined(agg_v[picked[0]], [v[q] for v, q in zip(pools_v, picked[1:])])
        out.append((sub, tuple(r for p in parts for r in p[1]), min(1.0, cap / d)))
    return out


def _kept(agg_s: list, pools_s: list[list], d: float, partial: bool, minimal: bool) -> np.ndarray:
    """Which options of ``_pooled``'s product (axes: the aggregated choice, then each format's
    pools, in itertools.product's order) serve the demand (all with ``partial``) and, with
    ``minimal``, serve it no more once any one replica is removed: ``_joined``'s sums taken over
    the whole product at once, each the same
    float additions in the same order (a part without a pool adds 0.0: its figures are never
    negative, so x + 0.0 is x). A replica fewer is tested at the largest figure a part keeps
    with one replica fewer: the sum never falls as one term rises, so some smaller option
    meets the demand exactly when the largest does."""
    axes = 1 + len(pools_s)

    def grid(values: list, axis: int) -> np.ndarray:
        v = np.array([-np.inf if x is _NONE else 0.0 if x is None else x for x in values], float)
        return v.reshape([-1 if k == axis else 1 for k in range(axes)])

    def joined(a: np.ndarray, pools: list[np.ndarray]) -> np.ndarray:
        total: Any = 0.0
        for m in pools:
            total = total + m
        return a + total

    def largest(less: list) -> Any:
        return _NONE if not less else max(0.0 if x is None else x for x in less)

    served = [grid([m for m, _ in p], k + 1) for k, p in enumerate(pools_s)]
    agg = grid([a for a, _ in agg_s], 0)
    shape = tuple(len(p) for p in [agg_s, *pools_s])
    if partial:
        return np.ones(shape, dtype=bool)
    threshold = d * (1 - 1e-12)
    keep = np.broadcast_to(joined(agg, served) >= threshold, shape).copy()
    if minimal:
        keep &= ~(joined(grid([largest(less) for _, less in agg_s], 0), served) >= threshold)
        for k, p in enumerate(pools_s):
            fewer = grid([largest(less) for _, less in p], k + 1)
            keep &= ~(joined(agg, served[:k] + [fewer] + served[k + 1:]) >= threshold)
    return keep


_NONE = object()
"""No figure with a replica fewer (a part of no rows): no smaller option to test (-inf)."""


def _part_served(role: np.ndarray, per_replica: np.ndarray, picks: list[tuple[int, int]], pooled: bool
                 ) -> tuple[float | None, list[float | None]]:
    """(what one part of a workload's option serves, the same with each pick's replicas one
    lower) in ``_served``'s terms and order: aggregated picks summed; a format's pools (its
    prefill picks, then its decode picks) each summed, the smaller of the two (None: no pool)."""
    def served(ps: list[tuple[int, int]]) -> float | None:
        if not pooled:
            return sum(per_replica[j] * r for j, r in ps)
        if not ps:
            return None
        pre, dec = 0.0, 0.0
        for j, r in ps:
            if role[j] == 1:
                pre = pre + per_replica[j] * r
            else:
                dec = dec + per_replica[j] * r
        return min(pre, dec)
    return served(picks), [served(picks[:i] + [(j, r - 1)] + picks[i + 1:]) for i, (j, r) in enumerate(picks)]


def _joined(agg: Any, pools: list[Any]) -> float:
    """``_served`` of a whole option from its parts' figures (``_part_served``): the
    aggregated sum plus the sum of the formats' pools, in order."""
    return float(agg + sum(m for m in pools if m is not None))


MAX_OPTIONS = 200_000
"""Replica assignments of one workload the oracle would enumerate, at most."""


def _small_enough(rows: list[int], top: np.ndarray, k: int) -> None:
    """Refuse, before enumerating, a workload whose sets of at most k rows with every replica
    count exceed MAX_OPTIONS (a bound: each row's largest count taken for all)."""
    most = float(max(top[j] for j in rows))
    count = sum(math.comb(len(rows), m) * most ** m for m in range(1, k + 1))
    if count > MAX_OPTIONS:
        raise _too_many(count)


def _too_many(count: float) -> InputError:
    return InputError(f"the exhaustive backend would enumerate about {count:,.0f} fleets; it is the oracle for "
                      "small fleets", path="--backend", value="exhaustive", accepted="milp, cpsat, highs")


def _option(c: Candidates, k: int, rows: tuple, reps: tuple, served: float, today: np.ndarray, n_t: int,
            order: np.ndarray, spares: np.ndarray) -> tuple:
    ev = c.ev
    gpus, shared, whole = np.zeros(n_t), np.zeros(n_t), np.zeros(n_t)
    cost = power = started = 0.0
    spare_gpus = 0.0
    for j, r in zip(rows, reps):
        t = int(c.configs.gpu[j])
        g = float(ev.gpus[j])
        gpus[t] += g * r
        spare = float(spares[j])    # a spot deployment's spares are paid and run: GPUs, watts, node slots
        spare_gpus += g * spare
        if g <= c.per_node[j]:
            shared[t] += g * (r + spare)
        else:
            whole[t] += (r + spare) * np.ceil(g / c.per_node[j])
        cost += g * float(c.price[j]) * (r + spare)
        power += float(ev.power_w[j]) * (r + spare)
    # change, in GPUs: replicas of configurations run today count |new - today|, others all of theirs
    by_config: dict[int, float] = {}
    for j, r in zip(rows, reps):
        by_config[int(c.config[j])] = by_config.get(int(c.config[j]), 0.0) + r
    running = {} if c.current is None else {int(c.config[j]): (float(today[j]), float(ev.gpus[j]))
                                              for j in np.nonzero((c.slot == k) & (today > 0))[0]}
    for cfg, n in by_config.items():
        was, g = running.get(cfg, (0.0, float(ev.gpus[np.nonzero(c.config == cfg)[0][0]])))
        started += abs(n - was) * g
    for cfg, (was, g) in running.items():
        if cfg not in by_config:
            started += was * g
    started += sum(g * n for s, g, n in c.unmatched if s == k)
    return (tuple(zip(rows, reps)), cost, gpus, shared, whole, power, served, started, float(gpus.sum()),
            float(sum(order[j] * float(ev.gpus[j]) * r for j, r in zip(rows, reps))), spare_gpus,
            float(sum(order[j] * float(ev.gpus[j]) * r for j, r in zip(rows, reps))) * (c.n_slots - k))


def _join(a: tuple, b: tuple, weight: float) -> tuple:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], a[4] + b[4], a[5] + b[5], a[6] + weight * b[6],
            a[7] + b[7], a[8] + b[8], a[9] + b[9], a[10] + b[10], a[11] + b[11])


def _fits(c: Candidates, x: tuple) -> bool:
    lim = c.limits
    _, cost, gpus, shared, whole, power = x[:6]
    for gid, count in lim.inventory.items():
        if gid in c.gpu_ids and gpus[c.gpu_ids.index(gid)] > count:
            return False
    if lim.max_gpus is not None and gpus.sum() + x[10] > lim.max_gpus:     # spare GPUs run too
        return False
    if lim.budget_usd_per_hour is not None and not cost <= lim.budget_usd_per_hour * (1 + 1e-12):   # NaN: no price
        return False
    if lim.power_cap_w is not None and power > lim.power_cap_w * (1 + 1e-12):
        return False
    if lim.max_nodes is not None:
        per_node = np.array([c.per_node[np.nonzero(c.configs.gpu == t)[0][0]] if (c.configs.gpu == t).any() else 1
                             for t in range(len(gpus))], dtype=float)
        if (whole + np.ceil(shared / per_node - 1e-12)).sum() > lim.max_nodes:
            return False
    return True
