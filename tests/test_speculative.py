"""Speculative decoding / multi-token prediction (issue 10, item 3; docs/model.md section 4,
'Speculative decoding / MTP'): the expected tokens per step, a verify step and its draft by
hand, k = 0 changing nothing, the load model against the simulator, and the trade-off."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from pydantic import ValidationError

from planner.catalog.store import Catalog
from planner.physics import load as L
from planner.physics.options import PRESETS, Assumptions
from planner.physics.perf import Arch, evaluate, regime_of, regime_shares, tokens_per_step
from planner.physics.space import Configs, GpuTable
from planner.physics.terms import smax
from planner.simulate import Arrivals, Lengths, simulate_config

CAT = Catalog.default()
O = PRESETS["realistic"]
H100_BF16_MAMF = 794.5e12
BW = 3.35e12 * 0.8


def _spec(k: int, alpha: float = 0.7, draft_layers: float = 1.0, o: Assumptions = O) -> Assumptions:
    return o.model_copy(update={"speculative_tokens": k, "speculative_acceptance": alpha,
                                "speculative_draft_layers": draft_layers})


def _one(model, gpu, scheme, kv, tp, pp, ep, batch, s=1000.0, out=200.0, o=O):
    t = GpuTable.build([CAT.gpus[gpu]])
    c = Configs.single(0, scheme, kv, tp, pp, ep, batch, s, out)
    return evaluate(CAT.model(model), t, c, o), Arch.of(CAT.model(model))


def test_tokens_per_step_by_hand():
    """E = (1 - alpha^(k+1)) / (1 - alpha): k = 1, alpha 0.5: 1.5; k = 3: 1.875; alpha 1: k + 1."""
    assert tokens_per_step(_spec(1, 0.5)) == pytest.approx(1.5)
    assert tokens_per_step(_spec(3, 0.5)) == pytest.approx(1 + 0.5 + 0.25 + 0.125)
    assert tokens_per_step(_spec(1, 1.0)) == 2.0
    assert tokens_per_step(_spec(3, 1.0)) == 4.0
    assert tokens_per_step(_spec(0, 0.5)) == 1.0 and tokens_per_step(O) == 1.0
    assert all(p.speculative_tokens == 0 for p in PRESETS.values())
    for bad in ({"speculative_tokens": 17}, {"speculative_tokens": -1}, {"speculative_acceptance": 0.0},
                {"speculative_acceptance": 1.01}, {"speculative_draft_layers": -1.0}):
        with pytest.raises(ValidationError):
            Assumptions(**bad)


def test_verify_step_and_draft_by_hand():
    """Llama-3.1-8B bf16 on one H100, batch 16, prompt 1000, 200 out (mean context 1100),
    k = 2 drafts at alpha 0.8 from a one-layer drafter (MTP-like).

    Verify pass: q = 3 query tokens per sequence: GEMMs, LM head, attention FLOPs and the
    activations x 3; the weights and the KV cache read once. Draft: 2 x (1/32 of the ordinary
    step without its LM head + one LM-head pass over the 16 sequences). TPOT = (verify +
    draft) / E, E = 1 + 0.8 + 0.64."""
    o = _spec(2, 0.8)
    ev, a = _one("llama-3.1-8b", "h100-sxm", "w16a16", "bf16", 1, 1, 1, 16, o=o)
    r = ev.row(0)
    p = a.params
    B, q, ctx, Lyr = 16, 3, 1100.0, 32
    lin_rate, attn_rate = H100_BF16_MAMF * 0.8, H100_BF16_MAMF * 0.78
    kv_per_seq = ctx * Lyr * 2 * 8 * 128 * 2                  # K and V, 8 KV heads x 128, bf16
    attn_per_query = ctx * Lyr * 2 * 32 * (128 + 128)           # QK^T and PV, 32 query heads
    act_per_token = Lyr * 2 * (8 * 4096 + 3 * 14336 + 2 * 4096)
    fixed = Lyr * (20e-6 + 4 * 5e-6)                             # per-layer kernels and GEMM latencies

    t_w = (p.layers_always + p.lm_head) * 2 / BW
    t_lin = 2 * B * q * (p.active_nonembedding + p.lm_head) / lin_rate
    t_kv = B * kv_per_seq / BW
    t_attn = B * q * attn_per_query / attn_rate
    verify = (smax(np.array(t_w), np.array(t_lin), 3.0) + smax(np.array(t_kv), np.array(t_attn), 3.0)
              + fixed + 5e-6 + B * q * act_per_token / BW)
    assert r["t_weights"] == pytest.approx(t_w)
    assert r["t_linear_compute"] == pytest.approx(t_lin)
    assert r["t_kv"] == pytest.approx(t_kv)
    assert r["t_attn_compute"] == pytest.approx(t_attn)

    base = (smax(np.array(p.layers_always * 2 / BW), np.array(2 * B * p.active_nonembedding / lin_rate), 3.0)
            + smax(np.array(t_kv), np.array(B * attn_per_query / attn_rate), 3.0)
            + fixed + B * act_per_token / BW)                    # no LM head, no LM-head GEMM latency
    head = smax(np.array(p.lm_head * 2 / BW), np.array(2 * B * p.lm_head / lin_rate), 3.0) + 5e-6
    draft = 2 * (base / 32 + head)
    E = 1 + 0.8 + 0.64
    assert float(r["tpot"]) == pytest.approx(float((verify + draft) / E), rel=1e-9)
    assert r["decode_tokens_per_s"] == pytest.approx(B * E / float(verify + draft), rel=1e-9)
    # the load model's step (a cycle: verify + draft) is the same figure x E, and the simulator's
    ph = L.step_physics(CAT.model("llama-3.1-8b"), GpuTable.build([CAT.gpus["h100-sxm"]]),
                        Configs.single(0, "w16a16", "bf16", 1, 1, 1, 16, 1000, 200), o)
    assert float(L.step_time(ph, 16.0, 16 * ctx)[0]) == pytest.approx(float(verify + draft), rel=1e-9)
    f = L.scalar_step_fn(ph, 0, 9000)
    for n, cx, ch, A, hh in [(16, 16 * ctx, 0, 0.0, 0), (7, 7 * 900.0, 1500, 1500.0 ** 2 + 2 * 1500 * 200, 1)]:
        assert f(n, cx, ch, A, hh) == pytest.approx(float(L.step_time(ph, n, cx, ch, A, hh)[0]), rel=1e-12)


@pytest.mark.parametrize("case", [
    ("llama-3.1-8b", "h100-sxm", "w16a16", "bf16", 1, 1, 1, 16),
    ("llama-3.1-70b", "h100-sxm", "w8a8-fp8", "fp8", 2, 3, 1, 64),
    ("mixtral-8x7b", "h100-sxm", "w8a8-fp8", "fp8", 2, 1, 2, 32),
])
def test_off_changes_nothing(case):
    """k = 0: acceptance and draft size are ignored, every array equal to the default's, in
    evaluate, the load model and the simulator (which draws no random numbers)."""
    off = O.model_copy(update={"speculative_tokens": 0, "speculative_acceptance": 0.3,
                               "speculative_draft_layers": 5.0})
    e0, _ = _one(*case)
    e1, _ = _one(*case, o=off)
    for f in dataclasses.fields(e0):
        np.testing.assert_array_equal(getattr(e0, f.name), getattr(e1, f.name), err_msg=f.name)
    t = GpuTable.build([CAT.gpus[case[1]]])
    c = Configs.single(0, *case[2:], 1000, 200)
    p0, p1 = (L.step_physics(CAT.model(case[0]), t, c, x) for x in (O, off))
    g0, g1 = L.engine(p0), L.engine(p1)
    sat, _ = L._saturation(p0, g0, np.array([1000.0]), np.array([200.0]))
    r0, r1 = (L.load_metrics(p, g, L.Workload(1000, 200), rate=0.3 * sat) for p, g in ((p0, g0), (p1, g1)))
    for key in r0.stats:
        np.testing.assert_array_equal(r0.stats[key], r1.stats[key])
    a = Arrivals("poisson", rate=0.3 * float(sat[0]))
    s0, s1 = (simulate_config(p, g, 0, a, Lengths(1000), Lengths(200), n_requests=300, seed=2)
              for p, g in ((p0, g0), (p1, g1)))
    assert s0.summary == s1.summary


def test_load_model_agrees_with_simulator():
    """70B fp8 TP2 on H100 (tests/test_simulate.py CASES[1]: 2000 in, 300 out, 128 sequences),
    k = 2 at alpha 0.7, Poisson at 0.3 of saturation: mean TPOT within 10 %, mean TTFT within
    15 % of the simulator, which draws each sequence's accepted run per step."""
    o = _spec(2, 0.7)
    t = GpuTable.build([CAT.gpus["h100-sxm"]])
    c = Configs.single(0, "w8a8-fp8", "fp8", 2, 1, 1, 128, 2000, 300)
    ph = L.step_physics(CAT.model("llama-3.1-70b"), t, c, o)
    eng = L.engine(ph)
    sat, _ = L._saturation(ph, eng, np.array([2000.0]), np.array([300.0]))
    lam = 0.3 * float(sat[0])
    cf = L.load_metrics(ph, eng, L.Workload(2000, 300), rate=lam)
    sim = simulate_config(ph, eng, 0, Arrivals("poisson", rate=lam), Lengths(2000), Lengths(300),
                          n_requests=5000, seed=1).summary
    rel = lambda m, s: float(cf.get(m, s)[0]) / sim[f"{m}_{s}"] - 1.0  # noqa: E731
    assert abs(rel("tpot", "mean")) < 0.10
    assert abs(rel("ttft", "mean")) < 0.15
    # ITL is per step (a burst of E tokens on average), TPOT per token
    E = tokens_per_step(o)
    assert float(cf.get("tpot", "mean")[0]) == pytest.approx(float(cf.get("itl", "mean")[0]) / E)
    assert sim["tpot_mean"] < 0.75 * sim["itl_mean"]
    # throughput stays rate x O
    assert float(cf.throughput_tokens_per_s[0]) == pytest.approx(lam * 300)
    # against the same case without speculation, at the same rate: faster tokens
    ph0 = L.step_physics(CAT.model("llama-3.1-70b"), t, c, O)
    cf0 = L.load_metrics(ph0, L.engine(ph0), L.Workload(2000, 300), rate=lam)
    assert float(cf.get("tpot", "mean")[0]) < float(cf0.get("tpot", "mean")[0])


def test_faster_tokens_at_small_batch_less_throughput_when_compute_bound():
    """Llama-3.1-70B fp8 TP2 on H100, 256 in / 128 out: at batch 1 the step reads the weights
    whatever q is, so drafts lower TPOT; at batch 512 the step is compute-bound, the rejected
    drafts' FLOPs are paid for nothing and throughput falls."""
    args = ("llama-3.1-70b", "h100-sxm", "w8a8-fp8", "fp8", 2, 1, 1)
    for k in (1, 2, 3):
        o = _spec(k, 0.7)
        e0, _ = _one(*args, 1, s=256, out=128)
        e1, _ = _one(*args, 1, s=256, out=128, o=o)
        assert float(e1.tpot[0]) < 0.8 * float(e0.tpot[0]), k
        b0, _ = _one(*args, 512, s=256, out=128)
        b1, _ = _one(*args, 512, s=256, out=128, o=o)
        assert regime_of(regime_shares(b0, 0)) == "compute-bound"
        assert float(b1.throughput_tokens_per_s[0]) < float(b0.throughput_tokens_per_s[0]), k
        assert float(b1.tpot[0]) > float(b0.tpot[0]), k


def test_estimate_flags_and_yaml(tmp_path):
    """`planner estimate --speculative-tokens/--speculative-acceptance`, and the same through a
    YAML assumptions block (the flags merge into it field by field)."""
    import json

    from typer.testing import CliRunner

    from planner.cli.root import app
    runner = CliRunner()
    base = ["estimate", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--tp", "2", "--quantization",
            "w8a8-fp8", "--kv-dtype", "fp8", "--batch", "1", "--json"]
    off = json.loads(runner.invoke(app, base).output)
    on = runner.invoke(app, [*base, "--speculative-tokens", "2", "--speculative-acceptance", "0.8"])
    assert on.exit_code == 0, on.output
    on = json.loads(on.output)
    assert on["assumptions"]["speculative_tokens"] == 2 and on["tpot_ms"] < 0.7 * off["tpot_ms"]
    f = tmp_path / "e.yaml"
    f.write_text("model: llama-3.1-70b\ngpu: h100-sxm\ntp: 2\nquantization: w8a8-fp8\nkv_dtype: fp8\nbatch: 1\n"
                 "assumptions:\n  speculative_tokens: 2\n  memory_utilization: 0.85\n")
    y = json.loads(runner.invoke(app, ["estimate", str(f), "--speculative-acceptance", "0.8", "--json"]).output)
    assert y["assumptions"]["memory_utilization"] == 0.85
    assert y["tpot_ms"] == pytest.approx(on["tpot_ms"])
    text = runner.invoke(app, [*base[:-1], "--speculative-tokens", "1"]).output
    assert "drafts" in text
    bad = runner.invoke(app, [*base, "--speculative-tokens", "17"])
    assert bad.exit_code != 0


def test_decode_pool_agrees_with_its_simulator():
    """The disaggregated decode pool (planner/physics/disagg.py) with k = 2, alpha 0.7: (O-1)/E
    steps a request, TPOT per token; mean TPOT within 10 % of the decode-pool simulator."""
    from planner.physics import disagg as D
    from planner.simulate import simulate_decode_pool
    o = _spec(2, 0.7)
    t = GpuTable.build([CAT.gpus["h100-sxm"]])
    c = Configs.single(0, "w8a8-fp8", "fp8", 2, 1, 1, 128, 4000, 300)
    ph = L.step_physics(CAT.model("llama-3.1-70b"), t, c, o)
    eng = L.engine(ph)
    wl = L.Workload(4000, 300)
    sd = float(D.decode_saturation(ph, eng, 4000.0, 300.0)[0])
    d = D.decode_metrics(ph, eng, wl, 0.5 * sd)
    s = simulate_decode_pool(ph, eng, 0, Arrivals("poisson", rate=0.5 * sd), Lengths(4000), Lengths(300),
                             n_requests=3000).summary
    assert float(d.get("tpot", "mean")[0]) == pytest.approx(s["tpot_mean"], rel=0.1)
    assert float(d.get("itl", "mean")[0]) == pytest.approx(s["itl_mean"], rel=0.1)
