"""CLI habits (issue 14): --version, -h, choices in the help, JSON errors with the human
message's fields, terminal width, NO_COLOR, the progress line."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli.common import Progress
from planner.cli.render import colour, width
from planner.cli.root import app, main

ROOT = Path(__file__).resolve().parents[1]
RUNNER = CliRunner()


def test_version():
    r = RUNNER.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.stdout.startswith("planner ") and r.stdout.split()[1][0].isdigit()
    out = subprocess.run([sys.executable, "-m", "planner", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.startswith("planner ")


@pytest.mark.parametrize("command", [[], ["plan"], ["estimate"], ["launch"], ["report"], ["validate"]])
def test_short_help(command):
    r = RUNNER.invoke(app, [*command, "-h"])
    assert r.exit_code == 0 and "Usage:" in r.stdout


@pytest.mark.parametrize("command,option,values", [
    ("plan", "--objective", ("cost_per_million_tokens", "tpot", "gpus")),
    ("plan", "--backend", ("cpsat", "milp", "highs", "exhaustive")),
    ("estimate", "--quantization", ("w16a16", "w8a8-fp8", "fp4")),
    ("estimate", "--kv-dtype", ("bf16", "fp8")),
    ("estimate", "--preset", ("realistic", "seed-article", "rule-of-thumb")),
    ("launch", "--engine", ("vllm", "sglang", "trtllm")),
])
def test_help_lists_the_choices(command, option, values):
    text = " ".join(RUNNER.invoke(app, [command, "-h"], terminal_width=200).stdout.split())
    assert option in text
    for v in values:
        assert v in text, f"{command} {option}: {v} not in the help"


def test_completion_is_offered():
    assert "--show-completion" in RUNNER.invoke(app, ["-h"]).stdout


def test_json_error_has_the_fields_of_the_human_message():
    r = RUNNER.invoke(app, ["estimate", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--tp", "3", "--json"])
    assert r.exit_code == 2
    err = json.loads(r.stdout)
    human = r.stderr.strip()
    assert err["text"] == human
    for key in ("message", "path", "accepted"):
        assert str(err[key]) in human
    assert f"(got {err['value']!r})" in human
    assert err["exit_code"] == 2


def test_json_usage_error_from_the_console_script(capsys):
    with pytest.raises(SystemExit) as e:
        main(["plan", str(ROOT / "instances" / "chat_llama70b.yaml"), "--objective", "bogus", "--json"])
    assert e.value.code == 2
    out, errtext = capsys.readouterr()
    err = json.loads(out)
    assert err["path"] == "--objective" and err["text"] in errtext


def test_plan_json_error_on_a_missing_file(tmp_path):
    r = RUNNER.invoke(app, ["plan", str(tmp_path / "none.yaml"), "--json"])
    assert r.exit_code == 2
    err = json.loads(r.stdout)
    assert err["text"] == r.stderr.strip()


def test_width_follows_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert width() == 100
    monkeypatch.delenv("COLUMNS")
    assert width() == 150          # not a terminal: the full table


def test_no_color(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert not colour()


def test_progress_shows_only_after_a_second_and_only_when_enabled():
    buf = io.StringIO()
    with Progress("solving x", stream=buf, after=0.05):
        time.sleep(0.3)
    assert "solving x" in buf.getvalue()
    quick = io.StringIO()
    with Progress("solving x", stream=quick, after=1.0):
        pass
    assert quick.getvalue() == ""
    off = io.StringIO()
    with Progress("solving x", stream=off, after=0.0, enabled=False):
        time.sleep(0.1)
    assert off.getvalue() == ""
