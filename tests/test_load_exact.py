"""The load model's speed-ups change no figure (issue 26): each shortcut against the
computation it replaced, bit for bit (``==`` on floats, not approx)."""

from __future__ import annotations

import numpy as np
import pytest

from planner.catalog.store import Catalog
from planner.physics import load as L
from planner.physics import numerics as N
from planner.physics.options import PRESETS
from planner.physics.space import Configs, GpuTable
from planner.physics.step import step_physics
from planner.physics.terms import moe_padding, smax

CAT = Catalog.default()
O = PRESETS["realistic"]


def _two_powers(a, b, k):
    """The smooth roofline as it was written before (both terms raised to k)."""
    m = np.maximum(a, b)
    return m * ((a / m) ** k + (b / m) ** k) ** (1.0 / k)


@pytest.mark.parametrize("k", [3.0, 1.5, 2.0, 8.0])
def test_smax_one_power_is_the_two_power_form(k):
    rng = np.random.default_rng(7)
    a = rng.random(20_000) * 10.0 ** rng.integers(-9, 3, 20_000)
    b = rng.random(20_000) * 10.0 ** rng.integers(-9, 3, 20_000)
    b[::5] = a[::5]                       # equal terms: both ratios 1.0
    assert np.array_equal(smax(a, b, k), _two_powers(a, b, k))
    assert np.array_equal(smax(b, a, k), _two_powers(b, a, k))
    assert np.array_equal(smax(a, 0.25, k), _two_powers(a, 0.25, k))      # a scalar term, broadcast


def _moe(tile: int):
    t = GpuTable.build([CAT.gpus["h100-sxm"]])
    c = Configs.grid([0], [0, 2], [0], [1, 2, 4], [1], [1, 4, 8], [64], [2000], [300])
    o = O.model_copy(update={"moe_gemm_tile_tokens": tile, "moe_expert_reads": "expected"})
    return step_physics(CAT.model("qwen3-30b-a3b"), t, c, o)


@pytest.mark.parametrize("tile", [0, 128])
def test_step_shares_experts_touched_without_a_stale_count(tile):
    """A step's weight reads and expert padding share one expected-experts count (kept for the
    tokens object last asked); asked in alternation for two token counts, each is still the
    figure computed apart (the per-row path and ``moe_padding`` on its own)."""
    phys = _moe(tile)
    n = len(phys)
    every, dp = np.arange(n), phys._w["dp_attn"]
    one, two = np.linspace(1.0, 300.0, n), np.linspace(2000.0, 9000.0, n)
    for tokens in (one, two, one, two.copy()):
        pad = phys.moe_pad(tokens)
        w = phys.weights_time(tokens)
        assert np.array_equal(w, phys.weights_time(tokens, every))
        assert np.array_equal(pad, moe_padding(phys.arch, phys.o, tokens * dp))
        assert np.array_equal(phys.moe_pad(tokens), pad)
    tokens = one.copy()
    phys.moe_pad(tokens)
    tokens *= 30.0                        # the same object, changed in place: computed again
    assert np.array_equal(phys.moe_pad(tokens), moe_padding(phys.arch, phys.o, tokens * dp))
    assert np.array_equal(phys.weights_time(tokens), phys.weights_time(tokens, every))


def test_rows_whose_prompts_fit_one_step_are_the_same_beside_a_cut_prompt():
    """Row 0's prompt fits one step; row 1's (12,000 tokens) is cut into pieces. A table of rows
    that all fit skips the full-chunk step (its count is 0); row 0's figures are the same
    either way, and so are the TTFT/TPOT figures whether or not the ITL percentiles (the
    only reader of the one-prompt step) are asked for."""
    t = GpuTable.build([CAT.gpus["h100-sxm"]])
    c = Configs.grid([0], [0], [0], [2], [1], [1], [64, 64], [2000], [300])
    phys = step_physics(CAT.model("llama-3.1-8b"), t, c, O)
    eng = L.engine(phys)
    rate = np.array([1.5, 1.5])
    alone = L.load_metrics(phys, eng, L.Workload(isl=np.array([1000.0, 1000.0]), osl=300.0), rate=rate)
    beside = L.load_metrics(phys, eng, L.Workload(isl=np.array([1000.0, 12000.0]), osl=300.0), rate=rate)
    assert alone.stats.keys() == beside.stats.keys()
    for key, v in alone.stats.items():
        assert v[0] == beside.stats[key][0], key
    assert alone.rate[0] == beside.rate[0] and alone.concurrency[0] == beside.concurrency[0]
    some = L.load_metrics(phys, eng, L.Workload(isl=1000.0, osl=300.0), rate=rate,
                          report={("ttft", "p99"), ("tpot", "p90")})
    for key in (("ttft", "p99"), ("tpot", "p90"), ("ttft", "mean"), ("tpot", "mean"), ("e2e", "mean")):
        assert np.array_equal(some.get(*key), alone.get(*key)), key


@pytest.mark.parametrize("prefill_first", [False, True])
def test_open_loop_full_chunk_step_is_the_prompt_step(prefill_first):
    """The open loop takes the cut prompt's full-chunk carrying step from its full-chunk prompt
    step (both beside all n decoders): the same number as computing it, for a mixed engine and
    for a prefill-first one (whose carrying step is the prompt step and then the decode step)."""
    t = GpuTable.build([CAT.gpus["h100-sxm"]])
    c = Configs.grid([0], [0, 2], [0], [1, 2, 4], [1, 2], [1], [64], [2000], [300])
    phys = step_physics(CAT.model("llama-3.1-8b"), t, c, O.model_copy(update={"prefill_first": prefill_first}))
    n = np.linspace(0.5, 60.0, len(phys))
    ctx, Ta, A, S = n * 2150.0, np.full(len(phys), 7000.0), 12000.0, 12000.0
    t0 = L.step_time(phys, n, ctx, 0.0, 0.0, 0.0)
    carrying = L.carrying_step(phys, n, ctx, Ta, Ta * A, Ta / S, decode=t0)
    prompt = L.prompt_step(phys, n, ctx, Ta, Ta * A, Ta / S)
    assert np.array_equal(carrying, prompt + t0 if prefill_first else prompt)


def test_binding_target_is_the_one_missed_at_the_bisections_upper_end():
    """capacity_at_slo names the binding target from the bisection's evaluation at its upper
    end (kept, not computed again): the target with the largest ratio there, where the row
    misses one stably, else -1; checked against a plain 16-step bisection's upper end."""
    t = GpuTable.build([CAT.gpus["h100-sxm"]])
    c = Configs.grid([0], [0, 2], [0, 2], [1, 2, 4, 8], [1, 2], [1], [8, 64, 256], [2000], [300])
    ph = step_physics(CAT.model("llama-3.1-70b"), t, c, O)
    eng = L.engine(ph)
    wl = L.Workload(isl=2000.0, osl=300.0)
    n = len(ph)
    targets = [L.Target("tpot", "mean", 0.045), L.Target("ttft", "p99", 1.2)]
    sat, _ = L._saturation(ph, eng, np.full(n, 2000.0), np.full(n, 300.0))
    sat = np.where(np.isfinite(sat) & (sat > 0), sat, 0.0)
    lo = np.maximum(sat * 1e-4, 1e-300)

    def ratios(x):
        r = L.load_metrics(ph, eng, wl, rate=x)
        return r, np.stack([r.get(tg.metric, tg.statistic) / tg.seconds for tg in targets])

    def meets(x):
        r, rt = ratios(x)
        return r.stable & np.all(rt <= 1.0, axis=0)
    _, hi = N.bisect(meets, lo, np.maximum(sat * (1.0 - 1e-9), lo), 16, geometric=True)
    r_hi, rt_hi = ratios(hi)
    expected = np.where(r_hi.stable & (np.max(rt_hi, axis=0) > 1.0), np.argmax(rt_hi, axis=0), -1)
    cap = L.capacity_at_slo(ph, eng, wl, targets)
    live = meets(lo) & (sat > 0)
    assert {0, 1} <= set(expected[live].tolist())      # both targets bind somewhere
    np.testing.assert_array_equal(cap.binding[live], expected[live])
