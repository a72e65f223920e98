"""benchmarks/deepseek_load.py's slope of TTFT against the clients, by hand (docs/validation.md,
"DeepSeek under load: the closed loop and the KV admission")."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import deepseek_load as D  # noqa: E402


def test_slope_by_hand():
    """Least squares over the runs at <= 64 clients: (4, 183), (8, 227), (32, 528), (64, 799) ms;
    mean clients 27, mean TTFT 434.25; slope = sum (n - 27)(y - 434.25) / sum (n - 27)^2 =
    23,681 / 2,284 = 10.368 ms a client. The run at 512 clients is left out."""
    pts = [(4.0, 183.0), (8.0, 227.0), (32.0, 528.0), (64.0, 799.0), (512.0, 3072.0)]
    assert D._slope(pts) == pytest.approx(23681.0 / 2284.0, rel=1e-12)


def test_slope_needs_three_runs():
    assert math.isnan(D._slope([(4.0, 183.0), (8.0, 227.0), (128.0, 900.0)]))
