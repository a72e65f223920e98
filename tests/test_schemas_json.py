"""`planner schema KIND` (planner.api.SCHEMAS): every shipped input file validates against its
file's JSON Schema, and the results the CLI writes (plan and fleet --output as JSON and YAML,
estimate and validate --json) against theirs; the schemas refuse what the planner refuses
(an unknown key, a field a result type lacks, a word where a number goes)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from planner import api
from planner.cli.root import app
from planner.schemas.estimate import load_estimate_spec
from planner.schemas.fleet import is_fleet, load_fleet_spec
from planner.schemas.plan import load_plan_spec
from planner.schemas.sweep import load_sweep_spec
from planner.yamlio import load_yaml

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[1]
RUNNER = CliRunner()
LOADERS = {"instance": load_plan_spec, "fleet": load_fleet_spec, "sweep": load_sweep_spec,
           "estimate": load_estimate_spec}
SMALL = ROOT / "instances" / "sweeps" / "llama8b_base.yaml"


def _kind(data: dict) -> str:
    if is_fleet(data):
        return "fleet"
    if "base" in data:
        return "sweep"
    return "instance" if "workload" in data else "estimate"


SHIPPED = sorted((ROOT / "instances").rglob("*.yaml"))


def _errors(kind: str, doc) -> list[str]:
    schema = api.schema(kind)
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator.iter_errors(doc)]


def test_every_schema_is_a_valid_draft_2020_12_schema():
    for kind in api.SCHEMAS:
        schema = api.schema(kind)
        assert schema["$schema"].endswith("2020-12/schema"), kind
        jsonschema.Draft202012Validator.check_schema(schema)


def test_the_cli_prints_them_and_the_instance_schema_by_default():
    assert json.loads(RUNNER.invoke(app, ["schema"]).stdout) == api.schema("instance")
    for kind in api.SCHEMAS:
        r = RUNNER.invoke(app, ["schema", kind])
        assert r.exit_code == 0 and json.loads(r.stdout) == api.schema(kind), kind
    r = RUNNER.invoke(app, ["schema", "plan"])
    assert r.exit_code == 2


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT / "instances")))
def test_every_shipped_input_file_validates_against_its_schema(path):
    data = load_yaml(path).data
    kind = _kind(data)
    LOADERS[kind](str(path))            # the planner reads it as that kind: the classification is right
    assert _errors(kind, data) == []


def test_every_kind_of_input_file_is_shipped():
    assert {_kind(load_yaml(p).data) for p in SHIPPED} == set(LOADERS)


def test_an_input_schema_refuses_what_the_planner_refuses():
    data = load_yaml(SMALL).data
    assert _errors("instance", {**data, "serach": {}})
    assert _errors("instance", {**data, "objective": "cheapest"})
    assert _errors("instance", {k: v for k, v in data.items() if k != "model"})
    assert _errors("fleet", data)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict]:
    """What the CLI writes: a plan simulated, with marginal values (--output JSON and YAML), an
    infeasible plan (its diagnosis and relaxations), a fleet re-plan (moves, baselines), a fleet
    with prefill/decode pools (the verdict on disaggregation), an estimate under load and a
    validation."""
    out = tmp_path_factory.mktemp("results")
    runs = {
        "plan.json": ["plan", str(ROOT / "instances" / "budget_whatif.yaml"), "--output", str(out / "plan.json"),
                      "--marginal", "--top", "2"],
        "plan.yaml": ["plan", str(SMALL), "--output", str(out / "plan.yaml"), "--no-simulate"],
        "infeasible.json": ["plan", str(ROOT / "instances" / "infeasible_405b.yaml"), "--no-simulate",
                            "--output", str(out / "infeasible.json")],
        "fleet.json": ["fleet", str(ROOT / "instances" / "fleet_replan.yaml"), "--simulate",
                       "--output", str(out / "fleet.json")],
        "pools.json": ["fleet", str(ROOT / "instances" / "fleet_disagg_wins.yaml"), "--marginal", "--no-baselines",
                       "--output", str(out / "pools.json")],
    }
    got = {}
    for name, args in runs.items():
        r = RUNNER.invoke(app, args)
        assert r.exit_code in (0, 1), r.output
        text = (out / name).read_text()
        got[name] = json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
    r = RUNNER.invoke(app, ["estimate", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--batch", "16",
                            "--concurrency", "8", "--output-tokens", "1", "--json"])
    got["estimate"] = json.loads(r.stdout)
    r = RUNNER.invoke(app, ["validate", str(ROOT / "tests" / "data" / "measured-small.csv"), "--json"])
    got["validate"] = json.loads(r.stdout)
    return got


def test_the_results_cover_what_a_result_can_hold(results):
    plan, fleet, infeasible = results["plan.json"], results["fleet.json"], results["infeasible.json"]
    assert plan["plans"][0]["simulation"] and plan["verification"] and plan["status_detail"] and plan["marginal"]
    assert infeasible["diagnosis"] and infeasible["relaxations"] and not infeasible["plans"]
    assert fleet["answers"][0]["moves"] and fleet["baselines"]
    assert results["pools.json"]["disaggregation"] and {p["role"] for p in results["pools.json"]["plans"]} == \
        {"prefill", "decode"}
    assert results["estimate"]["under_load"] and results["validate"]["rows"]


@pytest.mark.parametrize("name, kind", [("plan.json", "result"), ("plan.yaml", "result"),
                                        ("infeasible.json", "result"), ("fleet.json", "result"),
                                        ("pools.json", "result"),
                                        ("estimate", "estimate-result"), ("validate", "validate-result")])
def test_every_result_validates_against_its_schema(results, name, kind):
    assert _errors(kind, results[name]) == []


def test_the_result_schema_refuses_what_from_dict_refuses(results):
    plan = results["plan.json"]
    extra = copy.deepcopy(plan)
    extra["plans"][0]["explanation"]["regime"]["colour"] = "blue"
    assert _errors("result", extra)
    word = copy.deepcopy(plan)
    word["plans"][0]["tpot_ms"] = "fast"
    assert _errors("result", word)
    missing = copy.deepcopy(plan)
    del missing["answers"][0]["rank"]
    assert _errors("result", missing)
    nan = copy.deepcopy(plan)
    nan["plans"][0]["tpot_ms"] = None          # what the CLI writes for a figure that is not a number
    assert _errors("result", nan) == []
