"""The instance schema of `planner plan` (docs/instances.md). Strict and versioned."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from planner.catalog.schema import NotBool
from planner.errors import InputError
from planner.schemas.common import CatalogExtras, Distinct, ModelRef, Offer, Price, Strict, Tco, TraceFields
from planner.schemas.schedule import Profile, ScheduleOptions
from planner.schemas.slo import STATISTICS as STATISTICS  # re-exported: the SLO schema lives in planner/schemas/slo.py
from planner.schemas.slo import LatencyTarget as LatencyTarget
from planner.schemas.slo import Percentiles as Percentiles
from planner.schemas.slo import Slo
from planner.yamlio import Document, load_yaml

SCHEMA_VERSION = 1
Tokens = Annotated[int, Field(ge=1, le=10_000_000), NotBool]
Degree = Annotated[int, Field(ge=1, le=1024), NotBool]
Objective = Literal["cost_per_million_tokens", "cost_per_hour", "tpot", "ttft", "throughput", "gpus"]
# Every number bounded to a physical range (the range is part of the error; planner/schemas/common.bounded)
TokensPerS = Annotated[float, Field(gt=0, le=1e9, allow_inf_nan=False), NotBool]   # a billion output tokens/s
Usd = Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False), NotBool]   # $/hour
Rps = Annotated[float, Field(gt=0, le=1e7, allow_inf_nan=False), NotBool]
Weight = Annotated[float, Field(gt=0, le=1e9, allow_inf_nan=False), NotBool]
Watts = Annotated[float, Field(gt=0, le=1e10, allow_inf_nan=False), NotBool]
MAX_DEMAND_TOKENS_PER_S = 1e9
MAX_CANDIDATES = 2_000_000
"""Largest search space (configurations x batch levels) accepted; a bigger one is refused."""



class Arrival(Strict):
    """How requests arrive: Poisson (cv 1), or bursty Gamma inter-arrival times with a
    coefficient of variation cv > 1 (docs/load.md)."""

    process: Literal["poisson", "gamma"] = "poisson"
    cv: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False), NotBool] = 1.0

    @model_validator(mode="after")
    def _poisson_cv(self) -> Arrival:
        if self.process == "poisson" and self.cv != 1.0:
            raise ValueError("a Poisson process has cv 1; use process: gamma for another cv")
        return self


class Demand(Strict):
    """Exactly one of: a request rate, an output-token rate (open loop, arriving as
    ``arrival`` says), or N concurrent clients (closed loop: each sends its next request
    when the last completes)."""

    requests_per_s: Rps | None = None
    output_tokens_per_s: TokensPerS | None = None
    concurrency: Annotated[int, Field(ge=1, le=10_000_000), NotBool] | None = Field(
        None, description="closed loop: clients with one request in flight each")
    arrival: Arrival = Arrival()
    profile: Profile | None = Field(
        None, description="the rate over time (`planner schedule` plans each period, `planner plan` and "
        "`planner fleet` the busiest): periods [{hours, requests_per_s | "
        "output_tokens_per_s | multiplier, optionally slo}, ...], or {periods, hours}: the workload trace's shape "
        "with its busiest period at the stated rate (docs/workloads.md)")

    @model_validator(mode="after")
    def _one(self) -> Demand:
        given = [x for x in (self.requests_per_s, self.output_tokens_per_s, self.concurrency) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of requests_per_s, output_tokens_per_s, concurrency")
        if self.concurrency is not None and self.arrival != Arrival():
            raise ValueError("a closed loop (concurrency) has no arrival process")
        if self.concurrency is not None and self.profile is not None:
            raise ValueError("a profile varies an open-loop rate: give requests_per_s or output_tokens_per_s")
        return self


class LengthDistribution(Strict):
    """Request lengths that vary: a histogram of (tokens, weight) buckets, or a mean with a
    coefficient of variation or one percentile (a lognormal with that mean, docs/load.md)."""

    histogram: list[tuple[Tokens, Weight]] | None = Field(
        None, description="[[tokens, weight], ...]")
    mean: Tokens | None = None
    cv: Annotated[float, Field(ge=0, le=10, allow_inf_nan=False), NotBool] | None = None
    p50: Tokens | None = None
    p90: Tokens | None = None
    p99: Tokens | None = None

    @model_validator(mode="after")
    def _shape(self) -> LengthDistribution:
        pcts = [p for p in (self.p50, self.p90, self.p99) if p is not None]
        if self.histogram is not None:
            if self.mean is not None or self.cv is not None or pcts:
                raise ValueError("give a histogram, or a mean with cv or one percentile, not both")
            if not self.histogram:
                raise ValueError("a histogram needs at least one bucket")
            return self
        if self.mean is None:
            raise ValueError("give histogram, or mean (with cv or one of p50, p90, p99)")
        if self.cv is not None and pcts or len(pcts) > 1:
            raise ValueError("give the spread once: cv, or one of p50, p90, p99")
        return self


Lengths = Tokens | LengthDistribution


class Workload(TraceFields):
    """Stated lengths (and optionally a demand), or a request trace (docs/workloads.md)."""

    input_tokens: Lengths | None = Field(None, description="prompt tokens per request: a number or a distribution")
    output_tokens: Lengths | None = Field(None, description="generated tokens per request: a number or a "
                                          "distribution")
    demand: Demand | None = None

    @model_validator(mode="after")
    def _demand_in_range(self) -> Workload:
        demand_in_range(self.demand, self.output_tokens)
        return self


def demand_in_range(d: Demand | None, output_tokens: Lengths | None) -> None:
    """A request rate whose output-token rate is beyond any fleet is refused (ValueError); with
    a trace (no stated lengths) the resolver checks it (planner/resolve/workload.py)."""
    if d is None or d.requests_per_s is None or output_tokens is None:
        return
    out = output_tokens if isinstance(output_tokens, int) else _largest(output_tokens)
    if d.requests_per_s * out > MAX_DEMAND_TOKENS_PER_S:
        raise ValueError(f"demand.requests_per_s x output_tokens is {d.requests_per_s * out:.3g} "
                         f"output tokens/s, above the limit of {MAX_DEMAND_TOKENS_PER_S:.0e}")


def _largest(x: LengthDistribution) -> int:
    if x.histogram is not None:
        return max(t for t, _ in x.histogram)
    return max(v for v in (x.mean, x.p50, x.p90, x.p99) if v is not None)


class Search(Strict):
    gpus: Annotated[list[str], Distinct] | None = Field(None, description="default: every GPU in the catalog")
    quantizations: Annotated[list[str], Distinct] | None = Field(
        None, description="default: every serving scheme with weights of min_weight_bits or more (llama.cpp GGUF "
        "formats only when named); names as people type them (bf16, fp8, awq, nvfp4, ...: docs/support.md)")
    min_weight_bits: Literal[4, 8, 16] | None = Field(
        None, description="quality floor: weights of at least this many bits. Default: 8 for the default list of "
        "quantizations (4-bit and FP4 formats are opt-in), none for a list you give")
    engine: Literal["vllm", "sglang", "trtllm"] = Field(
        "vllm", description="the serving engine whose support matrix applies (docs/support.md)")
    kv_dtypes: Annotated[list[str], Distinct] = ["bf16", "fp8"]
    tp: Annotated[list[Degree], Distinct] = [1, 2, 4, 8]
    pp: Annotated[list[Degree], Distinct] = [1, 2, 4]
    ep: Annotated[list[Degree], Distinct] | None = Field(
        None, description="default: 1, and for MoE models each TP degree")
    batch_levels: Annotated[list[Annotated[int, Field(ge=1, le=65536), NotBool]], Distinct] | None = Field(
        None, description="default: 1, 2, 4, ... up to max_batch, plus each configuration's largest feasible batch")
    max_batch: Annotated[int, Field(ge=1, le=65536), NotBool] = 1024
    max_gpus: Annotated[int, Field(ge=1, le=10**7), NotBool] | None = None
    max_nodes: Annotated[int, Field(ge=1, le=10**6), NotBool] | None = None
    allow_cross_node_tp: bool = False


class Limits(Strict):
    budget_usd_per_hour: Usd | None = Field(None, description="at most 1e9 $/hour")
    inventory: dict[str, Annotated[int, Field(ge=0, le=10**7), NotBool]] = Field(
        {}, description="GPUs owned per type, each at its running cost (prices.owned_usd_per_gpu_hour or "
        "prices.tco); with an inventory, nothing is rented unless rent_outside_inventory is true")
    rent_outside_inventory: bool = Field(False, description="with an inventory, also rent GPUs at their rental "
                                         "price: more of the owned types, and the types it does not list")
    power_cap_w: Watts | None = Field(None, description="at most 1e10 W")


class Prices(Strict):
    """What a GPU-hour costs (docs/instances.md "Prices"). A rented GPU: ``usd_per_gpu_hour``,
    else the catalog's price (with no inventory, ``tco`` prices every GPU as if bought). An
    owned GPU (``limits.inventory``): ``owned_usd_per_gpu_hour``, else ``tco`` (its running
    cost, plus capital if the TCO gives it), else, when nothing is rented,
    ``usd_per_gpu_hour``; never the catalog's rental price. A GPU without a price is left out
    of a question with a budget or a cost objective."""

    usd_per_gpu_hour: dict[str, Price] = Field({}, description="rental price, overrides the catalog; at most "
                                               "1e4 $/GPU-hour")
    owned_usd_per_gpu_hour: dict[str, Price] = Field(
        {}, description="what an owned GPU (limits.inventory) costs to run per hour; overrides tco")
    tco: Tco | None = None
    offers: dict[str, Annotated[list[Offer], Field(min_length=1, max_length=16)]] = Field(
        {}, description="per rented GPU type, the ways to pay for it (on_demand, spot, commit_1y, commit_3y); "
        "each is searched as its own entry gpu@kind, replacing usd_per_gpu_hour and the catalog's price "
        "(docs/workloads.md \"Prices by kind\")")


Disaggregation = Literal["auto", "never", "always"]
LATENCY_OBJECTIVES = ("tpot", "ttft")


def disaggregation_problem(mode: str, demand: Demand | None, slo: Slo, traced: bool = False) -> tuple[str, str] | None:
    """Why a workload cannot be planned with prefill/decode pools under ``mode``, as
    (message, accepted), or None (docs/disaggregation.md section 7). A trace without a stated
    demand gives its own rate (``traced``)."""
    if mode == "never":
        return None
    if (demand is None and not traced) or (demand is not None and demand.concurrency is not None):
        return ("disaggregation is planned for an open-loop rate only (a closed loop or no demand has no rate to "
                "split between the pools)", "never, or demand: {requests_per_s: ...} or {output_tokens_per_s: ...}")
    if slo.e2e_latency_ms is not None:
        return ("an end-to-end target spans both pools and is not split between them",
                "never, or TTFT and TPOT/ITL targets only")
    return None


class PlanSpec(Strict):
    schema_version: Literal[1] = 1
    model: ModelRef
    workload: Workload
    slo: Slo = Slo()
    search: Search = Search()
    limits: Limits = Limits()
    prices: Prices = Prices()
    objective: Objective = "cost_per_million_tokens"
    top_k: Annotated[int, Field(ge=1, le=50), NotBool] | None = Field(
        None, description="how many distinct plans to rank (default: 5; 1 when the workload splits its traffic "
        "or runs pools: each further rank of such a plan is a binary program of its own)")
    max_configurations_per_workload: Annotated[int, Field(ge=1, le=8), NotBool] | None = Field(
        None, description="the workload's traffic may be split over up to this many configurations (GPU types, "
        "layouts, precisions), each with integer replicas, as in a fleet (docs/fleet.md). Default: 2 when owned "
        "GPUs may be topped up by renting (limits.inventory with rent_outside_inventory, a demand and a cost or "
        "GPU objective: owned and rented GPUs then serve the workload together), else 1")
    disaggregation: Disaggregation = Field(
        "never", description="prefill/decode disaggregation (docs/disaggregation.md section 7): never (aggregated "
        "replicas only), always (a prefill pool and a decode pool), auto (the solver chooses, or mixes)")
    kv_link: Literal["inter", "intra"] = Field(
        "inter", description="with disaggregation: the link the KV cache crosses from the prefill pool to the "
        "decode pool: inter (the inter-node network) or intra (the node's NVLink/xGMI)")
    preset: str = "realistic"
    assumptions: dict[str, Any] = {}
    catalog: Annotated[list[str], Distinct] = []
    extra_catalog: CatalogExtras | None = None
    schedule: ScheduleOptions = Field(ScheduleOptions(), description="`planner schedule`: how the fleet may "
                                      "change between the periods of the demand's profile")

    @model_validator(mode="after")
    def _objective_is_bounded(self) -> PlanSpec:
        if self.objective == "cost_per_hour" and not self.workload.rate_given:
            raise ValueError("objective cost_per_hour needs workload.demand or workload.trace (otherwise one "
                             "cheapest replica wins)")
        owned = bool(self.limits.inventory) and not self.limits.rent_outside_inventory
        if self.objective == "throughput" and not (
                self.limits.budget_usd_per_hour is not None or owned or self.search.max_gpus):
            raise ValueError("objective throughput needs a limit on every GPU type: limits.budget_usd_per_hour, "
                             "search.max_gpus, or limits.inventory without rent_outside_inventory")
        split = (self.max_configurations_per_workload or 1) > 1 or self.disaggregation != "never"
        if split and self.workload.demand is None:
            raise ValueError("several configurations or disaggregation split a demand: give workload.demand")
        if split and self.objective in LATENCY_OBJECTIVES:
            raise ValueError(f"objective {self.objective} reads one deployment's latency: with several "
                             "configurations or disaggregation there is none (use max_configurations_per_workload: "
                             "1 and disaggregation: never)")
        why = disaggregation_problem(self.disaggregation, self.workload.demand, self.slo,
                                     self.workload.trace is not None)
        if why is not None:
            raise ValueError(f"disaggregation {self.disaggregation}: {why[0]}; accepted: {why[1]}")
        return self

    def ranks(self) -> int:
        """Plans to rank: ``top_k``, or its default."""
        if self.top_k is not None:
            return self.top_k
        return 1 if self.max_configurations() > 1 or self.disaggregation != "never" else 5

    def max_configurations(self) -> int:
        """Configurations the workload's traffic may be split over (the field, or its default)."""
        if self.max_configurations_per_workload is not None:
            return self.max_configurations_per_workload
        topped_up = bool(self.limits.inventory) and self.limits.rent_outside_inventory
        return 2 if topped_up and self.workload.demand is not None and self.objective not in LATENCY_OBJECTIVES \
            else 1


def load_plan_spec(path: str) -> tuple[PlanSpec, Document]:
    doc = load_yaml(path)
    return plan_spec_of(doc), doc


def plan_spec_of(doc: Document) -> PlanSpec:
    """The instance in a loaded document (a file, or a mapping given to planner.api)."""
    doc.require_mapping("an instance file")
    if "workloads" in doc.data and "model" not in doc.data:
        raise InputError("this is a fleet instance (it lists workloads)", file=doc.file, path="workloads",
                         accepted="planner fleet FILE for a fleet; planner plan takes one model and workload")
    return doc.validate(PlanSpec)


def with_objective(spec: PlanSpec, doc: Document | None, objective: str | None, *,
                   option: str = "--objective") -> PlanSpec:
    """The instance with its objective replaced (``planner plan --objective``); an objective the
    instance cannot bound is an input error located at ``option``."""
    if objective is None or objective == spec.objective:
        return spec
    data = doc.data if doc is not None else spec.model_dump(exclude_unset=True)
    try:
        return (doc or Document(data=data, file="<spec>")).validate(PlanSpec, {**data, "objective": objective})
    except InputError as exc:
        raise InputError(exc.message, file=None if doc is None else doc.file, path=option, value=objective,
                         accepted="an objective the instance can bound") from None
