"""Start-up (issue 26 item 4): ``planner --version`` imports nothing heavy, ``planner -h``
lists every command without importing the commands' modules or the solvers, and each
command imports its own module only when it runs. benchmarks/startup.py times them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("ortools", "pulp", "highspy", "numpy", "scipy", "pydantic", "ray", "rich", "yaml")
SOLVERS = ("ortools", "pulp", "highspy")

RUN = """
import json, sys
sys.argv = ["planner", *{args!r}]
from planner.cli import entry
try:
    entry.main()
except SystemExit:
    pass
sys.stdout.flush()
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} | {{m for m in sys.modules if m.startswith("planner.")}})))
"""


def _modules(*args: str) -> tuple[set[str], str]:
    r = subprocess.run([sys.executable, "-c", RUN.format(args=list(args))], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    return set(json.loads(lines[-1])), "\n".join(lines[:-1])


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_imports_nothing_heavy(flag):
    mods, out = _modules(flag)
    assert out.startswith("planner ")
    assert not mods & set(HEAVY), sorted(mods & set(HEAVY))
    assert not {m for m in mods if m.startswith("planner.cli.") and m not in ("planner.cli.entry",)}


def test_help_lists_the_commands_without_importing_them_or_the_solvers():
    mods, out = _modules("-h")
    from planner.cli.root import COMMANDS
    for name in COMMANDS:
        assert f"  {name} " in out
    assert not mods & {*SOLVERS, "numpy", "pydantic"}, sorted(mods & {*SOLVERS, "numpy", "pydantic"})
    assert not {m for m in mods if m.endswith("_cmd")}


def test_a_command_imports_its_own_module_only():
    mods, out = _modules("trace", "-h")
    assert "planner.cli.trace_cmd" in mods and "Usage: planner trace" in out
    assert not {m for m in mods if m.endswith("_cmd")} - {"planner.cli.trace_cmd"}
    assert not mods & set(SOLVERS)


def test_the_lazy_listing_is_the_commands_own_short_help():
    """Each line of ``planner -h`` read from the source (no import) is what click shows once
    the command is imported."""
    from planner.cli.root import COMMANDS, load, short_help
    for name in COMMANDS:
        assert short_help(name, 60) == load(name).get_short_help_str(60), name
