"""Issue 26's load-model speed change keeps every figure bit for bit: the decode and carrying
steps computed in one ``step_time`` call are the two calls they replace, for every engine
profile (prefill first or mixed), speculative decoding, MoE and sliding-window layers; and
``numerics._in_order`` sums as ``sum()`` does, signed zeros, infinities and NaN included."""
from __future__ import annotations

import numpy as np
import pytest

from planner.catalog.store import Catalog
from planner.physics import load as L
from planner.physics import numerics as N
from planner.physics.options import ENGINE_PRESETS, PRESETS
from planner.physics.space import Configs, GpuTable

CAT = Catalog.default()


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=True) and np.array_equal(np.signbit(a), np.signbit(b))


@pytest.mark.parametrize("engine", sorted(ENGINE_PRESETS))
@pytest.mark.parametrize("model", ["llama-3.1-8b", "mixtral-8x7b", "gemma-3-27b"])
@pytest.mark.parametrize("speculative", [0, 3])
def test_decode_and_carrying_in_one_call_are_the_two_calls(engine, model, speculative):
    o = PRESETS[ENGINE_PRESETS[engine]].model_copy(update={"speculative_tokens": speculative})
    t = GpuTable.build([CAT.gpus["h100-sxm"], CAT.gpus["l40s"]])
    c = Configs.grid(range(len(t.gpus)), [0, 2], [0], [1, 2, 4], [1], [1], [64], [2000], [300])
    ph = L.step_physics(CAT.model(model), t, c, o)
    rng = np.random.default_rng(len(model) + speculative)
    k = len(ph)
    n = rng.uniform(0.0, 64.0, k)
    n[:3] = 0.0                                       # no decoders: the idle and prompt-only corners
    ctx = n * rng.uniform(100.0, 4000.0, k)
    cc = rng.uniform(0.0, 4096.0, k)
    cc[3:5] = 0.0                                     # no prompt tokens
    A, heads = cc * rng.uniform(1.0, 3000.0, k), cc / 2000.0
    t0 = L.step_time(ph, n, ctx, 0.0, 0.0, 0.0)
    t1 = L.carrying_step(ph, n, ctx, cc, A, heads, decode=t0)
    d0, d1 = L._decode_and_carrying(ph, n, ctx, cc, A, heads)
    assert _same(d0, t0) and _same(d1, t1)
    # over a leading axis too (fixed_point evaluates its bracket's two ends in one call)
    e0, e1 = L._decode_and_carrying(ph, np.stack([n, 2 * n]), np.stack([ctx, 2 * ctx]), np.stack([cc, cc]),
                                    np.stack([A, A]), np.stack([heads, heads]))
    assert _same(e0[0], t0) and _same(e1[0], t1)


def test_in_order_is_sum_with_signed_zeros_infinities_and_nan():
    vals = np.array([0.0, -0.0, 1.0, -1.0, 1e308, -1e308, np.inf, -np.inf, np.nan, 1e-310, 3.0, 0.1])
    rng = np.random.default_rng(0)
    for k in (1, 2, 3, 4):
        terms = rng.choice(vals, size=(k, 4000))
        with np.errstate(over="ignore", invalid="ignore"):
            want = sum(terms[j] for j in range(k))
            got = N._in_order(terms)
        assert _same(got, want)


@pytest.mark.parametrize("engine", sorted(ENGINE_PRESETS))
@pytest.mark.parametrize("model", ["mixtral-8x7b", "gemma-3-27b", "nemotron-3-nano-30b-a3b"])
@pytest.mark.parametrize("split", ["first", "middle"])
def test_the_joiner_split_at_any_count_is_the_stacked_call(monkeypatch, engine, model, split):
    """``joined_step``'s split (issue 26) at any k, not only ``_joiner_split``'s choice: the
    open and closed loops (clients together and independent), the prefill pool, a prefix cache
    and speculative decoding, MoE, sliding-window and state-space layers, every figure the same
    bit for bit as the stacked call (the split forced at k = 0 or K // 2 on every call)."""
    from planner.physics.disagg import prefill_metrics

    o = PRESETS[ENGINE_PRESETS[engine]].model_copy(update={"speculative_tokens": 2})
    t = GpuTable.build([CAT.gpus["h100-sxm"], CAT.gpus["a100-80gb"]])
    c = Configs.grid(range(len(t.gpus)), [0, 2], [0], [1, 2], [1], [1, 2], [8, 256], [2000], [300])
    ph = L.step_physics(CAT.model(model), t, c, o)
    eng, k = L.engine(ph), len(ph)
    rng = np.random.default_rng(k)
    w = L.Workload(isl=rng.choice([100.0, 2000.0, 9000.0], k), osl=300.0, arrival_cv2=rng.choice([1.0, 30.0], k),
                   isl_cv2=0.5, cached=rng.choice([0.0, 50.0], k))
    sat = L.load_metrics(ph, eng, w, rate=np.zeros(k)).saturation_rate
    rate = rng.uniform(0.05, 1.1, k) * sat
    clients = rng.choice([1.0, 16.0, 512.0], k)

    def figures():
        with np.errstate(all="ignore"):
            rs = [L.load_metrics(ph, eng, w, rate=rate), L.load_metrics(ph, eng, w, clients=clients),
                  L.load_metrics(ph, eng, L.Workload(isl=2000.0, osl=300.0, start="together"), clients=clients),
                  prefill_metrics(ph, eng, w, rate)]
        return [v for r in rs for v in r.stats.values()] + [rs[-1].prefill, rs[-1].service, rs[-1].wait]
    monkeypatch.setattr(N, "JOINER_CALL_COST", 10 ** 12)
    stacked = figures()
    taken = []

    def at(own_k, K):
        taken.append(K)
        return 0 if split == "first" else K // 2
    monkeypatch.setattr(N, "_joiner_split", at)
    split_figures = figures()
    assert any(K > 1 for K in taken)
    assert len(split_figures) == len(stacked) and all(_same(x, y) for x, y in zip(split_figures, stacked))
