"""Fleets (docs/fleet.md): several workloads on one inventory, traffic split over up to K
configurations, objectives cost, served demand and change solved lexicographically.

Every backend agrees with the exhaustive oracle's own enumeration of fleets on small
instances (shipped-like and generated); each fleet meets its demands with every replica at
or below its capacity at SLO, within every shared limit; a one-workload fleet costs what
`planner plan` finds; the CLI runs the shipped fleets and refuses bad ones with located
errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from planner.backends.base import BACKENDS
from planner.candidates.table import build_candidates
from planner.catalog.store import Catalog
from planner.cli.root import main
from planner.errors import InputError
from planner.plan.result import PlanResult
from planner.plan.solve import solve
from planner.resolve.problem import resolve, resolve_fleet
from planner.schemas.fleet import FleetSpec
from planner.schemas.plan import PlanSpec
from planner.whatif.answer import around

ROOT = Path(__file__).resolve().parents[1]
SEARCH = {"gpus": ["h100-sxm", "l40s"], "quantizations": ["w8a8-fp8"], "kv_dtypes": ["fp8"], "tp": [1, 2],
          "pp": [1], "batch_levels": [64]}
CHAT = {"name": "chat", "model": "llama-3.1-8b", "input_tokens": 512, "output_tokens": 128,
        "demand": {"requests_per_s": 120}, "slo": {"tpot_ms": 40, "ttft_ms": {"p99": 1500}}}
QWEN = {"name": "qwen", "model": "qwen3-32b", "input_tokens": 1024, "output_tokens": 256,
        "demand": {"requests_per_s": 12}, "slo": {"tpot_ms": 50}}


LISTED = {"usd_per_gpu_hour": {g: Catalog.default().gpu(g).price_usd_per_gpu_hour
                               for g in ("h100-sxm", "l40s", "a100-80gb", "mi300x")}}
"""Owned GPUs priced at the catalog's rental prices: with nothing rented, prices.usd_per_gpu_hour
is what an owned GPU costs (docs/instances.md); these tests are about a fleet's mechanics."""
def solve_fleet(p, c, *, backend: str, time_limit: float = 60.0, marginal: bool = True,
                baselines: bool = True) -> PlanResult:
    """The one solve path on a fleet, with the what-ifs `planner fleet` runs around it."""
    r = solve(p, c, backend=backend, time_limit=time_limit)
    around(p, c, r, backend=backend, time_limit=time_limit, marginal=marginal, baselines=baselines)
    return r


def _totals(r: PlanResult):
    a = r.answer(1)
    assert a is not None and a.totals is not None
    return a.totals


def _fleet(**over) -> FleetSpec:
    return FleetSpec.model_validate({"workloads": [CHAT, QWEN], "search": SEARCH, "prices": LISTED,
                                     "limits": {"inventory": {"h100-sxm": 3, "l40s": 8}}} | over)


def _solve_all(spec: FleetSpec) -> dict[str, PlanResult]:
    p = resolve_fleet(spec)
    c = build_candidates(p)
    # the oracle honours its time limit (issue 23 item 8): its enumeration of pools may pass a
    # minute on a loaded machine, where it would say time_limit, not disagree
    return {b: solve_fleet(p, c, backend=b, marginal=False, baselines=False, time_limit=600.0 if b == "exhaustive"
                           else 60.0) for b in BACKENDS}


def _check(spec: FleetSpec, r: PlanResult) -> None:
    """The fleet, checked from its own figures: demand met (or the served share reported),
    each replica at or below its capacity at SLO, shared limits kept."""
    lim = spec.limits
    used: dict[str, int] = {}
    for d in r.deployments(1):
        used[d.gpu] = used.get(d.gpu, 0) + d.gpus
        assert d.load["requests_per_s_per_replica"] <= d.load["capacity_requests_per_s_per_replica"] \
            * (1 + 1e-6), d
        assert all(m >= -1e-6 for m in d.slo_margins_ms.values()), d.slo_margins_ms
    for gid, n in used.items():
        assert n <= lim.inventory.get(gid, n), (gid, n)
    if lim.budget_usd_per_hour is not None:
        assert _totals(r).cost_per_hour <= lim.budget_usd_per_hour * (1 + 1e-9)
    a = r.answer(1)
    assert a is not None
    for w in a.workloads:
        mine = [d for d in r.deployments(1) if d.workload == w.workload]
        assert len(mine) <= spec.max_configurations_per_workload
        assert sum(d.share for d in mine) == pytest.approx(w.served_share, abs=1e-9)
        if "served_demand" not in (spec.objective if isinstance(spec.objective, list) else [spec.objective]):
            assert w.served_share == pytest.approx(1.0)


def _values(r: PlanResult) -> list[float]:
    """Every phase's value, the tie-breaks too: the same answer, not only the same optimum."""
    return [p.value for p in r.phases]


@pytest.mark.parametrize("objective, extra", [
    ("cost_per_hour", {}),
    ("served_demand", {"limits": {"inventory": {"h100-sxm": 2, "l40s": 3}}}),
    ("change", {"current": [{"workload": "chat", "gpu": "l40s", "quantization": "fp8", "kv_dtype": "fp8",
                             "replicas": 3}, {"workload": "qwen", "gpu": "H100", "quantization": "fp8",
                                              "kv_dtype": "fp8", "tp": 2, "replicas": 1}]}),
    (["served_demand", "cost_per_hour"], {"limits": {"budget_usd_per_hour": 12, "inventory": {"h100-sxm": 3,
                                                                                             "l40s": 8}}}),
])
def test_every_backend_agrees_with_the_oracle(objective, extra):
    spec = _fleet(objective=objective, **extra)
    results = _solve_all(spec)
    oracle = results["exhaustive"]
    assert oracle.status == "optimal"
    for name, r in results.items():
        assert r.status == "optimal", name
        assert [p.objective for p in r.phases] == [p.objective for p in oracle.phases]
        assert _values(r) == pytest.approx(_values(oracle), rel=1e-5, abs=1e-6), name
        _check(spec, r)


def test_the_shared_inventory_binds_and_a_split_beats_each_workload_alone():
    """The example fleet: planned alone, both workloads want H100s (5 > 3 owned); the joint plan
    splits the chat traffic over H100 and L40S and says what one more H100 is worth."""
    spec = _fleet()
    p = resolve_fleet(spec)
    r = solve_fleet(p, build_candidates(p), backend="highs")
    alone = next(b for b in r.baselines if b.baseline == "alone")
    assert alone.breaks and alone.saving_per_hour is None
    assert any(x.limit == "limits.inventory.h100-sxm" for x in r.answer(1).binding)
    chat = [d for d in r.deployments(1) if d.workload == "chat"]
    assert len({d.gpu for d in chat}) == 2
    more = next(m for m in r.marginal if m.limit == "limits.inventory.h100-sxm")
    assert more.improvement > 0
    assert more.value < _totals(r).cost_per_hour
    for b in r.baselines:
        assert b.saving_per_hour is None or b.saving_per_hour >= -1e-9


def test_one_workload_with_one_configuration_costs_what_plan_finds():
    spec = FleetSpec.model_validate({"workloads": [QWEN], "search": SEARCH, "objective": "cost_per_hour",
                                     "max_configurations_per_workload": 1})
    p = resolve_fleet(spec)
    r = solve_fleet(p, build_candidates(p), backend="cpsat", marginal=False, baselines=False)
    single = PlanSpec.model_validate({"model": QWEN["model"], "workload": {k: QWEN[k] for k in (
        "input_tokens", "output_tokens", "demand")}, "slo": QWEN["slo"], "search": SEARCH,
        "objective": "cost_per_hour"})
    q = resolve(single)
    plan = solve(q, build_candidates(q), backend="exhaustive", top_k=1)
    assert _totals(r).cost_per_hour == pytest.approx(plan.plans[0].cost_per_hour, rel=1e-9)


def test_keeping_todays_optimal_fleet_changes_nothing():
    spec = _fleet()
    p = resolve_fleet(spec)
    best = solve_fleet(p, build_candidates(p), backend="cpsat", marginal=False, baselines=False)
    current = [{"workload": d.workload, "gpu": d.gpu, "quantization": d.quantization,
                "kv_dtype": d.kv_dtype, "tp": d.tp, "pp": d.pp, "ep": d.ep,
                "replicas": d.replicas} for d in best.deployments(1)]
    again = _fleet(objective="change", current=current)
    q = resolve_fleet(again)
    r = solve_fleet(q, build_candidates(q), backend="cpsat", marginal=False, baselines=True)
    change = next(p for p in r.phases if p.objective == "change")
    assert change.value == 0
    today = next(b for b in r.baselines if b.baseline == "current")
    assert today.cost_per_hour == pytest.approx(_totals(best).cost_per_hour)
    a = r.answer(1)
    assert a.moves and all(m.start == 0 and m.stop == 0 and m.keep == m.before for m in a.moves)


def _random_fleet(rng: random.Random) -> FleetSpec:
    models = [("llama-3.1-8b", 512, 128), ("qwen3-32b", 1024, 256), ("llama-3.1-70b", 1024, 128)]
    n = rng.choice([1, 2, 2])
    workloads = []
    for i in range(n):
        m, isl, osl = rng.choice(models)
        workloads.append({"name": f"w{i}", "model": m, "input_tokens": isl, "output_tokens": osl,
                          "demand": {"requests_per_s": round(rng.uniform(1, 60 if m.endswith("8b") else 8), 2)},
                          "slo": {"tpot_ms": rng.choice([30, 50, 80])}, "weight": rng.choice([1.0, 2.0])})
    gpus = rng.sample(["h100-sxm", "l40s", "a100-80gb", "mi300x"], 2)
    limits: dict = {"inventory": {g: rng.randint(1, 8) for g in gpus}}
    if rng.random() < 0.5:
        limits["budget_usd_per_hour"] = round(rng.uniform(5, 40), 1)
    objective = rng.choice(["cost_per_hour", "served_demand", "cost_per_hour"])
    return FleetSpec.model_validate({
        "workloads": workloads, "limits": limits, "objective": objective, "prices": LISTED,
        "max_configurations_per_workload": rng.choice([1, 2]),
        "search": {"gpus": gpus, "quantizations": ["w8a8-fp8"], "kv_dtypes": ["fp8"], "tp": [1, 2, 4], "pp": [1],
                   "batch_levels": [64]}})


@pytest.mark.parametrize("seed", range(12))
def test_generated_fleets_agree_with_the_oracle(seed):
    spec = _random_fleet(random.Random(seed))
    try:
        results = _solve_all(spec)
    except InputError:          # a generated model that fits no searched GPU: nothing to compare
        pytest.skip("no GPU left to search")
    oracle = results["exhaustive"]
    for name, r in results.items():
        assert r.status == oracle.status, (name, r.status, oracle.status)
        if oracle.status == "optimal":
            assert _values(r) == pytest.approx(_values(oracle), rel=1e-5, abs=1e-6), name
            _check(spec, r)


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "instances").glob("fleet_*.yaml")))
def test_shipped_fleets_run(name, capsys):
    with pytest.raises(SystemExit) as e:
        main(["fleet", str(ROOT / "instances" / name), "--json", "--reproducible"])
    assert e.value.code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "optimal" and data["plans"] and data["answers"][0]["totals"]


@pytest.mark.parametrize("doc, path", [
    ({"workloads": [CHAT, CHAT]}, "workloads"),
    ({"workloads": [CHAT], "objective": "change"}, "objective"),
    ({"workloads": [CHAT], "current": [{"workload": "nope", "gpu": "h100", "quantization": "fp8",
                                        "replicas": 1}]}, "current"),
    ({"workloads": [CHAT], "objective": "served_demand"}, "objective"),
    ({"workloads": [{**CHAT, "demand": None}]}, "workloads[0].demand"),
])
def test_bad_fleets_are_located_errors(tmp_path, capsys, doc, path):
    err = _refused(tmp_path, capsys, doc)
    assert err["file"] == str(tmp_path / "fleet.yaml") and (err["path"] or "").startswith(path.split("[")[0]), err


def _refused(tmp_path: Path, capsys, doc: dict) -> dict:
    """`planner fleet --json` on ``doc``: exit 2 and the error object."""
    f = tmp_path / "fleet.yaml"
    f.write_text(json.dumps(doc))
    with pytest.raises(SystemExit) as e:
        main(["fleet", str(f), "--json"])
    assert e.value.code == 2
    return json.loads(capsys.readouterr().out)


def test_a_fleet_file_given_to_plan_says_so(tmp_path, capsys):
    f = tmp_path / "fleet.yaml"
    f.write_text(json.dumps({"workloads": [CHAT]}))
    with pytest.raises(SystemExit) as e:
        main(["plan", str(f)])
    assert e.value.code == 2
    assert "planner fleet" in capsys.readouterr().err


def _fleet_sweep(tmp_path: Path) -> Path:
    base = {"workloads": [CHAT, QWEN], "search": SEARCH, "objective": ["served_demand", "cost_per_hour"],
            "prices": LISTED, "limits": {"budget_usd_per_hour": 10, "inventory": {"h100-sxm": 3, "l40s": 8}}}
    (tmp_path / "fleet.yaml").write_text(json.dumps(base))
    (tmp_path / "sweep.yaml").write_text(json.dumps({
        "base": "fleet.yaml", "grid": {"budget_usd_per_hour": [5, 10, 40], "demand_multiplier": [0.5, 1]},
        "scenarios": [{"id": "dear-h100", "prices": {"h100-sxm": 6.0}}]}))
    return tmp_path / "sweep.yaml"


def test_a_sweep_over_a_fleet_serves_more_with_more_budget_and_engines_agree(tmp_path):
    from planner.schemas.sweep import load_sweep_spec
    from planner.whatif.executors import ProcessExecutor, SerialExecutor
    from planner.whatif.sweep import sweep
    from planner.yamlio import load_yaml

    path = _fleet_sweep(tmp_path)
    spec, doc = load_sweep_spec(str(path))
    base = load_yaml(str(tmp_path / "fleet.yaml"))
    serial = sweep(spec, doc, base, SerialExecutor())
    assert serial.fleet and serial.backend == "milp" and len(serial.rows) == 7
    for m in (0.5, 1):
        rows = sorted((r for r in serial.rows if r["scenario"].get("demand_multiplier") == m),
                      key=lambda r: r["scenario"]["budget_usd_per_hour"])
        shares = [r["served_share"] for r in rows]
        assert len(shares) == 3 and shares == sorted(shares), shares      # more budget never serves less
    for r in serial.rows:
        budget = r["scenario"].get("budget_usd_per_hour", 10)
        assert r["cost_per_hour"] is None or r["cost_per_hour"] <= budget * (1 + 1e-9)
    assert "served_share" in serial.to_csv().splitlines()[0]
    assert sweep(spec, doc, base, ProcessExecutor(2, always=True)).to_json() == serial.to_json()


def test_repricing_a_fleet_table_equals_a_rebuild():
    import numpy as np

    from planner.candidates.table import repriced

    p1 = resolve_fleet(_fleet())
    p2 = resolve_fleet(_fleet(prices={"usd_per_gpu_hour": {"h100-sxm": 5.5, "l40s": 0.9}}))
    fast, full = repriced(build_candidates(p1), p2), build_candidates(p2)
    for name in ("price", "cost_per_hour", "cost_per_million_tokens", "replicas_allowed", "replica_cap"):
        assert np.array_equal(getattr(fast, name), getattr(full, name), equal_nan=True), name


@pytest.mark.parametrize("backend", ["cpsat", "milp", "highs"])
def test_out_of_time_the_greedy_fleet_stands_and_says_it_is_not_proven(backend):
    spec = _fleet(limits={"inventory": {"h100-sxm": 8, "l40s": 8}})      # room for the greedy fleet
    p = resolve_fleet(spec)
    r = solve_fleet(p, build_candidates(p), backend=backend, time_limit=1e-9, marginal=False, baselines=False)
    assert r.status == "feasible" and r.plans
    ph = r.phases[0]
    assert ph.start and r.answer(1).start
    _check(spec, r)
    # the gap it states is against a proven lower bound: no fleet, the optimum included, costs less
    best = solve_fleet(p, build_candidates(p), backend="exhaustive", marginal=False, baselines=False)
    assert ph.lower_bound <= _totals(best).cost_per_hour * (1 + 1e-9) <= ph.value * (1 + 1e-9)
    assert ph.gap == pytest.approx((ph.value - ph.lower_bound) / ph.value)


POOLED = {"workloads": [{**CHAT, "demand": {"requests_per_s": 60}, "pools": ["eu"]}, QWEN], "search": SEARCH,
          "prices": LISTED, "pools": {"eu": {"H100": 1, "l40s": 4}, "us": {"h100-sxm": 4}}}


def test_pools_keep_each_replica_in_one_pool_and_workloads_where_they_may_run():
    spec = FleetSpec.model_validate(POOLED)
    results = _solve_all(spec)
    oracle = results["exhaustive"]
    assert oracle.status == "optimal"
    for name, r in results.items():
        assert _values(r) == pytest.approx(_values(oracle), rel=1e-5), name
        used: dict[str, int] = {}
        for d in r.deployments(1):
            gid, _, pool = d.gpu.partition("@")
            assert pool in ("eu", "us"), d.gpu
            if d.workload == "chat":
                assert pool == "eu"
            used[d.gpu] = used.get(d.gpu, 0) + d.gpus
        owned = resolve_fleet(spec).spec.limits.inventory        # one row per pool copy: h100-sxm@eu, ...
        assert set(owned) == {"h100-sxm@eu", "l40s@eu", "h100-sxm@us"}
        for g, n in used.items():
            assert n <= owned[g], (g, n)
    assert any(b.limit == "pools.eu.h100-sxm" for b in results["milp"].answer(1).binding)


@pytest.mark.parametrize("doc, path", [
    ({**POOLED, "limits": {"inventory": {"l40s": 2}}}, "pools"),
    ({**POOLED, "workloads": [{**CHAT, "pools": ["mars"]}]}, "workloads[0].pools[0]"),
    ({**POOLED, "objective": "change", "current": [{"workload": "qwen", "gpu": "h100", "quantization": "fp8",
                                                    "replicas": 1}]}, "current[0].pool"),
])
def test_bad_pools_are_located_errors(tmp_path, capsys, doc, path):
    err = _refused(tmp_path, capsys, doc)
    assert err["path"] == path, err


def test_a_fleets_pareto_front_trades_one_workloads_latency_for_fleet_cost():
    from planner.whatif.pareto import pareto_fleet

    # 6 H100s: with 3 the cheapest fleet already runs chat on the H100s it has, and no
    # tighter TPOT is feasible (a one-point front)
    r = pareto_fleet(_fleet(limits={"inventory": {"h100-sxm": 6, "l40s": 8}}), workload="chat", x="tpot",
                     statistic="mean", points=4)
    front = r.frontier
    assert len(front) >= 2 and front[0].target_ms is not None         # at least one tightened point
    for a, b in zip(front, front[1:]):                                  # faster costs more
        assert a.latency_ms < b.latency_ms and a.cost > b.cost
    for p in r.points:
        assert p.target_ms is None or p.latency_ms is None or p.latency_ms <= p.target_ms * (1 + 1e-9)
    with pytest.raises(InputError):
        pareto_fleet(_fleet(), workload=None)                           # two workloads: name one



# ----------------------------------------------------------------------------------------
# Prefill/decode disaggregation (docs/disaggregation.md section 7)
# ----------------------------------------------------------------------------------------

POOL_SEARCH = {"gpus": ["h100-sxm"], "quantizations": ["w8a8-fp8"], "kv_dtypes": ["fp8"], "tp": [2, 4], "pp": [1],
               "batch_levels": [64]}
LONG = {"name": "long", "model": "llama-3.1-70b", "input_tokens": 4096, "output_tokens": 256,
        "demand": {"requests_per_s": 4}, "slo": {"ttft_ms": {"p99": 3000}, "tpot_ms": {"p99": 20}}}
SHORT = {"name": "short", "model": "llama-3.1-8b", "input_tokens": 512, "output_tokens": 256,
         "demand": {"requests_per_s": 20}, "slo": {"ttft_ms": {"p99": 1000}, "tpot_ms": {"p99": 50}}}


def _pool_fleet(workloads, mode="auto", **over) -> FleetSpec:
    return FleetSpec.model_validate({"workloads": workloads, "search": POOL_SEARCH, "disaggregation": mode,
                                     "prices": LISTED, "max_configurations_per_workload": 1} | over)


def _check_pools(spec: FleetSpec, r: PlanResult) -> None:
    """A disaggregated fleet from its own figures: every replica at or below its capacity at
    SLO and its own pool's targets; per workload, what the aggregated replicas and the
    prefill pools pass is the served share, and each decode pool passes what its prefill
    pool (same KV format) does."""
    for d in r.deployments(1):
        assert d.load["requests_per_s_per_replica"] <= d.load["capacity_requests_per_s_per_replica"] \
            * (1 + 1e-6), d
        assert all(m >= -1e-6 for m in d.slo_margins_ms.values()), d.slo_margins_ms
        metrics = {k.split(".")[2] for k in d.slo_margins_ms}
        assert metrics <= {"prefill": {"ttft_ms"}, "decode": {"tpot_ms", "itl_ms"}}.get(d.role, metrics), d
        if d.role == "prefill":      # described by its prefill, not a decode step
            assert d.phase == "prefill" and d.mbu is None and d.regime in ("compute-bound", "communication-bound")
    for w in r.answer(1).workloads:
        mine = [d for d in r.deployments(1) if d.workload == w.workload]
        assert sum(d.share for d in mine if d.role != "decode") == pytest.approx(w.served_share, abs=1e-9)
        for kv in {d.kv_dtype for d in mine if d.role != "aggregated"}:
            pre = sum(d.share for d in mine if d.role == "prefill" and d.kv_dtype == kv)
            dec = sum(d.share for d in mine if d.role == "decode" and d.kv_dtype == kv)
            assert pre == pytest.approx(dec, abs=1e-9)
        for role in ("aggregated", "prefill", "decode"):
            assert len([d for d in mine if d.role == role]) <= spec.max_configurations_per_workload


@pytest.mark.parametrize("workloads, mode, over, roles", [
    ([SHORT], "auto", {}, {"aggregated"}),                                            # aggregation wins
    ([LONG], "auto", {}, {"prefill", "decode"}),                                      # disaggregation wins
    # a mix wins: $35.4/h against pools alone $41.3/h and aggregated alone $41.3/h
    ([{**LONG, "demand": {"requests_per_s": 9}, "slo": {"ttft_ms": {"p99": 3000}, "tpot_ms": {"p99": 50}}}],
     "auto", {}, {"aggregated", "prefill", "decode"}),
    ([LONG], "never", {}, {"aggregated"}),
    ([SHORT], "always", {}, {"prefill", "decode"}),
    ([LONG, SHORT], "auto", {}, None),
    ([LONG, SHORT], "auto", {"objective": "served_demand", "limits": {"inventory": {"h100-sxm": 6}}}, None),
    ([LONG, {**SHORT, "disaggregation": "never"}], "always", {"limits": {"budget_usd_per_hour": 40}}, None),
])
def test_every_backend_agrees_with_the_oracle_on_disaggregated_layouts(workloads, mode, over, roles):
    spec = _pool_fleet(workloads, mode, **over)
    results = _solve_all(spec)
    oracle = results["exhaustive"]
    assert oracle.status == "optimal"
    for name, r in results.items():
        assert r.status == "optimal", name
        assert _values(r) == pytest.approx(_values(oracle), rel=1e-5, abs=1e-6), name
        _check_pools(spec, r)
    if roles is not None:
        assert {d.role for d in oracle.deployments(1) if d.workload == workloads[0]["name"]} == roles


def test_a_mixed_layout_is_found_when_it_is_cheapest():
    """9 req/s of the long-prompt 70B at TPOT p99 50 ms: pools alone cost $41.3/hour and
    aggregated replicas alone $41.3 (disaggregation "always", "never"); pools topped up with an
    aggregated replica cost $35.4 (the oracle agrees, above), and the comparison says so."""
    spec = _pool_fleet([{**LONG, "demand": {"requests_per_s": 9}, "slo": {"ttft_ms": {"p99": 3000},
                                                                          "tpot_ms": {"p99": 50}}}])
    p = resolve_fleet(spec)
    r = solve_fleet(p, build_candidates(p), backend="highs", marginal=False, baselines=False)
    assert {d.role for d in r.deployments(1)} == {"aggregated", "prefill", "decode"}
    _check_pools(spec, r)
    assert _totals(r).cost_per_hour == pytest.approx(35.4)


def test_pool_rows_are_the_physics_pools_held_to_their_own_targets():
    from planner.candidates.load import load_targets, workload_of
    from planner.physics import disagg
    from planner.physics.load import Target, engine, step_physics
    p = resolve_fleet(_pool_fleet([LONG]))
    c = build_candidates(p)
    slot = p.slots[0]
    for role, metric, other in ((1, "ttft_p99", "tpot_p99"), (2, "tpot_p99", "ttft_p99")):
        j = int(next(i for i in range(len(c)) if c.role[i] == role and c.meets_slo[i]))
        chk = {k.name: k for k in c.slo}
        assert chk[other].target_s[j] == float("inf") and np.isfinite(chk[metric].target_s[j])
        phys = step_physics(slot.model, p.table, c.configs.take([j]), p.assumptions)
        eng, wl = engine(phys), workload_of(slot)
        mine = [Target(t.metric, t.statistic, t.seconds) for t in load_targets(slot)
                if t.metric in disagg.PREFILL_METRICS + disagg.DECODE_METRICS
                and (t.metric in disagg.PREFILL_METRICS) == (role == 1)]
        cap = disagg.prefill_capacity(phys, eng, wl, mine, "inter") if role == 1 else \
            disagg.decode_capacity(phys, eng, wl, mine, disagg.kv_transfer_time(phys, wl.isl, "inter"))
        assert c.capacity[j] == pytest.approx(cap.rate[0] * 256, rel=1e-9)
    assert "role=prefill" in c.label(int(np.nonzero(c.role == 1)[0][0]))


def test_never_adds_no_rows():
    p = resolve_fleet(_pool_fleet([SHORT], "never"))
    q = resolve_fleet(_pool_fleet([SHORT], "auto"))
    c, d = build_candidates(p), build_candidates(q)
    assert (c.role == 0).all() and len(d) == 3 * len(c) and not c.has_pools
    assert np.array_equal(c.capacity, d.capacity[d.role == 0])


@pytest.mark.parametrize("workload, path", [
    ({**SHORT, "demand": {"concurrency": 64}, "disaggregation": "auto"}, "workloads"),
    ({**SHORT, "slo": {"e2e_latency_ms": 9000}, "disaggregation": "always"}, "workloads"),
])
def test_disaggregation_refuses_what_it_cannot_split(tmp_path, capsys, workload, path):
    f = tmp_path / "fleet.yaml"
    f.write_text(json.dumps({"workloads": [workload]}))
    with pytest.raises(SystemExit) as e:
        main(["fleet", str(f), "--json"])
    assert e.value.code == 2
    err = json.loads(capsys.readouterr().out)
    assert (err["path"] or "").startswith(path) and "disaggregation" in err["path"], err


@pytest.mark.parametrize("name, winner, within", [("fleet_disagg_wins.yaml", "disaggregated", False),
                                                  ("fleet_disagg_loses.yaml", "aggregated", False),
                                                  ("fleet_disagg_tie.yaml", "disaggregated", True)])
def test_shipped_disaggregation_fleets_say_which_mode_wins(name, winner, within, capsys):
    with pytest.raises(SystemExit) as e:
        main(["fleet", str(ROOT / "instances" / name), "--json", "--reproducible", "--no-baselines", "--marginal"])
    assert e.value.code == 0
    (x,) = json.loads(capsys.readouterr().out)["disaggregation"]
    assert x["winner"] == winner and x["within_uncertainty"] == within, x
    assert x["aggregated"]["cost_per_hour"] and x["disaggregated"]["cost_per_hour"]


def test_a_fleet_json_launches_every_deployment_with_its_pool_role(tmp_path, capsys):
    out = tmp_path / "fleet.json"
    with pytest.raises(SystemExit) as e:
        main(["fleet", str(ROOT / "instances" / "fleet_disagg_wins.yaml"), "--no-marginal", "--no-baselines",
              "--output", str(out)])
    assert e.value.code == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["launch", str(out), "--json"])
    assert e.value.code == 0
    launches = json.loads(capsys.readouterr().out)["launches"]
    fleet = json.loads(out.read_text())
    assert {"prefill", "decode"} <= {p["role"] for p in fleet["plans"]}
    assert len({ln["script"] for ln in launches}) == len(fleet["plans"])       # one script stem per deployment
    for ln in launches:
        role = ln["role"]
        flags = {a["flag"]: a["value"] for a in ln["args"]}
        if ln["engine"] == "vllm":
            assert ln["ok"] and (("--kv-transfer-config" in flags) == (role != "aggregated")), ln
        elif ln["engine"] == "sglang":
            assert ln["ok"] and flags.get("--disaggregation-mode") == (None if role == "aggregated" else role), ln
        elif role != "aggregated":      # a TensorRT-LLM worker: its KV moved by the cache transceiver
            assert ln["ok"] and ln["yaml"]["cache_transceiver_config"] == {"backend": "DEFAULT"}, ln
            assert ln["yaml"].get("disable_overlap_scheduler", False) == (role == "prefill")


def test_served_demand_after_cost_is_refused_where_it_would_serve_nothing(tmp_path, capsys):
    err = _refused(tmp_path, capsys, {"workloads": [CHAT], "search": SEARCH, "objective": ["cost_per_hour",
                                                                                           "served_demand"],
                                      "limits": {"budget_usd_per_hour": 20}})
    assert err["path"] == "objective" and "first" in err["message"]


def test_a_price_in_one_pool_applies_there_only():
    spec = FleetSpec.model_validate({**POOLED, "prices": {"usd_per_gpu_hour": {**LISTED["usd_per_gpu_hour"],
                                                                              "h100-sxm@eu": 0.5}}})
    p = resolve_fleet(spec)
    price = dict(zip(p.table.ids, p.prices))
    assert price["h100-sxm@eu"] == 0.5 and price["h100-sxm@us"] != 0.5


def test_launch_refuses_an_empty_fleet_and_an_out_file(tmp_path, capsys):
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"status": "infeasible", "objective": "cost_per_hour", "backend": "milp", "plans": [],
                                 "searched_configurations": 0, "solve_seconds": None, "gap": None,
                                 "excluded_gpus": {}, "inputs": {}}))
    with pytest.raises(SystemExit) as e:
        main(["launch", str(empty)])
    assert e.value.code == 2 and "nothing to launch" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["launch", str(empty), "--out", str(empty)])
    assert e.value.code == 2


def test_the_oracle_refuses_a_fleet_too_large_to_enumerate():
    spec = _fleet(max_configurations_per_workload=4, search={**SEARCH, "batch_levels": [8, 16, 32, 64, 128]},
                  limits={"inventory": {"h100-sxm": 64, "l40s": 64}})
    p = resolve_fleet(spec)
    with pytest.raises(InputError, match="exhaustive"):
        solve_fleet(p, build_candidates(p), backend="exhaustive", marginal=False, baselines=False)


def test_a_phase_table_shares_only_terms_a_fresh_computation_gives():
    """constraints.objective.share_terms hands a table's memoised objective terms to each phase
    (planner/plan/solve.py rank_one) and to choice.limit's table: sound only while no term reads
    what a phase changes (objective, replica domain, bounds, partial service, enforced limits).
    A table made any other way (other limits or prices) starts with no memo of its own."""
    from dataclasses import replace

    from constraints import objective
    from planner.candidates.objectives import OBJECTIVES
    from planner.candidates.table import with_limits, with_objective

    base = build_candidates(resolve_fleet(_fleet()))
    names = [n for n in OBJECTIVES if n != "change" or base.current is not None]

    def same(a, b) -> bool:
        return (a.dimension == b.dimension and np.array_equal(a.x, b.x, equal_nan=True)
                and np.array_equal(a.y, b.y, equal_nan=True) and a.scalars.keys() == b.scalars.keys()
                and all(np.array_equal(np.asarray(a.scalars[k]), np.asarray(b.scalars[k])) for k in a.scalars))

    for name in names:
        objective.terms(base, name)
    for phase in ("cost_per_hour", "served_demand", "gpus", "order", "workload_order"):
        for partial in (False, True):
            for limited in (None, (), (0,)):
                c = objective.share_terms(replace(with_objective(base, phase), partial=partial,
                                                  bounds=(("cost_per_hour", 1.0),), limited=limited), base)
                for name in names:
                    assert same(objective.terms(c, name), OBJECTIVES[name].terms(c)), (phase, partial, limited, name)
    other = (with_limits(base, replace(base.limits, max_gpus=3)),
             replace(base, cost_per_hour=base.cost_per_hour * 2, price=base.price * 2))
    for c in other:
        assert "_terms" not in c.__dict__
    assert not same(objective.terms(other[1], "cost_per_hour"), objective.terms(base, "cost_per_hour"))
