"""`planner launch PLAN.json`: engine launch commands and the benchmark check for each plan."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Optional

import typer
import yaml

from planner.cli.common import about, dump_json, emit, guarded, read_result
from planner.errors import InputError
from planner.launch.bench import CLIENTS, operating_point, trace_jsonl, trace_name
from planner.launch.flags import RELEASE_CHOICES
from planner.launch.k8s import TARGETS, Options, manifests
from planner.launch.scripts import CONTEXT_CHOICES, ENGINES, benchmark, comment, launch, script, stem
from planner.yamlio import write_atomically

EngineChoice = enum.Enum("EngineChoice", {name: name for name in (*ENGINES, "all")}, type=str)
ReleaseChoice = enum.Enum("ReleaseChoice", {name: name for name in RELEASE_CHOICES}, type=str)
ContextChoice = enum.Enum("ContextChoice", {name.replace(".", "_"): name for name in CONTEXT_CHOICES}, type=str)
K8sChoice = enum.Enum("K8sChoice", {name: name for name in TARGETS}, type=str)

EPILOG = ("Example: planner plan instances/chat_llama70b.yaml --output plan.json && planner launch plan.json "
          "--engine vllm --out launch/")


def launch_command(
    plan_file: Annotated[Path, typer.Argument(help="a plan written by 'planner plan --output FILE.json'")],
    engine: Annotated[EngineChoice, typer.Option("--engine", "-e", help="the serving engine, or all three")]
    = EngineChoice.all,
    rank: Annotated[Optional[int], typer.Option("--rank", help="only the plan of this rank (default: every plan)")]
    = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="write one script per deployment and engine "
                                                "(planN-ENGINE.sh, or planN.K-ENGINE.sh for the K-th deployment of "
                                                "a rank with several, and TensorRT-LLM's YAML) into DIR")] = None,
    release: Annotated[ReleaseChoice, typer.Option(
        "--engine-release", help="the engine release the flags are checked against: current (vLLM 0.34.0, SGLang "
        "0.5.23, TensorRT-LLM 1.2.1) or previous (0.33.0, 0.5.22, 1.1.0)")] = ReleaseChoice.current,
    context: Annotated[ContextChoice, typer.Option(
        "--context", help="size the context limit by the longest request (max; a lognormal's p99.9) or a stated "
        "percentile of the prompt and output lengths")] = ContextChoice.max,
    base: Annotated[bool, typer.Option("--base", help="serve the base checkpoint, not the instruction-tuned one "
                                                      "a chat service needs")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output on stdout")] = False,
    k8s: Annotated[Optional[K8sChoice], typer.Option("--k8s", help="Kubernetes manifests instead of scripts: KServe "
                                                      "(InferenceService, LLMInferenceService), llm-d Helm values or "
                                                      "a Dynamo DynamoGraphDeployment, each with KEDA autoscaling")]
    = None,
    node_selector: Annotated[Optional[list[str]], typer.Option("--node-selector", help="KEY=VALUE node label for "
                                                                "the GPU pods (default: the GPU's product label)")]
    = None,
    scale_at: Annotated[float, typer.Option("--scale-at", help="scale out past this fraction of a replica's "
                                            "capacity at SLO")] = 0.8,
    max_replicas: Annotated[Optional[int], typer.Option("--max-replicas", help="autoscaling ceiling (default: the "
                                                        "plan's replicas)")] = None,
    namespace: Annotated[Optional[str], typer.Option("--namespace", help="metadata.namespace of every manifest")]
    = None,
    prometheus: Annotated[str, typer.Option("--prometheus", help="the Prometheus KEDA queries")]
    = "http://prometheus-operated.monitoring.svc:9090",
) -> None:
    """Launch commands (vllm serve, python -m sglang.launch_server, trtllm-serve + YAML) from a plan, each flag
    saying where its value came from; then the vllm bench serve command that checks the prediction.

    A command is given only where the engine runs the plan's weight format and KV dtype on its GPU
    (docs/support.md); otherwise the reason. Exit 0, 2 for a bad file, 3 for a bug."""

    def run() -> int:
        result = read_result(plan_file)
        if k8s is not None:
            return _manifests(result, plan_file, k8s.value, engine.value, rank, out, as_json,
                              Options(namespace=namespace, prometheus=prometheus, scale_at=scale_at,
                                      max_replicas=max_replicas, node_selector=_selector(node_selector)))
        if out is not None and out.exists() and not out.is_dir():
            raise InputError("--out must be a folder (it holds one script per plan and engine)", path="--out",
                             value=str(out), accepted="a folder, new or existing")
        if not result.plans:
            raise InputError(f"nothing to launch: the file has no plan (status {result.status})", file=str(plan_file),
                             path="plans", accepted="a plan or fleet file with at least one plan or deployment")
        engines = list(ENGINES) if engine.value == "all" else [engine.value]
        plans = [p for p in result.plans if rank is None or p.rank == rank]
        if rank is not None and not plans:
            raise InputError("no plan of that rank in the file", path="--rank", value=rank,
                             accepted=", ".join(str(p.rank) for p in result.plans) or "none (no plan)")
        texts, data = [], []
        how = {"release": release.value, "context": context.value, "tuning": "base" if base else "instruct"}
        for p in plans:
            for e in engines:
                text = script(result, p, e, **how)
                ln = launch(result, p, e, **how)
                item = {"rank": p.rank, "script": stem(result, p), "workload": p.workload, "role": p.role,
                        "engine": e, "version": ln.version, "ok": ln.ok, "reason": ln.reason,
                        "command": ln.command() if ln.ok else None, "model": ln.model or None,
                        "placeholder": ln.placeholder or None, "checkpoint": ln.checkpoint, "port": ln.port,
                        "args": [{"flag": a.flag, "value": a.value, "why": a.why} for a in ln.args],
                        "yaml": ln.yaml or None, "checks": ln.checks, "notes": ln.notes, "support": ln.support}
                if ln.ok and p.role == "aggregated":
                    runs = [benchmark(result, p, c, ln.port, ln.model) for c in CLIENTS]
                    item["benchmark"] = {"command": runs[0].command(), "expected_ms": runs[0].expected_ms}
                    item["benchmarks"] = [{"client": b.client, "version": CLIENTS[b.client].version,
                                           "command": b.command(), "result_file": b.result_file, "notes": b.notes}
                                          for b in runs]
                data.append(item)
                texts.append(text)
                if out is not None:          # staged: written when every script is made (cli/common.guarded)
                    write_atomically(out / f"{stem(result, p)}-{e}.sh", text, protected=(plan_file,), option="--out")
                    op = operating_point(result, p)
                    if ln.ok and p.role == "aggregated" and op.trace is not None and op.trace_rate:
                        write_atomically(out / trace_name(op.stem), trace_jsonl(op.trace, p.replicas),
                                         protected=(plan_file,), option="--out")
                    if ln.ok and ln.yaml:
                        write_atomically(out / f"{stem(result, p)}-{e}.yaml", yaml.safe_dump(ln.yaml, sort_keys=False),
                                         protected=(plan_file,), option="--out")
        emit(dump_json({"plan_file": str(plan_file), "launches": data}) if as_json else "\n".join(texts))
        return 0

    code = guarded(about(plan_file, plan_file=True)(run), as_json=as_json)
    if code:
        raise typer.Exit(code)


def _selector(items: list[str] | None) -> dict[str, str] | None:
    if not items:
        return None
    out = {}
    for x in items:
        key, sep, value = x.partition("=")
        if not sep or not key:
            raise InputError("a node selector is KEY=VALUE", path="--node-selector", value=x,
                             accepted="e.g. nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3")
        out[key] = value
    return out


def _manifests(result, plan_file: Path, target: str, engine: str, rank: int | None, out: Path | None, as_json: bool,
               options: Options) -> int:
    """--k8s: the manifests of one plan (rank 1 unless --rank) or of every deployment of a fleet."""
    plans = [p for p in result.plans if p.rank == (rank if rank is not None else 1)]   # every deployment of it
    if not plans:
        raise InputError("no plan of that rank in the file", path="--rank", value=rank,
                         accepted=", ".join(str(p.rank) for p in result.plans) or "none (no plan)")
    options.engine = "vllm" if engine == "all" else engine
    docs = manifests(result, plans, target, options)
    if as_json:
        emit(dump_json({"plan_file": str(plan_file), "target": target, "manifests": [
            {"name": m.name, "kind": m.kind, "doc": m.doc, "notes": m.notes} for m in docs]}))
        return 0
    texts = []
    for m in docs:
        text = "".join(f"# {comment(n)}\n" for n in m.notes) + yaml.safe_dump(m.doc, sort_keys=False)
        texts.append(text)
        if out is not None:
            write_atomically(out / f"{m.name}.yaml", text, protected=(plan_file,), option="--out")
    emit("---\n".join(texts))
    return 0
