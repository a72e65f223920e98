"""The terms of one forward pass, shared by the decode step, the prefill and the memory
model (docs/model.md sections 2-5): a model's per-token sizes (``Arch``), the achieved
FLOP/s per kind of work, links and collectives, the weight bytes a pass reads, the fixed
costs of its kernels, speculative decoding's tokens per step. Vectorised over
configurations; units: bytes, seconds, FLOP, bytes/s, FLOP/s. Nothing here imports a solver.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.catalog.schema import MATH_FORMATS, ModelSpec
from planner.physics.attention import AttentionLayout, attention_layout
from planner.physics.options import Assumptions
from planner.physics.params import ParamCounts, count_parameters
from planner.physics.quant import ACTIVATION_BYTES, EMBEDDING_BYTES, KV_DTYPES, SCHEMES
from planner.physics.space import SCHEME_NAMES, Configs, GpuTable

SCHEME_BITS = np.array([SCHEMES[s].bits_per_weight for s in SCHEME_NAMES])
SCHEME_MATH = np.array([MATH_FORMATS.index(SCHEMES[s].math_format) for s in SCHEME_NAMES])
SCHEME_FALLBACK = np.array([
    MATH_FORMATS.index(SCHEMES[s].fallback_format) if SCHEMES[s].fallback_format else -1
    for s in SCHEME_NAMES
])
SCHEME_XBITS = np.array([SCHEMES[s].expert_bits for s in SCHEME_NAMES])   # routed experts (Scheme.expert_bits)
SCHEME_XMATH = np.array([MATH_FORMATS.index(f) if (f := SCHEMES[s].expert_native_format) else -1
                         for s in SCHEME_NAMES])   # routed experts on a GPU with fp4 math (Scheme.expert_native_format)
KV_BYTES = np.array(list(KV_DTYPES.values()))
_BF16, _FP16, _FP8, _FP4 = (MATH_FORMATS.index(f) for f in ("bf16", "fp16", "fp8", "fp4"))


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


def link(table: GpuTable, gi: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bandwidth, latency) of a collective among n GPUs: intra-node inside the fast domain."""
    intra = n <= table.domain[gi]
    peer = table.intra_peer_bw[gi]
    intra_bw = np.where(np.isnan(peer), table.intra_bw[gi], np.minimum(table.intra_bw[gi], peer * np.maximum(n - 1, 1)))
    bw = np.where(intra, intra_bw, table.inter_bw[gi])
    lat = np.where(intra, table.intra_latency[gi], table.inter_latency[gi])
    return bw, lat


def transfer(latency: np.ndarray, nbytes: np.ndarray, bw: np.ndarray, o: Assumptions) -> np.ndarray:
    """Alpha-beta cost of one transfer (section 5)."""
    beta = nbytes / (bw * o.comm_efficiency)
    return np.maximum(latency, beta) if o.comm_latency == "max" else latency + beta


def allreduce_factor(n: np.ndarray, o: Assumptions) -> np.ndarray:
    if o.allreduce == "ring":
        return 2.0 * (n - 1) / n
    if o.allreduce == "all-gather":
        return (n - 1) / n
    return np.ones_like(n)


def experts_touched(arch: Arch, tokens: np.ndarray, o: Assumptions) -> np.ndarray:
    """Expected distinct experts per MoE layer hit by ``tokens`` routed tokens (section 2)."""
    E, k = arch.params.num_experts, arch.params.experts_per_token
    if E == 0:
        return np.zeros_like(tokens)
    if o.moe_expert_reads == "all":
        return np.full_like(tokens, float(E))
    if o.moe_expert_reads == "routed-only":
        return np.full_like(tokens, float(k))
    return expected_touched(arch, tokens)


def expected_touched(arch: Arch, tokens):
    """E (1 - (1 - k/E)^max(tokens, 1)): the distinct experts ``tokens`` routed tokens hit on
    average, each picking k of E at random (section 2); ``experts_touched``'s default and the
    rows ``moe_padding`` spreads over. A step's weight reads and padding take it at the same
    tokens (``StepPhysics.touched`` computes it once for both). Where (1 - k/E)^tokens is
    below 2^-60 its 1 - x is exactly 1.0 in floating point: E without the power (most of a
    fleet's steps, and the power costs ~30 other operations), the same figures bit for bit."""
    E, k = arch.params.num_experts, arch.params.experts_per_token
    miss = 1.0 - k / E                                  # an expert's chance to miss one token
    m = np.maximum(tokens, 1.0)
    if np.ndim(m) == 0:
        return E * (1.0 - miss ** m)
    out = np.full(np.shape(m), float(E))
    with np.errstate(divide="ignore"):
        some = ~(m > 60.0 * np.log(2.0) / -np.log(miss))  # miss^m >= 2^-60 (and nan): the power
    out[some] = E * (1.0 - miss ** m[some])
    return out


def smax(a, b, k: float):
    """Smooth roofline (section 4): (a^k + b^k)^(1/k); k = 0 is the pure max(a, b). Equal
    terms cost 2^(1/k) x either (k = 3: 1.26, the ridge runs at 79 % of the pure roofline)."""
    if k <= 0:
        return np.maximum(a, b)
    m = np.maximum(a, b)
    ok = np.isfinite(m) & (m > 0)
    if ok.all():      # the common case, without the where()s (the same figures: safe is m)
        # the larger term over m is 1.0 exactly and 1.0 ** k is 1.0: one power, not two (the
        # same figures, bit for bit: the sum of the same two numbers)
        return m * (1.0 + (np.minimum(a, b) / m) ** k) ** (1.0 / k)
    safe = np.where(ok, m, 1.0)
    return np.where(ok, safe * ((a / safe) ** k + (b / safe) ** k) ** (1.0 / k), m)


def smax_scalar(a: float, b: float, k: float) -> float:
    m = a if a > b else b
    if k <= 0 or not (0.0 < m < float("inf")):
        return m
    return m * ((a / m) ** k + (b / m) ** k) ** (1.0 / k)


def _scheme_format(table: GpuTable, gi: np.ndarray, scheme: np.ndarray) -> np.ndarray:
    """Index of the math format a scheme's GEMMs run at on each GPU (fallback where absent)."""
    f, fb = SCHEME_MATH[scheme], SCHEME_FALLBACK[scheme]
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
    expert_dec: np.ndarray    # the routed experts' GEMMs (before grouped_gemm_*efficiency)
    expert_pre: np.ndarray


def rates(table: GpuTable, gi: np.ndarray, scheme: np.ndarray, kv: np.ndarray, o: Assumptions) -> Rates:
    """``attention_format: fp8`` applies where the KV cache is 8-bit (an FP8 attention kernel
    reads an FP8 cache); a 16-bit cache keeps 16-bit attention."""
    fmt = _scheme_format(table, gi, scheme)
    f16 = _format_or(table, gi, _BF16, _format_or(table, gi, _FP16, fmt))
    head_fmt = fmt if o.quantize_embeddings else f16
    if o.attention_format == "weights":
        attn_fmt = fmt
    elif o.attention_format == "fp8":
        attn_fmt = np.where(KV_BYTES[kv] <= 1.0, _format_or(table, gi, _FP8, f16), f16)
    else:
        attn_fmt = f16
    # the routed experts in their native format where the scheme has one and the GPU has fp4 math
    xm = SCHEME_XMATH[scheme]
    expert_fmt = np.where((xm >= 0) & ~np.isnan(table.flops[gi, _FP4]), np.maximum(xm, 0), fmt)
    lin, head, attn, expert = (_ceiling(table, gi, f, o) for f in (fmt, head_fmt, attn_fmt, expert_fmt))
    ed, ep = table.eff_compute[gi], table.eff_prefill[gi]
    return Rates(
        lin_dec=lin * o.compute_efficiency * ed, lin_pre=lin * o.prefill_compute_efficiency * ep,
        head_dec=head * o.compute_efficiency * ed, head_pre=head * o.prefill_compute_efficiency * ep,
        attn_dec=attn * o.attention_efficiency * ed, attn_pre=attn * o.attention_efficiency * ep,
        expert_dec=expert * o.compute_efficiency * ed, expert_pre=expert * o.prefill_compute_efficiency * ep,
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
    """Fixed seconds of one layer's forward pass, mean over the layers (section 4): its
    non-GEMM kernels (per_layer_overhead_s), each GEMM's size-independent latency
    (gemm_latency_s) and, on the MoE layers' share, their routing kernels (moe_layer_overhead_s)."""
    moe_share = arch.params.moe_layers / float(arch.layers) if arch.layers else 0.0
    return o.per_layer_overhead_s + arch.gemms_per_layer * o.gemm_latency_s + moe_share * o.moe_layer_overhead_s


def attention_dp_overhead(arch: Arch, dp_attn: np.ndarray, o: Assumptions) -> np.ndarray:
    """Fixed seconds a decode cycle adds where attention is data-parallel (``dp_attn`` > 1):
    ``attention_dp_layer_overhead_s`` per MoE layer (docs/validation.md, 'Attention DP');
    0 otherwise."""
    return np.where(np.asarray(dp_attn) > 1.0, arch.params.moe_layers * o.attention_dp_layer_overhead_s, 0.0)


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


def routed_active(p: ParamCounts, o: Assumptions) -> float:
    """The routed experts' part of ``busiest_active``: k experts per MoE layer, x the busiest
    rank's imbalance; their GEMMs are grouped (``grouped_gemm_efficiency``, ``moe_padding``)."""
    return o.expert_imbalance * p.moe_layers * p.experts_per_token * p.expert_per_layer


def moe_padding(arch: Arch, o: Assumptions, routed_tokens, touched=None):
    """Rows the grouped expert GEMMs compute per routed row (>= 1), for ``routed_tokens``
    tokens routed in a step (section 4, 'grouped GEMMs'): each touched expert's m = tokens k /
    touched rows are padded to whole tiles of t = ``moe_gemm_tile_tokens``, on average
    m + t (1 - min(m / t, 1) / 2) rows (a whole tile below one; half a tile of waste above),
    so a few tokens per expert cost a tile's FLOPs. 1 without padding or experts. ``touched``:
    ``expected_touched`` at these tokens, if the caller has it."""
    E, k, t = arch.params.num_experts, arch.params.experts_per_token, float(o.moe_gemm_tile_tokens)
    tokens = np.asarray(routed_tokens, dtype=float)
    if E == 0 or t == 0:
        return np.ones_like(tokens)
    touched = expected_touched(arch, tokens) if touched is None else touched
    m = np.maximum(tokens, 1.0) * k / touched
    return (m + t * (1.0 - np.minimum(m / t, 1.0) / 2.0)) / m


NON_GEMM_KERNELS = 7.0
"""Kernels of a layer besides its GEMMs (two fused residual-add + RMSNorm, rotary embedding,
attention, activation, and two more: docs/model.md section 4's 'about seven per layer' [AIC])."""
MOE_ROUTING_KERNELS = 4.0
"""Kernels an MoE layer adds for its routing: top-k, sorting the tokens by expert, the
permute and the weighted un-permute."""


def kernels_per_forward(arch: Arch) -> float:
    """Kernels one forward pass launches, LM head included (what an eager step's host
    launches): each layer's GEMMs (``gemm_count``), its other kernels, and an MoE layer's
    routing kernels."""
    p = arch.params
    return arch.layers * (arch.gemms_per_layer + NON_GEMM_KERNELS) + p.moe_layers * MOE_ROUTING_KERNELS + 1.0


def host_bound(o: Assumptions) -> bool:
    """Whether the engine's host work can bound a step (any of its host times is set)."""
    return o.host_step_s > 0.0 or o.host_per_sequence_s > 0.0 or o.host_launch_s > 0.0


def host_time(o: Assumptions, arch: Arch, sequences, tokens, where=np.where):
    """Host seconds of one engine step (section 4, 'the host-bound floor'): the step's fixed
    host work, its sequences' share, and, for a step of more tokens than the engine replays
    from CUDA graphs, the launch of every kernel of the forward pass one by one. ``where``:
    numpy's, or one on plain floats (the simulator's step)."""
    return (o.host_step_s + sequences * o.host_per_sequence_s
            + where(tokens > o.cuda_graph_max_tokens, kernels_per_forward(arch) * o.host_launch_s, 0.0))


def experts_touched_vary(arch: Arch, o: Assumptions) -> bool:
    """Whether ``experts_touched`` (hence the weight bytes read) depends on the token count."""
    return arch.params.num_experts > 0 and o.moe_expert_reads not in ("all", "routed-only")


def weight_bytes_read_fn(arch, o, tp, group, kv_frac_w, b_w, b_x, b_e):
    """``weight_bytes_read`` as a function of the routed tokens, its token-independent terms
    computed once per configuration (for callers that evaluate it at many token counts)."""
    p = arch.params
    L_all = p.dense_layers + p.moe_layers
    kvproj = L_all * p.kv_projection_per_layer
    always = (p.layers_always - kvproj) / tp + kvproj * kv_frac_w
    head = (p.lm_head or p.embedding) / tp * b_e

    def read(routed_tokens, touched=None):
        """``touched``: ``experts_touched`` at these tokens, if the caller has it."""
        touched = experts_touched(arch, routed_tokens, o) if touched is None else touched
        experts = p.moe_layers * touched * p.expert_per_layer / group
        return always * b_w + experts * b_x + head
    return read


def weight_bytes_read(arch, o, tp, group, kv_frac_w, b_w, b_x, b_e, routed_tokens) -> np.ndarray:
    """Weight bytes one GPU reads for one forward pass over all layers (section 2); the
    routed experts at ``b_x`` bytes per weight, every other layer weight at ``b_w``."""
    return weight_bytes_read_fn(arch, o, tp, group, kv_frac_w, b_w, b_x, b_e)(routed_tokens)


def cycle_weight_bytes_fn(arch, o, tp, group, kv_frac_w, b_w, b_x, b_e, s_body, s_head):
    """``cycle_weight_bytes`` as a function of the routed tokens (see ``weight_bytes_read_fn``)."""
    read = weight_bytes_read_fn(arch, o, tp, group, kv_frac_w, b_w, b_x, b_e)
    head = (arch.params.lm_head or arch.params.embedding) / tp * b_e

    def cycle(routed_tokens, touched=None):
        return (read(routed_tokens, touched) - head) * s_body + head * s_head
    return cycle


def cycle_weight_bytes(arch, o, tp, group, kv_frac_w, b_w, b_x, b_e, routed_tokens, s_body, s_head) -> np.ndarray:
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


def allreduces(o: Assumptions, count, lat, bw, factor, tp, msg) -> np.ndarray:
    """``count`` TP all-reduces of ``msg`` bytes each (section 5): a ring sends ``factor`` =
    ``allreduce_factor(tp)`` of the message per GPU; none without TP."""
    return np.where(tp > 1, count * transfer(lat, factor * msg, bw, o), 0.0)


def alltoall(arch: Arch, o: Assumptions, bw, lat, tp, ep, tokens) -> np.ndarray:
    """Dispatch + combine all-to-all of one MoE layer with expert parallelism (section 5),
    over the EP group's link (bandwidth ``bw``, latency ``lat``: ``link(table, gi, ep)``)."""
    k = arch.params.experts_per_token
    per_gpu = tokens / tp * k * arch.hidden * ACTIVATION_BYTES * (ep - 1) / ep * o.expert_imbalance
    return np.where(ep > 1, 2.0 * transfer(lat, per_gpu, bw, o), 0.0)


def hop_links(table: GpuTable, gi: np.ndarray, tp: np.ndarray, pp: np.ndarray) -> dict[str, np.ndarray]:
    """Where a pipeline's stage-to-stage hops go (section 5), per configuration: the stages
    fill the fast domain TP GPUs at a time; ``cross`` hops leave it, ``intra_hops`` stay in
    it; the links' bandwidths (a full mesh's one peer link inside) and latencies."""
    stages_per_domain = np.maximum(1.0, np.floor(table.domain[gi] / tp))
    domains = np.ceil(pp / stages_per_domain)
    cross = domains - 1.0
    peer = table.intra_peer_bw[gi]
    return dict(domains=domains, cross=cross, intra_hops=np.maximum(pp - 1.0 - cross, 0.0),
                intra_bw=np.where(np.isnan(peer), table.intra_bw[gi], peer), intra_lat=table.intra_latency[gi],
                inter_bw=table.inter_bw[gi], inter_lat=table.inter_latency[gi])


def pipeline_hops(o: Assumptions, h: dict[str, np.ndarray], tp, pp, msg, *, wraparound: bool) -> np.ndarray:
    """Stage-to-stage hops of a message of ``msg`` bytes (a stage's activations), intra- or
    inter-node (section 5; ``h`` from ``hop_links``): the PP-1 forward hops, plus, for a
    decode cycle, the hop from the last stage back to the first."""
    per_gpu_msg = msg / tp if o.pp_hop_message == "shard" else msg
    t_intra = transfer(h["intra_lat"], per_gpu_msg, h["intra_bw"], o)
    t_inter = transfer(h["inter_lat"], per_gpu_msg, h["inter_bw"], o)
    wrap: np.ndarray | float
    if not wraparound:
        wrap = 0.0
    elif o.pp_wraparound_hop == "activation":
        wrap = np.where(h["domains"] > 1, t_inter, t_intra)
    else:
        wrap = np.where(h["domains"] > 1, h["inter_lat"], h["intra_lat"])
    total = h["intra_hops"] * t_intra + h["cross"] * t_inter + wrap
    return np.where(pp > 1, total, 0.0)


@dataclass(frozen=True)
class Shard:
    """What one GPU of each configuration holds and moves (sections 2-3): bytes per weight
    (``b_w``), per routed-expert weight (``b_x``: the scheme's ``expert_bits``), per
    embedding or LM-head weight (``b_e``: 16-bit unless quantized), per KV
    element (``b_kv``); its share of the KV heads (``kv_frac``; the MLA latent is not split)
    and of the K/V projections (``kv_frac_w``: replicated once TP exceeds the KV heads); the
    expert group (``group`` = max(TP, EP)) and the attention data-parallel groups
    (``dp_attn`` = max(1, EP/TP)); ``b_w_read``: ``b_w`` as the dense weights' reads take time
    (over ``dense_read_efficiency``; memory counts ``b_w``)."""

    b_w: np.ndarray
    b_w_read: np.ndarray
    b_x: np.ndarray
    b_e: np.ndarray
    b_kv: np.ndarray
    kv_frac: np.ndarray
    kv_frac_w: np.ndarray
    group: np.ndarray
    dp_attn: np.ndarray


FP4_SCHEME = SCHEME_NAMES.index("fp4")


def dense_read_efficiency(scheme: np.ndarray, o: Assumptions) -> np.ndarray:
    """Share of the achieved HBM bandwidth the dense GEMMs' weight reads reach for each
    configuration's scheme (docs/validation.md, 'NVFP4 weight reads'): ``fp4_dense_read_efficiency``
    for NVFP4 weights, 1 for every other scheme. The routed experts' reads are not scaled."""
    return np.where(np.asarray(scheme) == FP4_SCHEME, o.fp4_dense_read_efficiency, 1.0)


def shard(arch: Arch, c: Configs, o: Assumptions) -> Shard:
    b_w = SCHEME_BITS[c.scheme] / 8.0
    tp = c.tp
    if arch.kv_replicates:
        kv_frac = np.ceil(arch.kv_heads / tp) / arch.kv_heads
        kv_frac_w = np.maximum(kv_frac, 1.0 / tp)
    else:
        kv_frac = np.ones_like(tp)
        kv_frac_w = 1.0 / tp
    return Shard(b_w=b_w, b_w_read=b_w / dense_read_efficiency(c.scheme, o), b_x=SCHEME_XBITS[c.scheme] / 8.0,
                 b_e=b_w if o.quantize_embeddings else np.full_like(b_w, EMBEDDING_BYTES),
                 b_kv=KV_BYTES[c.kv], kv_frac=kv_frac, kv_frac_w=kv_frac_w, group=np.maximum(tp, c.ep),
                 dp_attn=np.maximum(1.0, c.ep / tp))


def scheme_peak(table: GpuTable, gi: np.ndarray, scheme: np.ndarray) -> np.ndarray:
    """Peak FLOP/s of the scheme's math format on each GPU (the fallback format where the
    GPU lacks it: fp16 for bf16); NaN where it has neither."""
    peak = table.flops[gi, SCHEME_MATH[scheme]]
    fb = SCHEME_FALLBACK[scheme]
    return np.where(np.isnan(peak) & (fb >= 0), table.flops[gi, np.maximum(fb, 0)], peak)
