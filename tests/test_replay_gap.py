"""Where a trace's replay and the closed forms part, and the physics fixed for it (issue 25,
review round 2 finding 9; docs/load.md section 3 'uneven prompts', docs/workloads.md section 3;
`python benchmarks/replay_gap.py` prints the experiments)."""

from __future__ import annotations

import numpy as np
import pytest

from planner.catalog.store import Catalog
from planner.physics.load import Workload, _saturation, attention_length, engine, load_metrics, step_physics
from planner.physics.options import PRESETS
from planner.physics.space import Configs, GpuTable
from planner.physics.step import step_time

CAT = Catalog.default()


def _phys(S=2000.0, out=200.0, batch=64):
    t = GpuTable.build([CAT.gpus["h100-sxm"]])
    return step_physics(CAT.model("llama-3.1-8b"), t, Configs.single(0, "w16a16", "bf16", 1, 1, 1, batch, S, out),
                        PRESETS["realistic"])


# ----------------------------------------------------------------------------------------
# Uneven prompts: a chunk's attention is the token-weighted prompt length, E[S^2] / E[S]
# ----------------------------------------------------------------------------------------

def test_attention_of_a_mix_of_prompts_by_hand():
    """Prompts of 1,000 and 3,000 tokens, half each: mean 2,000 tokens, E[S^2] = (1e6 + 9e6) / 2
    = 5e6 tokens^2, CV^2 = 5e6 / 2,000^2 - 1 = 0.25. Causal attention of a prompt, chunked any
    way, sums to S^2 units (query-key pairs x 2, docs/load.md section 1), so the two prompts
    carry 1e6 + 9e6 = 1e7 units over their 4,000 tokens: 2,500 units a token, not the mean
    prompt's 2,000. With a 300-token cached prefix each adds 2 x 300 units a token (section 1b)."""
    S = np.array([1000.0, 3000.0])
    cv2 = S.var() / S.mean() ** 2
    assert cv2 == pytest.approx(0.25)
    chunked = sum(sum(c * c + 2.0 * c * p for p, c in ((p, min(512.0, s - p)) for p in np.arange(0.0, s, 512.0)))
                  for s in S)
    assert chunked == pytest.approx(1e7)
    assert attention_length(2000.0, 0.0, cv2) == pytest.approx(chunked / S.sum()) == pytest.approx(2500.0)
    assert attention_length(2000.0, 300.0, cv2) == pytest.approx(2500.0 + 600.0)


def test_fixed_prompts_keep_todays_attention_bit_for_bit():
    """CV^2 0 (fixed lengths): S + 2P, the same float, so every fixed-length figure is today's."""
    for S, P in ((2000.0, 0.0), (1234.5, 321.0), (7.0, 3.0)):
        assert attention_length(S, P, 0.0) == S + 2.0 * P
        assert attention_length(np.array([S]), np.array([P]), np.array([0.0]))[0] == S + 2.0 * P


def test_saturated_step_prices_the_token_weighted_attention():
    """The saturated step of a mix with CV^2 1.5 is the step of the same tokens with attention
    units c x S x 2.5 (and exactly today's at CV^2 0); it is longer, so saturation comes earlier."""
    ph = _phys()
    eng = engine(ph)
    S, O = np.array([2000.0]), np.array([200.0])
    sat0, tau0 = _saturation(ph, eng, S, O, 0.0, 0.0)
    sat1, tau1 = _saturation(ph, eng, S, O, 0.0, 1.5)
    T = float(eng.token_budget[0])
    n = min(T * 199.0 / (2000.0 + 199.0), float(eng.max_seqs[0]))
    c = n * 2000.0 / 199.0
    by_hand = step_time(ph, np.array([n]), np.array([n * 2100.0]), np.array([c]), np.array([c * 2000.0 * 2.5]),
                        np.array([c / 2000.0]))
    assert tau1[0] == pytest.approx(by_hand[0], rel=1e-12)
    assert tau1[0] > tau0[0] and sat1[0] < sat0[0]


def test_uneven_prompts_load_a_replica_more_than_the_mean_prompt():
    """At the same rate, prompts with CV^2 1.6 (the Mooncake conversation sample's) give a longer
    mean step and TTFT than the mean prompt alone: their attention is 2.6x the mean prompt's."""
    ph = _phys(S=14000.0, out=370.0)
    eng = engine(ph)
    even = load_metrics(ph, eng, Workload(isl=14000.0, osl=370.0, isl_cv2=0.0), rate=0.2)
    uneven_wait = load_metrics(ph, eng, Workload(isl=14000.0, osl=370.0, isl_cv2=1.6), rate=0.2)
    assert uneven_wait.get("tpot", "mean")[0] > even.get("tpot", "mean")[0]
    assert uneven_wait.saturation_rate[0] < even.saturation_rate[0]
