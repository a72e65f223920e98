"""Issue 10's physics, each against a hand calculation (docs/model.md sections 4-5):
MAMF-tied efficiencies, the smooth roofline, attention and LM head in their own formats,
the slowest pipeline stage and its bubbles, the busiest expert-parallel rank."""

from __future__ import annotations

import numpy as np
import pytest

from planner.catalog.store import Catalog
from planner.physics.attention import decode_attention_flops
from planner.physics.options import PRESETS
from planner.physics.perf import Arch, evaluate
from planner.physics.space import KV_NAMES, SCHEME_NAMES, Configs, GpuTable
from planner.physics.terms import smax

CAT = Catalog.default()
O = PRESETS["realistic"]
H100_BF16_MAMF, H100_FP8_MAMF = 794.5e12, 1402.6e12
BW = 3.35e12 * 0.8


def _one(model: str, gpu: str, scheme: str, kv: str, tp: int, pp: int, ep: int, batch: float,
         s: float = 1000, out: float = 200, o=O):
    t = GpuTable.build([CAT.gpus[gpu]])
    c = Configs.single(0, scheme, kv, tp, pp, ep, batch, s, out)
    return evaluate(CAT.model(model), t, c, o).row(0), Arch.of(CAT.model(model))


def test_smooth_roofline_by_hand():
    """k = 3: equal terms cost 2^(1/3) x either; a term 10x smaller adds 0.03 %."""
    assert float(smax(np.array(1.0), np.array(1.0), 3.0)) == pytest.approx(2 ** (1 / 3))
    assert float(smax(np.array(1.0), np.array(0.1), 3.0)) == pytest.approx((1 + 1e-3) ** (1 / 3))
    assert float(smax(np.array(2.0), np.array(1.0), 0.0)) == 2.0
    # Llama-3.1-8B bf16 on one H100 without KV reads: TPOT = smooth(weights, GEMMs) + overheads.
    o = O.model_copy(update={"include_kv_reads": False})
    r, a = _one("llama-3.1-8b", "h100-sxm", "w16a16", "bf16", 1, 1, 1, 256, o=o)
    p = a.params
    t_w = (p.layers_always + p.lm_head) * 2.0 / BW
    t_f = 2 * 256 * (p.active_nonembedding + p.lm_head) / (H100_BF16_MAMF * 0.8)
    assert r["t_weights"] == pytest.approx(t_w)
    assert r["t_linear_compute"] == pytest.approx(t_f)
    # fixed costs: 20 us of non-GEMM kernels and 4 GEMMs x 5 us per layer, the LM head's GEMM;
    # the activations the non-GEMM kernels move: 8 x h + 3 x I + 2 x q-width 2-byte values per token and layer
    act = 256 * 32 * 2 * (8 * 4096 + 3 * 14336 + 2 * 4096) / BW
    assert r["tpot"] == pytest.approx((t_w ** 3 + t_f ** 3) ** (1 / 3) + 32 * (20e-6 + 4 * 5e-6) + 5e-6 + act)
    # Shares as they are: both the weight reads and the GEMMs show, and they overlap.
    assert r["share_weights"] == pytest.approx(t_w / r["tpot"])
    assert r["share_compute"] == pytest.approx(t_f / r["tpot"])
    assert r["share_weights"] > 0.3 and r["share_compute"] > 0.3


def test_mamf_ceilings_per_vendor_and_format():
    """H100 fp8 GEMMs at 0.8 x 1402.6 TFLOP/s; MI300X fp8 borrows its bf16 MAMF/peak (0.514)."""
    r, a = _one("llama-3.1-8b", "h100-sxm", "w8a8-fp8", "fp8", 1, 1, 1, 64)
    p = a.params
    hand = 2 * 64 * (p.active_nonembedding / (H100_FP8_MAMF * 0.8) + p.lm_head / (H100_BF16_MAMF * 0.8))
    assert r["t_linear_compute"] == pytest.approx(hand)
    r, _ = _one("llama-3.1-8b", "mi300x", "w8a8-fp8", "fp8", 1, 1, 1, 64)
    mi_fp8 = 2610e12 * (668.4 / 1300) * 0.8
    mi_bf16 = 668.4e12 * 0.8
    hand = 2 * 64 * (p.active_nonembedding / mi_fp8 + p.lm_head / mi_bf16)
    assert r["t_linear_compute"] == pytest.approx(hand)


def test_attention_in_its_kernels_format():
    """fp8 weights, bf16 attention: decode attention at 0.78 x the bf16 MAMF, not at fp8;
    with an FP8 attention kernel at 0.78 x the fp8 MAMF."""
    m = CAT.model("llama-3.1-8b")
    r, a = _one("llama-3.1-8b", "h100-sxm", "w8a8-fp8", "fp8", 1, 1, 1, 64, s=4000, out=200)
    flops = 64 * decode_attention_flops(a.attention, 4100.0)
    assert r["t_attn_compute"] == pytest.approx(flops / (H100_BF16_MAMF * 0.78))
    o8 = O.model_copy(update={"attention_format": "fp8"})
    r8, _ = _one("llama-3.1-8b", "h100-sxm", "w8a8-fp8", "fp8", 1, 1, 1, 64, s=4000, out=200, o=o8)
    assert r8["t_attn_compute"] == pytest.approx(flops / (H100_FP8_MAMF * 0.78))
    assert m.num_layers == 32


def test_pipeline_slowest_stage_by_hand():
    """Llama-3.1-70B (80 layers), PP 3 on H100 fp8: the last stage has ceil(80/3) = 27 layers
    and the LM head; TPOT = 3 x that stage + hops + overheads per micro-batch."""
    o = O.model_copy(update={"include_kv_reads": False, "include_compute": False})
    r, a = _one("llama-3.1-70b", "h100-sxm", "w8a8-fp8", "fp8", 1, 3, 1, 8, o=o)
    p = a.params
    stage_bytes = p.layers_always * 1.0 * 27 / 80 + p.lm_head * 2.0
    assert r["t_weights"] == pytest.approx(stage_bytes / BW)
    hop = 10e-6 + 8 * 8192 * 2 / (450e9 * 0.8)        # two forward hops over NVLink
    wrap = 10e-6                                        # the sampled token back to stage 1
    overhead = (20e-6 + 4 * 5e-6) * 27 * 3 + 3 * (100e-6 + 5e-6)   # + the LM head GEMM per micro-batch
    overhead += 8 * 27 * 3 * 2 * (8 * 8192 + 3 * 28672 + 2 * 8192) / BW   # activations of the slowest stage
    assert r["t_pp_comm"] == pytest.approx(2 * hop + wrap)
    assert r["tpot"] == pytest.approx(3 * stage_bytes / BW + 2 * hop + wrap + overhead)
    # The even split (seed articles) is cheaper: 1/3 of everything per stage.
    even = o.model_copy(update={"pp_stage_model": "even", "pp_microbatch_overhead_s": 0.0})
    re, _ = _one("llama-3.1-70b", "h100-sxm", "w8a8-fp8", "fp8", 1, 3, 1, 8, o=even)
    assert re["tpot"] < r["tpot"]


def test_gemm_latency_by_hand():
    """Every GEMM kernel costs gemm_latency_s whatever its size (measured on an H100: 4-6 us,
    benchmarks/compare_step_times.py): a dense layer launches 4 (QKV, O, gate/up, down), an
    MoE layer with shared experts 7 (QKV, O, router, grouped gate/up and down, shared gate/up
    and down), MLA with a query LoRA 2 more for attention; the LM head one per step."""
    zero = O.model_copy(update={"gemm_latency_s": 0.0})
    for model, tp, ep, gemms in (("llama-3.1-70b", 4, 1, 80 * 4 + 1),
                                 ("mixtral-8x7b", 2, 1, 32 * 5 + 1),
                                 ("deepseek-v3", 8, 8, 61 * 4 + 3 * 2 + 58 * 5 + 1)):
        scheme = "w8a8-fp8"
        r, _ = _one(model, "h100-sxm", scheme, "fp8", tp, 1, ep, 16)
        r0, _ = _one(model, "h100-sxm", scheme, "fp8", tp, 1, ep, 16, o=zero)
        assert r["tpot"] - r0["tpot"] == pytest.approx(gemms * 5e-6), model
        assert r["ttft"] - r0["ttft"] == pytest.approx(gemms * 5e-6), model
    # seed articles count no fixed costs
    assert PRESETS["seed-article"].gemm_latency_s == 0.0


def test_moe_layer_overhead_by_hand():
    """An MoE layer's fixed kernels (router top-k, token sort, permute, un-permute; their
    quantizations) cost moe_layer_overhead_s a step whatever the tokens, on MoE layers only
    (SGLang's profile: 30 us, benchmarks/fit_moe_layer.py): DeepSeek-V3 has 58 MoE layers of
    61, so TPOT and TTFT gain 58 x 30 us = 1.74 ms; Mixtral 32 of 32: 0.96 ms; a dense
    model nothing. The other profiles leave it at 0 (their fits did not hold out)."""
    on = O.model_copy(update={"moe_layer_overhead_s": 30e-6})
    for model, tp, ep, moe_layers in (("llama-3.1-70b", 4, 1, 0), ("mixtral-8x7b", 2, 1, 32),
                                      ("deepseek-v3", 8, 8, 58)):
        r, _ = _one(model, "h100-sxm", "w8a8-fp8", "fp8", tp, 1, ep, 16, o=on)
        r0, _ = _one(model, "h100-sxm", "w8a8-fp8", "fp8", tp, 1, ep, 16)
        assert r["tpot"] - r0["tpot"] == pytest.approx(moe_layers * 30e-6, abs=1e-12), model
        assert r["ttft"] - r0["ttft"] == pytest.approx(moe_layers * 30e-6, abs=1e-12), model
    assert PRESETS["sglang"].moe_layer_overhead_s == 30e-6
    assert PRESETS["realistic"].moe_layer_overhead_s == 0.0 and PRESETS["trtllm"].moe_layer_overhead_s == 0.0


def test_activation_traffic_by_hand():
    """The non-GEMM kernels move their activations at the achieved bandwidth (measured on an
    H100: a long prefill runs 10-14 % slower than its GEMMs, benchmarks/compare_step_times.py).
    Llama-3.1-70B at TP4: per token and layer 8 hidden-width (8192, not split), 3 FFN-shard
    (28672/4) and 2 query-shard (8192/4) widths of 2 bytes; a prefill of 4000 tokens pays
    them for every token, a decode step for its batch."""
    zero = O.model_copy(update={"activation_passes_hidden": 0.0, "activation_passes_ffn": 0.0,
                                "activation_passes_attention": 0.0})
    per_token_layer = 2 * (8 * 8192 + 3 * 28672 / 4 + 2 * 8192 / 4)
    r, _ = _one("llama-3.1-70b", "h100-sxm", "w8a8-fp8", "fp8", 4, 1, 1, 64, s=4000)
    r0, _ = _one("llama-3.1-70b", "h100-sxm", "w8a8-fp8", "fp8", 4, 1, 1, 64, s=4000, o=zero)
    assert r["ttft"] - r0["ttft"] == pytest.approx(4000 * 80 * per_token_layer / BW)
    assert r["tpot"] - r0["tpot"] == pytest.approx(64 * 80 * per_token_layer / BW)
    # a non-gated MLP moves 2 FFN widths, not 3 (GPT-J: h 4096, FFN 16384, 28 layers)
    g, _ = _one("gpt-j-6b", "h100-sxm", "w16a16", "bf16", 1, 1, 1, 8, s=1000, out=100)
    g0, _ = _one("gpt-j-6b", "h100-sxm", "w16a16", "bf16", 1, 1, 1, 8, s=1000, out=100, o=zero)
    assert g["ttft"] - g0["ttft"] == pytest.approx(1000 * 28 * 2 * (8 * 4096 + 2 * 16384 + 2 * 4096) / BW)
    # MLA: the rotary embedding rewrites only the queries' rope dimensions (128 heads x 64);
    # DeepSeek-V3's FFN width per token is its 8 routed experts and the shared one (9 x 2048)
    d, _ = _one("deepseek-v3", "h100-sxm", "w8a8-fp8", "fp8", 8, 1, 1, 8, s=1000, out=100)
    d0, _ = _one("deepseek-v3", "h100-sxm", "w8a8-fp8", "fp8", 8, 1, 1, 8, s=1000, out=100, o=zero)
    per = 2 * (8 * 7168 + 3 * 9 * 2048 / 8 + 2 * 128 * 64 / 8)
    assert d["ttft"] - d0["ttft"] == pytest.approx(1000 * 61 * per / BW)
    # a hybrid (Nemotron-3-Nano, 29 layers): the 6 attention layers have no FFN (one residual-
    # add + norm: 4 hidden passes) and the 23 state-space layers no rotary embedding; its MLP
    # is not gated (2 FFN passes); per token over all layers, at TP1
    n, _ = _one("nemotron-3-nano-30b-a3b", "h100-sxm", "w16a16", "bf16", 1, 1, 1, 8, s=1000, out=100)
    n0, _ = _one("nemotron-3-nano-30b-a3b", "h100-sxm", "w16a16", "bf16", 1, 1, 1, 8, s=1000, out=100, o=zero)
    per_all = 2 * (23 * (8 * 2688 + 2 * 14848) + 6 * (4 * 2688 + 2 * 4096))
    assert n["ttft"] - n0["ttft"] == pytest.approx(1000 * per_all / BW)
    assert PRESETS["seed-article"].activation_passes_hidden == 0.0


def test_redundant_experts_cost_their_memory_by_hand():
    """EPLB: 32 redundant experts per MoE layer on DeepSeek-V3 at EP8 add 32 x 58 layers x one
    expert's parameters (3 x 7168 x 2048) over 8 GPUs, at fp8's 1 byte; without EP nothing."""
    eplb = O.model_copy(update={"redundant_experts": 32})
    r, a = _one("deepseek-v3", "h200", "w8a8-fp8", "fp8", 1, 1, 8, 16)
    r1, _ = _one("deepseek-v3", "h200", "w8a8-fp8", "fp8", 1, 1, 8, 16, o=eplb)
    assert a.params.expert_per_layer == 3 * 7168 * 2048
    assert r1["weights_bytes"] - r["weights_bytes"] == pytest.approx(32 * 58 * 3 * 7168 * 2048 / 8)
    assert r1["max_batch"] < r["max_batch"]
    t, _ = _one("deepseek-v3", "h200", "w8a8-fp8", "fp8", 8, 1, 1, 16)
    t1, _ = _one("deepseek-v3", "h200", "w8a8-fp8", "fp8", 8, 1, 1, 16, o=eplb)
    assert t1["weights_bytes"] == t["weights_bytes"]


def test_pipeline_prefill_bubble_by_hand():
    """Throughput pays each prompt's prefill PP times when its chunk rides one micro-batch."""
    r1, _ = _one("llama-3.1-70b", "h100-sxm", "w8a8-fp8", "fp8", 1, 2, 1, 32)
    o0 = O.model_copy(update={"pp_prefill_bubble": 0.0})
    r0, _ = _one("llama-3.1-70b", "h100-sxm", "w8a8-fp8", "fp8", 1, 2, 1, 32, o=o0)
    conc, out, tpot = 64.0, 200.0, r1["tpot"]
    busy0 = (conc * out / r0["throughput_tokens_per_s"] - out * tpot) / 32
    busy1 = (conc * out / r1["throughput_tokens_per_s"] - out * tpot) / 32
    assert busy1 == pytest.approx(2 * busy0)


def test_moe_busiest_rank_scales_tokens_not_bytes():
    """Mixtral-8x7B, EP 8: imbalance 1.5 adds half the routed experts' FLOPs and all-to-all
    bytes on the busiest rank; the expert weight bytes read do not change. The routed FLOPs
    are the grouped GEMMs': 64 tokens x 2 experts over 8 is m = 16 rows an expert, padded to
    a tile of 64 (16 + 64 (1 - 16/64/2) = 72 rows, 4.5x), at the grouped GEMMs' rate."""
    base = O.model_copy(update={"include_kv_reads": False})
    hot = base.model_copy(update={"expert_imbalance": 1.5})
    r1, a = _one("mixtral-8x7b", "h100-sxm", "w16a16", "bf16", 8, 1, 8, 64, o=base)
    r2, _ = _one("mixtral-8x7b", "h100-sxm", "w16a16", "bf16", 8, 1, 8, 64, o=hot)
    p = a.params
    routed = p.moe_layers * p.experts_per_token * p.expert_per_layer
    extra = 2 * 64 * 0.5 * routed / 8 / (H100_BF16_MAMF * 0.8) * (72 / 16) / O.grouped_gemm_efficiency
    assert r2["t_weights"] == pytest.approx(r1["t_weights"])
    assert r2["t_linear_compute"] - r1["t_linear_compute"] == pytest.approx(extra)
    assert r2["t_ep_comm"] > r1["t_ep_comm"]


def test_seed_article_keeps_the_pure_roofline():
    o = PRESETS["seed-article"]
    assert (o.roofline_sharpness, o.efficiency_basis, o.attention_format, o.pp_stage_model) == (
        0.0, "peak", "weights", "even")


def test_tie_band_from_validation():
    """The band is the validation median error of the (family, format), else the family's,
    else all rows'; regenerating it from the shipped CSV reproduces the table."""
    from planner.fidelity.tie import BANDS, OVERALL, tie_band
    assert tie_band("nvidia-hopper", "fp8") == BANDS[("nvidia-hopper", "fp8")][1]
    assert tie_band("nvidia-ada", "fp16") == BANDS[("nvidia-ada", "*")][1]     # 1 row: the family's
    assert tie_band("intel-gaudi", "bf16") == OVERALL[1]
    assert all(0 < e < 1 for _, e in BANDS.values())


def test_two_batch_overlap_hides_the_alltoall_under_compute():
    """DeepSeek-V3 EP 8 on H100: with two-batch overlap only max(t_EP - compute, 0) stays."""
    base = O
    tbo = O.model_copy(update={"ep_overlap": "two-batch"})
    r1, _ = _one("deepseek-v3", "h100-sxm", "w8a8-fp8", "fp8", 8, 1, 8, 64, o=base)
    r2, _ = _one("deepseek-v3", "h100-sxm", "w8a8-fp8", "fp8", 8, 1, 8, 64, o=tbo)
    k = 3.0
    compute = ((r1["t_weights"] ** k + r1["t_linear_compute"] ** k) ** (1 / k)
               + (r1["t_kv"] ** k + r1["t_attn_compute"] ** k) ** (1 / k))
    hidden = min(r1["t_ep_comm"], compute)
    assert r2["tpot"] == pytest.approx(r1["tpot"] - hidden)
    assert r2["share_comm"] > 0      # the all-to-all is still reported, as it is


def test_plans_closer_than_the_models_error_are_ties_unless_the_error_is_common():
    """chat_llama70b ranks MI325X, MI300X and B200 plans within a few percent: across GPU
    families the difference is below the model's median error there (a tie, said so); two
    plans on the same family and format share that error and are ranked."""
    from pathlib import Path

    from planner.plan.solve import plan
    from planner.resolve.calibration import FAMILY
    from planner.resolve.uncertainty import band_of
    from planner.schemas.plan import load_plan_spec

    spec, doc = load_plan_spec(str(Path(__file__).resolve().parents[1] / "instances" / "chat_llama70b.yaml"))
    r = plan(spec, doc, top_k=5)
    seen = set()
    for a, b in zip(r.plans, r.plans[1:]):
        ctx = a.explanation.versus_next.context
        same = FAMILY[a.gpu] == FAMILY[b.gpu] and a.quantization == b.quantization
        band = max(band_of(a.gpu, "fp8")[0], band_of(b.gpu, "fp8")[0])
        assert ctx["tie"] == (not same and abs(ctx["relative"]) <= band), (a.gpu, b.gpu, ctx["relative"])
        seen.add(ctx["tie"])
    assert seen == {True, False}          # the instance shows both cases


def _tiny_compressed():
    """A small model with compressed layers (raw window 8, pooled every 4 or 16 tokens,
    top 3 entries) beside sliding and state-space layers: every kink of the float path."""
    from planner.catalog.schema import ModelSpec
    return ModelSpec.model_validate(dict(
        name="tiny-kinds", hidden_size=64, num_attention_heads=4, num_kv_heads=1, head_dim=16,
        intermediate_size=128, vocab_size=100, max_context_tokens=10**6, num_layers=6,
        layer_groups=[{"kind": "compressed", "count": 2, "window_tokens": 8, "compress_ratio": 4, "indexer": "own"},
                      {"kind": "compressed", "count": 1, "window_tokens": 8, "compress_ratio": 16, "indexer": "none"},
                      {"kind": "sliding", "count": 1, "window_tokens": 32},
                      {"kind": "state_space", "count": 1, "state_bytes_per_sequence": 4096, "mixer_params": 20000},
                      {"kind": "full", "count": 1}],
        sparse_attention={"top_k_tokens": 3, "indexer_heads": 2, "indexer_head_dim": 4}))


NONLINEAR = ["qwen3.5-27b", "gemma-3-27b", "gpt-oss-120b", "llama-4-scout", "deepseek-v3.2", "nemotron-3-nano-30b-a3b"]


@pytest.mark.parametrize("name", NONLINEAR + ["tiny-kinds"])
def test_scalar_kv_term_float_path_matches_vectorised(name):
    """The simulator's float KV term of windowed, sparse, compressed and state-space layouts
    (``_layout_kv_time``: the layout's figures affine between its caps) is the vectorised
    ``StepPhysics.kv_time`` to 1e-12 relative, over contexts on both sides of every cap,
    batch sizes, KV formats and TP, one and several query tokens; and so is the whole step."""
    from planner.physics.step import _affine_pieces, _layout_breaks, _Scalar, scalar_step_fn, step_physics, step_time
    model = _tiny_compressed() if name == "tiny-kinds" else CAT.model(name)
    t = GpuTable.build([CAT.gpus["h200"]])
    c = Configs.grid([0], [SCHEME_NAMES.index("w8a8-fp8")], [KV_NAMES.index("bf16"), KV_NAMES.index("fp8")],
                     [1, 8], [1], [1], [64], [4096], [512])
    o = O.model_copy(update={"speculative_tokens": 2}) if name == "qwen3.5-27b" else O
    ph = step_physics(model, t, c, o)
    assert not ph.kv_linear
    lay = ph.arch.attention
    assert _affine_pieces(lambda x: decode_attention_flops(lay, x), _layout_breaks(lay)) is not None
    breaks = _layout_breaks(lay)
    per_seq = sorted({0.0, 0.5, 1.0, 3.0, 7.9, 1e3, 4097.5, 1.3e5, 2e6}
                     | {b * f for b in breaks for f in (0.5, 0.999, 1.0, 1.001, 3.0)})
    for i in range(len(c)):
        x = _Scalar(ph, i, 64)
        one = ph.take(np.array([i]))
        f = scalar_step_fn(ph, i, 1000)
        for n in (0, 1, 7, 64):
            for p in per_seq:
                ctx = n * p
                for q in {1.0, float(ph.q)}:
                    want = float(one.kv_time(np.array([float(n)]), np.array([ctx]), q)[0])
                    assert x.kv_time(n, ctx, q) == pytest.approx(want, rel=1e-12, abs=0.0)
                want = float(step_time(one, n, ctx, 512, 512.0 ** 2, 1)[0])
                assert f(n, ctx, 512, 512.0 ** 2, 1) == pytest.approx(want, rel=1e-12, abs=0.0)


def test_affine_pieces_refuses_a_curve():
    """A figure that is not affine between the breaks has no float path (the vectorised one
    on one-element arrays serves it): the check at each piece's middle catches it."""
    from planner.physics.step import _affine_pieces
    assert _affine_pieces(lambda x: x * x, [10.0]) is None
    f = _affine_pieces(lambda x: np.minimum(x, 10.0) * 3.0 + 1.0, [10.0])
    assert f is not None and (f(4.0), f(10.0), f(25.0)) == (13.0, 31.0, 31.0)


def test_taken_rows_keep_their_links_and_collectives_exactly():
    """``StepPhysics.take`` carries the link look-ups already made (``_take_links``) instead of
    repeating them: the taken rows' collectives are those of physics built for them alone, bit
    for bit, including a subset with no TP, EP or PP above 1 (its where()'s zero branches)."""
    from planner.physics.step import step_physics
    t = GpuTable.build([CAT.gpus["h100-sxm"], CAT.gpus["mi300x"]])
    c = Configs.grid([0, 1], [SCHEME_NAMES.index("w8a8-fp8")], [KV_NAMES.index("fp8")], [1, 2, 8], [1, 2],
                     [1, 8], [64], [2048], [256])
    model = CAT.model("mixtral-8x7b")
    ph = step_physics(model, t, c, O)
    tokens = np.array([1.0, 64.0, 700.0])[:, None]
    ph.comm_time(tokens)
    for index in (np.arange(len(c))[::3], np.flatnonzero((c.tp == 1) & (c.pp == 1) & (c.ep == 1))):
        taken = ph.take(index)
        assert "links" in taken._w
        fresh = step_physics(model, t, c.take(index), O)
        for a, b in zip(taken.comm_time(tokens), fresh.comm_time(tokens)):
            assert np.array_equal(a, b)
