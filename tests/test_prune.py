"""Model reduction and the starting plan (issue 16): pruning keeps every ranked optimum,
the result reports columns before and after, and a solver that ends without a plan at its
time limit still yields the starting plan, labelled as such."""

from pathlib import Path

import numpy as np
import pytest

import constraints
from planner.backends.base import Feature, Solution, Status
from planner.candidates.table import build_candidates, with_objective
from planner.plan import solve as solve_mod
from planner.plan.solve import plan
from planner.resolve.problem import resolve
from planner.schemas.plan import load_plan_spec

ROOT = Path(__file__).resolve().parents[1]
INSTANCE = ROOT / "instances" / "seed_4090_vs_h100.yaml"


@pytest.fixture(scope="module")
def table():
    spec, doc = load_plan_spec(str(INSTANCE))
    return spec, doc, build_candidates(resolve(spec, doc))


def test_model_size_reports_columns_before_and_after(table):
    spec, doc, _ = table
    r = plan(spec, doc, backend="milp", top_k=2)
    size = r.model_size
    assert size["candidates"] >= size["after_screening"] >= size["after_pruning"] > 0
    assert size["candidates_pruned_as_dominated"] == size["after_screening"] - size["after_pruning"]


@pytest.mark.parametrize("ranks", [1, 3])
def test_more_ranks_keep_more_columns_and_every_survivor_was_screened(table, ranks):
    _, _, c = table
    f = constraints.build(c, ranks=ranks)
    g = constraints.build(c, ranks=ranks + 2)
    assert set(f.alive) <= set(g.alive)
    assert np.all(f.x[f.alive] >= 0) and np.all(np.delete(f.x, f.alive) == -1)


@pytest.mark.parametrize("objective", ["tpot", "ttft", "gpus", "cost_per_million_tokens"])
def test_incumbent_is_the_enumerated_optimum(table, objective):
    """With one slot the starting plan is the optimum: the oracle's value."""
    from planner.backends.base import get_backend
    _, _, c = table
    c = with_objective(c, objective)
    f = constraints.build(c)
    inc = constraints.incumbent(f)
    sol = get_backend("exhaustive").solve(f, 60)
    if sol.picks is None:
        assert inc is None
        return
    from planner.candidates.objectives import OBJECTIVES
    o = OBJECTIVES[objective]
    assert o.value(c, inc.row, inc.replicas) == pytest.approx(o.value(c, sol.picks[0], sol.replicas[0]), rel=1e-9)


class _OutOfTime:
    name = "slow"
    features = frozenset({Feature.LINEAR_MODEL, Feature.TIME_LIMIT})

    def solve(self, f, time_limit, seed=0, gap=0.0):
        assert f.hint                      # the starting plan was offered
        return Solution(Status.TIME_LIMIT, None, seconds=time_limit)


def test_time_limit_without_a_plan_returns_the_starting_plan(table, monkeypatch):
    spec, doc, _ = table
    monkeypatch.setattr(solve_mod, "get_backend", lambda name: _OutOfTime())
    r = plan(spec, doc, backend="cpsat", top_k=2)
    ref = plan(spec, doc, backend="exhaustive", top_k=2)
    assert r.status == "feasible" and r.gap is None
    assert [p.objective_value for p in r.plans] == pytest.approx([p.objective_value for p in ref.plans], rel=1e-9)
    assert [a.start for a in r.answers] == [True, True] and r.phases[0].start


def _dominated_by_definition(v: np.ndarray) -> np.ndarray:
    """The module's rule for one answer, pair by pair: row j goes when some row k is no worse
    on every criterion and strictly better on one or, all equal, comes first (NaN: neither)."""
    m = len(v)
    out = np.zeros(m, dtype=bool)
    for j in range(m):
        for k in range(m):
            if k != j and all(v[k] <= v[j]) and (any(v[k] < v[j]) or k < j):
                out[j] = True
                break
    return out


@pytest.mark.parametrize("seed", range(40))
def test_pruning_for_one_answer_drops_exactly_the_dominated_rows(seed):
    # ties, constant criteria, criteria ordering rows alike ($/hour and GPUs on one GPU type) and NaN
    from constraints.prune import _dominated, _dominated_once, _group_ranks
    rng = np.random.default_rng(seed)
    m, d = int(rng.integers(1, 300)), int(rng.integers(1, 6))
    v = rng.integers(0, int(rng.integers(1, 6)), size=(m, d)).astype(float) + (rng.random((m, d)) * 1e-3
                                                                               if seed % 3 == 0 else 0.0)
    if seed % 4 == 1:
        v[:, 0] = v[:, -1] * 2.5
    if seed % 5 == 2:
        v[:, -1] = 3.0
    if seed % 2:
        v[rng.random((m, d)) < 0.05] = np.nan
    expected = _dominated_by_definition(v)
    assert np.array_equal(_dominated(v, np.arange(m), 1), expected)
    key = np.sort(rng.integers(0, 3, m))             # groups, ranked together (constraints/prune.py pruned)
    local, unknown = _group_ranks(v, key)
    for g in np.unique(key):
        rows = np.flatnonzero(key == g)
        assert np.array_equal(rows[_dominated_once(local[rows], unknown[rows])],
                              rows[_dominated_by_definition(v[rows])])
