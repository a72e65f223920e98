"""The input schema of `planner estimate`: one fixed configuration (docs/instances.md)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from planner.catalog.schema import NotBool
from planner.errors import InputError
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


def load_estimate_spec(path: str) -> tuple[EstimateSpec, Document]:
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise InputError("an estimate file must be a YAML mapping", file=path)
    return doc.validate(EstimateSpec), doc
