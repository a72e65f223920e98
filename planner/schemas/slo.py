"""Latency targets under load (docs/instances.md "SLO"): a workload's, and a schedule
period's own (docs/workloads.md section 8). Here so that the plan schema and the schedule
schema (planner/schemas/schedule.py) both read them."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from planner.catalog.schema import NotBool
from planner.schemas.common import Strict

Ms = Annotated[float, Field(gt=0, le=1e7, allow_inf_nan=False), NotBool]   # <= 2.8 hours: beyond is "no limit"
STATISTICS = ("mean", "p50", "p90", "p95", "p99")


class Percentiles(Strict):
    """A latency target as one or more statistics under load, e.g. {p99: 1000} (ms)."""

    mean: Ms | None = None
    p50: Ms | None = None
    p90: Ms | None = None
    p95: Ms | None = None
    p99: Ms | None = None

    @model_validator(mode="after")
    def _some(self) -> Percentiles:
        if all(getattr(self, k) is None for k in STATISTICS):
            raise ValueError("give at least one of mean, p50, p90, p95, p99")
        return self


LatencyTarget = Ms | Percentiles
"""A bare number is the mean under load (docs/instances.md); a mapping names statistics."""


class Slo(Strict):
    ttft_ms: LatencyTarget | None = Field(None, description="time to first token under load (bare number: mean)")
    tpot_ms: LatencyTarget | None = Field(
        None, description="time per output token over a request's life, under load (bare number: mean)")
    itl_ms: LatencyTarget | None = Field(None, description="inter-token latency, per token (bare number: mean)")
    e2e_latency_ms: LatencyTarget | None = Field(None, description="TTFT + TPOT x (output tokens - 1), under load")
    max_utilization: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False), NotBool] = Field(
        0.8, description="plan each replica at most at this share of its saturation rate (queues grow without "
        "bound as it nears 1)")
