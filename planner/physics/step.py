"""One step of an engine: the one home of the decode (and mixed prefill + decode) step time.

docs/model.md section 4 derives the decode cycle, docs/load.md section 1 the mixed step:
every running sequence of a lane gains one token (q query tokens under speculative
decoding) and up to the token budget's rest of prompt tokens is prefilled. The same
formula (``_step``) serves the idle figures of ``perf.evaluate`` (c = 0, n = the batch),
the closed forms under load (``step_time``, vectorised over configurations) and the
simulator (``scalar_step_fn``: the same function on one configuration's coefficients as
plain floats, its token-count-only terms tabulated). Units: seconds, tokens.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from planner.catalog.schema import ModelSpec
from planner.physics.attention import decode_attention_flops, kv_read_bytes
from planner.physics.memory import memory
from planner.physics.options import Assumptions
from planner.physics.quant import ACTIVATION_BYTES
from planner.physics.space import Configs, GpuTable
from planner.physics.terms import (
    Arch,
    Rates,
    Shard,
    activation_bytes,
    allreduce_factor,
    allreduces,
    alltoall,
    attention_dp_overhead,
    busiest_active,
    cycle_overhead,
    cycle_weight_bytes,
    cycle_weight_bytes_fn,
    expected_touched,
    experts_touched_vary,
    hop_links,
    host_bound,
    host_time,
    link,
    moe_padding,
    pipeline_hops,
    query_tokens,
    rates,
    routed_active,
    shard,
    smax,
    smax_scalar,
    stage_factors,
)


@dataclass(frozen=True)
class StepPhysics:
    """Per-configuration coefficients of the step time (docs/load.md section 1).

    Times are per pipeline cycle (all PP stages). Linear coefficients are seconds per
    token (or per cached token, per attention unit); weight reads and collectives depend
    on the step's token count only and are evaluated by ``weights_time``/``comm_time``."""

    arch: Arch
    o: Assumptions
    table: GpuTable
    configs: Configs
    lanes: np.ndarray            # PP x attention-DP groups: independent batches per replica
    lin_decode: np.ndarray       # s per decode token (linear layers but the routed experts, + LM head), FLOP side
    lin_prefill: np.ndarray      # s per prompt token (linear layers but the routed experts), FLOP side
    routed_decode: np.ndarray    # s per decode token of the routed experts' grouped GEMMs, before padding
    routed_prefill: np.ndarray   # s per prompt token of the same
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
    lin_body: np.ndarray         # s per decode token: linear layers but the routed experts (no LM head), FLOP side
    head_lin: np.ndarray         # s per decode token: the LM head's GEMM, FLOP side
    head_weights: np.ndarray     # s per cycle: reading the LM head's weights
    head_latency: np.ndarray     # s per cycle: the LM head GEMM's fixed latency
    draft_kv_per_token: np.ndarray  # smax(kv_read, attn_decode): s per cached token, one query token
    # attention kinds whose reads are not proportional to the context (sliding windows,
    # sparse attention, state-space layers; docs/model.md section 9): per byte a sequence's
    # cache read and per FLOP its attention, to apply to the layout's per-sequence figures
    kv_byte_time: np.ndarray     # s per KV byte read (x the KV heads' share, the slowest stage)
    attn_flop_time: np.ndarray   # s per attention FLOP of decode
    _w: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.configs)

    @property
    def q(self) -> int:
        """Query tokens a decode sequence puts through a step (``query_tokens``)."""
        return query_tokens(self.o)

    @property
    def routed(self) -> bool:
        """Whether the model has routed experts (their grouped GEMMs are a term of their own)."""
        return self.arch.params.num_experts > 0

    @property
    def host(self) -> bool:
        """Whether the engine's host work can bound a step (``terms.host_bound``)."""
        return host_bound(self.o)

    @property
    def kv_linear(self) -> bool:
        """Whether a step's KV term is proportional to the cached tokens (every layer full
        attention, no top-k): then it is ``ctx x kv_per_token``, else the layout's own."""
        lay = self.arch.attention
        return not lay.sparse and all(g.kind == "full" for g in lay.layers)

    def take(self, index: np.ndarray) -> StepPhysics:
        """The coefficients of the configurations ``index`` (every term is per configuration)."""
        n = len(self)
        return replace(self, configs=self.configs.take(index),
                       **{f.name: getattr(self, f.name)[index] for f in fields(self)
                          if isinstance(getattr(self, f.name), np.ndarray)},
                       _w={k: take_rows(v, index, n) for k, v in self._w.items() if k not in _DERIVED}
                       | ({"links": _take_links(self._w["links"], index, n)} if "links" in self._w else {}))

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
            return fn(*self.touched(tokens)) / den
        nbytes = cycle_weight_bytes(self.arch, self.o, w["tp"][idx], w["group"][idx], w["kv_frac_w"][idx],
                                    w["b_w"][idx], w["b_x"][idx], w["b_e"][idx],
                                    np.asarray(tokens, dtype=float) * w["dp_attn"][idx],
                                    w["s_body"][idx], w["s_head"][idx])
        return nbytes / (w["bw"][idx] * self.o.memory_bandwidth_efficiency)

    def moe_pad(self, tokens: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """``moe_padding`` of a step of ``tokens`` per lane: the routed tokens an expert sees
        are every attention group's (x ``dp_attn``)."""
        if idx is None and self.o.moe_gemm_tile_tokens > 0:
            return moe_padding(self.arch, self.o, *self.touched(tokens))
        dp = self._w["dp_attn"] if idx is None else self._w["dp_attn"][idx]
        return moe_padding(self.arch, self.o, np.asarray(tokens, dtype=float) * dp)

    def touched(self, tokens) -> tuple[np.ndarray, np.ndarray]:
        """(routed tokens, ``expected_touched`` at them) of a step of ``tokens`` per lane (every
        attention group's tokens, x ``dp_attn``), kept for the last ``tokens`` object asked: a
        step's weight reads and its expert padding take it at the same tokens, once (the same
        figures as computed apart). Kept by the object and checked by its values, so an array
        changed in place since is computed again."""
        last = self._w.get("touched")
        if last is None or last[0] is not tokens or not np.array_equal(last[3], tokens):
            values = np.array(tokens, dtype=float)
            routed = values * self._w["dp_attn"]
            last = (tokens, routed, expected_touched(self.arch, routed), values)
            self._w["touched"] = last
        return last[1], last[2]

    def host_time(self, sequences, tokens):
        """``terms.host_time`` of a step: its host seconds (the host-bound floor)."""
        return host_time(self.o, self.arch, sequences, tokens)

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

    def comm_time(self, tokens: np.ndarray, idx: np.ndarray | None = None) -> tuple:
        """Seconds of TP all-reduces, EP all-to-alls (each all stages) and pipeline hops, for
        ``tokens``. The links of each configuration are looked up once (``_links``); the
        formulas are terms.py's (allreduces, alltoall, pipeline_hops)."""
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
            t_tp = allreduces(o, k["n_ar"][sl], k["tp_lat"][sl], k["tp_bw"][sl], k["ar"][sl], tp, msg)
        if whole and not k["any_ep"]:
            t_ep = k["zero_ep"]
        else:
            t_ep = alltoall(self.arch, o, k["ep_bw"][sl], k["ep_lat"][sl], tp, ep, tokens) \
                * p.moe_layers / pp * k["s_body"][sl]
        if whole and not k["any_pp"]:
            t_pp = k["zero"]
        else:
            t_pp = pipeline_hops(o, {name: v[sl] for name, v in k["hops"].items()}, tp, pp, msg, wraparound=True)
        return pp * t_tp, pp * t_ep, t_pp

    def _links(self) -> dict[str, Any]:
        """Per configuration: link bandwidths and latencies of its TP and EP groups and of its
        pipeline hops, the all-reduce count and factor (token-count independent)."""
        if "links" in self._w:
            return self._w["links"]
        w, p, t = self._w, self.arch.params, self.table
        tp, pp, ep, gi = w["tp"], w["pp"], w["ep"], self.configs.gpu
        tp_bw, tp_lat = link(t, gi, tp)
        ep_bw, ep_lat = link(t, gi, ep)
        links = dict(tp=tp, pp=pp, ep=ep, tp_bw=tp_bw, tp_lat=tp_lat, ep_bw=ep_bw, ep_lat=ep_lat,
                     ar=allreduce_factor(tp, self.o),
                     n_ar=(2.0 * p.dense_layers + np.where(ep > 1, 1.0, 2.0) * p.moe_layers) / pp * w["s_body"],
                     s_body=w["s_body"], hops=hop_links(t, gi, tp, pp),
                     any_tp=bool(np.any(tp > 1)), any_ep=bool(np.any(ep > 1)), any_pp=bool(np.any(pp > 1)),
                     zero=np.zeros(len(tp)), zero_ep=np.zeros(len(tp)) * p.moe_layers / pp * w["s_body"])
        w["links"] = links
        return links

    def kv_terms(self, n, ctx, q: float) -> tuple[np.ndarray, np.ndarray]:
        """(read, attention) seconds of the step's KV term for ``n`` decode sequences holding
        ``ctx`` cached tokens in all, each verifying ``q`` query tokens. Proportional to
        ``ctx`` for full attention; for windowed, sparse or state-space layers, the layout's
        figures (docs/model.md section 9) at the mean context ctx / n, x n."""
        if self.kv_linear:
            return ctx * self.kv_read, ctx * q * self.attn_decode
        lay, b_kv = self.arch.attention, self._w["b_kv"]
        per_seq = np.where(n > 0, ctx / np.maximum(n, 1e-300), 0.0)
        return (n * kv_read_bytes(lay, per_seq, b_kv) * self.kv_byte_time,
                n * q * decode_attention_flops(lay, per_seq) * self.attn_flop_time)

    def kv_time(self, n, ctx, q: float) -> np.ndarray:
        """The step's KV term: ``kv_terms`` joined by the smooth roofline (for full attention
        the per-token smax taken once per configuration: smax is homogeneous)."""
        if self.kv_linear:
            return ctx * (self.kv_per_token if q == self.q else self.draft_kv_per_token)
        return smax(*self.kv_terms(n, ctx, q), self.o.roofline_sharpness)


_DERIVED = ("links", "weights", "touched")   # StepPhysics._w entries derived from the others (links: _take_links)


def _take_links(links: dict[str, Any], index: np.ndarray, n: int) -> dict[str, Any]:
    """``StepPhysics._links`` of the configurations ``index``: its per-configuration rows
    taken (the link look-ups are not repeated), whether any has TP, EP or PP above 1 anew."""
    out = {k: take_rows(v, index, n) for k, v in links.items() if k != "hops"}
    out["hops"] = {k: take_rows(v, index, n) for k, v in links["hops"].items()}
    out.update(any_tp=bool(np.any(out["tp"] > 1)), any_ep=bool(np.any(out["ep"] > 1)),
               any_pp=bool(np.any(out["pp"] > 1)))
    return out


def take_rows(v, index: np.ndarray, n: int):
    """``v[index]`` for a per-configuration array of length ``n``; anything else as it is."""
    return v[index] if isinstance(v, np.ndarray) and v.ndim >= 1 and len(v) == n else v


def at_rows(index: np.ndarray, n: int, *values) -> list:
    """``values``, which broadcast along one axis of ``n`` configurations, at the
    configurations ``index``: a ``StepPhysics`` of ``n`` taken, an array of length ``n``
    indexed, anything else (a scalar, a one-element array or ``StepPhysics``) as it is."""
    def one(v):
        size = len(v) if isinstance(v, StepPhysics) else np.size(v) if np.ndim(v) else 1
        if size == 1:
            return v
        if size != n or np.ndim(v) > 1:
            raise ValueError(f"at_rows: {size} values along an axis of {n} configurations")
        return v.take(index) if isinstance(v, StepPhysics) else v[index]
    return [one(v) for v in values]


def step_physics(model: ModelSpec, table: GpuTable, configs: Configs, o: Assumptions,
                 mem: dict[str, np.ndarray] | None = None) -> StepPhysics:
    """Coefficients of the step time for every configuration (docs/load.md section 1);
    ``mem``: the configurations' memory (``memory.memory``), if the caller has it."""
    with np.errstate(divide="ignore", invalid="ignore"):
        arch = Arch.of(model)
        sh = shard(arch, configs, o)
        if mem is None:
            mem = memory(arch, o, table, configs, sh)
        return step_coefficients(arch, table, configs, o, mem, sh, rates(table, configs.gpu, configs.scheme,
                                                                          configs.kv, o))


def step_coefficients(arch: Arch, table: GpuTable, configs: Configs, o: Assumptions, mem: dict[str, np.ndarray],
                      sh: Shard, R: Rates) -> StepPhysics:
    """``step_physics`` from the architecture, memory, shard and rates the caller already has
    (``perf.evaluate`` computes them once for the step and the prefill)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p = arch.params
        gi = configs.gpu
        tp, pp, ep = configs.tp, configs.pp, configs.ep
        bw = table.bandwidth[gi] * table.eff_memory[gi]
        s_body, s_head = stage_factors(arch, pp, o)
        routed = routed_active(p, o)
        act = busiest_active(p, o) - routed       # the dense GEMMs' parameters per token
        eta_g = o.grouped_gemm_efficiency
        # perf.py section 5's prefill bubble: a prompt's chunk rides on one micro-batch and the
        # cycle is PP x the slowest, so prefill work costs 1 + (PP-1) x pp_prefill_bubble.
        bub = 1.0 + (pp - 1.0) * o.pp_prefill_bubble
        on = 1.0 if o.include_compute else 0.0
        head = float(p.lm_head or p.embedding)
        L = float(arch.layers)
        kv_on = 1.0 if o.include_kv_reads else 0.0
        per_token_kv = mem["kv_bytes_per_sequence"] / (configs.input_tokens + configs.output_tokens)
        room = np.maximum(mem["usable_bytes"] - mem["weights_bytes"] - mem["activation_bytes"]
                          - mem["reserve_bytes"], 0.0)
        bw_eff = bw * o.memory_bandwidth_efficiency
        kv_read = kv_on * L * arch.kv_elements * sh.b_kv * sh.kv_frac * s_body / bw_eff
        attn_decode = kv_on * on * L * arch.attn_decode_flops * s_body / tp / R.attn_dec
        act_bytes = activation_bytes(arch, tp, o)
        q = float(query_tokens(o))     # query tokens per sequence per decode step
        # Every cycle term is a per-stage term x PP: the per-stage coefficients carry /PP.
        return StepPhysics(
            arch=arch, o=o, table=table, configs=configs, lanes=pp * sh.dp_attn,
            lin_decode=on * 2.0 * (act * s_body / R.lin_dec + head * s_head / R.head_dec) / tp,
            lin_prefill=on * 2.0 * act * s_body * bub / tp / R.lin_pre,
            routed_decode=on * 2.0 * routed * s_body / tp / (R.expert_dec * eta_g),
            routed_prefill=on * 2.0 * routed * s_body * bub / tp / (R.expert_pre * o.grouped_gemm_prefill_efficiency),
            lin_head=on * 2.0 * head * s_head * bub / tp / R.head_pre,
            attn_prefill=on * L * arch.attn_prefill_flops * s_body * bub / tp / R.attn_pre,
            kv_read=kv_read, attn_decode=attn_decode,
            overhead=cycle_overhead(arch, pp, o).astype(float) + attention_dp_overhead(arch, sh.dp_attn, o),
            act_decode=act_bytes * L * s_body / bw_eff,
            act_prefill=act_bytes * L * s_body * bub / bw_eff,
            kv_per_token=smax(kv_read, q * attn_decode, o.roofline_sharpness),
            max_batch=mem["max_batch"], kv_pool_tokens=np.floor(room / per_token_kv),
            lin_body=on * 2.0 * act * s_body / R.lin_dec / tp,
            head_lin=on * 2.0 * head * s_head / R.head_dec / tp,
            head_weights=head / tp * sh.b_e * s_head / bw_eff,
            head_latency=o.gemm_latency_s * s_head,
            draft_kv_per_token=smax(kv_read, attn_decode, o.roofline_sharpness),
            kv_byte_time=kv_on * sh.kv_frac * s_body / bw_eff,
            attn_flop_time=kv_on * on * s_body / tp / R.attn_dec,
            _w=dict(tp=tp, pp=pp, ep=ep, group=sh.group, dp_attn=sh.dp_attn, kv_frac_w=sh.kv_frac_w,
                    b_w=sh.b_w_read,   # bytes as the reads' time counts them
                    b_x=sh.b_x, b_e=sh.b_e, b_kv=sh.b_kv, bw=bw, s_body=s_body, s_head=s_head),
        )


# ----------------------------------------------------------------------------------------
# The one step formula, on arrays (``_VEC``) or on one configuration's floats (``_FLOAT``)
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Ops:
    smax: Any
    maximum: Any
    where: Any


_VEC = _Ops(smax=smax, maximum=np.maximum, where=np.where)
_FLOAT = _Ops(smax=smax_scalar, maximum=max, where=lambda cond, a, b: a if cond else b)


def _cycle(ops: _Ops, o: Assumptions, t_w, flops, kv, t_tp, t_ep, hops, fixed, tokens):
    """One cycle from its terms (docs/model.md sections 4-5): weight reads and GEMM FLOPs
    joined by the smooth roofline, the KV term, the TP all-reduces, the expert all-to-all
    (with two-batch overlap only what exceeds the compute, from 2 tokens), the pipeline hops
    and the fixed costs; with ``overlap_comm`` communication hides behind compute."""
    compute = ops.smax(t_w, flops, o.roofline_sharpness) + kv
    if o.ep_overlap == "none":
        comm = t_tp + t_ep
    else:
        comm = t_tp + ops.where(tokens >= 2, ops.maximum(t_ep - compute, 0.0), t_ep)
    if o.overlap_comm:
        return ops.maximum(compute, comm + hops) + fixed
    return compute + comm + hops + fixed


def _step(ops: _Ops, x, n, ctx, c, A, heads, terms: dict | None = None):
    """Seconds of one step on coefficients ``x``: a ``StepPhysics`` (arrays) or a ``_Scalar``
    (one configuration's floats), which give the token-count-only terms (``weights_time``,
    ``comm_time``) and the KV term (``kv_time``). ``terms``: a dict to fill with the step's
    terms (cycle seconds), for the idle figures' breakdown."""
    o = x.o
    q = x.q
    nq = n * q                     # decode query tokens (n without speculation)
    tokens = nq + c
    t_w = x.weights_time(tokens)
    flops = nq * x.lin_decode + c * x.lin_prefill + heads * x.lin_head + A * x.attn_prefill
    if x.routed:          # the routed experts' grouped GEMMs, padded to whole tiles per expert
        flops = flops + x.moe_pad(tokens) * (nq * x.routed_decode + c * x.routed_prefill)
    kv = x.kv_time(n, ctx, q)
    t_tp, t_ep, hops = x.comm_time(tokens)
    fixed = x.overhead + nq * x.act_decode + c * x.act_prefill
    gpu = _cycle(ops, o, t_w, flops, kv, t_tp, t_ep, hops, fixed, tokens)
    if o.speculative_tokens > 0:
        gpu = gpu + _draft(ops, x, n, ctx)
    # the host-bound floor: the host prepares a step while the GPU runs the last one
    total = ops.maximum(gpu, x.host_time(n + heads, tokens)) if x.host else gpu
    if terms is not None:
        terms.update(t_w=t_w, flops=flops, kv=kv, t_tp=t_tp, t_ep=t_ep, hops=hops, fixed=fixed, gpu=gpu, total=total)
    return total


def _draft(ops: _Ops, x, n, ctx):
    """Seconds of drafting k = ``speculative_tokens`` tokens for ``n`` sequences of ``ctx``
    cached tokens in all, one cycle (docs/model.md section 4): k x [draft_layers / L x (the
    ordinary decode step of those sequences, one query token each, without its LM head) +
    one LM-head pass over the n sequences]."""
    o = x.o
    t_w = x.weights_time(n) - x.head_weights
    t_tp, t_ep, hops = x.comm_time(n)
    flops = n * x.lin_body + (x.moe_pad(n) * n * x.routed_decode if x.routed else 0.0)
    base = _cycle(ops, o, t_w, flops, x.kv_time(n, ctx, 1.0), t_tp, t_ep, hops,
                  x.overhead - x.head_latency + n * x.act_decode, n)
    head = ops.smax(x.head_weights, n * x.head_lin, o.roofline_sharpness) + x.head_latency
    return o.speculative_tokens * (o.speculative_draft_layers / float(x.arch.layers) * base + head)


def _prefill_args(c, A, heads):
    c = np.asarray(c, dtype=float)
    A = c * c if A is None else np.asarray(A, dtype=float)
    heads = (c > 0).astype(float) if heads is None else np.asarray(heads, dtype=float)
    return c, A, heads


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
    return step_terms(phys, n_decode, context_tokens, prefill_tokens, prefill_attention, prefill_completions, None)


def step_terms(phys: StepPhysics, n_decode, context_tokens, prefill_tokens=0.0,
               prefill_attention=None, prefill_completions=None, terms: dict | None = None) -> np.ndarray:
    """``step_time``, filling ``terms`` (if given) with its terms in cycle seconds: weight
    reads ``t_w``, GEMM FLOPs ``flops``, the KV term ``kv``, all-reduces ``t_tp``,
    all-to-alls ``t_ep`` (before any overlap), ``hops``, fixed costs (overheads and
    activations) ``fixed`` and the ``total``."""
    n = np.asarray(n_decode, dtype=float)
    c, A, heads = _prefill_args(prefill_tokens, prefill_attention, prefill_completions)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _step(_VEC, phys, n, np.asarray(context_tokens, dtype=float), c, A, heads, terms)


def draft_time(phys: StepPhysics, n_decode, context_tokens) -> np.ndarray:
    """Seconds of drafting k = ``speculative_tokens`` tokens for ``n_decode`` sequences of
    ``context_tokens`` cached tokens in all, one cycle (docs/model.md section 4):
    k x [draft_layers / L x (the ordinary decode step of those sequences, one query token
    each, without its LM head) + one LM-head pass over the n sequences]. 0 when k = 0."""
    n = np.asarray(n_decode, dtype=float)
    if phys.o.speculative_tokens == 0:
        return np.zeros(np.broadcast_shapes(n.shape, (len(phys),)))
    with np.errstate(divide="ignore", invalid="ignore"):
        return _draft(_VEC, phys, n, np.asarray(context_tokens, dtype=float))


class _Scalar:
    """One configuration's step coefficients as plain floats, for ``_step`` on floats: the
    token-count-only terms (weights, collectives) tabulated for 0..max_tokens tokens from the
    vectorised ones, so a step of the simulator costs a microsecond or two."""

    __slots__ = ("o", "arch", "q", "routed", "host", "lin_decode", "lin_prefill", "routed_decode", "routed_prefill",
                 "lin_head", "attn_prefill", "overhead", "act_decode", "act_prefill", "lin_body", "head_lin",
                 "head_weights", "head_latency", "weights_time", "comm_time", "kv_time", "moe_pad", "host_time",
                 "_tw", "_comm")

    def __init__(self, phys: StepPhysics, i: int, max_tokens: int):
        idx = np.full(max_tokens + 1, i)
        grid = np.arange(max_tokens + 1, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            self._tw = phys.weights_time(grid, idx).tolist()
            t_tp, t_ep, hops = phys.comm_time(grid, idx)
            pad = phys.moe_pad(grid, idx).tolist()
        self._comm = list(zip(t_tp.tolist(), t_ep.tolist(), hops.tolist()))
        self.o, self.arch, self.q, self.routed, self.host = phys.o, phys.arch, phys.q, phys.routed, phys.host
        for name in ("lin_decode", "lin_prefill", "routed_decode", "routed_prefill", "lin_head", "attn_prefill",
                     "overhead", "act_decode", "act_prefill", "lin_body", "head_lin", "head_weights", "head_latency"):
            setattr(self, name, float(getattr(phys, name)[i]))
        self.moe_pad = pad.__getitem__
        o, arch, where = phys.o, phys.arch, _FLOAT.where
        self.host_time = lambda sequences, tokens: host_time(o, arch, sequences, tokens, where)
        # bound list look-ups and a closure: what ``_step`` calls, without a method's overhead
        self.weights_time = self._tw.__getitem__
        self.comm_time = self._comm.__getitem__
        kv_q, kv_1 = float(phys.kv_per_token[i]), float(phys.draft_kv_per_token[i])
        if phys.kv_linear:
            def kv_time(n: int, ctx: float, q: float) -> float:
                return ctx * (kv_q if q == self.q else kv_1)
            self.kv_time = kv_time
        else:
            self.kv_time = _layout_kv_time(phys, i)


def _layout_kv_time(phys: StepPhysics, i: int):
    """``StepPhysics.kv_time`` of configuration ``i`` on floats, for a layout whose KV term
    is not linear in the context (windows, sparse or state-space layers). Per sequence, the
    layout's read bytes and attention FLOPs (planner/physics/attention.py, their one home)
    are affine between the layout's caps (``_affine_pieces``): evaluated there once by the
    vectorised functions, a step interpolates exactly (to rounding). A layout they do not
    fit keeps the vectorised path on one-element arrays."""
    lay, k = phys.arch.attention, phys.o.roofline_sharpness
    b_kv, kbt, aft = float(phys._w["b_kv"][i]), float(phys.kv_byte_time[i]), float(phys.attn_flop_time[i])
    read = _affine_pieces(lambda x: kv_read_bytes(lay, x, b_kv), _layout_breaks(lay))
    attn = _affine_pieces(lambda x: decode_attention_flops(lay, x), _layout_breaks(lay))
    if read is None or attn is None:
        one = phys.take(np.array([i]))
        return lambda n, ctx, q: float(one.kv_time(np.array([float(n)]), np.array([ctx]), q)[0])

    if read.pieces == 1 and attn.pieces == 1:     # no cap: one affine piece each, inlined
        (r0, rs), (a0, as_) = read.line, attn.line

        def kv_line(n: int, ctx: float, q: float) -> float:
            per_seq = ctx / n if n > 0 else 0.0
            return smax_scalar(n * (r0 + rs * per_seq) * kbt, n * q * (a0 + as_ * per_seq) * aft, k)
        return kv_line

    def kv_time(n: int, ctx: float, q: float) -> float:
        per_seq = ctx / n if n > 0 else 0.0
        return smax_scalar(n * read(per_seq) * kbt, n * q * attn(per_seq) * aft, k)
    return kv_time


def _layout_breaks(lay) -> list[float]:
    """Contexts (tokens per sequence) where a layout's per-sequence figures may change slope:
    its windows and chunks, its top-k and the context at which a compressed layer's pooled
    entries reach the top-k."""
    cands = [v for g in lay.layers for v in (g.cap, g.top_k, g.top_k / g.ratio if g.ratio else 0.0)]
    return sorted({float(v) for v in cands if 0.0 < v < float("inf")})


def _affine_pieces(fn, breaks: list[float]):
    """``fn`` (vectorised over contexts) as a float function, affine between ``breaks`` and
    beyond the last: its values at the breaks and the slopes between them, from ``fn``
    itself. None where ``fn`` is not affine there (checked at each piece's middle and far
    past the last break, to 1e-13 relative)."""
    starts = [0.0] + breaks
    far = 2.0 * starts[-1] + 2.0 ** 24
    at = np.array(starts + [far])
    vals = np.broadcast_to(np.asarray(fn(at), dtype=float), at.shape).tolist()
    slopes = [(vals[j + 1] - vals[j]) / (at[j + 1] - at[j]) for j in range(len(starts))]
    n_pieces = len(starts)

    def f(x: float) -> float:
        j = bisect_right(starts, x) - 1
        return vals[j] + slopes[j] * (x - starts[j])
    probe = [0.5 * (at[j] + at[j + 1]) for j in range(n_pieces)] + [3.0 * far]
    exact = np.broadcast_to(np.asarray(fn(np.array(probe)), dtype=float), (len(probe),)).tolist()
    if any(abs(f(x) - e) > 1e-13 * abs(e) for x, e in zip(probe, exact)):
        return None
    return _Pieces(f, n_pieces, (vals[0], slopes[0]))


@dataclass(frozen=True)
class _Pieces:
    """A piecewise-affine float function (``_affine_pieces``): ``line`` is its first piece's
    (value at 0, slope), the whole function when ``pieces`` is 1."""

    fn: Any
    pieces: int
    line: tuple[float, float]

    def __call__(self, x: float) -> float:
        return self.fn(x)


def scalar_step_fn(phys: StepPhysics, i: int, max_tokens: int):
    """A pure-Python step-time function of configuration ``i`` for the simulator: ``_step``
    on the configuration's floats, with the token-count-only terms tabulated for
    0..max_tokens tokens."""
    x = _Scalar(phys, i, max_tokens)

    def f(n: int, ctx: float, c: int = 0, A: float = 0.0, heads: int = 0) -> float:
        return _step(_FLOAT, x, n, ctx, c, A, heads)
    return f
