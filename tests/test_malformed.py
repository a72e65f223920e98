"""A generated corpus of malformed instances through the CLI: every one exits 2 with a
message that names the YAML path, and none prints a traceback (issue 4)."""

import copy
import math

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from planner.cli.root import app

RUNNER = CliRunner()
BASE = {
    "schema_version": 1,
    "model": "llama-3.1-8b",
    "workload": {"input_tokens": 512, "output_tokens": 128, "demand": {"output_tokens_per_s": 1000}},
    "slo": {"ttft_ms": 500, "tpot_ms": 50, "e2e_latency_ms": 20000},
    "search": {"gpus": ["h100-sxm", "l40s"], "quantizations": ["w16a16"], "kv_dtypes": ["bf16"], "tp": [1, 2],
               "pp": [1], "max_batch": 64, "max_gpus": 16, "max_nodes": 4},
    "limits": {"budget_usd_per_hour": 50, "inventory": {"h100-sxm": 8}, "power_cap_w": 20000},
    "prices": {"usd_per_gpu_hour": {"l40s": 1.5}},
    "objective": "cost_per_hour",
    "top_k": 2,
    "preset": "realistic",
    "assumptions": {"memory_bandwidth_efficiency": 0.8},
}
# (path, values that are always wrong there)
NUMBER = [-1, 0, math.nan, math.inf, -math.inf, "abc", [1], {"a": 1}, True]
SCALARS = {
    ("workload", "input_tokens"): NUMBER + [10**12, 1.5],
    ("workload", "output_tokens"): NUMBER + [10**12],
    ("workload", "demand", "output_tokens_per_s"): NUMBER,
    ("slo", "ttft_ms"): NUMBER,
    ("slo", "tpot_ms"): NUMBER,
    ("slo", "e2e_latency_ms"): NUMBER,
    ("search", "max_batch"): NUMBER + [10**9],
    ("search", "max_gpus"): NUMBER,
    ("search", "max_nodes"): NUMBER,
    ("search", "tp"): [[0], [-2], ["x"], "eight", [math.nan], 3],
    ("search", "pp"): [[0], ["x"], [10**9]],
    ("search", "gpus"): [["h10"], ["nonexistent-gpu"], "h100-sxm", [1]],
    ("search", "quantizations"): [["int3"], ["fp9"], "w16a16"],  # "fp8" is now an alias of w8a8-fp8
    ("search", "kv_dtypes"): [["fp32"], ["int4"], "bf16"],
    ("limits", "budget_usd_per_hour"): [-1, math.nan, math.inf, "cheap"],
    ("limits", "power_cap_w"): NUMBER,
    ("limits", "inventory"): [{"h100-sxm": -1}, {"h10": 4}, [8], {"h100-sxm": math.nan}],
    ("prices", "usd_per_gpu_hour"): [{"l40s": -1}, {"l4O": 1.0}, {"l40s": math.inf}],
    ("objective",): ["cheapest", 3, None],
    ("top_k",): [0, -1, 1000, "five"],
    ("preset",): ["fast", 1],
    ("model",): ["llama-9-8b", 42, {"hidden_size": 4096}, {"hf_config": "missing/config.json"}],
    ("schema_version",): [2, "1.0", 0],
    ("assumptions", "memory_bandwidth_efficiency"): [0, 1.5, math.nan, "high"],
}
MAPPINGS = [(), ("workload",), ("slo",), ("search",), ("limits",), ("prices",), ("assumptions",)]
REQUIRED = [("model",), ("workload",), ("workload", "input_tokens"), ("workload", "output_tokens")]


def _set(data, path, value):
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _delete(data, path):
    node = data
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]


@st.composite
def malformed(draw):
    data = copy.deepcopy(BASE)
    kind = draw(st.sampled_from(["value", "value", "value", "unknown_key", "missing"]))
    if kind == "value":
        path = draw(st.sampled_from(sorted(SCALARS)))
        _set(data, path, draw(st.sampled_from(SCALARS[path])))
    elif kind == "unknown_key":
        parent = draw(st.sampled_from(MAPPINGS))
        name = draw(st.text("abcdefghijklmnopqrstuvwxyz_", min_size=3, max_size=12))
        path = parent + ("zz_" + name,)
        _set(data, path, draw(st.sampled_from([1, "x", [1], {"a": 1}])))
    else:
        path = draw(st.sampled_from(REQUIRED))
        _delete(data, path)
    return data, path


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(malformed())
def test_malformed_instance_exits_2_naming_the_path(tmp_path_factory, case):
    data, path = case
    f = tmp_path_factory.mktemp("bad") / "instance.yaml"
    f.write_text(yaml.safe_dump(data, allow_unicode=True))
    r = RUNNER.invoke(app, ["plan", str(f), "--time-limit", "5"])
    assert r.exit_code == 2, (path, r.output)
    assert "Traceback" not in r.output and r.exception is None or isinstance(r.exception, SystemExit)
    message = r.stderr
    assert str(f) in message
    named = [p for p in path if isinstance(p, str)]
    assert any(p in message for p in named[:1] + named[-1:]), (path, message)


def test_syntax_errors_name_file_and_line(tmp_path):
    for text in ("model: [llama\n", "a: 1\na: 2\n", "model: !!python/name:os.system x\n", "x: &a 1\ny: *a\n",
                 "\tmodel: x\n"):
        f = tmp_path / "s.yaml"
        f.write_text(text)
        r = RUNNER.invoke(app, ["plan", str(f)])
        assert r.exit_code == 2 and f"{f}:" in r.stderr and "Traceback" not in r.output, text


def test_oversized_file_is_refused_with_the_limit(tmp_path):
    f = tmp_path / "big.yaml"
    f.write_text("model: llama-3.1-8b\n" + "# padding\n" * 300_000)
    r = RUNNER.invoke(app, ["plan", str(f)])
    assert r.exit_code == 2 and "above the limit" in r.stderr
