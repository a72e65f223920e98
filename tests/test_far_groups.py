"""benchmarks/far_groups.py's two bounds by hand (docs/validation.md, "The far-off groups"),
on the rows the section quotes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import far_groups as F  # noqa: E402

from planner.catalog.store import Catalog  # noqa: E402
from planner.physics.params import count_parameters  # noqa: E402

CAT = Catalog.default()


def test_implied_prefill_share_of_line_4430_by_hand() -> None:
    """64 clients, 2,000 in / 100 out, TTFT 122 ms, TPOT 9.7 ms: a request every
    (0.122 + 99 x 0.0097) / 64 s, 2 P x 2,000 FLOPs each, over one H200's 1,979 TFLOP/s."""
    p = 7.0e9
    cycle = 0.122 + 99 * 0.0097                              # 1.0823 s
    want = 64 / cycle * 2000 * 2 * p / 1.979e15             # 0.8366
    assert F.prefill_share(64, 122.0, 9.7, 2000, 100, p, 1, 1.979e15) == pytest.approx(want, rel=1e-12)
    assert want == pytest.approx(0.8366, abs=1e-3)
    # with the catalog's Llama-3.1-8B and H200: above the H200's measured FP8 matmul ceiling
    llama, h200 = count_parameters(CAT.models["llama-3.1-8b"]), CAT.gpus["h200"]
    peak = max(h200.peak_dense_flops_per_s.values())
    share = F.prefill_share(64, 122.0, 9.7, 2000, 100, llama.active_nonembedding, 1, peak)
    assert share > h200.measured_mamf_flops_per_s["fp8"] / peak


def test_wave_bound_by_hand() -> None:
    """352 prompts of 1,000 tokens at once on one GPU: the i-th (1-based) ends after i prompts,
    mean (352 + 1) / 2 = 176.5 prompts of 2 P x 1,000 FLOPs."""
    p, peak = 6.98e9, 1.979e15
    one = 2 * p * 1000 / peak                               # 7.054 ms a prompt
    assert F.wave_bound_ms(352, 1000, p, 1, 1, peak) == pytest.approx(176.5 * one * 1e3, rel=1e-12)
    assert F.wave_bound_ms(352, 1000, p, 1, 1, peak) == pytest.approx(1245.0, abs=1.0)
    assert F.wave_bound_ms(352, 1000, p, 4, 1, peak) == pytest.approx(1245.0 / 4, abs=0.3)
    assert F.wave_bound_ms(1, 1000, p, 1, 1, peak) == pytest.approx(one * 1e3, rel=1e-12)


def test_a_validate_csv_of_another_corpus_is_refused(tmp_path, capsys) -> None:
    """far_groups pairs the corpus's rows with validate's CSV by line: a CSV written for another
    file (measured-public.csv, an older corpus) would pair each row with another row's
    prediction and print figures for it; it is refused, exit 2, with the command that writes
    the right one. A missing CSV likewise, no traceback."""
    corpus = tmp_path / "c.csv"
    corpus.write_text("source,model,precision,gpu,gpu_count,tp,pp,framework,input_len,output_len,"
                      "batch_or_concurrency,metric,value,notes\n"
                      "t,Llama-3.1-8B,W=fp8;A=fp8;KV=unstated,H200 SXM 141GB,1,1,1,vLLM 0.12.0,2000,100,"
                      "concurrency 64 (closed loop),ttft_ms_mean,121.73,\n"
                      "t,Llama-3.1-8B,W=fp8;A=fp8;KV=unstated,H200 SXM 141GB,1,1,1,vLLM 0.12.0,2000,100,"
                      "concurrency 64 (closed loop),tpot_ms_mean,9.74,\n")
    rows = [{"row": "2", "metric": "ttft_ms_mean", "measured": "121.73"},
            {"row": "3", "metric": "tpot_ms_mean", "measured": "9.74"}]
    good = tmp_path / "v.csv"
    good.write_text("row,metric,measured\n" + "".join(f"{r['row']},{r['metric']},{r['measured']}\n" for r in rows))
    assert isinstance(F.validate_rows([{"metric": "ttft_ms_mean", "value": "121.73"},
                                       {"metric": "tpot_ms_mean", "value": "9.74"}], str(good)), dict)
    other = tmp_path / "other.csv"
    other.write_text("row,metric,measured\n2,ttft_ms_mean,55.0\n3,tpot_ms_mean,9.74\n")
    for path, why in ((other, "line 2 (ttft_ms_mean 121.73) is ttft_ms_mean 55.0"),
                      (tmp_path / "missing.csv", "is not validate's CSV (FileNotFoundError")):
        with pytest.raises(SystemExit) as exc:
            F.main([str(corpus), str(path)])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert why in err and "python -m planner validate" in err and "Traceback" not in err
