"""`planner check`: a benchmark's result beside the plan's prediction.

Reads the result files of the three clients the launch scripts run (planner/launch/bench.py):
`vllm bench serve --save-result` JSON, AIPerf's ``profile_export_aiperf.json`` and GuideLLM's
benchmarks JSON. Each becomes a ``Measured``: the figures it reports (TTFT, TPOT, ITL,
end-to-end; mean and percentiles, in ms) with the run's load (its request rate or clients)
and mean lengths. ``compare`` puts each beside the plan's figure under load
(``plan.load.percentiles_ms``) with a verdict on the prediction (within the model's own
error band for the plan's GPU family and format, or faster, or slower) and, where the plan
has a latency target on that figure, whether the run meets it. ``rows`` writes them as
measurement rows in the CSV format of docs/validation.md (``planner calibrate --under-load``
fits them).
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.errors import InputError
from planner.fidelity.rows import COLUMNS
from planner.launch.bench import CLIENTS, METRICS
from planner.physics.quant import SCHEMES
from planner.plan.result import Plan, PlanResult
from planner.resolve.uncertainty import band_of
from planner.yamlio import load_json

MAX_RESULT_BYTES = 256 * 1024 * 1024
"""Largest result file read (a vLLM result with --save-detailed of 100,000 requests is ~100 MB)."""
STATISTICS = ("mean", "p50", "p90", "p95", "p99")
FIGURES = ("ttft", "tpot", "itl", "e2e")
ENGINE_NAMES = {"vllm": "vLLM", "sglang": "SGLang", "trtllm": "TensorRT-LLM"}
"""How a measurement row names the engine (rows.engine_of reads these names back)."""
LENGTH_TOLERANCE = 0.10
"""A run whose mean lengths differ from the plan's by more than this is not the plan's workload:
its end-to-end latency is not compared (it scales with the output length)."""


@dataclass
class Measured:
    client: str
    version: str
    file: str
    figures: dict[str, float]                 # "ttft_p99" -> ms
    rate: float | None = None                 # requests/s sent (open loop)
    concurrency: int | None = None            # clients (closed loop)
    input_mean: float | None = None
    output_mean: float | None = None
    completed: int | None = None
    date: str = ""


@dataclass
class Line:
    figure: str                  # ttft | tpot | itl | e2e
    statistic: str               # mean | p50 | ...
    predicted: float | None      # ms
    measured: float | None
    error: float | None          # measured / predicted - 1
    verdict: str                 # as predicted | slower than predicted | faster than predicted | not predicted | ...
    target: float | None = None  # ms, the plan's SLO on this figure and statistic
    target_path: str | None = None
    meets: bool | None = None


@dataclass
class Check:
    rank: int
    measured: Measured
    band: float
    band_source: str
    lines: list[Line] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict
        return asdict(self)


# --- reading the clients' files --------------------------------------------------------

def read_result(path: str) -> Measured:
    """A client's result file, the client told from its content."""
    data = load_json(Path(path), MAX_RESULT_BYTES, "benchmark result")
    if not isinstance(data, dict):
        raise InputError("not a benchmark result: a JSON object expected", file=path,
                         accepted="a vllm bench serve --save-result JSON, AIPerf's profile_export_aiperf.json or "
                                  "GuideLLM's benchmarks JSON")
    try:
        if "aiperf_version" in data or "time_to_first_token" in data:
            return _aiperf(data, path)
        if "benchmarks" in data:
            return _guidellm(data, path)
        if "mean_ttft_ms" in data or "mean_e2el_ms" in data:
            return _vllm(data, path)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise InputError(f"a benchmark result this planner cannot read: {type(exc).__name__}: {exc}",
                         file=path) from None
    raise InputError("not a result file of a known benchmark client", file=path,
                     accepted="vllm bench serve --save-result JSON (mean_ttft_ms ...), AIPerf "
                              "profile_export_aiperf.json (aiperf_version), GuideLLM benchmarks JSON (benchmarks)")


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def _vllm(d: dict, path: str) -> Measured:
    names = METRICS["vllm"]
    figures: dict[str, float] = {}
    for fig, name in names.items():
        for stat in STATISTICS:
            key = f"mean_{name}_ms" if stat == "mean" else f"{stat}_{name}_ms"
            v = _num(d.get(key))
            if v is None and stat == "p50":
                v = _num(d.get(f"median_{name}_ms"))
            if v is not None:
                figures[f"{fig}_{stat}"] = v
    done = int(d.get("completed") or 0)
    rate = _num(d.get("request_rate"))
    return Measured("vllm", f"vLLM {d['version']}" if d.get("version") else CLIENTS["vllm"].version, path, figures,
                    rate=rate, concurrency=d.get("max_concurrency") if isinstance(d.get("max_concurrency"), int)
                    else None,
                    input_mean=(d["total_input_tokens"] / done) if done and _num(d.get("total_input_tokens")) else None,
                    output_mean=(d["total_output_tokens"] / done) if done and _num(d.get("total_output_tokens"))
                    else None, completed=done, date=str(d.get("date") or ""))


def _aiperf(d: dict, path: str) -> Measured:
    figures: dict[str, float] = {}
    for fig, name in METRICS["aiperf"].items():
        m = d.get(name) or {}
        scale = 1e3 if m.get("unit") == "sec" else 1.0
        for stat in STATISTICS:
            v = _num(m.get("avg" if stat == "mean" else stat))
            if v is not None:
                figures[f"{fig}_{stat}"] = v * scale
    cfg = d.get("input_config") or {}
    phase: dict[str, Any] = next((p for p in cfg.get("phases", []) if p.get("kind") == "profiling"), {})
    return Measured("aiperf", f"AIPerf {d.get('aiperf_version', '?')}", path, figures,
                    rate=_num(phase.get("rate")), concurrency=phase.get("concurrency"),
                    input_mean=_num((d.get("input_sequence_length") or {}).get("avg")),
                    output_mean=_num((d.get("output_sequence_length") or {}).get("avg")),
                    completed=int(_num((d.get("request_count") or {}).get("avg")) or 0),
                    date=str(d.get("start_time") or ""))


def _guidellm(d: dict, path: str) -> Measured:
    benchmarks = d["benchmarks"]
    if len(benchmarks) != 1:
        raise InputError("a GuideLLM file with several benchmarks (a sweep): check one operating point at a time",
                         file=path, path="benchmarks", value=len(benchmarks), accepted="one benchmark")
    b = benchmarks[0]
    m = b["metrics"]
    figures: dict[str, float] = {}
    for fig, name in METRICS["guidellm"].items():
        s = (m.get(name) or {}).get("successful") or {}
        scale = 1e3 if name == "request_latency" else 1.0          # seconds; the others are in ms
        for stat in STATISTICS:
            v = _num(s.get("mean")) if stat == "mean" else _num((s.get("percentiles") or {}).get(stat))
            if v is not None:
                figures[f"{fig}_{stat}"] = v * scale
    profile = b.get("config", {}).get("profile", {})
    rate = profile.get("rate")
    streams = profile.get("streams")
    return Measured("guidellm", f"GuideLLM {d.get('metadata', {}).get('guidellm_version', '?')}", path, figures,
                    rate=_num(rate[0] if isinstance(rate, list) and rate else rate),
                    concurrency=int(streams[0]) if isinstance(streams, list) and streams else None,
                    input_mean=_num((m.get("prompt_token_count") or {}).get("successful", {}).get("mean")),
                    output_mean=_num((m.get("output_token_count") or {}).get("successful", {}).get("mean")),
                    completed=int((m.get("request_totals") or {}).get("successful") or 0),
                    date=str(b.get("start_time") or ""))


# --- comparing ---------------------------------------------------------------------------

def targets_of(plan: Plan) -> dict[str, tuple[float, str]]:
    """The plan's latency targets, "ttft_p99" -> (ms, YAML path), from its explanation's
    headroom facts (the SLO the plan was sized against)."""
    out: dict[str, tuple[float, str]] = {}
    e = plan.explanation
    for f in (e.headroom if e else []):
        if f.constraint in FIGURES and f.limit is not None and f.unit == "s":
            stat = f.context.get("statistic", "mean")
            out[f"{f.constraint}_{stat}"] = (f.limit * 1e3, f.path or "")
    return out


def compare(result: PlanResult, plan: Plan, m: Measured) -> Check:
    """Each figure the run reports beside the plan's: the prediction's verdict and the target's."""
    w = result.inputs.get("workloads", {}).get(plan.workload) or {}
    band, source = band_of(plan.gpu.partition("@")[0], SCHEMES[plan.quantization].math_format) \
        if plan.quantization in SCHEMES else (0.1186, "all GPUs")
    chk = Check(rank=plan.rank, measured=m, band=band, band_source=source)
    predicted = {k: float(v) for k, v in (plan.load.get("percentiles_ms") or {}).items()
                 if isinstance(v, (int, float)) and math.isfinite(v)}
    same_lengths = _lengths_match(w, m, chk.notes)
    _load_note(result, plan, m, chk.notes)
    targets = targets_of(plan)
    for fig in FIGURES:
        for stat in STATISTICS:
            key = f"{fig}_{stat}"
            got, want = m.figures.get(key), predicted.get(key)
            if got is None and want is None:
                continue
            line = Line(fig, stat, want, got, None, "")
            if got is None:
                line.verdict = f"not reported by {m.client}"
            elif want is None:
                line.verdict = "not predicted by the plan"
            elif fig == "e2e" and not same_lengths:
                line.verdict = "not compared: the run's lengths are not the plan's"
            else:
                line.error = got / want - 1.0 if want > 0 else None
                line.verdict = _verdict(line.error, band)
            if key in targets:
                line.target, line.target_path = targets[key]
                if got is not None:
                    line.meets = got <= line.target
            chk.lines.append(line)
    return chk


def _verdict(error: float | None, band: float) -> str:
    if error is None:
        return "not compared"
    if abs(error) <= band:
        return "as predicted"
    return "slower than predicted" if error > 0 else "faster than predicted"


def _lengths_match(w: dict, m: Measured, notes: list[str]) -> bool:
    ok = True
    for what, got, want in (("input", m.input_mean, w.get("input_tokens_mean")),
                            ("output", m.output_mean, w.get("output_tokens_mean"))):
        if got is None or not want:
            continue
        if abs(got / float(want) - 1.0) > LENGTH_TOLERANCE:
            ok = False
            notes.append(f"the run's mean {what} length {got:,.0f} tokens is not the plan's {float(want):,.0f}: "
                         "its latencies are not the plan's workload")
    return ok


def _load_note(result: PlanResult, plan: Plan, m: Measured, notes: list[str]) -> None:
    w = result.inputs.get("workloads", {}).get(plan.workload) or {}
    d = w.get("demand") or {}
    if m.concurrency and d.get("kind") == "clients":
        want = d["value"] / plan.replicas
        if abs(m.concurrency / want - 1.0) > 0.05:
            notes.append(f"the run had {m.concurrency} clients; the plan {want:g} per replica")
    elif m.rate is not None and math.isfinite(m.rate) and plan.load.get("requests_per_s_per_replica"):
        want = float(plan.load["requests_per_s_per_replica"])
        if abs(m.rate / want - 1.0) > 0.05:
            notes.append(f"the run sent {m.rate:g} requests/s; the plan {want:.4g} per replica: the queueing differs")


# --- measurement rows ------------------------------------------------------------------

def precision_of(scheme: str, kv: str) -> str:
    """A precision column rows.scheme_of_row reads back as (scheme, kv)."""
    return f"scheme={scheme};KV={kv}"


def rows(result: PlanResult, plan: Plan, chk: Check, engine: str) -> list[dict[str, str]]:
    """The run's figures as measurement rows (docs/validation.md columns, plus the layout
    columns of measured-silicon.csv): one row per figure and statistic measured, under the
    load the run was at, for one replica of the plan's layout."""
    w = result.inputs.get("workloads", {}).get(plan.workload) or {}
    m = chk.measured
    per = plan.gpus // max(1, plan.replicas)
    dp = plan.ep // plan.tp if plan.ep > plan.tp else 1
    seqs = int(plan.load.get("scheduler", {}).get("max_num_seqs") or 0)
    if m.concurrency:
        load = f"concurrency {m.concurrency} (closed loop, per replica)"
    elif m.rate is not None and math.isfinite(m.rate):
        load = f"{m.rate:g} req/s (Poisson)"
    else:
        raise InputError("the run's load (request rate or clients) is not in the result file: it cannot be a "
                         "measurement row", file=m.file, accepted="a run at a request rate or a concurrency")
    load += f", max_num_seqs={seqs}" if seqs else ""
    model = w.get("model", "")
    hf = w.get("hf_id")
    base = {"source": f"planner check: {m.version} result {m.file}"
                      + (f" ({m.date})" if m.date else ""),
            "model": f"{model} (HF {hf})" if hf else model,
            "precision": precision_of(plan.quantization, plan.kv_dtype),
            "gpu": plan.gpu.partition("@")[0], "gpu_count": str(per), "tp": str(plan.tp), "pp": str(plan.pp),
            "framework": ENGINE_NAMES.get(engine, engine),
            "input_len": str(int(round(m.input_mean or w.get("input_tokens_mean") or 0))),
            "output_len": str(int(round(m.output_mean or w.get("output_tokens_mean") or 0))),
            "batch_or_concurrency": load,
            "replicas": "1", "attention_tp": str(plan.tp), "attention_dp": str(dp),
            "moe_tp": "", "moe_ep": str(plan.ep) if plan.ep > 1 else ""}
    out = []
    for line in chk.lines:
        if line.measured is None or line.measured <= 0:
            continue
        note = (f"plan rank {plan.rank} predicted {line.predicted:.6g} ms" if line.predicted is not None
                else "not predicted by the plan") + f"; {m.completed or 0} requests; one replica"
        out.append({**base, "metric": f"{line.figure}_ms_{line.statistic}", "value": f"{line.measured:.6g}",
                    "notes": note})
    return out


FIELDS = (*COLUMNS, "replicas", "attention_tp", "attention_dp", "moe_tp", "moe_ep")


def append_csv(path: Path, new: list[dict[str, str]], protected: tuple[Path, ...] = ()) -> int:
    """Append ``new`` to the measurements CSV at ``path`` (created with the header if it does
    not exist; an existing file must have the same header: its rows are kept as they are, the
    new ones added after them). Returns the rows written."""
    from planner.yamlio import write_atomically

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(FIELDS), lineterminator="\n")
    for r in new:
        w.writerow(r)
    if not path.exists():
        header = io.StringIO()
        csv.writer(header, lineterminator="\n").writerow(FIELDS)
        write_atomically(path, header.getvalue() + buf.getvalue(), protected=protected, option="--append")
        return len(new)
    if not path.is_file() or any(path.resolve() == Path(p).resolve() for p in protected):
        raise InputError("--append needs a measurements CSV of its own (not an input of this run)", file=str(path),
                         path="--append", accepted="a new file, or one 'planner check --append' wrote")
    with path.open("rb") as f:
        first = f.readline(64 * 1024).decode("utf-8", "replace")
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size:
            f.seek(size - 1)
        ends = f.read(1) in (b"\n", b"")
    if tuple(next(csv.reader(io.StringIO(first)), [])) != FIELDS:
        raise InputError("the file's columns are not those of 'planner check' rows", file=str(path), path="header",
                         value=first.strip()[:200], accepted=",".join(FIELDS))
    with path.open("a", encoding="utf-8", newline="") as f:
        f.write(("" if ends else "\n") + buf.getvalue())
    return len(new)
