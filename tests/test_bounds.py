"""Issue 23 items 5 and 8: no impossible figure past saturation, and bounded work (the
simulator's caps and deadline, a vanishing demand, the exhaustive fleet's size)."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from planner.catalog.store import Catalog
from planner.cli.root import app
from planner.physics import load as L
from planner.physics.options import PRESETS
from planner.physics.space import Configs, GpuTable

CAT = Catalog.default()
RUNNER = CliRunner()
SATURATED = ["estimate", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--batch", "8", "--input-tokens", "512",
             "--output-tokens", "128", "--requests-per-s", "1000000"]


def _one(batch: int = 8):
    t = GpuTable.build([CAT.gpus["h100-sxm"]])
    c = Configs.single(0, "w16a16", "bf16", 1, 1, 1, batch, 512, 128)
    ph = L.step_physics(CAT.model("llama-3.1-8b"), t, c, PRESETS["realistic"])
    return ph, L.engine(ph)


def test_throughput_never_above_capacity():
    """Offered 10x and 10^5 x the saturation rate, the replica carries its capacity: the
    saturation rate x output tokens, which is what its decode can emit."""
    ph, eng = _one()
    wl = L.Workload(isl=512.0, osl=128.0)
    sat = float(L.load_metrics(ph, eng, wl, rate=1.0).saturation_rate[0])
    for k in (10.0, 1e5):
        r = L.load_metrics(ph, eng, wl, rate=k * sat)
        assert not r.stable[0]
        assert r.throughput_tokens_per_s[0] <= sat * 128.0 * (1 + 1e-12)
    ok = L.load_metrics(ph, eng, wl, rate=0.5 * sat)       # below saturation: the offered rate
    assert ok.stable[0] and ok.throughput_tokens_per_s[0] == 0.5 * sat * 128.0


def test_estimate_past_saturation_says_unstable_and_gives_no_latency():
    r = RUNNER.invoke(app, [*SATURATED, "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    u = d["under_load"]
    assert u["stable"] is False
    assert u["throughput_tokens_per_s"] <= d["decode_tokens_per_s"] * (1 + 1e-9)
    assert u["throughput_tokens_per_s"] <= u["capacity_requests_per_s"] * 128 * (1 + 1e-9)
    assert u["running_per_lane"] <= u["max_num_seqs"]
    for m in ("ttft", "tpot", "itl", "e2e"):
        for q in ("mean", "p50", "p90", "p99"):
            assert u[f"{m}_{q}_ms"] is None, (m, q)
    text = RUNNER.invoke(app, SATURATED)
    assert text.exit_code == 0, text.output
    assert "Unstable" in text.output and "unbounded" in text.output and "inf" not in text.output
    assert "128,000,000" not in text.output
