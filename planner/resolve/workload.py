"""A workload as the load model reads it: length distributions (mean, squared coefficient
of variation, and a discrete support for the simulator), latency targets as (metric,
statistic, seconds) with their spec paths, and the demand in one unit (docs/load.md,
docs/instances.md); or all of it from a request trace (docs/workloads.md)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from planner.errors import InputError
from planner.physics.numerics import PERCENTILES, exp_tail_quantile
from planner.schemas.common import PrefixCache, TraceFields
from planner.schemas.plan import MAX_DEMAND_TOKENS_PER_S, STATISTICS, Demand, LengthDistribution, Slo
from planner.traces.cache import ReuseCurve, stated_cached
from planner.traces.figures import (
    MAX_MINUTES,
    SpanTooLong,
    TraceSummary,
    queue_burstiness,
    spread_over_ticks,
    summarise,
    window,
)
from planner.traces.read import Columns, Trace, file_stamp, read_trace
from planner.units import MS
from planner.yamlio import record_read

_Z = {"p50": 0.0, "p90": 1.2815515655446004, "p99": 2.3263478740408408}
BUCKETS = 32
"""Quantile buckets of a lognormal length distribution, for the simulator."""


_TAIL_Z = {"p90": 1.2815515655446004, "p99": 2.3263478740408408, "p99.9": 3.090232306167813}
TAIL = ("p90", "p99", "p99.9", "max")
"""The length quantiles a launch may size its context limit by (planner/launch: the longest
request, or a stated percentile)."""


@dataclass(frozen=True)
class Lengths:
    """Tokens per request: mean, squared CV, and a discrete distribution (values, weights).
    ``kind``: fixed (one number), lognormal (a mean and a CV or a percentile: ``values`` are
    the midpoints of 32 quantile buckets, not its tail), histogram, or trace."""

    mean: float
    cv2: float
    values: tuple[float, ...]
    probabilities: tuple[float, ...]
    kind: str = "histogram"

    @property
    def max(self) -> float:
        return max(self.values)

    def moment(self, k: int) -> float:
        """E[S^k] / E[S]^k: exact for a lognormal, (1 + CV^2)^(k (k - 1) / 2) (its values are bucket
        midpoints, without the tail), else over the distribution's values (1 for a fixed length)."""
        if self.kind == "lognormal":
            return float((1.0 + self.cv2) ** (k * (k - 1) / 2))
        v, p = np.asarray(self.values, dtype=float) / self.mean, np.asarray(self.probabilities, dtype=float)
        return float(np.sum(p * v**k) / np.sum(p))

    def tail(self) -> dict[str, float | None]:
        """p90, p99, p99.9 and the maximum (None for a lognormal, which has none): exact from the
        lognormal's mean and CV, else the smallest value the distribution reaches with that
        probability."""
        if self.kind == "lognormal":
            sigma = math.sqrt(math.log1p(self.cv2))
            mu = math.log(self.mean) - sigma**2 / 2
            out: dict[str, float | None] = {q: float(math.ceil(math.exp(mu + sigma * z))) for q, z in _TAIL_Z.items()}
            return out | {"max": None}
        order = np.argsort(self.values)
        v, cum = np.asarray(self.values)[order], np.cumsum(np.asarray(self.probabilities)[order])
        qs = {"p90": 0.90, "p99": 0.99, "p99.9": 0.999}
        tail: dict[str, float | None] = {q: float(v[min(int(np.searchsorted(cum, p - 1e-12)), len(v) - 1)])
                                         for q, p in qs.items()}
        return tail | {"max": float(v[-1])}


def lengths(x: int | LengthDistribution, path: str) -> Lengths:
    """A fixed length, a histogram, or a lognormal from a mean and a CV or one percentile."""
    if isinstance(x, int):
        return Lengths(float(x), 0.0, (float(x),), (1.0,), "fixed")
    if x.histogram is not None:
        return _discrete(np.array([t for t, _ in x.histogram], dtype=float),
                         np.array([q for _, q in x.histogram], dtype=float))
    mean = float(x.mean or 1)
    sigma = _lognormal_sigma(x, mean, path)
    if sigma == 0.0:
        return Lengths(mean, 0.0, (mean,), (1.0,), "fixed")
    mu = math.log(mean) - sigma**2 / 2
    qs = (np.arange(BUCKETS) + 0.5) / BUCKETS
    values = np.maximum(1.0, np.round(np.exp(mu + sigma * _probit(qs))))
    return Lengths(mean, math.exp(sigma**2) - 1.0, tuple(values.tolist()), tuple([1.0 / BUCKETS] * BUCKETS),
                   "lognormal")


def empirical(tokens: np.ndarray) -> Lengths:
    """The lengths observed in a trace as a histogram: each distinct value with its share."""
    values, counts = np.unique(np.asarray(tokens), return_counts=True)
    return replace(_discrete(values.astype(float), counts.astype(float)), kind="trace")


def _discrete(v: np.ndarray, w: np.ndarray) -> Lengths:
    w = w / w.sum()
    mean = float(v @ w)
    return Lengths(mean, float(((v - mean) ** 2) @ w) / mean**2, tuple(v.tolist()), tuple(w.tolist()))


def _lognormal_sigma(x: LengthDistribution, mean: float, path: str) -> float:
    if x.cv is not None:
        return math.sqrt(math.log1p(x.cv**2))
    for name in ("p50", "p90", "p99"):
        q = getattr(x, name)
        if q is None:
            continue
        z, r = _Z[name], math.log(q / mean)
        # ln q = ln mean - s^2/2 + z s  ->  s^2/2 - z s + r = 0, the smaller root
        disc = z * z - 2.0 * r
        if disc < 0 or (z == 0 and r > 0):
            raise ValueError(f"{path}: no lognormal has mean {mean:g} and {name} {q:g} "
                             f"({name} must be at most {mean * math.exp(z * z / 2):,.0f})")
        return z - math.sqrt(disc) if z > 0 else math.sqrt(-2.0 * r)
    return 0.0


def _probit(q: np.ndarray) -> np.ndarray:
    """Inverse standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9)."""
    a = [-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02,
         -3.066479806614716e01, 2.506628277459239e00]
    b = [-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01,
         -1.328068155288572e01]
    c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00,
         4.374664141464968e00, 2.938163982698783e00]
    d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00]
    out = np.empty_like(q)
    lo, hi = q < 0.02425, q > 1 - 0.02425
    mid = ~(lo | hi)
    r = q[mid] - 0.5
    t = r * r
    out[mid] = ((((((a[0] * t + a[1]) * t + a[2]) * t + a[3]) * t + a[4]) * t + a[5]) * r /
                (((((b[0] * t + b[1]) * t + b[2]) * t + b[3]) * t + b[4]) * t + 1))
    for mask, sign in ((lo, 1.0), (hi, -1.0)):
        qq = q[mask] if sign > 0 else 1 - q[mask]
        u = np.sqrt(-2 * np.log(qq))
        out[mask] = sign * (((((c[0] * u + c[1]) * u + c[2]) * u + c[3]) * u + c[4]) * u + c[5]) / \
            ((((d[0] * u + d[1]) * u + d[2]) * u + d[3]) * u + 1)
    return out


METRIC_OF = {"ttft_ms": "ttft", "tpot_ms": "tpot", "itl_ms": "itl", "e2e_latency_ms": "e2e_latency"}


@dataclass(frozen=True)
class LatencyTarget:
    metric: str        # ttft | tpot | itl | e2e_latency
    statistic: str     # mean | p50 | p90 | p95 | p99
    seconds: float
    path: str          # YAML path, e.g. slo.ttft_ms.p99 (slo.ttft_ms for a bare number: the mean)

    @property
    def label(self) -> str:
        return f"{self.metric.replace('_latency', '').upper()} {self.statistic}"


def targets(slo: Slo, prefix: str = "slo") -> tuple[LatencyTarget, ...]:
    """Every latency target the SLO sets; a bare number is the mean under load. ``prefix``:
    the YAML path of the SLO (``slo``, or ``workloads[2].slo`` in a fleet)."""
    out = []
    for key, metric in METRIC_OF.items():
        value = getattr(slo, key)
        if value is None:
            continue
        if isinstance(value, (int, float)):
            out.append(LatencyTarget(metric, "mean", float(value) * MS, f"{prefix}.{key}"))
            continue
        for stat in STATISTICS:
            v = getattr(value, stat)
            if v is not None:
                out.append(LatencyTarget(metric, stat, float(v) * MS, f"{prefix}.{key}.{stat}"))
    return tuple(out)


@dataclass(frozen=True)
class DemandSpec:
    """The demand in the unit the capacity is measured in: output tokens/s (open loop) or
    clients (closed loop)."""

    kind: str                 # tokens_per_s | clients
    value: float
    requests_per_s: float | None
    arrival_cv2: float


def demand(d: Demand | None, output: Lengths) -> DemandSpec | None:
    if d is None:
        return None
    if d.concurrency is not None:
        return DemandSpec("clients", float(d.concurrency), None, 1.0)
    rps = d.requests_per_s if d.requests_per_s is not None else d.output_tokens_per_s / output.mean  # type: ignore
    return DemandSpec("tokens_per_s", rps * output.mean, rps, d.arrival.cv**2)


def relaxation_over_target(statistic: str, rho: float) -> float:
    """t_r / D: the time over which a queue at utilisation ``rho`` forgets its state, over the
    TTFT target D that binds at its capacity (docs/workloads.md section 3, 'The scale'). The
    reflected Brownian motion of Kingman's wait W relaxes over t_r = 4 W / (1 - rho); a target
    at the mean binds at W = D; one at percentile p, with the wait's tail a exp(-x a / W) (a
    about rho), at W = a D / ln(a / (1 - p)). A percentile below the mean wait (ln(a / (1 - p))
    < a: a median at high load) is read as the mean's."""
    if statistic == "mean":
        return 4.0 / (1.0 - rho)
    d_over_w = float(exp_tail_quantile(1.0, rho, PERCENTILES[statistic]))     # D / W: the tail's quantile at W = 1
    return 4.0 / ((1.0 - rho) * max(d_over_w, 1.0))


def queue_scale(targets: tuple[LatencyTarget, ...], output_mean: float,
                max_utilization: float) -> tuple[float | None, str]:
    """The time scale (seconds) at which a plan reads its trace's burstiness, and why
    (docs/workloads.md section 3, 'Burstiness'): the queue that delays a request's first token
    relaxes over t_r, a multiple of the TTFT target D that grows with the utilisation
    (``relaxation_over_target``); the planner takes the largest over its TTFT targets at the
    utilisation cap ``max_utilization``, the most any replica runs at, so that where I(t)
    grows with t (every shipped trace) the burstiness is not understated. Without a TTFT
    target, the longest residence a target allows (the decode batch's occupancy relaxes over a
    request's residence): the longest end-to-end target, else the mean output tokens times the
    longest TPOT or ITL target. None without latency targets: then the whole window's figure."""
    def longest(*metrics: str) -> LatencyTarget | None:
        those = [t for t in targets if t.metric in metrics]
        return max(those, key=lambda t: t.seconds) if those else None

    ttft = [(t.seconds * relaxation_over_target(t.statistic, max_utilization), t) for t in targets
            if t.metric == "ttft"]
    if ttft:
        scale, d = max(ttft, key=lambda st: st[0])
        return scale, (f"{d.path} ({d.label} {d.seconds:g} s) x {scale / d.seconds:.3g}, the queue's relaxation "
                       f"at the utilisation cap {max_utilization:g}")
    if (e := longest("e2e_latency")) is not None:
        return e.seconds, f"{e.path} ({e.label} {e.seconds:g} s)"
    if (t := longest("tpot", "itl")) is not None:
        return t.seconds * output_mean, f"{t.path} x mean output tokens ({t.seconds:g} s x {output_mean:.4g})"
    return None, "no latency target: the whole window's figure"


CV2_FLOOR = 1e-4
"""Burstiness given to the load model for a trace whose arrivals are (nearly) periodic: its
gamma arrivals need a CV above 0 (CV 0.01 is periodic for every purpose here)."""


@dataclass(frozen=True, eq=False)
class Replay:
    """A trace's own requests, as the simulator replays them against a plan (docs/workloads.md
    section 3): arrival times in seconds from the window's first request on the replay clock
    (the trace's clock / ``rate_scale``; a coarse clock's stamps spread over their tick,
    ``spread_over_ticks``), prompt and output tokens, and (Mooncake) each
    prompt's block hashes for a prefix cache. Only where the trace's own rate is the demand."""

    times_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    requests: Trace

    @classmethod
    def of(cls, part: Trace, rate_scale: float) -> Replay:
        t = spread_over_ticks(part.time_s)       # a coarse clock's stamps: spread over their tick
        t = t - (t[0] if part.requests else 0.0)
        return cls(t / rate_scale, part.input_tokens, part.output_tokens, part)

    def share(self, fraction: float, phase: float = 0.0) -> np.ndarray:
        """The requests one replica gets of ``fraction`` of the traffic, spread evenly as a
        round-robin balancer spreads them: request i when floor((i + 1) f + phase) > floor(i f +
        phase). Moving ``phase`` by f gives the balancer's next replica (every index one lower)."""
        f = min(max(float(fraction), 0.0), 1.0)
        i = np.arange(self.times_s.size, dtype=float)
        return np.flatnonzero(np.floor((i + 1.0) * f + phase + 1e-9) > np.floor(i * f + phase + 1e-9))

    def looped(self, fraction: float, at_least: int) -> tuple[np.ndarray, np.ndarray, int]:
        """One replica's stream of at least ``at_least`` requests from a window that gives a
        replica fewer (a short window cannot measure a p90 from a fifth of its requests): the
        window replayed again after itself, pass k with the share of the balancer's k-th next
        replica, so that consecutive passes go through every request of the window, each
        pass in the arrival pattern a replica sees. (the requests' indices in order, their
        arrival times from the first, the passes). A pass follows the last after the window's
        span plus one mean gap, so the window's rate holds across the seam."""
        f = min(max(float(fraction), 0.0), 1.0)
        n = self.times_s.size
        period = (self.times_s[-1] - self.times_s[0]) * (n / (n - 1.0)) if n > 1 else 0.0
        picks: list[np.ndarray] = []
        times: list[np.ndarray] = []
        total = 0
        while total < max(int(at_least), 1):
            k = len(picks)
            pick = self.share(f, (k * f) % 1.0)
            if pick.size == 0:
                break
            picks.append(pick)
            times.append(self.times_s[pick] - self.times_s[0] + k * period)
            total += pick.size
        if not picks:
            return np.zeros(0, dtype=np.int64), np.zeros(0), 0
        t = np.concatenate(times)
        return np.concatenate(picks), t - t[0], len(picks)


@dataclass(frozen=True)
class TraceWorkload:
    """What a workload takes from its trace: the lengths, the demand (the workload's own if it
    states one, else the trace's rate and burstiness) and the trace's figures."""

    input: Lengths
    output: Lengths
    demand: DemandSpec | None
    summary: TraceSummary
    requests: Trace | None = None     # the requests of the window (their block hashes, for a prefix cache)
    replay: Replay | None = None      # the requests to replay against a plan (None: the demand is stated)


def from_trace(w: TraceFields, file: str | None, path: str,
               targets: tuple[LatencyTarget, ...] = (), max_utilization: float = 0.8) -> TraceWorkload:
    """A workload's trace (``w.trace``, relative to the instance ``file``) as lengths, demand and
    figures. Without a stated demand, the demand is the trace's mean request rate (times
    ``rate_scale``) arriving with its burstiness at the scale its latency ``targets`` set
    (``queue_scale``; the summary's ``queue``); ``path``: the workload's YAML path."""
    part, summary = trace_figures(w, file, path, () if w.cache_blocks is None else (w.cache_blocks,))
    isl, osl = empirical(part.input_tokens), empirical(part.output_tokens)
    d = getattr(w, "demand", None)
    if d is not None:
        return TraceWorkload(isl, osl, demand(d, osl), summary, part)
    rate, cv2 = summary.arrivals.rate_per_s, summary.arrivals.burstiness
    if rate is None or cv2 is None:
        raise InputError(f"the trace has no request rate: its {summary.requests} request(s) arrive at one instant",
                         file=file, path=f"{path}.{'window' if w.window is not None else 'trace'}", value=w.trace,
                         accepted="a trace (or window) with requests at two times or more, or a demand")
    if rate * osl.max > MAX_DEMAND_TOKENS_PER_S:
        raise InputError(f"the trace's {rate:.4g} requests/s x {osl.max:.0f} output tokens is above the limit of "
                         f"{MAX_DEMAND_TOKENS_PER_S:.0e} output tokens/s", file=file, path=f"{path}.rate_scale",
                         value=w.rate_scale, accepted="a smaller rate_scale")
    replay = Replay.of(part, w.rate_scale)
    scale, why = queue_scale(targets, osl.mean, max_utilization)
    if scale is not None:
        summary = replace(summary, queue=queue_burstiness(replay.times_s, scale, why))
        cv2 = summary.queue.dispersion      # type: ignore[union-attr]
    return TraceWorkload(isl, osl, DemandSpec("tokens_per_s", rate * osl.mean, rate, max(cv2, CV2_FLOOR)), summary,
                         part, replay)


def trace_figures(w: TraceFields, file: str | None, path: str,
                  cache_blocks: tuple[int, ...] = ()) -> tuple[Trace, TraceSummary]:
    """The requests of ``w``'s trace in its window, and their figures (docs/workloads.md), with
    the prefix reuse of an LRU cache of each size in ``cache_blocks``. The trace file is
    relative to ``file`` (the instance; None: the working directory); errors name the
    trace's line and column and, with ``path``, the YAML key that named it."""
    assert w.trace is not None
    target = Path(w.trace)
    target = target if target.is_absolute() or file is None else Path(file).parent / target
    columns = Columns(**w.columns.model_dump()) if w.columns is not None else None
    try:
        stamp = file_stamp(str(target))
    except OSError:
        stamp = (str(target), -1, -1)       # read_trace names what is wrong with it
    try:
        trace = _read(stamp, str(target), w.format, columns, w.block_tokens)
    except InputError as exc:
        where = f"{file}: {path}.trace" if file else f"{path}.trace" if path else None
        raise InputError(f"{exc.message}{f' (the trace of {where})' if where else ''}", file=exc.file,
                         path=exc.path, value=exc.value, accepted=exc.accepted, line=exc.line) from None
    record_read(target)
    start, end = (w.window.start_s, w.window.end_s) if w.window is not None else (0.0, None)
    try:
        summary = _summary(trace, w.rate_scale, start, end, cache_blocks)
    except SpanTooLong as exc:
        raise InputError(str(exc), file=file if path else trace.file,
                         path=f"{path}.rate_scale" if path else "rate_scale", value=w.rate_scale,
                         accepted=f"a trace, window and rate_scale whose replay spans at most {MAX_MINUTES:,} "
                         "minutes") from None
    except ValueError as exc:
        raise InputError(str(exc), file=file, path=f"{path}.window" if path else "window",
                         accepted="a window that holds requests") from None
    return _window(trace, start, end), summary


@functools.lru_cache(maxsize=16)
def _window(trace: Trace, start: float, end: float | None) -> Trace:
    """A window's requests, one object per trace and window (a reuse curve is kept per object)."""
    return window(trace, start, end)


@functools.lru_cache(maxsize=4)
def _read(stamp: tuple, target: str, fmt: str | None, columns: Columns | None, block_tokens: int) -> Trace:
    """A trace read once per content (``stamp``: path, size, time) while it is in use: a sweep
    resolves the same trace for every scenario."""
    return read_trace(target, fmt, columns, block_tokens)


@functools.lru_cache(maxsize=16)
def _summary(trace: Trace, rate_scale: float, start: float, end: float | None,
             cache_blocks: tuple[int, ...]) -> TraceSummary:
    """A trace's figures, computed once per trace (an object of ``_read``'s cache) and window."""
    return summarise(trace, rate_scale=rate_scale, start_s=start, end_s=end, cache_blocks=cache_blocks)


@dataclass(frozen=True)
class CacheSpec:
    """A workload's prefix cache as the load model takes it (docs/workloads.md section 7): the
    mean prompt tokens per request its cache serves, and where that figure comes from."""

    source: str                  # hit_rate | prefix_tokens | trace
    cached_tokens: float         # mean prompt tokens per request served from the cache
    prompt_tokens: float         # mean prompt tokens per request
    hit_rate: float | None = None        # stated: the share of each prompt
    prefix_tokens: int | None = None     # stated: a prefix every prompt shares
    cache_blocks: int | None = None      # trace: the LRU's size in blocks (None: each configuration's KV pool)
    curve: ReuseCurve | None = None      # trace without cache_blocks: its reuse at every LRU size
    block_tokens: int | None = None      # trace: prompt tokens per block

    def cached_at(self, pool_tokens: np.ndarray) -> np.ndarray | float:
        """Mean cached prompt tokens a request on configurations whose KV pool holds
        ``pool_tokens`` per lane: the stated or fixed figure, or (``curve``) the trace's reuse in
        an LRU of the pool's size in blocks, at most a prompt less its last token."""
        if self.curve is None or self.block_tokens is None:
            return self.cached_tokens
        pools = np.nan_to_num(np.asarray(pool_tokens, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
        blocks, inverse = np.unique(np.maximum(np.floor(pools / self.block_tokens), 0.0), return_inverse=True)
        share = np.array([self.curve.share(int(b)) for b in blocks.tolist()])[inverse].reshape(pools.shape)
        return np.maximum(np.minimum(share * self.prompt_tokens, self.prompt_tokens - 1.0), 0.0)

    @property
    def share(self) -> float:
        """Share of prompt tokens served from the cache."""
        return self.cached_tokens / self.prompt_tokens

    @property
    def computed_tokens(self) -> float:
        """Mean prompt tokens per request prefilled."""
        return self.prompt_tokens - self.cached_tokens

    def to_dict(self) -> dict:
        """The plan's record; with ``curve`` (an LRU of each configuration's KV pool) the share and
        tokens are an unbounded cache's, the most any plan gets (each plan records its own)."""
        return {"source": self.source, "hit_rate": self.hit_rate, "prefix_tokens": self.prefix_tokens,
                "cache_blocks": self.cache_blocks, "kv_pool": self.curve is not None, "share": self.share,
                "cached_tokens_per_request": self.cached_tokens, "computed_tokens_per_request": self.computed_tokens}


def prefix_cache(c: PrefixCache | None, isl: Lengths, summary: TraceSummary | None, cache_blocks: int | None,
                 file: str | None, path: str, requests: Trace | None = None) -> CacheSpec | None:
    """A workload's ``prefix_cache`` over its prompt lengths ``isl``: a stated hit rate or shared
    prefix, per prompt at most the prompt less its last token (``stated_cached``), averaged over
    the length distribution; or the trace's prefix reuse x the mean prompt: in an LRU of
    ``cache_blocks`` if the workload states it (``summary``'s figure), else of each
    configuration's KV pool (``requests``' reuse curve, ``CacheSpec.cached_at``; the record
    gives an unbounded cache's)."""
    if c is None:
        return None
    if not c.from_trace:
        v, p = np.asarray(isl.values, dtype=float), np.asarray(isl.probabilities, dtype=float)
        cached = float(sum(q * stated_cached(x, c.hit_rate, c.prefix_tokens) for x, q in zip(v.tolist(), p.tolist())))
        return CacheSpec("hit_rate" if c.hit_rate is not None else "prefix_tokens", cached, isl.mean,
                         hit_rate=c.hit_rate, prefix_tokens=c.prefix_tokens)
    share = None if summary is None else next((r.share for r in summary.reuse if r.cache_blocks == cache_blocks), None)
    if share is None:
        raise InputError("prefix_cache.from_trace needs a trace with block hashes (mooncake hash_ids); this one has "
                         "none", file=file, path=f"{path}.prefix_cache.from_trace", value=True,
                         accepted="a mooncake trace with hash_ids, or prefix_cache.hit_rate")
    if cache_blocks is None and summary is not None and requests is not None and requests.block_ids is not None:
        curve = _curve(requests)
        return CacheSpec("trace", max(min(share * isl.mean, isl.mean - 1.0), 0.0), isl.mean, curve=curve,
                         block_tokens=requests.block_tokens)
    return CacheSpec("trace", max(min(share * isl.mean, isl.mean - 1.0), 0.0), isl.mean, cache_blocks=cache_blocks)


@functools.lru_cache(maxsize=4)
def _curve(part: Trace) -> ReuseCurve:
    """A window's reuse curve, once per window (``part``: its requests, ``_window``'s object; a
    sweep resolves the same window for every scenario)."""
    assert part.block_ids is not None and part.block_offsets is not None
    ids, off = part.block_ids.tolist(), part.block_offsets.tolist()
    return ReuseCurve([ids[off[i]:off[i + 1]] for i in range(part.requests)], part.input_tokens.tolist(),
                      part.block_tokens)
