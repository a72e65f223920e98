"""`planner validate` / `planner calibrate` on the public measurements (issue 3)."""

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from reference import REFERENCE
from typer.testing import CliRunner

from planner.catalog.store import Catalog
from planner.cli.root import app
from planner.fidelity.calibrate import cross_validate, dataset
from planner.fidelity.predict import predict_all
from planner.physics.options import PRESETS
from planner.resolve.calibration import load_calibration

RUNNER = CliRunner()
MEASURED = REFERENCE / "measured-public.csv"  # ../shared
ROOT = Path(__file__).resolve().parents[1]
needs_data = pytest.mark.skipif(not MEASURED.exists(), reason="../shared/reference/measured-public.csv not present")
SMALL = ROOT / "tests" / "data" / "measured-small.csv"


def _json(args):
    r = RUNNER.invoke(app, args)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_every_row_is_predicted_or_skipped_with_a_reason():
    data = _json(["validate", str(SMALL), "--json"])
    with SMALL.open() as fh:
        n = len(list(csv.DictReader(fh)))
    assert len(data["rows"]) == n
    for r in data["rows"]:
        if r["skipped_reason"] is None:
            assert r["predicted"] > 0 and r["abs_pct_error"] >= 0
        else:
            assert r["predicted"] is None and len(r["skipped_reason"]) > 10
    assert {"GPU 'Gaudi 2 96GB' is not in the catalog (did you mean gaudi3?)", "TP, PP or GPU count not stated"} <= {
        r["skipped_reason"] for r in data["rows"]}
    for metric, s in data["summary"].items():
        assert {"rows", "median_abs_pct_error", "mean_abs_pct_error"} <= set(s)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory) -> tuple[dict, Path]:
    """`planner calibrate` on the public rows at the shipped 300 iterations, run once for the
    tests below (its fit and its leave-one-source-out fits are most of this file's time): the
    report and the calibration it wrote."""
    out = tmp_path_factory.mktemp("calibrate") / "cal.yaml"
    return _json(["calibrate", str(MEASURED), "--out", str(out), "--iters", "300", "--json"]), out


@needs_data
def test_the_default_calibration_follows_the_held_out_evidence(calibrated):
    """The default is the priors exactly when a leave-one-source-out calibration does not beat
    them (README, docs/validation.md): with each row under its engine's profile and the GEMM
    latency measured on an H100 it does not (mean |log error|, docs/validation.md). If a change
    makes the fit win held out, this fails: make `default` the default then. The held-out fits
    are calibrate's own at its 300 iterations (the figures docs/validation.md quotes), read
    from its report; ``test_the_held_out_loss_is_the_mean_log_error_of_the_held_out_rows``
    checks that loss by hand."""
    report, _ = calibrated
    loss = report["mean_abs_log_error"]
    assert loss["held_out"] >= loss["uncalibrated"]


def test_the_held_out_loss_is_the_mean_log_error_of_the_held_out_rows(tmp_path):
    """calibrate's report, by hand on the small file (8 rows, 5 sources, 10 iterations): its
    held-out loss is the mean |log(predicted / measured)| of the leave-one-source-out fits'
    predictions, its uncalibrated loss the priors'; the decision above reads the two."""
    report = _json(["calibrate", str(SMALL), "--out", str(tmp_path / "c.yaml"), "--iters", "10", "--json"])
    cat, base = Catalog.default(), PRESETS["realistic"]
    ds = dataset(str(SMALL), cat)
    assert len(set(ds.sources)) >= 2
    err = lambda p: float(np.mean(np.abs(np.log(p / ds.measured))))  # noqa: E731
    loss = report["mean_abs_log_error"]
    assert loss["held_out"] == pytest.approx(err(cross_validate(ds, base, cat, iters=10)), rel=1e-12)
    assert loss["uncalibrated"] == pytest.approx(err(predict_all(ds.cases, cat, base)), rel=1e-12)


@needs_data
def test_shipped_calibration_is_reproduced_by_calibrate(calibrated):
    report, out = calibrated
    shipped = load_calibration("default")
    fresh = load_calibration(str(out))
    for k, v in shipped.assumptions.items():
        assert fresh.assumptions[k] == pytest.approx(v, rel=1e-6, abs=1e-12)
    assert report["fitted"]["throughput"]["median_abs_pct_error"] < report["uncalibrated"]["throughput"][
        "median_abs_pct_error"]
    # issue 10's targets, held by the default (the priors: no value fitted to these rows; a
    # regression guard, not evidence of accuracy, since the terms were chosen with these rows
    # in view): throughput <= 15 %, TPOT and TTFT <= 20 %, no GPU family above 30 %
    default = report["uncalibrated"]
    assert default["throughput"]["median_abs_pct_error"] <= 15.0
    assert default["tpot"]["median_abs_pct_error"] <= 20.0 and default["ttft"]["median_abs_pct_error"] <= 20.0
    assert max(s["median_abs_pct_error"] for s in report["by_family"]["uncalibrated"].values()) <= 30.0
    loss = report["mean_abs_log_error"]
    assert loss["fitted"] < loss["uncalibrated"] < loss["held_out"]   # the fit overfits: priors are the default
    assert "nvidia-ada compute_efficiency = 0.2 (its lower bound)" in report["at_bounds"]


def test_values_pinned_at_a_bound_are_flagged():
    from planner.fidelity.calibrate import at_bounds
    from planner.resolve.calibration import Calibration

    cal = Calibration(assumptions={"memory_bandwidth_efficiency": 0.92, "compute_efficiency": 0.6},
                      per_family={"amd-cdna3": {"prefill_compute_efficiency": 0.2}})
    assert at_bounds(cal) == ["global memory_bandwidth_efficiency = 0.92 (its upper bound)",
                              "amd-cdna3 prefill_compute_efficiency = 0.2 (its lower bound)"]


def test_calibration_changes_estimate_and_plan():
    flags = ["estimate", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--batch", "64", "--json"]
    a = _json(flags)
    b = _json(flags + ["--calibration", "default"])
    assert a["tpot_ms"] != b["tpot_ms"]
    assert b["assumptions"]["per_layer_overhead_s"] == load_calibration("default").assumptions["per_layer_overhead_s"]
    p = _json(["plan", str(ROOT / "instances" / "latency_llama8b.yaml"), "--json", "--calibration", "default",
               "--top", "1"])
    assert p["plans"]


@pytest.mark.parametrize("text,needle", [
    ("assumptions: {warp_speed: 2}\n", "unknown calibration parameter"),
    ("assumptions: {compute_efficiency: .nan}\n", "finite number"),
    ("per_family: {}\n", "assumptions"),
])
def test_bad_calibration_file_exits_2(tmp_path, text, needle):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    r = RUNNER.invoke(app, ["estimate", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--calibration", str(f)])
    assert r.exit_code == 2 and needle in r.stderr


def test_a_finite_max_throughput_run_by_hand():
    """A run of N equal requests sent at once: floor(N/B) waves at batch B, then N mod B at
    their own batch (docs/validation.md). 3,000 requests at B = 1,024: 2,048 at 100 tok/s per
    request-second, 952 at 50: time 20.48 + 19.04 = 39.52, rate 3000 / 39.52 = 75.9 vs 100."""
    from planner.fidelity.predict import _finite_run
    assert _finite_run(3000, 1000.0, 0.0, 100.0, 1.0) == pytest.approx(1.0)
    assert _finite_run(3000, 1024.0, 952.0, 100.0, 50.0) == pytest.approx(3000 / 39.52 / 100)


def test_num_requests_is_read_as_the_runs_concurrency_cap():
    from planner.fidelity.rows import map_row
    row = {"source": "s", "model": "Llama-3.1-8B-Instruct", "precision": "W=fp8;A=fp8;KV=fp8",
           "gpu": "H100 SXM 80GB", "gpu_count": "1", "tp": "1", "pp": "1", "framework": "TensorRT-LLM",
           "input_len": "128", "output_len": "128",
           "batch_or_concurrency": "offline max-throughput (infinite request rate); num_requests=3000",
           "metric": "output_tokens_per_s_total", "value": "28312", "notes": ""}
    case = map_row(2, row, Catalog.default())
    assert not isinstance(case, str) and case.requests == 3000
    big = predict_all([case], Catalog.default(), PRESETS["realistic"])[0]
    uncapped = predict_all([dataclasses.replace(case, requests=None)], Catalog.default(), PRESETS["realistic"])[0]
    assert big <= uncapped      # the KV pool holds ~4,000 such sequences; the run never has more than 3,000


def _ttft_row(framework: str) -> dict:
    return {"source": "s", "model": "Llama-3.1-8B-Instruct", "precision": "W=fp8;A=fp8;KV=fp8",
            "gpu": "H100 SXM 80GB", "gpu_count": "1", "tp": "1", "pp": "1", "framework": framework,
            "input_len": "2048", "output_len": "1", "batch_or_concurrency": "batch 1", "metric": "ttft_ms",
            "value": "50", "notes": ""}


def test_a_tensorrt_llm_row_is_predicted_with_the_trtllm_profile():
    """A row measured on TensorRT-LLM gets the trtllm preset's profile (10 us per layer, FP8
    attention over an FP8 KV cache, the KV budget of the free memory), a vLLM row the realistic
    preset's, both read from PRESETS (planner/physics/options.py engine_profile); a calibration's
    fitted values go on top of the engine's, as they go on top of a plan's preset."""
    from planner.fidelity.predict import _configs
    from planner.fidelity.rows import map_row
    from planner.physics.perf import evaluate
    from planner.physics.space import GpuTable

    cat, base = Catalog.default(), PRESETS["realistic"]
    trt = map_row(2, _ttft_row("TensorRT-LLM v0.10"), cat)
    vllm = map_row(2, _ttft_row("vLLM 0.6"), cat)
    assert not isinstance(trt, str) and not isinstance(vllm, str)
    assert dict(trt.engine)["per_layer_overhead_s"] == PRESETS["trtllm"].per_layer_overhead_s == 10e-6
    assert dict(trt.engine)["attention_format"] == "fp8" and dict(trt.engine)["kv_budget"] == "free"
    assert dict(vllm.engine)["per_layer_overhead_s"] == base.per_layer_overhead_s == 20e-6
    assert dict(vllm.engine)["attention_format"] == "bf16"

    def by_hand(case, o):
        table = GpuTable.build([cat.gpu(case.gpu)])
        return float(evaluate(cat.model(case.model), table, _configs([case], [case.gpu], np.ones(1)), o).ttft[0]) * 1e3

    t_trt, t_vllm = predict_all([trt, vllm], cat, base)
    # an idle TTFT row measured in-process: no serving path (HTTP, tokenizer) in either profile
    assert dict(trt.engine)["serving_overhead_s"] == dict(vllm.engine)["serving_overhead_s"] == 0.0
    assert t_trt == pytest.approx(by_hand(trt, PRESETS["trtllm"].model_copy(update=dict(trt.engine))), rel=1e-12)
    assert t_vllm == pytest.approx(by_hand(vllm, base.model_copy(update=dict(vllm.engine))), rel=1e-12)
    # 32 layers x 10 us less per-layer overhead, and FP8 attention: TensorRT-LLM's prefill is faster
    assert t_trt < t_vllm - 32 * 10e-6 * 1e3 * 0.99
    fitted = {"per_layer_overhead_s": 50e-6, "prefill_compute_efficiency": 0.6}
    (t_cal,) = predict_all([trt], cat, base, fitted)
    assert t_cal == pytest.approx(by_hand(trt, PRESETS["trtllm"].model_copy(update={**dict(trt.engine), **fitted})),
                                  rel=1e-12)
