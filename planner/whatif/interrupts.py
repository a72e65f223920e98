"""A Ctrl-C inside one solve of many: ``solve`` keeps the plans found before it and marks its
result interrupted, right for ``planner plan`` (the plans printed, exit 130) but not for one
solve among many (a sweep's scenario, a Pareto point, a step of a relaxation's bisection),
whose caller would take the part for the whole and carry on to exit 0. There the Ctrl-C is
raised again, to end the command with exit 130 (docs/exit-codes.md)."""

from __future__ import annotations

from planner.plan.result import PlanResult


def whole(result: PlanResult) -> PlanResult:
    """``result``, or KeyboardInterrupt when a Ctrl-C stopped its solve."""
    if result.interrupted:
        raise KeyboardInterrupt
    return result
