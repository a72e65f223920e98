"""Calibration as the planner applies it: the fitted efficiencies and overheads of a
calibration file (global, and per GPU family as multipliers). A GPU's family is the
``family`` field of its catalog entry (planner/catalog/data/gpus.yaml, or an override
file): a new GPU of a known family gets that family's fit with no code to edit, and one
without a family (or of a family the file has no fit for) gets the global fit, and says
so. The fitter that writes such files lives in planner/fidelity/calibrate.py, outside the
plan path."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from planner.catalog.schema import Gpu
from planner.catalog.store import Catalog
from planner.errors import InputError
from planner.physics.options import Assumptions
from planner.yamlio import Document, load_yaml, parse_yaml

PARAMS: tuple[tuple[str, float, float], ...] = (
    ("memory_bandwidth_efficiency", 0.3, 0.92),  # fit bound: no HBM or GDDR6X sustains more (issue 10)
    ("compute_efficiency", 0.2, 1.0),
    ("prefill_compute_efficiency", 0.2, 1.0),
    ("comm_efficiency", 0.2, 1.0),
    ("per_layer_overhead_s", 0.0, 300e-6),
    ("step_overhead_s", 0.0, 0.02),
)
FAMILY_PARAMS = ("memory_bandwidth_efficiency", "compute_efficiency", "prefill_compute_efficiency")


def family_of(gpu: Gpu | str) -> str | None:
    """The calibration family of a GPU entry, or of a shipped catalog id (a fleet pool's
    copy ``h100-sxm@us-east`` is its GPU's); None when the entry names none."""
    if isinstance(gpu, Gpu):
        return gpu.family
    return shipped_families().get(gpu.split("@", 1)[0])


def shipped_families() -> dict[str, str]:
    """Catalog id -> family of every shipped GPU that names one."""
    return {i: g.family for i, g in Catalog.default().gpus.items() if g.family}


def __getattr__(name: str) -> Any:
    """``FAMILY`` (id -> family) and ``FAMILIES`` (the set), read from the shipped catalog
    when first asked for: the family table is data (gpus.yaml), not code."""
    if name == "FAMILY":
        return shipped_families()
    if name == "FAMILIES":
        return frozenset(shipped_families().values())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class Calibration:
    assumptions: dict[str, float]
    per_family: dict[str, dict[str, float]] = field(default_factory=dict)
    fitted_on: str = ""
    rows: int = 0
    sources: int = 0

    def values(self, family: str | None) -> dict[str, float]:
        """The fitted values for GPUs of ``family``: the global fit, then the family's."""
        return {**self.assumptions, **self.per_family.get(family or "", {})}

    def to_yaml(self) -> str:
        return yaml.safe_dump({"schema_version": 1, "fitted_on": self.fitted_on, "rows": self.rows,
                               "sources": self.sources, "assumptions": self.assumptions,
                               "per_family": self.per_family}, sort_keys=True)


def load_calibration(name: str | None, families: frozenset[str] | set[str] = frozenset()) -> Calibration | None:
    """'default' (the shipped fit), 'none', or a path to a calibration YAML file. Its
    per_family keys must be families of the shipped catalog or of ``families`` (the
    families of the GPUs in use, override entries included)."""
    if name in (None, "none"):
        return None
    if name == "default":
        text = (resources.files("planner.catalog") / "data" / "calibration.yaml").read_text(encoding="utf-8")
        doc = parse_yaml(text, "planner/catalog/data/calibration.yaml")
    else:
        if not Path(name).is_file():
            what = "is not a regular file" if Path(name).exists() else "not found"
            raise InputError(f"calibration file {what}", file=name, path="--calibration", value=name,
                             accepted="default, none, or a path written by planner calibrate")
        doc = load_yaml(name)
    data: Any = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("assumptions"), dict):
        raise doc.error("a calibration file needs an 'assumptions' mapping", ("assumptions",))
    keys = {"schema_version", "fitted_on", "rows", "sources", "assumptions", "per_family"}
    for key in data:
        if key not in keys:
            raise doc.error("unknown key", (key,), key, ", ".join(sorted(keys)))
    per_family = data.get("per_family") or {}
    if not isinstance(per_family, dict):
        raise doc.error("per_family must map a GPU family to its parameters", ("per_family",))
    sections: list[tuple[tuple, Any]] = [(("assumptions",), data["assumptions"])]
    known = set(shipped_families().values()) | set(families)
    for fam, mapping in per_family.items():
        if fam not in known:
            raise doc.error("unknown GPU family", ("per_family", fam), fam, ", ".join(sorted(known)))
        if not isinstance(mapping, dict):
            raise doc.error("expected a mapping of parameters", ("per_family", fam))
        sections.append((("per_family", fam), mapping))
    for section, mapping in sections:
        for key, value in mapping.items():
            check_parameter(doc, section + (key,), key, value)
    for key in ("rows", "sources"):
        value = data.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10**9:
            raise doc.error("expected a count", (key,), value, "an integer 0..1e9")
    return Calibration(assumptions=dict(data["assumptions"]), per_family={k: dict(v) for k, v in per_family.items()},
                       fitted_on=str(data.get("fitted_on", "")), rows=data.get("rows", 0),
                       sources=data.get("sources", 0))


RANGES: dict[str, tuple[float, float, bool, str]] = {
    # name: (low, high, low is exclusive, as written in errors)
    "memory_bandwidth_efficiency": (0.0, 1.0, True, "0 < value <= 1 (a fraction of the peak)"),
    "compute_efficiency": (0.0, 1.0, True, "0 < value <= 1 (a fraction of the peak)"),
    "prefill_compute_efficiency": (0.0, 1.0, True, "0 < value <= 1 (a fraction of the peak)"),
    "comm_efficiency": (0.0, 1.0, True, "0 < value <= 1 (a fraction of the peak)"),
    "per_layer_overhead_s": (0.0, 0.01, False, "0 <= value <= 0.01 (seconds per layer)"),
    "step_overhead_s": (0.0, 1.0, False, "0 <= value <= 1 (seconds per step)"),
}
"""What a calibrated value may be: an efficiency is a fraction of a peak, in (0, 1]."""


def check_parameter(doc: Document, path: tuple, key: object, value: object) -> None:
    if key not in RANGES:
        raise doc.error("unknown calibration parameter", path, key, ", ".join(sorted(RANGES)))
    lo, hi, open_low, accepted = RANGES[key]
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise doc.error("expected a finite number", path, value, accepted)
    if value > hi or value < lo or (open_low and value == lo):
        raise doc.error("calibrated value out of range", path, value, accepted)


def apply(cal: Calibration | None, base: Assumptions, gpus: list[Gpu]
          ) -> tuple[Assumptions, dict[str, tuple[float, float, float]], list[str]]:
    """Assumptions with the global fit, per-GPU multipliers for the per-family fits, and a
    note for each GPU that gets the global fit only (no family, or none fitted)."""
    if cal is None:
        return base, {}, []
    o = base.model_copy(update=cal.assumptions)
    scales, notes = {}, []
    for g in gpus:
        fam = cal.per_family.get(g.family or "", {})
        if fam:
            scales[g.id] = tuple(fam.get(k, getattr(o, k)) / getattr(o, k) for k in FAMILY_PARAMS)
        elif cal.per_family:
            why = (f"its family {g.family!r} has no fit in the calibration" if g.family
                   else "its catalog entry names no family")
            notes.append(f"{g.id}: the calibration's global fit only ({why})")
    return o, scales, notes


def calibrated(assumptions: Assumptions, user: dict[str, Any], calibration: str | None, gpus: list[Gpu]
               ) -> tuple[Assumptions, dict[str, tuple[float, float, float]], list[str]]:
    """Preset, then the calibration's fitted values, then what the input file sets itself;
    and the notes of GPUs calibrated by the global fit only."""
    families = {g.family for g in gpus if g.family}
    o, scales, notes = apply(load_calibration(calibration, families), assumptions, gpus)
    return (o.model_copy(update=user) if user else o), scales, notes
