"""Attention DP's per-layer meeting (docs/validation.md, 'Attention DP'): where attention is
data-parallel, every MoE layer adds ``attention_dp_layer_overhead_s`` to a step (decode, a
prompt's chunk and the idle prefill), whatever its tokens; without attention DP nothing. By
hand, in seconds."""

from __future__ import annotations

import numpy as np
import pytest

from planner.catalog.store import Catalog
from planner.physics.options import PRESETS, engine_profile
from planner.physics.perf import evaluate
from planner.physics.space import Configs, GpuTable
from planner.physics.step import scalar_step_fn, step_physics, step_time

CAT = Catalog.default()
O = PRESETS["realistic"]


def _both(tp: int, ep: int, value: float):
    o = O.model_copy(update={"attention_dp_layer_overhead_s": value})
    table = GpuTable.build([CAT.gpus["b200"]])
    c = Configs.single(0, "w8a8-fp8", "bf16", tp, 1, ep, 256, 1024, 1024)
    model = CAT.model("deepseek-r1")
    return step_physics(model, table, c, o), evaluate(model, table, c, o)


def test_deepseek_with_attention_dp_pays_its_58_moe_layers_a_step() -> None:
    """DeepSeek-R1 has 58 MoE layers of 61. At attention TP 1 x DP 8 (EP 8) and 120 us a
    layer, a step of any size costs 58 x 120 us = 6.96 ms more: one decode sequence, 64 of
    them at 1,500 tokens each, a 2,048-token prompt chunk; the idle TTFT too. At TP 8 x EP 8
    (no attention DP) nothing moves."""
    ph0, ev0 = _both(1, 8, 0.0)
    ph, ev = _both(1, 8, 120e-6)
    for n, ctx, chunk in ((1.0, 1500.0, 0.0), (64.0, 64 * 1500.0, 0.0), (0.0, 0.0, 2048.0)):
        d = step_time(ph, np.array([n]), np.array([ctx]), np.array([chunk])) \
            - step_time(ph0, np.array([n]), np.array([ctx]), np.array([chunk]))
        assert float(d[0]) == pytest.approx(58 * 120e-6, rel=1e-9)
    assert float(ev.ttft[0] - ev0.ttft[0]) == pytest.approx(58 * 120e-6, rel=1e-9)
    # the simulator's scalar step is the same formula on the same coefficients
    f0, f = scalar_step_fn(ph0, 0, 8192), scalar_step_fn(ph, 0, 8192)
    assert f(16, 16 * 1500.0) - f0(16, 16 * 1500.0) == pytest.approx(58 * 120e-6, rel=1e-9)
    a0, _ = _both(8, 8, 0.0)
    a, _ = _both(8, 8, 120e-6)
    assert float(step_time(a, np.array([16.0]), np.array([16 * 1500.0]))[0]) == \
        float(step_time(a0, np.array([16.0]), np.array([16 * 1500.0]))[0])


def test_only_sglangs_profile_sets_it() -> None:
    """Fitted per engine (benchmarks/tpot_groups.py section 5): SGLang 120 us, every
    leave-one-system-out fold 110; TensorRT-LLM's fit did not hold out (gpt-oss-120b), vLLM has
    no attention-DP rows: 0, as the realistic priors."""
    assert engine_profile("sglang")["attention_dp_layer_overhead_s"] == 120e-6
    assert engine_profile("trtllm")["attention_dp_layer_overhead_s"] == 0.0
    assert engine_profile("vllm")["attention_dp_layer_overhead_s"] == 0.0
