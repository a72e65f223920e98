"""Relaxations re-solved and checked against the exhaustive oracle (issue 21 item 5, issue 23
item 3): for every limit family that can bind (latency targets, budget, each owned GPU
type's count, search.max_gpus, search.max_nodes, limits.power_cap_w, quantizations), the
value a relaxation names gives the oracle a plan and one step less does not; a relaxation
that says no value works is checked with the limit lifted. The oracle enumerates the
physics with its own copy of every limit (planner/backends/exhaustive.py); this file keeps
its own reading of each limit's step and lifted value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from planner.plan.solve import plan
from planner.schemas.plan import PlanSpec
from planner.whatif.relax import apply_patch, relaxations

RUNNING = {"usd_per_kwh": 0.12, "pue": 1.3, "hosting_usd_per_node_month": 2000}
SEARCH = {"gpus": ["h100-sxm", "l40s"], "quantizations": ["w8a8-fp8"], "kv_dtypes": ["fp8"], "tp": [1, 2],
          "pp": [1], "batch_levels": [32, 128]}


def _instance(**over: Any) -> dict:
    d = {"model": "llama-3.1-8b", "workload": {"input_tokens": 512, "output_tokens": 128,
                                               "demand": {"output_tokens_per_s": 20000}},
         "slo": {"tpot_ms": 40}, "search": SEARCH, "objective": "cost_per_hour"}
    for k, v in over.items():
        d[k] = {**d[k], **v} if isinstance(v, dict) and isinstance(d.get(k), dict) else v
    return d


CASES = {
    # issue 23: two owned types, one GPU each; relaxing either count re-solves to its smallest count
    "inventory": _instance(limits={"inventory": {"h100-sxm": 1, "l40s": 1}}, prices={"tco": RUNNING}),
    # owned H100 cheap, rented ones dear: a budget only more owned H100 (or more budget) meets
    "owned_and_rented": _instance(limits={"inventory": {"h100-sxm": 1}, "rent_outside_inventory": True,
                                          "budget_usd_per_hour": 3}, prices={"tco": RUNNING}),
    "budget": _instance(limits={"budget_usd_per_hour": 2}),
    "max_gpus": _instance(search={**SEARCH, "max_gpus": 2}),
    "max_nodes": _instance(workload={"input_tokens": 512, "output_tokens": 128,
                                     "demand": {"output_tokens_per_s": 150000}},
                           search={**SEARCH, "gpus": ["h100-sxm"], "max_nodes": 1}),
    "power": _instance(limits={"power_cap_w": 1000}),
    "target": _instance(slo={"tpot_ms": 3}),
    "percentile": _instance(slo={"tpot_ms": 40, "ttft_ms": {"p99": 6}}),
    "quantization": _instance(model="llama-3.1-70b", search={**SEARCH, "gpus": ["l40s"], "tp": [1, 2],
                                                             "quantizations": ["w16a16"]},
                              workload={"input_tokens": 512, "output_tokens": 128,
                                        "demand": {"output_tokens_per_s": 500}}),
}


def _oracle(data: dict) -> bool:
    """The exhaustive oracle finds a plan for the instance ``data``."""
    return bool(plan(PlanSpec.model_validate(data), backend="exhaustive", top_k=1).plans)


def _step(limit: str) -> float:
    if limit.startswith("slo."):
        return 0.01 if limit.split(".")[1] in ("tpot_ms", "itl_ms") else 1.0
    return 0.01 if limit == "limits.budget_usd_per_hour" else 1.0


def _at(data: dict, limit: str, value: Any) -> dict:
    """``data`` with ``limit`` (a YAML path) set to ``value``."""
    keys = limit.split(".")
    patch: Any = value
    for k in reversed(keys):
        patch = {k: patch}
    return apply_patch(data, patch)


def _lifted(data: dict, limit: str) -> dict:
    """``data`` with the limit as loose as its schema allows (a target dropped)."""
    if limit.startswith("slo."):
        slo = dict(data["slo"])
        key = limit.split(".")[1]
        if limit.count(".") == 1 or len(slo[key]) == 1:
            slo.pop(key)
        else:
            slo[key] = {k: v for k, v in slo[key].items() if k != limit.split(".")[2]}
        return {**data, "slo": slo}
    if limit == "search.quantizations":
        return _at(data, limit, ["w16a16", "w8a16", "w8a8-fp8", "w8a8-int8"])
    big = {"limits.budget_usd_per_hour": 1e9, "limits.power_cap_w": 1e10, "search.max_gpus": 10**7,
           "search.max_nodes": 10**6}
    return _at(data, limit, big.get(limit, 10**7))


@pytest.mark.parametrize("name", CASES)
def test_every_relaxation_is_true_by_the_oracle(name):
    data = CASES[name]
    assert not _oracle(data), "the case must be infeasible"
    out = relaxations(PlanSpec.model_validate(data), None, backend="cpsat", time_limit=60)
    assert out, "no limit offered"
    assert any(x.patch for x in out), "no relaxation works"
    for x in out:
        if not x.patch:
            assert not _oracle(_lifted(data, x.limit)), f"{x.limit}: a value works, yet none was named"
            continue
        assert _oracle(apply_patch(data, x.patch)), f"{x.limit}: {x.needed} gives the oracle no plan"
        if x.limit == "search.quantizations":
            continue
        less = x.needed - _step(x.limit)
        if less > 0:
            assert not _oracle(_at(data, x.limit, less)), f"{x.limit}: {less} also works: {x.needed} is not the least"


def test_each_family_is_offered():
    """Every limit family the cases bind is offered (issue 23: power and nodes never were)."""
    offered = {x.limit for name in ("max_nodes", "power") for x in
               relaxations(PlanSpec.model_validate(CASES[name]), None, backend="cpsat", time_limit=60) if x.patch}
    assert {"search.max_nodes", "limits.power_cap_w"} <= offered


def test_an_owned_count_is_raised_not_deleted():
    """Issue 23 item 3 / issue 21: with 1 H100 and 1 L40S owned and 20,000 tokens/s, relaxing
    the H100 count was 'does not make the instance feasible' (the entry was deleted, and a
    missing entry means not owned); it is the smallest H100 count that plans."""
    out = {x.limit: x for x in relaxations(PlanSpec.model_validate(CASES["inventory"]), None, backend="cpsat",
                                           time_limit=60)}
    h100 = out["limits.inventory.h100-sxm"]
    assert h100.needed is not None and h100.needed > 1 and h100.plan["gpu"] == "h100-sxm"
    assert h100.patch == {"limits": {"inventory": {"h100-sxm": h100.needed}}}
    assert out["limits.inventory.l40s"].needed is not None


def test_owned_gpus_only_names_the_h100_count_that_plans():
    """Issue 21: owned GPUs only (16 H100 + 8 MI300X, no renting), Qwen3-235B: the H100
    relaxation said 'does not make the instance feasible' while more H100 plan. The demand is
    set where the owned GPUs fall short."""
    data = {"model": "qwen3-235b-a22b", "workload": {"input_tokens": 1024, "output_tokens": 256,
                                                     "demand": {"requests_per_s": 150}},
            "slo": {"tpot_ms": 50}, "search": {"quantizations": ["w8a8-fp8"], "kv_dtypes": ["fp8"], "pp": [1]},
            "limits": {"inventory": {"h100-sxm": 16, "mi300x": 8}, "rent_outside_inventory": False},
            "prices": {"tco": RUNNING}, "objective": "cost_per_hour"}
    spec = PlanSpec.model_validate(data)
    assert not plan(spec, backend="cpsat", top_k=1).plans
    out = {x.limit: x for x in relaxations(spec, None, backend="cpsat", time_limit=60)}
    h100 = out["limits.inventory.h100-sxm"]
    assert h100.needed is not None and h100.needed > 16 and h100.plan["gpu"] == "h100-sxm"
    assert plan(PlanSpec.model_validate(apply_patch(data, h100.patch)), backend="cpsat", top_k=1).plans
    less = apply_patch(data, {"limits": {"inventory": {"h100-sxm": h100.needed - 1}}})
    assert not plan(PlanSpec.model_validate(less), backend="cpsat", top_k=1).plans


def _offers_instance(**over: Any) -> dict:
    import yaml

    root = Path(__file__).resolve().parents[1]
    data = yaml.safe_load((root / "instances" / "offers_owned_spot.yaml").read_text())
    for path, value in over.items():
        data = _at(data, path, value)
    return data


def test_a_relaxation_names_every_deployment_of_the_answer_it_gives():
    """Issue 25 adversarial: the offers instance without renting (8 owned H100, 20 req/s) needs
    14 H100. The relaxation's answer at 14 is 10 GPUs of TP 2 and 4 of TP 4 (two
    configurations), but it read 'limits.inventory.h100-sxm: 8 -> 14 gives 10 x h100-sxm
    (TP 2 ...)': the first deployment alone, 10 GPUs for a raise to 14. It names both, and
    the GPUs the answer holds."""
    from planner.report import wording
    data = _offers_instance(**{"limits.rent_outside_inventory": False})
    out = {x.limit: x for x in relaxations(PlanSpec.model_validate(data), None, backend="cpsat", time_limit=60)}
    inv = out["limits.inventory.h100-sxm"]
    assert inv.needed == 14 and inv.plan is not None
    assert sum(d["gpus"] for d in inv.plan["deployments"]) == 14
    text = wording.relaxation(inv)
    assert "TP 2" in text and "TP 4" in text and "14 GPUs" in text, text


def test_a_relaxation_counts_a_spot_deployments_spares():
    """The only rented offer is spot with 64 spare replicas: search.max_gpus 24 -> 142 'gave
    8 x h100-sxm', the owned GPUs alone; the answer holds 8 owned, 6 spot serving and 128
    spare GPUs (142, the value named)."""
    from planner.report import wording
    data = _offers_instance(**{"prices.offers.h100-sxm": [
        {"kind": "spot", "usd_per_gpu_hour": 1.18, "preemption": {"spare_replicas": 64}}]})
    out = {x.limit: x for x in relaxations(PlanSpec.model_validate(data), None, backend="cpsat", time_limit=60)}
    cap = out["search.max_gpus"]
    assert cap.needed == 142 and cap.plan is not None
    text = wording.relaxation(cap)
    assert "142 GPUs" in text and "128 spare" in text, text
