"""Each engine's launch flags, as data: the flag per knob, the names it accepts for a
quantization and a KV-cache dtype, the memory-budget semantics, and the version the flags
were read from. Source: /work/shared/reference/engine-flags.md (vLLM
vllm/engine/arg_utils.py and vllm/config/cache.py, mid-2025; SGLang
python/sglang/srt/server_args.py; TensorRT-LLM tensorrt_llm/commands/serve.py). Flags drift
between releases: the commands say which version they target. Tests check every generated
flag against these tables (tests/test_launch.py)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EngineFlags:
    name: str
    program: str                   # the command before the model
    version: str                   # the release the flags were read from
    source: str
    flags: dict[str, str]          # knob -> flag ("" where the engine has no CLI flag for it)
    quantization: dict[str, str | None]   # planner scheme -> the engine's name (None: from the checkpoint)
    kv_dtype: dict[str, str]       # planner KV dtype -> the engine's name
    memory: str                    # what the memory fraction counts
    yaml_keys: dict[str, str] = field(default_factory=dict)   # knob -> YAML key (TensorRT-LLM)
    accepted_kv: tuple[str, ...] = ()                         # the engine's KV-dtype choices


VLLM = EngineFlags(
    name="vllm", program="vllm serve", version="vLLM 0.10 (argument parser of mid-2025)",
    source="engine-flags.md: vllm/engine/arg_utils.py, vllm/config/cache.py",
    flags={"tp": "--tensor-parallel-size", "pp": "--pipeline-parallel-size", "dp": "--data-parallel-size",
           "ep": "--enable-expert-parallel", "quantization": "--quantization", "kv_dtype": "--kv-cache-dtype",
           "memory": "--gpu-memory-utilization", "max_seqs": "--max-num-seqs",
           "max_tokens": "--max-num-batched-tokens", "max_len": "--max-model-len",
           "disaggregation": "--kv-transfer-config"},
    quantization={"w16a16": None, "w8a8-fp8": "fp8", "w8a16": "compressed-tensors", "w8a8-int8": "compressed-tensors",
                  "w4a16": "awq_marlin", "w4a8": "compressed-tensors", "fp4": "modelopt_fp4", "mxfp4": "mxfp4",
                  "mxfp4-experts": "mxfp4", "gguf-q8_0": "gguf", "gguf-q4_0": "gguf"},
    kv_dtype={"bf16": "auto", "fp16": "auto", "fp8": "fp8"},
    accepted_kv=("auto", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2"),
    memory="fraction of TOTAL device memory for weights + activations + KV cache + overhead",
)

SGLANG = EngineFlags(
    name="sglang", program="python -m sglang.launch_server --model-path",
    version="SGLang 0.4.9 (python/sglang/srt/server_args.py, mid-2025)",
    source="engine-flags.md: python/sglang/srt/server_args.py",
    flags={"tp": "--tp-size", "pp": "--pp-size", "dp": "--dp-size", "dp_attention": "--enable-dp-attention",
           "ep": "--ep-size", "quantization": "--quantization", "kv_dtype": "--kv-cache-dtype",
           "memory": "--mem-fraction-static", "max_seqs": "--max-running-requests",
           "max_tokens": "--chunked-prefill-size", "max_len": "--context-length",
           "disaggregation": "--disaggregation-mode"},
    quantization={"w16a16": None, "w8a8-fp8": "fp8", "w8a8-int8": "w8a8_int8", "w4a16": "awq",
                  "fp4": "modelopt_fp4", "mxfp4": "mxfp4", "mxfp4-experts": "mxfp4"},
    kv_dtype={"bf16": "auto", "fp16": "auto", "fp8": "fp8_e4m3"},
    accepted_kv=("auto", "fp8_e5m2", "fp8_e4m3", "bf16", "bfloat16", "fp4_e2m1"),
    memory="fraction of device memory for weights + the KV pool",
)

TRTLLM = EngineFlags(
    name="trtllm", program="trtllm-serve", version="TensorRT-LLM 1.0 (tensorrt_llm/commands/serve.py)",
    source="engine-flags.md: tensorrt_llm/commands/serve.py",
    flags={"tp": "--tp_size", "pp": "--pp_size", "ep": "--ep_size", "quantization": "",
           "memory": "--kv_cache_free_gpu_memory_fraction", "max_seqs": "--max_batch_size",
           "max_tokens": "--max_num_tokens", "max_len": "--max_seq_len", "config": "--config"},
    yaml_keys={"dp": "enable_attention_dp", "kv_dtype": "kv_cache_config.dtype",
               "memory": "kv_cache_config.free_gpu_memory_fraction"},
    quantization={"w16a16": None, "w8a8-fp8": None, "w4a16": None, "w4a8": None, "fp4": None, "mxfp4": None,
                  "mxfp4-experts": None},
    kv_dtype={"bf16": "auto", "fp16": "auto", "fp8": "fp8", "int8": "int8"},
    accepted_kv=("auto", "fp8", "int8"),
    memory="fraction of the FREE memory left after weights and activations, for the KV cache",
)

ENGINES: dict[str, EngineFlags] = {e.name: e for e in (VLLM, SGLANG, TRTLLM)}
