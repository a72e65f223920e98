"""The saturation of a prefill-first engine (SGLang's profile) and the closed loop it bounds
(issue 22 item 2, DeepSeek under load; docs/load.md section 3, 'prefill first at saturation').

A prefill-first engine runs the prompts that arrived during a decode step in one prompt-only
step; at the slot limit n = M, a = n / (O - 1) prompts arrive a mean step (Little), so not every
decode step carries a prompt step. The saturation used to charge one prompt step a decode step,
a ceiling below the rates the engine's own steady state reaches: the closed loop stopped there
with part of its clients in no queue at all (Little's law broken: 68.6 of 256 clients)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from planner.catalog.store import Catalog
from planner.physics import load as L
from planner.physics.options import PRESETS
from planner.physics.space import Configs, GpuTable
from planner.simulate import Arrivals, Lengths, simulate_config

CAT = Catalog.default()
SGLANG = PRESETS["sglang"]


def _qwen(S=1024, Osl=1024, o=SGLANG):
    t = GpuTable.build([CAT.gpus["h100-sxm"]])
    c = Configs.single(0, "w8a8-fp8", "fp8", 4, 1, 1, 512, S, Osl)
    ph = L.step_physics(CAT.model("qwen3-32b"), t, c, o)
    return ph, L.engine(ph)


def test_prefill_first_saturation_by_hand():
    """Qwen3-32B FP8 on 4 H100, 1,024 / 1,024 tokens, 512 slots, budget 8,192: n = min(T (O - 1)
    / S, M) = min(8,184, 512) = 512 sequences; a = 512 / 1,023 = 0.5005 arrivals a mean step; a
    carrying step holds a / (1 - e^-a) = 1.2645 prompts, c = 1,024 x 1.2645 = 1,294.9 tokens, and
    comes with probability q = a S / c = 1 - e^-a = 0.3938; tau = t0(512) + q t_prompt(c) and the
    saturation 512 / (1,023 tau) requests/s (one lane)."""
    ph, eng = _qwen()
    S, O = 1024.0, 1024.0
    n = 512.0
    assert float(eng.max_seqs[0]) == n
    a = n / (O - 1.0)
    m = a / (1.0 - math.exp(-a))
    c = S * m
    q = a * S / c
    assert q == pytest.approx(1.0 - math.exp(-a), rel=1e-12)
    t0 = float(L.step_time(ph, n, n * (S + O / 2.0))[0])                      # seconds
    tp = float(L.step_time(ph, 0.0, 0.0, c, c * S, c / S)[0])                   # seconds
    tau = t0 + q * tp
    sat, tau_sat = L._saturation(ph, eng, np.array([S]), np.array([O]))
    assert float(tau_sat[0]) == pytest.approx(tau, rel=1e-12)
    assert float(sat[0]) == pytest.approx(n / ((O - 1.0) * tau), rel=1e-12)      # requests/s
    # the old ceiling, a prompt step of n S / (O - 1) tokens beside every decode step, is lower
    c_every = n * S / (O - 1.0)
    every = t0 + float(L.step_time(ph, 0.0, 0.0, c_every, c_every * S, c_every / S)[0])
    assert float(sat[0]) > n / ((O - 1.0) * every)


def test_the_steady_state_runs_below_its_saturation():
    """Up to 0.95 of the saturation the fluid fixed point converges, stable, with fewer than M
    sequences running and more the higher the rate (the old ceiling, 5.6 requests/s here, was
    0.61 of it)."""
    ph, eng = _qwen()
    S, O = np.array([1024.0]), np.array([1024.0])
    sat, _ = L._saturation(ph, eng, S, O)
    wl = L.Workload(isl=1024.0, osl=1024.0)
    running = []
    for f in (0.3, 0.6, 0.8, 0.95):
        r = L._open(ph, eng, wl, sat * f, S, O, closed=None, quantiles=False)
        assert bool(r.stable[0])
        running.append(float(r.running[0]))
    assert running == sorted(running) and running[-1] < 512.0


@pytest.mark.parametrize("N", [128.0, 256.0, 384.0, 600.0, 1000.0])
def test_a_closed_loop_holds_all_its_clients(N):
    """Little's law: N clients out of step, each always with a request in flight (queued for a
    slot or running), so the throughput times the mean end-to-end time is N (before: 68.6 at
    every N past 68, the rest in no queue; past the 512 slots, with the second search of
    ``_steady`` only where the first found no fixed point: 536 of 600, 936 of 1,000)."""
    ph, eng = _qwen()
    wl = L.Workload(isl=1024.0, osl=1024.0, start="independent")
    r = L.load_metrics(ph, eng, wl, clients=np.array([N]), quantiles=False)
    assert bool(r.stable[0])
    assert float(r.rate[0] * r.get("e2e", "mean")[0]) == pytest.approx(N, rel=1e-6)


def test_closed_loop_throughput_agrees_with_the_simulator():
    """256 clients starting together, prompts and outputs uniform on [0.8 L, L] (InferenceX), L =
    1,024 / 1,024, no serving path: the simulator's prefill-first scheduler carries 8.8 requests/s
    at a TPOT of 28.7 ms; the closed form 8.4 and 32.9 (before: 18.6 and 14.6, its steady state
    pinned at a ceiling of 5.6 requests/s with most clients lost, then the run's N / cycle)."""
    o = SGLANG.model_copy(update={"serving_overhead_s": 0.0})
    ph, eng = _qwen(o=o)
    S, Osl, N = 1024, 1024, 256
    wl = L.Workload(isl=0.9 * S, osl=0.9 * Osl, isl_cv2=0.0041, osl_cv2=0.0041, start="together",
                    requests_per_client=10.0)
    m = L.load_metrics(ph, eng, wl, clients=np.array([float(N)]), quantiles=False)
    s = simulate_config(ph, eng, 0, Arrivals("closed", clients=N, start="together", requests_per_client=10.0),
                        Lengths(list(range(int(0.8 * S), S + 1))), Lengths(list(range(int(0.8 * Osl), Osl + 1))),
                        seed=1)
    assert float(m.rate[0]) == pytest.approx(s.throughput_rps, rel=0.1)
    assert float(m.get("tpot", "mean")[0]) == pytest.approx(s.summary["tpot_mean"], rel=0.2)


def test_a_fixed_point_below_a_slower_step_past_the_slots_is_found():
    """DeepSeek-R1 FP8 on 8 B200 (SGLang profile), 922 / 7,373 tokens: its KV cache holds M
    sequences at S + O; at 0.6 requests/s the steady state runs about 123 of them (a step of
    ~29 ms), but the bracket's upper end (4 x the saturated step) puts n past 512 tokens, where
    the decode step is eager and slower than the bracket: no sign change, no fixed point found.
    Searched again below the step at which n = M, it is."""
    t = GpuTable.build([CAT.gpus["b200"]])
    c = Configs.single(0, "w8a8-fp8", "bf16", 8, 1, 1, 8192, 921.6, 7372.8)
    ph = L.step_physics(CAT.model("deepseek-r1"), t, c, SGLANG)
    eng = L.engine(ph)
    S, O = np.array([921.6]), np.array([7372.8])
    lam = np.array([0.6])
    st = L._steady(ph, eng, lam, S, O)
    assert bool(st["converged"][0])
    n = float(st["n"][0])
    assert n < float(eng.max_seqs[0])
    # the fixed point by hand: tau = t0(n) + q t_prompt(c) at n = lambda (O - 1) tau
    tau = float(st["tau"][0])
    assert n == pytest.approx(0.6 * (7372.8 - 1.0) * tau, rel=1e-9)
