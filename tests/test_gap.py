"""A relative-gap target as a solve option (issue 26): ``solve(..., gap=G)``, ``--gap G`` on
plan and fleet. Each backend stops once its answer is proven within G of a real bound; such an
answer is ``feasible`` with the gap it reached (never ``optimal``), within G of the bound it
reports and of the exhaustive oracle's optimum; gap 0 is the exact solve; the oracle ignores it."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
from test_decompose import _problem as decompose_problem
from typer.testing import CliRunner

import constraints
from planner import api
from planner.backends import decompose
from planner.backends.base import OPTIMAL_GAP, Status, get_backend
from planner.cli.root import app
from planner.errors import InputError
from planner.plan import start as starting
from planner.plan.solve import check_gap, first_phase_view, prepare, solve
from planner.schemas.fleet import load_fleet_spec

ROOT = Path(__file__).resolve().parents[1]
RUNNER = CliRunner()
LINEAR = ("highs", "milp", "cpsat")
TIGHT = {"h100-sxm": 1, "l40s": 8}
"""An inventory that binds the two small workloads together (test_decompose.py)."""


@pytest.fixture(scope="module")
def three():
    """instances/fleet_three_models.yaml: its decomposition converges in 3 rounds, its start is
    5.9 % above the Lagrangian bound of the first."""
    spec, doc = load_fleet_spec(str(ROOT / "instances" / "fleet_three_models.yaml"))
    _, p, c = prepare(spec, doc)
    return p, c


def _model(p, c):
    return constraints.build(replace(first_phase_view(p, c), limited=()))


@pytest.fixture(scope="module")
def small():
    p, c = decompose_problem(TIGHT, small=True)
    oracle = solve(p, c, backend="exhaustive", time_limit=600, tie_break=False).phases[0].value
    assert oracle is not None
    return p, c, oracle


@pytest.mark.parametrize("bad", [-0.01, 1.0, 1.5, math.nan, math.inf, True, "0.1"])
def test_a_gap_outside_0_to_1_is_an_input_error_naming_the_option(bad):
    with pytest.raises(InputError) as e:
        check_gap(bad)
    assert e.value.path == "--gap" and "0 <= G < 1" in str(e.value)


@pytest.mark.parametrize("good", [0, 0.0, 0.005, 0.999])
def test_a_fraction_in_0_to_1_is_accepted(good):
    check_gap(good)


@pytest.mark.parametrize("command, instance", [("fleet", "fleet_three_models.yaml"), ("plan", "latency_llama8b.yaml"),
                                               ("schedule", "schedule_day.yaml")])
@pytest.mark.parametrize("bad", ["1.5", "-0.2", "nan"])
def test_bad_gap_on_the_command_line_exits_2_with_a_message(command, instance, bad):
    r = RUNNER.invoke(app, [command, str(ROOT / "instances" / instance), "--gap", bad])
    assert r.exit_code == 2 and "--gap" in r.stderr and "0 <= G < 1" in r.stderr and "Traceback" not in r.output


def test_the_library_names_its_keyword():
    with pytest.raises(InputError) as e:
        api.fleet(ROOT / "instances" / "fleet_three_models.yaml", gap=2.0)
    assert e.value.path == "gap"


@pytest.mark.parametrize("backend", LINEAR + ("exhaustive",))
def test_gap_0_is_the_proven_optimum_of_every_backend(small, backend):
    p, c, oracle = small
    r = solve(p, c, backend=backend, time_limit=120, tie_break=False, gap=0.0)
    assert r.status == "optimal" and r.gap == 0.0
    assert r.phases[0].value == pytest.approx(oracle, rel=1e-6)
    assert r.phases[0].lower_bound is None and not any("gap target" in n for n in r.notes)


@pytest.mark.parametrize("backend", LINEAR)
@pytest.mark.parametrize("target", [0.05, 0.3, 0.9])
def test_a_result_stopped_at_the_gap_is_within_it_of_its_bound_and_of_the_oracle(small, backend, target):
    p, c, oracle = small
    r = solve(p, c, backend=backend, time_limit=120, tie_break=False, gap=target)
    first = r.phases[0]
    assert first.value is not None and first.gap is not None and r.gap == first.gap
    assert first.value >= oracle * (1 - 1e-9)                      # a real fleet: never under the optimum
    assert first.value - oracle <= target * first.value + 1e-9     # within the target of the oracle's optimum
    assert first.gap <= target + 1e-9
    if first.gap > OPTIMAL_GAP:        # stopped at the target: said so, never "optimal"
        assert r.status == first.status == "feasible" and any("gap target of" in n for n in r.notes)
    else:
        assert r.status == "optimal"
    if first.lower_bound is not None:  # the bound it reports is proven: never above the optimum
        assert first.lower_bound <= oracle * (1 + 1e-9)
        assert first.value - first.lower_bound <= first.gap * first.value * (1 + 1e-9) + 1e-9


def test_the_oracle_ignores_the_gap(small):
    p, c, oracle = small
    r = solve(p, c, backend="exhaustive", time_limit=600, tie_break=False, gap=0.5)
    assert r.status == "optimal" and r.gap == 0.0 and r.phases[0].value == pytest.approx(oracle, rel=1e-12)
    assert not any("gap target" in n for n in r.notes)


@pytest.mark.parametrize("target", [0.01, 0.05, 0.2])
def test_the_decomposition_stops_within_the_gap_of_its_lagrangian_bound(three, target):
    f = _model(*three)
    bl = decompose.blocks(f)
    assert bl is not None
    start = starting.starting_answer(f)
    hint = start.values if start is not None else None
    exact = decompose.solve(f, bl, 60, hint)
    loose = decompose.solve(f, bl, 60, hint, gap=target)
    oracle = solve(*three, backend="milp", time_limit=60, tie_break=False).phases[0].value   # CBC: not the same code
    assert exact.values is not None and loose.values is not None and oracle is not None
    assert loose.rounds <= exact.rounds
    assert loose.bound <= oracle * (1 + 1e-9)                                # a real bound
    assert loose.value - loose.bound <= target * loose.value                 # within the gap of it
    assert oracle <= loose.value * (1 + 1e-9) <= oracle / (1 - target) * (1 + 1e-9)
    if target == 0.2:        # the start is within it of the first round's bound: no more rounds
        assert loose.rounds == 1 < exact.rounds


def test_the_highs_backend_reports_a_gap_stop_as_feasible_with_its_bound(three):
    exact = get_backend("milp").solve(_model(*three), 60)          # CBC, not the HiGHS code under test
    f = _model(*three)
    sol = get_backend("highs").solve(f, 60, gap=0.2)
    assert exact.status == Status.OPTIMAL and exact.values is not None
    assert sol.status == Status.FEASIBLE and sol.values is not None and sol.bound is not None and sol.gap is not None
    value, best = decompose.value_of(f, sol.values), decompose.value_of(f, exact.values)
    assert OPTIMAL_GAP < sol.gap <= 0.2
    assert sol.gap == pytest.approx((value - sol.bound) / value, rel=1e-9)
    assert sol.bound <= best * (1 + 1e-9) <= value * (1 + 1e-9)


def test_the_fleet_command_says_within_the_gap_never_optimal():
    path = str(ROOT / "instances" / "fleet_three_models.yaml")
    args = ["fleet", path, "--backend", "highs", "--gap", "0.2", "--no-baselines", "--no-marginal"]
    d = json.loads(RUNNER.invoke(app, args + ["--json"]).stdout)
    first = d["phases"][0]
    assert d["status"] == first["status"] == "feasible" and 0 < d["gap"] == first["gap"] <= 0.2
    assert first["lower_bound"] <= first["value"] and any("gap target of 20.00%" in n for n in d["notes"])
    out = RUNNER.invoke(app, args).stdout
    text = " ".join(out.split())       # the terminal's width wraps the lines
    assert f"feasible, within {first['gap']:.2%} of the proven bound" in text and "optimal" not in out.split("\n")[0]


def test_a_schedule_stopped_at_the_gap_is_within_it_of_the_exact_schedule():
    from planner.plan.schedule import prepare as prepare_schedule
    from planner.plan.schedule import solve_prepared
    spec, doc = load_fleet_spec(str(ROOT / "instances" / "schedule_day.yaml"))     # two workloads over a day
    p = prepare_schedule(spec, doc, backend="highs", time_limit=60)
    exact = solve_prepared(p, backend="highs", time_limit=60)
    loose = solve_prepared(p, backend="highs", time_limit=60, gap=0.3)
    assert exact.status == "optimal" and exact.usd_per_cycle is not None and loose.usd_per_cycle is not None
    assert loose.gap is not None and loose.gap <= 0.3 and (loose.status == "feasible") == (loose.gap > OPTIMAL_GAP)
    assert loose.status == "feasible"       # HiGHS stops short of the proof there (passes only with the option used)
    assert exact.usd_per_cycle * (1 - 1e-9) <= loose.usd_per_cycle <= exact.usd_per_cycle / (1 - 0.3)


def test_a_sweep_files_gap_is_checked_where_the_file_says_it_and_honoured(tmp_path):
    base = str(ROOT / "instances" / "sweeps" / "llama8b_base.yaml")
    with pytest.raises(InputError) as e:
        api.sweep({"base": base, "grid": {"demand_multiplier": [1]}, "gap": 1.5})
    assert "gap" in str(e.value.path)
    rows = api.sweep({"base": base, "grid": {"demand_multiplier": [1, 2]}, "time_limit_s": 20, "gap": 0.3}).rows
    exact = api.sweep({"base": base, "grid": {"demand_multiplier": [1, 2]}, "time_limit_s": 20}).rows
    for loose, best in zip(rows, exact):
        assert loose["gap"] is not None and loose["gap"] <= 0.3 and best["status"] == "optimal"
        assert best["cost_per_hour"] * (1 - 1e-9) <= loose["cost_per_hour"] <= best["cost_per_hour"] / (1 - 0.3)


@pytest.mark.parametrize("tail, expected", [
    ("Result - Optimal solution found\n\nObjective value: 8721.0\n", "optimal"),
    ("Result - Optimal solution found (within gap tolerance)\n\nObjective value: 9004.0\nLower bound: 8673.482\n",
     (9004.0, 8673.482)),
    ("Result - Optimal solution found (within gap tolerance)\n\nObjective value: 9004.0\n", "stopped"),
    # maximising (PuLP runs CBC with -max): the summary states an upper bound
    ("Result - Optimal solution found (within gap tolerance)\n\nObjective value: 1634.47\nUpper bound: 1717.87\n",
     (1634.47, 1717.87)),
    ("Result - Stopped on time limit\n\nObjective value: 9004.0\nLower bound: 8673.482\n", (9004.0, 8673.482)),
    ("", None),                                                        # a log truncated before its summary
    ("Objective value: 9004.0\nLower bound: 8673.482\n", None),        # no result line: nothing is stated
    ("Result - Optimal solution found (within gap tolerance)\n\nObjective value: 9004,0\nLower bound: 8673,4\n",
     "stopped"),                                                       # numbers it cannot read: no gap
    ("Result - Stopped on time limit\n\nObjective value: 9004.0\n", None),
])
def test_cbcs_log_gives_the_gap_it_stopped_at_and_never_a_proof_it_does_not_state(tmp_path, tail, expected):
    from planner.backends.milp import _reached
    log = tmp_path / "cbc.log"
    log.write_text("Cbc0010I After 0 nodes\n" + tail)
    assert _reached(str(log)) == expected


def test_a_cbc_run_at_a_gap_whose_log_states_nothing_is_never_optimal(small, monkeypatch):
    """PuLP calls a CBC run stopped at the gap target optimal: without its log's summary (absent,
    truncated, unread) the answer is feasible with its gap unknown, never a proof not stated."""
    from planner.backends import milp
    p, c, oracle = small
    monkeypatch.setattr(milp, "_reached", lambda log: None)
    r = solve(p, c, backend="milp", time_limit=60, tie_break=False, gap=0.05)
    assert r.status == r.phases[0].status == "feasible" and r.gap is None
    assert r.phases[0].value == pytest.approx(oracle, rel=1e-6)
    monkeypatch.undo()
    assert solve(p, c, backend="milp", time_limit=60, tie_break=False, gap=0.05).status == "optimal"


@pytest.mark.parametrize("backend", ("milp", "cpsat"))
def test_cbc_and_cpsat_stop_at_a_loose_gap_and_say_so(small, backend):
    """The target reaches the solver: at 90 % both stop short of the proof on the small fleet (the
    test above passes with the option ignored; this one does not), within it of the oracle."""
    p, c, oracle = small
    r = solve(p, c, backend=backend, time_limit=60, tie_break=False, gap=0.9)
    first = r.phases[0]
    assert r.status == first.status == "feasible" and first.gap is not None and OPTIMAL_GAP < first.gap <= 0.9
    assert oracle * (1 - 1e-9) <= first.value <= oracle / (1 - 0.9)


@pytest.mark.parametrize("backend", ("milp", "highs"))
def test_a_maximised_objective_stopped_at_the_gap_reports_its_gap_and_no_lower_bound(backend):
    """served_demand is maximised (fleet_budget_priority.yaml): CBC's summary states an upper
    bound; the gap reported is (bound - value) / value, the optimum (HiGHS, exact) within it;
    the solver's upper bound is not given as the phase's lower_bound (HiGHS's is 1.0, above the
    value: as a lower bound it read as a contradiction)."""
    spec, doc = load_fleet_spec(str(ROOT / "instances" / "fleet_budget_priority.yaml"))
    _, p, c = prepare(spec, doc)
    best = solve(p, c, backend="highs", time_limit=60, tie_break=False).phases[0].value
    r = solve(p, c, backend=backend, time_limit=60, tie_break=False, gap=0.3)
    first = r.phases[0]
    assert best is not None and first.value is not None and first.status == "feasible" and first.gap is not None
    assert first.value <= best * (1 + 1e-9) and first.lower_bound is None
    assert best - first.value <= first.gap * first.value * (1 + 1e-9) + 1e-12       # the optimum within the gap


def test_a_marginal_value_around_an_answer_stopped_at_the_gap_compares_optima(three):
    """The value of one more unit of a binding limit is an exact re-solve less the optimum, not
    less the answer stopped at the gap: its distance from the optimum is no limit's worth."""
    from planner.whatif.marginal import marginal_values
    p, c = three
    exact = solve(p, c, backend="highs", time_limit=60, tie_break=False)
    worths = marginal_values(p, c, exact, "highs", 60)
    assert worths and exact.status == "optimal" and exact.phases[0].value is not None   # the H100s bind
    stopped = replace(exact, phases=[replace(exact.phases[0], status="feasible", value=exact.phases[0].value * 1.25,
                                             gap=0.2)])
    again = marginal_values(p, c, stopped, "highs", 60, gap=0.2)
    assert [(m.limit, m.gpu, m.value) for m in again] == [(m.limit, m.gpu, m.value) for m in worths]
    assert [m.improvement for m in again] == pytest.approx([m.improvement for m in worths], abs=1e-9)
