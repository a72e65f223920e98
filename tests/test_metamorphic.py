"""Metamorphic properties of the optimum over generated instances (issue 4), 200 each.

Monotonicity (loosen an SLO, raise the budget, add inventory, allow a GPU type, more
demand) runs on CP-SAT, the default backend. Plan identity under price changes runs on the
exhaustive oracle as well, whose tie-break (first candidate) does not depend on prices."""

import sys
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.candidates.cache import PhysicsCache
from planner.catalog.store import Catalog
from planner.plan.solve import KEEP_TOLERANCE, plan
from planner.schemas.plan import PlanSpec

CAT = Catalog.default()
PRICED = ["h100-sxm", "a100-80gb", "l40s", "rtx-4090", "l4", "mi300x", "h200", "a100-40gb"]
MODELS = ["llama-3.1-8b", "llama-2-7b", "llama-2-13b", "qwen3-32b"]
EXAMPLES = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
"""200 examples per property (issue 26: 1,400 instances, 2,800 plans), derandomized: the same
examples on every run, so the vacuous counts below and any failure reproduce in CI (a random run
once drew 21 vacuous budget examples of 40). 56 examples took 30.7 CPU s on 755d8ac (user+sys,
`/usr/bin/time python -m pytest -q -p no:cacheprovider -p no:xdist -o addopts=''
tests/test_metamorphic.py`), 200 take 117.4 (36-72 vacuous of 200 per property)."""
MAX_VACUOUS = 0.5
"""At most half of a property's examples may be vacuous (the base instance infeasible, so
nothing is compared); test_vacuous_examples_are_bounded checks it and prints the counts."""
TOTAL: Counter = Counter()
VACUOUS: Counter = Counter()
KEY = ("gpu", "gpus", "tp", "pp", "ep", "replicas", "quantization", "kv_dtype", "batch")


@st.composite
def base(draw, demand=True):
    gpus = draw(st.lists(st.sampled_from(PRICED), min_size=1, max_size=2, unique=True))
    d = {
        "model": draw(st.sampled_from(MODELS)),
        "workload": {"input_tokens": draw(st.integers(64, 2048)), "output_tokens": draw(st.integers(16, 512))},
        "slo": {"tpot_ms": draw(st.floats(10, 120)), "ttft_ms": draw(st.floats(100, 3000))},
        "search": {"gpus": sorted(gpus), "quantizations": [draw(st.sampled_from(["w16a16", "w8a16", "w4a16"]))],
                   "kv_dtypes": ["bf16"], "tp": [1, 2], "pp": [1], "max_batch": 32},
        "objective": "cost_per_hour" if demand else "cost_per_million_tokens", "top_k": 1,
    }
    if demand:
        d["workload"]["demand"] = {"output_tokens_per_s": draw(st.floats(50, 5000))}
    return d


CACHE = PhysicsCache()
"""The physics of every case computed so far, kept across the examples: a variant that moves
prices, budget, inventory or demand reads its base's physics back (planner/candidates/cache.py:
the same figures, bit for bit; tests/test_candidate_cache.py), so it costs its solve alone."""


def solve(d, backend="cpsat"):
    r = plan(PlanSpec.model_validate(d), backend=backend, top_k=1, cache=CACHE)
    return r.plans[0] if r.plans else None


def count(vacuous: bool) -> None:
    """Record one example of the calling property, and whether it compared anything."""
    caller = sys._getframe(1)        # not inspect.stack(): it reads the source of every frame (a quarter of a run)
    if caller.f_code.co_name == "no_worse":
        caller = caller.f_back or caller
    name = caller.f_code.co_name
    TOTAL[name] += 1
    VACUOUS[name] += vacuous


def no_worse(base_plan, variant_plan, sense=1):
    count(base_plan is None)
    if base_plan is None:
        return
    assert variant_plan is not None, "relaxing made a feasible instance infeasible"
    assert sense * variant_plan.objective_value <= sense * base_plan.objective_value * (1 + 1e-9)


def _with(d, section, **kv):
    out = {**d, section: {**d.get(section, {}), **kv}}
    return out


@EXAMPLES
@given(base(), st.floats(1.0, 3.0), st.booleans())
def test_loosening_an_slo_never_raises_the_optimal_cost(d, factor, drop_ttft):
    slo = {"tpot_ms": d["slo"]["tpot_ms"] * factor}
    if not drop_ttft:
        slo["ttft_ms"] = d["slo"]["ttft_ms"] * factor
    no_worse(solve(d), solve({**d, "slo": slo}))


@EXAMPLES
@given(base(), st.floats(5, 60), st.floats(1.0, 3.0))
def test_raising_the_budget_never_raises_the_optimal_cost(d, budget, factor):
    d = _with(d, "limits", budget_usd_per_hour=budget)
    no_worse(solve(d), solve(_with(d, "limits", budget_usd_per_hour=budget * factor)))


@EXAMPLES
@given(base(), st.integers(2, 64), st.integers(1, 16))
def test_adding_inventory_never_raises_the_optimal_cost(d, stock, more):
    gid = d["search"]["gpus"][0]
    d = _with(_with(d, "limits", inventory={gid: stock}), "prices",
              owned_usd_per_gpu_hour={gid: CAT.gpu(gid).price_usd_per_gpu_hour})
    no_worse(solve(d), solve(_with(d, "limits", inventory={gid: stock + more})))


@EXAMPLES
@given(base(), st.sampled_from(PRICED))
def test_allowing_another_gpu_type_never_raises_the_optimal_cost(d, extra):
    wider = _with(d, "search", gpus=sorted(set(d["search"]["gpus"]) | {extra}))
    no_worse(solve(d), solve(wider))


@EXAMPLES
@given(base(), st.floats(1.0, 4.0))
def test_more_demand_never_needs_fewer_gpus(d, factor):
    d = {**d, "objective": "gpus"}
    more = {**d, "workload": {**d["workload"], "demand": {
        "output_tokens_per_s": d["workload"]["demand"]["output_tokens_per_s"] * factor}}}
    p, q = solve(d), solve(more)
    count(p is None and q is None)
    if p is not None and q is not None:
        assert q.gpus >= p.gpus
    if p is None:
        assert q is None, "more demand cannot be easier"


@EXAMPLES
@given(base(demand=False), st.floats(1.01, 5.0), st.sampled_from(["exhaustive", "cpsat"]))
def test_raising_the_price_of_an_unused_gpu_changes_nothing(d, factor, backend):
    p = solve(d, backend)
    count(p is None)
    if p is None:
        return
    unused = [g for g in d["search"]["gpus"] if g != p.gpu]
    if not unused:
        d = _with(d, "search", gpus=sorted(d["search"]["gpus"] + [g for g in PRICED if g != p.gpu][:1]))
        p = solve(d, backend)
        unused = [g for g in d["search"]["gpus"] if g != p.gpu]
    g = unused[0]
    pricier = _with(d, "prices", usd_per_gpu_hour={g: CAT.gpu(g).price_usd_per_gpu_hour * factor})
    q = solve(pricier, backend)
    assert q.objective_value == pytest.approx(p.objective_value, rel=1e-9)
    if backend == "exhaustive":
        assert [getattr(q, k) for k in KEY] == [getattr(p, k) for k in KEY]


@EXAMPLES
@given(base(demand=False), st.floats(0.1, 10.0), st.sampled_from(["exhaustive", "cpsat"]))
def test_scaling_every_price_scales_the_cost_and_keeps_the_plan(d, k, backend):
    p = solve(d, backend)
    scaled = _with(d, "prices", usd_per_gpu_hour={g: CAT.gpu(g).price_usd_per_gpu_hour * k for g in d["search"]["gpus"]})
    q = solve(scaled, backend)
    count(p is None)
    if p is None:
        assert q is None
        return
    # answers within the documented tie tolerance (planner/plan/solve.py KEEP_TOLERANCE: relative,
    # plus absolute in the unit the objective is read in) are ties, and scaling the prices moves a
    # near tie across its absolute part: a tied answer may then change hands (qwen3-32b on A100 at
    # 1/4 the price: batch 32 at $0.2405104/M against batch 19 at $0.2405092/M, 1.2e-6 apart)
    want = p.objective_value * k
    assert abs(q.objective_value - want) <= KEEP_TOLERANCE * max(abs(want), abs(q.objective_value)) + KEEP_TOLERANCE
    if backend == "exhaustive" and q.objective_value == pytest.approx(want, rel=1e-9):
        assert [getattr(q, key) for key in KEY] == [getattr(p, key) for key in KEY]


def test_vacuous_examples_are_bounded():
    """Runs after the properties above (file order): each compared plans in most examples."""
    if not TOTAL:
        pytest.skip("run with the properties above")
    for name, n in sorted(TOTAL.items()):
        print(f"{name}: {n} examples, {VACUOUS[name]} vacuous")
        assert VACUOUS[name] <= MAX_VACUOUS * n, f"{name}: {VACUOUS[name]} of {n} examples compared nothing"
