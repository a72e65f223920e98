"""What the planner proposes is what engines run (issue 11): the candidate set equals the
support matrix, quality is opt-in, an inventory means ownership, names as people type them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from planner.candidates.table import build_candidates
from planner.catalog.store import Catalog
from planner.catalog.support import support
from planner.cli.root import app
from planner.errors import InputError
from planner.physics.quant import SCHEMES
from planner.physics.space import KV_NAMES, SCHEME_NAMES
from planner.plan.solve import plan
from planner.resolve.problem import resolve
from planner.schemas.plan import PlanSpec

ROOT = Path(__file__).resolve().parents[1]
CAT = Catalog.default()
RUNNER = CliRunner()


def _spec(**over) -> PlanSpec:
    d = {"model": "llama-3.1-8b", "workload": {"input_tokens": 512, "output_tokens": 128},
         "search": {"tp": [1], "pp": [1], "max_batch": 4, "batch_levels": [1]}}
    for k, v in over.items():
        d[k] = d[k] | v if isinstance(v, dict) and k in d else v
    return PlanSpec.model_validate(d)


def test_the_candidate_set_equals_the_support_matrix():
    """Every (GPU, scheme, KV dtype) the catalog offers: a configuration is searched iff the
    engine runs it on that GPU (as the scheme it runs as, for a degraded mode)."""
    priced = [g for g, x in CAT.gpus.items() if x.peak_dense_flops_per_s]
    schemes = [q for q in SCHEME_NAMES if q in SCHEMES]
    spec = _spec(search={"gpus": priced, "quantizations": schemes, "kv_dtypes": list(KV_NAMES)},
                 objective="tpot")
    p = resolve(spec)
    c = build_candidates(p)
    got = {(c.gpu_ids[int(g)], SCHEME_NAMES[int(q)], KV_NAMES[int(k)])
           for g, q, k in zip(c.configs.gpu, c.configs.scheme, c.configs.kv)}
    want = set()
    for gid in p.table.ids:
        for q in schemes:
            for kv in KV_NAMES:
                s = support(CAT.gpus[gid], q, kv, "vllm")
                if s.ok:
                    want.add((gid, s.runs_as, kv))
    # the physics may still rule a supported combination out (a math format the GPU lacks)
    assert got <= want
    missing = want - got
    for gid, q, kv in missing:
        fmt = SCHEMES[q].math_format
        fb = SCHEMES[q].fallback_format
        peaks = CAT.gpus[gid].peak_dense_flops_per_s
        assert fmt not in peaks and (fb is None or fb not in peaks), (gid, q, kv)


@pytest.mark.parametrize("path", sorted(p for p in (ROOT / "instances").glob("*.yaml")
                                        if not p.name.startswith(("estimate_", "fleet_", "schedule_"))), ids=lambda p: p.stem)
def test_no_shipped_plan_uses_an_unsupported_combination(path):
    r = RUNNER.invoke(app, ["plan", str(path), "--json", "--no-simulate", "--top", "3"])
    assert r.exit_code in (0, 1), r.output
    for p in json.loads(r.stdout)["plans"]:
        # a searched entry (gpu@rented, gpu@spot: docs/workloads.md section 9) runs its catalog GPU
        assert support(CAT.gpus[p["gpu"].partition("@")[0]], p["quantization"], p["kv_dtype"], "vllm").ok, p


def test_four_bit_weights_are_opt_in_and_labelled():
    default = resolve(_spec())
    assert all(SCHEMES[q].bits_per_weight >= 8 for q in default.spec.search.quantizations)
    opted = resolve(_spec(search={"min_weight_bits": 4}))
    assert any(SCHEMES[q].bits_per_weight < 8 for q in opted.spec.search.quantizations)
    r = plan(_spec(search={"gpus": ["b200"], "quantizations": ["nvfp4"]}), backend="exhaustive")
    assert r.plans and r.plans[0].quantization == "fp4" and r.plans[0].quality.startswith("LOSSY")
    with pytest.raises(InputError):
        resolve(_spec(search={"quantizations": ["int4"], "min_weight_bits": 8}))


RUNNING = {"tco": {"usd_per_kwh": 0.12, "pue": 1.3}}     # what owned GPUs cost to run


def test_an_inventory_means_ownership():
    spec = _spec(search={"gpus": ["h100-sxm", "l40s", "mi325x"]}, limits={"inventory": {"h100-sxm": 16, "l40s": 32}},
                 prices=RUNNING)
    r = plan(spec, backend="exhaustive")
    assert "mi325x" in r.excluded_gpus and "rent_outside_inventory" in r.excluded_gpus["mi325x"]
    assert all(p.gpu in ("h100-sxm", "l40s") for p in r.plans)
    rented = _spec(search={"gpus": ["h100-sxm", "l40s", "mi325x"]},
                   limits={"inventory": {"h100-sxm": 16, "l40s": 32}, "rent_outside_inventory": True}, prices=RUNNING)
    assert "mi325x" not in plan(rented, backend="exhaustive").excluded_gpus


@pytest.mark.parametrize("typed,gid", [("H100", "h100-sxm"), ("MI300X", "mi300x"), ("A100-80GB", "a100-80gb"),
                                       ("B200", "b200"), ("h100_sxm", "h100-sxm")])
def test_gpu_names_as_people_type_them_in_an_instance(typed, gid):
    p = resolve(_spec(search={"gpus": [typed]}, limits={"inventory": {typed: 8}},
                      prices={"owned_usd_per_gpu_hour": {typed: 1.0}}))
    assert p.table.ids == (gid,) and p.spec.limits.inventory == {gid: 8} and p.prices.tolist() == [1.0]


def test_a_gpu_twice_under_two_spellings_is_refused():
    with pytest.raises(InputError, match="twice"):
        resolve(_spec(search={"gpus": ["H100", "h100-sxm"]}))


def test_every_plan_carries_its_price_kind_and_date():
    r = plan(_spec(search={"gpus": ["h100-sxm"]}), backend="exhaustive")
    p = r.plans[0]
    assert p.price_kind == CAT.gpus["h100-sxm"].price_kind and p.price_date == CAT.gpus["h100-sxm"].price_date
    assert r.inputs["price_kinds"]["h100-sxm"] == p.price_kind
    assert np.isfinite(p.price_usd_per_gpu_hour)


def test_class6_throughput_with_one_owned_gpu_type_stays_within_what_is_owned():
    """Issue 12 class 6: `objective: throughput` with an inventory of one type returned 200,000
    L40S from an undocumented replica cap. An inventory is ownership: only owned GPUs are used."""
    spec = _spec(search={"gpus": ["l40s", "h100-sxm"]}, limits={"inventory": {"l40s": 8}}, objective="throughput")
    r = plan(spec, backend="exhaustive")
    assert r.plans and all(p.gpu == "l40s" for p in r.plans) and sum(p.gpus for p in r.plans[:1]) <= 8
    with pytest.raises(Exception, match="every GPU type"):
        _spec(search={"gpus": ["l40s", "h100-sxm"]}, objective="throughput",
              limits={"inventory": {"l40s": 8}, "rent_outside_inventory": True})


def test_class6_a_demand_beyond_the_replica_cap_names_the_cap():
    spec = _spec(search={"gpus": ["l4"]}, workload={"demand": {"output_tokens_per_s": 1e9}}, objective="cost_per_hour")
    r = plan(spec, backend="exhaustive")
    assert r.status == "infeasible"
    from planner.report.wording import diagnosis
    text = " ".join(diagnosis(d) for d in r.diagnosis)
    assert "planner's cap of 100,000 replicas" in text
