"""The prefill pool's backlog as a bulk-service queue (planner/physics/disagg.py
``bulk_overflow``, issue 25; docs/disaggregation.md section 1, 'the backlog'): the chain at
step ends X' = (X - K)^+ + A, A ~ Poisson(a), steps taking up to K prompts (M/D^[K]/1), its
mean overflow E[(X - K)^+] from the roots of z^K = exp(a (z - 1)) in the unit disc."""

from __future__ import annotations

import math

import numpy as np
import pytest

from planner.physics import disagg as D


def _chain(a: float, K: int, states: int = 600, steps: int = 3000) -> float:
    """E[(X - K)^+] of the chain by brute force: its distribution pushed ``steps`` times from
    an empty queue over ``states`` states (no generating function, no roots)."""
    pmf = np.zeros(states)
    p = math.exp(-a)
    for j in range(states):
        pmf[j] = p
        p = p * a / (j + 1)
    pi = np.zeros(states)
    pi[0] = 1.0
    left = np.maximum(np.arange(states) - K, 0)
    for _ in range(steps):
        pi = np.convolve(np.bincount(left, weights=pi, minlength=states), pmf)[:states]
        pi /= pi.sum()
    return float(np.sum(left * pi))


@pytest.mark.parametrize("a", [0.1, 0.5, 0.9, 0.99])
def test_one_prompt_a_step_is_the_md1_queue(a):
    """K = 1: the M/D/1 queue seen at departures, Lq = a^2 / (2 (1 - a)) (Pollaczek-Khinchine
    at deterministic service): no root, the formula's correction term alone."""
    got = float(D.bulk_overflow(np.array([a]), np.array([1.0]))[0])
    assert got == pytest.approx(a * a / (2.0 * (1.0 - a)), rel=1e-12)


def test_two_prompts_a_step_by_hand():
    """K = 2, a = 1.5: the one root inside the disc is real, z = -exp(a (z - 1) / 2) in (-1, 0)
    (found here by bisection), and E[(X - 2)^+] = 1 / (1 - z) - (2 - a^2) / (2 (2 - a))."""
    a = 1.5
    lo, hi = -1.0, 0.0                 # g(z) = z + exp(a (z - 1) / 2): g(-1) < 0 < g(0)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if mid + math.exp(a * (mid - 1.0) / 2.0) < 0.0 else (lo, mid)
    z = 0.5 * (lo + hi)
    by_hand = 1.0 / (1.0 - z) - (2.0 - a * a) / (2.0 * (2.0 - a))
    assert float(D.bulk_overflow(np.array([a]), np.array([2.0]))[0]) == pytest.approx(by_hand, rel=1e-10)
    assert by_hand == pytest.approx(_chain(a, 2), rel=1e-9)


@pytest.mark.parametrize("a, K", [(6.0, 8), (7.6, 8), (30.0, 64), (60.0, 64)])
def test_many_prompts_a_step_agree_with_the_chain(a, K):
    """The roots' formula against the chain pushed to its stationary law, light to heavy
    traffic (a / K from 0.47 to 0.95), one call over all four as a leading axis would."""
    got = float(D.bulk_overflow(np.array([a]), np.array([float(K)]))[0])
    assert got == pytest.approx(_chain(a, K, states=1500, steps=4000), rel=1e-6, abs=1e-12)


def test_configurations_of_different_budgets_in_one_call_and_overload():
    """Each configuration its own K (roots past its K left out), a >= K unstable (inf)."""
    a = np.array([0.5, 1.5, 6.0, 8.0, 9.0])
    K = np.array([1.0, 2.0, 8.0, 8.0, 8.0])
    got = D.bulk_overflow(a, K)
    alone = [float(D.bulk_overflow(a[i:i + 1], K[i:i + 1])[0]) for i in range(3)]
    assert got[:3] == pytest.approx(alone, rel=1e-12)
    assert np.isinf(got[3]) and np.isinf(got[4])


def test_no_arrivals_no_backlog():
    """At rate 0 the bulk backlog is 0, not 0 / 0: a NaN TTFT there made closed_loop's
    bisection (its idle residence at a rate of ~0) run without end on validate's rows."""
    from planner.catalog.store import Catalog
    from planner.physics.load import Workload, engine, step_physics
    from planner.physics.options import PRESETS
    from planner.physics.space import Configs, GpuTable
    cat = Catalog.default()
    ph = step_physics(cat.model("llama-3.1-8b"), GpuTable.build([cat.gpus["h100-sxm"]]),
                      Configs.single(0, "w16a16", "bf16", 1, 1, 1, 64, 256, 2), PRESETS["realistic"])
    r = D.prefill_metrics(ph, engine(ph), Workload(isl=256.0, osl=2.0), np.array([0.0]))
    assert np.isfinite(r.get("ttft", "mean")[0]) and np.isfinite(r.get("ttft", "p99")[0]) and r.stable[0]
    assert float(r.wait[0]) == 0.0


@pytest.mark.parametrize("a, K", [(0.8, 16), (1.6, 16), (4.0, 16), (8.0, 64), (40.0, 256)])
def test_light_traffic_is_not_the_roots_cancellation(a, K):
    """Light traffic: the roots' sum ~ (K - 1) / 2 and the correction ~ -(K - 1) / 2 cancel to
    ~1e-14 (the sum's rounding), while the overflow is P(A > K)-small (1e-11 .. 1e-30): the
    figure must be the chain's, not the rounding (divided by a rate of 1e-14 /s the rounding
    was +77 % on the mean TTFT of SGLang's 512-token prompts, above their p99)."""
    got = float(D.bulk_overflow(np.array([a]), np.array([float(K)]))[0])
    assert got == pytest.approx(_chain(a, K, states=K + 200, steps=50), rel=1e-6, abs=1e-300)


def test_the_mean_ttft_at_a_vanishing_rate_is_the_idle_one():
    """TTFT at 1e-14 and 1e-12 requests/s is the idle engine's (rate 0) to 1e-9, and not above
    its own p99 (SGLang, Llama-3.1-8B, 512-token prompts: K = 16 a step)."""
    from planner.catalog.store import Catalog
    from planner.physics.load import Workload, engine, step_physics
    from planner.physics.options import PRESETS
    from planner.physics.space import Configs, GpuTable
    cat = Catalog.default()
    ph = step_physics(cat.model("llama-3.1-8b"), GpuTable.build([cat.gpus["h100-sxm"]]),
                      Configs.single(0, "w16a16", "bf16", 1, 1, 1, 64, 512, 2), PRESETS["sglang"])
    eng, wl = engine(ph), Workload(isl=512.0, osl=2.0)
    idle = float(D.prefill_metrics(ph, eng, wl, np.array([0.0])).get("ttft", "mean")[0])
    for lam in (1e-14, 1e-12):
        r = D.prefill_metrics(ph, eng, wl, np.array([lam]))
        assert float(r.get("ttft", "mean")[0]) == pytest.approx(idle, rel=1e-9)
        assert float(r.get("ttft", "mean")[0]) <= float(r.get("ttft", "p99")[0]) * (1.0 + 1e-9)
