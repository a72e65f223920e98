"""Benchmark commands (planner/launch/bench.py) at the operating point of a trace workload and
of a stated distribution: the trace replayed as Mooncake JSON lines, the lengths' spread."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli.common import read_result
from planner.cli.root import app
from planner.launch.bench import CLIENTS, benchmark, operating_point, trace_jsonl

RUNNER = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def _plan(tmp_path, instance: str):
    out = tmp_path / "plan.json"
    res = RUNNER.invoke(app, ["plan", str(ROOT / "instances" / instance), "--output", str(out), "--top", "1"])
    assert res.exit_code == 0, res.output
    return read_result(out)


def test_a_trace_workload_is_replayed(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)                      # the plan records the trace's path as it read it
    r = _plan(tmp_path, "trace_azure_conv.yaml")
    p = r.plans[0]
    op = operating_point(r, p)
    assert op.trace is not None and op.trace_rate
    # the arrivals' burstiness the plan took (at its TTFT target's scale), not the whole window's
    planned = r.inputs["workloads"][p.workload]["demand"]["arrival_cv2"]
    assert op.arrival_cv2 == pytest.approx(planned) == pytest.approx(op.trace["queue"]["dispersion"])
    assert op.arrival_cv2 != pytest.approx(op.trace["arrivals"]["burstiness"])
    lines = [json.loads(x) for x in trace_jsonl(op.trace).splitlines()]
    assert len(lines) == op.trace["requests"]
    assert [x["timestamp"] for x in lines] == sorted(x["timestamp"] for x in lines) and lines[0]["timestamp"] == 0
    span_ms = op.trace["arrivals"]["span_s"] * 1e3
    assert math.isclose(lines[-1]["timestamp"], span_ms, abs_tol=1.0)
    assert math.isclose(sum(x["input_length"] for x in lines) / len(lines),
                        r.inputs["workloads"][p.workload]["input_tokens_mean"], rel_tol=1e-9)
    half = trace_jsonl(op.trace, replicas=2).splitlines()
    assert len(half) == math.ceil(len(lines) / 2)
    v = {a.flag: a.value for a in benchmark(r, p, "vllm").args}
    assert v["--dataset-name"] == "timed_trace" and v["--timed-trace-sec-multiplier"] == 0.001
    a = {a.flag: a.value for a in benchmark(r, p, "aiperf").args}
    assert a["--custom-dataset-type"] == "mooncake_trace" and "--fixed-schedule" in a
    res = RUNNER.invoke(app, ["launch", str(tmp_path / "plan.json"), "--engine", "vllm", "--out",
                              str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "plan1-trace.jsonl").read_text() == trace_jsonl(op.trace, p.replicas)


def test_lengths_spread_and_arrivals(tmp_path):
    r = _plan(tmp_path, "chat_llama70b.yaml")
    p = r.plans[0]
    w = r.inputs["workloads"]["main"]
    w |= {"input_tokens_cv2": 0.12, "output_tokens_cv2": 0.03, "input_tokens_max": 4000.0}
    w["demand"] = {"kind": "tokens_per_s", "value": 1.0, "requests_per_s": 1.0, "arrival_cv2": 4.0}
    v = {a.flag: a.value for a in benchmark(r, p, "vllm").args}
    ratio = json.loads(v["--random-range-ratio"])
    # a uniform on [L(1 - r), L(1 + r)] has CV^2 = r^2 / 3
    assert math.isclose(ratio["input"] ** 2 / 3, 0.12, rel_tol=1e-2)
    assert math.isclose(ratio["output"] ** 2 / 3, 0.03, rel_tol=1e-2)
    assert v["--burstiness"] == 0.25
    a = {a.flag: a.value for a in benchmark(r, p, "aiperf").args}
    assert a["--isl-stddev"] == round(w["input_tokens_mean"] * math.sqrt(0.12))
    assert a["--arrival-pattern"] == "gamma" and a["--arrival-smoothness"] == 0.25
    g = {a.flag: a.value for a in benchmark(r, p, "guidellm").args}
    assert "prompt_tokens_max=4000" in g["--data"]
    closed = replace(p, replicas=2)
    w["demand"] = {"kind": "clients", "value": 64, "requests_per_s": None}
    for client, flag, value in (("vllm", "--max-concurrency", 32), ("aiperf", "--concurrency", 32),
                                ("guidellm", "--profile", "kind=concurrent,streams=32")):
        assert {a.flag: a.value for a in benchmark(r, closed, client).args}[flag] == value
    assert set(CLIENTS) == {"vllm", "aiperf", "guidellm"}


def test_a_trace_with_a_stated_demand_benches_the_stated_arrivals(tmp_path):
    # the plan takes a stated demand's arrivals (here gamma, CV 2), not the trace's: the benchmark
    # must draw what the plan took, not the trace's whole-window burstiness
    sample = ROOT / "instances" / "traces" / "azure-llm-2023-conv-sample.csv"
    (tmp_path / "plan.yaml").write_text(
        f"model: llama-3.1-70b\nworkload:\n  trace: {sample}\n  format: azure\n"
        "  demand: {requests_per_s: 2.0, arrival: {process: gamma, cv: 2.0}}\n"
        "slo: {ttft_ms: {p99: 2000}, tpot_ms: 50}\nsearch: {gpus: [h100-sxm]}\n")
    out = tmp_path / "plan.json"
    res = RUNNER.invoke(app, ["plan", str(tmp_path / "plan.yaml"), "--output", str(out), "--top", "1",
                              "--no-simulate"])
    assert res.exit_code == 0, res.output
    r = read_result(out)
    p = r.plans[0]
    assert r.inputs["workloads"][p.workload]["demand"]["arrival_cv2"] == pytest.approx(4.0)
    assert operating_point(r, p).arrival_cv2 == pytest.approx(4.0)
