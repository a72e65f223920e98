"""Names as people type them: precision aliases -> schemes, GPU spellings -> catalog ids.

Pure functions over strings; no physics import (the catalog is shared infrastructure).
The mapping is documented in docs/support.md; tests/test_aliases.py covers every spelling.

- ``scheme_of("awq") == "w4a16"``: every common precision or quantization-method name
  maps to the scheme whose bytes and math the physics models (planner/physics/quant.py).
- ``gpu_id_of("H100-SXM5-80GB", gpus) == "h100-sxm"``: names are split into tokens,
  vendor words dropped, ``sxm5``/``sxm4`` read as ``sxm``, a memory token (``80gb``)
  used to choose between sizes of one family; a family with several sizes and no memory
  given (``A100``) is refused as ambiguous rather than guessed.
- ``suggest(name, candidates)``: nearest names first, by similarity of normalised keys
  plus a bonus for the same family prefix, so ``B20`` suggests ``b200`` before ``h200``.
- ``checkpoint_of("nvidia/DeepSeek-R1-0528-NVFP4", models)``: a checkpoint name as published
  -> the catalog architecture it is (``deepseek-r1``) and the format its name states
  (``fp4``), or the entry's release format where the name states none (``openai/gpt-oss-120b``
  -> ``mxfp4-experts``). Words that do not change the architecture are read off the name:
  instruction tuning (-Instruct, -it, -Chat), exports (-hf), release dates (-0528, -2507),
  Mistral versions (-v0.1), format words (-FP8, -NVFP4, -AWQ, -FP8-Dynamic, -FP8-KV). One
  resolver for every command (``Catalog.model_id``/``Catalog.checkpoint``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from planner.errors import InputError

# --- precision / quantization names ------------------------------------------------

SCHEME_ALIASES: dict[str, str] = {
    # 16-bit: no quantization
    "w16a16": "w16a16", "bf16": "w16a16", "bfloat16": "w16a16", "fp16": "w16a16",
    "float16": "w16a16", "half": "w16a16", "16bit": "w16a16", "none": "w16a16", "unquantized": "w16a16",
    # 8-bit weights, 16-bit math (int8 or fp8 weight-only; FP8 checkpoints on Ampere via Marlin)
    "w8a16": "w8a16", "int8-weight-only": "w8a16", "fp8-weight-only": "w8a16", "fp8-marlin": "w8a16",
    "w8a16-int8": "w8a16", "w8a16-fp8": "w8a16",
    # FP8 weights and activations (vLLM `fp8`, llm-compressor FP8_DYNAMIC, ModelOpt FP8)
    "w8a8-fp8": "w8a8-fp8", "fp8": "w8a8-fp8", "fp8-dynamic": "w8a8-fp8", "fp8-static": "w8a8-fp8",
    "fp8-e4m3": "w8a8-fp8", "e4m3": "w8a8-fp8", "modelopt-fp8": "w8a8-fp8", "fbgemm-fp8": "w8a8-fp8",
    "w8a8fp8": "w8a8-fp8",
    # INT8 weights and activations (SmoothQuant, llm-compressor W8A8)
    "w8a8-int8": "w8a8-int8", "int8": "w8a8-int8", "w8a8": "w8a8-int8", "smoothquant": "w8a8-int8",
    "int8-w8a8": "w8a8-int8", "w8a8int8": "w8a8-int8",
    # 4-bit weights, 16-bit math (GPTQ, AWQ, their Marlin kernels, compressed-tensors W4A16)
    "w4a16": "w4a16", "int4": "w4a16", "awq": "w4a16", "gptq": "w4a16", "int4-awq": "w4a16",
    "int4-gptq": "w4a16", "awq-marlin": "w4a16", "gptq-marlin": "w4a16", "marlin": "w4a16",
    "int4-weight-only": "w4a16", "gptq-int4": "w4a16", "awq-int4": "w4a16",
    # 4-bit weights, FP8 activations (ModelOpt W4A8 AWQ)
    "w4a8": "w4a8", "w4a8-awq": "w4a8", "int4-fp8": "w4a8", "w4afp8": "w4a8",
    # NVFP4 (W4A4, Blackwell)
    "fp4": "fp4", "nvfp4": "fp4", "w4a4": "fp4", "modelopt-fp4": "fp4", "nvfp4-w4a4": "fp4",
    # MXFP4 (OCP microscaling): 4-bit values, one 8-bit scale per 32, on every weight
    "mxfp4": "mxfp4", "mx-fp4": "mxfp4",
    # the gpt-oss release: MXFP4 routed experts, 16-bit attention and dense weights
    "mxfp4-experts": "mxfp4-experts", "mxfp4-moe": "mxfp4-experts", "gpt-oss-mxfp4": "mxfp4-experts",
    # NVIDIA's NVFP4 MoE releases: NVFP4 routed experts, 16-bit attention and shared experts
    "fp4-experts": "fp4-experts", "nvfp4-experts": "fp4-experts", "nvfp4-moe": "fp4-experts",
    # llama.cpp GGUF
    "gguf-q8-0": "gguf-q8_0", "q8-0": "gguf-q8_0", "q8": "gguf-q8_0",
    "gguf-q4-0": "gguf-q4_0", "q4-0": "gguf-q4_0",
}
"""Keys are normalised by ``_norm_scheme`` (lower case, ``_``/space/``.`` read as ``-``)."""


def _norm_scheme(name: str) -> str:
    return re.sub(r"[\s_.]+", "-", name.strip().lower())


def scheme_of(name: str, **where: Any) -> str:
    """The planner scheme a precision or quantization name means; InputError (with the
    nearest names first) for an unknown one."""
    key = _norm_scheme(name)
    if key in SCHEME_ALIASES:
        return SCHEME_ALIASES[key]
    near = suggest(name, SCHEME_ALIASES, n=3)
    hint = f"did you mean {', '.join(near)}? " if near else ""
    raise InputError(f"unknown quantization {name!r}; {hint}see docs/support.md for the names accepted",
                     value=name, accepted=", ".join(dict.fromkeys(SCHEME_ALIASES.values())), **where)


# --- GPU names ---------------------------------------------------------------------

_VENDOR_WORDS = frozenset({"nvidia", "amd", "intel", "habana", "geforce", "instinct", "tesla", "radeon", "gpu",
                           "per", "hbm2", "hbm2e", "hbm3", "hbm3e"})
"""Words of a GPU name that say nothing of which GPU it is: vendors, brands, "(per GPU)", the memory kind."""
_FORM_WORDS = frozenset({"oam", "hgx", "dgx", "module", "board", "server", "edition", "blackwell", "hopper",
                         "ampere", "lovelace"})
"""Form factors and generations that one catalog entry covers (``MI300X OAM``, ``HGX B300``, ``RTX PRO 6000
Blackwell Server Edition``). The form factors that change the part are kept: ``PCIe`` against ``SXM``,
``NVL`` (the H100 NVL is a 94 GB card of its own), ``Workstation``, ``Max-Q``."""
_RACK = re.compile(r"^nvl\d+$")          # GB200 NVL72, GB300 NVL72: the rack, each GPU one catalog entry
_MEMORY = re.compile(r"^(\d+)g(?:b|ib)?$")

# Family keys (normalised, memory stripped) -> catalog ids, ordered by memory where a
# family has several sizes; ``None`` default means "ambiguous without a memory size".
GPU_FAMILIES: dict[str, tuple[tuple[str, ...], str | None]] = {
    "h100": (("h100-sxm", "h100-pcie"), "h100-sxm"),      # bare "H100" is the SXM part in common use
    "h100sxm": (("h100-sxm",), "h100-sxm"),
    "h100pcie": (("h100-pcie",), "h100-pcie"),
    "h200": (("h200",), "h200"), "h200sxm": (("h200",), "h200"),
    "b200": (("b200",), "b200"), "b200sxm": (("b200",), "b200"), "dgxb200": (("b200",), "b200"),
    "gb200": (("gb200",), "gb200"), "gb200nvl72": (("gb200",), "gb200"), "gb200nvl": (("gb200",), "gb200"),
    "a100": (("a100-80gb", "a100-40gb"), None),
    "a100sxm": (("a100-80gb", "a100-40gb"), None),
    "l40s": (("l40s",), "l40s"), "l4": (("l4",), "l4"), "a10g": (("a10g",), "a10g"),
    "rtx4090": (("rtx-4090",), "rtx-4090"), "4090": (("rtx-4090",), "rtx-4090"),
    "rtx3090": (("rtx-3090",), "rtx-3090"), "3090": (("rtx-3090",), "rtx-3090"),
    "mi300x": (("mi300x",), "mi300x"), "mi325x": (("mi325x",), "mi325x"),
    "gaudi3": (("gaudi3",), "gaudi3"), "hl325l": (("gaudi3",), "gaudi3"),
}


def _tokens(name: str) -> tuple[list[str], float | None]:
    """Lower-case alphanumeric tokens without vendor words, and a memory size in GB if named."""
    raw = [t for t in re.split(r"[^0-9a-z]+", name.lower()) if t]
    out: list[str] = []
    memory: float | None = None
    for t in raw:
        if t in _VENDOR_WORDS or t in _FORM_WORDS or (_RACK.match(t) and out):
            continue
        m = _MEMORY.match(t)
        if m and out:                       # "80gb" after a family name; "4090" alone is not memory
            memory = float(m.group(1))
            continue
        t = re.sub(r"^sxm\d$", "sxm", t)
        out.append(t)
    return out, memory


def gpu_key(name: str) -> str:
    """The normalised key of a GPU name (tokens joined, vendor words and memory dropped)."""
    return "".join(_tokens(name)[0])


def gpu_id_of(name: str, gpus: Mapping[str, Any], **where: Any) -> str:
    """The catalog id a GPU name means. ``gpus`` maps ids to entries with ``memory_bytes``
    and ``name`` (the catalog's ``Gpu``); ids and catalog names of user-added GPUs
    resolve too. InputError with the nearest names first when unknown or ambiguous."""
    if name in gpus:
        return name
    tokens, memory = _tokens(name)
    key = "".join(tokens)
    candidates: list[str] = []
    default: str | None = None
    if key in GPU_FAMILIES:
        ids, default = GPU_FAMILIES[key]
        candidates = [i for i in ids if i in gpus]
    for ident, g in gpus.items():          # user entries: their id or catalog name, normalised
        if ident not in candidates and key in (gpu_key(ident), gpu_key(getattr(g, "name", "") or "")):
            candidates.append(ident)
    if memory is not None and candidates:
        sized = [i for i in candidates
                 if abs(getattr(gpus[i], "memory_bytes", 0.0) / 1e9 - memory) < 0.5 + 0.1 * memory]
        if len(sized) == 1:
            return sized[0]
        candidates = sized or []
        default = default if default in sized else None
    if len(candidates) == 1:
        return candidates[0]
    if candidates and default in candidates:
        return default
    if candidates:
        raise InputError(f"GPU name {name!r} is ambiguous: say which of {', '.join(candidates)}",
                         value=name, accepted=", ".join(candidates), **where)
    near = suggest(name, list(gpus), n=3, extra=_family_names(gpus))
    hint = f"did you mean {', '.join(near)}? " if near else ""
    raise InputError(f"unknown GPU {name!r}; {hint}known GPUs are listed after 'accepted'; a GPU the catalog "
                     "lacks is a data entry in a catalog override file (docs/support.md, 'A new GPU is a data entry')",
                     value=name, accepted=", ".join(sorted(gpus)), **where)


def _family_names(gpus: Mapping[str, Any]) -> dict[str, list[str]]:
    """Spellings to compare an unknown name against, per catalog id."""
    out: dict[str, list[str]] = {i: [i, getattr(g, "name", "") or ""] for i, g in gpus.items()}
    for fam, (ids, _) in GPU_FAMILIES.items():
        for i in ids:
            if i in out:
                out[i].append(fam)
    return out


def _prefix(key: str) -> str:
    m = re.match(r"[a-z]*", key)
    return m.group(0) if m else ""


def _score(query: str, candidate: str) -> float:
    q, c = gpu_key(query) or query.lower(), gpu_key(candidate) or candidate.lower()
    ratio = difflib.SequenceMatcher(None, q, c).ratio()
    same_family = bool(_prefix(q)) and _prefix(q) == _prefix(c)
    digits_q, digits_c = re.sub(r"\D", "", q), re.sub(r"\D", "", c)
    same_number = bool(digits_q) and (digits_q.startswith(digits_c) or digits_c.startswith(digits_q))
    return ratio + 0.15 * same_family + 0.05 * same_number


def suggest(name: str, known: Iterable[str], *, n: int = 3, extra: Mapping[str, list[str]] | None = None,
            cutoff: float = 0.45) -> list[str]:
    """Known names ranked by closeness to ``name``, nearest first (normalised-token
    similarity with a bonus for the same letter prefix: ``B20`` -> ``b200``)."""
    scored = []
    for k in known:
        spellings = (extra or {}).get(k, [k])
        best = max(_score(name, s) for s in spellings if s)
        scored.append((best, -len(k), k))
    scored.sort(reverse=True)
    return [k for s, _, k in scored if s >= cutoff][:n]


def model_key(name: str) -> str:
    """Case- and punctuation-insensitive key of a model name or Hugging Face id."""
    return re.sub(r"[^0-9a-z]+", "", name.lower())


# --- model and checkpoint names ------------------------------------------------------

_VARIANT_WORDS = frozenset({"instruct", "it", "chat", "hf", "base", "thinking"})
"""Words of a checkpoint name that leave the architecture as it is: instruction or chat tuning,
a transformers export, a reasoning variant."""
_FORMAT_QUALIFIERS = frozenset({"dynamic", "static", "pertensor", "perchannel", "block", "kv", "e4m3"})
"""Words that qualify a format word (-FP8-Dynamic, -FP8-Static-PerTensor, AMD's -FP8-KV)."""
_NOT_FORMATS = frozenset({"none", "half", "16bit", "unquantized", "marlin"})
"""Precision aliases too generic to read as a checkpoint's format word."""
_DATE = re.compile(r"^\d{4}$")                   # DeepSeek-R1-0528, Qwen3-235B-A22B-Instruct-2507
_MISTRAL_VERSION = re.compile(r"^v0\.\d+$")       # Mixtral-8x7B-v0.1 (not DeepSeek-V3.1)


@dataclass(frozen=True)
class Checkpoint:
    """What a model name means: the catalog architecture, and the weight scheme the name
    states (``scheme_from`` "name") or the entry's release format ("release"), else None."""

    model_id: str
    scheme: str | None = None
    scheme_from: str = ""
    read_off: tuple[str, ...] = ()     # the words of the name read as variant, date or format
    repository: str | None = None      # the Hugging Face repository the name is ("org/name"), as typed
    tuning: str | None = None          # instruct or base where the catalog or the name says so


def _spellings(ident: str, entry: Any) -> set[str]:
    names = [ident, getattr(entry, "name", "") or "", getattr(entry, "hf_id", "") or "",
             *getattr(entry, "aliases", ())]
    keys = {model_key(n) for n in names if n}
    keys |= {model_key(n.rsplit("/", 1)[1]) for n in names if "/" in n}      # "org/Name" typed without the org
    return keys - {""}


def _format_word(token: str) -> str | None:
    key = _norm_scheme(token)
    return None if key in _NOT_FORMATS else SCHEME_ALIASES.get(key)


_WEIGHT_ONLY_METHODS = frozenset({"gptq", "awq"})
_EIGHT_BIT = frozenset({"int8", "8bit", "w8"})


def read_off(name: str) -> tuple[str, str | None, tuple[str, ...]]:
    """(the name without its org and the words that leave the architecture as it is, the
    scheme its format words state, the words read off). A weight-only method with an 8-bit
    width (``-GPTQ-Int8``) is W8A16, not INT8 W8A8."""
    tail = name.strip().rsplit("/", 1)[-1]
    tokens = [t for t in re.split(r"[-_\s]+", tail) if t]
    scheme = next((f for f in map(_format_word, tokens) if f), None)
    words = {t.lower() for t in tokens}
    if words & _WEIGHT_ONLY_METHODS and words & _EIGHT_BIT:
        scheme = "w8a16"
    kept: list[str] = []
    dropped: list[str] = []
    for i, t in enumerate(tokens):
        low = t.lower()
        drop = (low in _VARIANT_WORDS or _DATE.match(low) or _MISTRAL_VERSION.match(low)
                or _format_word(t) is not None or (scheme is not None and low in _FORMAT_QUALIFIERS)
                or (i == 0 and low == "meta" and len(tokens) > 1 and tokens[1].lower() == "llama"))
        (dropped if drop else kept).append(t)
    return "-".join(kept), scheme, tuple(dropped)


def _tuning_word(name: str) -> str | None:
    """instruct / base where a name says so (-Instruct, -it, -Chat; -Base, -pt)."""
    words = {t.lower() for t in re.split(r"[-_\s/]+", name) if t}
    if words & {"instruct", "it", "chat"}:
        return "instruct"
    if words & {"base", "pt"}:
        return "base"
    return None


def checkpoint_of(name: str, models: Mapping[str, Any], **where: Any) -> Checkpoint:
    """The catalog architecture and format a model name means (module docstring). ``models``
    maps ids to entries with ``name``, ``hf_id``, ``aliases``, ``release_quantization`` (the
    catalog's ``ModelSpec``). InputError naming the nearest models when unknown or ambiguous."""

    repo = name.strip() if "/" in name else None
    tuned = _tuning_word(name)

    def release(ident: str) -> Checkpoint:
        scheme = getattr(models[ident], "release_quantization", None)
        own = getattr(models[ident], "hf_id", None)
        return Checkpoint(ident, scheme, "release" if scheme else "", repository=repo,
                          tuning=tuned or (getattr(models[ident], "hf_id_tuning", None)
                                           if repo is None or (own and model_key(own) == model_key(repo)) else None))

    if name in models:
        return release(name)
    for ident, entry in models.items():          # a published checkpoint the catalog lists, by its id
        for ck in getattr(entry, "checkpoints", ()):
            if model_key(ck.hf_id) == model_key(name) or model_key(ck.hf_id.rsplit("/", 1)[-1]) == model_key(name):
                plain = ck.scheme == "w16a16" and not getattr(entry, "release_quantization", None)
                return Checkpoint(ident, None if plain else ck.scheme, "" if plain else "name", read_off(ck.hf_id)[2],
                                  repository=ck.hf_id, tuning=ck.tuning)
    index: dict[str, list[str]] = {}
    for ident, entry in models.items():
        for key in _spellings(ident, entry):
            index.setdefault(key, []).append(ident)
    hits = index.get(model_key(name)) or index.get(model_key(name.rsplit("/", 1)[-1]))
    base, scheme, dropped = read_off(name)
    if not hits and dropped:
        hits = index.get(model_key(base))
        if hits and len(set(hits)) == 1:
            ident = hits[0]
            own = release(ident)
            return Checkpoint(ident, scheme or own.scheme, "name" if scheme else own.scheme_from, dropped,
                              repository=repo, tuning=tuned)
    hits = sorted(set(hits or ()))
    if len(hits) == 1:
        return release(hits[0])
    if hits:
        raise InputError(f"model name {name!r} is ambiguous: say which of {', '.join(hits)}",
                         value=name, accepted=", ".join(hits), **where)
    spellings = {i: [i, getattr(m, "name", "") or "", (getattr(m, "hf_id", "") or "").rsplit("/", 1)[-1]]
                 for i, m in models.items()}
    near = suggest(base or name, list(models), n=3, extra=spellings)
    hint = f"did you mean {', '.join(near)}? " if near else ""
    raise InputError(f"unknown model {name!r}; {hint}known models are listed after 'accepted'",
                     value=name, accepted=", ".join(sorted(models)), **where)
