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


budget_spec = importlib.util.spec_from_file_location("fit_token_budget", ROOT / "benchmarks" / "fit_token_budget.py")
assert budget_spec and budget_spec.loader
budget = importlib.util.module_from_spec(budget_spec)
budget_spec.loader.exec_module(budget)


def test_each_engine_gets_the_budget_of_its_own_rows_least_log_error():
    import numpy as np
    keys = [("sglang", "ttft_ms_mean", "b200", "m"), ("sglang", "tpot_ms_mean", "b200", "m"),
            ("vllm", "ttft_ms_mean", "h100-sxm", "m")]
    # log errors per budget: SGLang's rows best at 2,048 (|0.1| + |0.1|), vLLM's at 8,192 (0)
    err = {b: np.array([0.5, 0.5, 0.3]) for b in budget.BUDGETS}
    err[2048] = np.array([0.1, -0.1, 0.3])
    err[8192] = np.array([0.4, 0.4, 0.0])
    chosen = budget.fit(keys, err, np.ones(3, bool))
    assert chosen["sglang"] == 2048 and chosen["vllm"] == 8192 and chosen["trtllm"] == 8192   # no rows: 8,192
    # held out: the system h100-sxm's row is predicted with a budget chosen on the others' rows
    held = np.array([k[2] == "h100-sxm" for k in keys])
    assert budget.fit(keys, err, ~held)["vllm"] == 8192
    med = budget.medians(keys, err, chosen, np.ones(3, bool))
    assert math.isclose(med["ttft_ms_mean"], (np.expm1(0.1) * 100 + 0.0) / 2)   # rows 0 and 2: e^0.1 - 1 and 0
    assert math.isclose(med["tpot_ms_mean"], -np.expm1(-0.1) * 100)


def test_theil_sen_is_the_median_pairwise_slope():
    # points (0, 0), (1, 1), (2, 2), (3, 30): pair slopes 1, 1, 10, 1, 14.5, 28 -> median (1 + 10) / 2
    assert math.isclose(check.theil_sen([0, 1, 2, 3], [0, 1, 2, 30]), 5.5)
    assert math.isnan(check.theil_sen([1.0, 1.2], [0.0, 5.0]))      # x closer than 0.5: no pair
