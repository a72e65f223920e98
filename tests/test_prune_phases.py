"""Dominance pruning reused across a table's lexicographic phases (issue 26; constraints/prune.py
``Memo``): each phase drops exactly the rows a fresh pruning of its model drops, on the shipped
fleets under every objective kind, on random plan instances, and on synthetic criteria built
for ties, NaN, screening and unsound reuse; and the comparison fails when the reuse is broken."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, reject, settings
from test_plan_random import instances

import constraints
from constraints import choice, prune
from constraints.objective import share_terms
from planner.candidates.table import build_candidates
from planner.errors import InputError
from planner.plan.solve import first_phase_view, solve
from planner.resolve.problem import resolve, resolve_fleet
from planner.schemas.fleet import load_fleet_spec

ROOT = Path(__file__).resolve().parents[1]
FLEETS = sorted(p.name for p in (ROOT / "instances").glob("fleet_*.yaml") if p.name != "fleet_three_models.yaml")
"""The shipped fleets but fleet_three_models.yaml, whose phases the objective kinds below prune
(its own cost_per_hour among them): its table is built once for the module."""
PRUNED = prune.pruned
"""The module's own pruning (the fixture below wraps the name the solve stage calls)."""


def _fresh(f: constraints.Formulation, ranks: int) -> np.ndarray:
    """The pruning of ``f``'s model with nothing reused: its table without the shared memo."""
    g = constraints.Formulation(cands=replace(f.cands), covering=f.covering)
    g.replicas, g.alive = f.replicas, f.alive
    assert "_pruning" not in g.cands.__dict__
    return PRUNED(g, ranks)


@pytest.fixture
def compared(monkeypatch):
    """Every pruning the solve stage makes, checked against a fresh one; the list of (objective,
    bounds kept, whether a memo was there to reuse) of each."""
    seen: list[tuple[str, int, bool]] = []
    def checked(f, ranks):
        store = f.cands.__dict__.get("_pruning")
        had = bool(store) and ranks == 1
        out = PRUNED(f, ranks)
        assert np.array_equal(out, _fresh(f, ranks)), (f.cands.objective, f.cands.bounds)
        seen.append((f.cands.objective, len(f.cands.bounds), had))
        return out

    monkeypatch.setattr(prune, "pruned", checked)
    return seen


@pytest.mark.parametrize("name", FLEETS)
def test_each_phase_of_a_shipped_fleet_prunes_as_afresh(name, compared):
    spec, doc = load_fleet_spec(str(ROOT / "instances" / name))
    problem = resolve_fleet(spec, doc)
    r = solve(problem, build_candidates(problem), backend="highs", time_limit=60)
    assert r.plans and len(compared) >= 3
    assert any(had for _, _, had in compared)          # a later phase found the last pruning


@pytest.fixture(scope="module")
def three_models():
    spec, doc = load_fleet_spec(str(ROOT / "instances" / "fleet_three_models.yaml"))
    problem = resolve_fleet(spec, doc)
    return problem, build_candidates(problem)


@pytest.mark.parametrize("objectives", [("cost_per_hour",), ("gpus",), ("cost_per_million_tokens",),
                                        ("throughput",), ("tpot",), ("ttft",)])
def test_each_phase_under_every_objective_kind_prunes_as_afresh(objectives, three_models, compared):
    """served_demand: fleet_budget_priority.yaml above. Each phase stops within 2 % of its
    optimum, far sooner than at 0 on this table: a phase's pruning is compared with a fresh one
    of the same model, whatever values its bounds keep."""
    problem, cands = three_models
    solve(problem, cands, backend="highs", time_limit=60, phases=objectives, gap=0.02)
    assert len(compared) >= 2 and any(had for _, _, had in compared)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(instances())
def test_each_phase_of_a_random_plan_prunes_as_afresh(compared, spec):
    try:
        problem = resolve(spec)
    except InputError:            # lengths past the model's context: refused (tests/test_plan_random.py)
        reject()
    solve(problem, build_candidates(problem), backend="highs", top_k=2, time_limit=60)


# Synthetic criteria: integer columns with few values (many ties), some NaN and rows that cannot
# meet their demand, each phase's columns those of the phase before plus one; its alive rows a
# subset of the last phase's. Some seeds break the conditions of reuse (a column changed, rows
# revived, a row short only now), which the reuse must detect and prune afresh.

PHASES = ("gpus", "order", "workload_order", "cost_per_hour", "tpot")


@pytest.fixture(scope="module")
def table(three_models):
    return replace(first_phase_view(*three_models), limited=())


def _synthetic(monkeypatch, seed: int, table, levels: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each phase's (reused, fresh) pruning masks on synthetic criteria."""
    rng = np.random.default_rng(seed)
    n, base = len(table), int(rng.integers(0, 3))
    values = rng.integers(0, levels, size=(n, base + len(PHASES))).astype(float)
    values[rng.random(values.shape) < 0.01 * (seed % 3)] = np.nan
    short = rng.random(n) < 0.05
    changed = int(rng.integers(1, len(PHASES))) if seed % 4 == 3 else -1
    revived = int(rng.integers(1, len(PHASES))) if seed % 5 == 4 else -1
    late_short = int(rng.integers(1, len(PHASES))) if seed % 7 == 6 else -1

    def fake(c, replicas, rows, terms=None):
        k = len(c.bounds)                  # the phase: how many earlier ones it keeps
        cols = values[rows, :base + k + 1].copy()
        if k == changed:
            cols[:, 0] = values[rows, -1]
        gone = short[rows] | ((rows % 11 == 0) if k >= late_short >= 0 else False)
        return cols, gone

    monkeypatch.setattr(prune, "_criteria", fake)
    alive = np.flatnonzero(rng.random(n) < 0.9)
    out = []
    first = None
    for k, name in enumerate(PHASES):
        c = replace(table, objective=name, bounds=tuple((b, 0.0) for b in PHASES[:k]))
        c = share_terms(c, first) if first is not None else c
        if first is None:
            first = share_terms(c, c)
        if k == revived:
            alive = np.union1d(alive, np.flatnonzero(rng.random(n) < 0.3))
        elif k:
            alive = alive[rng.random(len(alive)) < 0.85]
        f = constraints.Formulation(cands=c, covering=True)
        f.replicas, f.alive = choice.needs_replicas(c), alive
        out.append((prune.pruned(f, 1), _fresh(f, 1)))
    return out


@pytest.mark.parametrize("seed", range(16))
def test_reuse_on_synthetic_ties_prunes_as_afresh(monkeypatch, table, seed):
    for k, (reused, fresh) in enumerate(_synthetic(monkeypatch, seed, table, levels=2 + seed % 4)):
        assert np.array_equal(reused, fresh), (seed, k)


def _unchecked(last, crit, rows, key, compared):
    """Every row's dominator of the last pruning taken as its dominator now, unchecked."""
    where = {int(r): i for i, r in enumerate(rows)}
    return np.array([where.get(int(d), -1) if ok else -1 for d, ok in zip(last.dominator[rows], compared)])


@pytest.mark.parametrize("broken", ["no twins", "no soundness check", "dominators unchecked"])
def test_the_comparison_fails_when_the_reuse_is_broken(monkeypatch, table, broken):
    """Each rule of the reuse matters: without it some phase of some seed prunes otherwise."""
    if broken == "no twins":       # a kept row with an equal is taken as kept again
        monkeypatch.setattr(prune, "_twins", lambda crit, by: np.zeros(len(by), dtype=bool))
    elif broken == "no soundness check":
        monkeypatch.setattr(prune, "_sound", lambda last, crit, rows, compared: True)
    else:
        monkeypatch.setattr(prune, "_carried", _unchecked)
    assert any(not np.array_equal(a, b) for seed in range(40)        # stops at the first difference
               for a, b in _synthetic(monkeypatch, seed, table, 2 + seed % 4))


def _dominated_by_definition(v: np.ndarray) -> np.ndarray:
    """Row j goes when some row k is no worse on every criterion and strictly better on one
    or, all equal, comes first (tests/test_prune.py keeps the same rule)."""
    m = len(v)
    return np.array([any(k != j and all(v[k] <= v[j]) and (any(v[k] < v[j]) or k < j) for k in range(m))
                     for j in range(m)], dtype=bool)


@pytest.mark.parametrize("seed", range(30))
def test_a_sweep_over_rows_known_kept_finds_each_tested_rows_dominator(seed):
    rng = np.random.default_rng(seed)
    m, d = int(rng.integers(1, 300)), int(rng.integers(1, 5))
    v = rng.integers(0, int(rng.integers(1, 5)), size=(m, d))
    expected = _dominated_by_definition(v)
    known = ~expected & (rng.random(m) < 0.5)       # rows the last phase proved kept
    rank = prune._group_ranks(v.astype(float), np.zeros(m, dtype=np.int64))[0]
    by = prune._sweep(rank, ~known)
    assert np.array_equal(by >= 0, expected & ~known)
    for j in np.flatnonzero(by >= 0):              # each recorded dominator dominates its row
        k = by[j]
        assert k != j and (v[k] <= v[j]).all() and ((v[k] < v[j]).any() or k < j)


def test_a_phase_table_shares_only_per_row_values_a_fresh_computation_gives(three_models):
    """share_terms also hands each phase the table's per-row objective values (the tie-break
    order's sort, read by order and workload_order) and its last pruning; tables made with
    other limits or prices start with neither."""
    from planner.candidates.objectives import OBJECTIVES
    from planner.candidates.table import repriced, with_capacity, with_demand, with_limits, with_objective

    problem, cands = three_models
    base = first_phase_view(problem, cands)
    names = [n for n in OBJECTIVES if n != "change" or base.current is not None]
    for name in names:
        OBJECTIVES[name].value(base, 0, 1)
    held = base.__dict__["_per_row"]
    assert ("per_replica", "order") in held
    for phase in ("cost_per_hour", "gpus", "order", "workload_order"):
        for partial in (False, True):
            c = share_terms(replace(with_objective(base, phase), partial=partial, bounds=(("cost_per_hour", 1.0),),
                                    limited=()), base)
            assert c.__dict__["_per_row"] is held
            fresh = replace(c)
            for (kind, name), values in held.items():
                o = OBJECTIVES[name]
                assert np.array_equal(values, o.per_replica(fresh) if kind == "per_replica" else o.fixed(fresh),
                                      equal_nan=True), (phase, partial, kind, name)
    assert {"_per_row", "_pruning"} <= base.__dict__.keys()
    # a schedule's period, a sweep's prices, a marginal value's limit, a simulated capacity: other tables
    for other in (with_limits(base, replace(base.limits, max_gpus=3)), replace(base, price=base.price * 2),
                  with_demand(base, base.slots), repriced(base, problem), with_capacity(base, {0: (0.0, 0)})):
        assert not {"_per_row", "_pruning"} & other.__dict__.keys()
