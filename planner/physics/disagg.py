"""Prefill/decode disaggregation: a prefill pool and a decode pool, each per replica.

Vectorised over configurations, pure numpy, no solver, price or spec. Derivations, the
names of the approximations and their sources: docs/disaggregation.md (section numbers in
comments). The step-time physics and the queueing approximations are load.py's
(docs/load.md); this module only changes which steps run:

- a **prefill replica** runs prompt-only steps (batched prefill: FIFO, whole prompts packed
  and long prompts chunked up to the token budget T per step, as vLLM's and SGLang's
  schedulers do on a prefill instance) and idles when no prompt waits; its TTFT is
  queueing + own prefill steps + the KV transfer (and its queue at the sending link);
- a **decode replica** runs decode-only steps (no prefill chunk mixed in) over a batch the
  KV cache bounds; its KV pool also holds the transferred caches.

Each pool's capacity at SLO (requests/s per replica) depends only on that replica's
configuration, the workload and the pool's own targets, so a formulation can write
``sum_p CAP_p y_p >= u`` and ``sum_d CAP_d y_d >= u`` for the same disaggregated rate u.
Rates are per replica, times in seconds, bytes in bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from planner.physics.attention import kv_bytes_per_sequence
from planner.physics.load import (
    Engine,
    Target,
    Workload,
    attention_length,
    per_token_sd,
    prefill_work_cv2,
    slot_wait,
    wave,
)
from planner.physics.numerics import (
    NORMAL_Z,
    PERCENTILES,
    bisect,
    bisect_levels,
    bisection_by_bracket,
    exp_tail_quantile,
    joined_step,
    rows_taken,
)
from planner.physics.step import StepPhysics, at_rows, step_time
from planner.physics.terms import KV_BYTES, query_tokens, tokens_per_step, transfer

LinkKind = Literal["intra", "inter"]
PREFILL_METRICS: tuple[str, ...] = ("ttft",)
DECODE_METRICS: tuple[str, ...] = ("tpot", "itl")


def _arr(x, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(x, dtype=float), (n,))


# ----------------------------------------------------------------------------------------
# Section 3: the KV transfer and the link that carries it
# ----------------------------------------------------------------------------------------

def kv_bytes_per_request(phys: StepPhysics, isl) -> np.ndarray:
    """Bytes of one request's KV cache after its prompt (S tokens, all layers, all KV heads,
    each head once): perf.py's per-sequence KV formula (attention.py) at context S, in the
    configuration's KV format. This is what the prefill replica must ship."""
    n = len(phys)
    S = _arr(isl, n)
    return kv_bytes_per_sequence(phys.arch.attention, S, KV_BYTES[phys.configs.kv]) * np.ones(n)


def senders(phys: StepPhysics) -> np.ndarray:
    """GPUs holding one request's KV in a replica: its attention group (TP) times its
    pipeline stages (each stage holds its layers). They send their shares in parallel."""
    return phys.configs.tp.astype(float) * phys.configs.pp.astype(float)


def link_parameters(phys: StepPhysics, link: LinkKind | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(one-way bytes/s per GPU, latency s) of the KV link from the catalog's GPU table:
    ``intra``: the node's scale-up fabric (NVLink, xGMI; pools in one node), ``inter``: the
    inter-node network (pools on different nodes). ``link`` may be an array of kinds."""
    t, gi = phys.table, phys.configs.gpu
    intra = np.broadcast_to(np.asarray(link) == "intra", (len(phys),))
    bw = np.where(intra, t.intra_bw[gi], t.inter_bw[gi])
    lat = np.where(intra, t.intra_latency[gi], t.inter_latency[gi])
    return bw, lat


def kv_link_bandwidth(phys: StepPhysics, link: LinkKind | np.ndarray) -> np.ndarray:
    """Bytes/s one replica can move over the KV link (send or receive): its KV-holding GPUs
    x the per-GPU one-way bandwidth x the assumptions' comm_efficiency. The bound a
    link-bandwidth constraint uses: rate x kv_bytes_per_request <= this, per replica."""
    bw, _ = link_parameters(phys, link)
    return senders(phys) * bw * phys.o.comm_efficiency


def kv_transfer_time(phys: StepPhysics, isl, link: LinkKind | np.ndarray) -> np.ndarray:
    """Seconds to move one request's KV from this replica: the alpha-beta cost of perf.py's
    ``transfer`` (latency + bytes / bandwidth, or their max under ``comm_latency: max``),
    the bytes split evenly over the replica's KV-holding GPUs, all sending at once."""
    bw, lat = link_parameters(phys, link)
    per_gpu = kv_bytes_per_request(phys, isl) / senders(phys)
    return transfer(lat, per_gpu, bw, phys.o)


def kv_transfer_rate(phys: StepPhysics, isl, rate) -> np.ndarray:
    """Bytes/s a pool sends (prefill) or receives (decode) at ``rate`` requests/s."""
    return _arr(rate, len(phys)) * kv_bytes_per_request(phys, isl)


def pair_transfer_time(pre: StepPhysics, dec: StepPhysics, isl, link: LinkKind | np.ndarray) -> np.ndarray:
    """Transfer time of a (prefill, decode) pair, element-wise: the slower of the sending
    and the receiving side (each side's GPUs in parallel at its own link). When the decode
    replica has at least as many KV-holding GPUs on an equal link, this is the prefill
    side's ``kv_transfer_time``."""
    return np.maximum(kv_transfer_time(pre, isl, link), kv_transfer_time(dec, isl, link))


# ----------------------------------------------------------------------------------------
# Section 1: the prefill pool
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PrefillResult:
    """A prefill replica at ``rate`` requests/s; times in seconds."""

    rate: np.ndarray
    chunk_tokens: np.ndarray          # mean prompt tokens of a step (batched prefill)
    step: np.ndarray                  # mean step time
    service: np.ndarray               # prefill of one prompt on an idle replica (own steps)
    rho: np.ndarray                   # busy share of the prefill engine (per lane)
    rho_link: np.ndarray              # busy share of the KV link
    rho_kv: np.ndarray                # KV pool occupancy (prompts held until their KV is sent)
    saturation_rate: np.ndarray       # requests/s at which every step is full
    transfer: np.ndarray              # one request's KV transfer
    wait: np.ndarray                  # mean queueing before the own steps (residual + backlog + KV slot)
    prefill: np.ndarray               # mean own prefill steps
    link_wait: np.ndarray             # mean wait for the link
    stable: np.ndarray
    stats: dict[tuple[str, str], np.ndarray]

    def get(self, metric: str, statistic: str) -> np.ndarray:
        return self.stats[(metric, statistic)]


def _prefill_step(phys: StepPhysics, c, S, P=0.0, isl_cv2=0.0) -> np.ndarray:
    """A prompt-only step of c tokens from prompts of S computed tokens (mean) after P cached
    ones: causal attention c x load.py's ``attention_length`` units, S (1 + CV^2) + 2P a token
    (docs/load.md sections 1, 1b and 3: over a mix of prompts a token is more often one of a
    long prompt; S + 2P for fixed lengths), c / S LM-head rows."""
    return step_time(phys, 0.0, 0.0, c, c * attention_length(S, P, isl_cv2), c / S)


def _own_attention(last, S, P, isl_cv2):
    """Attention units of a prompt's last piece of ``last`` tokens (section 1): causal over
    its own tokens and the S + P - last before them, last^2 + 2 last (S + P - last) at fixed
    lengths, plus last x S CV^2 over spread prompts: the mean over prompts of one prompt's
    own attention is E[S^2] + 2SP = S (S (1 + CV^2) + 2P) = S x load.py's
    ``attention_length`` (a one-piece prompt, last = S), the full chunks' A a token. At
    CV^2 0 the added term is +0.0: the fixed-length figure, bit for bit."""
    return last * last + 2.0 * last * (S + P - last) + last * (S * isl_cv2)


def prefill_saturation(phys: StepPhysics, eng: Engine, isl, cached=0.0, isl_cv2=0.0) -> np.ndarray:
    """Requests/s per replica at which every step carries T prompt tokens:
    lanes x T / (S x t(T)) (section 1), S the computed part of a prompt (``isl`` less the
    ``cached`` tokens its prefix cache serves, section 1b), the steps' attention at the
    prompts' spread ``isl_cv2`` (``_prefill_step``)."""
    n = len(phys)
    P = _arr(cached, n)
    S = _arr(isl, n) - P
    T = np.maximum(eng.token_budget, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return phys.lanes * T / (S * _prefill_step(phys, T, S, P, _arr(isl_cv2, n)))


PIECE_TERMS = 256
"""The Poisson sum of ``_pieces`` runs to this many pieces a busy step (a larger K is taken as
unbounded); ``_prefill_chunk``'s table of step times stops there too."""


def _pieces(m, K, values, terms: int = PIECE_TERMS):
    """E[N] and E[v_N] of N = min(max(1, A), K), A ~ Poisson(m): the pieces a busy step
    carries when m arrived during the previous one and K fit the token budget (section 1),
    and a value of it, ``values`` (v_n at N = n on a leading axis, n = 1..max K). The Poisson
    sum runs to ``terms`` (K beyond it is taken as unbounded)."""
    K = np.minimum(np.maximum(np.floor(K), 1.0), float(terms))
    pmf = np.exp(-m)                  # P(A = 0)
    cdf = pmf.copy()
    e1 = pmf * 1.0                    # A = 0 counts as N = 1
    ev = pmf * values[0]
    below = cdf.copy()                # P(A <= K - 1), K >= 1
    # terms j >= max K change nothing returned (e1, ev take j < K, ``below`` j <= K - 1): stop there
    for j in range(1, int(np.max(K, initial=1.0))):
        pmf = pmf * m / j
        cdf = cdf + pmf
        inside = j < K
        e1 = e1 + np.where(inside, pmf * j, 0.0)
        ev = ev + np.where(inside, pmf * values[j - 1], 0.0)
        below = np.where(j <= K - 1.0, cdf, below)
    tail = np.maximum(1.0 - below, 0.0)                                        # P(A >= K)
    e1 = np.where(K > 1.0, e1 + tail * K, 1.0)                                 # K = 1: N = 1 always
    at_k = np.take_along_axis(values, (K.astype(np.int64) - 1)[None], axis=0)[0]
    return e1, np.where(K > 1.0, ev + tail * at_k, values[0])


BULK_LIGHT = 1e-9          # bulk_overflow: below it, the one step's overflow (the roots' sum cancels)
BULK_LIGHT_TERMS = 120     # its Poisson tail's terms past K


def bulk_overflow(a, K, iters: int = 4, newton: int = 6) -> np.ndarray:
    """E[(X - K)^+], the prompts a step leaves behind, of the bulk-service chain at step ends
    X' = (X - K)^+ + A, A ~ Poisson(a): steps of a fixed length take up to K waiting prompts
    and a arrive during one (M/D^[K]/1, Bailey's bulk queue; section 1, 'the backlog'). Its
    generating function's numerator vanishes at z = 1 and at the K - 1 roots z_r of
    z^K = exp(a (z - 1)) inside the unit disc (a < K, Rouche), so
    E[X] = a + sum_r 1 / (1 - z_r) - (K (K - 1) - a^2) / (2 (K - a)) and E[(X - K)^+] =
    E[X] - a. Root r is the fixed point of z = w_r exp(a (z - 1) / K), w_r = exp(2 pi i r / K),
    a contraction by a / K in the disc: ``iters`` steps of it, then ``newton`` of Newton's
    method (to 1e-12 of the sum up to a / K = 1 - 1e-4 against 60 steps of the contraction).
    Roots r and K - r are conjugate: r <= K / 2 only, the others counted twice. K = 1 is the
    M/D/1 queue at departures, a^2 / (2 (1 - a)), no root. a >= K: inf (unstable).
    ``a``, ``K`` arrays of one shape (n,); K integers >= 1 (at most ``PIECE_TERMS``)."""
    a = np.asarray(a, dtype=float)
    K = np.minimum(np.maximum(np.floor(np.asarray(K, dtype=float)), 1.0), float(PIECE_TERMS))
    ok = (a >= 0.0) & (a < K)
    a_ = np.where(ok, a, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        L = -(K * (K - 1.0) - a_ * a_) / (2.0 * (K - a_))
    rows = np.flatnonzero(ok & (K >= 2.0))                         # the configurations with roots
    if rows.size:
        ar, Kr = a_[rows], K[rows]
        r = np.arange(1.0, np.floor(np.max(Kr) / 2.0) + 1.0)[:, None]   # r = 1..K/2, a leading axis
        weight = np.where(r <= Kr / 2.0, np.where(2.0 * r == Kr, 1.0, 2.0), 0.0)
        w = np.exp(2j * np.pi * r / Kr)
        g = ar / Kr
        z = w * np.exp(-g)
        for _ in range(iters):
            z = w * np.exp(g * (z - 1.0))
        for _ in range(newton):
            e = w * np.exp(g * (z - 1.0))
            z = z - (z - e) / (1.0 - g * e)
        L[rows] = L[rows] + np.sum(weight * np.real(1.0 / (1.0 - z)), axis=0)
        # light traffic: the roots' sum (~ (K - 1) / 2) and the correction cancel to their
        # rounding, ~1e-14, where the overflow itself is far smaller (P(A > K)); below
        # ``LIGHT`` it is the one step's E[(A - K)^+] = sum_{j > K} (j - K) P(A = j), summed
        # (``terms`` past K, their ratio a / j < a / K), which the chain's differs from by
        # O(P(A > K)) of itself
        light = rows[L[rows] < BULK_LIGHT]
        if light.size:
            al, Kl = a_[light], K[light]
            logfact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1.0, PIECE_TERMS + 2.0)))])
            with np.errstate(divide="ignore"):
                p = np.exp(-al + (Kl + 1.0) * np.log(al) - logfact[Kl.astype(np.int64) + 1])
            tail = 0.0 * al
            for j in range(1, BULK_LIGHT_TERMS + 1):
                tail = tail + j * p
                p = p * al / (Kl + j + 1.0)
            L[light] = tail
    return np.where(ok, np.maximum(L, 0.0), np.inf)


def _prefill_chunk(phys: StepPhysics, lam_l, S, T, P, cv2, iters: int = 30, scan: int = 16):
    """Mean chunk and mean step of a busy step (section 1, gated batch service): a step
    carries what arrived during the one before, at least the piece c1 = S / ceil(S/T) of the
    prompt that starts a busy period and at most the K = T / c1 pieces the budget holds. With
    m pieces arriving per step (Poisson), N = min(max(1, A), K), the mean step is
    E[t(c1 N)] over the count (the step jumps past the CUDA graphs, so it is not the step at
    the mean chunk) and m = lam S E[t(c1 N)] / c1: the lowest root in m (the pool fills from
    empty), found by a geometric scan of ``scan`` points from the one-piece step's m to the
    full step's, then bisection. Returns (c = c1 E[N], c1, m, K, E[t], the table t(c1 n), n = 1..max K)."""
    n = len(phys)
    lam, S_, P_, cv2_ = (_arr(v, n) for v in (lam_l, S, P, cv2))
    c1 = S_ / np.ceil(S_ / T)
    Tm = np.maximum(T, c1)
    K = np.floor(Tm / c1)
    Kc = np.minimum(np.maximum(K, 1.0), float(PIECE_TERMS))    # _pieces' terms
    counts = np.arange(1.0, np.max(Kc, initial=1.0) + 1.0)[:, None]
    table = _prefill_step(phys, c1 * np.minimum(counts, Kc), S_, P_, cv2_)     # t(c1 n), n = 1..max K
    rate = lam * S_ / c1

    def below_root(m, rows=None):   # lam S E[t] / c1 > m on the rows given (None: all)
        r, k, v = (rate, K, table) if rows is None else (rate[rows], K[rows], table[:, rows])
        return r * _pieces(m, k, v)[1] > m
    t_k = np.take_along_axis(table, (Kc.astype(np.int64) - 1)[None], axis=0)[0]
    m_lo, m_hi = rate * table[0], np.maximum(rate * t_k, rate * table[0])
    # the scan's points, all in one call (a leading axis); the first not below the root ends it
    x = m_lo * (m_hi / np.maximum(m_lo, 1e-300)) ** (np.arange(scan)[:, None] / (scan - 1.0))
    below = below_root(x)
    # the first point not below the root; below at every point (a step falling at the top): the last
    first = np.where(below.all(axis=0), scan - 1, np.argmin(below, axis=0))
    hi = np.take_along_axis(x, first[None], axis=0)[0]
    lo = np.take_along_axis(x, np.maximum(first - 1, 0)[None], axis=0)[0]
    _, hi = bisect_levels(below_root, lo, hi, iters, geometric=True)
    m = np.where(lam > 0.0, hi, 0.0)
    e_n, t_mean = _pieces(m, K, table)
    return c1 * e_n, c1, m, K, t_mean, table


def _step_variance(m, K, table, t_mean, rate) -> np.ndarray:
    """Stationary variance of a busy step's length (section 1, 'Step variance'): a step of
    t_N = t(c1 N), N = min(max(1, A), K) pieces, A ~ Poisson(m), brings m = ``rate`` x t
    pieces to the next (``rate`` = lam S / c1), so V = Var t_N / (1 - beta^2),
    beta = rate dE[t_N]/dm (an AR(1) linearisation in the step's length, not in its tokens).
    Both from the step times themselves, ``table`` (t(c1 n) on a leading axis, n = 1..max K,
    n past K at t(c1 K)), ``t_mean`` = E[t_N]: Var t_N = E[(t_N - t_mean)^2] and
    dE[t_N]/dm = sum_{j=1}^{K-1} P(A = j) (t_{j+1} - t_j), so a step that jumps between n and
    n + 1 pieces (past the CUDA graphs) counts as that jump with the probability of n, where
    a derivative in tokens at the mean chunk (taken until issue 25's edge review) read the
    jump over a token's width: x c1 too large once c straddled the edge."""
    Kc = np.minimum(np.maximum(np.floor(K), 1.0), float(PIECE_TERMS))
    nxt = np.minimum(np.arange(table.shape[0])[:, None] + 1, Kc.astype(np.int64) - 1)
    step_up = np.take_along_axis(table, nxt, axis=0) - table          # t_{min(n+1, K)} - t_n
    var_n = _pieces(m, K, (table - t_mean) ** 2)[1]
    # E[step_up_N] counts A = 0 as N = 1 too: that term's weight does not move with m
    dt_dm = _pieces(m, K, step_up)[1] - np.exp(-m) * step_up[0]
    beta = np.minimum(rate * np.maximum(dt_dm, 0.0), 1.0 - 1e-6)
    return np.maximum(var_n, 0.0) / (1.0 - beta * beta)


def prefill_metrics(phys: StepPhysics, eng: Engine, wl: Workload, rate,
                    link: LinkKind | np.ndarray = "inter", quantiles: bool = True,
                    needed: set | None = None) -> PrefillResult:
    """TTFT of a prefill replica at ``rate`` requests/s (section 1):
    TTFT = residual + backlog + KV-slot wait + own steps + link wait + transfer. The prefix
    cache lives here (docs/disaggregation.md): the ``wl.cached`` tokens of a prompt skip its
    prefill (S below is the computed part), but the whole prompt's KV is held and sent."""
    n = len(phys)
    G = phys.lanes
    P = _arr(wl.cached, n)
    S_all, T = _arr(wl.isl, n), np.maximum(eng.token_budget, 1.0)
    S = S_all - P
    lam = _arr(rate, n)
    ca2, cs2 = _arr(wl.arrival_cv2, n), _arr(wl.isl_cv2, n)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lam_l = lam / G
        c, c1, m, K, t_c, table = _prefill_chunk(phys, lam_l, S, T, P, cs2)
        D = S / c * t_c                                   # engine time per prompt
        rho = np.minimum(lam_l * D, 1.0)
        sat = prefill_saturation(phys, eng, S_all, P, cs2)
        # the backlog's service CV^2: a prompt's prefill time, not its tokens (load.py's
        # ``prefill_work_cv2``: attention grows with the square of the length)
        cs2_work = prefill_work_cv2(phys, 0.0, 0.0, c1, S, P, wl, (n,))
        # residual of the step in progress, found busy with probability rho (PASTA). The
        # step lengths: t(c1 N), N = min(max(1, A), K) pieces; a step's length drives the
        # next one's arrivals, stationary variance V (``_step_variance``); steps are taken
        # as two atoms mu +- sqrt(V) (mean and variance kept)
        Tm = np.maximum(T, c1)
        sd_t = np.sqrt(_step_variance(m, K, table, t_c, lam_l * S / c1))
        t_one = np.maximum(t_c - sd_t, _prefill_step(phys, c1, S, P, cs2))
        t_full = t_c + sd_t
        kinds, counts = (t_one, t_full), (0.5, 0.5)
        span = sum(k * t for k, t in zip(counts, kinds))
        shares = [k * t / span for k, t in zip(counts, kinds)]
        resid_busy = sum(f * t / 2.0 for f, t in zip(shares, kinds))
        resid = rho * resid_busy
        # prompt-token backlog: Kingman's G/G/1 mean wait on work, only the part beyond the
        # k T - S tokens that still fit the prompt's own steps delays it (docs/load.md s. 4).
        # Its utilisation is the busy share rho = lam D, not lam / saturation: the latter
        # undercounts the queue at p90/p99 (docs/disaggregation.md s. 5, issue 25 review)
        w_work = rho / (1.0 - rho) * (ca2 + cs2_work) / 2.0 * D
        m_tok = w_work / np.maximum(rho, 1e-12) * c / t_c
        k_own = np.ceil(S / T)
        slack = np.maximum(k_own * T - S, 0.0)
        fit = np.exp(-slack / np.maximum(m_tok, 1e-12))
        # the tail keeps this work queue on the busy share (below, 'Percentiles'): pessimistic
        w_tail, w_tail_extra, fit_tail = w_work, w_work * fit, fit
        # K >= 2 prompts a step (S <= T / 2, whole prompts, c1 = S): the mean backlog is the
        # bulk queue's own overflow, the prompts a step leaves behind (``bulk_overflow``, steps
        # at the full budget's length, a = lam t(c1 K) arrivals a step), each waiting one more
        # step for each time it is left: W = (c_a^2 + c_s^2) E[(X - K)^+] / lam, Kingman's
        # factor on M/D^[K]/1, which at K = 1 is the work queue above (section 1). It is the
        # part past the prompt's next step already: no fit discount. The share of prompts left
        # behind, left / a (each once, then a full step t(c1 K): the wait's mean given one), is
        # its probability, as the own steps' joiners take it (``joined_step``, below; within
        # the busy branch, rho: P(left behind | busy) = left / (a rho))
        bulk = K >= 2.0
        p_busy = fit
        if np.any(bulk):
            t_budget = _prefill_step(phys, c1 * np.minimum(K, float(PIECE_TERMS)), S, P, cs2)
            a_step = np.where(bulk, lam_l * (S / c1) * t_budget, 0.0)
            left = (ca2 + cs2_work) * bulk_overflow(a_step, np.where(bulk, K, 1.0))
            # no arrivals: no backlog (0, not 0 / 0)
            w_work = np.where(bulk, np.where(lam_l > 0.0, left / np.where(lam_l > 0.0, lam_l, 1.0), 0.0), w_work)
            p_busy = np.where(bulk, np.minimum(left / np.maximum(a_step * rho, 1e-300), 1.0), fit)
            fit = np.where(bulk, 1.0, fit)
        w_extra = w_work * fit
        last = S - (k_own - 1.0) * T
        # own steps: k - 1 full chunks, then the last piece with the prompts that share its
        # step, whole prompts (docs/load.md section 5, ``joined_step``): those that arrive
        # during its full chunks and, arriving in a busy step (rho), every arrival of that step
        # (a length-biased step: mean 2 R_busy) and of its backlog wait; at an idle engine
        # (1 - rho) only the first. The prompt's own tokens follow the spread as
        # load.py's own steps do (``_own_attention``), the others' at the mix's A
        a_own = _own_attention(last, S, P, cs2)
        A = attention_length(S, P, cs2)                  # the others' tokens: the mix's attention

        def own_at(rows=None, n=0):
            """The step of the last piece and c_own - last tokens of others: of every configuration
            (``rows`` None) or of the configurations ``rows`` of ``n`` only (``joined_step``)."""
            ph, ao, la, a, s = (phys, a_own, last, A, S) if rows is None else at_rows(rows, n, phys, a_own, last, A, S)
            return lambda c_own: step_time(ph, 0.0, 0.0, c_own, ao + (c_own - la) * a, 1.0 + (c_own - la) / s)
        own = own_at()
        t_chunks = (k_own - 1.0) * _prefill_step(phys, T, S, P, cs2)
        t_last = own(last)

        # the backlog wait as load.py's own steps take it (``joined_step``'s wait: 0 or
        # exponential, not its mean as a fixed time): it falls in the busy branch only, so
        # there its mean is w_extra / rho and it is positive with probability fit (K >= 2: the
        # share left behind, ``p_busy``)
        busy_wait = w_extra / np.maximum(rho, 1e-300)
        t_own = (1.0 - rho) * joined_step(own, t_last, last, S, Tm, lam_l, t_chunks, step_at=own_at) \
            + rho * joined_step(own, t_last, last, S, Tm, lam_l, 2.0 * resid_busy + t_chunks, busy_wait, p_busy,
                                step_at=own_at)
        d_own = t_chunks + t_own
        t_alone = t_chunks + t_last
        # the KV link, a second station in tandem (Kingman), its arrivals the prefill
        # departures with Whitt's QNA linking cv_d^2 = rho^2 cs^2 + (1 - rho^2) ca^2
        xfer = kv_transfer_time(phys, S_all, link)       # the whole context's KV, cached part included
        dp = np.maximum(1.0, phys.configs.ep / phys.configs.tp)       # independent KV groups
        rho_x = np.minimum(lam / dp * xfer, 1.0)
        cd2 = rho * rho * cs2_work + (1.0 - rho * rho) * ca2
        w_link = rho_x / (1.0 - rho_x) * (cd2 + cs2) / 2.0 * xfer
        # KV slots: a prompt holds its S + P tokens from admission until its KV is sent
        M = np.maximum(np.floor(eng.kv_pool_tokens / S_all), 0.0)
        residence = resid + w_extra + d_own + w_link + xfer
        rho_kv = lam_l * residence / np.maximum(M, 1e-9)
        w_kv = slot_wait(rho_kv, M, ca2 / 2.0, residence)
        wait = resid + w_extra + w_kv
        serving = phys.o.serving_overhead_s     # the serving path outside the engine's steps
        ttft = wait + d_own + w_link + xfer + serving
        stable = (rho < 1.0) & (rho_x < 1.0) & (rho_kv < 1.0) & (lam < sat) & (M >= 1) & np.isfinite(ttft)
        stats = {("ttft", "mean"): ttft}
        if quantiles:
            pw_kv = np.clip(rho_kv, 0.0, 1.0) ** (np.sqrt(2.0 * (np.maximum(M, 1.0) + 1.0)) - 1.0)
            hi = np.maximum(t_one, t_full)        # the residual's longest atom (kinds above)
            for key, p in PERCENTILES.items():
                if needed is not None and ("ttft", key) not in needed:
                    continue
                tail = 1.0 - p
                # residual: P(R > x) = rho sum_k f_k (1 - x / t_k)+ (busy with probability rho)
                _, r_p = bisect(lambda x: rho * sum(f * np.clip(1.0 - x / t, 0.0, 1.0)
                                                     for f, t in zip(shares, kinds)) > tail,
                                 np.zeros_like(hi), hi, 30)
                # the tail is the work ahead, whole: Kingman's exponential tail of the prompt
                # work queue, P(W > t) = rho exp(-t rho / W) (a batched step finishes every
                # prompt it carries at its end, so the work ahead delays the prompt even
                # when it fits the same step)
                wq = np.maximum(np.maximum(r_p, resid + exp_tail_quantile(w_tail_extra, rho * fit_tail, p)),
                                exp_tail_quantile(w_tail, rho, p)) \
                    + exp_tail_quantile(w_kv, pw_kv, p)
                q = wq + d_own + exp_tail_quantile(w_link, rho_x, p) + xfer + serving
                # Markov's inequality, P(TTFT > x) <= E[TTFT] / x: no quantile above the mean / (1 - p).
                # It binds only where the busy share's tail explodes past the bulk queue's mean
                # (short prompts near saturation, section 1 'Percentiles'): a bound, still pessimistic
                stats[("ttft", key)] = np.minimum(q, ttft / tail)
    return PrefillResult(rate=lam, chunk_tokens=c, step=t_c, service=t_alone, rho=rho, rho_link=rho_x,
                         rho_kv=rho_kv, saturation_rate=sat, transfer=xfer, wait=wait, prefill=d_own,
                         link_wait=w_link, stable=stable, stats=stats)


# ----------------------------------------------------------------------------------------
# Section 2: the decode pool
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DecodeResult:
    """A decode replica at ``rate`` requests/s; times in seconds."""

    rate: np.ndarray
    running: np.ndarray               # decode sequences per lane (mean)
    step: np.ndarray                  # mean decode step (= mean TPOT = mean ITL)
    rho: np.ndarray                   # max(rate / saturation, KV occupancy)
    rho_kv: np.ndarray
    saturation_rate: np.ndarray       # requests/s with every lane at its max sequences
    max_seqs: np.ndarray              # per lane: the batch cap and what the KV cache holds at S + O
    kv_wait: np.ndarray               # mean wait for a KV slot before the transfer can land
    kv_held_bytes: np.ndarray         # mean KV bytes reserved per replica (transferred + generated)
    throughput_tokens_per_s: np.ndarray
    stable: np.ndarray
    stats: dict[tuple[str, str], np.ndarray]

    def get(self, metric: str, statistic: str) -> np.ndarray:
        return self.stats[(metric, statistic)]


def decode_saturation(phys: StepPhysics, eng: Engine, isl, osl) -> np.ndarray:
    """Requests/s per replica at the peak of lanes x n / ((O - 1) t_dec(n)) over the batch
    n <= min(M, T) sequences a lane (section 2). Speculative decoding (docs/model.md section
    4): (O - 1)/E steps a request, q = k + 1 budget tokens a sequence (n q <= T).

    The peak is at the full batch m = min(M, T) but where the engine's CUDA graphs end below
    it: a step of more tokens than ``cuda_graph_max_tokens`` launches every kernel from the
    host (the host-bound floor, docs/model.md section 4), so the throughput at m can be below
    that at the largest captured batch g, and a pool offered a rate between the two still
    keeps up, g or fewer sequences a step. On each side of that cliff t(n)/n falls with n
    (every term is a + b n, a >= 0), so the peak is the higher of the two, at g or at m."""
    n = len(phys)
    S, O = _arr(isl, n), _arr(osl, n)
    E, q = tokens_per_step(phys.o), float(query_tokens(phys.o))
    m = np.maximum(np.minimum(eng.max_seqs, eng.token_budget / q), 1e-9)
    with np.errstate(divide="ignore", invalid="ignore"):
        def rate(k):
            return phys.lanes * k / (np.maximum(O - 1.0, 1e-9) / E * step_time(phys, k, k * (S + O / 2.0)))
        sat = rate(m)
        if phys.host and phys.o.host_launch_s > 0.0:
            g = np.minimum(m, np.floor(phys.o.cuda_graph_max_tokens / q))
            sat = np.where(g >= 1.0, np.maximum(sat, rate(np.maximum(g, 1.0))), sat)
        return np.where(eng.max_seqs >= 1, sat, 0.0)


def decode_metrics(phys: StepPhysics, eng: Engine, wl: Workload, rate, transfer=0.0,
                   quantiles: bool = True, needed: set | None = None) -> DecodeResult:
    """TPOT and ITL of a decode replica at ``rate`` requests/s (section 2). ``transfer``:
    seconds a request's KV spends arriving (its slot is reserved when the transfer starts)."""
    n_cfg = len(phys)
    G = phys.lanes
    S, O = _arr(wl.isl, n_cfg), _arr(wl.osl, n_cfg)
    lam = _arr(rate, n_cfg)
    ca2 = _arr(wl.arrival_cv2, n_cfg)
    xfer = _arr(transfer, n_cfg)
    M = eng.max_seqs
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lam_l = lam / G
        ctx = S + O / 2.0
        sat = decode_saturation(phys, eng, S, O)

        # Little on the decode phase: n = lam (O - 1)/E tau; tau = t_dec(n) (fixed point);
        # E = 1 without speculative decoding, else tokens a step (docs/model.md section 4)
        E, q = tokens_per_step(phys.o), float(query_tokens(phys.o))

        def F(tau):
            nn = lam_l * ((O - 1.0) / E) * tau
            return step_time(phys, nn, nn * ctx)
        lo = step_time(phys, 0.0, 0.0) * 0.5
        hi = 4.0 * np.maximum(step_time(phys, np.maximum(M, 1.0), np.maximum(M, 1.0) * ctx), lo * 4.0)
        if phys.host and phys.o.host_launch_s > 0.0:
            # past the CUDA graphs' largest batch g the step jumps (host launches), so tau = F(tau)
            # can have a root below g and another above: the pool fills from empty to the lower.
            # Where F(t(g)) <= t(g) (the batch at tau = t(g) is <= g) it lies in [lo, t(g)].
            g = np.minimum(np.maximum(M, 1.0), np.floor(phys.o.cuda_graph_max_tokens / q))
            tg = step_time(phys, g, g * ctx)
            hi = np.where((g >= 1.0) & (F(tg) <= tg), tg, hi)
        at = rows_taken(lambda rows: (phys.take(rows), lam_l[rows], O[rows], ctx[rows]))

        def rising(t, rows):       # F(t) > t on the rows given (repeated: numerics.bisect_levels)
            ph, lam_r, O_r, ctx_r = at(rows)
            nn = lam_r * ((O_r - 1.0) / E) * t
            return step_time(ph, nn, nn * ctx_r) > t
        _, tau = bisect_levels(rising, lo, hi, 40, geometric=True)
        converged = np.abs(F(tau) - tau) <= 1e-6 * tau + 1e-12
        n = lam_l * ((O - 1.0) / E) * tau
        residence = xfer + ((O - 1.0) / E) * tau
        rho_kv = lam_l * residence / np.maximum(M, 1e-9)
        w_kv = slot_wait(rho_kv, M, ca2 / 2.0, residence)
        rho = np.maximum(lam / np.where(sat > 0, sat, np.nan), rho_kv)
        stable = converged & (rho_kv < 1.0) & (lam < sat) & (M >= 1) & (n * q <= eng.token_budget)
        kv_bytes = kv_bytes_per_sequence(phys.arch.attention, S + O, KV_BYTES[phys.configs.kv])
        tpot = tau / E                 # per output token; ITL per step
        stats = {("tpot", "mean"): tpot, ("itl", "mean"): tau}
        if quantiles:
            # decode-batch fluctuation: Poisson (M/D/inf) times the peakedness (1 + ca^2)/2;
            # per-request TPOT sees the life average of n (variance 2/3 n): docs/load.md s. 5
            zpk = (1.0 + ca2) / 2.0
            dn = np.maximum(n * 1e-3, 1e-3)
            nm = np.maximum(n - dn, 0.0)
            d0 = (step_time(phys, n + dn, (n + dn) * ctx) - step_time(phys, nm, nm * ctx)) / (n + dn - nm)
            sd_itl = np.abs(d0) * np.sqrt(n * zpk)
            sd_tpot = np.abs(d0) * np.sqrt(zpk * n * 2.0 / 3.0)
            sd_tpot = per_token_sd(phys.o, sd_tpot, tau, O)
            for key in PERCENTILES:
                if needed is not None and not any(s == key for _, s in needed):
                    continue
                stats[("itl", key)] = tau + NORMAL_Z[key] * sd_itl
                stats[("tpot", key)] = tpot + NORMAL_Z[key] * sd_tpot
    return DecodeResult(rate=lam, running=n, step=tau, rho=rho, rho_kv=rho_kv, saturation_rate=sat, max_seqs=M,
                        kv_wait=w_kv, kv_held_bytes=lam * residence * kv_bytes,
                        throughput_tokens_per_s=lam * O, stable=stable, stats=stats)


# ----------------------------------------------------------------------------------------
# Section 4: capacity at SLO per pool
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PoolCapacity:
    rate: np.ndarray          # highest requests/s per replica meeting the pool's targets
    rho: np.ndarray           # utilisation there
    binding: np.ndarray       # index of the binding target; -1: the utilisation ceiling or saturation
    saturation_rate: np.ndarray


def _capacity(metrics, sat: np.ndarray, targets: Sequence[Target], max_utilization: float,
              iters: int) -> PoolCapacity:
    n = sat.shape[0]
    limits = np.array([t.seconds for t in targets], dtype=float)
    sat = np.where(np.isfinite(sat) & (sat > 0), sat, 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        def ratios(x, rows=None):
            r = metrics(x, rows)
            vals = np.stack([r.get(t.metric, t.statistic) for t in targets]) if targets else np.zeros((0, len(x)))
            return r, vals / limits[:, None]

        def ok(x, rows=None):
            r, rt = ratios(x, rows)
            return r.stable & (r.rho <= max_utilization) & np.all(rt <= 1.0, axis=0)
        lo = np.maximum(sat * 1e-4, 1e-300)
        r0, rt0 = ratios(lo)
        feasible0 = r0.stable & (r0.rho <= max_utilization) & np.all(rt0 <= 1.0, axis=0)
        hi = np.maximum(sat * max_utilization * (1.0 + 1e-9), lo)
        lo_, hi_ = bisect_levels(ok, lo, hi, iters, geometric=True)
        top_ok = ok(hi)
        rate = np.where(feasible0, np.where(top_ok, hi, lo_), 0.0)
        rate = np.where(sat > 0, rate, 0.0)
        r_hi, rt_hi = ratios(hi_)
        over = np.max(rt_hi, axis=0) > 1.0 if targets else np.zeros(n, dtype=bool)
        binding = np.where(over & r_hi.stable & (r_hi.rho <= max_utilization),
                           np.argmax(rt_hi, axis=0) if targets else -1, -1)
        binding = np.where(feasible0 | (sat <= 0), binding, np.argmax(rt0, axis=0) if targets else -1)
        binding = np.where(top_ok & feasible0, -1, binding)
        r_at = metrics(np.maximum(rate, lo), None)
    return PoolCapacity(rate=rate, rho=np.where(rate > 0, r_at.rho, 0.0), binding=np.asarray(binding, dtype=np.int64),
                        saturation_rate=sat)


def _check(targets: Sequence[Target], allowed: tuple[str, ...], pool: str) -> None:
    for t in targets:
        if t.metric not in allowed:
            raise ValueError(f"a {pool} pool has no {t.metric} target (its metrics: {', '.join(allowed)})")


def prefill_capacity(phys: StepPhysics, eng: Engine, wl: Workload, targets: Sequence[Target],
                     link: LinkKind | np.ndarray = "inter", max_utilization: float = 0.8,
                     iters: int = 24) -> PoolCapacity:
    """Highest request rate per prefill replica at which every TTFT target holds (TTFT =
    queueing + prefill + KV transfer) and the busy share is at most ``max_utilization``."""
    _check(targets, PREFILL_METRICS, "prefill")
    needed = {(t.metric, t.statistic) for t in targets}
    sat = prefill_saturation(phys, eng, wl.isl, wl.cached, wl.isl_cv2)
    at = _rows_of(phys, eng, wl)
    return _capacity(lambda x, rows: prefill_metrics(*at(rows), x, _taken(link, rows), needed=needed), sat, targets,
                     max_utilization, iters)


def decode_capacity(phys: StepPhysics, eng: Engine, wl: Workload, targets: Sequence[Target],
                    transfer=0.0, max_utilization: float = 0.8, iters: int = 24) -> PoolCapacity:
    """Highest request rate per decode replica at which every TPOT/ITL target holds with
    decode-only steps, at most ``max_utilization`` of saturation and of the KV pool."""
    _check(targets, DECODE_METRICS, "decode")
    needed = {(t.metric, t.statistic) for t in targets}
    sat = decode_saturation(phys, eng, wl.isl, wl.osl)
    at = _rows_of(phys, eng, wl)
    return _capacity(lambda x, rows: decode_metrics(*at(rows), x, _taken(transfer, rows), needed=needed), sat,
                     targets, max_utilization, iters)


def _rows_of(phys: StepPhysics, eng: Engine, wl: Workload
             ) -> Callable[[np.ndarray | None], tuple[StepPhysics, Engine, Workload]]:
    """(phys, engine, workload) of the rows given (None: all), as numerics.bisect_levels repeats
    them (numerics.rows_taken)."""
    n = len(phys)
    return rows_taken(lambda rows: (phys.take(rows), eng.take(rows), wl.take(rows, n)), (phys, eng, wl))


def _taken(v, rows):
    """A per-configuration argument at ``rows`` (a scalar or a name as it is)."""
    return v if rows is None or np.ndim(v) == 0 else np.asarray(v)[rows]


# ----------------------------------------------------------------------------------------
# Section 8: a closed loop of clients over both pools
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClosedLoopResult:
    """N clients over P prefill and D decode replicas at their steady state; times in
    seconds, ``rate`` in requests/s through the whole deployment."""

    rate: np.ndarray
    ttft: np.ndarray                  # the prefill pool's TTFT (queue, prefill, KV transfer) + ``decode_admission``
    tpot: np.ndarray                  # the decode pool's mean TPOT
    prefill: PrefillResult            # one prefill replica at rate / P
    decode: DecodeResult              # one decode replica at rate / D
    stable: np.ndarray


def decode_admission(d: DecodeResult, lanes, clients) -> np.ndarray:
    """Seconds from a request's KV landing to its first token leaving the decode pool (section
    8): the wait for a KV slot (``kv_wait``), then the end of the decode step in progress. A
    decode worker admits new requests between steps (SGLang's decode scheduler polls its
    transfer queue once an iteration, TensorRT-LLM's generation server schedules at iteration
    boundaries), and the first token, computed by the prefill worker, streams when the
    request joins the running batch. ``clients`` per lane (N / (D G)) of a closed loop: the
    arriving request sees the others' in flight only (the arrival theorem with Schweitzer's
    scaling, as load.py: n (N_l - 1) / N_l running a lane; one client finds its lane empty).
    The ``lanes`` G of a replica (attention-DP ranks) step together, so the replica steps when
    any holds a sequence: probability 1 - exp(-G n) (M/G/inf occupancy over G lanes); a step
    in progress has a residual of tau / 2 (steps of near-constant length). vLLM's proxy
    layout computes the first token on the decode instance, one more step (section 2): not
    added."""
    Nl = np.maximum(np.asarray(clients, dtype=float), 1e-300)
    seen = np.maximum(d.running, 0.0) * np.clip((Nl - 1.0) / Nl, 0.0, 1.0)
    return d.kv_wait + (1.0 - np.exp(-np.asarray(lanes, dtype=float) * seen)) * d.step / 2.0


def _served(p: PrefillResult, d: DecodeResult) -> np.ndarray:
    """Both pools carry the rate: the prefill pool stable, the decode pool below its
    saturation with a KV pool not full. Not the decode fixed point's convergence: where the
    step time jumps (SGLang's two-batch overlap turns on at 2 sequences) tau = F(tau) has no
    root over a short range of rates, and ``DecodeResult.stable`` is False there although
    the pool keeps up; a closed loop searched over the rate must not read that as overload."""
    return p.stable & (d.rho_kv < 1.0) & (d.rate < d.saturation_rate) & (d.max_seqs >= 1) & np.isfinite(d.step)


def closed_loop(pre: StepPhysics, pre_eng: Engine, dec: StepPhysics, dec_eng: Engine, wl: Workload, clients,
                prefill_replicas, decode_replicas, link: LinkKind | np.ndarray = "inter",
                iters: int = 24) -> ClosedLoopResult:
    """N clients, each sending its next request when the last completes, over P prefill and
    D decode replicas (section 8): the throughput X solves N = X (TTFT + (O - 1) TPOT), TTFT
    the prefill pool's at X / P plus the decode pool's wait for a KV slot (the transfer lands
    only in a free one, before the first token), TPOT the decode pool's at X / D, its KV
    arriving in ``pair_transfer_time``. The left side grows with X; X is the lower end of a
    bisection in log X (``iters`` steps) between N / (the idle residence) and the lower pool's
    saturation, as load.py's closed loop, its steps settled from a bracket (numerics.py's
    ``bisection_by_bracket``: the same end, fewer evaluations); each pool's arrivals are
    taken as Poisson (docs/load.md section 5). Clients that start together (``wl.start``, a
    benchmark run of ``requests_per_client`` x N requests): the first wave's share 1 / R of
    the requests gets the wave's TTFT (``_prefill_wave``), the run's throughput N / (TTFT +
    (O - 1) TPOT)."""
    n = len(pre)
    N, P, D = _arr(clients, n), _arr(prefill_replicas, n), _arr(decode_replicas, n)
    O = _arr(wl.osl, n)
    xfer = pair_transfer_time(pre, dec, wl.isl, link)
    per_lane = N / (D * dec.lanes)                     # clients per decode lane (``decode_admission``)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        sat = np.minimum(P * prefill_saturation(pre, pre_eng, wl.isl, wl.cached, wl.isl_cv2),
                         D * decode_saturation(dec, dec_eng, wl.isl, wl.osl))

        def at(x):
            return (prefill_metrics(pre, pre_eng, wl, x / P, link, quantiles=False),
                    decode_metrics(dec, dec_eng, wl, x / D, xfer, quantiles=False))

        def residence(p: PrefillResult, d: DecodeResult):
            ttft = p.get("ttft", "mean") + decode_admission(d, dec.lanes, per_lane)
            return ttft, ttft + (O - 1.0) * d.get("tpot", "mean"), _served(p, d)

        hi = np.where(sat > 0, sat * (1.0 - 1e-9), 0.0)
        p0, d0 = at(hi * 1e-9)
        _, idle, _ = residence(p0, d0)
        hi = np.minimum(hi, N / idle)                      # X <= N / (residence at no load)
        lo = np.maximum(hi * 1e-6, 1e-300)

        def evaluate(x, rows):         # (below the root, log distance to it) for the rows given
            p, d = (prefill_metrics(pre.take(rows), pre_eng.take(rows), wl.take(rows, n), x / P[rows], link_of(rows),
                                    quantiles=False),
                    decode_metrics(dec.take(rows), dec_eng.take(rows), wl.take(rows, n), x / D[rows], xfer[rows],
                                   quantiles=False))
            ttft = p.get("ttft", "mean") + decode_admission(d, dec.lanes[rows], per_lane[rows])
            r = ttft + (O[rows] - 1.0) * d.get("tpot", "mean")
            ok = _served(p, d)
            return ok & (x * r < N[rows]), np.where(ok, np.log(x * r / N[rows]), np.inf)

        def link_of(rows):
            return np.broadcast_to(np.asarray(link), (n,))[rows]
        # the bisection's lower end, its steps settled from a bracket (load.py's search)
        lo, _, _ = bisection_by_bracket(evaluate, lo, np.maximum(hi, lo), np.full(n, np.nan), iters,
                                         np.full(n, np.inf), geometric=True)
        p, d = at(lo)
        ttft, _, ok = residence(p, d)
        tpot = d.get("tpot", "mean")
        if wl.start == "together":
            # a benchmark run: its first wave, 1 / R of its requests, queues for the prefill pool
            f = np.clip(1.0 / _arr(wl.requests_per_client, n), 0.0, 1.0)
            wave_ttft = _prefill_wave(pre, pre_eng, wl, N / P, xfer) + decode_admission(d, dec.lanes, per_lane)
            ttft = (1.0 - f) * ttft + f * np.maximum(ttft, wave_ttft)
            lo = np.minimum(lo, N / (ttft + (O - 1.0) * tpot))
    return ClosedLoopResult(rate=lo, ttft=ttft, tpot=tpot, prefill=p, decode=d,
                            stable=ok & (sat > 0) & np.isfinite(ttft))


def _prefill_wave(pre: StepPhysics, pre_eng: Engine, wl: Workload, clients, xfer) -> np.ndarray:
    """Mean TTFT of the first wave of a prefill replica whose ``clients`` send their first
    prompts together at t = 0 (docs/load.md section 5, 'clients that start together'): the
    W = clients / lanes prompts of a lane are prefilled FIFO a full budget a step (load.py's
    ``wave``, no decoders beside), then cross the link; plus the serving path. The wave's
    requests reach the decode pool spread over the wave's prefill and decode as they arrive,
    so they come back spread as much: later cycles are the steady state."""
    W = np.maximum(clients / pre.lanes, 1.0)
    cached = _arr(wl.cached, len(pre))
    wave_mean, _, _, _, _ = wave(pre, W, _arr(wl.isl, len(pre)) - cached, 0.0, pre_eng.token_budget, 0.0, cached)
    return wave_mean + xfer + pre.o.serving_overhead_s
