"""The oracle's filter of a disaggregating workload's options (planner/backends/exhaustive.py
``_kept``), taken over the whole product at once, keeps exactly the options the plain loop
over the product keeps: those that serve the demand and, when minimal, none of whose parts can
lose a replica with the demand still served (``_joined`` on each, in itertools.product order)."""

import itertools

import numpy as np
import pytest

from planner.backends.exhaustive import _joined, _kept


def _loop(agg_s, pools_s, d, partial, minimal):
    keep = np.zeros(tuple(len(p) for p in [agg_s, *pools_s]), dtype=bool)
    for picked in itertools.product(range(len(agg_s)), *[range(len(p)) for p in pools_s]):
        (a, a_less), ms = agg_s[picked[0]], [s[q] for s, q in zip(pools_s, picked[1:])]
        cap = _joined(a, [m for m, _ in ms])
        if cap < d * (1 - 1e-12) and not partial:
            continue
        if minimal and not partial and (
                any(_joined(x, [m for m, _ in ms]) >= d * (1 - 1e-12) for x in a_less)
                or any(_joined(a, [m for m, _ in ms[:k]] + [x] + [m for m, _ in ms[k + 1:]]) >= d * (1 - 1e-12)
                       for k, (_, less) in enumerate(ms) for x in less)):
            continue
        keep[picked] = True
    return keep


def _part(rng, pooled):
    """(figure, figures with a replica fewer) as _part_served gives them: round figures so
    that sums land on the demand exactly; a pool part may be empty (None, nothing fewer)."""
    if pooled and rng.random() < 0.2:
        return None, []
    picks = int(rng.integers(0, 3))
    if not picks:
        return (0 if not pooled else None), []
    value = float(rng.integers(0, 8)) * 0.5
    return value, [None if pooled and rng.random() < 0.1 else float(rng.integers(0, 8)) * 0.5 for _ in range(picks)]


@pytest.mark.parametrize("seed", range(60))
def test_the_filter_over_the_product_is_the_loops(seed):
    rng = np.random.default_rng(seed)
    agg_s = [_part(rng, False) for _ in range(int(rng.integers(1, 5)))]
    pools_s = [[_part(rng, True) for _ in range(int(rng.integers(1, 5)))] for _ in range(int(rng.integers(0, 3)))]
    d = float(rng.integers(1, 12)) * 0.5
    for partial in (False, True):
        for minimal in (False, True):
            got = _kept(agg_s, pools_s, d, partial, minimal)
            np.testing.assert_array_equal(got, _loop(agg_s, pools_s, d, partial, minimal))
