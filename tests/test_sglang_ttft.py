"""benchmarks/sglang_ttft.py's readings by hand (docs/validation.md, "SGLang's TTFT: where the
error lies"), on a row the section quotes and on a made-up disaggregated pair."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import sglang_ttft as G  # noqa: E402


def test_rate_and_share_of_line_4348_by_hand() -> None:
    """352 clients, 1,000 in / 1,000 out, TTFT 938.6 ms, TPOT 36.55 ms: a request takes
    0.9386 + 999 x 0.03655 = 37.452 s, so 352 / 37.452 = 9.399 requests a second, and TTFT
    is 2.51 % of it."""
    cycle = 0.9386 + 999 * 0.03655
    assert G.rate(352, 938.6, 36.55, 1000) == pytest.approx(352 / cycle, rel=1e-12)
    assert G.rate(352, 938.6, 36.55, 1000) == pytest.approx(9.399, abs=1e-3)
    assert G.ttft_share(938.6, 36.55, 1000) == pytest.approx(0.9386 / cycle, rel=1e-12)
    assert G.ttft_share(938.6, 36.55, 1000) == pytest.approx(0.02506, abs=1e-5)


def test_mean_length_and_bands() -> None:
    assert G.mean_length(8192, "uniform on [0.8 L, L] per request (InferenceX --random-range-ratio 0.8)") \
        == pytest.approx(7372.8)
    assert G.mean_length(1000, "") == 1000
    assert [G.band(n) for n in (1, 8, 9, 64, 65, 256, 257, 12000)] == \
        ["<=8", "<=8", "9-64", "9-64", "65-256", "65-256", ">256", ">256"]


def _pair(ttft_m, ttft_p, tpot_m, tpot_p, mode="disagg"):
    line = dict(silicon_id="x", concurrency_total="512", output_len="1024", input_len="8192",
                length_distribution="uniform on [0.8 L, L]", precision="W=nvfp4;A=nvfp4",
                prefill_workers="2", prefill_gpus_per_worker="4", prefill_moe_ep="4")
    rows = [dict(line, metric="ttft_ms_mean"), dict(line, metric="tpot_ms_mean")]
    common = dict(engine="sglang", counted="yes", mode=mode, system="b200", model_id="deepseek-r1")
    val = {2: dict(common, predicted=str(ttft_p), measured=str(ttft_m), signed_pct_error=str(100 * (ttft_p / ttft_m - 1))),
           3: dict(common, predicted=str(tpot_p), measured=str(tpot_m), signed_pct_error="0")}
    return rows, val


def test_records_by_hand() -> None:
    """512 clients, 8,192 / 1,024 on [0.8 L, L] (S 7,372.8, O 921.6), TTFT 4,000 / 1,000 ms
    measured / predicted, TPOT 20 ms both: X = 512 / (4 + 920.6 x 0.02) = 22.95 measured and
    512 / (1 + 18.412) = 26.38 predicted; prompt tokens a prefill GPU X S / 8."""
    rows, val = _pair(4000.0, 1000.0, 20.0, 20.0)
    (r,) = G.records(rows, val)
    xm, xp = 512 / (4.0 + 920.6 * 0.020), 512 / (1.0 + 920.6 * 0.020)
    assert r["x_ratio"] == pytest.approx(xm / xp, rel=1e-12)
    assert r["tok_m"] == pytest.approx(xm * 7372.8 / 8, rel=1e-12)
    assert r["tok_p"] == pytest.approx(xp * 7372.8 / 8, rel=1e-12)
    assert r["f"] == pytest.approx(4.0 / (4.0 + 920.6 * 0.020), rel=1e-12)
    assert r["fmt"] == "nvfp4" and r["stated"] and r["err"] == pytest.approx(-75.0)
    # a recipe's pools are not stated; another engine's row is not read
    rows, val = _pair(4000.0, 1000.0, 20.0, 20.0, mode="disagg (workers of a recipe)")
    assert not G.records(rows, val)[0]["stated"]
    val[2]["engine"] = val[3]["engine"] = "vllm"
    assert G.records(rows, val) == []


def test_whatif_rows_name_the_scheme_on_sglang_nvfp4_only() -> None:
    rows = [dict(framework="SGLang 0.5.9", precision="W=nvfp4;A=nvfp4;KV=unstated"),
            dict(framework="SGLang 0.5.9", precision="W=fp8;A=fp8;KV=unstated"),
            dict(framework="TensorRT-LLM 1.2.0rc6", precision="W=nvfp4;A=nvfp4;KV=unstated")]
    out = G.whatif_rows(rows, "w4a8")
    assert out[0]["precision"] == "W=nvfp4;A=nvfp4;KV=unstated scheme=w4a8"
    assert out[1:] == rows[1:] and rows[0]["precision"] == "W=nvfp4;A=nvfp4;KV=unstated"
    from planner.fidelity.rows import scheme_of_row
    assert scheme_of_row(out[0]["precision"], "nvidia/DeepSeek-R1-FP4") == ("w4a8", "fp8")


def test_a_flag_without_its_value_exits_2(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        G.main(["a.csv", "b.csv", "--engine"])
    assert e.value.code == 2 and "--engine needs a value" in capsys.readouterr().err
