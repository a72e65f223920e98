"""The fleet instance of `planner fleet` (docs/fleet.md): several workloads, each a model
with its demand, lengths, SLOs and weight, sharing one GPU inventory (per type, optionally
per pool), a budget and a power cap; optionally the fleet running today. The same schema
family as the single-model instance (planner/schemas/plan.py): its search, limits, prices,
preset and catalog sections are the same objects."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from planner.catalog.schema import NotBool
from planner.errors import InputError
from planner.schemas.common import CatalogExtras, Distinct, ModelRef, Strict, TraceFields
from planner.schemas.plan import (
    Degree,
    Demand,
    Disaggregation,
    Lengths,
    Limits,
    Prices,
    Search,
    Slo,
    Weight,
    demand_in_range,
    disaggregation_problem,
)
from planner.schemas.schedule import ScheduleOptions
from planner.yamlio import Document, load_yaml

FleetObjective = Literal["cost_per_hour", "served_demand", "change"]
FLEET_OBJECTIVES: tuple[str, ...] = ("cost_per_hour", "served_demand", "change")
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
MAX_WORKLOADS = 1000


class FleetWorkload(TraceFields):
    """One workload: a model serving a demand at its lengths and latency targets, stated or
    read from a request trace (docs/workloads.md)."""

    name: Name = Field(description="unique; names the workload in the report")
    model: ModelRef
    input_tokens: Lengths | None = Field(None, description="prompt tokens per request: a number or a distribution")
    output_tokens: Lengths | None = Field(None, description="generated tokens per request: a number or a "
                                          "distribution")
    demand: Demand | None = Field(None, description="what the fleet must serve: requests_per_s, "
                                  "output_tokens_per_s or concurrency (default with a trace: its rate)")
    slo: Slo = Slo()
    weight: Weight = Field(1.0, description="priority when not every demand can be served (objective "
                           "served_demand): the served share of this workload counts weight times")
    pools: Annotated[list[Name], Field(min_length=1), Distinct] | None = Field(
        None, description="the pools (regions) this workload may run in (default: any)")
    disaggregation: Disaggregation | None = Field(
        None, description="prefill/decode disaggregation (docs/disaggregation.md): never (aggregated replicas "
        "only), always (a prefill pool and a decode pool), auto (the solver chooses, or mixes); default: the "
        "fleet's disaggregation")

    @model_validator(mode="after")
    def _demand_in_range(self) -> FleetWorkload:
        if self.demand is None and self.trace is None:
            raise ValueError("give demand (requests_per_s, output_tokens_per_s or concurrency), or trace: FILE "
                             "whose rate is the demand")
        demand_in_range(self.demand, self.output_tokens)
        return self


class CurrentDeployment(Strict):
    """Replicas running today: one configuration of one workload."""

    workload: Name
    gpu: str
    pool: Name | None = Field(None, description="the pool it runs in (required when the fleet has pools)")
    quantization: str
    kv_dtype: str = "bf16"
    tp: Degree = 1
    pp: Degree = 1
    ep: Degree = 1
    replicas: Annotated[int, Field(ge=1, le=100_000), NotBool]


class ChangeOptions(Strict):
    max_extra_cost: Annotated[float, Field(ge=0, le=10, allow_inf_nan=False), NotBool] = Field(
        0.05, description="objective change: the re-plan may cost at most this share more per hour than the "
        "cheapest fleet (0.05: 5 %)")


class FleetSpec(Strict):
    schema_version: Literal[1] = 1
    workloads: Annotated[list[FleetWorkload], Field(min_length=1, max_length=MAX_WORKLOADS)]
    search: Search = Search()
    limits: Limits = Limits()
    pools: dict[Name, dict[str, Annotated[int, Field(ge=0, le=10**7), NotBool]]] = Field(
        {}, description="GPUs owned per pool (region): {pool: {gpu: count}}; instead of limits.inventory. A "
        "replica runs inside one pool; a workload may be kept to some pools (workloads[].pools)")
    prices: Prices = Prices()
    objective: FleetObjective | Annotated[list[FleetObjective], Field(min_length=1), Distinct] = Field(
        "cost_per_hour", description="one objective, or a list solved lexicographically (each later one "
        "keeps the earlier ones at their optimum)")
    max_configurations_per_workload: Annotated[int, Field(ge=1, le=8), NotBool] = Field(
        2, description="a workload's traffic may be split over up to this many configurations (GPU types, "
        "layouts, precisions), each with integer replicas")
    current: list[CurrentDeployment] = Field([], description="the fleet running today (objective change)")
    disaggregation: Disaggregation = Field(
        "never", description="every workload's default for prefill/decode disaggregation: never, always or "
        "auto (docs/disaggregation.md section 7)")
    kv_link: Literal["inter", "intra"] = Field(
        "inter", description="the link a disaggregated workload's KV cache crosses from its prefill pool to its "
        "decode pool: inter (the inter-node network) or intra (the node's NVLink/xGMI: both pools in one node)")
    change: ChangeOptions = ChangeOptions()
    preset: str = "realistic"
    assumptions: dict[str, Any] = {}
    catalog: Annotated[list[str], Distinct] = []
    extra_catalog: CatalogExtras | None = None
    top_k: Literal[1] = 1
    schedule: ScheduleOptions = Field(ScheduleOptions(), description="`planner schedule`: how the fleet may "
                                      "change between the periods of the workloads' demand profiles")

    def ranks(self) -> int:
        """A fleet ranks one answer."""
        return 1

    @property
    def phases(self) -> tuple[str, ...]:
        """The objectives in the order they are solved: served demand first when asked (cost
        then breaks its ties), cost before change (change is minimised at bounded cost)."""
        asked = [self.objective] if isinstance(self.objective, str) else list(self.objective)
        out = list(asked)
        if "change" in out and "cost_per_hour" not in out[:out.index("change")]:
            out.insert(out.index("change"), "cost_per_hour")
        if "cost_per_hour" not in out:
            out.append("cost_per_hour")
        return tuple(out)

    def problems(self) -> list[tuple[tuple, Any, str, str | None]]:
        """What the schema cannot say field by field, as (YAML path, value, message, accepted)."""
        out: list[tuple[tuple, Any, str, str | None]] = []
        names = [w.name for w in self.workloads]
        for i, n in enumerate(names):
            if n in names[:i]:
                out.append((("workloads", i, "name"), n, f"repeats workloads[{names.index(n)}].name",
                            "a name used once"))
        for i, d in enumerate(self.current):
            if d.workload not in names:
                out.append((("current", i, "workload"), d.workload, "not a workload of this fleet", ", ".join(names)))
        if self.pools and self.limits.inventory:
            out.append((("pools",), None, "give GPUs owned per pool or limits.inventory, not both",
                        "pools: {pool: {gpu: count}}"))
        for i, w in enumerate(self.workloads):
            for k, pool in enumerate(w.pools or []):
                if pool not in self.pools:
                    out.append((("workloads", i, "pools", k), pool, "not a pool of this fleet",
                                ", ".join(self.pools) or "no pools are defined (pools:)"))
        for i, d in enumerate(self.current):
            if self.pools and d.pool not in self.pools:
                out.append((("current", i, "pool"), d.pool, "a fleet with pools needs the pool of each "
                            "deployment running today", ", ".join(self.pools)))
        asked = [self.objective] if isinstance(self.objective, str) else list(self.objective)
        if "served_demand" in asked and asked.index("served_demand") > 0:
            out.append((("objective",), asked, "served_demand must come first: a cost or change phase before it "
                        "would serve nothing at no cost", "[served_demand, ...]"))
        if "change" in self.phases and not self.current:
            out.append((("objective",), "change", "objective change needs current: the fleet running today",
                        "current: [{workload, gpu, quantization, kv_dtype, tp, pp, ep, replicas}, ...]"))
        for i, w in enumerate(self.workloads):
            mode = w.disaggregation or self.disaggregation
            why = disaggregation_problem(mode, w.demand, w.slo, w.trace is not None)
            if why is not None:
                where = ("workloads", i, "disaggregation") if w.disaggregation else ("disaggregation",)
                out.append((where, mode, f"workloads[{i}]: {why[0]}", why[1]))
        lim = self.limits
        if "served_demand" in self.phases and lim.budget_usd_per_hour is None and lim.power_cap_w is None and not (
                (lim.inventory or self.pools) and not lim.rent_outside_inventory):
            out.append((("objective",), "served_demand", "objective served_demand needs a limit that can bind",
                        "limits.budget_usd_per_hour, limits.power_cap_w, or limits.inventory without "
                        "rent_outside_inventory"))
        return out

    def checked(self, doc: Document | None = None) -> FleetSpec:
        """This spec, or the first of its problems as a located input error."""
        for path, value, message, accepted in self.problems():
            if doc is not None:
                raise doc.error(message, path, value, accepted)
            raise InputError(message, path=".".join(str(p) for p in path), value=value, accepted=accepted)
        return self


def is_fleet(data: Any) -> bool:
    return isinstance(data, dict) and "workloads" in data


def load_fleet_spec(path: str) -> tuple[FleetSpec, Document]:
    doc = load_yaml(path)
    return fleet_spec_of(doc), doc


def fleet_spec_of(doc: Document) -> FleetSpec:
    """The fleet in a loaded document (a file, or a mapping given to planner.api), checked."""
    doc.require_mapping("a fleet file")
    if not is_fleet(doc.data):
        raise InputError("a fleet file lists its workloads", file=doc.file, path="workloads",
                         accepted="workloads: [{name, model, input_tokens, output_tokens, demand, slo}, ...] "
                         "(a single-model instance goes to `planner plan`)")
    return doc.validate(FleetSpec).checked(doc)
