"""Which mean TPOT (issue 25, docs/workloads.md section 3 'Which mean TPOT'): the simulator's is
a benchmark client's, per request and without one-token requests; benchmarks/replay_gap.py's
per-token and per-step means beside it, by hand."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from planner.simulate import Arrivals, Lengths, simulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import replay_gap as G  # noqa: E402


def test_per_token_and_per_step_means_by_hand():
    """Three requests: O = 3 decoding 0.2 s (TPOT 0.1), O = 2 decoding 0.3 s (TPOT 0.3), O = 1
    (no TPOT). Per request (0.1 + 0.3) / 2 = 0.2; per token (0.2 + 0.3) / (2 + 1) = 1/6; per
    step the plain mean of the measured steps' times (0.1, 0.1, 0.4, taken as given) = 0.2."""
    r = SimpleNamespace(ttft=np.array([1.0, 2.0, 0.5]), e2e=np.array([1.2, 2.3, 0.5]),
                        tpot=np.array([0.1, 0.3, np.nan]), itl=np.array([0.1, 0.1, 0.4]))
    s = G.tpot_split(r)
    assert s["tpot_token"] == pytest.approx(0.5 / 3.0, rel=1e-12)
    assert s["tpot_step"] == pytest.approx(0.2, rel=1e-12)
    assert np.nanmean(r.tpot) == pytest.approx(0.2, rel=1e-12)


def test_one_token_requests_are_left_out_as_vllm_bench_serve_does():
    """Half the requests have one output token: they get no TPOT and the mean is over the
    others only (``vllm bench serve`` appends a request's TPOT only where output_len > 1)."""
    r = simulate(lambda *a: 0.01, Arrivals("poisson", rate=2.0), Lengths(100), Lengths([1, 11], [0.5, 0.5]),
                 token_budget=2048, max_seqs=64, n_requests=400, seed=3)
    one = ~np.isfinite(r.tpot)
    assert 0 < one.sum() < r.tpot.size
    assert np.allclose((r.e2e - r.ttft)[one], 0.0)
    assert r.summary["tpot_mean"] == pytest.approx(float(np.mean(r.tpot[~one])), rel=1e-12)
    assert r.summary["tpot_mean"] == pytest.approx(0.01, rel=1e-9)


def test_with_one_output_length_the_request_and_token_means_agree():
    """Every request decodes O - 1 = 31 tokens: the mean per request is the mean per token, bit
    for bit up to rounding, whatever the steps' spread (prompts of 50 or 3,000 tokens)."""
    def step(n, ctx, c=0, A=0.0, heads=0):
        return 0.005 + 1e-4 * n + 2e-6 * c
    r = simulate(step, Arrivals("poisson", rate=4.0), Lengths([50, 3000], [0.8, 0.2]), Lengths(32),
                 token_budget=1024, max_seqs=64, n_requests=600, seed=1)
    s = G.tpot_split(r)
    assert s["tpot_token"] == pytest.approx(r.summary["tpot_mean"], rel=1e-12)


def test_per_token_from_the_autocovariance_by_hand():
    """Steps alternating 0.1 / 0.3 s, every request decoding one step (L = 1): tau = 0.2, the
    lag-1 autocovariance -0.01, so tau + C_1 / (1 x tau) = 0.15. Directly, a step's decoders
    are those whose prompt finished in the step before (n_s proportional to t_{s-1}):
    sum t_{s-1} t_s / sum t_{s-1} = 999 x 0.03 / 199.7, within 1e-3. Steady steps: tau itself."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import tpot_autocov as A
    dt = np.resize([0.1, 0.3], 1000)
    assert A.per_token_from_steps(dt, np.array([1, 1, 1])) == pytest.approx(0.15, rel=1e-12)
    direct = float(np.sum(dt[:-1] * dt[1:]) / np.sum(dt[:-1]))
    assert A.per_token_from_steps(dt, np.array([1])) == pytest.approx(direct, rel=1e-3)
    assert A.per_token_from_steps(np.full(50, 0.02), np.array([3, 7, 0])) == pytest.approx(0.02, rel=1e-12)
