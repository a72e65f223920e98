"""What a trace says about a workload, as pure functions of its requests (docs/workloads.md):
the arrival rate and its shape per minute, the burstiness of arrivals, the length
distributions, and the prefix reuse its block hashes allow.

Clocks: ``window`` is read on the trace's own clock (seconds from its first request);
``rate_scale`` x replays the trace x times faster (every time divided by x), so rates scale
by x, the span by 1/x, and the burstiness, lengths and reuse do not change.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from planner.traces.cache import BlockLRU
from planner.traces.read import Trace

TIED = 0.5
"""Timestamps are taken as quantised to a clock tick when more than this share of the
inter-arrival gaps is 0 (Mooncake's conversation trace: 90 % of gaps, a 3 s tick)."""

MINUTE = 60.0
MAX_MINUTES = 527_040
"""The longest replayed span summarised, in minutes (366 days): the per-minute bins are held in
memory, so the span, not the number of requests, would otherwise size them."""


class SpanTooLong(ValueError):
    """The replayed trace spans more than ``MAX_MINUTES``."""


@dataclass(frozen=True)
class LengthStats:
    """Tokens per request: mean, squared coefficient of variation (population variance /
    mean^2) and order statistics (each an observed value: the smallest x with F(x) >= p)."""

    mean: float
    cv2: float
    min: int
    p50: int
    p90: int
    p99: int
    max: int


def length_stats(x: np.ndarray) -> LengthStats:
    v = np.asarray(x, dtype=float)
    mean = float(v.mean())
    p50, p90, p99 = (int(q) for q in np.percentile(x, [50, 90, 99], method="inverted_cdf"))
    return LengthStats(mean, float(v.var()) / mean**2, int(np.min(x)), p50, p90, p99, int(np.max(x)))


@dataclass(frozen=True)
class Arrivals:
    """The arrival process of a trace, on its replay clock.

    ``rate_per_s`` is (requests - 1) / span, the inverse of the mean inter-arrival gap.
    ``interarrival_cv2`` is Var(gap) / mean(gap)^2 over consecutive requests (0 gaps
    included). When timestamps are quantised (more than ``TIED`` of the gaps are 0), that
    figure measures the clock, not the traffic; the requests per tick then give the
    burstiness: ``tick_dispersion`` = Var / mean of the count per tick (the index of
    dispersion of counts: 1 for Poisson arrivals, and the inter-arrival CV^2 for any renewal
    process once a tick holds several requests), empty ticks counted. ``burstiness`` is the
    whole window's figure, and ``basis`` says which of the two it is; slow swings of the rate
    inflate it (a changing rate reads as bursty arrivals), so it is reported, not planned with.
    ``by_scale``: (t, I(t)) at each of ``DISPERSION_SCALES_S``, ``dispersion`` on the times a
    replay uses (a coarse clock's stamps spread over their tick); the load model takes I(t) at
    the scale a plan's queue relaxes over (``queue_burstiness``, docs/workloads.md section 3)."""

    span_s: float
    rate_per_s: float | None
    interarrival_cv2: float | None
    tied_share: float | None
    tick_s: float | None
    tick_dispersion: float | None
    burstiness: float | None
    basis: str | None
    by_scale: tuple[tuple[float, float | None], ...] = ()


def arrivals(time_s: np.ndarray) -> Arrivals:
    t = np.asarray(time_s, dtype=float)
    span = float(t[-1] - t[0]) if t.size else 0.0
    if t.size < 2 or span <= 0:
        return Arrivals(span, None, None, None, None, None, None, None)
    gaps = np.diff(t)
    mean = float(gaps.mean())
    cv2 = float(gaps.var()) / mean**2
    tied = float(np.mean(gaps == 0))
    tick, per_tick_index = _clock(t, tied)
    spread = _spread(t, tick)               # as a replay times them (``spread_over_ticks``)
    curve = tuple((x, dispersion(spread, x)) for x in DISPERSION_SCALES_S)
    return Arrivals(span, (t.size - 1) / span, cv2, tied, tick, per_tick_index,
                    cv2 if per_tick_index is None else per_tick_index,
                    "inter-arrival gaps" if per_tick_index is None else "requests per clock tick", curve)


def spread_over_ticks(time_s: np.ndarray, seed: int = 0) -> np.ndarray:
    """Arrival times for a replay: on a coarse clock (``arrivals``' tick: most gaps 0) a stamp
    says only in which tick a request came, so each request is put at a uniform time within
    its tick, [stamp, stamp + tick), seeded, the requests of a tick kept in their order;
    replayed at the stamps, a tick's requests would all reach the engine in the same instant
    (docs/workloads.md section 3). Other traces' times are returned as they are."""
    t = np.asarray(time_s, dtype=float)
    if t.size < 2 or t[-1] <= t[0]:
        return t
    return _spread(t, _clock(t, float(np.mean(np.diff(t) == 0)))[0], seed)


def _clock(t: np.ndarray, tied: float) -> tuple[float | None, float | None]:
    """A coarse clock's tick and the index of dispersion of the requests per tick (empty ticks
    counted), where more than ``TIED`` of the gaps (``tied``) are 0; else (None, None). ``t``:
    times in order over a positive span."""
    if tied <= TIED:
        return None, None
    distinct, counts = np.unique(t, return_counts=True)
    steps = np.diff(distinct)
    tick = float(np.median(steps))
    empty = int(np.maximum(np.rint(steps / tick) - 1, 0).sum())
    per_tick = np.concatenate([counts, np.zeros(empty)])
    return tick, float(per_tick.var() / per_tick.mean())


def _spread(t: np.ndarray, tick: float | None, seed: int = 0) -> np.ndarray:
    if not tick:
        return t
    u = np.random.default_rng(seed).uniform(0.0, tick, t.size)
    return t + u[np.lexsort((u, t))]        # times are in order: the k-th of (stamp, draw) order shares k's stamp


MIN_BINS = 20
"""The fewest whole bins an index of dispersion is read from: its relative standard error for
Poisson counts is about sqrt(2 / bins), 32 % at 20 bins for one placement of the bins (less
averaged over ``OFFSETS`` placements)."""

OFFSETS = 8
"""Placements of the bins an index of dispersion is averaged over (``dispersion``)."""

DISPERSION_SCALES_S = (0.1, 1.0, 10.0, 60.0, 600.0)
"""The time scales ``planner trace`` reports the index of dispersion at (seconds)."""


def dispersion(time_s: np.ndarray, scale_s: float, min_bins: int = MIN_BINS, offsets: int = OFFSETS) -> float | None:
    """The index of dispersion of counts I(t) = Var N(t) / E N(t) at t = ``scale_s``: the
    requests in consecutive bins of ``scale_s`` seconds (empty bins counted, a partial bin at
    either end left out), population variance over mean, averaged over ``offsets`` placements
    of the bins, the first at the first request and each next one t / ``offsets`` later (the
    figure then does not hang on where the bins fall, and varies less). 1 for Poisson
    arrivals at every t; for a renewal process it tends to the inter-arrival CV^2 as t grows
    (Cox 1962); a rate that changes over periods longer than t adds t Var(rate) / E(rate).
    None with fewer than ``min_bins`` whole bins in the span (from the first request)."""
    t = np.asarray(time_s, dtype=float)
    if t.size < 2 or not scale_s > 0:
        return None
    rel = t - t[0]
    if int(np.floor(rel[-1] / scale_s + 1e-9)) < max(min_bins, 1):
        return None
    out = []
    for k in range(max(int(offsets), 1)):
        start = scale_s * k / max(int(offsets), 1)
        bins = int(np.floor((rel[-1] - start) / scale_s + 1e-9))    # min_bins - 1 at least
        if bins < 1:
            continue
        inside = rel[(rel >= start) & (rel < start + bins * scale_s)] - start
        counts = np.bincount(np.minimum((inside // scale_s).astype(np.int64), bins - 1), minlength=bins)
        if counts.mean() > 0:
            out.append(float(counts.var() / counts.mean()))
    return float(np.mean(out)) if out else None


@dataclass(frozen=True)
class QueueBurstiness:
    """The burstiness a trace's demand is planned with (docs/workloads.md section 3): the index
    of dispersion ``dispersion`` at ``scale_s`` seconds of the replay clock, the scale asked
    for (``asked_s``, shortened where the window holds fewer than ``MIN_BINS`` such bins) and
    why that scale (``why``: the latency target that set it)."""

    asked_s: float
    scale_s: float
    bins: int
    dispersion: float
    why: str


def queue_burstiness(time_s: np.ndarray, scale_s: float, why: str = "") -> QueueBurstiness:
    """I(t) at ``scale_s``, or at span / ``MIN_BINS`` where the span holds fewer bins."""
    t = np.asarray(time_s, dtype=float)
    span = float(t[-1] - t[0])
    if t.size < 2 or span <= 0:
        raise ValueError("the arrivals have no span: no index of dispersion")
    scale = min(float(scale_s), span / MIN_BINS)
    value = dispersion(t, scale)
    assert value is not None            # span / scale >= MIN_BINS whole bins
    return QueueBurstiness(float(scale_s), scale, int(np.floor(span / scale + 1e-9)), value, why)


@dataclass(frozen=True)
class Minutes:
    """Requests per minute of the replay clock from the first request: bins of 60 s, the last
    one ending at the last request, so 30 to 90 s long (``per_minute``; its ``seconds`` say)."""

    start_s: tuple[float, ...]
    seconds: tuple[float, ...]
    requests: tuple[int, ...]

    @property
    def rates(self) -> tuple[float | None, ...]:
        return tuple(n / s if s > 0 else None for n, s in zip(self.requests, self.seconds))


SHORTEST_LAST_BIN = 0.5
"""A last per-minute bin shorter than this share of a minute is merged into the one before:
a few requests over a sliver of a bin read as a rate far above any minute's (61 requests a
second apart and 5 more 0.5 s later: 12/s against a busiest minute of 1.08/s)."""


def per_minute(time_s: np.ndarray) -> Minutes:
    """Fixed 60 s bins from the first request; the last ends at the last request and, when
    it would be shorter than ``SHORTEST_LAST_BIN`` of a minute, joins the bin before (a
    trace shorter than that is one bin)."""
    t = np.asarray(time_s, dtype=float) - float(time_s[0])
    span = float(t[-1])
    bins = max(1, int(np.ceil(span / MINUTE)))
    if bins > 1 and span - MINUTE * (bins - 1) < SHORTEST_LAST_BIN * MINUTE:
        bins -= 1
    counts = np.bincount(np.minimum((t // MINUTE).astype(np.int64), bins - 1), minlength=bins)
    seconds = [MINUTE] * (bins - 1) + [span - MINUTE * (bins - 1)]
    return Minutes(tuple(MINUTE * k for k in range(bins)), tuple(seconds), tuple(int(c) for c in counts))


def peak_minute(time_s: np.ndarray) -> float | None:
    """The busiest minute's rate: the most requests in any 60 s window inside the trace, per
    second (None for a trace shorter than a minute). The busiest window starts at a request
    or is the trace's last minute [end - 60 s, end]; unlike the fixed bins of ``per_minute``,
    no burst is split between two bins."""
    t = np.asarray(time_s, dtype=float)
    if t[-1] - t[0] < MINUTE:
        return None
    starts = np.flatnonzero(t + MINUTE <= t[-1])
    inside = np.searchsorted(t, t[starts] + MINUTE, side="left") - starts
    last = t.size - int(np.searchsorted(t, t[-1] - MINUTE, side="left"))
    return float(max(int(inside.max(initial=0)), last)) / MINUTE


def minute_swing(rate_per_s: float | None, peak_per_s: float | None, span_s: float) -> tuple[float, float] | None:
    """How far the busiest minute lies above the mean rate, in standard deviations of a Poisson
    minute's count at that rate (z = (peak - rate) 60 / sqrt(60 rate)), and the most that
    Poisson noise alone gives, in the same units: the largest of M standard normal counts lies
    near sqrt(2 ln M), and the busiest minute is the largest of sliding minutes, M taken as one
    starting at each second of the span (an upper bound on how many differ), plus one standard
    deviation of margin; that level's tail probability, Q(sqrt(2 ln M) + 1), is read off the
    Poisson count of a minute itself (``poisson_level``), whose upper tail is heavier than a
    normal's at low rates (a few requests a minute). None for a window shorter than a minute.
    A z above the bound is a rate that changes, which one steady state does not see
    (docs/workloads.md section 3)."""
    if rate_per_s is None or peak_per_s is None or rate_per_s <= 0:
        return None
    mean = MINUTE * rate_per_s
    z = (peak_per_s - rate_per_s) * MINUTE / math.sqrt(mean)
    level = 0.5 * math.erfc((math.sqrt(2.0 * math.log(max(span_s, MINUTE))) + 1.0) / math.sqrt(2.0))
    return z, (poisson_level(mean, level) - mean) / math.sqrt(mean)


def poisson_level(mean: float, tail: float) -> int:
    """The largest count k with P(N >= k) > ``tail`` for N Poisson of ``mean`` (``tail`` < 1/2):
    the most requests noise alone puts in a bin at that level."""
    lo = int(math.floor(mean))
    j = np.arange(lo, int(math.ceil(mean + 40.0 * math.sqrt(mean) + 40.0)) + 1, dtype=float)
    head = lo * math.log(mean) - mean - math.lgamma(lo + 1) if lo > 0 else -mean
    logp = head + np.concatenate(([0.0], np.cumsum(np.log(mean / j[1:]))))
    tails = np.cumsum(np.exp(logp)[::-1])[::-1]           # P(N >= j)
    return int(j[np.flatnonzero(tails > tail)[-1]])


def prefix_reuse(trace: Trace, cache_blocks: int | None = None) -> float | None:
    """Share of prompt tokens a prefix cache would not recompute: per request in time order,
    its leading blocks found in the cache (a prefix cache reuses a prompt's blocks up to its
    first miss), in tokens (the last block of a prompt may be partial). The cache holds every
    block seen before (``cache_blocks`` None), or the ``cache_blocks`` most recently used; a
    request's blocks are used from its last to its first, so that its first blocks, which
    later requests share most, are evicted last (vLLM frees a request's blocks tail first for
    the same reason). None when the trace has no block hashes."""
    if trace.block_ids is None or trace.block_offsets is None:
        return None
    size = trace.block_tokens
    ids, offsets, prompts = trace.block_ids.tolist(), trace.block_offsets.tolist(), trace.input_tokens.tolist()
    cache = BlockLRU(cache_blocks)          # the one LRU rule (planner/traces/cache.py)
    hit = 0
    for i, prompt in enumerate(prompts):
        blocks = ids[offsets[i]:offsets[i + 1]]
        hit += min(cache.hits(blocks) * size, prompt)
        cache.use(blocks)
    return hit / float(sum(prompts))


def window(trace: Trace, start_s: float = 0.0, end_s: float | None = None) -> Trace:
    """The requests arriving in [start_s, end_s) on the trace's own clock."""
    t = trace.time_s
    keep = (t >= start_s) & (t < end_s if end_s is not None else True)
    return trace.take(np.flatnonzero(keep))


@dataclass(frozen=True)
class Reuse:
    cache_blocks: int | None    # None: unbounded
    share: float


@dataclass(frozen=True)
class TraceSummary:
    """Everything `planner trace` reports and a workload takes from a trace."""

    file: str
    format: str
    requests: int
    skipped: dict[str, int]
    reordered: bool
    window_start_s: float
    window_end_s: float | None
    rate_scale: float
    arrivals: Arrivals
    minutes: Minutes
    peak_minute_per_s: float | None
    input: LengthStats
    output: LengthStats
    block_tokens: int | None
    reuse: tuple[Reuse, ...]
    queue: QueueBurstiness | None = None    # the burstiness a plan takes (set where a plan reads it)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["minutes"] = {"start_s": list(self.minutes.start_s), "seconds": list(self.minutes.seconds),
                          "requests": list(self.minutes.requests), "rate_per_s": list(self.minutes.rates)}
        out["reuse"] = [asdict(r) for r in self.reuse]
        return out


def summarise(trace: Trace, *, rate_scale: float = 1.0, start_s: float = 0.0, end_s: float | None = None,
              cache_blocks: tuple[int, ...] = ()) -> TraceSummary:
    """The trace's figures over a window, replayed ``rate_scale`` times faster; prefix reuse
    with an unbounded cache and with an LRU of each size in ``cache_blocks`` (blocks)."""
    part = window(trace, start_s, end_s)
    if part.requests == 0:
        raise ValueError(f"the window [{start_s:g}, {'end' if end_s is None else f'{end_s:g}'}) s holds no "
                         f"request (the trace spans {float(trace.time_s[-1]):g} s)")
    raw = float(part.time_s[-1] - part.time_s[0])
    with np.errstate(over="ignore"):
        time_s = (part.time_s - part.time_s[0]) / rate_scale
    if not (math.isfinite(float(time_s[-1])) and float(time_s[-1]) <= MAX_MINUTES * MINUTE):
        raise SpanTooLong(f"the replayed trace spans {raw / rate_scale:g} s ({raw:g} s of trace at rate_scale "
                          f"{rate_scale:g}); its per-minute figures are kept for at most {MAX_MINUTES:,} minutes "
                          "(366 days)")
    reuse: tuple[Reuse, ...] = ()
    if part.block_ids is not None:
        unbounded = prefix_reuse(part)
        assert unbounded is not None
        reuse = (Reuse(None, unbounded),) + tuple(Reuse(n, prefix_reuse(part, n) or 0.0) for n in cache_blocks)
    return TraceSummary(trace.file, trace.format, part.requests, dict(trace.skipped), trace.reordered, start_s, end_s,
                        rate_scale, arrivals(time_s), per_minute(time_s), peak_minute(time_s),
                        length_stats(part.input_tokens),
                        length_stats(part.output_tokens), part.block_tokens if part.block_ids is not None else None,
                        reuse)
