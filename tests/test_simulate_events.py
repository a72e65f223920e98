"""The event simulator (planner/simulate.py) against the per-step reference it replaced
(tests/sim_reference.py) on small cases: decode steps between events summed in closed form
give the same run as one step at a time, to rounding, across open and closed loops, both
schedulers, speculative decoding, windowed attention and a KV-bound pool (issue 26 item 3)."""

from __future__ import annotations

import numpy as np
import pytest

from planner.catalog.store import Catalog
from planner.physics import load as L
from planner.physics.options import PRESETS
from planner.physics.space import Configs, GpuTable
from planner.simulate import Arrivals, Lengths, _linear_pieces, simulate
from tests.sim_reference import reference

CAT = Catalog.default()
O = PRESETS["realistic"]


def _fn(model, gpu, scheme, kv, tp, batch, S, Ou, o=O):
    c = Configs.single(0, scheme, kv, tp, 1, 1, batch, S, Ou)
    ph = L.step_physics(CAT.model(model), GpuTable.build([CAT.gpus[gpu]]), c, o)
    eng = L.engine(ph)
    T, cap = int(eng.token_budget[0]), int(eng.max_seqs[0])
    return L.scalar_step_fn(ph, 0, T + cap * L.query_tokens(o) + 1), T, cap, float(eng.kv_pool_tokens[0])


def _both(fn, arrivals, isl, osl, **kw):
    return simulate(fn, arrivals, isl, osl, **kw), reference(fn, arrivals, isl, osl, **kw)


def _same(a, b, rel=1e-7):
    assert a.steps == b.steps
    for key, v in b.summary.items():
        assert a.summary[key] == pytest.approx(v, rel=rel, nan_ok=True), key
    np.testing.assert_allclose(a.ttft, b.ttft, rtol=rel)
    np.testing.assert_allclose(a.e2e, b.e2e, rtol=rel)


LLAMA8B = ("llama-3.1-8b", "h100-sxm", "w16a16", "bf16", 1, 32, 512, 64)
MIXTRAL = ("mixtral-8x7b", "h100-sxm", "w16a16", "bf16", 2, 16, 1500, 40)


@pytest.mark.parametrize("case", [LLAMA8B, MIXTRAL], ids=["llama8b", "mixtral"])
@pytest.mark.parametrize("arrivals", [Arrivals("poisson", rate=3.0), Arrivals("gamma", rate=8.0, cv=2.0),
                                      Arrivals("closed", clients=6, think_s=0.01),
                                      Arrivals("closed", clients=40, start="together", requests_per_client=3)],
                         ids=["poisson", "gamma", "closed", "together"])
def test_event_simulator_matches_the_per_step_reference(case, arrivals):
    fn, T, cap, pool = _fn(*case)
    isl = Lengths([case[6] // 2, case[6]], [0.4, 0.6])
    _same(*_both(fn, arrivals, isl, Lengths([8, case[7]], [0.3, 0.7]), token_budget=T, max_seqs=cap,
                 kv_pool_tokens=pool, n_requests=300, seed=5, serving_s=0.004))


def test_matches_the_reference_prefill_first_small_budget_and_kv_bound():
    fn, T, cap, pool = _fn(*LLAMA8B)
    kw = dict(token_budget=700, max_seqs=8, kv_pool_tokens=8 * 600.0, n_requests=250, seed=2)
    for pf in (False, True):
        _same(*_both(fn, Arrivals("poisson", rate=20.0), Lengths(512), Lengths([20, 60]), prefill_first=pf, **kw))
    # one slot: every decode run ends at its own completion, arrivals only queue
    _same(*_both(fn, Arrivals("poisson", rate=1.0), Lengths(300), Lengths(100), token_budget=T, max_seqs=1,
                 n_requests=120, seed=1))


def test_matches_the_reference_with_speculation_and_a_prefill_pool():
    fn, T, cap, pool = _fn(*LLAMA8B)
    kw = dict(token_budget=T, max_seqs=cap, kv_pool_tokens=pool, n_requests=200, seed=4)
    _same(*_both(fn, Arrivals("poisson", rate=4.0), Lengths(512), Lengths(64), speculative_tokens=3,
                 speculative_acceptance=0.7, **kw))
    _same(*_both(fn, Arrivals("poisson", rate=4.0), Lengths(512), Lengths(1), transfer_s=0.01, **kw))


@pytest.mark.parametrize("model,scheme,tp", [("gpt-oss-20b", "w16a16", 1), ("gemma-3-27b", "w16a16", 2),
                                             ("llama-4-scout", "w8a8-fp8", 2)])
def test_windowed_attention_matches_the_reference(model, scheme, tp):
    """Sliding-window and chunked layers: the step time bends where the contexts pass the window."""
    case = (model, "h100-sxm", scheme, "bf16", tp, 16, 3000, 2000)
    fn, T, cap, pool = _fn(*case)
    _same(*_both(fn, Arrivals("poisson", rate=0.5), Lengths(3000), Lengths([200, 2000]), token_budget=T,
                 max_seqs=cap, kv_pool_tokens=pool, n_requests=60, seed=3))


def test_linear_pieces_sum_a_kinked_step_time_exactly():
    """A step time with a kink (a roofline's max) and a window's cap: the pieces reproduce
    every step's time, and a straight one is a single piece (two evaluations and a probe)."""
    def kinked(n, ctx, c=0, A=0.0, h=0):
        return max(0.01, 1e-7 * ctx) + 2e-8 * min(ctx, 9000.0)
    def straight(n, ctx, c=0, A=0.0, h=0):
        return 0.02 + 3e-8 * ctx
    for f, most in ((kinked, 40), (straight, 2)):
        n, ctx, m = 7, 5000.0, 3000
        pieces = _linear_pieces(lambda s: f(n, ctx + n * s), m)
        assert sum(p[0] for p in pieces) == m and len(pieces) <= most
        got = np.concatenate([f0 + d * np.arange(cnt) for cnt, f0, d in pieces])
        want = np.array([f(n, ctx + n * s) for s in range(m)])
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("pf", [False, True])
def test_long_prompts_chunked_over_many_steps_match_the_reference(pf):
    """Prompts of 8-12 budgets: the steps where one prompt takes the whole budget beside the
    decoders are summed as a run too; a hybrid state-space model bends nowhere, a dense one
    neither, and both give the reference's run."""
    for case in (LLAMA8B, ("qwen3.5-27b", "h100-sxm", "w16a16", "bf16", 2, 16, 3000, 40)):
        fn, T, cap, pool = _fn(*case)
        _same(*_both(fn, Arrivals("poisson", rate=1.5), Lengths([2100, 3000], [0.5, 0.5]), Lengths([5, 40]),
                     token_budget=256, max_seqs=8, kv_pool_tokens=pool, n_requests=150, seed=6, prefill_first=pf))
