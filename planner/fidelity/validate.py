"""`planner validate`: predict published measurements and report the errors (docs/validation.md).

Each CSV row becomes a configuration and a prediction rule, or a stated reason why the
model cannot express it; no row is dropped silently.

Each row is predicted with the profile of the engine that measured it, as a plan that names
that engine is: the base assumptions, then the engine's profile (``engine_profile`` in
planner/physics/options.py, the one home of what a profile changes, derived from PRESETS)
and the memory fraction the row states, then a calibration's fitted values
(``row_assumptions``). That is the plan path's order (planner/resolve/calibration.py
``calibrated``: preset, then calibration): validation measures what a calibrated plan would
compute. A calibration therefore replaces an engine's prior for what it fits (the per-layer
and per-step overheads and the efficiencies, one global value for every engine) and keeps
what it does not fit (attention format, memory convention, all-to-all overlap). Fitting the
overheads per engine is not supported by the data: every vLLM row the model predicts comes
from one source (AMD's MI300X tables), so leaving that source out leaves no vLLM row to fit
from, and within it the engine cannot be separated from the GPU (docs/validation.md).
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import asdict, dataclass, field

import numpy as np

from planner.catalog.store import Catalog
from planner.errors import InputError
from planner.physics.load import Workload, load_metrics, step_physics
from planner.physics.load import engine as scheduler
from planner.physics.options import Assumptions, engine_profile
from planner.physics.perf import evaluate
from planner.physics.space import KV_NAMES, SCHEME_NAMES, Configs, GpuTable
from planner.resolve.calibration import FAMILY
from planner.yamlio import read_text_bounded

COLUMNS = ("source", "model", "precision", "gpu", "gpu_count", "tp", "pp", "framework", "input_len", "output_len",
           "batch_or_concurrency", "metric", "value", "notes")

MODELS = {  # measurement name (before any parenthesis, lowercase) -> catalog id
    "llama-2-70b-chat": "llama-2-70b", "llama-2-70b": "llama-2-70b",
    "llama-3.3-70b-instruct": "llama-3.1-70b",      # same architecture as Llama-3.1-70B
    "llama-3.1-70b-instruct": "llama-3.1-70b", "llama-3.1-405b-instruct": "llama-3.1-405b",
    "llama-3.1-8b-instruct": "llama-3.1-8b", "llama-2-7b": "llama-2-7b",
    "codellama-7b": "llama-2-7b",                    # llama 7B architecture (vocab 32,016 vs 32,000)
    "llama-7b": "llama-2-7b",                        # LLaMA-1 7B: the same dimensions
    "gpt-j-6b": "gpt-j-6b", "mixtral-8x7b-instruct": "mixtral-8x7b", "qwen3-235b-a22b": "qwen3-235b-a22b",
}
GPUS = {"h100 sxm 80gb": "h100-sxm", "h200 sxm 141gb": "h200", "mi300x 192gb": "mi300x", "b200 sxm 180gb": "b200",
        "a100 sxm 80gb": "a100-80gb", "l40s 48gb": "l40s", "rtx 4090 24gb": "rtx-4090", "rtx 3090 24gb": "rtx-3090",
        "h100 pcie 80gb": "h100-pcie", "gb200 (per gpu)": "gb200"}
GROUP = {"output_tokens_per_s_total": "throughput", "output_tokens_per_s_per_gpu": "throughput",
         "ttft_ms": "ttft", "prefill_tokens_per_s": "ttft", "decode_tokens_per_s": "tpot",
         "e2e_latency_s_mean": "tpot"}
LOAD_GROUP = {"throughput": "throughput_load", "ttft": "ttft_load", "tpot": "tpot_load", "itl": "tpot_load",
              "e2e": "tpot_load"}
"""Groups of the rows measured under load (a stated concurrency or request rate), reported apart."""
LOAD_METRIC = re.compile(r"^(ttft|tpot|itl|e2e)_ms_(mean|p50|p90|p95|p99)$")
_NUMBER = r"(\d+(?:\.\d+)?)"
_CLIENTS = (re.compile(r"concurren\w*\s*(?:of\s*|=\s*)?" + _NUMBER),
            re.compile(_NUMBER + r"\s+(?:concurrent\s+)?(?:clients|users)"))
_RATE = (re.compile(_NUMBER + r"\s*(?:qps|req/s|requests/s)"), re.compile(r"request rate\s*(?:of\s*|=\s*)?" + _NUMBER))
_SERVER_QPS = re.compile(r"target_qps\s*[= ]\s*" + _NUMBER)
MAX_LOAD = 1_000_000.0
"""Largest accepted concurrency (clients) or request rate (requests/s) of a row."""


def load_of(r: dict) -> tuple[str, float] | None:
    """The load a row was measured at: ("clients", N) for a closed loop of N concurrent clients,
    ("rate", requests/s) for arrivals at a rate (MLPerf Server: Poisson at its target QPS), or
    None for an idle or saturated row (static batch, batch 1, offline maximum throughput)."""
    text = r["batch_or_concurrency"].lower()
    for kind, patterns in (("clients", _CLIENTS), ("rate", _RATE)):
        for pat in patterns:
            m = pat.search(text)
            if m:
                return kind, float(m.group(1))
    if text.startswith("server"):
        m = _SERVER_QPS.search(text) or _SERVER_QPS.search(r["notes"].lower())
        if m:
            return "rate", float(m.group(1))
    return None


def describe_load(kind: str, value: float) -> str:
    return f"{value:g} clients (closed loop)" if kind == "clients" else f"{value:g} requests/s (Poisson)"


def engine_of(framework: str) -> str | None:
    """The engine a row's framework column names (an engine profile of PRESETS), or None
    (llama.cpp, TGI): no engine profile, the base assumptions (docs/validation.md)."""
    f = framework.lower()
    if "tensorrt" in f:           # TensorRT-LLM, MLPerf's "TensorRT 10.2 (TensorRT-LLM)", NIM's engine
        return "trtllm"
    if "vllm" in f:
        return "vllm"
    if "sglang" in f:
        return "sglang"
    return None


def engine_settings(framework: str, notes: str) -> tuple[tuple[str, object], ...]:
    """What a row's engine sets: the engine's profile (``engine_profile``: for TensorRT-LLM
    the KV cache gets 0.9 of the memory left after weights, FP8 attention where the KV cache
    is FP8, 10 us per layer; for vLLM 0.9 of all memory, 20 us per layer), with the memory
    fraction the source states (TensorRT-LLM 0.95 where it says so). Documented engine facts
    and the profiles' priors, not fitted parameters (docs/validation.md)."""
    engine = engine_of(framework)
    if engine is None:
        return ()
    profile = engine_profile(engine)
    if engine == "trtllm" and "kv_cache_free_gpu_mem_frac often 0.95" in notes:
        profile["memory_utilization"] = 0.95
    return tuple(profile.items())


def row_assumptions(o: Assumptions, engine: tuple[tuple[str, object], ...],
                    fitted: dict[str, float] | None = None) -> Assumptions:
    """A row's assumptions: the base, then its engine's settings, then the calibration's fitted
    values (the plan path's order, module docstring)."""
    return o.model_copy(update={**dict(engine), **(fitted or {})})


CUDA_GRAPH_BATCH_CAP = 8192
"""Largest batch the max-throughput rows allow (TensorRT-LLM notes: CUDA-graph batches up to 8192)."""
_REQUESTS = re.compile(r"num_requests\s*=\s*(\d+)")
"""A max-throughput run's stated request count (trtllm-bench: num_requests=3000)."""


@dataclass
class Case:
    """A measurement the model can express: a configuration and a prediction rule."""

    row: int
    model: str
    gpu: str
    scheme: str
    kv: str
    tp: int
    pp: int
    replicas: float
    rule: str              # max_throughput | static_throughput | ttft | e2e | decode_rate | prefill_rate
    batch: int
    input_tokens: int
    output_tokens: int
    per_gpu: bool
    gpu_count: int
    engine: tuple[tuple[str, object], ...] = ()   # the engine's profile and stated memory (not fitted)
    load: tuple[str, float] | None = None        # ("clients", N) or ("rate", requests/s), all replicas
    statistic: str = "mean"                       # of a latency measured under load
    scale: float = 1.0                            # seconds -> the row's unit (1e3 for *_ms_*)
    requests: int | None = None                   # a max-throughput run of this many requests, all at t = 0

    @property
    def under_load(self) -> bool:
        return self.load is not None


@dataclass
class RowResult:
    row: int
    source: str
    model: str
    gpu: str
    metric: str
    measured: float
    predicted: float | None = None
    abs_pct_error: float | None = None
    skipped_reason: str | None = None
    family: str | None = None
    group: str | None = None
    rule: str | None = None
    load: str | None = None            # the stated concurrency or request rate, in words


@dataclass
class Validation:
    rows: list[RowResult]
    summary: dict[str, dict[str, float]] = field(default_factory=dict)
    by_family: dict[str, dict[str, float]] = field(default_factory=dict)
    by_group: dict[str, dict[str, float]] = field(default_factory=dict)
    under_load: dict[str, dict[str, float]] = field(default_factory=dict)   # by group, apart from the rest
    calibration: str = "none"

    def to_dict(self) -> dict:
        return asdict(self)


MAX_CSV_BYTES = 16 * 1024 * 1024
MAX_FIELD_CHARS = 4096
COUNT_COLUMNS = {"tp": (1, 100_000), "pp": (1, 100_000), "gpu_count": (1, 1_000_000),
                 "input_len": (0, 100_000_000), "output_len": (0, 100_000_000)}
"""Columns that hold a count when stated as digits, with their largest accepted value."""


def load_measurements(path: str) -> list[dict]:
    """The rows of a measurements CSV, every one checked: as many fields as the header,
    no field over 4096 characters, counts >= 1, a finite positive value. Errors name the
    file, the row (its line in the file), the column, the value and what is accepted."""
    text = read_text_bounded(path, MAX_CSV_BYTES, "measurements file")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header: list[str] = next(reader, [])      # an empty file: every column missing, below
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise InputError("missing columns", file=path, path="header", value=", ".join(missing),
                             accepted=", ".join(COLUMNS))
        rows: list[dict[str, str]] = []
        for fields in reader:
            if not fields:
                continue                                   # a blank line, as csv.DictReader skips it
            where = f"row {len(rows) + 2}"
            if len(fields) != len(header):
                raise InputError("wrong number of fields", file=path, path=where, value=len(fields),
                                 accepted=f"{len(header)} fields, as in the header")
            r = dict(zip(header, fields))
            for col, value in r.items():
                if len(value) > MAX_FIELD_CHARS:
                    raise InputError("field too long", file=path, path=f"{where}.{col}", value=len(value),
                                     accepted=f"at most {MAX_FIELD_CHARS} characters")
            _check_row(path, where, r)
            rows.append(r)
        return rows
    except csv.Error as exc:
        raise InputError(f"not a valid CSV file: {exc}", file=path, line=reader.line_num) from None


def _check_row(path: str, where: str, r: dict) -> None:
    try:
        value = float(r["value"])
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value <= 0:
        raise InputError("value is not a finite positive number", file=path, path=f"{where}.value",
                         value=r["value"], accepted="a number > 0 in the metric's unit")
    for col, (low, top) in COUNT_COLUMNS.items():
        text = r[col].strip()
        if text.isascii() and text.isdigit() and not low <= int(text) <= top:
            raise InputError("count out of range", file=path, path=f"{where}.{col}", value=text,
                             accepted=f"{low}..{top}, or text saying it is not stated")
    m = re.search(r"batch (\d+)", r["batch_or_concurrency"].lower())
    if m and not 1 <= int(m.group(1)) <= 1_000_000:
        raise InputError("batch out of range", file=path, path=f"{where}.batch_or_concurrency",
                         value=m.group(1), accepted="batch 1..1000000")
    load = load_of(r)
    if load is not None and not 0 < load[1] <= MAX_LOAD:
        raise InputError("load out of range", file=path, path=f"{where}.batch_or_concurrency",
                         value=r["batch_or_concurrency"],
                         accepted=f"a concurrency or request rate > 0 and <= {MAX_LOAD:,.0f}")


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() else None


def _scheme(precision: str) -> tuple[str, str] | str:
    p = precision.lower()
    kv = "fp8" if "kv=fp8" in p else "fp16" if "kv=fp16" in p else "bf16"
    if "kv=unstated" in p and "modelopt" in p:
        kv = "fp8"   # ModelOpt FP8/NVFP4 checkpoints carry FP8 KV-cache scales (docs/validation.md)
    if "selected" in p:
        return "mixed per-layer precision (fp4 for some layers, fp8 elsewhere) is not expressible"
    if "q8_0" in p:
        return "gguf-q8_0", "fp16"
    if "q4_0" in p:
        return "gguf-q4_0", "fp16"
    if "nvfp4" in p:
        return "fp4", kv
    if "w=fp8" in p:
        return "w8a8-fp8", kv
    if "fp16" in p or "f16" in p or "bf16" in p:
        return "w16a16", kv
    return f"precision {precision!r} is not mapped to a scheme"


def map_row(i: int, r: dict, catalog: Catalog) -> Case | str:
    """A measurement row as a Case, or the reason it cannot be expressed; a row measured under
    load says so in its reason, so none is skipped as if it were an idle row."""
    load = load_of(r)
    case = _map_row(i, r, catalog, load)
    if isinstance(case, str) and load is not None:
        return f"under load, {describe_load(*load)}: {case}"
    return case


def _map_row(i: int, r: dict, catalog: Catalog, load: tuple[str, float] | None) -> Case | str:
    name = r["model"].split(" (")[0].strip().lower()
    model = MODELS.get(name)
    if model is None:
        return f"model {r['model']!r} is not in the catalog"
    gpu = GPUS.get(r["gpu"].strip().lower())
    if gpu is None:
        return f"GPU {r['gpu']!r} is not in the catalog"
    tp, pp, count = _int(r["tp"]), _int(r["pp"]), _int(r["gpu_count"])
    if tp is None or pp is None or count is None:
        return "TP, PP or GPU count not stated"
    metric, batch_text = r["metric"], r["batch_or_concurrency"].lower()
    if load is not None:
        return _load_case(i, r, model, gpu, tp, pp, count, load)
    if metric not in GROUP:
        return f"metric {metric!r} is not predicted (units ambiguous)"
    scheme = _lengths_and_scheme(r)
    if isinstance(scheme, str):
        return scheme
    s_in, s_out = max(_int(r["input_len"]) or 0, 1), max(_int(r["output_len"]) or 0, 1)
    m = re.search(r"batch (\d+)", batch_text)
    batch = int(m.group(1)) if m else 1
    n_req = _REQUESTS.search(batch_text)
    if metric.startswith("output_tokens_per_s"):
        if batch_text.startswith("offline max-throughput"):
            rule = "max_throughput"
        elif batch_text.startswith("static batch"):
            rule = "static_throughput"
        else:
            return f"throughput at {r['batch_or_concurrency']!r} is not a fixed batch or maximum throughput"
    else:
        rule = {"ttft_ms": "ttft", "prefill_tokens_per_s": "prefill_rate", "decode_tokens_per_s": "decode_rate",
                "e2e_latency_s_mean": "e2e"}[metric]
    return Case(row=i, model=model, gpu=gpu, scheme=scheme[0], kv=scheme[1], tp=tp, pp=pp,
                replicas=count / (tp * pp), rule=rule, batch=batch, input_tokens=s_in, output_tokens=s_out,
                per_gpu=metric.endswith("per_gpu"), gpu_count=count,
                engine=engine_settings(r["framework"], r["notes"]),
                requests=int(n_req.group(1)) if n_req and rule == "max_throughput" else None)


def _lengths_and_scheme(r: dict) -> tuple[str, str] | str:
    """(weight scheme, KV dtype) of a row with stated lengths, or why it cannot be predicted."""
    if r["input_len"].strip() == "variable" or r["output_len"].strip() == "variable":
        return "variable lengths without a stated mean input length"
    return _scheme(r["precision"])


def _load_case(i: int, r: dict, model: str, gpu: str, tp: int, pp: int, count: int,
               load: tuple[str, float]) -> Case | str:
    """A row measured at a stated concurrency or request rate: the load model's statistic
    (docs/load.md) for its metric; the engine's max-num-seqs is the stated batch, else the
    CUDA-graph cap, and the KV cache bounds it (physics/load.py's engine)."""
    metric = r["metric"]
    m = LOAD_METRIC.match(metric)
    if m:
        rule, statistic, scale = f"load_{m.group(1)}", m.group(2), 1e3
    elif metric == "e2e_latency_s_mean":
        rule, statistic, scale = "load_e2e", "mean", 1.0
    elif metric.startswith("output_tokens_per_s"):
        rule, statistic, scale = "load_throughput", "mean", 1.0
    else:
        return f"metric {metric!r} is not predicted under load (units ambiguous, or no statistic stated)"
    scheme = _lengths_and_scheme(r)
    if isinstance(scheme, str):
        return scheme
    stated = re.search(r"(?:batch|max_num_seqs|gpu_batch_size)[ =]+(\d+)", r["batch_or_concurrency"].lower())
    return Case(row=i, model=model, gpu=gpu, scheme=scheme[0], kv=scheme[1], tp=tp, pp=pp,
                replicas=count / (tp * pp), rule=rule,
                batch=int(stated.group(1)) if stated else CUDA_GRAPH_BATCH_CAP,
                input_tokens=max(_int(r["input_len"]) or 0, 1), output_tokens=max(_int(r["output_len"]) or 0, 1),
                per_gpu=metric.endswith("per_gpu"), gpu_count=count, engine=engine_settings(r["framework"], r["notes"]),
                load=load, statistic=statistic, scale=scale)


def _configs(cs: list[Case], gpu_ids: list[str], batch: np.ndarray) -> Configs:
    return Configs(gpu=np.array([gpu_ids.index(c.gpu) for c in cs]),
                   scheme=np.array([SCHEME_NAMES.index(c.scheme) for c in cs]),
                   kv=np.array([KV_NAMES.index(c.kv) for c in cs]),
                   tp=np.array([c.tp for c in cs], float), pp=np.array([c.pp for c in cs], float),
                   ep=np.ones(len(cs)), batch=batch.astype(float),
                   input_tokens=np.array([c.input_tokens for c in cs], float),
                   output_tokens=np.array([c.output_tokens for c in cs], float))


def predict_all(cases: list[Case], catalog: Catalog, o: Assumptions,
                fitted: dict[str, float] | None = None) -> np.ndarray:
    """Predictions for many cases: one vectorised evaluation per model, engine and pass, each
    row under ``row_assumptions`` (base ``o``, its engine, then the ``fitted`` calibration
    values); the rows measured under load through the load model (``predict_load``)."""
    out = np.full(len(cases), np.nan)
    loaded = [i for i, c in enumerate(cases) if c.under_load]
    if loaded:
        out[loaded] = predict_load([cases[i] for i in loaded], catalog, o, fitted)
        idle = [i for i, c in enumerate(cases) if not c.under_load]
        out[idle] = predict_all([cases[i] for i in idle], catalog, o, fitted)
        return out
    gpu_ids = sorted({c.gpu for c in cases})
    table = GpuTable.build([catalog.gpu(g) for g in gpu_ids])
    by_model: dict[tuple, list[int]] = {}
    for i, c in enumerate(cases):
        by_model.setdefault((c.model, c.engine), []).append(i)
    for (name, engine), idx in by_model.items():
        cs = [cases[i] for i in idx]
        o_engine = row_assumptions(o, engine, fitted)

        def grid(batch: np.ndarray):
            return evaluate(catalog.model(name), table, _configs(cs, gpu_ids, batch), o_engine)

        fixed = np.array([c.batch for c in cs], float)
        probe = grid(np.ones(len(cs)))
        # a run of N requests never has more than N in flight
        requests = np.array([c.requests or np.inf for c in cs], float)
        largest = np.minimum(np.clip(probe.max_batch, 1.0, CUDA_GRAPH_BATCH_CAP), requests)
        rule = np.array([c.rule for c in cs])
        ev = grid(np.where(rule == "max_throughput", largest, fixed))
        # the last wave of a finite run: N mod B requests, at that batch (batch 1 where none)
        stated = np.where(np.isfinite(requests), requests, 0.0)
        rest = np.mod(stated, np.maximum(largest, 1.0))
        ev_rest = grid(np.maximum(rest, 1.0))
        for k, c in enumerate(cs):
            out[idx[k]] = _rule(c, ev, k, o_engine)
            if c.rule == "max_throughput" and c.requests:
                out[idx[k]] *= _finite_run(c.requests, largest[k], rest[k], float(ev.throughput_tokens_per_s[k]),
                                           float(ev_rest.throughput_tokens_per_s[k]))
    return out


def _finite_run(n: int, batch: float, rest: float, x_full: float, x_rest: float) -> float:
    """Throughput of a run of ``n`` equal requests all sent at once, as a fraction of the
    steady state at ``batch``: floor(n / batch) waves at the full batch, then the ``rest``
    at their own, smaller batch (a wave of b requests takes b·O / X(b) at the model's own
    throughput X; docs/validation.md)."""
    full = (n - rest) / x_full + (rest / x_rest if rest > 0 else 0.0)
    return (n / full) / x_full


def predict_load(cases: list[Case], catalog: Catalog, o: Assumptions,
                 fitted: dict[str, float] | None = None) -> np.ndarray:
    """Rows measured under load: the closed forms of docs/load.md (physics/load.py's
    load_metrics) per replica, at the row's clients or rate divided over its replicas,
    Poisson arrivals and the row's fixed lengths; throughput summed over the replicas."""
    out = np.full(len(cases), np.nan)
    gpu_ids = sorted({c.gpu for c in cases})
    table = GpuTable.build([catalog.gpu(g) for g in gpu_ids])
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(cases):
        groups.setdefault((c.model, c.engine, c.load[0] if c.load else ""), []).append(i)
    for (name, engine, kind), idx in groups.items():
        cs = [cases[i] for i in idx]
        phys = step_physics(catalog.model(name), table, _configs(cs, gpu_ids, np.array([c.batch for c in cs])),
                            row_assumptions(o, engine, fitted))
        per_replica = np.array([c.load[1] / c.replicas if c.load else np.nan for c in cs])
        wl = Workload(isl=np.array([c.input_tokens for c in cs], float),
                      osl=np.array([c.output_tokens for c in cs], float))
        r = (load_metrics(phys, scheduler(phys), wl, clients=per_replica) if kind == "clients"
             else load_metrics(phys, scheduler(phys), wl, rate=per_replica))
        for k, c in enumerate(cs):
            if phys.max_batch[k] < 1:
                continue                       # no sequence fits: no prediction (infinite error)
            if c.rule == "load_throughput":
                # an unstable open loop is served at saturation; a closed loop is always stable
                x = r.throughput_tokens_per_s[k] if r.stable[k] else r.saturation_rate[k] * c.output_tokens
                out[idx[k]] = x * c.replicas / (c.gpu_count if c.per_gpu else 1.0)
            else:
                value = r.get(c.rule.removeprefix("load_"), c.statistic)[k]
                out[idx[k]] = value * c.scale if r.stable[k] else np.inf
    return out


def _rule(c: Case, ev, k: int, o: Assumptions) -> float:
    if c.rule == "max_throughput":
        total = ev.throughput_tokens_per_s[k] * c.replicas
        return total / c.gpu_count if c.per_gpu else total
    if c.rule in ("static_throughput", "e2e"):
        r = {f: float(getattr(ev, f)[k]) for f in ("prefill_flops", "peak_flops", "ttft", "ttft_compute", "ttft_comm")}
        e2e = _static_batch_ttft(r, c.batch, o) + (c.output_tokens - 1) * float(ev.tpot[k])
        if c.rule == "e2e":
            return e2e
        per_replica = float(ev.concurrency[k]) * c.output_tokens / e2e
        return per_replica / (c.tp * c.pp) if c.per_gpu else per_replica * c.replicas
    if c.rule == "ttft":
        return float(ev.ttft[k]) * 1e3
    if c.rule == "prefill_rate":
        return c.input_tokens / float(ev.ttft[k])
    return 1.0 / float(ev.tpot[k])   # decode_rate


def _static_batch_ttft(r: dict, batch: int, o: Assumptions) -> float:
    """Prefill of ``batch`` prompts together: FLOPs and collectives scale with the batch,
    the weights are read once (docs/validation.md)."""
    t_flops = r["prefill_flops"] / (r["peak_flops"] * o.prefill_compute_efficiency)
    overhead = r["ttft"] - r["ttft_compute"] - r["ttft_comm"]
    return max(batch * t_flops, r["ttft_compute"]) + batch * r["ttft_comm"] + overhead


def _stats(errors: list[float]) -> dict[str, float]:
    return {"rows": len(errors), "median_abs_pct_error": float(np.median(errors)),
            "mean_abs_pct_error": float(np.mean(errors))}


def validate(path: str, o: Assumptions, *, calibration=None, calibration_name: str = "none",
             catalog: Catalog | None = None) -> Validation:
    """Predict every row the model can express, with an optional calibration (global values
    and per-family efficiencies, planner/calibrate.py)."""
    catalog = catalog or Catalog.default()
    rows = load_measurements(path)
    out: list[RowResult] = []
    cases: list[tuple[RowResult, Case]] = []
    for i, r in enumerate(rows):
        measured = float(r["value"])       # checked finite and positive by load_measurements
        res = RowResult(row=i + 2, source=r["source"], model=r["model"], gpu=r["gpu"], metric=r["metric"],
                        measured=measured)
        case = map_row(i, r, catalog)
        load = load_of(r)
        res.load = describe_load(*load) if load else None
        if isinstance(case, str):
            res.skipped_reason = case
        else:
            res.family, res.group, res.rule = FAMILY[case.gpu], group_of(case, r["metric"]), case.rule
            cases.append((res, case))
        out.append(res)
    preds = np.full(len(cases), np.nan)
    fams = [FAMILY[c.gpu] for _, c in cases]
    for fam in sorted(set(fams)):
        idx = [k for k, f in enumerate(fams) if f == fam]
        fitted = calibration.values(fam) if calibration is not None else None
        preds[idx] = predict_all([cases[k][1] for k in idx], catalog, o, fitted)
    for (res, _), pred in zip(cases, preds):
        res.predicted = float(pred)
        res.abs_pct_error = abs(pred - res.measured) / res.measured * 100.0 if math.isfinite(pred) else float("inf")
    v = Validation(rows=out, calibration=calibration_name)
    done = [x for x in out if x.abs_pct_error is not None and x.load is None]
    loaded = [x for x in out if x.abs_pct_error is not None and x.load is not None]
    for key, attr, these in (("summary", "metric", done), ("by_family", "family", done), ("by_group", "group", done),
                             ("under_load", "group", loaded)):
        groups: dict[str, list[float]] = {}
        for x in these:
            if x.abs_pct_error is not None:
                groups.setdefault(getattr(x, attr), []).append(x.abs_pct_error)
        setattr(v, key, {k: _stats(e) for k, e in sorted(groups.items())})
    return v


def group_of(case: Case, metric: str) -> str:
    """The metric group a row's error is reported in; rows under load in groups of their own."""
    if case.under_load:
        return LOAD_GROUP[case.rule.removeprefix("load_")]
    return GROUP[metric]
