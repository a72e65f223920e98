"""The disaggregated prefill pool's busy branch (planner/physics/disagg.py ``prefill_metrics``,
issue 25; docs/disaggregation.md section 1, 'the busy step past the CUDA graphs' and 'the
backlog', section 5, 'the prefill pool over a sweep'): Llama-3.1-8B on one H100 (batch 64),
short prompts, against the pool simulator (``simulate_prefill_pool``, seeds 1 and 2, 4,000
requests each, the KV transfer included)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from planner.catalog.store import Catalog
from planner.physics import disagg as D
from planner.physics.load import Workload, engine, step_physics
from planner.physics.options import PRESETS
from planner.physics.space import Configs, GpuTable
from planner.simulate import Arrivals, Lengths, simulate_prefill_pool
from planner.traces.cache import StatedCache

CAT = Catalog.default()


def _pool(S: int, preset: str):
    t = GpuTable.build([CAT.gpus["h100-sxm"]])
    ph = step_physics(CAT.model("llama-3.1-8b"), t, Configs.single(0, "w16a16", "bf16", 1, 1, 1, 64, S, 2),
                      PRESETS[preset])
    return ph, engine(ph)


@cache
def _both(S: int, preset: str, load: float, cached: float = 0.0):
    """(closed form, simulated mean TTFT s) at ``load`` x the prefill saturation, Poisson."""
    ph, eng = _pool(S, preset)
    sat = float(D.prefill_saturation(ph, eng, float(S), cached=cached * S)[0])
    r = D.prefill_metrics(ph, eng, Workload(isl=float(S), osl=2.0, cached=cached * S), np.array([load * sat]))
    xf = float(D.kv_transfer_time(ph, float(S), "inter")[0])
    tt = np.concatenate([np.asarray(simulate_prefill_pool(
        ph, eng, 0, Arrivals("poisson", rate=load * sat), Lengths(S), transfer_s=xf, n_requests=4000, seed=seed,
        prefix_cache=StatedCache(hit_rate=cached) if cached > 0 else None).ttft) for seed in (1, 2)])
    return r, float(tt.mean())


def test_sglang_busy_step_stays_below_the_cuda_graph_edge():
    """SGLang, 256-token prompts at half the prefill saturation: a step of more than 512 tokens
    (its cuda_graph_max_tokens) launches every kernel from the host, 13.9 -> 40.4 ms, so the
    busy step's chunk c = c1 E[N] had a root below the edge and one above it (844 tokens,
    40.4 ms). The pool fills from empty to the lower; the bisection over [c1, T] found the
    upper one: busy share 0.99 and a mean TTFT of 523 ms against the simulator's 129 ms. Now
    the lowest root, the step the mean over the count (a step of three prompts is past the
    edge): c = 345 tokens, a mean step of 12.0 ms, busy share 0.72, 122 ms (-5 %)."""
    r, sim = _both(256, "sglang", 0.5)
    assert r.stable[0]
    assert float(r.chunk_tokens[0]) <= 512.0
    assert float(r.rho[0]) < 0.8
    assert float(r.get("ttft", "mean")[0]) == pytest.approx(sim, rel=0.1)


def test_a_step_falling_at_the_top_takes_the_scans_last_point(monkeypatch):
    """The chunk's scan over m, from the one-piece step's m to the full step's, ends at the
    first point not below the root. Where every point is below (lam S E[t] / c1 > m up to the
    full step's m: a step that peaks between one piece and the budget, which no engine profile
    has), the scan's last point is taken: np.argmin over an all-True column is 0, which took the
    first instead. A toy step of 1 ms for one 256-token piece, 1 s for two, 2 ms for three or
    more (K = 8 in a 2,048-token budget), at lam S / c1 = 1,000 pieces a second: the full step's
    m is 2, where two pieces come with probability 0.27 and E[t] > 0.2 s, so every point is below."""
    ph, _ = _pool(256, "sglang")

    def toy(phys, c, S, P, cv2):
        n = np.rint(np.asarray(c, float) / 256.0)
        return np.where(n <= 1.0, 1e-3, np.where(n == 2.0, 1.0, 2e-3))
    monkeypatch.setattr(D, "_prefill_step", toy)
    rate = 1000.0                                     # lam S / c1, pieces a second (S = c1 = 256)
    _, c1, m, K, _, _ = D._prefill_chunk(ph, np.array([rate]), np.array([256.0]), 2048.0, np.array([0.0]),
                                      np.array([0.0]))
    assert float(c1[0]) == 256.0 and float(K[0]) == 8.0
    assert float(m[0]) == pytest.approx(rate * 2e-3, rel=1e-9)      # the full step's m, the scan's top


NEAR_SATURATION = [(170, "sglang", 0.7, 0.0), (256, "sglang", 0.9, 0.0), (128, "realistic", 0.9, 0.3)]


@pytest.mark.parametrize("S, preset, load, cached", NEAR_SATURATION)
def test_short_prompts_near_saturation_err_on_the_safe_side(S, preset, load, cached):
    """Short prompts near saturation: every step finds arrivals, so the busy share rho = lam D
    of a batched (gated) step tends to 1 far below the saturation, and Kingman's backlog wait on
    it exploded (docs/disaggregation.md section 5; the mean now the bulk queue's overflow, the
    percentiles' work tail still the busy share's): SGLang's 170-token prompts at 0.7,
    12.1 s against the simulator's 0.160; SGLang's 256-token at 0.9 and vLLM's 128-token (30 %
    cached) at 0.9 unstable (KV-slot occupancy above 1), the simulator's 0.207 and 0.077 s. The
    backlog at the full-step speed lam / sat brought them within 15 % but made capacities at
    p90/p99 targets optimistic (the test below), so it is not used: what must hold is the safe
    direction, a plan that never promises these rates (unstable) or prices them above the
    simulator's mean, never below it by more than the 15 % the agreement allows."""
    r, sim = _both(S, preset, load, cached)
    assert (not r.stable[0]) or float(r.get("ttft", "mean")[0]) >= 0.85 * sim


@pytest.mark.parametrize("S, preset, load, cached", NEAR_SATURATION)
def test_short_prompts_near_saturation_agree_with_the_simulator(S, preset, load, cached):
    """Within 15 % of the simulator's mean, stable: the mean backlog is the bulk queue's own
    overflow (``bulk_overflow``, docs/disaggregation.md section 1), not Kingman's on the busy
    share (12.1 s at 170 tokens and 0.7, unstable at the other two; a strict xfail until then). SGLang's
    256-token prompts at 0.9: 0.240 s against 0.207 (+16 %, a strict xfail) while the busy
    step's spread was dt/dc at the mean chunk (1,787 tokens, past the 512-token graph edge) x c1
    with the pieces' count: a 36 ms deviation. The step's own values over the count
    (``_step_variance``, which takes the jump from one piece to three at its probability): 17 ms,
    0.209 s (+1 %)."""
    r, sim = _both(S, preset, load, cached)
    assert r.stable[0]
    assert float(r.get("ttft", "mean")[0]) == pytest.approx(sim, rel=0.15)


def test_busy_branch_takes_the_backlog_wait_as_load_py_does(monkeypatch):
    """The prompts that join a prompt's last step during its backlog wait: the wait is 0 or
    exponential (Kingman's), as load.py's own steps take it through ``joined_step``'s wait, not
    its mean as a fixed time added to the busy step's window (two homes for one formula).
    vLLM, 1,000-token prompts at 0.95 of saturation, where the wait is long: the busy branch's
    call passes the wait (mean w_extra / rho within the branch) and its probability apart
    (Kingman's fit discount until the bulk queue's overflow, ``bulk_overflow``, took the mean
    backlog of prompts K >= 2 to a step: now the share of prompts left behind).
    """
    calls = []
    real = D.joined_step

    def spy(*args, **kw):
        calls.append((args, kw))
        return real(*args, **kw)
    monkeypatch.setattr(D, "joined_step", spy)
    ph, eng = _pool(1000, "realistic")
    sat = float(D.prefill_saturation(ph, eng, 1000.0)[0])
    r = D.prefill_metrics(ph, eng, Workload(isl=1000.0, osl=2.0), np.array([0.95 * sat]))
    assert r.stable[0]
    busy = [a for a, _ in calls if len(a) >= 9]
    assert len(busy) == 1
    wait, prob = float(np.asarray(busy[0][7])[0]), float(np.asarray(busy[0][8])[0])
    # the bulk queue's share left behind given busy (K = 8 prompts a step): at 0.95 a prompt
    # is left behind more than once on average, so the probability is at its cap of 1
    assert wait > 0.0 and 0.0 < prob <= 1.0
    fixed = float(np.asarray(busy[0][6])[0])
    assert fixed < wait        # the window holds the busy step (2 R), not the wait


@pytest.mark.parametrize("S, preset, target", [(256, "realistic", 0.0796), (1000, "sglang", 0.2879)])
def test_prefill_capacity_at_a_p99_target_is_served_by_the_simulator(S, preset, target):
    """The capacity at SLO (``prefill_capacity``, what ``planner plan`` sizes a prefill pool
    by) must not promise a rate the pool does not serve within its TTFT p99 target: there the
    simulator's p99 is within 5 % of the target. Targets: twice the nearly idle mean TTFT
    (``benchmarks/prefill_capacity_check.py``). The simulator serves them to ~0.475 of the
    saturation (a 0.025 grid, seeds 1-3). With the backlog at the full-step speed (lam / sat,
    7e29839, since dropped) the capacities were 0.620 and 0.608, where the simulator's p99 is
    1.27 and 1.20 x the target; with the busy share's backlog 0.407 and 0.317, below it."""
    from planner.physics.load import Target
    ph, eng = _pool(S, preset)
    cap = D.prefill_capacity(ph, eng, Workload(isl=float(S), osl=2.0), [Target("ttft", "p99", target)])
    rate = float(cap.rate[0])
    assert rate > 0.0
    xf = float(D.kv_transfer_time(ph, float(S), "inter")[0])
    tt = np.concatenate([np.asarray(simulate_prefill_pool(
        ph, eng, 0, Arrivals("poisson", rate=rate), Lengths(S), transfer_s=xf, n_requests=4000, seed=seed).ttft)
        for seed in (1, 2)])
    assert float(np.percentile(tt, 99)) <= 1.05 * target
