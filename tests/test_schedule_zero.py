"""A demand profile whose demand falls to zero in some periods (docs/workloads.md, "Demand
over time: schedules"): a workload off in a period needs no replica there, so a service off
at night scales to zero; a zero period costs no more than the same period at any positive
demand; a profile with no demand in any period is a located error; the output shows such a
period without a division by zero. The oracle agreement on zero periods is in
tests/test_schedule.py (SMALL)."""

from __future__ import annotations

import json
import math
import re

import pytest
from test_schedule import CHAT, DAY, LOOSE, OFF, SEARCH, _fleet

from planner.cli.root import main
from planner.errors import InputError
from planner.plan.schedule import schedule


def _off(profile: list[dict], **over) -> object:
    return _fleet(workloads=({**CHAT, "demand": {"requests_per_s": 60, "profile": profile}},), **over)


def test_a_workload_off_at_night_runs_no_replica_there_and_the_night_costs_only_what_is_owned():
    r = schedule(_off(OFF), backend="highs")
    night = r.periods[0]
    assert night.requests_per_s == {"chat": 0.0}
    assert night.deployments == [] and night.gpus_serving == {}
    assert night.gpus_held == {"h100-sxm": 1}         # owned: held (and paid) all day
    assert night.usd_per_hour == pytest.approx(0.8)
    assert r.per_period_optima.usd_per_hour[0] == 0.0  # on its own the night needs nothing
    assert min(a.min_replicas for a in r.autoscaler) == 0


@pytest.mark.parametrize("over", [{}, {"schedule": {"startup_periods": 1, "usd_per_gpu_started": 1.0}},
                                  {"limits": {}, "schedule": {"committed": ["l40s"]}}], ids=str)
@pytest.mark.parametrize("night", [0.1, 0.25, 0.6])
def test_a_zero_period_costs_no_more_than_the_same_period_at_any_positive_demand(over, night):
    zero = schedule(_off(OFF, **over), backend="highs")
    some = schedule(_off([{"hours": 8, "multiplier": night}, DAY[1], DAY[2]], **over), backend="highs")
    assert zero.status == some.status == "optimal"
    assert zero.usd_per_cycle is not None and some.usd_per_cycle is not None
    assert zero.usd_per_cycle <= some.usd_per_cycle * (1 + 1e-9)
    for r in (zero, some):        # the metamorphic bounds hold with the zero period too
        assert r.per_period_optima.usd_per_cycle <= r.usd_per_cycle * (1 + 1e-9) + 1e-9
        assert r.usd_per_cycle <= r.static.usd_per_cycle * (1 + 1e-9) + 1e-9
    assert zero.static.usd_per_cycle == pytest.approx(some.static.usd_per_cycle)     # the peak is the same


def test_a_period_where_every_workload_is_off_holds_nothing_rented():
    r = schedule(_off(OFF, limits={}), backend="highs")
    assert r.periods[0].gpus_held == {} and r.periods[0].usd_per_hour == 0.0
    assert r.saving_vs_static is not None and r.saving_vs_static > 0


def test_a_zero_periods_own_slo_is_vacuous_and_adds_no_slo_case():
    strict = {"ttft_ms": {"p99": 1}, "tpot_ms": 1}       # nothing meets it: it would be infeasible with demand
    a = schedule(_off([{**OFF[0], "slo": strict}, DAY[1], DAY[2]]), backend="highs")
    b = schedule(_off(OFF), backend="highs")
    assert a.status == "optimal" and a.usd_per_cycle == pytest.approx(b.usd_per_cycle)
    assert a.static.usd_per_cycle == pytest.approx(b.static.usd_per_cycle)
    assert "one table per SLO case" not in a.model


def test_a_plan_of_a_profile_with_a_zero_period_is_planned_at_its_busiest_period(tmp_path, capsys):
    f = tmp_path / "off.yaml"
    f.write_text(json.dumps({"workloads": [{**CHAT, "demand": {"requests_per_s": 60, "profile": [
        {**OFF[0], "slo": LOOSE}, *OFF[1:]]}}], "search": SEARCH, "prices": {"usd_per_gpu_hour": {
            "h100-sxm": 2.5, "l40s": 0.9}}}))
    with pytest.raises(SystemExit) as e:
        main(["fleet", str(f), "--json"])
    assert e.value.code == 0
    assert "planned at its busiest period, period 2 of 3" in capsys.readouterr().out


@pytest.mark.parametrize("profile", [
    [{"hours": 12, "multiplier": 0}, {"hours": 12, "requests_per_s": 0}],
    [{"hours": 24, "output_tokens_per_s": 0}],
])
def test_a_profile_without_demand_in_any_period_is_a_located_error(profile):
    with pytest.raises(InputError) as e:
        schedule(_off(profile), backend="highs")
    assert e.value.path == "workloads[0].demand.profile" and "every period's demand is zero" in str(e.value)


def test_the_second_workload_off_all_day_is_located_at_it():
    other = {**CHAT, "name": "b", "demand": {"requests_per_s": 5, "profile": [{**p, "multiplier": 0} for p in DAY]}}
    with pytest.raises(InputError) as e:
        schedule(_fleet(workloads=(CHAT, other)), backend="highs")
    assert e.value.path == "workloads[1].demand.profile"


@pytest.mark.parametrize("period", [{"hours": 8, "multiplier": -0.5}, {"hours": 8, "requests_per_s": -1},
                                    {"hours": 8, "output_tokens_per_s": float("nan")},
                                    {"hours": 8, "multiplier": float("inf")}], ids=str)
def test_negative_and_nan_rates_are_still_refused_where_the_file_says_it(tmp_path, capsys, period):
    f = tmp_path / "bad.yaml"
    bad = [period, *DAY[1:]]
    f.write_text(json.dumps({"workloads": [{**CHAT, "demand": {"requests_per_s": 60, "profile": bad}}],
                             "search": SEARCH, "prices": {"usd_per_gpu_hour": {"h100-sxm": 2.5}}}).replace(
        "NaN", ".nan").replace("Infinity", ".inf"))
    with pytest.raises(SystemExit) as e:
        main(["schedule", str(f), "--json"])
    assert e.value.code == 2
    err = json.loads(capsys.readouterr().out)
    assert err["path"].startswith("workloads[0].demand.profile[0]")
    assert err["accepted"] == (">= 0.0" if period.get("multiplier", 0) < 0 or period.get("requests_per_s", 0) < 0
                               else "a finite number")


def test_a_traces_empty_bin_is_a_period_off(tmp_path):
    """A trace with no request in its middle third: three bins give a zero middle period."""
    f = tmp_path / "gap.csv"
    stamps = [f"2023-11-16 00:{m:02d}:{s:02d}.0" for m in range(0, 10) for s in (0, 30)] + \
             [f"2023-11-16 00:{m:02d}:{s:02d}.0" for m in range(20, 30) for s in (0, 30)]
    f.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + "".join(f"{t},512,128\n" for t in stamps))
    traced = {"name": "gap", "model": "llama-3.1-8b", "trace": str(f), "slo": CHAT["slo"],
              "demand": {"requests_per_s": 20, "profile": {"periods": 3, "hours": 24}}}
    r = schedule(_fleet(workloads=(traced,)), backend="highs")
    assert [round(p.requests_per_s["gap"], 6) for p in r.periods] == [20.0, 0.0, 20.0]
    assert r.periods[1].deployments == [] and r.per_period_optima.usd_per_hour[1] == 0.0


def test_the_output_shows_a_zero_period_without_dividing_by_zero(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")      # the table's cells unwrapped, whatever ran before
    f = tmp_path / "off.yaml"
    f.write_text(json.dumps({"workloads": [{**CHAT, "demand": {"requests_per_s": 60, "profile": OFF}}],
                             "search": SEARCH, "prices": {"usd_per_gpu_hour": {"h100-sxm": 2.5, "l40s": 0.9}}}))
    with pytest.raises(SystemExit) as e:
        main(["schedule", str(f), "--json", "--reproducible"])
    assert e.value.code == 0
    data = json.loads(capsys.readouterr().out)
    night = data["periods"][0]
    assert night["requests_per_s"] == {"chat": 0.0} and night["deployments"] == [] and night["usd_per_hour"] == 0.0

    def finite(x) -> bool:
        if isinstance(x, float):
            return math.isfinite(x)
        if isinstance(x, dict):
            return all(finite(v) for v in x.values())
        if isinstance(x, list):
            return all(finite(v) for v in x)
        return True
    assert finite(data)
    with pytest.raises(SystemExit):
        main(["schedule", str(f)])
    text = capsys.readouterr().out
    assert "chat: off (no demand)" in text and not re.search(r"\b(nan|inf)\b", text.lower())


def test_a_zero_periods_slo_is_no_target_even_where_every_period_with_demand_states_another():
    """The workload's own SLO, stricter than every period with demand states, is no target:
    the zero period adds no SLO case, no target to the static fleet's table, and none to the
    fleet `planner plan` and `planner fleet` size at the busiest period (they were sized under
    the workload's own SLO, which no period with demand asks for)."""
    from planner.resolve.problem import resolve_fleet
    from planner.resolve.schedule import at_peak, resolve_periods
    from planner.schemas.slo import Slo
    strict = {"ttft_ms": {"p99": 20}, "tpot_ms": 5}
    spec = _fleet(workloads=({**CHAT, "slo": strict, "demand": {"requests_per_s": 60, "profile": [
        {**OFF[0], "slo": LOOSE}, {**DAY[1], "slo": LOOSE}, {**DAY[2], "slo": LOOSE}]}},), limits={})
    problem = resolve_fleet(spec)
    loose = Slo.model_validate(LOOSE)
    assert at_peak(spec, problem).slots[0].slo == loose
    periods = resolve_periods(spec, problem)
    assert periods.cases() == (0, 0, 0)
    assert periods.strictest()[0].slo == loose


def test_an_off_workload_shows_no_target_in_its_zero_period(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")      # the table's cells unwrapped, whatever ran before
    """The table and the JSON gave an off workload its own SLO as the targets it meets in its
    zero period (TTFT p99 20 ms, which nothing meets and the file did not state there)."""
    strict = {"ttft_ms": {"p99": 20}, "tpot_ms": 5}
    f = tmp_path / "off.yaml"
    f.write_text(json.dumps({"workloads": [{**CHAT, "slo": strict, "demand": {"requests_per_s": 60, "profile": [
        {**OFF[0], "slo": LOOSE}, {**DAY[1], "slo": LOOSE}, {**DAY[2], "slo": LOOSE}]}}], "search": SEARCH,
        "prices": {"usd_per_gpu_hour": {"h100-sxm": 2.5, "l40s": 0.9}}}))
    with pytest.raises(SystemExit) as e:
        main(["schedule", str(f), "--json", "--backend", "highs"])
    assert e.value.code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "optimal" and data["periods"][0]["slo"] == {}
    assert data["periods"][1]["slo"]["chat"]["tpot_ms"] == 80.0
    with pytest.raises(SystemExit):
        main(["schedule", str(f), "--backend", "highs"])
    text = capsys.readouterr().out
    assert "chat: off (no demand)" in text and "p99 20 ms" not in text and "┃ SLO" not in text
