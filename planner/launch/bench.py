"""Benchmark commands that check a plan's prediction, for three real clients: `vllm bench
serve`, AIPerf (`aiperf profile`) and GuideLLM (`guidellm run`), each at the plan's
operating point against one replica, with the workload's lengths and arrivals, and asking
for the percentiles the plan predicts (plan.load.percentiles_ms). ``planner check`` reads
the files they write (planner/fidelity/check.py).

- ``operating_point(result, plan, port)``: what every client needs, from the plan and its
  recorded workload (lengths: mean, spread, bounds; arrivals: a request rate with its
  burstiness, or a closed loop of clients; a request trace where the workload has one).
- ``benchmark(result, plan, client, port)``: one client's command (``Benchmark``), every
  flag with where its value came from.
- ``CLIENTS``: each client's program, the release its flags were read from, the flags it
  defines (tests check every generated flag against them), the file it writes, and how its
  metrics name the planner's figures (``METRICS``: one home of that vocabulary).
- ``trace_jsonl(trace)``: a recorded trace's window, replayed at its rate scale, as Mooncake
  JSON lines (timestamp in ms, input_length, output_length, hash_ids): the format vLLM's
  ``timed_trace`` dataset and AIPerf's ``mooncake_trace`` replay with their timestamps.

Data only in, text out: no physics, no solve.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass, field
from typing import Any

from planner.errors import InputError
from planner.launch.arg import MODEL_VARIABLE, Arg
from planner.plan.result import Plan, PlanResult

__all__ = ["CLIENTS", "METRICS", "Arg", "Benchmark", "Client", "OperatingPoint", "benchmark", "operating_point",
           "result_name", "trace_jsonl", "trace_name"]

MIN_REQUESTS = 200
"""Fewest requests a benchmark sends: a p99 rests on at least two requests above it."""
RUN_SECONDS = 300.0
"""How long an open-loop benchmark runs at the plan's rate (about five minutes)."""
CLOSED_LOOP_ROUNDS = 10
"""Requests per client in a closed loop."""


@dataclass(frozen=True)
class Client:
    name: str
    program: str
    version: str                      # the release whose flags were read
    source: str                       # where the flags were read
    flags: frozenset[str]             # every flag that release defines, of those a command here may use
    writes: str                       # what result file it writes, and where


CLIENTS: dict[str, Client] = {c.name: c for c in (
    Client("vllm", "vllm bench serve", "vLLM 0.33.0",
           "vllm/benchmarks/serve.py and vllm/benchmarks/datasets/datasets.py argument definitions (vllm 0.33.0 wheel)",
           frozenset({"--backend", "--base-url", "--endpoint", "--model", "--tokenizer", "--dataset-name",
                      "--dataset-path", "--random-input-len", "--random-output-len", "--random-range-ratio",
                      "--num-prompts", "--request-rate", "--burstiness", "--max-concurrency", "--ignore-eos",
                      "--percentile-metrics", "--metric-percentiles", "--save-result", "--result-dir",
                      "--result-filename", "--seed", "--timed-trace-sec-multiplier", "--timed-trace-chunk-hash-size",
                      "--num-warmups", "--label"}),
           "--save-result: the JSON named by --result-dir/--result-filename"),
    Client("aiperf", "aiperf profile", "AIPerf 0.13.0", "`aiperf profile --help` of aiperf 0.13.0",
           frozenset({"--model", "--url", "--endpoint-type", "--streaming", "--tokenizer", "--isl", "--isl-stddev",
                      "--osl", "--osl-stddev", "--extra-inputs", "--request-rate", "--arrival-pattern",
                      "--arrival-smoothness", "--concurrency", "--request-count", "--random-seed", "--artifact-dir",
                      "--input-file", "--custom-dataset-type", "--fixed-schedule", "--warmup-request-count",
                      "--ui-type"}),
           "profile_export_aiperf.json in --artifact-dir"),
    Client("guidellm", "guidellm run", "GuideLLM 0.8.1",
           "`guidellm run --help` and the pydantic arguments of its backends, profiles, constraints, data and "
           "outputs (guidellm 0.8.1)",
           frozenset({"--backend", "--profile", "--constraint", "--tokenizer", "--data", "--output", "--seed",
                      "--disable-console-interactive"}),
           "--output kind=json,path=FILE: the benchmarks JSON"),
)}

METRICS: dict[str, dict[str, str]] = {
    "vllm": {"ttft": "ttft", "tpot": "tpot", "itl": "itl", "e2e": "e2el"},
    "aiperf": {"ttft": "time_to_first_token", "tpot": "inter_token_latency", "itl": "inter_chunk_latency",
               "e2e": "request_latency"},
    "guidellm": {"ttft": "time_to_first_token_ms", "tpot": "inter_token_latency_ms", "e2e": "request_latency"},
}
"""The planner's figure -> the client's metric. TPOT is per request (decode time / (output
tokens - 1)): vLLM's ``tpot``, AIPerf's ``inter_token_latency`` and GuideLLM's
``inter_token_latency_ms`` all compute it so (GuideLLM's ``time_per_output_token_ms`` counts
the first token's wait too, and is not the plan's TPOT). ITL is the gap between streamed
tokens: vLLM's ``itl``, AIPerf's ``inter_chunk_latency`` (one token per chunk, as the
engines stream); GuideLLM reports no per-token gap. E2E: vLLM's ``e2el``, AIPerf's
``request_latency`` (ms), GuideLLM's ``request_latency`` (seconds)."""


@dataclass
class OperatingPoint:
    model: str
    base_url: str
    input_mean: float
    input_std: float
    input_min: float
    input_max: float
    output_mean: float
    output_std: float
    output_min: float
    output_max: float
    rate: float | None                  # requests/s per replica (open loop)
    arrival_cv2: float                  # squared CV of inter-arrival gaps (1: Poisson)
    concurrency: int | None             # clients per replica (closed loop)
    requests: int
    percentiles: tuple[int, ...]        # the pNN the plan predicts
    expected_ms: dict[str, float]
    trace: dict[str, Any] | None        # the recorded trace's figures (planner/traces/figures.py)
    why_rate: str = ""
    trace_rate: bool = False            # the demand is the trace's own rate (its arrivals can be replayed)
    replicas: int = 1
    stem: str = "plan1"                 # the deployment's file name stem (``stem``)
    model_variable: bool = False        # ``model`` is the launch script's $MODEL (no checkpoint is known)


@dataclass
class Benchmark:
    client: str
    args: list[Arg]
    expected_ms: dict[str, float]      # the plan's percentiles under load, per replica
    requests_per_s: float | None
    concurrency: float | None
    result_file: str = ""              # where the result lands (relative to the working directory)
    notes: list[str] = field(default_factory=list)

    @property
    def program(self) -> str:
        return CLIENTS[self.client].program

    def command(self) -> str:
        """The command as one shell line; ``"$MODEL"`` where the script's checkpoint variable stands."""
        parts: list[str] = []
        for a in self.args:
            parts += [shlex.quote(a.flag)] if a.value is None else \
                [shlex.quote(a.flag), f'"${MODEL_VARIABLE}"' if a.variable else shlex.quote(str(a.value))]
        return " ".join([*map(shlex.quote, self.program.split()), *parts])


def stem(result: PlanResult, plan: Plan) -> str:
    """The file name stem of a deployment's files: ``planN`` for the one deployment of rank N,
    ``planN.K`` for the K-th of several (a fleet, or a workload split over configurations)."""
    return f"plan{result.label(plan)}"


def workload(result: PlanResult, plan: Plan) -> dict[str, Any]:
    """The plan's workload as recorded in the result's inputs (Problem.inputs)."""
    w = result.inputs.get("workloads", {}).get(plan.workload)
    if w is None:
        raise InputError("the plan file does not record its workload (written by an older planner); "
                         "re-run 'planner plan --output'", path="inputs.workloads")
    return w


def _stat(stats: dict[str, Any] | None, key: str, default: float) -> float:
    v = (stats or {}).get(key)
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else default


def operating_point(result: PlanResult, plan: Plan, port: int = 8000, model: str | None = None) -> OperatingPoint:
    """The plan's operating point for one replica, as the clients take it. ``model``: the
    repository the server serves (the launch script's checkpoint), "" for the script's $MODEL
    (no checkpoint in the plan's format is known), None for the workload's model name."""
    w = workload(result, plan)
    trace = w.get("trace")
    t_in, t_out = (trace or {}).get("input"), (trace or {}).get("output")
    in_mean, out_mean = float(w["input_tokens_mean"]), float(w["output_tokens_mean"])
    in_cv2 = _stat(t_in, "cv2", float(w.get("input_tokens_cv2") or 0.0))
    out_cv2 = _stat(t_out, "cv2", float(w.get("output_tokens_cv2") or 0.0))
    d = w.get("demand")
    rate = concurrency = None
    why = ""
    if d is not None and d["kind"] == "clients":
        concurrency = max(1, int(round(d["value"] / plan.replicas)))
        requests = max(MIN_REQUESTS, concurrency * CLOSED_LOOP_ROUNDS)
        why = f"closed loop: {d['value']:g} clients / {plan.replicas} replica(s)"
    else:
        rate = float(plan.load["requests_per_s_per_replica"])
        requests = max(MIN_REQUESTS, int(math.ceil(rate * RUN_SECONDS)))
        why = ("plan.load.requests_per_s_per_replica: the demand shared by the replicas" if d is not None
               else "plan.load.requests_per_s_per_replica: the replica's capacity at SLO")
    # the arrivals' burstiness as the plan took it: a stated demand's, or a trace's at its targets' scale
    # (docs/workloads.md section 3), both recorded as the demand's; else (an older plan file) the trace's
    queue = (trace or {}).get("queue") or {}
    cv2 = float((d or {}).get("arrival_cv2") or queue.get("dispersion")
                or (trace or {}).get("arrivals", {}).get("burstiness") or 1.0)
    expected = {k: float(v) for k, v in (plan.load.get("percentiles_ms") or {}).items()
                if isinstance(v, (int, float)) and math.isfinite(v)}
    pcts = sorted({int(k.rsplit("_p", 1)[1]) for k in expected if "_p" in k})
    return OperatingPoint(
        model=(w.get("hf_id") or w["model"]) if model is None else model or f"${MODEL_VARIABLE}",
        model_variable=model == "", stem=stem(result, plan), base_url=f"http://localhost:{port}",
        input_mean=in_mean, input_std=in_mean * math.sqrt(in_cv2),
        input_min=_stat(t_in, "min", 1.0), input_max=float(w["input_tokens_max"]),
        output_mean=out_mean, output_std=out_mean * math.sqrt(out_cv2),
        output_min=_stat(t_out, "min", 1.0), output_max=float(w["output_tokens_max"]),
        rate=rate, arrival_cv2=cv2, concurrency=concurrency, requests=requests,
        percentiles=tuple(pcts) or (50, 90, 99), expected_ms=expected, trace=trace, why_rate=why,
        trace_rate=bool(trace and d is not None and d.get("requests_per_s") and _same(
            float(d["requests_per_s"]), float(trace["arrivals"]["rate_per_s"] or 0.0))),
        replicas=plan.replicas)


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1.0)


def result_name(stem: str, client: str) -> str:
    """The result file a client's command writes (``planner check`` reads it), for the
    deployment of file name stem ``stem``."""
    return {"vllm": f"{stem}-vllm-bench.json", "aiperf": f"{stem}-aiperf/profile_export_aiperf.json",
            "guidellm": f"{stem}-guidellm.json"}[client]


def trace_name(stem: str) -> str:
    return f"{stem}-trace.jsonl"


def _ratio(cv2: float) -> float:
    """A uniform length on [L(1 - r), L(1 + r)] has squared CV r^2 / 3: the r of a spread,
    below 1 (the clients refuse r >= 1: a length of 0)."""
    return round(min(0.95, math.sqrt(3.0 * max(cv2, 0.0))), 3)


def _replays(op: OperatingPoint) -> bool:
    """Replay the trace itself: its arrival times are the workload's (no stated demand replaced
    its rate, docs/workloads.md section 2)."""
    return op.trace is not None and op.trace_rate


def benchmark(result: PlanResult, plan: Plan, client: str = "vllm", port: int = 8000,
              model: str | None = None) -> Benchmark:
    """``client``'s command against one replica at the plan's operating point (``model`` as in
    ``operating_point``)."""
    if client not in CLIENTS:
        raise InputError("unknown benchmark client", path="--client", value=client, accepted=", ".join(CLIENTS))
    op = operating_point(result, plan, port, model)
    build = {"vllm": _vllm, "aiperf": _aiperf, "guidellm": _guidellm}[client]
    args, notes = build(op, plan)
    for a in args:
        a.variable = op.model_variable and a.value == op.model
    return Benchmark(client=client, args=args, expected_ms=op.expected_ms, requests_per_s=op.rate,
                     concurrency=op.concurrency, result_file=result_name(op.stem, client), notes=notes)


def _lengths_why(op: OperatingPoint, what: str) -> str:
    mean, std = (op.input_mean, op.input_std) if what == "input" else (op.output_mean, op.output_std)
    return f"workload {what} tokens: mean {mean:,.0f}" + (f", standard deviation {std:,.0f}" if std else ", fixed")


def _vllm(op: OperatingPoint, plan: Plan) -> tuple[list[Arg], list[str]]:
    notes: list[str] = []
    a = [Arg("--backend", "openai", "the engine's OpenAI-compatible completions API"),
         Arg("--base-url", op.base_url, "one replica"),
         Arg("--endpoint", "/v1/completions", "completions endpoint"),
         Arg("--model", op.model, "the served model (and its tokenizer)")]
    if _replays(op):
        a += [Arg("--dataset-name", "timed_trace", "replay the workload's trace: its lengths and arrival times"),
              Arg("--dataset-path", trace_name(op.stem), "the trace's window at its rate scale, as Mooncake JSON lines "
                                                      "(written beside this script)"),
              Arg("--timed-trace-sec-multiplier", 0.001, "timestamps in ms")]
        if op.trace.get("block_tokens"):                                        # type: ignore[union-attr]
            a.append(Arg("--timed-trace-chunk-hash-size", int(op.trace["block_tokens"]),   # type: ignore[index]
                         "prompt tokens per hash id"))
        a.append(Arg("--num-prompts", _replayed(op), "every request of the window"
                     + (f" sent to this replica (one in {op.replicas})" if op.replicas > 1 else "")))
    else:
        r_in, r_out = _ratio(op.input_std**2 / op.input_mean**2), _ratio(op.output_std**2 / op.output_mean**2)
        a += [Arg("--dataset-name", "random", "synthetic prompts of the workload's lengths"),
              Arg("--random-input-len", int(round(op.input_mean)), _lengths_why(op, "input")),
              Arg("--random-output-len", int(round(op.output_mean)), _lengths_why(op, "output"))]
        if r_in or r_out:
            a.append(Arg("--random-range-ratio", json.dumps({"input": r_in, "output": r_out}, separators=(",", ":")),
                         "uniform on [L(1 - r), L(1 + r)]: the same standard deviation (r = sqrt(3) x CV, at most "
                         "0.95)"))
        a.append(Arg("--num-prompts", op.requests, _requests_why(op)))
    a.append(Arg("--ignore-eos", None, "every request generates its full output length"))
    if op.concurrency is not None:
        a.append(Arg("--max-concurrency", op.concurrency, op.why_rate))
    elif not _replays(op):
        assert op.rate is not None
        a.append(Arg("--request-rate", round(op.rate, 4), op.why_rate))
        a.append(Arg("--burstiness", round(1.0 / max(op.arrival_cv2, 1e-4), 4),
                     f"gamma arrivals of squared CV {op.arrival_cv2:.3g} (burstiness = 1 / CV^2; 1 is Poisson)"))
    a += [Arg("--percentile-metrics", "ttft,tpot,itl,e2el", "the figures the plan predicts"),
          Arg("--metric-percentiles", ",".join(map(str, op.percentiles)), "plan.load.percentiles_ms"),
          Arg("--save-result", None, "a JSON for 'planner check'"),
          Arg("--result-filename", result_name(op.stem, "vllm"), "read by 'planner check'")]
    return a, notes


def _requests_why(op: OperatingPoint) -> str:
    if op.concurrency is not None:
        return f"{CLOSED_LOOP_ROUNDS} requests per client, at least {MIN_REQUESTS}"
    return f"about {RUN_SECONDS / 60:.0f} minutes at the plan's rate, at least {MIN_REQUESTS} (stable p99s)"


def _aiperf(op: OperatingPoint, plan: Plan) -> tuple[list[Arg], list[str]]:
    notes: list[str] = []
    a = [Arg("--model", op.model, "the served model (and its tokenizer)"),
         Arg("--url", op.base_url, "one replica"),
         Arg("--endpoint-type", "completions", "completions endpoint"),
         Arg("--streaming", None, "tokens as they come: TTFT and the gaps between tokens")]
    if _replays(op):
        a += [Arg("--input-file", trace_name(op.stem), "the trace's window at its rate scale, as Mooncake JSON lines "
                                                    "(written beside this script)"),
              Arg("--custom-dataset-type", "mooncake_trace", "timestamps (ms), lengths and block hashes"),
              Arg("--fixed-schedule", None, "send each request at its timestamp")]
    else:
        a += [Arg("--isl", int(round(op.input_mean)), "workload input tokens (mean)"),
              Arg("--osl", int(round(op.output_mean)), "workload output tokens (mean)")]
        if op.input_std:
            a.append(Arg("--isl-stddev", int(round(op.input_std)), "its standard deviation (a normal spread)"))
        if op.output_std:
            a.append(Arg("--osl-stddev", int(round(op.output_std)), "its standard deviation (a normal spread)"))
        if op.concurrency is not None:
            a.append(Arg("--concurrency", op.concurrency, op.why_rate))
        else:
            assert op.rate is not None
            a.append(Arg("--request-rate", round(op.rate, 4), op.why_rate))
            if abs(op.arrival_cv2 - 1.0) < 1e-9:
                a.append(Arg("--arrival-pattern", "poisson", "Poisson arrivals"))
            else:
                a += [Arg("--arrival-pattern", "gamma", f"gamma arrivals of squared CV {op.arrival_cv2:.3g}"),
                      Arg("--arrival-smoothness", round(1.0 / max(op.arrival_cv2, 1e-4), 4),
                          "1 / CV^2 (vLLM's burstiness)")]
        a.append(Arg("--request-count", op.requests, _requests_why(op)))
    a += [Arg("--extra-inputs", "ignore_eos:true", "every request generates its full output length"),
          Arg("--artifact-dir", f"{op.stem}-aiperf", "profile_export_aiperf.json, read by 'planner check'")]
    notes.append("AIPerf reports p50/p90/p95/p99 of every metric; TPOT is its inter_token_latency, ITL its "
                 "inter_chunk_latency")
    return a, notes


def _guidellm(op: OperatingPoint, plan: Plan) -> tuple[list[Arg], list[str]]:
    notes = ["GuideLLM reports TTFT, TPOT (its inter_token_latency_ms) and end-to-end latency, not the gap between "
             "tokens (ITL)"]

    def kv(d: dict[str, Any]) -> str:
        return ",".join(f"{k}={v}" for k, v in d.items())

    data: dict[str, Any] = {"kind": "synthetic_text", "prompt_tokens": int(round(op.input_mean)),
                            "output_tokens": int(round(op.output_mean))}
    if op.input_std:
        data |= {"prompt_tokens_stdev": int(round(op.input_std)), "prompt_tokens_min": int(op.input_min),
                 "prompt_tokens_max": int(op.input_max)}
    if op.output_std:
        data |= {"output_tokens_stdev": int(round(op.output_std)), "output_tokens_min": int(op.output_min),
                 "output_tokens_max": int(op.output_max)}
    if op.concurrency is not None:
        profile: dict[str, Any] = {"kind": "concurrent", "streams": op.concurrency}
        pwhy = op.why_rate
    else:
        assert op.rate is not None
        profile = {"kind": "poisson", "rate": round(op.rate, 4)}
        pwhy = op.why_rate + ", Poisson arrivals"
        if abs(op.arrival_cv2 - 1.0) > 1e-9:
            notes.append(f"GuideLLM sends Poisson arrivals; the workload's arrivals have squared CV "
                         f"{op.arrival_cv2:.3g}: queueing will differ from the plan's")
    if op.trace is not None:
        notes.append("the trace's lengths as a normal spread with its bounds (vLLM and AIPerf replay the trace)")
    backend = {"kind": "openai_http", "target": op.base_url, "model": op.model, "request_format": "/v1/completions"}
    if op.model_variable:        # GuideLLM then asks the server for the model it serves
        del backend["model"]
    a = [Arg("--backend", kv(backend), "one replica, completions endpoint"),
         Arg("--profile", kv(profile), pwhy),
         Arg("--constraint", kv({"kind": "max_requests", "count": op.requests}), _requests_why(op)),
         Arg("--data", kv(data), "workload lengths: " + _lengths_why(op, "input") + "; "
             + _lengths_why(op, "output")),
         Arg("--output", kv({"kind": "json", "path": result_name(op.stem, "guidellm")}), "read by 'planner check'")]
    return a, notes


def _replayed(op: OperatingPoint) -> int:
    n = int(op.trace["requests"])                                               # type: ignore[index]
    return (n + op.replicas - 1) // op.replicas


def trace_jsonl(trace: dict[str, Any], replicas: int = 1) -> str:
    """The recorded trace's window (``window_start_s``, ``window_end_s``), replayed
    ``rate_scale`` times faster, as Mooncake JSON lines: ``timestamp`` (ms from the window's
    first request), ``input_length``, ``output_length`` and, where the trace has them,
    ``hash_ids``; for one of ``replicas`` replicas, every ``replicas``-th request (a
    round-robin balancer's share). Reads the trace file the plan recorded (its path as the
    plan saw it)."""
    from planner.traces.figures import window
    from planner.traces.read import KNOWN_COLUMNS, read_trace

    fmt = trace.get("format")
    if fmt not in ("mooncake", *KNOWN_COLUMNS):
        raise InputError("only Mooncake, Azure and BurstGPT traces can be converted for the clients (a 'csv' "
                         "trace's columns are not recorded in the plan)", path="inputs.workloads.trace.format",
                         value=fmt, accepted="mooncake, azure, burstgpt")
    t = read_trace(str(trace["file"]), fmt)
    part = window(t, float(trace.get("window_start_s") or 0.0), trace.get("window_end_s"))
    scale = float(trace.get("rate_scale") or 1.0)
    start = float(part.time_s[0]) if len(part.time_s) else 0.0
    lines = []
    for i in range(0, len(part.time_s), max(1, replicas)):
        row: dict[str, Any] = {"timestamp": int(round((float(part.time_s[i]) - start) / scale * 1e3)),
                               "input_length": int(part.input_tokens[i]), "output_length": int(part.output_tokens[i])}
        if part.block_ids is not None:
            row["hash_ids"] = [int(x) for x in part.blocks(i)]
        lines.append(json.dumps(row, separators=(",", ":")))
    return "\n".join(lines) + "\n"
