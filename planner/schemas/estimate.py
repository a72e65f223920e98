"""The input schema of `planner estimate`: one fixed configuration (docs/instances.md)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from planner.catalog.schema import NotBool
from planner.schemas.common import CatalogExtras, Distinct, ModelRef, Price, Strict, Tco
from planner.yamlio import Document, load_yaml

Count = Annotated[int, Field(ge=1, le=100_000), NotBool]
Tokens = Annotated[int, Field(ge=1, le=100_000_000), NotBool]


class EstimateSpec(Strict):
    """An estimate file: one configuration (docs/instances.md)."""

    schema_version: int = 1
    model: ModelRef | None = None
    gpu: str | None = None
    tp: Count = 1
    pp: Count = 1
    ep: Count = 1
    quantization: str = "w16a16"
    kv_dtype: str = "bf16"
    batch: Count = 1
    input_tokens: Tokens = 1024
    output_tokens: Tokens = 256
    preset: str = "realistic"
    assumptions: dict[str, Any] = {}
    catalog: Annotated[list[str], Distinct] = []
    extra_catalog: CatalogExtras | None = Field(None, description="GPUs/models defined inline")
    price_usd_per_gpu_hour: Price | None = Field(None, description="at most 1e4 $/GPU-hour")
    tco: Tco | None = None
    concurrency: Annotated[int, Field(ge=1, le=1_000_000), NotBool] | None = Field(
        None, description="closed loop: figures under load with N clients per replica (docs/load.md)")
    requests_per_s: Annotated[float, Field(gt=0, le=1e7, allow_inf_nan=False), NotBool] | None = Field(
        None, description="open loop (Poisson): figures under load at this rate per replica")

    @model_validator(mode="after")
    def _one_load(self) -> EstimateSpec:
        if self.concurrency is not None and self.requests_per_s is not None:
            raise ValueError("give concurrency or requests_per_s, not both")
        return self


def load_estimate_spec(path: str) -> tuple[EstimateSpec, Document]:
    doc = load_yaml(path)
    return estimate_spec_of(doc), doc


def estimate_spec_of(doc: Document) -> EstimateSpec:
    """The estimate spec in a loaded document (a file, or a mapping given to planner.api)."""
    doc.require_mapping("an estimate file")
    return doc.validate(EstimateSpec)
