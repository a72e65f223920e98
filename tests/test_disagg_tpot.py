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
