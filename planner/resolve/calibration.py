"""Calibration as the planner applies it: the fitted efficiencies and overheads of a
calibration file (global, and per GPU family as multipliers). The fitter that writes such
files lives in planner/fidelity/calibrate.py, outside the plan path."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from planner.errors import InputError
from planner.physics.options import Assumptions
from planner.yamlio import load_yaml, parse_yaml

PARAMS: tuple[tuple[str, float, float], ...] = (
    ("memory_bandwidth_efficiency", 0.3, 1.0),
    ("compute_efficiency", 0.2, 1.0),
    ("prefill_compute_efficiency", 0.2, 1.0),
    ("comm_efficiency", 0.2, 1.0),
    ("per_layer_overhead_s", 0.0, 300e-6),
    ("step_overhead_s", 0.0, 0.02),
)
FAMILY_PARAMS = ("memory_bandwidth_efficiency", "compute_efficiency", "prefill_compute_efficiency")


FAMILY = {"h100-sxm": "nvidia-hopper", "h100-pcie": "nvidia-hopper", "h200": "nvidia-hopper",
          "b200": "nvidia-blackwell", "gb200": "nvidia-blackwell", "a100-80gb": "nvidia-ampere",
          "a100-40gb": "nvidia-ampere", "rtx-3090": "nvidia-ampere", "l40s": "nvidia-ada", "rtx-4090": "nvidia-ada",
          "l4": "nvidia-ada", "mi300x": "amd-cdna3", "mi325x": "amd-cdna3", "gaudi3": "intel-gaudi"}

@dataclass
class Calibration:
    assumptions: dict[str, float]
    per_family: dict[str, dict[str, float]] = field(default_factory=dict)
    fitted_on: str = ""
    rows: int = 0
    sources: int = 0

    def for_family(self, base: Assumptions, family: str | None) -> Assumptions:
        extra = self.per_family.get(family or "", {})
        return base.model_copy(update={**self.assumptions, **extra})

    def to_yaml(self) -> str:
        return yaml.safe_dump({"schema_version": 1, "fitted_on": self.fitted_on, "rows": self.rows,
                               "sources": self.sources, "assumptions": self.assumptions,
                               "per_family": self.per_family}, sort_keys=True)


def load_calibration(name: str | None) -> Calibration | None:
    """'default' (the shipped fit), 'none', or a path to a calibration YAML file."""
    if name in (None, "none"):
        return None
    if name == "default":
        text = (resources.files("planner.catalog") / "data" / "calibration.yaml").read_text(encoding="utf-8")
        doc = parse_yaml(text, "planner/catalog/data/calibration.yaml")
    else:
        if not Path(name).is_file():
            raise InputError("calibration file not found", file=name, path="--calibration", value=name,
                             accepted="default, none, or a path written by planner calibrate")
        doc = load_yaml(name)
    data: Any = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("assumptions"), dict):
        raise doc.error("a calibration file needs an 'assumptions' mapping", ("assumptions",))
    allowed = {p[0] for p in PARAMS}
    for section, mapping in [("assumptions", data["assumptions"])] + [
            (f"per_family.{k}", v) for k, v in (data.get("per_family") or {}).items()]:
        for key, value in mapping.items():
            if key not in allowed:
                raise doc.error("unknown calibration parameter", (*section.split("."), key), key, ", ".join(sorted(allowed)))
            if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                raise doc.error("expected a finite number", (*section.split("."), key), value)
    Assumptions.model_validate(Assumptions().model_dump() | data["assumptions"])   # bounds
    return Calibration(assumptions=data["assumptions"], per_family=data.get("per_family") or {},
                       fitted_on=str(data.get("fitted_on", "")), rows=int(data.get("rows", 0)),
                       sources=int(data.get("sources", 0)))


def apply(cal: Calibration | None, base: Assumptions, gpu_ids: list[str]
          ) -> tuple[Assumptions, dict[str, tuple[float, float, float]]]:
    """Assumptions with the global fit, and per-GPU multipliers for the per-family fits."""
    if cal is None:
        return base, {}
    o = base.model_copy(update=cal.assumptions)
    scales = {}
    for gid in gpu_ids:
        fam = cal.per_family.get(FAMILY.get(gid, ""), {})
        if fam:
            scales[gid] = tuple(fam.get(k, getattr(o, k)) / getattr(o, k) for k in FAMILY_PARAMS)
    return o, scales


def calibrated(assumptions: Assumptions, user: dict[str, Any], calibration: str | None, gpu_ids: list[str]
               ) -> tuple[Assumptions, dict[str, tuple[float, float, float]]]:
    """Preset, then the calibration's fitted values, then what the input file sets itself."""
    o, scales = apply(load_calibration(calibration), assumptions, gpu_ids)
    return (o.model_copy(update=user) if user else o), scales
