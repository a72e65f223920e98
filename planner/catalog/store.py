"""Catalogs shipped with the package (GPUs, models), user overrides, and HF config import."""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from planner.catalog.aliases import Checkpoint, checkpoint_of, gpu_id_of
from planner.catalog.hf import read_hf_config
from planner.catalog.schema import Gpu, ModelSpec
from planner.errors import InputError
from planner.yamlio import Document, load_json, load_yaml, parse_yaml

__all__ = ["Catalog", "Gpu", "ModelSpec", "model_from_hf_config"]


class _CatalogFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: int = 1
    gpus: dict[str, dict[str, Any]] = {}
    models: dict[str, dict[str, Any]] = {}


@dataclass(frozen=True)
class Catalog:
    gpus: dict[str, Gpu]
    models: dict[str, ModelSpec]

    @staticmethod
    @functools.cache
    def default() -> Catalog:
        return Catalog.load(())

    @staticmethod
    def load(overrides: tuple[str, ...] | list[str] = ()) -> Catalog:
        """The shipped catalog, with each override file merged in order.

        An override entry with a known id replaces only the fields it names; a new id adds
        an entry (and must then be complete).
        """
        raw_gpus: dict[str, tuple[dict, Document]] = {}
        raw_models: dict[str, tuple[dict, Document]] = {}
        base = resources.files("planner.catalog") / "data"
        docs = [parse_yaml((base / name).read_text(encoding="utf-8"), f"planner/catalog/data/{name}")
                for name in ("gpus.yaml", "models.yaml")]
        docs += [load_yaml(path) for path in overrides]
        for doc in docs:
            parsed = doc.validate(_CatalogFile)
            if parsed.schema_version != 1:
                raise doc.error("unsupported schema_version", ("schema_version",),
                                parsed.schema_version, "1")
            for key, store in (("gpus", raw_gpus), ("models", raw_models)):
                for ident, fields in getattr(parsed, key).items():
                    if not isinstance(fields, dict):
                        raise doc.error("expected a mapping of fields", (key, ident), fields)
                    merged = _deep_merge(store[ident][0], fields) if ident in store else copy.deepcopy(fields)
                    store[ident] = (merged, doc)
        gpus = {i: _validate(Gpu, f, doc, ("gpus", i), i) for i, (f, doc) in raw_gpus.items()}
        models = {i: _validate(ModelSpec, f, doc, ("models", i), i) for i, (f, doc) in raw_models.items()}
        return Catalog(gpus=gpus, models=models)

    def extended(self, gpus: dict[str, dict], models: dict[str, dict], doc: Document, prefix: tuple) -> Catalog:
        """This catalog with entries written inline in an input file merged in."""
        new_gpus, new_models = dict(self.gpus), dict(self.models)
        for key, cls, store, extra in (("gpus", Gpu, new_gpus, gpus), ("models", ModelSpec, new_models, models)):
            for ident, fields in extra.items():
                if not isinstance(fields, dict):
                    raise doc.error("expected a mapping of fields", prefix + (key, ident), fields)
                base = store[ident].model_dump(exclude={"id"}, exclude_none=True) if ident in store else {}
                store[ident] = _validate(cls, _deep_merge(base, fields), doc, prefix + (key, ident), ident)
        return Catalog(gpus=new_gpus, models=new_models)

    def gpu(self, ident: str, **where: object) -> Gpu:
        """A GPU by catalog id or as people type it (H100-SXM5-80GB, a100 80gb, RTX 4090)."""
        return self.gpus[self.gpu_id(ident, **where)]

    def gpu_id(self, ident: str, **where: object) -> str:
        """The catalog id a GPU name means (planner/catalog/aliases.py); InputError with the
        nearest names first when unknown or ambiguous."""
        return gpu_id_of(ident, self.gpus, **where)

    def model(self, ident: str, **where: object) -> ModelSpec:
        """A model by catalog id, Hugging Face id, alias or name (case-insensitive)."""
        return self.models[self.model_id(ident, **where)]

    def model_id(self, ident: str, **where: object) -> str:
        """The catalog id a model name means (``checkpoint``); InputError naming the nearest
        models when unknown or ambiguous."""
        return self.checkpoint(ident, **where).model_id

    def checkpoint(self, ident: str, **where: object) -> Checkpoint:
        """A model name as published (``deepseek-ai/DeepSeek-R1-0528``, ``Qwen/Qwen3-32B-FP8``,
        an id, alias or display name) -> its architecture and the format the name states or
        the entry's release format (planner/catalog/aliases.py ``checkpoint_of``)."""
        return checkpoint_of(ident, self.models, **where)


def _validate(cls: type[BaseModel], fields: dict, doc: Document, path: tuple, ident: str) -> Any:
    data = dict(fields)
    data["id"] = ident
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise doc.from_validation(exc, cls, path) from None


def _deep_merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# --- Hugging Face config.json -------------------------------------------------------

MAX_HF_CONFIG_BYTES = 4 * 1024 * 1024
"""Largest config.json read (4 MiB); real ones are a few kilobytes."""


def model_from_hf_config(path: str | Path, *, where: dict | None = None, serve_towers: bool = False) -> ModelSpec:
    """Build a ModelSpec from a Hugging Face ``config.json`` on disk (no network); the
    feature reader is planner/catalog/hf.py. ``serve_towers``: the deployment serves the
    config's vision/audio towers too, so their weights count in memory."""
    where = where or {}
    p = Path(path)
    name = str(path)
    # Infinity and NaN read as floats (transformers writes Nemotron-H's time_step_limit so):
    # every numeric field the import reads must be an integer (planner/catalog/hf.py)
    cfg = load_json(p, MAX_HF_CONFIG_BYTES, "JSON config", constants=True)
    if not isinstance(cfg, dict):
        raise InputError("config.json must hold a JSON object", file=name)
    fallback = p.stem.replace("--", "/") if p.stem != "config" else p.parent.name
    fields = read_hf_config(cfg, name, fallback, _hf_quant_config(p)).fields
    if serve_towers:
        if not fields.get("towers"):
            raise InputError("serve_towers: this config.json has no vision or audio tower of known size", file=name,
                             path=f"{where.get('path') or 'model'}.serve_towers", value=True, accepted="false")
        fields["towers"] = [t | {"served": True} for t in fields["towers"]]
        fields["notes"] = (*fields["notes"], "towers served: their weights count in memory (16 bit)")
    try:
        return ModelSpec.model_validate(fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InputError(f"config.json gives an invalid architecture: {err['msg']}", file=name,
                         path=".".join(str(x) for x in err["loc"]), value=err.get("input")) from None


def _hf_quant_config(config: Path) -> dict | None:
    """ModelOpt's ``hf_quant_config.json`` beside a config.json: in the checkpoint's folder, or
    named ``<stem>.hf_quant_config.json`` beside ``<stem>.json`` (shared/reference/hf-configs)."""
    for q in (config.parent / "hf_quant_config.json" if config.name == "config.json" else None,
              config.with_name(config.stem + ".hf_quant_config.json")):
        if q is not None and q.is_file():
            data = load_json(q, MAX_HF_CONFIG_BYTES, "JSON config")
            return data if isinstance(data, dict) else None
    return None
