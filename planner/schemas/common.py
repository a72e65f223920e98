"""Schema pieces shared by every input file: model references, catalog overrides, prices.

A model is a catalog id, ``{hf_config: path}`` (relative to the YAML file), or an
inline architecture. Prices come from the catalog, a per-GPU override, or a total cost
of ownership (docs/model.md section 8).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from planner.catalog.schema import Gpu, NotBool
from planner.catalog.store import ModelSpec
from planner.errors import MissingDataError
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
    """Total cost of ownership of one node, turned into $/GPU-hour."""

    capex_usd_per_node: Annotated[float, Field(gt=0, le=1e8, allow_inf_nan=False), NotBool]
    years: Annotated[float, Field(ge=0.25, le=50, allow_inf_nan=False), NotBool]
    node_power_kw: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False), NotBool] | None = Field(
        None, description="default: GPUs per node x GPU TDP")
    usd_per_kwh: Annotated[float, Field(ge=0, le=10, allow_inf_nan=False), NotBool]
    pue: Annotated[float, Field(ge=1, le=5, allow_inf_nan=False), NotBool] = 1.0
    hosting_usd_per_node_month: Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False), NotBool] = 0.0
    gpus_per_node: Annotated[int, Field(ge=1, le=1024), NotBool] | None = Field(
        None, description="default: the GPU's catalog node size")

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
