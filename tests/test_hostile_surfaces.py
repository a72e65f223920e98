"""Generated hostile inputs on the newer surfaces (issue 23): plan and fleet files read back by
`planner launch`, `report` and `check`; trace files read by `planner trace` and by a plan's
`workload.trace`; names that flow into launch scripts and Kubernetes manifests.

Every case, whatever the input: exit 0, 1 or 2 only; never a traceback or an internal error
(exit 3); on exit 2 a located error (the bad file named) and nothing written; a generated
script, run with stubbed engines, runs nothing hidden in a name; a manifest holds a name only
as a value. ``CASES`` cases per surface per run (hypothesis, derandomized: the same cases each
run, so a failure reproduces), the CLI called in-process.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import typer.testing
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from planner.cli.root import app
from planner.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
PLAN = ROOT / "tests" / "data" / "bench" / "results" / "plan.json"
MEASURED = ROOT / "tests" / "data" / "bench" / "results" / "faster" / "aiperf.json"
CASES = int(os.environ.get("PLANNER_HOSTILE_CASES", "500"))     # at least 500 in CI (issue 23)
SETTINGS = settings(max_examples=CASES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
PWNED = "PWNED"
NAMES = [f"org/model\ntouch {PWNED}\n#", f"x\rtouch {PWNED}", f"a\u2028touch {PWNED}", f"$(touch {PWNED})",
         f"`touch {PWNED}`", f"x'; touch {PWNED}; '", f"x\nYAML\ntouch {PWNED}\ncat <<'YAML'",
         f"x\x00y\ttouch {PWNED}", f'x"; touch {PWNED}; "', f"x\n---\nkind: Secret\nmetadata: {{name: {PWNED}}}",
         f"{{{{ .Values.{PWNED} }}}}", f"<script>{PWNED}</script>", f"x\\\ntouch {PWNED}", f"-{PWNED}",
         f"x;touch {PWNED}", f"x|touch {PWNED}", f"x&&touch {PWNED}", f"${{IFS}}touch${{IFS}}{PWNED}",
         "", " ", "a" * 300, "ü-ñ", "../../etc/passwd", "h100-sxm", "main"]


class _Runner(typer.testing.CliRunner):
    """typer's runner with the app's click command built once (building it is most of an
    in-process call's time)."""

    _cli = typer.main.get_command(app)

    def invoke(self, app_, args=None, **kw):          # type: ignore[override]
        import typer.testing as tt
        build, tt._get_command = tt._get_command, lambda _: self._cli
        try:
            return super().invoke(app_, args, **kw)
        finally:
            tt._get_command = build


RUNNER = _Runner()


def _invoke(args: list[str]):
    r = RUNNER.invoke(app, args)
    out = r.output
    assert r.exit_code in (0, 1, 2), (args, r.exit_code, out[-2000:], r.exception)
    assert "Traceback" not in out and "internal error" not in out, (args, out[-2000:])
    return r, out


# -----------------------------------------------------------------------------------------
# Values
# -----------------------------------------------------------------------------------------

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.sampled_from([0, -1, 1, 2 ** 63, 10 ** 30]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 5e-324, 1e308, -1e-9]),
    st.text(max_size=20), st.sampled_from(NAMES), st.sampled_from(["NaN", "inf", "1e999", "8", "true", "null"]))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                       max_leaves=6)


def _paths(x, here=()):
    """Every path into a JSON value (keys and indices), the root included."""
    yield here
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _paths(v, (*here, k))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _paths(v, (*here, i))


def _mutate(doc, path: tuple, action: str, value):
    """``doc`` with the value at ``path`` replaced, deleted, or given an unknown key."""
    if not path:
        return value if action == "set" else doc
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    last = path[-1]
    if action == "set":
        parent[last] = value
    elif action == "delete":
        del parent[last]
    elif action == "extra" and isinstance(parent[last], dict):
        parent[last]["x-unknown"] = value
    elif action == "double" and isinstance(parent[last], list) and parent[last]:
        parent[last].append(copy.deepcopy(parent[last][0]))
    elif action == "empty":
        parent[last] = type(parent[last])() if isinstance(parent[last], (dict, list, str)) else None
    return doc


def _file_text(data) -> str:
    try:
        return json.dumps(data)            # NaN and Infinity written as JSON5 words: the reader refuses them
    except (ValueError, TypeError):
        return json.dumps(str(data))


# -----------------------------------------------------------------------------------------
# Surface 1: plan and fleet files -> launch, launch --k8s, report, check
# -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bases() -> list[dict]:
    plan = json.loads(PLAN.read_text())
    with tempfile.TemporaryDirectory() as d:
        fleet = Path(d) / "fleet.json"
        r = RUNNER.invoke(app, ["fleet", str(ROOT / "instances" / "fleet_disagg_wins.yaml"), "--no-simulate",
                                "--output", str(fleet), "--time-limit", "60"])
        assert r.exit_code == 0, r.output
        return [plan, json.loads(fleet.read_text())]


COMMANDS = ["launch", "launch-k8s", "report", "check"]


def _run_plan_command(command: str, path: Path, work: Path):
    out = work / "out"
    if command == "launch":
        args = ["launch", str(path), "--out", str(out)]
    elif command == "launch-k8s":
        args = ["launch", str(path), "--k8s", "kserve", "--out", str(out)]
    elif command == "report":
        args = ["report", str(path), "--out", str(out / "r.html")]
    else:
        args = ["check", str(path), str(MEASURED), "--append", str(out / "rows.csv")]
        out.mkdir()          # check appends into an existing folder; nothing may appear in it on exit 2
    r, text = _invoke(args)
    if r.exit_code == 2:      # located: the file named, or the option that does not fit it
        assert str(path) in text or str(MEASURED) in text or text.startswith("error: --"), text
        assert not out.exists() or not any(out.iterdir()), sorted(p.name for p in out.iterdir())
    return r, text, out


@SETTINGS
@given(data=st.data())
def test_generated_hostile_plan_files(bases, data):
    base = copy.deepcopy(bases[data.draw(st.integers(0, len(bases) - 1), label="base")])
    kind = data.draw(st.sampled_from(["mutate"] * 8 + ["truncate", "bytes"]), label="kind")
    if kind == "mutate":
        doc = base
        for _ in range(data.draw(st.integers(1, 3), label="mutations")):
            paths = list(_paths(doc))
            doc = _mutate(doc, data.draw(st.sampled_from(paths), label="path"),
                          data.draw(st.sampled_from(["set", "set", "set", "delete", "extra", "double", "empty"]),
                                    label="action"), data.draw(_values, label="value"))
        raw = _file_text(doc).encode()
    elif kind == "truncate":
        text = json.dumps(base).encode()
        raw = text[:data.draw(st.integers(0, len(text)), label="cut")]
    else:
        raw = data.draw(st.binary(max_size=200), label="bytes")
    command = data.draw(st.sampled_from(COMMANDS), label="command")
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        path = work / "plan.json"
        path.write_bytes(raw)
        r, text, out = _run_plan_command(command, path, work)
        assert path.read_bytes() == raw                       # the input is never written over
        if r.exit_code == 0 and command == "report":
            html = (out / "r.html").read_text()
            assert f"<script>{PWNED}" not in html             # free text escaped in the report


# -----------------------------------------------------------------------------------------
# Surface 2: trace files -> planner trace, workload.trace
# -----------------------------------------------------------------------------------------

_numbers = st.one_of(st.integers(-10, 10 ** 7), st.floats(allow_nan=True, allow_infinity=True),
                     st.sampled_from([0, 1, 2 ** 63, -(2 ** 63) - 1, 10 ** 400, 1.5, "12", "x", "", None, True,
                                      "NaN", "1e999", [], {}]))


@st.composite
def _mooncake(draw) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        obj = {"timestamp": draw(_numbers), "input_length": draw(_numbers), "output_length": draw(_numbers)}
        if draw(st.booleans()):
            obj["hash_ids"] = draw(st.one_of(st.lists(_numbers, max_size=4), _numbers))
        for key in draw(st.lists(st.sampled_from(list(obj)), max_size=2)):
            obj.pop(key, None)
        line = _file_text(obj)
        if draw(st.integers(0, 9)) == 0:
            line = draw(st.sampled_from(["[1, 2]", "{", "null", "NaN", '{"timestamp": Infinity}', "\ufeff{}",
                                         "[" * 5000 + "]" * 5000, "\x00"]))
        lines.append(line)
    return ("\n".join(lines)).encode("utf-8", errors="surrogatepass")


@st.composite
def _csv(draw) -> bytes:
    header = draw(st.sampled_from(["TIMESTAMP,ContextTokens,GeneratedTokens",      # Azure
                                   "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type",  # BurstGPT
                                   "ts,prompt,completion", "", "a,b"]))
    cells = st.one_of(st.text(max_size=12), _numbers.map(str), st.sampled_from(['"', '"a""b', "2023-11-16 18:15:46",
                                                                                "9999-99-99", "\x00"]))
    rows = [",".join(draw(st.lists(cells, min_size=0, max_size=7))) for _ in range(draw(st.integers(0, 6)))]
    return ("\n".join([header, *rows])).encode("utf-8", errors="surrogatepass")


_traces = st.one_of(_mooncake(), _csv(), st.binary(max_size=300),
                    st.sampled_from([b"\x1f\x8b\x08\x00", b"PK\x03\x04", b"\xff\xfe{}", b"", b"\n\n"]))


def _trace_spec(path: Path, fmt: str | None, window: dict | None):
    from planner.schemas.plan import PlanSpec
    from planner.yamlio import Document
    trace: dict = {"trace": str(path)}
    if fmt is not None:
        trace["format"] = fmt
        if fmt == "csv":
            trace["columns"] = {"timestamp": "ts", "input_tokens": "prompt", "output_tokens": "completion"}
    if window:
        trace["window"] = window
    return Document(data={"schema_version": 1, "model": "llama-3.1-8b", "workload": trace, "slo": {"tpot_ms": 100},
                          "objective": "cost_per_hour", "search": {"gpus": ["h100-sxm"]}},
                    file="plan.yaml").validate(PlanSpec)


@SETTINGS
@given(raw=_traces, fmt=st.sampled_from([None, None, "mooncake", "azure", "burstgpt", "csv"]),
       window=st.sampled_from([None, {"start_s": 0.0, "end_s": 1.0}, {"start_s": 1e9}]),
       scale=st.sampled_from([1.0, 1e-9, 1e6, 1e9]))
def test_generated_hostile_trace_files(raw, fmt, window, scale):
    """`planner trace FILE` (exit 0 or a located exit 2) and the same file as a plan's
    workload.trace, read by the resolver (a trace workload, or an InputError naming the file)."""
    from planner.resolve.workload import from_trace
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / ("t.csv" if fmt in ("azure", "burstgpt", "csv") else "t.jsonl")
        path.write_bytes(raw)
        args = ["trace", str(path), "--json", "--rate-scale", str(scale)]
        if fmt is not None:
            args += ["--format", fmt]
        if fmt == "csv":
            args += ["--column", "timestamp=ts", "--column", "input_tokens=prompt", "--column", "output_tokens=completion"]
        if window:
            args += ["--start-s", str(window["start_s"])] + (["--end-s", str(window["end_s"])] if "end_s" in window
                                                              else [])
        r, text = _invoke(args)
        if r.exit_code == 2:      # located: the trace named, or the option that does not fit
            assert str(path) in text or "<command line>" in text, text
        else:
            assert r.exit_code == 0 and json.loads(r.stdout)["requests"] >= 1
        try:
            w = from_trace(_trace_spec(path, fmt, window).workload, "plan.yaml", "workload")
        except InputError as e:
            assert e.file in (str(path), "plan.yaml"), (e.file, str(e))
            assert str(path) in str(e) or e.path, str(e)
        else:
            assert w is not None
        assert path.read_bytes() == raw


# -----------------------------------------------------------------------------------------
# Surface 3: names -> launch scripts (run with stubbed engines) and Kubernetes manifests
# -----------------------------------------------------------------------------------------

def _stubbed_run(scripts: list[Path], work: Path) -> set[str]:
    """Run each script with every program it may call replaced by a stub that exits 0; the
    names in the working folder afterwards."""
    bins = work / "bin"
    run = work / "run"
    bins.mkdir(parents=True)
    run.mkdir()
    for prog in ("vllm", "trtllm-serve", "python", "python3", Path(sys.executable).name):
        stub = bins / prog
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    for s in scripts:
        subprocess.run(["bash", str(s)], cwd=run, env={"PATH": f"{bins}:/usr/bin:/bin", "HOME": str(work)},
                       capture_output=True, timeout=30, check=False)
    return {p.name for p in run.iterdir()} | {p.name for p in work.iterdir()} | set(os.listdir(bins))


def _keys(x) -> set[str]:
    if isinstance(x, dict):
        return {str(k) for k in x} | set().union(*(_keys(v) for v in x.values()))
    if isinstance(x, list):
        return set().union(*(_keys(v) for v in x)) if x else set()
    return set()


def _name_fields(doc: dict) -> list[tuple]:
    """The places of a plan file a name comes from: the workload, GPU and model names and ids."""
    places = [("plans", 0, "workload"), ("plans", 0, "gpu")]
    for w in doc["inputs"].get("workloads", {}):
        places += [("inputs", "workloads", w, "hf_id"), ("inputs", "workloads", w, "model")]
    return places


@SETTINGS
@given(data=st.data())
def test_generated_hostile_names_in_scripts_and_manifests(bases, data):
    base = copy.deepcopy(bases[data.draw(st.integers(0, len(bases) - 1), label="base")])
    name = data.draw(st.one_of(st.sampled_from(NAMES), st.text(min_size=1, max_size=24),
                               st.builds(lambda a, b: a + b, st.sampled_from(NAMES), st.text(max_size=6))), label="name")
    for place in data.draw(st.lists(st.sampled_from(_name_fields(base)), min_size=1, max_size=3, unique=True),
                           label="places"):
        _mutate(base, place, "set", name)
    if data.draw(st.booleans(), label="rename workload") and base["inputs"].get("workloads"):
        old = next(iter(base["inputs"]["workloads"]))
        base["inputs"]["workloads"][name] = base["inputs"]["workloads"].pop(old)
        for p in base["plans"]:
            if p.get("workload") == old:
                p["workload"] = name
    target = data.draw(st.sampled_from(["scripts", "kserve", "llm-d", "dynamo"]), label="target")
    flags = []
    if target != "scripts" and data.draw(st.booleans(), label="flags"):
        flags = data.draw(st.sampled_from([["--namespace", name], ["--node-selector", f"gpu={name}"],
                                           ["--node-selector", f"{name}=x"], ["--prometheus", name]]), label="flag")
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        path = work / "plan.json"
        path.write_text(json.dumps(base))
        out = work / "out"
        args = ["launch", str(path), "--out", str(out), *flags] + ([] if target == "scripts" else ["--k8s", target])
        r, text = _invoke(args)
        if r.exit_code == 2:      # located: the file named, or the option that does not fit it
            assert str(path) in text or text.startswith("error: --"), text
            assert not out.exists()
            return
        assert r.exit_code == 0, text
        assert out.is_dir(), (args, text[-1500:])
        files = sorted(out.iterdir())
        assert files
        if target == "scripts":
            made = _stubbed_run([f for f in files if f.suffix == ".sh"], work / "sandbox")
            assert PWNED not in made, (name, made, [ln for f in files for ln in f.read_text().splitlines() if PWNED in ln])
        else:
            for f in files:
                if f.suffix not in (".yaml", ".yml"):
                    continue
                docs = [x for x in yaml.safe_load_all(f.read_text()) if x is not None]
                assert docs and all(isinstance(x, dict) for x in docs), f
                assert not any(PWNED in k for x in docs for k in _keys(x)), (name, f.read_text())
                assert all(x.get("kind") != "Secret" for x in docs)


# -----------------------------------------------------------------------------------------
# The defects the generated cases found, one test each (each failed before its fix)
# -----------------------------------------------------------------------------------------

def _edited(tmp_path, edit) -> Path:
    doc = json.loads(PLAN.read_text())
    edit(doc)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("command", ["launch", "report", "check"])
def test_a_wrong_kind_deep_in_a_plan_file_names_the_file(tmp_path, command):
    """A null share in a plan's regime fact, a list for its memory, an object for a latency
    target: exit 2 naming the file (before: TypeError, exit 3)."""
    def edit(d):
        d["plans"][0]["explanation"]["regime"]["context"]["shares"]["overhead"] = None
        d["plans"][0]["memory"]["capacity_bytes"] = [1]
        next(f for f in d["plans"][0]["explanation"]["headroom"] if f["unit"] == "s")["limit"] = {"ms": 1}
    path = _edited(tmp_path, edit)
    args = {"launch": ["launch", str(path), "--out", str(tmp_path / "o")],
            "report": ["report", str(path), "--out", str(tmp_path / "o" / "r.html")],
            "check": ["check", str(path), str(MEASURED)]}[command]
    r, text = _invoke(args)
    assert r.exit_code == 2 and str(path) in text, text
    assert not (tmp_path / "o").exists()


def test_a_plan_without_its_workload_record_names_the_file(tmp_path):
    path = _edited(tmp_path, lambda d: d["inputs"].pop("workloads"))
    r, text = _invoke(["launch", str(path)])
    assert r.exit_code == 2 and str(path) in text and "does not record its workload" in text, text


def test_half_a_disaggregated_pair_is_refused_not_an_empty_success(tmp_path, bases):
    fleet = copy.deepcopy(bases[1])
    assert {p["role"] for p in fleet["plans"]} >= {"prefill", "decode"}
    pre = next(p for p in fleet["plans"] if p["role"] == "prefill")
    pre["workload"] = "other"
    fleet["inputs"]["workloads"]["other"] = fleet["inputs"]["workloads"][next(iter(fleet["inputs"]["workloads"]))]
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(fleet))
    r, text = _invoke(["launch", str(path), "--k8s", "kserve", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "without its" in text and str(path) in text, text
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("flags", [["--node-selector", f"x\ntouch {PWNED}=1"], ["--node-selector", "$=x"],
                                   ["--node-selector", "gpu=a b"], ["--namespace", 'x",job=~".*'],
                                   ["--namespace", "Default"], ["--prometheus", "http://x\n/"],
                                   ["--prometheus", "prometheus"]])
def test_kubernetes_options_are_kubernetes_syntax(tmp_path, flags):
    """A node label key or value, a namespace (quoted into the PromQL query) or a Prometheus
    URL that is not Kubernetes' (or URL) syntax: a located error on the option."""
    r, text = _invoke(["launch", str(PLAN), "--k8s", "kserve", "--out", str(tmp_path / "o"), *flags])
    assert r.exit_code == 2 and text.startswith(f"error: {flags[0]}"), text
    assert not (tmp_path / "o").exists()
    ok, _ = _invoke(["launch", str(PLAN), "--k8s", "kserve", "--namespace", "team-a", "--node-selector",
                     "nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3", "--prometheus", "https://prom.example:9090"])
    assert ok.exit_code == 0


def test_a_trace_whose_first_line_holds_a_carriage_return(tmp_path):
    """Before: csv.Error from the format detection (exit 3)."""
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"[\rk\xfd@N|o\n")
    r, text = _invoke(["trace", str(path)])
    assert r.exit_code == 2 and str(path) in text and "format" in text, text


def test_a_trace_window_that_holds_nothing_names_the_trace(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"timestamp": 1, "input_length": 1, "output_length": 8}\n')
    r, text = _invoke(["trace", str(path), "--start-s", "1e9"])
    assert r.exit_code == 2 and str(path) in text and "window" in text, text
