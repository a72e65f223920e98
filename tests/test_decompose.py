"""The fleet decomposition (planner/backends/decompose.py, issue 26 item 2): each workload's
covering problem solved exactly, a Lagrangian bound that never passes the optimum, the fleet
it finds feasible and never dearer than the start, and the shapes it leaves to the whole model."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import replace

import numpy as np
import pytest
from test_fleet_scale import SEARCH, WORKLOADS  # the same three-workload fleet

import constraints
import planner.backends.highs as highs
from planner.backends import decompose
from planner.backends.base import Status, get_backend
from planner.candidates.table import build_candidates, with_objective
from planner.plan import start as starting
from planner.plan.solve import decode, first_phase_view, solve
from planner.resolve.problem import resolve_fleet
from planner.schemas.fleet import FleetSpec

SMALL = {"gpus": ["h100-sxm", "l40s"], "quantizations": ["w8a8-fp8"], "kv_dtypes": ["fp8"],
         "tp": [1, 2], "pp": [1], "batch_levels": [64]}
"""A search the exhaustive oracle enumerates."""
OWNED = {"h100-sxm": 0.5, "l40s": 0.2, "a100-80gb": 0.3}


def _problem(inventory: dict[str, int], *, small: bool = False, **over):
    workloads = [w | {"demand": {"requests_per_s": w["demand"]["requests_per_s"] / 10}} for w in WORKLOADS[:2]] \
        if small else WORKLOADS
    spec = FleetSpec.model_validate({"workloads": workloads, "search": SMALL if small else SEARCH,
                                     "limits": {"inventory": inventory, "rent_outside_inventory": not small},
                                     "prices": {"owned_usd_per_gpu_hour": {g: OWNED[g] for g in inventory}},
                                     "objective": "cost_per_hour",
                                     "max_configurations_per_workload": 2} | over)
    p = resolve_fleet(spec)
    return p, build_candidates(p)


def _brute(w, cap, ub, demand, k):
    """Every set of at most k rows with every replica count up to its cap: the cheapest cover."""
    best = math.inf
    n = len(w)
    for size in range(1, k + 1):
        for rows in itertools.combinations(range(n), size):
            for counts in itertools.product(*(range(1, int(ub[j]) + 1) for j in rows)):
                if sum(cap[j] * c for j, c in zip(rows, counts)) >= demand - 1e-9:
                    best = min(best, sum(w[j] * c for j, c in zip(rows, counts)))
    return best


@pytest.mark.parametrize("seed", range(40))
def test_each_workloads_cover_is_the_cheapest_by_enumeration(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 6)
    w = np.array([rng.choice([0.0, round(rng.uniform(0.1, 5), 2)]) if rng.random() < 0.1 else
                  round(rng.uniform(0.1, 5), 2) for _ in range(n)])
    cap = np.array([round(rng.uniform(1, 10), 1) for _ in range(n)])
    ub = np.array([float(rng.randint(1, 6)) for _ in range(n)])
    demand = round(rng.uniform(1, 30), 1)
    k = rng.choice([1, 2])
    value, pattern = decompose.cover(w, cap, ub, demand, k)
    assert value == pytest.approx(_brute(w, cap, ub, demand, k), rel=1e-12)
    if math.isfinite(value):
        assert len(pattern) <= k and len({j for j, _ in pattern}) == len(pattern)
        assert all(1 <= c <= ub[j] for j, c in pattern)
        assert sum(cap[j] * c for j, c in pattern) >= demand * (1 - 1e-9)
        assert sum(w[j] * c for j, c in pattern) == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("inventory", [{"h100-sxm": 3, "l40s": 6}, {"h100-sxm": 1, "l40s": 8}, {"h100-sxm": 8, "l40s": 1}])
def test_the_bound_never_passes_the_oracles_optimum_and_the_fleet_keeps_every_limit(inventory):
    p, c = _problem(inventory, small=True)
    base = replace(first_phase_view(p, c), limited=())
    f = constraints.build(base)
    blocks = decompose.blocks(f)
    assert blocks is not None and blocks.names == [f"inventory[gpu={g}]" for g in sorted(inventory)]
    start = starting.starting_answer(f)
    r = decompose.solve(f, blocks, 60, start.values if start is not None else None)
    oracle = solve(p, c, backend="exhaustive", time_limit=600, tie_break=False).phases[0].value
    assert r.values is not None and oracle is not None
    assert r.bound <= oracle * (1 + 1e-9) <= r.value * (1 + 2e-9)
    picks = decode(f, r.values)
    assert not starting.breaks_limits(base, picks) and not starting.over_configuration_limit(base, picks)
    for s in range(c.n_slots):
        assert sum(float(c.capacity[j]) * n for j, n in picks if c.slot[j] == s) >= float(c.demand[c.slot_rows(s)[0]]) \
            * (1 - 1e-9)
    if start is not None:
        assert r.value <= sum(c.deployment_cost(j, n) for j, n in start.picks) * (1 + 1e-12)
    # and HiGHS, decomposition first, ends at the oracle's optimum, proven
    sol = get_backend("highs").solve(f, 60)
    assert sol.status == Status.OPTIMAL and sol.values is not None
    assert decompose.value_of(f, sol.values) == pytest.approx(oracle, rel=1e-9)


def test_a_fleet_without_a_shared_limit_is_proven_by_the_decomposition_alone(monkeypatch):
    # no inventory row binds a workload to another: each workload's own optimum is the fleet's,
    # proven without the whole model ever going to HiGHS
    p, c = _problem({"h100-sxm": 16, "l40s": 16}, small=True)
    f = constraints.build(replace(first_phase_view(p, c), limited=()))
    monkeypatch.setattr(highs.HighsBackend, "whole", lambda *a, **k: pytest.fail("the whole model was solved"))
    sol = get_backend("highs").solve(f, 60)
    assert sol.status == Status.OPTIMAL and sol.gap == 0.0 and sol.values is not None
    oracle = solve(p, c, backend="exhaustive", time_limit=600, tie_break=False).phases[0].value
    assert decompose.value_of(f, sol.values) == pytest.approx(oracle, rel=1e-9)


def test_a_large_fleet_keeps_the_decompositions_answer_and_its_proven_bound(monkeypatch):
    # above WHOLE_MODEL_COLUMNS the fleet found stands with its gap against the Lagrangian bound
    p, c = _problem({"h100-sxm": 1, "l40s": 6})
    f = constraints.build(replace(first_phase_view(p, c), limited=()))
    monkeypatch.setattr(highs, "WHOLE_MODEL_COLUMNS", 0)
    monkeypatch.setattr(decompose, "OPTIMAL_GAP", -1.0)       # never proven: the gap path
    sol = get_backend("highs").solve(f, 60)
    assert sol.status == Status.FEASIBLE and sol.values is not None and sol.bound is not None
    value = decompose.value_of(f, sol.values)
    assert sol.gap == pytest.approx(max(0.0, value - sol.bound) / value, abs=1e-12)
    assert "_highspy" not in f.__dict__


@pytest.mark.parametrize("over", [
    {"search": SEARCH | {"max_nodes": 4}},   # node packing
    {"max_configurations_per_workload": 3},
    {"objective": "served_demand", "limits": {"inventory": {"h100-sxm": 2}, "budget_usd_per_hour": 10}},
])
def test_shapes_it_does_not_solve_exactly_go_to_the_whole_model(over):
    p, c = _problem({"h100-sxm": 2}, **over)
    f = constraints.build(replace(first_phase_view(p, c), limited=()))
    assert decompose.blocks(f) is None


def test_a_plan_is_not_decomposed():
    from planner.resolve.problem import resolve
    from planner.schemas.plan import PlanSpec
    spec = PlanSpec.model_validate({"model": "llama-3.1-8b", "slo": {"tpot_ms": 40},
                                    "workload": {"input_tokens": 512, "output_tokens": 128,
                                                 "demand": {"requests_per_s": 20}},
                                    "search": SEARCH, "objective": "cost_per_hour"})
    p = resolve(spec)
    f = constraints.build(with_objective(build_candidates(p), "cost_per_hour"))
    assert decompose.blocks(f) is None


def test_a_hint_serving_part_of_a_demand_is_no_answer_of_its_workload():
    # the greedy fleet under a budget may serve a share of a demand: never a master column
    b = decompose.Block(y=np.arange(2), x=np.arange(2), cap=np.array([6522.0, 2214.0]), demand=7680.0,
                        ub=np.array([1.0, 3.0]), k=2, cost=np.array([2.5, 0.9]), link=np.zeros((0, 2)))
    assert not decompose.answers(b, [(0, 1)])
    assert not decompose.answers(b, [(1, 4)])                    # past its replicas
    assert decompose.answers(b, [(0, 1), (1, 1)])
    assert decompose.cover(b.cost, b.cap, b.ub, b.demand, b.k) == (pytest.approx(3.4), [(0, 1), (1, 1)])
