"""Physics once per distinct case (planner/candidates/cache.py, issue 26): the candidate table
of a fleet computes each distinct (model, lengths, SLO, arrival, configuration, batch) case
once, and a cache kept across builds computes nothing twice, without changing a figure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass

import numpy as np

import planner.candidates.cache as cache_module
from planner.candidates.cache import PhysicsCache, row_hashes, row_matrix
from planner.candidates.table import build_candidates
from planner.resolve.problem import resolve_fleet
from planner.schemas.fleet import FleetSpec

SEARCH = {"gpus": ["h100-sxm", "l40s"], "quantizations": ["w8a8-fp8", "w16a16"], "kv_dtypes": ["fp8"],
          "tp": [1, 2], "pp": [1], "max_batch": 64}
CHAT = {"name": "chat", "model": "llama-3.1-8b", "input_tokens": 512, "output_tokens": 128,
        "demand": {"requests_per_s": 40}, "slo": {"tpot_ms": 40, "ttft_ms": {"p99": 1500}}}


def _spec(*workloads: dict) -> FleetSpec:
    return FleetSpec.model_validate({"workloads": list(workloads), "search": SEARCH,
                                     "limits": {"inventory": {"h100-sxm": 8, "l40s": 8},
                                                "rent_outside_inventory": True},
                                     "objective": "cost_per_hour"})


def _same(x, y, path: str = "c") -> list[str]:
    """Paths where two tables differ, bit for bit (NaN equal to NaN); a field out of equality
    (``Candidates.physics``: the cache a table was built with) is not compared."""
    if is_dataclass(x) and not isinstance(x, type):
        return [d for f in fields(x) if f.compare
                for d in _same(getattr(x, f.name), getattr(y, f.name), f"{path}.{f.name}")]
    if isinstance(x, np.ndarray):
        ok = x.shape == y.shape and x.dtype == y.dtype and \
            np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
        return [] if ok else [path]
    if isinstance(x, Mapping):      # a dict, or a gathered table's statistics (read when used)
        return [path] if set(x) != set(y) else [d for k in x for d in _same(x[k], y[k], f"{path}[{k}]")]
    if isinstance(x, (tuple, list)):
        return [path] if len(x) != len(y) else [d for i, (u, v) in enumerate(zip(x, y))
                                                for d in _same(u, v, f"{path}[{i}]")]
    return [] if x == y else [path]


def _rows(c, s: int) -> dict[str, np.ndarray]:
    """The physics and capacity of slot s's rows (what the cache shares)."""
    rows = c.slot_rows(s)
    assert c.load is not None
    out = {f"ev.{f.name}": getattr(c.ev, f.name)[rows] for f in fields(c.ev)}
    out |= {f"load.{k}": v[rows] for k, v in c.load.stats.items()}
    return out | {"capacity": c.capacity[rows], "replicas_needed": c.replicas_needed[rows],
                  "batch": c.configs.batch[rows]}


def test_a_workload_in_a_fleet_has_the_physics_it_has_alone():
    # two workloads with the same physics and different demands share their cases; each row
    # is what a fleet of that workload alone computes, bit for bit
    other = CHAT | {"name": "chat2", "demand": {"requests_per_s": 7}}
    cache = PhysicsCache()
    both = build_candidates(resolve_fleet(_spec(CHAT, other)), cache=cache)
    assert cache.reused > 0
    for s, w in enumerate((CHAT, other)):
        alone = build_candidates(resolve_fleet(_spec(w)))
        got, want = _rows(both, s), _rows(alone, 0)
        assert set(got) == set(want)
        bad = [k for k in want if not np.array_equal(got[k], want[k], equal_nan=want[k].dtype.kind == "f")]
        assert not bad, bad


def test_a_cache_kept_across_builds_computes_nothing_twice_and_changes_nothing():
    p = resolve_fleet(_spec(CHAT, CHAT | {"name": "rag", "input_tokens": 2048, "demand": {"requests_per_s": 3}}))
    fresh = build_candidates(p)
    cache = PhysicsCache()
    first = build_candidates(p, cache=cache)
    computed = cache.computed
    again = build_candidates(p, cache=cache)
    assert cache.computed == computed            # every case read back
    assert _same(fresh, first) == [] and _same(fresh, again) == []


def test_rows_sharing_a_hash_are_never_confused(monkeypatch):
    # every row hashed alike: the cache sees different rows behind one hash and computes them
    p = resolve_fleet(_spec(CHAT, CHAT | {"name": "code", "output_tokens": 512}))
    want = build_candidates(p)
    monkeypatch.setattr(cache_module, "row_hashes", lambda m: np.zeros(len(m), dtype=np.uint64))
    assert _same(want, build_candidates(p)) == []


def test_row_hashes_follow_the_rows():
    p = resolve_fleet(_spec(CHAT))
    m = row_matrix(build_candidates(p).configs)
    h = row_hashes(m)
    _, first = np.unique(m, axis=0, return_index=True)
    assert len(np.unique(h)) == len(first)      # distinct rows, distinct hashes, here
    assert np.array_equal(row_hashes(m[::-1]), h[::-1])


def test_a_table_holds_only_the_physics_it_reads_and_reads_it_exactly():
    # the table indexes the cache's stores: a field nobody read is not held; read, it is what
    # the physics gives those rows computed directly, bit for bit; pickled (a sweep's worker),
    # it is the plain dataclass with every field
    import pickle

    from planner.physics.perf import Evaluation, evaluate
    p = resolve_fleet(_spec(CHAT, CHAT | {"name": "rag", "input_tokens": 2048, "demand": {"requests_per_s": 3}}))
    c = build_candidates(p)
    assert "t_kv" not in vars(c.ev) and "share_kv" not in vars(c.ev)
    for s in range(2):
        rows = c.slot_rows(s)
        direct = evaluate(p.slots[s].model, p.table, c.configs.take(rows), p.assumptions)
        assert _same(direct, Evaluation(**{f.name: getattr(c.ev, f.name)[rows] for f in fields(c.ev)})) == []
    plain = pickle.loads(pickle.dumps(c))
    assert type(plain.ev) is Evaluation and _same(c, plain) == []


def test_scatter_places_each_part_and_fills_missing_keys():
    from dataclasses import dataclass

    from planner.candidates.cache import scatter

    @dataclass(frozen=True)
    class Part:
        a: np.ndarray
        d: dict

    x = Part(np.array([1, 2]), {"k": np.array([0.5, 1.5])})
    y = Part(np.array([3.5]), {"j": np.array([9.0])})
    got = scatter(3, [(np.array([2, 0]), x), (np.array([1]), y)])
    assert got.a.dtype == np.float64 and got.a.tolist() == [2.0, 3.5, 1.0]
    assert got.d["k"].tolist() == [1.5, np.inf, 0.5] and got.d["j"].tolist() == [np.inf, 9.0, np.inf]
    nested = scatter(4, [(np.array([3, 1, 0]), got), (np.array([2]), y)])
    assert nested.a.tolist() == [1.0, 3.5, 3.5, 2.0] and nested.d["j"].tolist() == [np.inf, 9.0, 9.0, np.inf]


def test_a_cache_kept_across_scenarios_follows_their_limits():
    # a sweep's scenarios share one cache: the batch levels a demand needs depend on how many
    # replicas the limits allow, so a scenario with other limits gets its own, as built alone
    loose = _spec(CHAT | {"demand": {"requests_per_s": 60}})
    tight = loose.model_copy(update={"limits": loose.limits.model_copy(update={"budget_usd_per_hour": 12.0})})
    cache = PhysicsCache()
    build_candidates(resolve_fleet(loose), cache=cache)
    shared = build_candidates(resolve_fleet(tight), cache=cache)
    assert _same(build_candidates(resolve_fleet(tight)), shared) == []


def test_operating_points_together_are_each_as_alone():
    # describe computes a fleet answer's deployments of one model together: each row at its
    # own workload and rate is what operating_point gives it alone, bit for bit
    from planner.candidates.load import operating_point, operating_points
    rag = CHAT | {"name": "rag", "input_tokens": 2048, "demand": {"requests_per_s": 3}}
    p = resolve_fleet(_spec(CHAT, rag))
    c = build_candidates(p)
    rows = np.array([c.slot_rows(0)[3], c.slot_rows(1)[5], c.slot_rows(1)[40]])
    rates = np.array([0.7, 2.5, 11.0])
    slots = tuple(p.slots[int(s)] for s in c.slot[rows])
    together = operating_points(slots, p.table, c.configs.take(rows), p.assumptions, rate=rates)
    for i, j in enumerate(rows):
        alone = operating_point(slots[i], p.table, c.configs.take(np.array([j])), p.assumptions, rate=float(rates[i]))
        assert together[i] == alone
    assert together[1] != together[2]


def test_workloads_of_one_model_and_lengths_with_different_demands_keep_their_own_spares_and_limits():
    """The most replicas the limits allow follow, through a spot offer's spares, the demand: the
    memo shared by workloads of one model and lengths must key them by it (a fleet's table equals
    each workload's own table, row for row)."""
    def spec(rates):
        return FleetSpec.model_validate({
            "workloads": [{"name": f"w{i}", "model": "llama-3.1-8b", "input_tokens": 1024, "output_tokens": 256,
                           "demand": {"requests_per_s": r}, "slo": {"ttft_ms": {"p99": 1500}, "tpot_ms": 50}}
                          for i, r in enumerate(rates)],
            "search": {"gpus": ["h100-sxm", "l40s"], "quantizations": ["w8a8-fp8"], "kv_dtypes": ["fp8"],
                       "tp": [1, 2], "pp": [1], "max_batch": 256},
            "objective": "cost_per_hour", "max_configurations_per_workload": 2,
            "prices": {"offers": {"h100-sxm": [
                {"kind": "on_demand", "usd_per_gpu_hour": 3.0},
                {"kind": "spot", "usd_per_gpu_hour": 1.2,
                 "preemption": {"availability": 0.999, "replica_availability": 0.9}}]}},
            "limits": {"budget_usd_per_hour": 900}})
    rates = [3, 160, 900]
    whole = build_candidates(resolve_fleet(spec(rates)))
    for k, r in enumerate(rates):
        alone = build_candidates(resolve_fleet(spec([r])))
        mine = whole.slot == k
        for name in ("replicas_needed", "replicas_allowed", "replica_cap", "spares", "capacity", "meets_slo"):
            np.testing.assert_array_equal(np.asarray(getattr(whole, name))[mine], np.asarray(getattr(alone, name)),
                                          err_msg=name)


def test_a_picked_view_reads_rows_from_the_stores_with_the_figures_of_the_whole_fields():
    # an answer's description reads some thirty physics fields at its deployments' rows: the
    # picked view reads those rows from the cache's stores, not a gathered copy of each field
    from planner.candidates.cache import picked
    c = build_candidates(resolve_fleet(_spec(CHAT, {**CHAT, "name": "rag", "input_tokens": 2048},
                                             {**CHAT, "name": "big", "model": "qwen3-32b"})))
    whole = build_candidates(resolve_fleet(_spec(CHAT, {**CHAT, "name": "rag", "input_tokens": 2048},
                                                 {**CHAT, "name": "big", "model": "qwen3-32b"})))
    rows = [3, len(c) // 2, len(c) - 1]
    for part, other in ((c.ev, whole.ev), (c.load, whole.load)):
        view = picked(part, rows)
        read_before = set(vars(part))
        for f in fields(other):
            want = getattr(other, f.name)
            if isinstance(want, Mapping):
                got = getattr(view, f.name)
                for key in want:
                    assert np.array_equal(np.array([got[key][j] for j in rows], dtype=float),
                                          np.array([want[key][j] for j in rows], dtype=float), equal_nan=True), key
                continue
            got = getattr(view, f.name)
            assert all(np.array_equal(got[j], want[j], equal_nan=want.dtype.kind == "f") for j in rows), f.name
            assert np.array_equal(got[[rows[0], rows[2]]], want[[rows[0], rows[2]]],
                                  equal_nan=want.dtype.kind == "f"), f.name
        assert set(vars(part)) == read_before       # no field gathered whole for those rows
        # another row, or the whole field: read whole, the same figures
        f0 = "gpus" if part is c.ev else "rate"
        assert getattr(view, f0)[0] == getattr(other, f0)[0]
        assert np.array_equal(np.asarray(getattr(view, f0)) * 2, getattr(other, f0) * 2)
        assert np.array_equal(getattr(view, f0) <= 1.0, getattr(other, f0) <= 1.0)
    assert picked(c.configs, rows) is c.configs          # a plain result is itself
    assert np.array_equal(picked(c.load, rows).get("tpot", "mean")[rows[1]], whole.load.get("tpot", "mean")[rows[1]])


def test_workloads_of_one_model_computed_in_one_pass_have_the_figures_they_have_alone(monkeypatch):
    # the load model of workloads of one model with the same kinds of target runs as one
    # search (planner/candidates/load.py row_loads), each row under its own lengths and
    # targets: every row is what a fleet of that workload alone computes, bit for bit; a
    # workload with other kinds of target, or a closed loop's clients, is searched alone
    import planner.physics.load as physics_load
    rag = CHAT | {"name": "rag", "input_tokens": 2048, "output_tokens": 256, "demand": {"requests_per_s": 3},
                  "slo": {"tpot_ms": 60, "ttft_ms": {"p99": 3000}}}
    tpot_only = CHAT | {"name": "tpot", "input_tokens": 1024, "slo": {"tpot_ms": 30}}
    clients = CHAT | {"name": "clients", "input_tokens": 256, "demand": {"concurrency": 16}}
    searches = []
    capacity = physics_load.capacity_at_slo
    monkeypatch.setattr(physics_load, "capacity_at_slo", lambda *a, **k: searches.append(len(a[0])) or capacity(*a, **k))
    import planner.candidates.load as candidates_load
    monkeypatch.setattr(candidates_load, "capacity_at_slo", physics_load.capacity_at_slo)
    work = (CHAT, rag, tpot_only, clients)
    both = build_candidates(resolve_fleet(_spec(*work)))
    assert len(searches) == 3            # chat and rag together; the TPOT-only and the clients' alone
    for s, w in enumerate(work):
        alone = build_candidates(resolve_fleet(_spec(w)))
        got, want = _rows(both, s), _rows(alone, 0)
        assert set(got) == set(want)
        bad = [k for k in want if not np.array_equal(got[k], want[k], equal_nan=want[k].dtype.kind == "f")]
        assert not bad, (w["name"], bad)
        assert np.array_equal(both.load.binding[both.slot_rows(s)], alone.load.binding[alone.slot_rows(0)])


def test_rows_together_reads_back_what_each_key_has_and_computes_the_rest_in_one_call():
    c = build_candidates(resolve_fleet(_spec(CHAT))).configs
    a, b = c.take(np.arange(0, 6)), c.take(np.arange(4, 10))
    calls: list[list[int]] = []

    def compute(fresh: list[np.ndarray]) -> list[object]:
        calls.append([len(f) for f in fresh])
        return [_Batch(x=a.batch[f] if k == 0 else b.batch[f] * 10) for k, f in enumerate(fresh)]
    cache = PhysicsCache()
    cache.rows("a", a.take(np.arange(3)), lambda i: _Batch(x=a.batch[i]))
    got = cache.rows_together([("a", a), ("b", b)], compute)
    assert calls == [[3, 6]]          # the key a's first three rows read back
    assert np.array_equal(got[0].x, a.batch) and np.array_equal(got[1].x, b.batch * 10)
    again = cache.rows_together([("a", a), ("b", b)], compute)
    assert calls == [[3, 6]] and np.array_equal(again[1].x, b.batch * 10)


@dataclass(frozen=True)
class _Batch:
    x: np.ndarray


def test_a_closed_loop_and_an_open_loop_of_the_same_lengths_and_targets_do_not_share_their_load():
    # the load key holds what the load model reads: a closed loop's clients are bisected under
    # the closed loop (candidates/load.py _closed_clients), an open loop's are Little's law at
    # its capacity; an open and a closed workload with the same model, lengths and targets
    # once shared one key, the second taking the first's clients (and capacity), either order
    chat = CHAT | {"input_tokens": 1024, "output_tokens": 256, "demand": {"requests_per_s": 5}}
    closed = chat | {"name": "closed", "demand": {"concurrency": 16}}
    _each_alone_in_either_order(chat, closed)


def _each_alone_in_either_order(a: dict, b: dict) -> None:
    """Each of two workloads in a fleet of both (either order) has the capacity, rate and
    clients it has alone, bit for bit."""
    for work in ((a, b), (b, a)):
        both = build_candidates(resolve_fleet(_spec(*work)))
        for s, w in enumerate(work):
            alone = build_candidates(resolve_fleet(_spec(w)))
            assert both.load is not None and alone.load is not None
            mine, its = both.slot_rows(s), alone.slot_rows(0)
            assert np.array_equal(both.capacity[mine], alone.capacity[its]), w["name"]
            assert np.array_equal(both.load.rate[mine], alone.load.rate[its]), w["name"]
            assert np.array_equal(both.load.clients[mine], alone.load.clients[its]), w["name"]


def test_a_model_s_workloads_searched_together_differ_in_everything_but_the_kinds_of_target():
    # one pass of row_loads over workloads that share only the model, the kinds of target and
    # the utilisation ceiling: prompt spreads (a CV, a percentile, a histogram: the prefill
    # time's moments), outputs, bursty and Poisson arrivals, target seconds, a tokens/s demand
    # and an auto-disaggregated one (its aggregated rows in the pass, its pool rows alone);
    # every row, its binding target included, is what the workload alone computes
    import planner.candidates.table as table
    passes: list[int] = []
    row_loads = table.row_loads
    slo = {"max_utilization": 0.7}
    work = (CHAT | {"name": "a", "slo": slo | {"ttft_ms": {"p99": 800}, "tpot_ms": 30},
                    "input_tokens": {"mean": 1000, "cv": 2.0}, "demand": {"requests_per_s": 9,
                                                                            "arrival": {"process": "gamma", "cv": 3.0}}},
            CHAT | {"name": "b", "slo": slo | {"ttft_ms": {"p99": 3000}, "tpot_ms": 120},
                    "input_tokens": {"histogram": [[128, 3.0], [512, 2.0], [4000, 1.0]]}, "output_tokens": 512},
            CHAT | {"name": "c", "slo": slo | {"ttft_ms": {"p99": 200}, "tpot_ms": 15},
                    "input_tokens": {"mean": 2048, "p90": 3686}, "demand": {"output_tokens_per_s": 900.0}},
            CHAT | {"name": "d", "slo": slo | {"ttft_ms": {"p99": 1500}, "tpot_ms": 60}, "input_tokens": 4096,
                    "output_tokens": 16, "disaggregation": "auto"})
    try:
        table.row_loads = lambda slots, *a: passes.append(len(slots)) or row_loads(slots, *a)
        whole = build_candidates(resolve_fleet(_spec(*work)))
    finally:
        table.row_loads = row_loads
    assert 4 in passes
    assert whole.load is not None
    for s, w in enumerate(work):
        alone = build_candidates(resolve_fleet(_spec(w)))
        assert alone.load is not None
        got, want = _rows(whole, s), _rows(alone, 0)
        bad = [k for k in want if not np.array_equal(got[k], want[k], equal_nan=want[k].dtype.kind == "f")]
        assert not bad, (w["name"], bad)
        mine, its = whole.slot_rows(s), alone.slot_rows(0)
        for name in ("rate", "binding", "clients", "utilization", "tokens_per_s"):
            assert np.array_equal(getattr(whole.load, name)[mine], getattr(alone.load, name)[its]), (w["name"], name)
        assert np.array_equal(whole.role[mine], alone.role[its])


def test_a_trace_s_cache_per_kv_pool_and_its_fixed_lru_do_not_share_their_load():
    # a trace's prefix cache without cache_blocks is an LRU of each configuration's KV pool
    # (CacheSpec.cached_at), with a large cache_blocks one fixed figure: the unbounded cache's
    # mean tokens are the same, and the load key held only that figure, so two such workloads
    # of one trace shared one key, the second taking the first's capacity (either order)
    from pathlib import Path
    trace = str(Path(__file__).resolve().parents[1] / "instances" / "traces" / "mooncake-conversation-sample.jsonl")
    base = {"model": "llama-3.1-8b", "trace": trace, "slo": {"ttft_ms": {"p99": 3000}, "tpot_ms": 60}}
    pool = base | {"name": "pool", "prefix_cache": {"from_trace": True}}
    blocks = base | {"name": "blocks", "prefix_cache": {"from_trace": True}, "cache_blocks": 10_000_000}
    p = resolve_fleet(_spec(pool, blocks))
    assert p.slots[0].cache is not None and p.slots[1].cache is not None
    assert p.slots[0].cache.cached_tokens == p.slots[1].cache.cached_tokens     # the case the key missed
    _each_alone_in_either_order(pool, blocks)


def test_an_answer_s_operating_points_are_kept_per_case_and_load_in_either_order():
    # describe keeps each deployment's figures at its load in the table's cache: read back for
    # the same case at the same load, never for a workload that differs in what the figures
    # read (here its arrivals: Gamma with cv 3 against Poisson), whichever is described first
    from planner.candidates.load import operating_points
    from planner.plan.describe import operating_points as described
    bursty = CHAT | {"demand": {"requests_per_s": 40, "arrival": {"process": "gamma", "cv": 3.0}}}
    specs = {"poisson": _spec(CHAT), "bursty": _spec(bursty)}
    for order in (("poisson", "bursty"), ("bursty", "poisson")):
        cache = PhysicsCache()
        seen = {}
        for name in order:
            p = resolve_fleet(specs[name])
            c = build_candidates(p, cache=cache)
            j = int(np.flatnonzero(c.meets_slo)[0])
            alone = operating_points((p.slots[0],), p.table, c.configs.take(np.array([j])), p.assumptions,
                                     rate=np.array([40.0 / 4]))[0]
            memos = len(cache.memos)
            first = described(p, c, [(j, 4, 1.0)])[j]
            assert len(cache.memos) == memos + 1          # computed once ...
            again = described(p, c, [(j, 4, 1.0)])[j]
            assert len(cache.memos) == memos + 1          # ... and read back
            assert first == alone and again == alone
            seen[name] = (row_matrix(c.configs.take(np.array([j]))).tolist(), first)
        assert seen["poisson"][0] == seen["bursty"][0]        # the same case, at the same load
        assert seen["poisson"][1]["ttft_p99"] != seen["bursty"][1]["ttft_p99"]


def test_batch_searches_read_from_one_grid_find_the_batches_a_plain_bisection_finds(monkeypatch):
    # the largest feasible and the smallest demand-meeting batch of each configuration, bisected
    # over one call's grid of every batch, are those of the bisection that calls the physics each
    # step: the same table, bit for bit, whichever order the caches saw them in
    import planner.candidates.search as search
    import planner.candidates.table as table
    from planner.physics.perf import evaluate
    from planner.resolve.problem import resolve
    from planner.schemas.plan import PlanSpec
    spec = PlanSpec.model_validate({
        "model": "llama-3.1-8b", "workload": {"input_tokens": 700, "output_tokens": 150,
                                              "demand": {"output_tokens_per_s": 3000}},
        "slo": {"tpot_ms": 25, "ttft_ms": 600}, "objective": "cost_per_hour",
        "search": SEARCH | {"gpus": ["h100-sxm", "l40s", "l4"], "max_batch": 48}})
    p = resolve(spec)
    gridded = build_candidates(p)
    monkeypatch.setattr(search, "GRID_ROWS", 0)
    plain = build_candidates(p)
    assert _same(plain, gridded) == []
    assert (gridded.configs.batch % 8 != 0).any()       # the searches found batches off the levels
    base = table._slot_bases(p, [p.slots[0]])[0][0]
    monkeypatch.setattr(search, "GRID_ROWS", 4096)
    probe = table._probe(p, p.slots[0], base)
    grid = search.grid(probe, len(base), 48)
    index, batch = np.array([0, 3, 3, len(base) - 1]), np.array([1.0, 17.0, 48.0, 30.0])
    assert _same(evaluate(p.slots[0].model, p.table, table.with_batch(base.take(index), batch), p.assumptions),
                 grid(index, batch)) == []


def test_an_operating_point_of_n_clients_is_never_read_for_n_requests_per_s():
    # the same case at the same number under a closed loop (clients a replica) and an open one
    # (requests/s a replica): the kind of load is in the key, so whichever is described first,
    # each reads its own figures, those computed with a cache of its own
    from planner.plan.describe import operating_points as described
    specs = {"open": _spec(CHAT | {"demand": {"requests_per_s": 40}}),
             "closed": _spec(CHAT | {"demand": {"concurrency": 40}})}
    alone = {}
    for name, s in specs.items():
        p = resolve_fleet(s)
        c = build_candidates(p)
        j = int(np.flatnonzero(c.meets_slo)[0])
        alone[name] = (row_matrix(c.configs.take(np.array([j]))).tolist(), described(p, c, [(j, 4, 1.0)])[j])
    assert alone["open"][0] == alone["closed"][0]          # one case, 10 of each a replica
    assert alone["open"][1]["rate"] != alone["closed"][1]["rate"]
    for order in (("open", "closed"), ("closed", "open")):
        cache = PhysicsCache()
        for name in order:
            p = resolve_fleet(specs[name])
            c = build_candidates(p, cache=cache)
            j = int(np.flatnonzero(c.meets_slo)[0])
            assert described(p, c, [(j, 4, 1.0)])[j] == alone[name][1], (order, name)


def test_a_trace_s_cache_per_kv_pool_and_its_fixed_lru_do_not_share_an_operating_point():
    # the two prefix caches of test_a_trace_s_cache_per_kv_pool_and_its_fixed_lru_do_not_share_their_load
    # share the unbounded cache's figure (``workload_of``) but not the tokens each configuration
    # caches: a deployment of one case at one load reads its own figures, either order
    from pathlib import Path

    from planner.plan.describe import operating_points as described
    trace = str(Path(__file__).resolve().parents[1] / "instances" / "traces" / "mooncake-conversation-sample.jsonl")
    base = {"model": "llama-3.1-8b", "trace": trace, "slo": {"ttft_ms": {"p99": 3000}, "tpot_ms": 60}}
    specs = {"pool": _spec(base | {"name": "w", "prefix_cache": {"from_trace": True}}),
             "blocks": _spec(base | {"name": "w", "prefix_cache": {"from_trace": True}, "cache_blocks": 10_000_000})}

    def row(c, case: list[float] | None) -> int:      # the first row meeting its targets, or ``case``'s
        m = row_matrix(c.configs).tolist()
        return int(np.flatnonzero(c.meets_slo)[0]) if case is None else m.index(case)

    first = build_candidates(resolve_fleet(specs["pool"]))
    case = row_matrix(first.configs.take(np.array([row(first, None)]))).tolist()[0]
    alone = {}
    for name, s in specs.items():
        p = resolve_fleet(s)
        c = build_candidates(p)
        j = row(c, case)
        alone[name] = described(p, c, [(j, 2, 1.0)])[j]
    assert alone["pool"]["cached_prompt_tokens"] != alone["blocks"]["cached_prompt_tokens"]
    for order in (("pool", "blocks"), ("blocks", "pool")):
        cache = PhysicsCache()
        for name in order:
            p = resolve_fleet(specs[name])
            c = build_candidates(p, cache=cache)
            j = row(c, case)
            assert described(p, c, [(j, 2, 1.0)])[j] == alone[name], (order, name)


def test_a_table_keeps_the_cache_it_was_given_and_not_the_one_its_build_made():
    # Candidates.physics: a caller's cache (a sweep's, kept across builds) is the table's; a
    # build's own cache is dropped with the build (at 50 workloads it held 93 bytes a row,
    # benchmarks/fleet_scale.py --held): the table keeps an empty one for its answers
    from planner.plan.describe import operating_points as described
    p = resolve_fleet(_spec(CHAT))
    given = PhysicsCache()
    assert build_candidates(p, cache=given).physics is not None
    assert build_candidates(p, cache=given).physics[0] is given and given.memos and given.entries
    c = build_candidates(p)
    assert c.physics is not None and not c.physics[0].memos and not c.physics[0].entries
    j = int(np.flatnonzero(c.meets_slo)[0])
    assert described(p, c, [(j, 4, 1.0)])[j] == described(p, build_candidates(p, cache=given), [(j, 4, 1.0)])[j]
    assert len(c.physics[0].memos) == 1


def test_a_batch_search_within_the_grid_makes_one_physics_call_and_beyond_it_one_a_step(monkeypatch):
    # the grid is what makes the search cheaper: every batch of every configuration in one
    # call where configurations x batches <= GRID_ROWS, the plain bisection (a call a step)
    # beyond it, the same batches either way
    import planner.candidates.search as search
    import planner.candidates.table as table
    from planner.resolve.problem import resolve
    from planner.schemas.plan import PlanSpec
    p = resolve(PlanSpec.model_validate({
        "model": "llama-3.1-8b", "workload": {"input_tokens": 700, "output_tokens": 150},
        "slo": {"tpot_ms": 25, "ttft_ms": 600}, "objective": "cost_per_million_tokens",
        "search": SEARCH | {"gpus": ["h100-sxm", "l40s", "l4"], "max_batch": 48}}))
    base = table._slot_bases(p, [p.slots[0]])[0][0]
    calls: list[int] = []
    evaluate = table.evaluate
    monkeypatch.setattr(table, "evaluate", lambda m, t, c, o: calls.append(len(c)) or evaluate(m, t, c, o))
    found = {}
    for rows in (len(base) * 48, len(base) * 48 - 1):
        monkeypatch.setattr(search, "GRID_ROWS", rows)
        calls.clear()
        found[rows] = table._largest_feasible_batch(p, [p.slots[0]], np.zeros(len(base), dtype=np.int64), base, 48)
        assert (calls == [len(base) * 48]) if rows == len(base) * 48 else (len(calls) >= 6), calls
    assert np.array_equal(*found.values()) and (found[len(base) * 48] % 8 != 0).any()
