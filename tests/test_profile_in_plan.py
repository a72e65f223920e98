"""A demand profile given to `planner plan` or `planner fleet` (docs/workloads.md section 8):
the instance is planned at each profiled workload's busiest period, the fleet a static plan
runs all day, with a note in the text and the JSON naming the period and pointing at
`planner schedule`; the same answer as the instance stated at that rate without a profile."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from planner.cli.root import app

ROOT = Path(__file__).resolve().parent.parent
RUNNER = CliRunner()
PLAN = {
    "schema_version": 1, "model": "llama-3.1-8b",
    "workload": {"input_tokens": 512, "output_tokens": 128, "demand": {"requests_per_s": 4, "profile": [
        {"hours": 16, "multiplier": 0.5}, {"hours": 6, "output_tokens_per_s": 3072}, {"hours": 2, "multiplier": 1.0}]}},
    "slo": {"ttft_ms": 1000, "tpot_ms": 50},
    "search": {"gpus": ["h100-sxm"], "quantizations": ["fp8"], "kv_dtypes": ["fp8"], "tp": [1], "pp": [1],
               "batch_levels": [16]},
    "objective": "cost_per_hour", "top_k": 1,
}


def _run(tmp_path: Path, command: str, data: dict, name: str = "inst.yaml", *, text: bool = True):
    """The command's JSON, and its text (``text``; None without: the instances stated without a
    profile, compared by their JSON alone, are not rendered, a solve less each)."""
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    out = RUNNER.invoke(app, [command, str(path), "--no-simulate", "--json"])
    assert out.exit_code == 0, out.output
    if not text:
        return None, json.loads(out.output)
    shown = RUNNER.invoke(app, [command, str(path), "--no-simulate"], terminal_width=400)
    assert shown.exit_code == 0, shown.output
    return shown.output, json.loads(out.output)


def test_a_plan_is_sized_for_the_busiest_period_and_says_so(tmp_path):
    """Periods at 2, 24 (3,072 output tokens/s over 128 tokens) and 4 requests/s: planned at
    24 requests/s, 6 x the stated 4, as the same instance stated at 24 requests/s is."""
    text, got = _run(tmp_path, "plan", PLAN)
    flat = copy.deepcopy(PLAN)
    flat["workload"]["demand"] = {"requests_per_s": 24}
    _, want = _run(tmp_path, "plan", flat, "flat.yaml", text=False)
    assert got["inputs"]["workloads"]["main"]["demand"]["requests_per_s"] == pytest.approx(24.0)
    assert [(p["gpus"], p["replicas"], p["cost_per_hour"]) for p in got["plans"]] == \
        [(p["gpus"], p["replicas"], p["cost_per_hour"]) for p in want["plans"]]
    note = [n for n in got["notes"] if n.startswith("workload.demand.profile")]
    assert len(note) == 1 and "period 2 of 3" in note[0] and "24 requests/s" in note[0] and "6 x" in note[0]
    assert "planner schedule" in note[0] and note[0] in " ".join(text.split())
    assert not want["notes"]


def test_a_fleet_with_profiles_is_sized_for_each_workloads_peak(tmp_path):
    """instances/schedule_day.yaml: each workload's busiest multiplier is 1.0, so the fleet is
    the stated rates' (the same cost as without the profiles), with a note per workload."""
    data = yaml.safe_load((ROOT / "instances" / "schedule_day.yaml").read_text())
    data["workloads"][0]["demand"]["profile"][3]["multiplier"] = 0.9      # its peak: period 3 at 0.9
    data["workloads"][0]["demand"]["profile"][2]["multiplier"] = 1.25
    text, got = _run(tmp_path, "fleet", data)
    notes = [n for n in got["notes"] if ".demand.profile" in n]
    assert [n.split(":")[0] for n in notes] == ["workloads[0].demand.profile", "workloads[1].demand.profile"]
    assert "period 3 of 6" in notes[0] and "30 requests/s" in notes[0] and "1.25 x" in notes[0]
    assert all(n in " ".join(text.split()) for n in notes)       # the text says them too
    flat = copy.deepcopy(data)
    for w, rps in zip(flat["workloads"], (30.0, 120.0)):
        w["demand"] = {"requests_per_s": rps}
    flat.pop("schedule", None)
    _, want = _run(tmp_path, "fleet", flat, "flat.yaml", text=False)
    assert got["answers"][0]["totals"]["cost_per_hour"] == pytest.approx(want["answers"][0]["totals"]["cost_per_hour"])


@pytest.mark.parametrize("command", ["plan", "fleet"])
def test_schedule_settings_without_a_profile_are_a_located_error(tmp_path, command):
    """issue 25's tester: a `schedule:` block where no workload has a demand profile was
    silently ignored by `planner plan` (no schedule is solved, so it changes nothing). As a
    trace's `rate_scale` beside a stated demand, a key that would do nothing is refused where
    the file says it, as `planner schedule` refuses the same file (no demand profile)."""
    if command == "plan":
        data = copy.deepcopy(PLAN)
        data["workload"]["demand"] = {"requests_per_s": 4}
    else:
        data = yaml.safe_load((ROOT / "instances" / "schedule_day.yaml").read_text())
        for w in data["workloads"]:
            w["demand"].pop("profile")
    data["schedule"] = {"usd_per_gpu_started": 2.0}
    path = tmp_path / "inst.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    for cmd in (command, "schedule"):
        out = RUNNER.invoke(app, [cmd, str(path), "--no-simulate", "--json"] if cmd != "schedule"
                            else [cmd, str(path), "--json"])
        assert out.exit_code == 2 and "Traceback" not in out.output, out.output
        err = json.loads(out.stdout)
        assert err["file"] == str(path) and "profile" in err["message"] + (err["accepted"] or ""), err
    out = RUNNER.invoke(app, [command, str(path), "--no-simulate", "--json"])
    err = json.loads(out.stdout)
    at = path.read_text().splitlines().index("schedule:") + 1
    assert err["path"] == "schedule" and err["line"] in (at, at + 1), err     # the key, or its mapping's first line
    data["schedule"] = {}                           # says nothing: nothing to refuse
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert RUNNER.invoke(app, [command, str(path), "--no-simulate", "--json"]).exit_code == 0
