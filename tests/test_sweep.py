"""What-if sweeps and Pareto fronts (issue 13, items 4-6; docs/whatif.md): the sweep file's
schema and located errors, the price-only fast path against a full rebuild, the three
executors' byte-identical results on the shipped 128-scenario sweep, the CLI's outputs
(atomic, never over an input, no progress in --json), and the frontier's dominance."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from planner.candidates.table import Candidates, build_candidates, repriced
from planner.cli.common import without_timings
from planner.cli.root import app
from planner.errors import InputError
from planner.plan.solve import solve
from planner.resolve.problem import resolve
from planner.schemas.plan import PlanSpec, load_plan_spec
from planner.schemas.sweep import load_sweep_spec
from planner.whatif.executors import ProcessExecutor, RayExecutor, SerialExecutor, get_executor
from planner.whatif.pareto import pareto
from planner.whatif.sweep import apply, physics_key, sweep
from planner.yamlio import load_yaml

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "instances" / "sweeps" / "demand_prices.yaml"
BASE = ROOT / "instances" / "sweeps" / "llama8b_base.yaml"
runner = CliRunner()


def _run(path: Path, executor=None):
    spec, doc = load_sweep_spec(str(path))
    base_doc = load_yaml(str(Path(doc.file).parent / spec.base))
    return sweep(spec, doc, base_doc, executor)


def _write(tmp_path: Path, text: str, name: str = "sweep.yaml") -> Path:
    (tmp_path / "base.yaml").write_text(BASE.read_text())
    p = tmp_path / name
    p.write_text(text)
    return p


# -- the schema ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, path, words", [
    ("base: base.yaml\ngrid: {demand_multipler: [1, 2]}\n", "grid.demand_multipler", "unknown key"),
    ("base: base.yaml\nscenarios: [{id: a, demand_multiplier: 2}, {id: a, budget_usd_per_hour: 5}]\n",
     "scenarios", "repeats"),
    ("base: base.yaml\ngrid: {demand_multiplier: []}\n", "grid", "no value"),
    ("base: base.yaml\ngrid: {demand_multiplier: [-1]}\n", "grid.demand_multiplier[0]", "greater than 0"),
    ("base: base.yaml\n", "", "give a grid"),
    ("base: base.yaml\nscenarios: [{id: x, inventory: {h10: 2}}]\n", "scenarios[0]", "unknown GPU"),
    ("base: base.yaml\nscenarios: [{id: x, slo: {ttft_ms: {p98: 3}}}]\n", "scenarios[0].slo.ttft_ms", ""),
])
def test_a_bad_sweep_file_is_a_located_error(tmp_path, text, path, words):
    p = _write(tmp_path, "schema_version: 1\n" + text)
    r = runner.invoke(app, ["sweep", str(p)])
    assert r.exit_code == 2, r.output
    assert str(p) in r.output and path in r.output and words in r.output


def test_a_scenario_the_base_cannot_take_names_the_scenario(tmp_path):
    (tmp_path / "base.yaml").write_text(BASE.read_text().replace("  demand: {requests_per_s: 20}\n", "")
                                        .replace("objective: cost_per_hour", "objective: cost_per_million_tokens"))
    p = tmp_path / "s.yaml"
    p.write_text("base: base.yaml\nscenarios:\n  - id: double\n    demand_multiplier: 2\n")
    r = runner.invoke(app, ["sweep", str(p)])
    assert r.exit_code == 2 and "scenario double" in r.output and "scenarios[0]" in r.output
    assert f"{p}:3" in r.output                     # the line of the scenario


def test_the_grid_expands_in_order_with_padded_ids():
    spec, _ = load_sweep_spec(str(SHIPPED))
    from planner.whatif.sweep import expand
    scenarios = expand(spec)
    assert len(scenarios) == 128
    assert scenarios[0][:2] == ("grid-0001", {"demand_multiplier": 0.5, "prices.h100-sxm": 1.5, "prices.l40s": 0.6})
    assert scenarios[124][0] == "grid-0125" and scenarios[124][1]["demand_multiplier"] == 8
    assert [s[0] for s in scenarios[125:]] == ["h100-shortage", "budget-cap", "tight-ttft"]


def test_the_documented_sweep_file_is_valid():
    import yaml

    from planner.schemas.sweep import SweepSpec
    from planner.whatif.sweep import expand
    text = (ROOT / "docs" / "whatif.md").read_text().split("### The sweep file")[1]
    spec = SweepSpec.model_validate(yaml.safe_load(text.split("```yaml")[1].split("```")[0]))
    assert len(expand(spec)) == 4 * 3 * 3 * 3 * 2 * 2 + 1


# -- the fast path ---------------------------------------------------------------------------------

def _eq(x, y) -> bool:
    if isinstance(x, np.ndarray):
        nan = x.dtype.kind == "f"
        return isinstance(y, np.ndarray) and x.shape == y.shape and bool(np.array_equal(x, y, equal_nan=nan))
    if is_dataclass(x):
        return type(x) is type(y) and all(_eq(getattr(x, f.name), getattr(y, f.name)) for f in fields(x))
    if isinstance(x, (tuple, list)):
        return len(x) == len(y) and all(_eq(a, b) for a, b in zip(x, y))
    if isinstance(x, Mapping):      # a dict, or a gathered table's statistics (read when used)
        return x.keys() == y.keys() and all(_eq(x[k], y[k]) for k in x)
    return x == y


def _same(a: Candidates, b: Candidates) -> None:
    for f in fields(Candidates):
        if f.compare:       # not ``physics``: the cache each table was built with
            assert _eq(getattr(a, f.name), getattr(b, f.name)), f.name


@pytest.mark.parametrize("change", [{"prices.h100-sxm": 9.0, "prices.l40s": 0.1}, {"prices.a100-80gb": 0.5}])
def test_repricing_equals_a_rebuild(change):
    base_doc = load_yaml(str(BASE))
    spec = PlanSpec.model_validate(base_doc.data)
    p = resolve(spec)
    c = build_candidates(p)
    spec2 = PlanSpec.model_validate(apply(base_doc.data, change))
    p2 = resolve(spec2)
    assert physics_key(spec2, p2) == physics_key(spec, p)
    fast, full = repriced(c, p2), build_candidates(p2)
    _same(fast, full)
    a, b = solve(p2, fast, top_k=2), solve(p2, full, top_k=2)
    without_timings(a), without_timings(b)
    assert a.to_dict() == b.to_dict()


@pytest.mark.parametrize("base_change, change", [
    ({}, {"demand_multiplier": 2}),
    ({}, {"budget_usd_per_hour": 30.0}),             # a budget changes the batch levels offered
    ({"budget_usd_per_hour": 30.0}, {"prices.h100-sxm": 1.0}),   # ... and, with one, so do prices
])
def test_what_changes_the_physics_key(base_change, change):
    data = apply(load_yaml(str(BASE)).data, base_change)
    spec = PlanSpec.model_validate(data)
    spec2 = PlanSpec.model_validate(apply(data, change))
    assert physics_key(spec, resolve(spec)) != physics_key(spec2, resolve(spec2))


def test_with_a_budget_prices_change_the_rows():
    """Why prices share a table only without a budget: the rows themselves differ."""
    data = apply(load_yaml(str(BASE)).data, {"budget_usd_per_hour": 3.0})
    a = build_candidates(resolve(PlanSpec.model_validate(data)))
    b = build_candidates(resolve(PlanSpec.model_validate(apply(data, {"prices.h100-sxm": 0.5}))))
    assert len(a) != len(b) or not np.array_equal(a.configs.batch, b.configs.batch)


# -- the executors ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def serial_result():
    return _run(SHIPPED, SerialExecutor())


@pytest.fixture(scope="session")
def local_ray():
    """One local Ray with 2 CPUs for the whole session."""
    ray = pytest.importorskip("ray", reason="Ray cannot be installed here (pip install 'ray>=2.9')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


def test_the_shipped_sweep_runs(serial_result):
    r = serial_result
    assert len(r.rows) == 128 and [x["id"] for x in r.rows] == sorted(x["id"] for x in r.rows)
    with_plan = [x for x in r.rows if x["gpu"] is not None]
    assert len(with_plan) >= 120
    by = {x["id"]: x for x in r.rows}
    # more demand never costs less at the same prices
    for n in range(1, 26):
        costs = [by[f"grid-{n + 25 * k:04d}"]["cost_per_hour"] for k in range(5)]
        assert costs == sorted(costs)
    assert by["budget-cap"]["cost_per_hour"] is None or by["budget-cap"]["cost_per_hour"] <= 20
    csv_rows = list(csv.DictReader(io.StringIO(r.to_csv())))
    assert len(csv_rows) == 128 and csv_rows[0]["id"] == r.rows[0]["id"]


def test_process_executor_is_byte_identical(serial_result):
    r = _run(SHIPPED, ProcessExecutor(2, always=True))
    assert r.to_json() == serial_result.to_json() and r.to_csv() == serial_result.to_csv()


def test_ray_executor_is_byte_identical(serial_result, local_ray):
    r = _run(SHIPPED, RayExecutor(2, always=True))
    assert r.to_json() == serial_result.to_json() and r.to_csv() == serial_result.to_csv()


def test_batching_does_not_change_results(tmp_path):
    """One scenario per task (a table built for each) or one task for all (re-priced)."""
    text = ("schema_version: 1\nbase: base.yaml\ngrid:\n"
            "  prices: {h100-sxm: [1.5, 3.5], l40s: [0.5, 1.5]}\nbatch_size: BATCH\n")
    one = _run(_write(tmp_path, text.replace("BATCH", "1"), "one.yaml"))
    many = _run(_write(tmp_path, text.replace("BATCH", "8"), "many.yaml"))
    assert one.to_dict()["results"] == many.to_dict()["results"] and len(one.rows) == 4
    assert {r["gpu"] for r in one.rows} == {"h100-sxm", "l40s"}     # the prices do move the choice


def test_workers_read_no_file(tmp_path):
    """The driver resolves the base's model (hf_config) and catalog; a task needs neither file."""
    import shutil

    from planner.whatif.sweep import Shared, prepare, run_batch
    shutil.copy(ROOT / "tests" / "data" / "hf" / "llama_config.json", tmp_path / "config.json")
    p = _write(tmp_path, SMALL)
    (tmp_path / "base.yaml").write_text(BASE.read_text().replace("model: llama-3.1-8b",
                                                                 "model: {hf_config: config.json}"))
    spec, doc = load_sweep_spec(str(p))
    shared, scenarios, _ = prepare(spec, doc, load_yaml(str(tmp_path / "base.yaml")))
    (tmp_path / "config.json").unlink()
    assert isinstance(shared, Shared) and shared.base["catalog"] == []
    rows = run_batch(shared, [(sid, values) for sid, values, _ in scenarios[:1]])
    assert rows[0]["id"] == "a" and rows[0]["status"] in ("optimal", "infeasible")


def test_ray_missing_is_exit_2(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(InputError, match="optional extra"):
        get_executor("ray", 2)
    r = runner.invoke(app, ["sweep", str(SHIPPED), "--executor", "ray"])
    assert r.exit_code == 2 and "pip install" in r.output


def test_ray_address_comes_from_the_environment(monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("RAY_ADDRESS", "ray://nowhere:10001")
    assert RayExecutor(2).address == "ray://nowhere:10001"
    assert RayExecutor(2, "auto").address == "auto"


# -- the command -----------------------------------------------------------------------------------

SMALL = """schema_version: 1
base: base.yaml
scenarios:
  - {id: a, demand_multiplier: 2}
  - {id: b, prices: {h100-sxm: 9.0}}
  - {id: c, gpus: [l40s]}
"""


def test_sweep_command_writes_csv_json_and_plots(tmp_path):
    p = _write(tmp_path, SMALL)
    out = tmp_path / "out"
    r = runner.invoke(app, ["sweep", str(p), "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)                      # no progress bar or note in the JSON
    assert [x["id"] for x in data["results"]] == ["a", "b", "c"]
    assert (out / "sweep.json").read_text() == r.stdout
    assert (out / "sweep.csv").read_text().splitlines()[0].startswith("id,demand_multiplier,prices.h100-sxm,gpus,")
    for png in ("cost_vs_demand.png", "cost_vs_latency.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert data["results"][2]["gpu"] == "l40s"
    assert not list(out.glob(".*.tmp"))


def test_sweep_never_writes_over_an_input(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "sweep.json").write_text(json.dumps(load_yaml(str(BASE)).data))   # the base, as JSON
    p = tmp_path / "s.yaml"
    p.write_text(SMALL.replace("base: base.yaml", "base: out/sweep.json"))
    before = (out / "sweep.json").read_text()
    r = runner.invoke(app, ["sweep", str(p), "--out", str(out)])
    assert r.exit_code == 2 and "refusing to overwrite" in r.output
    assert (out / "sweep.json").read_text() == before


@pytest.mark.parametrize("args, words", [(["--workers", "0"], "--workers"),
                                         (["--address", "auto"], "--executor ray")])
def test_sweep_bad_options(tmp_path, args, words):
    p = _write(tmp_path, SMALL)
    r = runner.invoke(app, ["sweep", str(p), *args])
    assert r.exit_code == 2 and words in r.output


def _ctrl_c_at_solve(monkeypatch, at: int) -> list[int]:
    """The ``at``-th CP-SAT solve of the run (from 1) is interrupted, as a Ctrl-C there is:
    the backend raises KeyboardInterrupt, which ``solve`` turns into a result marked interrupted."""
    from planner.backends.cpsat import CpSatBackend
    calls = [0]
    real = CpSatBackend.solve

    def solve_(self, *a, **k):
        calls[0] += 1
        if calls[0] == at:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(CpSatBackend, "solve", solve_)
    return calls


def test_ctrl_c_inside_a_scenarios_solve_ends_the_sweep(tmp_path, monkeypatch):
    """A Ctrl-C that lands in a solve (which keeps the plans found so far and marks its result
    interrupted) ends the whole sweep: no row "interrupted" among finished ones, no later
    scenario run, and the command exits 130 with one line."""
    calls = _ctrl_c_at_solve(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        _run(_write(tmp_path, SMALL))
    solves = calls[0]
    assert solves == 2                      # nothing solved after the Ctrl-C
    calls[0] = 0
    r = runner.invoke(app, ["sweep", str(tmp_path / "sweep.yaml"), "--json"])
    assert r.exit_code == 130 and r.stdout == "" and "interrupted" in r.stderr, r.output


def test_ctrl_c_inside_a_pareto_point_ends_the_frontier(monkeypatch):
    """The second point's solve interrupted: no frontier from the first alone, exit 130."""
    spec, doc = load_plan_spec(str(BASE))
    calls = _ctrl_c_at_solve(monkeypatch, 3)            # the first point's two phases, then the second's
    with pytest.raises(KeyboardInterrupt):
        pareto(spec, doc, x="tpot", statistic="p99", points=5)
    assert calls[0] == 3


def test_ctrl_c_inside_the_relaxation_search_marks_the_answer_interrupted(monkeypatch):
    """An infeasible instance's relaxations re-solve it many times: a Ctrl-C in one of them
    stops the search with none reported (not one read from the cut-short solve), the answer
    (proven infeasible) marked interrupted, so ``planner plan`` exits 130."""
    from planner.whatif.answer import answer
    data = load_yaml(str(BASE)).data | {"slo": {"tpot_ms": 0.5}}
    calls = _ctrl_c_at_solve(monkeypatch, 2)            # the plan's own solve, then the first relaxation's
    r = answer(PlanSpec.model_validate(data), None, backend="cpsat", time_limit=20)
    assert calls[0] == 2
    assert r.status == "infeasible" and r.interrupted and r.relaxations == []


# -- Pareto ----------------------------------------------------------------------------------------

def test_pareto_frontier_is_non_dominated():
    spec, doc = load_plan_spec(str(BASE))
    r = pareto(spec, doc, x="tpot", statistic="p99", points=5)
    front = r.frontier
    assert len(front) >= 3
    lat = [p.latency_ms for p in front]
    cost = [p.cost for p in front]
    assert lat == sorted(lat) and cost == sorted(cost, reverse=True) and len(set(cost)) == len(cost)
    for p in r.points:          # every solve met its own target, and nothing off the front beats it
        if p.target_ms is not None and p.latency_ms is not None:
            assert p.latency_ms <= p.target_ms * (1 + 1e-9)
        if p.latency_ms is not None and not p.on_frontier:
            assert any(f.latency_ms <= p.latency_ms and f.cost <= p.cost for f in front)
    assert front[-1].target_ms is None          # the cheapest is the instance as written


def test_pareto_command(tmp_path):
    out, png = tmp_path / "p.json", tmp_path / "p.png"
    r = runner.invoke(app, ["pareto", str(BASE), "--x", "tpot", "--points", "3", "--json", "--output", str(out),
                            "--plot", str(png)])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["x"] == "tpot" and data["statistic"] == "p99" and data["frontier"]
    assert json.loads(out.read_text()) == data and png.read_bytes()[:4] == b"\x89PNG"
    r = runner.invoke(app, ["pareto", str(BASE), "--output", str(BASE)])
    assert r.exit_code == 2
    r = runner.invoke(app, ["pareto", str(BASE), "--points", "1"])
    assert r.exit_code == 2 and "--points" in r.output


def test_a_sweep_plans_a_profiled_base_as_plan_does(tmp_path):
    """A base whose demand has a profile is planned at its busiest period in every scenario
    (plan.solve.resolved, at_peak), as `planner plan` plans it: a scenario that changes nothing
    the answer reads (a budget far above it) costs what the plan costs (20 requests/s x 4 at
    the peak), not what the stated rate alone needs."""
    from planner.plan.solve import plan
    from planner.schemas.plan import load_plan_spec
    profile = "demand: {requests_per_s: 20, profile: [{hours: 12, multiplier: 0.5}, {hours: 12, multiplier: 4}]}"
    (tmp_path / "base.yaml").write_text(BASE.read_text().replace("demand: {requests_per_s: 20}", profile))
    p = _write(tmp_path, "schema_version: 1\nbase: base.yaml\ngrid:\n  budget_usd_per_hour: [100000]\n")
    (tmp_path / "base.yaml").write_text(BASE.read_text().replace("demand: {requests_per_s: 20}", profile))
    rows = _run(p).rows
    spec, _ = load_plan_spec(str(tmp_path / "base.yaml"))
    want = plan(spec, top_k=1)
    stated = plan(load_plan_spec(str(BASE))[0], top_k=1)
    assert rows[0]["status"] == want.status == "optimal"
    assert rows[0]["cost_per_hour"] == pytest.approx(want.answers[0].totals.cost_per_hour, rel=1e-9)
    assert want.answers[0].totals.cost_per_hour > stated.answers[0].totals.cost_per_hour


def test_a_fleet_scenarios_gap_is_unknown_not_zero_where_a_phase_stopped_without_a_bound():
    """A fleet scenario whose objective phase stopped short of proof with no bound has no gap
    (None), not 0 (which would read as proven); a proven phase without a gap counts 0."""
    from types import SimpleNamespace

    from planner.plan.result import Phase
    from planner.whatif.sweep import _fleet_gap

    def result(*phases: Phase) -> Any:
        return SimpleNamespace(phases=list(phases))

    proven, tie = Phase("cost_per_hour"), Phase("order", kind="tie-break", status="time_limit")
    assert _fleet_gap(result(proven, tie)) == 0.0
    assert _fleet_gap(result(proven, Phase("gpus", status="feasible", gap=0.02))) == 0.02
    assert _fleet_gap(result(proven, Phase("gpus", status="time_limit"))) is None


def test_pareto_says_its_frontier_is_among_the_points_solved_only():
    """Each point is the cheapest plan under its target, with no latency tie-break: on
    fleet_three_models.yaml a point at 8.1456 $/hour and TTFT p99 1757 ms was printed as on the
    frontier while another plan at that cost reaches 1638 ms (issue pareto26). The output must
    not claim more than non-domination among the points solved, in the JSON and in the text."""
    from planner.cli.whatif_cmd import render_pareto
    from planner.whatif.pareto import ParetoPoint, ParetoResult
    plan = {"replicas": 1, "gpu": "h100-sxm", "tp": 1, "pp": 1, "quantization": "bf16", "batch": 8}
    r = ParetoResult(x="ttft", statistic="p99", objective="cost_per_hour", unit="$/hour",
                     points=[ParetoPoint(None, "optimal", 1757.0, 8.1456, plan, True),
                             ParetoPoint(1500.0, "optimal", 1400.0, 9.07, plan, True)])
    scope = r.to_dict()["frontier_scope"]
    assert "among the points solved only" in scope and "no latency tie-break" in scope
    text = " ".join(render_pareto(r, "x.yaml").split())
    assert "non-dominated among the points solved only" in text
