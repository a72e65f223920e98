"""The instance schema of `planner plan` (docs/instances.md). Strict and versioned."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from planner.catalog.schema import NonNegative, NotBool, Positive, PositiveInt
from planner.errors import InputError
from planner.schemas.common import CatalogExtras, ModelRef, Strict, Tco
from planner.yamlio import Document, load_yaml

SCHEMA_VERSION = 1
Tokens = Annotated[int, Field(ge=1, le=10_000_000), NotBool]
Degree = Annotated[int, Field(ge=1, le=1024), NotBool]
Objective = Literal["cost_per_million_tokens", "cost_per_hour", "tpot", "ttft", "throughput", "gpus"]
MAX_CANDIDATES = 2_000_000
"""Largest search space (configurations x batch levels) accepted; a bigger one is refused."""


class Demand(Strict):
    requests_per_s: Positive | None = None
    output_tokens_per_s: Positive | None = None

    @model_validator(mode="after")
    def _one(self) -> "Demand":
        if (self.requests_per_s is None) == (self.output_tokens_per_s is None):
            raise ValueError("give exactly one of requests_per_s, output_tokens_per_s")
        return self


class Workload(Strict):
    input_tokens: Tokens
    output_tokens: Tokens
    demand: Demand | None = None


class Slo(Strict):
    ttft_ms: Positive | None = None
    tpot_ms: Positive | None = None
    e2e_latency_ms: Positive | None = Field(None, description="TTFT + TPOT x (output tokens - 1)")


class Search(Strict):
    gpus: list[str] | None = Field(None, description="default: every GPU in the catalog")
    quantizations: list[str] | None = Field(None, description="default: every serving scheme (llama.cpp GGUF formats only when named)")
    kv_dtypes: list[str] = ["bf16", "fp8"]
    tp: list[Degree] = [1, 2, 4, 8]
    pp: list[Degree] = [1, 2, 4]
    ep: list[Degree] | None = Field(None, description="default: 1, and for MoE models each TP degree")
    batch_levels: list[Annotated[int, Field(ge=1, le=65536), NotBool]] | None = Field(
        None, description="default: 1, 2, 4, ... up to max_batch, plus each configuration's largest feasible batch")
    max_batch: Annotated[int, Field(ge=1, le=65536), NotBool] = 1024
    max_gpus: PositiveInt | None = None
    max_nodes: PositiveInt | None = None
    allow_cross_node_tp: bool = False


class Limits(Strict):
    budget_usd_per_hour: NonNegative | None = None
    inventory: dict[str, Annotated[int, Field(ge=0, le=10**7), NotBool]] = {}
    power_cap_w: Positive | None = None


class Prices(Strict):
    usd_per_gpu_hour: dict[str, NonNegative] = {}
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
    catalog: list[str] = []
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
