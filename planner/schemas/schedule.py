"""Demand over time (docs/workloads.md, "Demand over time: schedules"): a workload's demand
profile, periods of stated hours each at a rate (and, optionally, its own SLO), and the
schedule's switching options.
`planner schedule FILE` plans every period; `planner plan` and `planner fleet` plan each
profiled workload at its busiest period (under every target its periods state, where they
state several), with a note (``resolve.schedule.at_peak``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidatorFunctionWrapHandler, WrapValidator, model_validator

from planner.catalog.schema import NotBool
from planner.schemas.common import Distinct, Price, Strict
from planner.schemas.slo import Slo

MAX_PERIODS = 168
"""Periods of one profile at most: a week of hours."""
Hours = Annotated[float, Field(gt=0, le=8760, allow_inf_nan=False), NotBool]


class Period(Strict):
    """One period of a demand profile: its length and its rate, as requests/s, output
    tokens/s, or a multiplier of the demand's stated rate (0: the workload is off, it needs
    no replica in this period); optionally its own latency targets (a looser TTFT at
    night, none in a batch period)."""

    hours: Hours = Field(description="the period's length in hours")
    requests_per_s: Annotated[float, Field(ge=0, le=1e7, allow_inf_nan=False), NotBool] | None = None
    output_tokens_per_s: Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False), NotBool] | None = None
    multiplier: Annotated[float, Field(ge=0, le=1e3, allow_inf_nan=False), NotBool] | None = Field(
        None, description="the demand's stated rate times this")
    slo: Slo | None = Field(None, description="this period's latency targets, in place of the workload's (default: "
                            "the workload's slo); {} for throughput only")

    @model_validator(mode="after")
    def _one(self) -> Period:
        given = [x for x in (self.requests_per_s, self.output_tokens_per_s, self.multiplier) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of requests_per_s, output_tokens_per_s, multiplier")
        return self


class PeriodSlo(Strict):
    """Latency targets for a run of a trace-shaped profile's periods, ``first`` to ``last``
    (0-based, both included), in place of the workload's."""

    first: Annotated[int, Field(ge=0, lt=MAX_PERIODS), NotBool] = Field(description="the run's first period (0-based)")
    last: Annotated[int, Field(ge=0, lt=MAX_PERIODS), NotBool] = Field(description="the run's last period (included)")
    slo: Slo = Field(description="these periods' latency targets; {} for throughput only")


class TraceShape(Strict):
    """The shape of the workload's trace over time, scaled so that its busiest period runs
    at the demand's stated rate: the trace's span cut into ``periods`` equal bins, each
    stretched to ``hours / periods`` hours; optionally runs of periods with their own SLO."""

    periods: Annotated[int, Field(ge=1, le=MAX_PERIODS), NotBool] = Field(description="equal bins of the trace")
    hours: Hours = Field(24.0, description="the cycle the trace's span stands for (default: a day)")
    slos: Annotated[list[PeriodSlo], Field(max_length=MAX_PERIODS)] = Field(
        [], description="runs of periods with their own latency targets (default: the workload's slo in every period)")


Periods = Annotated[list[Period], Field(min_length=1, max_length=MAX_PERIODS)]
_PERIODS: TypeAdapter[list[Period]] = TypeAdapter(Periods)


def _one_form(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """A list is periods and a mapping the trace's shape: each is checked as that form alone,
    so a bad period is one error at its path (the union would add the other form's refusal,
    'and 1 more problem', to every mistake)."""
    if isinstance(value, list):
        return _PERIODS.validate_python(value)
    if isinstance(value, dict):
        return TraceShape.model_validate(value)
    return handler(value)


Profile = Annotated[Periods | TraceShape, WrapValidator(_one_form)]


class ScheduleOptions(Strict):
    """How a schedule may change between periods (`planner schedule`)."""

    usd_per_gpu_started: Price = Field(0.0, description="$ per burst GPU started (model load, warm-up)")
    max_gpus_started_per_period: Annotated[int, Field(ge=0, le=10**7), NotBool] | None = Field(
        None, description="burst GPUs started at the start of one period, at most (all types)")
    max_gpus_stopped_per_period: Annotated[int, Field(ge=0, le=10**7), NotBool] | None = Field(
        None, description="burst GPUs stopped at the start of one period, at most (all types)")
    startup_periods: Annotated[int, Field(ge=0, le=MAX_PERIODS), NotBool] = Field(
        0, description="a burst GPU started serves this many periods later (paid from its start)")
    committed: Annotated[list[str], Distinct] = Field(
        [], description="GPU types held (and paid) in every period besides the owned ones (limits.inventory): "
        "a term commitment. Every other GPU is burst: held, and paid, in the periods it runs")
