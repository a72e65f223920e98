"""The prompts that join a prompt's last step, as whole prompts (docs/load.md section 5, 'whole
joiners'; planner/physics/numerics.py ``joiner_counts``, ``joined_step``): by hand, against a sampled count, and
in the two places that use them (load.py's own steps, disagg.py's prefill pool), each by hand
from the step physics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from planner.catalog.store import Catalog
from planner.physics.disagg import _own_attention, _prefill_step, prefill_metrics, prefill_saturation
from planner.physics.load import Workload, engine, load_metrics, step_physics
from planner.physics.numerics import JOINERS_SUMMED, JOINERS_TAIL, joined_step, joiner_counts
from planner.physics.options import PRESETS
from planner.physics.space import KV_NAMES, SCHEME_NAMES, Configs, GpuTable
from planner.physics.step import at_rows, step_time

CAT = Catalog.default()


def _phys(S: int, out: int, preset: str):
    """Llama-3.1-8B on one H100 SXM, BF16, batch 64."""
    t = GpuTable.build([CAT.gpus["h100-sxm"]])
    ph = step_physics(CAT.model("llama-3.1-8b"), t, Configs.single(0, "w16a16", "bf16", 1, 1, 1, 64, S, out),
                      PRESETS[preset])
    return ph, engine(ph)


def _law(rate, fixed, wait=0.0, pw=1.0, terms=400):
    """``joiner_counts`` at one configuration: (E[N], P(N = n) for n < ``terms``)."""
    mean, pmf = joiner_counts(np.array([rate]), np.array([fixed]), np.array([wait]), np.array([pw]))
    return mean[0], np.array([next(pmf)[0] for _ in range(terms)])


def _some_given(rate, fixed, wait=0.0, pw=1.0):
    """(P(N >= 1), E[N | N >= 1]) from the law's terms."""
    _, p = _law(rate, fixed, wait, pw)
    some = p[1:].sum()
    return some, (np.arange(len(p)) * p).sum() / some


def test_whole_joiners_over_a_fixed_time_by_hand():
    """2 prompts/s for 0.5 s: E[N] = 1 (requests/s x s: a count), Poisson, so P(N >= 1) =
    1 - e^-1 = 0.632121 and E[N | N >= 1] = 1 / 0.632121 = 1.581977; P(N = 2) = e^-1 / 2."""
    mean, p = _law(2.0, 0.5)
    assert mean == pytest.approx(1.0, rel=1e-12) and p[2] == pytest.approx(math.exp(-1.0) / 2.0, rel=1e-12)
    some, given = _some_given(2.0, 0.5)
    assert some == pytest.approx(1.0 - math.exp(-1.0), rel=1e-12)
    assert given == pytest.approx(1.0 / (1.0 - math.exp(-1.0)), rel=1e-12)


def test_whole_joiners_over_an_exponential_wait_by_hand():
    """2 prompts/s over a wait of mean 0.5 s that is 0 with probability 0.75 and else
    exponential of mean 0.5 / 0.25 = 2 s: given the wait, N is geometric, P(N = n) = 0.2 x
    0.8^n (1 / (1 + 2 x 2) = 0.2), so P(N >= 1) = 0.25 x 0.8 = 0.2 and P(N = 3) = 0.25 x 0.2 x
    0.8^3 = 0.0256; E[N] = 2 x 0.5 = 1 (the fluid's count), so E[N | N >= 1] = 1 / 0.2 = 5.
    With a fixed 0.25 s besides: P(N = 0) = e^-0.5 (1 - 0.2), E[N] = 1.5."""
    mean, p = _law(2.0, 0.0, 0.5, 0.25)
    assert mean == pytest.approx(1.0, rel=1e-12) and p[3] == pytest.approx(0.0256, rel=1e-12)
    assert _some_given(2.0, 0.0, 0.5, 0.25) == pytest.approx((0.2, 5.0), rel=1e-12)
    p0 = math.exp(-0.5) * 0.8
    assert _some_given(2.0, 0.25, 0.5, 0.25) == pytest.approx((1.0 - p0, 1.5 / (1.0 - p0)), rel=1e-12)


def test_whole_joiners_agree_with_a_sampled_count():
    """The same law drawn: 400,000 waits (0 with probability 0.6, else exponential of mean
    0.3 / 0.4 s) plus 0.1 s, then Poisson counts at 3 prompts/s (seed 7): P(N >= 1) and
    E[N | N >= 1] within 0.5 %, P(N = n) for n <= 4 within 0.003."""
    rng = np.random.default_rng(7)
    k = 400_000
    wait = np.where(rng.random(k) < 0.4, rng.exponential(0.3 / 0.4, k), 0.0)
    n = rng.poisson(3.0 * (0.1 + wait))
    some, given = _some_given(3.0, 0.1, 0.3, 0.4)
    assert some == pytest.approx(np.mean(n >= 1), rel=5e-3)
    assert given == pytest.approx(np.mean(n[n >= 1]), rel=5e-3)
    assert _law(3.0, 0.1, 0.3, 0.4)[1][:5] == pytest.approx(np.bincount(n, minlength=5)[:5] / k, abs=3e-3)


def test_whole_joiners_at_a_vanishing_rate_are_one_prompt_that_rarely_comes():
    """At 1e-12 prompts/s none joins (P(N >= 1) ~ 1e-12 x the time) and, if one does, it is one
    whole prompt; at rate 0 exactly, none; the fluid's lambda w never appears as a piece."""
    some, given = _some_given(1e-12, 0.4, 0.2, 0.5)
    assert some == pytest.approx(1e-12 * 0.6, rel=1e-6) and given == pytest.approx(1.0, rel=1e-9)
    _, p = _law(0.0, 0.4, 0.2, 0.5)
    assert p[0] == 1.0 and not p[1:].any()


def _toy_step(c):
    """A step of 10 ms up to 512 tokens (the CUDA graphs), 40 ms past them."""
    return np.where(c <= 512.0, 0.010, 0.040)


def test_the_last_step_is_the_expectation_over_the_count_by_hand():
    """A 256-token piece, 256-token joiners, a budget of 1,024, Poisson(1) joiners (2 prompts/s
    for 0.5 s), the toy step (10 ms within 512 tokens, 40 ms past): N = 0 or 1 leaves the step
    in the graphs (P = 2 e^-1 = 0.735759), N >= 2 does not, so E[t] = 0.735759 x 10 + 0.264241 x
    40 = 17.927 ms. The step at E[N | N >= 1] = 1.582 joiners (661 tokens) is 40 ms, which gave
    e^-1 x 10 + (1 - e^-1) x 40 = 28.963 ms. The budget is full from N = 3: three counts (1, 2
    and the rest at the budget), one stacked call of the step."""
    calls = []

    def step(c):
        calls.append(np.shape(c))
        return _toy_step(c)
    got = joined_step(step, np.array([0.010]), np.array([256.0]), 256.0, 1024.0, np.array([2.0]), np.array([0.5]))
    assert got[0] == pytest.approx(1e-3 * (2.0 * math.exp(-1.0) * 10.0 + (1.0 - 2.0 * math.exp(-1.0)) * 40.0), rel=1e-12)
    assert 1e3 * got[0] == pytest.approx(17.927, abs=5e-4)
    assert calls == [(3, 1)]


def test_the_sum_over_the_count_stops_within_its_error_bound():
    """A heavy geometric wait (2 prompts/s, mean 10 s, found with probability 0.5: a count of
    mean 20) and a budget 100 joiners away: the sum stops at JOINERS_SUMMED counts and lumps the
    rest at their conditional mean; against the count summed to 2,000 (tail 0) the difference
    is within P(N > K) [t(cap) - t(last + S (K + 1))], the bound ``joined_step`` states. With a
    smooth step, and a count whose tail falls below JOINERS_TAIL before the budget (Poisson(1):
    P(N > 9) = 1.1e-7, so K = 9, ten steps in one call), the two agree within JOINERS_TAIL x the
    budget-full step."""
    def smooth(c):
        return 1e-3 * (5.0 + 0.01 * c)
    last, size, cap = np.array([100.0]), 100.0, 10_100.0
    args = (np.array([2.0]), np.array([0.0]), np.array([10.0]), np.array([0.5]))
    for step in (_toy_step, smooth):
        short = joined_step(step, step(last), last, size, cap, *args)
        full = joined_step(step, step(last), last, size, cap, *args, most=2000, tail=0.0)
        _, p = _law(*(float(a[0]) for a in args), terms=JOINERS_SUMMED + 1)
        K = JOINERS_SUMMED
        bound = (1.0 - p.sum()) * (step(np.array([cap])) - step(last + size * (K + 1)))[0]
        assert abs(short - full)[0] <= bound + 1e-15
    poisson = (np.array([2.0]), np.array([0.5]))
    calls = []

    def counted(c):
        calls.append(len(c))
        return smooth(c)
    short = joined_step(counted, smooth(last), last, size, cap, *poisson)
    assert calls == [10]
    full = joined_step(smooth, smooth(last), last, size, cap, *poisson, most=2000, tail=0.0)
    assert abs(short - full)[0] <= JOINERS_TAIL * smooth(np.array([cap]))[0]


def test_an_endless_wait_fills_the_budget_and_a_linear_step_is_the_step_at_the_mean():
    """A step linear in its tokens, t(c) = 5 ms + 0.01 ms x c, a 100-token piece, 100-token
    joiners, a budget of 10,100 (100 joiners): over an endless time every step is the
    budget's, 106 ms; a wait found with probability 0.5 and endless besides 1 s at 1 prompt/s
    gives 0.5 x 7 ms (Poisson(1): 100 + 100 tokens on average, linear) + 0.5 x 106 = 56.5 ms;
    Poisson(1) alone, 7 ms (linear and below the budget: the step at the mean count)."""
    def step(c):
        return 1e-3 * (5.0 + 0.01 * c)
    last = np.full(3, 100.0)
    got = joined_step(step, step(last), last, 100.0, 10_100.0, np.ones(3), np.array([np.inf, 1.0, 1.0]),
                      np.array([0.0, np.inf, 0.0]), np.array([1.0, 0.5, 0.0]))
    assert 1e3 * got == pytest.approx([106.0, 56.5, 7.0], rel=1e-6)


def test_two_step_prompt_on_a_prefill_pool_takes_the_arrivals_of_its_full_chunk_by_hand():
    """A disaggregated prefill pool (vLLM's mixed steps; no decoders), 8,193-token prompts
    (T = 8,192: a full chunk and 1 token), Poisson at 0.01 of saturation: the own steps are the
    full chunk t(8,192) = 226.0 ms and the last piece, which takes the prompts that arrive during
    the full chunk, m = lambda t(8,192) of them on average (lambda in prompts/s x s; whole
    prompts, ``joined_step``), and one of them fills the budget (1 + 8,193 > T): J = e^-m t(1) +
    (1 - e^-m) t(T).
    Found busy (rho = 0.01) the piece also takes the arrivals of the step it came in and of its
    backlog wait, which moves D_own by under 10^-4 here: D_own = t(8,192) + J within 2e-4,
    where leaving out the full chunk's arrivals (t(8,192) + t(1), the idle service) is 0.9 %
    short."""
    S = 8193
    ph, eng = _phys(S, 2, "realistic")
    lam = 0.01 * prefill_saturation(ph, eng, float(S))[0]
    r = prefill_metrics(ph, eng, Workload(isl=float(S), osl=2.0), np.array([lam]))
    t_full = _prefill_step(ph, np.array([8192.0]), np.array([float(S)]))[0]
    assert lam * S * t_full == pytest.approx(0.01 * 8192, rel=1e-9)     # tokens arriving during the full chunk

    def piece(c):                       # the last piece (1 token) and c - 1 tokens of other prompts
        a = _own_attention(np.array([1.0]), np.array([float(S)]), 0.0, 0.0) + (c - 1.0) * S
        return step_time(ph, 0.0, 0.0, np.array([c]), a, np.array([1.0 + (c - 1.0) / S]))[0]
    m = lam * t_full
    some = -math.expm1(-m)
    by_hand = t_full + (1.0 - some) * piece(1.0) + some * piece(8192.0)
    assert r.prefill[0] == pytest.approx(by_hand, rel=2e-4)
    assert r.service[0] == pytest.approx(t_full + piece(1.0), rel=1e-12)     # idle and alone: as before
    assert r.service[0] < by_hand * (1.0 - 5e-3)


def test_mean_ttft_of_a_graph_sized_prompt_at_a_vanishing_rate_is_the_idle_prompt():
    """SGLang's prefill first, 512-token prompts (the CUDA graphs' size) and 500-token ones, 128
    output tokens, Poisson at 10^-9 of saturation: the mean TTFT is the idle prompt's, the p50's
    within 0.1 %, and never above the p99 (the fluid had put the mean's last step a fraction of a
    token past the graphs, into the eager floor: 143.7 ms against a p99 of 120.6)."""
    for S in (512, 500):
        ph, eng = _phys(S, 128, "sglang")
        w = Workload(isl=float(S), osl=128.0)
        sat = load_metrics(ph, eng, w, rate=np.array([0.0])).saturation_rate[0]
        r = load_metrics(ph, eng, w, rate=np.array([1e-9 * sat]))
        assert r.get("ttft", "mean")[0] == pytest.approx(r.get("ttft", "p50")[0], rel=1e-3)
        assert r.get("ttft", "mean")[0] <= r.get("ttft", "p99")[0]


def test_prefill_pool_last_step_is_the_expectation_over_the_joiner_count(monkeypatch):
    """SGLang's prefill pool, 256-token prompts (one joiner fills the 512-token CUDA graphs
    exactly, two do not), Poisson at 0.3 of saturation: a one-step prompt found busy (rho)
    shares its step with the whole prompts that arrive during a window F (disagg.py
    ``joined``; the window taken from the code), N ~ Poisson(lambda F), so its own step is
    D_own = (1 - rho) t(256) + rho E[t(256 + 256 N)], N >= 0 (the claim of docs/load.md
    section 5: 'mean and percentiles take the expectation over the same count'). The code
    takes t(256 + 256 E[N | N >= 1]) for every N >= 1: E[N | N >= 1] is a little above 1,
    so a fraction of a token past the graphs puts the step N = 1 would leave in the graphs
    on the eager floor: 13.53 ms against the expectation's 10.38 (+30 %) before the step
    became the expectation over the count (``joined_step``)."""
    import planner.physics.disagg as disagg_mod

    S = 256
    ph, eng = _phys(S, 2, "sglang")
    lam = 0.3 * prefill_saturation(ph, eng, float(S))[0]
    windows = []

    def spy(step, alone, last, size, cap, rate, fixed, *a, **k):
        windows.append(float(np.ravel(fixed)[0]))
        return joined_step(step, alone, last, size, cap, rate, fixed, *a, **k)
    monkeypatch.setattr(disagg_mod, "joined_step", spy)
    r = prefill_metrics(ph, eng, Workload(isl=float(S), osl=2.0), np.array([lam]), quantiles=False)
    idle, busy = windows                                  # the idle arrival's window (0: one step), the busy one's

    def piece(c):                       # the prompt (256 tokens) and c - 256 tokens of other prompts
        a = _own_attention(np.array([float(S)]), np.array([float(S)]), 0.0, 0.0) + (c - S) * S
        return step_time(ph, 0.0, 0.0, np.array([c]), a, np.array([1.0 + (c - S) / S]))[0]
    m = lam * busy
    assert idle == 0.0 and 0.05 < m < 2.0
    pmf = [math.exp(-m + n * math.log(m) - math.lgamma(n + 1.0)) for n in range(60)]
    exact = sum(p * piece(min(8192.0, S + S * n)) for n, p in enumerate(pmf))
    rho = r.rho[0]
    assert r.service[0] == pytest.approx(piece(float(S)), rel=1e-9)
    assert r.prefill[0] == pytest.approx((1.0 - rho) * piece(float(S)) + rho * exact, rel=5e-3)


def test_aggregated_last_step_is_the_expectation_over_the_joiner_count(monkeypatch):
    """SGLang's prefill first on one replica, 256-token prompts, 128 output tokens, Poisson at
    0.9 of saturation: the mean TTFT's own step (load.py ``own_steps``; its arguments taken
    from the code) is E[t(min(T, 256 + 256 N))] over the whole-joiner count N, Poisson(mu) plus,
    with probability a, a geometric count of mean nu, here summed by hand to the budget (31
    joiners) with the prompt-only step of the step physics (t(256) = 8.73 ms, t(512) = 13.95
    ms in the CUDA graphs, 40.3 ms past them): 10.61 ms. The step at E[N | N >= 1] joiners (a
    little above 1: past the graphs), which the code took before, is 15.82 ms (+49 %). (With
    the prefill-first saturation of the steady state's own step, docs/load.md section 3: 0.9 of
    it is a higher rate than 0.9 of the older, lower ceiling, where these were 9.92 and 13.80.)"""
    import planner.physics.load as load_mod

    S = 256
    ph, eng = _phys(S, 128, "sglang")
    w = Workload(isl=float(S), osl=128.0)
    sat = load_metrics(ph, eng, w, rate=np.array([0.0])).saturation_rate[0]
    calls = []

    def spy(*args, **kw):
        calls.append((args, joined_step(*args, **kw)))
        return calls[-1][1]
    monkeypatch.setattr(load_mod, "joined_step", spy)
    load_metrics(ph, eng, w, rate=np.array([0.9 * sat]), quantiles=False)
    (step, alone, last, size, cap, rate, fixed, wait, pw), got = calls[0]
    assert (last[0], size, cap[0]) == (256.0, 256.0, 8192.0)
    mu, a = float(rate[0] * fixed[0]), float(np.ravel(pw)[0])
    nu = float(rate[0] * np.ravel(wait)[0]) / a if a > 0 else 0.0

    def geo(i):
        return a / (1.0 + nu) * (nu / (1.0 + nu)) ** i + (1.0 - a if i == 0 else 0.0)

    def t(c):                           # the prompt-only step of c tokens from 256-token prompts
        return step_time(ph, 0.0, 0.0, np.array([c]), np.array([c * S]), np.array([c / S]))[0]
    pmf = [sum(math.exp(-mu) * mu ** j / math.factorial(j) * geo(k - j) for j in range(k + 1)) for k in range(31)]
    by_hand = sum(p * t(S + S * k) for k, p in enumerate(pmf)) + (1.0 - sum(pmf)) * t(8192.0)
    assert 0.1 < mu + a * nu < 0.3 and 1e3 * t(512.0) < 14.0 < 40.0 < 1e3 * t(513.0)
    assert got[0] == pytest.approx(by_hand, rel=1e-9)
    assert alone[0] == pytest.approx(t(256.0), rel=1e-12)
    assert 1e3 * by_hand == pytest.approx(10.61, abs=5e-3)
    old = joined_step(step, alone, last, size, cap, rate, fixed, wait, pw, most=0)   # at E[N | N >= 1]
    assert 1e3 * old[0] == pytest.approx(15.82, abs=5e-3)


def test_a_configuration_s_last_step_is_the_same_alone_or_beside_others():
    """Each configuration sums to its own K: a light Poisson count (K = 2) beside a heavy
    geometric one (K = 16) gives, bit for bit, the figure it has alone (the candidate table
    computes a model's workloads in one pass, tests/test_candidate_cache.py)."""
    def step(c):
        return 1e-3 * (5.0 + 0.01 * c) + _toy_step(c)
    last = np.array([256.0, 256.0])
    args = (np.array([2.0, 2.0]), np.array([0.01, 0.0]), np.array([0.0, 10.0]), np.array([1.0, 0.5]))
    both = joined_step(step, step(last), last, 256.0, 8192.0, *args)
    for i in range(2):
        alone = joined_step(step, step(last[i:i + 1]), last[i:i + 1], 256.0, 8192.0, *(a[i:i + 1] for a in args))
        assert alone[0] == both[i]


def test_no_arrivals_over_an_endless_time_is_the_prompt_alone():
    """Rate 0 over an endless fixed time or wait: no joiner (0 x inf is 0 prompts, not nan), the
    step of the prompt alone, as whole_joiners gave before the expectation (d71fb44)."""
    def step(c):
        return 0.004 + 1e-5 * c
    alone = step(np.array(100.0))
    got = joined_step(step, alone, 100.0, 100.0, 8192.0, np.array([0.0, 0.0]), np.array([1.0, np.inf]),
                      np.array([np.inf, 0.0]), 1.0)
    assert np.array_equal(got, [alone, alone])


def _mixed_counts(n: int):
    """``n`` configurations, each its own step (t = a + b c and the graphs' jump), most with a
    light Poisson count of joiners (mean at most 0.04: own K 2-3), every seventh with a heavy geometric one (K = 16)."""
    rng = np.random.default_rng(5)
    a, b = rng.uniform(3e-3, 6e-3, n), rng.uniform(5e-6, 2e-5, n)
    heavy = np.arange(n) % 7 == 0
    rate, fixed = rng.uniform(1.0, 4.0, n), rng.uniform(0.001, 0.01, n)
    wait, pw = np.where(heavy, 10.0, 0.0), np.where(heavy, 0.5, 1.0)
    last = rng.choice([100.0, 256.0, 300.0], n)
    return a, b, last, (rate, fixed, wait, pw)


def test_counts_past_a_configuration_s_own_k_are_left_out_with_the_same_figures(monkeypatch):
    """``step_at``: the counts above a split are evaluated only on the configurations whose own
    K passes it (``_joiner_split``), the figures the same bit for bit as the stacked call over
    every configuration; with the cost of taking configurations at 0 the split is taken, and
    the configurations taken are the heavy ones only."""
    import planner.physics.numerics as numerics

    n = 700
    a, b, last, args = _mixed_counts(n)
    taken = []

    def step(c):
        return a + b * c + _toy_step(c)

    def step_at(rows, m):
        assert m == n
        taken.append(rows)
        return lambda c: a[rows] + b[rows] * c + _toy_step(c)
    stacked = joined_step(step, step(last), last, 256.0, 8192.0, *args)
    monkeypatch.setattr(numerics, "JOINER_CALL_COST", 0)
    monkeypatch.setattr(numerics, "JOINER_TAKE_COST", 0.0)
    split = joined_step(step, step(last), last, 256.0, 8192.0, *args, step_at=step_at)
    assert np.array_equal(split, stacked)
    (rows,) = taken
    assert 0 < len(rows) <= n // 7 + 1 and np.all(rows % 7 == 0)


@pytest.mark.parametrize("preset", ["realistic", "sglang"])
def test_the_load_model_s_figures_are_the_same_with_the_counts_split_or_stacked(monkeypatch, preset):
    """load.py's own steps and disagg.py's prefill pool pass ``step_at`` (the configurations
    taken, ``at_rows``): every figure of the load model and of the prefill pool over a grid of
    configurations and rates is the same bit for bit with the split forced (taking free) and
    with none (taking dearer than any saving)."""
    import planner.physics.numerics as numerics

    t = GpuTable.build([CAT.gpus[g] for g in ("h100-sxm", "a100-80gb", "l40s")])
    cfg = Configs.grid([0, 1, 2], [SCHEME_NAMES.index("w16a16"), SCHEME_NAMES.index("w8a8-fp8")],
                       [KV_NAMES.index("bf16")], [1, 2, 4], [1], [1], [8, 32, 128, 256], [512], [256])
    ph = step_physics(CAT.model("llama-3.1-8b"), t, cfg, PRESETS[preset])
    eng = engine(ph)
    w = Workload(isl=512.0, osl=256.0, arrival_cv2=4.0)
    sat = load_metrics(ph, eng, w, rate=np.zeros(len(ph))).saturation_rate
    rate = np.linspace(0.2, 0.95, len(ph)) * sat

    def figures():
        r = load_metrics(ph, eng, w, rate=rate)
        p = prefill_metrics(ph, eng, w, rate)
        return list(r.stats.values()) + [p.prefill, p.service, p.wait] + list(p.stats.values())
    import planner.physics.disagg as disagg_mod
    import planner.physics.load as load_mod
    taken: dict[str, int] = {}
    for name, mod in (("load", load_mod), ("disagg", disagg_mod)):
        def spy(rows, n, *values, _name=name):
            taken[_name] = taken.get(_name, 0) + 1
            return at_rows(rows, n, *values)
        monkeypatch.setattr(mod, "at_rows", spy)
    monkeypatch.setattr(numerics, "JOINER_CALL_COST", 10 ** 12)
    stacked = figures()
    assert taken == {}
    monkeypatch.setattr(numerics, "JOINER_CALL_COST", 0)
    monkeypatch.setattr(numerics, "JOINER_TAKE_COST", 0.0)
    split = figures()
    assert all(np.array_equal(x, y, equal_nan=True) for x, y in zip(split, stacked))
    assert set(taken) == {"load", "disagg"}         # both split


def test_a_configuration_whose_step_is_infinite_is_the_same_split_or_stacked(monkeypatch):
    """A configuration whose step is infinite (a scheme its GPU cannot run: ``lin_prefill``
    inf) at the split's count exactly: stacked, its counts past its own K add 0 x inf = nan;
    split, it was left out of the second call and its figure came back inf. Rows already
    infinite go through the second call too, so the figure is the stacked one bit for bit
    (NaN's sign included)."""
    import planner.physics.numerics as numerics

    monkeypatch.setattr(numerics, "JOINER_CALL_COST", 0)
    monkeypatch.setattr(numerics, "JOINER_TAKE_COST", 0.0)
    n = 8
    a = np.full(n, 1e-3)
    a[0] = np.inf                                   # its own K 0 (rate x fixed tiny), the others many
    rate, fixed, last = np.where(np.arange(n) == 0, 1e-3, 200.0), np.full(n, 0.01), np.full(n, 100.0)

    def step(c):
        return a + 1e-6 * c

    def step_at(rows, m):
        return lambda c: a[rows] + 1e-6 * c
    with np.errstate(invalid="ignore"):
        stacked = joined_step(step, step(last), last, 100.0, 1e5, rate, fixed)
        split = joined_step(step, step(last), last, 100.0, 1e5, rate, fixed, step_at=step_at)
    assert np.isnan(stacked[0])
    assert np.array_equal(split, stacked, equal_nan=True) and np.array_equal(np.signbit(split), np.signbit(stacked))
