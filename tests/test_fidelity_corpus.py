"""The corpus as validate maps it (planner/fidelity/corpus.py): each row once, a repeat at
its stand-in, a recipe row with its recipe's pools, a speculative twin as its MTP run, and
validate's records read from the same mapping."""

from __future__ import annotations

from pathlib import Path

from test_speculative_twins import DUMP
from test_speculative_twins import _write as write_twins
from test_speculative_twins import row as twin_row
from test_validation_rows import _disagg, _write

from planner.catalog.store import Catalog
from planner.fidelity.corpus import load_corpus, pools_read
from planner.fidelity.repeats import with_speculation
from planner.fidelity.rows import map_row
from planner.fidelity.validate import validate
from planner.physics.options import PRESETS

CAT = Catalog.default()
O = PRESETS["realistic"]


def _twins(tmp_path: Path) -> str:
    """Configuration A listed four times (the dump's row and its repeat; the other measurement
    of that day and its repeat: the MTP run), B listed once (plain)."""
    return write_twins(tmp_path, [
        twin_row("db1", DUMP, measured="2026-03-25T00:00:00.000Z", same_measurement_as="x1"),
        twin_row("x1", same_measurement_as="db1"),
        twin_row("x2", value="6.5", same_measurement_as="x3"), twin_row("x3", value="6.5", same_measurement_as="x2"),
        twin_row("b1", concurrency_total="32", batch_or_concurrency="concurrency 32 (closed loop)")])


def test_repeats_are_not_mapped_and_the_twin_is_its_mtp_run(tmp_path: Path) -> None:
    corpus = load_corpus(_twins(tmp_path))
    ms = list(corpus.mapped())
    assert [m.i for m in ms] == [0, 1, 2, 3, 4]
    assert [m.stand_in for m in ms] == [0, 0, 2, 2, 4]
    assert [m.repeat for m in ms] == [False, True, False, True, False]
    assert ms[1].case is None and ms[3].case is None and ms[1].expressed is None
    assert [m.twin for m in ms] == [False, False, True, False, False]
    plain = map_row(2, corpus.rows[2], CAT)
    assert not isinstance(plain, str)
    assert ms[2].case == with_speculation(plain) and ms[2].case != plain
    assert ms[0].case == map_row(0, corpus.rows[0], CAT) and ms[0].pools is None
    # speculate False: the twin's plain case, still marked
    kept = list(corpus.mapped(speculate=False))
    assert kept[2].case == plain and kept[2].twin
    # keep: only the rows it accepts, read the same way
    assert [(m.i, m.case) for m in corpus.mapped(lambda i, r: i >= 2)] == [(m.i, m.case) for m in ms[2:]]


def test_validate_reads_the_same_mapping(tmp_path: Path) -> None:
    path = _twins(tmp_path)
    v = validate(path, O)
    ms = list(load_corpus(path).mapped())
    assert [r.duplicate_of for r in v.rows] == [m.stand_in + 2 if m.repeat else None for m in ms]
    assert [r.mode.endswith("MTP twin") for r in v.rows if r.duplicate_of is None] == [
        m.twin for m in ms if not m.repeat] == [False, True, False]
    assert v.rows[3].mode == v.rows[2].mode                     # the repeat carries its stand-in's reading


def _pools_corpus(tmp_path: Path) -> str:
    """A stated donor (64 clients), a row of its family without worker counts (100 clients:
    a recipe row), one of other lengths without them (no donor: 1 + 1) and a row of a model
    the catalog does not know."""
    def at(n: int, sid: str, **kw) -> dict:
        return _disagg(batch_or_concurrency=f"concurrency {n} (closed loop)", silicon_id=sid, metric="tpot_ms_mean",
                       value="30", **kw)
    blank = dict(prefill_workers="", decode_workers="")
    return _write(tmp_path, [at(64, "d"), at(100, "e", **blank), at(100, "f", input_len="4096", **blank),
                             at(64, "g", model="NoSuchModel-7B")])


def test_how_the_pools_are_read(tmp_path: Path) -> None:
    corpus = load_corpus(_pools_corpus(tmp_path))
    ms = list(corpus.mapped())
    assert [m.pools for m in ms[:3]] == ["stated", "recipe", "1+1"]
    assert isinstance(ms[3].case, str) and ms[3].pools is None and ms[3].expressed is None
    assert corpus.recipes == {1: 0}
    want = map_row(1, corpus.rows[1], CAT, recipe=(0, corpus.rows[0]))
    assert ms[1].case == want and not isinstance(want, str)
    assert pools_read(want) == "recipe"
    # the recipe rule is a parameter: no recipes, the recipe row is 1 + 1
    bare = load_corpus(_pools_corpus(tmp_path), rule=lambda rows, family: {})
    assert [m.pools for m in bare.mapped()][:3] == ["stated", "1+1", "1+1"]
    assert [r.mode for r in validate(_pools_corpus(tmp_path), O).rows[:3]] == [
        "disagg", "disagg (workers of a recipe)", "disagg (1+1 workers assumed)"]
