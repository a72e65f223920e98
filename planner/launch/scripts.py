"""Launch commands from a plan: `vllm serve`, `python -m sglang.launch_server` and
`trtllm-serve` (with its YAML), one per replica group, every value taken from the plan's own
variables and each flag saying where it came from; the engine's rules checked; the
benchmark that checks the prediction and the figures it should report.

- ``launch(result, plan, engine) -> Launch``: one command (or the reason there is none).
- ``memory_fraction(plan, engine)``: the plan's memory budget in the engine's semantics,
  recomputed from ``plan.memory`` (engine-flags.md).
- the benchmark section: `vllm bench serve`, AIPerf and GuideLLM at the plan's operating point
  (planner/launch/bench.py), run with ``bash planN-ENGINE.sh bench CLIENT``.

Data only in, text out: no physics, no solve. The flag tables are in flags.py.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from planner.catalog.store import Catalog
from planner.catalog.support import support
from planner.errors import InputError
from planner.launch.arg import Arg
from planner.launch.bench import CLIENTS, Benchmark, benchmark, result_name
from planner.launch.flags import ENGINES, EngineFlags
from planner.plan.result import Plan, PlanResult
from planner.units import GB

__all__ = ["ENGINES", "PORT", "Arg", "Benchmark", "Launch", "bench_lines", "benchmark", "comment", "launch",
           "memory_fraction", "result_name", "script"]


@dataclass
class Launch:
    engine: str
    version: str
    rank: int
    ok: bool
    reason: str = ""                                   # why there is no command (ok False)
    model: str = ""
    args: list[Arg] = field(default_factory=list)
    yaml: dict[str, Any] = field(default_factory=dict)  # TensorRT-LLM's --config file
    replicas: int = 1
    gpus_per_replica: int = 1
    checks: list[str] = field(default_factory=list)    # engine rules checked, as sentences
    notes: list[str] = field(default_factory=list)
    support: str = ""                                  # how the engine runs the format, with its source

    def command(self) -> str:
        """The command as one shell line (no comments)."""
        parts = [*ENGINES[self.engine].program.split(), self.model]
        for a in self.args:
            parts += [a.flag] if a.value is None else [a.flag, str(a.value)]
        return " ".join(shlex.quote(p) for p in parts)


def workload(result: PlanResult, plan: Plan) -> dict[str, Any]:
    """The plan's workload as recorded in the result's inputs (Problem.inputs)."""
    w = result.inputs.get("workloads", {}).get(plan.workload)
    if w is None:
        raise InputError("the plan file does not record its workload (written by an older planner); "
                         "re-run 'planner plan --output'", path="inputs.workloads")
    return w


def memory_fraction(plan: Plan, engine: str) -> float:
    """The plan's per-GPU memory budget in the engine's own semantics (engine-flags.md):
    vLLM (weights + activations + KV + overhead) / capacity; SGLang (weights + KV) /
    capacity; TensorRT-LLM KV / (capacity - weights - activations)."""
    m = plan.memory
    cap = m["capacity_bytes"]
    if engine == "vllm":
        return m["total_bytes"] / cap
    if engine == "sglang":
        return (m["weights_bytes"] + m["kv_cache_bytes"]) / cap
    if engine == "trtllm":
        return m["kv_cache_bytes"] / (cap - m["weights_bytes"] - m["activation_bytes"])
    raise InputError("unknown engine", path="--engine", value=engine, accepted=", ".join(ENGINES))


def _up(x: float, digits: int = 3) -> float:
    """Round a fraction up (the KV cache the plan counts on must fit), never above 1."""
    return min(1.0, math.ceil(x * 10**digits - 1e-9) / 10**digits)


def _layout(plan: Plan) -> tuple[int, int]:
    """(GPUs per replica, attention data-parallel groups per replica). docs/load.md: a replica
    has EP/TP attention groups when EP > TP (attention DP + EP)."""
    per = plan.gpus // max(1, plan.replicas)
    dp = max(1, plan.ep // plan.tp) if plan.ep > plan.tp else 1
    return per, dp


def _batch_reason(plan: Plan) -> str:
    e = plan.explanation
    if e is None or not e.batch_limit:
        return "the plan's batch"
    f = e.batch_limit[0]
    return {"memory": "KV-cache capacity", "tpot": "the TPOT target", "e2e_latency": "the end-to-end target",
            "max_batch": "search.max_batch", "running_batch": "more adds no capacity at this load"}.get(
        f.constraint, f.constraint)


def launch(result: PlanResult, plan: Plan, engine: str, catalog: Catalog | None = None) -> Launch:
    """The launch command of ``plan`` for ``engine``, or the reason there is none."""
    if engine not in ENGINES:
        raise InputError("unknown engine", path="--engine", value=engine, accepted=", ".join(ENGINES))
    fl = ENGINES[engine]
    w = workload(result, plan)
    per, dp = _layout(plan)
    out = Launch(engine=engine, version=fl.version, rank=plan.rank, ok=False, model=w.get("hf_id") or w["model"],
                 replicas=plan.replicas, gpus_per_replica=per)
    catalog = catalog or Catalog.default()
    try:
        gpu = catalog.gpu(plan.gpu.partition("@")[0])      # a fleet pool's copy is its GPU (docs/fleet.md)
    except InputError:
        out.reason = f"GPU {plan.gpu} is not in the shipped catalog: support for {engine} cannot be checked"
        return out
    s = support(gpu, plan.quantization, plan.kv_dtype, engine)
    if not s.ok:
        out.reason = s.reason
        return out
    out.support = f"{s.mode} ({s.source})"
    if plan.quantization not in fl.quantization:
        out.reason = f"no {fl.name} quantization name is known for {plan.quantization} (planner/launch/flags.py)"
        return out
    if plan.kv_dtype not in fl.kv_dtype:
        out.reason = f"{fl.name} has no KV-cache dtype for {plan.kv_dtype}; accepted: {', '.join(fl.accepted_kv)}"
        return out
    if plan.role != "aggregated" and engine == "trtllm":
        out.reason = ("TensorRT-LLM serves prefill/decode disaggregation through Dynamo or its disaggregated "
                      "server, not trtllm-serve alone (engine-flags.md)")
        return out
    problems = _rules(plan, w, fl, per, dp, out.checks)
    if problems:
        out.reason = "; ".join(problems)
        return out
    out.ok = True
    sched = plan.load["scheduler"]
    seqs = int(sched["max_num_seqs"]) * plan.pp          # per lane x PP micro-batches, per DP rank
    tokens = int(sched["max_num_batched_tokens"])
    max_len = int(min(w["max_context_tokens"], math.ceil(w["input_tokens_max"] + w["output_tokens_max"])))
    frac = _up(memory_fraction(plan, engine))
    m = plan.memory
    seq_why = (f"plan.load.scheduler.max_num_seqs {sched['max_num_seqs']} per lane (limited by {_batch_reason(plan)}"
               f" at {w['input_tokens_mean']:,.0f} + {w['output_tokens_mean']:,.0f} tokens)"
               + (f" x PP {plan.pp} micro-batches" if plan.pp > 1 else ""))
    tok_why = "plan.load.scheduler.max_num_batched_tokens (tokens per step, chunked prefill)"
    len_why = (f"longest prompt + output, {w['input_tokens_max']:,.0f} + {w['output_tokens_max']:,.0f}"
               f" (model limit {w['max_context_tokens']:,})")
    gb = {k: m[k] / GB for k in ("weights_bytes", "kv_cache_bytes", "activation_bytes", "reserve_bytes",
                                  "capacity_bytes")}
    a: list[Arg] = []
    f = fl.flags
    q = fl.quantization[plan.quantization]
    kv = fl.kv_dtype[plan.kv_dtype]
    if engine == "vllm":
        a.append(Arg(f["tp"], plan.tp, f"TP {plan.tp} from the plan"))
        if plan.pp > 1:
            a.append(Arg(f["pp"], plan.pp, f"PP {plan.pp} from the plan"))
        if dp > 1:
            a.append(Arg(f["dp"], dp, f"attention data parallel EP/TP = {plan.ep}/{plan.tp}"))
        if plan.ep > 1:
            a.append(Arg(f["ep"], None, f"EP {plan.ep} = TP {plan.tp} x DP {dp} (vLLM's EP size)"))
        if q is not None:
            a.append(Arg(f["quantization"], q, f"{plan.quantization} weights (a checkpoint in that format)"))
        a.append(Arg(f["kv_dtype"], kv, f"KV cache in {plan.kv_dtype}"))
        a.append(Arg(f["memory"], frac, f"(weights {gb['weights_bytes']:.1f} + activations "
                                        f"{gb['activation_bytes']:.1f} + KV {gb['kv_cache_bytes']:.1f} + reserve "
                                        f"{gb['reserve_bytes']:.1f} GB) / {gb['capacity_bytes']:.0f} GB"))
        a.append(Arg(f["max_seqs"], seqs, seq_why))
        a.append(Arg(f["max_tokens"], tokens, tok_why))
        a.append(Arg(f["max_len"], max_len, len_why))
    elif engine == "sglang":
        a.append(Arg(f["tp"], plan.tp * dp, f"TP {plan.tp}" + (f" x attention DP {dp}" if dp > 1 else "")
                     + " from the plan"))
        if plan.pp > 1:
            a.append(Arg(f["pp"], plan.pp, f"PP {plan.pp} from the plan"))
        if dp > 1:
            a.append(Arg(f["dp"], dp, f"attention data parallel EP/TP = {plan.ep}/{plan.tp}"))
            a.append(Arg(f["dp_attention"], None, "attention DP, experts shared across the DP ranks"))
        if plan.ep > 1:
            a.append(Arg(f["ep"], plan.ep, f"EP {plan.ep} from the plan"))
        if q is not None:
            a.append(Arg(f["quantization"], q, f"{plan.quantization} weights (a checkpoint in that format)"))
        a.append(Arg(f["kv_dtype"], kv, f"KV cache in {plan.kv_dtype}"))
        a.append(Arg(f["memory"], frac, f"(weights {gb['weights_bytes']:.1f} + KV {gb['kv_cache_bytes']:.1f} GB) "
                                        f"/ {gb['capacity_bytes']:.0f} GB"))
        a.append(Arg(f["max_seqs"], seqs * dp, seq_why + (f" x DP {dp}" if dp > 1 else "")))
        a.append(Arg(f["max_tokens"], tokens, tok_why))
        a.append(Arg(f["max_len"], max_len, len_why))
    else:
        a.append(Arg(f["tp"], plan.tp * dp, f"TP {plan.tp}" + (f" x attention DP {dp}" if dp > 1 else "")
                     + " from the plan"))
        if plan.pp > 1:
            a.append(Arg(f["pp"], plan.pp, f"PP {plan.pp} from the plan"))
        if plan.ep > 1:
            a.append(Arg(f["ep"], plan.ep, f"EP {plan.ep} from the plan"))
        a.append(Arg(f["max_seqs"], seqs * dp, seq_why + (f" x DP {dp}" if dp > 1 else "")))
        a.append(Arg(f["max_tokens"], tokens, tok_why))
        a.append(Arg(f["max_len"], max_len, len_why))
        a.append(Arg(f["memory"], frac, f"KV {gb['kv_cache_bytes']:.1f} GB / ({gb['capacity_bytes']:.0f} GB - "
                                        f"weights {gb['weights_bytes']:.1f} - activations "
                                        f"{gb['activation_bytes']:.1f} GB)"))
        a.append(Arg(f["config"], f"plan{plan.rank}-trtllm.yaml", "the YAML below: KV dtype, attention DP"))
        out.yaml = {"kv_cache_config": {"dtype": kv, "free_gpu_memory_fraction": frac},
                    "enable_attention_dp": dp > 1}
        if plan.quantization != "w16a16":
            out.notes.append(f"TensorRT-LLM reads the quantization from the checkpoint: use a ModelOpt "
                             f"{plan.quantization} checkpoint of {out.model}")
    if plan.role != "aggregated":       # a fleet's prefill or decode pool (docs/disaggregation.md)
        if engine == "vllm":
            a.append(Arg(f["disaggregation"], json.dumps({"kv_connector": "NixlConnector", "kv_role": "kv_both"},
                                                        separators=(",", ":")),
                         f"a {plan.role}-pool replica: KV moved between the pools by vLLM's NIXL connector "
                         "(its disaggregated-prefill docs; another connector works the same way)"))
        else:
            a.append(Arg(f["disaggregation"], plan.role, f"a {plan.role}-pool replica"))
        out.notes.append("prefill and decode pools need the engine's P/D router in front (it sends each request "
                         "to a prefill replica, then to a decode replica with the KV handle); not generated here")
    out.args = a
    if q is not None and engine != "trtllm":
        out.notes.append(f"{plan.quantization} weights: serve a checkpoint quantized in that format "
                         f"({fl.name} usually detects the method from it)")
    if plan.nodes > plan.replicas:
        out.notes.append(f"{per} GPUs per replica span {plan.nodes // plan.replicas} nodes: start the engine's "
                         "multi-node launcher (Ray or its --nnodes options)")
    if frac < 0.5:
        out.notes.append(f"the memory fraction {frac} is what the plan needs, no more; a larger one only gives the "
                         "engine a larger KV cache")
    out.notes.append(f"run on each of the {plan.replicas} replica(s), {per} GPUs each, behind one load balancer")
    return out


def _rules(plan: Plan, w: dict[str, Any], fl: EngineFlags, per: int, dp: int, checks: list[str]) -> list[str]:
    """The engine rules that would reject the command; each check passed becomes a sentence."""
    bad: list[str] = []
    heads, kvh = int(w["num_attention_heads"]), int(w["num_kv_heads"])
    if heads % plan.tp:
        bad.append(f"TP {plan.tp} does not divide the {heads} attention heads")
    else:
        checks.append(f"TP {plan.tp} divides the {heads} attention heads")
    if plan.tp * plan.pp * dp != per:
        bad.append(f"TP {plan.tp} x PP {plan.pp} x DP {dp} != {per} GPUs per replica")
    else:
        checks.append(f"TP {plan.tp} x PP {plan.pp} x DP {dp} = {per} GPUs per replica")
    if plan.ep > 1:
        if not w.get("num_experts"):
            bad.append(f"EP {plan.ep} on a dense model")
        elif fl.name == "vllm" and plan.ep != plan.tp * dp:
            bad.append(f"vLLM's EP size is TP x DP = {plan.tp * dp}, not the plan's EP {plan.ep}")
        else:
            checks.append(f"EP {plan.ep} = TP {plan.tp} x DP {dp}" if fl.name == "vllm"
                          else f"EP {plan.ep} divides the {w['num_experts']} experts"
                          if w["num_experts"] % plan.ep == 0 else f"EP {plan.ep} over {w['num_experts']} experts")
    if kvh % plan.tp and plan.tp % kvh:
        bad.append(f"TP {plan.tp} and the {kvh} KV heads do not divide one another")
    frac = memory_fraction(plan, fl.name)
    if not 0 < frac <= 1:
        bad.append(f"the memory fraction {frac:.3f} is outside (0, 1]")
    return bad


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_PLAIN = re.compile(r"[A-Za-z0-9_./:@+-]+")


def comment(text: str) -> str:
    """``text`` as the body of one shell comment line: every control character (a newline
    above all, which would end the comment and start a command) written as a visible escape.
    Every ``#`` line of a generated script goes through here: plan files, config.json names and
    catalog entries are free text from the user."""
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


def _scalar(v: Any) -> str:
    """A YAML scalar: booleans and numbers as themselves, a plain word bare, any other text as a
    JSON string (JSON is YAML), so no value can end the here-document or open a new key."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int | float):
        return repr(v)
    s = str(v)
    return s if _PLAIN.fullmatch(s) else json.dumps(s)


def _comments(texts: list[str]) -> list[str]:
    return [f"# {comment(x)}" for x in texts]


def _word(value: Any, what: str) -> str:
    """One shell word: quoted, and refused if it holds a control character (a quoted newline is
    safe for the shell but no model, GPU or path has one: it is an attack or a broken file)."""
    s = str(value)
    if _CONTROL.search(s):
        raise InputError("a value written into the launch script holds a control character", path=what,
                         value=comment(s), accepted="printable text")
    return shlex.quote(s)


def _array(name: str, args: list[Arg]) -> list[str]:
    """A bash array of flags, one per line, each with its source as a comment."""
    texts = [a.flag if a.value is None else f"{a.flag} {_word(a.value, a.flag)}" for a in args]
    width = max(map(len, texts), default=0)
    return [f"{name}=(", *(f"  {t:<{width}}  # {comment(a.why)}" for t, a in zip(texts, args)), ")"]


def _block(program: str, model: str, args: list[Arg]) -> list[str]:
    return [*_array("args", args), f"{program} {_word(model, 'model')} \"${{args[@]}}\""]


def _yaml(d: dict[str, Any], indent: int = 0) -> list[str]:
    out = []
    for k, v in d.items():
        if isinstance(v, dict):
            out += [" " * indent + f"{_scalar(k)}:", *_yaml(v, indent + 2)]
        else:
            out.append(" " * indent + f"{_scalar(k)}: {_scalar(v)}")
    return out


PORT = {"vllm": 8000, "sglang": 30000, "trtllm": 8000}
"""Each engine's default listening port (vLLM and trtllm-serve 8000, SGLang's launch_server
30000): the benchmark targets the port the launched server listens on."""


def bench_lines(result: PlanResult, plan: Plan, engine: str) -> list[str]:
    """The benchmark section: one array per client (planner/launch/bench.py) and, with
    ``bench CLIENT`` as the script's arguments, that client's run instead of the server; the
    figures the plan predicts; how to compare them (``planner check``)."""
    runs = [benchmark(result, plan, c, PORT[engine]) for c in CLIENTS]
    name = f"plan{plan.rank}-{engine}.sh"
    out = ["", f"# check the prediction from another shell once the server is up (one replica): bash {name} bench "
               f"{'|'.join(CLIENTS)}, then planner check PLAN.json RESULT (the client's result file)"]
    for b in runs:
        c = CLIENTS[b.client]
        out += _comments([f"{c.program}: {c.version}; flags from {c.source}; writes {b.result_file}"]
                         + [f"note: {n}" for n in b.notes])
        out += _array(f"bench_{b.client}", b.args)
    out.append('if [ "${1:-}" = bench ]; then')
    out.append('  case "${2:-vllm}" in')
    out += [f'    {b.client}) {b.program} "${{bench_{b.client}[@]}}" ;;' for b in runs]
    out += [f'    *) echo "usage: bash {name} [bench {"|".join(CLIENTS)}]" >&2; exit 2 ;;', "  esac", "  exit", "fi"]
    out.append("# the clients should report (ms, closed-form prediction under load):")
    expected = runs[0].expected_ms
    for metric in ("ttft", "tpot", "itl", "e2e"):
        got = [f"{q} {expected[f'{metric}_{q}']:,.1f}" for q in ("mean", "p50", "p90", "p95", "p99")
               if expected.get(f"{metric}_{q}") is not None]
        if got:
            out.append(f"#   {metric.upper() if metric != 'e2e' else 'E2EL'}: {', '.join(got)}")
    return [*out, ""]


def script(result: PlanResult, plan: Plan, engine: str, catalog: Catalog | None = None) -> str:
    """A runnable, commented shell script: the launch command, then the benchmark check."""
    ln = launch(result, plan, engine, catalog)
    who = "" if plan.workload == "main" else f" ({plan.workload}" + (
        f", {plan.role} pool)" if plan.role != "aggregated" else ")")
    head = [f"plan #{plan.rank}{who}: {plan.gpus} x {plan.gpu} as {plan.replicas} replica(s), TP {plan.tp} "
            f"PP {plan.pp} EP {plan.ep}, {plan.quantization} weights, KV {plan.kv_dtype}",
            f"engine: {ln.version}; flags from {ENGINES[engine].source}"]
    if not ln.ok:
        return "\n".join(_comments(head + [f"no {engine} command: {ln.reason}"])) + "\n"
    lines = _comments(head + [f"runs as: {ln.support}"] + [f"checked: {c}" for c in ln.checks]
                      + [f"note: {n}" for n in ln.notes])
    if ln.yaml:
        name = f"plan{plan.rank}-trtllm.yaml"
        lines += [f"cat > {name} <<'YAML'", *_yaml(ln.yaml), "YAML"]
    if plan.role != "aggregated":
        lines += _block(ENGINES[engine].program, ln.model, ln.args)
        lines += ["", *_comments([f"check the prediction through the P/D router once both pools are up: this "
                                  f"{plan.role}-pool replica alone serves no request end to end"])]
        return "\n".join(lines) + "\n"
    lines += bench_lines(result, plan, engine)
    lines += _block(ENGINES[engine].program, ln.model, ln.args)
    return "\n".join(lines) + "\n"
