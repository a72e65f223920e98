"""The prefill pool of a disaggregated pair under spread prompt lengths (issue 25's leftover,
docs/disaggregation.md section 1): its steps price attention with load.py's
``attention_length`` (S (1 + CV^2) + 2P a token, not S + 2P) and its backlog's service CV^2 is
load.py's ``prefill_work_cv2`` (a prompt's prefill time, not its tokens), as the aggregated path
does. Fixed lengths: the same figures as before, bit for bit."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from planner.candidates.table import build_candidates
from planner.catalog.store import Catalog
from planner.physics import disagg as D
from planner.physics import load as L
from planner.physics.options import PRESETS
from planner.physics.space import Configs, GpuTable
from planner.resolve.problem import resolve_fleet
from planner.schemas.fleet import load_fleet_spec

CAT = Catalog.default()
O = PRESETS["realistic"]


def _one(S=3000.0, Osl=200.0):
    t = GpuTable.build([CAT.gpus["h100-sxm"]])
    c = Configs.single(0, "w8a8-fp8", "fp8", 2, 1, 1, 128, S, Osl)
    ph = L.step_physics(CAT.model("llama-3.1-70b"), t, c, O)
    return ph, L.engine(ph)


def _busy_step_is_the_mean_over_the_count(ph, eng, r, rate, S, units):
    """The busy step (docs/disaggregation.md section 1): the mean over the count N = min(max(1,
    A), K) of the step of N pieces c1, each step priced by hand at ``units(c)`` attention units
    and c / S LM-head rows; m = lam S E[t] / c1 pieces arrive during one, and the chunk is
    c1 E[N] (the fixed point to the bisection's 2^-30)."""
    T = float(eng.token_budget[0])
    c1 = S / np.ceil(S / T)
    K = np.floor(T / c1)
    n = np.arange(1.0, K + 1.0)
    table = np.stack([L.step_time(ph, 0.0, 0.0, np.array([c1 * k]), units(np.array([c1 * k])), np.array([c1 * k / S]))
                      for k in n])
    m = rate / float(ph.lanes[0]) * S * r.step / c1
    e_n, e_t = D._pieces(m, np.array([K]), table)
    assert r.step == pytest.approx(e_t, rel=1e-7)
    assert r.chunk_tokens == pytest.approx(c1 * e_n, rel=1e-7)


def test_fixed_lengths_price_attention_at_s_plus_2p_exactly():
    """Metamorphic: CV^2 0 (with or without the length moments) prices a step of c tokens at
    c (S + 2P) attention units, the formula before the change, to the last bit."""
    ph, eng = _one()
    S, P = 2500.0, 500.0
    for wl in (L.Workload(3000.0, 200.0, cached=P), L.Workload(3000.0, 200.0, cached=P, isl_m3=1.0, isl_m4=1.0)):
        r = D.prefill_metrics(ph, eng, wl, 0.5, quantiles=False)
        _busy_step_is_the_mean_over_the_count(ph, eng, r, 0.5, S, lambda c, S=S: c * (S + 2.0 * P))
        T = eng.token_budget
        assert np.array_equal(r.saturation_rate, ph.lanes * T / (S * L.step_time(ph, 0.0, 0.0, T, T * (S + 2.0 * P), T / S)))
    plain = D.prefill_metrics(ph, eng, L.Workload(3000.0, 200.0), 0.5)
    moments = D.prefill_metrics(ph, eng, L.Workload(3000.0, 200.0, isl_m3=1.0, isl_m4=1.0), 0.5)
    for key in plain.stats:
        assert np.array_equal(plain.stats[key], moments.stats[key])


def test_spread_prompts_price_attention_by_hand():
    """By hand: prompts of mean S = 3,000 tokens, CV^2 0.25 (no cache). A token of a step is
    more often one of a long prompt: E[S^2] / E[S] = 3,000 x 1.25 = 3,750 attention units a
    token (s), so a step of c tokens costs t(c, 3,750 c units) and the saturation is
    lanes x T / (S t(T, 3,750 T)): lower than at fixed lengths."""
    ph, eng = _one()
    wl = L.Workload(3000.0, 200.0, isl_cv2=0.25)
    r = D.prefill_metrics(ph, eng, wl, 0.5, quantiles=False)
    _busy_step_is_the_mean_over_the_count(ph, eng, r, 0.5, 3000.0, lambda c: c * 3750.0)
    T = eng.token_budget
    sat = ph.lanes * T / (3000.0 * L.step_time(ph, 0.0, 0.0, T, T * 3750.0, T / 3000.0))
    assert r.saturation_rate == pytest.approx(sat, rel=1e-12)
    assert float(r.saturation_rate[0]) < float(D.prefill_metrics(ph, eng, L.Workload(3000.0, 200.0), 0.5,
                                                                 quantiles=False).saturation_rate[0])


def test_backlog_service_cv2_is_the_prefill_works():
    """The backlog waits on prefill work: with the length moments of a uniform spread given,
    the service CV^2 is load.py's ``prefill_work_cv2`` (larger than the tokens', attention
    growing with the square of the length), so the mean TTFT under load rises; the mean
    step, chunk and utilisation (first moments) do not move. Lengths uniform on [0.5 L, 1.5 L]:
    CV^2 = 1/12, E[S^3]/E[S]^3 = 1.25, E[S^4]/E[S]^4 = 1.5125 (moments of U[0.5, 1.5])."""
    ph, eng = _one()
    tokens = L.Workload(3000.0, 200.0, isl_cv2=1.0 / 12.0)
    work = L.Workload(3000.0, 200.0, isl_cv2=1.0 / 12.0, isl_m3=1.25, isl_m4=1.5125)
    cv2 = L.prefill_work_cv2(ph, 0.0, 0.0, np.array([3000.0]), np.array([3000.0]), np.array([0.0]), work, (1,))
    assert float(cv2[0]) > 1.0 / 12.0
    rate = 0.7 * float(D.prefill_metrics(ph, eng, tokens, 1e-9, quantiles=False).saturation_rate[0])
    a = D.prefill_metrics(ph, eng, tokens, rate, quantiles=False)
    b = D.prefill_metrics(ph, eng, work, rate, quantiles=False)
    assert np.array_equal(a.step, b.step) and np.array_equal(a.rho, b.rho)
    assert float(b.get("ttft", "mean")[0]) > float(a.get("ttft", "mean")[0])
    # by hand: K = floor(T / S) prompts a step (2 here), so the backlog is the bulk queue's
    # overflow (docs/disaggregation.md section 1, W_backlog): (ca^2 + cs^2) E[(X - K)^+] / lam,
    # a = lam t(K S) arrivals a full step, the service CV^2 its only difference; the residual
    # of the step in progress is the same in both, the KV-slot wait nil (slots spare)
    T = float(eng.token_budget[0])
    K = np.floor(T / 3000.0)
    assert K == 2.0
    t_full = D._prefill_step(ph, np.array([K * 3000.0]), np.array([3000.0]), 0.0, 1.0 / 12.0)
    left = float(D.bulk_overflow(rate * t_full, np.array([K]))[0])

    def extra(cs2):
        return (1.0 + cs2) * left / rate
    assert float(b.wait[0] - a.wait[0]) == pytest.approx(extra(float(cv2[0])) - extra(1.0 / 12.0), rel=1e-9)


def test_pool_rows_are_sized_by_rate_and_their_clients_are_littles_law():
    """Issue 25's question for the pools (planner/candidates/load.py ``pool_load``): do they map a
    closed loop's capacity to clients by the open loop's Little's law, as the aggregated rows
    did before ``_closed_clients``? No: a pool row is sized by its rate (requests/s, times the
    mean output tokens: the demand's unit), never by clients, because a closed-loop demand
    cannot pool (``disaggregation_problem``: tests/test_fleet.py checks the refusal); its
    ``clients`` is only the requests in flight in that pool at its capacity, rate x the pool's
    part of a request's life (TTFT in the prefill pool, (O - 1) TPOT in the decode pool), which
    Little's law gives exactly for the pool's open loop."""
    spec, _ = load_fleet_spec(str(Path(__file__).resolve().parents[1] / "instances" / "fleet_disagg_wins.yaml"))
    c = build_candidates(resolve_fleet(spec))
    assert c.load is not None
    for role in (1, 2):
        rows = np.flatnonzero((c.role == role) & (c.load.rate > 0))
        assert len(rows)
        np.testing.assert_array_equal(c.capacity[rows], c.load.tokens_per_s[rows])       # a rate, not clients
        life = c.load.get("ttft", "mean")[rows] if role == 1 else (256.0 - 1.0) * c.load.get("itl", "mean")[rows]
        np.testing.assert_allclose(c.load.clients[rows], c.load.rate[rows] * life, rtol=1e-12)


def _recording(monkeypatch) -> list[tuple[float, float, float]]:
    """Every (tokens, attention units, LM-head rows) a prefill step is priced at in disagg.py."""
    calls: list[tuple[float, float, float]] = []
    real = D.step_time

    def record(phys, n, ctx, c=0.0, attn=0.0, heads=None, *a, **k):
        calls.append((float(np.ravel(c)[0]), float(np.ravel(attn)[0]), float(np.ravel(heads)[0])))
        return real(phys, n, ctx, c, attn, heads, *a, **k)
    monkeypatch.setattr(D, "step_time", record)
    return calls


def test_own_steps_follow_the_spread_by_hand(monkeypatch):
    """By hand: prompts of mean S = 3,000 computed tokens after P = 500 cached, CV^2 0.25, a
    budget of T = 2,048 tokens: k = 2 steps, a full chunk and a last piece of 952 tokens.
    The mix's attention a token is A = 3,000 x 1.25 + 2 x 500 = 4,750 (load.py's
    ``attention_length``). The full chunk: t(2,048, 2,048 A). The last piece: causal over its
    own 952 tokens and the 2,548 before them, 952^2 + 2 x 952 x 2,548 = 5,757,696 units, plus
    952 x 3,000 x 0.25 = 714,000 for the spread (the mean over prompts of a one-piece prompt's
    own attention is E[S^2] + 2SP = S A), 6,471,696 units, one LM-head row. On an idle
    replica that is the prompt's service. In a busy step c >= 952 tokens, the others' c - 952
    at A each: 6,471,696 + (c - 952) x 4,750 units, 1 + (c - 952) / 3,000 rows."""
    ph, _ = _one(S=3500.0)
    eng = L.engine(ph, token_budget=2048)
    wl = L.Workload(3500.0, 200.0, cached=500.0, isl_cv2=0.25)
    calls = _recording(monkeypatch)
    rate = 0.6 * float(D.prefill_metrics(ph, eng, wl, 1e-9, quantiles=False).saturation_rate[0])
    calls.clear()
    r = D.prefill_metrics(ph, eng, wl, rate, quantiles=False)
    monkeypatch.undo()
    own = 5_757_696.0 + 714_000.0
    t_full = L.step_time(ph, 0.0, 0.0, 2048.0, 2048.0 * 4750.0, 2048.0 / 3000.0)
    t_last = L.step_time(ph, 0.0, 0.0, 952.0, own, 1.0)
    assert float(r.service[0]) == pytest.approx(float((t_full + t_last)[0]), rel=1e-12)
    shared = [(c, a) for c, a, h in calls if h == pytest.approx(1.0 + (c - 952.0) / 3000.0, rel=1e-12) and c > 952.5]
    assert shared                                     # the busy step the prompt shares
    for c, a in shared:
        assert a == pytest.approx(own + (c - 952.0) * 4750.0, rel=1e-12)


def test_fixed_lengths_own_steps_are_the_formula_before_bit_for_bit():
    """Metamorphic: CV^2 0, the own steps' service is (k - 1) t(T, T (S + 2P)) + t(last,
    last^2 + 2 last (S + P - last), 1) to the last bit (S = 3,000, P = 500, T = 2,048)."""
    ph, _ = _one(S=3500.0)
    eng = L.engine(ph, token_budget=2048)
    r = D.prefill_metrics(ph, eng, L.Workload(3500.0, 200.0, cached=500.0), 0.5, quantiles=False)
    S, P, T = np.array([3000.0]), np.array([500.0]), np.array([2048.0])
    last = S - T
    old = (1.0 * L.step_time(ph, 0.0, 0.0, T, T * (S + 2.0 * P), T / S)
           + L.step_time(ph, 0.0, 0.0, last, last * last + 2.0 * last * (S + P - last) + 0.0 * (last - last), 1.0))
    assert np.array_equal(r.service, old)


def test_the_kv_links_arrivals_are_the_prefill_departures_by_hand():
    """The KV link's wait (Kingman), its arrivals the prefill departures (Whitt's QNA):
    W = rho_x / (1 - rho_x) (cd^2 + cs^2) / 2 x transfer, cd^2 = rho^2 cs_work^2 + (1 - rho^2)
    ca^2. Arrivals of CV^2 0.5, prompts of token CV^2 0.25 (no moments: the work CV^2 is the
    tokens'), so cd^2 = 0.25 rho^2 + 0.5 (1 - rho^2) and cs^2 = 0.25."""
    ph, eng = _one()
    wl = L.Workload(3000.0, 200.0, arrival_cv2=0.5, isl_cv2=0.25)
    rate = 0.7 * float(D.prefill_metrics(ph, eng, wl, 1e-9, quantiles=False).saturation_rate[0])
    r = D.prefill_metrics(ph, eng, wl, rate, quantiles=False)
    rho, rx, x = float(r.rho[0]), float(r.rho_link[0]), float(r.transfer[0])
    assert 0.3 < rho < 1.0 and 0.0 < rx < 1.0
    cd2 = rho * rho * 0.25 + (1.0 - rho * rho) * 0.5
    assert float(r.link_wait[0]) == pytest.approx(rx / (1.0 - rx) * (cd2 + 0.25) / 2.0 * x, rel=1e-12)


def test_decode_admission_by_hand():
    """A request's KV lands: the KV-slot wait, then the residual tau / 2 of the step in
    progress when the replica steps. With n = 0.5 running a lane, 4 clients a lane and G = 2
    attention-DP lanes stepping together: the arriving request sees the other 3 clients'
    0.375 a lane, the replica steps with probability 1 - exp(-2 x 0.375); one client alone
    (or nothing running) finds it idle: the slot wait only."""
    ph, eng = _one()
    d = D.decode_metrics(ph, eng, L.Workload(3000.0, 200.0), 0.1, quantiles=False)
    d = replace(d, kv_wait=np.array([0.01]), running=np.array([0.5]), step=np.array([0.02]))
    assert float(D.decode_admission(d, 2.0, 4.0)[0]) == pytest.approx(0.01 + (1.0 - np.exp(-0.75)) * 0.01, rel=1e-12)
    assert float(D.decode_admission(d, 2.0, 1.0)[0]) == 0.01
    assert float(D.decode_admission(replace(d, running=np.array([0.0])), 2.0, 4.0)[0]) == 0.01
