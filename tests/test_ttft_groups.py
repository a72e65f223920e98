"""benchmarks/ttft_groups.py: how it pairs a run's TTFT with its TPOT, its buckets, the TTFT's
share of a request and the completion-interval slope it prints (docs/validation.md "TTFT under
load, group by group"), on hand-built rows whose answers are worked out here."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("ttft_groups", ROOT / "benchmarks" / "ttft_groups.py")
assert spec and spec.loader
groups = importlib.util.module_from_spec(spec)
spec.loader.exec_module(groups)


def _row(sid: str, n: int, isl: int = 1024, osl: int = 128, tp: str = "1") -> dict:
    return {"silicon_id": sid, "concurrency_total": str(n), "input_len": str(isl), "output_len": str(osl), "tp": tp}


def _rec(line: int, metric: str, measured: float, predicted: float, counted: str = "yes", model: str = "m") -> dict:
    return {"row": str(line), "metric": metric, "counted": counted, "predicted": str(predicted),
            "measured": str(measured), "signed_pct_error": str(100.0 * (predicted / measured - 1.0)),
            "model_id": model, "engine": "vllm", "mode": "agg", "system": "h100-sxm", "engine_version": "0.12.0"}


def test_a_ttft_is_paired_with_the_tpot_of_the_same_measurement():
    # corpus lines 2-5 (header line 1): run a's two metrics, run b's two, b's TPOT not counted
    rows = [_row("a", 8), _row("a", 8), _row("b", 64, isl=4096), _row("b", 64, isl=4096)]
    recs = [_rec(2, "ttft_ms_mean", 200.0, 100.0), _rec(3, "tpot_ms_mean", 10.0, 12.0),
            _rec(4, "ttft_ms_mean", 500.0, 750.0), _rec(5, "tpot_ms_mean", 20.0, 20.0, counted="no: repeat"),
            _rec(2, "ttft_ms_mean", 1.0, 1.0, counted="no: the same measurement as row 9")]
    xs = groups.pair(rows, recs)
    assert len(xs) == 2                                   # the uncounted TTFT is left out
    a, b = xs
    assert a["signed"] == -50.0 and a["tpot_measured"] == 10.0 and math.isclose(a["tpot_signed"], 20.0)
    assert a["clients"] == "5-16" and a["prompt"] == "<=1.5k"
    assert b["tpot_measured"] is None and b["clients"] == "17-64" and b["prompt"] == "<=4.5k"


def test_the_buckets_close_on_their_upper_bounds():
    assert [groups.clients_bucket(n) for n in (1, 4, 5, 16, 17, 256, 1024, 1025)] == \
        ["1-4", "1-4", "5-16", "5-16", "17-64", "65-256", "257-1024", ">1024"]
    assert [groups.prompt_bucket(s) for s in (128, 1500, 1501, 4500, 4501)] == \
        ["<=1.5k", "<=1.5k", "<=4.5k", "<=4.5k", ">4.5k"]


def test_the_ttft_share_of_a_request():
    # TTFT 100 ms, 11 output tokens at 10 ms after the first: 100 / (100 + 10 x 10) = 0.5
    x = {"measured": 100.0, "osl": 11, "tpot_measured": 10.0}
    assert groups.share(x) == 0.5
    assert groups.share({**x, "tpot_measured": None}) is None


def _run(model: str, n: int, osl: int, ttft: float, tpot: float) -> dict:
    return {"mode": "agg", "model": model, "engine": "trtllm", "version": "1.0", "system": "h100-sxm",
            "r": {"tp": "1"}, "isl": 1024, "n": float(n), "osl": osl, "measured": ttft, "tpot_measured": tpot}


def test_the_completion_interval_slope():
    # model w waits for the next completion: TTFT = 60 + (O - 1) TPOT / N at N = 8, TPOT 8 ms:
    # (127 x 8) / 8 = 127 ms at O = 128, 511 at O = 512: slope 1. Model f: TTFT flat, slope 0.
    # A series past 32 clients and one with a single output length give no slope.
    xs = [_run("w", 8, 128, 60.0 + 127.0, 8.0), _run("w", 8, 512, 60.0 + 511.0, 8.0),
          _run("f", 16, 128, 300.0, 9.0), _run("f", 16, 256, 300.0, 8.0), _run("f", 16, 512, 300.0, 7.0),
          _run("f", 64, 128, 300.0, 9.0), _run("f", 64, 512, 900.0, 7.0), _run("f", 8, 128, 100.0, 9.0)]
    slopes = groups.completion_slopes(xs)
    assert math.isclose(slopes[("w", "trtllm")][0], 1.0)
    assert slopes[("f", "trtllm")] == [0.0]
