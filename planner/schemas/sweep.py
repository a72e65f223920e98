"""The sweep file of `planner sweep` (docs/whatif.md): a base instance and the scenarios to
solve over it, as a grid (every combination of the listed values) and/or a list. Strict and
versioned like the instance schema; errors are located in the sweep file."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, model_validator

from planner.catalog.schema import NotBool
from planner.schemas.common import Distinct, Price, Strict
from planner.schemas.plan import LatencyTarget
from planner.yamlio import Document, load_yaml

MAX_SCENARIOS = 10_000
"""Scenarios in one sweep, at most (grid product plus list)."""

Multiplier = Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False), NotBool]
Budget = Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False), NotBool]
Count = Annotated[int, Field(ge=0, le=10**7), NotBool]
ScenarioId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
SloKey = Literal["ttft_ms", "tpot_ms", "itl_ms", "e2e_latency_ms"]


def _distinct_values(values: list) -> list:
    """A grid axis lists each value once (values may be lists or targets, so compared by
    their JSON form): a repeated value would solve the same scenarios twice."""
    seen: dict[str, int] = {}
    for i, v in enumerate(values):
        key = repr(v.model_dump() if isinstance(v, BaseModel) else v)
        if key in seen:
            raise ValueError(f"entry [{i}] ({v!r}) repeats entry [{seen[key]}]; list each value once")
        seen[key] = i
    return values


Axis = AfterValidator(_distinct_values)


class Change(Strict):
    """One scenario's changes to the base instance; a field left out keeps the base's value."""

    demand_multiplier: Multiplier | None = Field(
        None, description="multiplies workload.demand (requests/s, output tokens/s, or clients rounded, >= 1), or "
        "a trace's rate_scale")
    budget_usd_per_hour: Budget | None = Field(
        None, description="replaces limits.budget_usd_per_hour (in a grid, null: no budget)")
    prices: dict[str, Price] = Field({}, description="$/GPU-hour per GPU, merged into prices.usd_per_gpu_hour")
    inventory: dict[str, Count] = Field({}, description="GPUs available per type, merged into limits.inventory")
    gpus: Annotated[list[str], Distinct] | None = Field(None, description="replaces search.gpus (availability)")
    slo: dict[SloKey, LatencyTarget] = Field({}, description="latency targets merged into slo (ms)")


class Scenario(Change):
    id: ScenarioId = Field(description="unique; results are sorted by id")


class Grid(Strict):
    """Every combination of the values listed (a per-GPU or per-target mapping is one axis
    per key). Scenario ids are ``grid-0001``, ... in expansion order: the first axis
    slowest, in the order written here."""

    demand_multiplier: Annotated[list[Multiplier], Axis] = []
    budget_usd_per_hour: Annotated[list[Budget | None], Axis] = []
    prices: dict[str, Annotated[list[Price], Axis]] = {}
    inventory: dict[str, Annotated[list[Count], Axis]] = {}
    gpus: Annotated[list[Annotated[list[str], Distinct]], Axis] = []
    slo: dict[SloKey, Annotated[list[LatencyTarget], Axis]] = {}

    def axes(self) -> list[tuple[str, list[Any]]]:
        """(axis name, values): ``prices.h100-sxm``, ``slo.ttft_ms``, ..."""
        out: list[tuple[str, list[Any]]] = []
        for name in ("demand_multiplier", "budget_usd_per_hour", "prices", "inventory", "gpus", "slo"):
            value = getattr(self, name)
            if isinstance(value, dict):
                out += [(f"{name}.{key}", list(v)) for key, v in value.items()]
            elif name in self.model_fields_set:
                out.append((name, list(value)))
        return out

    @model_validator(mode="after")
    def _no_empty_axis(self) -> Grid:
        if not self.axes():
            raise ValueError("a grid lists at least one axis")
        for name, values in self.axes():
            if not values:
                raise ValueError(f"grid axis {name} lists no value")
        return self


class SweepSpec(Strict):
    schema_version: Literal[1] = 1
    base: str = Field(description="the base instance or fleet file (docs/instances.md, docs/fleet.md), relative "
                      "to this file")
    grid: Grid | None = None
    scenarios: list[Scenario] = []
    backend: str | None = Field(
        None, description="a backend of the registry (planner/backends/base.py REGISTRY: cpsat, milp, highs, "
        "exhaustive); default: cpsat for a plan instance, milp for a fleet (planner/plan/solve.py default_backend)")
    time_limit_s: Annotated[float, Field(gt=0, le=3600, allow_inf_nan=False), NotBool] = Field(
        30.0, description="seconds per scenario")
    gap: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False), NotBool] = Field(
        0.0, description="each scenario's solve stops once proven within this relative gap of the best bound, a "
        "fraction 0 <= G < 1 (0.005: 0.5 %); 0: to the proven optimum (planner/plan/solve.py check_gap)")
    calibration: str = "none"
    batch_size: Annotated[int, Field(ge=1, le=10_000), NotBool] | None = Field(
        None, description="scenarios per task sent to a worker (default: about 4 tasks per worker)")

    @model_validator(mode="after")
    def _some_scenario(self) -> SweepSpec:
        if self.grid is None and not self.scenarios:
            raise ValueError("give a grid, scenarios, or both")
        seen: dict[str, int] = {}
        for i, s in enumerate(self.scenarios):
            if s.id in seen:
                raise ValueError(f"scenarios[{i}].id {s.id!r} repeats scenarios[{seen[s.id]}]; ids are unique")
            if s.id.startswith("grid-"):
                raise ValueError(f"scenarios[{i}].id {s.id!r}: ids starting with 'grid-' are the grid's")
            seen[s.id] = i
        n = len(self.scenarios)
        if self.grid is not None:
            size = 1
            for _, values in self.grid.axes():
                size *= len(values)
            n += size
        if n > MAX_SCENARIOS:
            raise ValueError(f"{n} scenarios, above the limit of {MAX_SCENARIOS}")
        return self


def load_sweep_spec(path: str) -> tuple[SweepSpec, Document]:
    doc = load_yaml(path)
    return sweep_spec_of(doc), doc


def sweep_spec_of(doc: Document) -> SweepSpec:
    """The sweep spec in a loaded document (a file, or a mapping given to planner.api)."""
    doc.require_mapping("a sweep file")
    return doc.validate(SweepSpec)
