"""One time limit for a whole command (planner/whatif/budget.py, docs/whatif.md "One time
limit"): ``--time-limit`` is the seconds for all solves together, so the what-ifs after the
answer (the simulator's check, marginal values, the disaggregation verdicts, the smallest
relaxations) run only in what the answer's solve left, each in its share, and each cut short
says so (``PlanResult.unfinished``) instead of going missing or reading as proven.

No assertion reads a duration: the budget's clock is replaced by one that stands still but
for the answer's solve, which it sees take as long as a test says, and the solves the what-ifs
start are recorded with the time limits they are given; what is checked is that each ends by
the command's deadline on that clock."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from planner.catalog.store import Catalog
from planner.cli.root import app
from planner.schemas.fleet import FleetSpec
from planner.schemas.plan import PlanSpec

RUNNER = CliRunner()
LIMIT = 60.0
START = 1000.0
POOLED = {"workloads": [{"name": "long", "model": "llama-3.1-70b", "input_tokens": 4096, "output_tokens": 256,
                         "demand": {"requests_per_s": 4}, "slo": {"ttft_ms": {"p99": 3000}, "tpot_ms": {"p99": 20}}}],
          "search": {"gpus": ["h100-sxm"], "quantizations": ["w8a8-fp8"], "kv_dtypes": ["fp8"], "tp": [2, 4],
                     "pp": [1], "batch_levels": [64]},
          "disaggregation": "auto", "max_configurations_per_workload": 1,
          "prices": {"usd_per_gpu_hour": {"h100-sxm": Catalog.default().gpu("h100-sxm").price_usd_per_gpu_hour}},
          "limits": {"inventory": {"h100-sxm": 8}}}
"""A fleet whose answer binds its inventory (one marginal value) and that may run pools (one
verdict): both what-ifs re-solve."""
INFEASIBLE = {"schema_version": 1, "model": "llama-3.1-8b", "workload": {"input_tokens": 512, "output_tokens": 128},
              "slo": {"tpot_ms": 1},
              "search": {"gpus": ["h100-sxm"], "quantizations": ["w16a16"], "kv_dtypes": ["bf16"], "tp": [1, 2],
                         "pp": [1], "max_batch": 64},
              "limits": {"budget_usd_per_hour": 5}}
"""No plan meets a 1 ms TPOT: the relaxations re-solve."""


def _answer_takes(monkeypatch, seconds: float) -> list[tuple[str, float, float]]:
    """The budget's clock stands at ``START`` but for the answer's solve, which it sees take
    ``seconds``; every solve a what-if starts is recorded as (what-if, the clock at its start,
    its time limit)."""
    import planner.whatif.answer as A
    import planner.whatif.budget as B
    import planner.whatif.marginal as M
    import planner.whatif.modes as D
    import planner.whatif.relax as R

    late = [0.0]
    calls: list[tuple[str, float, float]] = []
    monkeypatch.setattr(B, "clock", lambda: START + late[0])
    real_solve = A.solve

    def solve(*a, **k):
        r = real_solve(*a, **k)
        late[0] = seconds
        return r

    monkeypatch.setattr(A, "solve", solve)
    # the marginal values' and the verdicts' solves both go through ``budget.proven``: told
    # apart by the module that called it
    callers = {M.__name__: "marginal", D.__name__: "disaggregation"}
    for what, module, name in ((None, B, "solve_phases"), ("relaxations", R, "plan"),
                               ("verification", A, "verify")):
        real = getattr(module, name)

        def wrap(*a, _real=real, _what=what, **k):
            who = _what or callers[sys._getframe(2).f_globals["__name__"]]   # wrap <- proven <- caller
            calls.append((who, B.clock(), k["time_limit"]))
            return _real(*a, **k)

        monkeypatch.setattr(module, name, wrap)
    return calls


def _ends_by_the_deadline(calls: list[tuple[str, float, float]]) -> None:
    """Each what-if's solve (or the verification, as one) ends by the command's deadline: the
    answer's solve start plus the limit."""
    for what, at, limit in calls:
        assert at + limit <= START + LIMIT + 1e-9, (what, limit, START + LIMIT - at)


def test_the_what_ifs_share_what_the_answer_left(monkeypatch):
    """20 s left of 60: the marginal values and the verdicts each re-solve, every solve ending
    by the deadline (before: each was given the whole 60 s), and the first of the two gets no
    more than half of what was left (an equal share; the second gets what remains)."""
    from planner.whatif.answer import answer

    calls = _answer_takes(monkeypatch, LIMIT - 20.0)
    r = answer(FleetSpec.model_validate(POOLED), backend="milp", time_limit=LIMIT, marginal=True)
    assert r.plans and {w for w, _, _ in calls} == {"marginal", "disaggregation"}
    _ends_by_the_deadline(calls)
    assert [limit for what, _, limit in calls if what == "marginal"] == [pytest.approx(10.0)]
    assert [limit for what, _, limit in calls if what == "disaggregation"] == [pytest.approx(20.0)] * 2


def test_the_simulator_check_shares_it_too(monkeypatch):
    """The simulator's check of rank 1 is given its share of what the answer left, not a
    whole limit of its own."""
    from planner.whatif.answer import answer

    calls = _answer_takes(monkeypatch, LIMIT - 20.0)
    r = answer(FleetSpec.model_validate(POOLED), backend="milp", time_limit=LIMIT, marginal=True, simulate=True)
    assert r.plans and [w for w, _, _ in calls][0] == "verification"
    _ends_by_the_deadline(calls)
    assert calls[0][2] == pytest.approx(20.0 / 3)          # three what-ifs waiting: a third of what was left


def test_the_relaxations_share_what_the_answer_left(monkeypatch):
    from planner.whatif.answer import answer

    calls = _answer_takes(monkeypatch, LIMIT - 20.0)
    r = answer(PlanSpec.model_validate(INFEASIBLE), backend="cpsat", time_limit=LIMIT)
    assert r.status == "infeasible" and calls and {w for w, _, _ in calls} == {"relaxations"}
    _ends_by_the_deadline(calls)


def test_no_time_left_every_what_if_says_it_is_not_finished(monkeypatch):
    """The answer's solve used the whole limit: the answer stands as solved, no what-if starts
    a solve, and each says what it does not state (never an empty list read as 'nothing
    binds', nor a verdict or a relaxation read from a solve the limit stopped)."""
    from planner.whatif.answer import answer

    calls = _answer_takes(monkeypatch, LIMIT + 1.0)
    r = answer(FleetSpec.model_validate(POOLED), backend="milp", time_limit=LIMIT, marginal=True, simulate=True)
    assert r.plans and r.status == "optimal"
    assert [w for w, _, _ in calls] == ["verification"] and calls[0][2] == 0.0
    assert r.verification is not None and (r.verification.status, r.verification.stopped) == ("not_checked",
                                                                                               "time_limit")
    assert not r.marginal and not r.disaggregation
    assert [(u.whatif, u.seconds, u.left) for u in r.unfinished] == [
        ("marginal", 0.0, ["limits.inventory.h100-sxm"]), ("disaggregation", 0.0, ["long"])]

    calls = _answer_takes(monkeypatch, LIMIT + 1.0)
    r = answer(PlanSpec.model_validate(INFEASIBLE), backend="cpsat", time_limit=LIMIT)
    assert r.status == "infeasible" and not r.relaxations and not calls
    assert [(u.whatif, u.left) for u in r.unfinished] == [
        ("relaxations", ["slo.tpot_ms", "limits.budget_usd_per_hour", "search.quantizations"])]


def _file(tmp_path: Path, data: dict) -> Path:
    f = tmp_path / "i.yaml"
    f.write_text(yaml.safe_dump(data))
    return f


def test_the_commands_say_what_the_time_limit_cut_short(tmp_path, monkeypatch):
    """Through the CLI: `planner fleet` prints each what-if cut short (text) and lists it
    (--json), the fleet itself as solved (exit 0); `planner plan` on an infeasible instance
    says its relaxations are not finished rather than listing none (exit 1)."""
    _answer_takes(monkeypatch, LIMIT + 1.0)
    fleet = _file(tmp_path, POOLED)
    res = RUNNER.invoke(app, ["fleet", str(fleet), "--backend", "milp", "--time-limit", str(LIMIT)])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "NOT FINISHED within --time-limit (no time was left for it): the worth of one more unit of each binding " \
           "limit is not stated for limits.inventory.h100-sxm" in text
    assert "aggregated against disaggregated serving is not stated for long" in text

    _answer_takes(monkeypatch, LIMIT + 1.0)
    res = RUNNER.invoke(app, ["fleet", str(fleet), "--backend", "milp", "--time-limit", str(LIMIT), "--json",
                              "--marginal"])
    data = json.loads(res.output)
    assert res.exit_code == 0 and data["marginal"] == [] and data["disaggregation"] == []
    assert [u["whatif"] for u in data["unfinished"]] == ["marginal", "disaggregation"]

    _answer_takes(monkeypatch, LIMIT + 1.0)
    res = RUNNER.invoke(app, ["plan", str(_file(tmp_path, INFEASIBLE)), "--time-limit", str(LIMIT)])
    assert res.exit_code == 1, res.output
    text = " ".join(res.output.split())
    assert ("the smallest change to each limit is not stated for slo.tpot_ms, limits.budget_usd_per_hour, "
            "search.quantizations") in text


@pytest.mark.parametrize("left,waiting,share", [(20.0, 2, 10.0), (1.5, 3, 1.0), (0.4, 2, 0.4), (0.0, 1, 0.0)])
def test_a_share_is_equal_with_a_floor_within_what_is_left(monkeypatch, left, waiting, share):
    import planner.whatif.budget as B

    now = [100.0]
    monkeypatch.setattr(B, "clock", lambda: now[0])
    b = B.Budget(LIMIT)
    now[0] += LIMIT - left
    assert b.share(waiting) == pytest.approx(share)


def test_reproducible_leaves_out_each_share_and_the_report_still_reads_it(tmp_path, monkeypatch):
    """--reproducible promises no seconds anywhere: a what-if's share is what the answer's solve
    left, so it differs run to run (infeasible_slo.yaml at --time-limit 1: 0.42 s, then 0.32 s)
    and is left out like the phases' seconds; `planner report` of that file still words it."""
    _answer_takes(monkeypatch, LIMIT - 0.5)
    import planner.whatif.relax as R

    monkeypatch.setattr(R, "plan", lambda *a, **k: (_ for _ in ()).throw(R.OutOfTime()))   # each search cut short
    out = tmp_path / "r.json"
    res = RUNNER.invoke(app, ["plan", str(_file(tmp_path, INFEASIBLE)), "--time-limit", str(LIMIT), "--json",
                              "--reproducible", "--output", str(out)])
    assert res.exit_code == 1, res.output
    data = json.loads(res.output)
    assert [(u["whatif"], u["seconds"]) for u in data["unfinished"]] == [("relaxations", None)]
    html = tmp_path / "r.html"
    res = RUNNER.invoke(app, ["report", str(out), "--out", str(html)])
    assert res.exit_code == 0, res.output
    assert "NOT FINISHED within --time-limit: the smallest change to each limit is not stated" in html.read_text()


def test_no_binding_limit_with_a_value_no_marginal_solve_and_nothing_unfinished(monkeypatch):
    """An answer stopped at a --gap target that binds no limit with a marginal value: nothing
    to compare, so no exact solve of the limits as they are (asked() gave it no share) and no
    `unfinished` entry that states nothing ("is not stated for ;")."""
    import planner.whatif.marginal as M
    from planner.plan.solve import prepare, solve

    spec, problem, cands = prepare(FleetSpec.model_validate(POOLED))
    r = solve(problem, cands, backend="milp", top_k=1, time_limit=LIMIT)
    r.phases[0].status = "feasible"          # as a --gap answer not proven optimal
    r.answers[0].binding = []
    solves: list[float] = []
    import planner.whatif.budget as B
    monkeypatch.setattr(B, "solve_phases", lambda *a, **k: solves.append(k["time_limit"]))
    assert M.marginal_values(problem, cands, r, "milp", 0.0, gap=0.01) == []
    assert not solves and r.unfinished == []


BUDGET_BOUND = {"schema_version": 1, "model": "llama-3.1-8b",
                "workload": {"input_tokens": 512, "output_tokens": 128, "demand": {"requests_per_s": 20}},
                "slo": {"tpot_ms": 50},
                "search": {"gpus": ["h100-sxm"], "quantizations": ["w16a16"], "kv_dtypes": ["bf16"], "tp": [1, 2],
                           "pp": [1], "max_batch": 64},
                "limits": {"budget_usd_per_hour": 1}}
"""Infeasible by its budget alone: the budget's relaxation solves for the least cost first."""


def test_a_relaxation_reads_no_bound_from_a_solve_the_limit_stopped(monkeypatch):
    """The budget's relaxation starts from the least cost with the budget lifted; a lifted solve
    the time limit stopped at a worse plan (feasible, not proven) is no lower bound, so the
    search still finds the smallest budget ($2.95/hour), not one near the unproven plan's cost
    (before: $8.85, read as the smallest change)."""
    import planner.whatif.relax as R

    spec = PlanSpec.model_validate(BUDGET_BOUND)
    exact = {x.limit: x.needed for x in R.relaxations(spec, None, backend="cpsat", time_limit=LIMIT)}
    real = R.plan

    def stopped_at_a_worse_plan(s, *a, **k):
        r = real(s, *a, **k)
        if s.objective == "cost_per_hour" and r.plans:        # the lifted solve
            r.phases[0].status = "feasible"
            for p in r.plans:
                p.cost_per_hour = 3 * (p.cost_per_hour or 0.0)
        return r

    monkeypatch.setattr(R, "plan", stopped_at_a_worse_plan)
    cut = {x.limit: x.needed for x in R.relaxations(spec, None, backend="cpsat", time_limit=LIMIT)}
    assert exact["limits.budget_usd_per_hour"] == pytest.approx(2.95)
    assert cut["limits.budget_usd_per_hour"] == exact["limits.budget_usd_per_hour"]


def test_the_ranks_left_unsimulated_are_listed(monkeypatch):
    """`planner plan` re-scores every rank by simulation (on by default) inside the simulator's
    check: with no time left, no rank is simulated, and `unfinished` names each (before: an
    empty list, the text silently dropping every 'simulated' line)."""
    from planner.whatif.answer import answer

    _answer_takes(monkeypatch, LIMIT + 1.0)
    spec = PlanSpec.model_validate({**INFEASIBLE, "slo": {"tpot_ms": 50}})
    r = answer(spec, backend="cpsat", time_limit=LIMIT, simulate=True)
    assert r.plans and all(p.simulation is None for p in r.plans)
    assert [(u.whatif, u.seconds, u.left) for u in r.unfinished] == [
        ("simulation", 0.0, [r.label(p) for p in r.plans])]


def test_reproducible_text_states_no_share(monkeypatch):
    """A what-if's share is a duration: --reproducible leaves it out of the text as of the JSON
    (before: only the JSON's copy was stripped, the text said 'its share was 5 s')."""
    from planner.cli.common import without_timings
    from planner.cli.render import render_plans
    from planner.whatif.answer import answer

    _answer_takes(monkeypatch, LIMIT + 1.0)
    r = answer(PlanSpec.model_validate(INFEASIBLE), backend="cpsat", time_limit=LIMIT)
    r.unfinished[0].seconds = 5.0
    assert "its share was 5" in " ".join(render_plans(r).split())
    without_timings(r)
    text = " ".join(render_plans(r).split())
    assert "its share was" not in text and "searched in" not in text
    assert "the smallest change to each limit is not stated for slo.tpot_ms" in text
