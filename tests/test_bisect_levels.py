"""numerics.bisect_levels: the bisection's ends, several of its steps per call (issue 26: the
speed of `planner validate`), and the closed loops that use it unchanged bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from planner.catalog.store import Catalog
from planner.physics import disagg as D
from planner.physics import load as L
from planner.physics import numerics as N
from planner.physics.options import PRESETS
from planner.physics.space import Configs, GpuTable

CAT = Catalog.default()


def _counted(pred):
    """(fn(x, rows) for bisect_levels, calls made, largest call) from a predicate on (x, row)."""
    calls: list[int] = []

    def fn(x, rows):
        calls.append(len(rows))
        return pred(x, rows)
    return fn, calls


@pytest.mark.parametrize("n", [1, 3, 40, 700, 3000])
@pytest.mark.parametrize("geometric", [False, True])
def test_the_ends_are_bisects_bit_for_bit(n, geometric):
    """Monotone predicates, and ones with a hole (false over a short range below the boundary,
    as a closed loop's stability flag can be): the same ends as ``bisect``, whose path through
    the hole is the same path, with 37 steps (not a multiple of the levels per call)."""
    rng = np.random.default_rng(n)
    lo, hi = rng.uniform(1e-6, 1.0, n), rng.uniform(2.0, 50.0, n)
    root = lo + (hi - lo) * rng.uniform(0.05, 0.95, n)
    hole = (root * 0.3, root * 0.45)
    for pred in (lambda x, r: x <= root[r],
                 lambda x, r: (x <= root[r]) & ~((x > hole[0][r]) & (x < hole[1][r]))):
        ref = N.bisect(lambda x: pred(x, np.arange(n)), lo, hi, 37, geometric)
        fn, calls = _counted(pred)
        got = N.bisect_levels(fn, lo, hi, 37, geometric)
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_array_equal(got[1], ref[1])
        per = max(1, min(4, int(np.log2(1024 / n + 1))))
        assert len(calls) == -(-37 // per) and max(calls) <= max(n, 1024)


def test_one_row_takes_four_steps_a_call():
    fn, calls = _counted(lambda x, r: x <= 0.3)
    lo, hi = N.bisect_levels(fn, np.zeros(1), np.ones(1), 36)
    assert calls == [15] * 9                      # 2^4 - 1 midpoints a call, 36 / 4 calls
    assert lo[0] <= 0.3 < hi[0] and hi[0] - lo[0] == 2.0 ** -36


def _reference_levels(fn, lo, hi, iters, geometric=False, **_):
    """bisect itself, one step a call on every row (what bisect_levels stands in for)."""
    return N.bisect(lambda x: fn(x, np.arange(len(lo))), lo, hi, iters, geometric)


def _phys(model: str, preset: str, tp=(1, 2, 4, 8), batch=256):
    t = GpuTable.build([CAT.gpus["h100-sxm"], CAT.gpus["h200"]])
    c = Configs.grid([0, 1], [2], [0], list(tp), [1], [1], [batch], [1000.0, 4000.0], [300.0])
    ph = L.step_physics(CAT.model(model), t, c, PRESETS[preset])
    return ph, L.engine(ph)


@pytest.mark.parametrize("model,preset", [("llama-3.1-70b", "realistic"), ("qwen3-32b", "sglang"),
                                          ("mixtral-8x7b", "trtllm")])
@pytest.mark.parametrize("start", ["independent", "together"])
def test_closed_loops_are_unchanged_bit_for_bit(monkeypatch, model, preset, start):
    """load.py's closed loop (36 steps over the rate), the disaggregated pools' inner searches
    (the prefill chunk, the decode step's fixed point) and their capacity at SLO through
    bisect_levels give what the plain bisection gives, every figure (the CSV of `planner
    validate` byte for byte, the goldens)."""
    ph, eng = _phys(model, preset)
    n = len(ph)
    clients = np.array([1.0, 4.0, 16.0, 64.0, 256.0, 1024.0] * n)[:n]
    wl = L.Workload(isl=ph.configs.input_tokens, osl=ph.configs.output_tokens, isl_cv2=0.1, start=start)

    ttft = [L.Target("ttft", "p90", 0.8), L.Target("ttft", "mean", 0.5)]
    tpot = [L.Target("tpot", "p99", 0.05), L.Target("itl", "mean", 0.03)]

    def run():
        agg = L.load_metrics(ph, eng, wl, clients=clients)
        pools = D.closed_loop(ph, eng, ph, eng, wl, clients=clients, prefill_replicas=1.0, decode_replicas=1.0)
        caps = [D.prefill_capacity(ph, eng, wl, ttft), D.decode_capacity(ph, eng, wl, tpot, transfer=ph.configs.tp * 1e-3)]
        return [agg.rate, agg.throughput_tokens_per_s, *agg.stats.values(), pools.rate, pools.ttft, pools.tpot,
                pools.prefill.chunk_tokens, pools.decode.step, *(x for c in caps for x in (c.rate, c.rho, c.binding))]
    got = run()
    monkeypatch.setattr(L, "bisect_levels", _reference_levels)
    monkeypatch.setattr(D, "bisect_levels", _reference_levels)
    for a, b in zip(got, run(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_closed_loops_clients_at_slo_are_unchanged_bit_for_bit(monkeypatch):
    """planner/candidates/load.py ``_closed_clients``: the most clients whose closed loop meets
    every target, searched by bisect_levels, are the plain bisection's."""
    from planner.candidates import load as CL

    ph, eng = _phys("llama-3.1-70b", "realistic")
    wl = L.Workload(isl=ph.configs.input_tokens, osl=ph.configs.output_tokens)
    targets = [L.Target("tpot", "mean", 0.04), L.Target("ttft", "p90", 1.5)]
    asked = np.geomspace(2.0, 4000.0, len(ph))
    got = CL._closed_clients(ph, eng, wl, targets, asked)
    assert 0 < np.count_nonzero(got < asked) < len(ph)      # some searched, some met as asked
    monkeypatch.setattr(CL, "bisect_levels", _reference_levels)
    np.testing.assert_array_equal(got, CL._closed_clients(ph, eng, wl, targets, asked))


def test_the_prefill_chunk_searched_in_levels_follows_the_prompt_spread():
    """The disaggregated prefill chunk's search reads the spread of the rows it is given (one
    predicate for the whole table and for bisect_levels' repeated rows): spread prompts make
    longer steps, more prompts arrive during one, so the chunk grows; the root solves its own
    equation m = lam S E[t(c1 N)] / c1 on the spread's step (N = min(max(1, A), K), A ~ Poisson(m))."""
    ph, _ = _phys("llama-3.1-70b", "realistic")
    S = ph.configs.input_tokens
    sat = D.prefill_saturation(ph, L.engine(ph), S, 0.0)
    lam = 0.5 * sat
    fixed = D._prefill_chunk(ph, lam, S, 8192.0, 0.0, 0.0)[0]
    spread = D._prefill_chunk(ph, lam, S, 8192.0, 0.0, 1.0)
    c, c1, m, K, t, _ = spread
    assert np.all(spread[0] >= fixed) and np.any(spread[0] > fixed * 1.01)
    # the root solves m = lam S E[t(c1 N)] / c1 on the spread's step, the chunk c1 E[N]
    table = np.stack([D._prefill_step(ph, c1 * np.minimum(k, K), S, 0.0, 1.0) for k in range(1, int(K.max()) + 1)])
    e_n, e_t = D._pieces(m, K, table)
    np.testing.assert_allclose(t, e_t, rtol=1e-12)
    np.testing.assert_allclose(m, lam * S * e_t / c1, rtol=1e-6)
    np.testing.assert_allclose(c, c1 * e_n, rtol=1e-12)
