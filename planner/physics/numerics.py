"""Numerics of the closed forms (docs/load.md sections 3-6): the normal CDF, bisection, a
bracketing fixed-point solver, quantiles of mixtures and of waits, and the bisection by
bracket that settles most of a bisection's steps without evaluating them. Vectorised
over configurations, pure numpy, no physics."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

NORMAL_Z: dict[str, float] = {"p50": 0.0, "p90": 1.2815515655446004, "p95": 1.6448536269514722,
                              "p99": 2.3263478740408408}
"""The standard normal's quantile at each reported percentile."""
PERCENTILES: dict[str, float] = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
"""Each reported percentile as a probability."""


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF (Abramowitz & Stegun 7.1.26 for erf, |error| < 1.5e-7)."""
    z = np.abs(x) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
               + 0.254829592) * t * np.exp(-z * z)
    return 0.5 * (1.0 + np.sign(x) * y)


def bisect(fn, lo: np.ndarray, hi: np.ndarray, iters: int, geometric: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised bisection for the boundary of ``fn(x) True`` (assumed True at lo, False at hi)."""
    lo, hi = lo.copy(), hi.copy()
    for _ in range(iters):
        mid = np.sqrt(lo * hi) if geometric else 0.5 * (lo + hi)
        ok = fn(mid)
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
    return lo, hi


def bisect_levels(fn, lo: np.ndarray, hi: np.ndarray, iters: int, geometric: bool = False,
                  rows_per_call: int = 1024, max_levels: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """``bisect(ok, lo, hi, iters, geometric)``, the same ends, in fewer calls: the next k steps
    of each row's bisection can visit 2^k - 1 midpoints (a binary tree, each computed by the
    same operations as bisect's), and ``fn(x, rows)`` (ok at x for the rows ``rows``, indices
    that repeat) evaluates them all in one call; the row's path down the tree is then read off.
    Where a call costs about the same whatever the rows it carries (numpy's cost per call: a
    few rows), k steps take one call instead of k. k is the largest (at most ``max_levels``)
    with the rows times 2^k - 1 within ``rows_per_call``; 1 (bisect itself) above it. Each
    row's predicate must be its own (vectorised physics computes every row apart)."""
    lo, hi = lo.copy(), hi.copy()
    n = len(lo)
    per_call = max(1, min(max_levels, int(np.log2(rows_per_call / max(n, 1) + 1.0))))
    every = np.arange(n)
    done = 0
    while done < iters:
        k = min(per_call, iters - done)
        ends, mids = [(lo, hi)], []
        for _ in range(k):             # breadth first: node i's children are 2i + 1 (ok) and 2i + 2
            nxt = []
            for a, b in ends:
                mid = np.sqrt(a * b) if geometric else 0.5 * (a + b)
                mids.append(mid)
                nxt += [(mid, b), (a, mid)]
            ends = nxt
        x = np.stack(mids)
        ok = np.asarray(fn(x.reshape(-1), np.tile(every, len(mids)))).reshape(len(mids), n)
        node = np.zeros(n, dtype=np.int64)
        for _ in range(k):
            yes, mid = ok[node, every], x[node, every]
            lo = np.where(yes, mid, lo)
            hi = np.where(yes, hi, mid)
            node = 2 * node + np.where(yes, 1, 2)
        done += k
    return lo, hi


T = TypeVar("T")


def rows_taken(take: Callable[[np.ndarray], T], whole: T | None = None) -> Callable[[np.ndarray | None], T]:
    """``take(rows)`` (the per-row inputs of ``rows``) kept by the length of ``rows``, for a
    ``bisect_levels`` predicate: within one search every call of one length carries the same
    rows (every row, repeated as often), so each is taken once. ``None`` (every row, outside
    the search) is ``whole``."""
    kept: dict[int, T] = {}

    def at(rows: np.ndarray | None) -> T:
        if rows is None:
            if whole is None:
                raise ValueError("rows_taken: every row asked for, but no whole inputs were given")
            return whole
        if len(rows) not in kept:
            kept[len(rows)] = take(rows)
        return kept[len(rows)]
    return at


FIXED_POINT_RTOL = 1e-12
"""Relative width of the bracket at which ``fixed_point`` stops: far below the 1e-6 of the
convergence test and the ~3e-7 that the former 24 geometric bisection steps reached."""


RESTRICT_ROWS = 128
"""Below this many configurations a vectorised iteration costs about the same whatever the
rows it carries (numpy's per-call overhead): ``fixed_point`` goes on with all of them rather
than building F of the unfinished ones, and ``capacity_at_slo`` evaluates a small table
whole (the rows already settled at a rate they met; each row is its own, so the figures are
the same)."""


EVALUATION_POINTS = (3, 5, 7)
"""Points a row a call that ``bisection_by_bracket`` may ask of a small table's evaluation
(``points_per_call``): fewer calls where a call costs about the same whatever its rows."""


def points_per_call(rows: int) -> int:
    """``bisection_by_bracket``'s ``points`` for a search over ``rows`` rows: the most of
    ``EVALUATION_POINTS`` with at most ``RESTRICT_ROWS`` rows a call in all, else 1."""
    return max([k for k in EVALUATION_POINTS if rows * k <= RESTRICT_ROWS], default=1)


def fixed_point(F, lo: np.ndarray, hi: np.ndarray, max_iters: int = 60, restrict=None) -> np.ndarray:
    """Per configuration, a fixed point of F in [lo, hi] (F(lo) > lo, F(hi) <= hi): regula
    falsi with the Illinois modification on the bracket of F(t) - t, which keeps the sign
    change inside and converges superlinearly where F is smooth (2-11 evaluations on the
    shipped instances, against the 24 of the geometric bisection it replaced). A
    configuration stops when the bracket or the residual |F(t) - t| is within
    ``FIXED_POINT_RTOL`` of t; it returns that t (the bracket's upper end if the width
    stopped it). Where F(hi) > hi (no fixed point below hi: beyond saturation) it returns
    hi, as the bisection did; the caller's convergence test flags it.

    ``restrict(idx)``, if given, returns F on the configurations ``idx`` alone: once half of
    the configurations evaluated have stopped, the others go on by themselves (each
    configuration's iterates are its own, so the result is the same); not below
    ``RESTRICT_ROWS`` configurations, where numpy's cost per call, not per row, dominates.
    F (and ``restrict``'s) must be elementwise over configurations and broadcast over a
    leading axis: the bracket's two ends are evaluated in one call, (2, n)."""
    a, b = lo.astype(float).copy(), hi.astype(float).copy()
    both = F(np.stack([a, b]))         # the bracket's two ends in one call (F is elementwise)
    ga, gb = both[0] - a, both[1] - b
    live = (gb <= 0) & (ga > 0) & (b - a > FIXED_POINT_RTOL * b)
    out = b.copy()
    idx = np.arange(len(a))            # the configurations still evaluated (a, b, ... are theirs)
    last = np.zeros(len(a))           # which end moved last: +1 a, -1 b
    for _ in range(max_iters):
        if not live.any():
            break
        if restrict is not None and len(idx) > RESTRICT_ROWS and 2 * np.count_nonzero(live) <= len(idx):
            keep = np.flatnonzero(live)
            idx, a, b, ga, gb, last, live = idx[keep], a[keep], b[keep], ga[keep], gb[keep], last[keep], live[keep]
            F = restrict(idx)
        x = (a * gb - b * ga) / (gb - ga)
        x = np.where(np.isfinite(x) & (x > a) & (x < b), x, np.sqrt(a * b))
        x = np.where(live, x, b)
        gx = F(x) - x
        right = gx > 0                # the sign change is above x: a moves
        moved = np.where(right, 1.0, -1.0)
        twice = moved == last
        # the end that stays twice in a row has its value halved (Illinois), so both ends move
        new_ga = np.where(right, gx, np.where(twice, ga / 2.0, ga))
        new_gb = np.where(right, np.where(twice, gb / 2.0, gb), gx)
        a, b = np.where(live & right, x, a), np.where(live & ~right, x, b)
        ga, gb = np.where(live, new_ga, ga), np.where(live, new_gb, gb)
        last = np.where(live, moved, last)
        hit = live & (np.abs(gx) <= FIXED_POINT_RTOL * x)
        out[idx] = np.where(hit, x, np.where(live, b, out[idx]))
        live &= ~hit & (b - a > FIXED_POINT_RTOL * b)
    return out


def exp_tail_quantile(mean, prob_wait, p):
    """p-quantile of a wait with P(W > t) = a exp(-t a / mean), a = P(wait) (section 4)."""
    a = np.clip(prob_wait, 1e-12, 1.0)
    tail = 1.0 - p
    return np.where(a > tail, mean / a * np.log(a / tail), 0.0)


JOINERS_SUMMED = 16
"""At most this many whole-joiner counts are summed one by one (``joined_step``)."""
JOINERS_TAIL = 1e-6
"""The sum over the joiner count stops once P(N > K) is below this everywhere."""


def joiner_counts(rate, fixed, wait=0.0, prob_wait=1.0):
    """The count N of the prompts that join a prompt's last step, whole prompts (section 5,
    'whole joiners'): they arrive at ``rate`` (Poisson) during a time ``fixed`` and a wait that
    is 0 with probability 1 - a and else exponential of mean ``wait`` / a, a = ``prob_wait``
    (the wait's mean is ``wait``). N is a Poisson count of mean mu = rate fixed plus, with
    probability a, a geometric one (a Poisson count over an exponential time) of mean nu =
    rate wait / a, P(n) = (1 - r) r^n, r = nu / (1 + nu); so E[N] = rate (fixed + wait), the
    fluid's, and P(N = n) = (1 - a) pois(n) + a (1 - r) h_n, h_n = r h_(n-1) + pois(n).
    Returns (E[N], an iterator over P(N = n), n = 0, 1, 2, ...)."""
    with np.errstate(invalid="ignore"):                # no arrivals over an endless time: 0, not nan
        m_fixed, m_wait = np.where(rate > 0.0, rate * fixed, 0.0), np.where(rate > 0.0, rate * wait, 0.0)
    mu = np.minimum(m_fixed, 1e300)                    # an endless time: no term, all tail
    a = np.asarray(prob_wait, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        nu = np.where(a > 0.0, m_wait / np.maximum(a, 1e-300), 0.0)
        r = 1.0 / (1.0 + 1.0 / nu)                     # 0 at nu = 0, 1 at nu = inf

    def pmf():
        pois = np.exp(-mu)
        h = pois
        n = 0
        while True:
            yield (1.0 - a) * pois + a * (1.0 - r) * h
            n += 1
            pois = pois * mu / n
            h = r * h + pois
    return mu + a * nu, pmf()


def joined_step(step, alone, last, size, cap, rate, fixed, wait=0.0, prob_wait=1.0,
                most: int = JOINERS_SUMMED, tail: float = JOINERS_TAIL,
                step_at: Callable[[np.ndarray, int], Callable] | None = None):
    """E[step(min(cap, last + size N))] over the whole-joiner count N (``joiner_counts``): a
    prompt's last piece of ``last`` tokens alone (``alone``: step(last)) where none came, else
    with N prompts of ``size`` tokens beside it, within the budget ``cap`` (section 5, 'whole
    joiners'). The step jumps (past the CUDA graphs) and is capped at the budget, so its
    expectation is not the step at the expected count. The counts n = 1..K are summed one by
    one, K, in each configuration, the fewest for which P(N > K) <= ``tail`` or the step at
    K + 1 joiners is already the budget's (at most ``most``; a configuration's own, so that its
    figures do not depend on the others of the call); the counts above K are taken at their
    conditional mean (E[N] less the summed ones' mean, over P(N > K)). The steps are one call of
    ``step``, stacked on a leading axis (two with ``step_at``, below). ``step`` rises with its tokens, so
    the error is at most P(N > K) [step(cap) - step(min(cap, last + size (K + 1)))]: 0 where
    the budget is reached, below ``tail`` x the budget-full step elsewhere unless K =
    ``most``. ``most`` = 0 is the step at E[N | N >= 1] joiners, one call as well.

    ``step_at(rows, n)``, where the ``n`` configurations lie along one axis: ``step`` of the
    configurations ``rows`` only (its tokens stacked the same way). Given, the counts above a
    k are evaluated only on the configurations whose own K passes k (most need a few counts,
    the call's largest K only some), k chosen for the least work (``_joiner_split``); the
    figures are the same bit for bit, each configuration's terms computed and summed in the
    same order (a count past its own K has probability 0 and adds 0; where the step is not
    finite, 0 x inf = nan: configurations whose figure is infinite by k are taken too)."""
    mean, pmf = joiner_counts(rate, fixed, wait, prob_wait)
    p0 = next(pmf)
    below, summed = p0, 0.0 * p0
    probs: list[np.ndarray] = []
    room = (cap - last) / size                         # joiners from which the budget is full

    def going(k):       # a configuration still summing after k counts (its own K not reached)
        return (below < 1.0 - tail) & (room > k + 1)
    live = going(0)
    own_k = 0.0 * p0                                   # each configuration's own K
    while len(probs) < most and np.any(live):
        k = len(probs)
        q = np.where(live, next(pmf), 0.0)             # a configuration's own K: the same figures in any call
        probs.append(q)
        below, summed, own_k = below + q, summed + (k + 1) * q, own_k + live
        live = live & going(k + 1)
    K = len(probs)
    beyond = np.clip(1.0 - below, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rest = np.fmax(np.where(beyond > 0.0, (mean - summed) / beyond, own_k + 1.0), own_k + 1.0)
    shape = np.broadcast_shapes(np.shape(rest), np.shape(last), np.shape(size), np.shape(cap))
    # counts 1..k and the rest stacked over every configuration; counts k + 1..K over the
    # configurations whose own K passes k only (``step_at``, one call): a count past a
    # configuration's own K has probability 0 and adds 0 (the same figures, bit for bit)
    own_k = np.broadcast_to(own_k, shape)
    k = K if step_at is None or len(shape) != 1 or np.shape(alone) != shape else _joiner_split(own_k, K)
    counts = np.concatenate([np.broadcast_to(np.arange(1.0, k + 1.0).reshape((k,) + (1,) * len(shape)), (k,) + shape),
                             np.broadcast_to(rest, (1,) + shape)])
    t = step(np.minimum(cap, last + size * counts))
    out = p0 * alone + beyond * t[k]
    for i, q in enumerate(probs[:k]):  # elementwise, in order: a configuration's figure is the same in any call
        out = out + q * t[i]
    if k < K and step_at is not None:       # (k < K only with step_at)
        # and the configurations already infinite (a step infinite at every count): stacked,
        # their counts past their own K add 0 x inf = nan, which leaving them out would not (a
        # NaN stays itself, its sign too, so those are left out: taken, a step of the taken
        # configurations may give a NaN of the other sign)
        rows = np.flatnonzero((own_k > k) | np.isinf(out))
        lv, sv, cv = (np.broadcast_to(v, shape)[rows] for v in (last, size, cap))
        t = step_at(rows, shape[0])(np.minimum(cv, lv + sv * np.arange(k + 1.0, K + 1.0)[:, None]))
        part = out[rows]
        for i, q in enumerate(probs[k:]):
            part = part + np.broadcast_to(q, shape)[rows] * t[i]
        out[rows] = part
    return out


JOINER_TAKE_COST = 1.0
"""A configuration taken (``StepPhysics.take``: ~70 arrays gathered) costs about one step
evaluated (``joined_step``'s split; measured at 0.04 and 0.05-0.12 us)."""
JOINER_CALL_COST = 20_000
"""A call of the step on taken configurations costs about this many steps evaluated (the
take's and the call's fixed ~1-2 ms)."""


def _joiner_split(own_k: np.ndarray, K: int) -> int:
    """The k in 0..K for which counts 1..k over every configuration and k + 1..K over those
    whose own K passes k costs least (in steps evaluated, a taken configuration and the call
    counted at ``JOINER_TAKE_COST``, ``JOINER_CALL_COST``); K: no configuration taken."""
    n = own_k.size
    own = np.where(own_k > 0, own_k, 0).astype(np.int64).ravel()       # nan (no count summed): 0
    above = n - np.cumsum(np.bincount(own, minlength=K + 1))[:K + 1]    # own K > k
    ks = np.arange(K + 1)
    cost = n * (ks + 1.0) + above * (K - ks + JOINER_TAKE_COST) + np.where(above > 0, JOINER_CALL_COST, 0)
    return int(np.argmin(cost))


def mixture_quantile(means, sds, weights, p, z: float | None = None, rtol: float = 1e-12, max_iters: int = 100):
    """p-quantile of a mixture of normals (lists of arrays): Newton on the mixture's CDF from
    the moment-matched normal's quantile (``z``: the standard normal's p-quantile), kept
    inside the bracket [min mean - 6 sd, max mean + 6 sd] that the CDF values found so far
    narrow (a step leaving it is replaced by the bracket's middle), until a step is within
    ``rtol`` of the estimate; only the configurations not yet there are evaluated. 3-5
    evaluations where the components overlap, instead of the 30 bisection steps this
    replaced, whose resolution (2^-30 of the bracket) it improves on (section 5)."""
    shape = np.shape(sum(means) + sum(sds) + sum(weights))
    means, weights = [np.broadcast_to(m, shape) for m in means], [np.broadcast_to(w, shape) for w in weights]
    sds = [np.broadcast_to(np.maximum(s, 1e-15), shape) for s in sds]
    lo = np.min([m - 6 * s for m, s in zip(means, sds)], axis=0)
    hi = np.max([m + 6 * s for m, s in zip(means, sds)], axis=0)
    total = sum(weights)
    mu = sum(w * m for m, w in zip(means, weights)) / total
    var = sum(w * (s * s + m * m) for m, s, w in zip(means, sds, weights)) / total - mu * mu
    x = mu + (0.0 if z is None else z) * np.sqrt(np.maximum(var, 0.0))
    # components far apart (step kinds much longer than the decode step's spread): the
    # quantile lies in the component where the cumulative weight (by mean) passes p, at
    # its own quantile of the remainder (logistic approximation of the normal's inverse)
    order = np.argsort(np.stack(means), axis=0)
    M, Sd, W = (np.take_along_axis(np.stack(a), order, axis=0) for a in (means, sds, weights))
    cum = np.cumsum(W, axis=0) / total
    k = np.minimum(np.sum(cum < p, axis=0), len(means) - 1)[None]
    below = np.where(k > 0, np.take_along_axis(cum, np.maximum(k - 1, 0), axis=0), 0.0)[0]
    wk = np.take_along_axis(W, k, axis=0)[0] / total
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.clip((p - below) / wk, 1e-12, 1.0 - 1e-12)
        apart = np.take_along_axis(M, k, axis=0)[0] + np.take_along_axis(Sd, k, axis=0)[0] * np.log(q / (1 - q)) / 1.702
    spread = np.max(np.stack(means), axis=0) - np.min(np.stack(means), axis=0)
    x = np.where(spread > 6.0 * np.max(np.stack(sds), axis=0), apart, x)
    x = np.where((x > lo) & (x < hi), x, 0.5 * (lo + hi))
    act = np.flatnonzero(np.isfinite(x))
    # the components stacked (components x configurations): each element by the same operations
    # as one component at a time, the components' terms summed in their order as sum() does
    Ms, Ss, Ws = np.stack(means), np.stack(sds), np.stack(weights)
    for _ in range(max_iters):
        if not len(act):
            break
        xa, la, ha = x[act], lo[act], hi[act]
        ms, ss, ws = Ms[:, act], Ss[:, act], Ws[:, act]
        zs = (xa - ms) / ss
        f = _in_order(ws * normal_cdf(zs)) - p
        dens = _in_order(ws * np.exp(-0.5 * zs * zs) / ss) / np.sqrt(2.0 * np.pi)
        la, ha = np.where(f < 0, xa, la), np.where(f < 0, ha, xa)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            step = np.where(f != 0, f / dens, 0.0)
        new = xa - step
        new = np.where(np.isfinite(new) & (new >= la) & (new <= ha), new, 0.5 * (la + ha))
        x[act], lo[act], hi[act] = new, la, ha
        act = act[~(np.abs(new - xa) <= rtol * np.abs(xa))]
    return x


def _in_order(terms: np.ndarray) -> np.ndarray:
    """sum() of the rows of ``terms``: 0 + the first + the second + ..., in that order."""
    total = 0 + terms[0]
    for row in terms[1:]:
        total = total + row
    return total


def residual_quantile(shares, kinds, tail):
    """The x at which P(residual > x) = tail for the residual of the step in progress,
    uniform over a length-biased step of one of the ``kinds`` (their time shares ``shares``):
    sum_i share_i max(0, 1 - x / t_i) = tail. The left side is convex, decreasing and
    linear between the t_i, so Newton from 0 (right derivatives at the kinks) stays below
    the root and lands on it in at most one step per kind (section 5)."""
    x = np.zeros(np.shape(kinds[0]))
    both = np.broadcast_arrays(*[np.asarray(v, dtype=float) for v in (*shares, *kinds)])
    f, t = np.stack(both[:len(shares)]), np.stack(both[len(shares):])     # kinds x configurations
    f_t = f / t
    for _ in range(len(kinds) + 1):
        above = _in_order(f * np.maximum(1.0 - x / t, 0.0)) - tail
        slope = _in_order(np.where(t > x, f_t, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(above > 0, x + above / slope, x)
    return x


def finite_squashed(g) -> np.ndarray:
    """g as floats, NaN where not finite (an infinite distance says nothing to a secant),
    squashed to g / (1 + |g|): the same sign and, near 0, the same value, but a far point's
    huge distance (a latency exploding near saturation) no longer pins the secant to the
    other end."""
    g = np.asarray(g, dtype=float)
    return np.where(np.isfinite(g), g / (1.0 + np.abs(g)), np.nan)


def _path_cell(lo: np.ndarray, hi: np.ndarray, levels: np.ndarray, at: np.ndarray, geometric: bool
               ) -> tuple[np.ndarray, np.ndarray]:
    """The ends of the cell a bisection from [lo, hi] reaches after ``levels`` more steps (per
    row) if its predicate holds up to ``at`` and fails above: the midpoints computed as the
    bisection computes them, so each end is a point it would ask about (or lo, hi themselves)."""
    lo, hi = lo.copy(), hi.copy()
    for k in range(int(levels.max(initial=0))):
        go = levels > k
        mid = np.sqrt(lo * hi) if geometric else 0.5 * (lo + hi)
        below = mid <= at
        lo = np.where(go & below, mid, lo)
        hi = np.where(go & ~below, mid, hi)
    return lo, hi


def _last_step(blo: np.ndarray, bhi: np.ndarray, iters: int, geometric: bool):
    """The bisection's last step on [blo, bhi] in ``iters`` steps (relative, log, if
    ``geometric``, else absolute), and ``past(x, k)``: x moved k margins up, a margin just over
    that step."""
    width = (np.log(np.maximum(bhi / blo, 1.0)) if geometric else bhi - blo) / 2.0 ** iters
    margin = 1.01 * width + 1e-12

    def past(x, k):
        return x * np.exp(k * margin) if geometric else x + k * margin
    return width, past


def first_point(lo: np.ndarray, hi: np.ndarray, iters: int, ceiling: np.ndarray, geometric: bool = True
                ) -> tuple[np.ndarray, np.ndarray]:
    """``bisection_by_bracket``'s default first point of each row (``first`` None): just past
    the ceiling (1.5 of its margins, the bisection's last step and 1 %) where that is below
    the upper end by a margin, else half of the upper end; and where it is the former."""
    blo, bhi = lo.astype(float), hi.astype(float)
    _, past = _last_step(blo, bhi, iters, geometric)
    inside = past(ceiling, 1.5) < past(bhi, -1.0)
    return np.where(inside, past(ceiling, 1.5), 0.5 * bhi), inside


def bisection_by_bracket(evaluate, lo: np.ndarray, hi: np.ndarray, g_lo: np.ndarray, iters: int,
                          ceiling: np.ndarray, geometric: bool = True, g_hi: np.ndarray | None = None,
                          first: np.ndarray | None = None, points: int = 1,
                          seen: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ends of ``bisect(ok, lo, hi, iters, geometric)`` for a predicate ok that
    holds at ``lo`` and is monotone (true below a boundary, false above), without
    evaluating it at every midpoint (section 6).

    Each configuration keeps the highest rate L known to meet it and the lowest H known to
    miss it; a bisection midpoint at or below L is settled true, one at or above H false, so
    the bisection is replayed step by step until a midpoint falls between L and H. Only
    then is ``evaluate(x, rows) -> (ok, g)`` called (g: a distance to the boundary, positive
    where ok fails, such as the log of the largest ratio to a target; NaN where it says
    nothing), at a point chosen to shrink [L, H] around the boundary: regula falsi on g
    (squashed to g / (1 + |g|)) against the rate through L and H, with the Illinois
    modification (an end kept twice in a row has its g halved, so that a convex g, such as
    a latency nearing saturation, does not keep the estimate on one side); once its step
    is below ``delta`` (1/32 of the bisection's last step) the boundary is that close, and
    the point is ``delta`` past the estimate, away from the last point, so that the other
    end closes in too. The estimate is then moved to the nearer unknown end of the cell the
    bisection would end in were the boundary there (a midpoint it asks about: when the
    estimate is right, those two ends settle every step left). The bisection's own
    midpoint is taken where the estimate is outside [L, H], where [L, H] is narrower than
    the bisection's last step, and after four evaluations that settled no step (so a row
    needs at most five evaluations a step: on the 50-workload fleet benchmark 1 above the
    ceiling and 7.6 on average below it, against 16, and 9.1 with the secant through the
    last two points and the halving safeguard this replaced). Which points are evaluated
    changes no result: the ends are the bisection's, given monotonicity.

    ``ceiling`` (per row; inf for none): a row with L far enough above it that the
    bisection's lower end must exceed it stops there, flagged in the third result (its
    ends are then only bounds: lo <= L, hi = inf). ``g_hi``: the distance at ``hi`` where
    the caller knows ok fails there; ``first``: an estimate of the boundary, the lower end
    of the bisection's last cell around it evaluated first (when the estimate is right, the
    upper end next settles every step); default: just past the ceiling where there is one,
    else half of ``hi``.

    ``points`` > 1 (for an ``evaluate`` whose cost is per call, not per row: a small table,
    ``rows`` may then repeat): each call also asks, for each row, the points that settle the
    most steps should the first one be wrong: the other end of the cell the estimate names,
    the bisection's own next midpoint and the two after it, or, where the first point is that
    midpoint, the midpoints of the two steps after it (those strictly between L and H; at most
    ``points`` a row). A row's L and H then move to its highest point that holds and its lowest that
    fails: fewer calls, the same ends.

    ``seen``: (rows, ok, g) the caller already evaluated at their first point (the default
    one past the ceiling, ``first_point``; ``first`` None, ``points`` 1), taken as this
    search's own first evaluation: the same state, so the same points after it."""
    n = len(lo)
    blo, bhi = lo.astype(float).copy(), hi.astype(float).copy()
    steps = np.zeros(n, dtype=np.int64)
    L, H = blo.copy(), (np.full(n, np.inf) if g_hi is None else bhi.copy())
    gL, gH = finite_squashed(g_lo), (np.full(n, np.nan) if g_hi is None else finite_squashed(g_hi))
    wL, wH = np.ones(n), np.ones(n)          # Illinois: the weights of gL and gH in the estimate
    x_last, ok_last = blo.copy(), np.ones(n, dtype=bool)    # the last point evaluated
    width, past = _last_step(blo, bhi, iters, geometric)

    def middle(a, b):
        return np.sqrt(a * b) if geometric else 0.5 * (a + b)
    above = np.zeros(n, dtype=bool)
    # first point: just past the ceiling where there is one (a row meeting it there is done),
    # else half of the upper end
    cell = None if first is None else _path_cell(blo, bhi, np.full(n, iters), first, geometric)
    x0 = first_point(blo, bhi, iters, ceiling, geometric)[0] if cell is None else \
        cell[0]     # a point the bisection asks about
    x0_other = None if cell is None or points < 2 else cell[1]
    pending = np.ones(n, dtype=bool)         # the first point not yet evaluated
    stall = np.full(n, -1, dtype=np.int64)   # evaluations in a row that settled no step

    def learn(rows, x, ok, g):
        """Rows ``rows`` evaluated at ``x``: ``ok`` there, distance ``g``."""
        g = finite_squashed(g)
        twice = ok == ok_last[rows]              # the same end moved as last time: halve the other's g
        wH[rows] = np.where(ok, np.where(twice, wH[rows] * 0.5, wH[rows]), 1.0)
        wL[rows] = np.where(ok, 1.0, np.where(twice, wL[rows] * 0.5, wL[rows]))
        gL[rows] = np.where(ok, g, gL[rows])
        gH[rows] = np.where(ok, gH[rows], g)
        L[rows] = np.where(ok, x, L[rows])
        H[rows] = np.where(ok, H[rows], x)
        x_last[rows], ok_last[rows] = x, ok
    if seen is not None:
        if first is not None or points > 1:
            raise ValueError("bisection_by_bracket: seen is the default first point's, evaluated one a row")
        rows, ok, g = seen
        if not np.all((x0[rows] > L[rows]) & (x0[rows] < H[rows])):
            raise ValueError("bisection_by_bracket: seen rows whose first point is not inside their bracket")
        learn(rows, x0[rows], ok, g)
        # as after the first pass (no step settled before the first point) and its evaluation
        pending[rows], stall[rows] = False, 0
    while True:      # ends: every fifth evaluation of a row at the latest is at a midpoint
        before = steps.copy()
        # replay every settled step of the bisection
        act = np.flatnonzero(steps < iters)
        while len(act):
            mid = middle(blo[act], bhi[act])
            up, down = mid <= L[act], mid >= H[act]
            known = up | down
            act, mid, up = act[known], mid[known], up[known]
            blo[act] = np.where(up, mid, blo[act])
            bhi[act] = np.where(up, bhi[act], mid)
            steps[act] += 1
            act = act[steps[act] < iters]
        above |= L > past(ceiling, 1.0)
        stall = np.where(steps > before, 0, stall + 1)
        rows = np.flatnonzero((steps < iters) & ~above)
        if not len(rows):
            break
        Lr, Hr = L[rows], np.minimum(H[rows], bhi[rows])
        step = width[rows] * Lr if geometric else width[rows]      # the last step, near L
        d, span = step / 32.0, Hr - Lr
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            a, b = gL[rows] * wL[rows], gH[rows] * wH[rows]
            est = Lr - a * span / (b - a)
            # its step is within delta of the last point: the boundary is that close, so
            # step delta past the estimate, away from the last point, to close the other end
            near = np.abs(est - x_last[rows]) < d
            est = np.where(near, np.where(ok_last[rows], est + d, est - d), est)
        usable = (est > Lr) & (est < Hr) & np.isfinite(est) & (span > step) & (stall[rows] < 4)
        lo_end, hi_end = _path_cell(blo[rows], bhi[rows], iters - steps[rows], np.where(usable, est, blo[rows]),
                                    geometric)
        end = np.where(lo_end > Lr, lo_end, hi_end)
        est = np.where((end > Lr) & (end < H[rows]), end, est)
        x = np.where(usable, est, middle(blo[rows], bhi[rows]))
        first_now = pending[rows] & (x0[rows] > Lr) & (x0[rows] < H[rows])
        x = np.where(first_now, x0[rows], x)
        pending[rows] = False
        if points > 1:
            mid = middle(blo[rows], bhi[rows])
            other = np.where(x == lo_end, hi_end, lo_end)
            if x0_other is not None:
                other = np.where(first_now, x0_other[rows], other)
            a, b = middle(blo[rows], mid), middle(mid, bhi[rows])       # the next step's midpoints
            guided = usable | first_now
            extra = [np.where(guided, other, a), np.where(guided, mid, b), np.where(guided, a, middle(blo[rows], a)),
                     np.where(guided, b, middle(a, mid)), middle(mid, b), middle(b, bhi[rows])][:points - 1]
            _more_points(evaluate, rows, x, extra, L, H, gL, gH, wL, wH, x_last, ok_last)
            continue
        ok, g = evaluate(x, rows)
        learn(rows, x, ok, g)
    return blo, np.where(above, np.inf, bhi), above


def _more_points(evaluate, rows, x, extra, L, H, gL, gH, wL, wH, x_last, ok_last) -> None:
    """One call of ``bisection_by_bracket`` with ``points`` > 1: ``x`` (a row's first point) and
    the ``extra`` points of each row that lie strictly between its L and H, evaluated together;
    each row's L moves to the highest point that holds, H to the lowest that fails (the
    distances g with them), the Illinois weights as after one point that moved the same end
    (both reset where both ends moved)."""
    Lr, Hr = L[rows], H[rows]
    keep = [(e > Lr) & (e < Hr) & (e != x) for e in extra]
    xs = np.concatenate([x] + [e[k] for e, k in zip(extra, keep)])
    which = np.concatenate([np.arange(len(rows))] + [np.flatnonzero(k) for k in keep])
    ok, g = evaluate(xs, rows[which])
    g = finite_squashed(g)
    newL, newH, g_at_L, g_at_H = Lr.copy(), Hr.copy(), gL[rows], gH[rows]
    for j in np.argsort(xs, kind="stable"):          # ascending: the last ok is the highest
        r = which[j]
        if ok[j] and xs[j] > newL[r]:
            newL[r], g_at_L[r] = xs[j], g[j]
    for j in np.argsort(-xs, kind="stable"):         # descending: the last miss is the lowest
        r = which[j]
        if not ok[j] and xs[j] < newH[r]:
            newH[r], g_at_H[r] = xs[j], g[j]
    up, down = newL > Lr, newH < Hr
    only_up, only_down = up & ~down, down & ~up
    last = ok_last[rows]
    wL[rows] = np.where(up, 1.0, np.where(only_down & ~last, wL[rows] * 0.5, wL[rows]))
    wH[rows] = np.where(down, 1.0, np.where(only_up & last, wH[rows] * 0.5, wH[rows]))
    gL[rows], gH[rows] = g_at_L, g_at_H
    L[rows], H[rows] = newL, newH
    x_last[rows], ok_last[rows] = x, ok[:len(rows)]
