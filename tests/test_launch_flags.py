"""Launch files that start and serve the plan (issue 24 item 1): every flag one the named engine
release defines (planner/launch/data, extracted from the released packages by
scripts/extract_engine_flags.py), the checkpoint in the plan's format, the context limit from
the longest request, the benchmark on the server's port; one test per defect of issue 24's
first section (each fails on the code before this change)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from golden_plans import instances

from planner.catalog.store import Catalog
from planner.catalog.support import support
from planner.launch.flags import ENGINES, RELEASE_CHOICES, RELEASES, engine_flags, release_data
from planner.launch.scripts import benchmark, context_limit, launch, script
from planner.plan.result import PlanResult
from planner.plan.solve import plan as solve
from planner.schemas.plan import PlanSpec, load_plan_spec

CATALOG = Catalog.default()


def _plan(model: str, gpus: list[str], quantizations: list[str], tp: list[int], kv: list[str] | None = None,
          workload: dict | None = None, engine: str = "vllm") -> PlanResult:
    spec = PlanSpec.model_validate({
        "model": model, "workload": workload or {"input_tokens": 3000, "output_tokens": 400},
        "search": {"gpus": gpus, "quantizations": quantizations, "tp": tp, "pp": [1], "ep": [1], "kv_dtypes": kv or ["bf16"],
                   "engine": engine}, "top_k": 1})
    r = solve(spec, top_k=1, time_limit=60.0)
    assert r.plans, r.status
    return PlanResult.from_dict(json.loads(json.dumps(r.to_dict())))     # as `planner launch` reads it


@pytest.fixture(scope="module")
def shipped() -> dict[str, PlanResult]:
    out = {}
    for p in instances():
        spec, doc = load_plan_spec(str(p))
        r = solve(spec, doc, top_k=2, time_limit=60.0)
        out[p.stem] = PlanResult.from_dict(json.loads(json.dumps(r.to_dict())))
    return out


def _value(ln, flag):
    got = [a.value for a in ln.args if a.flag == flag]
    return got[0] if got else None


# --- the data: extracted flag lists with their versions --------------------------------------

@pytest.mark.parametrize("engine", sorted(RELEASES))
def test_each_release_has_its_flag_list(engine: str) -> None:
    for version in RELEASES[engine]:
        r = release_data(engine, version)
        assert r.version == version and r.flags
        assert (version in r.source) == r.extracted      # an extracted list names the wheel it came from
        if r.extracted:
            assert {"--port", "--kv-cache-dtype", "--quantization"} <= r.flags
            assert r.choices["--kv-cache-dtype"] and r.choices["--quantization"]
    assert engine_flags(engine, "previous").data.version == RELEASES[engine][1]


def test_sglang_and_vllm_listen_on_their_own_ports() -> None:
    assert release_data("sglang", RELEASES["sglang"][0]).defaults["--port"] == 30000
    assert release_data("vllm", RELEASES["vllm"][0]).defaults["--port"] == 8000


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("release", RELEASE_CHOICES)
def test_every_generated_flag_exists_in_the_named_release(shipped, engine: str, release: str) -> None:
    """For every shipped instance: the script names its release, every flag and YAML key is one
    the release defines, quantization and KV values are among its choices, the checkpoint stores
    the plan's format (or one the engine runs as it on that GPU), the context limit covers the
    longest request, and the benchmark targets the server's port."""
    fl = engine_flags(engine, release)
    data = fl.data
    seen = 0
    for name, r in shipped.items():
        for p in r.plans:
            ln = launch(r, p, engine, release=release)
            if not ln.ok:
                continue
            seen += 1
            assert {a.flag for a in ln.args} <= data.flags, (name, p.rank)
            for key in _dotted(ln.yaml):
                assert key in data.yaml_keys, (name, key)
            for flag in ("--kv-cache-dtype", "--quantization"):
                if _value(ln, flag) is not None:
                    assert _value(ln, flag) in data.choices[flag], (name, flag)
            if ln.yaml:
                assert ln.yaml["kv_cache_config"]["dtype"] in data.choices["kv_cache_config.dtype"]
            ck = ln.checkpoint
            assert ck is not None
            if ck["kind"] == "online":      # a 16-bit checkpoint the engine quantizes to the plan's format at load
                assert ck["stored"] == "w16a16" and _value(ln, "--quantization") == fl.online[p.quantization]
            elif ck["kind"] != "quantize":
                ran = support(CATALOG.gpu(p.gpu.partition("@")[0]), ck["stored"], p.kv_dtype, engine)
                assert ck["stored"] == p.quantization or ran.runs_as == p.quantization, (name, ck)
            else:
                assert not ln.model and "${MODEL:?" in script(r, p, engine, release=release)
            w = r.inputs["workloads"][p.workload]
            limit = _value(ln, fl.flags["max_len"])
            assert limit >= min(w["max_context_tokens"], w["input_tokens_max"] + w["output_tokens_max"])
            assert limit <= w["max_context_tokens"]
            assert _value(ln, fl.flags["port"]) == data.defaults["--port"] == ln.port
            if p.role == "aggregated":
                b = benchmark(r, p, port=ln.port, model=ln.model or None)
                assert dict((a.flag, a.value) for a in b.args)["--base-url"].endswith(f":{ln.port}")
            text = script(r, p, engine, release=release)
            assert data.version in text
    assert seen >= 1


def _dotted(d: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        out += _dotted(v, prefix + k + ".") if isinstance(v, dict) else [prefix + k]
    return out


# --- issue 24's defects, one test each ---------------------------------------------------------

def test_defect_gpt_oss_w8a16_on_a100_is_not_served_from_the_mxfp4_checkpoint() -> None:
    """`vllm serve openai/gpt-oss-20b --quantization compressed-tensors` (a w8a16 plan on A100):
    the checkpoint is MXFP4 and vLLM refuses to start. Now no quantization flag names a format
    the checkpoint is not in, and with no w8a16 checkpoint known the script stops until one is set."""
    r = _plan("gpt-oss-20b", ["A100-80GB"], ["w8a16"], [1])
    p = r.plans[0]
    ln = launch(r, p, "vllm")
    assert ln.ok and _value(ln, "--quantization") is None
    assert ln.model == "" and "w8a16" in ln.placeholder and ln.checkpoint["kind"] == "quantize"
    text = script(r, p, "vllm")
    assert 'MODEL="${MODEL:?set MODEL to' in text and "openai/gpt-oss-20b" not in text.split("MODEL=")[1][:40]


def test_defect_fp8_plans_serve_an_fp8_checkpoint() -> None:
    """`trtllm-serve Qwen/Qwen3-235B-A22B ...` for an FP8 plan served BF16 weights (117 GB per GPU
    instead of 59). Now the FP8 checkpoint (Qwen/Qwen3-235B-A22B-FP8)."""
    r = _plan("qwen3-235b-a22b", ["H200"], ["w8a8-fp8"], [8])
    p = r.plans[0]
    for engine in ENGINES:
        ln = launch(r, p, engine)
        assert ln.ok, ln.reason
        assert ln.model == "Qwen/Qwen3-235B-A22B-FP8" and ln.checkpoint["stored"] == "w8a8-fp8"
        assert f"MODEL={ln.model}" in script(r, p, engine)


def test_defect_the_context_limit_is_not_the_mean() -> None:
    """`--max-model-len 3400` was the mean prompt plus output: every longer request refused.
    A length distribution gives the longest request (a lognormal: its p99.9); one number is what
    the figures assume, not a bound, so the limit is the model's context."""
    spread = {"input_tokens": {"mean": 3000, "cv": 1.0}, "output_tokens": {"mean": 400, "cv": 0.5}}
    r = _plan("qwen3-235b-a22b", ["H200"], ["w8a8-fp8"], [8], workload=spread)
    p = r.plans[0]
    w = r.inputs["workloads"][p.workload]
    ln = launch(r, p, "vllm")
    limit = _value(ln, "--max-model-len")
    assert limit == w["input_lengths"]["p99.9"] + w["output_lengths"]["p99.9"]
    assert limit > w["input_tokens_max"] + w["output_tokens_max"] > 3400     # the old value: the top bucket
    assert _value(launch(r, p, "vllm", context="p99"), "--max-model-len") == \
        w["input_lengths"]["p99"] + w["output_lengths"]["p99"]
    fixed = _plan("qwen3-235b-a22b", ["H200"], ["w8a8-fp8"], [8])
    q = fixed.plans[0]
    limit, why = context_limit(fixed.inputs["workloads"][q.workload], q)
    assert limit > 3400 and "one length" in why
    assert _value(launch(fixed, q, "sglang"), "--context-length") == limit


def test_defect_sglang_is_benchmarked_on_its_own_port() -> None:
    """The SGLang script benchmarked http://localhost:8000; sglang.launch_server listens on 30000."""
    r = _plan("llama-3.1-8b", ["H100"], ["w16a16"], [1])
    p = r.plans[0]
    ln = launch(r, p, "sglang")
    assert ln.port == 30000 and _value(ln, "--port") == 30000
    text = script(r, p, "sglang")
    assert "--base-url http://localhost:30000" in text and "localhost:8000" not in text


def test_defect_trtllm_uses_extra_llm_api_options_and_chunked_prefill() -> None:
    """TensorRT-LLM 1.0 has no `--config`; `--extra_llm_api_options` works in every 1.x. Chunked
    prefill, which every latency figure assumes, is on (and vLLM's and SGLang's too)."""
    r = _plan("llama-3.1-8b", ["H100"], ["w16a16"], [1])
    p = r.plans[0]
    ln = launch(r, p, "trtllm")
    assert "--config" not in {a.flag for a in ln.args}
    assert _value(ln, "--extra_llm_api_options") == ln.yaml_file
    assert ln.yaml["enable_chunked_prefill"] is True
    assert any(a.flag == "--enable-chunked-prefill" for a in launch(r, p, "vllm").args)
    assert any(a.flag == "--enable-mixed-chunk" for a in launch(r, p, "sglang").args)
    assert "--config" not in script(r, p, "trtllm")


def test_defect_a_chat_service_serves_the_instruct_model() -> None:
    r = _plan("llama-3.1-70b", ["H100"], ["w16a16"], [4])
    p = r.plans[0]
    ln = launch(r, p, "vllm")
    assert ln.model == "meta-llama/Llama-3.1-70B-Instruct" and ln.checkpoint["tuning"] == "instruct"
    assert launch(r, p, "vllm", tuning="base").model == "meta-llama/Llama-3.1-70B"


def test_defect_engines_are_at_their_current_releases_and_the_previous_is_selectable() -> None:
    r = _plan("llama-3.1-8b", ["H100"], ["w16a16"], [1])
    p = r.plans[0]
    for engine, (current, previous) in RELEASES.items():
        assert current in launch(r, p, engine).version
        assert previous in launch(r, p, engine, release="previous").version
        assert previous in script(r, p, engine, release="previous")
    assert "0.10" not in launch(r, p, "vllm").version


def test_defect_sglang_runs_fp8_on_mi300x() -> None:
    assert support(CATALOG.gpu("mi300x"), "w8a8-fp8", "bf16", "sglang").ok
    r = _plan("llama-3.1-8b", ["MI300X"], ["w8a8-fp8"], [1], engine="sglang")
    ln = launch(r, r.plans[0], "sglang")
    assert ln.ok and ln.model == "RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8"


# --- what is served ---------------------------------------------------------------------------

def test_fp8_from_a_16_bit_checkpoint_where_none_is_published_is_quantized_at_load() -> None:
    """Llama 2 70B has no FP8 checkpoint in the catalog: vLLM and SGLang quantize the 16-bit
    chat checkpoint as they load it (--quantization fp8); TensorRT-LLM cannot, so its script stops
    until MODEL is set."""
    r = _plan("llama-2-70b", ["H100"], ["w8a8-fp8"], [4])
    p = r.plans[0]
    for engine in ("vllm", "sglang"):
        ln = launch(r, p, engine)
        assert ln.model == "meta-llama/Llama-2-70b-chat-hf" and _value(ln, "--quantization") == "fp8"
        assert ln.checkpoint["kind"] == "online"
    t = launch(r, p, "trtllm")
    assert t.ok and t.model == "" and t.checkpoint["kind"] == "quantize"


def test_the_named_repository_is_served_when_it_is_in_the_plans_format() -> None:
    r = _plan("Qwen/Qwen3-32B-FP8", ["H100"], ["fp8"], [1])
    ln = launch(r, r.plans[0], "vllm")
    assert ln.model == "Qwen/Qwen3-32B-FP8" and _value(ln, "--quantization") is None


def test_a_flag_the_release_lacks_is_refused_not_written(monkeypatch) -> None:
    from planner.launch import flags as flags_module
    r = _plan("llama-3.1-8b", ["H100"], ["w16a16"], [1])
    broken = replace(flags_module.VLLM, flags=flags_module.VLLM.flags | {"max_seqs": "--max-sequences"})
    monkeypatch.setitem(flags_module.ENGINES, "vllm", broken)
    ln = launch(r, r.plans[0], "vllm")
    assert not ln.ok and "--max-sequences" in ln.reason


def test_the_extractor_reads_a_wheel(tmp_path: Path) -> None:
    """scripts/extract_engine_flags.py on a hand-made SGLang-shaped wheel: fields with A[T, "help"]
    and A[T, Arg(cli_name, aliases, no_cli)], literal add_argument flags, the port default."""
    import subprocess
    import sys
    import zipfile
    whl = tmp_path / "sglang-9.9.9-py3-none-any.whl"
    fields = ('class P:\n    tp_size: A[int, Arg(help="t", aliases=["--tensor-parallel-size"])] = 1\n'
              '    port: A[int, "the port"] = 30000\n    hidden: A[bool, Arg(no_cli=True)] = False\n'
              '    other: A[str, Arg(cli_name="--renamed")] = "x"\n')
    server = 'def f(parser):\n    parser.add_argument("--config", type=str)\n'
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr("sglang/srt/arg_groups/fields/parallel.py", fields)
        z.writestr("sglang/srt/server_args.py", server)
        z.writestr("sglang/srt/arg_groups/choices.py", 'QUANTIZATION_CHOICES = ["fp8", "awq"]\n')
    out = Path(__file__).resolve().parents[1] / "planner" / "launch" / "data" / "sglang-9.9.9.json"
    try:
        run = subprocess.run([sys.executable, "scripts/extract_engine_flags.py", "sglang", str(whl)],
                             cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, check=False)
        assert run.returncode == 0, run.stderr
        d = json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
    assert d["flags"] == sorted(["--tp-size", "--tensor-parallel-size", "--port", "--renamed", "--config"])
    assert d["defaults"]["--port"] == 30000 and d["choices"]["--quantization"] == ["fp8", "awq"]


def test_scripts_stop_without_a_checkpoint(tmp_path: Path) -> None:
    """A placeholder script run as is exits before the engine starts, naming what to set."""
    import subprocess
    r = _plan("gpt-oss-20b", ["A100-80GB"], ["w8a16"], [1])
    text = script(r, r.plans[0], "vllm")
    bins = tmp_path / "bin"
    bins.mkdir()
    (bins / "vllm").write_text("#!/bin/sh\ntouch STARTED\n")
    (bins / "vllm").chmod(0o755)
    (tmp_path / "plan.sh").write_text(text)
    run = subprocess.run(["bash", "plan.sh"], cwd=tmp_path, env={"PATH": f"{bins}:/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=30, check=False)
    assert run.returncode != 0 and not (tmp_path / "STARTED").exists()
    assert re.search(r"set MODEL to a w8a16 checkpoint", run.stderr)
