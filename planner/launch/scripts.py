"""Launch commands from a plan: `vllm serve`, `python -m sglang.launch_server` and
`trtllm-serve` (with its YAML), one per replica group, every value taken from the plan's own
variables and each flag saying where it came from; the engine's rules checked; the
benchmark that checks the prediction and the figures it should report.

- ``launch(result, plan, engine, release="current", context="max") -> Launch``: one command (or
  the reason there is none), for the engine's current release or the one before; every flag
  and YAML key is one that release defines (planner/launch/data, flags.py).
- What it serves: the checkpoint in the plan's weight format (planner/catalog/checkpoints.py):
  the release, a published checkpoint, the repository the plan was given, a 16-bit checkpoint
  quantized by the engine at load where the engine does that (FP8 in vLLM and SGLang), or
  else a placeholder the script refuses to run without (``MODEL``): never another format.
  A chat service serves the instruction-tuned checkpoint (``tuning="instruct"``).
- The context limit covers the longest request (``context_limit``): the length
  distribution's maximum or a stated percentile (``context``), plus the output's.
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

from planner.catalog.aliases import Checkpoint
from planner.catalog.checkpoints import ServingCheckpoint, serving_checkpoint
from planner.catalog.store import Catalog
from planner.catalog.support import support
from planner.errors import InputError
from planner.launch.arg import MODEL_VARIABLE, Arg
from planner.launch.bench import CLIENTS, Benchmark, benchmark, result_name, stem, workload
from planner.launch.flags import ENGINES, RELEASE_CHOICES, EngineFlags, engine_flags
from planner.plan.result import Plan, PlanResult
from planner.units import GB

__all__ = ["ENGINES", "PORT", "Arg", "Benchmark", "Launch", "bench_lines", "benchmark", "comment", "context_limit",
           "launch", "memory_fraction", "result_name", "script", "stem"]

CONTEXT_CHOICES = ("max", "p99.9", "p99", "p90")
"""How the context limit is sized: the longest request (a lognormal has none: its p99.9), or a
stated percentile of the prompt and output lengths."""


@dataclass
class Launch:
    engine: str
    version: str
    rank: int
    ok: bool
    reason: str = ""                                   # why there is no command (ok False)
    model: str = ""                                    # the repository served ("" : the placeholder)
    args: list[Arg] = field(default_factory=list)
    yaml: dict[str, Any] = field(default_factory=dict)  # TensorRT-LLM's --extra_llm_api_options file
    replicas: int = 1
    gpus_per_replica: int = 1
    checks: list[str] = field(default_factory=list)    # engine rules checked, as sentences
    notes: list[str] = field(default_factory=list)
    support: str = ""                                  # how the engine runs the format, with its source
    port: int = 8000                                   # the port the server listens on
    release: str = "current"                           # the engine release the flags are checked against
    checkpoint: dict[str, Any] | None = None           # what is served and why (planner/catalog/checkpoints.py)
    placeholder: str = ""                              # the checkpoint to set MODEL to, when none is known
    yaml_file: str = ""                                # TensorRT-LLM: the name of its YAML file
    stem: str = ""                                     # the deployment's file name stem (``stem``)

    def command(self) -> str:
        """The command as one shell line (no comments); ``$MODEL`` where a checkpoint must be set."""
        parts = [*ENGINES[self.engine].program.split(), self.model or f"${MODEL_VARIABLE}"]
        for a in self.args:
            parts += [a.flag] if a.value is None else [a.flag, str(a.value)]
        return " ".join(p if p == f"${MODEL_VARIABLE}" else shlex.quote(p) for p in parts)


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


def context_limit(w: dict[str, Any], plan: Plan, context: str = "max") -> tuple[int, str]:
    """(the engine's context limit in tokens, why). The longest prompt plus the longest output
    the workload states (``context``: ``max``, or the stated percentile of each); a lognormal
    has no longest request, so ``max`` takes its p99.9. A length given as one number is what
    the figures assume, not a bound on real prompts: the limit is then the model's context,
    as far as one replica's KV cache (the plan's batch x its mean context) holds one request.
    Never the mean: every longer request would be refused."""
    if context not in CONTEXT_CHOICES:
        raise InputError("unknown context basis", path="--context", value=context,
                         accepted=", ".join(CONTEXT_CHOICES))
    model_max = int(w["max_context_tokens"])
    inp, out = w.get("input_lengths"), w.get("output_lengths")
    mean = float(w["input_tokens_mean"]) + float(w["output_tokens_mean"])
    kv_tokens = int(plan.batch * mean)
    if inp is None or out is None:          # a plan file from before the length tails were recorded
        longest = math.ceil(float(w["input_tokens_max"]) + float(w["output_tokens_max"]))
        return min(model_max, longest), (f"longest prompt + output as the plan file records them, "
                                         f"{w['input_tokens_max']:,.0f} + {w['output_tokens_max']:,.0f}")
    if "fixed" in (inp["kind"], out["kind"]):
        limit = max(min(model_max, kv_tokens), math.ceil(mean))
        cap = "the model's context" if limit == model_max else (
            f"what one replica's KV cache holds for one request (batch {plan.batch} x {mean:,.0f} tokens)")
        return limit, (f"the workload gives one length ({w['input_tokens_mean']:,.0f} + "
                       f"{w['output_tokens_mean']:,.0f} tokens): the figures assume it, real prompts vary, so "
                       f"requests up to {limit:,} tokens are served ({cap}); give a length distribution to size "
                       "the limit from the longest request")

    def at(d: dict[str, Any]) -> tuple[float, str]:
        if context == "max" and d.get("max") is None:
            return float(d["p99.9"]), "p99.9 (a lognormal has no maximum)"
        return float(d[context]), "the longest" if context == "max" else context

    i, how = at(inp)
    o, _ = at(out)
    limit = min(model_max, math.ceil(i + o))
    why = f"{how} prompt + output of the workload, {i:,.0f} + {o:,.0f} (model limit {model_max:,})"
    if context != "max":
        why += f"; requests longer than its {context} are refused"
    if limit > kv_tokens:
        why += f"; more than one replica's KV cache holds (batch {plan.batch} x {mean:,.0f} tokens): the engine " \
               "may refuse to start"
    return limit, why


def _checkpoint(result: PlanResult, plan: Plan, w: dict[str, Any], gpu: Any, fl: EngineFlags, catalog: Catalog,
                tuning: str) -> tuple[ServingCheckpoint | None, str | None]:
    """(the checkpoint that serves the plan's format, the engine's name for an online
    quantization of a 16-bit checkpoint where that is how it is served)."""
    named = w.get("checkpoint")
    ck = None if not named else Checkpoint(w["model"], named.get("scheme"), named.get("scheme_from", ""),
                                           repository=named.get("repository"), tuning=named.get("tuning"))
    entry = catalog.models.get(w["model"])
    if entry is None:
        if plan.checkpoint:
            return ServingCheckpoint(**plan.checkpoint), None
        return None, None
    c = serving_checkpoint(entry, plan.quantization, gpu=gpu, kv=plan.kv_dtype, named=ck, tuning=tuning,
                           engine=fl.name)
    if c.kind == "quantize" and plan.quantization in fl.online and c.release == "w16a16":
        base = serving_checkpoint(entry, "w16a16", named=ck, tuning=tuning)
        if base.repository:
            return ServingCheckpoint("online", base.repository, plan.quantization, "w16a16", c.release, base.tuning,
                                     f"{fl.label} quantizes 16-bit weights to {fl.online[plan.quantization]} as it "
                                     "loads them"), fl.online[plan.quantization]
    return c, None


def launch(result: PlanResult, plan: Plan, engine: str, catalog: Catalog | None = None, *,
           release: str = "current", context: str = "max", tuning: str = "instruct") -> Launch:
    """The launch command of ``plan`` for ``engine`` (its ``release``: current or previous), or
    the reason there is none (module docstring)."""
    if engine not in ENGINES:
        raise InputError("unknown engine", path="--engine", value=engine, accepted=", ".join(ENGINES))
    if release not in RELEASE_CHOICES:
        raise InputError("unknown engine release", path="--engine-release", value=release,
                         accepted=", ".join(RELEASE_CHOICES))
    fl = engine_flags(engine, release)
    w = workload(result, plan)
    per, dp = _layout(plan)
    out = Launch(engine=engine, version=fl.version, rank=plan.rank, stem=stem(result, plan), ok=False,
                 replicas=plan.replicas,
                 gpus_per_replica=per, port=fl.port, release=release)
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
    if plan.kv_dtype not in fl.kv_dtype:
        out.reason = f"{fl.label} has no KV-cache dtype for {plan.kv_dtype}; accepted: {', '.join(fl.accepted_kv)}"
        return out
    if plan.role != "aggregated" and plan.pp > 1 and engine == "trtllm":
        out.reason = "a TensorRT-LLM disaggregated worker with pipeline parallelism is not generated here"
        return out
    problems = _rules(plan, w, fl, per, dp, out.checks)
    if problems:
        out.reason = "; ".join(problems)
        return out
    ck, online = _checkpoint(result, plan, w, gpu, fl, catalog, tuning)
    out.checkpoint = None if ck is None else ck.to_dict()
    if ck is not None and ck.repository:
        out.model = ck.repository
    elif ck is None:
        out.model = w.get("hf_id") or w["model"]
    else:
        out.placeholder = (f"a {plan.quantization} checkpoint of {ck.from_repository or w['model']}: none is "
                           f"published that the planner knows; quantize it yourself and set {MODEL_VARIABLE}")
    args, notes = _args(plan, w, fl, per, dp, online, context, out)
    out.args = args
    out.notes += notes
    bad = [a.flag for a in args if a.flag not in fl.data.flags]
    bad += [k for k in _keys(out.yaml) if k not in fl.data.yaml_keys] if out.yaml else []
    if bad:      # the tables and the release disagree: a bug in flags.py, never a script that fails
        out.args, out.yaml = [], {}
        out.reason = f"{fl.version} does not define {', '.join(bad)} (planner/launch/flags.py)"
        return out
    out.ok = True
    return out


def _keys(d: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys of a nested mapping: every key and every leaf (``kv_cache_config.dtype``)."""
    out = []
    for k, v in d.items():
        out.append(prefix + k)
        if isinstance(v, dict):
            out += _keys(v, prefix + k + ".")
    return out


def _args(plan: Plan, w: dict[str, Any], fl: EngineFlags, per: int, dp: int, online: str | None, context: str,
          out: Launch) -> tuple[list[Arg], list[str]]:
    """The engine's flags (and TensorRT-LLM's YAML, into ``out.yaml``) with their sources."""
    engine, f = fl.name, fl.flags
    notes: list[str] = []
    sched = plan.load["scheduler"]
    seqs = int(sched["max_num_seqs"]) * plan.pp          # per lane x PP micro-batches, per DP rank
    tokens = int(sched["max_num_batched_tokens"])
    max_len, len_why = context_limit(w, plan, context)
    frac = _up(memory_fraction(plan, engine))
    m = plan.memory
    seq_why = (f"plan.load.scheduler.max_num_seqs {sched['max_num_seqs']} per lane (limited by {_batch_reason(plan)}"
               f" at {w['input_tokens_mean']:,.0f} + {w['output_tokens_mean']:,.0f} tokens)"
               + (f" x PP {plan.pp} micro-batches" if plan.pp > 1 else ""))
    tok_why = "plan.load.scheduler.max_num_batched_tokens: tokens per step, a prefill chunk beside the decodes"
    chunk_why = "chunked prefill: every step mixes prompt chunks with the running decodes, as the figures assume " \
                "(docs/load.md section 1)"
    gb = {k: m[k] / GB for k in ("weights_bytes", "kv_cache_bytes", "activation_bytes", "reserve_bytes",
                                  "capacity_bytes")}
    ck = out.checkpoint or {}
    q_why = (f"{plan.quantization} weights: {fl.label} quantizes the 16-bit checkpoint as it loads it (dynamic scales; "
             "a calibrated checkpoint may score a little better)")
    reuse = _prefix_reuse(w)
    tp_all = plan.tp * dp
    a: list[Arg] = []
    if engine == "vllm":
        a.append(Arg(f["tp"], plan.tp, f"TP {plan.tp} from the plan"))
        if plan.pp > 1:
            a.append(Arg(f["pp"], plan.pp, f"PP {plan.pp} from the plan"))
        if dp > 1:
            a.append(Arg(f["dp"], dp, f"attention data parallel EP/TP = {plan.ep}/{plan.tp}"))
        if plan.ep > 1:
            a.append(Arg(f["ep"], None, f"EP {plan.ep} = TP {plan.tp} x DP {dp} (vLLM's EP size)"))
        if online:
            a.append(Arg(f["quantization"], online, q_why))
        a.append(Arg(f["kv_dtype"], fl.kv_dtype[plan.kv_dtype], f"KV cache in {plan.kv_dtype}"))
        a.append(Arg(f["memory"], frac, f"(weights {gb['weights_bytes']:.1f} + activations "
                                        f"{gb['activation_bytes']:.1f} + KV {gb['kv_cache_bytes']:.1f} + reserve "
                                        f"{gb['reserve_bytes']:.1f} GB) / {gb['capacity_bytes']:.0f} GB"))
        a.append(Arg(f["max_seqs"], seqs, seq_why))
        a.append(Arg(f["max_tokens"], tokens, tok_why))
        a.append(Arg(f["chunked"], None, chunk_why))
        a.append(Arg(f["max_len"], max_len, len_why))
        if reuse:
            a.append(Arg(f["prefix_cache"], None, reuse))
    elif engine == "sglang":
        a.append(Arg(f["tp"], tp_all, f"TP {plan.tp}" + (f" x attention DP {dp}" if dp > 1 else "")
                     + " from the plan (SGLang's TP group spans the attention DP groups)"))
        if plan.pp > 1:
            a.append(Arg(f["pp"], plan.pp, f"PP {plan.pp} from the plan"))
        if dp > 1:
            a.append(Arg(f["attn_dp"], dp, f"attention data parallel EP/TP = {plan.ep}/{plan.tp} inside the TP group"))
        if plan.ep > 1:
            a.append(Arg(f["ep"], plan.ep, f"EP {plan.ep} from the plan"))
        if online:
            a.append(Arg(f["quantization"], online, q_why))
        a.append(Arg(f["kv_dtype"], fl.kv_dtype[plan.kv_dtype], f"KV cache in {plan.kv_dtype}"))
        a.append(Arg(f["memory"], frac, f"(weights {gb['weights_bytes']:.1f} + KV {gb['kv_cache_bytes']:.1f} GB) "
                                        f"/ {gb['capacity_bytes']:.0f} GB"))
        a.append(Arg(f["max_seqs"], seqs * dp, seq_why + (f" x DP {dp}" if dp > 1 else "")))
        a.append(Arg(f["max_tokens"], tokens, tok_why + " (SGLang's chunk size)"))
        a.append(Arg(f["prefill_tokens"], tokens, "the same budget for a prefill batch"))
        a.append(Arg(f["mixed_chunk"], None, chunk_why))
        a.append(Arg(f["max_len"], max_len, len_why))
        if reuse:
            notes.append(f"{reuse}: SGLang's radix cache is on by default")
    else:
        a.append(Arg(f["backend"], "pytorch", "the PyTorch backend, which reads Hugging Face checkpoints"))
        a.append(Arg(f["tp"], tp_all, f"TP {plan.tp}" + (f" x attention DP {dp}" if dp > 1 else "")
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
        out.yaml_file = f"{out.stem}-trtllm.yaml"
        a.append(Arg(f["config"], out.yaml_file, "the YAML below: KV dtype, attention DP, chunked prefill "
                                                 "(--extra_llm_api_options: every 1.x release has it)"))
        kv = {"dtype": fl.kv_dtype[plan.kv_dtype], "free_gpu_memory_fraction": frac}
        if reuse:
            kv["enable_block_reuse"] = True
        out.yaml = {"kv_cache_config": kv, "enable_attention_dp": dp > 1, "enable_chunked_prefill": True}
        if plan.role != "aggregated":
            out.yaml["cache_transceiver_config"] = {"backend": "DEFAULT"}
            if plan.role == "prefill":
                out.yaml["disable_overlap_scheduler"] = True
    a.append(Arg(f["host"], "0.0.0.0", "listen on every interface: the load balancer reaches each replica"))
    a.append(Arg(f["port"], fl.port, f"{fl.label}'s default port, stated: the benchmark below targets it"))
    if plan.role != "aggregated":       # a fleet's prefill or decode pool (docs/disaggregation.md)
        if engine == "vllm":
            a.append(Arg(f["disaggregation"], json.dumps({"kv_connector": "NixlConnector", "kv_role": "kv_both"},
                                                        separators=(",", ":")),
                         f"a {plan.role}-pool replica: KV moved between the pools by vLLM's NIXL connector "
                         "(its disaggregated-prefill docs; another connector works the same way)"))
        elif engine == "sglang":
            a.append(Arg(f["disaggregation"], plan.role, f"a {plan.role}-pool replica"))
            a.append(Arg(f["transfer"], "nixl", "KV moved between the pools by NIXL (mooncake is SGLang's default)"))
        else:
            notes.append(f"a {plan.role}-pool worker: start the pools' router with `trtllm-serve disaggregated -c "
                         "CONFIG` listing the context and generation workers")
        notes.append("prefill and decode pools need the engine's P/D router in front (it sends each request "
                     "to a prefill replica, then to a decode replica with the KV handle); not generated here")
    kind = ck.get("kind")
    if kind == "release":
        notes.append(f"serves {ck['repository']}, the release checkpoint, in {ck['stored']}")
    elif kind == "published":
        notes.append(f"serves {ck['repository']}: a published {ck['stored']} checkpoint (the release is "
                     f"{ck['release']}; {ck['source']})")
    elif kind == "named":
        notes.append(f"serves {ck['repository']}, the model the plan was given ({ck['stored']})")
    elif kind == "online":
        notes.append(f"serves {ck['repository']} (16-bit) quantized to {plan.quantization} at load: no published "
                     f"{plan.quantization} checkpoint is known")
    elif kind == "quantize":
        notes.append(f"no {plan.quantization} checkpoint of this model is known (the release is {ck['release']}): "
                     f"quantize {ck['from_repository']} yourself (llm-compressor, ModelOpt) and set "
                     f"{MODEL_VARIABLE}; the script stops until you do")
    if kind in ("release", "published", "named", "online") and ck.get("stored") != plan.quantization:
        notes.append(f"{fl.label} runs the {ck['stored']} checkpoint as {plan.quantization} on this GPU "
                     f"({out.support})")
    if ck and ck.get("tuning") is None and kind != "quantize":
        notes.append("the catalog does not say whether this checkpoint is instruction-tuned; a chat service needs "
                     "the instruct one")
    if plan.nodes > plan.replicas:
        notes.append(f"{per} GPUs per replica span {plan.nodes // plan.replicas} nodes: start the engine's "
                     "multi-node launcher (Ray or its --nnodes options)")
    if frac < 0.5:
        notes.append(f"the memory fraction {frac} is what the plan needs, no more; a larger one only gives the "
                     "engine a larger KV cache")
    notes.append(f"run on each of the {plan.replicas} replica(s), {per} GPUs each, behind one load balancer")
    if plan.spare_replicas:      # a spot offer's spares (docs/workloads.md "Prices by kind"): same command, standing by
        notes.append(f"spot: keep {plan.spare_replicas} spare replica(s) of the same command running, to take a "
                     "preempted replica's place (in the plan's cost, not in its capacity)")
    return a, notes


def _prefix_reuse(w: dict[str, Any]) -> str:
    """Why to turn prefix caching on ('' if not): the workload's prefix cache, which the figures
    count on (its cached prompt tokens skip prefill, docs/workloads.md section 7), or, without
    one, a trace that reuses prompt prefixes, where the figures count every prompt token as
    prefilled, so cache hits only make the service faster than planned."""
    cache = w.get("prefix_cache") or {}
    if cache.get("share"):
        source = {"hit_rate": "the workload's stated hit rate", "prefix_tokens": "the workload's shared prefix",
                  "trace": "the trace's reuse"}.get(str(cache.get("source")), "the workload")
        return (f"prefix caching: the figures count {float(cache['share']):.0%} of prompt tokens as served from the "
                f"cache ({source}): without it TTFT and capacity fall short of the plan")
    trace = w.get("trace") or {}
    reuse = [r for r in trace.get("reuse") or [] if r.get("share")]
    if not reuse:
        return ""
    share = max(float(r["share"]) for r in reuse)
    return (f"prefix caching: the trace reuses up to {share:.0%} of prompt blocks; the figures count every prompt "
            "token as prefilled, so hits only make it faster than planned")


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
    texts = [a.flag if a.value is None else f'{a.flag} "${MODEL_VARIABLE}"' if a.variable
             else f"{a.flag} {_word(a.value, a.flag)}" for a in args]
    width = max(map(len, texts), default=0)
    return [f"{name}=(", *(f"  {t:<{width}}  # {comment(a.why)}" for t, a in zip(texts, args)), ")"]


def _model_lines(ln: Launch) -> list[str]:
    """``MODEL=...``: the repository served, or, where no checkpoint in the plan's format is
    known, a line that stops the script until MODEL is set (never another format silently)."""
    if ln.model:
        return [f"{MODEL_VARIABLE}={_word(ln.model, 'model')}"]
    say = re.sub(r"[^A-Za-z0-9 ./:_-]+", " ", ln.placeholder)    # plain words only inside ${...:?...}
    return [*_comments([f"EDIT: {ln.placeholder}"]),
            f'{MODEL_VARIABLE}="${{{MODEL_VARIABLE}:?set {MODEL_VARIABLE} to {say}}}"']


def _block(program: str, ln: Launch, bench: list[str] | None = None) -> list[str]:
    """MODEL=..., the benchmark section (``bench_lines``: its arrays name $MODEL; ``bench``
    runs a client and exits), then the server's flags and command."""
    return [*_model_lines(ln), *(bench or []), *_array("args", ln.args),
            f'{program} "${MODEL_VARIABLE}" "${{args[@]}}"']


def _yaml(d: dict[str, Any], indent: int = 0) -> list[str]:
    out = []
    for k, v in d.items():
        if isinstance(v, dict):
            out += [" " * indent + f"{_scalar(k)}:", *_yaml(v, indent + 2)]
        else:
            out.append(" " * indent + f"{_scalar(k)}: {_scalar(v)}")
    return out


def bench_lines(result: PlanResult, plan: Plan, engine: str, ln: Launch) -> list[str]:
    """The benchmark section: one array per client (planner/launch/bench.py) against the port
    the server listens on and the checkpoint it serves and, with ``bench CLIENT`` as the
    script's arguments, that client's run instead of the server; the figures the plan
    predicts; how to compare them (``planner check``)."""
    runs = [benchmark(result, plan, c, ln.port, ln.model) for c in CLIENTS]
    name = f"{ln.stem}-{engine}.sh"
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


def script(result: PlanResult, plan: Plan, engine: str, catalog: Catalog | None = None, *,
           release: str = "current", context: str = "max", tuning: str = "instruct") -> str:
    """A runnable, commented shell script: the launch command, then the benchmark check."""
    ln = launch(result, plan, engine, catalog, release=release, context=context, tuning=tuning)
    fl = engine_flags(engine, release)
    who = "" if plan.workload == "main" else f" ({plan.workload}" + (
        f", {plan.role} pool)" if plan.role != "aggregated" else ")")
    head = [f"plan #{plan.rank}{who}: {plan.gpus} x {plan.gpu} as {plan.replicas} replica(s), TP {plan.tp} "
            f"PP {plan.pp} EP {plan.ep}, {plan.quantization} weights, KV {plan.kv_dtype}",
            f"engine: {ln.version}; flags checked against planner/launch/data/{engine}-{fl.data.version}.json"]
    if not ln.ok:
        return "\n".join(_comments(head + [f"no {engine} command: {ln.reason}"])) + "\n"
    lines = [*_comments(head + [f"runs as: {ln.support}"] + [f"checked: {c}" for c in ln.checks]
                        + [f"note: {n}" for n in ln.notes]), "set -eu"]
    if ln.yaml:
        lines += [f"cat > {_word(ln.yaml_file, 'yaml file')} <<'YAML'", *_yaml(ln.yaml), "YAML"]
    if plan.role != "aggregated":
        lines += _block(fl.program, ln)
        lines += ["", *_comments([f"check the prediction through the P/D router once both pools are up: this "
                                  f"{plan.role}-pool replica alone serves no request end to end"])]
        return "\n".join(lines) + "\n"
    lines += _block(fl.program, ln, bench_lines(result, plan, engine, ln))
    return "\n".join(lines) + "\n"


PORT = {name: engine_flags(name).port for name in ENGINES}
"""Each engine's listening port as the launch scripts state it (vLLM and trtllm-serve 8000,
SGLang's launch_server 30000): Kubernetes services and the benchmarks target it."""
