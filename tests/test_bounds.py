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


# ---------------------------------------------------------------------------------------
# Item 8: bounded work
# ---------------------------------------------------------------------------------------

def _sim_args():
    from planner.simulate import Arrivals, Lengths
    ph, eng = _one()
    return ph, eng, Arrivals("poisson", rate=2.0), Lengths(512), Lengths(128)


def test_simulation_refuses_past_its_step_cap_before_it_starts():
    """A run whose steps could pass ``max_steps`` raises WorkLimit at once: its length and
    memory (a few numbers a step) are bounded by the cap, whatever the output length."""
    import time

    import pytest

    from planner.simulate import Lengths, WorkLimit, simulate_config, step_bound
    ph, eng, arr, isl, _ = _sim_args()
    with pytest.raises(WorkLimit, match="cap"):
        simulate_config(ph, eng, 0, arr, isl, Lengths(1_000_000), n_requests=50, max_steps=1e6)
    r = simulate_config(ph, eng, 0, arr, isl, Lengths(128), n_requests=60, max_steps=1e6)
    bound = step_bound(np.full(60, 512), np.full(60, 128), int(eng.token_budget[0]))
    assert 0 < r.steps <= bound
    with pytest.raises(WorkLimit, match="time limit"):
        simulate_config(ph, eng, 0, arr, isl, Lengths(128), n_requests=5000, deadline=time.perf_counter() - 1.0)


def _plan_of(demand: str, output_tokens: int = 128):
    from planner.candidates.table import build_candidates
    from planner.plan.solve import solve
    from planner.resolve.problem import resolve
    from planner.schemas.plan import PlanSpec
    spec = PlanSpec.model_validate({
        "schema_version": 1, "model": "llama-3.1-8b",
        "workload": {"input_tokens": 512, "output_tokens": output_tokens, "demand": json.loads(demand)},
        "slo": {"tpot_ms": 100}, "search": {"gpus": ["h100-sxm"], "tp": [1], "batch_levels": [8, 32]},
        "objective": "cost_per_hour"})
    p = resolve(spec)
    c = build_candidates(p)
    return p, c, solve(p, c, backend="cpsat", top_k=1, time_limit=30)


def test_rescore_scales_requests_to_the_cap_and_says_why_when_none_fit():
    from planner.plan.rescore import simulate_plans
    p, c, r = _plan_of('{"requests_per_s": 2}')
    plan = r.plans[0]
    simulate_plans(p, c, [plan], requests=5000, max_steps=200 * 132)     # 200 requests of ~132 steps at most
    assert "error" not in plan.simulation and plan.simulation["requests"] <= 200
    simulate_plans(p, c, [plan], requests=5000, max_steps=50 * 130)      # fewer than MIN_REQUESTS fit
    assert "cap" in plan.simulation["error"]
    import time
    simulate_plans(p, c, [plan], requests=500, deadline=time.perf_counter() - 1.0)
    assert "time limit" in plan.simulation["error"]


def test_a_vanishing_demand_gives_a_finite_answer_never_a_division_by_zero(tmp_path):
    """5e-324 (the smallest float) requests or tokens per second: a plan, its simulation
    not run with the reason, exit 0; never ZeroDivisionError (exit 3) nor NaN figures."""
    for demand in ("requests_per_s", "output_tokens_per_s"):
        f = tmp_path / f"{demand}.yaml"
        f.write_text(f"schema_version: 1\nmodel: llama-3.1-8b\nworkload:\n  input_tokens: 512\n  output_tokens: 128\n"
                     f"  demand: {{{demand}: 5e-324}}\nslo:\n  tpot_ms: 100\nsearch:\n  gpus: [h100-sxm]\n"
                     f"  tp: [1]\n  batch_levels: [8]\nobjective: cost_per_hour\n")
        r = RUNNER.invoke(app, ["plan", str(f), "--top", "1", "--json", "--time-limit", "30"])
        assert r.exit_code == 0, r.output
        plans = json.loads(r.stdout)["plans"]
        assert plans and all("simulator's clock" in p["simulation"]["error"] for p in plans)


def test_the_exhaustive_fleet_refuses_by_the_size_of_its_product_before_joining(monkeypatch):
    """Two workloads whose options are each small (under MAX_OPTIONS) but whose product is
    millions of fleets: refused (a located error) before one fleet is built; before the
    fix the cross product was built first (2.8 GB, then MemoryError, issue 23 item 8)."""
    import time

    import pytest

    from planner.backends import exhaustive as E
    from planner.backends.base import Status
    from planner.candidates.table import build_candidates
    from planner.errors import InputError
    from planner.resolve.problem import resolve_fleet
    from planner.schemas.fleet import FleetSpec

    work = [{"name": n, "model": "llama-3.1-8b", "input_tokens": 512, "output_tokens": 128,
             "demand": {"requests_per_s": 0.3}, "slo": {"tpot_ms": 80}} for n in ("a", "b")]
    spec = FleetSpec.model_validate({
        "schema_version": 1, "workloads": work, "objective": "cost_per_hour", "max_configurations_per_workload": 2,
        "search": {"gpus": ["h100-sxm", "l40s", "a100-80gb"], "tp": [1], "pp": [1], "batch_levels": [8, 32]}})
    p = resolve_fleet(spec)
    c = build_candidates(p)
    join = E._join

    def joined(*a):
        raise AssertionError("a fleet was joined before the size check")
    monkeypatch.setattr(E, "_join", joined)
    with pytest.raises(InputError, match="exhaustive") as e:
        E.ExhaustiveBackend().rank(c, ("cost_per_hour",), {})
    assert e.value.path == "--backend"
    # past its deadline the enumeration stops: time_limit, nothing proven
    monkeypatch.setattr(E, "_join", join)
    monkeypatch.setattr(E, "MAX_FLEET_STATES", 10 ** 12)
    st, picks, _, _ = E.ExhaustiveBackend().rank(c, ("cost_per_hour",), {}, deadline=time.perf_counter() - 1.0)
    assert st == Status.TIME_LIMIT and picks == []
