"""Inventory and node packing (GPU counts):

    sum_{j on g} GPUs_j y_j <= inventory_g                 per GPU type with an inventory
    sum_j GPUs_j y_j <= max_gpus
    sum_{j on g} S_j y_j <= per_node_g n_g,  sum_g n_g <= max_nodes    (n_g integer nodes)

S_j is the GPU slots a replica takes: its GPUs when it fits in a node (replicas share
nodes), whole nodes (ceil(GPUs/per_node) x per_node) when it spans several."""

from __future__ import annotations

import numpy as np


def add(f) -> None:
    p, c, m = f.problem, f.cands, f.model
    ev, gpu = c.ev, c.configs.gpu
    lim, s = p.spec.limits, p.spec.search
    for gid, count in sorted(lim.inventory.items()):
        if gid not in p.table.ids:
            continue
        mine = f.alive[gpu[f.alive] == p.table.ids.index(gid)]
        m.row(f"inventory[gpu={gid}]", "inventory", {int(f.y[j]): float(ev.gpus[j]) for j in mine}, "<=",
              float(count), "count")
    if s.max_gpus is not None:
        m.row("max_gpus", "inventory", {int(f.y[j]): float(ev.gpus[j]) for j in f.alive}, "<=",
              float(s.max_gpus), "count")
    if s.max_nodes is not None:
        per_node = p.table.per_node[gpu]
        slots = np.where(ev.gpus <= per_node, ev.gpus, np.ceil(ev.gpus / per_node) * per_node)
        node_vars = {}
        for g in sorted(set(gpu[f.alive].tolist())):
            gid = p.table.ids[g]
            node_vars[g] = m.var(f"nodes[gpu={gid}]", 0, float(s.max_nodes), integer=True, dimension="count")
            mine = f.alive[gpu[f.alive] == g]
            coeffs = {int(f.y[j]): float(slots[j]) for j in mine}
            coeffs[node_vars[g]] = -float(p.table.per_node[g])
            m.row(f"node_packing[gpu={gid}]", "inventory", coeffs, "<=", 0.0, "count")
        m.row("max_nodes", "inventory", {v: 1.0 for v in node_vars.values()}, "<=", float(s.max_nodes), "count")
