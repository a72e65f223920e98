"""What the joint optimum saves over the ways a fleet is sized without it (docs/fleet.md):

- ``alone``: each workload planned on its own (`planner plan` per model): its cheapest single
  configuration meeting its demand, the shared limits ignored, then checked against them;
- ``greedy``: workloads by decreasing demand cost, each taking the cheapest $/token
  configuration still available under the remaining inventory, budget and power, repaired
  with the next cheapest when one runs out (at most K configurations per workload);
- ``current``: the fleet running today, if given: its cost and whether it still covers
  every demand at its capacity at SLO.

The first two are the solve's own starting answers (planner/plan/start.py). Each baseline
reads the same candidate table (capacity at SLO, costs) as the optimum, so the saving
compares decisions, not models; the sentences saying how each is built are in
planner/report/wording.py."""

from __future__ import annotations

import numpy as np

from planner.candidates.table import Candidates
from planner.plan.result import Baseline, Break, PlanResult
from planner.plan.start import Picks, alone_picks, greedy_picks


def baselines(c: Candidates, result: PlanResult) -> list[Baseline]:
    first = result.answer(1)
    best = first.totals.cost_per_hour if first is not None and first.totals is not None else None
    out = [_summary(c, "alone", *alone_picks(c)), _summary(c, "greedy", *greedy_picks(c))]
    if c.current is not None:
        out.append(_current(c))
    for b in out:
        full = b.served_share >= 1 - 1e-9 and not b.breaks
        b.saving_per_hour = (b.cost_per_hour - best) if (best is not None and b.cost_per_hour is not None
                                                         and full) else None
    return out


def _current(c: Candidates) -> Baseline:
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
    out = _summary(c, "current", picks, served)
    out.unmatched_gpus = float(sum(g * n for _, g, n in c.unmatched))
    if out.unmatched_gpus:
        out.cost_per_hour = None      # deployments outside the searched table have no price here
    return out


def _summary(c: Candidates, name: str, picks: Picks, served: list[float]) -> Baseline:
    cost = float(sum(c.deployment_cost(j, n) for j, n in picks))     # a spot deployment's spares included
    gpus: dict[str, float] = {}
    for j, n in picks:
        gid = c.gpu_ids[int(c.configs.gpu[j])]
        gpus[gid] = gpus.get(gid, 0.0) + float(c.ev.gpus[j]) * n
    breaks = [Break(f"limits.inventory.{g}", used, c.limits.inventory[g]) for g, used in gpus.items()
              if g in c.limits.inventory and used > c.limits.inventory[g]]
    if c.limits.budget_usd_per_hour is not None and cost > c.limits.budget_usd_per_hour * (1 + 1e-9):
        breaks.append(Break("limits.budget_usd_per_hour", cost, c.limits.budget_usd_per_hour))
    watts = float(sum(float(c.ev.power_w[j]) * n for j, n in picks))
    if c.limits.power_cap_w is not None and watts > c.limits.power_cap_w * (1 + 1e-9):
        breaks.append(Break("limits.power_cap_w", watts, c.limits.power_cap_w))
    w = np.asarray(c.weight, dtype=float)
    return Baseline(baseline=name, cost_per_hour=cost, gpus={k: int(v) for k, v in gpus.items()},
                    served_share=float((w * np.array(served)).sum() / w.sum()) if len(served) else 0.0,
                    breaks=breaks)
