"""Measurement rows: reading a measurements CSV and what each row says (docs/validation.md).

A row becomes a ``Case`` (a configuration and a prediction rule) or the reason it cannot be
expressed; no row is dropped silently. The 14 columns of docs/validation.md are read, and,
where a file has them, the columns of ``../shared/reference/measured-silicon.csv`` that say
what the 14 cannot (``measured-silicon.md``):

- the aggregated layout (``replicas``, ``attention_tp``, ``attention_dp``, ``moe_tp``,
  ``moe_ep``): attention TP x DP GPUs per replica, the MoE layers over the same GPUs;
- the disaggregated pools (``prefill_*``, ``decode_*``: one worker's layout and the worker
  counts, where stated; else those of the nearest stated point of the same recipe,
  ``pool_recipes``);
- the lengths (``length_distribution``: InferenceX draws each length uniformly on
  [0.8 L, L]);
- the measurement a row repeats (``silicon_id``, ``same_measurement_as``: it counts once).

Names go through the catalog's resolver (``Catalog.checkpoint``, ``Catalog.gpu_id``), the one
every command uses; the engine and its version through ``engine_of``.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field

from planner.catalog.aliases import scheme_of
from planner.catalog.store import Catalog, ModelSpec
from planner.errors import InputError
from planner.physics.options import engine_profile
from planner.physics.quant import SCHEMES
from planner.yamlio import read_text_bounded

COLUMNS = ("source", "model", "precision", "gpu", "gpu_count", "tp", "pp", "framework", "input_len", "output_len",
           "batch_or_concurrency", "metric", "value", "notes")
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
CUDA_GRAPH_BATCH_CAP = 8192
"""Largest batch the max-throughput rows allow (TensorRT-LLM notes: CUDA-graph batches up to 8192)."""
_REQUESTS = re.compile(r"num_requests\s*=\s*(\d+)")
"""A max-throughput run's stated request count (trtllm-bench: num_requests=3000)."""
MAX_CSV_BYTES = 16 * 1024 * 1024
MAX_FIELD_CHARS = 4096
COUNT_COLUMNS = {"tp": (1, 100_000), "pp": (1, 100_000), "gpu_count": (1, 1_000_000),
                 "input_len": (0, 100_000_000), "output_len": (0, 100_000_000)}
"""Columns that hold a count when stated as digits, with their largest accepted value."""
LAYOUT_COLUMNS = ("replicas", "attention_tp", "attention_dp", "moe_tp", "moe_ep")
POOL_FIELDS = ("workers", "tp", "pp", "attention_dp", "moe_tp", "moe_ep")
_UNIFORM = re.compile(r"uniform on \[\s*(\d*\.?\d+)\s*l\s*,\s*l\s*\]")


# --- reading ------------------------------------------------------------------------

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
    for col in LAYOUT_COLUMNS + tuple(f"{p}_{f}" for p in ("prefill", "decode") for f in POOL_FIELDS):
        text = r.get(col, "").strip()
        if text.isascii() and text.isdigit() and not int(text) <= 100_000:
            raise InputError("count out of range", file=path, path=f"{where}.{col}", value=text,
                             accepted="0..100000, or empty where not stated")
    m = re.search(r"batch (\d+)", r["batch_or_concurrency"].lower())
    if m and not 1 <= int(m.group(1)) <= 1_000_000:
        raise InputError("batch out of range", file=path, path=f"{where}.batch_or_concurrency",
                         value=m.group(1), accepted="batch 1..1000000")
    load = load_of(r)
    if load is not None and not 0 < load[1] <= MAX_LOAD:
        raise InputError("load out of range", file=path, path=f"{where}.batch_or_concurrency",
                         value=r["batch_or_concurrency"],
                         accepted=f"a concurrency or request rate > 0 and <= {MAX_LOAD:,.0f}")


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


def cell_int(text: str) -> int | None:
    """A cell's whole number, None where it is blank or not plain digits."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() else None


# --- what a row says -----------------------------------------------------------------

def engine_of(framework: str) -> tuple[str | None, str | None]:
    """(engine, version) a row's framework column names: the engine is a profile of PRESETS
    (None for llama.cpp, TGI: the base assumptions), the version the engine's own where the
    column states one ("SGLang 0.5.9" -> "0.5.9"; a Dynamo image tag is not the engine's)."""
    f = framework.lower()
    engine = ("trtllm" if "tensorrt" in f else "vllm" if "vllm" in f else "sglang" if "sglang" in f else None)
    m = re.search(r"(?:tensorrt-llm|vllm|sglang)\s+v?(\d+(?:\.\d+)+\S*)", f)
    return engine, (m.group(1) if m else None)


def cpp_runtime(framework: str) -> bool:
    """TensorRT-LLM's C++ runtime: before 1.0, its gptSessionBenchmark, MLPerf's TensorRT harness."""
    f = framework.lower()
    return engine_of(framework)[0] == "trtllm" and ("gptsessionbenchmark" in f or f.startswith("tensorrt 1")
                                                    or re.search(r"tensorrt-llm v0\.", f) is not None)


def engine_settings(framework: str, notes: str, served: bool = True) -> tuple[tuple[str, object], ...]:
    """What a row's engine sets: the engine's profile (``engine_profile``: for TensorRT-LLM
    the KV cache gets 0.9 of the memory left after weights, FP8 attention where the KV cache
    is FP8, 10 us per layer; for vLLM 0.9 of all memory, 20 us per layer), with the memory
    fraction the source states (TensorRT-LLM 0.95 where it says so). Documented engine facts
    and the profiles' priors, not fitted parameters (docs/validation.md).

    The serving path (``serving_overhead_s``: HTTP server, tokenizer, stream) is the
    profile's only where clients measured the row through a server (``served``: a closed
    loop of clients); an in-process benchmark (trtllm-bench, MLPerf LoadGen, llama-bench,
    gptSessionBenchmark) has none. A C++ runtime (TensorRT-LLM before 1.0, its
    gptSessionBenchmark, MLPerf's TensorRT harness) and an engine without a profile have no
    Python host work either (the host times 0)."""
    engine, _ = engine_of(framework)
    profile: dict[str, object] = engine_profile(engine) if engine is not None else {}
    if engine == "trtllm" and "kv_cache_free_gpu_mem_frac often 0.95" in notes:
        profile["memory_utilization"] = 0.95
    if not served:
        profile["serving_overhead_s"] = 0.0
    if engine is None or cpp_runtime(framework):
        profile.update(host_step_s=0.0, host_per_sequence_s=0.0, host_launch_s=0.0)
    return tuple(profile.items())


def model_name(text: str) -> str:
    """The checkpoint a model column names: the Hugging Face id in "(HF org/Name; ...)" where
    the column gives one (measured-silicon.csv), else the text before any parenthesis."""
    m = re.search(r"\(HF\s+([^;)\s]+)", text)
    return m.group(1) if m else text.split(" (")[0].strip()


FP8_CACHE_WEIGHTS = ("w=fp8", "w=nvfp4", "w=mxfp4")
"""Weights (the ``W=`` part) a TensorRT-LLM deployment with an unstated KV dtype serves with an FP8 cache."""


def scheme_of_row(precision: str, checkpoint: str | None = None, fp8_cache: bool = False) -> tuple[str, str] | str:
    """(weight scheme, KV dtype) of a precision column, or why it cannot be expressed. The
    weights: the ``W=`` part (``mxfp4 experts`` the gpt-oss release, ``int4 weight-only``
    W4A16, ``nvfp4``, ``fp8``, 16-bit; GGUF blocks by name). The KV cache: ``KV=`` where stated;
    unstated, FP8 for a ModelOpt checkpoint (its hf_quant_config carries FP8 KV scales: the
    precision says ModelOpt, or the checkpoint is an ``nvidia/`` one) and, with ``fp8_cache``
    (an aggregated TensorRT-LLM row on a GPU with FP8 math, ``map_row``), for 8- and 4-bit
    weights (``FP8_CACHE_WEIGHTS``); else 16-bit, every engine's default."""
    p = precision.lower()
    kv = "fp8" if "kv=fp8" in p else "fp16" if "kv=fp16" in p else "bf16"
    if "kv=unstated" in p and ("modelopt" in p or (checkpoint or "").lower().startswith("nvidia/")
                               or (fp8_cache and any(w in p for w in FP8_CACHE_WEIGHTS))):
        kv = "fp8"
    named = re.search(r"scheme=([a-z0-9_.-]+)", p)       # a planner scheme by name ('planner check' rows)
    if named and named.group(1) in SCHEMES:
        return named.group(1), kv
    if "selected" in p:
        return "mixed per-layer precision (fp4 for some layers, fp8 elsewhere) is not expressible"
    if "q8_0" in p:
        return "gguf-q8_0", "fp16"
    if "q4_0" in p:
        return "gguf-q4_0", "fp16"
    m = re.search(r"w=([^;]+)", p)
    weights = m.group(1) if m else p
    if "mxfp4" in weights and "expert" in weights:
        return "mxfp4-experts", kv
    if "int4" in weights and "weight-only" in weights:
        return scheme_of("int4-weight-only"), kv
    if "nvfp4" in weights:
        return "fp4", kv
    if "w=fp8" in p:
        return "w8a8-fp8", kv
    if "fp16" in p or "f16" in p or "bf16" in p:
        return "w16a16", kv
    return f"precision {precision!r} is not mapped to a scheme"


def lengths_of(r: dict) -> tuple[float, float, float] | str:
    """(mean input tokens, mean output tokens, squared CV of the input length) of a row, or
    why it has none. Lengths drawn uniformly on [a L, L] (``length_distribution``, InferenceX's
    ``--random-range-ratio a``) have mean (1 + a) / 2 L and variance ((1 - a) L)^2 / 12; the
    stated lengths otherwise, fixed."""
    if r["input_len"].strip() == "variable" or r["output_len"].strip() == "variable":
        return "variable lengths without a stated mean input length"
    s_in, s_out = max(cell_int(r["input_len"]) or 0, 1), max(cell_int(r["output_len"]) or 0, 1)
    m = _UNIFORM.search(r.get("length_distribution", "").lower())
    if not m:
        return float(s_in), float(s_out), 0.0
    a = float(m.group(1))
    if not 0.0 <= a <= 1.0:
        return f"length distribution {r['length_distribution']!r}: the range ratio must be in [0, 1]"
    mean = (1.0 + a) / 2.0
    cv2 = ((1.0 - a) ** 2 / 12.0) / (mean * mean)
    return max(mean * s_in, 1.0), max(mean * s_out, 1.0), cv2


@dataclass(frozen=True)
class Pool:
    """One pool of a disaggregated deployment: a worker's layout as the physics reads it
    (attention TP ``tp``; ``ep`` the MoE group, attention DP = ep / tp) and its workers."""

    tp: int
    ep: int
    workers: int
    gpus: int                       # per worker


@dataclass(frozen=True)
class Pools:
    prefill: Pool
    decode: Pool
    stated: bool                    # worker counts stated (else borrowed from a recipe, or one worker each)
    link: str                       # the KV link: "intra" where both pools fit one scale-up domain
    recipe: int | None = field(default=None, compare=False)   # unstated counts: the row (0-based) whose pool
    #                                                            sizes they take (not part of the configuration)


def _moe_layout(model: ModelSpec, a: int, d: int, mt: int, me: int, what: str) -> tuple[int, int, int] | str:
    """(tp, ep, data-parallel replicas) of attention TP a x DP d with the MoE layers over
    MoE TP mt x EP me GPUs, as the physics reads them (planner/physics/perf.py: experts split
    over max(TP, EP) GPUs, attention data-parallel EP / TP ways). A dense model's DP ranks are
    replicas; a MoE with attention DP has its experts over all a x d GPUs (MoE TP read as EP
    there: the physics has no MoE TP beside attention DP)."""
    if a < 1 or d < 1 or mt < 1 or me < 1:
        return f"{what}: a layout count of 0 (attention TP {a}, DP {d}, MoE TP {mt}, EP {me})"
    if model.moe is None:
        return a, 1, d
    if a * d != mt * me:
        return (f"{what}: the source's layout is inconsistent: attention TP {a} x DP {d} = {a * d} GPUs but "
                f"MoE TP {mt} x EP {me} = {mt * me} GPUs")
    return a, (a * d if d > 1 else me), 1


def layout_of(r: dict, model: ModelSpec) -> tuple[int, int, float | None] | str | None:
    """(tp, ep, replicas) of an aggregated row from its layout columns, None where the file
    has none (the 14 columns: TP and GPU count), or why the layout cannot be read."""
    a = cell_int(r.get("attention_tp", ""))
    if a is None:
        return None
    d = cell_int(r.get("attention_dp", "")) or 1
    mt = cell_int(r.get("moe_tp", "")) or a * d
    me = cell_int(r.get("moe_ep", "")) or 1
    layout = _moe_layout(model, a, d, mt, me, "aggregated layout")
    if isinstance(layout, str):
        return layout
    tp, ep, dp = layout
    reps = cell_int(r.get("replicas", ""))
    return tp, ep, (reps * dp if reps else None)


POOL_COLUMNS = tuple(f"{p}_{f}" for p in ("prefill", "decode")
                     for f in ("workers", "tp", "attention_dp", "moe_tp", "moe_ep", "pp"))


def recipe_family(catalog: Catalog, names: dict):
    """A disaggregated row's recipe family (``pool_recipes``): the system, engine, model
    architecture (DeepSeek-R1 and -V3 are one), weight format and stated lengths."""
    from planner.fidelity.predict import architecture_key  # predict imports this module
    arch: dict[str, str] = {}

    def family(r: dict) -> tuple:
        ids = names_of(r, catalog, names)
        if isinstance(ids, str):
            return (r["model"], r["gpu"])
        key = arch.setdefault(ids[0], architecture_key(catalog.models[ids[0]], checkpoints=False))
        return (ids[1], engine_of(r["framework"])[0], key, scheme_of_row(r["precision"]), r["input_len"].strip(),
                r["output_len"].strip())
    return family


def run_day(r: dict) -> float | None:
    """The measurement's day (the ``measured`` column's date) as a day number, None unstated."""
    m = re.match(r"\s*(\d{4})-(\d{2})-(\d{2})", r.get("measured", ""))
    if m is None:
        return None
    y, mo, d = map(int, m.groups())
    return float(y * 372 + mo * 31 + d)       # monotone in the date; only differences are compared


def pool_recipes(rows: list[dict], family, exclude=None) -> dict[int, int]:
    """For each disaggregated row that does not state both worker counts, the row whose pool
    sizes it takes: a row of the same recipe family (``family(row)``: ``recipe_family``) that
    states them, at the nearest concurrency in ratio (|log(N_donor / N)|). Ties (several pool
    sets at that concurrency, or equal ratios above and below) go to a donor measured the
    same day (``measured``: InferenceX sweeps a recipe over the concurrency in one run, on
    deployments sized per concurrency range, and its recipes change between runs), then of
    the row's own engine version, then the nearest day, then the lower concurrency, then by
    content (the pool columns, then the ``silicon_id``): never by file order. InferenceX
    sweeps each disaggregated recipe over the concurrency and states the worker counts in
    some of its exports only
    (measured-silicon.md): the same recipe's nearest stated point is the best reading of the
    pools (``pools_of``; ``python benchmarks/disagg_recipes.py`` section 5 scores the rule
    held out), one worker of each pool only where the file has none (docs/disaggregation.md
    section 8). Rows without the columns or a concurrency
    take nothing. ``exclude(i, j)``: True where row i may not take row j's pools (a held-out
    check: ``benchmarks/disagg_recipes.py`` leaves out each row's own concurrency)."""
    donors: dict[object, list[tuple[float, int]]] = {}
    wanted = []
    for i, r in enumerate(rows):
        load = load_of(r) if r.get("mode", "").strip() == "disagg" else None
        if load is None or load[0] != "clients":
            continue
        sizes = [cell_int(r.get(f"{p}_{f}", "")) for p in ("prefill", "decode") for f in ("workers", "tp")]
        if all(x is not None and x >= 1 for x in sizes):
            donors.setdefault(family(r), []).append((load[1], i))
        elif cell_int(r.get("prefill_workers", "")) is None or cell_int(r.get("decode_workers", "")) is None:
            wanted.append((i, load[1]))
    out = {}
    for i, clients in wanted:
        version, day = engine_of(rows[i]["framework"])[1], run_day(rows[i])

        def rank(d: tuple[float, int]) -> tuple:
            o = rows[d[1]]
            od = run_day(o)
            apart = abs(od - day) if od is not None and day is not None else math.inf
            return (abs(math.log(d[0] / clients)), apart > 0.0, engine_of(o["framework"])[1] != version, apart,
                    d[0], tuple(cell_int(o.get(c, "")) or 0 for c in POOL_COLUMNS), o.get("silicon_id", ""))
        near = [d for d in donors.get(family(rows[i]), []) if exclude is None or not exclude(i, d[1])]
        if near:
            out[i] = min(near, key=rank)[1]
    return out


def pools_of(r: dict, model: ModelSpec, domain_gpus: float, recipe: tuple[int, dict] | None = None) -> Pools | str:
    """The two pools of a disaggregated row: each worker's layout (``prefill_*``,
    ``decode_*``) and the worker counts where stated; where they are not, the pools of
    ``recipe`` (its row index and row: ``pool_recipes``), layouts and counts: the layout
    columns of a row that states no counts are InferenceX's results exports as AIC read them,
    and differ from the same measurement's DB-dump row (which states its pools) in most pairs
    (``python benchmarks/disagg_recipes.py``, section 0); else one worker of each, the
    layout as given (a lower bound on the deployment). Both marked ``stated=False``. A count
    the row states (one of the two) is kept, the other pool's taken from the recipe."""
    pools = []
    own = {role: cell_int(r.get(f"{role}_workers", "")) for role in ("prefill", "decode")}
    stated = all(w is not None for w in own.values())
    if not stated and recipe is not None:
        r = recipe[1]
    for role in ("prefill", "decode"):
        a = cell_int(r.get(f"{role}_tp", ""))
        if a is None:
            return f"the {role} pool's layout is not stated"
        d = cell_int(r.get(f"{role}_attention_dp", "")) or 1
        mt = cell_int(r.get(f"{role}_moe_tp", ""))
        me = cell_int(r.get(f"{role}_moe_ep", ""))
        layout = _moe_layout(model, a, d, a * d if mt is None else mt, 1 if me is None else me, f"{role} pool")
        if isinstance(layout, str):
            return layout
        if (cell_int(r.get(f"{role}_pp", "")) or 1) != 1:
            return f"the {role} pool has pipeline parallelism, which the disaggregated pools do not model"
        tp, ep, dp = layout
        workers = own[role] if own[role] is not None else cell_int(r.get(f"{role}_workers", ""))   # stated: kept
        if workers is None:            # no recipe either: one worker, assumed
            workers = 1
        if workers < 1:
            return f"the {role} pool has 0 workers"
        pools.append(Pool(tp=tp, ep=ep, workers=workers * dp, gpus=max(tp, ep)))
    pre, dec = pools
    total = pre.workers * pre.gpus + dec.workers * dec.gpus
    return Pools(prefill=pre, decode=dec, stated=stated, link="intra" if total <= domain_gpus else "inter",
                 recipe=None if stated or recipe is None else recipe[0])


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
    rule: str              # max_throughput | static_throughput | ttft | e2e | decode_rate | prefill_rate | load_*
    batch: int
    input_tokens: float
    output_tokens: float
    per_gpu: bool
    gpu_count: int
    engine: tuple[tuple[str, object], ...] = ()   # the engine's profile and stated memory (not fitted)
    load: tuple[str, float] | None = None        # ("clients", N) or ("rate", requests/s), all replicas
    statistic: str = "mean"                       # of a latency measured under load
    scale: float = 1.0                            # seconds -> the row's unit (1e3 for *_ms_*)
    requests: int | None = None                   # a max-throughput run of this many requests, all at t = 0
    ep: int = 1                                   # the MoE group (attention DP = ep / tp)
    isl_cv2: float = 0.0                          # squared CV of the input length
    pools: Pools | None = None                    # a disaggregated row's two pools
    start: str = "independent"                    # a closed loop's clients: out of step, or together (a benchmark run)
    requests_per_client: float = 10.0             # a benchmark run's requests / clients (the first wave's share)

    @property
    def under_load(self) -> bool:
        return self.load is not None


def map_row(i: int, r: dict, catalog: Catalog, names: dict | None = None,
            recipe: tuple[int, dict] | None = None) -> Case | str:
    """A measurement row as a Case, or the reason it cannot be expressed; a row measured under
    load says so in its reason, so none is skipped as if it were an idle row. ``names``: a
    dict the caller keeps to resolve each distinct (model, GPU) name pair once. ``recipe``: a
    disaggregated row's stand-in for the worker counts it does not state (``pool_recipes``)."""
    load = _per_replica_times_replicas(r, load_of(r))
    case = _map_row(i, r, catalog, load, {} if names is None else names, recipe)
    if isinstance(case, str) and load is not None:
        return f"under load, {describe_load(*load)}: {case}"
    return case


def _names(r: dict, catalog: Catalog) -> tuple[str, str] | str:
    """(catalog model id, GPU id) through the catalog's resolver, or why not (with the
    nearest names it suggests)."""
    ids = []
    for kind, name in (("model", model_name(r["model"])), ("GPU", r["gpu"].strip())):
        try:
            ids.append(catalog.model_id(name) if kind == "model" else catalog.gpu_id(name))
        except InputError as exc:
            near = re.search(r"(did you mean [^?]*\?|is ambiguous[^;]*)", exc.message)
            return f"{kind} {name!r} is not in the catalog" + (f" ({near.group(1)})" if near else "")
    return ids[0], ids[1]


def names_of(r: dict, catalog: Catalog, memo: dict) -> tuple[str, str] | str:
    """``_names`` of a row, each distinct (model, GPU) name pair resolved once (``memo``)."""
    key = (r["model"], r["gpu"])
    if key not in memo:
        memo[key] = _names(r, catalog)
    return memo[key]


def _map_row(i: int, r: dict, catalog: Catalog, load: tuple[str, float] | None, memo: dict,
             recipe: tuple[int, dict] | None = None) -> Case | str:
    names = names_of(r, catalog, memo)
    if isinstance(names, str):
        return names
    model_id, gpu = names
    model = catalog.models[model_id]
    layout: dict | str = ({} if r.get("mode", "").strip() == "disagg"
                          else _aggregated(r, model, load))
    if isinstance(layout, str):
        return layout
    if layout:
        beyond = _beyond_one_node(r, layout, catalog.gpus[gpu].gpus_per_node, gpu)
        if beyond:
            return beyond
    lengths = lengths_of(r)
    if isinstance(lengths, str):
        return lengths
    # TensorRT-LLM's quantized deployments hold an FP8 cache (docs/validation.md, "How much KV a
    # sequence holds"): its FP8 context attention (the profile's attention_format) runs on one, and
    # the corpus's runs hold the sequences only an FP8 cache has room for. From 1.0 on (its C++
    # runtime's engines were built with a KV dtype the rows of that time do not state), and
    # aggregated rows only: the disaggregated pools are not checked against it
    fp8_cache = (bool(layout) and engine_of(r["framework"])[0] == "trtllm" and not cpp_runtime(r["framework"])
                 and "fp8" in catalog.gpus[gpu].peak_dense_flops_per_s)
    scheme = scheme_of_row(r["precision"], model_name(r["model"]), fp8_cache)
    if isinstance(scheme, str):
        return scheme
    base = dict(row=i, model=model_id, gpu=gpu, scheme=scheme[0], kv=scheme[1],
                input_tokens=lengths[0], output_tokens=lengths[1], isl_cv2=lengths[2],
                engine=engine_settings(r["framework"], r["notes"], served=load is not None and load[0] == "clients"),
                per_gpu=r["metric"].endswith("per_gpu"))
    if not layout:
        return _disagg_case(r, model, catalog.gpus[gpu].domain_gpus, load, base, recipe)
    base |= layout
    if load is not None:
        return _load_case(r, load, base)
    return _idle_case(r, base)


def _aggregated(r: dict, model: ModelSpec, load: tuple[str, float] | None) -> dict | str:
    """TP, PP, EP, replicas and GPU count of an aggregated row: from the layout columns
    where the file has them (``layout_of``), else TP and the GPU count; the clients of a
    row that states them per replica (replica count not stated) go to one replica."""
    layout = layout_of(r, model)
    if isinstance(layout, str):
        return layout
    tp, pp, count = cell_int(r["tp"]), cell_int(r["pp"]), cell_int(r["gpu_count"])
    ep, replicas = 1, None
    if layout is not None:
        tp, ep, replicas = layout
        pp = pp or 1
    if tp is None or pp is None:
        return "TP, PP or GPU count not stated"
    if replicas is None:
        per_replica = load is not None and "per replica" in r["batch_or_concurrency"].lower()
        if count is None and not per_replica:
            return "TP, PP or GPU count not stated"
        replicas = 1.0 if per_replica or count is None else count / (max(tp, ep) * pp)
    return dict(tp=tp, pp=pp, ep=ep, replicas=replicas, gpu_count=count or int(round(replicas * max(tp, ep) * pp)))


def _beyond_one_node(r: dict, layout: dict, node: int, gpu: str) -> str | None:
    """Why an aggregated InferenceX row whose replica spans more GPUs than one node cannot be
    read as one replica, else None. InferenceX's aggregated runs are its single-node scripts
    (measured-silicon.md, 'Closed loop' and 'GPU counts of InferenceX single-node runs'); the
    exports' aggregated GB200 rows give TP 12 to 72, the GPU count of a multi-node deployment
    (the disaggregated rows of the same export list the same TP 32, 40 and 48 at the same
    clients with TTFT and TPOT within 3 %: docs/validation.md, 'The far-off groups')."""
    per = max(layout["tp"], layout["ep"]) * layout["pp"]
    if not r.get("provenance", "").startswith("InferenceX") or per <= node:
        return None
    return (f"an aggregated InferenceX run of {per} GPUs a replica, more than one {gpu} node ({node}): "
            f"InferenceX's aggregated runs are single-node, so {per} is a multi-node deployment's GPU count, "
            f"not one replica's layout")


def _stated_replicas(r: dict) -> int | None:
    """The replica count an aggregated row's ``replicas`` column states, else None."""
    return None if r.get("mode", "").strip() == "disagg" else cell_int(r.get("replicas") or "")


def _per_replica_times_replicas(r: dict, load: tuple[str, float] | None) -> tuple[str, float] | None:
    """A load stated per replica on a row that also states its replicas is the run's: N per
    replica x replicas (the load model divides a row's load over its replicas again)."""
    reps = _stated_replicas(r)
    if load is None or reps is None or "per replica" not in r["batch_or_concurrency"].lower():
        return load
    return load[0], load[1] * reps


def clients_unstated(r: dict) -> bool:
    """A closed loop stated per replica where the file's total-concurrency column and its
    replica count are blank: the corpus's reading of AIC's ``batch_size`` (a rank's in-flight
    requests) as one replica's clients when the run's own clients and replicas are not stated
    (measured-silicon.md, 'batch_or_concurrency': "Where the sample gives none it is one
    replica's share, AIC's batch_size"). A row that states its replicas states its clients."""
    return ("per replica" in r["batch_or_concurrency"].lower() and _stated_replicas(r) is None
            and r.get("concurrency_total") is not None and not r["concurrency_total"].strip())


def _idle_case(r: dict, base: dict) -> Case | str:
    metric, batch_text = r["metric"], r["batch_or_concurrency"].lower()
    if metric not in GROUP:
        return f"metric {metric!r} is not predicted (units ambiguous)"
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
    return Case(**base, rule=rule, batch=batch,
                requests=int(n_req.group(1)) if n_req and rule == "max_throughput" else None)


def _load_rule(metric: str) -> tuple[str, str, float] | str:
    m = LOAD_METRIC.match(metric)
    if m:
        return f"load_{m.group(1)}", m.group(2), 1e3
    if metric == "e2e_latency_s_mean":
        return "load_e2e", "mean", 1.0
    if metric.startswith("output_tokens_per_s"):
        return "load_throughput", "mean", 1.0
    return f"metric {metric!r} is not predicted under load (units ambiguous, or no statistic stated)"


def _load_case(r: dict, load: tuple[str, float], base: dict) -> Case | str:
    """A row measured at a stated concurrency or request rate: the load model's statistic
    (docs/load.md) for its metric; the engine's max-num-seqs is the stated batch, else the
    CUDA-graph cap, and the KV cache bounds it (physics/load.py's engine)."""
    rule = _load_rule(r["metric"])
    if isinstance(rule, str):
        return rule
    if load[0] == "clients" and clients_unstated(r) and rule[0] not in ("load_tpot", "load_itl"):
        # the batch is the engine's in-flight requests, which bound a step (TPOT); the queue in
        # front of them (TTFT, end-to-end) is the run's clients', which the row does not state
        return (f"the run's clients are not stated (the {load[1]:g} per replica are AIC's in-flight batch): "
                f"{r['metric']} is their queue; TPOT is predicted at the batch")
    stated = re.search(r"(?:batch|max_num_seqs|gpu_batch_size)[ =]+(\d+)", r["batch_or_concurrency"].lower())
    return Case(**base, rule=rule[0], statistic=rule[1], scale=rule[2], load=load,
                batch=int(stated.group(1)) if stated else CUDA_GRAPH_BATCH_CAP, **benchmark_run(r, load))


def benchmark_run(r: dict, load: tuple[str, float]) -> dict:
    """How a closed loop's clients start (planner/physics/workload.py ``CLIENT_STARTS``): a
    benchmark's max-concurrency (the notes say so) starts its N clients together and measures
    the run from t = 0: InferenceX sends 10 N prompts, AIPerf's generated benchmark 20 N
    (measured-silicon.md); InferenceX's runs, aggregated or disaggregated, all do (its
    benchmark_serving.py --max-concurrency N, measured-silicon.md 'Caveats'); other closed
    loops are taken as clients out of step."""
    inferencex = r.get("provenance", "").startswith("InferenceX")
    if load[0] != "clients" or not (inferencex or "benchmark max-concurrency" in r.get("notes", "").lower()):
        return {}
    return {"start": "together",
            "requests_per_client": 10.0 if r.get("provenance", "").startswith("InferenceX") else 20.0}


def _disagg_case(r: dict, model: ModelSpec, domain_gpus: float, load: tuple[str, float] | None,
                 base: dict, recipe: tuple[int, dict] | None = None) -> Case | str:
    """A prefill/decode-disaggregated row: TTFT from the prefill pool (queueing, prefill, KV
    transfer), TPOT from the decode pool, the clients of the closed loop shared by both
    (planner/physics/disagg.py ``closed_loop``)."""
    if load is None or load[0] != "clients":
        return "a disaggregated row without a stated concurrency (closed loop)"
    rule = _load_rule(r["metric"])
    if isinstance(rule, str):
        return rule
    if rule[0] not in ("load_ttft", "load_tpot") or rule[1] != "mean":
        return f"metric {r['metric']!r} of a disaggregated row is not predicted (mean TTFT and TPOT are)"
    pools = pools_of(r, model, domain_gpus, recipe)
    if isinstance(pools, str):
        return pools
    dec = pools.decode
    return Case(**base, tp=dec.tp, pp=1, ep=dec.ep, replicas=1.0,
                gpu_count=pools.prefill.workers * pools.prefill.gpus + dec.workers * dec.gpus,
                rule=rule[0], statistic=rule[1], scale=rule[2], load=load, batch=CUDA_GRAPH_BATCH_CAP, pools=pools,
                **benchmark_run(r, load))
