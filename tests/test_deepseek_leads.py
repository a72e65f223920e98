"""benchmarks/deepseek_leads.py by hand (docs/validation.md, "DeepSeek's TTFT: four more leads,
checked"): the busiest expert-parallel rank under uniform routing, what the step charges a
prompt under attention data parallelism, and how a row's layout is classed."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import deepseek_leads as D  # noqa: E402

from planner.catalog.store import Catalog  # noqa: E402
from planner.physics.options import PRESETS  # noqa: E402
from planner.physics.space import KV_NAMES, SCHEME_NAMES, Configs, GpuTable  # noqa: E402
from planner.physics.step import step_physics  # noqa: E402


def test_busiest_rank_by_hand() -> None:
    """922 tokens (a 1k prompt of InferenceX's, 0.9 x 1,024), top-8 of 256 experts, EP 8 (32
    experts a rank): a token's picks on one rank have variance 8 x 1/8 x 7/8 x 248/255 =
    0.85098; a rank's load mu = 922 x 8 / 8 = 922, sigma = sqrt(922 x 0.85098) = 28.011;
    sqrt(2 ln 8) = 2.03933, so the busiest rank carries 1 + 2.03933 x 28.011 / 922 = 1.06196
    of the mean."""
    var = 8 * (1 / 8) * (7 / 8) * 248 / 255
    assert var == pytest.approx(0.850980, rel=1e-5)
    want = 1.0 + math.sqrt(2.0 * math.log(8.0)) * math.sqrt(922 * var) / 922
    assert want == pytest.approx(1.06196, abs=1e-5)
    assert D.busiest_rank_ratio(922, 8, 256, 8) == pytest.approx(want, rel=1e-12)


def test_busiest_rank_limits() -> None:
    # one rank holds every expert: no imbalance; nor with no tokens
    assert D.busiest_rank_ratio(922, 8, 256, 1) == 1.0
    assert D.busiest_rank_ratio(0, 8, 256, 8) == 1.0
    # the excess over the mean falls as 1 / sqrt(tokens): 4x the tokens, half the excess
    a, b = D.busiest_rank_ratio(922, 8, 256, 8) - 1.0, D.busiest_rank_ratio(4 * 922, 8, 256, 8) - 1.0
    assert b == pytest.approx(a / 2.0, rel=1e-12)
    # every expert on its own rank and every token picking all of them: every rank equally loaded
    assert D.busiest_rank_ratio(100, 8, 8, 8) == 1.0


def test_busiest_rank_bounds_the_draws() -> None:
    """The closed form is an upper bound (the Gaussian maximal inequality; the ranks' loads are
    negatively correlated) and a tight one: the drawn excess is within 0.5-1 of it."""
    for T, R in ((922, 8), (64, 8), (922, 16)):
        bound = D.busiest_rank_ratio(T, 8, 256, R)
        drawn = D.busiest_rank_sampled(T, 8, 256, R, draws=60, seed=3)
        assert 1.0 < drawn <= bound
        assert drawn - 1.0 >= 0.5 * (bound - 1.0)


def test_attention_dp_puts_a_lanes_prompt_on_its_own_gpus() -> None:
    """Lead (a): with attention DP 8 (attention TP 1, EP 8) a lane's prompt runs its attention,
    MLA decompression and dense projections on the lane's one GPU: per prompt token 8 x the
    seconds of TP 8, where the eight GPUs share them. The routed experts are charged for every
    lane's tokens (x dp_attn, symmetric lanes): per lane token also 8 x TP 8's, the lanes'
    eight batches on the eight GPUs' experts."""
    cat = Catalog.default()
    table = GpuTable.build([cat.gpu("b200")])
    cfg = Configs(gpu=np.zeros(2, int), scheme=np.full(2, SCHEME_NAMES.index("w8a8-fp8")),
                  kv=np.full(2, KV_NAMES.index("bf16")), tp=np.array([8.0, 1.0]), pp=np.ones(2),
                  ep=np.array([1.0, 8.0]), batch=np.ones(2), input_tokens=np.full(2, 8192.0),
                  output_tokens=np.full(2, 1024.0))
    ph = step_physics(cat.models["deepseek-r1"], table, cfg, PRESETS["realistic"])
    for name in ("lin_prefill", "attn_prefill", "routed_prefill"):
        v = getattr(ph, name)
        assert v[1] / v[0] == pytest.approx(8.0, rel=1e-12), name
    assert list(ph.lanes) == [1.0, 8.0]


def test_layout_class_and_clients() -> None:
    assert D.layout_class({"attention_dp": "8", "moe_ep": "8"}, "agg") == "attention DP"
    assert D.layout_class({"attention_dp": "1", "moe_ep": "8"}, "agg") == "EP, TP attention"
    assert D.layout_class({"attention_dp": "", "moe_ep": ""}, "agg") == "TP only"
    assert D.layout_class({"prefill_attention_dp": "1", "prefill_moe_ep": "16"}, "disagg") == "EP, TP attention"
    assert D.layout_class({"prefill_attention_dp": "8"}, "disagg (workers of a recipe)") is None
    assert D.clients_of("concurrency 128 (closed loop)") == 128
    assert D.clients_of("") is None
    assert D.band_of(8) == "<= 8" and D.band_of(9) == "9-64" and D.band_of(65) == "> 64"
