"""benchmarks/ttft_growth_check.py: the series it groups, the slopes and the pair floor it
prints (docs/validation.md, "TTFT's growth with the clients and the output length"), on
hand-built rows whose answers are worked out here."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("ttft_growth_check", ROOT / "benchmarks" / "ttft_growth_check.py")
assert spec and spec.loader
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)


def _corpus_row(output_len: str) -> dict:
    return {"tp": "8", "attention_dp": "1", "moe_ep": "1", "replicas": "1", "precision": "W=fp8",
            "length_distribution": "uniform", "input_len": "1024", "output_len": output_len}


def _record(row: int, n: int, metric: str, measured: float, predicted: float, counted: str = "yes") -> dict:
    return {"row": str(row), "mode": "agg", "counted": counted, "predicted": str(predicted), "measured": str(measured),
            "load": f"{n} clients (closed loop)", "metric": metric, "system": "b200", "engine": "trtllm",
            "engine_version": "1.2", "model_id": "deepseek-r1"}


def test_a_series_is_the_runs_alike_but_for_the_clients():
    corpus = [_corpus_row("1024"), _corpus_row("1024"), _corpus_row("8192")]
    records = [_record(2, 4, "ttft_ms_mean", 200.0, 150.0), _record(3, 8, "ttft_ms_mean", 240.0, 155.0),
               _record(4, 4, "ttft_ms_mean", 210.0, 150.0), _record(3, 8, "tpot_ms_mean", 9.0, 8.0, counted="no")]
    ser = check.series(records, corpus)
    assert len(ser) == 2                                  # O = 1,024 and O = 8,192
    short = next(v for k, v in ser.items() if k[-1] == "1024")
    assert sorted(short) == [4.0, 8.0]
    assert short[8.0] == {"ttft_ms_mean": (240.0, 155.0)}  # the repeat (counted "no") is left out


def test_the_slope_in_ms_per_client_and_in_units_of_the_idle_prefill():
    # measured TTFT = 100 + 10 N, predicted = 250 + 1 N at N = 4, 8, 16; TPOT 20 ms at each:
    # slopes 10 and 1 ms per client; t_p = predicted at N = 4 (254 ms) - 100 ms serving path = 154 ms
    runs = {float(n): {"ttft_ms_mean": (100.0 + 10.0 * n, 250.0 + n), "tpot_ms_mean": (20.0, 18.0)}
            for n in (4, 8, 16)}
    meas, pred, t_p, tpot = check.growth(runs, serving_s=0.100)
    assert math.isclose(meas, 10.0) and math.isclose(pred, 1.0)
    assert math.isclose(t_p, 154.0) and tpot == 20.0


def test_runs_where_the_model_queues_for_kv_and_past_64_clients_are_left_out():
    runs = {4.0: {"ttft_ms_mean": (100.0, 200.0)}, 8.0: {"ttft_ms_mean": (140.0, 210.0)},
            16.0: {"ttft_ms_mean": (220.0, 230.0)}, 32.0: {"ttft_ms_mean": (380.0, 900.0)},   # > 3 x 200
            128.0: {"ttft_ms_mean": (9000.0, 300.0)}}                                         # > 64 clients
    meas, pred, _, tpot = check.growth(runs, serving_s=0.0)
    assert math.isclose(meas, 10.0) and math.isnan(tpot)   # 100 + 10 (N - 4) over N = 4, 8, 16
    assert check.growth({4.0: runs[4.0], 8.0: runs[8.0]}, serving_s=0.0) is None


def test_the_pair_floor():
    # measured 100 and 40 ms (r = 0.4), one figure p for both: the least worst error is at
    # p / 40 - 1 = 1 - p / 100, p = 57.1 ms, 42.9 % for both; symmetric in which run is first
    assert math.isclose(check.pair_floor(0.4), 0.6 / 1.4)
    assert math.isclose(check.pair_floor(2.5), check.pair_floor(0.4))
    assert check.pair_floor(1.0) == 0.0
