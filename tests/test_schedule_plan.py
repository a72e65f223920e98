"""`planner plan` and `planner fleet` of a profile whose periods state their own SLOs
(docs/workloads.md section 8, planner/resolve/schedule.py ``at_peak``): the fleet the instance
must run all day is the schedule's static fleet (constraints/schedule_static.py), the cheapest
single fleet serving every period at its own demand and SLO, not the plan at the busiest
period, which a quieter period with a stricter SLO can leave short. By hand where the quiet
night's SLO binds; every backend against the oracle; without per-period SLOs today's figures
(metamorphic)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import yaml
from test_schedule import CHAT, LINEAR, RENTED, SEARCH, _fleet, _plan
from test_schedule_static import SMALL, STRICT
from typer.testing import CliRunner

from planner.candidates.schedule import period_tables
from planner.candidates.table import build_candidates, with_objective
from planner.cli.root import app
from planner.plan.schedule import schedule, static_rank
from planner.plan.solve import plan, prepare, solve_static
from planner.resolve.problem import resolve, resolve_fleet
from planner.resolve.schedule import resolve_periods
from planner.schemas.plan import PlanSpec

NIGHT_STRICT = [{"hours": 12, "multiplier": 0.25, "slo": STRICT}, {"hours": 12, "multiplier": 1.0}]
"""A night at 7.8 requests/s (1,000 output tokens/s) under TPOT <= 12 ms, a day at 31.25
(4,000) under the workload's TPOT <= 40 ms."""
DEMAND = {"requests_per_s": 31.25, "profile": NIGHT_STRICT}
H100, L40S = "gpu=h100-sxm,tp=1,pp=1,ep=1,q=w8a8-fp8,kv=fp8,batch=64", "gpu=l40s,tp=1,pp=1,ep=1,q=w8a8-fp8,kv=fp8,batch=64"


def _night_plan(profile=NIGHT_STRICT, **over) -> PlanSpec:
    return _plan(workload={"input_tokens": 512, "output_tokens": 128,
                           "demand": {**DEMAND, "profile": profile}}, **over)


def _night_fleet(profile=NIGHT_STRICT):
    return _fleet(workloads=({**CHAT, "demand": {**DEMAND, "profile": profile}},), limits={})


def _capacity(c, label: str) -> float:
    rows = [j for j in range(len(c)) if c.label(j).startswith(label)]
    return float(c.capacity[rows[0]]) if rows else 0.0


def _deployments(r) -> list[tuple[str, int, int]]:
    return sorted((p.gpu, p.batch, p.replicas) for p in r.plans if p.rank == 1)


@pytest.mark.parametrize("make", [_night_plan, _night_fleet], ids=["plan", "fleet"])
def test_by_hand_a_quiet_nights_stricter_slo_binds(make):
    """Rented H100 $2.50/h, L40S $0.90/h. By day (4,000 output tokens/s, TPOT 40 ms) an L40S at
    batch 64 serves 2,214 and an H100 6,522: the day alone takes two L40S, $1.80/h, what a plan
    at the busiest period gave. At night (1,000 at TPOT 12 ms) the L40S serves nothing, so the
    fleet run all day needs the H100: one H100 serves both (6,522 >= 4,000 and >= 1,000), $2.50/h
    (two L40S and an H100 would be $4.30): $60 per day, the schedule's static fleet."""
    spec = make()
    problem = resolve_fleet(spec) if make is _night_fleet else resolve(spec)
    t = period_tables(problem, resolve_periods(spec, problem))
    night, day = t.cases
    assert (float(night.demand[0]), float(day.demand[0])) == pytest.approx((1000.0, 4000.0))
    assert _capacity(night, L40S) == 0.0 and _capacity(night, H100) >= 1000.0
    assert 2 * _capacity(day, L40S) >= 4000.0 > _capacity(day, L40S) and _capacity(day, H100) >= 4000.0
    busiest = make([{k: v for k, v in p.items() if k != "slo"} for p in NIGHT_STRICT])
    before = plan(busiest, backend="cpsat", top_k=1)
    assert before.answers[0].totals.cost_per_hour == pytest.approx(1.8, rel=1e-9)
    assert _deployments(before) == [("l40s", 64, 2)]
    for backend in ["exhaustive", *LINEAR]:
        r = plan(spec, backend=backend, top_k=3)
        assert r.status == "optimal", backend
        assert len(r.answers) == 1 and r.answers[0].totals.cost_per_hour == pytest.approx(2.5, rel=1e-9), backend
        assert _deployments(r) == [("h100-sxm", 64, 1)], backend
    assert schedule(spec, backend="milp").static.usd_per_cycle == pytest.approx(2.5 * 24, rel=1e-9)
    note = [n for n in r.notes if ".demand.profile" in n]
    assert len(note) == 1 and "the static fleet" in note[0] and "period 2 of 2" in note[0]


def test_a_static_deployment_whose_batch_the_busiest_table_lacks_is_described_on_a_table_with_it():
    """The static fleet's H100 at batch 64 given a table of batch 32 only (the busiest period's
    table can lack a batch level another SLO case's table adds): the table is built again with
    batch 64 among its levels, and the deployment is its row."""
    spec = _night_plan()
    _, problem, _ = prepare(spec)
    narrow = spec.model_copy(update={"search": spec.search.model_copy(update={"batch_levels": [32]})})
    cands = with_objective(build_candidates(replace(problem, spec=narrow)), "cost_per_hour")
    assert not any(int(b) == 64 for b in cands.configs.batch)
    table, s = static_rank(problem, cands, backend="milp", time_limit=30, objectives=("cost_per_hour",))
    assert table is not cands and [(table.label(j), r) for j, r in s.picks] == [(H100, 1)]
    assert s.values["cost_per_hour"] == pytest.approx(2.5, rel=1e-9)


def test_where_the_busiest_period_binds_the_plan_keeps_its_ranking_and_tie_breaks():
    """The static fleet's hand case (tests/test_schedule_static.py): the night's strict TPOT is
    met by the owned H100 the day needs anyway, so the plan at the busiest period (H100 + L40S,
    $1.70/h) serves every period; it is the answer, with its tie-break phases."""
    spec = _fleet(workloads=({**CHAT, "demand": {"requests_per_s": 60, "profile": [
        {"hours": 12, "multiplier": 0.25, "slo": STRICT}, {"hours": 12, "multiplier": 1.0}]}},))
    r = plan(spec, backend="highs")
    assert r.answers[0].totals.cost_per_hour == pytest.approx(1.7, rel=1e-9)
    assert _deployments(r) == [("h100-sxm", 64, 1), ("l40s", 64, 1)]
    assert [p.kind for p in r.phases][:2] == ["objective", "tie-break"]


@pytest.mark.parametrize("name", ["a strict night", "a strict night, one configuration", "a looser night",
                                  "a strict night, at most 1,100 W", "a strict night, at most 1 GPU (infeasible)"])
def test_every_backend_plans_the_static_fleet_the_oracle_finds(name):
    """plan/fleet of the static fleet's small cases: its $ per cycle is the oracle's static
    fleet's (``schedule_oracle.solve_static``, its own enumeration) on every backend."""
    spec = SMALL[name]
    problem = resolve_fleet(spec)
    t = period_tables(problem, resolve_periods(spec, problem))
    status, _, oracle, _ = solve_static(t, backend="exhaustive", time_limit=120)
    for backend in ["exhaustive", *LINEAR]:
        r = plan(spec, backend=backend, time_limit=60)
        if status.value != "optimal":
            assert r.status == status.value and not r.plans, backend
            continue
        assert r.status == "optimal", backend
        assert r.answers[0].totals.cost_per_hour * t.cycle_hours == pytest.approx(oracle, rel=1e-6), backend


@pytest.mark.parametrize("make", [_night_plan, _night_fleet], ids=["plan", "fleet"])
def test_without_per_period_slos_the_plan_is_todays(make):
    """Metamorphic: a profile whose periods state no SLO, or each the workload's own, is planned
    at the busiest period exactly as the same instance stated at that rate (no static program)."""
    own = {"tpot_ms": 40, "ttft_ms": {"p99": 1500}}
    flat = make([{k: v for k, v in p.items() if k != "slo"} for p in NIGHT_STRICT])
    stated = make([{**{k: v for k, v in p.items() if k != "slo"}, "slo": own} for p in NIGHT_STRICT])
    at_rate = make([{"hours": 24, "multiplier": 1.0}])
    results = []
    for spec in (flat, stated, at_rate):
        _, problem, _ = prepare(spec)
        assert problem.periods is None
        results.append(plan(spec, backend="cpsat", top_k=2))
    want = [(a.totals.cost_per_hour, a.totals.gpus) for a in results[2].answers]
    for r in results[:2]:
        assert [(a.totals.cost_per_hour, a.totals.gpus) for a in r.answers] == want
        assert _deployments(r) == _deployments(results[2])
        assert [p.objective for p in r.phases] == [p.objective for p in results[2].phases]
    assert "the fleet a static plan runs all day" in results[0].notes[0]


def test_beyond_the_schedules_program_the_plan_meets_every_periods_targets_at_the_peak():
    """With search.max_nodes (which the schedule's program does not pack) the plan is sized at
    the busiest rate under every target any period states (TPOT 12 ms, TTFT p99 500 ms): a fleet
    serving every period, said not to be proven the cheapest; here the H100 as by hand."""
    spec = _night_plan(search={**SEARCH, "max_nodes": 4})
    _, problem, _ = prepare(spec)
    assert problem.periods is None and problem.slots[0].slo.tpot_ms.mean == 12.0
    r = plan(spec, backend="cpsat", top_k=1)
    assert _deployments(r) == [("h100-sxm", 64, 1)]
    assert "under every target its periods state" in r.notes[0] and "not proven the cheapest" in r.notes[0]


def test_the_cli_says_the_plan_is_the_static_fleet(tmp_path):
    """`planner plan FILE` of the hand case: the H100 in the JSON, the note in the text."""
    path = tmp_path / "night.yaml"
    data = _night_plan().model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    path.write_text(yaml.safe_dump({"schema_version": 1, **data, "prices": RENTED}, sort_keys=False))
    runner = CliRunner()
    text = runner.invoke(app, ["plan", str(path), "--no-simulate"], terminal_width=400)
    out = runner.invoke(app, ["plan", str(path), "--no-simulate", "--json"])
    assert text.exit_code == 0 and out.exit_code == 0, text.output + out.output
    got = json.loads(out.output)
    assert [(p["gpu"], p["batch"], p["replicas"]) for p in got["plans"]] == [("h100-sxm", 64, 1)]
    note = next(n for n in got["notes"] if n.startswith("workload.demand.profile"))
    assert "the static fleet" in note and note in " ".join(text.output.split())
