"""An install that works (issue 21 item 7): every dependency bounded both ways in
pyproject.toml, one tested point pinned in constraints.txt (inside those bounds) that the
README's install command and CI use; usage errors one line and exit 2 whether typer's
vendored click or click itself (the ray extra brings it) raises them."""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from planner.cli.root import main

ROOT = Path(__file__).resolve().parents[1]
INSTANCE = str(ROOT / "instances" / "chat_llama70b.yaml")


def _requirements() -> list[Requirement]:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra]
    return reqs


def _pins() -> dict[str, Version]:
    out = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt pins exact versions: {line!r}"
            out[re.sub(r"[-_.]+", "-", name).lower()] = Version(version)
    return out


def test_every_dependency_has_a_lower_and_an_upper_bound():
    for r in _requirements():
        ops = {s.operator for s in r.specifier}
        assert ops & {">=", ">", "~=", "=="} and ops & {"<", "<=", "~=", "=="}, f"{r} is not bounded both ways"


def test_the_pinned_versions_lie_within_the_bounds():
    pins = _pins()
    for r in _requirements():
        name = re.sub(r"[-_.]+", "-", r.name).lower()
        if name in pins:
            assert r.specifier.contains(pins[name], prereleases=True), f"constraints.txt pins {name} {pins[name]} " \
                                                                       f"outside pyproject's {r.specifier}"
    core = {"numpy", "pyyaml", "pydantic", "typer", "rich", "ortools", "pulp", "pytest", "hypothesis", "ruff", "mypy"}
    assert core <= set(pins), f"not pinned: {sorted(core - set(pins))}"


def test_the_readme_and_ci_install_from_the_constraints_file():
    for path in (ROOT / "README.md", ROOT / ".ci" / "run"):
        assert "pip install -c constraints.txt -e '.[dev]'" in path.read_text(), path


def _usage_error(capsys, *args: str) -> tuple[str, str]:
    with pytest.raises(SystemExit) as e:
        main(list(args))
    assert e.value.code == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ")
    return out, err


def _fake_click() -> dict[str, types.ModuleType]:
    """A `click` whose exceptions are not typer's (as installed click's are not typer's vendored ones)."""
    exc = types.ModuleType("click.exceptions")

    class ClickException(Exception):
        exit_code = 1

    class UsageError(ClickException):
        exit_code = 2

    class Abort(RuntimeError):
        pass

    exc.ClickException, exc.UsageError, exc.Abort = ClickException, UsageError, Abort   # type: ignore[attr-defined]
    click = types.ModuleType("click")
    click.exceptions = exc          # type: ignore[attr-defined]
    return {"click": click, "click.exceptions": exc}


@pytest.fixture(params=["as installed", "with a click beside typer's"])
def click_present(request, monkeypatch):
    if request.param != "as installed":
        for name, module in _fake_click().items():
            monkeypatch.setitem(sys.modules, name, module)
    return request.param


@pytest.mark.parametrize("args,needle", [
    (("plan", INSTANCE, "--objective", "cheapest"), "--objective"),
    (("plan", INSTANCE, "--bogus"), "--bogus"),
    (("plann",), "plann"),
])
def test_a_usage_error_is_one_line_and_exit_2(capsys, click_present, args, needle):
    _, err = _usage_error(capsys, *args)
    assert needle in err


def test_a_usage_error_with_json_is_also_an_object(capsys, click_present):
    out, err = _usage_error(capsys, "plan", INSTANCE, "--objective", "cheapest", "--json")
    data = json.loads(out)
    assert data["exit_code"] == 2 and data["path"] == "--objective" and data["text"] == err.strip()
