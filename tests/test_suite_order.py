"""The suite's order (tests/conftest.py): the files of LONGEST_FIRST run first, so that with
`-n 2 --dist loadfile` (pyproject.toml) the long files never start last. A renamed or deleted
file would silently fall back to collection order (its rank is looked up by file name), so each
name must be a file of tests/."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import conftest

HERE = Path(__file__).resolve().parent


def test_every_file_put_first_exists():
    missing = [name for name in conftest.LONGEST_FIRST if not (HERE / name).is_file()]
    assert not missing, f"tests/conftest.py LONGEST_FIRST names files that are not in tests/: {missing}"
    assert len(set(conftest.LONGEST_FIRST)) == len(conftest.LONGEST_FIRST)


def test_the_files_put_first_lead_in_their_order_and_each_file_keeps_its_own_order():
    first, second = conftest.LONGEST_FIRST[:2]
    items = [SimpleNamespace(path=HERE / name, name=f"{name}:{k}") for k, name in
             enumerate(["test_a.py", second, "test_b.py", first, second, "test_a.py", first])]
    conftest.pytest_collection_modifyitems(items)
    assert [i.name for i in items] == [f"{first}:3", f"{first}:6", f"{second}:1", f"{second}:4",
                                       "test_a.py:0", "test_b.py:2", "test_a.py:5"]
