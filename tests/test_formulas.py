"""Formula unit tests with hand-worked numbers (docs/model.md)."""

import numpy as np
import pytest

from planner.catalog.store import Catalog
from planner.physics.options import PRESETS, Assumptions
from planner.physics.perf import Arch, critical_batch, evaluate
from planner.physics.quant import SCHEMES
from planner.physics.space import Configs, GpuTable
from planner.physics.terms import allreduce_factor, expected_touched, experts_touched
from planner.pricing import cost_per_hour, cost_per_million_tokens
from planner.schemas.common import Tco

CAT = Catalog.default()
TABLE = GpuTable.build(list(CAT.gpus.values()))


def one(model, gpu, o=PRESETS["realistic"], **kw):
    kw = {"scheme": "w16a16", "kv": "bf16", "tp": 1, "pp": 1, "ep": 1, "batch": 1, "input_tokens": 1024,
          "output_tokens": 256} | kw
    c = Configs.single(TABLE.ids.index(gpu), kw["scheme"], kw["kv"], kw["tp"], kw["pp"], kw["ep"], kw["batch"],
                       kw["input_tokens"], kw["output_tokens"])
    return evaluate(CAT.model(model), TABLE, c, o).row(0)


def test_experts_touched_deepseek():
    # formula sheet: 8 experts at B = 1, 57 at 8, 163 at 32, 222 at 64 (of 256)
    arch = Arch.of(CAT.model("deepseek-v3"))
    got = experts_touched(arch, np.array([1.0, 8.0, 32.0, 64.0]), PRESETS["realistic"])
    assert np.round(got).tolist() == [8, 57, 163, 222]


@pytest.mark.parametrize("model", ["deepseek-v3", "qwen3-30b-a3b", "gpt-oss-20b"])
def test_expected_touched_is_the_formula_bit_for_bit_where_every_expert_is_hit(model):
    """``expected_touched`` skips the power where (1 - k/E)^tokens is below 2^-60, whose 1 - it
    is exactly 1.0: the same figures bit for bit as E (1 - (1 - k/E)^max(tokens, 1)) evaluated
    everywhere, across the skip's threshold, and all E past it (nan stays nan, a scalar is a
    scalar)."""
    arch = Arch.of(CAT.model(model))
    E, k = arch.params.num_experts, arch.params.experts_per_token
    tokens = np.concatenate([[-3.0, 0.0, 0.5, 1.0, np.inf, np.nan], np.linspace(1.0, 5000.0, 20_001),
                             np.geomspace(1.0, 1e7, 4001)])
    got = expected_touched(arch, tokens)
    assert np.array_equal(got, E * (1.0 - (1.0 - k / E) ** np.maximum(tokens, 1.0)), equal_nan=True)
    assert got[-1] == E and np.count_nonzero(got == E) > 1000 and np.isnan(got[5])
    assert np.ndim(expected_touched(arch, 7.0)) == 0 and expected_touched(arch, 7.0) == E * (1.0 - (1.0 - k / E) ** 7.0)


def test_allreduce_factors():
    n = np.array([2.0, 8.0])
    assert allreduce_factor(n, Assumptions(allreduce="ring")).tolist() == [1.0, 1.75]
    assert allreduce_factor(n, Assumptions(allreduce="all-gather")).tolist() == [0.5, 0.875]
    assert allreduce_factor(n, Assumptions(allreduce="full-message")).tolist() == [1.0, 1.0]


def test_critical_batch_table():
    # formula sheet section 4
    assert critical_batch(989e12, 3.35e12, 2.0) == pytest.approx(295, abs=1)
    assert critical_batch(989e12, 3.35e12, 0.5) == pytest.approx(74, abs=1)
    assert critical_batch(989e12, 4.8e12, 2.0) == pytest.approx(206, abs=1)
    assert critical_batch(312e12, 2.039e12, 2.0) == pytest.approx(153, abs=1)
    assert critical_batch(165.15e12, 1.008e12, 2.0) == pytest.approx(164, abs=1)


def test_decode_step_by_hand_llama70b_h100_tp8():
    # weights: 68.98e9 params; non-embedding at 2 B, split 8 ways, plus the LM head / 8
    o = PRESETS["realistic"]
    r = one("llama-2-70b", "h100-sxm", tp=8, batch=16)
    kv = 16 * (1024 + 128) * 80 * 2 * 8 * 128 * 2 * (1 / 8)
    activations = 16 * 80 * 2 * (8 * 8192 + 3 * 28672 / 8 + 2 * 8192 / 8)   # the non-GEMM kernels' bytes
    weight_bytes = r["bytes_per_step"] - kv - activations
    assert r["t_weights"] == pytest.approx(weight_bytes / (3.35e12 * o.memory_bandwidth_efficiency))
    # 2 all-reduces per layer, ring 2(n-1)/n of B*h*2 bytes, alpha 10 us, 80 % of 450 GB/s
    ar = 10e-6 + 1.75 * 16 * 8192 * 2 / (450e9 * 0.8)
    assert r["t_tp_comm"] == pytest.approx(160 * ar)


def test_weight_only_quantization_keeps_the_bf16_compute_ceiling():
    w4 = one("llama-3.1-8b", "h100-sxm", scheme="w4a16", batch=512)
    fp8 = one("llama-3.1-8b", "h100-sxm", scheme="w8a8-fp8", batch=512)
    bf16 = one("llama-3.1-8b", "h100-sxm", batch=512)
    assert w4["peak_flops"] == bf16["peak_flops"] == 989e12
    assert fp8["peak_flops"] == 1979e12
    assert SCHEMES["w4a16"].bytes_per_weight == pytest.approx(0.5 + 20 / 128 / 8)


def test_gqa_heads_replicate_when_tp_exceeds_kv_heads():
    kv8 = one("llama-3.1-70b", "h100-sxm", tp=8, batch=4)["kv_cache_bytes"]
    kv16 = one("llama-3.1-70b", "b200", tp=16, batch=4)["kv_cache_bytes"]
    assert kv16 == pytest.approx(kv8)  # 8 KV heads: past TP 8 each GPU keeps a whole head


def test_tp_across_nodes_uses_the_inter_node_link():
    inside = one("llama-3.1-405b", "h100-sxm", tp=8, pp=2, batch=8)
    across = one("llama-3.1-405b", "h100-sxm", tp=16, pp=1, batch=8)
    assert across["t_tp_comm"] > 5 * inside["t_tp_comm"]


def test_tco_per_gpu_hour():
    t = Tco(capex_usd_per_node=300_000, years=3, usd_per_kwh=0.1, pue=1.2, hosting_usd_per_node_month=730)
    g = CAT.gpu("h100-sxm")
    expected = (300_000 / 26280 + 8 * 0.7 * 1.2 * 0.1 + 1.0) / 8
    assert t.usd_per_gpu_hour(g) == pytest.approx(expected)


def test_cost_per_million_tokens_identity():
    r = one("llama-3.1-8b", "h100-sxm", batch=32)
    cost_h = cost_per_hour(r["gpus"], 2.95)
    assert cost_h == pytest.approx(2.95)
    assert cost_per_million_tokens(cost_h, r["throughput_tokens_per_s"]) == pytest.approx(
        2.95 / (r["throughput_tokens_per_s"] * 3600) * 1e6)


def test_mla_attention_not_split_and_ep_spans_replicas():
    r = one("deepseek-v3", "h200", scheme="w8a8-fp8", kv="bf16", tp=8, ep=16, batch=16, input_tokens=2048,
            output_tokens=512)
    assert r["gpus"] == 16 and r["concurrency"] == 32   # two attention groups of TP 8
    assert r["t_ep_comm"] > 0 and r["valid"]
