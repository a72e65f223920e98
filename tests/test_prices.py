"""Prices as users mean them (issue 21 item 2): an owned GPU costs what running it costs, a
rented one its price; with ``rent_outside_inventory`` an owned type is searched twice, owned
(at most the inventory) and rented (``gpu@rented``), so a fleet may use both; a GPU without a
price is never free: it is left out of a question with a budget or a cost objective, and the
output names it and the YAML that prices it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from planner.backends.base import BACKENDS
from planner.candidates.table import build_candidates
from planner.catalog.store import Catalog
from planner.errors import InputError
from planner.plan.solve import plan, solve
from planner.report import wording
from planner.resolve.problem import resolve, resolve_fleet
from planner.schemas.common import Tco
from planner.schemas.fleet import FleetSpec
from planner.schemas.plan import PlanSpec

CAT = Catalog.default()
RUNNING = {"usd_per_kwh": 0.12, "pue": 1.3, "hosting_usd_per_node_month": 2000}
SMALL = {"quantizations": ["w8a8-fp8"], "kv_dtypes": ["fp8"], "tp": [1, 2], "pp": [1], "batch_levels": [64]}


def _spec(**over) -> PlanSpec:
    d = {"model": "llama-3.1-8b", "workload": {"input_tokens": 512, "output_tokens": 128,
                                               "demand": {"requests_per_s": 40}},
         "slo": {"tpot_ms": 40}, "objective": "cost_per_hour", "search": {"gpus": ["h100-sxm", "l40s"], **SMALL}}
    return PlanSpec.model_validate(d | over)


def test_the_running_cost_of_an_owned_gpu_by_hand():
    """TCO without capital: an H100 node (8 GPUs of 700 W) draws 5.6 kW; at $0.12/kWh and PUE
    1.3 that is $0.8736/node-hour, hosting $2000/month is $2000/730 = $2.7397/node-hour, so
    $3.6133/node-hour = $0.45167/GPU-hour. With capital ($240,000 over 4 years = $6.8493/
    node-hour) it is $10.4626/node-hour = $1.30783/GPU-hour."""
    g = CAT.gpu("h100-sxm")
    assert Tco(**RUNNING).usd_per_gpu_hour(g) == pytest.approx((5.6 * 1.3 * 0.12 + 2000 / 730) / 8)
    assert Tco(**RUNNING).usd_per_gpu_hour(g) == pytest.approx(0.451667, rel=1e-5)
    with_capital = Tco(**RUNNING, capex_usd_per_node=240_000, years=4)
    assert with_capital.usd_per_gpu_hour(g) == pytest.approx((240_000 / (4 * 8760) + 5.6 * 1.3 * 0.12 + 2000 / 730) / 8)
    assert with_capital.breakdown(g)["capex_usd_per_node_hour"] == pytest.approx(6.849315, rel=1e-6)


def test_capital_needs_its_years():
    with pytest.raises(ValidationError, match="go together"):
        Tco(**RUNNING, capex_usd_per_node=240_000)
    with pytest.raises(ValidationError, match="go together"):
        Tco(**RUNNING, years=4)


def test_owned_units_at_running_cost_rented_ones_at_their_price():
    p = resolve(_spec(limits={"inventory": {"h100-sxm": 4}, "rent_outside_inventory": True},
                      prices={"tco": RUNNING}))
    price = dict(zip(p.table.ids, p.prices.tolist()))
    assert set(price) == {"h100-sxm", "h100-sxm@rented", "l40s"}
    assert price["h100-sxm"] == pytest.approx(Tco(**RUNNING).usd_per_gpu_hour(CAT.gpu("h100-sxm")))
    assert price["h100-sxm@rented"] == CAT.gpu("h100-sxm").price_usd_per_gpu_hour    # the TCO is for owned GPUs
    assert price["l40s"] == CAT.gpu("l40s").price_usd_per_gpu_hour
    assert p.spec.limits.inventory == {"h100-sxm": 4}          # the owned entry alone is counted
    kinds = p.inputs()["price_kinds"]
    assert kinds["h100-sxm"].startswith("owned") and not kinds["l40s"].startswith("owned")


def test_an_explicit_owned_price_wins_and_a_rental_price_is_not_an_owned_one():
    owned = {"inventory": {"h100-sxm": 4}, "rent_outside_inventory": True}
    p = resolve(_spec(limits=owned, prices={"owned_usd_per_gpu_hour": {"H100": 0.8},
                                            "usd_per_gpu_hour": {"h100-sxm": 3.1}, "tco": RUNNING}))
    assert dict(zip(p.table.ids, p.prices.tolist())) == {"h100-sxm": 0.8, "h100-sxm@rented": 3.1,
                                                          "l40s": CAT.gpu("l40s").price_usd_per_gpu_hour}
    # renting: prices.usd_per_gpu_hour is the rental price, so the owned H100 has none and is left out
    q = resolve(_spec(limits=owned, prices={"usd_per_gpu_hour": {"h100-sxm": 3.1}}))
    assert "h100-sxm" not in q.table.ids and "owned_usd_per_gpu_hour" in q.excluded["h100-sxm"]
    # nothing rented: the one price given is what the owned GPU costs
    r = resolve(_spec(limits={"inventory": {"h100-sxm": 4, "l40s": 2}}, prices={"usd_per_gpu_hour": {"h100-sxm": 3.1}}))
    assert r.table.ids == ("h100-sxm",) and r.prices.tolist() == [3.1] and "l40s" in r.excluded


def test_owned_gpus_without_a_running_cost_are_left_out_of_cost_questions_only():
    owned = {"inventory": {"h100-sxm": 8, "l40s": 8}}
    with pytest.raises(InputError, match="prices.owned_usd_per_gpu_hour") as e:     # cost_per_hour: nothing priced
        resolve(_spec(limits=owned))
    assert "h100-sxm, l40s" in str(e.value) and e.value.path == "search.gpus"
    latency = plan(_spec(limits=owned, objective="tpot"), backend="exhaustive", top_k=1)
    assert latency.plans and latency.plans[0].gpu in ("h100-sxm", "l40s")
    assert latency.plans[0].price_usd_per_gpu_hour is None and latency.plans[0].price_kind == "no price"


def test_a_latency_objective_under_a_budget_never_picks_an_unpriced_gpu():
    """Issue 21: objective tpot, a $150/hour budget, the whole catalog, Qwen3-235B at 30 req/s
    returned thousands of GB200 at $0.00 ("proven best"): an unpriced GPU cost nothing under the
    budget. Now every unpriced GPU is left out, and a note names them and the YAML to price them."""
    spec = PlanSpec.model_validate({"model": "qwen3-235b-a22b", "workload": {
        "input_tokens": 1024, "output_tokens": 256, "demand": {"requests_per_s": 30}},
        "limits": {"budget_usd_per_hour": 150}, "objective": "tpot", "top_k": 2})
    unpriced = sorted(g for g, x in CAT.gpus.items() if x.price_usd_per_gpu_hour is None and x.peak_dense_flops_per_s)
    assert "gb200" in unpriced
    r = plan(spec, backend="cpsat", top_k=2, time_limit=60)
    assert r.plans
    for p in r.plans:
        assert p.gpu not in unpriced and p.price_usd_per_gpu_hour is not None and p.price_usd_per_gpu_hour > 0
        assert p.cost_per_hour <= 150 * (1 + 1e-9)
    note = next(n for n in wording.excluded(r.excluded_gpus) if "gb200" in n)
    assert all(g in note for g in unpriced) and "prices.usd_per_gpu_hour" in note and "budget" in note


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_budget_never_counts_a_missing_price_as_free(backend):
    """The model's rows and the oracle's own copy: a row without a price gets no replica under
    a budget (resolution leaves unpriced GPUs out first; this is the layer below it)."""
    p = resolve(_spec(limits={"budget_usd_per_hour": 1000}))
    p = p.with_prices({"l40s": math.nan})      # as if l40s had no price
    c = build_candidates(p)
    mine = c.configs.gpu == p.table.ids.index("l40s")
    assert (c.replicas_allowed[mine] == 0).all()
    r = solve(p, c, backend=backend, top_k=3)
    assert r.plans and all(x.gpu == "h100-sxm" for x in r.plans)


def test_a_fleet_uses_its_owned_gpus_first_and_rents_the_rest_and_backends_agree():
    """The owned-and-rented question: 2 H100 owned (at running cost), more rentable. The
    cheapest fleet runs the 2 owned H100 and rents more H100 beyond them (one deployment on
    each entry of the same type); every backend agrees with the oracle's enumeration."""
    spec = FleetSpec.model_validate({
        "workloads": [{"name": "chat", "model": "llama-3.1-8b", "input_tokens": 512, "output_tokens": 128,
                       "demand": {"requests_per_s": 120}, "slo": {"tpot_ms": 40}}],
        "search": {"gpus": ["h100-sxm"], **SMALL, "tp": [1]}, "objective": "cost_per_hour",
        "limits": {"inventory": {"h100-sxm": 2}, "rent_outside_inventory": True},
        "prices": {"tco": RUNNING}, "max_configurations_per_workload": 2})
    p = resolve_fleet(spec)
    c = build_candidates(p)
    results = {b: solve(p, c, backend=b, top_k=1) for b in BACKENDS}
    oracle = results["exhaustive"]
    assert oracle.status == "optimal"
    for name, r in results.items():
        assert _cost(r) == pytest.approx(_cost(oracle), rel=1e-6), name
    used: dict[str, int] = {}
    for d in oracle.deployments(1):
        used[d.gpu] = used.get(d.gpu, 0) + d.gpus
    assert used.get("h100-sxm") == 2 and used.get("h100-sxm@rented", 0) > 0   # every owned GPU works, more rented
    rent_all = spec.model_copy(update={"limits": spec.limits.model_copy(update={"inventory": {}}),
                                       "prices": spec.prices.model_copy(update={"tco": None})})
    alone = resolve_fleet(rent_all)
    rented_only = solve(alone, build_candidates(alone), backend="milp", top_k=1)
    assert _cost(oracle) < _cost(rented_only)


def _cost(r) -> float:
    a = r.answer(1)
    assert a is not None and a.totals is not None and a.totals.cost_per_hour is not None
    return a.totals.cost_per_hour


def test_prices_are_recorded_with_their_kind():
    p = resolve(_spec(limits={"inventory": {"h100-sxm": 4}, "rent_outside_inventory": True},
                      prices={"owned_usd_per_gpu_hour": {"h100-sxm": 0.8}}))
    kinds, dates = p.inputs()["price_kinds"], p.inputs()["price_dates"]
    assert kinds["h100-sxm"] == "owned, prices.owned_usd_per_gpu_hour" and dates["h100-sxm"] is None
    assert kinds["h100-sxm@rented"] == CAT.gpu("h100-sxm").price_kind
    assert dates["h100-sxm@rented"] == CAT.gpu("h100-sxm").price_date
    assert np.isfinite(p.prices).all()


def test_an_owned_price_for_a_gpu_not_owned_is_a_located_error():
    with pytest.raises(InputError) as e:
        resolve(_spec(limits={"inventory": {"h100-sxm": 4}}, prices={"owned_usd_per_gpu_hour": {"l40s": 0.5}}))
    assert e.value.path == "prices.owned_usd_per_gpu_hour.l40s" and "h100-sxm" in e.value.accepted
