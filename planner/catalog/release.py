"""A checkpoint's release format, read from what it ships: the ``quantization_config`` (or
``compression_config``) of its ``config.json`` and ModelOpt's ``hf_quant_config.json``.

    release_format(cfg, hf_quant=None, present=present_classes(fields)) -> ReleaseFormat | None

The reader sets a precision per module class (attention, state-space mixer, dense MLP, shared
experts, routed experts; router, embeddings, LM head and norms stay 16-bit in every format)
from what the files say is quantized and what they leave out (``modules_to_not_convert``,
``ignore``, ``exclude_modules``, ModelOpt's per-layer ``quantized_layers``), then names the
planner weight scheme (planner/physics/quant.py) that models it:

- every linear class in one format -> that format's scheme (FP8 block or per tensor ->
  ``w8a8-fp8``; NVFP4 -> ``fp4``; MXFP4 -> ``mxfp4``; AWQ / GPTQ 4-bit -> ``w4a16``; ...);
- only the routed experts quantized, attention and the rest 16-bit -> the ``-experts`` scheme of
  the format (``mxfp4-experts``: the gpt-oss release; ``fp4-experts``: NVIDIA's NVFP4 MoE
  releases);
- anything else (some classes in another format, some layers left whole) -> the scheme of the
  format that holds most weights (the routed experts of a MoE, the MLP of a dense model), with
  a note naming what the checkpoint keeps otherwise: the figures count it at that scheme's bits.

Methods read: ``fp8`` (block or per-tensor FP8), ``compressed-tensors`` (config groups of
weights and input activations), ``mxfp4``, ``awq``, ``gptq``, ``bitsandbytes``, ``modelopt``
(FP8, NVFP4, W4A8_AWQ, MIXED_PRECISION). Pure functions of the parsed JSON; no physics import.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

LINEAR = ("attention", "mixer", "dense_mlp", "shared_experts", "routed_experts")
"""Module classes whose weights a format quantizes (the physics counts attention, mixer, dense
MLP and shared experts as the layer weights, routed experts apart)."""

SIXTEEN = "16-bit"

FORMAT_SCHEME = {"fp8": "w8a8-fp8", "mxfp8": "w8a8-fp8", "nvfp4": "fp4", "mxfp4": "mxfp4", "int4": "w4a16",
                 "nvfp4-weight-only": "w4a16", "int8-weight-only": "w8a16", "fp8-weight-only": "w8a16",
                 "int8": "w8a8-int8", "w4a8": "w4a8", "nf4": "w4a16", SIXTEEN: "w16a16"}
"""Format word -> the planner scheme that models its bytes and math."""

APPROXIMATE = {"mxfp8": "MXFP8 (8 bits + one 8-bit scale per 32) counted as FP8 (8 bits)",
               "nvfp4-weight-only": "NVFP4 weight-only (4.5 bits, 16-bit math) counted as W4A16 (4.16 bits)",
               "nf4": "bitsandbytes NF4 (4 bits + block-64 scales) counted as W4A16 (4.16 bits)"}

EXPERTS_SCHEME = {"mxfp4": "mxfp4-experts", "nvfp4": "fp4-experts"}
"""Formats whose experts-only release has a scheme of its own (routed experts in the format,
every other weight 16-bit)."""


@dataclass(frozen=True)
class ReleaseFormat:
    """What a checkpoint stores, per module class, and the scheme that models it."""

    scheme: str
    method: str                                    # the quant_method / producer read
    modules: dict[str, str] = field(default_factory=dict)    # class -> format word ("16-bit" when left out)
    partial: dict[str, str] = field(default_factory=dict)    # class -> what is mixed within it
    kv_dtype: str | None = None                    # the KV format the checkpoint's scales are for
    notes: tuple[str, ...] = ()
    source: str = ""

    def describe(self) -> str:
        """One line: ``routed experts NVFP4; attention, shared experts 16-bit``."""
        by: dict[str, list[str]] = {}
        for c in LINEAR:
            if c in self.modules:
                by.setdefault(self.modules[c], []).append(c.replace("_", " "))
        return "; ".join(f"{', '.join(cs)} {fmt.upper() if fmt != SIXTEEN else fmt}" for fmt, cs in by.items())


# --- module names -> classes --------------------------------------------------------------

_CLASS_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("vision", re.compile(r"vision|visual|mm_projector|multi_modal_projector|patch_merge|embed_vision|audio")),
    ("mtp", re.compile(r"(^|\.)mtp")),
    ("lm_head", re.compile(r"lm_head|(^|\.)head$")),
    ("embeddings", re.compile(r"embed")),
    ("norm", re.compile(r"norm|e_score_correction_bias|convnd|conv1d")),
    ("router", re.compile(r"(mlp|moe|ffn|mixer)\.(gate|router)(\.|$|\*)|\.router|shared_expert_gate")),
    ("shared_experts", re.compile(r"shared_expert")),
    ("routed_experts", re.compile(r"experts|\.w1$|\.w2$|\.w3$")),
    ("attention", re.compile(r"attn|attention|indexer|\.(q|k|v|o|qkv|q_a|q_b|kv_a|kv_b)_proj|\.wq|\.wkv|"
                             r"kv_a_proj_with_mqa|index_[qk]_proj")),
    ("mixer", re.compile(r"mixer\.(in_proj|out_proj)|mamba|ssm")),
    ("dense_mlp", re.compile(r"mlp|ffn|feed_forward|(gate|up|down)_proj")),
)

_LAYER = re.compile(r"layers\.(\d+)")
_WHOLE = re.compile(r"(attn|attention|experts?|mlp|ffn|mixer|router|gate)(\*|\.\*|\.\*\.?\*?|\.\*\.|\*\.)?$")
"""A pattern that names a whole module (``self_attn*``, ``re:.*shared_experts.*``), not one of
its projections (``self_attn.q_a_proj``)."""


def module_class(name: str) -> str | None:
    """The class of one module name or pattern (``model.layers.3.self_attn.q_proj`` ->
    ``attention``; ``re:.*shared_experts.*`` -> ``shared_experts``); None for a whole layer
    (``model.layers.0*``) or a name that says nothing of its class."""
    s = name.lower().removeprefix("re:")
    if "linear_attn" in s:                 # Gated DeltaNet layers (Qwen3.5): the state-space mixer
        return "mixer"
    for cls, pattern in _CLASS_PATTERNS:
        if pattern.search(s):
            return cls
    return None


def _layer_of(name: str) -> int | None:
    m = _LAYER.search(name)
    return int(m.group(1)) if m else None


@dataclass
class _Coverage:
    """What exclusion patterns leave 16-bit: per class, the layers named whole (None: every
    layer), the projections named one by one, and the layers named whole."""

    whole: dict[str, set[int] | None] = field(default_factory=dict)
    projections: dict[str, dict[str, set[int]]] = field(default_factory=dict)
    layers: set[int] = field(default_factory=set)

    def add(self, name: str, classes: Iterable[str]) -> None:
        cls = module_class(name)
        layer = _layer_of(name)
        s = name.lower().removeprefix("re:").rstrip("$")
        if cls is None:
            if layer is not None and re.search(rf"layers\.{layer}(\*|\.\*|\.?$)", s):
                self.layers.add(layer)
            return
        targets = [cls] + (["mixer"] if cls == "attention" and layer is None and "linear" not in s else [])
        for c in targets:
            if c not in classes:
                continue
            several = "|" in s          # re:.*mlp\.(gate|up|down)_proj.*: every projection, the whole module
            if several or (_WHOLE.search(s.replace(".*", "*").rstrip("*").rstrip(".") + "*") and not re.search(
                    r"_proj|\.w[a-z0-9]*$|norm", s)):
                if layer is None:
                    self.whole[c] = None
                elif self.whole.get(c, set()) is not None:
                    self.whole.setdefault(c, set()).add(layer)      # type: ignore[union-attr]
            else:
                proj = re.sub(r"^.*\.", "", s.rstrip("*").rstrip("."))
                self.projections.setdefault(c, {}).setdefault(proj, set()).add(-1 if layer is None else layer)

    def share(self, cls: str, n_layers: int, indices: frozenset[int] | None,
              num_layers: int | None) -> tuple[str, str]:
        """('all' | 'some' | 'none', what is left 16-bit in words) for one class held by
        ``n_layers`` layers (``indices``: which, where known). Layers past ``num_layers`` are
        multi-token-prediction modules, not counted."""
        whole = self.whole.get(cls, set())
        if whole is None:
            return "all", ""
        named = {i for i in whole | self.layers if num_layers is None or i < num_layers}
        if indices is not None:
            named &= indices
        if named and (indices is not None and named >= indices or len(named) >= n_layers > 0):
            return "all", ""
        parts = []
        if named:
            parts.append(f"{len(named)} layer(s) keep it 16-bit")
        projs = {p: {i for i in v if i < 0 or num_layers is None or i < num_layers}
                 for p, v in self.projections.get(cls, {}).items()}
        projs = {p: v for p, v in projs.items() if v}
        if projs:
            n = max(len(v) for v in projs.values())
            parts.append("16-bit projections " + ", ".join(sorted(projs))
                         + (" in every layer" if any(-1 in v for v in projs.values()) else f" in {n} layer(s)"))
        return ("some" if parts else "none"), "; ".join(parts)


# --- the formats each producer writes -----------------------------------------------------

def _ct_format(group: dict) -> str | None:
    """A compressed-tensors config group -> format word."""
    w = group.get("weights") or {}
    a = group.get("input_activations")
    bits, typ = w.get("num_bits"), w.get("type", "int")
    if bits is None:
        return None
    gsize = w.get("group_size")
    fmt = str(group.get("format") or "")
    if typ == "float" and bits == 8:
        return "fp8" if a else "fp8-weight-only"
    if typ == "float" and bits == 4:
        if "mxfp4" in fmt or gsize == 32:
            return "mxfp4"
        return "nvfp4" if a else "nvfp4-weight-only"
    if typ == "int" and bits == 8:
        return "int8" if a else "int8-weight-only"
    if typ == "int" and bits == 4:
        return "w4a8" if a and a.get("type") == "float" else ("int4" if not a else None)
    return None


_MODELOPT = {"FP8": "fp8", "FP8_BLOCK": "fp8", "FP8_PB_WO": "fp8-weight-only", "NVFP4": "nvfp4",
             "W4A16_NVFP4": "nvfp4-weight-only", "MXFP8": "mxfp8", "MXFP4": "mxfp4", "W4A8_AWQ": "w4a8",
             "W4A16_AWQ": "int4", "INT4_AWQ": "int4", "W8A8_SQ_PER_CHANNEL": "int8", "INT8_SQ": "int8",
             "NVFP4_AWQ": "nvfp4"}


def _modelopt(q: dict) -> tuple[str | None, dict[str, str], list[str], list[str]]:
    """ModelOpt's ``quantization`` block -> (global format, class -> format from quantized_layers,
    excluded patterns, notes)."""
    notes: list[str] = []
    algo = str(q.get("quant_algo") or "")
    per: dict[str, list[str]] = {}
    for name, spec in (q.get("quantized_layers") or {}).items():
        cls = module_class(name)
        fmt = _MODELOPT.get(str((spec or {}).get("quant_algo") or ""))
        if cls in LINEAR and fmt:
            per.setdefault(cls, []).append(fmt)
        elif cls in ("lm_head",) and fmt:
            notes.append(f"the LM head is stored in {fmt.upper()} (the planner counts it at 16 bits)")
    classes: dict[str, str] = {}
    for cls, fmts in per.items():
        top = max(set(fmts), key=fmts.count)
        classes[cls] = top
        if len(set(fmts)) > 1:
            notes.append(f"{cls.replace('_', ' ')}: " + ", ".join(sorted(set(fmts))) + f" by layer (counted as {top})")
    fmt = None if algo == "MIXED_PRECISION" else _MODELOPT.get(algo)
    if algo and algo != "MIXED_PRECISION" and fmt is None:
        notes.append(f"ModelOpt quant_algo {algo!r} is not one the planner models")
    return fmt, classes, list(q.get("exclude_modules") or []), notes


def _kv(value: Any) -> str | None:
    v = str(value or "").lower()
    return "fp8" if v.startswith("fp8") else None


def present_classes(fields: dict[str, Any]) -> dict[str, tuple[int, frozenset[int] | None]]:
    """The linear module classes an architecture has: per class, how many layers hold it and
    which (Hugging Face layer numbers; None where the import does not keep the order, as for
    a hybrid model's attention and mixer layers), from its ModelSpec fields."""
    moe = fields.get("moe") or {}
    n = int(fields.get("num_layers") or 0)
    groups = fields.get("layer_groups") or ()
    mixer = sum(g.get("count", 0) for g in groups if g.get("kind") == "state_space")
    no_ffn = sum(g.get("count", 0) for g in groups if g.get("ffn") is False)
    ffn = n - no_ffn
    ordered = not mixer and not no_ffn
    if moe:
        first, step = int(moe.get("first_dense_layers") or 0), int(moe.get("moe_layer_step") or 1)
        moe_idx = frozenset(i for i in range(first, n) if (i - first + 1) % step == 0)
        dense_idx = frozenset(range(n)) - moe_idx
        moe_n = (ffn - first) // step
    else:
        moe_idx, dense_idx, moe_n = frozenset(), frozenset(range(n)), 0
    out: dict[str, tuple[int, frozenset[int] | None]] = {
        "attention": (n - mixer, frozenset(range(n)) if not mixer else None),
        "mixer": (mixer, None),
        "dense_mlp": (ffn - moe_n, dense_idx if ordered else None),
        "shared_experts": (moe_n if moe.get("num_shared_experts") else 0, moe_idx if ordered else None),
        "routed_experts": (moe_n, moe_idx if ordered else None)}
    return {c: v for c, v in out.items() if v[0] > 0}


def release_format(cfg: dict[str, Any], hf_quant: dict[str, Any] | None = None, *,
                   present: dict[str, tuple[int, frozenset[int] | None]] | None = None,
                   source: str = "config.json") -> ReleaseFormat | None:
    """The release format a checkpoint's files state, or None for a 16-bit checkpoint.
    ``present`` (``present_classes``): the classes the architecture has and their layer counts,
    so that a class the model lacks is neither reported nor counted."""
    present = present if present is not None else {c: (0, None) for c in LINEAR}
    num_layers = max((max(ix) + 1 for _, ix in present.values() if ix), default=None)
    text: dict[str, Any] = next((cfg[k] for k in ("text_config", "llm_config", "language_config")
                                 if isinstance(cfg.get(k), dict)), {})
    qc = cfg.get("quantization_config") or cfg.get("compression_config") or text.get("quantization_config")
    notes: list[str] = []
    classes: dict[str, str] = {}
    excluded: list[str] = []
    fmt: str | None = None
    kv: str | None = None
    if isinstance(hf_quant, dict) and isinstance(hf_quant.get("quantization"), dict):
        fmt, classes, excluded, notes = _modelopt(hf_quant["quantization"])
        kv = _kv(hf_quant["quantization"].get("kv_cache_quant_algo"))
        method = "modelopt"
        src = f"{source} and hf_quant_config.json (ModelOpt {hf_quant['quantization'].get('quant_algo')})"
    elif isinstance(qc, dict):
        method = str(qc.get("quant_method") or ("modelopt" if "quant_algo" in qc else "")
                     or ("compressed-tensors" if "config_groups" in qc else ""))
        src = f"{source} quantization_config (quant_method {method or 'unstated'})"
        if "quant_algo" in qc and ("config_groups" not in qc or qc.get("quant_algo") == "MIXED_PRECISION"):
            fmt, classes, excluded, notes = _modelopt(qc)
            kv = _kv(qc.get("kv_cache_quant_algo"))
            method = "modelopt"
        elif "config_groups" in qc:
            groups = [g for g in (qc.get("config_groups") or {}).values() if isinstance(g, dict)]
            fmts = [f for f in map(_ct_format, groups) if f]
            targeted = [t for g in groups for t in (g.get("targets") or []) if t != "Linear"]
            if targeted:            # groups that name their modules: each class gets its group's format
                for g in groups:
                    f = _ct_format(g)
                    for t in g.get("targets") or []:
                        cls = module_class(t)
                        if f and cls in LINEAR:
                            classes.setdefault(cls, f)
            fmt = None if targeted else (fmts[0] if fmts else None)
            if len(set(fmts)) > 1 and not targeted:
                notes.append("config groups in " + ", ".join(sorted(set(fmts))) + f" (counted as {fmts[0]})")
            excluded = list(qc.get("ignore") or [])
            kv = _kv(qc.get("kv_cache_scheme") if not isinstance(qc.get("kv_cache_scheme"), dict)
                     else ("fp8" if (qc["kv_cache_scheme"].get("type") == "float"
                                     and qc["kv_cache_scheme"].get("num_bits") == 8) else None))
            method = "compressed-tensors"
        elif method == "fp8":
            fmt = "fp8"
            block = qc.get("weight_block_size")
            notes.append("FP8 e4m3 weights" + (f", {block[0]} x {block[1]} blocks" if block else "")
                         + f", {qc.get('activation_scheme', 'dynamic')} activation scales")
            excluded = list(qc.get("modules_to_not_convert") or qc.get("ignored_layers") or [])
        elif method == "mxfp4":
            fmt = "mxfp4"
            excluded = list(qc.get("modules_to_not_convert") or [])
        elif method in ("awq", "gptq", "awq_marlin", "gptq_marlin", "auto-round"):
            bits = qc.get("bits") or qc.get("w_bit") or 4
            fmt = {4: "int4", 8: "int8-weight-only"}.get(int(bits))
            if fmt is None:
                notes.append(f"{method} {bits}-bit weights are not a format the planner models")
            excluded = list(qc.get("modules_to_not_convert") or [])
        elif method == "bitsandbytes":
            fmt = "nf4" if qc.get("load_in_4bit") else ("int8-weight-only" if qc.get("load_in_8bit") else None)
            excluded = list(qc.get("llm_int8_skip_modules") or [])
        else:
            return ReleaseFormat(scheme="", method=method or "unknown", source=src,
                                 notes=(f"quantization method {method or 'unstated'!r} is not one the planner "
                                        "reads (fp8, compressed-tensors, mxfp4, awq, gptq, bitsandbytes, modelopt)",))
    else:
        return None
    cov = _Coverage()
    for name in excluded:
        cov.add(name, present)
    modules: dict[str, str] = {}
    partial: dict[str, str] = {}
    for c, (n_layers, indices) in present.items():
        stored = classes.get(c, fmt if not classes or fmt else None) or SIXTEEN
        share, what = cov.share(c, n_layers, indices, num_layers)
        if share == "all":
            stored = SIXTEEN
        elif share == "some" and stored != SIXTEEN:
            partial[c] = what
        modules[c] = stored
    scheme = _scheme(modules, notes, partial)
    kv_note = f"KV-cache scales for {kv.upper()}" if kv else ""
    if kv_note:
        notes.append(kv_note)
    return ReleaseFormat(scheme=scheme, method=method, modules=modules, partial=partial, kv_dtype=kv,
                         notes=tuple(notes), source=src)


def _scheme(modules: dict[str, str], notes: list[str], partial: dict[str, str]) -> str:
    """The planner scheme that models ``modules`` (module docstring), noting what it rounds."""
    quantized = {c: f for c, f in modules.items() if f != SIXTEEN}
    if not quantized:
        return "w16a16"
    routed = modules.get("routed_experts")
    if routed and routed != SIXTEEN and set(quantized) == {"routed_experts"} and routed in EXPERTS_SCHEME:
        scheme = EXPERTS_SCHEME[routed]
        if partial.get("routed_experts"):
            notes.append(f"routed experts: {partial['routed_experts']} (counted as {scheme})")
        return scheme
    main = routed if routed and routed != SIXTEEN else (modules.get("dense_mlp") or next(iter(quantized.values())))
    if main == SIXTEEN:
        main = next(iter(quantized.values()))
    scheme = FORMAT_SCHEME[main]
    other = {c: f for c, f in modules.items() if f != main}
    if other:
        notes.append(f"counted as {scheme} on every layer weight; the checkpoint keeps "
                     + ", ".join(f"{c.replace('_', ' ')} in {f if f == SIXTEEN else f.upper()}"
                                 for c, f in other.items()))
    for c, what in partial.items():
        notes.append(f"{c.replace('_', ' ')}: {what} (counted as {scheme})")
    if main in APPROXIMATE:
        notes.append(APPROXIMATE[main])
    return scheme
