"""Prices applied after the physics: the one home of $/hour and $ per million tokens.

The physics (planner/physics) evaluates GPUs, throughput and power, and knows no price; a
price what-if re-runs only these two lines (docs/formulation.md section 2)."""

from __future__ import annotations

import numpy as np

SECONDS_PER_HOUR = 3600.0


def cost_per_hour(gpus: np.ndarray | float, usd_per_gpu_hour: np.ndarray | float) -> np.ndarray:
    """$/hour of a replica of ``gpus`` GPUs (NaN where no price)."""
    return np.asarray(gpus, dtype=float) * np.asarray(usd_per_gpu_hour, dtype=float)


def cost_per_million_tokens(usd_per_hour: np.ndarray | float, tokens_per_s: np.ndarray | float) -> np.ndarray:
    """$ per million output tokens at ``tokens_per_s`` served tokens."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(usd_per_hour, dtype=float) / (np.asarray(tokens_per_s, dtype=float) * SECONDS_PER_HOUR) * 1e6
