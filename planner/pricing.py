"""Prices applied after the physics: the one home of $/hour and $ per million tokens.

The physics (planner/physics) evaluates GPUs, throughput and power, and knows no price; a
price what-if re-runs only these two lines (docs/formulation.md section 2)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SECONDS_PER_HOUR = 3600.0


def cost_per_hour(gpus: np.ndarray | float, usd_per_gpu_hour: np.ndarray | float) -> np.ndarray:
    """$/hour of a replica of ``gpus`` GPUs (NaN where no price)."""
    return np.asarray(gpus, dtype=float) * np.asarray(usd_per_gpu_hour, dtype=float)


def cost_per_million_tokens(usd_per_hour: np.ndarray | float, tokens_per_s: np.ndarray | float) -> np.ndarray:
    """$ per million output tokens at ``tokens_per_s`` served tokens."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(usd_per_hour, dtype=float) / (np.asarray(tokens_per_s, dtype=float) * SECONDS_PER_HOUR) * 1e6


COMMIT_YEARS = {"commit_1y": 1.0, "commit_3y": 3.0}
"""The minimum term of each commitment, in years: what is paid whether it is used or not."""
MAX_SPARES = 64
"""Spare replicas one spot deployment may carry, at most (an availability target that needs
more makes the deployment unusable, said so)."""


def hourly_over_term(usd_per_gpu_hour: float, upfront_usd_per_gpu: float, term_years: float,
                     hours_per_year: float) -> float:
    """$/GPU-hour of a commitment over its term: the hourly rate plus the upfront payment spread
    over the term's hours (``term_years`` x ``hours_per_year``)."""
    return usd_per_gpu_hour + upfront_usd_per_gpu / (term_years * hours_per_year)


@dataclass(frozen=True)
class SpareRule:
    """How a spot deployment covers preemption: ``spare_replicas`` k on top of the N it serves
    with (N + k), or an ``availability`` target A with each replica up a fraction
    ``replica_availability`` a of the time, turned into the fewest k with
    P(at least N of N + k replicas up) >= A (``spares``)."""

    spare_replicas: int | None = None
    availability: float | None = None
    replica_availability: float | None = None

    def spares(self, serving: np.ndarray) -> np.ndarray:
        """Spare replicas per deployment of ``serving`` replicas (NaN: more than MAX_SPARES)."""
        n = np.asarray(serving, dtype=float)
        if self.spare_replicas is not None:
            return np.full(n.shape, float(self.spare_replicas))
        assert self.availability is not None and self.replica_availability is not None
        found = {v: spares_for_availability(int(v), self.availability, self.replica_availability)
                 for v in np.unique(n[np.isfinite(n)])}
        return np.array([found.get(v, np.nan) if np.isfinite(v) else np.nan for v in n.ravel()]).reshape(n.shape)


def spares_for_availability(serving: int, target: float, up: float) -> float:
    """The fewest spares k (0..MAX_SPARES, else NaN) with P(Binomial(serving + k, up) >= serving)
    >= target: replicas fail independently, each down a fraction 1 - up of the time."""
    if serving <= 0:
        return 0.0
    return next((float(k) for k in range(MAX_SPARES + 1) if _covers(serving, k, target, up)), math.nan)


def spares_needed(serving: int, target: float, up: float, most: int = 100_000) -> int | None:
    """The fewest spares k an availability rule asks of ``serving`` replicas, searched past
    MAX_SPARES up to ``most`` (None: more than that): what an explanation of an unmeetable
    rule states. The chance of ``serving`` up grows with k, so doubling then bisection."""
    if serving <= 0 or _covers(serving, 0, target, up):
        return 0
    lo, hi = 0, 1                     # _covers fails at lo, holds at hi once found
    while not _covers(serving, hi, target, up):
        if hi >= most:
            return None
        lo, hi = hi, min(2 * hi, most)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if _covers(serving, mid, target, up) else (mid, hi)
    return hi


def _covers(serving: int, k: int, target: float, up: float) -> bool:
    """Whether ``serving`` + k replicas, each up a fraction ``up`` of the time, have at least
    ``serving`` up with probability >= ``target``: the binomial tail summed over the failures
    f = 0..k in log space (lgamma), exact for any N."""
    n = serving + k
    log_up, log_down = math.log(up), math.log1p(-up)
    terms = [math.lgamma(n + 1) - math.lgamma(f + 1) - math.lgamma(n - f + 1) + (n - f) * log_up + f * log_down
             for f in range(k + 1)]
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms)) >= math.log(target) - 1e-12
