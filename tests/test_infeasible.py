"""Infeasible instances explain themselves; each minimal relaxation, applied to the file,
gives a feasible plan, and a hair less of it does not (issue 4)."""

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from planner.cli.root import app
from planner.plan import solve as solve_module  # rank_one is looked up there
from planner.plan.result import PlanResult
from planner.report import wording
from planner.whatif.relax import apply_patch

ROOT = Path(__file__).resolve().parents[1]
RUNNER = CliRunner()
INFEASIBLE = sorted((ROOT / "instances").glob("infeasible_*.yaml"))


def run_plan(path, *args):
    r = RUNNER.invoke(app, ["plan", str(path), "--json", *args])
    return r.exit_code, json.loads(r.stdout) if r.stdout.strip() else None


@pytest.fixture(scope="module", params=INFEASIBLE, ids=lambda p: p.stem)
def infeasible(request):
    code, result = run_plan(request.param)
    assert code == 1 and result["status"] == "infeasible" and not result["plans"]
    return request.param, result


def test_diagnosis_names_each_family_in_figures(infeasible):
    _, result = infeasible
    assert result["diagnosis"], "no diagnosis"
    for d in PlanResult.from_dict(result).diagnosis:
        assert d.fact.constraint in {"memory", "tpot", "ttft", "e2e_latency", "limits", "search"}
        assert d.fact.value is not None and d.fact.limit is not None     # a fact carries its figures
        assert any(ch.isdigit() for ch in wording.diagnosis(d))


def test_some_relaxation_makes_it_feasible(infeasible):
    _, result = infeasible
    assert any(x["patch"] for x in result["relaxations"])


def test_each_relaxation_applied_gives_a_plan_and_is_minimal(infeasible, tmp_path):
    path, result = infeasible
    data = yaml.safe_load(path.read_text())
    for x in result["relaxations"]:
        if not x["patch"]:
            continue
        fixed = tmp_path / "fixed.yaml"
        fixed.write_text(yaml.safe_dump(apply_patch(data, x["patch"])))
        code, out = run_plan(fixed)
        assert code == 0 and out["plans"], x["limit"]
        tighter = _just_below(x, data)
        if tighter is not None:
            less = tmp_path / "less.yaml"
            less.write_text(yaml.safe_dump(apply_patch(data, tighter)))
            assert run_plan(less)[0] == 1, f"{x['limit']} is not minimal"


def _just_below(x, data):
    plan, limit = x["plan"], x["limit"]
    if limit.startswith("slo."):          # needed is rounded up to 0.01 ms (TPOT, ITL) or 1 ms: one unit less
        key = limit.split(".")[1]
        less = x["needed"] - (0.01 if key in ("tpot_ms", "itl_ms") else 1.0)
        if less <= 0:
            return None
        return {"slo": {key: less}} if limit.count(".") == 1 else {"slo": {key: {limit.split(".")[2]: less}}}
    if limit == "limits.budget_usd_per_hour":
        return {"limits": {"budget_usd_per_hour": plan["cost_per_hour"] * (1 - 1e-6)}}
    if limit.startswith("limits.inventory."):
        gid = limit.split(".", 2)[2]
        return {"limits": {"inventory": {gid: x["needed"] - 1}}}
    if limit == "search.max_gpus":
        return {"search": {"max_gpus": x["needed"] - 1}} if x["needed"] > 1 else None
    return None


def test_ctrl_c_returns_the_plans_found_so_far(monkeypatch):
    calls = {"n": 0}
    real = solve_module.rank_one

    def interrupt_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(solve_module, "rank_one", interrupt_second)
    code, out = run_plan(ROOT / "instances" / "latency_llama8b.yaml")
    assert code == 130 and out["interrupted"] is True and len(out["plans"]) == 1


def test_time_limit_reports_status_without_hanging():
    code, out = run_plan(ROOT / "instances" / "chat_llama70b.yaml", "--time-limit", "0.05", "--top", "1")
    assert out["status"] in {"optimal", "feasible", "time_limit"}
    assert code == (0 if out["plans"] else 1)
    if out["status"] == "feasible":        # a proven gap, or the starting plan, which says it is unproven
        assert (out["gap"] is not None and out["gap"] >= 0) or out["phases"][0]["start"]


def test_reproducible_output_is_byte_identical():
    args = ["plan", str(ROOT / "instances" / "deepseek_v3.yaml"), "--json", "--reproducible", "--top", "2"]
    a, b = (RUNNER.invoke(app, args).stdout for _ in range(2))
    assert a == b and json.loads(a)["solve_seconds"] is None


def test_a_percentile_latency_target_is_worded_not_a_crash():
    """A plan or fleet whose p99 TTFT target nothing meets printed 'internal error: KeyError:
    demand_tokens_per_s': the check is named ttft_p99, which the wording read as a limits fact."""
    from planner.plan.result import Diagnosis, Fact
    fact = Fact("ttft_p99", value=0.0375, limit=0.02, unit="s", path="slo.ttft_ms.p99",
                context={"best": "the fastest layout that fits"})
    text = wording.diagnosis(Diagnosis(family="gpu", name="h100-sxm", fact=fact))
    assert text == "the fastest layout that fits reaches 37.5 ms, above the 20 ms target by 17.5 ms"
