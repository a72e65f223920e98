"""benchmarks/tpot_mixed_steps.py's reading of a closed loop (docs/validation.md "Decode steps:
mixed steps, prompt batches and Hopper's MXFP4 experts"), by hand."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from tpot_mixed_steps import implied_prompt_time  # noqa: E402


def test_the_prompt_time_a_closed_loop_implies_by_hand():
    """64 clients, 128-token outputs, TTFT 200 ms, TPOT 24 ms: a cycle of 0.2 + 127 x 0.024 =
    3.248 s, so X = 64 / 3.248 = 19.704 requests/s, n = 64 x 3.048 / 3.248 = 60.06 decoding,
    X x 0.024 = 0.4729 prompts a step; with a 7 ms decode step the prompts add
    (24 - 7) / 0.4729 = 35.95 ms each."""
    n, per_step, d = implied_prompt_time(64.0, 128.0, 0.200, 0.024, lambda n: 0.007)
    assert n == pytest.approx(60.059, abs=1e-3)
    assert per_step == pytest.approx(0.47291, abs=1e-5)
    assert d == pytest.approx(0.035947, abs=1e-6)
    # the decode step is read at the batch the loop implies
    _, _, d2 = implied_prompt_time(64.0, 128.0, 0.200, 0.024, lambda n: 1e-4 * n)
    assert d2 == pytest.approx((0.024 - 1e-4 * 60.059) / 0.47291, abs=1e-6)
