"""DeepSeek's prefill as the physics charges it, checked by hand (issue 22 item 2).

MLA in its prefill form decompresses every prompt token's latent into full K and V (128 heads,
192 query/key dims = 128 nope + 64 rope, 128 value dims) and runs ordinary causal attention over
them; decode runs the absorbed form over the 576-element latent. Units: parameters (elements),
FLOPs per prompt, seconds.
"""

from __future__ import annotations

import numpy as np

from planner.catalog.store import Catalog
from planner.physics.attention import attention_layout, prefill_attention_flops
from planner.physics.options import PRESETS
from planner.physics.params import attention_params, count_parameters
from planner.physics.perf import evaluate
from planner.physics.space import KV_NAMES, SCHEME_NAMES, Configs, GpuTable
from planner.physics.step import step_physics
from planner.physics.terms import rates

H, NQ, L = 7168, 128, 61                     # hidden, query heads, layers (config.json)
Q_RANK, KV_RANK, NOPE, ROPE, V = 1536, 512, 128, 64, 128


def _model():
    return Catalog.default().models["deepseek-v3"]


def test_mla_projections_by_hand() -> None:
    # q: down 7168 -> 1536, its norm, up 1536 -> 128 x 192; kv: down 7168 -> 512 + 64 (the
    # latent and the shared rope key), its norm, up 512 -> 128 x (128 + 128): the decompression
    # prefill runs on every prompt token; o: 128 x 128 -> 7168
    q = H * Q_RANK + Q_RANK + Q_RANK * NQ * (NOPE + ROPE)
    kv_down = H * (KV_RANK + ROPE) + KV_RANK
    kv_up = KV_RANK * NQ * (NOPE + V)
    o = NQ * V * H
    assert kv_up == 16_777_216
    total, kv = attention_params(_model())
    assert total == q + kv_down + kv_up + o == 187_107_328
    assert kv == kv_down + kv_up


def test_mla_prefill_attention_flops_by_hand() -> None:
    # causal attention over S decompressed tokens: S^2 / 2 (query, key) pairs per layer, each
    # 2 x 128 x 192 FLOPs for QK^T and 2 x 128 x 128 for PV = 81,920 FLOPs a pair
    per_pair = 2 * NQ * (NOPE + ROPE) + 2 * NQ * V
    assert per_pair == 81_920
    lay = attention_layout(_model())
    for S in (922.0, 7373.0, 8192.0):
        want = L * per_pair * S * S / 2.0
        assert np.isclose(prefill_attention_flops(lay, np.array([S]))[0], want, rtol=1e-12)
    # at 8,192 tokens: 1.677e14 FLOPs, 20.5 GFLOP a token, beside 2 x 37.5e9 for the weights
    assert np.isclose(L * per_pair * 8192.0 ** 2 / 2.0, 1.6768e14, rtol=1e-4)


def test_idle_prefill_charges_the_decompression_and_the_attention() -> None:
    """The idle prefill's FLOPs per GPU are (2 S x active parameters, the decompression among
    them, + 2 x the LM head + attention) / TP, and the load model's step charges the same
    attention per S^2 at the attention kernel's rate."""
    m = _model()
    cat = Catalog.default()
    table = GpuTable.build([cat.gpu("b200")])
    S, tp = 7373.0, 8.0
    c = Configs(gpu=np.array([0]), scheme=np.array([SCHEME_NAMES.index("w8a8-fp8")]),
                kv=np.array([KV_NAMES.index("bf16")]), tp=np.array([tp]), pp=np.array([1.0]),
                ep=np.array([1.0]), batch=np.array([1.0]), input_tokens=np.array([S]),
                output_tokens=np.array([1024.0]))
    o = PRESETS["sglang"]
    p = count_parameters(m)
    attn = L * 81_920 * S * S / 2.0
    ev = evaluate(m, table, c, o)
    want = (2.0 * S * p.active_nonembedding + 2.0 * p.lm_head + attn) / tp
    assert np.isclose(ev.prefill_flops[0], want, rtol=1e-12)
    # the decompression is in the active parameters: 61 x 16.8 M x 2 FLOPs a token
    assert p.active_nonembedding > L * KV_RANK * NQ * (NOPE + V)
    ph = step_physics(m, table, c, o)
    R = rates(table, c.gpu, c.scheme, c.kv, o)
    assert np.isclose(ph.attn_prefill[0] * S * S * tp * R.attn_pre[0], attn, rtol=1e-12)
