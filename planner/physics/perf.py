"""The analytic performance and memory model, vectorised over configurations.

Every formula here is derived in docs/model.md (section numbers in comments). Units:
bytes, seconds, FLOP, bytes/s, FLOP/s. Nothing here imports a solver.

Conventions:
- ``batch`` B is the number of sequences one GPU decodes per step (the micro-batch of a
  pipeline stage). A replica of TP x PP GPUs keeps PP micro-batches in flight, so it holds
  B x PP concurrent sequences (x the attention-data-parallel groups when EP > TP).
- A replica is max(TP, EP) x PP GPUs. With EP > TP, EP/TP attention groups of TP GPUs
  share one pool of experts spread over EP GPUs (DeepSeek-style attention DP + EP).
- TPOT is one full cycle of the pipeline: PP stage steps plus the hops between stages.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from planner.catalog.schema import MATH_FORMATS, ModelSpec
from planner.physics.attention import (
    AttentionLayout,
    attention_layout,
    decode_attention_flops,
    kv_bytes_per_sequence,
    kv_read_bytes,
    prefill_attention_flops,
)
from planner.physics.options import Assumptions
from planner.physics.params import ParamCounts, count_parameters
from planner.physics.quant import ACTIVATION_BYTES, EMBEDDING_BYTES, KV_DTYPES, SCHEMES
from planner.physics.space import SCHEME_NAMES, Configs, GpuTable

_BITS = np.array([SCHEMES[s].bits_per_weight for s in SCHEME_NAMES])
_XBITS = np.array([SCHEMES[s].expert_bits for s in SCHEME_NAMES])   # routed experts (Scheme.expert_bits)
_MATH = np.array([MATH_FORMATS.index(SCHEMES[s].math_format) for s in SCHEME_NAMES])
_FALLBACK = np.array([
    MATH_FORMATS.index(SCHEMES[s].fallback_format) if SCHEMES[s].fallback_format else -1
    for s in SCHEME_NAMES
])
_KV_BYTES = np.array(list(KV_DTYPES.values()))
_BF16, _FP16, _FP8 = (MATH_FORMATS.index(f) for f in ("bf16", "fp16", "fp8"))

INVALID_REASONS: tuple[str, ...] = (
    "",
    "the GPU has no peak FLOP/s for the scheme's math format",
    "TP must divide the number of attention heads",
    "PP cannot exceed the number of layers",
    "EP needs a mixture-of-experts model and must divide its expert count",
    "EP and TP must divide one another",
)


@dataclass(frozen=True)
class Arch:
    """Per-token, per-layer sizes of one model that the array formulas need."""

    params: ParamCounts
    layers: int
    hidden: int
    vocab: int
    heads: int
    kv_heads: int
    kv_elements: float          # KV-cache elements per token per layer (section 3)
    kv_replicates: bool         # GQA heads split by TP (replicated past n_kv); MLA latent not split
    attn_decode_flops: float    # FLOPs per layer per new token per cached token
    attn_prefill_flops: float   # FLOPs per layer per S^2 (causal mask halves the square)
    q_width: int
    mlp_width: float
    gated: bool
    attention: AttentionLayout  # per layer kind: what is cached and attended (planner/physics/attention.py)
    gemms_per_layer: float = 4.0  # GEMM kernels one layer launches per forward pass (``gemm_count``), mean over layers
    rope_width: float = 0.0       # query elements per token the rotary embedding rewrites (MLA: only the rope dims)
    ffn_share: float = 1.0        # share of layers with an FFN (hybrids: some have none)
    rope_share: float = 1.0       # share of layers with attention (state-space layers have no rotary embedding)

    @staticmethod
    def of(m: ModelSpec) -> Arch:
        p = count_parameters(m)
        nq = m.num_attention_heads
        if m.attention == "mla" and m.mla is not None:
            a = m.mla
            kv_el = float(a.kv_lora_rank + a.qk_rope_head_dim)          # one latent serves K and V
            dqk, dv = a.qk_nope_head_dim + a.qk_rope_head_dim, a.v_head_dim
            decode = 2.0 * nq * (2 * a.kv_lora_rank + a.qk_rope_head_dim)  # absorbed form
            q_width = nq * dqk
            rope = float(nq * a.qk_rope_head_dim)
        else:
            kv_el = 2.0 * m.num_kv_heads * m.head_dim
            dqk = dv = m.head_dim
            decode = 2.0 * nq * (dqk + dv)                                # QK^T and PV
            q_width = nq * m.head_dim
            rope = float(q_width)
        if m.moe is not None:
            e = m.moe
            width = e.experts_per_token * e.expert_intermediate_size + e.num_shared_experts * (
                e.shared_expert_intermediate_size or e.expert_intermediate_size)
            if e.first_dense_layers:
                width = max(width, m.intermediate_size)
        else:
            width = m.intermediate_size
        return Arch(
            params=p, layers=m.num_layers, hidden=m.hidden_size, vocab=m.vocab_size, heads=nq,
            kv_heads=m.num_kv_heads, kv_elements=kv_el, kv_replicates=m.attention != "mla",
            attn_decode_flops=decode, attn_prefill_flops=float(nq * (dqk + dv)), q_width=q_width,
            mlp_width=float(width), gated=m.mlp == "gated", attention=attention_layout(m),
            gemms_per_layer=gemm_count(m, p) / m.num_layers, rope_width=rope,
            ffn_share=1.0 - sum(g.count for g in m.layer_groups if not g.ffn) / m.num_layers,
            rope_share=1.0 - sum(g.count for g in m.layer_groups if g.kind == "state_space") / m.num_layers,
        )


def gemm_count(m: ModelSpec, p: ParamCounts) -> float:
    """GEMM kernels of one forward pass over all layers, the LM head excluded (section 4,
    fixed costs). Attention: QKV and O (MLA: the query's down and up projections where it
    has a LoRA rank, the KV down projection, and O; the KV up projection is absorbed into
    the attention kernel); a state-space mixer: in and out projections. FFN: gate and up
    fused into one GEMM, as the engines run them, and down; an MoE layer: the router, the
    routed experts' grouped gate/up and down, and the shared experts' gate/up and down."""
    if m.attention == "mla" and m.mla is not None:
        attn = 4.0 if m.mla.q_lora_rank else 3.0
    else:
        attn = 2.0
    ffn_free = sum(g.count for g in m.layer_groups if not g.ffn)
    moe_layer = 3.0 + (2.0 if p.moe_layers and m.moe and m.moe.num_shared_experts else 0.0)
    return float(m.num_layers * attn + (p.dense_layers - ffn_free) * 2.0 + p.moe_layers * moe_layer)


@dataclass(frozen=True)
class Evaluation:
    """Physics of every configuration; each field an array (per GPU unless stated)."""

    valid: np.ndarray
    invalid_reason: np.ndarray
    gpus: np.ndarray                 # GPUs in one replica
    concurrency: np.ndarray          # sequences in flight per replica
    # memory, bytes per GPU
    weights_bytes: np.ndarray
    kv_cache_bytes: np.ndarray
    activation_bytes: np.ndarray
    reserve_bytes: np.ndarray
    total_bytes: np.ndarray
    usable_bytes: np.ndarray
    capacity_bytes: np.ndarray
    kv_bytes_per_sequence: np.ndarray
    max_batch: np.ndarray            # largest micro-batch that fits (0 if the weights do not)
    fits: np.ndarray
    # decode, seconds per pipeline stage step unless stated
    t_weights: np.ndarray            # weight reads at achieved bandwidth
    t_linear_compute: np.ndarray     # linear-layer FLOPs at achieved FLOP/s
    t_kv: np.ndarray                 # KV reads
    t_attn_compute: np.ndarray
    t_tp_comm: np.ndarray
    t_ep_comm: np.ndarray
    t_pp_comm: np.ndarray            # all hops of one token cycle
    t_activations: np.ndarray        # activations moved by the non-GEMM kernels
    t_overhead: np.ndarray           # fixed costs per step (non-GEMM kernels, GEMM latency), all stages
    tpot: np.ndarray                 # seconds per output token (one pipeline cycle)
    share_weights: np.ndarray
    share_compute: np.ndarray
    share_kv: np.ndarray
    share_activations: np.ndarray
    share_comm: np.ndarray
    share_overhead: np.ndarray
    # prefill of one request (seconds)
    ttft: np.ndarray
    ttft_compute: np.ndarray
    ttft_comm: np.ndarray
    prefill_flops: np.ndarray        # per GPU, all stages
    # throughput, utilisation, power
    decode_tokens_per_s: np.ndarray  # per replica, decode steps only
    throughput_tokens_per_s: np.ndarray  # output tokens/s per replica (prefill paid if enabled)
    mbu: np.ndarray
    mfu: np.ndarray
    bytes_per_step: np.ndarray       # per GPU per token cycle
    flops_per_step: np.ndarray
    peak_flops: np.ndarray
    power_w: np.ndarray              # per replica (prices are applied after the physics: planner/pricing.py)

    def row(self, i: int) -> dict[str, float]:
        return {f.name: getattr(self, f.name)[i].item() for f in fields(self)}


def _link(table: GpuTable, gi: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bandwidth, latency) of a collective among n GPUs: intra-node inside the fast domain."""
    intra = n <= table.domain[gi]
    peer = table.intra_peer_bw[gi]
    intra_bw = np.where(np.isnan(peer), table.intra_bw[gi], np.minimum(table.intra_bw[gi], peer * np.maximum(n - 1, 1)))
    bw = np.where(intra, intra_bw, table.inter_bw[gi])
    lat = np.where(intra, table.intra_latency[gi], table.inter_latency[gi])
    return bw, lat


def _transfer(latency: np.ndarray, nbytes: np.ndarray, bw: np.ndarray, o: Assumptions) -> np.ndarray:
    """Alpha-beta cost of one transfer (section 5)."""
    beta = nbytes / (bw * o.comm_efficiency)
    return np.maximum(latency, beta) if o.comm_latency == "max" else latency + beta


def _allreduce_factor(n: np.ndarray, o: Assumptions) -> np.ndarray:
    if o.allreduce == "ring":
        return 2.0 * (n - 1) / n
    if o.allreduce == "all-gather":
        return (n - 1) / n
    return np.ones_like(n)


def _experts_touched(arch: Arch, tokens: np.ndarray, o: Assumptions) -> np.ndarray:
    """Expected distinct experts per MoE layer hit by ``tokens`` routed tokens (section 2)."""
    E, k = arch.params.num_experts, arch.params.experts_per_token
    if E == 0:
        return np.zeros_like(tokens)
    if o.moe_expert_reads == "all":
        return np.full_like(tokens, float(E))
    if o.moe_expert_reads == "routed-only":
        return np.full_like(tokens, float(k))
    return E * (1.0 - (1.0 - k / E) ** np.maximum(tokens, 1.0))


def _smax(a, b, k: float):
    """Smooth roofline (section 4): (a^k + b^k)^(1/k); k = 0 is the pure max(a, b). Equal
    terms cost 2^(1/k) x either (k = 3: 1.26, the ridge runs at 79 % of the pure roofline)."""
    if k <= 0:
        return np.maximum(a, b)
    m = np.maximum(a, b)
    ok = np.isfinite(m) & (m > 0)
    safe = np.where(ok, m, 1.0)
    return np.where(ok, safe * ((a / safe) ** k + (b / safe) ** k) ** (1.0 / k), m)


def _smax_scalar(a: float, b: float, k: float) -> float:
    m = a if a > b else b
    if k <= 0 or not (0.0 < m < float("inf")):
        return m
    return m * ((a / m) ** k + (b / m) ** k) ** (1.0 / k)


def _scheme_format(table: GpuTable, gi: np.ndarray, scheme: np.ndarray) -> np.ndarray:
    """Index of the math format a scheme's GEMMs run at on each GPU (fallback where absent)."""
    f, fb = _MATH[scheme], _FALLBACK[scheme]
    return np.where(np.isnan(table.flops[gi, f]) & (fb >= 0), np.maximum(fb, 0), f)


def _format_or(table: GpuTable, gi: np.ndarray, first: int, fallback: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(table.flops[gi, first]), fallback, first)


def _ceiling(table: GpuTable, gi: np.ndarray, fmt: np.ndarray, o: Assumptions) -> np.ndarray:
    """FLOP/s ceiling of format ``fmt``: the measured MAMF (section 4), or the spec peak."""
    peak = table.flops[gi, fmt]
    if o.efficiency_basis == "peak":
        return peak
    frac = table.mamf_frac[gi, fmt]
    return peak * np.where(np.isnan(frac), o.unmeasured_mamf_fraction, frac)


@dataclass(frozen=True)
class Rates:
    """Achieved FLOP/s per kind of work (section 4): GEMMs in the scheme's format, the LM
    head in 16 bit (unless embeddings are quantized), attention in its kernel's format."""

    lin_dec: np.ndarray
    lin_pre: np.ndarray
    head_dec: np.ndarray
    head_pre: np.ndarray
    attn_dec: np.ndarray
    attn_pre: np.ndarray


def rates(table: GpuTable, gi: np.ndarray, scheme: np.ndarray, kv: np.ndarray, o: Assumptions) -> Rates:
    """``attention_format: fp8`` applies where the KV cache is 8-bit (an FP8 attention kernel
    reads an FP8 cache); a 16-bit cache keeps 16-bit attention."""
    fmt = _scheme_format(table, gi, scheme)
    f16 = _format_or(table, gi, _BF16, _format_or(table, gi, _FP16, fmt))
    head_fmt = fmt if o.quantize_embeddings else f16
    if o.attention_format == "weights":
        attn_fmt = fmt
    elif o.attention_format == "fp8":
        attn_fmt = np.where(_KV_BYTES[kv] <= 1.0, _format_or(table, gi, _FP8, f16), f16)
    else:
        attn_fmt = f16
    lin, head, attn = (_ceiling(table, gi, f, o) for f in (fmt, head_fmt, attn_fmt))
    ed, ep = table.eff_compute[gi], table.eff_prefill[gi]
    return Rates(
        lin_dec=lin * o.compute_efficiency * ed, lin_pre=lin * o.prefill_compute_efficiency * ep,
        head_dec=head * o.compute_efficiency * ed, head_pre=head * o.prefill_compute_efficiency * ep,
        attn_dec=attn * o.attention_efficiency * ed, attn_pre=attn * o.attention_efficiency * ep,
    )


def stage_factors(arch: Arch, pp: np.ndarray, o: Assumptions) -> tuple[np.ndarray, np.ndarray]:
    """(s_body, s_head): a pipeline cycle costs PP x the slowest stage (section 5). The
    slowest is the last: ceil(L/PP) layers and the LM head, so per cycle the layer terms
    count PP ceil(L/PP)/L times their whole-model total and the head PP times. 'even': 1, 1."""
    if o.pp_stage_model == "even":
        return np.ones_like(pp), np.ones_like(pp)
    L = float(arch.layers)
    return pp * np.ceil(L / pp) / L, pp.astype(float)


def per_layer_fixed(arch: Arch, o: Assumptions) -> float:
    """Fixed seconds of one layer's forward pass (section 4): its non-GEMM kernels
    (per_layer_overhead_s) and each GEMM's size-independent latency (gemm_latency_s)."""
    return o.per_layer_overhead_s + arch.gemms_per_layer * o.gemm_latency_s


def activation_bytes(arch: Arch, tp: np.ndarray, o: Assumptions) -> np.ndarray:
    """Bytes the non-GEMM kernels of one layer move per token on one GPU, mean over layers
    (section 4): the residual stream (hidden width, not split by TP; a layer without an FFN
    has one residual-add + norm of the two), the FFN's activation (its TP shard, on layers
    with an FFN) and the rotary embedding on the queries (MLA: their rope dimensions; none
    on state-space layers), in 16-bit activations."""
    ffn = arch.mlp_width / tp * (1.0 if arch.gated else 2.0 / 3.0)
    hidden_passes = o.activation_passes_hidden * (arch.ffn_share + (1.0 - arch.ffn_share) / 2.0)
    return ACTIVATION_BYTES * (hidden_passes * arch.hidden + o.activation_passes_ffn * ffn * arch.ffn_share
                               + o.activation_passes_attention * arch.rope_width / tp * arch.rope_share)


def cycle_overhead(arch: Arch, pp: np.ndarray, o: Assumptions) -> np.ndarray:
    """Fixed costs of one decode cycle: per-layer kernels of the slowest stage x PP, and per
    micro-batch the step overhead, the LM head GEMM's latency (last stage) and, with PP > 1,
    the micro-batch scheduling cost."""
    L = float(arch.layers)
    layer = per_layer_fixed(arch, o)
    if o.pp_stage_model == "even":
        return np.broadcast_to(layer * L + o.step_overhead_s + o.gemm_latency_s, pp.shape).astype(float)
    return (layer * pp * np.ceil(L / pp) + (o.step_overhead_s + o.gemm_latency_s) * pp
            + np.where(pp > 1, pp * o.pp_microbatch_overhead_s, 0.0))


def exposed_alltoall(t_ep, compute, tokens, o: Assumptions):
    """Expert all-to-all time left exposed (section 5): all of it, or with two-batch overlap
    (>= 2 sequences) only what exceeds the step's compute."""
    if o.ep_overlap == "none":
        return t_ep
    return np.where(np.asarray(tokens) >= 2, np.maximum(t_ep - compute, 0.0), t_ep)


def busiest_active(p: ParamCounts, o: Assumptions) -> float:
    """Non-embedding parameters the busiest expert-parallel rank multiplies per token
    (section 2): the routed experts' share scaled by expert_imbalance (tokens, not bytes)."""
    return p.active_nonembedding + (o.expert_imbalance - 1.0) * p.moe_layers * p.experts_per_token * p.expert_per_layer


def evaluate(model: ModelSpec, table: GpuTable, c: Configs, o: Assumptions) -> Evaluation:
    """Evaluate every configuration in ``c``. Rows with batch 0 or an invalid combination
    carry inf/NaN in the time fields; ``valid`` and ``invalid_reason`` say which."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return _evaluate(model, table, c, o)


def _evaluate(model: ModelSpec, table: GpuTable, c: Configs, o: Assumptions) -> Evaluation:
    arch = Arch.of(model)
    p = arch.params
    gi = c.gpu
    tp, pp, ep, B = c.tp, c.pp, c.ep, c.batch
    group = np.maximum(tp, ep)
    dp_attn = np.maximum(1.0, ep / tp)
    gpus = group * pp

    # Peak FLOP/s for the scheme's math format on this GPU (fallback: fp16 for bf16).
    peak = table.flops[gi, _MATH[c.scheme]]
    fb = _FALLBACK[c.scheme]
    peak = np.where(np.isnan(peak) & (fb >= 0), table.flops[gi, np.maximum(fb, 0)], peak)
    reason = np.zeros(len(c), dtype=np.int64)
    reason = np.where(np.isnan(peak), 1, reason)
    reason = np.where(arch.heads % tp != 0, 2, reason)
    reason = np.where(pp > arch.layers, 3, reason)
    bad_ep = (ep > 1) & ((p.num_experts == 0) | (np.mod(p.num_experts, ep) != 0))
    reason = np.where(bad_ep, 4, reason)
    reason = np.where((np.mod(ep, tp) != 0) & (np.mod(tp, ep) != 0), 5, reason)
    valid = reason == 0

    b_w = _BITS[c.scheme] / 8.0
    b_x = _XBITS[c.scheme] / 8.0
    b_e = b_w if o.quantize_embeddings else np.full_like(b_w, EMBEDDING_BYTES)
    b_kv = _KV_BYTES[c.kv]

    # Section 3: share of KV heads (and of Wk, Wv) each GPU holds.
    if arch.kv_replicates:
        kv_frac = np.ceil(arch.kv_heads / tp) / arch.kv_heads
    else:
        kv_frac = np.ones_like(tp)
    kv_frac_w = np.maximum(kv_frac, 1.0 / tp) if arch.kv_replicates else 1.0 / tp

    mem = _memory(arch, o, table, c, tp, pp, group, gpus, b_w, b_x, b_e, b_kv, kv_frac, kv_frac_w)
    dec = _decode(arch, o, table, c, tp, pp, ep, group, dp_attn, b_w, b_x, b_e, b_kv, kv_frac, kv_frac_w, peak)
    pre = _prefill(arch, o, table, c, tp, pp, ep, group, b_w, b_x, b_e, peak)

    concurrency = B * pp * dp_attn
    # concurrency x E / cycle: tpot is the cycle / E (section 4, speculative decoding)
    decode_tps = concurrency / dec["tpot"]
    cycle = dec.pop("cycle")
    prefill_busy = pre.pop("prefill_busy")
    if o.include_prefill_in_throughput:
        out = c.output_tokens
        # Section 5: a prompt's chunk rides on one micro-batch; the cycle is PP x the slowest
        # micro-batch, so the other PP - 1 wait for its stage time (pp_prefill_bubble).
        bubble = 1.0 + (pp - 1.0) * o.pp_prefill_bubble
        throughput = concurrency * out / (out * dec["tpot"] + B * prefill_busy * bubble)
    else:
        throughput = decode_tps
    bw_peak = table.bandwidth[gi]
    mbu = dec["bytes_per_step"] / cycle / bw_peak
    mfu = dec["flops_per_step"] / cycle / peak
    return Evaluation(
        valid=valid, invalid_reason=reason, gpus=gpus, concurrency=concurrency, **mem, **dec, **pre,
        decode_tokens_per_s=decode_tps, throughput_tokens_per_s=throughput, mbu=mbu, mfu=mfu,
        peak_flops=peak, power_w=gpus * table.power[gi],
    )


def _memory(arch, o, table, c, tp, pp, group, gpus, b_w, b_x, b_e, b_kv, kv_frac, kv_frac_w) -> dict:
    """Section 3: per-GPU memory by component, and the largest batch that fits."""
    p = arch.params
    L_all = p.dense_layers + p.moe_layers
    kvproj = L_all * p.kv_projection_per_layer
    layers = (p.layers_always - kvproj) / tp + kvproj * kv_frac_w
    # EPLB's redundant replicas (section 3): R more experts per MoE layer over the EP group
    redundant = np.where(c.ep > 1, o.redundant_experts * p.moe_layers * p.expert_per_layer, 0.0)
    experts = (p.experts_total + redundant) / group
    emb = np.where(pp == 1, p.embeddings, max(p.embedding, p.lm_head or p.embedding))
    weights = (layers * b_w + experts * b_x) / pp + emb * b_e / tp
    context = c.input_tokens + c.output_tokens
    kv_per_seq = kv_bytes_per_sequence(arch.attention, context, b_kv) * kv_frac
    kv = c.batch * kv_per_seq
    g = 3.0 if arch.gated else 2.0
    width = 2.0 * arch.hidden + (arch.q_width + arch.kv_elements) / tp + g * arch.mlp_width / tp
    act = o.max_batched_tokens * ACTIVATION_BYTES * width + o.activation_allowance_of_weights * weights
    reserve = o.framework_reserve_bytes + np.where(gpus > 1, o.nccl_reserve_bytes, 0.0)
    capacity = table.memory[c.gpu]
    if o.kv_budget == "free":   # TensorRT-LLM: a fraction of the memory left after everything but KV
        non_kv = weights + act + reserve
        usable = non_kv + o.memory_utilization * np.maximum(capacity - non_kv, 0.0)
        usable = np.where(non_kv > capacity, capacity, usable)
    else:                       # vLLM: a fraction of all memory
        usable = o.memory_utilization * capacity
    total = weights + kv + act + reserve
    room = usable - weights - act - reserve
    max_batch = np.where(room > 0, np.floor(room / kv_per_seq), 0.0)
    return dict(
        weights_bytes=weights, kv_cache_bytes=kv, activation_bytes=act, reserve_bytes=reserve,
        total_bytes=total, usable_bytes=usable, capacity_bytes=table.memory[c.gpu],
        kv_bytes_per_sequence=kv_per_seq, max_batch=max_batch, fits=total <= usable,
    )


def experts_touched_vary(arch: Arch, o: Assumptions) -> bool:
    """Whether ``_experts_touched`` (hence the weight bytes read) depends on the token count."""
    return arch.params.num_experts > 0 and o.moe_expert_reads not in ("all", "routed-only")


def weight_bytes_read_fn(arch, o, tp, group, kv_frac_w, b_w, b_x, b_e):
    """``_weight_bytes_read`` as a function of the routed tokens, its token-independent terms
    computed once per configuration (for callers that evaluate it at many token counts)."""
    p = arch.params
    L_all = p.dense_layers + p.moe_layers
    kvproj = L_all * p.kv_projection_per_layer
    always = (p.layers_always - kvproj) / tp + kvproj * kv_frac_w
    head = (p.lm_head or p.embedding) / tp * b_e

    def read(routed_tokens):
        touched = _experts_touched(arch, routed_tokens, o)
        experts = p.moe_layers * touched * p.expert_per_layer / group
        return always * b_w + experts * b_x + head
    return read


def _weight_bytes_read(arch, o, tp, group, kv_frac_w, b_w, b_x, b_e, routed_tokens) -> np.ndarray:
    """Weight bytes one GPU reads for one forward pass over all layers (section 2); the
    routed experts at ``b_x`` bytes per weight, every other layer weight at ``b_w``."""
    return weight_bytes_read_fn(arch, o, tp, group, kv_frac_w, b_w, b_x, b_e)(routed_tokens)


def cycle_weight_bytes_fn(arch, o, tp, group, kv_frac_w, b_w, b_x, b_e, s_body, s_head):
    """``_cycle_weight_bytes`` as a function of the routed tokens (see ``weight_bytes_read_fn``)."""
    read = weight_bytes_read_fn(arch, o, tp, group, kv_frac_w, b_w, b_x, b_e)
    head = (arch.params.lm_head or arch.params.embedding) / tp * b_e

    def cycle(routed_tokens):
        return (read(routed_tokens) - head) * s_body + head * s_head
    return cycle


def _cycle_weight_bytes(arch, o, tp, group, kv_frac_w, b_w, b_x, b_e, routed_tokens, s_body, s_head) -> np.ndarray:
    """Weight bytes of one decode cycle counted at the slowest stage (x PP): the layers'
    bytes x s_body plus the LM head's x s_head (``stage_factors``)."""
    return cycle_weight_bytes_fn(arch, o, tp, group, kv_frac_w, b_w, b_x, b_e, s_body, s_head)(routed_tokens)


def query_tokens(o: Assumptions) -> int:
    """Query tokens one sequence puts through a decode (verify) step: k = ``speculative_tokens``
    drafts plus the target's own next token, 1 without speculative decoding (section 4)."""
    return o.speculative_tokens + 1


def tokens_per_step(o: Assumptions) -> float:
    """Expected tokens one sequence emits per decode (verify) step (docs/model.md section 4,
    'Speculative decoding / MTP'): with k = ``speculative_tokens`` draft tokens, each accepted
    independently with probability alpha = ``speculative_acceptance``, the step keeps the
    accepted prefix and the target's own next token (Leviathan et al. 2023):
    E = 1 + alpha + ... + alpha^k = (1 - alpha^(k+1)) / (1 - alpha)  [tokens / step],
    k + 1 at alpha = 1, exactly 1 when speculative decoding is off (k = 0)."""
    k, a = o.speculative_tokens, o.speculative_acceptance
    if k == 0:
        return 1.0
    if a >= 1.0:
        return float(k + 1)
    return (1.0 - a ** (k + 1)) / (1.0 - a)


def tokens_per_step_variance(o: Assumptions) -> float:
    """Variance of the tokens X = 1 + min(G, k) one sequence emits per step, G the run of
    accepted drafts (P(G >= j) = alpha^j) [tokens^2]; 0 without speculative decoding."""
    k, a = o.speculative_tokens, o.speculative_acceptance
    if k == 0 or a >= 1.0:
        return 0.0
    probs = [a ** j * (1.0 - a) for j in range(k)] + [a ** k]      # P(X = 1 + j), j = 0..k
    m1 = sum(p * (1 + j) for j, p in enumerate(probs))
    m2 = sum(p * (1 + j) ** 2 for j, p in enumerate(probs))
    return m2 - m1 * m1


def _decode(arch, o, table, c, tp, pp, ep, group, dp_attn, b_w, b_x, b_e, b_kv, kv_frac, kv_frac_w, peak) -> dict:
    """Sections 4-5: one decode step per stage, summed over the pipeline cycle.

    Speculative decoding (k = ``speculative_tokens`` > 0; section 4, 'Speculative decoding /
    MTP'): the step is a *verify* pass of q = k + 1 query tokens per sequence (the GEMM and
    LM-head FLOPs, attention FLOPs, activation bytes, all-reduce and all-to-all messages and
    the routed tokens scale with q; the KV bytes read and the weight bytes do not, except the
    experts the q B tokens touch), plus the drafting of k tokens (``draft``), and TPOT is
    that cycle / E (``tokens_per_step``) seconds per output token."""
    p = arch.params
    gi, B = c.gpu, c.batch
    h = float(arch.hidden)
    bw = table.bandwidth[gi] * table.eff_memory[gi] * o.memory_bandwidth_efficiency  # calibrated per family
    R = rates(table, gi, c.scheme, c.kv, o)
    s_body, s_head = stage_factors(arch, pp, o)
    on = 1.0 if o.include_compute else 0.0
    head = float(p.lm_head or p.embedding)
    ctx = c.input_tokens + c.output_tokens / 2.0          # mean context over the decode
    k = o.roofline_sharpness
    tp_bw, tp_lat = _link(table, gi, tp)
    n_ar = (2.0 * p.dense_layers + np.where(ep > 1, 1.0, 2.0) * p.moe_layers) / pp * s_body
    head_cycle_bytes = head / tp * b_e * s_head        # LM-head weight bytes of one cycle (slowest stage x PP)

    def step(q: float, hd: float) -> dict:
        """One decode cycle with q query tokens per sequence (1 without speculation), with its
        LM head (hd = 1) or without (hd = 0: the draft's layers, section 4). Exact at q = hd = 1."""
        # Every term below is the slowest stage's (section 5): layer terms x s_body / PP, head x s_head / PP.
        w_bytes = (_cycle_weight_bytes(arch, o, tp, group, kv_frac_w, b_w, b_x, b_e, B * q * dp_attn, s_body, s_head)
                   - (1.0 - hd) * head_cycle_bytes) / pp
        lin_flops = 2.0 * B * q * (p.active_nonembedding + hd * head) / tp / pp
        t_w = w_bytes / bw
        t_lin = (on * 2.0 * B * q * (busiest_active(p, o) * s_body / R.lin_dec + hd * head * s_head / R.head_dec)
                 / tp / pp)
        if o.include_kv_reads:
            # the q queries of a sequence read its cached context once (bytes not x q); FLOPs x q
            kv_bytes = B * kv_read_bytes(arch.attention, ctx, b_kv) * kv_frac / pp
            attn_flops = B * q * decode_attention_flops(arch.attention, ctx) / tp / pp
        else:
            kv_bytes = attn_flops = np.zeros_like(B)
        t_kv = kv_bytes * s_body / bw
        t_attn = on * attn_flops * s_body / R.attn_dec

        msg = B * q * h * ACTIVATION_BYTES
        t_ar = _transfer(tp_lat, _allreduce_factor(tp, o) * msg, tp_bw, o)
        t_tp = np.where(tp > 1, n_ar * t_ar, 0.0)
        t_ep = _alltoall(arch, o, table, gi, tp, ep, B * q) * p.moe_layers / pp * s_body
        t_pp = _pipeline_hops(o, table, gi, tp, pp, msg, wraparound=True)

        compute = _smax(t_w, t_lin, k) + _smax(t_kv, t_attn, k)
        comm = t_tp + exposed_alltoall(t_ep, compute, B * q, o)
        # non-GEMM kernels: their fixed costs, and the activations they move for B q tokens (slowest stage)
        act_bytes = B * q * activation_bytes(arch, tp, o) * arch.layers * s_body / pp
        t_act = act_bytes / bw
        overhead = cycle_overhead(arch, pp, o) - (1.0 - hd) * o.gemm_latency_s * s_head
        if o.overlap_comm:
            cycle = np.maximum(pp * compute, pp * comm + t_pp) + overhead + pp * t_act
        else:
            cycle = pp * (compute + comm) + t_pp + overhead + pp * t_act
        return dict(t_w=t_w, t_lin=t_lin, t_kv=t_kv, t_attn=t_attn, t_tp=t_tp, t_ep=t_ep, t_pp=t_pp,
                    t_act=t_act, overhead=overhead, cycle=cycle, kv_bytes=kv_bytes, act_bytes=act_bytes,
                    lin_flops=lin_flops, attn_flops=attn_flops)

    n_draft = o.speculative_tokens
    v = step(float(query_tokens(o)), 1.0)           # the (verify) step
    cycle = v["cycle"]
    bytes_per_step = (_weight_bytes_read(arch, o, tp, group, kv_frac_w, b_w, b_x, b_e,
                                         B * float(query_tokens(o)) * dp_attn)
                      + pp * (v["kv_bytes"] + v["act_bytes"]))
    flops_per_step = pp * (v["lin_flops"] + v["attn_flops"])
    if n_draft > 0:
        # k drafts per cycle, each: draft_layers / L of the ordinary (q = 1) decode cycle of this
        # batch without its LM head, plus one LM-head pass over the B sequences [s]
        base = step(1.0, 0.0)
        frac = o.speculative_draft_layers / float(arch.layers)
        head_pass = (_smax(head_cycle_bytes / bw, on * 2.0 * B * head * s_head / tp / R.head_dec, k)
                     + o.gemm_latency_s * s_head)
        cycle = cycle + n_draft * (frac * base["cycle"] + head_pass)
        body_bytes = _weight_bytes_read(arch, o, tp, group, kv_frac_w, b_w, b_x, b_e, B * dp_attn) - head / tp * b_e
        bytes_per_step = bytes_per_step + n_draft * (
            frac * (body_bytes + pp * (base["kv_bytes"] + base["act_bytes"])) + head / tp * b_e)
        flops_per_step = flops_per_step + n_draft * (
            frac * pp * (base["lin_flops"] + base["attn_flops"]) + 2.0 * B * head / tp)
        tpot = cycle / tokens_per_step(o)
    else:
        tpot = cycle
    # Shares are each term's own time over the cycle, as it is (section 4): weight reads and
    # GEMMs overlap, so the shares can sum past 1; none is zeroed by the roofline. With
    # speculative decoding the terms are the verify pass's; the draft is in the cycle only.
    share = lambda t: pp * t / cycle  # noqa: E731
    t_w, t_lin, t_kv, t_attn, t_tp, t_ep, t_pp, t_act = (
        v[x] for x in ("t_w", "t_lin", "t_kv", "t_attn", "t_tp", "t_ep", "t_pp", "t_act"))
    overhead = v["overhead"]
    return dict(
        t_weights=t_w, t_linear_compute=t_lin, t_kv=t_kv, t_attn_compute=t_attn,
        t_tp_comm=t_tp, t_ep_comm=t_ep, t_pp_comm=t_pp, t_activations=t_act,
        t_overhead=np.broadcast_to(overhead, B.shape).copy(),
        tpot=tpot,
        share_weights=share(t_w),
        share_compute=share(t_lin + t_attn),
        share_kv=share(t_kv),
        share_activations=share(t_act),
        share_comm=(pp * (t_tp + t_ep) + t_pp) / cycle,
        share_overhead=overhead / cycle,
        bytes_per_step=bytes_per_step,
        flops_per_step=flops_per_step,
        cycle=cycle,
    )


def _alltoall(arch, o, table, gi, tp, ep, tokens) -> np.ndarray:
    """Dispatch + combine all-to-all of one MoE layer with expert parallelism (section 5)."""
    k = arch.params.experts_per_token
    bw, lat = _link(table, gi, ep)
    per_gpu = tokens / tp * k * arch.hidden * ACTIVATION_BYTES * (ep - 1) / ep * o.expert_imbalance
    return np.where(ep > 1, 2.0 * _transfer(lat, per_gpu, bw, o), 0.0)


def _pipeline_hops(o, table, gi, tp, pp, msg, *, wraparound: bool) -> np.ndarray:
    """Stage-to-stage hops, intra- or inter-node (section 5): the PP-1 forward hops, plus,
    for a decode cycle, the hop from the last stage back to the first."""
    per_gpu_msg = msg / tp if o.pp_hop_message == "shard" else msg
    stages_per_domain = np.maximum(1.0, np.floor(table.domain[gi] / tp))
    domains = np.ceil(pp / stages_per_domain)
    cross = domains - 1.0
    intra_hops = np.maximum(pp - 1.0 - cross, 0.0)
    peer = table.intra_peer_bw[gi]
    intra_bw = np.where(np.isnan(peer), table.intra_bw[gi], peer)
    t_intra = _transfer(table.intra_latency[gi], per_gpu_msg, intra_bw, o)
    t_inter = _transfer(table.inter_latency[gi], per_gpu_msg, table.inter_bw[gi], o)
    wrap: np.ndarray | float
    if not wraparound:
        wrap = 0.0
    elif o.pp_wraparound_hop == "activation":
        wrap = np.where(domains > 1, t_inter, t_intra)
    else:
        wrap = np.where(domains > 1, table.inter_latency[gi], table.intra_latency[gi])
    total = intra_hops * t_intra + cross * t_inter + wrap
    return np.where(pp > 1, total, 0.0)


def _prefill(arch, o, table, c, tp, pp, ep, group, b_w, b_x, b_e, peak) -> dict:
    """Section 4: TTFT of one request of S prompt tokens on an idle replica (no queueing)."""
    p = arch.params
    gi, S = c.gpu, c.input_tokens
    L, h = float(arch.layers), float(arch.hidden)
    kv_frac_w = 1.0 / tp
    w_bytes = _weight_bytes_read(arch, o, tp, group, kv_frac_w, b_w, b_x, b_e, S)
    head = float(p.lm_head or p.embedding)
    attn = prefill_attention_flops(arch.attention, S)
    flops = (2.0 * S * p.active_nonembedding + 2.0 * head + attn) / tp
    R = rates(table, gi, c.scheme, c.kv, o)
    on = 1.0 if o.include_compute else 0.0
    bw = table.bandwidth[gi] * table.eff_memory[gi] * o.memory_bandwidth_efficiency
    t_bytes = w_bytes / bw
    t_flops = on * (2.0 * S * busiest_active(p, o) / R.lin_pre + 2.0 * head / R.head_pre + attn / R.attn_pre) / tp
    k = o.roofline_sharpness
    compute = _smax(t_bytes, t_flops, k)
    tp_bw, tp_lat = _link(table, gi, tp)
    msg = S * h * ACTIVATION_BYTES
    n_ar = 2.0 * p.dense_layers + np.where(ep > 1, 1.0, 2.0) * p.moe_layers
    t_tp = np.where(tp > 1, n_ar * _transfer(tp_lat, _allreduce_factor(tp, o) * msg, tp_bw, o), 0.0)
    t_ep = _alltoall(arch, o, table, gi, tp, ep, S) * p.moe_layers
    hops = _pipeline_hops(o, table, gi, tp, pp, msg, wraparound=False)
    comm = t_tp + exposed_alltoall(t_ep, compute, S, o) + hops
    overhead = per_layer_fixed(arch, o) * L + o.step_overhead_s + o.gemm_latency_s
    # the activations the non-GEMM kernels move: per token, so a chunk's share is the request's own
    t_act = S * activation_bytes(arch, tp, o) * L / bw
    ttft = (np.maximum(compute, comm) if o.overlap_comm else compute + comm) + overhead + t_act
    # Under load, prefills run in chunks of max_batched_tokens: a request's share of a chunk
    # pays its own FLOPs and collectives but only its share of the weight reads and of the
    # per-step overheads (section 4).
    share = S / np.maximum(float(o.max_batched_tokens), S)
    busy_compute = _smax(t_flops, t_bytes * share, k)
    busy = (np.maximum(busy_compute, comm) if o.overlap_comm else busy_compute + comm) + overhead * share + t_act
    return dict(ttft=ttft, ttft_compute=compute, ttft_comm=comm, prefill_flops=flops, prefill_busy=busy)


def regime_shares(ev: Evaluation, j: int) -> dict[str, float]:
    """Each term's own time / TPOT for configuration ``j`` (section 4: they overlap, so they
    may add up past 1); the one home of the shares' names."""
    return {"weights": float(ev.share_weights[j]), "kv_cache": float(ev.share_kv[j]),
            "activations": float(ev.share_activations[j]), "compute": float(ev.share_compute[j]),
            "communication": float(ev.share_comm[j]), "overhead": float(ev.share_overhead[j])}


def regime_of(shares: dict[str, float]) -> str:
    """Name the term that dominates the decode step (shares of TPOT from ``evaluate``)."""
    groups = {
        "bandwidth-bound": shares["weights"] + shares["kv_cache"] + shares.get("activations", 0.0),
        "compute-bound": shares["compute"],
        "communication-bound": shares["communication"],
        "overhead-bound": shares["overhead"],
    }
    return max(groups, key=groups.get)  # type: ignore[arg-type]


def critical_batch(peak_flops: np.ndarray | float, bandwidth: np.ndarray | float,
                   bytes_per_weight: np.ndarray | float) -> np.ndarray | float:
    """Batch at which a decode GEMM turns compute-bound: 2B FLOPs per weight of b_w bytes
    take as long as reading it, B_crit = F * b_w / (2 * BW) (section 4)."""
    return peak_flops * bytes_per_weight / (2.0 * bandwidth)


def minimum_gpus(ev: Evaluation, o: Assumptions) -> np.ndarray:
    """Fewest GPUs whose usable memory holds the model, from an evaluation made at
    TP = PP = 1 (seed 002 rows 3-4; seed 004's rule of thumb). Weights, their activation
    allowance and the KV cache split across GPUs; the framework reserve and the activations
    of one forward pass are paid on every GPU."""
    allowance = o.activation_allowance_of_weights * ev.weights_bytes
    shared = ev.weights_bytes + allowance + ev.kv_cache_bytes
    room = ev.usable_bytes - ev.reserve_bytes - (ev.activation_bytes - allowance)
    safe_room = np.where(room > 0, room, 1.0)
    return np.where(room > 0, np.ceil(shared / safe_room - 1e-9), np.inf)
