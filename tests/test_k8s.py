"""Kubernetes manifests (planner/launch/k8s.py, `planner launch --k8s`) for a plan, a fleet and a
disaggregated fleet, validated with jsonschema against the published CRD schemas (KServe's
InferenceService and LLMInferenceService, ../shared/reference/k8s) and, for Dynamo, against
the shape of Dynamo 1.6.1's typed DynamoGraphDeployment model with the core PodSpec schema
(tests/data/k8s/README.md); the figures in them checked against the plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from reference import REFERENCE
from typer.testing import CliRunner

from planner.cli.root import app
from planner.errors import InputError
from planner.launch.k8s import NODE_LABELS, Options, manifests
from planner.plan.result import PlanResult

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "k8s"
CRDS = REFERENCE / "k8s"
RUNNER = CliRunner()
CRD_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader where PyYAML has it (as planner/yamlio.py reads instances): the two
CRDs (4.7 MB) took 6.7 CPU s in the pure-Python SafeLoader and 2.6 s in libyaml (load 6 on
2 cores), and both loaders read them to equal documents."""


def _crd(name: str, version: str) -> dict:
    path = CRDS / f"kserve-serving.kserve.io_{name}.yaml"
    if not path.exists():
        pytest.skip(f"{path} is not here (../shared/reference/k8s)")
    doc = yaml.load(path.read_text(), Loader=CRD_LOADER)
    return next(v for v in doc["spec"]["versions"] if v["name"] == version)["schema"]["openAPIV3Schema"]


@pytest.fixture(scope="module")
def isvc_schema() -> dict:
    return _crd("inferenceservices", "v1beta1")


@pytest.fixture(scope="module")
def llmisvc_schema() -> dict:
    return _crd("llminferenceservices", "v1alpha2")


def _pod_spec(llmisvc: dict) -> dict:
    """The core v1 PodSpec schema, as LLMInferenceService embeds it (spec.template)."""
    return llmisvc["properties"]["spec"]["properties"]["template"]


def _container(llmisvc: dict) -> dict:
    return _pod_spec(llmisvc)["properties"]["containers"]["items"]


def _keda_trigger(llmisvc: dict) -> dict:
    return llmisvc["properties"]["spec"]["properties"]["scaling"]["properties"]["keda"]["properties"]["triggers"]["items"]


def dynamo_v1beta1_schema(pod_spec: dict) -> dict:
    """Dynamo 1.6.1's DynamoGraphDeployment v1beta1 as its own typed model states it
    (dynamo/profiler/utils/config.py: Config, Spec, Component with ``type`` aliased,
    PodTemplate, MultinodeConfig; extra keys allowed there, as here), the pod spec the core
    PodSpec schema."""
    component = {"type": "object", "required": ["name", "type"], "properties": {
        "name": {"type": "string"}, "type": {"type": "string", "enum": ["frontend", "worker", "prefill", "decode",
                                                                        "planner"]},
        "replicas": {"type": "integer", "minimum": 0},
        "podTemplate": {"type": "object", "properties": {"spec": pod_spec}},
        "multinode": {"type": "object", "required": ["nodeCount"], "properties": {"nodeCount": {"type": "integer"}}},
        "scalingAdapter": {"type": "object", "properties": {"enabled": {"type": "boolean"}}},
        "runtimeVersionOverride": {"type": "string"}}}
    return {"type": "object", "required": ["apiVersion", "kind", "metadata", "spec"], "properties": {
        "apiVersion": {"const": "nvidia.com/v1beta1"}, "kind": {"const": "DynamoGraphDeployment"},
        "metadata": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"},
                                                                            "namespace": {"type": "string"}}},
        "spec": {"type": "object", "required": ["components"],
                 "properties": {"components": {"type": "array", "items": component, "minItems": 1}}}}}


def scaled_object_schema(trigger: dict) -> dict:
    """KEDA's ScaledObject as the manifests use it: scaleTargetRef, replica bounds, triggers of
    KEDA's trigger schema (as KServe's CRD embeds it)."""
    return {"type": "object", "required": ["apiVersion", "kind", "metadata", "spec"], "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"}, "kind": {"const": "ScaledObject"},
        "spec": {"type": "object", "required": ["scaleTargetRef", "triggers"], "additionalProperties": False,
                 "properties": {"scaleTargetRef": {"type": "object", "required": ["name"]},
                                "minReplicaCount": {"type": "integer", "minimum": 0},
                                "maxReplicaCount": {"type": "integer", "minimum": 1},
                                "triggers": {"type": "array", "items": trigger, "minItems": 1}}}}}


def llmd_values_schema(container: dict) -> dict:
    """The llm-d-modelservice chart's values this planner writes (no values schema is
    published in a package reachable here): the keys named, each pool's containers of the core
    Container schema."""
    pool = {"type": "object", "required": ["create"], "properties": {
        "create": {"type": "boolean"}, "replicas": {"type": "integer", "minimum": 0},
        "parallelism": {"type": "object", "additionalProperties": {"type": ["integer", "boolean"]}},
        "containers": {"type": "array", "items": {"allOf": [
            {"type": "object", "properties": {"modelCommand": {"enum": ["vllmServe", "imageDefault", "custom"]}}},
            {"type": "object", "properties": {k: v for k, v in container["properties"].items()}}]}},
        "acceleratorTypes": {"type": "object", "required": ["labelKey", "labelValues"]}}}
    return {"type": "object", "required": ["modelArtifacts", "decode", "prefill"], "properties": {
        "multinode": {"type": "boolean"},
        "modelArtifacts": {"type": "object", "required": ["uri"]}, "routing": {"type": "object"},
        "decode": pool, "prefill": pool}}


def _validator(schema: dict):
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return cls(schema)


def _errors(schema: dict, doc: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in _validator(schema).iter_errors(doc)]


def _solve(kind: str, instance: str, out: Path) -> PlanResult:
    """A plan or fleet as a user makes it: the command, its --output file read back."""
    from planner.cli.common import read_result
    args = [kind, str(ROOT / "instances" / instance), "--output", str(out)]
    args += ["--no-marginal", "--no-baselines"] if kind == "fleet" else ["--top", "2"]
    res = RUNNER.invoke(app, args)
    assert res.exit_code == 0, res.output
    return read_result(out)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, PlanResult]:
    d = tmp_path_factory.mktemp("k8s")
    return {"plan": _solve("plan", "latency_llama8b.yaml", d / "plan.json"),
            "fleet": _solve("fleet", "fleet_three_models.yaml", d / "fleet.json"),
            "disagg": _solve("fleet", "fleet_disagg_wins.yaml", d / "disagg.json")}


def _all(r: PlanResult, target: str, engine: str = "vllm"):
    fleet = any(p.workload != "main" or p.role != "aggregated" for p in r.plans)
    plans = r.plans if fleet else r.plans[:1]
    return manifests(r, plans, target, Options(engine=engine))


def test_the_disaggregated_fleet_is_disaggregated(results):
    assert {p.role for p in results["disagg"].plans} == {"prefill", "decode"}
    assert len({p.workload for p in results["fleet"].plans}) >= 2


@pytest.mark.parametrize("case", ["plan", "fleet", "disagg"])
def test_kserve_manifests_validate_against_the_crds(results, case, isvc_schema, llmisvc_schema):
    docs = _all(results[case], "kserve")
    kinds = {m.kind for m in docs}
    assert "LLMInferenceService" in kinds
    assert ("InferenceService" in kinds) == (case != "disagg")
    for m in docs:
        schema = isvc_schema if m.kind == "InferenceService" else llmisvc_schema
        assert not _errors(schema, m.doc), (m.name, _errors(schema, m.doc))
        if m.kind == "LLMInferenceService":       # the CRD's CEL rule, which jsonschema does not run
            assert not ("replicas" in m.doc["spec"] and "scaling" in m.doc["spec"])
    bad = json.loads(json.dumps(docs[0].doc))
    bad["spec"]["parallelism" if docs[0].kind == "LLMInferenceService" else "predictor"] = {"tensor": "two"} \
        if docs[0].kind == "LLMInferenceService" else {"minReplicas": "one"}
    assert _errors(isvc_schema if docs[0].kind == "InferenceService" else llmisvc_schema, bad)   # it can fail
    if case == "disagg":
        llm = next(m for m in docs if m.kind == "LLMInferenceService").doc["spec"]
        pre = next(p for p in results[case].plans if p.role == "prefill")
        assert llm["prefill"]["parallelism"]["tensor"] == pre.tp
        assert llm["prefill"]["scaling"]["maxReplicas"] == pre.replicas


def test_dynamos_own_templates_validate_against_the_dynamo_schema(llmisvc_schema):
    schema = dynamo_v1beta1_schema(_pod_spec(llmisvc_schema))
    files = sorted((DATA / "dynamo-1.6.1").glob("*.yaml"))
    assert len(files) == 6
    for f in files:
        assert not _errors(schema, yaml.safe_load(f.read_text())), f.name
    bad = yaml.safe_load(files[0].read_text())
    bad["spec"]["components"][1]["podTemplate"]["spec"]["containers"][0]["resources"] = {"limits": ["1"]}
    assert _errors(schema, bad)                  # the schema can fail


@pytest.mark.parametrize("case", ["plan", "fleet", "disagg"])
@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_dynamo_manifests_validate(results, case, engine, llmisvc_schema):
    r = results[case]
    try:
        docs = _all(r, "dynamo", engine)
    except InputError as exc:           # an engine that does not run a plan says why
        assert "no sglang command" in exc.message
        return
    dgd = dynamo_v1beta1_schema(_pod_spec(llmisvc_schema))
    so = scaled_object_schema(_keda_trigger(llmisvc_schema))
    for m in docs:
        assert not _errors(dgd if m.kind == "DynamoGraphDeployment" else so, m.doc), m.name
    graphs = [m.doc for m in docs if m.kind == "DynamoGraphDeployment"]
    types = [c["type"] for g in graphs for c in g["spec"]["components"]]
    if case == "disagg":
        assert {"prefill", "decode", "frontend"} <= set(types)
        dec = next(p for p in r.plans if p.role == "decode")
        comp = next(c for g in graphs for c in g["spec"]["components"] if c["type"] == "decode")
        assert comp["replicas"] == dec.replicas
        args = comp["podTemplate"]["spec"]["containers"][0]["args"]
        assert args[args.index("--disaggregation-mode") + 1] == "decode"
        assert comp["podTemplate"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == \
            str(dec.gpus // dec.replicas)
    else:
        assert "worker" in types


@pytest.mark.parametrize("case", ["plan", "fleet", "disagg"])
def test_llmd_values_and_scalers_validate(results, case, llmisvc_schema):
    docs = _all(results[case], "llm-d")
    values = llmd_values_schema(_container(llmisvc_schema))
    so = scaled_object_schema(_keda_trigger(llmisvc_schema))
    for m in docs:
        assert not _errors(values if m.kind == "values" else so, m.doc), m.name
    if case == "disagg":
        v = next(m.doc for m in docs if m.kind == "values")
        assert v["prefill"]["create"] and v["decode"]["create"]


def test_gpu_resources_node_selection_and_autoscaling_follow_the_plan(results):
    r = results["disagg"]
    docs = manifests(r, r.plans, "dynamo", Options(scale_at=0.5, max_replicas=20))
    for p in r.plans:
        so = next(m.doc for m in docs if m.kind == "ScaledObject" and m.name.endswith(f"-{p.role}-scaler"))
        threshold = float(so["spec"]["triggers"][0]["metadata"]["threshold"])
        assert threshold == pytest.approx(0.5 * p.load["capacity_requests_per_s_per_replica"], rel=1e-3)
        assert so["spec"]["maxReplicaCount"] == 20 and so["spec"]["minReplicaCount"] == 1
    comp = next(c for m in docs if m.kind == "DynamoGraphDeployment" for c in m.doc["spec"]["components"]
                if c["type"] == "prefill")
    resource, key, value = NODE_LABELS[r.plans[0].gpu]
    assert comp["podTemplate"]["spec"]["nodeSelector"] == {key: value}


def test_cli_writes_manifests(results, tmp_path):
    path = tmp_path / "fleet.json"
    r = results["disagg"]
    path.write_text(json.dumps(r.to_dict()))
    res = RUNNER.invoke(app, ["launch", str(path), "--k8s", "dynamo", "--out", str(tmp_path / "k8s"),
                              "--node-selector", "pool=gpu"])
    assert res.exit_code == 0, res.output
    files = sorted(p.name for p in (tmp_path / "k8s").iterdir())
    assert any(f.endswith("-dgd.yaml") for f in files) and sum("scaler" in f for f in files) == 2
    text = (tmp_path / "k8s" / next(f for f in files if f.endswith("-dgd.yaml"))).read_text()
    assert yaml.safe_load(text)["spec"]["components"][1]["podTemplate"]["spec"]["nodeSelector"] == {"pool": "gpu"}
    res = RUNNER.invoke(app, ["launch", str(path), "--k8s", "kserve", "--node-selector", "novalue"])
    assert res.exit_code == 2


def test_a_spot_deployments_spares_run_as_replicas():
    """A spot plan with one spare (issue 25): the spare is a pod that runs, so the manifests'
    replicas are the plan's serving replicas plus its spares, and the autoscaler's ceiling too."""
    from planner.candidates.table import build_candidates
    from planner.plan.solve import solve
    from planner.resolve.problem import resolve
    from planner.schemas.plan import PlanSpec

    spec = PlanSpec.model_validate({
        "model": "llama-3.1-8b", "workload": {"input_tokens": 512, "output_tokens": 128,
                                              "demand": {"requests_per_s": 80}},
        "slo": {"tpot_ms": 40}, "objective": "cost_per_hour",
        "search": {"gpus": ["h100-sxm"], "quantizations": ["w8a8-fp8"], "kv_dtypes": ["fp8"], "tp": [1],
                   "pp": [1], "batch_levels": [64]},
        "prices": {"offers": {"h100-sxm": [{"kind": "spot", "usd_per_gpu_hour": 1.2,
                                            "preemption": {"spare_replicas": 1}}]}}})
    p = resolve(spec)
    r = solve(p, build_candidates(p), backend="highs", top_k=1)
    plan = r.plans[0]
    assert (plan.replicas, plan.spare_replicas) == (2, 1)
    isvc = next(m.doc for m in manifests(r, r.plans, "kserve") if m.kind == "InferenceService")
    assert isvc["spec"]["predictor"]["maxReplicas"] == 3
    dgd = next(m.doc for m in manifests(r, r.plans, "dynamo") if m.kind == "DynamoGraphDeployment")
    assert [c["replicas"] for c in dgd["spec"]["components"] if c["type"] == "worker"] == [3]
    values = next(m.doc for m in manifests(r, r.plans, "llm-d") if m.kind == "values")
    assert [v["replicas"] for v in values.values() if isinstance(v, dict) and v.get("create")] == [3]
