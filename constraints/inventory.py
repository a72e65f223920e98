"""Inventory and node packing (GPU counts), shared by every slot:

    sum_{j on g} GPUs_j y_j <= inventory_g                 per GPU type with an inventory
    sum_j GPUs_j y_j <= max_gpus
    sum_{j on g} S_j y_j <= per_node_g n_g,  sum_g n_g <= max_nodes    (n_g integer nodes)

S_j is the GPU slots a replica takes (planner/candidates.node_slots): its GPUs when it fits
in a node (replicas share nodes), whole nodes when it spans several."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from constraints import Formulation


def add(f: Formulation) -> None:
    c, m = f.cands, f.model
    ev, gpu, lim = c.ev, c.configs.gpu, c.limits
    for gid, count in sorted(lim.inventory.items()):
        if gid not in c.gpu_ids:
            continue
        mine = f.alive[gpu[f.alive] == c.gpu_ids.index(gid)]
        m.row(f"inventory[gpu={gid}]", "inventory", {int(f.y[j]): float(ev.gpus[j]) for j in mine}, "<=",
              float(count), "count")
    if lim.max_gpus is not None:
        m.row("max_gpus", "inventory", {int(f.y[j]): float(ev.gpus[j]) for j in f.alive}, "<=",
              float(lim.max_gpus), "count")
    if lim.max_nodes is not None:
        node_vars = {}
        for g in sorted(set(gpu[f.alive].tolist())):
            gid = c.gpu_ids[g]
            node_vars[g] = f.nodes[g] = m.var(f"nodes[gpu={gid}]", 0, float(lim.max_nodes), integer=True,
                                              dimension="count")
            mine = f.alive[gpu[f.alive] == g]
            coeffs = {int(f.y[j]): float(c.slots_per_replica[j]) for j in mine}
            coeffs[node_vars[g]] = -float(c.per_node[mine[0]])
            m.row(f"node_packing[gpu={gid}]", "inventory", coeffs, "<=", 0.0, "count")
        m.row("max_nodes", "inventory", {v: 1.0 for v in node_vars.values()}, "<=", float(lim.max_nodes), "count")
