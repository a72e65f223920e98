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


class Assumptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    memory_bandwidth_efficiency: Fraction = Field(
        0.8, description="achieved / peak HBM bandwidth for weight and KV reads (AIC: 0.8)")
    compute_efficiency: Fraction = Field(
        0.6, description="achieved / peak dense FLOP/s for GEMMs and attention (formula sheet prior)")
    prefill_compute_efficiency: Fraction = Field(
        0.6, description="achieved / peak FLOP/s in prefill (large GEMMs and causal attention; KP measured "
        "54-72 % on A100)")
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
    expert_imbalance: Annotated[float, Field(ge=1, le=100, allow_inf_nan=False), NotBool] = Field(
        1.0, description="busiest expert-parallel rank's load / mean load")
    per_layer_overhead_s: Seconds = Field(
        20e-6, description="non-GEMM kernels per layer and step (AIC: ~3 us per memory-bound op, ~7 per layer)")
    step_overhead_s: Seconds = Field(0.0, description="fixed cost per decode step (scheduling, sampling)")
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
        allreduce="full-message", comm_latency="max", overlap_comm=False,
        include_kv_reads=False, include_prefill_in_throughput=False,
        per_layer_overhead_s=0.0, step_overhead_s=0.0, memory_utilization=1.0,
        framework_reserve_bytes=0.0, nccl_reserve_bytes=0.0, max_batched_tokens=0,
        pp_wraparound_hop="activation", pp_hop_message="full", quantize_embeddings=True,
    ),
    "rule-of-thumb": Assumptions(
        memory_utilization=1.0, framework_reserve_bytes=0.0, nccl_reserve_bytes=0.0,
        max_batched_tokens=0, activation_allowance_of_weights=0.25, quantize_embeddings=True,
    ),
}
PRESET_NOTES: dict[str, str] = {
    "realistic": "priors from the field's tools; efficiencies below peak, KV reads, ring all-reduce",
    "seed-article": "seed 002's simplifications: peak rates, no KV reads, full-message all-reduce, "
                    "latency maxed with transfer, no framework memory",
    "rule-of-thumb": "seed 004: memory = weights x 1.25, nothing else reserved",
}
