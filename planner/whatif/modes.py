"""Aggregated against disaggregated serving, per workload that may run prefill/decode pools
(docs/disaggregation.md section 7): the answer re-solved with that workload forced to
aggregated replicas only (``never``) and to pools only (``always``), the others as asked;
the cost of each, which won and by how much, and the figures that say why (the forced
pools' busy shares, the aggregated replicas' binding target, or that no configuration of a
mode meets the targets). Re-solves, as marginal values are; the sentences are in
planner/report/wording.py."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from planner.candidates.load import AGGREGATED
from planner.candidates.table import Candidates
from planner.plan.describe import describe
from planner.plan.result import ModeDeployment, ModeRun, ModeVerdict, PlanResult, Unfinished
from planner.plan.solve import first_phase_view
from planner.resolve.problem import Problem
from planner.whatif.budget import proven, until

UNCERTAINTY = 0.10
"""Relative margin under which the winner between aggregated and disaggregated serving is
not trusted: the prefill pool's TTFT is 8-29 % off the simulator at busy share >= 0.6 and the
aggregated TTFT p99 13-41 % optimistic at utilisation 0.6-0.8 (docs/disaggregation.md
section 5, docs/load.md section 9); capacities at SLO move by about a third of that."""


def compare_modes(problem: Problem, cands: Candidates, result: PlanResult, backend: str,
                  time_limit: float) -> list[ModeVerdict]:
    """The verdict of each workload that may run pools. ``time_limit``: the seconds of all the
    forced re-solves together (planner/whatif/budget.py); a workload whose two re-solves are
    not both proven (optimal or infeasible) within them has no verdict, and
    ``result.unfinished`` names it."""
    out: list[ModeVerdict] = []
    deadline = until(time_limit)
    unproven: list[str] = []
    first = result.answer(1)
    if not cands.modes or first is None or first.totals is None:
        return out
    for s, slot in enumerate(cands.slots):
        if not cands.pooled(s):
            continue
        roles = {p.role for p in result.deployments(1) if p.workload == slot.name}
        chosen = "aggregated" if roles == {"aggregated"} else "disaggregated" if "aggregated" not in roles else "mixed"
        runs = {}
        for forced in ("never", "always"):
            c = replace(cands, modes=tuple(forced if k == s else m for k, m in enumerate(cands.modes)))
            solved = proven(problem, c, backend, deadline)
            if solved is None:         # cut short: nothing to compare
                break
            run = ModeRun(status=solved.status.value, cost_per_hour=None)
            if solved.picks:
                plans, answer = describe(problem, first_phase_view(problem, c), solved.picks, solved.served, 1, {},
                                         0.0)
                assert answer.totals is not None
                run.cost_per_hour = answer.totals.cost_per_hour
                run.deployments = [ModeDeployment(p.role, p.replicas, p.gpu, p.tp, p.load.get("utilization"),
                                                  p.load.get("binding")) for p in plans if p.workload == slot.name]
            else:
                rows = cands.slot_rows(s)
                agg = cands.role[rows] == AGGREGATED
                run.configurations_meeting_targets = int(np.sum(cands.meets_slo[rows]
                                                                & (agg if forced == "never" else ~agg)))
            runs[forced] = run
        if len(runs) < 2:
            unproven.append(slot.name)
            continue
        out.append(verdict(slot.name, cands.modes[s], chosen, first.totals.cost_per_hour, runs["never"],
                           runs["always"]))
    if unproven:
        result.unfinished.append(Unfinished("disaggregation", time_limit, unproven))
    return out


def verdict(workload: str, mode: str, chosen: str, cost: float | None, agg: ModeRun, dis: ModeRun) -> ModeVerdict:
    """Which mode is cheaper, by what share, and the code of the reason (worded at the edge)."""
    v = ModeVerdict(workload=workload, mode=mode, chosen=chosen, cost_per_hour=cost, aggregated=agg,
                    disaggregated=dis, winner=None, margin=None, within_uncertainty=False, uncertainty=UNCERTAINTY,
                    reason="neither")
    a, d = agg.cost_per_hour, dis.cost_per_hour
    if a is None and d is None:
        return v
    if a is None:
        v.winner = "disaggregated"
        v.reason = "no_aggregated_configuration" if agg.configurations_meeting_targets == 0 else \
            "aggregated_over_limits"
        return v
    if d is None:
        v.winner = "aggregated"
        v.reason = "no_pool_configuration" if dis.configurations_meeting_targets == 0 else "pools_over_limits"
        return v
    lo, hi = min(a, d), max(a, d)
    v.margin = (hi - lo) / lo if lo > 0 else 0.0
    v.within_uncertainty = v.margin < UNCERTAINTY
    v.winner = "tie" if a == d else "disaggregated" if d < a else "aggregated"
    v.reason = "tie" if a == d else "cheaper"
    return v
