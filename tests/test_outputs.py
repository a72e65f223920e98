"""Outputs staged (issue 23 item 6): every output path is checked before the work that fills
it, and a command's files are written all together at its end, or none of them (exit 2)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli.root import app
from planner.errors import InputError
from planner.yamlio import commit_outputs, staged_outputs, write_atomically

ROOT = Path(__file__).resolve().parents[1]
RUNNER = CliRunner()
SMALL = ROOT / "instances" / "sweeps" / "llama8b_base.yaml"


def test_commit_writes_all_or_none(tmp_path):
    (tmp_path / "blocker").write_text("a file where a folder would go")
    good, bad = tmp_path / "new" / "deep" / "a.txt", tmp_path / "blocker" / "b.txt"
    with pytest.raises(InputError):
        commit_outputs({str(good): (b"a", "--out"), str(bad): (b"b", "--out")})
    assert not (tmp_path / "new").exists()                    # its folders removed again
    assert sorted(os.listdir(tmp_path)) == ["blocker"]        # no temporary left behind
    commit_outputs({str(good): (b"a", "--out")})
    assert good.read_text() == "a"


def test_staged_writes_wait_for_the_end_and_vanish_on_an_error(tmp_path):
    first = tmp_path / "first.txt"
    with pytest.raises(InputError):
        with staged_outputs():
            write_atomically(first, "1")
            assert not first.exists()                        # staged, not written
            write_atomically(tmp_path, "2", option="--out")  # a folder: refused at once
    assert not first.exists()
    with staged_outputs():
        write_atomically(first, "1")
    assert first.read_text() == "1"


def test_plan_output_not_written_when_the_report_path_is_a_folder(tmp_path):
    (tmp_path / "r.html").mkdir()
    ok = tmp_path / "ok.json"
    r = RUNNER.invoke(app, ["plan", str(SMALL), "--no-simulate", "--output", str(ok), "--report",
                            str(tmp_path / "r.html")])
    assert r.exit_code == 2, r.output
    assert "--report" in r.output and not ok.exists()


def test_pareto_output_not_written_when_the_plot_path_is_a_folder(tmp_path):
    (tmp_path / "p.png").mkdir()
    ok = tmp_path / "ok.json"
    r = RUNNER.invoke(app, ["pareto", str(SMALL), "--points", "2", "--output", str(ok), "--plot",
                            str(tmp_path / "p.png")])
    assert r.exit_code == 2, r.output
    assert not ok.exists()


def test_sweep_writes_nothing_when_one_target_is_its_input(tmp_path):
    shutil.copy(SMALL, tmp_path / "llama8b_base.yaml")
    text = (ROOT / "instances" / "sweeps" / "demand_prices.yaml").read_text()
    (tmp_path / "sweep.json").write_text(text)         # the sweep file sits where sweep.json would go
    r = RUNNER.invoke(app, ["sweep", str(tmp_path / "sweep.json"), "--out", str(tmp_path), "--no-plots"])
    assert r.exit_code == 2, r.output
    assert not (tmp_path / "sweep.csv").exists()
    assert (tmp_path / "sweep.json").read_text() == text


def test_launch_writes_no_script_when_a_later_one_cannot_be_written(tmp_path):
    plan = tmp_path / "p.json"
    r = RUNNER.invoke(app, ["plan", str(SMALL), "--no-simulate", "--output", str(plan)])
    assert r.exit_code == 0, r.output
    out = tmp_path / "out"
    (out / "plan1-trtllm.sh").mkdir(parents=True)        # the last engine's script cannot be written
    r = RUNNER.invoke(app, ["launch", str(plan), "--out", str(out)])
    assert r.exit_code == 2, r.output
    assert os.listdir(out) == ["plan1-trtllm.sh"]
