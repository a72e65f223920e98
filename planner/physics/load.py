"""Latency under load for an aggregated engine (continuous batching, chunked prefill).

Vectorised over configurations, pure numpy, no solver imports. Derivations, names of the
approximations and their sources: docs/load.md (section numbers in comments).

Conventions follow planner/physics/perf.py: ``n_decode`` and ``prefill_tokens`` are per
pipeline micro-batch and attention group (per *lane*); a replica has
``lanes = PP x max(1, EP/TP)`` lanes, each serving 1/lanes of the requests. A *step* is one
full pipeline cycle (perf.py's TPOT), in which every running sequence of the lane gains
one token. Rates are per replica, per second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np

from planner.physics.numerics import (
    NORMAL_Z,
    PERCENTILES,
    RESTRICT_ROWS,
    bisect_levels,
    bisection_by_bracket,
    exp_tail_quantile,
    first_point,
    fixed_point,
    joined_step,
    mixture_quantile,
    points_per_call,
    residual_quantile,
    rows_taken,
)
from planner.physics.options import Assumptions
from planner.physics.step import (
    StepPhysics,
    at_rows,
    draft_time,
    scalar_step_fn,
    step_physics,
    step_terms,
    step_time,
)
from planner.physics.terms import query_tokens, tokens_per_step, tokens_per_step_variance
from planner.physics.workload import (
    CLIENT_STARTS,
    Workload,
    attention_length,
    idle_ttft,
    prefill_work_cv2,
    prompt_split,
)

__all__ = ["CLIENT_STARTS", "DEFAULT_TOKEN_BUDGET", "METRICS", "STATISTICS", "Capacity", "Engine", "LoadResult",
           "StepPhysics", "Target", "Workload", "capacity_at_slo", "carrying_step", "draft_time", "engine", "idle_ttft",
           "load_metrics", "merge_results", "per_token_sd", "prompt_step", "scalar_step_fn", "slot_wait",
           "step_physics", "step_terms", "step_time", "wave"]

METRICS: tuple[str, ...] = ("ttft", "tpot", "itl", "e2e")
STATISTICS: tuple[str, ...] = ("mean", "p50", "p90", "p95", "p99")
DEFAULT_TOKEN_BUDGET = 8192  # vLLM's chunked-prefill max_num_batched_tokens


# ----------------------------------------------------------------------------------------
# Section 2: engine (scheduler) parameters
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Engine:
    """Scheduler parameters per configuration and lane: plan outputs (section 2)."""

    token_budget: np.ndarray     # tokens per step (decode first, then prefill chunks)
    max_seqs: np.ndarray         # running sequences per lane (max-num-seqs, KV capacity)
    kv_pool_tokens: np.ndarray   # KV-cache tokens per lane

    def take(self, index: np.ndarray) -> Engine:
        return Engine(token_budget=self.token_budget[index], max_seqs=self.max_seqs[index],
                      kv_pool_tokens=self.kv_pool_tokens[index])


def engine(phys: StepPhysics, token_budget=None, max_seqs=None) -> Engine:
    """Defaults: the assumptions' max_batched_tokens (8192 if 0), and max sequences = the
    configuration's batch capped by what the KV cache holds at S + O tokens a sequence."""
    n = len(phys)
    T = token_budget if token_budget is not None else (phys.o.max_batched_tokens or DEFAULT_TOKEN_BUDGET)
    cap = phys.configs.batch if max_seqs is None else max_seqs
    cap = np.minimum(np.broadcast_to(np.asarray(cap, dtype=float), (n,)), phys.max_batch)
    return Engine(token_budget=np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy(),
                  max_seqs=cap, kv_pool_tokens=phys.kv_pool_tokens.copy())


# ----------------------------------------------------------------------------------------
# Section 3-5: closed forms under load (the request shape: planner/physics/workload.py)
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LoadResult:
    """Steady state of each configuration at its rate; times in seconds, rates per replica."""

    rate: np.ndarray                  # requests/s
    throughput_tokens_per_s: np.ndarray  # output tokens/s
    concurrency: np.ndarray           # requests in the replica (Little: rate x mean e2e)
    running: np.ndarray               # decode sequences per lane (mean)
    step_decode: np.ndarray           # a step with no prefill
    step_prefill: np.ndarray          # a step carrying a chunk of the mean size
    chunk_tokens: np.ndarray          # mean chunk of a prefill-carrying step
    prefill_step_fraction: np.ndarray  # share of steps that carry prefill
    rho: np.ndarray                   # utilisation: rate / saturation rate
    rho_prefill: np.ndarray           # share of time in prefill-carrying steps
    rho_kv: np.ndarray                # sequences holding KV / max sequences
    saturation_rate: np.ndarray       # requests/s at which the engine saturates
    stable: np.ndarray
    stats: dict[tuple[str, str], np.ndarray]
    arrival: str = "open loop, Poisson arrivals"   # the arrival model the figures assume (``arrival_model``)

    def get(self, metric: str, statistic: str) -> np.ndarray:
        return self.stats[(metric, statistic)]

    def take(self, index: np.ndarray) -> LoadResult:
        return LoadResult(**{f.name: getattr(self, f.name)[index] for f in fields(self) if f.name not in _NOT_ROWS},
                          stats={k: v[index] for k, v in self.stats.items()}, arrival=self.arrival)


_NOT_ROWS = ("stats", "arrival")   # LoadResult fields that are not per configuration


def arrival_model(wl: Workload, clients: bool) -> str:
    """In words, the arrival model a load result assumes (docs/load.md sections 3 and 5)."""
    if not clients:
        cv2 = np.unique(np.asarray(wl.arrival_cv2, dtype=float))
        if len(cv2) == 1 and cv2[0] == 1.0:
            return "open loop, Poisson arrivals"
        return "open loop, Gamma inter-arrival times (CV^2 " + ", ".join(f"{x:g}" for x in cv2) + ")"
    if wl.start == "together":
        rpc = np.unique(np.asarray(wl.requests_per_client, dtype=float))
        return ("closed loop, clients starting together (a benchmark run of "
                + ", ".join(f"{x:g}" for x in rpc) + " requests per client, the first wave included)")
    return "closed loop, clients out of step (steady state)"


def _chunk(c1, Ta, u):
    """Mean chunk of a prefill-carrying step (section 3, 'chunk fill'): c = c1 + (Ta - c1) q
    with q = u / c, solved for c; u = mean prompt tokens per step."""
    d = np.maximum(Ta - c1, 0.0)
    c = 0.5 * (c1 + np.sqrt(c1 * c1 + 4.0 * d * u))
    return np.minimum(c, np.maximum(Ta, c1))


def _prompt_batch(c1, Ta, S, a):
    """Mean prompt tokens of a prompt-only step of a prefill-first engine (section 5, 'prefill
    first'): the step runs the prompts that arrived during the step before it, N ~ Poisson(a)
    with a = lambda tau (arrivals per mean step), and runs at all when N >= 1, so the share of
    steps that carry prompts is q = 1 - e^-a and a carrying step holds E[N | N >= 1] =
    a / (1 - e^-a) prompts (q x that = a: every arrival prefilled once). Beside the first prompt
    (or its piece c1) the others' S tokens each, within the budget Ta. Shorter prompts make
    shorter steps, hence fewer arrivals a step and fewer prompts riding together (the mixed
    engine's chunk fill, ``_chunk``, instead fills a carrying step towards the budget)."""
    m = np.where(a > 1e-12, a / -np.expm1(-np.maximum(a, 1e-12)), 1.0 + a / 2.0)
    return np.minimum(c1 + S * (m - 1.0), np.maximum(Ta, c1))


def carrying_step(phys: StepPhysics, n, ctx, c, A, heads, decode=None):
    """Section 1: the time in which n decoders gain one token while c prompt tokens are
    prefilled: one mixed step (chunks ride in the decode steps), or, for an engine that runs
    its prompts first (``prefill_first``, SGLang), a prompt-only step and then the decode step
    (``decode``: that step's time, if the caller has it)."""
    if phys.o.prefill_first:
        t0 = step_time(phys, n, ctx, 0.0, 0.0, 0.0) if decode is None else decode
        return step_time(phys, 0.0, 0.0, c, A, heads) + t0
    return step_time(phys, n, ctx, c, A, heads)


def prompt_step(phys: StepPhysics, n, ctx, c, A, heads):
    """Section 4: the step at whose end a prompt's chunk is done: beside the n decoders, or
    alone for a prefill-first engine (its decoders wait)."""
    if phys.o.prefill_first:
        return step_time(phys, 0.0, 0.0, c, A, heads)
    return step_time(phys, n, ctx, c, A, heads)


def _decode_and_carrying(phys: StepPhysics, n, ctx, c, A, heads):
    """(the decode step of n decoders, ``carrying_step`` of the same with c prompt tokens) in
    one ``step_time`` call over both (a call's cost is mostly per call on small tables; each
    element is computed by the same operations as apart, so the figures are the same)."""
    zero = np.zeros(np.shape(c))
    if phys.o.prefill_first:     # the prompt-only step (no decoders) and the decode step
        t = step_time(phys, np.stack([n, zero]), np.stack([ctx, zero]), np.stack([zero, c]), np.stack([zero, A]),
                      np.stack([zero, heads]))
        return t[0], t[1] + t[0]
    t = step_time(phys, n, ctx, np.stack([zero, c]), np.stack([zero, A]), np.stack([zero, heads]))
    return t[0], t[1]


def _budget_share(phys: StepPhysics) -> float:
    """Budget tokens a decode sequence takes from a step that carries prompt tokens: its
    query tokens, none for a prefill-first engine (its prompt steps carry no decoders)."""
    return 0.0 if phys.o.prefill_first else float(query_tokens(phys.o))


def per_token_sd(o: Assumptions, sd_step, tau, O):
    """TPOT's standard deviation per output token from a request's per-step spread
    ``sd_step`` (unchanged without speculative decoding). With it, per output token: the
    per-step spread / E, plus the spread of the number of steps O - 1 tokens take, a renewal
    count of variance (O-1) Var(X) / E^3 (X the tokens a step emits; docs/model.md section 4)."""
    if o.speculative_tokens == 0:
        return sd_step
    E = tokens_per_step(o)
    return np.sqrt(sd_step * sd_step / (E * E)
                   + tau * tau * tokens_per_step_variance(o) / (E ** 3 * np.maximum(O - 1.0, 1.0)))


def _saturation(phys: StepPhysics, eng: Engine, S, O, P=0.0, cv2=0.0):
    """Section 3: the rate at which every step is full: n decode + c prompt tokens = budget,
    in the ratio (O-1) : S, n capped by max sequences.

    Speculative decoding: a request needs (O-1)/E decode steps (E = ``tokens_per_step``) and
    a decode sequence takes q = k + 1 tokens of the budget: n q + c = T with c = n S E/(O-1)."""
    T, cap = eng.token_budget, eng.max_seqs
    if phys.o.speculative_tokens > 0:
        steps = np.maximum(O - 1.0, 1e-9) / tokens_per_step(phys.o)      # decode steps per request
        n = np.minimum(T * steps / (S + float(query_tokens(phys.o)) * steps), cap)
        n = np.maximum(n, 1e-9)
        c = n * S / steps
        tau = step_time(phys, n, n * (S + P + O / 2.0), c, c * attention_length(S, P, cv2), c / S)
        return phys.lanes * n / (steps * tau), tau
    # a full step: n decode + c prompt tokens = T (prefill first: c = T alone, decoders apart)
    n = np.minimum(T * (O - 1.0) / (S + (O - 1.0) * (_budget_share(phys) > 0)), cap)
    n = np.maximum(n, 1e-9)
    c = n * S / np.maximum(O - 1.0, 1e-9)
    A = attention_length(S, P, cv2)
    tau = carrying_step(phys, n, n * (S + P + O / 2.0), c, c * A, c / S)
    if phys.o.prefill_first:
        tau = np.minimum(tau, _prefill_first_full(phys, n, S, O, P, A, T))
    return phys.lanes * n / (np.maximum(O - 1.0, 1e-9) * tau), tau


def _prefill_first_full(phys: StepPhysics, n, S, O, P, A, T):
    """Section 5, 'prefill first': the mean step of a prefill-first engine with n sequences
    decoding, as ``_steady`` computes it at the rate that keeps n running: a = n / (O - 1)
    arrivals a mean step (Little), prefilled together in one prompt-only step
    (``_prompt_batch``) with probability q = a S / c, so tau = t0(n) + q t_prompt(c). Not every
    decode step carries a prompt step: the prompts of several steps share one (its host floor
    and weight reads). +inf where the prompt steps cannot keep up (q >= 1: every step carries
    prompts, the mixed engine's full step above)."""
    a = n / np.maximum(O - 1.0, 1e-9)
    c1 = S / np.ceil(S / T)
    c = _prompt_batch(c1, T, S, a)
    q = a * S / c
    t0 = step_time(phys, n, n * (S + P + O / 2.0), 0.0, 0.0, 0.0)
    tau = t0 + q * prompt_step(phys, 0.0, 0.0, c, c * A, c / S)
    return np.where(q < 1.0, tau, np.inf)


def _steady(phys: StepPhysics, eng: Engine, rate, S, O, tau_sat=None, P=0.0, cv2=0.0, known=None):
    """Section 3: the mean step by the fluid fixed point tau = F(tau) (a bracketing root
    finder, ``fixed_point``; ``tau_sat``: the saturated step, if the caller has it).
    ``known``: per configuration, the fixed point already found at this very rate and
    workload (NaN where not): the root finder runs on the others only (each
    configuration's iterates are its own, so the figures are the same)."""
    lam = rate / phys.lanes
    T = eng.token_budget
    E = tokens_per_step(phys.o)                    # 1 without speculative decoding
    qd = _budget_share(phys)              # budget tokens per decode sequence in a carrying step

    P = np.broadcast_to(np.asarray(P, dtype=float), np.shape(lam))
    cv2 = np.broadcast_to(np.asarray(cv2, dtype=float), np.shape(lam))

    # the rate-independent factors of F, once (each product in the order F takes it: the same figures)
    fixed = (lam, lam * ((O - 1.0) / E), lam * S, S, S + P + O / 2.0, attention_length(S, P, cv2), T)

    def parts(tau, ph=phys, lam=lam, steps=fixed[1], lam_S=fixed[2], S=S, per_seq=fixed[4], A=fixed[5], T=T):
        n = steps * tau            # Little: (O-1)/E decode steps per request
        Ta = np.maximum(T - n * qd, 1.0)
        c1 = S / np.ceil(S / Ta)
        u = lam_S * tau
        c = _prompt_batch(c1, Ta, S, lam * tau) if ph.o.prefill_first else _chunk(c1, Ta, u)
        q = u / c
        t0, t1 = _decode_and_carrying(ph, n, n * per_seq, c, c * A, c / S)
        return n, Ta, c1, c, q, t0, t1

    def mean_step(q, t0, t1):
        return (1.0 - np.minimum(q, 1.0)) * t0 + np.minimum(q, 1.0) * t1

    def F(tau):
        _, _, _, _, q, t0, t1 = parts(tau)
        return mean_step(q, t0, t1)

    def restrict(idx):
        """F of the configurations ``idx`` only."""
        ph, sub = phys.take(idx), tuple(np.broadcast_to(np.asarray(v), np.shape(lam))[idx] for v in fixed)

        def F_idx(tau):
            _, _, _, _, q, t0, t1 = parts(tau, ph, *sub)
            return mean_step(q, t0, t1)
        return F_idx

    if tau_sat is None:
        _, tau_sat = _saturation(phys, eng, S, O, P, cv2)
    if "idle_step" not in phys._w:      # rate-independent: once per configuration set
        phys._w["idle_step"] = step_time(phys, 0.0, 0.0, 0.0, 0.0, 0.0)
    lo = phys._w["idle_step"] * 0.5
    hi = 4.0 * np.maximum(tau_sat, lo * 4.0)
    if known is None:
        tau = fixed_point(F, lo, hi, restrict=restrict)
    else:
        tau = np.array(known, dtype=float)
        if len(todo := np.flatnonzero(np.isnan(tau))):
            tau[todo] = fixed_point(restrict(todo), lo[todo], hi[todo], restrict=lambda idx: restrict(todo[idx]))
    n, Ta, c1, c, q, t0, t1 = parts(tau)
    converged = np.abs(mean_step(q, t0, t1) - tau) <= 1e-6 * tau + 1e-12
    # a step past the slots can be slower than the bracket's end (eager past the CUDA graphs,
    # at a batch the slots never reach), hiding the fixed point below it, or the root finder
    # lands on a fixed point there (n > M, a batch the slots never admit): where none was found
    # below the slots, search again below the step at which n = M (docs/load.md section 3)
    tau_M = eng.max_seqs * E / (np.maximum(lam, 1e-300) * np.maximum(O - 1.0, 1e-9))
    if np.any(again := (~converged | (tau > tau_M)) & (tau_M < hi) & (tau_M > lo)):
        idx = np.flatnonzero(again)
        F_idx = restrict(idx)
        found = fixed_point(F_idx, np.broadcast_to(lo, tau.shape)[idx], tau_M[idx])
        ok = np.abs(F_idx(found) - found) <= 1e-6 * found + 1e-12     # kept only where it is one
        if np.any(ok):
            tau[idx[ok]] = found[ok]
            n, Ta, c1, c, q, t0, t1 = parts(tau)
            converged = np.abs(mean_step(q, t0, t1) - tau) <= 1e-6 * tau + 1e-12
    return dict(tau=tau, n=n, Ta=Ta, c1=c1, c=c, q=q, t0=t0, t1=t1, converged=converged & (q < 1.0))


def slot_wait(rho, c, cv2, service):
    """Section 4: G/G/c mean wait, Allen-Cunneen with Sakasegawa's probability of waiting."""
    c = np.maximum(c, 1.0)
    r = np.clip(rho, 0.0, 1.0 - 1e-12)
    pw = r ** (np.sqrt(2.0 * (c + 1.0)) - 1.0)
    return pw / (c * (1.0 - r)) * cv2 * service


def load_metrics(phys: StepPhysics, eng: Engine, wl: Workload, rate=None, clients=None,
                 quantiles: bool = True, report: set | None = None) -> LoadResult:
    """Closed forms under load (sections 3-5), vectorised over configurations.

    Give ``rate`` (requests/s per replica, open loop) or ``clients`` (closed loop, N
    clients per replica sending their next request when the last completes): the closed
    loop solves N = X (TTFT + (OSL - 1) TPOT) for the throughput X by bisection, the
    steady state of clients out of step; with ``wl.start == "together"`` the figures are a
    benchmark run's averages, its first wave included (``_first_wave``), and X the run's.
    ``report``: the (metric, percentile) pairs to compute (None: all; means always). The
    result names its arrival model (``LoadResult.arrival``)."""
    n_cfg = len(phys)
    S, P = prompt_split(wl, n_cfg)
    O = np.broadcast_to(np.asarray(wl.osl, dtype=float), (n_cfg,))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if clients is None:
            lam = np.broadcast_to(np.asarray(rate, dtype=float), (n_cfg,))
            return _open(phys, eng, wl, lam, S, O, closed=None, quantiles=quantiles, needed=report)
        N = np.broadcast_to(np.asarray(clients, dtype=float), (n_cfg,))
        sat, _ = _saturation(phys, eng, S, O, P, wl.isl_cv2)
        # Largest rate a lane can carry with N clients: N / (their minimum residence).
        lo = np.zeros(n_cfg) + 1e-12 * sat
        hi = sat * (1.0 - 1e-9)

        at = rows_taken(lambda rows: (phys.take(rows), eng.take(rows), wl.take(rows, n_cfg), S[rows], O[rows],
                                      N[rows]))

        def under(x, rows):
            ph, en, w, s_, o_, n_ = at(rows)
            r = _open(ph, en, w, x, s_, o_, closed=n_, quantiles=False)
            resid = r.get("ttft", "mean") + (o_ - 1.0) * r.get("tpot", "mean")
            return r.stable & (x * resid < n_)
        lo, hi = bisect_levels(under, lo, hi, 36)
        r = _open(phys, eng, wl, lo, S, O, closed=N, needed=report)
        if wl.start == "together":
            r = _firstwave(phys, eng, wl, r, N, S, O)
            if phys.o.prefill_first and _fixed_lengths(wl):
                r = _in_step(phys, eng, wl, r, N, S, O)
        return r


def wave(phys: StepPhysics, W, S, O, T, n_dec, P=0.0):
    """W prompts of S tokens arriving together, prefilled FIFO a full chunk a step beside
    ``n_dec`` decoders (section 5): a step carries c = min(T - q n_dec, W S) prompt tokens
    (at least T / 2: decoders that fill the budget are the slot limit's business) and takes
    t_w; the wave lasts K = W S / c steps, the i-th prompt completes after about i S / c of
    them, the first after k_1 = ceil(S / c). ``P``: cached prompt tokens beside the S computed
    ones (section 1b). Returns (mean completion time t_w (K + k_1) / 2,
    the first's k_1 t_w, the last's max(ceil K, k_1) t_w, K, t_w)."""
    q = _budget_share(phys)
    Ta = np.maximum(T - q * n_dec, T / 2.0)
    c = np.minimum(Ta, W * S)
    t_w = prompt_step(phys, n_dec, n_dec * (S + P + O / 2.0), c, c * (S + 2.0 * P), c / S)
    K = W * S / c
    k1 = np.ceil(S / Ta)
    mean_steps = np.maximum((K + k1) / 2.0, k1)
    return mean_steps * t_w, k1 * t_w, np.maximum(np.ceil(K), k1) * t_w, K, t_w


def _fixed_lengths(wl: Workload) -> bool:
    """Whether every prompt and every output has one length (both CV^2 0 everywhere)."""
    return bool(np.all(np.asarray(wl.isl_cv2) == 0.0) and np.all(np.asarray(wl.osl_cv2) == 0.0))


def _clump(eng: Engine, Nl, S, Ta):
    """Prompts that arrive together in the steady state of a closed loop whose clients started
    together with fixed lengths (section 5): every cycle repeats, so the prompts a step
    completed come back in the same step, min(N_l, M, the chunk's worth Ta / S) of them."""
    return np.maximum(np.minimum(np.minimum(Nl, np.maximum(eng.max_seqs, 1.0)), np.floor(Ta / S)), 1.0)


def _firstwave(phys: StepPhysics, eng: Engine, wl: Workload, r: LoadResult, N, S, O) -> LoadResult:
    """A benchmark run whose N clients start together (section 5, 'clients starting
    together'): the steady state ``r`` for every request but the first wave's. The first
    W = min(N_l, M) prompts of a lane arrive at t = 0 on an idle engine (``wave``, with the
    (W - 1) / 2 prompts already done decoding on average): their TTFT is uniform from the
    wave's first completion to its last. Those W requests are W / (R N_l / N) of the run
    (R = ``requests_per_client`` x N); their decode runs K - (K + k_1)/2 steps on average at
    the wave's step t_w instead of the steady step. The run's throughput is then
    N / (TTFT + (O - 1) TPOT) (Little's law over the run, every client always busy)."""
    G = phys.lanes
    Nl = np.maximum(N / G, 1.0)
    W = np.minimum(Nl, np.maximum(eng.max_seqs, 1.0))
    wave_mean, first, last, K, t_w = wave(phys, W, S, 0.0, eng.token_budget, (W - 1.0) / 2.0, wl.cached)
    mean_steps = wave_mean / t_w
    f = np.clip(W / (np.asarray(wl.requests_per_client, dtype=float) * Nl), 0.0, 1.0)
    E = tokens_per_step(phys.o)
    tau = r.get("itl", "mean")
    # the wave's later steps slow its decoders (t_w against tau), or stop them (prefill first)
    stall = t_w if phys.o.prefill_first else np.maximum(t_w - tau, 0.0)
    extra = np.maximum(K - mean_steps, 0.0) * stall / (np.maximum(O - 1.0, 1.0) / E)
    stats = dict(r.stats)
    serving = phys.o.serving_overhead_s
    ttft = (1.0 - f) * r.get("ttft", "mean") + f * (wave_mean + serving)
    tpot = r.get("tpot", "mean") + f * extra
    stats[("ttft", "mean")], stats[("tpot", "mean")] = ttft, tpot
    stats[("e2e", "mean")] = ttft + (O - 1.0) * tpot
    for key, p in PERCENTILES.items():
        tail = 1.0 - p
        # the wave's uniform spread carries the tail where it holds more than 1 - p of the run
        in_wave = np.where(f > tail, last - tail / np.maximum(f, 1e-300) * (last - first), 0.0) + serving
        if ("ttft", key) in stats:
            stats[("ttft", key)] = np.maximum(stats[("ttft", key)], in_wave)
        if ("tpot", key) in stats:
            stats[("tpot", key)] = stats[("tpot", key)] + f * extra
        if ("e2e", key) in stats and ("ttft", key) in stats and ("tpot", key) in stats:
            stats[("e2e", key)] = stats[("ttft", key)] + (O - 1.0) * stats[("tpot", key)]
    x = N / (ttft + (O - 1.0) * tpot)
    return replace(r, rate=x, throughput_tokens_per_s=x * O, concurrency=x * (ttft + (O - 1.0) * tpot), stats=stats,
                   arrival=arrival_model(wl, True))


def _in_step(phys: StepPhysics, eng: Engine, wl: Workload, r: LoadResult, N, S, O) -> LoadResult:
    """Clients that start together with fixed lengths on a prefill-first engine (section 5,
    'prefill first'): every cycle is a wave. The W = min(N_l, M) prompts of a lane come back
    together, are prefilled FIFO in prompt-only steps of a full budget while the decoders
    wait (``wave`` with none beside), then decode O - 1 steps together at batch W. The i-th
    prompt's TTFT is its k_i wave steps, and the K - k_i steps after it stall its decode:
    TTFT = serving + t_w (K + k_1) / 2, TPOT = tau_W / E + t_w (K - (K + k_1) / 2) / ((O - 1) / E),
    a cycle C = serving + K t_w + (O - 1) / E tau_W, and the N_l - W clients past the slots
    wait (N_l - W) C / W. Throughput N / C (Little's law over the lane's clients)."""
    G = phys.lanes
    Nl = np.maximum(N / G, 1.0)
    W = np.minimum(Nl, np.maximum(eng.max_seqs, 1.0))
    P = wl.cached
    wave_mean, first, last, K, t_w = wave(phys, W, S, 0.0, eng.token_budget, 0.0, P)
    E = tokens_per_step(phys.o)
    steps = np.maximum(O - 1.0, 1.0) / E
    tau = step_time(phys, W, W * (S + P + O / 2.0), 0.0, 0.0, 0.0)
    serving = phys.o.serving_overhead_s
    span = np.maximum(K - wave_mean / t_w, 0.0) * t_w          # the wave's steps after a mean prompt's
    cycle = serving + np.maximum(np.ceil(K), 1.0) * t_w + steps * tau
    w_kv = np.maximum(Nl - W, 0.0) * cycle / W
    ttft = serving + wave_mean + w_kv
    tpot = tau / E + span / steps
    stats = dict(r.stats)
    stats[("ttft", "mean")], stats[("tpot", "mean")], stats[("itl", "mean")] = ttft, tpot, tau + span / steps * E
    stats[("e2e", "mean")] = ttft + (O - 1.0) * tpot
    for key, p in PERCENTILES.items():
        # the i-th prompt of the wave: TTFT uniform from the first's to the last's, and its stall the rest
        if ("ttft", key) in stats:
            stats[("ttft", key)] = serving + w_kv + first + p * (last - first)
        if ("tpot", key) in stats:
            stats[("tpot", key)] = tau / E + p * np.maximum(last - first, 0.0) / steps
        if ("e2e", key) in stats:
            stats[("e2e", key)] = ttft + (O - 1.0) * tpot        # every client's cycle is the same
    x = N / (ttft + (O - 1.0) * tpot)
    return replace(r, rate=x, throughput_tokens_per_s=x * O, concurrency=x * (ttft + (O - 1.0) * tpot),
                   running=W, step_decode=tau, step_prefill=t_w, stats=stats,
                   arrival=arrival_model(wl, True) + ", in step every cycle (prefill first)")


def _open(phys, eng, wl, lam, S, O, closed, quantiles=True, needed=None, saturation=None, known=None) -> LoadResult:
    """The load model at rate ``lam``. ``needed``: the (metric, statistic) pairs whose
    percentiles to compute (None: all); ``saturation``: ``_saturation``'s result for these
    configurations, if the caller has it (it does not depend on the rate)."""
    G = phys.lanes
    ca2 = np.broadcast_to(np.asarray(wl.arrival_cv2, dtype=float), lam.shape)
    cs2_isl = np.broadcast_to(np.asarray(wl.isl_cv2, dtype=float), lam.shape)
    if closed is not None:
        ca2 = np.ones_like(lam)   # finite-source arrivals taken as Poisson (section 5)
    P = np.broadcast_to(np.asarray(wl.cached, dtype=float), lam.shape)   # section 1b: S is computed, S + P held
    sat, tau_sat = _saturation(phys, eng, S, O, P, cs2_isl) if saturation is None else saturation
    st = _steady(phys, eng, lam, S, O, tau_sat, P, cs2_isl, known)
    tau, n, c, q, t0, t1, Ta, c1 = st["tau"], st["n"], st["c"], st["q"], st["t0"], st["t1"], st["Ta"], st["c1"]
    lam_l = lam / G
    # Section 4: TTFT = residual of the step in progress + backlog beyond one chunk + own steps.
    qq = np.minimum(q, 1.0)
    D = S / c * t1                                   # time in carrying steps per prompt
    rho_p = np.minimum(lam_l * D, 1.0)               # share of time in carrying steps
    # What an arrival sees (section 5): the time averages in an open loop; in a closed loop
    # the other N_l - 1 clients of its lane only (the arrival theorem, with Schweitzer's
    # scaling of the means by (N_l - 1) / N_l): one client alone finds the engine idle.
    if closed is None:
        seen, busy, n_seen = 1.0, 1.0, n
    else:
        Nl = np.maximum(closed / G, 1e-300)
        seen = np.clip((Nl - 1.0) / Nl, 0.0, 1.0)
        busy = np.clip(Nl - 1.0, 0.0, 1.0)       # another client keeps the engine stepping
        n_seen = n * seen
    ctx_n = n_seen * (S + P + O / 2.0)
    # residual of the step in progress (length-biased); closed-loop clients are taken to
    # arrive unsynchronised with steps as well (network, tokenizer), section 5
    # (time shares of decode, one-prompt and full-chunk steps; the carrying steps carry c1 or
    # Ta tokens, mixed to give the mean chunk c)
    c2 = np.minimum(Ta, c1 + S)
    pi = np.clip((c - c1) / np.maximum(c2 - c1, 1e-9), 0.0, 1.0)
    A = attention_length(S, P, cs2_isl)      # attention units per computed prompt token (sections 1b, 3)
    t_two = carrying_step(phys, n, n * (S + P + O / 2.0), c2, c2 * A, c2 / S, decode=t0)
    t_full = prompt_step(phys, n_seen, ctx_n, Ta, Ta * A, Ta / S)
    # a prompt longer than a step is cut as the engine cuts it: k - 1 full steps of Ta, then
    # the rest (the residual sees those lengths; their mean is c1's): at k = 1 the one kind c1
    k_pc = np.ceil(S / Ta)
    rest = S - (k_pc - 1.0) * Ta
    t_rest = carrying_step(phys, n, n * (S + P + O / 2.0), rest, rest * A, rest / S, decode=t0)
    if np.all(k_pc == 1.0):    # no prompt is cut: the full-chunk kind has count 0 (its time, any finite one, adds 0)
        t_cut = t_rest
    elif closed is None:       # an open loop's arrivals see all n decoders: t_full's step (and, prefill first, t0)
        t_cut = t_full + t0 if phys.o.prefill_first else t_full
    else:
        t_cut = carrying_step(phys, n, n * (S + P + O / 2.0), Ta, Ta * A, Ta / S, decode=t0)
    kinds = (t0, t_rest, t_two, t_cut)
    counts = (1.0 - qq, qq * (1.0 - pi) / k_pc, qq * pi, qq * (1.0 - pi) * (k_pc - 1.0) / k_pc)
    span = sum(k * t for k, t in zip(counts, kinds))
    shares = [k * t / span for k, t in zip(counts, kinds)]
    resid = busy * sum(f * t / 2.0 for f, t in zip(shares, kinds))
    # prompt-token backlog, an M/G/1 on work (Kingman; rho_T at full-chunk speed Ta / t_full): mean past Ta - S
    rho_T = np.minimum(lam_l * S * t_full / Ta, 1.0)
    rho_seen = rho_p * seen
    cs2_work = prefill_work_cv2(phys, n, n * (S + P + O / 2.0), c1, S, P, wl, lam.shape)
    w_work = rho_seen / (1.0 - rho_seen) * (ca2 + cs2_work) / 2.0 * D
    m_tok = w_work / np.maximum(rho_seen, 1e-12) * c / t1           # mean backlog when busy, tokens
    k_own = np.ceil(S / Ta)
    slack = np.maximum(k_own * Ta - S, 0.0)
    fit = np.exp(-slack / np.maximum(m_tok, 1e-12))
    w_extra, pw_extra = w_work * fit, rho_seen * fit
    w_full = w_work * np.minimum(t_full / Ta / (t1 / c), 1.0)     # the backlog at full-chunk speed (section 5)
    # own steps: k - 1 full chunks, then the last piece plus the prompts that joined it
    last = S - (k_own - 1.0) * Ta
    in_step = closed is not None and wl.start == "together" and _fixed_lengths(wl)
    if in_step:
        # clients that started together with fixed lengths stay in step: a prompt comes back
        # with the others its step completed, and their clump is prefilled FIFO like a wave
        g = _clump(eng, Nl, S, Ta)
        clump, _, _, _, _ = wave(phys, g, S, O, eng.token_budget, n_seen, P)

    t_last = prompt_step(phys, n_seen, ctx_n, last, last * A, last / S)    # the last piece alone
    chunks = (k_own - 1.0) * t_full

    def joiner_step(rows=None, n=0):
        """The last piece's step with the joiners' tokens, c_own in all: of every configuration
        (``rows`` None, any shape) or of the configurations ``rows`` of ``n`` only (``joined_step``)."""
        ph, ns, cn, a, s = (phys, n_seen, ctx_n, A, S) if rows is None else at_rows(rows, n, phys, n_seen, ctx_n, A, S)
        return lambda c_own: prompt_step(ph, ns, cn, c_own, c_own * a, c_own / s)

    def own_steps(fixed, wait=0.0, pw=1.0):
        """D_own of a prompt that waited ``fixed`` and a wait of mean ``wait`` (0 with probability
        1 - ``pw``, else exponential) for the prompt backlog: k - 1 full chunks, then its last
        piece and the prompts that arrived meanwhile and during its full chunks, whole prompts
        (section 5, 'whole joiners'): the expected step over their count (``joined_step``)."""
        d = chunks + joined_step(joiner_step(), t_last, last, S, Ta, lam_l * seen, fixed + chunks, wait, pw,
                                 step_at=joiner_step)
        return np.where(g > 1.0, np.maximum(d, clump), d) if in_step else d
    D_own = own_steps(resid, w_extra, pw_extra)
    E = tokens_per_step(phys.o)        # speculative decoding: (O-1)/E decode steps a request (1: off)
    residence = w_extra + resid + D_own + ((O - 1.0) / E) * tau    # KV slot held (reserved at admission)
    rho_kv = lam_l * residence / eng.max_seqs
    if closed is None:
        w_kv = slot_wait(rho_kv, eng.max_seqs, (ca2 + 0.0) / 2.0, residence)
    else:
        # N_l clients, M slots: nobody waits while N_l <= M; past it the slots are always full
        # and N_l - M clients always wait, N_l - M over the lane's rate by Little's law
        w_kv = np.maximum(Nl - eng.max_seqs, 0.0) / lam_l
    serving = phys.o.serving_overhead_s    # the serving path outside the engine's steps (HTTP, tokenizer, stream)
    ttft = resid + w_extra + w_kv + D_own + serving
    tpot = tau / E                     # per output token; ITL is per step (a burst of E tokens on average)
    # a closed loop's slots are full by construction past N_l = M (its solver keeps X x residence <= M)
    kv_ok = (rho_kv < 1.0) if closed is None else (rho_kv <= 1.0 + 1e-9)
    stable = st["converged"] & kv_ok & (rho_p < 1.0) & (rho_T < 1.0) & (lam < sat)
    e2e = ttft + (O - 1.0) * tpot
    stats = {("ttft", "mean"): ttft, ("tpot", "mean"): tpot, ("itl", "mean"): tau, ("e2e", "mean"): e2e}
    if quantiles:
        # Section 5: percentiles. A closed loop's slot wait is the time N_l - M completions
        # take: nearly its mean (taken as deterministic).
        pw_kv = np.clip(rho_kv, 0.0, 1.0) ** (np.sqrt(2.0 * (eng.max_seqs + 1.0)) - 1.0)
        # fluctuation of the decode batch: Poisson (M/D/inf) scaled by the peakedness
        # (1 + ca2)/2; closed loop: binomial over N clients.
        if closed is None:
            zpk = (1.0 + ca2) / 2.0
        else:
            zpk = np.clip(1.0 - n * G / np.maximum(closed, 1e-9), 0.0, 1.0)
        var_n = n * zpk
        # the decode step's slope in n: only the ITL and TPOT (hence E2E) percentiles need it
        if needed is None or any(m != "ttft" and st_ != "mean" for m, st_ in needed):
            dn = np.maximum(n * 1e-3, 1e-3)
            nm = np.maximum(n - dn, 0.0)
            d0 = (step_time(phys, n + dn, (n + dn) * (S + P + O / 2.0))
                  - step_time(phys, nm, nm * (S + P + O / 2.0))) / (n + dn - nm)
            sd0 = np.abs(d0) * np.sqrt(var_n)
            # per-request TPOT: the life average of n (variance 2/3 n, M/D/inf window), K prompts
            # prefilled during the decode phase, covariance m_k / 2 (section 5). Each prompt
            # prefilled stretches the window by its carrying steps' extra time, in which a = lam x
            # that extra time more prompts arrive: K is the total progeny of Poisson immigrants in
            # a branching process (Borel-Tanner), mean m_k, variance m_k / (1 - a)^2.
            m_k = lam_l * ((O - 1.0) / E) * tau
            e = (t1 - t0) * S / c / (np.maximum(O - 1.0, 1.0) / E)
            a = np.clip(lam_l * (t1 - t0) * S / c, 0.0, 0.95)
            var_tpot = zpk * (d0 * d0 * n * 2.0 / 3.0 + e * e * m_k / (1.0 - a) ** 2 + d0 * e * m_k / (1.0 - a))
            sd_tpot = np.sqrt(np.maximum(var_tpot, 0.0))
            sd_tpot = per_token_sd(phys.o, sd_tpot, tau, O)
        t_one: np.ndarray | None = None
        own_at: tuple[np.ndarray, np.ndarray] | None = None     # the last percentile's joined wait and own steps
        for key, p in PERCENTILES.items():
            want = {m for m in METRICS if needed is None or (m, key) in needed}
            if "e2e" in want:
                want |= {"ttft", "tpot"}
            z = NORMAL_Z[key]
            tail = 1.0 - p
            if "ttft" in want:
                # residual of the step in progress: uniform over a length-biased step
                r_p = residual_quantile(shares, kinds, tail)
                r_p = busy * r_p
                w_kv_p = exp_tail_quantile(w_kv, pw_kv, p) if closed is None else w_kv
                w_backlog_p = exp_tail_quantile(w_extra, pw_extra, p)
                w_full_p = exp_tail_quantile(w_full, rho_seen, p)
                wq = np.maximum(np.maximum(r_p, resid + w_backlog_p), w_full_p) + w_kv_p
                # its last step carries the prompts that arrived while it queued behind the backlog
                # (none where the p-quantile finds none, at most the mean wait's) and during its
                # full chunks, whole prompts: the expected step over their count (section 5)
                joined = np.minimum(np.maximum(w_backlog_p, w_full_p), resid + w_extra)
                if own_at is None or not np.array_equal(joined, own_at[0]):
                    own_at = (joined, own_steps(joined))
                own = own_at[1]
                stats[("ttft", key)] = own + wq + serving
            if "itl" in want:
                if t_one is None:      # the one-prompt step: only the ITL percentiles read it
                    t_one = carrying_step(phys, n, n * (S + P + O / 2.0), c1, c1 * A, c1 / S, decode=t0)
                stats[("itl", key)] = mixture_quantile(
                    [t0, t_one, t_two], [sd0, sd0, sd0], [1.0 - qq, qq * (1.0 - pi), qq * pi], p, z=z)
            if "tpot" in want:
                stats[("tpot", key)] = tpot + z * sd_tpot
            if "e2e" in want:
                stats[("e2e", key)] = stats[("ttft", key)] + (O - 1.0) * stats[("tpot", key)]
    conc = lam * e2e
    return LoadResult(
        # past saturation the replica carries its capacity, never the offered rate (issue 23 item 5)
        rate=lam, throughput_tokens_per_s=np.minimum(lam, sat) * O, concurrency=conc, running=n, step_decode=t0,
        step_prefill=t1, chunk_tokens=c, prefill_step_fraction=q, rho=np.maximum(lam / sat, rho_kv), rho_prefill=rho_p,
        rho_kv=rho_kv, saturation_rate=sat, stable=stable, stats=stats,
        arrival=arrival_model(wl, closed is not None),
    )


# ----------------------------------------------------------------------------------------
# Section 6: capacity at SLO
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    metric: str       # ttft | tpot | itl | e2e
    statistic: str    # mean | p50 | p90 | p95 | p99
    seconds: float

    def __post_init__(self):
        if self.metric not in METRICS or self.statistic not in STATISTICS:
            raise ValueError(f"unknown target {self.metric}/{self.statistic}")


PAST_CAP_FIRST_ROWS = 4 * RESTRICT_ROWS
"""``capacity_at_slo`` evaluates the point past the utilisation cap in a call of its own, before
the vanishing rate, where at least this many rows may meet every target there (a call costs
about RESTRICT_ROWS rows' work; some of those rows miss there and save nothing)."""


@dataclass(frozen=True)
class Capacity:
    rate: np.ndarray                  # highest requests/s per replica meeting every target
    throughput_tokens_per_s: np.ndarray
    rho: np.ndarray
    binding: np.ndarray               # index of the binding target; -1: saturation binds
    result: LoadResult                # the load model at that rate


def capacity_at_slo(phys: StepPhysics, eng: Engine, wl: Workload, targets: Sequence[Target], iters: int = 16,
                    max_utilization: float | None = None, report: set | None = None,
                    seconds: np.ndarray | None = None) -> Capacity:
    """Highest request rate per replica at which each configuration meets every target
    (section 6): the lower end of a geometric bisection of ``iters`` steps over the rate
    between 1e-4 and 1 - 1e-9 of saturation, whose steps ``bisection_by_bracket`` settles
    from far fewer evaluations (the same rate, bit for bit, as long as meeting the targets
    is monotone in the rate). A configuration that misses a target even at a vanishing rate
    gets capacity 0 with that target binding: every statistic grows with the load, so that
    one evaluation settles it and the search runs on the others only (each configuration's
    result is its own, the same as computed alone, given that monotonicity: how many rates a
    row is asked per call depends on the table's size).

    ``max_utilization``: the rate is capped at that share of saturation, binding -1 where
    the cap is below the capacity, and the result is at the capped rate; a configuration
    shown to meet every target above the cap stops there (no need to locate its capacity);
    on a large table the point just past the cap comes first, and a row meeting every target
    there skips the vanishing rate (``PAST_CAP_FIRST_ROWS``; issue 26: ~9 % fewer evaluations).
    ``report``: the (metric, percentile) pairs the result carries besides the targets'
    (None: all; the others are +inf). ``seconds``: the targets' limits per configuration
    (targets x configurations: workloads computed together), else each target's own."""
    n_cfg = len(phys)
    S, P = prompt_split(wl, n_cfg)
    O = np.broadcast_to(np.asarray(wl.osl, dtype=float), (n_cfg,))
    limits = np.array([t.seconds for t in targets], dtype=float)[:, None] if seconds is None else seconds
    needed = {(t.metric, t.statistic) for t in targets}
    shown = None if report is None else set(report) | needed

    def ratios(ph, en, w, x, S, O, saturation, rows=None):      # rows: of the table, where limits are per row
        r = _open(ph, en, w, x, S, O, closed=None, needed=needed, saturation=saturation)
        vals = np.stack([r.get(t.metric, t.statistic) for t in targets]) if len(targets) else np.zeros((0, len(x)))
        return r, vals / (limits if limits.shape[1] == 1 or rows is None else limits[:, rows])

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        sat_raw, tau_sat = _saturation(phys, eng, S, O, P, wl.isl_cv2)
        sat = np.where(np.isfinite(sat_raw) & (sat_raw > 0), sat_raw, 0.0)
        ceiling = np.full(n_cfg, np.inf) if max_utilization is None else max_utilization * sat
        lo = np.maximum(sat * 1e-4, 1e-300)
        hi_all = np.maximum(sat * (1.0 - 1e-9), lo)
        # the search's first point, just past the ceiling, evaluated first: a row meeting every
        # target there is above the ceiling, with no need of the vanishing rate's check (monotone
        # in the rate); worth its own call where enough rows may skip that check
        pre = np.zeros(0, dtype=np.int64)
        if max_utilization is not None and len(targets) and n_cfg >= PAST_CAP_FIRST_ROWS:
            x0, inside = first_point(lo, hi_all, iters, ceiling)
            pre = np.flatnonzero(inside & (sat > 0) & (x0 > lo) & ~_idle_misses(phys, eng, S, P, wl, targets, limits))
            pre = pre if len(pre) >= PAST_CAP_FIRST_ROWS else pre[:0]
        if len(pre):
            r_pre, rt_pre = ratios(phys.take(pre), eng.take(pre), wl.take(pre, n_cfg), x0[pre], S[pre], O[pre],
                                   (sat_raw[pre], tau_sat[pre]), pre)
            ok_pre = _meets(r_pre, rt_pre)
            rest = np.ones(n_cfg, dtype=bool)
            rest[pre[ok_pre]] = False
            rest = np.flatnonzero(rest)
            r0_rest, rt0_rest = ratios(phys.take(rest), eng.take(rest), wl.take(rest, n_cfg), lo[rest], S[rest],
                                       O[rest], (sat_raw[rest], tau_sat[rest]), rest)
            r0 = merge_results(n_cfg, [(rest, r0_rest)])
            rt0 = np.full((len(targets), n_cfg), np.nan)
            rt0[:, rest] = rt0_rest
            feasible0 = np.ones(n_cfg, dtype=bool)
            feasible0[rest] = _meets(r0_rest, rt0_rest)
        else:
            r0, rt0 = ratios(phys, eng, wl, lo, S, O, (sat_raw, tau_sat))
            feasible0 = _meets(r0, rt0)
        rate = np.zeros(n_cfg)
        binding = np.argmax(rt0, axis=0) if len(targets) else np.full(n_cfg, -1)
        parts = []
        live, settled = np.flatnonzero(feasible0), np.flatnonzero(~feasible0)
        if len(live):
            ph, en, w = phys.take(live), eng.take(live), wl.take(live, n_cfg)
            S_, O_, lo_l, cap_l = S[live], O[live], lo[live], ceiling[live]
            sat_l = (sat_raw[live], tau_sat[live])
            miss = (np.full(len(live), np.nan), np.full(len(live), -1))
            # each row's last rate that met every target and the steady step there (ITL's mean)
            best = (lo_l.copy(), r0.get("itl", "mean")[live].copy())

            def evaluate(x, i):
                """Whether rows ``i`` meet every target at ``x``, and how far from it they are
                (log of the largest ratio to a target or utilisation; NaN where not defined)."""
                r, rt = ratios(ph.take(i), en.take(i), w.take(i, len(live)), x, S_[i], O_[i],
                               (sat_l[0][i], sat_l[1][i]), live[i])
                ok = _meets(r, rt)
                good = np.flatnonzero(ok)
                good = good[np.argsort(x[good], kind="stable")]         # the highest last
                best[0][i[good]], best[1][i[good]] = x[good], r.get("itl", "mean")[good]
                if len(targets):     # each row's lowest miss of the call (its H) and the target it names there
                    bad = np.flatnonzero(~ok)
                    bad = bad[np.argsort(-x[bad], kind="stable")]
                    miss[0][i[bad]], miss[1][i[bad]] = x[bad], _named(r, rt)[bad]
                return ok, _distance(r, rt, ok)
            hi = hi_all[live]
            g_lo = np.log(np.maximum(np.max(rt0[:, live], axis=0, initial=0.0),
                                     np.maximum(r0.rho[live], r0.rho_prefill[live])))
            points, seen = points_per_call(len(live)), None
            if len(pre) and points == 1:     # the first points evaluated above: the search's own first
                mine = feasible0[pre]
                j, ok_j = np.searchsorted(live, pre[mine]), ok_pre[mine]
                r_j, rt_j = r_pre.take(np.flatnonzero(mine)), rt_pre[:, mine]
                miss[0][j[~ok_j]], miss[1][j[~ok_j]] = x0[live[j[~ok_j]]], _named(r_j, rt_j)[~ok_j]
                seen = (j, ok_j, _distance(r_j, rt_j, ok_j))
            lo_, hi_, above = bisection_by_bracket(evaluate, lo_l, hi, g_lo, iters, cap_l, points=points, seen=seen)
            found = np.where(above, np.inf, lo_)
            rate_l = np.minimum(found, cap_l)
            rate[live] = rate_l
            at = np.maximum(rate_l, lo_l)
            parts.append((live, _open(ph, en, w, at, S_, O_, closed=None, saturation=sat_l, needed=shown,
                                      known=np.where(at == best[0], best[1], np.nan))))
            binding[live] = -1
            below = np.flatnonzero(found <= cap_l)     # the capacity itself binds: name the target
            if len(below) and len(targets):      # named at hi_: by the evaluation there where it was one
                binding[live[below]] = miss[1][below]
                if len(redo := below[miss[0][below] != hi_[below]]):
                    r_hi, rt_hi = ratios(ph.take(redo), en.take(redo), w.take(redo, len(live)), hi_[redo],
                                         S_[redo], O_[redo], (sat_l[0][redo], sat_l[1][redo]), live[redo])
                    binding[live[redo]] = _named(r_hi, rt_hi)
        if len(settled):     # no bisection: the load model at the vanishing rate itself
            parts.append((settled, _open(phys.take(settled), eng.take(settled), wl.take(settled, n_cfg),
                                         lo[settled], S[settled], O[settled], closed=None, needed=shown,
                                         saturation=(sat_raw[settled], tau_sat[settled]),
                                         known=r0.get("itl", "mean")[settled])))
        binding = np.where(sat > 0, binding, -1)
    return Capacity(rate=rate, throughput_tokens_per_s=rate * O, rho=rate / np.where(sat > 0, sat, np.nan),
                    binding=binding.astype(np.int64), result=merge_results(n_cfg, parts))


def _idle_misses(phys: StepPhysics, eng: Engine, S, P, wl: Workload, targets: Sequence[Target], limits: np.ndarray
                 ) -> np.ndarray:
    """Rows that look bound to miss a target at any rate, by the idle engine's floor: the
    empty step for TPOT and ITL, the prompt's chunks prefilled alone plus the serving path
    for TTFT. It only orders ``capacity_at_slo``'s evaluations (such a row gets the vanishing
    rate first, not the point past the cap): a wrong guess costs one evaluation, no figure."""
    idle = step_time(phys, 0.0, 0.0, 0.0, 0.0, 0.0)
    out = np.zeros(len(phys), dtype=bool)
    for j, t in enumerate(targets):
        if t.metric in ("tpot", "itl"):
            out |= (idle / tokens_per_step(phys.o) if t.metric == "tpot" else idle) > limits[j]
        elif t.metric == "ttft":
            k = np.ceil(S / eng.token_budget)
            c1 = S / k
            prefill = k * step_time(phys, 0.0, 0.0, c1, c1 * attention_length(S, P, wl.isl_cv2), c1 / S)
            out |= prefill + phys.o.serving_overhead_s > limits[j]
    return out


def _meets(r: LoadResult, rt: np.ndarray) -> np.ndarray:
    """Per row, whether it is stable and meets every target (``rt``: ratio to each, targets x rows)."""
    return r.stable & np.all(rt <= 1.0, axis=0)


def _distance(r: LoadResult, rt: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """``capacity_at_slo``'s distance to the boundary: the log of the largest ratio to a
    target or utilisation, NaN where a row misses with nothing above 1 to say how far."""
    g = np.log(np.maximum(np.max(rt, axis=0, initial=0.0), np.maximum(r.rho, r.rho_prefill)))
    return np.where(ok | (g > 0), g, np.nan)


def _named(r: LoadResult, rt: np.ndarray) -> np.ndarray:
    """Per row, the target whose ratio binds where the row misses one, stable; else -1."""
    return np.where(r.stable & (np.max(rt, axis=0) > 1.0), np.argmax(rt, axis=0), -1)


def merge_results(n: int, parts: list[tuple[np.ndarray, LoadResult]]) -> LoadResult:
    """One LoadResult of ``n`` configurations from results on disjoint index sets (a
    statistic missing from a part is +inf on its configurations)."""
    out: dict = {}
    for f in fields(LoadResult):
        if f.name in _NOT_ROWS:
            continue
        arr = None
        for idx, r in parts:
            v = getattr(r, f.name)
            if arr is None:
                arr = np.zeros(n, dtype=v.dtype)
            arr[idx] = v
        out[f.name] = arr if arr is not None else np.zeros(n)
    stats: dict[tuple[str, str], np.ndarray] = {}
    for idx, r in parts:
        for key, v in r.stats.items():
            stats.setdefault(key, np.full(n, np.inf))[idx] = v
    return LoadResult(**out, stats=stats, arrival=parts[0][1].arrival if parts else LoadResult.arrival)
