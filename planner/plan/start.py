"""The starting answer of a solve and the time-out rule, one for one workload or many.

A solve starts from the best simple answer: with one slot and one deployment, the best
single row by enumeration (constraints/incumbent.py); otherwise each workload alone when
that keeps every shared limit, else the greedy fleet (``alone_picks``, ``greedy_picks``;
the what-if baselines report the same two, planner/whatif/baselines.py). Every backend gets
it as a hint. When the first phase ends without an answer in time (time limit, or a solver
that stopped without one), the starting answer stands if it keeps every limit and serves
what the objective requires: status ``feasible``, optimality unproven, with its gap to a
proven lower bound where there is one (``cost_lower_bound``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import constraints
from planner.candidates.load import AGGREGATED, DECODE, PREFILL
from planner.candidates.table import Candidates

Picks = list[tuple[int, int]]


@dataclass(frozen=True)
class Start:
    picks: Picks
    served: list[float]         # share of each slot's demand (1 with one deployment per slot)
    values: dict[int, float]    # the model's variables (a hint)


def starting_answer(f: constraints.Formulation) -> Start | None:
    """The best simple answer of the formulation's table that no cut excludes, or None."""
    c = f.cands
    inc = constraints.incumbent(f)
    if inc is not None:
        return Start([(inc.row, inc.replicas)], [1.0], inc.values)
    if c.bounds or not c.split and c.n_slots == 1:
        return None
    ok = []
    for picks, served in (alone_picks(c), greedy_picks(c)):
        if picks and not over_configuration_limit(c, picks) and not _repeats_a_cut(f, picks) \
                and not breaks_limits(c, picks):
            ok.append((picks, served))
    if not ok:
        return None
    w = np.asarray(c.weight, dtype=float)
    picks, served = max(ok, key=lambda o: (round(float((w * np.array(o[1])).sum()), 9),
                                          -sum(c.deployment_cost(j, n) for j, n in o[0])))
    return Start(picks, served, constraints.assignment(f, picks))


def _repeats_a_cut(f: constraints.Formulation, picks: Picks) -> bool:
    ids = frozenset(int(f.cands.config[j]) for j, _ in picks)
    return ids in set(f.cuts)


def stands(c: Candidates, start: Start) -> bool:
    """The starting answer is an answer: it serves what the objective requires and keeps the
    limits (the node and GPU totals too, which the greedy fleet does not look at)."""
    if not start.picks or over_configuration_limit(c, start.picks) or breaks_limits(c, start.picks):
        return False
    return c.partial or min(start.served) >= 1.0 - 1e-12


def over_configuration_limit(c: Candidates, picks: Picks) -> set[int]:
    """Slots whose answer uses more configurations than allowed (K per role when the slot has
    prefill/decode pools: constraints/choice.py)."""
    roles = c.role if len(c.role) == len(c) else np.zeros(len(c), dtype=np.int64)
    count: dict[tuple[int, int], int] = {}
    for j, _ in picks:
        key = (int(c.slot[j]), int(roles[j]))
        count[key] = count.get(key, 0) + 1
    return {s for (s, _), n in count.items() if n > c.max_configs}


def breaks_limits(c: Candidates, picks: Picks) -> bool:
    """Whether (row, replicas) ``picks`` exceed a shared limit: inventory, budget, power,
    GPUs, nodes (replicas packed per GPU type as constraints/inventory.py counts them; a spot
    deployment's spares in GPUs, power and nodes, as there)."""
    lim, ev = c.limits, c.ev
    gpus: dict[str, float] = {}
    slots: dict[int, float] = {}
    spares = np.nan_to_num(c.spares) if len(c.spares) else np.zeros(len(c))
    running = [(j, r + float(spares[j])) for j, r in picks]     # a spot deployment's spares run too
    for j, n in picks:
        gid = c.gpu_ids[int(c.configs.gpu[j])]
        gpus[gid] = gpus.get(gid, 0.0) + float(ev.gpus[j]) * n
    for j, up in running:
        slots[int(c.configs.gpu[j])] = slots.get(int(c.configs.gpu[j]), 0.0) + float(c.slots_per_replica[j]) * up
    if any(gid in lim.inventory and used > lim.inventory[gid] for gid, used in gpus.items()):
        return True
    if lim.max_gpus is not None and sum(float(ev.gpus[j]) * up for j, up in running) > lim.max_gpus:
        return True
    cost = sum(float(np.nan_to_num(c.deployment_cost(j, n))) for j, n in picks)
    if lim.budget_usd_per_hour is not None and cost > lim.budget_usd_per_hour * (1 + 1e-12):
        return True
    power = sum(float(ev.power_w[j]) * up for j, up in running)
    if lim.power_cap_w is not None and power > lim.power_cap_w * (1 + 1e-12):
        return True
    if lim.max_nodes is not None:
        per_node = {int(c.configs.gpu[j]): float(c.per_node[j]) for j, _ in picks}
        nodes = sum(math.ceil(s / per_node[g] - 1e-9) for g, s in slots.items())
        if nodes > lim.max_nodes:
            return True
    return False


def _usable(c: Candidates) -> np.ndarray:
    """Rows a simple answer may use: aggregated replicas (a pool row serves only its half of a
    request) that meet their targets and the limits on their own."""
    aggregated = c.role == AGGREGATED if len(c.role) == len(c) else np.ones(len(c), dtype=bool)
    return aggregated & c.meets_slo & (c.replicas_allowed >= 1) & np.isfinite(c.cost_per_hour) & (c.capacity > 0) \
        & c.has_demand


def alone_picks(c: Candidates) -> tuple[Picks, list[float]]:
    """Each workload on its own cheapest configuration (shared limits ignored): (row,
    replicas) and the share served per slot."""
    ok = _usable(c)
    picks = []
    served = []
    for s in range(c.n_slots):
        rows = c.slot_rows(s)
        rows = rows[ok[rows]]
        if not len(rows):
            served.append(0.0)
            continue
        need = np.ceil(c.demand[rows] / c.capacity[rows])
        j = int(rows[np.argmin(c.cost_per_hour[rows] * need + c.spare_cost[rows])])
        picks.append((j, int(math.ceil(c.demand[j] / c.capacity[j]))))
        served.append(1.0)
    return picks, served


def greedy_picks(c: Candidates) -> tuple[Picks, list[float]]:
    """The greedy fleet: workloads by decreasing demand cost, each taking the cheapest
    $/token configuration still available under the remaining inventory, budget and power,
    repaired with the next cheapest when one runs out (at most K configurations each)."""
    ok = _usable(c)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_token = c.cost_per_hour / c.capacity
    lim = c.limits
    left_gpus = {g: float(n) for g, n in lim.inventory.items()}
    budget = lim.budget_usd_per_hour if lim.budget_usd_per_hour is not None else math.inf
    power = lim.power_cap_w if lim.power_cap_w is not None else math.inf
    # the dearest demands first: they gain most from the cheapest GPUs
    order = sorted(range(c.n_slots), key=lambda s: -_cheapest_cost(c, ok, per_token, s))
    picks: Picks = []
    served = [0.0] * c.n_slots
    for s in order:
        rows = c.slot_rows(s)
        rows = rows[ok[rows]]
        rows = rows[np.argsort(per_token[rows], kind="stable")]
        d = float(c.demand[rows[0]]) if len(rows) else 0.0
        covered, used = 0.0, 0
        for j in rows:
            if covered >= d or used >= c.max_configs:
                break
            gid = c.gpu_ids[int(c.configs.gpu[j])]
            g, cost, watts = float(c.ev.gpus[j]), float(c.cost_per_hour[j]), float(c.ev.power_w[j])
            n = math.ceil((d - covered) / float(c.capacity[j]))
            spare = float(c.spare_cost[j])      # a spot deployment's spares, paid once
            n = min(n, _fits(left_gpus.get(gid, math.inf), g), _fits(budget - spare, cost), _fits(power, watts))
            if n < 1:
                continue
            picks.append((int(j), n))
            covered += n * float(c.capacity[j])
            used += 1
            if gid in left_gpus:
                left_gpus[gid] -= n * g
            budget -= n * cost + spare
            power -= n * watts
        served[s] = min(1.0, covered / d) if d > 0 else 0.0
    return picks, served


def _fits(left: float, each: float) -> int:
    """How many units of ``each`` fit in ``left`` (any number when either is unbounded or free)."""
    if math.isinf(left) or each <= 0:
        return 2**62
    return int(left // each)


def _cheapest_cost(c: Candidates, ok: np.ndarray, per_token: np.ndarray, s: int) -> float:
    rows = c.slot_rows(s)
    rows = rows[ok[rows]]
    return float(np.min(per_token[rows]) * c.demand[rows[0]]) if len(rows) else 0.0


def cost_lower_bound(c: Candidates) -> float | None:
    """A proven lower bound on any answer's $/hour: every workload's demand served at the
    lowest $/hour per unit of capacity any of its configurations offers (aggregated, or a
    prefill plus a decode pool of one KV format), with fractional replicas and no shared
    limit; None when a workload has no configuration or no demand."""
    ok = c.meets_slo & np.isfinite(c.cost_per_hour) & (c.capacity > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        unit = np.where(ok, c.cost_per_hour / c.capacity, np.inf)
    roles = c.role if len(c.role) == len(c) else np.zeros(len(c), dtype=np.int64)
    total = 0.0
    for s in range(c.n_slots):
        rows = c.slot_rows(s)
        if not len(rows) or not c.has_demand[rows[0]]:
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
