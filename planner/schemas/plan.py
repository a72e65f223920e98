"""The instance schema of `planner plan` (docs/instances.md). Strict and versioned."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from planner.errors import InputError
from planner.catalog.schema import NotBool
from planner.schemas.common import CatalogExtras, Distinct, ModelRef, Price, Strict, Tco, bounded
from planner.yamlio import Document, load_yaml

SCHEMA_VERSION = 1
Tokens = Annotated[int, Field(ge=1, le=10_000_000), NotBool]
Degree = Annotated[int, Field(ge=1, le=1024), NotBool]
Objective = Literal["cost_per_million_tokens", "cost_per_hour", "tpot", "ttft", "throughput", "gpus"]
Ms = bounded(0, 1e7, low_open=True)              # <= 2.8 hours: beyond is "no limit", so leave it out
TokensPerS = bounded(0, 1e9, low_open=True)      # a billion output tokens per second
Usd = bounded(0, 1e9)                            # $/hour
MAX_DEMAND_TOKENS_PER_S = 1e9
MAX_CANDIDATES = 2_000_000
"""Largest search space (configurations x batch levels) accepted; a bigger one is refused."""


class Demand(Strict):
    requests_per_s: bounded(0, 1e7, low_open=True) | None = None
    output_tokens_per_s: TokensPerS | None = None

    @model_validator(mode="after")
    def _one(self) -> "Demand":
        if (self.requests_per_s is None) == (self.output_tokens_per_s is None):
            raise ValueError("give exactly one of requests_per_s, output_tokens_per_s")
        return self


class Workload(Strict):
    input_tokens: Tokens
    output_tokens: Tokens
    demand: Demand | None = None

    @model_validator(mode="after")
    def _demand_in_range(self) -> "Workload":
        d = self.demand
        if d is not None and d.requests_per_s is not None \
                and d.requests_per_s * self.output_tokens > MAX_DEMAND_TOKENS_PER_S:
            raise ValueError(f"demand.requests_per_s x output_tokens is {d.requests_per_s * self.output_tokens:.3g} "
                             f"output tokens/s, above the limit of {MAX_DEMAND_TOKENS_PER_S:.0e}")
        return self


class Slo(Strict):
    ttft_ms: Ms | None = Field(None, description="at most 1e7 ms; leave a target out for no limit")
    tpot_ms: Ms | None = None
    e2e_latency_ms: Ms | None = Field(None, description="TTFT + TPOT x (output tokens - 1)")


class Search(Strict):
    gpus: Annotated[list[str], Distinct] | None = Field(None, description="default: every GPU in the catalog")
    quantizations: Annotated[list[str], Distinct] | None = Field(
        None, description="default: every serving scheme (llama.cpp GGUF formats only when named)")
    kv_dtypes: Annotated[list[str], Distinct] = ["bf16", "fp8"]
    tp: Annotated[list[Degree], Distinct] = [1, 2, 4, 8]
    pp: Annotated[list[Degree], Distinct] = [1, 2, 4]
    ep: Annotated[list[Degree], Distinct] | None = Field(None, description="default: 1, and for MoE models each TP degree")
    batch_levels: Annotated[list[Annotated[int, Field(ge=1, le=65536), NotBool]], Distinct] | None = Field(
        None, description="default: 1, 2, 4, ... up to max_batch, plus each configuration's largest feasible batch")
    max_batch: Annotated[int, Field(ge=1, le=65536), NotBool] = 1024
    max_gpus: Annotated[int, Field(ge=1, le=10**7), NotBool] | None = None
    max_nodes: Annotated[int, Field(ge=1, le=10**6), NotBool] | None = None
    allow_cross_node_tp: bool = False


class Limits(Strict):
    budget_usd_per_hour: Usd | None = Field(None, description="at most 1e9 $/hour")
    inventory: dict[str, Annotated[int, Field(ge=0, le=10**7), NotBool]] = {}
    power_cap_w: bounded(0, 1e10, low_open=True) | None = Field(None, description="at most 1e10 W")


class Prices(Strict):
    usd_per_gpu_hour: dict[str, Price] = Field({}, description="at most 1e4 $/GPU-hour")
    tco: Tco | None = None


class PlanSpec(Strict):
    schema_version: Literal[1] = 1
    model: ModelRef
    workload: Workload
    slo: Slo = Slo()
    search: Search = Search()
    limits: Limits = Limits()
    prices: Prices = Prices()
    objective: Objective = "cost_per_million_tokens"
    top_k: Annotated[int, Field(ge=1, le=50), NotBool] = 5
    preset: str = "realistic"
    assumptions: dict[str, Any] = {}
    catalog: Annotated[list[str], Distinct] = []
    extra_catalog: CatalogExtras | None = None

    @model_validator(mode="after")
    def _objective_is_bounded(self) -> "PlanSpec":
        if self.objective == "cost_per_hour" and self.workload.demand is None:
            raise ValueError("objective cost_per_hour needs workload.demand (otherwise one cheapest replica wins)")
        if self.objective == "throughput" and not (
                self.limits.budget_usd_per_hour is not None or self.limits.inventory or self.search.max_gpus):
            raise ValueError("objective throughput needs a limit: limits.budget_usd_per_hour, limits.inventory "
                             "or search.max_gpus")
        return self


def load_plan_spec(path: str) -> tuple[PlanSpec, Document]:
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise InputError("an instance file must be a YAML mapping", file=path)
    return doc.validate(PlanSpec), doc
