"""A fleet solver that scales (issue 26 item 2): HiGHS in-process, the model kept across the
lazy configuration-limit rounds (rows and columns added, not rebuilt), the gap against a
proven bound, and never an answer worse than the starting fleet."""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import pytest

import constraints
import planner.backends.highs as highs
from constraints import choice
from planner.backends.base import Solution, Status, get_backend
from planner.candidates.table import build_candidates
from planner.plan import start as starting
from planner.plan.solve import default_backend, first_phase_view, solve
from planner.resolve.problem import resolve_fleet
from planner.schemas.fleet import FleetSpec

SEARCH = {"gpus": ["h100-sxm", "l40s", "a100-80gb"], "quantizations": ["w8a8-fp8", "w16a16"], "kv_dtypes": ["fp8"],
          "tp": [1, 2], "pp": [1], "batch_levels": [16, 64]}
WORKLOADS = [
    {"name": "chat", "model": "llama-3.1-8b", "input_tokens": 512, "output_tokens": 128,
     "demand": {"requests_per_s": 90}, "slo": {"tpot_ms": 40, "ttft_ms": {"p99": 1500}}},
    {"name": "qwen", "model": "qwen3-32b", "input_tokens": 1024, "output_tokens": 256,
     "demand": {"requests_per_s": 9}, "slo": {"tpot_ms": 60}},
    {"name": "rag", "model": "llama-3.1-8b", "input_tokens": 2048, "output_tokens": 256,
     "demand": {"requests_per_s": 25}, "slo": {"tpot_ms": 50}},
]


def _problem(**over):
    spec = FleetSpec.model_validate({"workloads": WORKLOADS, "search": SEARCH,
                                     "limits": {"inventory": {"h100-sxm": 2, "l40s": 2, "a100-80gb": 2},
                                                "rent_outside_inventory": True},
                                     "prices": {"owned_usd_per_gpu_hour": {"h100-sxm": 0.5, "l40s": 0.2,
                                                                           "a100-80gb": 0.3}},
                                     "objective": "cost_per_hour", "max_configurations_per_workload": 2} | over)
    p = resolve_fleet(spec)
    return p, build_candidates(p)


@pytest.fixture(scope="module")
def fleet():
    return _problem()


def test_highs_reports_a_proven_gap_and_agrees_with_the_default_fleet_backend(fleet):
    p, c = fleet
    assert default_backend(p.spec) == "milp"
    r = solve(p, c, backend="highs", time_limit=60)
    assert r.backend == "highs" and r.status == "optimal" and r.gap == 0.0
    for other in ("milp", "cpsat"):      # the oracle's agreement on small fleets: tests/test_fleet.py
        a, b = r.answer(1), solve(p, c, backend=other, time_limit=60).answer(1)
        assert a is not None and b is not None and a.totals is not None and b.totals is not None
        assert a.totals.cost_per_hour == pytest.approx(b.totals.cost_per_hour, rel=1e-6), other


@pytest.mark.parametrize("backend", ["highs", "milp", "cpsat"])
def test_a_limit_added_to_the_model_as_built_solves_as_a_model_built_with_it(fleet, backend):
    # every slot limited at once, on the model built with none limited, against a model built limited
    p, c = fleet
    base = replace(first_phase_view(p, c), limited=())
    grown = constraints.build(base)
    solver = get_backend(backend)
    first = solver.solve(grown, 60)
    assert first.status == Status.OPTIMAL
    columns = len(grown.model.vars)
    assert choice.limit(grown, set(range(c.n_slots)))
    assert len(grown.model.vars) > columns and grown.cands.limited == tuple(range(c.n_slots))
    fresh = constraints.build(replace(base, limited=tuple(range(c.n_slots))))
    a, b = solver.solve(grown, 60), get_backend(backend).solve(fresh, 60)
    assert a.status == b.status == Status.OPTIMAL
    assert a.values is not None and b.values is not None
    cost = [float(sum(k * s.values[i] for i, k in constraints.objective.coefficients(f, "cost_per_hour").items()))
            for f, s in ((grown, a), (fresh, b))]
    assert cost[0] == pytest.approx(cost[1], rel=1e-9)
    assert len(grown.model.rows) == len(fresh.model.rows) and len(grown.model.vars) == len(fresh.model.vars)


def test_highs_keeps_one_model_across_the_lazy_rounds(fleet, monkeypatch):
    # the first round's answer reported over its configuration limit on every slot: a second round
    # enforces the limits on the model HiGHS holds (one translation), with the answer of a model
    # built limited (the whole model: the decomposition, which enforces every limit itself, off)
    p, c = fleet
    monkeypatch.setattr(highs.decompose, "blocks", lambda f: None)
    want = solve(p, c, backend="highs", time_limit=60, tie_break=False)
    made = []
    real_translate, real_over = highs.translate, starting.over_configuration_limit
    calls = []

    def over(cands, picks):
        if sys._getframe(1).f_code.co_name == "rank_one":     # the solve loop's check, not the start's
            calls.append(1)
            if len(calls) == 1:
                return set(range(cands.n_slots))
        return real_over(cands, picks)

    monkeypatch.setattr(highs, "translate", lambda m: made.append(len(m.vars)) or real_translate(m))
    monkeypatch.setattr(starting, "over_configuration_limit", over)
    r = solve(p, c, backend="highs", time_limit=60, tie_break=False)
    assert r.model_size["configuration_limit_rounds"] == 2 and r.model_size["slots_with_enforced_limit"] == c.n_slots
    assert len(made) == 1
    assert r.status == "optimal" and r.phases[0].value == pytest.approx(want.phases[0].value, rel=1e-9)


def test_a_worse_solver_answer_never_replaces_the_starting_fleet(fleet, monkeypatch):
    # a solver that returns, as 'feasible', the starting fleet with one spare replica: the start stands
    p, c = fleet
    real = highs.HighsBackend.solve

    def worse(self, f, time_limit, seed=0, gap=0.0):
        sol = real(self, f, time_limit, seed, gap)
        start = starting.starting_answer(f)
        assert start is not None and sol.values is not None
        picks = list(start.picks)
        picks[0] = (picks[0][0], picks[0][1] + 1)
        values = np.zeros(len(f.model.vars))
        for i, v in constraints.assignment(f, picks).items():
            values[i] = v
        return Solution(Status.FEASIBLE, values, gap=0.5, seconds=sol.seconds, bound=1.0)

    monkeypatch.setattr(highs.HighsBackend, "solve", worse)
    r = solve(p, c, backend="highs", time_limit=30, tie_break=False)
    first = r.phases[0]
    f = constraints.build(replace(first_phase_view(p, c), limited=None))
    start = starting.starting_answer(f)
    assert start is not None
    want = sum(float(c.cost_per_hour[j]) * n for j, n in start.picks)
    assert first.start and first.status == "feasible"
    assert first.value == pytest.approx(want, rel=1e-9)
    bound = max(1.0, starting.cost_lower_bound(first_phase_view(p, c)) or 0.0)
    assert first.lower_bound == pytest.approx(bound, rel=1e-9)
    assert first.gap == pytest.approx((want - bound) / want, rel=1e-9)


@pytest.mark.parametrize("objective", ["cost_per_hour", "gpus"])
def test_highs_reads_its_bound_in_the_model_units(fleet, objective, monkeypatch):
    # the solver's objective is conditioned and scaled by a power of two: its dual bound, read
    # back, is the objective's value in the model's units at a proven optimum (the whole model)
    from planner.candidates.table import with_objective
    p, c = fleet
    monkeypatch.setattr(highs.decompose, "blocks", lambda f: None)
    f = constraints.build(replace(with_objective(first_phase_view(p, c), objective), limited=None))
    sol = get_backend("highs").solve(f, 60)
    assert sol.status == Status.OPTIMAL and sol.values is not None
    value = float(sum(a * sol.values[i] for i, a in constraints.objective.coefficients(f, objective).items()))
    model = f.__dict__["_highspy"]["model"]       # as the backend left it: each run is made in a copy
    run = highs.run_within(model.highs, 60)
    assert run is not None and model.unscaled(run.dual_bound) == pytest.approx(value, rel=1e-9)


def test_a_tie_break_with_less_time_left_than_the_last_build_is_not_built_and_the_answer_stands(fleet, monkeypatch):
    """A tie-break phase whose time left is shorter than the last model's build is not built:
    recorded as time_limit, the answer and the status of the objective before it standing. An
    objective phase is always built (its status depends on it). The clock is a fake one that
    the first model build advances by 100 s and each later one by 10 s; the deadline is at 150 s."""
    import types

    import planner.plan.solve as S
    p, c = fleet
    clock = types.SimpleNamespace(now=0.0)
    monkeypatch.setattr(S, "time", types.SimpleNamespace(perf_counter=lambda: clock.now))
    real, builds = constraints.build, []

    def slow(*a, **k):
        clock.now += 10.0 if builds else 100.0
        builds.append(clock.now)
        return real(*a, **k)
    monkeypatch.setattr(constraints, "build", slow)
    base = first_phase_view(p, c)
    names = ("cost_per_hour", "gpus")
    s = S.rank_one(base, get_backend("highs"), "highs", names, 1, (), 150.0, S.KEEP_TOLERANCE, tie_seconds=50.0)
    assert [ph.status for ph in s.phases] == ["optimal", "time_limit"] and s.status == Status.OPTIMAL
    assert s.picks and len(builds) == 1
    clock.now, builds[:] = 0.0, []
    s2 = S.rank_one(base, get_backend("highs"), "highs", names, 2, (), 150.0, S.KEEP_TOLERANCE, tie_seconds=50.0)
    assert [ph.objective for ph in s2.phases] == list(names) and len(builds) == 2
    assert s2.phases[1].status == "optimal"        # the same phase as an objective: built and solved


def test_the_next_batch_of_every_deployment_computed_together_is_each_computed_alone(fleet):
    # explain_plans evaluates each answer's next batch once per model for all its deployments
    from dataclasses import fields as dc_fields

    from planner.physics.perf import evaluate
    from planner.physics.space import Configs
    from planner.plan.explain import _next_batches
    p, c = fleet
    rows = [int(j) for j in np.flatnonzero(c.meets_slo)[::7]]
    together = _next_batches(p, c, rows)
    assert len({id(p.slots[int(c.slot[j])].model) for j in rows}) > 1 and len(together) == len(set(rows))
    for j in rows:
        b = float(c.configs.batch[j])
        two = Configs(**{f.name: getattr(c.configs, f.name)[[j, j]] for f in dc_fields(c.configs)}
                      | {"batch": np.array([b, b + 1])})
        ev = evaluate(p.slots[int(c.slot[j])].model, p.table, two, p.assumptions)
        assert together[j] == (bool(ev.fits[1]), float(ev.total_bytes[1]), float(ev.usable_bytes[1]))
