"""Issue 27's new attention and expert kinds, checked by hand on small models: compressed
attention (DeepSeek V4), an indexer per layer group (own, shared, none: MiniMax M3,
GLM-5.2), MLA beside state-space layers with an output gate (Kimi K3), latent experts
(Nemotron 3 Super), and towers counted only when served. Units: elements and bytes per
sequence, FLOPs per token (decode) or per prompt (prefill)."""

from __future__ import annotations

import numpy as np

from planner.catalog.schema import ModelSpec
from planner.physics.attention import (
    attention_layout,
    decode_attention_flops,
    kv_bytes_per_sequence,
    kv_read_bytes,
    prefill_attention_flops,
)
from planner.physics.params import attention_params, count_parameters

BASE = dict(name="tiny", hidden_size=64, num_attention_heads=4, num_kv_heads=1, head_dim=16,
            intermediate_size=128, vocab_size=100, max_context_tokens=10**6)


def _compressed() -> ModelSpec:
    """Two layers pool every 4 tokens (own indexer, top 3 entries), one every 16 (dense over
    its entries); all keep 8 raw tokens; one 16-element vector per entry is K and V."""
    return ModelSpec.model_validate(BASE | dict(
        num_layers=3,
        layer_groups=[{"kind": "compressed", "count": 2, "window_tokens": 8, "compress_ratio": 4, "k_eq_v": True,
                       "indexer": "own"},
                      {"kind": "compressed", "count": 1, "window_tokens": 8, "compress_ratio": 16, "k_eq_v": True,
                       "indexer": "none"}],
        sparse_attention={"top_k_tokens": 3, "indexer_heads": 2, "indexer_head_dim": 4}))


def test_compressed_attention_cache_and_reads_by_hand() -> None:
    lay = attention_layout(_compressed())
    C = np.array([100.0])
    # ratio 4: 8 raw + 100/4 entries = 33 x 16 elements, 2 layers; their indexer keys 25 x 4;
    # ratio 16: 8 + 6.25 entries x 16. One byte per element.
    assert kv_bytes_per_sequence(lay, C, 1.0)[0] == 2 * 33 * 16 + 14.25 * 16 + 2 * 25 * 4
    # reads: ratio 4 reads its 8 raw tokens and the top 3 entries; ratio 16 everything; every indexer key
    assert kv_read_bytes(lay, C, 1.0)[0] == 2 * 11 * 16 + 14.25 * 16 + 2 * 25 * 4
    # decode FLOPs: 2 x 4 heads x (16 + 16) = 256 per attended entry; indexer 2 x 2 x 4 = 16 per scored entry
    assert decode_attention_flops(lay, C)[0] == 2 * 11 * 256 + 14.25 * 256 + 2 * 25 * 16


def test_compressed_attention_prefill_by_hand() -> None:
    lay = attention_layout(_compressed())
    S = np.array([20.0])
    # a query at t sees min(t, 8) raw tokens and min(t/m, top-k) entries; causal pairs capped at
    # c over 20 tokens: c*20 - c^2/2 (c <= 20) or 200. Coefficient 4 heads x 32 = 128, x2 per pair.
    raw = 8 * 20 - 32
    pooled_4 = (12 * 20 - 72) / 4          # min(t/4, 3) summed = (1/4) x pairs capped at 12
    pooled_16 = 200 / 16
    indexer = 2 * 16 * 20 * 20 / 2 / 4     # 2 layers score t/4 entries at 16 FLOPs each
    hand = 2 * 128 * 2 * (raw + pooled_4) + 1 * 128 * 2 * (raw + pooled_16) + indexer
    assert prefill_attention_flops(lay, S)[0] == hand


def _mla(**extra) -> ModelSpec:
    return ModelSpec.model_validate(BASE | dict(
        num_layers=5, num_kv_heads=4, attention="mla",
        mla={"q_lora_rank": 32, "kv_lora_rank": 24, "qk_nope_head_dim": 16, "qk_rope_head_dim": 8,
             "v_head_dim": 16}) | extra)


def test_a_shared_indexer_keeps_no_keys_and_no_weights() -> None:
    """GLM-5.2: 2 layers score the cache with their own indexer, 3 reuse the choice."""
    sparse = {"top_k_tokens": 10, "indexer_heads": 2, "indexer_head_dim": 4}
    m = _mla(layer_groups=[{"kind": "full", "count": 2, "indexer": "own"},
                           {"kind": "full", "count": 3, "indexer": "shared"}], sparse_attention=sparse)
    every = _mla(sparse_attention=sparse)                 # every layer its own indexer (DeepSeek V3.2)
    C = np.array([100.0])
    latent = 24 + 8
    assert kv_bytes_per_sequence(attention_layout(m), C, 1.0)[0] == 5 * latent * 100 + 2 * 4 * 100
    assert kv_read_bytes(attention_layout(m), C, 1.0)[0] == 5 * latent * 10 + 2 * 4 * 100
    assert kv_bytes_per_sequence(attention_layout(every), C, 1.0)[0] == 5 * latent * 100 + 5 * 4 * 100
    # one indexer: q up-projection from the 32-rank queries, keys, key norm, head weights
    indexer = 32 * 2 * 4 + 64 * 4 + 2 * 4 + 64 * 2
    assert count_parameters(every).total - count_parameters(m).total == 3 * indexer


def test_mla_with_state_space_layers_and_an_output_gate() -> None:
    """Kimi K3's kind: MLA full layers (here gated) beside linear-attention layers."""
    m = _mla(layer_groups=[{"kind": "state_space", "count": 3, "state_bytes_per_sequence": 1000.0,
                            "mixer_params": 5000.0},
                           {"kind": "full", "count": 2, "output_gate": True}])
    plain = _mla()
    gate = 64 * 4 * 16                                    # h x heads x v_head_dim
    a_gated, _ = attention_params(m, m.layer_groups[1])
    a_plain, _ = attention_params(plain)
    assert a_gated - a_plain == gate
    C = np.array([100.0])
    assert kv_bytes_per_sequence(attention_layout(m), C, 2.0)[0] == 2 * 32 * 100 * 2 + 3 * 1000
    assert count_parameters(m).total - count_parameters(plain).total == 3 * (5000 - a_plain) + 2 * gate


def test_latent_experts_by_hand() -> None:
    """Nemotron 3 Super's LatentMoE: routed experts run at the latent width; the down and up
    projections around them are read every step."""
    moe = {"num_experts": 8, "experts_per_token": 2, "expert_intermediate_size": 32, "num_shared_experts": 1,
           "shared_expert_intermediate_size": 48}
    full = ModelSpec.model_validate(BASE | dict(num_layers=2, mlp="plain", moe=moe))
    latent = ModelSpec.model_validate(BASE | dict(num_layers=2, mlp="plain", moe=moe | {"latent_size": 16}))
    p, q = count_parameters(full), count_parameters(latent)
    assert p.expert_per_layer == 2 * 64 * 32 and q.expert_per_layer == 2 * 16 * 32
    assert q.shared_per_layer - p.shared_per_layer == 2 * 64 * 16
    assert p.total - q.total == 2 * (8 * 2 * (64 - 16) * 32 - 2 * 64 * 16)


def test_served_towers_count_in_memory_not_per_token() -> None:
    tower = {"kind": "vision", "parameters": 4.0e8, "served": True}
    m = ModelSpec.model_validate(BASE | dict(num_layers=2))
    v = ModelSpec.model_validate(BASE | dict(num_layers=2, towers=[tower]))
    idle = ModelSpec.model_validate(BASE | dict(num_layers=2, towers=[tower | {"served": False}]))
    p, q = count_parameters(m), count_parameters(v)
    assert q.total - p.total == 4.0e8 and q.active == p.active and q.embeddings - p.embeddings == 4.0e8
    assert count_parameters(idle).total == p.total
