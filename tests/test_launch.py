"""Launch commands (planner/launch/) for every plan of every shipped instance, checked against
the plan (TP, PP, quantization, KV dtype, concurrency, tokens per step, memory fraction
recomputed here from the memory breakdown) and against each engine's flag table
(planner/launch/flags.py); the engine rules; the benchmark; the `planner launch` command."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from golden_plans import instances
from typer.testing import CliRunner

from planner.catalog.store import Catalog
from planner.catalog.support import support
from planner.cli.root import app
from planner.errors import InputError
from planner.launch.bench import CLIENTS
from planner.launch.scripts import ENGINES, benchmark, launch, script
from planner.plan.result import PlanResult
from planner.schemas.plan import load_plan_spec
from planner.whatif.relax import plan_and_relax

RUNNER = CliRunner()
CATALOG = Catalog.default()


def _solve(path) -> PlanResult:
    spec, doc = load_plan_spec(str(path))
    r = plan_and_relax(spec, doc, top_k=3, time_limit=60.0, simulate=False)
    return PlanResult.from_dict(json.loads(json.dumps(r.to_dict())))   # as `planner launch` reads it


@pytest.fixture(scope="module")
def results() -> dict[str, PlanResult]:
    return {p.stem: _solve(p) for p in instances()}


def _memory(plan, engine: str) -> float:
    """The test's own copy of engine-flags.md's memory semantics."""
    m = plan.memory
    need = {"vllm": m["weights_bytes"] + m["activation_bytes"] + m["kv_cache_bytes"] + m["reserve_bytes"],
            "sglang": m["weights_bytes"] + m["kv_cache_bytes"],
            "trtllm": m["kv_cache_bytes"]}[engine]
    room = m["capacity_bytes"] - (m["weights_bytes"] + m["activation_bytes"] if engine == "trtllm" else 0)
    return need / room


def _value(ln, flag):
    got = [a.value for a in ln.args if a.flag == flag]
    return got[0] if got else None


def test_every_feasible_shipped_instance_has_plans(results):
    assert sum(len(r.plans) for r in results.values()) >= 5


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_commands_follow_the_plan_and_the_flag_table(results, engine):
    fl = ENGINES[engine]
    table = {v for v in fl.flags.values() if v}
    seen = 0
    for name, r in results.items():
        w = r.inputs["workloads"]
        for p in r.plans:
            ln = launch(r, p, engine)
            # a searched entry (gpu@rented, gpu@spot: docs/workloads.md section 9) runs its catalog GPU
            ok = support(CATALOG.gpu(p.gpu.partition("@")[0]), p.quantization, p.kv_dtype, engine).ok
            if not ok:
                assert not ln.ok and ln.reason, (name, p.rank)
                assert "no " + engine + " command" in script(r, p, engine)
                continue
            if not ln.ok:      # an engine rule rejected it: the reason says which
                assert ln.reason
                continue
            seen += 1
            assert {a.flag for a in ln.args} <= table, f"{name} #{p.rank}: a flag not in {engine}'s table"
            assert all(a.why for a in ln.args), "every flag says where its value came from"
            per = p.gpus // p.replicas
            dp = max(1, p.ep // p.tp) if p.ep > p.tp else 1
            assert p.tp * p.pp * dp == per
            assert _value(ln, fl.flags["tp"]) == (p.tp if engine == "vllm" else p.tp * dp)
            assert _value(ln, fl.flags["pp"]) == (p.pp if p.pp > 1 else None)
            online = ln.checkpoint is not None and ln.checkpoint["kind"] == "online"
            if engine != "trtllm":     # a quantization flag only where the engine quantizes a 16-bit checkpoint
                assert _value(ln, fl.flags["quantization"]) == (fl.online[p.quantization] if online else None)
                assert _value(ln, fl.flags["kv_dtype"]) == fl.kv_dtype[p.kv_dtype]
                assert _value(ln, fl.flags["kv_dtype"]) in fl.accepted_kv
            else:
                assert ln.yaml["kv_cache_config"]["dtype"] == fl.kv_dtype[p.kv_dtype]
                assert ln.yaml["enable_attention_dp"] == (dp > 1)
            seqs = p.load["scheduler"]["max_num_seqs"] * p.pp * (1 if engine == "vllm" else dp)
            assert _value(ln, fl.flags["max_seqs"]) == seqs
            assert _value(ln, fl.flags["max_tokens"]) == p.load["scheduler"]["max_num_batched_tokens"]
            frac = _value(ln, fl.flags["memory"])
            want = _memory(p, engine)
            assert 0 < frac <= 1 and want <= frac + 1e-12 and frac - want < 1e-3 + 1e-12, (name, p.rank, frac, want)
            wl = w[p.workload]
            longest = math.ceil(wl["input_tokens_max"] + wl["output_tokens_max"])
            assert min(wl["max_context_tokens"], longest) <= _value(ln, fl.flags["max_len"]) <= wl["max_context_tokens"]
            assert wl["num_attention_heads"] % p.tp == 0
            if engine == "vllm" and p.ep > 1:
                assert p.ep == p.tp * dp and _value(ln, "--enable-expert-parallel") is None
                assert any(a.flag == "--enable-expert-parallel" for a in ln.args)
            assert ENGINES[engine].version in script(r, p, engine)
            assert ln.command().startswith(fl.program.split()[0])
    assert seen >= 1, f"no shipped plan runs on {engine}"


def test_the_benchmark_runs_at_the_plans_operating_point(results):
    """Every client's command at the plan's rate or clients, with the workload's mean lengths,
    asking for the plan's percentiles; every flag one the client's named release defines."""
    for r in results.values():
        for p in r.plans:
            wl = r.inputs["workloads"][p.workload]
            d = wl["demand"]
            for client in CLIENTS:
                b = benchmark(r, p, client)
                flags = {a.flag: a.value for a in b.args}
                assert set(flags) <= CLIENTS[client].flags, client
                assert b.expected_ms == p.load["percentiles_ms"]
                if client == "vllm":
                    if d is not None and d["kind"] == "clients":
                        assert flags["--max-concurrency"] == round(d["value"] / p.replicas)
                    elif flags["--dataset-name"] == "random":
                        assert flags["--request-rate"] == pytest.approx(p.load["requests_per_s_per_replica"],
                                                                        abs=1e-3)
                        assert flags["--random-input-len"] == round(wl["input_tokens_mean"])
                    assert "99" in flags["--metric-percentiles"].split(",")
                if client == "aiperf" and "--isl" in flags:
                    assert flags["--isl"] == round(wl["input_tokens_mean"])
                    assert flags.get("--request-rate", p.load["requests_per_s_per_replica"]) == \
                        pytest.approx(p.load["requests_per_s_per_replica"], abs=1e-3) or "--concurrency" in flags


def test_engine_rules_reject_a_bad_layout(results):
    r = next(r for r in results.values() if r.plans and
             any(launch(r, p, "vllm").ok for p in r.plans))
    p = next(p for p in r.plans if launch(r, p, "vllm").ok)
    heads = r.inputs["workloads"][p.workload]["num_attention_heads"]
    bad_tp = next(t for t in (3, 5, 7, 6) if heads % t)
    bad = replace(p, tp=bad_tp, gpus=bad_tp * p.pp * p.replicas)
    ln = launch(r, bad, "vllm")
    assert not ln.ok and "does not divide" in ln.reason
    moe = replace(p, ep=2 * p.tp * 3, gpus=p.tp * p.pp * p.replicas)
    assert not launch(r, moe, "vllm").ok


def test_a_format_the_engine_does_not_run_gets_no_command(results):
    r = next(iter(results.values()))
    p = replace(r.plans[0], gpu="a100-80gb", quantization="fp4", kv_dtype="fp8")
    for e in ENGINES:
        ln = launch(r, p, e)
        assert not ln.ok and "does not run" in ln.reason


def test_cli_launch_writes_scripts_and_json(results, tmp_path):
    r = results["latency_llama8b"]
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(r.to_dict()))
    res = RUNNER.invoke(app, ["launch", str(path), "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert sorted(x.name for x in (tmp_path / "out").glob("plan1-*.sh")) == \
        ["plan1-sglang.sh", "plan1-trtllm.sh", "plan1-vllm.sh"]
    res = RUNNER.invoke(app, ["launch", str(path), "--engine", "vllm", "--json", "--rank", "1"])
    d = json.loads(res.stdout)
    assert [x["engine"] for x in d["launches"]] == ["vllm"]
    assert res.exit_code == 0


def test_cli_launch_bad_file_is_a_json_error(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    res = RUNNER.invoke(app, ["launch", str(bad), "--json"])
    assert res.exit_code == 2
    err = json.loads(res.stdout)
    assert err["exit_code"] == 2 and err["file"] == str(bad)
    human = res.stderr.strip()
    assert err["text"] == human and err["message"] in human and err["file"] in human


HOSTILE = ["org/model\ntouch PWNED\n#", "x\rtouch PWNED", "a\u2028touch PWNED", "$(touch PWNED)", "`touch PWNED`",
           "x'; touch PWNED; '", "x\nYAML\ntouch PWNED\ncat <<'YAML'", "x\x00y\ttouch PWNED"]


def _stubbed_run(script_text: str, tmp_path) -> set[str]:
    """Run a generated script with every program it calls replaced by a stub that only exits 0;
    return the files in the working folder afterwards."""
    import os
    import subprocess
    import sys
    work = tmp_path / "work"
    bins = tmp_path / "bin"
    work.mkdir(parents=True)
    bins.mkdir(parents=True)
    for prog in ("vllm", "trtllm-serve", "python", "python3", sys.executable.rsplit("/", 1)[-1]):
        stub = bins / prog
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    (work / "plan.sh").write_text(script_text)
    env = {"PATH": f"{bins}:/usr/bin:/bin", "HOME": str(tmp_path)}
    subprocess.run(["bash", "plan.sh"], cwd=work, env=env, capture_output=True, timeout=30, check=False)
    return {p.name for p in work.iterdir()} | {p.name for p in tmp_path.iterdir()} | set(os.listdir(bins))


@pytest.mark.parametrize("hostile", HOSTILE)
def test_generated_scripts_run_nothing_hidden_in_names(results, tmp_path, hostile):
    """Issue 23 item 2: free text from a plan file or a config.json (a model's name, a GPU id,
    a workload name) reaches the scripts only as quoted values or escaped comments: running
    every engine's script with stubbed engines creates no file but the scripts' own."""
    import copy
    name, result = next((k, r) for k, r in sorted(results.items()) if r.plans)
    plan = result.plans[0]
    inputs = copy.deepcopy(result.inputs)
    inputs["workloads"][plan.workload]["hf_id"] = hostile
    inputs["workloads"][hostile] = inputs["workloads"][plan.workload]
    bad = replace(result, inputs=inputs)
    for k, variant in enumerate([replace(plan, workload=hostile), replace(plan, gpu=hostile),
                                 replace(plan, role="decode", workload=hostile)]):
        for engine in ENGINES:
            try:
                text = script(bad, variant, engine, CATALOG)
            except InputError as e:         # a control character in a value: refused, nothing written
                assert "control character" in str(e)
                continue
            made = _stubbed_run(text, tmp_path / f"{engine}{k}")
            assert "PWNED" not in made, (name, engine, k, text)
