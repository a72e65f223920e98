"""Each engine's launch flags, as data: the flag per knob, the engine's name for an online
quantization and for a KV-cache dtype, the memory-budget semantics, and the releases the
flags are checked against.

Two releases per engine: the current one and the one before (``--engine-release previous``).
The flags each release defines are extracted from its released package by
scripts/extract_engine_flags.py into planner/launch/data/<engine>-<version>.json (vLLM and
SGLang wheels from PyPI; TensorRT-LLM's PyPI entry is a stub that downloads from NVIDIA's own
index, so its file is written by hand and says so). ``launch()`` refuses to write a flag the
named release does not define, and tests/test_launch_flags.py checks every generated flag
against the file. Semantics: /work/shared/reference/engine-flags.md.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

RELEASES: dict[str, tuple[str, str]] = {"vllm": ("0.34.0", "0.33.0"), "sglang": ("0.5.23", "0.5.22"),
                                        "trtllm": ("1.2.1", "1.1.0")}
"""engine -> (current release, the previous one). vLLM and TensorRT-LLM: the previous minor;
SGLang ships a release per patch number of 0.5 (0.5.0 to 0.5.23 in a year): the previous one."""

RELEASE_CHOICES = ("current", "previous")


@dataclass(frozen=True)
class Release:
    """What one engine release defines: its flags (and YAML keys), their choices, its defaults."""

    engine: str
    version: str
    source: str
    extracted: bool
    flags: frozenset[str]
    choices: dict[str, tuple[str, ...]]
    defaults: dict[str, Any]
    yaml_keys: frozenset[str] = frozenset()


@functools.cache
def release_data(engine: str, version: str) -> Release:
    text = (resources.files("planner.launch") / "data" / f"{engine}-{version}.json").read_text(encoding="utf-8")
    d = json.loads(text)
    return Release(engine=engine, version=version, source=str(d["source"]), extracted=bool(d.get("extracted", True)),
                   flags=frozenset(d["flags"]), choices={k: tuple(v) for k, v in d.get("choices", {}).items()},
                   defaults=dict(d.get("defaults", {})), yaml_keys=frozenset(d.get("yaml_keys", ())))


@dataclass(frozen=True)
class EngineFlags:
    name: str
    program: str                   # the command before the model
    label: str                     # the engine's name in words
    flags: dict[str, str]          # knob -> flag ("" where the engine has no CLI flag for it)
    online: dict[str, str]         # planner scheme -> the quantization the engine makes from 16-bit weights at load
    kv_dtype: dict[str, str]       # planner KV dtype -> the engine's name
    memory: str                    # what the memory fraction counts
    yaml_keys: dict[str, str] = field(default_factory=dict)   # knob -> YAML key (TensorRT-LLM)
    release: str = "current"

    @property
    def version(self) -> str:
        """The release the flags are checked against, in words."""
        r = self.data
        how = "flags extracted from its package" if r.extracted else "flags written by hand (package not reachable)"
        return f"{self.label} {r.version} ({how})"

    @property
    def data(self) -> Release:
        current, previous = RELEASES[self.name]
        return release_data(self.name, current if self.release == "current" else previous)

    @property
    def source(self) -> str:
        return self.data.source

    @property
    def port(self) -> int:
        """The port the server listens on by default (the benchmark targets it)."""
        return int(self.data.defaults["--port"])

    @property
    def accepted_kv(self) -> tuple[str, ...]:
        r = self.data
        return r.choices.get("--kv-cache-dtype") or r.choices.get("kv_cache_config.dtype") or ()

    def at(self, release: str) -> EngineFlags:
        """The same table checked against another release (``current`` or ``previous``)."""
        if release not in RELEASE_CHOICES:
            raise ValueError(f"release {release!r} is not one of {RELEASE_CHOICES}")
        return replace(self, release=release)


VLLM = EngineFlags(
    name="vllm", program="vllm serve", label="vLLM",
    flags={"tp": "--tensor-parallel-size", "pp": "--pipeline-parallel-size", "dp": "--data-parallel-size",
           "ep": "--enable-expert-parallel", "quantization": "--quantization", "kv_dtype": "--kv-cache-dtype",
           "memory": "--gpu-memory-utilization", "max_seqs": "--max-num-seqs",
           "max_tokens": "--max-num-batched-tokens", "max_len": "--max-model-len",
           "chunked": "--enable-chunked-prefill", "prefix_cache": "--enable-prefix-caching",
           "disaggregation": "--kv-transfer-config", "host": "--host", "port": "--port",
           "served_name": "--served-model-name"},
    online={"w8a8-fp8": "fp8"},
    kv_dtype={"bf16": "auto", "fp16": "auto", "fp8": "fp8"},
    memory="fraction of TOTAL device memory for weights + activations + KV cache + overhead",
)

SGLANG = EngineFlags(
    name="sglang", program="python -m sglang.launch_server --model-path", label="SGLang",
    flags={"tp": "--tp-size", "pp": "--pp-size", "attn_dp": "--attn-dp-size", "ep": "--ep-size",
           "quantization": "--quantization", "kv_dtype": "--kv-cache-dtype", "memory": "--mem-fraction-static",
           "max_seqs": "--max-running-requests", "max_tokens": "--chunked-prefill-size",
           "prefill_tokens": "--max-prefill-tokens", "mixed_chunk": "--enable-mixed-chunk",
           "max_len": "--context-length", "disaggregation": "--disaggregation-mode",
           "transfer": "--disaggregation-transfer-backend", "host": "--host", "port": "--port",
           "served_name": "--served-model-name"},
    online={"w8a8-fp8": "fp8"},
    kv_dtype={"bf16": "auto", "fp16": "auto", "fp8": "fp8_e4m3"},
    memory="fraction of device memory for weights + the KV pool",
)

TRTLLM = EngineFlags(
    name="trtllm", program="trtllm-serve", label="TensorRT-LLM",
    flags={"tp": "--tp_size", "pp": "--pp_size", "ep": "--ep_size",
           "memory": "--kv_cache_free_gpu_memory_fraction", "max_seqs": "--max_batch_size",
           "max_tokens": "--max_num_tokens", "max_len": "--max_seq_len", "config": "--extra_llm_api_options",
           "host": "--host", "port": "--port", "backend": "--backend"},
    yaml_keys={"dp": "enable_attention_dp", "kv_dtype": "kv_cache_config.dtype",
               "memory": "kv_cache_config.free_gpu_memory_fraction", "chunked": "enable_chunked_prefill",
               "prefix_cache": "kv_cache_config.enable_block_reuse",
               "disaggregation": "cache_transceiver_config.backend"},
    online={},
    kv_dtype={"bf16": "auto", "fp16": "auto", "fp8": "fp8"},
    memory="fraction of the FREE memory left after weights and activations, for the KV cache",
)

ENGINES: dict[str, EngineFlags] = {e.name: e for e in (VLLM, SGLANG, TRTLLM)}


def engine_flags(engine: str, release: str = "current") -> EngineFlags:
    return ENGINES[engine].at(release)

