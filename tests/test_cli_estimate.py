"""`planner estimate` through the CLI: JSON contract, exit codes, CLI/API agreement."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.catalog.store import Catalog
from planner.cli.root import app
from planner.estimate.run import estimate_from_spec
from planner.schemas.estimate import load_estimate_spec

ROOT = Path(__file__).resolve().parents[1]
RUNNER = CliRunner()
FLAGS = ["--model", "llama-2-70b", "--gpu", "h100-sxm", "--tp", "8", "--batch", "64",
         "--input-tokens", "1024", "--output-tokens", "256"]


def run(*args):
    return RUNNER.invoke(app, ["estimate", *args])


def test_json_contract():
    r = run(*FLAGS, "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    for key in ("weights_bytes", "kv_cache_bytes", "total_bytes", "capacity_bytes"):
        assert d["memory"][key] > 0
    for key in ("fits", "tpot_ms", "ttft_ms", "throughput_tokens_per_s", "cost_per_hour",
                "cost_per_million_tokens", "regime"):
        assert key in d
    assert d["fits"] is True and d["regime"] == "bandwidth-bound"
    assert d["cost_per_hour"] == pytest.approx(8 * 2.95)


def test_human_output_has_breakdown():
    r = run(*FLAGS)
    assert r.exit_code == 0
    for needle in ("Memory per GPU", "KV cache", "TPOT", "regime", "cost per million output tokens"):
        assert needle in r.stdout


@pytest.mark.parametrize("instance", sorted((ROOT / "instances").glob("estimate_*.yaml")))
def test_cli_and_api_agree_on_shipped_files(instance):
    r = run(str(instance), "--json")
    assert r.exit_code == 0, r.output
    spec, doc = load_estimate_spec(str(instance))
    api = estimate_from_spec(spec, doc).to_dict()
    assert json.loads(r.stdout) == json.loads(json.dumps(api))


def test_flags_override_file():
    inst = ROOT / "instances" / "estimate_llama70b_h100.yaml"
    d = json.loads(run(str(inst), "--batch", "8", "--json").stdout)
    assert d["batch"] == 8 and d["quantization"] == "w8a8-fp8"


@pytest.mark.parametrize("args,needle", [
    (["--model", "llama-2-70bx", "--gpu", "h100-sxm"], "did you mean llama-2-70b"),
    (["--model", "llama-2-70b", "--gpu", "h10"], "h100-sxm"),  # "h100" itself resolves (aliases)
    (["--model", "llama-2-70b", "--gpu", "a100-80gb", "--quantization", "w8a8-fp8"], "no fp8 math"),
    (["--model", "llama-2-70b", "--gpu", "h100-sxm", "--tp", "3"], "accepted: 1, 2, 4, 8"),
    (["--model", "llama-2-70b", "--gpu", "h100-sxm", "--quantization", "int3"], "unknown quantization 'int3'"),
    (["--model", "llama-2-70b", "--gpu", "h100-sxm", "--input-tokens", "5000"], "context"),
    (["--model", "llama-2-70b", "--gpu", "h100-sxm", "--batch", "0"], "batch"),
    (["--model", "llama-2-70b", "--gpu", "a10g"], "no peak FLOP/s"),
    (["--model", "llama-2-70b", "--gpu", "h100-sxm", "--preset", "fast"], "one of 'realistic'"),
])
def test_bad_input_exits_2_with_a_located_message(args, needle):
    r = run(*args)
    assert r.exit_code == 2
    assert needle in r.stderr and "Traceback" not in r.output


def test_bad_file_names_path_and_line(tmp_path):
    f = tmp_path / "e.yaml"
    f.write_text("model: llama-2-70b\ngpu: h100-sxm\ntpp: 2\n")
    r = run(str(f))
    assert r.exit_code == 2 and f"{f}:3: tpp: unknown key" in r.stderr and "accepted: schema_version" in r.stderr


def test_does_not_fit_is_reported_not_an_error():
    r = run("--model", "llama-3.1-405b", "--gpu", "l4", "--json")
    assert r.exit_code == 0
    assert json.loads(r.stdout)["fits"] is False


def test_catalog_override_flag(tmp_path):
    f = tmp_path / "prices.yaml"
    f.write_text("gpus:\n  h100-sxm:\n    price_usd_per_gpu_hour: 2.0\n")
    d = json.loads(run(*FLAGS, "--catalog", str(f), "--json").stdout)
    assert d["cost_per_hour"] == pytest.approx(16.0)
    assert Catalog.default().gpu("h100-sxm").price_usd_per_gpu_hour == 2.95


@pytest.mark.parametrize("flags,field", [
    (["--speculative-tokens", "-1"], "speculative_tokens"),
    (["--speculative-tokens", "64"], "speculative_tokens"),
    (["--speculative-tokens", "2", "--speculative-acceptance", "0"], "speculative_acceptance"),
    (["--speculative-tokens", "2", "--speculative-acceptance", "1.5"], "speculative_acceptance"),
    (["--speculative-tokens", "2", "--speculative-acceptance", "nan"], "speculative_acceptance"),
])
def test_assumption_flags_out_of_range_are_located_errors(flags, field):
    """Issue 23 item 9: flags that set assumptions are validated with a located error (exit 2),
    not an internal error (exit 3)."""
    r = run("--model", "llama-3.1-8b", "--gpu", "h100-sxm", *flags)
    assert r.exit_code == 2, r.output
    assert f"assumptions.{field}" in r.output and "<command line>" in r.output
    assert "internal error" not in r.output


def test_a_validator_speaks_in_its_own_words(tmp_path):
    """A schema validator's message reaches the user as written, without the validation
    library's prefix (issue 27: "Value error," leaked into messages)."""
    f = tmp_path / "e.yaml"
    f.write_text("model: llama-3.1-8b\ngpu: h100-sxm\nconcurrency: 4\nrequests_per_s: 2\n")
    r = run(str(f))
    assert r.exit_code == 2, r.output
    assert "give concurrency or requests_per_s, not both" in r.output
    assert "alue error" not in r.output


def test_a_calibrated_estimate_shows_the_uncalibrated_figures_beside_it():
    """Issue 22 item 4: wherever a calibration is applied, the priors' figure is shown beside it,
    and it is exactly what the same estimate gives without the calibration."""
    load = ["--concurrency", "32"]
    cal = json.loads(run(*FLAGS, *load, "--calibration", "default", "--json").stdout)
    none = json.loads(run(*FLAGS, *load, "--json").stdout)
    assert none["uncalibrated"] is None and none["calibration"] == "none"
    assert cal["calibration"] == "default"
    u = cal["uncalibrated"]
    for key in ("ttft_ms", "tpot_ms", "throughput_tokens_per_s", "decode_tokens_per_s", "cost_per_million_tokens"):
        assert u[key] == pytest.approx(none[key])
    assert cal["tpot_ms"] != pytest.approx(none["tpot_ms"])      # the calibration moves the step
    for key in ("ttft_mean_ms", "tpot_mean_ms", "tpot_p99_ms"):
        assert u["under_load"][key] == pytest.approx(none["under_load"][key])
    text = RUNNER.invoke(app, ["estimate", *FLAGS, *load, "--calibration", "default"]).output
    assert f"(uncalibrated {none['tpot_ms']:.2f})" in text
    assert "uncalibrated TTFT ms" in text and "uncalibrated TPOT ms" in text
    plain = run(*FLAGS, *load).output
    assert "uncalibrated" not in plain
