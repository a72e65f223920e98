"""The analytic performance and memory model, vectorised over configurations.

Every formula here is derived in docs/model.md (section numbers in comments). Units:
bytes, seconds, FLOP, bytes/s, FLOP/s. Nothing here imports a solver.

Conventions:
- ``batch`` B is the number of sequences one GPU decodes per step (the micro-batch of a
  pipeline stage). A replica of TP x PP GPUs keeps PP micro-batches in flight, so it holds
  B x PP concurrent sequences (x the attention-data-parallel groups when EP > TP).
- A replica is max(TP, EP) x PP GPUs. With EP > TP, EP/TP attention groups of TP GPUs
  share one pool of experts spread over EP GPUs (DeepSeek-style attention DP + EP).
- TPOT is one full cycle of the pipeline: PP stage steps plus the hops between stages.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from planner.catalog.schema import ModelSpec
from planner.physics.attention import decode_attention_flops, kv_read_bytes, prefill_attention_flops
from planner.physics.memory import memory
from planner.physics.options import Assumptions
from planner.physics.quant import ACTIVATION_BYTES
from planner.physics.space import Configs, GpuTable
from planner.physics.step import StepPhysics, step_coefficients, step_terms
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
    exposed_alltoall,
    hop_links,
    host_bound,
    host_time,
    link,
    moe_padding,
    per_layer_fixed,
    pipeline_hops,
    query_tokens,
    rates,
    routed_active,
    scheme_peak,
    shard,
    smax,
    stage_factors,
    tokens_per_step,
    weight_bytes_read,
)

__all__ = ["INVALID_REASONS", "Arch", "Evaluation", "critical_batch", "evaluate", "minimum_gpus", "query_tokens",
           "regime_of", "regime_shares", "tokens_per_step"]

INVALID_REASONS: tuple[str, ...] = (
    "",
    "the GPU has no peak FLOP/s for the scheme's math format",
    "TP must divide the number of attention heads",
    "PP cannot exceed the number of layers",
    "EP needs a mixture-of-experts model and must divide its expert count",
    "EP and TP must divide one another",
)


@dataclass(frozen=True)
class Evaluation:
    """Physics of every configuration; each field an array (per GPU unless stated)."""

    valid: np.ndarray
    invalid_reason: np.ndarray
    gpus: np.ndarray                 # GPUs in one replica
    concurrency: np.ndarray          # sequences in flight per replica
    # memory, bytes per GPU
    weights_bytes: np.ndarray
    kv_cache_bytes: np.ndarray
    activation_bytes: np.ndarray
    reserve_bytes: np.ndarray
    total_bytes: np.ndarray
    usable_bytes: np.ndarray
    capacity_bytes: np.ndarray
    kv_bytes_per_sequence: np.ndarray
    max_batch: np.ndarray            # largest micro-batch that fits (0 if the weights do not)
    fits: np.ndarray
    # decode, seconds per pipeline stage step unless stated
    t_weights: np.ndarray            # weight reads at achieved bandwidth
    t_linear_compute: np.ndarray     # linear-layer FLOPs at achieved FLOP/s
    t_kv: np.ndarray                 # KV reads
    t_attn_compute: np.ndarray
    t_tp_comm: np.ndarray
    t_ep_comm: np.ndarray
    t_pp_comm: np.ndarray            # all hops of one token cycle
    t_activations: np.ndarray        # activations moved by the non-GEMM kernels
    t_overhead: np.ndarray           # fixed costs per step (non-GEMM kernels, GEMM latency), all stages
    tpot: np.ndarray                 # seconds per output token (one pipeline cycle)
    share_weights: np.ndarray
    share_compute: np.ndarray
    share_kv: np.ndarray
    share_activations: np.ndarray
    share_comm: np.ndarray
    share_overhead: np.ndarray
    # prefill of one request (seconds)
    ttft: np.ndarray
    ttft_compute: np.ndarray
    ttft_comm: np.ndarray
    prefill_flops: np.ndarray        # per GPU, all stages
    # throughput, utilisation, power
    decode_tokens_per_s: np.ndarray  # per replica, decode steps only
    throughput_tokens_per_s: np.ndarray  # output tokens/s per replica (prefill paid if enabled)
    mbu: np.ndarray
    mfu: np.ndarray
    bytes_per_step: np.ndarray       # per GPU per token cycle
    flops_per_step: np.ndarray
    peak_flops: np.ndarray
    power_w: np.ndarray              # per replica (prices are applied after the physics: planner/pricing.py)

    def row(self, i: int) -> dict[str, float]:
        return {f.name: getattr(self, f.name)[i].item() for f in fields(self)}


def evaluate(model: ModelSpec, table: GpuTable, c: Configs, o: Assumptions) -> Evaluation:
    """Evaluate every configuration in ``c``. Rows with batch 0 or an invalid combination
    carry inf/NaN in the time fields; ``valid`` and ``invalid_reason`` say which."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return _evaluate(model, table, c, o)


def _evaluate(model: ModelSpec, table: GpuTable, c: Configs, o: Assumptions) -> Evaluation:
    arch = Arch.of(model)
    p = arch.params
    gi = c.gpu
    tp, pp, ep, B = c.tp, c.pp, c.ep, c.batch
    sh = shard(arch, c, o)
    gpus = sh.group * pp

    # Peak FLOP/s for the scheme's math format on this GPU (fallback: fp16 for bf16).
    peak = scheme_peak(table, gi, c.scheme)
    reason = np.zeros(len(c), dtype=np.int64)
    reason = np.where(np.isnan(peak), 1, reason)
    reason = np.where(arch.heads % tp != 0, 2, reason)
    reason = np.where(pp > arch.layers, 3, reason)
    bad_ep = (ep > 1) & ((p.num_experts == 0) | (np.mod(p.num_experts, ep) != 0))
    reason = np.where(bad_ep, 4, reason)
    reason = np.where((np.mod(ep, tp) != 0) & (np.mod(tp, ep) != 0), 5, reason)
    valid = reason == 0

    mem = memory(arch, o, table, c, sh)
    R = rates(table, gi, c.scheme, c.kv, o)
    dec = _decode(arch, o, c, step_coefficients(arch, table, c, o, mem, sh, R), sh)
    pre = _prefill(arch, o, table, c, sh, R)

    concurrency = B * pp * sh.dp_attn
    # concurrency x E / cycle: tpot is the cycle / E (section 4, speculative decoding)
    decode_tps = concurrency / dec["tpot"]
    cycle = dec.pop("cycle")
    prefill_busy = pre.pop("prefill_busy")
    if o.include_prefill_in_throughput:
        out = c.output_tokens
        # Section 5: a prompt's chunk rides on one micro-batch; the cycle is PP x the slowest
        # micro-batch, so the other PP - 1 wait for its stage time (pp_prefill_bubble).
        bubble = 1.0 + (pp - 1.0) * o.pp_prefill_bubble
        throughput = concurrency * out / (out * dec["tpot"] + B * prefill_busy * bubble)
    else:
        throughput = decode_tps
    bw_peak = table.bandwidth[gi]
    mbu = dec["bytes_per_step"] / cycle / bw_peak
    mfu = dec["flops_per_step"] / cycle / peak
    return Evaluation(
        valid=valid, invalid_reason=reason, gpus=gpus, concurrency=concurrency, **mem, **dec, **pre,
        decode_tokens_per_s=decode_tps, throughput_tokens_per_s=throughput, mbu=mbu, mfu=mfu,
        peak_flops=peak, power_w=gpus * table.power[gi],
    )


def _decode(arch: Arch, o: Assumptions, c: Configs, phys: StepPhysics, sh: Shard) -> dict:
    """Sections 4-5: the decode cycle of B sequences at the mean context, from the one step
    formula (``step.step_terms`` with no prompt tokens), each term reported per stage (the
    cycle's / PP) with its share of the cycle.

    Speculative decoding (k = ``speculative_tokens`` > 0; section 4, 'Speculative decoding /
    MTP'): the step is a *verify* pass of q = k + 1 query tokens per sequence plus the
    drafting of k tokens (in the step's total), and TPOT is that cycle / E
    (``tokens_per_step``) seconds per output token."""
    B, pp = c.batch, c.pp
    ctx = c.input_tokens + c.output_tokens / 2.0          # mean context over the decode
    q = float(query_tokens(o))
    t: dict = {}
    cycle = step_terms(phys, B, B * ctx, terms=t)
    read, attn = phys.kv_terms(B, B * ctx, q)
    act = B * q * phys.act_decode
    per_stage = lambda x: x / pp  # noqa: E731
    # Shares are each term's own time over the cycle, as it is (section 4): weight reads and
    # GEMMs overlap, so the shares can sum past 1; none is zeroed by the roofline. With
    # speculative decoding the terms are the verify pass's; the draft is in the cycle only.
    share = lambda x: x / cycle  # noqa: E731
    overhead = phys.overhead
    return dict(
        t_weights=per_stage(t["t_w"]), t_linear_compute=per_stage(t["flops"]), t_kv=per_stage(read),
        t_attn_compute=per_stage(attn), t_tp_comm=per_stage(t["t_tp"]), t_ep_comm=per_stage(t["t_ep"]),
        t_pp_comm=t["hops"], t_activations=per_stage(act),
        t_overhead=np.broadcast_to(overhead, B.shape).copy(),
        tpot=cycle / tokens_per_step(o),
        share_weights=share(t["t_w"]),
        share_compute=share(t["flops"] + attn),
        share_kv=share(read),
        share_activations=share(act),
        share_comm=(t["t_tp"] + t["t_ep"] + t["hops"]) / cycle,
        share_overhead=overhead / cycle,
        **_traffic(arch, o, c, sh),
        cycle=cycle,
    )


def _traffic(arch: Arch, o: Assumptions, c: Configs, sh: Shard) -> dict:
    """Bytes one GPU moves and FLOPs it does in one decode cycle at batch B (MBU and MFU,
    section 4): the weights read, the KV cache at the mean context, the activations of the
    non-GEMM kernels; the linear layers', the LM head's and attention's FLOPs; with
    speculative decoding the verify pass of q tokens and the k drafts."""
    p = arch.params
    B, tp, pp = c.batch, c.tp, c.pp
    ctx = c.input_tokens + c.output_tokens / 2.0
    s_body, _ = stage_factors(arch, pp, o)
    head = float(p.lm_head or p.embedding)
    q = float(query_tokens(o))
    kv_on = 1.0 if o.include_kv_reads else 0.0
    kv = kv_on * B * kv_read_bytes(arch.attention, ctx, sh.b_kv) * sh.kv_frac
    attn = kv_on * B * decode_attention_flops(arch.attention, ctx) / tp
    act = activation_bytes(arch, tp, o) * arch.layers * s_body

    def weights(tokens):
        return weight_bytes_read(arch, o, tp, sh.group, sh.kv_frac_w, sh.b_w, sh.b_x, sh.b_e, tokens * sh.dp_attn)
    nbytes = weights(B * q) + kv + B * q * act
    flops = 2.0 * B * q * (p.active_nonembedding + head) / tp + q * attn
    k = o.speculative_tokens
    if k > 0:
        # k drafts per cycle, each: draft_layers / L of the ordinary (q = 1) decode pass of this
        # batch without its LM head, plus one LM-head pass over the B sequences
        frac = o.speculative_draft_layers / float(arch.layers)
        head_bytes = head / tp * sh.b_e
        nbytes = nbytes + k * (frac * (weights(B) - head_bytes + kv + B * act) + head_bytes)
        flops = flops + k * (frac * (2.0 * B * p.active_nonembedding / tp + attn) + 2.0 * B * head / tp)
    return dict(bytes_per_step=nbytes, flops_per_step=flops)


def _prefill(arch: Arch, o: Assumptions, table: GpuTable, c: Configs, sh: Shard, R: Rates) -> dict:
    """Section 4: TTFT of one request of S prompt tokens on an idle replica (no queueing)."""
    p = arch.params
    gi, S, tp, pp, ep = c.gpu, c.input_tokens, c.tp, c.pp, c.ep
    L, h = float(arch.layers), float(arch.hidden)
    w_bytes = weight_bytes_read(arch, o, tp, sh.group, 1.0 / tp, sh.b_w_read, sh.b_x,
                                sh.b_e, S)
    head = float(p.lm_head or p.embedding)
    attn = prefill_attention_flops(arch.attention, S)
    flops = (2.0 * S * p.active_nonembedding + 2.0 * head + attn) / tp
    on = 1.0 if o.include_compute else 0.0
    bw = table.bandwidth[gi] * table.eff_memory[gi] * o.memory_bandwidth_efficiency
    t_bytes = w_bytes / bw
    # the routed experts' grouped GEMMs at their own rate, padded to whole tiles per expert (section 4)
    routed = routed_active(p, o) * moe_padding(arch, o, S) / (o.grouped_gemm_prefill_efficiency * R.expert_pre)
    dense = busiest_active(p, o) - routed_active(p, o)
    t_flops = on * (2.0 * S * (dense / R.lin_pre + routed) + 2.0 * head / R.head_pre + attn / R.attn_pre) / tp
    k = o.roofline_sharpness
    compute = smax(t_bytes, t_flops, k)
    tp_bw, tp_lat = link(table, gi, tp)
    msg = S * h * ACTIVATION_BYTES
    n_ar = 2.0 * p.dense_layers + np.where(ep > 1, 1.0, 2.0) * p.moe_layers
    t_tp = allreduces(o, n_ar, tp_lat, tp_bw, allreduce_factor(tp, o), tp, msg)
    t_ep = alltoall(arch, o, *link(table, gi, ep), tp, ep, S) * p.moe_layers
    hops = pipeline_hops(o, hop_links(table, gi, tp, pp), tp, pp, msg, wraparound=False)
    comm = t_tp + exposed_alltoall(t_ep, compute, S, o) + hops
    overhead = (per_layer_fixed(arch, o) * L + o.step_overhead_s + o.gemm_latency_s
                + attention_dp_overhead(arch, sh.dp_attn, o))
    # the activations the non-GEMM kernels move: per token, so a chunk's share is the request's own
    t_act = S * activation_bytes(arch, tp, o) * L / bw
    ttft = (np.maximum(compute, comm) if o.overlap_comm else compute + comm) + overhead + t_act
    if host_bound(o):     # the host-bound floor of the prefill step (section 4)
        ttft = np.maximum(ttft, host_time(o, arch, 1.0, S))
    ttft = ttft + o.serving_overhead_s      # the serving path outside the engine's steps
    # Under load, prefills run in chunks of max_batched_tokens: a request's share of a chunk
    # pays its own FLOPs and collectives but only its share of the weight reads and of the
    # per-step overheads (section 4).
    share = S / np.maximum(float(o.max_batched_tokens), S)
    busy_compute = smax(t_flops, t_bytes * share, k)
    busy = (np.maximum(busy_compute, comm) if o.overlap_comm else busy_compute + comm) + overhead * share + t_act
    return dict(ttft=ttft, ttft_compute=compute, ttft_comm=comm, prefill_flops=flops, prefill_busy=busy)



def regime_shares(ev: Evaluation, j: int) -> dict[str, float]:
    """Each term's own time / TPOT for configuration ``j`` (section 4: they overlap, so they
    may add up past 1); the one home of the shares' names."""
    return {"weights": float(ev.share_weights[j]), "kv_cache": float(ev.share_kv[j]),
            "activations": float(ev.share_activations[j]), "compute": float(ev.share_compute[j]),
            "communication": float(ev.share_comm[j]), "overhead": float(ev.share_overhead[j])}


def regime_of(shares: dict[str, float]) -> str:
    """Name the term that dominates the decode step (shares of TPOT from ``evaluate``)."""
    groups = {
        "bandwidth-bound": shares["weights"] + shares["kv_cache"] + shares.get("activations", 0.0),
        "compute-bound": shares["compute"],
        "communication-bound": shares["communication"],
        "overhead-bound": shares["overhead"],
    }
    return max(groups, key=groups.get)  # type: ignore[arg-type]


def critical_batch(peak_flops: np.ndarray | float, bandwidth: np.ndarray | float,
                   bytes_per_weight: np.ndarray | float) -> np.ndarray | float:
    """Batch at which a decode GEMM turns compute-bound: 2B FLOPs per weight of b_w bytes
    take as long as reading it, B_crit = F * b_w / (2 * BW) (section 4)."""
    return peak_flops * bytes_per_weight / (2.0 * bandwidth)


def minimum_gpus(ev: Evaluation, o: Assumptions) -> np.ndarray:
    """Fewest GPUs whose usable memory holds the model, from an evaluation made at
    TP = PP = 1 (seed 002 rows 3-4; seed 004's rule of thumb). Weights, their activation
    allowance and the KV cache split across GPUs; the framework reserve and the activations
    of one forward pass are paid on every GPU."""
    allowance = o.activation_allowance_of_weights * ev.weights_bytes
    shared = ev.weights_bytes + allowance + ev.kv_cache_bytes
    room = ev.usable_bytes - ev.reserve_bytes - (ev.activation_bytes - allowance)
    safe_room = np.where(room > 0, room, 1.0)
    return np.where(room > 0, np.ceil(shared / safe_room - 1e-9), np.inf)
