"""Memory per GPU (docs/model.md section 3): weights, KV cache, activations of the largest
forward pass, the framework's reserve, what the engine may use, and the largest batch that
fits. Units: bytes."""

from __future__ import annotations

import numpy as np

from planner.physics.attention import kv_bytes_per_sequence
from planner.physics.options import Assumptions
from planner.physics.quant import ACTIVATION_BYTES
from planner.physics.space import Configs, GpuTable
from planner.physics.terms import Arch, Shard


def memory(arch: Arch, o: Assumptions, table: GpuTable, c: Configs, sh: Shard) -> dict[str, np.ndarray]:
    """Section 3: per-GPU memory by component, and the largest batch that fits."""
    p = arch.params
    tp, pp, group = c.tp, c.pp, sh.group
    gpus = group * pp
    b_w, b_x, b_e, b_kv, kv_frac, kv_frac_w = sh.b_w, sh.b_x, sh.b_e, sh.b_kv, sh.kv_frac, sh.kv_frac_w
    L_all = p.dense_layers + p.moe_layers
    kvproj = L_all * p.kv_projection_per_layer
    layers = (p.layers_always - kvproj) / tp + kvproj * kv_frac_w
    # EPLB's redundant replicas (section 3): R more experts per MoE layer over the EP group
    redundant = np.where(c.ep > 1, o.redundant_experts * p.moe_layers * p.expert_per_layer, 0.0)
    experts = (p.experts_total + redundant) / group
    emb = np.where(pp == 1, p.embeddings, max(p.embedding, p.lm_head or p.embedding))
    weights = (layers * b_w + experts * b_x) / pp + emb * b_e / tp
    context = c.input_tokens + c.output_tokens
    kv_per_seq = kv_bytes_per_sequence(arch.attention, context, b_kv) * kv_frac
    kv = c.batch * kv_per_seq
    g = 3.0 if arch.gated else 2.0
    width = 2.0 * arch.hidden + (arch.q_width + arch.kv_elements) / tp + g * arch.mlp_width / tp
    act = o.max_batched_tokens * ACTIVATION_BYTES * width + o.activation_allowance_of_weights * weights
    reserve = o.framework_reserve_bytes + np.where(gpus > 1, o.nccl_reserve_bytes, 0.0)
    capacity = table.memory[c.gpu]
    if o.kv_budget == "free":   # TensorRT-LLM: a fraction of the memory left after everything but KV
        non_kv = weights + act + reserve
        usable = non_kv + o.memory_utilization * np.maximum(capacity - non_kv, 0.0)
        usable = np.where(non_kv > capacity, capacity, usable)
    else:                       # vLLM: a fraction of all memory
        usable = o.memory_utilization * capacity
    total = weights + kv + act + reserve
    room = usable - weights - act - reserve
    max_batch = np.where(room > 0, np.floor(room / kv_per_seq), 0.0)
    return dict(
        weights_bytes=weights, kv_cache_bytes=kv, activation_bytes=act, reserve_bytes=reserve,
        total_bytes=total, usable_bytes=usable, capacity_bytes=table.memory[c.gpu],
        kv_bytes_per_sequence=kv_per_seq, max_batch=max_batch, fits=total <= usable,
    )
