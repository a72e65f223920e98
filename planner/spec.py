"""Spec pieces shared by every input file: model references, catalog overrides, prices.

A model is a catalog id, ``{hf_config: path}`` (relative to the YAML file), or an
inline architecture. Prices come from the catalog, a per-GPU override, or a total cost
of ownership (docs/model.md section 8).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from planner.catalog import Catalog, ModelSpec, model_from_hf_config
from planner.catalog.schema import Gpu, NonNegative, NotBool, Positive, PositiveInt
from planner.errors import InputError, MissingDataError
from planner.physics.options import PRESETS, Assumptions
from planner.units import HOURS_PER_MONTH, HOURS_PER_YEAR
from planner.yamlio import Document


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HfConfigRef(Strict):
    hf_config: str = Field(description="path to a Hugging Face config.json, relative to this file")


ModelRef = str | HfConfigRef | ModelSpec


class Tco(Strict):
    """Total cost of ownership of one node, turned into $/GPU-hour."""

    capex_usd_per_node: Positive
    years: Annotated[float, Field(gt=0, le=50, allow_inf_nan=False), NotBool]
    node_power_kw: Positive | None = Field(None, description="default: GPUs per node x GPU TDP")
    usd_per_kwh: NonNegative
    pue: Annotated[float, Field(ge=1, le=5, allow_inf_nan=False), NotBool] = 1.0
    hosting_usd_per_node_month: NonNegative = 0.0
    gpus_per_node: PositiveInt | None = Field(None, description="default: the GPU's catalog node size")

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
        capex = self.capex_usd_per_node / (self.years * HOURS_PER_YEAR)
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


def resolve_catalog(files: list[str], base: Path | None) -> Catalog:
    if not files:
        return Catalog.default()
    paths = [str((base / f) if base and not Path(f).is_absolute() else f) for f in files]
    return Catalog.load(tuple(paths))


def resolve_model(ref: ModelRef, catalog: Catalog, doc: Document | None, path: tuple) -> ModelSpec:
    where = {"file": doc.file if doc else None, "path": ".".join(map(str, path)) or None}
    if isinstance(ref, str):
        return catalog.model(ref, **where)
    if isinstance(ref, HfConfigRef):
        base = Path(doc.file).parent if doc else Path.cwd()
        target = Path(ref.hf_config)
        target = target if target.is_absolute() else base / target
        if not target.is_file():
            raise InputError("hf_config file not found", file=where["file"], path=f"{where['path']}.hf_config",
                             value=str(target), accepted="a path to a config.json, relative to this file")
        return model_from_hf_config(target)
    return ref


def resolve_assumptions(preset: str, overrides: dict[str, Any] | None, doc: Document | None, path: tuple) -> Assumptions:
    if preset not in PRESETS:
        raise InputError("unknown preset", file=doc.file if doc else None, path=".".join(path[:-1] + ("preset",)) or "preset",
                         value=preset, accepted=", ".join(PRESETS))
    base = PRESETS[preset]
    if not overrides:
        return base
    merged = base.model_dump() | overrides
    if doc is not None:
        return doc.validate(Assumptions, merged, path)
    return Assumptions.model_validate(merged)


def price_overrides(catalog: Catalog, gpu_ids: list[str], tco: Tco | None,
                    per_gpu: dict[str, float] | None) -> dict[str, float]:
    """$/GPU-hour per GPU id: explicit override, else TCO, else the catalog's price."""
    out: dict[str, float] = {}
    for gid in gpu_ids:
        if per_gpu and gid in per_gpu:
            out[gid] = per_gpu[gid]
        elif tco is not None:
            out[gid] = tco.usd_per_gpu_hour(catalog.gpus[gid])
    return out
