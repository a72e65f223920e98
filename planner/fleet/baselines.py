"""What the joint optimum saves over the ways a fleet is sized without it (docs/fleet.md):

- ``alone``: each workload planned on its own (`planner plan` per model): its cheapest single
  configuration meeting its demand, the shared limits ignored, then checked against them;
- ``greedy``: workloads by decreasing demand cost, each taking the cheapest $/token
  configuration still available under the remaining inventory, budget and power, repaired
  with the next cheapest when one runs out (at most K configurations per workload, as the
  fleet);
- ``current``: the fleet running today, if given: its cost and whether it still covers
  every demand at its capacity at SLO.

Each baseline reads the same candidate table (capacity at SLO, costs) as the optimum, so
the saving compares decisions, not models."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from planner.candidates.table import Candidates

if TYPE_CHECKING:
    from planner.fleet import FleetResult
    from planner.resolve.problem import Problem


def baselines(problem: Problem, c: Candidates, result: FleetResult) -> list[dict[str, Any]]:
    best = result.totals["cost_per_hour"] if result.deployments else None
    out = [_alone(c), _greedy(c)]
    if c.current is not None:
        out.append(_current(c))
    for b in out:
        full = b["served_share"] >= 1 - 1e-9 and not b["breaks"]
        b["saving_per_hour"] = (b["cost_per_hour"] - best) if (best is not None and full) else None
    return out


def _usable(c: Candidates) -> np.ndarray:
    """Rows a baseline may use: aggregated replicas (a pool row serves only its half of a
    request) that meet their targets and the limits on their own."""
    aggregated = c.role == 0 if len(c.role) == len(c) else np.ones(len(c), dtype=bool)
    return aggregated & c.meets_slo & (c.replicas_allowed >= 1) & np.isfinite(c.cost_per_hour) & (c.capacity > 0)


def alone_picks(c: Candidates) -> tuple[list[tuple[int, int]], list[float]]:
    """Each workload on its own cheapest configuration (shared limits ignored): (row,
    replicas) and the share served per slot."""
    ok = _usable(c)
    picks = []
    served = []
    for s in range(c.n_slots):
        rows = np.nonzero(ok & (c.slot == s))[0]
        if not len(rows):
            served.append(0.0)
            continue
        need = np.ceil(c.demand[rows] / c.capacity[rows])
        j = int(rows[np.argmin(c.cost_per_hour[rows] * need)])
        picks.append((j, int(math.ceil(c.demand[j] / c.capacity[j]))))
        served.append(1.0)
    return picks, served


def starting_fleet(c: Candidates) -> tuple[list[tuple[int, int]], list[float]]:
    """The fleet a solve starts from (every backend's hint, and the answer when the time runs
    out first): each workload alone when that keeps every shared limit, else the greedy fleet;
    of two that serve as much, the cheaper."""
    options = [alone_picks(c), greedy_picks(c)]
    ok = [(p, sv) for p, sv in options if not _summary(c, "", "", p, sv)["breaks"]]
    if not ok:
        return options[1]
    w = np.asarray(c.weight, dtype=float)
    return max(ok, key=lambda o: (round(float((w * np.array(o[1])).sum()), 9),
                                  -sum(float(c.cost_per_hour[j]) * n for j, n in o[0])))


def _alone(c: Candidates) -> dict[str, Any]:
    picks, served = alone_picks(c)
    return _summary(c, "alone", "each workload planned on its own: its cheapest configuration, shared limits "
                    "ignored", picks, served)


def greedy_picks(c: Candidates) -> tuple[list[tuple[int, int]], list[float]]:
    """The greedy baseline's fleet: (row, replicas) chosen and the share served per slot. Also
    the fleet driver's starting point (a hint to every backend)."""
    ok = _usable(c)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_token = c.cost_per_hour / c.capacity
    lim = c.limits
    left_gpus = {g: float(n) for g, n in lim.inventory.items()}
    budget = lim.budget_usd_per_hour if lim.budget_usd_per_hour is not None else math.inf
    power = lim.power_cap_w if lim.power_cap_w is not None else math.inf
    # the dearest demands first: they gain most from the cheapest GPUs
    order = sorted(range(c.n_slots), key=lambda s: -_cheapest_cost(c, ok, per_token, s))
    picks: list[tuple[int, int]] = []
    served = [0.0] * c.n_slots
    for s in order:
        rows = np.nonzero(ok & (c.slot == s))[0]
        rows = rows[np.argsort(per_token[rows], kind="stable")]
        d = float(c.demand[rows[0]]) if len(rows) else 0.0
        covered, used = 0.0, 0
        for j in rows:
            if covered >= d or used >= c.max_configs:
                break
            gid = c.gpu_ids[int(c.configs.gpu[j])]
            g, cost, watts = float(c.ev.gpus[j]), float(c.cost_per_hour[j]), float(c.ev.power_w[j])
            n = math.ceil((d - covered) / float(c.capacity[j]))
            n = min(n, _fits(left_gpus.get(gid, math.inf), g), _fits(budget, cost), _fits(power, watts))
            if n < 1:
                continue
            picks.append((int(j), n))
            covered += n * float(c.capacity[j])
            used += 1
            if gid in left_gpus:
                left_gpus[gid] -= n * g
            budget -= n * cost
            power -= n * watts
        served[s] = min(1.0, covered / d) if d > 0 else 0.0
    return picks, served


def _greedy(c: Candidates) -> dict[str, Any]:
    picks, served = greedy_picks(c)
    return _summary(c, "greedy", "cheapest $/token first, dearest workloads first, repaired with the next "
                    "cheapest when a resource runs out", picks, served)


def _fits(left: float, each: float) -> int:
    """How many units of ``each`` fit in ``left`` (any number when either is unbounded or free)."""
    if math.isinf(left) or each <= 0:
        return 2**62
    return int(left // each)


def _cheapest_cost(c: Candidates, ok: np.ndarray, per_token: np.ndarray, s: int) -> float:
    rows = np.nonzero(ok & (c.slot == s))[0]
    return float(np.min(per_token[rows]) * c.demand[rows[0]]) if len(rows) else 0.0


def _current(c: Candidates) -> dict[str, Any]:
    assert c.current is not None
    picks = []
    for group in c.config_groups():
        n = int(c.current[group[0]])
        if n > 0:
            j = int(group[np.argmax(c.capacity[group])])     # its best batch level: the scheduler is a flag
            picks.append((j, n))
    served = []
    for s in range(c.n_slots):
        cap = sum(float(c.capacity[j]) * n for j, n in picks if int(c.slot[j]) == s and c.meets_slo[j])
        rows = c.slot_rows(s)
        served.append(min(1.0, cap / float(c.demand[rows[0]])) if len(rows) else 0.0)
    out = _summary(c, "current", "the fleet running today, at its capacity at SLO", picks, served)
    gone = sum(g * n for _, g, n in c.unmatched)
    if gone:
        out["cost_per_hour"] = None      # deployments outside the searched table have no price here
        out["note"] = f"{gone:g} GPUs run configurations outside the searched table"
    return out


def _summary(c: Candidates, name: str, how: str, picks: list[tuple[int, int]], served: list[float]
             ) -> dict[str, Any]:
    cost = float(sum(float(c.cost_per_hour[j]) * n for j, n in picks))
    gpus: dict[str, float] = {}
    for j, n in picks:
        gid = c.gpu_ids[int(c.configs.gpu[j])]
        gpus[gid] = gpus.get(gid, 0.0) + float(c.ev.gpus[j]) * n
    breaks = [f"limits.inventory.{g}: {used:g} > {c.limits.inventory[g]}" for g, used in gpus.items()
              if g in c.limits.inventory and used > c.limits.inventory[g]]
    if c.limits.budget_usd_per_hour is not None and cost > c.limits.budget_usd_per_hour * (1 + 1e-9):
        breaks.append(f"limits.budget_usd_per_hour: {cost:.2f} > {c.limits.budget_usd_per_hour:g}")
    watts = float(sum(float(c.ev.power_w[j]) * n for j, n in picks))
    if c.limits.power_cap_w is not None and watts > c.limits.power_cap_w * (1 + 1e-9):
        breaks.append(f"limits.power_cap_w: {watts:.0f} > {c.limits.power_cap_w:g}")
    w = np.asarray(c.weight, dtype=float)
    return {"baseline": name, "how": how, "cost_per_hour": cost, "gpus": {k: int(v) for k, v in gpus.items()},
            "served_share": float((w * np.array(served)).sum() / w.sum()) if len(served) else 0.0,
            "breaks": breaks}
