"""The decode pool's batch in a disaggregated closed loop (planner/fidelity/predict.py
``disagg_loops``, benchmarks/disagg_tpot.py; docs/validation.md "Disaggregated TPOT: the
decode pool's batch"): the batch a measurement implies by Little's law, and the model's,
which must split the loop's clients over decode workers and attention-DP lanes the same way."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from test_validation_rows import _disagg

from planner.catalog.store import Catalog
from planner.fidelity.predict import disagg_loops, predict
from planner.fidelity.rows import map_row
from planner.physics.options import PRESETS
from planner.physics.terms import tokens_per_step

CAT = Catalog.default()
O = PRESETS["realistic"]
ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("disagg_tpot", ROOT / "benchmarks" / "disagg_tpot.py")
assert spec is not None and spec.loader is not None
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_the_batch_a_measurement_implies_by_hand() -> None:
    """64 clients measured at TTFT 0.5 s and TPOT 20 ms for 101 output tokens: each cycle
    is 0.5 + 100 x 0.02 = 2.5 s, 2.0 s of it decoding, so the decode pool holds
    64 x 2.0 / 2.5 = 51.2 requests; over 2 workers of 4 attention-DP lanes, 6.4 a lane."""
    assert bench.implied_decode_batch(64, 0.5, 0.020, 101, 2, 4) == pytest.approx(6.4, rel=1e-12)
    # no prefill wait: every client decodes; one lane holds them all
    assert bench.implied_decode_batch(10, 0.0, 0.010, 50, 1, 1) == pytest.approx(10.0, rel=1e-12)


def test_the_closed_loop_splits_its_clients_over_workers_and_lanes() -> None:
    """Two rows of one closed loop (TTFT and TPOT of 64 clients over 1 prefill + 2 decode
    workers of attention DP 8: 8 lanes each): ``disagg_loops`` gives what ``predict`` reports,
    and its decode pool holds, per lane, Little's law on the loop's own throughput X:
    n = X / (D G) x (O - 1) / E x tau (E = 1 token a step, tau the step): requests per lane
    times their decode residence. With the measured TTFT and TPOT equal to the model's, the
    batch the benchmark reads from them is the same n, up to the TTFT's share (its decode
    admission) which the loop counts outside the decode pool too."""
    layout = dict(prefill_tp="1", prefill_attention_dp="8", prefill_moe_tp="1", prefill_moe_ep="8",
                  decode_tp="1", decode_attention_dp="8", decode_moe_tp="1", decode_moe_ep="8")
    cases = [map_row(0, _disagg(metric=m, **layout), CAT) for m in ("ttft_ms_mean", "tpot_ms_mean")]
    assert not any(isinstance(c, str) for c in cases)
    want, why = predict(cases, CAT, O)                   # type: ignore[arg-type]
    assert why == [None, None]
    loops = list(disagg_loops(cases, CAT, O))            # type: ignore[arg-type]
    assert len(loops) == 1 and loops[0].rows == [0, 1] and loops[0].where == [0, 0]
    loop = loops[0]
    r, dec, k = loop.result, loop.decode, 0
    assert (r.ttft[k] * 1e3, r.tpot[k] * 1e3) == pytest.approx(tuple(want), rel=1e-12)
    c = cases[1]
    lanes, D, O_ = float(dec.lanes[k]), c.pools.decode.workers, c.output_tokens     # type: ignore[union-attr]
    assert lanes == 8.0 and D == 2
    E = tokens_per_step(dec.o)
    n = r.rate[k] / (D * lanes) * (O_ - 1.0) / E * r.decode.step[k]
    assert r.decode.running[k] == pytest.approx(n, rel=1e-9)
    implied = bench.implied_decode_batch(64, float(r.ttft[k]), float(r.tpot[k]), O_, D, lanes)
    assert implied == pytest.approx(float(r.decode.running[k]), rel=0.02)
    assert np.isfinite(implied) and implied > 0


def _tpot_rows(*pairs: tuple[str, str]) -> list[dict]:
    return [{"silicon_id": sid, "metric": f"{m}_ms_mean", "same_measurement_as": ""} for sid, m in pairs]


def test_a_recipe_row_far_below_its_donors_tpot_reads_as_an_mtp_run() -> None:
    """repeats.mtp_by_donor by hand: the donor (a stated, plain run) measures 1.2 x the model's
    plain TPOT, the recipe row 0.8 x: 0.8 < 0.75 x 1.2 = 0.9, so the row's measurement (its
    TPOT and TTFT rows) reads as an MTP run; at 0.95 it stays plain; a donor without a TPOT
    prediction, or a row not taking a recipe, decides nothing."""
    from planner.fidelity.repeats import MTP_TPOT_RATIO, mtp_by_donor
    rows = _tpot_rows(("d", "tpot"), ("e", "tpot"), ("e", "ttft"), ("f", "tpot"))
    stand = [0, 1, 2, 3]
    recipes = {1: 0, 2: 0}
    assert MTP_TPOT_RATIO == 0.75
    assert mtp_by_donor(rows, recipes, stand, {0: 1.2, 1: 0.8}) == {1, 2}
    assert mtp_by_donor(rows, recipes, stand, {0: 1.2, 1: 0.95}) == set()
    assert mtp_by_donor(rows, recipes, stand, {1: 0.3}) == set()
    assert mtp_by_donor(rows, {}, stand, {0: 1.2, 1: 0.3, 3: 0.1}) == set()
    # the donor's TPOT is read through a repeat of its measurement (same_measurement_as)
    rows[0]["silicon_id"], rows[0]["same_measurement_as"] = "d2", ""
    rows.append({"silicon_id": "d", "metric": "ttft_ms_mean", "same_measurement_as": "d2"})
    assert mtp_by_donor(rows, {1: 4}, stand + [4], {0: 1.2, 1: 0.8}) == {1, 2}


def test_validate_predicts_a_recipe_row_far_below_its_donor_as_an_mtp_run(tmp_path) -> None:
    """Through validate: a stated donor at 64 clients and a recipe row at 100 (its TTFT and
    TPOT rows). Measured at the model's plain TPOT times the donor's measured / predicted, the
    row stays plain; at half that it is read as an MTP run: both its rows say so in their
    mode and carry the MTP prediction (one draft token a step: a faster TPOT). A calibrated
    validation reads the same rows so (on its uncalibrated predictions)."""
    from test_validation_rows import _write

    from planner.fidelity.repeats import with_speculation
    from planner.fidelity.validate import validate

    def at(n: int, sid: str, metric: str, value: str, **kw) -> dict:
        return _disagg(batch_or_concurrency=f"concurrency {n} (closed loop)", silicon_id=sid, metric=metric,
                       value=value, **kw)
    blank = dict(prefill_workers="", decode_workers="")

    def corpus(tpot: float) -> list[dict]:
        return [at(64, "d", "tpot_ms_mean", "30"), at(64, "d", "ttft_ms_mean", "500"),
                at(100, "e", "tpot_ms_mean", f"{tpot:.6f}", **blank), at(100, "e", "ttft_ms_mean", "900", **blank)]
    first = validate(_write(tmp_path, corpus(1e3)), O, mtp_by_tpot=True)
    assert [r.mode for r in first.rows[2:]] == ["disagg (workers of a recipe)"] * 2
    d, e = first.rows[0], first.rows[2]
    plain = e.predicted * d.measured / d.predicted          # type: ignore[operator]
    kept = validate(_write(tmp_path, corpus(plain)), O, mtp_by_tpot=True)
    assert kept.rows[2].mode == "disagg (workers of a recipe)" and kept.rows[2].predicted == pytest.approx(e.predicted)
    read = validate(_write(tmp_path, corpus(0.5 * plain)), O, mtp_by_tpot=True)
    # `planner validate` makes no such reading: the row is predicted as a plain run
    default = validate(_write(tmp_path, corpus(0.5 * plain)), O)
    assert default.rows[2].mode == "disagg (workers of a recipe)"
    assert default.rows[2].predicted == pytest.approx(e.predicted, rel=1e-12)
    assert [r.mode for r in read.rows[2:]] == ["disagg (workers of a recipe), MTP by its TPOT"] * 2
    rows = corpus(0.5 * plain)
    case = map_row(2, rows[2], CAT, recipe=(0, rows[0]))
    assert not isinstance(case, str)
    want = predict([with_speculation(case)], CAT, O)[0][0]
    assert read.rows[2].predicted == pytest.approx(want, rel=1e-12) and want < e.predicted   # type: ignore[operator]
    assert read.rows[0].mode == "disagg" and read.rows[0].predicted == pytest.approx(d.predicted)
    # with a calibration the reading is made on the uncalibrated predictions: the same rows are
    # MTP runs, and their uncalibrated figures are the plain validation's
    from planner.resolve.calibration import load_calibration
    cal = validate(_write(tmp_path, corpus(0.5 * plain)), O, calibration=load_calibration("default"),
                   calibration_name="default", mtp_by_tpot=True)
    assert [r.mode for r in cal.rows] == [r.mode for r in read.rows]
    assert [r.uncalibrated for r in cal.rows] == pytest.approx([r.predicted for r in read.rows], rel=1e-12)
