"""What attention caches and reads, per layer kind (docs/model.md, attention kinds).

A model's layers are grouped by kind (``ModelSpec.layer_groups``; none given: every
layer full attention with the model's heads):

- full attention caches every token of the context and attends to all of them;
- a sliding-window layer caches and attends to the last min(context, W + sinks) tokens;
- a chunked local-attention layer (Llama 4) caches and attends to the tokens of the
  current chunk: at most C (we take min(context, C), the worst case of a request);
- a state-space layer (Mamba-2, Gated DeltaNet linear attention) keeps a fixed state per
  sequence, read and written once per step, and no KV;
- sparse attention (DeepSeek DSA) caches every token's latent plus its indexer key; the
  indexer scores every cached token, the attention itself reads only the top-k.

Decode reads what is cached. The functions are vectorised over ``context`` (arrays of
tokens) and are the one home of these quantities; planner/physics/perf.py calls them.
Every function reduces exactly (same floating-point operations) to the full-attention
formula ``context * L * kv_elements * kv_bytes`` when the model has no layer groups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from planner.catalog.schema import ModelSpec


@dataclass(frozen=True)
class LayerKind:
    """One group of identical layers."""

    count: int
    kind: str                # full | sliding | chunked | state_space
    kv_elements: float       # cached elements per token (K and V, or the MLA latent)
    cap: float               # most tokens cached: W + sinks (sliding), C (chunked), inf (full)
    decode_flops: float      # attention FLOPs per new token per attended token
    prefill_coeff: float     # prefill attention FLOPs per S^2 of full causal attention (= 2 x per causal pair)
    state_bytes: float       # fixed bytes per sequence (state-space layers)


@dataclass(frozen=True)
class AttentionLayout:
    layers: tuple[LayerKind, ...]
    top_k: float = math.inf          # sparse attention: tokens the attention reads
    indexer_elements: float = 0.0    # sparse attention: cached indexer key elements per token per layer
    indexer_flops: float = 0.0       # sparse attention: FLOPs per scored token per layer

    @property
    def num_layers(self) -> int:
        return sum(g.count for g in self.layers)


def attention_layout(m: ModelSpec) -> AttentionLayout:
    """The per-kind sizes of ``m`` that the memory and step-time formulas need."""
    nq = m.num_attention_heads
    if m.attention == "mla" and m.mla is not None:
        a = m.mla
        dqk, dv = a.qk_nope_head_dim + a.qk_rope_head_dim, a.v_head_dim
        full = LayerKind(count=m.num_layers, kind="full", kv_elements=float(a.kv_lora_rank + a.qk_rope_head_dim),
                         cap=math.inf, decode_flops=2.0 * nq * (2 * a.kv_lora_rank + a.qk_rope_head_dim),
                         prefill_coeff=float(nq * (dqk + dv)), state_bytes=0.0)
        x = m.sparse_attention
        if x is None:
            return AttentionLayout(layers=(full,))
        return AttentionLayout(layers=(full,), top_k=float(x.top_k_tokens),
                               indexer_elements=float(x.indexer_head_dim),
                               indexer_flops=2.0 * x.indexer_heads * x.indexer_head_dim)
    if not m.layer_groups:
        d = m.head_dim
        return AttentionLayout(layers=(LayerKind(
            count=m.num_layers, kind="full", kv_elements=2.0 * m.num_kv_heads * m.head_dim, cap=math.inf,
            decode_flops=2.0 * nq * (d + d), prefill_coeff=float(nq * (d + d)), state_bytes=0.0),))
    out = []
    for g in m.layer_groups:
        if g.kind == "state_space":
            out.append(LayerKind(count=g.count, kind=g.kind, kv_elements=0.0, cap=0.0, decode_flops=0.0,
                                 prefill_coeff=0.0, state_bytes=float(g.state_bytes_per_sequence or 0.0)))
            continue
        d = g.head_dim or m.head_dim
        nkv = g.num_kv_heads or m.num_kv_heads
        cap = math.inf
        if g.kind == "sliding":
            cap = float((g.window_tokens or 0) + m.sink_tokens)
        elif g.kind == "chunked":
            cap = float(g.window_tokens or 0)
        out.append(LayerKind(count=g.count, kind=g.kind, kv_elements=(1.0 if g.k_eq_v else 2.0) * nkv * d, cap=cap,
                             decode_flops=2.0 * nq * (d + d), prefill_coeff=float(nq * (d + d)), state_bytes=0.0))
    return AttentionLayout(layers=tuple(out))


def cached_tokens(layer: LayerKind, context: np.ndarray) -> np.ndarray:
    """Tokens one sequence holds in this layer's KV cache at ``context`` tokens."""
    if layer.kind == "full":
        return context
    return np.minimum(context, layer.cap)


def kv_bytes_per_sequence(layout: AttentionLayout, context: np.ndarray, kv_bytes: np.ndarray | float) -> np.ndarray:
    """KV cache (plus state-space state) of one sequence at ``context`` tokens, all layers."""
    total: np.ndarray | float = 0.0
    for g in layout.layers:
        if g.kv_elements:
            total = total + cached_tokens(g, context) * g.count * g.kv_elements * kv_bytes
        if g.state_bytes:
            total = total + g.count * g.state_bytes
    if layout.indexer_elements:
        total = total + context * layout.num_layers * layout.indexer_elements * kv_bytes
    return np.broadcast_to(total, np.shape(context)) if np.ndim(total) == 0 else np.asarray(total)


def kv_read_bytes(layout: AttentionLayout, context: np.ndarray, kv_bytes: np.ndarray | float) -> np.ndarray:
    """Bytes one sequence's decode step reads from the cache at ``context`` tokens: what is
    cached, except that sparse attention reads only its top-k latents (plus every indexer
    key); a state-space layer reads its state."""
    if math.isinf(layout.top_k):
        return kv_bytes_per_sequence(layout, context, kv_bytes)
    total: np.ndarray | float = 0.0
    for g in layout.layers:
        total = total + np.minimum(cached_tokens(g, context), layout.top_k) * g.count * g.kv_elements * kv_bytes
    return total + context * layout.num_layers * layout.indexer_elements * kv_bytes


def decode_attention_flops(layout: AttentionLayout, context: np.ndarray) -> np.ndarray:
    """Attention FLOPs of one new token of one sequence at ``context`` tokens, all layers
    (state-space recurrences are left out: O(state) per token, small beside the projections
    that the parameter count already charges)."""
    total: np.ndarray | float = 0.0
    for g in layout.layers:
        if g.decode_flops:
            total = total + np.minimum(cached_tokens(g, context), layout.top_k) * g.count * g.decode_flops
    if layout.indexer_flops:
        total = total + context * layout.num_layers * layout.indexer_flops
    return total  # type: ignore[return-value]


def _causal_pairs_capped(S: np.ndarray, cap: float) -> np.ndarray:
    """(query, key) pairs of causal attention over S tokens when each query sees at most
    ``cap`` keys: S^2/2 below the cap, cap*S - cap^2/2 above."""
    return np.where(S <= cap, S * S / 2.0, cap * S - cap * cap / 2.0)


def prefill_attention_flops(layout: AttentionLayout, S: np.ndarray) -> np.ndarray:
    """Attention FLOPs of prefilling ``S`` prompt tokens, all layers (causal)."""
    total: np.ndarray | float = 0.0
    for g in layout.layers:
        if not g.prefill_coeff:
            continue
        if g.kind == "full" and math.isinf(layout.top_k):
            total = total + g.count * g.prefill_coeff * S * S
        elif g.kind == "chunked":   # whole chunks of C plus the remainder, each causal
            C = g.cap
            q, r = np.floor(S / C), S - np.floor(S / C) * C
            total = total + g.count * g.prefill_coeff * (q * C * C + r * r)
        else:                       # sliding window, or sparse attention's top-k
            cap = min(g.cap, layout.top_k)
            total = total + g.count * g.prefill_coeff * 2.0 * _causal_pairs_capped(S, cap)
    if layout.indexer_flops:
        total = total + layout.num_layers * layout.indexer_flops * S * S / 2.0
    return total  # type: ignore[return-value]
