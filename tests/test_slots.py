"""The slot axis: a problem with two deployments to choose (the shape a fleet will have)
goes through candidates, constraints, every backend, the oracle and decoding. Without a
shared limit the joint optimum is the sum of the two single-slot optima; with a shared
inventory that binds, every backend agrees with the oracle's enumeration."""

from __future__ import annotations

from dataclasses import replace

import pytest

from constraints.model import LinearModel
from planner.backends.base import BACKENDS, Feature, Status, get_backend
from planner.candidates.table import build_candidates
from planner.catalog.store import Catalog
from planner.plan.result import PlanResult
from planner.plan.solve import solve
from planner.resolve.problem import resolve
from planner.schemas.plan import PlanSpec

BASE = {"model": "llama-3.1-8b", "workload": {"input_tokens": 512, "output_tokens": 128,
                                              "demand": {"output_tokens_per_s": 20000}},
        "slo": {"tpot_ms": 40}, "objective": "cost_per_hour", "max_configurations_per_workload": 1,
        "search": {"gpus": ["h100-sxm", "l40s"], "quantizations": ["w16a16", "w8a8-fp8"], "kv_dtypes": ["fp8"],
                   "tp": [1, 2], "pp": [1], "max_batch": 64}}


def _two_slots(limits: dict | None = None, owned_prices: dict | None = None):
    """Two slots; ``owned_prices``: $/GPU-hour of the owned GPUs (limits.inventory)."""
    spec = PlanSpec.model_validate(BASE | {"limits": limits or {},
                                           "prices": {"owned_usd_per_gpu_hour": owned_prices or {}}})
    p = resolve(spec)
    chat = p.slots[0]
    qwen = replace(chat, name="qwen", model=Catalog.default().model("qwen3-32b"),
                   demand=replace(chat.demand, value=5000.0, requests_per_s=5000.0 / chat.output.mean),
                   path="workloads[1]")
    return p, replace(p, slots=(replace(chat, name="llama"), qwen))


def _single(p, slot):
    q = replace(p, slots=(slot,))
    return solve(q, build_candidates(q), backend="exhaustive", top_k=1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_independent_slots_cost_the_sum_of_their_optima(backend):
    _, p = _two_slots()
    r = solve(p, build_candidates(p), backend=backend, top_k=1)
    assert r.status == "optimal"
    assert sorted(x.workload for x in r.plans) == ["llama", "qwen"]
    singles = sum(_single(p, s).plans[0].objective_value for s in p.slots)
    assert sum(x.objective_value for x in r.plans) == pytest.approx(singles, rel=1e-6)


def test_a_shared_inventory_couples_the_slots_and_backends_agree_with_the_oracle():
    _, free = _two_slots()
    alone = solve(free, build_candidates(free), backend="exhaustive", top_k=1)
    used = {x.gpu: 0 for x in alone.plans}
    for x in alone.plans:
        used[x.gpu] += x.gpus
    gid = max(used, key=used.get)        # the GPU the independent optimum uses most: make it scarce
    gpus = BASE["search"]["gpus"]
    owned = {g: max(used[gid] - 1, 0) if g == gid else 10**6 for g in gpus}   # the others as good as unlimited
    _, p = _two_slots({"inventory": owned}, {g: Catalog.default().gpu(g).price_usd_per_gpu_hour for g in gpus})
    c = build_candidates(p)
    results = {b: solve(p, c, backend=b, top_k=2) for b in BACKENDS}
    oracle = results["exhaustive"]
    assert oracle.status == "optimal"
    total = sum(x.objective_value for x in oracle.plans if x.rank == 1)
    assert total > sum(x.objective_value for x in alone.plans) * (1 + 1e-9)   # the limit binds
    for name, r in results.items():
        assert r.status == oracle.status, name
        for rank in (1, 2):
            mine = sum(x.objective_value for x in r.plans if x.rank == rank)
            ref = sum(x.objective_value for x in oracle.plans if x.rank == rank)
            assert mine == pytest.approx(ref, rel=1e-6), (name, rank)
        rank1 = [x for x in r.plans if x.rank == 1]
        assert sum(x.gpus for x in rank1 if x.gpu == gid) <= max(used[gid] - 1, 0), name


def test_a_result_round_trips_through_json():
    _, p = _two_slots()
    r = solve(p, build_candidates(p), backend="cpsat", top_k=2)
    d = r.to_dict()
    assert PlanResult.from_dict(d).to_dict() == d
    assert d["inputs"]["models"] == {"llama": "llama-3.1-8b", "qwen": "qwen3-32b"}
    assert len(d["inputs"]["catalog_digest"]) == 16


def test_a_price_what_if_reuses_the_physics():
    base, _ = _two_slots()
    c = build_candidates(base)
    dearer = base.with_prices({"h100-sxm": 100.0})
    c2 = build_candidates(dearer)
    assert (c2.ev.tpot == c.ev.tpot).all() and (c2.cost_per_hour >= c.cost_per_hour).all()
    assert dearer.inputs()["price_sources"]["h100-sxm"] == "what-if"


# Known-answer models, one per solver backend: min 3a + 2b + t (a, b integer in 0..5,
# t in seconds, >= 0.25) s.t. a + b >= 3, a - b >= 1, t >= 0.5 b. Optimum: a = 2, b = 1, t = 0.5:
# 3*2 + 2*1 + 0.5 = 8.5 (checked by hand over the 36 integer points).
@pytest.mark.parametrize("backend", [b for b in BACKENDS if Feature.LINEAR_MODEL in get_backend(b).features])
def test_known_answer_model(backend):
    m = LinearModel()
    a = m.var("a", 0, 5, integer=True)
    b = m.var("b", 0, 5, integer=True)
    t = m.var("t", 0.25, 10, integer=False, dimension="seconds")
    m.row("cover", "test", {a: 1.0, b: 1.0}, ">=", 3.0, "count")
    m.row("order", "test", {a: 1.0, b: -1.0}, ">=", 1.0, "count")
    m.row("t_def", "test", {t: 1.0, b: -0.5}, ">=", 0.0, "seconds")
    m.objective, m.objective_dimension, m.objective_sense = {a: 3.0, b: 2.0, t: 1.0}, "seconds", "min"

    class F:
        model = m

    sol = get_backend(backend).solve(F(), 10.0)
    assert sol.status == Status.OPTIMAL
    assert sol.values is not None
    assert (round(sol.values[a]), round(sol.values[b])) == (2, 1)
    assert 3 * sol.values[a] + 2 * sol.values[b] + sol.values[t] == pytest.approx(8.5, abs=1e-6)
