"""`planner validate` on rows measured under load (issue 9, item 7): a stated concurrency or
request rate is predicted with the load model (docs/load.md), or skipped with a reason that
says it was under load; never treated as an idle row."""

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from reference import REFERENCE
from typer.testing import CliRunner

from planner.catalog.store import Catalog
from planner.cli.root import app
from planner.fidelity.calibrate import dataset
from planner.fidelity.rows import COLUMNS, load_of
from planner.fidelity.validate import validate
from planner.physics.load import step_physics, step_time
from planner.physics.options import PRESETS
from planner.physics.space import Configs, GpuTable

RUNNER = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
UNDER_LOAD = ROOT / "docs" / "measured-under-load.csv"
MEASURED = REFERENCE / "measured-public.csv"

# A row stating any of these words was measured at a load, whatever its wording
# (an independent reading of the column, not validate.load_of's patterns).
LOAD_WORDS = re.compile(r"concurren|client|users|qps|req/s|requests/s|request rate \d|poisson|^server")

BASE = dict(source="test", model="Llama-3.1-8B-Instruct", precision="W=fp8;A=fp8;KV=fp8", gpu="H100 SXM 80GB",
            gpu_count="2", tp="1", pp="1", framework="vLLM", input_len="1000", output_len="200",
            batch_or_concurrency="Poisson load at 60 QPS", metric="tpot_ms_mean", value="1", notes="")


def _csv(tmp_path, rows) -> str:
    path = tmp_path / "m.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow(BASE | r)
    return str(path)


def _by_hand_open_loop(rate: float, S: float, O: float) -> dict[str, float]:
    """docs/load.md sections 3-4 for one replica with one lane (TP1, PP1), Poisson arrivals,
    fixed lengths, S below the token budget (the prompt in one chunk), assembled here in
    plain floats from the mixed-step time of section 1 (physics/load.py's step_time, which
    tests/test_load.py checks against perf.py). Not load_metrics."""
    o = PRESETS["realistic"].model_copy(update={"kv_budget": "total", "memory_utilization": 0.9})
    cat = Catalog.default()
    table = GpuTable.build([cat.gpu("h100-sxm")])
    phys = step_physics(cat.model("llama-3.1-8b"), table,
                        Configs.single(0, "w8a8-fp8", "fp8", 1, 1, 1, 8192, int(S), int(O)), o)

    def step(n, c):
        ctx = n * (S + O / 2.0)
        return float(step_time(phys, np.array([n]), np.array([ctx]), np.array([c]), np.array([c * S]),
                               np.array([c / S]) if c else np.array([0.0]))[0])

    T, M = 8192.0, min(8192.0, float(phys.max_batch[0]))
    lam = rate

    def state(tau):
        n = lam * (O - 1.0) * tau                         # Little on the decode phase
        Ta = T - n                                        # budget left for prompt tokens
        c1 = S / math.ceil(S / Ta)                        # one prompt per carrying step
        u = lam * S * tau                                 # prompt tokens arriving per step
        c = min(0.5 * (c1 + math.sqrt(c1 * c1 + 4.0 * (Ta - c1) * u)), Ta)   # c = c1 + (Ta - c1) u / c
        q = u / c                                         # share of steps carrying prefill
        return n, Ta, c1, c, q, step(n, 0.0), step(n, c)

    lo, hi = 1e-4, 1.0                                    # tau = (1 - q) t0 + q t1, the fixed point
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        _, _, _, _, q, t0, t1 = state(mid)
        lo, hi = (mid, hi) if (1 - q) * t0 + q * t1 > mid else (lo, mid)
    tau = hi
    n, Ta, c1, c, q, t0, t1 = state(tau)
    # TTFT: residual of the step in progress (decode, one-prompt and two-prompt steps mixed to
    # the mean chunk c), the M/G/1 work backlog beyond the k Ta - S tokens that still fit the
    # prompt's own step (Kingman, c_a^2 = 1, fixed ISL c_s^2 = 0), the KV-slot wait, own step.
    c2 = min(Ta, c1 + S)
    pi = min(max((c - c1) / (c2 - c1), 0.0), 1.0)
    kinds = (t0, step(n, c1), step(n, c2))
    counts = (1 - q, q * (1 - pi), q * pi)
    span = sum(k * t for k, t in zip(counts, kinds))
    resid = sum(k * t / span * t / 2.0 for k, t in zip(counts, kinds))
    D = S / c * t1
    rho_p = lam * D
    w_work = rho_p / (1 - rho_p) * (1.0 + 0.0) / 2.0 * D
    backlog_tokens = w_work / rho_p * c / t1
    w_extra = w_work * math.exp(-(Ta - S) / backlog_tokens)
    # own step: the prompt, and the prompts that arrived during the residual and the backlog wait
    # (0 with probability 1 - a, a = rho_p exp(-(Ta - S) / backlog_tokens), else exponential of
    # mean w_extra / a), whole prompts (docs/load.md section 5, 'whole joiners'): their count is
    # Poisson(lam resid) plus, with probability a, a geometric count of mean nu = lam w_extra / a
    # (a Poisson count over an exponential time), the step the expectation over it, N >= room
    # joiners filling the budget
    a = rho_p * math.exp(-(Ta - S) / backlog_tokens)
    mu, nu = lam * resid, lam * w_extra / a

    def geo(i):
        return a / (1.0 + nu) * (nu / (1.0 + nu)) ** i + (1.0 - a if i == 0 else 0.0)

    room = math.ceil((Ta - S) / S)
    pmf = [sum(math.exp(-mu) * mu ** j / math.factorial(j) * geo(k - j) for j in range(k + 1)) for k in range(room)]
    d_own = sum(p * step(n, S + S * k) for k, p in enumerate(pmf)) + (1.0 - sum(pmf)) * step(n, Ta)
    residence = w_extra + resid + d_own + (O - 1.0) * tau
    rho_kv = lam * residence / M
    w_kv = rho_kv ** (math.sqrt(2 * (M + 1)) - 1) / (M * (1 - rho_kv)) * 0.5 * residence   # Sakasegawa, A-C
    return {"tpot": tau, "ttft": resid + w_extra + w_kv + d_own, "rho_p": rho_p, "q": q}


def test_an_open_loop_row_by_hand(tmp_path):
    """Poisson at 60 requests/s over 2 replicas (TP1 each): 30 requests/s per replica."""
    path = _csv(tmp_path, [dict(metric="tpot_ms_mean"), dict(metric="ttft_ms_mean"),
                           dict(metric="output_tokens_per_s_total")])
    v = validate(path, PRESETS["realistic"])
    tpot, ttft, tput = (r.predicted for r in v.rows)
    hand = _by_hand_open_loop(30.0, 1000.0, 200.0)
    assert 0.1 < hand["q"] < 0.9 and 0.3 < hand["rho_p"] < 0.9     # a loaded engine, not an idle one
    assert tpot == pytest.approx(hand["tpot"] * 1e3, rel=1e-5)
    assert ttft == pytest.approx(hand["ttft"] * 1e3, rel=1e-5)
    assert tput == pytest.approx(60.0 * 200.0)                         # stable: every request served
    assert {r.group for r in v.rows} == {"tpot_load", "ttft_load", "throughput_load"}
    assert v.summary == {} and set(v.under_load) == {"tpot_load", "ttft_load", "throughput_load"}


def test_a_closed_loop_obeys_littles_law():
    """The NIM rows at 25 clients: N = X (TTFT + (O - 1) ITL), X in requests/s."""
    rows = {r.metric: r.predicted for r in validate(str(UNDER_LOAD), PRESETS["realistic"]).rows[:3]}
    x = rows["output_tokens_per_s_total"] / 500.0
    assert x * (rows["ttft_ms_mean"] + 499 * rows["itl_ms_mean"]) / 1e3 == pytest.approx(25.0, rel=1e-3)


def test_a_rate_beyond_saturation_is_unbounded_latency_and_saturated_throughput(tmp_path):
    path = _csv(tmp_path, [dict(batch_or_concurrency="Poisson load at 5000 QPS", metric="ttft_ms_p99"),
                           dict(batch_or_concurrency="Poisson load at 5000 QPS", metric="output_tokens_per_s_total")])
    ttft, tput = validate(path, PRESETS["realistic"]).rows
    assert ttft.predicted == math.inf and ttft.abs_pct_error == math.inf
    assert 0 < tput.predicted < 5000 * 200
    data = json.loads(RUNNER.invoke(app, ["validate", path, "--json"]).stdout)   # strict JSON: null
    assert data["rows"][0]["predicted"] is None


def _rows_under_load_are_never_idle(path: str) -> int:
    with open(path, newline="") as fh:
        raw = list(csv.DictReader(fh))
    v = validate(path, PRESETS["realistic"])
    seen = 0
    for r, res in zip(raw, v.rows):
        if not LOAD_WORDS.search(r["batch_or_concurrency"].strip().lower()):
            assert res.load is None and not (res.rule or "").startswith("load_")
            continue
        seen += 1
        assert load_of(r) is not None and res.load, res
        if res.skipped_reason is None:
            assert res.rule.startswith("load_") and res.group.endswith("_load") and res.predicted is not None
        else:
            assert res.skipped_reason.startswith("under load, ") and len(res.skipped_reason) > 30
    return seen


def test_no_row_with_a_concurrency_or_rate_is_skipped_silently(tmp_path):
    path = _csv(tmp_path, [
        dict(batch_or_concurrency="concurrency 16", metric="ttft_ms_p90"),
        dict(batch_or_concurrency="64 concurrent clients", metric="e2e_latency_s_mean"),
        dict(batch_or_concurrency="request rate 3.5", metric="itl_ms_p99"),
        dict(batch_or_concurrency="concurrency 16", gpu="Gaudi 2 96GB"),
        dict(batch_or_concurrency="concurrency 16", input_len="variable"),
        dict(batch_or_concurrency="concurrency 16", metric="ttft_ms"),            # no statistic stated
        dict(batch_or_concurrency="server; batch 768", notes="target_qps=21.9", metric="output_tokens_per_s_total"),
        dict(batch_or_concurrency="static batch 64", metric="output_tokens_per_s_total"),
        dict(batch_or_concurrency="offline max-throughput (infinite request rate)",
             metric="output_tokens_per_s_total"),
    ])
    assert _rows_under_load_are_never_idle(path) == 7
    assert _rows_under_load_are_never_idle(str(UNDER_LOAD)) == 4


@pytest.mark.skipif(not MEASURED.exists(), reason="../shared/reference/measured-public.csv not present")
def test_no_published_row_under_load_is_skipped_silently():
    assert _rows_under_load_are_never_idle(str(MEASURED)) >= 15


def test_rows_under_load_are_reported_not_fitted():
    """Calibration fits the step physics; the rows under load test the queueing on top."""
    assert dataset(str(UNDER_LOAD), Catalog.default()).cases == []


def test_a_load_out_of_range_exits_2(tmp_path):
    r = RUNNER.invoke(app, ["validate", _csv(tmp_path, [dict(batch_or_concurrency="concurrency 0")])])
    assert r.exit_code == 2 and "load out of range" in r.stderr


def test_the_cli_renders_rows_under_load_apart():
    r = RUNNER.invoke(app, ["validate", str(UNDER_LOAD)], env={"COLUMNS": "200"})   # one line per title, any terminal
    assert r.exit_code == 0, r.output
    assert "Rows under load" in r.stdout and "100 clients (closed loop)" in r.stdout
