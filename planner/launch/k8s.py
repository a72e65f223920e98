"""Kubernetes manifests for a plan's deployments (``planner launch --k8s TARGET``):

- ``kserve``: a KServe ``InferenceService`` (serving.kserve.io/v1beta1, raw deployment) per
  aggregated deployment, the engine's launch command in its predictor container, scaled by
  KEDA on the engine's request rate; and, for vLLM, an ``LLMInferenceService``
  (serving.kserve.io/v1alpha2, KServe's llm-d integration) per workload, its prefill pool
  beside the decode pool where the plan disaggregates.
- ``llm-d``: values for llm-d's ``llm-d-modelservice`` Helm chart per workload (decode pool, and
  prefill pool where disaggregated), with a KEDA ``ScaledObject`` per pool.
- ``dynamo``: an NVIDIA Dynamo ``DynamoGraphDeployment`` (nvidia.com/v1beta1, the shape of
  ai-dynamo 1.6.1's own templates) per workload: a frontend and a worker component (aggregated)
  or prefill and decode components (disaggregated), each opted into Dynamo's scaling adapter,
  with a KEDA ``ScaledObject`` per worker component.

Every pod asks for the replica's GPUs (``nvidia.com/gpu``, ``amd.com/gpu``) on nodes of the
plan's GPU type (``NODE_LABELS``), runs the command ``launch()`` writes for the plan
(planner/launch/scripts.py), with the plan's replicas and, on a spot offer, its spare replicas
(``_running``: spares are pods that run, ready for a preempted replica). Autoscaling: the engine's completed
requests per second per replica, against ``scale_at`` (default 0.8) of the replica's capacity
at SLO (``plan.load.capacity_requests_per_s_per_replica``, the rate at which the binding
latency target is just met), between 1 replica (or ``min_replicas``) and the plan's replicas
with their spares (or ``max_replicas``): the plan sizes the replicas for its demand, the autoscaler removes
them when traffic is lower. Data in, dicts out: no physics, no solve.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from planner.catalog.store import Catalog
from planner.errors import InputError
from planner.launch.scripts import PORT, launch
from planner.plan.result import Plan, PlanResult

TARGETS = ("kserve", "llm-d", "dynamo")

NODE_LABELS: dict[str, tuple[str, str, str]] = {
    # catalog GPU -> (extended resource, node label, value). NVIDIA: GPU Feature Discovery's
    # nvidia.com/gpu.product, the NVML device name with spaces as '-'; AMD: the AMD GPU
    # operator's node labeller, amd.com/gpu.product-name.
    "h100-sxm": ("nvidia.com/gpu", "nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3"),
    "h100-pcie": ("nvidia.com/gpu", "nvidia.com/gpu.product", "NVIDIA-H100-PCIe"),
    "h200": ("nvidia.com/gpu", "nvidia.com/gpu.product", "NVIDIA-H200"),
    "h20": ("nvidia.com/gpu", "nvidia.com/gpu.product", "NVIDIA-H20"),
    "b200": ("nvidia.com/gpu", "nvidia.com/gpu.product", "NVIDIA-B200"),
    "gb200": ("nvidia.com/gpu", "nvidia.com/gpu.product", "NVIDIA-GB200"),
    "a100-80gb": ("nvidia.com/gpu", "nvidia.com/gpu.product", "NVIDIA-A100-SXM4-80GB"),
    "a100-40gb": ("nvidia.com/gpu", "nvidia.com/gpu.product", "NVIDIA-A100-SXM4-40GB"),
    "l40s": ("nvidia.com/gpu", "nvidia.com/gpu.product", "NVIDIA-L40S"),
    "l40": ("nvidia.com/gpu", "nvidia.com/gpu.product", "NVIDIA-L40"),
    "l4": ("nvidia.com/gpu", "nvidia.com/gpu.product", "NVIDIA-L4"),
    "a10": ("nvidia.com/gpu", "nvidia.com/gpu.product", "NVIDIA-A10"),
    "a10g": ("nvidia.com/gpu", "nvidia.com/gpu.product", "NVIDIA-A10G"),
    "rtx-4090": ("nvidia.com/gpu", "nvidia.com/gpu.product", "NVIDIA-GeForce-RTX-4090"),
    "rtx-3090": ("nvidia.com/gpu", "nvidia.com/gpu.product", "NVIDIA-GeForce-RTX-3090"),
}
"""Where a GPU type is found in a cluster, for the GPUs whose label value is the device name
as NVML reports it; others get the vendor's resource and no node selector (``node_selector``
sets one)."""

IMAGES = {"vllm": "vllm/vllm-openai", "sglang": "lmsysorg/sglang", "trtllm": "nvcr.io/nvidia/tensorrt-llm/release"}
"""Each engine's published server image; the tag is the release its flags were read from (``image``)."""
DYNAMO_IMAGES = {"vllm": "nvcr.io/nvidia/ai-dynamo/vllm-runtime", "sglang": "nvcr.io/nvidia/ai-dynamo/sglang-runtime",
                 "trtllm": "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime"}
DYNAMO_VERSION = "1.6.1"
"""The Dynamo release whose DynamoGraphDeployment shape (v1beta1 components) the manifests follow."""
REQUEST_METRIC = {"vllm": "vllm:request_success_total", "sglang": "sglang:num_requests_total",
                  "trtllm": "trtllm_request_success_total", "dynamo": "dynamo_frontend_requests_total"}
"""The Prometheus counter of completed requests each server exports (its /metrics)."""
HF_SECRET = "hf-token-secret"


_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_INT32_MAX = 2**31 - 1
_URL = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~%/+\-]*)?")


@dataclass
class Options:
    engine: str = "vllm"
    namespace: str | None = None
    prometheus: str = "http://prometheus-operated.monitoring.svc:9090"
    scale_at: float = 0.8
    min_replicas: int = 1
    max_replicas: int | None = None
    node_selector: dict[str, str] | None = None

    def __post_init__(self) -> None:
        """Refuse what Kubernetes or PromQL would misread: the namespace is also written inside the
        KServe autoscaler's PromQL selector, so a quote in it would rewrite the query."""
        if self.namespace is not None and not _DNS_LABEL.fullmatch(self.namespace):
            raise InputError("not a Kubernetes namespace", path="--namespace", value=self.namespace,
                             accepted="a DNS-1123 label: lower-case letters, digits and '-', at most 63, "
                                      "starting and ending with a letter or digit")
        for key, value in (self.node_selector or {}).items():
            prefix, _, label = key.rpartition("/")
            if not (_LABEL_NAME.fullmatch(label) and (not prefix or _DNS_SUBDOMAIN.fullmatch(prefix))
                    and (value == "" or _LABEL_NAME.fullmatch(value))):
                raise InputError("not a Kubernetes node label", path="--node-selector", value=f"{key}={value}",
                                 accepted="KEY=VALUE, KEY an optional DNS prefix and '/' then a name, each name "
                                          "at most 63 letters, digits, '-', '_' or '.' starting and ending "
                                          "with a letter or digit; e.g. nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3")
        if self.max_replicas is not None and not 1 <= self.max_replicas <= _INT32_MAX:
            raise InputError("the autoscaling ceiling is a number of replicas", path="--max-replicas",
                             value=self.max_replicas,
                             accepted=f"an integer 1 <= n <= {_INT32_MAX} (a Kubernetes int32)")
        if not _URL.fullmatch(self.prometheus):
            raise InputError("not a Prometheus server URL", path="--prometheus", value=self.prometheus,
                             accepted="http:// or https:// followed by a host and optional port and path, "
                                      "without spaces, quotes or control characters")


@dataclass
class Manifest:
    name: str                    # file stem
    kind: str                    # InferenceService, LLMInferenceService, DynamoGraphDeployment, ScaledObject, values
    doc: dict[str, Any]
    notes: list[str] = field(default_factory=list)


_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"                          # DNS-1123 label
_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"                 # a label key's name, or a label value
_KEY = rf"({_LABEL}(\.{_LABEL})*/)?{_NAME}"                               # [DNS-1123 subdomain/]name


def _check(o: Options) -> None:
    """What the options put into a manifest is Kubernetes' syntax (and never breaks out of the
    PromQL query a namespace is quoted in), or a located error."""
    if o.namespace is not None and not re.fullmatch(_LABEL, o.namespace):
        raise InputError("not a Kubernetes namespace", path="--namespace", value=o.namespace,
                         accepted="a DNS-1123 label: at most 63 of a-z, 0-9 and '-', starting and ending alphanumeric")
    for key, value in (o.node_selector or {}).items():
        if not (re.fullmatch(_KEY, key) and len(key) <= 317) or not (value == "" or re.fullmatch(_NAME, value)):
            raise InputError("not a Kubernetes node label", path="--node-selector", value=f"{key}={value}",
                             accepted="KEY=VALUE: KEY [a DNS subdomain/]a name, VALUE empty or a name (a name: at most "
                             "63 of A-Z, a-z, 0-9, '-', '_', '.', starting and ending alphanumeric)")
    if not re.fullmatch(r"https?://[A-Za-z0-9._~:/?#@!$&()*+,;=%\[\]-]+", o.prometheus):
        raise InputError("not a Prometheus URL", path="--prometheus", value=o.prometheus,
                         accepted="http:// or https:// and a host, without spaces, quotes or braces")


def _dns(text: str) -> str:
    """A DNS-1035 label (lower case, digits, '-', starting with a letter, at most 63)."""
    s = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    if not s or not s[0].isalpha():
        s = "m-" + s
    return s[:63].rstrip("-")


def image(engine: str) -> str:
    """The engine's image at the release its flags were read from (planner/launch/flags.py):
    vLLM and SGLang tag releases ``vX.Y.Z``, TensorRT-LLM ``X.Y.Z``."""
    from planner.launch.flags import ENGINES

    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", ENGINES[engine].version)
    if m is None:
        raise InputError("no release number in the engine's flag table", path="--engine", value=engine)
    version = f"{m.group(1)}.{m.group(2)}.{m.group(3) or 0}"
    return f"{IMAGES[engine]}:{'' if engine == 'trtllm' else 'v'}{version}"


def _gpus(plan: Plan) -> int:
    return plan.gpus // max(1, plan.replicas)


def _running(plan: Plan) -> int:
    """Replicas a deployment runs: those that serve and a spot offer's spares (physical GPUs
    paid and up, so that a preempted replica is replaced at once)."""
    return plan.replicas + plan.spare_replicas


def _node(plan: Plan, o: Options, catalog: Catalog) -> tuple[str, dict[str, str], list[str]]:
    """(GPU resource, node selector, notes) for the plan's GPU type."""
    gid = plan.gpu.partition("@")[0]
    known = NODE_LABELS.get(gid)
    vendor = "nvidia"
    try:
        vendor = catalog.gpu(gid).vendor
    except InputError:
        pass
    resource = known[0] if known else {"amd": "amd.com/gpu", "intel": "habana.ai/gaudi"}.get(vendor, "nvidia.com/gpu")
    notes = ([f"{gid} is an AMD GPU: use a ROCm build of the engine's image"] if resource == "amd.com/gpu" else [])
    if o.node_selector:
        return resource, dict(o.node_selector), notes
    if known:
        return resource, {known[1]: known[2]}, notes
    return resource, {}, notes + [f"no node label is known for {gid}: pass --node-selector KEY=VALUE to place "
                                  "the pods on nodes of that GPU type"]


def _scaling(plan: Plan, o: Options) -> tuple[int, int, float, str]:
    """(min replicas, max replicas, target completed requests/s per replica, why)."""
    cap = float(plan.load.get("capacity_requests_per_s_per_replica") or 0.0)
    if not (cap > 0 and math.isfinite(cap)):
        raise InputError("the plan records no capacity at SLO to scale on", path="plans.load."
                         "capacity_requests_per_s_per_replica", value=cap, accepted="a rate > 0")
    hi = max(_running(plan), o.max_replicas or 0, o.min_replicas)
    lo = min(o.min_replicas, hi)
    target = cap * o.scale_at
    spares = (f", with {plan.spare_replicas} spare{'s' if plan.spare_replicas != 1 else ''} against preemption"
              if plan.spare_replicas else "")
    why = (f"scale out past {o.scale_at:g} x {cap:.4g} requests/s per replica, the replica's capacity at SLO "
           f"(binding: {plan.load.get('binding')}); {lo} to {hi} replicas (the plan's {plan.replicas} serve its "
           f"demand{spares})")
    return lo, hi, target, why


def _query(engine: str, selector: str) -> str:
    return f"sum(rate({REQUEST_METRIC[engine]}{{{selector}}}[2m]))"


def _value(x: float) -> str:
    """A Kubernetes quantity with three decimals (milli-units where needed)."""
    milli = int(math.ceil(x * 1000 - 1e-9))
    return f"{milli // 1000}" if milli % 1000 == 0 else f"{milli}m"


def _command(result: PlanResult, plan: Plan, engine: str, catalog: Catalog) -> tuple[list[str], list[str], list[str]]:
    """(command, args, notes) of the engine for this plan, from launch()."""
    ln = launch(result, plan, engine, catalog)
    if not ln.ok:
        raise InputError(f"no {engine} command for plan {plan.rank}: {ln.reason}", path="--engine", value=engine,
                         accepted="an engine that runs the plan (planner launch PLAN shows each engine's reason)")
    args = [_served(result, plan, Options(engine=engine), catalog)]
    for a in ln.args:
        args += [a.flag] if a.value is None else [a.flag, str(a.value)]
    program = {"vllm": ["vllm", "serve"], "sglang": ["python3", "-m", "sglang.launch_server", "--model-path"],
               "trtllm": ["trtllm-serve"]}[engine]
    notes = [n for n in ln.notes if "P/D router" not in n]     # the manifests' router (frontend, EPP) is that router
    if engine == "sglang" and all(a.flag != "--host" for a in ln.args):
        args += ["--host", "0.0.0.0"]
    if ln.yaml:
        notes.append("TensorRT-LLM's YAML (planner launch --out) must be mounted at the path its flag names")
    return program, args, notes


def _container(name: str, image: str, command: list[str], args: list[str], port: int, resource: str,
               gpus: int) -> dict[str, Any]:
    return {"name": name, "image": image, "command": command, "args": args,
            "ports": [{"containerPort": port, "name": "http", "protocol": "TCP"}],
            "env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": HF_SECRET, "key": "HF_TOKEN"}}}],
            "resources": {"limits": {resource: str(gpus)}, "requests": {resource: str(gpus)}},
            "readinessProbe": {"httpGet": {"path": "/health", "port": port}, "periodSeconds": 10}}


def _meta(name: str, o: Options, labels: dict[str, str] | None = None,
          annotations: dict[str, str] | None = None) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name}
    if o.namespace:
        m["namespace"] = o.namespace
    if labels:
        m["labels"] = labels
    if annotations:
        m["annotations"] = annotations
    return m


def _groups(plans: list[Plan]) -> dict[str, list[Plan]]:
    out: dict[str, list[Plan]] = {}
    for p in plans:
        out.setdefault(p.workload, []).append(p)
    return out


def manifests(result: PlanResult, plans: list[Plan], target: str, o: Options | None = None,
              catalog: Catalog | None = None) -> list[Manifest]:
    """The manifests of ``plans`` (deployed together: a fleet's deployments, or one plan) for
    ``target``."""
    if target not in TARGETS:
        raise InputError("unknown Kubernetes target", path="--k8s", value=target, accepted=", ".join(TARGETS))
    o = o or Options()
    catalog = catalog or Catalog.default()
    if not 0 < o.scale_at <= 1:
        raise InputError("the scaling threshold is a fraction of the capacity at SLO", path="--scale-at",
                         value=o.scale_at, accepted="0 < x <= 1")
    _check(o)
    out: list[Manifest] = []
    for workload, group in _groups(plans).items():
        roles = {p.role for p in group}
        if ("prefill" in roles) != ("decode" in roles):     # a hand-edited file: half a pair serves nothing
            have, lack = ("prefill", "decode") if "prefill" in roles else ("decode", "prefill")
            raise InputError(f"workload {workload!r} has a {have} pool without its {lack} pool", path="plans",
                             value=workload, accepted="a disaggregated deployment's prefill and decode pools, "
                             "of the same workload and rank")
        if target == "kserve":
            out += [_isvc(result, p, o, catalog) for p in group if p.role == "aggregated"]
            if o.engine == "vllm":
                out += _llmisvc(result, workload, group, o, catalog)
        elif target == "llm-d":
            out += _llmd(result, workload, group, o, catalog)
        else:
            out += _dynamo(result, workload, group, o, catalog)
    return out


def _name(result: PlanResult, p: Plan, suffix: str = "") -> str:
    """The workload (``planN`` for a plan's one workload) and GPU type, and ``-K`` for the K-th
    deployment of the same workload, GPU type and role in the rank (a workload split over
    configurations)."""
    base = p.workload if p.workload != "main" else f"plan{p.rank}"
    same = [id(q) for q in result.plans if (q.rank, q.workload, q.gpu, q.role) == (p.rank, p.workload, p.gpu, p.role)]
    k = f"-{same.index(id(p)) + 1}" if len(same) > 1 and id(p) in same else ""
    return _dns(f"{base}-{p.gpu.partition('@')[0]}{k}{suffix}")


def _served(result: PlanResult, p: Plan, o: Options, catalog: Catalog) -> str:
    """The checkpoint the plan's format is served from (launch()), or a located error where
    none is known: a manifest never serves another format."""
    ln = launch(result, p, o.engine, catalog)
    if ln.ok and not ln.model:
        raise InputError(f"no checkpoint of plan {result.label(p)}'s format is known: {ln.placeholder}",
                         path="--k8s", value=p.quantization,
                         accepted="a plan in a format with a published checkpoint (planner launch PLAN writes a "
                                  "script whose MODEL you set)")
    return ln.model


# --- KServe -----------------------------------------------------------------------------

def _isvc(result: PlanResult, p: Plan, o: Options, catalog: Catalog) -> Manifest:
    resource, selector, notes = _node(p, o, catalog)
    command, args, more = _command(result, p, o.engine, catalog)
    lo, hi, target, why = _scaling(p, o)
    name = _name(result, p)
    port = PORT[o.engine]
    predictor: dict[str, Any] = {
        "minReplicas": lo, "maxReplicas": hi,
        "containers": [_container("kserve-container", image(o.engine), command, args, port,
                                  resource, _gpus(p))],
        "autoScaling": {"metrics": [{"type": "External", "external": {
            "metric": {"backend": "prometheus", "serverAddress": o.prometheus,
                       "query": _query(o.engine, f'namespace="{o.namespace or "default"}",pod=~"{name}-predictor-.*"')},
            "target": {"type": "AverageValue", "averageValue": _value(target)}}}]}}
    if selector:
        predictor["nodeSelector"] = selector
    if p.nodes > p.replicas:
        notes.append(f"a replica spans {p.nodes // p.replicas} nodes: KServe runs multi-node replicas with its "
                     "Hugging Face runtime's workerSpec (Ray), not a plain container")
    doc = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
           "metadata": _meta(name, o, annotations={"serving.kserve.io/deploymentMode": "RawDeployment",
                                                   "serving.kserve.io/autoscalerClass": "keda"}),
           "spec": {"predictor": predictor}}
    return Manifest(f"{name}-isvc", "InferenceService", doc, notes + more + [
        why])


def _keda_trigger(engine: str, selector: str, target: float, o: Options) -> dict[str, Any]:
    return {"type": "prometheus", "metadata": {"serverAddress": o.prometheus, "query": _query(engine, selector),
                                               "threshold": f"{target:.4g}", "metricType": "AverageValue"}}


def _parallelism(p: Plan) -> dict[str, Any]:
    dp = p.ep // p.tp if p.ep > p.tp else 1
    par: dict[str, Any] = {"tensor": p.tp}
    if p.pp > 1:
        par["pipeline"] = p.pp
    if dp > 1:
        par |= {"data": dp, "dataLocal": dp}
    if p.ep > 1:
        par["expert"] = True
    return par


def _llmisvc(result: PlanResult, workload: str, group: list[Plan], o: Options, catalog: Catalog) -> list[Manifest]:
    out = []
    agg = [p for p in group if p.role == "aggregated"]
    pre = [p for p in group if p.role == "prefill"]
    dec = [p for p in group if p.role == "decode"]
    pairs: list[tuple[Plan, Plan | None]] = [(p, None) for p in agg] + ([(dec[0], pre[0])] if pre and dec else [])
    for main, prefill in pairs:
        name = _name(result, main, "-llm")
        model = _served(result, main, Options(engine="vllm"), catalog)
        notes: list[str] = []
        spec: dict[str, Any] = {"model": {"uri": f"hf://{model}", "name": model}, "router": {
            "route": {}, "gateway": {}, "scheduler": {}}}
        for part, p in (("main", main), ("prefill", prefill)):
            if p is None:
                continue
            resource, selector, n1 = _node(p, o, catalog)
            _, args, n2 = _command(result, p, "vllm", catalog)
            lo, hi, target, why = _scaling(p, o)
            container = _container("main", image("vllm"), ["vllm", "serve"], args,
                                   PORT["vllm"], resource, _gpus(p))
            template: dict[str, Any] = {"containers": [container]}
            if selector:
                template["nodeSelector"] = selector
            block = {"parallelism": _parallelism(p), "template": template,
                     "scaling": {"minReplicas": lo, "maxReplicas": hi, "keda": {"triggers": [_keda_trigger(
                         "vllm", f'pod=~"{name}-{"prefill" if part == "prefill" else "kserve"}-.*"', target, o)]}}}
            notes += n1 + n2 + [f"{part if part == 'prefill' else 'decode' if prefill else 'serving'} pool: {why}"]
            if part == "main":
                spec |= block
            else:
                spec["prefill"] = block
        out.append(Manifest(f"{name}-llmisvc", "LLMInferenceService",
                            {"apiVersion": "serving.kserve.io/v1alpha2", "kind": "LLMInferenceService",
                             "metadata": _meta(name, o), "spec": spec}, notes))
    return out


# --- llm-d ------------------------------------------------------------------------------

def _scaled_object(name: str, target_ref: dict[str, Any], engine: str, selector: str, p: Plan,
                   o: Options) -> Manifest:
    lo, hi, target, why = _scaling(p, o)
    doc = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": _meta(name, o),
           "spec": {"scaleTargetRef": target_ref, "minReplicaCount": lo, "maxReplicaCount": hi,
                    "triggers": [_keda_trigger(engine, selector, target, o)]}}
    return Manifest(name, "ScaledObject", doc, [why])


def _llmd(result: PlanResult, workload: str, group: list[Plan], o: Options, catalog: Catalog) -> list[Manifest]:
    out = []
    pools = {p.role: p for p in group}
    for main in [p for p in group if p.role in ("aggregated", "decode")]:
        release = _name(result, main)
        model = _served(result, main, Options(engine="vllm"), catalog)
        values: dict[str, Any] = {"multinode": main.nodes > main.replicas,
                                  "modelArtifacts": {"uri": f"hf://{model}", "name": model,
                                                     "authSecretName": HF_SECRET},
                                  "routing": {"servicePort": PORT["vllm"]}}
        notes: list[str] = []
        for role, key in (("main", "decode"), ("prefill", "prefill")):
            p = main if role == "main" else pools.get("prefill") if main.role == "decode" else None
            if p is None:
                values[key] = {"create": False}
                continue
            resource, selector, n1 = _node(p, o, catalog)
            _, args, n2 = _command(result, p, "vllm", catalog)
            lo, hi, _, _ = _scaling(p, o)
            notes += n1 + n2
            pool: dict[str, Any] = {
                "create": True, "replicas": _running(p), "parallelism": _parallelism(p),
                "containers": [{**_container("vllm", image("vllm"), ["vllm", "serve"], args,
                                             PORT["vllm"], resource, _gpus(p)), "modelCommand": "custom"}]}
            if selector:
                key_, value = next(iter(selector.items()))
                pool["acceleratorTypes"] = {"labelKey": key_, "labelValues": [value]}
            values[key] = pool
            out.append(_scaled_object(f"{release}-{key}-scaler", {"apiVersion": "apps/v1", "kind": "Deployment",
                                                                  "name": f"{release}-{key}"},
                                      "vllm", f'pod=~"{release}-{key}-.*"', p, o))
        out.append(Manifest(f"{release}-values", "values", values, notes + [
            f"helm install {release} llm-d-modelservice/llm-d-modelservice -f {release}-values.yaml"]))
    return out


# --- NVIDIA Dynamo ----------------------------------------------------------------------

def _dynamo(result: PlanResult, workload: str, group: list[Plan], o: Options, catalog: Catalog) -> list[Manifest]:
    out = []
    engine = o.engine
    module = {"vllm": "dynamo.vllm", "sglang": "dynamo.sglang", "trtllm": "dynamo.trtllm"}[engine]
    image = f"{DYNAMO_IMAGES[engine]}:{DYNAMO_VERSION}"
    pools = {p.role: p for p in group}
    units: list[list[Plan]] = [[p] for p in group if p.role == "aggregated"]
    if "prefill" in pools and "decode" in pools:
        units.append([pools["prefill"], pools["decode"]])
    for unit in units:
        name = _name(result, unit[-1], "-dgd")
        notes: list[str] = []
        components: list[dict[str, Any]] = [{
            "name": "frontend", "type": "frontend", "replicas": 1,
            "podTemplate": {"spec": {"containers": [{"name": "main", "image": image, "command": ["python3"],
                                                     "args": ["-m", "dynamo.frontend"],
                                                     "envFrom": [{"secretRef": {"name": HF_SECRET}}]}]}}}]
        for p in unit:
            resource, selector, n1 = _node(p, o, catalog)
            cmd_engine = "vllm" if engine == "vllm" else engine
            _, args, n2 = _command(result, p, cmd_engine, catalog) if p.role == "aggregated" or engine != "trtllm" \
                else _command(result, _as_aggregated(p), cmd_engine, catalog)
            notes += n1 + n2
            flags = args[1:]
            if p.role != "aggregated":
                flags = _strip(flags, "--kv-transfer-config" if engine == "vllm" else "--disaggregation-mode")
                flags += ["--disaggregation-mode", p.role]
                if engine == "vllm" and p.role == "prefill":
                    flags += ["--kv-transfer-config", '{"kv_connector":"NixlConnector","kv_role":"kv_producer"}']
            model_flag = {"vllm": "--model", "sglang": "--model-path", "trtllm": "--model-path"}[engine]
            spec: dict[str, Any] = {"containers": [{
                "name": "main", "image": image, "command": ["python3", "-m", module],
                "args": [model_flag, args[0], *flags], "envFrom": [{"secretRef": {"name": HF_SECRET}}],
                "resources": {"limits": {resource: str(_gpus(p))}}}]}
            if selector:
                spec["nodeSelector"] = selector
            comp: dict[str, Any] = {"name": p.role if p.role != "aggregated" else "worker",
                                    "type": p.role if p.role != "aggregated" else "worker",
                                    "replicas": _running(p), "podTemplate": {"spec": spec},
                                    "scalingAdapter": {"enabled": True}}
            if p.nodes > p.replicas:
                comp["multinode"] = {"nodeCount": p.nodes // p.replicas}
            components.append(comp)
            out.append(_scaled_object(f"{name}-{comp['name']}-scaler", {
                "apiVersion": "nvidia.com/v1alpha1", "kind": "DynamoGraphDeploymentScalingAdapter",
                "name": f"{name}-{comp['name']}"}, "dynamo", f'dynamo_namespace=~".*{name}.*"', p, o))
        out.append(Manifest(name, "DynamoGraphDeployment",
                            {"apiVersion": "nvidia.com/v1beta1", "kind": "DynamoGraphDeployment",
                             "metadata": _meta(name, o), "spec": {"components": components}}, notes))
    return out


def _as_aggregated(p: Plan) -> Plan:
    from dataclasses import replace
    return replace(p, role="aggregated")


def _strip(args: list[str], flag: str) -> list[str]:
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a == flag:
            skip = True
            continue
        out.append(a)
    return out
