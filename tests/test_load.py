"""Latency under load (planner/physics/load.py): the mixed step, Little's law, the NIM
reference point, capacity at SLO. docs/load.md."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from planner.catalog import Catalog
from planner.physics import load as L
from planner.physics.options import PRESETS
from planner.physics.perf import evaluate
from planner.physics.space import Configs, GpuTable

CAT = Catalog.default()
O = PRESETS["realistic"]


def _grid(model: str):
    m = CAT.model(model)
    t = GpuTable.build(list(CAT.gpus.values()))
    c = Configs.grid(range(len(t.gpus)), [0, 2, 4], [0, 2], [1, 2, 8], [1, 2, 4], [1, 8], [1, 16, 64],
                     [1000, 5000], [200])
    return m, t, c


@pytest.mark.parametrize("model", ["llama-3.1-70b", "deepseek-v3", "mixtral-8x7b"])
@pytest.mark.parametrize("preset", ["realistic", "seed-article"])
def test_pure_decode_step_is_perf_tpot(model, preset):
    m, t, c = _grid(model)
    o = PRESETS[preset]
    ev = evaluate(m, t, c, o)
    ph = L.step_physics(m, t, c, o)
    st_ = L.step_time(ph, c.batch, c.batch * (c.input_tokens + c.output_tokens / 2.0))
    ok = ev.valid & np.isfinite(ev.tpot)
    assert ok.sum() > 100
    np.testing.assert_allclose(st_[ok], ev.tpot[ok], rtol=1e-9)
    # a prefill-only step is the idle TTFT, but for PP > 1 the step also pays the
    # wrap-around hop of a cycle (docs/load.md section 1)
    pf = L.step_time(ph, 0.0, 0.0, c.input_tokens)
    p1 = ok & (c.pp == 1)
    np.testing.assert_allclose(pf[p1], ev.ttft[p1], rtol=1e-9)
    assert np.all(pf[ok] >= ev.ttft[ok] * (1 - 1e-12))


def _nim(budget="free", gpu_memory=None):
    g = CAT.gpus["h100-sxm"]
    if gpu_memory is not None:
        g = g.model_copy(update={"memory_bytes": gpu_memory})
    t = GpuTable.build([g])
    o = O.model_copy(update={"kv_budget": budget})
    c = Configs.single(0, "w8a8-fp8", "fp8", 2, 1, 1, 256, 5000, 500)
    ph = L.step_physics(CAT.model("llama-3.1-70b"), t, c, o)
    return ph, L.engine(ph)


def test_mixed_step_by_hand():
    """Llama-3.1-70B, TP2 H100, fp8: the mixed step from the roofline terms by hand."""
    ph, _ = _nim()
    m = CAT.model("llama-3.1-70b")
    from planner.physics.perf import Arch
    a = Arch.of(m)
    p = a.params
    f = 1979e12 * 0.6
    n, ctx, chunk = 25.0, 25.0 * 5250.0, 5000.0
    lin = (2 * n * (p.active_nonembedding + p.lm_head) + 2 * chunk * p.active_nonembedding + 2 * p.lm_head
           + 80 * a.attn_prefill_flops * chunk ** 2) / 2 / f
    w_bytes = (p.layers_always / 2 * 1.0) + p.lm_head / 2 * 2.0      # fp8 layers, bf16 head
    t_w = w_bytes / (3.35e12 * 0.8)
    kv = ctx * 80 * 2 * 8 * 128 * 1.0 * 0.5 / (3.35e12 * 0.8)
    ar = 160 * (10e-6 + (n + chunk) * 8192 * 2 * 1.0 / (450e9 * 0.8))
    hand = max(t_w, lin) + kv + ar + 80 * 20e-6
    assert float(L.step_time(ph, n, ctx, chunk)[0]) == pytest.approx(hand, rel=1e-3)
