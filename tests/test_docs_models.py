"""docs/models.md's table of every shared config is what scripts/models_table.py writes now."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("models_table", ROOT / "scripts" / "models_table.py")
assert spec and spec.loader
models_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(models_table)


@pytest.mark.skipif(not models_table.CONFIGS.is_dir(), reason="shared/reference/hf-configs not present")
def test_the_models_table_is_current() -> None:
    doc = (ROOT / "docs" / "models.md").read_text()
    table = doc.split(models_table.START, 1)[1].split(models_table.END, 1)[0].strip()
    assert table == "\n".join(models_table.rows()), "run: python scripts/models_table.py --write docs/models.md"
