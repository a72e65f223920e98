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
from dataclasses import dataclass, field, fields, replace

import numpy as np

from planner.catalog.schema import ModelSpec
from planner.physics.options import Assumptions
from planner.physics.perf import (
    _BITS,
    _FALLBACK,
    _KV_BYTES,
    _MATH,
    _XBITS,
    Arch,
    _allreduce_factor,
    _cycle_weight_bytes,
    _link,
    _smax,
    _smax_scalar,
    _transfer,
    activation_bytes,
    busiest_active,
    cycle_overhead,
    cycle_weight_bytes_fn,
    evaluate,
    experts_touched_vary,
    exposed_alltoall,
    query_tokens,
    rates,
    stage_factors,
    tokens_per_step,
    tokens_per_step_variance,
)
from planner.physics.quant import ACTIVATION_BYTES, EMBEDDING_BYTES
from planner.physics.space import Configs, GpuTable

METRICS: tuple[str, ...] = ("ttft", "tpot", "itl", "e2e")
STATISTICS: tuple[str, ...] = ("mean", "p50", "p90", "p95", "p99")
_Z = {"p50": 0.0, "p90": 1.2815515655446004, "p95": 1.6448536269514722, "p99": 2.3263478740408408}
_P = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
DEFAULT_TOKEN_BUDGET = 8192  # vLLM's chunked-prefill max_num_batched_tokens


# ----------------------------------------------------------------------------------------
# Section 1: the mixed step
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StepPhysics:
    """Per-configuration coefficients of the mixed-step time (docs/load.md section 1).

    Times are per pipeline cycle (all PP stages). Linear coefficients are seconds per
    token (or per cached token, per attention unit); weight reads and collectives depend
    on the step's token count only and are evaluated by ``weights_time``/``comm_time``."""

    arch: Arch
    o: Assumptions
    table: GpuTable
    configs: Configs
    lanes: np.ndarray            # PP x attention-DP groups: independent batches per replica
    lin_decode: np.ndarray       # s per decode token (linear layers + LM head), FLOP side
    lin_prefill: np.ndarray      # s per prompt token (linear layers, no LM head), FLOP side
    lin_head: np.ndarray         # s per prompt that completes in the step (its one logit row)
    attn_prefill: np.ndarray     # s per unit of c^2 + 2 c p (chunk of c after p cached tokens)
    kv_read: np.ndarray          # s per cached token read by decode (bytes side)
    attn_decode: np.ndarray      # s per cached token attended by decode (FLOP side)
    overhead: np.ndarray         # per-layer and per-step overheads of one step
    act_decode: np.ndarray       # s per decode token: activations moved by the non-GEMM kernels
    act_prefill: np.ndarray      # s per prompt token: the same (x the prefill bubble)
    kv_per_token: np.ndarray     # smax(kv_read, attn_decode): s per cached token of decode, the step's KV term
    max_batch: np.ndarray        # sequences per lane the KV cache holds at S + O tokens each
    kv_pool_tokens: np.ndarray   # KV tokens per lane
    # speculative decoding (docs/model.md section 4): a decode token above is one of the q = k + 1
    # query tokens a sequence verifies per step, and kv_per_token holds smax(kv_read, q attn_decode);
    # the draft of a step (``draft_time``) needs the ordinary (q = 1) terms without the LM head
    lin_body: np.ndarray         # s per decode token: linear layers only (no LM head), FLOP side
    head_lin: np.ndarray         # s per decode token: the LM head's GEMM, FLOP side
    head_weights: np.ndarray     # s per cycle: reading the LM head's weights
    head_latency: np.ndarray     # s per cycle: the LM head GEMM's fixed latency
    draft_kv_per_token: np.ndarray  # smax(kv_read, attn_decode): s per cached token, one query token
    _w: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.configs)

    def take(self, index: np.ndarray) -> StepPhysics:
        """The coefficients of the configurations ``index`` (every term is per configuration)."""
        n = len(self)
        return replace(self, configs=self.configs.take(index),
                       **{f.name: getattr(self, f.name)[index] for f in fields(self)
                          if isinstance(getattr(self, f.name), np.ndarray)},
                       _w={k: _take(v, index, n) for k, v in self._w.items() if k not in _DERIVED})

    # -- token-count-only terms -------------------------------------------------------
    def weights_time(self, tokens: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """Seconds of weight reads in one cycle (all stages) for ``tokens`` per lane. The
        token-independent terms are computed once per configuration (``_weights``); where the
        bytes read do not depend on the token count at all (dense models), the time itself."""
        w = self._w
        if idx is None:
            fn, den, const = self._weights()
            if const is not None:
                return const
            return fn(np.asarray(tokens, dtype=float) * w["dp_attn"]) / den
        nbytes = _cycle_weight_bytes(self.arch, self.o, w["tp"][idx], w["group"][idx], w["kv_frac_w"][idx],
                                     w["b_w"][idx], w["b_x"][idx], w["b_e"][idx],
                                     np.asarray(tokens, dtype=float) * w["dp_attn"][idx],
                                     w["s_body"][idx], w["s_head"][idx])
        return nbytes / (w["bw"][idx] * self.o.memory_bandwidth_efficiency)

    def _weights(self):
        """(bytes of a cycle as a function of routed tokens, bandwidth, the time where it is
        the same at every token count else None), once per configuration set."""
        if "weights" not in self._w:
            w = self._w
            fn = cycle_weight_bytes_fn(self.arch, self.o, w["tp"], w["group"], w["kv_frac_w"], w["b_w"], w["b_x"],
                                       w["b_e"], w["s_body"], w["s_head"])
            den = w["bw"] * self.o.memory_bandwidth_efficiency
            const = None if experts_touched_vary(self.arch, self.o) else fn(w["dp_attn"]) / den
            w["weights"] = (fn, den, const)
        return self._w["weights"]

    def comm_time(self, tokens: np.ndarray, idx: np.ndarray | None = None, split: bool = False) -> tuple:
        """Seconds of TP/EP collectives (all stages) plus pipeline hops, for ``tokens``.
        The links of each configuration are looked up once (``_links``); the formulas are
        perf.py's (_link, _transfer, _alltoall, _pipeline_hops)."""
        o, p = self.o, self.arch.params
        k = self._links()
        sl = slice(None) if idx is None else idx
        tp, pp, ep = k["tp"][sl], k["pp"][sl], k["ep"][sl]
        tokens = np.asarray(tokens, dtype=float)
        msg = tokens * self.arch.hidden * ACTIVATION_BYTES
        # a collective no configuration of the set has (TP, EP or PP of 1 throughout) is the
        # where()'s zero without evaluating the other branch (taken once, in _links)
        whole = idx is None
        if whole and not k["any_tp"]:
            t_tp = k["zero"]
        else:
            t_tp = np.where(tp > 1, k["n_ar"][sl] * _transfer(k["tp_lat"][sl], k["ar"][sl] * msg, k["tp_bw"][sl], o),
                            0.0)
        if whole and not k["any_ep"]:
            t_ep = k["zero_ep"]
        else:
            per_gpu = tokens / tp * p.experts_per_token * self.arch.hidden * ACTIVATION_BYTES * (ep - 1) / ep \
                * o.expert_imbalance
            t_ep = np.where(ep > 1, 2.0 * _transfer(k["ep_lat"][sl], per_gpu, k["ep_bw"][sl], o), 0.0) \
                * p.moe_layers / pp * k["s_body"][sl]
        if whole and not k["any_pp"]:
            t_pp = k["zero"]
        else:
            hop_msg = msg / tp if o.pp_hop_message == "shard" else msg
            t_intra = _transfer(k["intra_lat"][sl], hop_msg, k["intra_bw"][sl], o)
            t_inter = _transfer(k["inter_lat"][sl], hop_msg, k["inter_bw"][sl], o)
            if o.pp_wraparound_hop == "activation":
                wrap = np.where(k["domains"][sl] > 1, t_inter, t_intra)
            else:
                wrap = np.where(k["domains"][sl] > 1, k["inter_lat"][sl], k["intra_lat"][sl])
            t_pp = np.where(pp > 1, k["intra_hops"][sl] * t_intra + k["cross"][sl] * t_inter + wrap, 0.0)
        if split:       # the expert all-to-all apart, for two-batch overlap (step_time)
            return pp * t_tp, pp * t_ep, t_pp
        return pp * (t_tp + t_ep), t_pp

    def _links(self) -> dict[str, np.ndarray]:
        """Per configuration: link bandwidths and latencies of its TP and EP groups and of its
        pipeline hops, the all-reduce count and factor (token-count independent)."""
        if "links" in self._w:
            return self._w["links"]
        w, o, p, t = self._w, self.o, self.arch.params, self.table
        tp, pp, ep, gi = w["tp"], w["pp"], w["ep"], self.configs.gpu
        tp_bw, tp_lat = _link(t, gi, tp)
        ep_bw, ep_lat = _link(t, gi, ep)
        stages_per_domain = np.maximum(1.0, np.floor(t.domain[gi] / tp))
        domains = np.ceil(pp / stages_per_domain)
        cross = domains - 1.0
        peer = t.intra_peer_bw[gi]
        links = dict(tp=tp, pp=pp, ep=ep, tp_bw=tp_bw, tp_lat=tp_lat, ep_bw=ep_bw, ep_lat=ep_lat,
                     ar=_allreduce_factor(tp, o),
                     n_ar=(2.0 * p.dense_layers + np.where(ep > 1, 1.0, 2.0) * p.moe_layers) / pp * w["s_body"],
                     s_body=w["s_body"],
                     domains=domains, cross=cross, intra_hops=np.maximum(pp - 1.0 - cross, 0.0),
                     intra_bw=np.where(np.isnan(peer), t.intra_bw[gi], peer), intra_lat=t.intra_latency[gi],
                     inter_bw=t.inter_bw[gi], inter_lat=t.inter_latency[gi],
                     any_tp=bool(np.any(tp > 1)), any_ep=bool(np.any(ep > 1)), any_pp=bool(np.any(pp > 1)),
                     zero=np.zeros(len(tp)), zero_ep=np.zeros(len(tp)) * p.moe_layers / pp * w["s_body"])
        w["links"] = links
        return links


_DERIVED = ("links", "weights")   # StepPhysics._w entries computed from the others (not taken)


def _take(v, index: np.ndarray, n: int):
    """``v[index]`` for a per-configuration array of length ``n``; anything else as it is."""
    return v[index] if isinstance(v, np.ndarray) and v.ndim >= 1 and len(v) == n else v


def step_physics(model: ModelSpec, table: GpuTable, configs: Configs, o: Assumptions) -> StepPhysics:
    """Coefficients of the mixed-step time for every configuration (section 1)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        arch = Arch.of(model)
        p = arch.params
        gi = configs.gpu
        tp, pp, ep = configs.tp, configs.pp, configs.ep
        group = np.maximum(tp, ep)
        dp_attn = np.maximum(1.0, ep / tp)
        peak = table.flops[gi, _MATH[configs.scheme]]
        fb = _FALLBACK[configs.scheme]
        peak = np.where(np.isnan(peak) & (fb >= 0), table.flops[gi, np.maximum(fb, 0)], peak)
        b_w = _BITS[configs.scheme] / 8.0
        b_x = _XBITS[configs.scheme] / 8.0
        b_e = b_w if o.quantize_embeddings else np.full_like(b_w, EMBEDDING_BYTES)
        b_kv = _KV_BYTES[configs.kv]
        if arch.kv_replicates:
            kv_frac = np.ceil(arch.kv_heads / tp) / arch.kv_heads
            kv_frac_w = np.maximum(kv_frac, 1.0 / tp)
        else:
            kv_frac = np.ones_like(tp)
            kv_frac_w = 1.0 / tp
        bw = table.bandwidth[gi] * table.eff_memory[gi]
        R = rates(table, gi, configs.scheme, configs.kv, o)
        s_body, s_head = stage_factors(arch, pp, o)
        act = busiest_active(p, o)
        # perf.py section 5's prefill bubble: a prompt's chunk rides on one micro-batch and the
        # cycle is PP x the slowest, so prefill work costs 1 + (PP-1) x pp_prefill_bubble.
        bub = 1.0 + (pp - 1.0) * o.pp_prefill_bubble
        on = 1.0 if o.include_compute else 0.0
        head = float(p.lm_head or p.embedding)
        L = float(arch.layers)
        kv_on = 1.0 if o.include_kv_reads else 0.0
        ev = evaluate(model, table, configs, o)
        per_token_kv = ev.kv_bytes_per_sequence / (configs.input_tokens + configs.output_tokens)
        room = np.maximum(ev.usable_bytes - ev.weights_bytes - ev.activation_bytes - ev.reserve_bytes, 0.0)
        bw_eff = bw * o.memory_bandwidth_efficiency
        kv_read = kv_on * L * arch.kv_elements * b_kv * kv_frac * s_body / bw_eff
        attn_decode = kv_on * on * L * arch.attn_decode_flops * s_body / tp / R.attn_dec
        act_bytes = activation_bytes(arch, tp, o)
        q = float(query_tokens(o))     # query tokens per sequence per decode step
        # Every cycle term is a per-stage term x PP: the per-stage coefficients carry /PP.
        return StepPhysics(
            arch=arch, o=o, table=table, configs=configs, lanes=pp * dp_attn,
            lin_decode=on * 2.0 * (act * s_body / R.lin_dec + head * s_head / R.head_dec) / tp,
            lin_prefill=on * 2.0 * act * s_body * bub / tp / R.lin_pre,
            lin_head=on * 2.0 * head * s_head * bub / tp / R.head_pre,
            attn_prefill=on * L * arch.attn_prefill_flops * s_body * bub / tp / R.attn_pre,
            kv_read=kv_read, attn_decode=attn_decode,
            overhead=cycle_overhead(arch, pp, o).astype(float),
            act_decode=act_bytes * L * s_body / bw_eff,
            act_prefill=act_bytes * L * s_body * bub / bw_eff,
            kv_per_token=_smax(kv_read, q * attn_decode, o.roofline_sharpness),
            max_batch=ev.max_batch, kv_pool_tokens=np.floor(room / per_token_kv),
            lin_body=on * 2.0 * act * s_body / R.lin_dec / tp,
            head_lin=on * 2.0 * head * s_head / R.head_dec / tp,
            head_weights=head / tp * b_e * s_head / bw_eff,
            head_latency=o.gemm_latency_s * s_head,
            draft_kv_per_token=_smax(kv_read, attn_decode, o.roofline_sharpness),
            _w=dict(tp=tp, pp=pp, ep=ep, group=group, dp_attn=dp_attn, kv_frac_w=kv_frac_w,
                    b_w=b_w, b_x=b_x, b_e=b_e, bw=bw, s_body=s_body, s_head=s_head),
        )


def step_time(phys: StepPhysics, n_decode, context_tokens, prefill_tokens=0.0,
              prefill_attention=None, prefill_completions=None) -> np.ndarray:
    """Seconds of one mixed step (a full pipeline cycle), vectorised over configurations.

    n_decode: decode sequences per lane; context_tokens: their *total* cached tokens
    (n_decode x mean context); prefill_tokens: prompt tokens in the step's chunk;
    prefill_attention: sum over the chunk's pieces of c^2 + 2 c p (a piece of c tokens
    after p cached ones; default prefill_tokens^2, one prompt from its start);
    prefill_completions: prompts whose last chunk is in the step (LM-head rows; default 1
    if prefill_tokens > 0). docs/load.md section 1.

    Speculative decoding (``speculative_tokens`` k > 0): each decode sequence verifies
    q = k + 1 tokens, so the decode tokens of the step are n q for the GEMMs, activations,
    collectives and routed experts, the attention FLOPs per cached token are x q (in
    ``kv_per_token``) and the KV bytes are not; the step then adds its draft (``draft_time``)."""
    o = phys.o
    n = np.asarray(n_decode, dtype=float)
    ctx = np.asarray(context_tokens, dtype=float)
    c = np.asarray(prefill_tokens, dtype=float)
    A = c * c if prefill_attention is None else np.asarray(prefill_attention, dtype=float)
    heads = (c > 0).astype(float) if prefill_completions is None else np.asarray(prefill_completions, dtype=float)
    nq = n * float(query_tokens(o))      # decode query tokens (n without speculation)
    tokens = nq + c
    with np.errstate(divide="ignore", invalid="ignore"):
        t_w = phys.weights_time(tokens)
        flops = nq * phys.lin_decode + c * phys.lin_prefill + heads * phys.lin_head + A * phys.attn_prefill
        k = o.roofline_sharpness
        # both cached-token terms are proportional to ctx and smax is homogeneous: the per-token
        # smax is taken once per configuration (kv_per_token), as scalar_step_fn does
        compute = _smax(t_w, flops, k) + ctx * phys.kv_per_token
        t_tp, t_ep, hops = phys.comm_time(tokens, split=True)
        comm = t_tp + exposed_alltoall(t_ep, compute, tokens, o)
        fixed = phys.overhead + nq * phys.act_decode + c * phys.act_prefill
        if o.overlap_comm:
            t = np.maximum(compute, comm + hops) + fixed
        else:
            t = compute + comm + hops + fixed
        if o.speculative_tokens > 0:
            t = t + draft_time(phys, n, ctx)
        return t


def draft_time(phys: StepPhysics, n_decode, context_tokens) -> np.ndarray:
    """Seconds of drafting k = ``speculative_tokens`` tokens for ``n_decode`` sequences of
    ``context_tokens`` cached tokens in all, one cycle (docs/model.md section 4):
    k x [draft_layers / L x (the ordinary decode step of those sequences, one query token
    each, without its LM head) + one LM-head pass over the n sequences]. 0 when k = 0."""
    o = phys.o
    K = o.speculative_tokens
    n = np.asarray(n_decode, dtype=float)
    if K == 0:
        return np.zeros(np.broadcast_shapes(n.shape, (len(phys),)))
    ctx = np.asarray(context_tokens, dtype=float)
    k = o.roofline_sharpness
    with np.errstate(divide="ignore", invalid="ignore"):
        t_w = phys.weights_time(n) - phys.head_weights
        compute = _smax(t_w, n * phys.lin_body, k) + ctx * phys.draft_kv_per_token
        t_tp, t_ep, hops = phys.comm_time(n, split=True)
        comm = t_tp + exposed_alltoall(t_ep, compute, n, o)
        fixed = phys.overhead - phys.head_latency + n * phys.act_decode
        if o.overlap_comm:
            base = np.maximum(compute, comm + hops) + fixed
        else:
            base = compute + comm + hops + fixed
        head = _smax(phys.head_weights, n * phys.head_lin, k) + phys.head_latency
        return K * (o.speculative_draft_layers / float(phys.arch.layers) * base + head)


def scalar_step_fn(phys: StepPhysics, i: int, max_tokens: int):
    """A pure-Python step-time function of configuration ``i`` for the simulator: the same
    formula as ``step_time``, with the token-count-only terms tabulated for 0..max_tokens."""
    idx = np.full(max_tokens + 1, i)
    grid = np.arange(max_tokens + 1, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        tw = phys.weights_time(grid, idx).tolist()
        t_tp, t_ep, hops = phys.comm_time(grid, idx, split=True)
        comm = t_tp + t_ep
    cm = (comm + hops).tolist()
    overlap = phys.o.overlap_comm
    a_n, a_c, a_h, a_A = (float(phys.lin_decode[i]), float(phys.lin_prefill[i]),
                          float(phys.lin_head[i]), float(phys.attn_prefill[i]))
    k = phys.o.roofline_sharpness
    kv = float(phys.kv_per_token[i])   # both terms are proportional to the cached tokens (smax is homogeneous)
    ovh = float(phys.overhead[i])
    act_n, act_c = float(phys.act_decode[i]), float(phys.act_prefill[i])
    ep_cyc = t_ep.tolist() if phys.o.ep_overlap != "none" else None
    comm_only = (comm).tolist()
    hops_only = hops.tolist()

    q = query_tokens(phys.o)      # query tokens per decode sequence (step_time)

    def rest(tok: int, comp: float, fixed: float) -> float:
        if ep_cyc is not None and tok >= 2:
            e = ep_cyc[tok]
            hidden = e if e < comp else comp
            if overlap:
                x = comm_only[tok] - hidden + hops_only[tok]
                return (comp if comp > x else x) + fixed
            return comp + cm[tok] - hidden + fixed
        if overlap:
            x = comm_only[tok] + hops_only[tok]
            return (comp if comp > x else x) + fixed
        return comp + cm[tok] + fixed

    def f(n: int, ctx: float, c: int = 0, A: float = 0.0, heads: int = 0) -> float:
        nq = n * q
        tok = nq + c
        lin = nq * a_n + c * a_c + heads * a_h + A * a_A
        w = tw[tok]
        comp = _smax_scalar(w, lin, k) + ctx * kv
        fixed = ovh + nq * act_n + c * act_c
        return rest(tok, comp, fixed)
    if q == 1:
        return f
    # speculative decoding: the step's draft, as draft_time
    K, frac = phys.o.speculative_tokens, phys.o.speculative_draft_layers / float(phys.arch.layers)
    lb, hl, hw, hlat = (float(phys.lin_body[i]), float(phys.head_lin[i]), float(phys.head_weights[i]),
                        float(phys.head_latency[i]))
    kv1 = float(phys.draft_kv_per_token[i])

    def g(n: int, ctx: float, c: int = 0, A: float = 0.0, heads: int = 0) -> float:
        comp = _smax_scalar(tw[n] - hw, n * lb, k) + ctx * kv1
        base = rest(n, comp, ovh - hlat + n * act_n)
        return f(n, ctx, c, A, heads) + K * (frac * base + _smax_scalar(hw, n * hl, k) + hlat)
    return g


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
# Section 3-5: closed forms under load
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Workload:
    """Request shape per configuration (broadcastable arrays). ``arrival_cv2``: squared
    coefficient of variation of inter-arrival times (1 Poisson, > 1 bursty Gamma);
    ``isl_cv2``: squared CV of prompt lengths (0 fixed)."""

    isl: np.ndarray | float
    osl: np.ndarray | float
    arrival_cv2: np.ndarray | float = 1.0
    isl_cv2: np.ndarray | float = 0.0

    def take(self, index: np.ndarray, n: int) -> Workload:
        """The workload of configurations ``index`` of ``n`` (per-configuration arrays indexed)."""
        return Workload(*(_take(getattr(self, f.name), index, n) for f in fields(self)))


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

    def get(self, metric: str, statistic: str) -> np.ndarray:
        return self.stats[(metric, statistic)]

    def take(self, index: np.ndarray) -> LoadResult:
        return LoadResult(**{f.name: getattr(self, f.name)[index] for f in fields(self) if f.name != "stats"},
                          stats={k: v[index] for k, v in self.stats.items()})


def _ncdf(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF (Abramowitz & Stegun 7.1.26 for erf, |error| < 1.5e-7)."""
    z = np.abs(x) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
               + 0.254829592) * t * np.exp(-z * z)
    return 0.5 * (1.0 + np.sign(x) * y)


def _bisect(fn, lo: np.ndarray, hi: np.ndarray, iters: int, geometric: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised bisection for the boundary of ``fn(x) True`` (assumed True at lo, False at hi)."""
    lo, hi = lo.copy(), hi.copy()
    for _ in range(iters):
        mid = np.sqrt(lo * hi) if geometric else 0.5 * (lo + hi)
        ok = fn(mid)
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
    return lo, hi


def _chunk(c1, Ta, u):
    """Mean chunk of a prefill-carrying step (section 3, 'chunk fill'): c = c1 + (Ta - c1) q
    with q = u / c, solved for c; u = mean prompt tokens per step."""
    d = np.maximum(Ta - c1, 0.0)
    c = 0.5 * (c1 + np.sqrt(c1 * c1 + 4.0 * d * u))
    return np.minimum(c, np.maximum(Ta, c1))


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


def _saturation(phys: StepPhysics, eng: Engine, S, O):
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
        tau = step_time(phys, n, n * (S + O / 2.0), c, c * S, c / S)
        return phys.lanes * n / (steps * tau), tau
    n = np.minimum(T * (O - 1.0) / (S + O - 1.0), cap)
    n = np.maximum(n, 1e-9)
    c = n * S / np.maximum(O - 1.0, 1e-9)
    tau = step_time(phys, n, n * (S + O / 2.0), c, c * S, c / S)
    return phys.lanes * n / (np.maximum(O - 1.0, 1e-9) * tau), tau


def _steady(phys: StepPhysics, eng: Engine, rate, S, O, tau_sat=None):
    """Section 3: the mean step by the fluid fixed point tau = F(tau) (a bracketing root
    finder, ``_fixed_point``; ``tau_sat``: the saturated step, if the caller has it)."""
    lam = rate / phys.lanes
    T = eng.token_budget
    E = tokens_per_step(phys.o)                    # 1 without speculative decoding
    qd = float(query_tokens(phys.o))      # budget tokens per decode sequence

    def parts(tau, ph=phys, lam=lam, S=S, O=O, T=T):
        n = lam * ((O - 1.0) / E) * tau            # Little: (O-1)/E decode steps per request
        Ta = np.maximum(T - n * qd, 1.0)
        c1 = S / np.ceil(S / Ta)
        u = lam * S * tau
        c = _chunk(c1, Ta, u)
        q = u / c
        t0 = step_time(ph, n, n * (S + O / 2.0), 0.0, 0.0, 0.0)
        t1 = step_time(ph, n, n * (S + O / 2.0), c, c * S, c / S)
        return n, Ta, c1, c, q, t0, t1

    def mean_step(q, t0, t1):
        return (1.0 - np.minimum(q, 1.0)) * t0 + np.minimum(q, 1.0) * t1

    def F(tau):
        _, _, _, _, q, t0, t1 = parts(tau)
        return mean_step(q, t0, t1)

    def restrict(idx):
        """F of the configurations ``idx`` only."""
        ph, sub = phys.take(idx), (lam[idx], np.asarray(S)[idx], np.asarray(O)[idx], T[idx])

        def F_idx(tau):
            _, _, _, _, q, t0, t1 = parts(tau, ph, *sub)
            return mean_step(q, t0, t1)
        return F_idx

    if tau_sat is None:
        _, tau_sat = _saturation(phys, eng, S, O)
    if "idle_step" not in phys._w:      # rate-independent: once per configuration set
        phys._w["idle_step"] = step_time(phys, 0.0, 0.0, 0.0, 0.0, 0.0)
    lo = phys._w["idle_step"] * 0.5
    hi = 4.0 * np.maximum(tau_sat, lo * 4.0)
    tau = _fixed_point(F, lo, hi, restrict=restrict)
    n, Ta, c1, c, q, t0, t1 = parts(tau)
    converged = np.abs(mean_step(q, t0, t1) - tau) <= 1e-6 * tau + 1e-12
    return dict(tau=tau, n=n, Ta=Ta, c1=c1, c=c, q=q, t0=t0, t1=t1, converged=converged & (q < 1.0))


FIXED_POINT_RTOL = 1e-12
"""Relative width of the bracket at which ``_fixed_point`` stops: far below the 1e-6 of the
convergence test and the ~3e-7 that the former 24 geometric bisection steps reached."""


def _fixed_point(F, lo: np.ndarray, hi: np.ndarray, max_iters: int = 60, restrict=None) -> np.ndarray:
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
    configuration's iterates are its own, so the result is the same)."""
    a, b = lo.astype(float).copy(), hi.astype(float).copy()
    ga, gb = F(a) - a, F(b) - b
    live = (gb <= 0) & (ga > 0) & (b - a > FIXED_POINT_RTOL * b)
    out = b.copy()
    idx = np.arange(len(a))            # the configurations still evaluated (a, b, ... are theirs)
    last = np.zeros(len(a))           # which end moved last: +1 a, -1 b
    for _ in range(max_iters):
        if not live.any():
            break
        if restrict is not None and 2 * np.count_nonzero(live) <= len(idx):
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



def _slot_wait(rho, c, cv2, service):
    """Section 4: G/G/c mean wait, Allen-Cunneen with Sakasegawa's probability of waiting."""
    c = np.maximum(c, 1.0)
    r = np.clip(rho, 0.0, 1.0 - 1e-12)
    pw = r ** (np.sqrt(2.0 * (c + 1.0)) - 1.0)
    return pw / (c * (1.0 - r)) * cv2 * service


def _exp_tail_quantile(mean, prob_wait, p):
    """p-quantile of a wait with P(W > t) = a exp(-t a / mean), a = P(wait) (section 4)."""
    a = np.clip(prob_wait, 1e-12, 1.0)
    tail = 1.0 - p
    return np.where(a > tail, mean / a * np.log(a / tail), 0.0)


def _mixture_quantile(means, sds, weights, p, z: float | None = None, rtol: float = 1e-12, max_iters: int = 100):
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
    for _ in range(max_iters):
        if not len(act):
            break
        xa, la, ha = x[act], lo[act], hi[act]
        ms, ss, ws = [m[act] for m in means], [s[act] for s in sds], [w[act] for w in weights]
        zs = [(xa - m) / s for m, s in zip(ms, ss)]
        f = sum(w * _ncdf(u) for u, w in zip(zs, ws)) - p
        dens = sum(w * np.exp(-0.5 * u * u) / s for u, s, w in zip(zs, ss, ws)) / np.sqrt(2.0 * np.pi)
        la, ha = np.where(f < 0, xa, la), np.where(f < 0, ha, xa)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            step = np.where(f != 0, f / dens, 0.0)
        new = xa - step
        new = np.where(np.isfinite(new) & (new >= la) & (new <= ha), new, 0.5 * (la + ha))
        x[act], lo[act], hi[act] = new, la, ha
        act = act[~(np.abs(new - xa) <= rtol * np.abs(xa))]
    return x


def _residual_quantile(shares, kinds, tail):
    """The x at which P(residual > x) = tail for the residual of the step in progress,
    uniform over a length-biased step of one of the ``kinds`` (their time shares ``shares``):
    sum_i share_i max(0, 1 - x / t_i) = tail. The left side is convex, decreasing and
    linear between the t_i, so Newton from 0 (right derivatives at the kinks) stays below
    the root and lands on it in at most one step per kind (section 5)."""
    x = np.zeros(np.shape(kinds[0]))
    for _ in range(len(kinds) + 1):
        above = sum(f * np.maximum(1.0 - x / t, 0.0) for f, t in zip(shares, kinds)) - tail
        slope = sum(np.where(t > x, f / t, 0.0) for f, t in zip(shares, kinds))
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(above > 0, x + above / slope, x)
    return x


def load_metrics(phys: StepPhysics, eng: Engine, wl: Workload, rate=None, clients=None,
                 quantiles: bool = True, report: set | None = None) -> LoadResult:
    """Closed forms under load (sections 3-5), vectorised over configurations.

    Give ``rate`` (requests/s per replica, open loop) or ``clients`` (closed loop, N
    clients per replica sending their next request when the last completes): the closed
    loop solves N = X (TTFT + (OSL - 1) TPOT) for the throughput X by bisection.
    ``report``: the (metric, percentile) pairs to compute (None: all; means always)."""
    n_cfg = len(phys)
    S = np.broadcast_to(np.asarray(wl.isl, dtype=float), (n_cfg,))
    O = np.broadcast_to(np.asarray(wl.osl, dtype=float), (n_cfg,))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if clients is None:
            lam = np.broadcast_to(np.asarray(rate, dtype=float), (n_cfg,))
            return _open(phys, eng, wl, lam, S, O, closed=None, quantiles=quantiles, needed=report)
        N = np.broadcast_to(np.asarray(clients, dtype=float), (n_cfg,))
        sat, _ = _saturation(phys, eng, S, O)
        # Largest rate a lane can carry with N clients: N / (their minimum residence).
        lo = np.zeros(n_cfg) + 1e-12 * sat
        hi = sat * (1.0 - 1e-9)

        def under(x):
            r = _open(phys, eng, wl, x, S, O, closed=N, quantiles=False)
            resid = r.get("ttft", "mean") + (O - 1.0) * r.get("tpot", "mean")
            return r.stable & (x * resid < N)
        lo, hi = _bisect(under, lo, hi, 36)
        return _open(phys, eng, wl, lo, S, O, closed=N, needed=report)


def _open(phys, eng, wl, lam, S, O, closed, quantiles=True, needed=None, saturation=None) -> LoadResult:
    """The load model at rate ``lam``. ``needed``: the (metric, statistic) pairs whose
    percentiles to compute (None: all); ``saturation``: ``_saturation``'s result for these
    configurations, if the caller has it (it does not depend on the rate)."""
    G = phys.lanes
    ca2 = np.broadcast_to(np.asarray(wl.arrival_cv2, dtype=float), lam.shape)
    cs2_isl = np.broadcast_to(np.asarray(wl.isl_cv2, dtype=float), lam.shape)
    if closed is not None:
        ca2 = np.ones_like(lam)   # finite-source arrivals taken as Poisson (section 5)
    sat, tau_sat = _saturation(phys, eng, S, O) if saturation is None else saturation
    st = _steady(phys, eng, lam, S, O, tau_sat)
    tau, n, c, q, t0, t1, Ta, c1 = st["tau"], st["n"], st["c"], st["q"], st["t0"], st["t1"], st["Ta"], st["c1"]
    lam_l = lam / G
    # Section 4: TTFT = residual of the step in progress + backlog beyond one chunk + own steps.
    ctx_n = n * (S + O / 2.0)
    qq = np.minimum(q, 1.0)
    D = S / c * t1                                   # time in carrying steps per prompt
    rho_p = np.minimum(lam_l * D, 1.0)               # share of time in carrying steps
    # residual of the step in progress (length-biased); closed-loop clients are taken to
    # arrive unsynchronised with steps as well (network, tokenizer), section 5
    # (time shares of decode, one-prompt and full-chunk steps; the carrying steps carry c1 or
    # Ta tokens, mixed to give the mean chunk c)
    c2 = np.minimum(Ta, c1 + S)
    pi = np.clip((c - c1) / np.maximum(c2 - c1, 1e-9), 0.0, 1.0)
    t_one = step_time(phys, n, n * (S + O / 2.0), c1, c1 * S, c1 / S)
    t_two = step_time(phys, n, n * (S + O / 2.0), c2, c2 * S, c2 / S)
    t_full = step_time(phys, n, n * (S + O / 2.0), Ta, Ta * S, Ta / S)
    kinds = (t0, t_one, t_two)
    counts = (1.0 - qq, qq * (1.0 - pi), qq * pi)
    span = sum(k * t for k, t in zip(counts, kinds))
    shares = [k * t / span for k, t in zip(counts, kinds)]
    resid = sum(f * t / 2.0 for f, t in zip(shares, kinds))
    # prompt-token backlog as an M/G/1 on work (Kingman) at full-chunk speed Ta / t_full;
    # only the part beyond the Ta - S tokens that still fit the next step delays it
    rho_T = np.minimum(lam_l * S * t_full / Ta, 1.0)
    w_work = rho_p / (1.0 - rho_p) * (ca2 + cs2_isl) / 2.0 * D
    m_tok = w_work / np.maximum(rho_p, 1e-12) * c / t1              # mean backlog when busy, tokens
    k_own = np.ceil(S / Ta)
    slack = np.maximum(k_own * Ta - S, 0.0)
    fit = np.exp(-slack / np.maximum(m_tok, 1e-12))
    w_extra = w_work * fit
    pw_extra = rho_p * fit
    # own steps: k - 1 full chunks, then the last piece plus the prompts that joined it
    last = S - (k_own - 1.0) * Ta
    c_own = np.minimum(Ta, last + lam_l * S * (resid + w_extra))
    t_own = step_time(phys, n, ctx_n, c_own, c_own * S, c_own / S)
    D_own = (k_own - 1.0) * t_full + t_own
    E = tokens_per_step(phys.o)        # speculative decoding: (O-1)/E decode steps a request (1: off)
    residence = w_extra + resid + D_own + ((O - 1.0) / E) * tau    # KV slot held (reserved at admission)
    rho_kv = lam_l * residence / eng.max_seqs
    w_kv = _slot_wait(rho_kv, eng.max_seqs, (ca2 + 0.0) / 2.0, residence)
    ttft = resid + w_extra + w_kv + D_own
    tpot = tau / E                     # per output token; ITL is per step (a burst of E tokens on average)
    stable = st["converged"] & (rho_kv < 1.0) & (rho_p < 1.0) & (rho_T < 1.0) & (lam < sat)
    e2e = ttft + (O - 1.0) * tpot
    stats = {("ttft", "mean"): ttft, ("tpot", "mean"): tpot, ("itl", "mean"): tau, ("e2e", "mean"): e2e}
    if quantiles:
        # Section 5: percentiles.
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
            d0 = (step_time(phys, n + dn, (n + dn) * (S + O / 2.0))
                  - step_time(phys, nm, nm * (S + O / 2.0))) / (n + dn - nm)
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
        for key, p in _P.items():
            want = {m for m in METRICS if needed is None or (m, key) in needed}
            if "e2e" in want:
                want |= {"ttft", "tpot"}
            z = _Z[key]
            tail = 1.0 - p
            if "ttft" in want:
                # residual of the step in progress: uniform over a length-biased step
                r_p = _residual_quantile(shares, kinds, tail)
                wq = np.maximum(r_p, resid + _exp_tail_quantile(w_extra, pw_extra, p)) \
                    + _exp_tail_quantile(w_kv, pw_kv, p)
                stats[("ttft", key)] = D_own + wq
            if "itl" in want:
                stats[("itl", key)] = _mixture_quantile(
                    [t0, t_one, t_two], [sd0, sd0, sd0], [1.0 - qq, qq * (1.0 - pi), qq * pi], p, z=z)
            if "tpot" in want:
                stats[("tpot", key)] = tpot + z * sd_tpot
            if "e2e" in want:
                stats[("e2e", key)] = stats[("ttft", key)] + (O - 1.0) * stats[("tpot", key)]
    conc = lam * e2e
    return LoadResult(
        rate=lam, throughput_tokens_per_s=lam * O, concurrency=conc, running=n, step_decode=t0,
        step_prefill=t1, chunk_tokens=c, prefill_step_fraction=q, rho=np.maximum(lam / sat, rho_kv), rho_prefill=rho_p,
        rho_kv=rho_kv, saturation_rate=sat, stable=stable, stats=stats,
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


@dataclass(frozen=True)
class Capacity:
    rate: np.ndarray                  # highest requests/s per replica meeting every target
    throughput_tokens_per_s: np.ndarray
    rho: np.ndarray
    binding: np.ndarray               # index of the binding target; -1: saturation binds
    result: LoadResult                # the load model at that rate


def capacity_at_slo(phys: StepPhysics, eng: Engine, wl: Workload, targets: Sequence[Target],
                    iters: int = 16, max_utilization: float | None = None, report: set | None = None) -> Capacity:
    """Highest request rate per replica at which each configuration meets every target
    (section 6): the lower end of a geometric bisection of ``iters`` steps over the rate
    between 1e-4 and 1 - 1e-9 of saturation, whose steps ``_bisection_by_bracket`` settles
    from far fewer evaluations (the same rate, bit for bit, as long as meeting the targets
    is monotone in the rate). A configuration that misses a target even at a vanishing rate
    gets capacity 0 with that target binding: every statistic grows with the load, so that
    one evaluation settles it and the search runs on the others only (each configuration's
    result is its own: the same as computed alone).

    ``max_utilization``: the rate is capped at that share of saturation, binding -1 where
    the cap is below the capacity, and the result is at the capped rate; a configuration
    shown to meet every target above the cap stops there (no need to locate its capacity).
    ``report``: the (metric, percentile) pairs the result carries besides the targets'
    (None: all; the others are +inf)."""
    n_cfg = len(phys)
    S = np.broadcast_to(np.asarray(wl.isl, dtype=float), (n_cfg,))
    O = np.broadcast_to(np.asarray(wl.osl, dtype=float), (n_cfg,))
    limits = np.array([t.seconds for t in targets], dtype=float)
    needed = {(t.metric, t.statistic) for t in targets}
    shown = None if report is None else set(report) | needed

    def ratios(ph, en, w, x, S, O, saturation):
        r = _open(ph, en, w, x, S, O, closed=None, needed=needed, saturation=saturation)
        vals = np.stack([r.get(t.metric, t.statistic) for t in targets]) if len(targets) else np.zeros((0, len(x)))
        return r, vals / limits[:, None]

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        sat_raw, tau_sat = _saturation(phys, eng, S, O)
        sat = np.where(np.isfinite(sat_raw) & (sat_raw > 0), sat_raw, 0.0)
        ceiling = np.full(n_cfg, np.inf) if max_utilization is None else max_utilization * sat
        lo = np.maximum(sat * 1e-4, 1e-300)
        r0, rt0 = ratios(phys, eng, wl, lo, S, O, (sat_raw, tau_sat))
        feasible0 = r0.stable & np.all(rt0 <= 1.0, axis=0)
        rate = np.zeros(n_cfg)
        binding = np.argmax(rt0, axis=0) if len(targets) else np.full(n_cfg, -1)
        parts = []
        live, settled = np.flatnonzero(feasible0), np.flatnonzero(~feasible0)
        if len(live):
            ph, en, w = phys.take(live), eng.take(live), wl.take(live, n_cfg)
            S_, O_, lo_l, cap_l = S[live], O[live], lo[live], ceiling[live]
            sat_l = (sat_raw[live], tau_sat[live])

            def evaluate(x, i):
                """Whether rows ``i`` meet every target at ``x``, and how far from it they are
                (log of the largest ratio to a target or utilisation; NaN where not defined)."""
                r, rt = ratios(ph.take(i), en.take(i), w.take(i, len(live)), x, S_[i], O_[i],
                               (sat_l[0][i], sat_l[1][i]))
                ok = r.stable & np.all(rt <= 1.0, axis=0)
                g = np.log(np.maximum(np.max(rt, axis=0, initial=0.0), np.maximum(r.rho, r.rho_prefill)))
                return ok, np.where(ok | (g > 0), g, np.nan)
            hi = np.maximum(sat[live] * (1.0 - 1e-9), lo_l)
            g_lo = np.log(np.maximum(np.max(rt0[:, live], axis=0, initial=0.0),
                                     np.maximum(r0.rho[live], r0.rho_prefill[live])))
            lo_, hi_, above = _bisection_by_bracket(evaluate, lo_l, hi, g_lo, iters, cap_l)
            found = np.where(above, np.inf, lo_)
            rate_l = np.minimum(found, cap_l)
            rate[live] = rate_l
            parts.append((live, _open(ph, en, w, np.maximum(rate_l, lo_l), S_, O_, closed=None, saturation=sat_l,
                                      needed=shown)))
            binding[live] = -1
            below = np.flatnonzero(found <= cap_l)     # the capacity itself binds: name the target
            if len(below) and len(targets):
                r_hi, rt_hi = ratios(ph.take(below), en.take(below), w.take(below, len(live)), hi_[below],
                                     S_[below], O_[below], (sat_l[0][below], sat_l[1][below]))
                binding[live[below]] = np.where(r_hi.stable & (np.max(rt_hi, axis=0) > 1.0),
                                                np.argmax(rt_hi, axis=0), -1)
        if len(settled):     # no bisection: the load model at the vanishing rate itself
            parts.append((settled, _open(phys.take(settled), eng.take(settled), wl.take(settled, n_cfg),
                                         lo[settled], S[settled], O[settled], closed=None, needed=shown,
                                         saturation=(sat_raw[settled], tau_sat[settled]))))
        binding = np.where(sat > 0, binding, -1)
    return Capacity(rate=rate, throughput_tokens_per_s=rate * O, rho=rate / np.where(sat > 0, sat, np.nan),
                    binding=binding.astype(np.int64), result=merge_results(n_cfg, parts))


def _finite(g) -> np.ndarray:
    """g as floats, NaN where not finite (an infinite distance says nothing to a secant),
    squashed to g / (1 + |g|): the same sign and, near 0, the same value, but a far point's
    huge distance (a latency exploding near saturation) no longer pins the secant to the
    other end."""
    g = np.asarray(g, dtype=float)
    return np.where(np.isfinite(g), g / (1.0 + np.abs(g)), np.nan)


def _bisection_by_bracket(evaluate, lo: np.ndarray, hi: np.ndarray, g_lo: np.ndarray, iters: int,
                          ceiling: np.ndarray, geometric: bool = True, g_hi: np.ndarray | None = None,
                          first: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ends of ``_bisect(ok, lo, hi, iters, geometric)`` for a predicate ok that
    holds at ``lo`` and is monotone (true below a boundary, false above), without
    evaluating it at every midpoint (section 6).

    Each configuration keeps the highest rate L known to meet it and the lowest H known to
    miss it; a bisection midpoint at or below L is settled true, one at or above H false, so
    the bisection is replayed step by step until a midpoint falls between L and H. Only
    then is ``evaluate(x, rows) -> (ok, g)`` called (g: a distance to the boundary, positive
    where ok fails, such as the log of the largest ratio to a target; NaN where it says
    nothing), at a point chosen to shrink [L, H] around the boundary: the secant on g
    (squashed to g / (1 + |g|)) against the rate through the last two points, else
    through L and H; once its step is below ``delta`` (1/32 of the bisection's last step)
    the boundary is that close, and the point is ``delta`` past the estimate, away from
    the last point, so that the other end closes in too. The bisection's own midpoint is
    taken where the estimate is outside [L, H], where two points in a row did not halve it,
    where it is narrower than the bisection's last step, and after two evaluations that
    settled no step (so a row needs at most three evaluations a step: on the fleet
    benchmark 1 above the ceiling and about 7 below it, against 16).

    ``ceiling`` (per row; inf for none): a row with L far enough above it that the
    bisection's lower end must exceed it stops there, flagged in the third result (its
    ends are then only bounds: lo <= L, hi = inf). ``g_hi``: the distance at ``hi`` where
    the caller knows ok fails there; ``first``: the first point to evaluate (default just
    past the ceiling where there is one, else half of ``hi``)."""
    n = len(lo)
    blo, bhi = lo.astype(float).copy(), hi.astype(float).copy()
    steps = np.zeros(n, dtype=np.int64)
    L, H = blo.copy(), (np.full(n, np.inf) if g_hi is None else bhi.copy())
    gL, gH = _finite(g_lo), (np.full(n, np.nan) if g_hi is None else _finite(g_hi))
    x_last, g_last, ok_last = blo.copy(), gL.copy(), np.ones(n, dtype=bool)   # the last point evaluated
    x_prev, g_prev = np.full(n, np.nan), np.full(n, np.nan)                   # and the one before
    # the bisection's last step: relative (log) if geometric, else absolute
    width = (np.log(np.maximum(bhi / blo, 1.0)) if geometric else bhi - blo) / 2.0 ** iters
    margin = 1.01 * width + 1e-12

    def past(x, k):      # x moved k margins up
        return x * np.exp(k * margin) if geometric else x + k * margin
    above = np.zeros(n, dtype=bool)
    # first point: just past the ceiling where there is one (a row meeting it there is done),
    # else half of the upper end
    x0 = np.where(past(ceiling, 1.5) < past(bhi, -1.0), past(ceiling, 1.5), 0.5 * bhi) if first is None else first
    pending = np.ones(n, dtype=bool)         # the first point not yet evaluated
    stall = np.full(n, -1, dtype=np.int64)   # evaluations in a row that settled no step
    last_span = np.full(n, np.inf)           # width of [L, H] when the last point was chosen
    slow = np.zeros(n, dtype=np.int64)       # evaluations in a row that did not halve it
    while True:      # ends: every third evaluation of a row at the latest is at a midpoint
        before = steps.copy()
        # replay every settled step of the bisection
        act = np.flatnonzero(steps < iters)
        while len(act):
            mid = np.sqrt(blo[act] * bhi[act]) if geometric else 0.5 * (blo[act] + bhi[act])
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
        xl, gl, xp, gp = x_last[rows], g_last[rows], x_prev[rows], g_prev[rows]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # the secant through the last two points, else through the bracket's ends
            est = xl - gl * (xl - xp) / (gl - gp)
            ends = Lr - gL[rows] * span / (gH[rows] - gL[rows])
            est = np.where((est >= Lr) & (est <= Hr), est, ends)
            # its step is within delta of the last point: the boundary is that close, so
            # step delta past the estimate, away from the last point, to close the other end
            near = np.abs(est - xl) < d
            est = np.where(near, np.where(ok_last[rows], est + d, est - d), est)
            # outside, or the last two did not halve the bracket while far from the boundary:
            # the bisection's midpoint (Brent's safeguard)
            slow[rows] = np.where(span > 0.5 * last_span[rows], slow[rows] + 1, 0)
            poor = ~((est > Lr) & (est < Hr)) | ((slow[rows] >= 2) & ~near)
        last_span[rows] = span
        usable = ~poor & np.isfinite(est) & (est < H[rows]) & (span > step) & (stall[rows] < 2)
        x = np.where(usable, est, np.sqrt(blo[rows] * bhi[rows]) if geometric else 0.5 * (blo[rows] + bhi[rows]))
        x = np.where(pending[rows] & (x0[rows] > Lr) & (x0[rows] < H[rows]), x0[rows], x)
        pending[rows] = False
        ok, g = evaluate(x, rows)
        g = _finite(g)
        gL[rows] = np.where(ok, g, gL[rows])
        gH[rows] = np.where(ok, gH[rows], g)
        L[rows] = np.where(ok, x, Lr)
        H[rows] = np.where(ok, H[rows], x)
        x_prev[rows], g_prev[rows] = xl, gl
        x_last[rows], g_last[rows], ok_last[rows] = x, g, ok
    return blo, np.where(above, np.inf, bhi), above


def merge_results(n: int, parts: list[tuple[np.ndarray, LoadResult]]) -> LoadResult:
    """One LoadResult of ``n`` configurations from results on disjoint index sets (a
    statistic missing from a part is +inf on its configurations)."""
    out: dict = {}
    for f in fields(LoadResult):
        if f.name == "stats":
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
    return LoadResult(**out, stats=stats)
