"""planner.api (docs/api.md): each function takes a spec object, a mapping or a YAML path,
gives what its command gives (the same answer as the CLI's JSON: one path, not two), and
refuses bad input with an InputError naming where (the mapping's path or the keyword)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from planner import api
from planner.cli.common import without_timings
from planner.cli.root import app
from planner.errors import InputError
from planner.plan.result import PlanResult
from planner.schemas.fleet import FleetSpec
from planner.schemas.plan import PlanSpec
from planner.schemas.sweep import SweepSpec

ROOT = Path(__file__).resolve().parents[1]
RUNNER = CliRunner()
SMALL = {
    "model": "llama-3.1-8b",
    "workload": {"input_tokens": 1024, "output_tokens": 256, "demand": {"requests_per_s": 5}},
    "slo": {"ttft_ms": 500, "tpot_ms": 50},
    "search": {"gpus": ["h100-sxm", "l40s"], "tp": [1, 2], "batch_levels": [8, 32]},
    "objective": "cost_per_hour",
    "top_k": 2,
}
"""A plan instance that solves in about a second."""
FLEET = ROOT / "instances" / "fleet_three_models.yaml"
CSV = ROOT / "tests" / "data" / "measured-small.csv"


def _write(tmp_path: Path, name: str, data: dict) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _cli(*args: str) -> dict:
    r = RUNNER.invoke(app, list(args))
    assert r.exit_code in (0, 1), r.output
    data = json.loads(r.stdout)
    data.pop("status_detail", None)
    return data


def _api(result) -> dict:
    if isinstance(result, PlanResult):
        without_timings(result)        # as the CLI's --reproducible
    return json.loads(api.to_json(result))


def test_plan_from_a_file_is_the_cli_answer_and_a_dict_or_a_spec_the_same(tmp_path):
    path = _write(tmp_path, "small.yaml", SMALL)
    cli = _cli("plan", str(path), "--json", "--reproducible", "--no-simulate", "--top", "2")
    got = _api(api.plan(path, simulate=False))
    assert got == cli and got["plans"] and got["status"] == "optimal"
    assert _api(api.plan(SMALL, simulate=False)) == got
    assert _api(api.plan(PlanSpec.model_validate(SMALL), simulate=False)) == got
    one = _api(api.plan(str(path), simulate=False, top_k=1))["plans"]
    assert len(one) == 1 and {**one[0], "explanation": None} == {**got["plans"][0], "explanation": None}


def test_plan_options_are_the_cli_flags(tmp_path):
    """--objective, --backend and the simulator's verdict reach the same library call."""
    path = _write(tmp_path, "small.yaml", SMALL)
    cli = _cli("plan", str(path), "--json", "--reproducible", "--objective", "gpus", "--backend", "milp", "--top", "1")
    got = api.plan(SMALL, objective="gpus", backend="milp", top_k=1)
    assert _api(got) == cli
    assert got.objective == "gpus" and got.backend == "milp" and got.verification is not None


def test_fleet_from_a_file_is_the_cli_answer_and_a_spec_the_same():
    cli = _cli("fleet", str(FLEET), "--json", "--reproducible", "--no-baselines")
    got = _api(api.fleet(FLEET, baselines=False))
    assert got == cli and got["plans"]
    spec = FleetSpec.model_validate(yaml.safe_load(FLEET.read_text()))
    assert _api(api.fleet(spec, baselines=False))["answers"] == got["answers"]


def test_estimate_is_the_cli_figures(tmp_path):
    spec = {"model": "llama-3.1-8b", "gpu": "h100-sxm", "tp": 2, "batch": 16, "requests_per_s": 2.0}
    path = _write(tmp_path, "estimate.yaml", spec)
    cli = _cli("estimate", str(path), "--json")
    assert _api(api.estimate(path)) == cli
    assert _api(api.estimate(spec)) == cli and cli["under_load"]


def test_sweep_from_a_file_is_the_cli_rows_and_a_dict_the_same(tmp_path):
    base = _write(tmp_path, "base.yaml", {**SMALL, "top_k": 1})
    sweep = {"base": base.name, "grid": {"demand_multiplier": [1, 3]}, "scenarios": [{"id": "dear-h100", "prices":
             {"h100-sxm": 9.0}}], "time_limit_s": 20}
    path = _write(tmp_path, "sweep.yaml", sweep)
    r = RUNNER.invoke(app, ["sweep", str(path), "--json"])
    assert r.exit_code == 0, r.output
    got = api.sweep(path).to_dict()
    assert got == json.loads(r.stdout) and [row["id"] for row in got["results"]] == ["dear-h100", "grid-0001",
                                                                                      "grid-0002"]
    absolute = {**sweep, "base": str(base)}           # a mapping's base: relative to the working folder
    assert api.sweep(absolute).rows == api.sweep(SweepSpec.model_validate(absolute)).rows
    assert [row["status"] for row in api.sweep(absolute, executor="serial").rows] == \
        [row["status"] for row in got["results"]]


def test_validate_is_the_cli_report():
    r = RUNNER.invoke(app, ["validate", str(CSV), "--json"])
    assert r.exit_code == 0, r.output
    got = api.validate(CSV)
    assert json.loads(api.to_json(got)) == json.loads(r.stdout) and got.rows


def _fleet_with(**changes) -> FleetSpec:
    data = yaml.safe_load(FLEET.read_text())
    return FleetSpec.model_validate({**data, **changes})


@pytest.mark.parametrize("call, path, words", [
    (lambda: api.plan({**SMALL, "workload": {**SMALL["workload"], "input_tokens": 0}}), "workload.input_tokens",
     "greater than or equal to 1"),
    (lambda: api.plan({**SMALL, "serach": {}}), "serach", "unknown key"),
    (lambda: api.plan({"workloads": [{"name": "a"}]}), "workloads", "fleet instance"),
    (lambda: api.plan([SMALL]), "spec", "not an input"),
    (lambda: api.plan(SMALL, top_k=51), "top_k", "between 1 and 50"),
    (lambda: api.plan(SMALL, time_limit=float("nan")), "time_limit", "time limit"),
    (lambda: api.plan(SMALL, backend="gurobi"), "backend", "unknown backend"),
    (lambda: api.plan(SMALL, objective="throughput"), "objective", "objective throughput"),
    (lambda: api.fleet(SMALL), "workloads", "lists its workloads"),
    (lambda: api.fleet(_fleet_with(current=[{"workload": "nobody", "gpu": "h100-sxm", "quantization": "w16a16",
                                               "kv_dtype": "bf16", "tp": 1, "replicas": 1}])),
     "current.0.workload", "not a workload"),
    (lambda: api.estimate({"model": "llama-3.1-8b", "gpu": "h100-sxm", "tp": 0}), "tp", "greater than"),
    (lambda: api.sweep({"base": "no/such/base.yaml", "grid": {"demand_multiplier": [1]}}), "base", "not found"),
    (lambda: api.sweep({"base": "instances/sweeps/llama8b_base.yaml", "grid": {"demand_multiplier": [1]}},
                       executor="dask"), "executor", "unknown executor"),
    (lambda: api.schema("plan"), "kind", "unknown schema"),
])
def test_bad_input_is_an_input_error_saying_where(call, path, words):
    with pytest.raises(InputError) as info:
        call()
    assert info.value.path == path and words in str(info.value), str(info.value)


def test_a_mapping_is_named_as_such_and_a_file_by_its_name(tmp_path):
    with pytest.raises(InputError) as info:
        api.plan({**SMALL, "objective": "cheapest"})
    assert info.value.file == "<dict>" and info.value.value == "cheapest"
    path = _write(tmp_path, "bad.yaml", {**SMALL, "objective": "cheapest"})
    with pytest.raises(InputError) as info:
        api.plan(path)
    line = path.read_text().splitlines().index("objective: cheapest") + 1
    assert info.value.file == str(path) and info.value.line == line
    with pytest.raises(InputError) as info:
        api.plan(tmp_path / "missing.yaml")
    assert info.value.file == str(tmp_path / "missing.yaml")
