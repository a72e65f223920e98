"""docs/api.md's examples run: its ```python blocks, executed in order in one namespace from
the repository root (a later block uses what an earlier one made), as a reader would paste them."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "api.md"


def blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


def test_the_page_has_examples_of_every_function():
    code = "\n".join(blocks(PAGE.read_text(encoding="utf-8")))
    for name in ("plan", "fleet", "estimate", "sweep", "validate", "schema", "to_json"):
        assert f"api.{name}(" in code, f"docs/api.md has no example of api.{name}"


def test_the_examples_of_docs_api_run(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    namespace: dict = {"__name__": "docs_api"}
    for i, code in enumerate(blocks(PAGE.read_text(encoding="utf-8")), 1):
        try:
            exec(compile(code, f"docs/api.md python block {i}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"docs/api.md python block {i} fails: {type(exc).__name__}: {exc}\n{code}") from exc
    out = capsys.readouterr().out
    assert "h100-sxm" in out and "$/hour" in out
