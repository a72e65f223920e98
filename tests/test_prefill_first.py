"""Engines that run their prompts first (SGLang's default scheduler: prompt-only steps while the
running sequences wait) and clients that start together (issue 22 item 2; docs/load.md section 5,
'prefill first'). Hand-computed checks of each new term, and the simulator beside the closed form."""

from __future__ import annotations

import numpy as np
import pytest

from planner.catalog.store import Catalog
from planner.physics import disagg as D
from planner.physics import load as L
from planner.physics.options import ENGINE_FIELDS, PRESETS
from planner.physics.space import Configs, GpuTable
from planner.simulate import Arrivals, Lengths, simulate, simulate_config

CAT = Catalog.default()
SGLANG = PRESETS["sglang"]


def _one(o, model="qwen3-32b", scheme="w8a8-fp8", kv="fp8", tp=4, batch=512, S=1024, Osl=128):
    t = GpuTable.build([CAT.gpus["h100-sxm"]])
    c = Configs.single(0, scheme, kv, tp, 1, 1, batch, S, Osl)
    ph = L.step_physics(CAT.model(model), t, c, o)
    return ph, L.engine(ph)


def test_prefill_first_is_an_engine_profile_field():
    assert "prefill_first" in ENGINE_FIELDS
    assert SGLANG.prefill_first and not PRESETS["realistic"].prefill_first and not PRESETS["trtllm"].prefill_first


def test_a_carrying_step_is_a_prompt_step_then_a_decode_step_by_hand():
    """Mixed: one step of n decoders and c prompt tokens. Prefill first: the prompt-only step
    of c tokens (its decoders wait), then the decode step of n: seconds add."""
    n, ctx, c = 40.0, 40 * 1100.0, 2048.0
    for o in (SGLANG, PRESETS["realistic"]):
        ph, _ = _one(o)
        got = float(L.carrying_step(ph, n, ctx, c, c * 1024, c / 1024)[0])
        prompt = float(L.step_time(ph, 0.0, 0.0, c, c * 1024, c / 1024)[0])
        decode = float(L.step_time(ph, n, ctx)[0])
        mixed = float(L.step_time(ph, n, ctx, c, c * 1024, c / 1024)[0])
        if o.prefill_first:
            assert got == pytest.approx(prompt + decode, rel=1e-12)
            assert float(L.prompt_step(ph, n, ctx, c, c * 1024, c / 1024)[0]) == pytest.approx(prompt, rel=1e-12)
        else:
            assert got == pytest.approx(mixed, rel=1e-12)
            assert float(L.prompt_step(ph, n, ctx, c, c * 1024, c / 1024)[0]) == pytest.approx(mixed, rel=1e-12)


def test_in_step_waves_by_hand():
    """32 clients, fixed 1,024 / 128 tokens, a budget of 8,192, on a prefill-first engine: every
    cycle all 32 prompts come back; 4 prompt-only steps of 8,192 tokens (t_w each) prefill them,
    the i-th done after ceil(i / 8) steps: mean TTFT = serving + 2.5 t_w (the wave's (K + k_1) / 2,
    K = 4, k_1 = 1); the 1.5 steps after a mean prompt's stall its decode, so TPOT = tau_32 +
    1.5 t_w / 127 with tau_32 the decode step of 32 sequences at a mean context of S + O / 2;
    throughput = N / (serving + 4 t_w + 127 tau_32) requests/s."""
    ph, eng = _one(SGLANG)
    S, Osl, N = 1024.0, 128.0, 32.0
    wl = L.Workload(isl=S, osl=Osl, start="together", requests_per_client=10.0)
    r = L.load_metrics(ph, eng, wl, clients=np.array([N]))
    t_w = float(L.step_time(ph, 0.0, 0.0, 8192.0, 8192.0 * S, 8192.0 / S)[0])   # seconds
    tau = float(L.step_time(ph, N, N * (S + Osl / 2.0))[0])                     # seconds
    srv = SGLANG.serving_overhead_s
    assert float(r.get("ttft", "mean")[0]) == pytest.approx(srv + 2.5 * t_w, rel=1e-9)
    assert float(r.get("tpot", "mean")[0]) == pytest.approx(tau + 1.5 * t_w / 127.0, rel=1e-9)
    assert float(r.rate[0]) == pytest.approx(N / (srv + 4.0 * t_w + 127.0 * tau), rel=1e-9)
    assert "in step every cycle" in r.arrival
    # Little's law over the run: every client always has a request in flight
    assert float(r.rate[0]) * float(r.get("e2e", "mean")[0]) == pytest.approx(N, rel=1e-9)


def test_in_step_waves_agree_with_the_simulator():
    """The simulator's prefill-first scheduler, clients starting together with fixed lengths,
    finds the same waves: mean TTFT, TPOT and throughput within 2 %."""
    for S, Osl, N in ((1024, 128, 64), (2048, 256, 128)):
        o = SGLANG.model_copy(update={"serving_overhead_s": 0.0})
        ph, eng = _one(o, S=S, Osl=Osl)
        wl = L.Workload(isl=float(S), osl=float(Osl), start="together", requests_per_client=10.0)
        m = L.load_metrics(ph, eng, wl, clients=np.array([float(N)]))
        s = simulate_config(ph, eng, 0, Arrivals("closed", clients=N, start="together", requests_per_client=10.0),
                            Lengths(S), Lengths(Osl), seed=1)
        assert s.summary["ttft_mean"] == pytest.approx(float(m.get("ttft", "mean")[0]), rel=0.02)
        assert s.summary["tpot_mean"] == pytest.approx(float(m.get("tpot", "mean")[0]), rel=0.02)
        assert s.throughput_rps == pytest.approx(float(m.rate[0]), rel=0.02)


def test_simulator_prefill_first_stops_the_decoders_by_hand():
    """Two clients together, prompts of 10 tokens, 3 output tokens, a budget of 10 tokens (one
    prompt a step); a step carrying prompt tokens takes 1 s, a decode step 0.1 s.
    Prefill first: A's prompt (t = 1), B's prompt alone while A waits (t = 2), two decode steps
    of both (2.1, 2.2): TTFT 1 and 2 s, TPOT (2.2 - 1) / 2 = 0.6 and 0.1 s.
    Mixed: A's prompt (1); A decodes beside 9 tokens of B (2); A's last token beside B's last
    token (3); B decodes twice (3.1, 3.2): TTFT 1 and 3 s, TPOT 1 and 0.1 s."""
    def step(n, ctx, chunk, att=0.0, heads=0):
        return 1.0 if chunk > 0 else 0.1
    arr = Arrivals("closed", clients=2, start="together", requests_per_client=1.0)
    pf = simulate(step, arr, Lengths(10), Lengths(3), token_budget=10, max_seqs=8, prefill_first=True)
    mx = simulate(step, arr, Lengths(10), Lengths(3), token_budget=10, max_seqs=8)
    assert sorted(pf.ttft.tolist()) == pytest.approx([1.0, 2.0])
    assert sorted(pf.tpot.tolist()) == pytest.approx([0.1, 0.6])
    assert sorted(mx.ttft.tolist()) == pytest.approx([1.0, 3.0])
    assert sorted(mx.tpot.tolist()) == pytest.approx([0.1, 1.0])


def test_disaggregated_first_wave_by_hand():
    """A disaggregated closed loop whose clients start together (a run of R = 10 requests per
    client): 1 / R of the requests are the first wave, W = N / P prompts per prefill replica
    prefilled FIFO a full budget a step, then the link: TTFT = (1 - 1/R) TTFT_steady + 1/R
    max(TTFT_steady, serving + wave mean + transfer + the decode pool's admission: its KV-slot
    wait and the residual of its step in progress, (1 - exp(-n (N_l - 1) / N_l)) tau / 2, with
    N_l = 32 / 2 = 16 clients a decode lane: the arriving request sees the others' sequences)."""
    t = GpuTable.build([CAT.gpus["h100-sxm"]])
    c = Configs.single(0, "w8a8-fp8", "fp8", 2, 1, 1, 256, 4000, 300)
    o = PRESETS["realistic"]
    ph = L.step_physics(CAT.model("llama-3.1-70b"), t, c, o)
    eng = L.engine(ph)
    N = np.array([32.0])
    steady = D.closed_loop(ph, eng, ph, eng, L.Workload(4000.0, 300.0), clients=N, prefill_replicas=1,
                           decode_replicas=2)
    run = D.closed_loop(ph, eng, ph, eng, L.Workload(4000.0, 300.0, start="together", requests_per_client=10.0),
                        clients=N, prefill_replicas=1, decode_replicas=2)
    W = 32.0                                              # prompts per prefill replica (one lane)
    c_w = float(eng.token_budget[0])                      # a full budget: 32 x 4,000 tokens wait
    t_w = float(L.step_time(ph, 0.0, 0.0, c_w, c_w * 4000.0, c_w / 4000.0)[0])
    K, k1 = W * 4000.0 / c_w, 1.0
    wave = o.serving_overhead_s + t_w * (K + k1) / 2.0 + float(steady.prefill.transfer[0]) \
        + float(steady.decode.kv_wait[0]) \
        + (1.0 - np.exp(-float(steady.decode.running[0]) * 15.0 / 16.0)) * float(steady.decode.step[0]) / 2.0
    want = 0.9 * float(steady.ttft[0]) + 0.1 * max(float(steady.ttft[0]), wave)
    assert float(run.ttft[0]) == pytest.approx(want, rel=1e-9)
    assert float(run.ttft[0]) > float(steady.ttft[0])
    assert float(run.tpot[0]) == float(steady.tpot[0])
