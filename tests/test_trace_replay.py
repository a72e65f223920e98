"""A trace workload replayed against a plan (docs/workloads.md section 3, docs/load.md section 9):
the trace's own arrival times, lengths in order and block hashes, a replica's share spread as a
round-robin balancer spreads it. A replay of Poisson times is the Poisson simulation exactly; a
stated demand keeps sampled lengths; the shipped trace instances' verdicts say 'trace'."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from planner.cli.root import app
from planner.resolve.problem import resolve
from planner.resolve.workload import Replay
from planner.schemas.plan import load_plan_spec
from planner.simulate import Arrivals, Lengths, simulate
from planner.traces.read import Trace

ROOT = Path(__file__).resolve().parents[1]


def _step(n_decode: int, context: float, chunk: int = 0, attention: float = 0.0, completions: int = 0) -> float:
    return 0.010 + 2e-5 * n_decode + 1e-5 * chunk + 1e-9 * context


def test_a_replay_of_poisson_times_is_the_poisson_simulation():
    rate, n, seed = 30.0, 800, 3
    times = np.cumsum(np.random.default_rng(seed).exponential(1.0 / rate, n))   # the simulator's own draw
    kw = {"token_budget": 2048, "max_seqs": 32, "n_requests": n, "seed": seed}
    a = simulate(_step, Arrivals("poisson", rate=rate), Lengths(300), Lengths(40), **kw).summary
    b = simulate(_step, Arrivals("trace", times=tuple(times.tolist())), Lengths(300), Lengths(40), **kw).summary
    assert a == b


def test_a_replay_takes_the_lengths_in_order_and_at_most_its_requests():
    times = tuple(float(t) for t in range(200))
    S, O = [100 + (k % 7) * 50 for k in range(200)], [10 + k % 5 for k in range(200)]
    r = simulate(_step, Arrivals("trace", times=times), Lengths(S, in_order=True), Lengths(O, in_order=True),
                 token_budget=4096, max_seqs=8, n_requests=5000, warmup=0.0)
    assert r.summary["requests"] == 200
    # one request at a time, each served within its second: e2e = its prefill step + O - 1 decode steps
    expect = [_step(0, 0, s, s * s, 1) + (o - 1) * _step(1, s + o) for s, o in zip(S, O)]
    assert np.sort(r.e2e) == pytest.approx(np.sort(expect), rel=0.02)


@pytest.mark.parametrize("fraction, want", [(1.0, 12), (0.5, 6), (0.25, 3), (1 / 3, 4), (0.0, 0)])
def test_a_replicas_share_is_spread_evenly(fraction, want):
    tr = Trace("t", "mooncake", np.arange(12, dtype=float), np.full(12, 10), np.full(12, 5))
    pick = Replay.of(tr, 1.0).share(fraction)
    assert pick.size == want and np.all(np.diff(pick) > 0)
    if want > 1:
        assert set(np.diff(pick).tolist()) == {round(1 / fraction)}


def test_the_replay_clock_is_the_traces_over_its_rate_scale_from_the_windows_first_request():
    tr = Trace("t", "mooncake", np.array([5.0, 6.0, 9.0]), np.full(3, 10), np.full(3, 5))
    assert Replay.of(tr, 2.0).times_s.tolist() == [0.0, 0.5, 2.0]


def test_a_trace_instance_is_replayed_and_a_stated_demand_is_sampled(tmp_path):
    f = ROOT / "instances" / "trace_azure_conv.yaml"
    spec, doc = load_plan_spec(str(f))
    assert resolve(spec, doc).slots[0].replay is not None
    res = CliRunner().invoke(app, ["plan", str(f), "--json", "--top", "1"])
    assert res.exit_code in (0, 1), res.output
    sim = json.loads(res.stdout)["plans"][0]["simulation"]
    window = resolve(spec, doc).slots[0].trace.requests
    assert sim["arrivals"] == "trace" and sim["window_passes"] >= 1
    assert 100 <= sim["requests"] <= sim["window_passes"] * window
    stated = f.read_text(encoding="utf-8").replace("workload:\n", "workload:\n  demand: {requests_per_s: 1.0}\n", 1)
    g = tmp_path / "stated.yaml"
    g.write_text(stated.replace("traces/", str(ROOT / "instances" / "traces") + "/"), encoding="utf-8")
    spec2, doc2 = load_plan_spec(str(g))
    assert resolve(spec2, doc2).slots[0].replay is None
