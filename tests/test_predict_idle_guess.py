"""planner/fidelity/predict.py ``_LARGEST``: the largest batch a group's maximum-throughput rows
were last found at is only a guess that saves an evaluation (issue 26: the calibration fit's
speed), never a figure: right, wrong or missing, the predictions are the same bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from reference import REFERENCE

from planner.catalog.store import Catalog
from planner.fidelity import predict as P
from planner.fidelity.calibrate import dataset
from planner.physics.options import PRESETS

MEASURED = REFERENCE / "measured-public.csv"
SILICON = REFERENCE / "measured-silicon.csv"
pytestmark = pytest.mark.skipif(not MEASURED.exists(), reason="../shared/reference/measured-public.csv not present")
FITTED = {"memory_bandwidth_efficiency": 0.61, "compute_efficiency": 0.43, "prefill_compute_efficiency": 0.52,
          "comm_efficiency": 0.7, "per_layer_overhead_s": 40e-6, "step_overhead_s": 0.003}


def test_a_guess_right_wrong_or_missing_gives_the_same_predictions(monkeypatch):
    cat, base = Catalog.default(), PRESETS["realistic"]
    ds = dataset(str(MEASURED), cat)
    assert sum(c.rule == "max_throughput" for c in ds.cases) >= 10
    monkeypatch.setattr(P, "_LARGEST", {})
    fresh = [P.predict_all(ds.cases, cat, base, f) for f in (None, FITTED)]
    assert P._LARGEST                                      # the groups' batches kept
    calls = []
    evaluate = P.evaluate
    monkeypatch.setattr(P, "evaluate", lambda *a: calls.append(1) or evaluate(*a))
    again = [P.predict_all(ds.cases, cat, base, f) for f in (None, FITTED)]      # the guesses right
    groups = len(P._groups(ds.cases, cat))
    assert len(calls) == 2 * groups                        # one evaluation a group
    for k in P._LARGEST:                                   # every guess wrong
        P._LARGEST[k] = P._LARGEST[k] + 3.0
    wrong = [P.predict_all(ds.cases, cat, base, f) for f in (None, FITTED)]
    for a, b, c in zip(fresh, again, wrong):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert not np.array_equal(fresh[0], fresh[1])          # the fitted values move the predictions


@pytest.mark.skipif(not SILICON.exists(), reason="../shared/reference/measured-silicon.csv not present")
def test_prepared_cases_predict_as_their_list_does(monkeypatch):
    """``Prepared`` (the calibration fit's rows, predicted once per Nelder-Mead step) works out
    the idle rows' groups, GPU table and configurations once; its predictions and reasons are
    the list's, bit for bit, under the priors and a calibration, the rows under load among them."""
    cat, base = Catalog.default(), PRESETS["realistic"]
    loaded = [c for c in dataset(str(SILICON), cat, under_load=True).cases if c.under_load]
    cases = dataset(str(MEASURED), cat).cases + loaded[:40] + [c for c in loaded if c.pools is not None][:10]
    assert not any(c.under_load for c in cases[:-50])
    prepared = P.Prepared(cases, cat)
    builds = []
    plan = P._idle_plan
    monkeypatch.setattr(P, "_idle_plan", lambda *a: builds.append(1) or plan(*a))
    for fitted in (None, FITTED, None):
        listed, why_listed = P.predict(cases, cat, base, fitted)
        kept, why_kept = P.predict(prepared, cat, base, fitted)
        np.testing.assert_array_equal(listed, kept)
        assert why_listed == why_kept
    assert len(builds) == 3 + 1                            # the list's each time, the prepared set's once
