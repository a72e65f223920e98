"""The batch searches of a slot's configurations (planner/candidates/table.py): bisections over
the batch of a predicate monotone in it, vectorised over configurations, and the grid of every
batch that one physics call computes for them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from planner.candidates.cache import rows_at
from planner.physics.perf import Evaluation

Probe = Callable[[np.ndarray, np.ndarray], Evaluation]
"""The idle physics of rows ``index`` of a slot's configurations at batches ``batch``."""


GRID_ROWS = 4096
"""Most rows (configurations x batches) a batch search evaluates in one physics call before
bisecting: the idle physics costs about as much a call for 4 rows as for 1,024 (6.5 and
11 ms), and a bisection makes one call a step, 6 to 9 of them."""


def grid(probe: Probe, n: int, top: int) -> Probe:
    """``probe`` of ``n`` configurations, every batch 1..``top`` of them computed in one call
    and read back (each row is computed on its own: the same figures as probed alone);
    ``probe`` itself where that grid has more than GRID_ROWS rows, or for a batch outside it."""
    if top < 1 or n * top > GRID_ROWS:
        return probe
    whole = probe(np.repeat(np.arange(n), top), np.tile(np.arange(1.0, top + 1.0), n))

    def run(index: np.ndarray, batch: np.ndarray) -> Evaluation:
        b = batch.astype(np.int64)
        if len(b) and ((b < 1) | (b > top) | (b != batch)).any():
            return probe(index, batch)
        return rows_at(whole, index * top + b - 1)
    return run


def bisect(probe: Probe, ok: Callable[[Evaluation, np.ndarray], np.ndarray], lo: np.ndarray,
           hi: np.ndarray) -> np.ndarray:
    """Per configuration, the boundary of a predicate monotone in the batch: ``ok(ev, index)``
    (the physics of configurations ``index``) is true at ``lo`` side and false at ``hi`` side;
    returns the last batch on the ``lo`` side. Vectorised over configurations, each evaluated
    only while its bracket is open (docs/formulation.md section 2)."""
    lo, hi = lo.astype(float).copy(), hi.astype(float).copy()
    while True:
        active = np.flatnonzero(np.abs(hi - lo) > 1)
        if not len(active):
            return lo
        mid = np.floor((lo[active] + hi[active]) / 2)
        good = ok(probe(active, np.maximum(mid, 1.0)), active)
        lo[active] = np.where(good, mid, lo[active])
        hi[active] = np.where(good, hi[active], mid)
