"""A spot offer whose preemption rule no deployment can meet (review finding 6): the
infeasibility names the offer's rule, ``prices.offers.<gpu>[i].preemption``, with the spares
its availability target asks against the MAX_SPARES a spot deployment may carry, not the
planner's replica cap; with another offer left the diagnosis of that one is unchanged."""

from __future__ import annotations

import copy
import json
import math

import pytest
import yaml
from typer.testing import CliRunner

from planner.cli.root import app
from planner.pricing import MAX_SPARES, spares_for_availability, spares_needed

RUNNER = CliRunner()
PLAN = {
    "schema_version": 1, "model": "llama-3.1-8b",
    "workload": {"input_tokens": 512, "output_tokens": 128, "demand": {"requests_per_s": 4}},
    "slo": {"ttft_ms": 1000, "tpot_ms": 50},
    "search": {"gpus": ["h100-sxm"], "quantizations": ["fp8"], "kv_dtypes": ["fp8"], "tp": [1], "pp": [1],
               "batch_levels": [16]},
    "objective": "cost_per_million_tokens", "top_k": 1,
    "prices": {"offers": {"h100-sxm": [{"kind": "on_demand", "usd_per_gpu_hour": 3.0},
                                       {"kind": "spot", "usd_per_gpu_hour": 1.0, "preemption": {
                                           "availability": 0.999999, "replica_availability": 0.01}}]}},
}


def test_the_spares_an_unmeetable_target_needs_by_hand():
    """One serving replica up 1 % of the time, for 0.999999: k spares keep it served unless all
    1 + k are down, 1 - 0.99^(1 + k) >= 1 - 1e-6, so 1 + k >= ln(1e-6) / ln(0.99) = 1,374.6:
    k = 1,374, past the 64 a deployment may carry (there NaN). Below MAX_SPARES the search is
    the same figure as ``spares_for_availability``'s."""
    assert math.log(1e-6) / math.log(0.99) == pytest.approx(1374.6, abs=0.05)
    assert spares_needed(1, 0.999999, 0.01) == 1374
    assert math.isnan(spares_for_availability(1, 0.999999, 0.01)) and 1374 > MAX_SPARES
    for n, a, up in ((1, 0.99, 0.95), (2, 0.99, 0.95), (10, 0.999, 0.95), (5, 0.5, 0.99), (3, 0.9999, 0.8)):
        assert spares_needed(n, a, up) == spares_for_availability(n, a, up)
    assert spares_needed(10, 0.999999, 1e-6, most=1000) is None          # more than searched: said so


def _plan(tmp_path, data, *extra):
    path = tmp_path / "inst.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return RUNNER.invoke(app, ["plan", str(path), "--no-simulate", *extra])


def test_the_unmeetable_rule_is_named_in_text_and_json(tmp_path):
    d = copy.deepcopy(PLAN)
    d["prices"]["offers"]["h100-sxm"] = d["prices"]["offers"]["h100-sxm"][1:]      # the spot offer alone
    r = _plan(tmp_path, d)
    assert r.exit_code == 1, r.output
    assert "prices.offers.h100-sxm[0].preemption" in r.output and "1,374 spare replicas" in r.output
    assert "100,000" not in r.output
    r = _plan(tmp_path, d, "--json")
    assert r.exit_code == 1
    facts = [x["fact"] for x in json.loads(r.output)["diagnosis"]]
    assert facts == [{"constraint": "preemption", "value": 1374.0, "limit": float(MAX_SPARES), "unit": "spare replicas",
                      "path": "prices.offers.h100-sxm[0].preemption",
                      "context": {"gpu": "h100-sxm@spot", "serving_replicas": 1, "availability": 0.999999,
                                  "replica_availability": 0.01, "searched_to": 100_000}}]


def test_beside_a_usable_offer_the_plan_takes_that_one(tmp_path):
    r = _plan(tmp_path, PLAN, "--json")
    assert r.exit_code == 0, r.output
    assert {p["offer"] for p in json.loads(r.output)["plans"]} == {"on_demand"}
