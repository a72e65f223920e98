"""What attention caches and reads, per layer kind (docs/model.md, attention kinds).

A model's layers are grouped by kind (``ModelSpec.layer_groups``; none given: every
layer full attention with the model's heads):

- full attention caches every token of the context and attends to all of them;
- a sliding-window layer caches and attends to the last min(context, W + sinks) tokens;
- a chunked local-attention layer (Llama 4) caches and attends to the tokens of the
  current chunk: at most C (we take min(context, C), the worst case of a request);
- a state-space layer (Mamba-2, Gated DeltaNet linear attention) keeps a fixed state per
  sequence, read and written once per step, and no KV;
- a compressed layer (DeepSeek V4) caches its last W tokens raw and one pooled entry per m
  tokens, and attends to both;
- sparse attention (DeepSeek DSA) caches every token's latent (or compressed entry) plus
  its indexer key; the indexer scores every cached entry, the attention itself reads only
  the top-k. A layer may share another layer's choice (GLM-5.2): no keys of its own.

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
    kind: str                # full | sliding | chunked | compressed | state_space
    kv_elements: float       # cached elements per token (K and V, or the MLA latent) or per compressed entry
    cap: float               # most raw tokens cached: W + sinks (sliding), C (chunked), W (compressed), inf (full)
    decode_flops: float      # attention FLOPs per new token per attended token
    prefill_coeff: float     # prefill attention FLOPs per S^2 of full causal attention (= 2 x per causal pair)
    state_bytes: float       # fixed bytes per sequence (state-space layers)
    ratio: float = 0.0       # compressed: cached entries per token beyond the raw window (1 / compress_ratio)
    top_k: float = math.inf  # sparse attention: entries the attention reads (of the compressed ones, if any)
    indexer_elements: float = 0.0  # sparse attention: cached indexer key elements per scored entry (own indexer)
    indexer_flops: float = 0.0     # sparse attention: FLOPs per scored entry (own indexer)


@dataclass(frozen=True)
class AttentionLayout:
    layers: tuple[LayerKind, ...]

    @property
    def num_layers(self) -> int:
        return sum(g.count for g in self.layers)

    @property
    def sparse(self) -> bool:
        return any(not math.isinf(g.top_k) for g in self.layers)


def attention_layout(m: ModelSpec) -> AttentionLayout:
    """The per-kind sizes of ``m`` that the memory and step-time formulas need."""
    nq = m.num_attention_heads
    x = m.sparse_attention
    out = []
    for g in m.layer_groups or (None,):
        count = g.count if g is not None else m.num_layers
        if g is not None and g.kind == "state_space":
            out.append(LayerKind(count=count, kind=g.kind, kv_elements=0.0, cap=0.0, decode_flops=0.0,
                                 prefill_coeff=0.0, state_bytes=float(g.state_bytes_per_sequence or 0.0)))
            continue
        if m.attention == "mla" and m.mla is not None:
            a = m.mla
            dqk, dv = a.qk_nope_head_dim + a.qk_rope_head_dim, a.v_head_dim
            kv_el = float(a.kv_lora_rank + a.qk_rope_head_dim)
            decode, prefill = 2.0 * nq * (2 * a.kv_lora_rank + a.qk_rope_head_dim), float(nq * (dqk + dv))
        else:
            d = g.head_dim if g is not None and g.head_dim else m.head_dim
            nkv = g.num_kv_heads if g is not None and g.num_kv_heads else m.num_kv_heads
            kv_el = (1.0 if g is not None and g.k_eq_v else 2.0) * nkv * d
            decode, prefill = 2.0 * nq * (d + d), float(nq * (d + d))
        kind, cap, ratio = (g.kind if g is not None else "full"), math.inf, 0.0
        if g is not None and g.kind == "sliding":
            cap = float((g.window_tokens or 0) + m.sink_tokens)
        elif g is not None and g.kind in ("chunked", "compressed"):
            cap = float(g.window_tokens or 0)
            ratio = 1.0 / g.compress_ratio if g.compress_ratio else 0.0
        top_k, idx_el, idx_fl = math.inf, 0.0, 0.0
        if x is not None and (g is None or g.indexer != "none"):
            top_k = float(x.top_k_tokens)
            if g is None or g.indexer in (None, "own"):
                idx_el, idx_fl = float(x.indexer_head_dim), 2.0 * x.indexer_heads * x.indexer_head_dim
        out.append(LayerKind(count=count, kind=kind, kv_elements=kv_el, cap=cap, decode_flops=decode,
                             prefill_coeff=prefill, state_bytes=0.0, ratio=ratio, top_k=top_k,
                             indexer_elements=idx_el, indexer_flops=idx_fl))
    return AttentionLayout(layers=tuple(out))


def cached_tokens(layer: LayerKind, context: np.ndarray) -> np.ndarray:
    """Entries one sequence holds in this layer's KV cache at ``context`` tokens (a
    compressed layer: its raw window plus one entry per compress_ratio tokens)."""
    if layer.kind == "full":
        return context
    if layer.ratio:
        return np.minimum(context, layer.cap) + context * layer.ratio
    return np.minimum(context, layer.cap)


def read_tokens(layer: LayerKind, context: np.ndarray) -> np.ndarray:
    """Entries one new token attends to: what is cached, sparse attention capping it at its
    top-k (a compressed layer: the raw window always, the top-k of its compressed entries)."""
    if layer.ratio:
        return np.minimum(context, layer.cap) + np.minimum(context * layer.ratio, layer.top_k)
    return np.minimum(cached_tokens(layer, context), layer.top_k)


def scored_entries(layer: LayerKind, context: np.ndarray) -> np.ndarray:
    """Entries an own indexer scores (and keeps a key for) at ``context`` tokens."""
    return context * layer.ratio if layer.ratio else context


def kv_bytes_per_sequence(layout: AttentionLayout, context: np.ndarray, kv_bytes: np.ndarray | float) -> np.ndarray:
    """KV cache (plus state-space state and indexer keys) of one sequence at ``context`` tokens, all layers."""
    total: np.ndarray | float = 0.0
    for g in layout.layers:
        if g.kv_elements:
            total = total + cached_tokens(g, context) * g.count * g.kv_elements * kv_bytes
        if g.state_bytes:
            total = total + g.count * g.state_bytes
    for g in layout.layers:
        if g.indexer_elements:
            total = total + scored_entries(g, context) * g.count * g.indexer_elements * kv_bytes
    return np.broadcast_to(total, np.shape(context)) if np.ndim(total) == 0 else np.asarray(total)


def kv_read_bytes(layout: AttentionLayout, context: np.ndarray, kv_bytes: np.ndarray | float) -> np.ndarray:
    """Bytes one sequence's decode step reads from the cache at ``context`` tokens: what is
    cached, except that sparse attention reads only its top-k entries (plus every indexer
    key); a state-space layer reads its state."""
    if not layout.sparse:
        return kv_bytes_per_sequence(layout, context, kv_bytes)
    total: np.ndarray | float = 0.0
    for g in layout.layers:
        if g.kv_elements:
            total = total + read_tokens(g, context) * g.count * g.kv_elements * kv_bytes
        if g.state_bytes:
            total = total + g.count * g.state_bytes
    for g in layout.layers:
        if g.indexer_elements:
            total = total + scored_entries(g, context) * g.count * g.indexer_elements * kv_bytes
    return total  # type: ignore[return-value]


def decode_attention_flops(layout: AttentionLayout, context: np.ndarray) -> np.ndarray:
    """Attention FLOPs of one new token of one sequence at ``context`` tokens, all layers
    (state-space recurrences are left out: O(state) per token, small beside the projections
    that the parameter count already charges)."""
    total: np.ndarray | float = 0.0
    for g in layout.layers:
        if g.decode_flops:
            total = total + read_tokens(g, context) * g.count * g.decode_flops
    for g in layout.layers:
        if g.indexer_flops:
            total = total + scored_entries(g, context) * g.count * g.indexer_flops
    return total  # type: ignore[return-value]


def _causal_pairs_capped(S: np.ndarray, cap: float) -> np.ndarray:
    """(query, key) pairs of causal attention over S tokens when each query sees at most
    ``cap`` keys: S^2/2 below the cap, cap*S - cap^2/2 above."""
    return np.where(S <= cap, S * S / 2.0, cap * S - cap * cap / 2.0)


def prefill_attention_flops(layout: AttentionLayout, S: np.ndarray) -> np.ndarray:
    """Attention FLOPs of prefilling ``S`` prompt tokens, all layers (causal). A compressed
    layer's query at position t sees min(t, W) raw tokens and min(t / m, k) entries."""
    total: np.ndarray | float = 0.0
    for g in layout.layers:
        if not g.prefill_coeff:
            continue
        if g.ratio:
            raw = _causal_pairs_capped(S, g.cap)
            pooled = (S * S / 2.0 if math.isinf(g.top_k) else _causal_pairs_capped(S, g.top_k / g.ratio)) * g.ratio
            total = total + g.count * g.prefill_coeff * 2.0 * (raw + pooled)
        elif g.kind == "full" and math.isinf(g.top_k):
            total = total + g.count * g.prefill_coeff * S * S
        elif g.kind == "chunked":   # whole chunks of C plus the remainder, each causal
            C = g.cap
            q, r = np.floor(S / C), S - np.floor(S / C) * C
            total = total + g.count * g.prefill_coeff * (q * C * C + r * r)
        else:                       # sliding window, or sparse attention's top-k
            cap = min(g.cap, g.top_k)
            total = total + g.count * g.prefill_coeff * 2.0 * _causal_pairs_capped(S, cap)
    for g in layout.layers:
        if g.indexer_flops:
            total = total + g.count * g.indexer_flops * S * S / 2.0 * (g.ratio or 1.0)
    return total  # type: ignore[return-value]
