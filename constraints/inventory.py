"""Inventory and node packing (GPU counts), shared by every slot:

    sum_{j on g} GPUs_j y_j <= inventory_g                 per GPU type with an inventory
    sum_j GPUs_j (y_j + k_j x_j) <= max_gpus
    sum_{j on g} S_j (y_j + k_j x_j) <= per_node_g n_g,  sum_g n_g <= max_nodes    (n_g integer nodes)

S_j is the GPU slots a replica takes (planner/candidates.node_slots): its GPUs when it fits
in a node (replicas share nodes), whole nodes when it spans several. k_j: the spare replicas a
spot deployment of row j carries (planner/pricing.py SpareRule), physical GPUs that run, are
paid and take node slots, though they serve nothing: on the row's choice binary x_j, as in the
budget. They are not in a type's inventory: a spot offer is its own rented entry ``gpu@spot``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from constraints import Formulation


def with_spares(f: Formulation, rows: np.ndarray, per_replica: np.ndarray) -> dict[int, float]:
    """Coefficients ``per_replica[j]`` on the replicas y_j of ``rows`` plus, for a spot row
    with spares, ``k_j per_replica[j]`` on its choice binary x_j (what its spares add whatever
    the count: constraints/choice.py gives every such row a choice binary)."""
    coeffs = {int(f.y[j]): float(per_replica[j]) for j in rows}
    if len(f.cands.spares):
        for j in rows[f.cands.spares[rows] > 0]:
            coeffs[int(f.x[j])] = coeffs.get(int(f.x[j]), 0.0) + float(f.cands.spares[j] * per_replica[j])
    return coeffs


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
        m.row("max_gpus", "inventory", with_spares(f, f.alive, ev.gpus), "<=",
              float(lim.max_gpus), "count")
    if lim.max_nodes is not None:
        node_vars = {}
        for g in sorted(set(gpu[f.alive].tolist())):
            gid = c.gpu_ids[g]
            node_vars[g] = f.nodes[g] = m.var(f"nodes[gpu={gid}]", 0, float(lim.max_nodes), integer=True,
                                              dimension="count")
            mine = f.alive[gpu[f.alive] == g]
            coeffs = with_spares(f, mine, c.slots_per_replica)
            coeffs[node_vars[g]] = -float(c.per_node[mine[0]])
            m.row(f"node_packing[gpu={gid}]", "inventory", coeffs, "<=", 0.0, "count")
        m.row("max_nodes", "inventory", {v: 1.0 for v in node_vars.values()}, "<=", float(lim.max_nodes), "count")
