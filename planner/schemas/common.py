"""Schema pieces shared by every input file: model references, catalog overrides, prices.

A model is a catalog id, ``{hf_config: path}`` (relative to the YAML file), or an
inline architecture. Prices come from the catalog, a per-GPU override, or a total cost
of ownership (docs/model.md section 8).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from planner.catalog.schema import Gpu, NotBool
from planner.catalog.store import ModelSpec
from planner.errors import MissingDataError
from planner.pricing import COMMIT_YEARS
from planner.traces.read import BLOCK_TOKENS
from planner.units import HOURS_PER_MONTH, HOURS_PER_YEAR


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _distinct(values: list | None) -> list | None:
    """A list field names each entry once: a GPU listed twice would count its inventory twice
    and every plan would be listed twice."""
    if values is None:
        return values
    seen: dict = {}
    for i, v in enumerate(values):
        if v in seen:
            raise ValueError(f"entry [{i}] ({v!r}) repeats entry [{seen[v]}]; list each value once")
        seen[v] = i
    return values


Distinct = AfterValidator(_distinct)


def bounded(low: float, high: float, *, low_open: bool = False):
    """A finite number in a physically meaningful range (the range is part of the error)."""
    return Annotated[float, Field(gt=low, le=high, allow_inf_nan=False) if low_open
                     else Field(ge=low, le=high, allow_inf_nan=False), NotBool]


PRICE_MAX = 1e4
"""$/GPU-hour: 100x the dearest GPU on the market; keeps every cost exact in 64-bit integers."""
Price = Annotated[float, Field(ge=0, le=PRICE_MAX, allow_inf_nan=False), NotBool]


class HfConfigRef(Strict):
    hf_config: str = Field(description="path to a Hugging Face config.json, relative to this file")
    serve_towers: bool = Field(False, description="the deployment serves the config's vision/audio towers too: "
                               "their weights count in memory")


ModelRef = str | HfConfigRef | ModelSpec


class Tco(Strict):
    """What one node costs per hour, turned into $/GPU-hour: its power at the electricity price
    (times the PUE), its hosting, and, when ``capex_usd_per_node`` is given, its purchase
    amortised over ``years``. Without capital it is the running cost of GPUs already paid for
    (owned GPUs, ``limits.inventory``)."""

    capex_usd_per_node: Annotated[float, Field(gt=0, le=1e8, allow_inf_nan=False), NotBool] | None = Field(
        None, description="purchase price of one node, amortised over years (omit: capital not counted)")
    years: Annotated[float, Field(ge=0.25, le=50, allow_inf_nan=False), NotBool] | None = Field(
        None, description="years the capital is amortised over (with capex_usd_per_node)")
    node_power_kw: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False), NotBool] | None = Field(
        None, description="default: GPUs per node x GPU TDP")
    usd_per_kwh: Annotated[float, Field(ge=0, le=10, allow_inf_nan=False), NotBool]
    pue: Annotated[float, Field(ge=1, le=5, allow_inf_nan=False), NotBool] = 1.0
    hosting_usd_per_node_month: Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False), NotBool] = 0.0
    gpus_per_node: Annotated[int, Field(ge=1, le=1024), NotBool] | None = Field(
        None, description="default: the GPU's catalog node size")

    @model_validator(mode="after")
    def _capital_with_years(self) -> Tco:
        if (self.capex_usd_per_node is None) != (self.years is None):
            raise ValueError("capex_usd_per_node and years go together: give both (capital amortised over "
                             "years) or neither (running cost only)")
        return self

    def usd_per_gpu_hour(self, gpu: Gpu) -> float:
        return self.breakdown(gpu)["usd_per_gpu_hour"]

    def breakdown(self, gpu: Gpu) -> dict[str, float]:
        per_node = self.gpus_per_node or gpu.gpus_per_node
        kw = self.node_power_kw
        if kw is None:
            if gpu.power_w is None:
                raise MissingDataError(
                    f"TCO needs node power, and GPU {gpu.id!r} has no power_w in the catalog",
                    path="tco.node_power_kw", accepted="give tco.node_power_kw")
            kw = per_node * gpu.power_w / 1000.0
        capex = 0.0 if self.capex_usd_per_node is None or self.years is None else \
            self.capex_usd_per_node / (self.years * HOURS_PER_YEAR)
        power = kw * self.pue * self.usd_per_kwh
        hosting = self.hosting_usd_per_node_month / HOURS_PER_MONTH
        node = capex + power + hosting
        return {"capex_usd_per_node_hour": capex, "power_usd_per_node_hour": power,
                "hosting_usd_per_node_hour": hosting, "usd_per_node_hour": node,
                "gpus_per_node": float(per_node), "usd_per_gpu_hour": node / per_node}


class CatalogExtras(Strict):
    """Catalog additions written inline in an input file (same shape as the catalog)."""

    gpus: dict[str, dict[str, Any]] = {}
    models: dict[str, dict[str, Any]] = {}


class TraceColumns(Strict):
    """Where a CSV trace (format csv) keeps each field: header names, and the timestamps' unit."""

    timestamp: str = Field(min_length=1, max_length=200, description="the arrival time's column")
    input_tokens: str = Field(min_length=1, max_length=200, description="the prompt tokens' column")
    output_tokens: str = Field(min_length=1, max_length=200, description="the output tokens' column")
    timestamp_unit: Literal["s", "ms", "us", "datetime"] = Field(
        "s", description="seconds, milliseconds or microseconds (numbers), or ISO 8601 date-times")


class TraceWindow(Strict):
    """The part of a trace to plan for: seconds from its first request, on its own clock."""

    start_s: Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False), NotBool] = 0.0
    end_s: Annotated[float, Field(gt=0, le=1e9, allow_inf_nan=False), NotBool] | None = Field(
        None, description="default: the end of the trace")

    @model_validator(mode="after")
    def _ordered(self) -> TraceWindow:
        if self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError(f"window.end_s ({self.end_s:g}) must be after window.start_s ({self.start_s:g})")
        return self


class PrefixCache(Strict):
    """Prefix caching (docs/workloads.md section 7): the prompt tokens a serving engine's prefix
    cache serves instead of prefilling them, stated as a share of every prompt, as a prefix
    every prompt shares (a system prompt), or taken from the workload's trace (the reuse of
    its block hashes). Give one. At least a prompt's last token is always computed."""

    hit_rate: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False), NotBool] | None = Field(
        None, description="share of each prompt's tokens served from the cache (0: none, today's figures)")
    prefix_tokens: Annotated[int, Field(ge=0, le=10_000_000), NotBool] | None = Field(
        None, description="every prompt starts with this many tokens already cached (a shared system prompt)")
    from_trace: StrictBool = Field(False, description="the trace's prefix reuse from its block hashes (mooncake): an "
                                   "LRU of the workload's cache_blocks if given, else of each configuration's KV pool")

    @model_validator(mode="after")
    def _one(self) -> PrefixCache:
        given = [k for k in ("hit_rate", "prefix_tokens") if getattr(self, k) is not None] \
            + (["from_trace"] if self.from_trace else [])
        if len(given) != 1:
            raise ValueError("give one of hit_rate, prefix_tokens or from_trace: true"
                             + (f" (got {', '.join(given)})" if given else ""))
        return self


TRACE_KEYS = ("format", "columns", "rate_scale", "window", "cache_blocks", "block_tokens")


class TraceFields(Strict):
    """A workload read from a request trace (docs/workloads.md), shared by the plan's
    ``workload`` and each of a fleet's ``workloads``: the trace gives the length
    distributions, and without a ``demand`` the request rate (times ``rate_scale``) and the
    arrivals' burstiness. The class that uses it declares ``input_tokens``,
    ``output_tokens`` and ``demand``."""

    trace: str | None = Field(None, min_length=1, max_length=4096,
                              description="request trace file, relative to this file (docs/workloads.md)")
    format: Literal["mooncake", "azure", "burstgpt", "csv"] | None = Field(
        None, description="the trace's format; default: told from the file (JSON lines: mooncake; a CSV header: "
        "azure or burstgpt)")
    columns: TraceColumns | None = Field(None, description="format csv: the columns to read")
    rate_scale: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False), NotBool] = Field(
        1.0, description="replay the trace this many times faster: its request rate times this")
    window: TraceWindow | None = Field(None, description="plan for the requests in [start_s, end_s) only")
    cache_blocks: Annotated[int, Field(ge=1, le=10**9), NotBool] | None = Field(
        None, description="also report the prefix reuse of an LRU cache of this many blocks (besides an "
        "unbounded cache)")
    block_tokens: Annotated[int, Field(ge=1, le=1 << 20), NotBool] = Field(
        BLOCK_TOKENS, description="prompt tokens per hash id (mooncake)")
    prefix_cache: PrefixCache | None = Field(
        None, description="prompt tokens served by the engine's prefix cache (docs/workloads.md section 7; "
        "default: none, every prompt token prefilled)")

    @property
    def rate_given(self) -> bool:
        """Whether the workload states a demand, itself or through its trace."""
        return getattr(self, "demand", None) is not None or self.trace is not None

    @model_validator(mode="after")
    def _trace_or_lengths(self) -> TraceFields:
        lengths = [k for k in ("input_tokens", "output_tokens") if getattr(self, k, None) is not None]
        if self.trace is None:      # a key at its default is no stray one: a dumped spec validates again
            if self.prefix_cache is not None and self.prefix_cache.from_trace:
                # located at the key itself (workload.prefix_cache.from_trace, its line), not at the workload
                raise ValidationError.from_exception_data(type(self).__name__, [InitErrorDetails(
                    type=PydanticCustomError("value_error", "from_trace takes the reuse of the workload's trace, and "
                                             "this workload has none: give trace: FILE (mooncake, with hash_ids), or "
                                             "prefix_cache.hit_rate"),
                    loc=("prefix_cache", "from_trace"), input=True)])
            stray = [k for k in TRACE_KEYS if getattr(self, k) != type(self).model_fields[k].default]
            if stray:
                raise ValueError(f"{', '.join(stray)} describe{'s' if len(stray) == 1 else ''} a trace: give trace: "
                                 "FILE, or leave them out")
            if len(lengths) < 2:
                raise ValueError("give input_tokens and output_tokens, or trace: FILE (docs/workloads.md)")
            return self
        if lengths:
            raise ValueError(f"a trace gives the lengths: leave out {' and '.join(lengths)}, or the trace")
        if (self.format == "csv") != (self.columns is not None):
            raise ValueError("format csv needs columns: {timestamp, input_tokens, output_tokens}"
                             if self.format == "csv" else "columns is for format csv only: add format: csv")
        if getattr(self, "demand", None) is not None and self.rate_scale != 1.0:
            raise ValueError("rate_scale scales the trace's rate; with a demand, the demand sets the rate: give "
                             "one of them")
        return self


Label = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$", description="lower-case letters, digits, '-'")]


class Preemption(Strict):
    """A spot offer's rule for preemption (docs/workloads.md "Prices by kind"): a fixed count
    of spare replicas per deployment (N + k), or an availability target that the planner
    turns into the spares it needs, given the share of time one spot replica is up."""

    spare_replicas: Annotated[int, Field(ge=0, le=64), NotBool] | None = Field(
        None, description="spare replicas each spot deployment carries on top of those it serves with (N + k)")
    availability: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False), NotBool] | None = Field(
        None, description="the share of time at least N replicas must be up (with replica_availability)")
    replica_availability: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False), NotBool] | None = Field(
        None, description="the share of time one spot replica is up (1 - preemption rate x time to replace it)")

    @model_validator(mode="after")
    def _one_rule(self) -> Preemption:
        target = (self.availability, self.replica_availability)
        if (self.spare_replicas is None) == (None in target) or (None in target and target != (None, None)):
            raise ValueError("give spare_replicas, or availability with replica_availability (not both)")
        return self


class Offer(Strict):
    """One way to pay for a GPU type (``prices.offers``): its kind, its $/GPU-hour and, for a
    commitment, its minimum term and any upfront payment (priced per hour over the term); for
    spot, its preemption rule. ``provider`` and ``region`` tell offers of one kind apart."""

    kind: Literal["on_demand", "spot", "commit_1y", "commit_3y"]
    usd_per_gpu_hour: Price | None = Field(
        None, description="omit: no price (left out of a question with a budget or a cost objective, said so)")
    upfront_usd_per_gpu: Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False), NotBool] = Field(
        0.0, description="a commitment's payment at signing, per GPU, spread over its term's hours")
    term_years: Annotated[float, Field(ge=1, le=10, allow_inf_nan=False), NotBool] | None = Field(
        None, description="a commitment's term (default and minimum: 1 for commit_1y, 3 for commit_3y)")
    preemption: Preemption | None = Field(None, description="spot only, and required there")
    provider: Label | None = None
    region: Label | None = None

    @model_validator(mode="after")
    def _kind_fields(self) -> Offer:
        if (self.kind == "spot") != (self.preemption is not None):
            raise ValueError("a spot offer states its preemption rule, and only a spot offer has one")
        if not self.kind.startswith("commit") and (self.term_years is not None or self.upfront_usd_per_gpu):
            raise ValueError("term_years and upfront_usd_per_gpu belong to a commitment (commit_1y, commit_3y)")
        if self.kind == "commit_3y" and self.term_years is not None and self.term_years < 3:
            raise ValueError("a 3-year commitment's term is at least 3 years")
        return self

    @property
    def label(self) -> str:
        """The searched entry's suffix: ``gpu@<kind>[.provider][.region]``."""
        return ".".join(x for x in (self.kind, self.provider, self.region) if x)

    @property
    def term(self) -> float | None:
        """Years committed (None: not a commitment)."""
        return self.term_years or COMMIT_YEARS.get(self.kind)
