"""Parameter counts, total and active, from an architecture (docs/model.md section 1).

Notation: h hidden, L layers, n_q query heads, n_kv KV heads, d head dim, I FFN width,
V vocab, g = 3 for a gated MLP (gate, up, down) else 2; MoE: E experts, k routed per
token, E_s shared experts of width I_s, I_e expert width.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.catalog.schema import LayerGroup, ModelSpec


@dataclass(frozen=True)
class ParamCounts:
    """Parameters by role. 'always' weights are read on every decode step; an expert's
    weights only when some token in the step is routed to it."""

    attention_per_layer: float
    norms_per_layer: float
    dense_mlp_per_layer: float
    expert_per_layer: float       # one routed expert, one layer
    shared_per_layer: float       # shared experts plus router, one MoE layer
    kv_projection_per_layer: float  # Wk + Wv (replicated when TP exceeds the KV heads)
    dense_layers: int
    moe_layers: int
    num_experts: int
    experts_per_token: int
    embedding: float              # input embedding table
    lm_head: float                # output projection (0 if tied to the input embedding)
    final_norm: float
    towers: float = 0.0           # vision/audio encoders the deployment serves (run per request, not per token)

    @property
    def layers_always(self) -> float:
        """Non-embedding weights read on every step, whatever the routing."""
        per_layer = self.attention_per_layer + self.norms_per_layer
        return (
            (self.dense_layers + self.moe_layers) * per_layer
            + self.dense_layers * self.dense_mlp_per_layer
            + self.moe_layers * self.shared_per_layer
            + self.final_norm
        )

    @property
    def experts_total(self) -> float:
        return self.moe_layers * self.num_experts * self.expert_per_layer

    @property
    def experts_active(self) -> float:
        return self.moe_layers * self.experts_per_token * self.expert_per_layer

    @property
    def embeddings(self) -> float:
        """Weights stored once beside the layers, in 16 bit: input embedding and LM head (the
        head counted once when tied), and the served vision/audio towers."""
        return self.embedding + self.lm_head + self.towers

    @property
    def total(self) -> float:
        return self.layers_always + self.experts_total + self.embeddings

    @property
    def active(self) -> float:
        """Parameters touched by one token (the LM head included; MTP modules and towers excluded)."""
        return self.layers_always + self.experts_active + (self.embedding + self.lm_head)

    @property
    def active_nonembedding(self) -> float:
        return self.layers_always + self.experts_active


def _indexes(m: ModelSpec, group: LayerGroup | None) -> bool:
    """Whether this group's layers carry a sparse-attention indexer of their own."""
    return m.sparse_attention is not None and (group is None or group.indexer in (None, "own"))


def indexer_params(m: ModelSpec) -> float:
    """One sparse-attention indexer (DSA lightning indexer): query up-projection (from the
    compressed queries under MLA with q_lora_rank, else from the hidden state), one key
    projection and its norm, and the per-head weights."""
    x = m.sparse_attention
    if x is None:
        return 0.0
    h = m.hidden_size
    q_in = m.mla.q_lora_rank if m.attention == "mla" and m.mla is not None and m.mla.q_lora_rank else h
    return float(q_in * x.indexer_heads * x.indexer_head_dim + h * x.indexer_head_dim
                 + 2 * x.indexer_head_dim + h * x.indexer_heads)


def attention_params(m: ModelSpec, group: LayerGroup | None = None) -> tuple[float, float]:
    """(attention parameters per layer, of which Wk+Wv) for GQA/MHA/MQA or MLA; with
    ``group``, for that layer group's heads (Gemma 4's global layers, Qwen3.5's gated
    attention, a shared indexer) or its state-space mixer; a group's ``mixer_params``
    replace the formula (Wk+Wv still from the heads)."""
    h, nq = m.hidden_size, m.num_attention_heads
    if group is not None and group.kind == "state_space":
        return float(group.mixer_params or 0.0), 0.0
    if m.attention == "mla":
        a = m.mla
        if a is None:  # ModelSpec validation rules this out; keep the type checker honest
            raise ValueError(f"model {m.id!r} has attention 'mla' but no mla block")
        dqk = a.qk_nope_head_dim + a.qk_rope_head_dim
        if a.q_lora_rank:
            wq = h * a.q_lora_rank + a.q_lora_rank + a.q_lora_rank * nq * dqk  # down, norm, up
        else:
            wq = h * nq * dqk
        wkv_down = h * (a.kv_lora_rank + a.qk_rope_head_dim) + a.kv_lora_rank  # plus its norm
        wkv_up = a.kv_lora_rank * nq * (a.qk_nope_head_dim + a.v_head_dim)
        wo = nq * a.v_head_dim * h
        extra = 0.0
        if _indexes(m, group):   # DSA lightning indexer: q up, k, k norm, head weights
            extra = indexer_params(m)
        if group is not None and group.output_gate:
            extra += h * nq * a.v_head_dim
        if group is not None and group.mixer_params is not None:
            return float(group.mixer_params), float(wkv_down + wkv_up)
        return float(wq + wkv_down + wkv_up + wo + extra), float(wkv_down + wkv_up)
    d = group.head_dim if group and group.head_dim else m.head_dim
    nkv = group.num_kv_heads if group and group.num_kv_heads else m.num_kv_heads
    kv_tensors = 1 if group and group.k_eq_v else 2
    wkv = kv_tensors * h * nkv * d
    if group is not None and group.mixer_params is not None:
        return float(group.mixer_params), float(wkv)
    wq = h * nq * d * (2 if group and group.output_gate else 1)
    wo = nq * d * h
    extra = 0
    if m.attention_bias:
        extra += (nq + kv_tensors * nkv) * d
    if m.qk_norm:
        extra += 2 * d
    if m.attention_sinks:
        extra += nq
    if _indexes(m, group):
        extra += indexer_params(m)
    return float(wq + wkv + wo + extra), float(wkv)


def mixer_params(m: ModelSpec) -> tuple[float, float]:
    """(attention or state-space mixer parameters summed over all layers, of which Wk+Wv)."""
    if not m.layer_groups:
        a, kv = attention_params(m)
        return a * m.num_layers, kv * m.num_layers
    per = [(g.count, *attention_params(m, g)) for g in m.layer_groups]
    return float(sum(n * a for n, a, _ in per)), float(sum(n * kv for n, _, kv in per))


def count_parameters(m: ModelSpec) -> ParamCounts:
    h, V = m.hidden_size, m.vocab_size
    g = 3 if m.mlp == "gated" else 2
    if m.parameter_count is not None:
        # Known only by its count: every parameter is a layer weight read every step.
        return ParamCounts(
            attention_per_layer=m.parameter_count / m.num_layers, norms_per_layer=0.0,
            dense_mlp_per_layer=0.0, expert_per_layer=0.0, shared_per_layer=0.0,
            kv_projection_per_layer=0.0, dense_layers=m.num_layers, moe_layers=0,
            num_experts=0, experts_per_token=0, embedding=0.0, lm_head=0.0, final_norm=0.0,
        )
    attn, wkv = attention_params(m)
    if m.layer_groups:   # per-layer means: every use multiplies them by a layer count
        total_attn, total_kv = mixer_params(m)
        attn, wkv = total_attn / m.num_layers, total_kv / m.num_layers
    ffn_free = sum(g.count for g in m.layer_groups if not g.ffn)
    norm_width = 2 if m.norm == "layernorm" else 1
    norms = float(m.norms_per_layer * norm_width * h)

    def mlp(width: int, d_in: int = h) -> float:
        bias = (g - 1) * width + d_in if m.mlp_bias else 0
        return float(g * d_in * width + bias)

    if m.moe is None:
        dense_layers, moe_layers = m.num_layers, 0
        expert = shared = 0.0
        n_exp = k = 0
    else:
        e = m.moe
        moe_layers = (m.num_layers - ffn_free - e.first_dense_layers) // e.moe_layer_step
        dense_layers = m.num_layers - moe_layers
        expert = mlp(e.expert_intermediate_size, e.latent_size or h)
        shared_width = e.shared_expert_intermediate_size or e.expert_intermediate_size
        router = h * e.num_experts + (e.num_experts if e.router_bias else 0)
        shared = e.num_shared_experts * mlp(shared_width) + router
        if e.latent_size:   # LatentMoE: the down and up projections around the routed experts
            shared += 2.0 * h * e.latent_size
        n_exp, k = e.num_experts, e.experts_per_token
    return ParamCounts(
        attention_per_layer=attn,
        norms_per_layer=norms,
        # layers without an FFN count as dense layers with none: the mean keeps totals exact
        dense_mlp_per_layer=(mlp(m.intermediate_size) if not ffn_free else
                             mlp(m.intermediate_size) * (dense_layers - ffn_free) / max(dense_layers, 1)),
        expert_per_layer=expert,
        shared_per_layer=shared,
        kv_projection_per_layer=wkv,
        dense_layers=dense_layers,
        moe_layers=moe_layers,
        num_experts=n_exp,
        experts_per_token=k,
        embedding=float(V * h),
        lm_head=0.0 if m.tie_embeddings else float(V * h + (V if m.lm_head_bias else 0)),
        final_norm=float(norm_width * h),
        towers=float(sum(t.parameters for t in m.towers if t.served)),
    )
