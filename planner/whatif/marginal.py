"""What one more unit of each binding limit is worth (docs/fleet.md): one more GPU of a type,
$1/hour more budget, 1 kW more power, each by re-solving the first objective with that limit
raised. Re-solves, not LP duals: the model is integer, and its duals price nothing. Only the
first objective is re-solved (no later phase, no tie-break): its value is all a marginal
value reads."""

from __future__ import annotations

from dataclasses import replace

from planner.backends.base import Status
from planner.candidates.objectives import OBJECTIVES
from planner.candidates.table import Candidates, Limits, with_limits
from planner.plan.result import Binding, Marginal, PlanResult, Unfinished
from planner.plan.solve import objective_phases
from planner.resolve.problem import Problem
from planner.whatif.budget import proven, until

STEP = {"gpu": 1.0, "budget": 1.0, "power": 1000.0}
"""The unit added to each kind of limit: one GPU, $1/hour, 1 kW."""


def raised(lim: Limits, path: str, gpu: str | None) -> tuple[Limits, str, float] | None:
    """The limits with the one at ``path`` raised by its unit: (limits, kind, amount), or None
    for a limit with no marginal value here (nodes, GPUs in total)."""
    if gpu is not None:
        return replace(lim, inventory={**lim.inventory, gpu: lim.inventory[gpu] + 1}), "gpu", STEP["gpu"]
    if path == "limits.budget_usd_per_hour" and lim.budget_usd_per_hour is not None:
        return replace(lim, budget_usd_per_hour=lim.budget_usd_per_hour + STEP["budget"]), "budget", STEP["budget"]
    if path == "limits.power_cap_w" and lim.power_cap_w is not None:
        return replace(lim, power_cap_w=lim.power_cap_w + STEP["power"]), "power", STEP["power"]
    return None


def marginal_values(problem: Problem, cands: Candidates, result: PlanResult, backend: str,
                    time_limit: float, gap: float = 0.0) -> list[Marginal]:
    """Per binding limit of the first answer: the first objective re-solved with it raised.
    Each raised solve is exact; where the answer was stopped at a ``gap`` target (not proven
    optimal) the limits as they are are solved exactly too, so that an improvement compares
    two optima and never counts the answer's distance from the optimum as the limit's worth.
    ``time_limit``: the seconds of all these solves together (planner/whatif/budget.py); a
    limit whose re-solve is not proven optimal within them has no value stated, and
    ``result.unfinished`` names it."""
    first = result.answer(1)
    if first is None or not result.phases or result.phases[0].value is None:
        return []
    deadline = until(time_limit)
    name = objective_phases(problem)[0]
    base_value = float(result.phases[0].value)
    todo = [(b, more) for b in first.binding if (more := raised(cands.limits, b.limit, b.gpu)) is not None]
    if not todo:             # no binding limit has a value: nothing to solve (``asked`` gave it no share)
        return []
    if gap and result.phases[0].status != "optimal":
        exact = proven(problem, cands, backend, deadline, (name,))
        if exact is None:     # no optimum to compare with in time: no marginal value is stated
            _cut(result, time_limit, [_label(b) for b, _ in todo])
            return []
        if exact.status != Status.OPTIMAL or not exact.phases or exact.phases[0].value is None:
            return []          # no optimum to compare with: no marginal value is stated
        base_value = float(exact.phases[0].value)
    out: list[Marginal] = []
    unproven: list[str] = []
    for b, (limits, kind, amount) in todo:
        s = proven(problem, with_limits(cands, limits), backend, deadline, (name,))
        if s is None:
            unproven.append(_label(b))
            continue
        if not s.phases or s.phases[0].value is None:
            continue
        v = float(s.phases[0].value)
        better = base_value - v if OBJECTIVES[name].sense == "min" else v - base_value
        out.append(Marginal(limit=b.limit, kind=kind, amount=amount, objective=name, value=v, improvement=better,
                            status=s.status.value, gpu=b.gpu))
    if unproven:
        _cut(result, time_limit, unproven)
    return out


def _label(b: Binding) -> str:
    return b.limit if b.gpu is None or b.gpu in b.limit else f"{b.limit} ({b.gpu})"


def _cut(result: PlanResult, seconds: float, left_out: list[str]) -> None:
    result.unfinished.append(Unfinished("marginal", seconds, left_out))
