"""Plan and fleet files read back by `planner launch` and `planner report` (issue 23 item 7):
read bounded and strictly, so a hostile file is a located error (exit 2), never a hang, a
memory blow-up or a traceback."""

from __future__ import annotations

import os
import sys

import pytest
from typer.testing import CliRunner

from planner.cli.root import app

RUNNER = CliRunner()


def _alias_bomb() -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _hostile(tmp_path, kind: str) -> str:
    if kind == "dev-zero":
        return "/dev/zero"
    f = tmp_path / ("p.yaml" if kind == "alias-bomb" else "p.json")
    if kind == "fifo":
        os.mkfifo(f)
    elif kind == "deep-json":
        f.write_text("[" * 200_000 + "]" * 200_000)
    elif kind == "alias-bomb":
        f.write_text(_alias_bomb())
    elif kind == "nan":
        f.write_text('{"plans": [], "x": NaN}')
    return str(f)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX special files")
@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "deep-json", "alias-bomb", "nan"])
@pytest.mark.parametrize("command", ["launch", "report"])
def test_hostile_plan_files_are_located_errors(tmp_path, kind, command):
    path = _hostile(tmp_path, kind)
    out = tmp_path / "out"
    args = [command, path, "--out", str(out)] if command == "launch" else [command, path, "--out",
                                                                            str(tmp_path / "r.html")]
    r = RUNNER.invoke(app, args)
    assert r.exit_code == 2, (kind, r.output)
    assert path in r.output and "internal error" not in r.output
    assert not out.exists() and not (tmp_path / "r.html").exists()
