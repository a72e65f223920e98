"""Prices by kind (issue 25 item 4, docs/workloads.md "Prices by kind"): per GPU type a list
of offers (on-demand, spot with a preemption rule, 1- and 3-year commitments), each searched
as its own entry ``gpu@kind``; a spot deployment pays for its spare replicas but serves
without them; owned GPUs keep their one path (limits.inventory at running cost); every
plan and GPU row says whether its capacity is committed or burst."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from planner.backends.base import BACKENDS
from planner.backends.exhaustive import oracle_spares
from planner.candidates.table import build_candidates
from planner.errors import InputError
from planner.plan.solve import solve
from planner.pricing import SpareRule, hourly_over_term, spares_for_availability
from planner.resolve.problem import resolve, resolve_fleet
from planner.schemas.fleet import FleetSpec
from planner.schemas.plan import PlanSpec, load_plan_spec
from planner.units import HOURS_PER_YEAR

SMALL = {"quantizations": ["w8a8-fp8"], "kv_dtypes": ["fp8"], "tp": [1, 2], "pp": [1], "batch_levels": [64]}
OFFERS = [{"kind": "on_demand", "usd_per_gpu_hour": 3.0},
          {"kind": "spot", "usd_per_gpu_hour": 1.2, "preemption": {"spare_replicas": 1}},
          {"kind": "commit_1y", "usd_per_gpu_hour": 2.0}]


def _spec(rps: float = 40, offers: list | None = None, **over) -> PlanSpec:
    d = {"model": "llama-3.1-8b", "workload": {"input_tokens": 512, "output_tokens": 128,
                                               "demand": {"requests_per_s": rps}},
         "slo": {"tpot_ms": 40}, "objective": "cost_per_hour", "search": {"gpus": ["h100-sxm"], **SMALL},
         "prices": {"offers": {"h100-sxm": OFFERS if offers is None else offers}}}
    return PlanSpec.model_validate(d | over)


def _cost(r) -> float:
    a = r.answer(1)
    assert a is not None and a.totals is not None and a.totals.cost_per_hour is not None
    return a.totals.cost_per_hour


def test_a_commitment_is_priced_per_hour_over_its_term():
    """$1.50/GPU-hour plus $8,760 upfront over 1 year (8,760 hours) is $2.50/GPU-hour; $1.00
    plus $26,280 over 3 years (26,280 hours) is $2.00; a 4-year term spreads it over 35,040 h."""
    assert hourly_over_term(1.5, 8760.0, 1.0, HOURS_PER_YEAR) == pytest.approx(2.5)
    p = resolve(_spec(offers=[{"kind": "commit_1y", "usd_per_gpu_hour": 1.5, "upfront_usd_per_gpu": 8760},
                              {"kind": "commit_3y", "usd_per_gpu_hour": 1.0, "upfront_usd_per_gpu": 26280},
                              {"kind": "commit_3y", "usd_per_gpu_hour": 1.0, "upfront_usd_per_gpu": 26280,
                               "term_years": 4, "provider": "neo"}]))
    assert p.table.ids == ("h100-sxm@commit_1y", "h100-sxm@commit_3y", "h100-sxm@commit_3y.neo")
    assert p.prices.tolist() == pytest.approx([2.5, 2.0, 1.0 + 26280 / 35040])
    assert p.price_sources == ("prices.offers.h100-sxm[0]", "prices.offers.h100-sxm[1]", "prices.offers.h100-sxm[2]")
    assert all(p.committed(g) for g in range(3))
    assert p.inputs()["offers"]["h100-sxm@commit_3y.neo"]["term_years"] == 4


def test_the_spares_an_availability_target_needs_by_hand():
    """Replicas up 95 % of the time. One serving replica for 99 %: alone 0.95 < 0.99; with one
    spare P(at least 1 of 2 up) = 1 - 0.05^2 = 0.9975, so k = 1. Two for 99 %: alone
    0.95^2 = 0.9025; with one spare P(at least 2 of 3) = 0.95^3 + 3 x 0.95^2 x 0.05 =
    0.857375 + 0.135375 = 0.99275 >= 0.99, so k = 1. Ten for 99.9 % needs k = 4: at most 3
    of 13 down has probability 0.996897 < 0.999, at most 4 of 14 down 0.999573 (summed below
    term by term, C(n, f) 0.05^f 0.95^(n - f))."""
    assert spares_for_availability(1, 0.99, 0.95) == 1
    assert spares_for_availability(2, 0.99, 0.95) == 1
    tail3 = sum(math.comb(13, f) * 0.05 ** f * 0.95 ** (13 - f) for f in range(4))
    tail4 = sum(math.comb(14, f) * 0.05 ** f * 0.95 ** (14 - f) for f in range(5))
    assert tail3 == pytest.approx(0.996897, abs=1e-6) and tail4 == pytest.approx(0.999573, abs=1e-6)
    assert spares_for_availability(10, 0.999, 0.95) == 4
    assert spares_for_availability(5, 0.5, 0.99) == 0
    assert math.isnan(spares_for_availability(1, 0.999999, 0.05))      # beyond 64 spares: unusable, said so
    rule = SpareRule(availability=0.99, replica_availability=0.95)
    assert rule.spares(np.array([1.0, 2.0, np.inf])).tolist()[:2] == [1.0, 1.0]
    assert SpareRule(spare_replicas=2).spares(np.array([1.0, 7.0])).tolist() == [2.0, 2.0]


def test_a_spot_deployment_pays_its_spares_and_serves_without_them():
    """Only a spot offer at $1.20/GPU-hour with one spare: the plan's cost is $1.20 x GPUs per
    replica x (replicas + 1), its replicas and capacity are those that serve."""
    spot = [OFFERS[1]]
    p = resolve(_spec(offers=spot))
    c = build_candidates(p)
    assert (c.spares == 1).all()
    r = solve(p, c, backend="highs", top_k=1)
    plan = r.plans[0]
    per_replica = plan.gpus // plan.replicas
    assert plan.cost_per_hour == pytest.approx(1.2 * per_replica * (plan.replicas + 1))
    assert plan.objective_value == pytest.approx(plan.cost_per_hour)
    assert plan.spare_replicas == 1 and plan.offer == "spot" and not plan.committed
    assert plan.replicas == int(c.replicas_needed[plan.candidate])    # spares are not serving replicas
    g = r.answer(1).gpus[0]
    assert g.spare_gpus == per_replica and g.used == plan.gpus and not g.committed


def test_spare_replicas_zero_is_the_on_demand_answer_at_the_same_price():
    """Metamorphic: a spot offer with no spares prices exactly like an on-demand offer at the
    same rate, and a single on-demand offer at the catalog's price is today's answer."""
    a = solve(p := resolve(_spec(offers=[{"kind": "spot", "usd_per_gpu_hour": 2.95,
                                          "preemption": {"spare_replicas": 0}}])), build_candidates(p), top_k=1)
    b = solve(q := resolve(_spec(offers=[{"kind": "on_demand", "usd_per_gpu_hour": 2.95}])), build_candidates(q),
              top_k=1)
    plain = PlanSpec.model_validate(_spec().model_dump() | {"prices": {}})
    today = solve(t := resolve(plain), build_candidates(t), top_k=1)
    assert t.prices.tolist() == [2.95] and t.offers == (None,)
    assert _cost(a) == _cost(b) == _cost(today)
    assert (a.plans[0].replicas, a.plans[0].tp) == (b.plans[0].replicas, b.plans[0].tp) == \
        (today.plans[0].replicas, today.plans[0].tp)
    assert today.plans[0].offer == "rented" and b.plans[0].offer == "on_demand"


def test_spares_decide_between_spot_and_a_commitment():
    """At 40 req/s one replica serves: spot costs 2 x $1.20 = $2.40 per GPU (one spare), the
    commitment $2.00, so the commitment wins; at 1,500 req/s many replicas serve and spot's one
    spare is spread over them: $1.20 x (N + 1) < $2.00 x N for N >= 2."""
    small = solve(p := resolve(_spec(rps=40)), build_candidates(p), backend="highs", top_k=1)
    assert small.plans[0].gpu == "h100-sxm@commit_1y" and small.plans[0].committed
    assert _cost(small) == pytest.approx(2.0 * small.plans[0].gpus)
    # the minimum term commits $2.00 x GPUs x 8,760 hours
    assert small.plans[0].term_years == 1
    assert small.plans[0].commitment_usd == pytest.approx(2.0 * small.plans[0].gpus * 8760)
    big = solve(p := resolve(_spec(rps=1500)), build_candidates(p), backend="highs", top_k=1)
    top = big.plans[0]
    assert top.gpu == "h100-sxm@spot" and top.replicas >= 2 and top.term_years is None and top.commitment_usd is None
    assert _cost(big) == pytest.approx(1.2 * (top.gpus // top.replicas) * (top.replicas + 1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_agrees_with_the_oracle_on_offers_under_a_budget(backend):
    """One workload, offers with an availability target, objective throughput under a budget
    that the spares make bind: each backend's answer reaches what the oracle's enumeration
    finds (the oracle reads the preemption rule and counts the spares in its own code), and
    the spares are those of the most replicas the budget buys."""
    offers = [{"kind": "on_demand", "usd_per_gpu_hour": 3.0},
              {"kind": "spot", "usd_per_gpu_hour": 1.0,
               "preemption": {"availability": 0.999, "replica_availability": 0.95}},
              {"kind": "commit_3y", "usd_per_gpu_hour": 1.6}]
    p = resolve(_spec(rps=300, offers=offers, objective="throughput", limits={"budget_usd_per_hour": 24.0},
                      search={"gpus": ["h100-sxm", "l40s"], **SMALL}))
    c = build_candidates(p)
    assert np.array_equal(np.nan_to_num(c.spares, nan=-1), np.nan_to_num(oracle_spares(c), nan=-1))
    spot = (c.configs.gpu == p.table.ids.index("h100-sxm@spot")) & (c.ev.gpus == 1)
    # throughput runs as many replicas as the budget buys: $24 buys 24 one-GPU spot replicas
    # before spares, the target needs k spares for 24, and then 24 - k serve
    k = spares_for_availability(24, 0.999, 0.95)
    assert k >= 1 and (c.spares[spot] == k).all() and (c.replicas_allowed[spot] == 24 - k).all()
    oracle = solve(p, c, backend="exhaustive", top_k=2)
    r = solve(p, c, backend=backend, top_k=2)
    assert r.status == oracle.status == "optimal"
    for rank in (1, 2):
        mine, theirs = r.answer(rank), oracle.answer(rank)
        assert mine.objective_value == pytest.approx(theirs.objective_value, rel=1e-6)
        assert mine.totals.cost_per_hour <= 24.0 * (1 + 1e-9)


@pytest.fixture(scope="module")
def fleet():
    """Two H100 owned at $0.90 (committed), more rentable on-demand, on spot (one spare) or on
    a 1-year commitment; two workloads, each split over at most 2 configurations; the oracle's
    answer, enumerated once."""
    spec = FleetSpec.model_validate({
        "workloads": [{"name": "chat", "model": "llama-3.1-8b", "input_tokens": 512, "output_tokens": 128,
                       "demand": {"requests_per_s": 60}, "slo": {"tpot_ms": 40}},
                      {"name": "batch", "model": "llama-3.1-8b", "input_tokens": 256, "output_tokens": 64,
                       "demand": {"requests_per_s": 10}, "slo": {"tpot_ms": 60}}],
        "search": {"gpus": ["h100-sxm"], **SMALL, "tp": [1]}, "objective": "cost_per_hour",
        "limits": {"inventory": {"h100-sxm": 2}, "rent_outside_inventory": True},
        "prices": {"owned_usd_per_gpu_hour": {"h100-sxm": 0.9}, "offers": {"h100-sxm": OFFERS}},
        "max_configurations_per_workload": 2})
    p = resolve_fleet(spec)
    c = build_candidates(p)
    return p, c, solve(p, c, backend="exhaustive", top_k=1)


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "exhaustive"])
def test_a_fleet_mixes_owned_and_offered_capacity_and_backends_agree(backend, fleet):
    """Every backend's cost equals the oracle's; every owned GPU works; the GPU rows say which
    capacity is committed and which burst; each deployment costs its replicas and, on spot,
    its spares at its offer's price."""
    p, c, oracle = fleet
    assert p.table.ids == ("h100-sxm", "h100-sxm@on_demand", "h100-sxm@spot", "h100-sxm@commit_1y")
    assert [p.committed(g) for g in range(4)] == [True, False, False, True]
    r = solve(p, c, backend=backend, top_k=1)
    assert oracle.status == r.status == "optimal"
    assert _cost(r) == pytest.approx(_cost(oracle), rel=1e-6)
    gpus = {g.gpu: g for g in r.answer(1).gpus}
    assert gpus["h100-sxm"].used == 2 and gpus["h100-sxm"].committed
    for d in r.plans:
        per = d.gpus // d.replicas
        assert d.cost_per_hour == pytest.approx(d.price_usd_per_gpu_hour * per * (d.replicas + d.spare_replicas))


def test_the_shipped_instance_mixes_committed_and_spot_capacity():
    """instances/offers_owned_spot.yaml: the owned node (committed) serves part, spot (burst,
    one spare) the rest; a 1-year commitment for the rest would cost more."""
    spec, doc = load_plan_spec(str(Path(__file__).resolve().parents[1] / "instances" / "offers_owned_spot.yaml"))
    p = resolve(spec, doc)
    r = solve(p, build_candidates(p), backend="highs", top_k=1)
    a = r.answer(1)
    committed = [g for g in a.gpus if g.committed and g.used]
    burst = [g for g in a.gpus if not g.committed and g.used]
    assert committed and burst and burst[0].offer == "spot" and burst[0].spare_gpus > 0
    assert r.status == "optimal"


@pytest.mark.parametrize("offer, path", [
    ({"kind": "spot", "usd_per_gpu_hour": -1, "preemption": {"spare_replicas": 1}},
     "prices.offers.h100-sxm[0].usd_per_gpu_hour"),
    ({"kind": "reserved", "usd_per_gpu_hour": 1}, "prices.offers.h100-sxm[0].kind"),
    ({"kind": "spot", "usd_per_gpu_hour": 1, "preemption": {"spare_replicas": 65}},
     "prices.offers.h100-sxm[0].preemption.spare_replicas"),
    ({"kind": "spot", "usd_per_gpu_hour": 1, "preemption": {"availability": 1.5, "replica_availability": 0.9}},
     "prices.offers.h100-sxm[0].preemption.availability"),
    ({"kind": "spot", "usd_per_gpu_hour": 1, "preemption": {"availability": 0.99}},
     "prices.offers.h100-sxm[0].preemption"),
    ({"kind": "spot", "usd_per_gpu_hour": 1}, "prices.offers.h100-sxm[0]"),
    ({"kind": "on_demand", "usd_per_gpu_hour": 1, "term_years": 2}, "prices.offers.h100-sxm[0]"),
    ({"kind": "commit_3y", "usd_per_gpu_hour": 1, "term_years": 2}, "prices.offers.h100-sxm[0]"),
])
def test_a_bad_offer_is_a_located_error(tmp_path, offer, path):
    f = tmp_path / "bad.yaml"
    f.write_text("model: llama-3.1-8b\nworkload: {input_tokens: 512, output_tokens: 128}\n"
                 f"prices:\n  offers:\n    h100-sxm:\n      - {offer!r}\n".replace("'", '"'))
    with pytest.raises(InputError) as e:
        load_plan_spec(str(f))
    assert e.value.file == str(f) and e.value.path == path


def test_two_offers_that_would_be_one_entry_are_refused():
    twice = [OFFERS[0], {"kind": "on_demand", "usd_per_gpu_hour": 2.5}]
    with pytest.raises(InputError) as e:
        resolve(_spec(offers=twice))
    assert e.value.path == "prices.offers.h100-sxm[1]" and "prices.offers.h100-sxm[0]" in str(e.value.accepted)
    other = resolve(_spec(offers=[OFFERS[0], {"kind": "on_demand", "usd_per_gpu_hour": 2.5, "region": "eu-west"}]))
    assert other.table.ids == ("h100-sxm@on_demand", "h100-sxm@on_demand.eu-west")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_split_workload_pays_a_spot_deployments_spares_within_the_budget(backend):
    """One workload that may split over 2 configurations, spot at $0.80 with one spare and a
    commitment at $2.00: 2 spot replicas of one H100 serve, with 1 spare, $0.80 x 3 = $2.40.
    A budget of $2.40 buys it; $2.39 buys nothing (the spare is paid: 2 serving replicas alone
    would cost $1.60, and the commitment $4.00), on every backend and the oracle."""
    offers = [{"kind": "spot", "usd_per_gpu_hour": 0.8, "preemption": {"spare_replicas": 1}},
              {"kind": "commit_1y", "usd_per_gpu_hour": 2.0}]
    small = {"gpus": ["h100-sxm"], **SMALL, "tp": [1]}
    p = resolve(_spec(rps=60, offers=offers, max_configurations_per_workload=2, search=small,
                      limits={"budget_usd_per_hour": 2.4}))
    r = solve(p, build_candidates(p), backend=backend, top_k=1)
    assert r.status == "optimal" and _cost(r) == pytest.approx(2.4)
    assert [(d.gpu, d.replicas, d.spare_replicas) for d in r.plans] == [("h100-sxm@spot", 2, 1)]
    q = resolve(_spec(rps=60, offers=offers, max_configurations_per_workload=2, search=small,
                      limits={"budget_usd_per_hour": 2.39}))
    assert solve(q, build_candidates(q), backend=backend, top_k=1).status == "infeasible"


def test_offers_survive_the_json_and_reach_the_launch_notes():
    """A plan's offer, committed flag and spares round-trip through its JSON (as `planner
    launch` reads it), and a spot deployment's launch notes say to keep its spares running."""
    import json

    from planner.launch.scripts import launch
    from planner.plan.result import PlanResult

    p = resolve(_spec(offers=[OFFERS[1]]))
    r = solve(p, build_candidates(p), backend="highs", top_k=1)
    back = PlanResult.from_dict(json.loads(json.dumps(r.to_dict())))
    plan = back.plans[0]
    assert (plan.offer, plan.committed, plan.spare_replicas) == ("spot", False, 1)
    assert back.answer(1).gpus[0].spare_gpus == plan.gpus // plan.replicas
    assert back.inputs["offers"]["h100-sxm@spot"]["preemption"] == {"spare_replicas": 1}
    notes = launch(back, plan, "vllm").notes
    assert any("1 spare replica" in n for n in notes)


def test_an_offer_without_a_price_follows_todays_rule():
    """An offer that states no price is left out of a question with a budget or a cost
    objective, and the note names the YAML that prices it; a latency question keeps it, and
    its plans say 'no price'."""
    offers = [OFFERS[2], {"kind": "spot", "preemption": {"spare_replicas": 1}}]
    p = resolve(_spec(offers=offers))
    assert p.table.ids == ("h100-sxm@commit_1y",)
    assert "prices.offers.h100-sxm[1].usd_per_gpu_hour" in p.excluded["h100-sxm@spot"]
    with pytest.raises(InputError, match=r"prices.offers.h100-sxm\[0\].usd_per_gpu_hour"):
        resolve(_spec(offers=offers[1:]))
    q = resolve(_spec(offers=offers, objective="tpot"))
    assert q.table.ids == ("h100-sxm@commit_1y", "h100-sxm@spot")
    assert q.price_kind(1) == "no price" and math.isnan(q.prices[1])


ONE_GPU = {"gpus": ["h100-sxm"], **SMALL, "tp": [1]}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("rps, limit, room, tight", [
    # 2 one-GPU replicas serve 80 req/s: spot runs 3 GPUs (one spare), on demand 2
    (80, "max_gpus", 3, 2),
    # at 700 W per H100 (TDP): spot draws 3 x 700 = 2,100 W, on demand 1,400 W
    (80, "power_cap_w", 2100, 1400),
    # 8 one-GPU replicas serve 400 req/s: with its spare spot runs 9 GPUs, a second 8-GPU node
    (400, "max_nodes", 2, 1),
])
def test_spot_spares_are_physical_gpus_in_every_limit(backend, rps, limit, room, tight):
    """Spot at $1.20 with one spare against on demand at $3.00: spot is cheaper ($1.20 x 3 =
    $3.60 < $6.00 for 2 replicas; $10.80 < $24.00 for 8) while the limit leaves room for its
    spare, and on demand wins when the spare would pass it: a spare replica runs, so it takes
    GPUs, watts and node slots (issue 25). Every backend and the oracle, in its own code."""
    def plan(value: int) -> list[tuple[str, int, int]]:
        where = "search" if limit in ("max_gpus", "max_nodes") else "limits"
        over = {where: (ONE_GPU | {limit: value}) if where == "search" else {limit: value}}
        p = resolve(_spec(rps=rps, offers=[OFFERS[0], OFFERS[1]], **({"search": ONE_GPU} | over)))
        c = build_candidates(p)
        r = solve(p, c, backend=backend, top_k=1)
        assert r.status == "optimal", r.status
        return [(d.gpu, d.replicas, d.spare_replicas) for d in r.plans]

    need = 2 if rps == 80 else 8
    assert plan(room) == [("h100-sxm@spot", need, 1)]
    assert plan(tight) == [("h100-sxm@on_demand", need, 0)]


def test_the_model_and_the_oracle_leave_room_for_a_spot_rows_spares():
    """The replicas a limit allows a spot row are those left after its spares: 4 GPUs at most
    with one spare leave 3 serving replicas, on demand 4, in the table and in the oracle."""
    from planner.backends.exhaustive import replica_bounds

    p = resolve(_spec(rps=80, offers=[OFFERS[0], OFFERS[1]], search=ONE_GPU | {"max_gpus": 4}))
    c = build_candidates(p)
    spot = c.configs.gpu == p.table.ids.index("h100-sxm@spot")
    assert (c.replicas_allowed[spot] == 3).all() and (c.replicas_allowed[~spot] == 4).all()
    assert np.array_equal(replica_bounds(c)[1], c.replicas_allowed)


def test_a_starting_answer_whose_spares_pass_max_gpus_does_not_stand():
    """The starting answer stands in when a solver stops without one (planner/plan/start.py):
    2 spot replicas with their spare are 3 GPUs, past max_gpus 2; 2 on demand are not."""
    from planner.plan.start import breaks_limits

    p = resolve(_spec(rps=80, offers=[OFFERS[0], OFFERS[1]], search=ONE_GPU | {"max_gpus": 2}))
    c = build_candidates(p)
    spot = int(np.nonzero(c.configs.gpu == p.table.ids.index("h100-sxm@spot"))[0][0])
    on_demand = int(np.nonzero(c.configs.gpu == p.table.ids.index("h100-sxm@on_demand"))[0][0])
    assert breaks_limits(c, [(spot, 2)]) and not breaks_limits(c, [(on_demand, 2)])


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_split_workload_counts_a_spot_deployments_spares_in_max_gpus(backend):
    """The split case (up to 2 configurations, where a slot may have no choice binary): spot at
    $0.80 with one spare serves 60 req/s on 2 one-GPU replicas, 3 GPUs, $2.40; with at most 2
    GPUs the commitment's 2 replicas ($4.00) are the answer, on every backend and the oracle."""
    offers = [{"kind": "spot", "usd_per_gpu_hour": 0.8, "preemption": {"spare_replicas": 1}},
              {"kind": "commit_1y", "usd_per_gpu_hour": 2.0}]
    for most, want, cost in ((3, ("h100-sxm@spot", 2, 1), 2.4), (2, ("h100-sxm@commit_1y", 2, 0), 4.0)):
        p = resolve(_spec(rps=60, offers=offers, max_configurations_per_workload=2,
                          search=ONE_GPU | {"max_gpus": most}))
        r = solve(p, build_candidates(p), backend=backend, top_k=1)
        assert r.status == "optimal" and _cost(r) == pytest.approx(cost)
        assert [(d.gpu, d.replicas, d.spare_replicas) for d in r.plans] == [want]


TWO_ON_ONE_OWNED = {
    "workloads": [{"name": "w0", "model": "llama-3.1-8b", "input_tokens": 512, "output_tokens": 128,
                   "demand": {"requests_per_s": 24.1}, "slo": {"tpot_ms": 30.0}},
                  {"name": "w1", "model": "qwen3-32b", "input_tokens": 1024, "output_tokens": 256,
                   "demand": {"requests_per_s": 5.6}, "slo": {"tpot_ms": 50.0}}],
    "search": {"gpus": ["h100-sxm"], "quantizations": ["w8a8-fp8"], "kv_dtypes": ["fp8"], "tp": [1, 2], "pp": [1],
               "batch_levels": [32, 64]},
    "limits": {"inventory": {"h100-sxm": 1}, "rent_outside_inventory": True},
    "prices": {"usd_per_gpu_hour": {"h100-sxm": 3.0}, "owned_usd_per_gpu_hour": {"h100-sxm": 2.0}},
    "objective": "cost_per_hour"}
"""Each workload needs one H100 (TP 1); one is owned ($2), the other rented ($3): the fleets
"w0 owned, w1 rented" and "w0 rented, w1 owned" both cost $5/hour on 2 GPUs, and their
GPU-weighted positions sum alike, a + (b + 1) = (a + 1) + b (the rented copy of a row sorts
right after the owned one). Found by enumerating small owned + rented fleets on every backend
(issue 25): exhaustive and cpsat picked one, highs and milp the other."""


@pytest.mark.parametrize("k", [1, 2])
def test_a_swap_of_owned_and_rented_gpus_between_workloads_is_one_answer_on_every_backend(k):
    """The ``workload_order`` tie-break (docs/formulation.md 4b) separates the swap: the earlier
    workload runs the earlier row, its owned copy; every backend and the oracle give that #1."""
    spec = FleetSpec.model_validate(TWO_ON_ONE_OWNED | {"max_configurations_per_workload": k})
    p = resolve_fleet(spec)
    c = build_candidates(p)
    answers = {}
    for backend in BACKENDS:
        r = solve(p, c, backend=backend, top_k=1)
        assert r.status == "optimal", backend
        assert [ph.objective for ph in r.phases] == ["cost_per_hour", "gpus", "order", "workload_order"]
        answers[backend] = ([round(ph.value, 6) for ph in r.phases],
                            sorted((d.workload, d.gpu, d.tp, d.batch, d.replicas) for d in r.plans))
    assert len({repr(a) for a in answers.values()}) == 1, answers
    values, picks = answers["exhaustive"]
    assert values[:3] == [5.0, 2.0, 16.0]     # GPU-weighted row positions (docs/formulation.md 4b: TTFT p99 first)
    assert [(w, g) for w, g, *_ in picks] == [("w0", "h100-sxm"), ("w1", "h100-sxm@rented")]


def test_one_workload_solves_no_workload_order_phase():
    r = solve(p := resolve(_spec(offers=[OFFERS[0]])), build_candidates(p), backend="highs", top_k=1)
    assert [ph.objective for ph in r.phases] == ["cost_per_hour", "gpus", "order"]
