"""`planner schedule --reproducible`: two runs of the same input give byte-identical JSON,
--output file and text (planner/cli/schedule_cmd.py; as `plan` and `fleet` do with
planner/cli/common.py ``without_timings``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from planner.cli.root import main

ROOT = Path(__file__).resolve().parents[1]
DAY = ROOT / "instances" / "schedule_day.yaml"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    with pytest.raises(SystemExit) as e:
        main(["schedule", str(DAY), "--reproducible", "--start-costs", "0,20", *args])
    assert e.value.code == 0
    return capsys.readouterr().out


def _seconds(d: Any, path: str = "") -> list[str]:
    """Every key that names a duration and holds a value, anywhere in ``d``."""
    if isinstance(d, dict):
        return [p for k, v in d.items() for p in
                ([f"{path}.{k}"] if "seconds" in k and v is not None else []) + _seconds(v, f"{path}.{k}")]
    if isinstance(d, list):
        return [p for i, v in enumerate(d) for p in _seconds(v, f"{path}[{i}]")]
    return []


def test_two_reproducible_schedules_are_byte_identical(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    runs = [(_run(capsys, "--json", "--output", str(tmp_path / f"{i}.json")), (tmp_path / f"{i}.json").read_bytes(),
             _run(capsys)) for i in range(2)]
    assert runs[0] == runs[1]
    js, out, text = runs[0]
    assert json.loads(out) == json.loads(js)
    assert _seconds(json.loads(js)) == []
    assert " s)" not in text and "seconds" not in text and len(json.loads(js)["start_costs"]) == 2
