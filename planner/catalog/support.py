"""Engine and hardware support: can this engine run this weight scheme and KV dtype on
this GPU, and in which mode? Data in planner/catalog/data/support.yaml, each entry with
its source; prose in docs/support.md.

- ``support(gpu, scheme, kv_dtype, engine="vllm") -> Support``: one answer. ``ok`` says
  whether it runs; ``mode`` how (``native``, or a degraded mode such as FP8 weights on
  Ampere running weight-only through Marlin); ``runs_as`` the scheme whose physics apply
  (``w8a16`` for that Ampere case, else the scheme itself); ``reason`` why not;
  ``source`` where the facts come from.
- ``support_table(gpus, schemes, kv_dtypes, engine) -> SupportTable``: the same answers
  as arrays indexed [gpu, scheme, kv] so the candidate stage can mask a configuration
  grid in one step: ``table.ok[c.gpu, c.scheme, c.kv]`` (and ``table.runs_as`` for the
  scheme index whose physics apply, -1 if it is not among ``schemes``).

A combination no entry covers is refused: the planner proposes only what a source says
runs. Pure functions of their arguments and the shipped data; no physics import.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from planner.catalog.schema import Gpu
from planner.errors import InputError
from planner.yamlio import parse_yaml

ENGINES: tuple[str, ...] = ("vllm", "sglang", "trtllm", "llama.cpp")


@dataclass(frozen=True)
class Support:
    ok: bool
    mode: str          # "native", a degraded mode ("weight-only (W8A16 through Marlin)"), or "" when refused
    reason: str        # "" when ok
    source: str        # the entries' sources, weights then KV
    runs_as: str       # scheme whose bytes and math apply (== scheme unless degraded)
    activation: str    # activation format the GEMMs run in ("" when refused)


@dataclass(frozen=True)
class _Rule:
    engines: frozenset[str] | None     # None: any engine
    keys: frozenset[str]               # schemes or KV dtypes
    archs: frozenset[str] | None       # None: any architecture
    ok: bool
    mode: str
    source: str
    runs_as: str | None = None
    activation: str = ""

    def matches(self, engine: str, key: str, arch: str) -> bool:
        return ((self.engines is None or engine in self.engines) and key in self.keys
                and (self.archs is None or arch in self.archs))


def _set(value: Any) -> frozenset[str] | None:
    if value == "*":
        return None
    return frozenset([value] if isinstance(value, str) else value)


@functools.cache
def _rules() -> tuple[tuple[_Rule, ...], tuple[_Rule, ...]]:
    text = (resources.files("planner.catalog") / "data" / "support.yaml").read_text(encoding="utf-8")
    data = parse_yaml(text, "planner/catalog/data/support.yaml").data

    def rule(e: dict, key: str) -> _Rule:
        keys = _set(e[key])
        if keys is None:
            raise ValueError(f"support.yaml: '{key}' cannot be '*'")
        return _Rule(engines=_set(e["engine"]), keys=keys, archs=_set(e["arch"]), ok=bool(e.get("ok", True)),
                     mode=str(e.get("mode", "")), source=str(e["source"]), runs_as=e.get("runs_as"),
                     activation=str(e.get("activation", "")))

    return (tuple(rule(e, "scheme") for e in data["weights"]), tuple(rule(e, "kv") for e in data["kv"]))


def _arch(gpu: Gpu) -> str:
    return gpu.architecture or "unknown"


def _first(rules: tuple[_Rule, ...], engine: str, key: str, arch: str) -> _Rule | None:
    return next((r for r in rules if r.matches(engine, key, arch)), None)


def support(gpu: Gpu, scheme: str, kv_dtype: str, engine: str = "vllm") -> Support:
    """Whether ``engine`` runs weight ``scheme`` with a ``kv_dtype`` KV cache on ``gpu``."""
    if engine not in ENGINES:
        raise InputError("unknown engine", path="engine", value=engine, accepted=", ".join(ENGINES))
    weights, kvs = _rules()
    arch = _arch(gpu)
    w = _first(weights, engine, scheme, arch)
    k = _first(kvs, engine, kv_dtype, arch)
    label = f"{gpu.id or gpu.name} ({arch})"
    sources = "; ".join(r.source for r in (w, k) if r is not None)
    if w is None or not w.ok:
        why = w.source if w is not None else "no source in planner/catalog/data/support.yaml says so"
        return Support(False, "", f"{engine} does not run {scheme} weights on {label}: {why}", sources, scheme, "")
    if k is None or not k.ok:
        why = k.source if k is not None else "no source in planner/catalog/data/support.yaml says so"
        return Support(False, "", f"{engine} does not run a KV cache in {kv_dtype} on {label}: {why}", sources,
                       scheme, "")
    mode = w.mode if not k.mode or kv_dtype in ("bf16", "fp16") else f"{w.mode}; {k.mode}"
    return Support(True, mode, "", sources, w.runs_as or scheme, w.activation)


@dataclass(frozen=True)
class SupportTable:
    """``support`` over every (gpu, scheme, kv) of three lists, as arrays [g, s, k]."""

    ok: np.ndarray          # bool
    runs_as: np.ndarray     # int: index into ``schemes`` of the scheme whose physics apply, -1 if absent
    reason: np.ndarray      # int: index into ``reasons`` ("" for ok)
    reasons: tuple[str, ...]
    degraded: np.ndarray    # bool: runs, but not natively (mode other than "native")

    def lookup(self, gpu: np.ndarray, scheme: np.ndarray, kv: np.ndarray) -> np.ndarray:
        """``ok`` per configuration row (index arrays as in planner.physics.space.Configs)."""
        return self.ok[gpu, scheme, kv]


def support_table(gpus: Sequence[Gpu], schemes: Sequence[str], kv_dtypes: Sequence[str],
                  engine: str = "vllm") -> SupportTable:
    """Vectorised ``support``: call once per problem with the physics' ``SCHEME_NAMES`` and
    ``KV_NAMES`` and index with a configuration grid's (gpu, scheme, kv) arrays."""
    shape = (len(gpus), len(schemes), len(kv_dtypes))
    ok = np.zeros(shape, dtype=bool)
    degraded = np.zeros(shape, dtype=bool)
    runs_as = np.full(shape, -1, dtype=np.int64)
    reason = np.zeros(shape, dtype=np.int64)
    reasons: dict[str, int] = {"": 0}
    index = {s: i for i, s in enumerate(schemes)}
    for g, gpu in enumerate(gpus):
        for s, scheme in enumerate(schemes):
            for k, kv in enumerate(kv_dtypes):
                r = support(gpu, scheme, kv, engine)
                ok[g, s, k] = r.ok
                degraded[g, s, k] = r.ok and not r.mode.startswith("native")
                runs_as[g, s, k] = index.get(r.runs_as, -1)
                reason[g, s, k] = reasons.setdefault(r.reason, len(reasons))
    return SupportTable(ok=ok, runs_as=runs_as, reason=reason, reasons=tuple(reasons), degraded=degraded)
