"""Schema pieces shared by every input file: model references, catalog overrides, prices.

A model is a catalog id, ``{hf_config: path}`` (relative to the YAML file), or an
inline architecture. Prices come from the catalog, a per-GPU override, or a total cost
of ownership (docs/model.md section 8).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from planner.catalog import ModelSpec
from planner.catalog.schema import Gpu, NonNegative, NotBool, Positive, PositiveInt
from planner.errors import MissingDataError
from planner.units import HOURS_PER_MONTH, HOURS_PER_YEAR


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
