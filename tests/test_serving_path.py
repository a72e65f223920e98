"""TTFT as a client measures it and steps past the GPU's work (docs/model.md section 4, 'the
serving path', 'the host-bound floor', 'grouped GEMMs'): each new term by hand, in seconds."""

from __future__ import annotations

import numpy as np
import pytest

from planner.catalog.store import Catalog
from planner.physics import load as L
from planner.physics.options import PRESETS
from planner.physics.perf import evaluate
from planner.physics.space import Configs, GpuTable
from planner.physics.step import scalar_step_fn
from planner.physics.terms import Arch, kernels_per_forward, moe_padding
from planner.simulate import Arrivals, Lengths, simulate_config

CAT = Catalog.default()
BASE = PRESETS["realistic"].model_copy(update={
    "serving_overhead_s": 0.0, "host_step_s": 0.0, "host_per_sequence_s": 0.0, "host_launch_s": 0.0,
    "grouped_gemm_efficiency": 1.0, "grouped_gemm_prefill_efficiency": 1.0, "moe_gemm_tile_tokens": 0})


def _phys(model, o, gpu="h100-sxm", scheme="w16a16", kv="bf16", tp=1, ep=1, batch=64, S=1024, Ou=256):
    t = GpuTable.build([CAT.gpus[gpu]])
    c = Configs.single(0, scheme, kv, tp, 1, ep, batch, S, Ou)
    return L.step_physics(CAT.model(model), t, c, o), evaluate(CAT.model(model), t, c, o), c


def test_serving_overhead_adds_to_every_ttft_and_nothing_else():
    """25 ms of HTTP, tokenizer and stream: the idle TTFT, the load model's mean and p99 TTFT
    (open and closed loop) and the simulated TTFT each grow by 25 ms; TPOT does not move."""
    o = BASE.model_copy(update={"serving_overhead_s": 0.025})
    ph0, ev0, _ = _phys("llama-3.1-8b", BASE)
    ph1, ev1, _ = _phys("llama-3.1-8b", o)
    assert float(ev1.ttft[0] - ev0.ttft[0]) == pytest.approx(0.025, rel=1e-9)
    assert float(ev1.tpot[0]) == float(ev0.tpot[0])
    for kw in ({"rate": 5.0}, {"clients": 1}):
        r0 = L.load_metrics(ph0, L.engine(ph0), L.Workload(1024, 256), **kw)
        r1 = L.load_metrics(ph1, L.engine(ph1), L.Workload(1024, 256), **kw)
        for stat in ("mean", "p99"):
            d = float(r1.get("ttft", stat)[0] - r0.get("ttft", stat)[0])
            assert d == pytest.approx(0.025, rel=1e-3 if "clients" in kw else 1e-9), (kw, stat)
        assert float(r1.get("tpot", "mean")[0]) == pytest.approx(float(r0.get("tpot", "mean")[0]), rel=1e-3)
    s0, s1 = (simulate_config(p, L.engine(p), 0, Arrivals("poisson", rate=5.0), Lengths(1024), Lengths(256),
                              n_requests=400, seed=2) for p in (ph0, ph1))
    assert s1.summary["ttft_mean"] - s0.summary["ttft_mean"] == pytest.approx(0.025, rel=1e-6)


def test_host_floor_bounds_a_step_by_hand():
    """Llama-3.1-8B at batch 64: a step takes max(GPU, host) with host = 2 ms + 64 x 30 us =
    3.92 ms while the batch is within the CUDA graphs; past them (cuda_graph_max_tokens 32)
    every kernel of the forward pass is launched on its own, 32 layers x (4 GEMMs + 7 other
    kernels) + the LM head = 353 kernels x 20 us = 7.06 ms more."""
    a = Arch.of(CAT.model("llama-3.1-8b"))
    assert kernels_per_forward(a) == 32 * (4 + 7) + 1
    ph0, ev0, _ = _phys("llama-3.1-8b", BASE)
    gpu = float(ev0.tpot[0])
    o = BASE.model_copy(update={"host_step_s": 2e-3, "host_per_sequence_s": 30e-6, "host_launch_s": 20e-6})
    ph, ev, _ = _phys("llama-3.1-8b", o)
    host = 2e-3 + 64 * 30e-6
    assert float(ev.tpot[0]) == pytest.approx(max(gpu, host), rel=1e-12)
    eager = o.model_copy(update={"cuda_graph_max_tokens": 32})
    ph2, ev2, _ = _phys("llama-3.1-8b", eager)
    assert float(ev2.tpot[0]) == pytest.approx(max(gpu, host + 353 * 20e-6), rel=1e-12)
    # the simulator's float version is the same function
    f = scalar_step_fn(ph2, 0, 10_000)
    assert f(64, 64 * 1152.0) == pytest.approx(float(L.step_time(ph2, 64.0, 64 * 1152.0)[0]), rel=1e-12)
    # an idle prefill of 1024 tokens past the graphs is launched eagerly too: its host time is
    # 2 ms + 1 sequence + 353 launches
    assert float(ev2.ttft[0]) == pytest.approx(max(float(ev0.ttft[0]), 2e-3 + 30e-6 + 353 * 20e-6), rel=1e-12)


def test_grouped_gemm_padding_by_hand():
    """DeepSeek-V3 (256 experts, 8 a token), 64-token tiles. 8 routed tokens touch
    256 (1 - (1 - 8/256)^8) = 57.0 experts, m = 64 / 57.0 = 1.12 rows each, padded to a whole
    tile: (1.12 + 64 (1 - 1.12/64/2)) / 1.12 = 57.5 rows computed per row routed. 8,192
    tokens: every expert, m = 256 rows, half a tile wasted: (256 + 32) / 256 = 1.125."""
    a = Arch.of(CAT.model("deepseek-v3"))
    o = BASE.model_copy(update={"moe_gemm_tile_tokens": 64})
    touched = 256 * (1 - (1 - 8 / 256) ** 8)
    m = 64 / touched
    assert float(moe_padding(a, o, 8.0)) == pytest.approx((m + 64 * (1 - m / 128)) / m, rel=1e-12)
    assert float(moe_padding(a, o, 8192.0)) == pytest.approx(288 / 256, rel=1e-3)
    assert float(moe_padding(a, BASE, 8.0)) == 1.0          # tile 0: no padding
    assert float(moe_padding(Arch.of(CAT.model("llama-3.1-8b")), o, 8.0)) == 1.0


def test_grouped_gemm_efficiency_slows_only_the_routed_experts():
    """Halving the grouped GEMMs' rate adds exactly the routed experts' FLOP time once more
    to a compute-bound prefill's FLOP term, and leaves a dense model alone."""
    half = BASE.model_copy(update={"grouped_gemm_efficiency": 0.5, "grouped_gemm_prefill_efficiency": 0.5,
                                   "roofline_sharpness": 0.0, "include_kv_reads": False})
    full = half.model_copy(update={"grouped_gemm_efficiency": 1.0, "grouped_gemm_prefill_efficiency": 1.0})
    ph_h, _, _ = _phys("mixtral-8x7b", half, tp=2, S=4096)
    ph_f, _, _ = _phys("mixtral-8x7b", full, tp=2, S=4096)
    np.testing.assert_allclose(ph_h.routed_prefill, 2 * ph_f.routed_prefill, rtol=1e-12)
    np.testing.assert_allclose(ph_h.lin_prefill, ph_f.lin_prefill, rtol=1e-12)
    d_h, d_f = _phys("llama-3.1-8b", half)[1], _phys("llama-3.1-8b", full)[1]
    assert float(d_h.ttft[0]) == float(d_f.ttft[0])


def test_grouped_gemm_prefill_efficiency_by_hand():
    """Mixtral-8x7B (32 layers, 8 experts of 3 x 4096 x 14336, 2 a token) at TP 2 on an H100,
    BF16: a prompt token's routed FLOPs are 2 x 32 x 2 x 176.2e6 = 22.5 GFLOP, 11.3 per GPU.
    At a prefill grouped-GEMM efficiency of 0.4 each costs 11.3e9 / (0.8 x BF16 MAMF x 0.4) s,
    2.5x the dense rate, in the step's prompt tokens (``routed_prefill``) and in the idle
    prefill; a decode token's routed FLOPs (``routed_decode``) keep the decode efficiency."""
    H100_BF16_MAMF = 794.5e12       # the catalog's measured BF16 MAMF of the H100 SXM (FLOP/s)
    slow = BASE.model_copy(update={"grouped_gemm_prefill_efficiency": 0.4, "roofline_sharpness": 0.0,
                                   "include_kv_reads": False})
    ph_s, ev_s, _ = _phys("mixtral-8x7b", slow, tp=2, S=4096)
    ph_f, ev_f, _ = _phys("mixtral-8x7b", BASE.model_copy(update={"roofline_sharpness": 0.0,
                                                                   "include_kv_reads": False}), tp=2, S=4096)
    expert = 3 * 4096 * 14336
    per_gpu = 2.0 * 32 * 2 * expert / 2                            # FLOPs per prompt token per GPU
    assert float(ph_s.routed_prefill[0]) == pytest.approx(per_gpu / (0.8 * H100_BF16_MAMF * 0.4), rel=1e-6)
    assert float(ph_s.routed_prefill[0]) == pytest.approx(2.5 * float(ph_f.routed_prefill[0]), rel=1e-12)
    np.testing.assert_allclose(ph_s.routed_decode, ph_f.routed_decode, rtol=1e-12)
    # the idle 4,096-token prefill, compute-bound: the routed FLOP time once more x 1.5
    extra = 4096 * float(ph_f.routed_prefill[0]) * 1.5
    assert float(ev_s.ttft_compute[0] - ev_f.ttft_compute[0]) == pytest.approx(extra, rel=1e-3)
    # decode steps (no prompt tokens) do not move
    assert float(ev_s.tpot[0]) == float(ev_f.tpot[0])


def test_mxfp4_experts_run_natively_only_where_the_gpu_has_fp4_math():
    """gpt-oss-120b as released (mxfp4-experts: MXFP4 routed experts, 16-bit everything else).
    On a B200 (fp4 math) the experts' GEMMs run MXFP4 x MXFP8 at the fp8 rate: its measured
    MAMF 3,432.5 TFLOP/s against 1,745 in BF16, so a routed FLOP costs 1,745 / 3,432.5 = 0.508
    of a 16-bit one, in prefill and in decode; the dense weights (attention, router) keep the
    16-bit rate. On an H200 (no fp4 math) the experts are weight-only: 16-bit rate."""
    def routed(gpu, scheme):
        ph, _, _ = _phys("gpt-oss-120b", BASE, gpu=gpu, scheme=scheme, tp=4)
        return ph
    b_x, b_16 = routed("b200", "mxfp4-experts"), routed("b200", "w16a16")
    assert float(b_x.routed_prefill[0] / b_16.routed_prefill[0]) == pytest.approx(1745 / 3432.5, rel=1e-9)
    assert float(b_x.routed_decode[0] / b_16.routed_decode[0]) == pytest.approx(1745 / 3432.5, rel=1e-9)
    np.testing.assert_allclose(b_x.lin_prefill, b_16.lin_prefill, rtol=1e-12)
    h_x, h_16 = routed("h200", "mxfp4-experts"), routed("h200", "w16a16")
    np.testing.assert_allclose(h_x.routed_prefill, h_16.routed_prefill, rtol=1e-12)
    np.testing.assert_allclose(h_x.routed_decode, h_16.routed_decode, rtol=1e-12)
