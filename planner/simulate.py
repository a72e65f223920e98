"""Discrete-event simulator of a continuous-batching engine with chunked prefill.

An independent check of the closed forms in planner/physics/load.py: it shares only the
step-time physics (``scalar_step_fn``), never the queueing formulas. Each step runs the
decode token of every running sequence, then prompt chunks FIFO up to
the token budget (decode first, as vLLM V1 schedules; with ``prefill_first``, SGLang's default,
prompt-only steps while a prompt waits, the decoders waiting); a request is admitted when
a sequence slot is free and the KV pool can reserve its S + O tokens (TensorRT-LLM's
guaranteed-no-evict policy). Seeded, deterministic. docs/load.md section 7.

Its cost grows with requests, not tokens (issue 26 item 3): a step carrying prompt tokens, an
admission or a speculative draw is run on its own, but between events (a completion, a request
reaching the engine that could be admitted) the batch is fixed and only its contexts grow, a
token a step, so those decode steps are summed in closed form over linear pieces of the step
time (``_Steps.decode_run``). tests/sim_reference.py keeps the one-step-at-a-time loop it
replaced; tests/test_simulate_events.py holds the two to the same runs.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from planner.physics.load import Engine
from planner.physics.step import StepPhysics, scalar_step_fn
from planner.physics.terms import query_tokens
from planner.traces.cache import RequestCache

StepFn = Callable[..., float]   # f(n_decode, context_tokens, chunk, attention_units, completions)


@dataclass(frozen=True)
class Lengths:
    """Fixed length (``values`` one number) or a histogram (values with probabilities);
    ``in_order``: the values in their order, cycled (a trace's requests replayed)."""

    values: Sequence[int] | int
    probabilities: Sequence[float] | None = None
    in_order: bool = False

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        v = np.atleast_1d(np.asarray(self.values, dtype=np.int64))
        if self.in_order:
            return np.resize(v, n)
        if v.size == 1:
            return np.full(n, int(v[0]), dtype=np.int64)
        p = None if self.probabilities is None else np.asarray(self.probabilities, dtype=float)
        return rng.choice(v, size=n, p=None if p is None else p / p.sum())

    @property
    def max(self) -> int:
        return int(np.max(np.atleast_1d(self.values)))


@dataclass(frozen=True)
class Arrivals:
    """'poisson' at ``rate``; 'gamma' at ``rate`` with inter-arrival coefficient of
    variation ``cv`` (bursty when > 1); 'closed': ``clients`` each sending the next request
    when the last completes, after an exponential client delay of mean ``think_s`` (0: at
    once, in step with the engine; a real client's tokenizer and network make it > 0).

    ``start`` (planner/physics/workload.py ``CLIENT_STARTS``): 'independent', clients out of step,
    each sending its first request at a uniform time within a cycle of the loaded engine
    (every client's prompt in full chunks, then the decode steps of a full batch), measured
    in the steady state (the warm-up and the drain discarded);
    'together', all N at t = 0 and a benchmark run of ``requests_per_client`` x N requests
    measured from its start, the first wave included (``vllm bench serve --max-concurrency
    N``, AIPerf ``--concurrency N``, InferenceX).

    'trace': the requests arrive at ``times`` (seconds, increasing), a trace replayed; the
    run is at most that many requests, its lengths given in the same order (``Lengths.in_order``)."""

    kind: str = "poisson"
    rate: float | None = None
    cv: float = 1.0
    clients: int | None = None
    think_s: float = 0.0        # closed loop: mean (exponential) client delay before the next request
    start: str = "independent"  # closed loop: 'independent' (steady state) or 'together' (a benchmark run)
    requests_per_client: float = 10.0   # closed loop starting together: the run's requests / N
    times: tuple[float, ...] | None = None   # 'trace': each request's arrival, seconds


@dataclass(frozen=True)
class SimResult:
    ttft: np.ndarray        # per measured request, seconds
    tpot: np.ndarray        # per measured request: mean ITL over its decode (NaN if O = 1)
    e2e: np.ndarray
    itl: np.ndarray         # step times of the measured window, one per decode token...
    itl_weight: np.ndarray  # ...with the number of sequences that decoded in the step
    throughput_rps: float
    throughput_tokens_per_s: float
    concurrency: float      # time-average requests in the system in the measured window
    steps: int
    summary: dict[str, float]


TIME_CUT = "the time limit ran out"
"""How a simulation its deadline stopped begins its reason (``WorkLimit``): what-ifs read it."""


class WorkLimit(ValueError):
    """The simulation would pass its stated cap of steps, or ran past its deadline (issue 23
    item 8): nothing is simulated beyond either."""


def step_bound(S: np.ndarray, O: np.ndarray, token_budget: int) -> float:
    """An upper bound on the steps a run of prompts ``S`` and outputs ``O`` takes: every step
    decodes a token of some sequence (at most sum O such steps) or carries prompt tokens only,
    each of which completes a prompt or fills the budget (at most n + sum S / budget)."""
    return float(np.sum(O, dtype=float) + S.size + np.sum(S, dtype=float) / max(int(token_budget), 1))


def _wq(x: np.ndarray, w: np.ndarray, qs: Sequence[float]) -> list[float]:
    """Weighted quantiles (inverse of the weighted empirical CDF), one sort for all."""
    if x.size == 0:
        return [float("nan")] * len(qs)
    o = np.argsort(x, kind="stable")
    xs, cw = x[o], np.cumsum(w[o])
    return [float(xs[min(np.searchsorted(cw, q * cw[-1]), x.size - 1)]) for q in qs]


def simulate(step: StepFn, arrivals: Arrivals, isl: Lengths, osl: Lengths, *, token_budget: int,
             max_seqs: int, kv_pool_tokens: float = float("inf"), n_requests: int = 5000,
             warmup: float = 0.1, seed: int = 0,
             targets: Sequence[tuple[str, str, float]] = (), transfer_s: float = 0.0,
             speculative_tokens: int = 0, speculative_acceptance: float = 1.0, serving_s: float = 0.0,
             prefill_first: bool = False, max_steps: float | None = None,
             deadline: float | None = None, prefix_cache: RequestCache | None = None) -> SimResult:
    """Simulate one lane of one configuration. ``warmup``: share of requests discarded at
    the start, and the same share at the end (the drain); a closed loop starting together
    measures every request of its run instead (``Arrivals``). ``targets``: (metric, statistic,
    seconds) triples; the summary gets the share of measured requests meeting each.
    ``transfer_s``: a prefill pool (one output token): each finished prompt's KV then
    crosses one FIFO link taking ``transfer_s`` seconds, and its first token counts from
    the transfer's end (docs/disaggregation.md section 5).
    ``speculative_tokens`` k > 0: each decode sequence takes k + 1 tokens of the step's budget
    and gains 1 + min(G, k) tokens per step, G the run of accepted drafts (P(G >= j) =
    alpha^j, alpha = ``speculative_acceptance``), drawn from the seeded generator (docs/model.md
    section 4); k = 0 draws nothing (the results are those without the option).
    ``serving_s``: the serving path outside the engine (docs/model.md section 4): a request
    reaches the engine's queue that long after its client sends it (in a closed loop, a
    uniform draw on [0.9, 1.1] x serving_s per request), and its TTFT and end-to-end latency
    count from the send.
    ``prefill_first``: the engine runs prompts in steps of their own while any is waiting or
    part-done, and the decoders wait (SGLang's default scheduler, no mixed chunks): a step
    carrying prefill has no decode tokens and does not advance the decoders (docs/load.md
    section 5, 'prefill first').
    ``max_steps``: the cap on the run's length, hence its memory (a few numbers a step): a
    run whose ``step_bound`` passes it raises ``WorkLimit`` before it starts; ``deadline``:
    a ``time.perf_counter()`` time past which it raises ``WorkLimit``."""
    if arrivals.kind == "closed" and arrivals.start == "together":
        assert arrivals.clients is not None
        n_requests = max(int(round(arrivals.requests_per_client * arrivals.clients)), int(arrivals.clients))
        warmup = 0.0                  # a benchmark run: every request measured, the first wave included
    elif arrivals.kind == "closed" and arrivals.start != "independent":
        raise ValueError(f"unknown client start {arrivals.start!r}")
    elif arrivals.kind == "trace":
        if not arrivals.times:
            raise ValueError("a trace replay needs its requests' arrival times")
        n_requests = min(n_requests, len(arrivals.times))
    rng = np.random.default_rng(seed)
    S = isl.sample(rng, n_requests)
    O = osl.sample(rng, n_requests)
    if np.any(S < 1) or np.any(O < 1):
        raise ValueError("lengths must be at least 1")
    T = int(token_budget)
    if max_steps is not None and step_bound(S, O, T) > max_steps:
        raise WorkLimit(f"{n_requests:,} requests of {float(np.mean(S)):,.0f} + {float(np.mean(O)):,.0f} tokens "
                        f"could take {step_bound(S, O, T):,.0f} steps, past the simulator's cap of {max_steps:,.0f}")
    cap = int(max_seqs)
    spec = int(speculative_tokens)
    q = spec + 1                      # budget tokens per decode sequence
    if spec > 0 and not 0.0 < speculative_acceptance <= 1.0:
        raise ValueError("speculative_acceptance must be in (0, 1]")
    left: dict[int, int] = {}         # speculative decoding: tokens still to emit, per decoding request
    if cap < 1 or np.any(S + O > kv_pool_tokens):
        raise ValueError("no sequence fits: max_seqs < 1 or a request exceeds the KV pool")
    arr = np.full(n_requests, np.inf)
    closed = arrivals.kind == "closed"
    think = float(arrivals.think_s)
    if closed:
        assert arrivals.clients is not None
        n_clients = min(int(arrivals.clients), n_requests)
        if arrivals.start == "together":
            arr[:n_clients] = 0.0
        else:
            # out of step: each client's first request at a uniform time within a cycle of the
            # loaded engine as the step physics bounds it from below: every client's prompt in
            # full chunks, then O - 1 decode steps of all the clients the slots hold
            s_bar, o_bar = float(np.mean(S)), float(np.mean(O))
            n_run = min(n_clients, cap)
            chunk = float(min(T, max(1, int(s_bar))))
            full = step(0, 0.0, int(chunk), chunk * s_bar, max(1, int(chunk // s_bar)))
            span = (math.ceil(n_clients * s_bar / T) * full
                    + max(o_bar - 1.0, 0.0) * step(n_run, n_run * (s_bar + o_bar / 2.0)))
            arr[:n_clients] = np.sort(rng.uniform(0.0, span, n_clients))
        issued = n_clients
        # the serving path of a closed loop's request varies a little (network, tokenizer): uniform
        # on [0.9, 1.1] x its mean, from a generator of its own (the lengths and arrivals are the
        # same for any mean)
        srv = (serving_s * np.random.default_rng(seed + 1).uniform(0.9, 1.1, n_requests)).tolist()
        pend = [(float(arr[i]) + srv[i], i) for i in range(n_clients)]   # (time at the engine, rid) not yet queued
        heapq.heapify(pend)
    elif arrivals.kind == "trace":
        assert arrivals.times is not None
        arr = np.asarray(arrivals.times[:n_requests], dtype=float)
        if np.any(np.diff(arr) < 0) or not np.all(np.isfinite(arr)):
            raise ValueError("a trace's arrival times must be finite and in time order")
        issued = n_requests
        pend = []
    else:
        assert arrivals.rate is not None
        if arrivals.kind == "poisson":
            gaps = rng.exponential(1.0 / arrivals.rate, n_requests)
        elif arrivals.kind == "gamma":
            k = 1.0 / arrivals.cv ** 2
            gaps = rng.gamma(k, 1.0 / (arrivals.rate * k), n_requests)
        else:
            raise ValueError(f"unknown arrival process {arrivals.kind!r}")
        arr = np.cumsum(gaps)
        issued = n_requests
        pend = []
    arr_l = arr.tolist()
    S_l, O_l = S.tolist(), O.tolist()
    first = [0.0] * n_requests
    fin = [0.0] * n_requests
    rec = _Steps()

    waiting: deque[int] = deque()
    prefilling: deque[list[int]] = deque()    # [rid, prompt tokens in the KV cache so far]
    heap: list[tuple[int, int]] = []          # (finish step, rid)
    nxt = 0                                   # next open-loop arrival to enqueue
    t = 0.0
    k = 0                                     # decode steps run (the decoders' clock)
    n_dec = 0
    ctx = 0.0
    running = 0
    kv_used = 0
    done = 0
    link_free = 0.0
    events = 0
    inf = math.inf
    cached_total = 0                          # prompt tokens the prefix cache served (``prefix_cache``)
    while done < n_requests:
        events += 1
        if deadline is not None and not events & 255 and time.perf_counter() > deadline:
            raise WorkLimit(f"{TIME_CUT} after {k:,} simulated steps")
        if closed:
            while pend and pend[0][0] <= t:
                waiting.append(heapq.heappop(pend)[1])
        else:
            while nxt < n_requests and arr_l[nxt] + serving_s <= t:
                waiting.append(nxt)
                nxt += 1
        if n_dec == 0 and not prefilling and (not waiting or running >= cap):
            if closed:
                if not pend:
                    raise RuntimeError("simulator stalled")    # cannot happen with valid inputs
                t = max(t, pend[0][0])
                continue
            if nxt >= n_requests:
                raise RuntimeError("simulator stalled")
            t = arr_l[nxt] + serving_s
            continue
        admit = bool(waiting) and running < cap and kv_used + S_l[waiting[0]] + O_l[waiting[0]] <= kv_pool_tokens
        # prefill first: a step of prompts alone while any waits for a slot it can have or is part-done
        pf = prefill_first and bool(prefilling or admit)
        n_step = 0 if pf else n_dec
        budget = T - n_step * q
        finished: list[int] = []
        if not pf and not prefilling and spec == 0 and not (admit and budget > 0):
            # Decode steps alone up to the next event: the next completion's step or, where a
            # slot and the budget are free and nobody queues, the next request reaching the
            # engine (the run stops before the first step starting at or after it). The batch
            # is fixed in between and every context grows by a token a step: summed in closed form.
            until = inf
            if not waiting and running < cap and (prefill_first or budget > 0):
                if closed:
                    until = pend[0][0] if pend else inf
                elif nxt < n_requests:
                    until = arr_l[nxt] + serving_s
            m = heap[0][0] - k + 1
            ran, t = rec.decode_run(step, n_dec, ctx, m, t, until)
            ctx += n_dec * ran
            k += ran - 1                  # the last step run; its completions are below
            if ran < m:
                k += 1
                continue
        elif spec == 0 and prefilling and budget > 0 and S_l[prefilling[0][0]] - prefilling[0][1] > budget:
            # The first prompt in progress takes the whole budget for its next steps (no other
            # prompt moves, nobody is admitted) up to the step before its last chunk, or to the
            # next completion's step: the decoders fixed, its chunks and their contexts growing
            # by a step each, summed in closed form as above.
            item = prefilling[0]
            m = (S_l[item[0]] - item[1] - 1) // budget
            if not pf and n_dec:
                m = min(m, heap[0][0] - k + 1)
            ran, t = rec.prefill_run(step, n_step, ctx, budget, item[1], m, t)
            item[1] += budget * ran
            if pf:
                continue                  # the decoders wait: their clock k stands still
            ctx += n_dec * ran
            k += ran - 1
            if not (heap and heap[0][0] == k):
                k += 1
                continue
        else:
            chunk = 0
            att = 0.0
            heads = 0
            completed: list[int] = []
            for item in prefilling:
                if budget <= 0:
                    break
                rid, d = item
                take = min(budget, S_l[rid] - d)
                att += take * take + 2.0 * take * d
                chunk += take
                budget -= take
                item[1] = d + take
                if item[1] == S_l[rid]:
                    heads += 1
                    completed.append(rid)
            while budget > 0 and waiting and running < cap:
                rid = waiting[0]
                need = S_l[rid] + O_l[rid]
                if kv_used + need > kv_pool_tokens:
                    break
                waiting.popleft()
                running += 1
                kv_used += need
                # PREFIX-CACHE HOOK (planner/traces/cache.py, docs/workloads.md section 7): admission
                # decides the prompt tokens to compute: those past the ``d`` its prefix cache serves
                # (0 without one), prefilled in chunks from there (the chunks' attention still reads
                # them: 2 take d); its KV holds all S + O
                d = 0 if prefix_cache is None else prefix_cache.admit(rid, S_l[rid])
                cached_total += d
                take = min(budget, S_l[rid] - d)
                att += take * take + 2.0 * take * d
                chunk += take
                budget -= take
                if d + take == S_l[rid]:
                    heads += 1
                    completed.append(rid)
                else:
                    prefilling.append([rid, d + take])
            dt = step(n_step, ctx if n_step else 0.0, chunk, att, heads)
            rec.one(t, dt, n_step)
            t += dt
            if pf:
                pass                      # the decoders wait: no token, their clock k stands still
            elif spec == 0:
                ctx += n_dec
            elif left:
                rids = list(left)
                if speculative_acceptance >= 1.0:
                    runs = [spec] * len(rids)
                else:       # G = (trials to the first rejection) - 1, capped at k
                    runs = np.minimum(rng.geometric(1.0 - speculative_acceptance, len(rids)) - 1, spec).tolist()
                for rid, g in zip(rids, runs):
                    r = left[rid]
                    emit = 1 + g if 1 + g < r else r
                    ctx += emit
                    if emit == r:
                        del left[rid]
                        finished.append(rid)
                    else:
                        left[rid] = r - emit
            while prefilling and prefilling[0][1] == S_l[prefilling[0][0]]:
                prefilling.popleft()
            for rid in completed:
                first[rid] = t
                if O_l[rid] == 1:
                    if transfer_s > 0.0:
                        link_free = max(link_free, t) + transfer_s
                        first[rid] = link_free
                    fin[rid] = first[rid]
                    done += 1
                    running -= 1
                    kv_used -= S_l[rid] + O_l[rid]
                    if prefix_cache is not None:      # PREFIX-CACHE HOOK: its blocks become evictable
                        prefix_cache.release(rid)
                    if closed and issued < n_requests:
                        arr_l[issued] = t + (rng.exponential(think) if think > 0 else 0.0)
                        heapq.heappush(pend, (arr_l[issued] + srv[issued], issued))
                        issued += 1
                else:
                    if spec == 0:
                        # its O - 1 tokens come in decode steps k + 1 .. k + O - 1 (a prompt-only step
                        # ran no decode step: the next one, k, is its first)
                        heapq.heappush(heap, (k + O_l[rid] - (2 if pf else 1), rid))
                    else:
                        left[rid] = O_l[rid] - 1
                    n_dec += 1
                    ctx += S_l[rid] + 1
        while not pf and heap and heap[0][0] == k:
            finished.append(heapq.heappop(heap)[1])
        for rid in finished:
            fin[rid] = t
            done += 1
            n_dec -= 1
            running -= 1
            need = S_l[rid] + O_l[rid]
            ctx -= need
            kv_used -= need
            if prefix_cache is not None:          # PREFIX-CACHE HOOK: its blocks become evictable
                prefix_cache.release(rid)
            if closed and issued < n_requests:
                arr_l[issued] = t + (rng.exponential(think) if think > 0 else 0.0)
                heapq.heappush(pend, (arr_l[issued] + srv[issued], issued))
                issued += 1
        if not pf:
            k += 1
    dt_a, n_a, end_a = rec.arrays()
    out = _summarise(np.array(arr_l), np.array(first), np.array(fin), S, O, dt_a, n_a, end_a, warmup, targets)
    if prefix_cache is not None:      # PREFIX-CACHE HOOK: cached vs computed prompt tokens, every request
        prompt = float(np.sum(S, dtype=float))
        out.summary.update(prompt_tokens_cached=float(cached_total), prompt_tokens_computed=prompt - cached_total,
                           cache_hit_rate=cached_total / prompt)
    return out


LINEAR_TOLERANCE = 1e-9
"""Relative deviation below which a run of decode steps is taken as linear in its step index
(``_Steps.decode_run``): far below the simulation's statistical noise."""


class _Steps:
    """The steps of a run as segments: (start time, first step's time, increment a step,
    steps, decoding sequences); one ordinary step is a segment of one."""

    __slots__ = ("start", "dt", "slope", "count", "n", "lines")

    def __init__(self) -> None:
        self.lines: dict[int, tuple[float, float, float, float]] = {}
        self.start: list[float] = []
        self.dt: list[float] = []
        self.slope: list[float] = []
        self.count: list[int] = []
        self.n: list[int] = []

    def one(self, t: float, dt: float, n: int) -> None:
        self._add(t, dt, 0.0, 1, n)

    def _add(self, t: float, dt: float, slope: float, count: int, n: int) -> None:
        self.start.append(t)
        self.dt.append(dt)
        self.slope.append(slope)
        self.count.append(count)
        self.n.append(n)

    def decode_run(self, step: StepFn, n: int, ctx: float, m: int, t: float, until: float) -> tuple[int, float]:
        """Run up to ``m`` decode-only steps of ``n`` sequences holding ``ctx`` tokens from
        time ``t``, stopping before the first step that starts at or after ``until`` (> t):
        (steps run, the time after them). Step s takes step(n, ctx + n s); the run is split
        into pieces on which that is linear in s (``_linear_pieces``), each summed in closed
        form: the piece's step s starts at t + s f0 + d s (s - 1) / 2."""
        return self._walk(self._pieces(step, n, ctx, m), n, t, until)

    def prefill_run(self, step: StepFn, n: int, ctx: float, c: int, done: int, m: int, t: float
                    ) -> tuple[int, float]:
        """``m`` steps of ``n`` decoders (``ctx`` tokens, growing by n a step) beside a chunk of
        ``c`` tokens of one prompt ``done`` tokens in (growing by c a step), none completing it:
        the step s costs step(n, ctx + n s, c, c^2 + 2 c (done + c s), 0), summed as above."""
        def v(s: int) -> float:
            return step(n, ctx + n * s if n else 0.0, c, c * c + 2.0 * c * (done + c * s), 0)
        return self._walk(_linear_pieces(v, m), n, t, math.inf)

    def _walk(self, pieces: list[tuple[int, float, float]], n: int, t: float, until: float) -> tuple[int, float]:
        ran = 0
        for count, f0, d in pieces:
            take = count
            if until < _piece_end(t, count, f0, d):
                lo, hi = 0, count - 1       # the first s whose start is at or after ``until``
                if t >= until:
                    take = 0
                else:
                    while lo < hi:
                        mid = (lo + hi + 1) // 2
                        if t + mid * f0 + d * mid * (mid - 1) / 2.0 < until:
                            lo = mid
                        else:
                            hi = mid - 1
                    take = lo + 1
            if take:
                self._add(t, f0, d, take, n)
                ran += take
                t += take * f0 + d * take * (take - 1) / 2.0
            if take < count:
                break
        return ran, t

    def _pieces(self, step: StepFn, n: int, ctx: float, m: int) -> list[tuple[int, float, float]]:
        """``_linear_pieces`` of a run, remembering per batch size ``n`` a range of contexts
        [lo, hi] on which the step time is one line a + b ctx: a run inside it costs no
        evaluation, a run past it widens it where the new ends (and their midpoints with the
        range) lie on the line, and is split into pieces where they do not."""
        def decode(s: int) -> float:
            return step(n, ctx + n * s, 0, 0.0, 0)
        last = ctx + n * (m - 1)
        line = self.lines.get(n)
        if line is not None:
            lo, hi, a, b = line
            if lo <= ctx and last <= hi:
                return [(m, a + b * ctx, b * n)]
            new = [x for x in (ctx, 0.5 * (ctx + lo)) if x < lo] + [x for x in (last, 0.5 * (last + hi)) if x > hi]
            if all(abs(step(n, x, 0, 0.0, 0) - (a + b * x)) <= LINEAR_TOLERANCE * abs(a + b * x) for x in new):
                self.lines[n] = (min(lo, ctx), max(hi, last), a, b)
                return [(m, a + b * ctx, b * n)]
            return _linear_pieces(decode, m)
        pieces = _linear_pieces(decode, m)
        if m >= 3 and len(pieces) == 2:            # one line over the run (and its last step on it)
            b = pieces[0][2] / n
            self.lines[n] = (ctx, last, pieces[0][1] - b * ctx, b)
        return pieces

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(time, decoding sequences, end time) of every step, the segments expanded."""
        count = np.asarray(self.count, dtype=np.int64)
        seg = np.repeat(np.arange(count.size), count)
        s = np.arange(seg.size, dtype=float) - np.repeat((np.cumsum(count) - count).astype(float), count)
        f0, d = np.asarray(self.dt)[seg], np.asarray(self.slope)[seg]
        dt = f0 + d * s
        end = np.asarray(self.start)[seg] + (s + 1.0) * f0 + d * (s + 1.0) * s / 2.0
        return dt, np.asarray(self.n, dtype=float)[seg], end


def _piece_end(t: float, count: int, f0: float, d: float) -> float:
    """The start of the step after a piece of ``count`` steps starting at ``t``."""
    return t + count * f0 + d * count * (count - 1) / 2.0


def _linear_pieces(v: Callable[[int], float], m: int) -> list[tuple[int, float, float]]:
    """Steps s = 0 .. m - 1 taking v(s) seconds as pieces (steps, first step's time, increment
    a step) on which v is linear in s. For a fixed batch and chunk the step time is a
    continuous piecewise-linear function of the contexts, which grow linearly in s (rooflines
    and overlaps are maxima of linear terms; windowed attention a minimum): a range is one
    piece where its midpoint and quartiles lie on the chord of its ends (within
    ``LINEAR_TOLERANCE``), else it is halved; a piece holding a kink is found in O(log m)
    evaluations."""
    last = v(m - 1)
    if m == 1:
        return [(1, last, 0.0)]
    out: list[tuple[int, float, float]] = []
    stack = [(0, m - 1, v(0), last)]
    while stack:
        a, b, va, vb = stack.pop()
        slope = (vb - va) / (b - a)
        if b - a >= 2:
            tol = LINEAR_TOLERANCE * max(abs(va), abs(vb))
            mid = (a + b) // 2
            vm = v(mid)
            probes = (mid,) if b - a < 8 else (mid, (a + mid) // 2, (mid + b) // 2)
            if any(abs((vm if p == mid else v(p)) - (va + slope * (p - a))) > tol for p in probes):
                stack.append((mid, b, vm, vb))
                stack.append((a, mid, va, vm))
                continue
        out.append((b - a, va, slope))
    out.append((1, last, 0.0))
    return out


def _summarise(arr, first, fin, S, O, dt, n, end, warmup, targets) -> SimResult:
    N = arr.size
    order = np.argsort(arr, kind="stable")
    skip = int(round(warmup * N))
    keep = order[skip:N - skip] if N - 2 * skip > 0 else order
    t_a, t_b = arr[keep].min(), arr[keep].max()
    ttft = first[keep] - arr[keep]
    e2e = fin[keep] - arr[keep]
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(O[keep] > 1, (fin[keep] - first[keep]) / (O[keep] - 1), np.nan)
    span = max(t_b - t_a, 1e-12)
    in_win = (fin >= t_a) & (fin <= t_b)
    x = float(in_win.sum() / span)
    x_tok = float(O[in_win].sum() / span)
    overlap = np.clip(np.minimum(fin, t_b) - np.maximum(arr, t_a), 0.0, None)
    conc = float(overlap.sum() / span)
    w = (end - dt >= t_a) & (end <= t_b) & (n > 0)
    itl, iw = dt[w], n[w]
    summ: dict[str, float] = {"throughput_rps": x, "throughput_tokens_per_s": x_tok, "concurrency": conc,
                              "requests": float(keep.size)}
    for name, v in (("ttft", ttft), ("tpot", tpot[np.isfinite(tpot)]), ("e2e", e2e)):
        summ[f"{name}_mean"] = float(np.mean(v)) if v.size else float("nan")
        for q in (50, 90, 95, 99):
            summ[f"{name}_p{q}"] = float(np.percentile(v, q)) if v.size else float("nan")
    summ["itl_mean"] = float(np.sum(itl * iw) / np.sum(iw)) if iw.sum() else float("nan")
    for q, v in zip((50, 90, 95, 99), _wq(itl, iw, (0.5, 0.9, 0.95, 0.99))):
        summ[f"itl_p{q}"] = v
    per_req = {"ttft": ttft, "tpot": tpot, "e2e": e2e}
    for metric, stat, limit in targets:
        if metric in per_req:
            v = per_req[metric]
            summ[f"attain_{metric}_{stat}"] = float(np.mean(np.nan_to_num(v, nan=0.0) <= limit))
        summ[f"met_{metric}_{stat}"] = float(summ[f"{metric}_{stat}"] <= limit)
    return SimResult(ttft=ttft, tpot=tpot, e2e=e2e, itl=itl, itl_weight=iw, throughput_rps=x,
                     throughput_tokens_per_s=x_tok, concurrency=conc, steps=int(dt.size), summary=summ)


def simulate_config(phys: StepPhysics, eng: Engine, i: int, arrivals: Arrivals, isl: Lengths,
                    osl: Lengths, **kw) -> SimResult:
    """Simulate configuration ``i`` of a vectorised evaluation: one lane (a pipeline
    micro-batch / attention group), fed 1/lanes of the replica's rate or clients; rates and
    throughputs in the result are scaled back to the replica."""
    lanes = float(phys.lanes[i])
    T = int(eng.token_budget[i])
    cap = int(eng.max_seqs[i])
    q = query_tokens(phys.o)
    fn = scalar_step_fn(phys, i, T + cap * q + 1)
    if arrivals.kind == "closed":
        assert arrivals.clients is not None
        a = Arrivals("closed", clients=max(1, int(round(arrivals.clients / lanes))), think_s=arrivals.think_s,
                     start=arrivals.start, requests_per_client=arrivals.requests_per_client)
    elif arrivals.kind == "trace":
        a = arrivals                  # a trace's requests: the caller gives the lane its own share
    else:
        assert arrivals.rate is not None
        a = Arrivals(arrivals.kind, rate=arrivals.rate / lanes, cv=arrivals.cv)
    r = simulate(fn, a, isl, osl, token_budget=T, max_seqs=cap, kv_pool_tokens=float(eng.kv_pool_tokens[i]),
                 serving_s=phys.o.serving_overhead_s, prefill_first=phys.o.prefill_first, **_speculation(phys), **kw)
    if lanes == 1.0:
        return r
    s = dict(r.summary)
    for key in ("throughput_rps", "throughput_tokens_per_s", "concurrency"):
        s[key] *= lanes
    return SimResult(ttft=r.ttft, tpot=r.tpot, e2e=r.e2e, itl=r.itl, itl_weight=r.itl_weight,
                     throughput_rps=r.throughput_rps * lanes, throughput_tokens_per_s=r.throughput_tokens_per_s * lanes,
                     concurrency=r.concurrency * lanes, steps=r.steps, summary=s)


def simulate_prefill_pool(phys: StepPhysics, eng: Engine, i: int, arrivals: Arrivals, isl: Lengths,
                          transfer_s: float = 0.0, **kw) -> SimResult:
    """A prefill replica of configuration ``i`` (one lane, PP = 1 and no attention DP):
    prompt-only steps packing waiting prompts FIFO up to the token budget, idle when none
    waits, then the KV over one FIFO link (``transfer_s`` per request). TTFT is measured at
    the transfer's end. docs/disaggregation.md section 5."""
    if float(phys.lanes[i]) != 1.0:
        raise ValueError("the pool simulators take one-lane configurations")
    T = int(eng.token_budget[i])
    pool = float(eng.kv_pool_tokens[i])
    cap = max(1, int(pool // isl.max))
    fn = scalar_step_fn(phys, i, T + 1)
    return simulate(fn, arrivals, isl, Lengths(1), token_budget=T, max_seqs=cap, kv_pool_tokens=pool + isl.max,
                    transfer_s=transfer_s, serving_s=phys.o.serving_overhead_s, **kw)


def simulate_decode_pool(phys: StepPhysics, eng: Engine, i: int, arrivals: Arrivals, isl: Lengths,
                         osl: Lengths, **kw) -> SimResult:
    """A decode replica of configuration ``i`` (one lane): requests arrive with their KV
    (no prefill work: a step costs the decode of its running sequences only), wait for a
    sequence slot and KV room at S + O tokens, and decode O - 1 tokens after the step that
    admits them. TPOT and ITL are the pool's; its TTFT is the admission wait plus one step."""
    if float(phys.lanes[i]) != 1.0:
        raise ValueError("the pool simulators take one-lane configurations")
    cap = int(eng.max_seqs[i])
    fn = scalar_step_fn(phys, i, cap * query_tokens(phys.o) + 1)

    def decode_only(n: int, ctx: float, c: int = 0, A: float = 0.0, heads: int = 0) -> float:
        return fn(n, ctx)
    budget = cap * query_tokens(phys.o) + cap * isl.max   # never limited by a token budget
    return simulate(decode_only, arrivals, isl, osl, token_budget=budget, max_seqs=cap,
                    kv_pool_tokens=float(eng.kv_pool_tokens[i]), **_speculation(phys), **kw)


def _speculation(phys: StepPhysics) -> dict:
    """The simulator's speculative-decoding arguments from the configuration's assumptions
    (none when it is off, so that nothing changes)."""
    o = phys.o
    if o.speculative_tokens == 0:
        return {}
    return dict(speculative_tokens=o.speculative_tokens, speculative_acceptance=o.speculative_acceptance)
