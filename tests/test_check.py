"""`planner check` on real AIPerf and GuideLLM output (tests/data/bench/results, recorded
against tests/bench_stub.py by tests/data/bench/record.py): verdicts right for a stub faster
and one slower than the plan; the rows it appends are read by validate's row reader and fitted
by `planner calibrate --under-load`; and, where the clients are installed, a fresh run of the
generated commands against the stub."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.catalog.store import Catalog
from planner.cli.common import read_result
from planner.cli.root import app
from planner.errors import InputError
from planner.fidelity.check import compare, rows
from planner.fidelity.check import read_result as read_measured
from planner.fidelity.rows import load_measurements, map_row

RUNNER = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "tests" / "data" / "bench"
RESULTS = BENCH / "results"
PLAN = RESULTS / "plan.json"


def _verdicts(kind: str, client: str) -> dict[str, str]:
    r = read_result(PLAN)
    chk = compare(r, r.plans[0], read_measured(str(RESULTS / kind / f"{client}.json")))
    return {f"{x.figure}_{x.statistic}": x.verdict for x in chk.lines if x.predicted is not None}


@pytest.mark.parametrize("client", ["aiperf", "guidellm"])
def test_a_faster_server_is_faster_than_predicted(client):
    v = _verdicts("faster", client)
    for key in ("ttft_mean", "ttft_p50", "ttft_p99", "tpot_mean", "tpot_p99", "e2e_mean"):
        assert v[key] == "faster than predicted", key
    assert ("itl_mean" in v) == (client == "aiperf") or v["itl_mean"].startswith("not reported")


@pytest.mark.parametrize("client", ["aiperf", "guidellm"])
def test_a_slower_server_is_slower_than_predicted_and_misses_its_targets(client):
    v = _verdicts("slower", client)
    for key in ("ttft_mean", "ttft_p50", "ttft_p99", "tpot_mean", "tpot_p99", "e2e_mean"):
        assert v[key] == "slower than predicted", key
    r = read_result(PLAN)
    chk = compare(r, r.plans[0], read_measured(str(RESULTS / "slower" / f"{client}.json")))
    missed = {f"{x.figure}_{x.statistic}" for x in chk.lines if x.meets is False}
    assert missed == {"ttft_mean", "tpot_mean"}


def test_the_files_are_read_as_their_clients_report_them():
    a = read_measured(str(RESULTS / "slower" / "aiperf.json"))
    g = read_measured(str(RESULTS / "slower" / "guidellm.json"))
    assert a.version == "AIPerf 0.13.0" and g.version == "GuideLLM 0.8.1"
    for m in (a, g):
        assert m.rate == 4.0 and m.completed == 16
        assert m.figures["ttft_p50"] == pytest.approx(600, rel=0.05)      # the stub's 600 ms
        assert m.figures["tpot_mean"] == pytest.approx(40, rel=0.05)      # and 40 ms a token
        assert m.figures["e2e_mean"] == pytest.approx(600 + 15 * 40, rel=0.05)
        assert m.input_mean == pytest.approx(64, rel=0.05) and m.output_mean == 16
    assert a.figures["itl_p99"] == pytest.approx(40, rel=0.2) and "itl_mean" not in g.figures


def test_vllm_result_keys():
    """A `vllm bench serve --save-result` file as vllm 0.33.0's vllm/benchmarks/serve.py writes
    its keys (hand-written here: the vLLM client is not installed in the test environment)."""
    import tempfile
    d = {"date": "20260101-000000", "backend": "openai", "model_id": "m", "num_prompts": 10, "request_rate": 4.0,
         "burstiness": 1.0, "max_concurrency": None, "completed": 10, "total_input_tokens": 640,
         "total_output_tokens": 160, "mean_ttft_ms": 50.0, "median_ttft_ms": 40.0, "std_ttft_ms": 1.0,
         "p50_ttft_ms": 40.0, "p90_ttft_ms": 70.0, "p99_ttft_ms": 90.0, "mean_tpot_ms": 7.0, "median_tpot_ms": 7.0,
         "p99_tpot_ms": 8.0, "mean_itl_ms": 7.0, "p99_itl_ms": 9.0, "mean_e2el_ms": 150.0, "p99_e2el_ms": 200.0}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(d, f)
    m = read_measured(f.name)
    os.unlink(f.name)
    assert m.client == "vllm" and m.rate == 4.0 and m.input_mean == 64 and m.output_mean == 16
    assert m.figures == {"ttft_mean": 50.0, "ttft_p50": 40.0, "ttft_p90": 70.0, "ttft_p99": 90.0, "tpot_mean": 7.0,
                         "tpot_p50": 7.0, "tpot_p99": 8.0, "itl_mean": 7.0, "itl_p99": 9.0, "e2e_mean": 150.0,
                         "e2e_p99": 200.0}


def test_not_a_result_is_a_located_error(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"hello": 1}))
    with pytest.raises(InputError) as e:
        read_measured(str(bad))
    assert e.value.file == str(bad)
    res = RUNNER.invoke(app, ["check", str(PLAN), str(bad), "--json"])
    assert res.exit_code == 2 and json.loads(res.stdout)["file"] == str(bad)


def test_a_result_named_twice_is_refused_before_anything_is_appended(tmp_path):
    out = tmp_path / "mine.csv"
    run = str(RESULTS / "faster" / "aiperf.json")
    for twice in ([run, run], [run, str(PLAN)]):
        res = RUNNER.invoke(app, ["check", str(PLAN), *twice, "--append", str(out), "--json"])
        assert res.exit_code == 2, res.output
        assert json.loads(res.stdout)["file"] == twice[1]
    assert not out.exists()


def test_cli_check_appends_rows_that_validate_reads(tmp_path):
    out = tmp_path / "mine.csv"
    res = RUNNER.invoke(app, ["check", str(PLAN), str(RESULTS / "faster" / "aiperf.json"),
                              str(RESULTS / "faster" / "guidellm.json"), "--append", str(out)])
    assert res.exit_code == 0, res.output
    res = RUNNER.invoke(app, ["check", str(PLAN), str(RESULTS / "slower" / "aiperf.json"), "--append", str(out),
                              "--json"])
    assert res.exit_code == 1                      # a target missed
    assert json.loads(res.stdout)["targets_met"] is False
    got = load_measurements(str(out))
    assert len({r["source"] for r in got}) == 3
    cat = Catalog.default()
    cases = [map_row(i, r, cat) for i, r in enumerate(got)]
    assert all(not isinstance(c, str) for c in cases), [c for c in cases if isinstance(c, str)]
    p = read_result(PLAN).plans[0]
    for c in cases:
        assert c.under_load and c.load == ("rate", 4.0) and (c.tp, c.pp, c.scheme, c.kv) == \
            (p.tp, p.pp, p.quantization, p.kv_dtype)
    with out.open() as f:
        assert next(csv.reader(f))[:14] == list(load_measurements.__globals__["COLUMNS"])


def test_rows_state_the_run(tmp_path):
    r = read_result(PLAN)
    chk = compare(r, r.plans[0], read_measured(str(RESULTS / "faster" / "aiperf.json")))
    made = rows(r, r.plans[0], chk, "vllm")
    assert {x["metric"] for x in made} >= {"ttft_ms_mean", "ttft_ms_p99", "tpot_ms_p50", "itl_ms_p99", "e2e_ms_mean"}
    assert all(x["framework"] == "vLLM" and "4 req/s" in x["batch_or_concurrency"] for x in made)


def test_calibrate_fits_rows_under_load(tmp_path):
    out = tmp_path / "mine.csv"
    for kind in ("faster", "slower"):
        RUNNER.invoke(app, ["check", str(PLAN), str(RESULTS / kind / "aiperf.json"), "--append", str(out)])
    res = RUNNER.invoke(app, ["calibrate", str(out), "--out", str(tmp_path / "c.yaml"), "--iters", "10"])
    assert res.exit_code == 2 and "--under-load" in res.output
    res = RUNNER.invoke(app, ["calibrate", str(out), "--out", str(tmp_path / "c.yaml"), "--iters", "10",
                              "--under-load", "--json"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "c.yaml").exists()
    assert set(json.loads(res.stdout)["fitted"]) <= {"ttft_load", "tpot_load", "throughput_load"}


def _bin(name: str) -> str | None:
    return shutil.which(name, path=os.environ.get("PLANNER_BENCH_BIN", "") + os.pathsep + os.environ.get("PATH", ""))


@pytest.mark.skipif(_bin("aiperf") is None or _bin("guidellm") is None,
                    reason="AIPerf and GuideLLM are not installed (PLANNER_BENCH_BIN names their venvs' bin folders)")
def test_real_clients_against_the_stub(tmp_path):
    """The generated commands run by the real clients against the stub, faster then slower than
    the plan: each file read back with the right verdicts (tests/data/bench/record.py)."""
    import sys
    sys.path.insert(0, str(BENCH))
    from record import record
    for kind, ttft, itl in (("faster", 5, 2), ("slower", 600, 40)):
        made = record(PLAN, tmp_path / kind, ttft, itl, ["aiperf", "guidellm"], port=8197)
        r = read_result(PLAN)
        for client, path in made.items():
            chk = compare(r, r.plans[0], read_measured(str(path)))
            v = {f"{x.figure}_{x.statistic}": x.verdict for x in chk.lines}
            assert v["ttft_mean"] == v["tpot_mean"] == f"{kind} than predicted", (client, v)
