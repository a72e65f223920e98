"""Findings of the fresh reviewer's adversarial run of the CLI (issue 23, "What it must show",
third bullet). Each test failed on the code as the reviewer found it; the commit that added it
says what was wrong and why."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from planner.cli.root import app

RUNNER = CliRunner()

SMALL = {
    "schema_version": 1,
    "model": "llama-3.1-8b",
    "workload": {"input_tokens": 512, "output_tokens": 128, "demand": {"requests_per_s": 2}},
    "slo": {"ttft_ms": 1000, "tpot_ms": 50},
    "search": {"gpus": ["h100-sxm"], "quantizations": ["fp8"], "kv_dtypes": ["fp8"], "tp": [1], "pp": [1],
               "batch_levels": [16]},
    "objective": "cost_per_million_tokens",
    "top_k": 1,
}


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("review")
    inst = d / "small.yaml"
    inst.write_text(yaml.safe_dump(SMALL))
    out = d / "plan.json"
    r = RUNNER.invoke(app, ["plan", str(inst), "--output", str(out)])
    assert r.exit_code == 0, r.output
    return out


# --- finding 1: --namespace, --node-selector and --prometheus went unchecked into the manifests; the
# namespace is written inside the KServe PromQL selector, so `x",job=~".*` widened the autoscaling query
# to every namespace (and a newline or quote made a manifest Kubernetes refuses).

@pytest.mark.parametrize("option, value", [
    ("--namespace", 'prod",namespace=~".*'),
    ("--namespace", "ns\nkind: Secret"),
    ("--namespace", "Prod_NS"),
    ("--node-selector", "gpu=h100\nevil: 1"),
    ("--node-selector", 'gpu=a"b'),
    ("--node-selector", "bad key=x"),
    ("--prometheus", 'http://p:9090"\n  evil: 1'),
    ("--prometheus", "not a url"),
])
@pytest.mark.parametrize("k8s", ["kserve", "llm-d", "dynamo"])
def test_k8s_options_that_kubernetes_or_promql_would_misread_are_located_errors(plan_file, tmp_path, option,
                                                                                 value, k8s):
    out = tmp_path / "m"
    r = RUNNER.invoke(app, ["launch", str(plan_file), "--k8s", k8s, option, value, "--out", str(out)])
    assert r.exit_code == 2, r.output
    assert option in r.output and "accepted" in r.output
    assert not out.exists()


def test_a_valid_namespace_and_selector_are_written(plan_file, tmp_path):
    out = tmp_path / "m"
    r = RUNNER.invoke(app, ["launch", str(plan_file), "--k8s", "kserve", "--namespace", "llm-prod",
                            "--node-selector", "nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3",
                            "--prometheus", "https://prom.example.org:9090/x", "--out", str(out)])
    assert r.exit_code == 0, r.output
    doc = yaml.safe_load(next(out.glob("*-isvc.yaml")).read_text())
    assert doc["metadata"]["namespace"] == "llm-prod"
    assert 'namespace="llm-prod"' in doc["spec"]["predictor"]["autoScaling"]["metrics"][0]["external"]["metric"][
        "query"]


# --- finding 2: --max-replicas -5 or 0 was silently replaced by the plan's replicas (exit 0), and
# 10**20 was written as maxReplicas, beyond the int32 Kubernetes stores.

@pytest.mark.parametrize("value", ["-5", "0", str(2**31), "100000000000000000000"])
def test_max_replicas_out_of_range_is_a_located_error(plan_file, tmp_path, value):
    out = tmp_path / "m"
    r = RUNNER.invoke(app, ["launch", str(plan_file), "--k8s", "kserve", "--max-replicas", value, "--out", str(out)])
    assert r.exit_code == 2, r.output
    assert "--max-replicas" in r.output and value in r.output
    assert not out.exists()


# --- finding 3: the trace's per-minute bins were allocated for the whole replayed span, whatever it
# was: `trace --rate-scale 5e-324` overflowed (exit 3), `--rate-scale 1e-9` on the shipped sample asked
# for 14.5 GiB, and two requests 10^15 ms apart for 124 GiB (exit 3 under a memory limit; without one
# the machine's memory). Now a replayed span beyond the stated cap is a located error.

TRACE = Path(__file__).resolve().parents[1] / "instances" / "traces" / "mooncake-conversation-sample.jsonl"


@pytest.mark.parametrize("scale", ["5e-324", "1e-300", "1e-9"])
def test_a_replay_slowed_beyond_the_cap_is_a_located_error(scale):
    r = RUNNER.invoke(app, ["trace", str(TRACE), "--rate-scale", scale])
    assert r.exit_code == 2, r.output
    assert "rate_scale" in r.output and "accepted" in r.output


def test_a_trace_spanning_centuries_is_a_located_error(tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_text('{"timestamp": 0, "input_length": 10, "output_length": 5, "hash_ids": [1]}\n'
                 '{"timestamp": 1e15, "input_length": 10, "output_length": 5, "hash_ids": [1]}\n')
    r = RUNNER.invoke(app, ["trace", str(f)])
    assert r.exit_code == 2, r.output
    assert str(f) in r.output and "accepted" in r.output


def test_a_trace_just_under_the_cap_is_summarised(tmp_path):
    from planner.traces.figures import MAX_MINUTES, MINUTE
    f = tmp_path / "t.jsonl"
    f.write_text('{"timestamp": 0, "input_length": 10, "output_length": 5, "hash_ids": [1]}\n'
                 f'{{"timestamp": {(MAX_MINUTES - 1) * MINUTE * 1000:.0f}, "input_length": 10, "output_length": 5,'
                 ' "hash_ids": [1]}\n')
    r = RUNNER.invoke(app, ["trace", str(f), "--json"])
    assert r.exit_code == 0, r.output


# --- finding 4: `pareto` printed every point as the "Pareto frontier" with no word when a solve ran out
# of time: with --time-limit 5e-324 the one point is the starting answer (status feasible in --json),
# but the table claimed it as a frontier point like any proven one.

@pytest.fixture(scope="module")
def small_instance(tmp_path_factory) -> Path:
    f = tmp_path_factory.mktemp("inst") / "small.yaml"
    f.write_text(yaml.safe_dump(SMALL))
    return f


def test_pareto_says_which_points_are_not_proven(small_instance):
    r = RUNNER.invoke(app, ["pareto", str(small_instance), "--time-limit", "5e-324", "--points", "2"])
    assert r.exit_code == 0, r.output
    rj = RUNNER.invoke(app, ["pareto", str(small_instance), "--time-limit", "5e-324", "--points", "2", "--json"])
    import json
    statuses = {p["status"] for p in json.loads(rj.output)["frontier"]}
    assert statuses != {"optimal"}
    assert "not proven" in " ".join(r.output.split()).lower()


# --- finding 5: Ctrl-C that lands inside a weakref callback while the planner imports (importlib's
# module-lock callback, `_get_module_lock.<locals>.cb`) is swallowed by Python as "Exception ignored"
# with a traceback on stderr, and the command then runs on and exits 0. Reproduced by hand with
# `planner schema` interrupted after 0.78 s; here the signal is delivered inside such a callback on
# purpose, so the test does not depend on timing.

SIGINT_IN_CALLBACK = """
import os, signal, sys, weakref
from planner.cli import entry

class Finder:
    def find_spec(self, name, path=None, target=None):
        if name == "planner.cli.root":
            class X: pass
            x = X()
            ref = weakref.ref(x, lambda _: os.kill(os.getpid(), signal.SIGINT))
            del x
        return None

sys.meta_path.insert(0, Finder())
entry.main(["schema"])
"""


def test_ctrl_c_inside_an_import_callback_ends_the_run_quietly():
    import signal
    import subprocess
    import sys
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-c", SIGINT_IN_CALLBACK], cwd=root, capture_output=True, text=True,
                       timeout=120)
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr
    assert r.returncode in (130, -signal.SIGINT), (r.returncode, r.stderr)
    assert r.stdout == ""


# --- finding 6 (not fixed here: left to the plan-file reader's owner, issue 23 item 7): one edited field
# of the planner's own plan JSON still reaches launch, report and check unchecked. A generated run
# (every non-string leaf of a one-plan file set to one of null, "1", -1, 0, +-1e308, 5e-324, {}, [],
# true; launch --out, launch --k8s kserve, report, check: 1,080 runs) gave 72 exits 3 (TypeError,
# AttributeError, KeyError, ZeroDivisionError, OverflowError, ValueError). A sample of them:

EDITS = [
    ("report", ("answers", 0, "binding"), None),
    ("report", ("inputs", "models"), -1e308),
    ("launch", ("inputs", "workloads"), None),
    ("check", ("inputs", "workloads", "main"), -1e308),
    ("launch", ("inputs", "workloads", "main", "input_tokens_mean"), 0),
    ("launch", ("inputs", "workloads", "main", "output_tokens_cv2"), -1e308),
    ("report", ("plans", 0, "concurrency"), "1"),
    ("report", ("plans", 0, "cost_per_million_tokens"), 5e-324),
    ("launch", ("plans", 0, "load", "requests_per_s_per_replica"), -1e308),
    ("launch", ("plans", 0, "load", "scheduler", "max_num_seqs"), []),
    ("launch", ("plans", 0, "memory", "weights_bytes"), None),
    ("launch", ("plans", 0, "nodes"), "1"),
    ("report", ("plans", 0, "ttft_ms"), None),
    ("check", ("plans", 0, "load", "percentiles_ms"), 1e308),
]


@pytest.mark.parametrize("command, path, value", EDITS)
def test_one_edited_field_of_a_plan_file_is_a_located_error(plan_file, tmp_path, command, path, value):
    import json
    data = json.loads(plan_file.read_text())
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    f = tmp_path / "edited.json"
    f.write_text(json.dumps(data))
    bench = Path(__file__).resolve().parent / "data" / "bench" / "results" / "faster" / "aiperf.json"
    args = {"launch": ["launch", str(f), "--out", str(tmp_path / "out")],
            "report": ["report", str(f), "--out", str(tmp_path / "r.html")],
            "check": ["check", str(f), str(bench)]}[command]
    r = RUNNER.invoke(app, args)
    assert "internal error" not in r.output and r.exit_code == 2, (r.exit_code, r.output[-400:])
