"""Every modelling assumption as a named option, and presets (docs/model.md section 7).

The default preset ('realistic') uses priors from the field's tools; 'seed-article'
reproduces the simplifications of seed 002 (the RTX 4090 vs H100 article); 'rule-of-thumb'
reproduces seed 004's minimum-GPU rule. Calibration (issue 3) replaces the efficiencies.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from planner.catalog.schema import NotBool
from planner.units import GiB, MiB

Fraction = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False), NotBool]
Seconds = Annotated[float, Field(ge=0, le=10, allow_inf_nan=False), NotBool]
Passes = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False), NotBool]   # activation widths per token


class Assumptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    memory_bandwidth_efficiency: Fraction = Field(
        0.8, description="achieved / peak HBM bandwidth for weight and KV reads (AIC: 0.8)")
    efficiency_basis: Literal["mamf", "peak"] = Field(
        "mamf", description="what the compute efficiencies are fractions of: 'mamf' = the GPU's measured "
        "maximum achievable matmul FLOP/s for the format (catalog measured_mamf_flops_per_s; a format "
        "without a measurement takes the GPU's fp8 or bf16 MAMF/peak ratio, a GPU without any takes "
        "unmeasured_mamf_fraction), 'peak' = the spec sheet's dense peak (seed articles)")
    unmeasured_mamf_fraction: Fraction = Field(
        0.75, description="MAMF / peak assumed for a GPU with no MAMF measurement (measured: H100 0.80, "
        "B200 0.78, GB200 0.73, A100 0.87, MI300X 0.51, MI325X 0.60; the NVIDIA ones set this prior)")
    compute_efficiency: Fraction = Field(
        0.8, description="achieved / ceiling FLOP/s of decode GEMMs at large M (ceiling per efficiency_basis; "
        "0.8 x 0.75 = the formula sheet's 60 % of peak on a typical NVIDIA GPU)")
    prefill_compute_efficiency: Fraction = Field(
        0.8, description="achieved / ceiling FLOP/s of prefill GEMMs (KP measured 54-72 % of peak on A100)")
    attention_format: Literal["bf16", "fp8", "weights"] = Field(
        "bf16", description="math format of the attention kernel: bf16 (FlashAttention/FlashMLA default), "
        "fp8 (an FP8 attention kernel, e.g. FA3 FP8 or TRT-LLM FP8 FMHA; needs fp8 on the GPU) or the "
        "weights' GEMM format (seed articles)")
    attention_efficiency: Fraction = Field(
        0.78, description="achieved / ceiling FLOP/s of attention kernels (FlashMLA 580-660 TFLOP/s BF16 on "
        "H800 = 0.73-0.83 of its 794 TFLOP/s BF16 MAMF)")
    roofline_sharpness: Annotated[float, Field(ge=0, le=64, allow_inf_nan=False), NotBool] = Field(
        3.0, description="k of the smooth roofline t = (t_mem^k + t_flop^k)^(1/k): near the ridge neither "
        "the weight stream nor the GEMM runs at its own ceiling (tile and wave quantization at small M). "
        "k = 3 puts the ridge at 79 % of the pure roofline; 0 = pure max (seed articles)")
    pp_stage_model: Literal["slowest", "even"] = Field(
        "slowest", description="pipeline cycle = PP x the slowest stage (ceil(L/PP) layers plus the LM head "
        "on the last), or PP x an even 1/PP share of everything (seed articles)")
    pp_microbatch_overhead_s: Seconds = Field(
        100e-6, description="scheduling cost per pipeline micro-batch and step when PP > 1 (a prior: no "
        "validation row has PP; vLLM schedules each virtual engine separately)")
    pp_prefill_bubble: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False), NotBool] = Field(
        1.0, description="share of a prefill chunk's stage time that the other PP-1 micro-batches wait for: "
        "the cycle is PP x the slowest micro-batch, so a chunk carried by one micro-batch costs PP times "
        "its stage time (1) instead of once (0, chunks spread evenly)")
    ep_overlap: Literal["none", "two-batch"] = Field(
        "none", description="expert all-to-all overlap: 'two-batch' splits each step into two halves so one "
        "half's dispatch/combine runs under the other's compute (DeepSeek, SGLang --enable-two-batch-overlap); "
        "needs EP > 1 and at least 2 sequences; only the all-to-all time beyond the compute stays exposed")
    engine: Literal["vllm", "sglang", "trtllm"] = Field(
        "vllm", description="the engine whose conventions these figures assume (docs/model.md section 7)")
    comm_efficiency: Fraction = Field(
        0.8, description="achieved / nominal link bandwidth (seed 004: expect at most ~80 %)")
    allreduce: Literal["ring", "all-gather", "full-message"] = Field(
        "ring", description="bytes each GPU sends per all-reduce of M bytes: ring 2(n-1)/n M, "
        "all-gather (n-1)/n M, full-message M (seed 002's 4090 rows)")
    comm_latency: Literal["add", "max"] = Field(
        "add", description="per-collective latency alpha added to the transfer, or maxed with it (llm-analysis)")
    overlap_comm: bool = Field(
        False, description="communication hidden behind compute: a step costs max(compute, comm)")
    include_kv_reads: bool = Field(
        True, description="decode reads the KV cache of every sequence (and does attention FLOPs)")
    include_compute: bool = Field(
        True, description="roofline: a step costs max(FLOPs/peak, bytes/bandwidth); off = bandwidth only")
    include_prefill_in_throughput: bool = Field(
        True, description="throughput pays for each request's prefill, not only its decode steps")
    moe_expert_reads: Literal["expected", "all", "routed-only"] = Field(
        "expected", description="experts read per MoE layer per step: the expected number touched "
        "by the batch E(1-(1-k/E)^tokens), every expert, or only k (GenZ, too low for batch > 1)")
    redundant_experts: Annotated[int, Field(ge=0, le=4096), NotBool] = Field(
        0, description="extra expert replicas per MoE layer spread over the expert-parallel group (EPLB: "
        "hot experts duplicated so the busiest rank's load falls; DeepSeek-V3 deploys 32 for prefill at "
        "EP32). Costs their memory on every GPU of the group when EP > 1; what they buy is a lower "
        "expert_imbalance, which the user states")
    expert_imbalance: Annotated[float, Field(ge=1, le=100, allow_inf_nan=False), NotBool] = Field(
        1.0, description="busiest expert-parallel rank's load / mean load")
    per_layer_overhead_s: Seconds = Field(
        20e-6, description="non-GEMM kernels per layer and step (AIC: ~3 us per memory-bound op, ~7 per layer)")
    moe_layer_overhead_s: Annotated[float, Field(ge=0, le=1e-4, allow_inf_nan=False), NotBool] = Field(
        0.0, description="fixed time an MoE layer adds to every step whatever its tokens: the router's top-k, "
        "sorting the tokens by expert, the grouped GEMMs' permute and un-permute and their quantizations "
        "(docs/model.md section 4, fixed costs). Fitted per engine on the corpus's decode-bound MoE rows with "
        "leave-one-system-out and leave-one-model-out cross-validation (benchmarks/fit_moe_layer.py): SGLang 30 us "
        "(every fold 30); TensorRT-LLM's and vLLM's folds did not hold out: 0; bound 0-100 us")
    attention_dp_layer_overhead_s: Annotated[float, Field(ge=0, le=3e-4, allow_inf_nan=False), NotBool] = Field(
        0.0, description="fixed time every MoE layer adds to a step where attention is data-parallel (attention DP > "
        "1): the ranks meet at each MoE layer (token counts exchanged, every rank padded to the largest rank's "
        "batch, the dispatch and combine kernels' launch and handshakes), whatever their tokens and beyond what "
        "two-batch overlap hides (docs/validation.md, 'Attention DP'; fitted per engine with leave-one-system-out "
        "cross-validation, benchmarks/tpot_groups.py section 5: SGLang 120 us, every fold 110; TensorRT-LLM's "
        "fit, 90 us, fails held out on gpt-oss-120b: 0); bound 0-300 us")
    gemm_latency_s: Seconds = Field(
        5e-6, description="fixed time of every GEMM kernel whatever its size (prologue, first wave, tail): "
        "measured on an H100 SXM with cuBLAS under CUDA graphs, 6.2 us BF16 and 4.3 us FP8 in t = alpha + "
        "bytes / bandwidth over the weight shards of Llama-3.1-8B and -70B at M = 1 "
        "(benchmarks/compare_step_times.py); x GEMMs per layer (4 dense, 5-7 MoE) plus the LM head")
    activation_passes_hidden: Passes = Field(
        8.0, description="hidden-width 16-bit activations the non-GEMM kernels of one layer read or write per "
        "token (vLLM: two fused residual-add + RMSNorm kernels, each reading the input and the residual and "
        "writing both); the bytes go at the achieved HBM bandwidth, which is what makes long prefills slower "
        "than their GEMMs (measured on an H100, benchmarks/compare_step_times.py)")
    activation_passes_ffn: Passes = Field(
        3.0, description="FFN-width (per TP shard) activations read or written per token and layer: "
        "SiLU-and-multiply reads gate and up and writes one (a non-gated MLP: 2/3 of this)")
    activation_passes_attention: Passes = Field(
        2.0, description="query-width (per TP shard) activations read or written per token and layer "
        "(rotary embedding in place on the queries; the keys, n_kv/n_q as wide, are left out; MLA: the "
        "rope dimensions only; none on state-space layers)")
    step_overhead_s: Seconds = Field(0.0, description="fixed cost per decode step (scheduling, sampling)")
    serving_overhead_s: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False), NotBool] = Field(
        0.030, description="time a request spends outside the engine's steps before its first token reaches the "
        "client: HTTP server, tokenizer, hand-off to the engine, detokenizer and the stream's first chunk "
        "(docs/model.md section 4, 'the serving path'); added to every TTFT. Fitted per engine on the corpus's "
        "low-concurrency rows (benchmarks/fit_serving_path.py: vLLM 30 ms, SGLang 100, TensorRT-LLM 80; "
        "bound 0-100 ms)")
    host_step_s: Annotated[float, Field(ge=0, le=0.1, allow_inf_nan=False), NotBool] = Field(
        0.003, description="host time of one engine step outside the GPU's work: scheduling, batch preparation, "
        "sampling, output processing. The engine prepares the next step while the GPU runs this one, so a step "
        "takes max(GPU time, host time) (the host-bound floor, docs/model.md section 4). Fitted per engine "
        "(benchmarks/fit_serving_path.py: vLLM 4 ms, SGLang 5, TensorRT-LLM 0), vLLM's bounded by the fastest step "
        "it was measured at: 3.0 ms, gpt-oss-120b on B200 TP8)")
    host_per_sequence_s: Annotated[float, Field(ge=0, le=1e-3, allow_inf_nan=False), NotBool] = Field(
        5e-6, description="host time per sequence in a step (its scheduling, sampling and token output), added to "
        "host_step_s (benchmarks/fit_serving_path.py: vLLM 5 us, SGLang 30, TensorRT-LLM 0)")
    host_launch_s: Annotated[float, Field(ge=0, le=1e-3, allow_inf_nan=False), NotBool] = Field(
        0.0, description="host time per kernel of a forward pass run outside a CUDA graph (a step of more "
        "tokens than cuda_graph_max_tokens: eager PyTorch dispatch and launch), added to the step's host time "
        "(benchmarks/fit_serving_path.py: vLLM 0, its torch.compile'd piecewise graphs; SGLang 100 us, "
        "TensorRT-LLM 60 us; bound 0-100 us)")
    cuda_graph_max_tokens: Annotated[int, Field(ge=0, le=10**6), NotBool] = Field(
        512, description="largest step, in tokens, the engine replays from a captured CUDA graph (vLLM's "
        "max_cudagraph_capture_size 512; SGLang --cuda-graph-max-bs; TensorRT-LLM cuda_graph_config."
        "max_batch_size); a larger step launches its kernels one by one (host_launch_s each)")
    grouped_gemm_efficiency: Fraction = Field(
        0.85, description="achieved rate of the routed experts' grouped GEMMs (with their permutes and "
        "quantizations) as a share of a dense GEMM's: MoE layers below the dense roofline (docs/model.md "
        "section 4, 'grouped GEMMs'; benchmarks/fit_serving_path.py, one value for every engine)")
    grouped_gemm_prefill_efficiency: Fraction = Field(
        0.45, description="the same rate in a prompt's tokens (prefill chunks, the idle prefill): there the grouped "
        "GEMMs run at hundreds of rows per expert and are compute-bound, so their rate shows in full, where a "
        "decode step's few rows per expert are bound by the expert weights' reads (docs/model.md section 4, "
        "'grouped GEMMs'; fitted with the serving path on the corpus's TTFT, benchmarks/fit_serving_path.py)")
    fp4_dense_read_efficiency: Fraction = Field(
        0.65, description="achieved share, of the HBM bandwidth 8- and 16-bit weights stream at, of the dense GEMMs "
        "that read NVFP4 (fp4) weights (every layer weight but the routed experts', whose grouped GEMMs are "
        "kernels of their own): 4.5 bits a weight are 4.5 / 8 of FP8's bytes, but at decode's few rows the FP4 "
        "GEMMs (e2m1 values, an FP8 scale per 16, the activations quantized to FP4 per GEMM) stay below the "
        "bandwidth roofline (docs/validation.md, 'NVFP4 weight reads'; fitted with leave-one-system, "
        "-model and -engine-out cross-validation on the corpus's dense NVFP4 rows, benchmarks/tpot_groups.py: 0.65, "
        "0.60 and 0.70 with TensorRT-LLM or vLLM held out)")
    moe_gemm_tile_tokens: Annotated[int, Field(ge=0, le=1024), NotBool] = Field(
        64, description="M tile of the grouped expert GEMMs: each expert's tokens are padded up to whole tiles, "
        "so a few tokens per expert cost a tile's FLOPs (vLLM/SGLang fused_moe BLOCK_SIZE_M 16-128, DeepGEMM "
        "and CUTLASS grouped GEMMs 64-128); 0 = no padding")
    prefill_first: bool = Field(
        False, description="the engine's scheduler runs waiting prompts in prefill-only steps and the running "
        "sequences wait (SGLang's default: no mixed chunks, --enable-mixed-chunk off), instead of riding prompt "
        "chunks in the decode steps (vLLM V1, TensorRT-LLM chunked prefill). Clients of a closed loop that start "
        "together then stay in step: every cycle is a wave of prompts (docs/load.md section 5)")
    speculative_tokens: Annotated[int, Field(ge=0, le=16), NotBool] = Field(
        0, description="speculative decoding / multi-token prediction: k draft tokens proposed per decode "
        "step and verified in one forward pass of k + 1 query tokens per sequence (0 = off; DeepSeek-V3 "
        "MTP: 1). docs/model.md section 4, 'Speculative decoding / MTP'")
    speculative_acceptance: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False), NotBool] = Field(
        0.7, description="alpha: probability that each draft token is accepted, independently of the others "
        "(Leviathan et al. 2023); a step emits (1 - alpha^(k+1)) / (1 - alpha) tokens on average. "
        "DeepSeek-V3 reports 85-90 % for its one MTP token")
    speculative_draft_layers: Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False), NotBool] = Field(
        1.0, description="cost of drafting one token, in layers of the target model: DeepSeek-V3's MTP "
        "module is one transformer block plus the shared LM head (1); a separate draft model counts its "
        "size in target layers. Each draft token also pays one LM-head pass")
    memory_utilization: Fraction = Field(
        0.9, description="share of GPU memory the engine may use (vLLM gpu_memory_utilization)")
    kv_budget: Literal["total", "free"] = Field(
        "total", description="'total': the engine uses memory_utilization of all memory (vLLM); 'free': the KV "
        "cache gets memory_utilization of what weights, activations and reserve leave (TensorRT-LLM "
        "kv_cache_free_gpu_mem_fraction)")
    framework_reserve_bytes: Annotated[float, Field(ge=0, allow_inf_nan=False), NotBool] = Field(
        3.5 * GiB, description="CUDA context, cuBLAS workspaces, graphs (AIC 'other' 3.5 GiB)")
    nccl_reserve_bytes: Annotated[float, Field(ge=0, allow_inf_nan=False), NotBool] = Field(
        384 * MiB, description="communicator buffers when TP, PP or EP > 1 (AIC: 342-392 MiB)")
    max_batched_tokens: Annotated[int, Field(ge=0, le=10**7), NotBool] = Field(
        8192, description="tokens in the largest forward pass, sizing peak activations (vLLM chunk)")
    activation_allowance_of_weights: Annotated[float, Field(ge=0, le=10, allow_inf_nan=False), NotBool] = Field(
        0.0, description="extra memory as a fraction of weights (seed 004's 1.25 factor is 0.25)")
    pp_wraparound_hop: Literal["token", "activation"] = Field(
        "token", description="the hop from last stage back to the first carries the sampled token "
        "(latency only) or a full activation (seed 002 counts PP full hops)")
    pp_hop_message: Literal["shard", "full"] = Field(
        "shard", description="with TP, each GPU of a stage sends 1/TP of the activation, or all of it")
    quantize_embeddings: bool = Field(
        False, description="embeddings and LM head stored at the scheme's bytes (seed) instead of 16-bit")


PRESETS: dict[str, Assumptions] = {
    "realistic": Assumptions(),
    "seed-article": Assumptions(
        memory_bandwidth_efficiency=1.0, compute_efficiency=1.0, prefill_compute_efficiency=1.0, comm_efficiency=1.0,
        efficiency_basis="peak", attention_format="weights", attention_efficiency=1.0, roofline_sharpness=0.0,
        pp_stage_model="even", pp_microbatch_overhead_s=0.0, pp_prefill_bubble=0.0,
        allreduce="full-message", comm_latency="max", overlap_comm=False,
        include_kv_reads=False, include_prefill_in_throughput=False,
        per_layer_overhead_s=0.0, gemm_latency_s=0.0, step_overhead_s=0.0, memory_utilization=1.0,
        activation_passes_hidden=0.0, activation_passes_ffn=0.0, activation_passes_attention=0.0,
        framework_reserve_bytes=0.0, nccl_reserve_bytes=0.0, max_batched_tokens=0,
        pp_wraparound_hop="activation", pp_hop_message="full", quantize_embeddings=True,
        serving_overhead_s=0.0, host_step_s=0.0, host_per_sequence_s=0.0, host_launch_s=0.0,
        grouped_gemm_efficiency=1.0, grouped_gemm_prefill_efficiency=1.0, moe_gemm_tile_tokens=0,
        fp4_dense_read_efficiency=1.0,
    ),
    # Engine profiles (docs/model.md section 7): the engine's documented memory conventions and
    # what it fuses; the rest are the realistic priors. "realistic" is vLLM's profile.
    "sglang": Assumptions(
        engine="sglang", memory_utilization=0.88, kv_budget="total", ep_overlap="two-batch", prefill_first=True,
        per_layer_overhead_s=15e-6, moe_layer_overhead_s=30e-6, attention_dp_layer_overhead_s=120e-6,
        serving_overhead_s=0.100, host_step_s=0.005, host_per_sequence_s=30e-6, host_launch_s=100e-6,
    ),
    "trtllm": Assumptions(
        engine="trtllm", memory_utilization=0.9, kv_budget="free",
        per_layer_overhead_s=10e-6, attention_format="fp8",
        serving_overhead_s=0.080, host_step_s=0.0, host_per_sequence_s=0.0, host_launch_s=60e-6,
    ),
    "rule-of-thumb": Assumptions(
        memory_utilization=1.0, framework_reserve_bytes=0.0, nccl_reserve_bytes=0.0,
        max_batched_tokens=0, activation_allowance_of_weights=0.25, quantize_embeddings=True,
    ),
}
ENGINE_PRESETS: dict[str, str] = {"vllm": "realistic", "sglang": "sglang", "trtllm": "trtllm"}
"""The preset that is each engine's profile (docs/model.md section 7)."""
ENGINE_FIELDS: tuple[str, ...] = tuple(
    name for name in Assumptions.model_fields
    if len({getattr(PRESETS[p], name) for p in ENGINE_PRESETS.values()}) > 1)
"""What an engine profile changes: the fields on which the engine presets differ (derived from
PRESETS, so a field added to a profile is one an engine changes, here and in validation)."""


def engine_profile(engine: str) -> dict[str, object]:
    """The engine's values of every field an engine profile changes (``ENGINE_FIELDS``): the
    one place validation (planner/fidelity/validate.py) reads an engine's profile from. Every
    profile sets the same fields, so applying one over any base leaves no other engine's value."""
    preset = PRESETS[ENGINE_PRESETS[engine]]
    return {name: getattr(preset, name) for name in ENGINE_FIELDS}


PRESET_NOTES: dict[str, str] = {
    "realistic": "priors from the field's tools (vLLM's conventions: engine vllm); efficiencies tied to "
                 "measured MAMF, smooth roofline, KV reads, ring all-reduce, slowest PP stage; vLLM's serving path "
                 "and host times and the grouped-GEMM efficiency fitted on the measured corpus",
    "seed-article": "seed 002's simplifications: peak rates, no KV reads, full-message all-reduce, "
                    "latency maxed with transfer, no framework memory",
    "sglang": "SGLang profile: mem_fraction_static ~0.88 of all memory, two-batch overlap of the expert "
              "all-to-all, 15 us per layer (a prior, not fitted: fused norm/rope kernels, CUDA graphs) and 30 us "
              "more per MoE layer (fitted: benchmarks/fit_moe_layer.py), 120 us more per MoE layer with attention DP "
              "(fitted: benchmarks/tpot_groups.py); its "
              "serving path and host times fitted on the measured corpus (100 ms, 5 ms a step, 30 us a sequence, "
              "100 us a kernel outside CUDA graphs); otherwise the realistic priors",
    "trtllm": "TensorRT-LLM profile: KV cache gets kv_cache_free_gpu_mem_fraction 0.9 of the memory left "
              "after weights, 10 us per layer (a prior, not fitted: fused engine), FP8 attention kernel "
              "(FP8 FMHA) where the GPU has fp8; its serving path and host times fitted on the measured corpus "
              "(80 ms, no host floor in decode, 60 us a kernel outside CUDA graphs); otherwise the "
              "realistic priors",
    "rule-of-thumb": "seed 004: memory = weights x 1.25, nothing else reserved",
}
