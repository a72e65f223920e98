"""The latency targets over the candidate rows (docs/formulation.md section 2): one check per
distinct target with each row's value, the end-to-end latency of one request, and a pool row
held only to its own pool's targets. The one place targets meet values; planner/candidates/
table.py builds the checks into the table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from planner.candidates.load import AGGREGATED, POOL_METRICS
from planner.physics.perf import Evaluation
from planner.resolve.problem import Slot
from planner.resolve.workload import LatencyTarget


@dataclass(frozen=True)
class SloCheck:
    """One latency target over the candidate rows: its spec path, the target and each row's
    value, in seconds (target +inf on rows whose slot sets no such target)."""

    name: str                # tpot | ttft | e2e_latency
    path: str                # YAML path of the target, e.g. slo.tpot_ms
    target_s: np.ndarray
    value_s: np.ndarray

    @property
    def ok(self) -> np.ndarray:
        return self.value_s <= self.target_s

    @property
    def margin_s(self) -> np.ndarray:
        return self.target_s - self.value_s


def e2e_seconds(ev: Evaluation, output_tokens: np.ndarray | float) -> np.ndarray:
    """End-to-end latency of one request: TTFT + TPOT x (output tokens - 1)."""
    return ev.ttft + ev.tpot * (np.asarray(output_tokens, dtype=float) - 1.0)


def slo_checks(slots: tuple[Slot, ...], slot_of_row: np.ndarray,
               value: Callable[[LatencyTarget], np.ndarray]) -> tuple[SloCheck, ...]:
    """One check per distinct latency target (metric, statistic) the slots set: the target in
    seconds on each row of a slot that sets it (+inf elsewhere) and ``value(target)`` (each
    row's value of that metric and statistic) on those rows. The one place targets meet
    values. Per target, one pass over the rows whatever the number of slots (a fleet of a
    thousand workloads)."""
    keys: list[tuple[str, str]] = []
    for s in slots:
        keys += [(t.metric, t.statistic) for t in s.targets if (t.metric, t.statistic) not in keys]
    out = []
    for metric, stat in keys:
        per_slot, has = np.full(len(slots), np.inf), np.zeros(len(slots), dtype=bool)
        path, some = "", None
        for k, s in enumerate(slots):
            for t in s.targets:
                if (t.metric, t.statistic) == (metric, stat):
                    per_slot[k], has[k], path, some = t.seconds, True, t.path, t
        assert some is not None
        sets = has[slot_of_row]
        target = per_slot[slot_of_row]
        values = value(some) if sets.all() else np.where(sets, value(some), np.inf)   # shared: read-only
        out.append(SloCheck(f"{metric}" if stat == "mean" else f"{metric}_{stat}", path, target, values))
    return tuple(out)


def meets_slo(fits: np.ndarray, checks: tuple[SloCheck, ...]) -> np.ndarray:
    ok = fits.copy()
    for c in checks:
        ok &= c.ok
    return ok


def role_checks(checks: tuple[SloCheck, ...], role: np.ndarray) -> tuple[SloCheck, ...]:
    """The SLO checks with each pool row held only to its own pool's targets (a prefill row
    to TTFT, a decode row to TPOT/ITL): the other pool's targets become +inf there (value 0),
    as on a slot that sets no such target. Aggregated rows keep every target."""
    if not len(role) or not (role != AGGREGATED).any():
        return checks
    out = []
    for chk in checks:
        metric = chk.name.split("_")[0]
        off = np.zeros(len(role), dtype=bool)
        for r, metrics in POOL_METRICS.items():
            if metric not in metrics:
                off |= role == r
        out.append(replace(chk, target_s=np.where(off, np.inf, chk.target_s), value_s=np.where(off, 0.0, chk.value_s)))
    return tuple(out)
