"""Issue 12, one test (or a few) per class: no traceback, no lost file, no wrong answer on
hostile input. Imports of new names are local so each test fails on its own before the fix."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from planner.cli.root import app

ROOT = Path(__file__).resolve().parents[1]
RUNNER = CliRunner()
CSV = ROOT / "tests" / "data" / "measured-small.csv"
TINY = {
    "schema_version": 1,
    "model": "llama-3.1-8b",
    "workload": {"input_tokens": 512, "output_tokens": 128},
    "search": {"gpus": ["h100-sxm"], "quantizations": ["w16a16"], "kv_dtypes": ["bf16"], "tp": [1, 2], "pp": [1],
               "max_batch": 64},
    "top_k": 2,
}


def _instance(tmp_path: Path, data: dict, name: str = "i.yaml") -> Path:
    f = tmp_path / name
    f.write_text(yaml.safe_dump(data))
    return f


def _run(*args: str):
    r = RUNNER.invoke(app, [str(a) for a in args])
    assert "Traceback" not in r.output and "internal error" not in r.output, r.output
    return r


def _flat(text: str) -> str:
    return " ".join(text.replace("\u2502", " ").split())


# --- class 1: Ctrl-C on every backend ---------------------------------------------------

@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_class1_ctrl_c_on_cpsat_exits_130_with_the_plans_so_far(tmp_path):
    out = tmp_path / "x.json"
    proc = subprocess.Popen([sys.executable, "-m", "planner", "plan", str(ROOT / "instances" / "deepseek_v3.yaml"),
                             "--json", "--output", str(out), "--backend", "cpsat", "--top", "50"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    # OR-Tools is imported when the solve starts (planner/backends/): wait for its library to be
    # mapped, then give the solve time to rank some plans, so that a loaded machine still slow in
    # its imports is not mistaken for a planner that loses its plans
    maps, deadline = Path(f"/proc/{proc.pid}/maps"), time.monotonic() + 120
    while maps.exists() and proc.poll() is None and time.monotonic() < deadline:
        try:
            if "ortools" in maps.read_text():
                break
        except OSError:
            break
        time.sleep(0.05)
    time.sleep(3 if maps.exists() else 4)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, stderr[-2000:])
    data = json.loads(stdout)
    assert data["interrupted"] is True
    assert data["status"] != ("infeasible" if not data["plans"] else "time_limit")
    assert json.loads(out.read_text())["interrupted"] is True


def test_class1_ctrl_c_inside_thread_start_leaves_no_cpsat_search_running(monkeypatch):
    """A Ctrl-C that lands inside ``Thread.start`` of the CP-SAT worker (after the thread
    began) comes out as KeyboardInterrupt with no search running behind it: the process
    would carry on (the plans so far) and abort at exit under a live solve."""
    import threading

    import planner.backends.cpsat as cpsat

    class Solver:
        solves = 0

        def Solve(self, cp):        # noqa: N802 - OR-Tools' name
            Solver.solves += 1
            return 0

        def StopSearch(self):       # noqa: N802
            pass

    class Thread(threading.Thread):
        def start(self):
            super().start()
            raise KeyboardInterrupt

    monkeypatch.setattr(cpsat.threading, "Thread", Thread)
    with pytest.raises(KeyboardInterrupt):
        cpsat._solve_interruptibly(Solver(), None)
    time.sleep(0.2)             # time enough for a worker that was let loose to solve
    assert Solver.solves == 0


def test_class1_interrupted_before_any_plan_is_its_own_status(monkeypatch):
    from planner.backends.cpsat import CpSatBackend
    from planner.plan.solve import plan
    from planner.schemas.plan import PlanSpec

    def stop(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(CpSatBackend, "solve", stop)
    r = plan(PlanSpec.model_validate(TINY), backend="cpsat", time_limit=5)
    assert r.interrupted and r.status == "interrupted" and not r.diagnosis


FLEET = {"workloads": [{"name": "chat", "model": "llama-3.1-8b", "input_tokens": 512, "output_tokens": 128,
                        "demand": {"requests_per_s": 120}, "slo": {"tpot_ms": 40}},
                       {"name": "qwen", "model": "qwen3-32b", "input_tokens": 1024, "output_tokens": 256,
                        "demand": {"requests_per_s": 12}, "slo": {"tpot_ms": 50}}],
         "search": {"gpus": ["h100-sxm", "l40s"], "quantizations": ["w8a8-fp8"], "kv_dtypes": ["fp8"], "tp": [1, 2],
                    "pp": [1], "batch_levels": [64]},
         "limits": {"inventory": {"h100-sxm": 3, "l40s": 8}}, "prices": {"usd_per_gpu_hour": {"h100-sxm": 3.0, "l40s": 1.0}}}


def _ctrl_c_in_phase(monkeypatch, backend_class, phase: str) -> tuple[list[str], list[str]]:
    """The backend's solve raises KeyboardInterrupt (a Ctrl-C) once, in phase ``phase`` of the
    first rank, and solves every other phase; returns the phases begun, in order, and the phase
    interrupted (clear both for the next run)."""
    import planner.plan.solve as S

    seen: list[str] = []
    raised: list[str] = []
    real_view, real_solve = S.with_objective, backend_class.solve

    def view(c, name):
        seen.append(name)
        return real_view(c, name)

    def solve(self, f, time_limit, seed=0, gap=0.0):
        if seen[-1] == phase and not raised:
            raised.append(phase)
            raise KeyboardInterrupt
        return real_solve(self, f, time_limit, seed=seed, gap=gap)

    monkeypatch.setattr(S, "with_objective", view)
    monkeypatch.setattr(backend_class, "solve", solve)
    return seen, raised


@pytest.mark.parametrize("kind", ["plan", "fleet"])
def test_class1_ctrl_c_in_a_tie_break_keeps_the_rank_its_objectives_proved(tmp_path, monkeypatch, kind):
    """Ctrl-C while a tie-break is solved: the objectives were proven, so that rank stands with
    the answer of the last finished phase (as a tie-break stopped by its time limit leaves it),
    the interrupted phase says so, and no later rank is solved; the CLI exits 130 with it."""
    from planner.backends.cpsat import CpSatBackend
    from planner.backends.milp import MilpBackend
    from planner.plan.solve import plan
    from planner.schemas.fleet import FleetSpec
    from planner.schemas.plan import PlanSpec

    backend_class, backend = (CpSatBackend, "cpsat") if kind == "plan" else (MilpBackend, "milp")
    spec = PlanSpec.model_validate(TINY) if kind == "plan" else FleetSpec.model_validate(FLEET)
    seen, raised = _ctrl_c_in_phase(monkeypatch, backend_class, "order")
    r = plan(spec, backend=backend, time_limit=30)
    assert raised == ["order"]
    assert r.interrupted and r.plans and {p.rank for p in r.plans} == {1}
    assert [(p.objective, p.status) for p in r.phases] == [(r.objective, "optimal"), ("gpus", "optimal"),
                                                           ("order", "interrupted")]
    assert r.status == "optimal" and r.answers[0].values["gpus"] == r.phases[1].value

    seen.clear(), raised.clear()
    out = tmp_path / "x.json"
    inst = _instance(tmp_path, TINY if kind == "plan" else FLEET)
    res = _run(kind, inst, "--json", "--backend", backend, "--output", out, *(("--no-simulate",) if kind == "plan"
                                                                              else ()))
    data = json.loads(out.read_text())
    assert raised == ["order"] and res.exit_code == 130
    assert data["interrupted"] is True and data["plans"] and len(data["answers"]) == 1
    assert [p["status"] for p in data["phases"]] == ["optimal", "optimal", "interrupted"]


def test_class1_ctrl_c_in_the_first_objective_still_has_nothing_proven(monkeypatch):
    from planner.backends.cpsat import CpSatBackend
    from planner.plan.solve import plan
    from planner.schemas.plan import PlanSpec

    seen, raised = _ctrl_c_in_phase(monkeypatch, CpSatBackend, "cost_per_million_tokens")     # TINY's objective
    r = plan(PlanSpec.model_validate(TINY), backend="cpsat", time_limit=30)
    assert r.interrupted and r.status == "interrupted" and not r.plans and not r.phases
    assert raised and "gpus" not in seen


def _ctrl_c_in_oracle_phase(monkeypatch, phase: str) -> list[str]:
    """The exhaustive oracle's tie rule raises KeyboardInterrupt (a Ctrl-C) once, in phase
    ``phase`` of the first rank, after its enumeration; returns the phase interrupted."""
    import planner.backends.exhaustive as E

    raised: list[str] = []
    real = E._tied

    def tied(v, keep, sense, tol, name=""):
        if name == phase and not raised:
            raised.append(phase)
            raise KeyboardInterrupt
        return real(v, keep, sense, tol, name)

    monkeypatch.setattr(E, "_tied", tied)
    return raised


@pytest.mark.parametrize("kind", ["plan", "fleet"])
def test_class1_ctrl_c_in_the_oracles_tie_break_keeps_the_rank_its_objectives_proved(tmp_path, monkeypatch, kind):
    """The exhaustive oracle as the other backends: a Ctrl-C while it ranks a tie-break keeps the
    rank as its objectives left it (the interrupted phase says so), no later rank; exit 130."""
    from planner.plan.solve import plan
    from planner.schemas.fleet import FleetSpec
    from planner.schemas.plan import PlanSpec

    spec = PlanSpec.model_validate(TINY) if kind == "plan" else FleetSpec.model_validate(FLEET)
    raised = _ctrl_c_in_oracle_phase(monkeypatch, "order")
    r = plan(spec, backend="exhaustive", time_limit=60)
    assert raised == ["order"]
    assert r.interrupted and r.plans and {p.rank for p in r.plans} == {1}
    assert [(p.objective, p.status) for p in r.phases] == [(r.objective, "optimal"), ("gpus", "optimal"),
                                                           ("order", "interrupted")]
    assert r.status == "optimal" and r.answers[0].values["gpus"] == r.phases[1].value
    whole = plan(spec, backend="exhaustive", time_limit=60)        # the tie-break only orders equal answers
    assert whole.answers[0].values[r.objective] == r.answers[0].values[r.objective]

    raised = _ctrl_c_in_oracle_phase(monkeypatch, "order")
    out = tmp_path / "x.json"
    res = _run(kind, _instance(tmp_path, TINY if kind == "plan" else FLEET), "--json", "--backend", "exhaustive",
               "--output", out, *(("--no-simulate",) if kind == "plan" else ()))
    data = json.loads(out.read_text())
    assert raised == ["order"] and res.exit_code == 130
    assert data["interrupted"] is True and data["plans"] and len(data["answers"]) == 1
    assert [p["status"] for p in data["phases"]] == ["optimal", "optimal", "interrupted"]


def test_class1_ctrl_c_in_the_oracles_first_objective_still_has_nothing_proven(monkeypatch):
    from planner.plan.solve import plan
    from planner.schemas.plan import PlanSpec

    raised = _ctrl_c_in_oracle_phase(monkeypatch, "cost_per_million_tokens")     # TINY's objective
    r = plan(PlanSpec.model_validate(TINY), backend="exhaustive", time_limit=30)
    assert raised and r.interrupted and r.status == "interrupted" and not r.plans and not r.phases


# --- class 3: large but valid numbers ---------------------------------------------------

@pytest.mark.parametrize("path,value,needle", [
    (("slo", "tpot_ms"), 1e9, "<= 10000000"),
    (("slo", "ttft_ms"), 1e300, "<= 10000000"),
    (("limits", "budget_usd_per_hour"), 1e15, "<= 1000000000"),
    (("workload", "demand", "output_tokens_per_s"), 1e15, "<= 1000000000"),
    (("prices", "usd_per_gpu_hour", "h100-sxm"), 1e9, "<= 10000"),
])
def test_class3_values_beyond_physical_ranges_are_located_errors(tmp_path, path, value, needle):
    data = json.loads(json.dumps(TINY))
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    r = _run("plan", _instance(tmp_path, data))
    assert r.exit_code == 2 and ".".join(path) in r.stderr and needle in r.stderr, r.stderr


@pytest.mark.parametrize("backend", ["cpsat", "milp", "highs", "exhaustive"])
def test_class3_largest_accepted_values_give_the_exact_answer_on_every_backend(backend):
    from planner.plan.solve import plan
    from planner.schemas.plan import PlanSpec

    free = PlanSpec.model_validate(TINY | {"objective": "tpot"})
    huge = PlanSpec.model_validate(TINY | {"objective": "tpot",
                                           "slo": {"tpot_ms": 1e7, "ttft_ms": 1e7, "e2e_latency_ms": 1e7},
                                           "limits": {"budget_usd_per_hour": 1e9, "power_cap_w": 1e10}})
    a, b = plan(free, backend=backend, time_limit=30), plan(huge, backend=backend, time_limit=30)
    assert b.status == a.status == "optimal"
    assert b.plans[0].objective_value == pytest.approx(a.plans[0].objective_value, rel=1e-9)


def test_class3_cpsat_rows_are_exact_in_64_bit_integers():
    from constraints.model import LinearModel
    from planner.backends.cpsat import translate

    m = LinearModel()
    x = m.var("x", 0, 1, integer=True)
    t = m.var("t", 0, 1e3, integer=False, dimension="seconds")
    m.row("redundant", "latency", {t: 1.0}, "<=", 1e300, "seconds")
    m.row("huge_coefficient", "budget", {x: 1e30}, "<=", 1.0, "usd_per_hour")
    m.objective, m.objective_dimension = {t: 1.0}, "seconds"
    cp, _ = translate(m)
    assert cp.Validate() == ""


# --- class 4: never write over a file read in the same run ------------------------------

def test_class4_plot_never_replaces_the_calibration(tmp_path):
    cal = tmp_path / "cal.png"          # any name: what matters is that this run read it
    cal.write_text((ROOT / "planner" / "catalog" / "data" / "calibration.yaml").read_text())
    before = cal.read_bytes()
    r = _run("validate", CSV, "--calibration", cal, "--plot", cal)
    assert r.exit_code == 2 and "read as input" in r.stderr
    assert cal.read_bytes() == before


def test_class4_output_never_replaces_hf_config_or_catalog_override(tmp_path):
    hf = tmp_path / "config.json"
    hf.write_text(json.dumps({
        "model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
        "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256, "max_position_embeddings": 131072}))
    over = tmp_path / "over.yaml"
    over.write_text("gpus:\n  h100-sxm:\n    price_usd_per_gpu_hour: 2.5\n")
    inst = _instance(tmp_path, TINY | {"model": {"hf_config": "config.json"}, "catalog": ["over.yaml"]})
    for target in (hf, over):
        before = target.read_bytes()
        r = _run("plan", inst, "--output", target)
        assert r.exit_code == 2 and "read as input" in r.stderr, r.stderr
        assert target.read_bytes() == before


# --- class 5: repeated list entries -----------------------------------------------------

@pytest.mark.parametrize("key,values", [("gpus", ["h100-sxm", "h100-sxm"]), ("quantizations", ["w16a16", "w16a16"]),
                                        ("tp", [1, 2, 1])])
def test_class5_repeated_entries_are_refused(tmp_path, key, values):
    data = json.loads(json.dumps(TINY))
    data["search"][key] = values
    data["limits"] = {"inventory": {"h100-sxm": 1}}
    r = _run("plan", _instance(tmp_path, data))
    assert r.exit_code == 2 and f"search.{key}" in r.stderr and "repeats entry" in r.stderr, r.stderr


# --- class 8: CLI values validated early -----------------------------------------------

def test_class8_cli_values(tmp_path):
    inst = _instance(tmp_path, TINY)
    r = _run("plan", inst, "--objective", "cheapest")
    assert r.exit_code == 2 and "'cheapest' is not one of" in _flat(r.stderr)
    r = _run("plan", inst, "--objective", "cost_per_hour")
    assert r.exit_code == 2 and "--objective" in r.stderr and "workload.demand" in r.stderr
    r = _run("plan", inst, "--time-limit", "nan")
    assert r.exit_code == 2 and "--time-limit" in r.stderr
    r = _run("plan", inst, "--objective", "gpus", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["objective"] == "gpus"
    assert "gpus" in (ROOT / "docs" / "instances.md").read_text().split("objective:")[1].split("\n")[0]


def test_class8_unexpected_exception_is_one_line_exit_3_and_debug_shows_it(tmp_path, monkeypatch):
    import planner.cli.plan_cmd as plan_cmd

    def boom(*a, **k):
        raise ZeroDivisionError("planted")

    monkeypatch.setattr(plan_cmd, "answer", boom)
    inst = _instance(tmp_path, TINY)
    r = RUNNER.invoke(app, ["plan", str(inst)])
    assert r.exit_code == 3 and "internal error" in r.stderr and "--debug" in r.stderr
    assert "Traceback" not in r.output and len(r.stderr.strip().splitlines()) == 1
    r = RUNNER.invoke(app, ["--debug", "plan", str(inst)])
    assert isinstance(r.exception, ZeroDivisionError)


# --- class 9: parser limits -------------------------------------------------------------

@pytest.mark.parametrize("text,needle", [
    ("model: " + "[" * 3000 + "]" * 3000 + "\n", "nesting deeper"),
    ("model: llama-3.1-8b\n<<: {top_k: 2}\n", "merge keys"),
    ("model: llama-3.1-8b\ntop_k: " + "9" * 5000 + "\n", "more than 100 digits"),
    ("model: llama-3.1-8b\nworkload: {input_tokens: 2001-13-45}\n", "cannot read this value"),
])
def test_class9_yaml_parser_limits_are_located_errors(tmp_path, text, needle):
    f = tmp_path / "i.yaml"
    f.write_text(text)
    r = _run("plan", f)
    assert r.exit_code == 2 and needle in r.stderr and str(f) in r.stderr, r.stderr


def test_class9_a_large_file_under_the_cap_parses():
    """Read whole, every value where it belongs (how fast: python benchmarks/yaml_parse.py;
    a unit test times nothing)."""
    from planner.yamlio import parse_yaml

    text = "a:\n" + "".join(f"  k{i}: [{i}, {i + 1}, x{i}]\n" for i in range(20000))
    assert 300_000 < len(text) < 2 * 1024 * 1024
    data = parse_yaml(text, "big.yaml").data["a"]
    assert len(data) == 20000 and data["k19999"] == [19999, 20000, "x19999"]


@pytest.mark.parametrize("loader", ["libyaml", "pure-python"])
def test_class9_the_planners_depth_check_answers_before_the_parsers(monkeypatch, loader):
    """PyYAML 6.0.4 with libyaml refuses 1,000-deep flow nesting in its own words before the
    planner sees the events; the planner reads such a file again and answers itself."""
    import yaml as pyyaml

    from planner import yamlio
    from planner.errors import InputError

    if loader == "pure-python":
        monkeypatch.setattr(yamlio, "_LOADER", pyyaml.SafeLoader)
    elif not hasattr(pyyaml, "CSafeLoader"):
        pytest.skip("PyYAML built without libyaml")
    with pytest.raises(InputError) as e:
        yamlio.parse_yaml("model: " + "[" * 3000 + "]" * 3000 + "\n", "deep.yaml")
    assert e.value.message.startswith(f"nesting deeper than {yamlio.MAX_DEPTH} levels") and e.value.file == "deep.yaml"


@pytest.mark.parametrize("content,needle", [
    (None, "directory"),
    ("[" * 100_000 + "]" * 100_000, "not a valid JSON config"),
    ('{"model_type": "llama", "hidden_size": ' + "9" * 5000 + "}", "not a valid JSON config"),
    ("x" * (5 * 1024 * 1024), "above the limit"),
])
def test_class9_hf_config_limits(tmp_path, content, needle):
    target = tmp_path / "cfg"
    if content is None:
        target.mkdir()
    else:
        target.write_text(content)
    r = _run("plan", _instance(tmp_path, TINY | {"model": {"hf_config": "cfg"}}))
    assert r.exit_code == 2 and needle in r.stderr, r.stderr


def test_class9_hf_config_with_a_bom_is_read(tmp_path):
    cfg = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
           "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256,
           "max_position_embeddings": 131072}
    (tmp_path / "config.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(cfg).encode())
    r = _run("plan", _instance(tmp_path, TINY | {"model": {"hf_config": "config.json"}}), "--json")
    assert r.exit_code == 0, r.stderr


# --- class 10: output paths ------------------------------------------------------------

def test_class10_unusable_output_paths_are_located_errors(tmp_path):
    inst = _instance(tmp_path, TINY)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "loop.json").symlink_to(tmp_path / "loop.json")
    (tmp_path / "adir.json").mkdir()
    for target in (tmp_path / "adir.json", tmp_path / "afile" / "out.json", tmp_path / "loop.json"):
        r = _run("plan", inst, "--output", target)
        assert r.exit_code == 2 and "--output" in r.stderr, (target, r.stderr)
    r = _run("calibrate", CSV, "--out", tmp_path / "afile" / "c.yaml", "--iters", "10")
    assert r.exit_code == 2 and "--out" in r.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_class10_unwritable_folder(tmp_path):
    inst = _instance(tmp_path, TINY)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        r = _run("plan", inst, "--output", ro / "o.json")
        assert r.exit_code == 2 and "--output" in r.stderr
    finally:
        ro.chmod(0o700)


def test_class10_outputs_get_the_permissions_a_user_expects(tmp_path):
    inst = _instance(tmp_path, TINY)
    old = os.umask(0o022)
    try:
        new = tmp_path / "new.json"
        assert _run("plan", inst, "--output", new).exit_code == 0
        assert new.stat().st_mode & 0o777 == 0o644
        kept = tmp_path / "kept.json"
        kept.write_text("{}")
        kept.chmod(0o640)
        assert _run("plan", inst, "--output", kept).exit_code == 0
        assert kept.stat().st_mode & 0o777 == 0o640
        plot = tmp_path / "p.png"
        assert _run("validate", CSV, "--plot", plot).exit_code == 0
        assert plot.stat().st_mode & 0o777 == 0o644
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    finally:
        os.umask(old)


# --- class 11: CSV rows and calibration values -----------------------------------------

def _csv_with(tmp_path: Path, edit) -> Path:
    import csv
    import io

    rows = list(csv.reader(io.StringIO(CSV.read_text())))
    rows[1] = edit(rows[1])
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    f = tmp_path / "m.csv"
    f.write_text(buf.getvalue())
    return f


def _set(i: int, value: str):
    return lambda row: [value if k == i else v for k, v in enumerate(row)]


@pytest.mark.parametrize("edit,needle", [
    (lambda row: row[:11], "row 2: wrong number of fields"),
    (_set(5, "0"), "row 2.tp: count out of range"),
    (_set(13, "x" * 130_000), "row 2.notes: field too long"),
    (_set(12, "nan"), "row 2.value: value is not a finite positive number"),
])
@pytest.mark.parametrize("command", ["validate", "calibrate"])
def test_class11_csv_rows_are_checked(tmp_path, edit, needle, command):
    f = _csv_with(tmp_path, edit)
    extra = ["--out", str(tmp_path / "c.yaml"), "--iters", "10"] if command == "calibrate" else []
    r = _run(command, f, *extra)
    assert r.exit_code == 2 and needle in r.stderr and str(f) in r.stderr, r.stderr


@pytest.mark.parametrize("section", ["assumptions", "per_family.nvidia-hopper"])
def test_class11_calibrated_efficiency_must_be_a_fraction(tmp_path, section):
    cal = yaml.safe_load((ROOT / "planner" / "catalog" / "data" / "calibration.yaml").read_text())
    node = cal
    for key in section.split("."):
        node = node[key]
    node["memory_bandwidth_efficiency"] = -0.5
    f = tmp_path / "cal.yaml"
    f.write_text(yaml.safe_dump(cal))
    r = _run("plan", _instance(tmp_path, TINY), "--calibration", f)
    assert r.exit_code == 2 and f"{section}.memory_bandwidth_efficiency" in r.stderr and "0 < value <= 1" in r.stderr


# --- class 12: status honesty -----------------------------------------------------------

@pytest.mark.parametrize("status", ["time_limit", "unknown"])
def test_class12_a_solver_without_an_answer_falls_back_to_the_incumbent_unproven(tmp_path, monkeypatch, status):
    """A solver that ends without an answer no longer leaves the run planless (issue 16): the
    enumerated incumbent is returned, and the output says it is not proven best."""
    from planner.backends.base import Solution, Status
    from planner.backends.cpsat import CpSatBackend

    monkeypatch.setattr(CpSatBackend, "solve", lambda self, f, t, seed=0, gap=0.0: Solution(Status(status), None))
    inst = _instance(tmp_path, TINY)
    r = _run("plan", inst, "--no-simulate")
    assert r.exit_code == 0 and "not proven" in r.stdout and "No feasible plan" not in r.stdout, r.stdout
    data = json.loads(_run("plan", inst, "--json", "--no-simulate").stdout)
    assert data["status"] == "feasible" and data["plans"]


def test_class12_unmapped_solver_status_is_unknown_not_time_limit():
    from ortools.sat.python import cp_model

    from planner.backends.base import Status
    from planner.backends.cpsat import status_of

    assert status_of(cp_model.UNKNOWN, elapsed=0.01, time_limit=20) == Status.UNKNOWN
    assert status_of(cp_model.UNKNOWN, elapsed=20.0, time_limit=20) == Status.TIME_LIMIT


def test_a_gpu_priced_at_zero_is_free_not_unpriced():
    """Found by the fuzzer: a price of 0.0 (a GPU already paid for) was read as "no price" and
    its cost as NaN; the models then saw a zero coefficient while the oracle dropped the row."""
    from planner.candidates.table import build_candidates
    from planner.plan.solve import solve
    from planner.resolve.problem import resolve
    from planner.schemas.plan import PlanSpec

    spec = PlanSpec.model_validate({
        "model": "llama-3.1-8b", "workload": {"input_tokens": 1, "output_tokens": 1}, "top_k": 1,
        "search": {"gpus": ["h100-sxm", "l40s"], "quantizations": ["w16a16"], "kv_dtypes": ["bf16"], "tp": [1],
                   "pp": [1], "max_batch": 1},
        "objective": "cost_per_million_tokens", "prices": {"usd_per_gpu_hour": {"h100-sxm": 0.0}}})
    p = resolve(spec)
    assert p.prices[p.table.ids.index("h100-sxm")] == 0.0
    c = build_candidates(p)
    for backend in ("exhaustive", "cpsat", "milp", "highs"):
        best = solve(p, c, backend=backend, top_k=1).plans[0]
        assert (best.gpu, best.objective_value) == ("h100-sxm", 0.0), backend
