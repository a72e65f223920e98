"""The busy step's spread at the CUDA-graph edge (planner/physics/disagg.py ``_step_variance``,
docs/disaggregation.md section 1, 'Step variance'): SGLang's 512-token prompts on
Llama-3.1-8B / one H100 at 0.03-0.04 of the prefill saturation had a mean TTFT of 3.9-6.8 s
against 0.116 s at the loads beside them. The mean chunk c = 512 E[N] sat within a token of
the 512-token graph edge (13.9 -> 40.4 ms), and the step's spread took dt/dc by a difference
of +-0.5 tokens across it: (a c1)^2 Var N with a = 26 ms a token, a 2 s step deviation."""

from __future__ import annotations

import numpy as np
import pytest

from planner.catalog.store import Catalog
from planner.physics import disagg as D
from planner.physics.load import Workload, engine, step_physics
from planner.physics.options import ENGINE_PRESETS, PRESETS
from planner.physics.space import Configs, GpuTable

CAT = Catalog.default()
LOADS = np.array([0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.05, 0.07, 0.1, 0.15, 0.2])


def _pool(S: int, preset: str):
    t = GpuTable.build([CAT.gpus["h100-sxm"]])
    ph = step_physics(CAT.model("llama-3.1-8b"), t, Configs.single(0, "w16a16", "bf16", 1, 1, 1, 64, S, 2),
                      PRESETS[preset])
    return ph, engine(ph)


@pytest.mark.parametrize("preset", sorted(set(ENGINE_PRESETS.values())))
@pytest.mark.parametrize("S", [256, 512, 1024])
def test_low_load_ttft_is_flat_and_rises_with_the_load(S, preset):
    """0.01-0.2 of the saturation: a few per cent of queueing at most, never falling (0.1 %
    for the bisections' rounding). Before: SGLang 512 tokens 3.87 / 5.23 / 6.80 s at 0.03 /
    0.035 / 0.04 (0.116 s around), TensorRT-LLM's 0.099 s at 0.04 falling to 0.096 at 0.05."""
    ph, eng = _pool(S, preset)
    sat = float(D.prefill_saturation(ph, eng, float(S))[0])
    ttft = np.array([float(D.prefill_metrics(ph, eng, Workload(isl=float(S), osl=2.0), np.array([x * sat]),
                                             quantiles=False).get("ttft", "mean")[0]) for x in LOADS])
    assert np.all(np.isfinite(ttft))
    assert np.all(np.diff(ttft) >= -1e-3 * ttft[:-1]), ttft
    assert ttft[-1] <= 1.15 * ttft[0], ttft


def _moments(m: float, K: int, t):
    """Var t_N and dE[t_N]/dm of N = min(max(1, A), K), A ~ Poisson(m), by direct sums."""
    j = np.arange(0, 400)
    logp = -m + j * np.log(m) - np.array([np.sum(np.log(np.arange(1, k + 1))) for k in j])
    p = np.exp(logp)
    n = np.clip(j, 1, K)
    tn = np.asarray(t)[n - 1]
    mean = np.sum(p * tn)
    dp = np.exp(-m + (j - 1) * np.log(m) - np.array([np.sum(np.log(np.arange(1, k))) for k in j])) - p
    dp[0] = -p[0]
    return np.sum(p * (tn - mean) ** 2), np.sum(dp * tn), mean


@pytest.mark.parametrize("m", [0.03, 0.7, 3.0])
@pytest.mark.parametrize("kind", ["affine", "jump"])
def test_step_variance_is_the_steps_own_spread(m, kind):
    """V = Var t_N / (1 - beta^2), beta = rate dE[t_N]/dm, against direct Poisson sums. An
    affine step t = t0 + a c1 n gives the former form (a c1)^2 Var N / (1 - beta^2); a step
    jumping past one piece counts the jump, not the jump over a token."""
    K, c1, rate = 6, 512.0, 20.0
    n = np.arange(1, K + 1)
    t = 0.012 + 2e-6 * c1 * n if kind == "affine" else np.where(n == 1, 0.0139, 0.0404 + 3e-5 * (n - 2))
    var, dt_dm, mean = _moments(m, K, t)
    beta = rate * dt_dm
    got = D._step_variance(np.array([m]), np.array([float(K)]), t[:, None], np.array([mean]), np.array([rate]))
    assert float(got[0]) == pytest.approx(var / (1.0 - beta * beta), rel=1e-9)
    if kind == "affine":
        var_n, dn_dm, _ = _moments(m, K, n.astype(float))      # of N itself: Var N, dE[N]/dm
        a = 2e-6
        b = a * rate * c1 * dn_dm
        assert float(got[0]) == pytest.approx((a * c1) ** 2 * var_n / (1.0 - b * b), rel=1e-9)


def test_sglang_512_token_prompts_at_low_load_agree_with_the_simulator():
    """SGLang, 512-token prompts at 0.035 of the saturation: 5.23 s before, the simulator's
    mean (``simulate_prefill_pool``, seeds 1 and 2, 4,000 requests each) about 0.116 s."""
    from planner.simulate import Arrivals, Lengths, simulate_prefill_pool
    ph, eng = _pool(512, "sglang")
    rate = 0.035 * float(D.prefill_saturation(ph, eng, 512.0)[0])
    r = D.prefill_metrics(ph, eng, Workload(isl=512.0, osl=2.0), np.array([rate]), quantiles=False)
    xf = float(D.kv_transfer_time(ph, 512.0, "inter")[0])
    sim = np.concatenate([np.asarray(simulate_prefill_pool(ph, eng, 0, Arrivals("poisson", rate=rate), Lengths(512),
                                                           transfer_s=xf, n_requests=4000, seed=s).ttft)
                          for s in (1, 2)]).mean()
    assert r.stable[0]
    assert float(r.get("ttft", "mean")[0]) == pytest.approx(float(sim), rel=0.05)
