"""Change against the fleet running today (objective change, docs/fleet.md), in GPUs, per slot:

    change_s = sum_{c in current(s)} G_c d_c + sum_{j in s, config not current} G_j y_j + R_s
    d_c >= sum_{j in c} y_j - N_c,   d_c >= N_c - sum_{j in c} y_j      (d_c integer >= 0)

A configuration run today with N_c replicas of G_c GPUs each costs a change of G_c per
replica added or removed (any batch level: the scheduler's batch is a flag, not a move);
every replica of another configuration is G_j GPUs started. R_s counts the GPUs of today's
deployments that no candidate matches any more (they must stop: the layout no longer meets
its targets, or is not searched)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from constraints import Formulation


def add(f: Formulation) -> None:
    c, m = f.cands, f.model
    if c.current is None:
        return
    cur = c.current
    for s in range(c.n_slots):
        rows = f.alive_in(s)
        name = f.scalar_name("change", s)
        running = [r for r in _running(f) if r[0] == s]
        gone = float(sum(g * n for _, g, n, matched in running if not matched))
        top = float(np.sum(c.ev.gpus[rows] * c.replica_cap[rows])) + sum(g * n for _, g, n, _ in running) + 1.0
        f.scalars[name] = m.var(name, 0.0, top, integer=True, dimension="count")
        coeffs: dict[int, float] = {f.scalars[name]: -1.0}
        new = rows[cur[rows] == 0]
        for j in new:
            coeffs[int(f.y[j])] = float(c.ev.gpus[j])
        kept = rows[cur[rows] > 0]
        for cfg in sorted(set(c.config[kept].tolist())):
            mine = kept[c.config[kept] == cfg]
            n, g = float(cur[mine[0]]), float(c.ev.gpus[mine[0]])
            label = c.label(int(mine[0]), batch=False)
            d = m.var(f"moved[{label}]", 0.0, max(n, float(c.replica_cap[mine].sum())), integer=True,
                      dimension="count")
            ys = {int(f.y[j]): 1.0 for j in mine}
            m.row(f"change.added[{label}]", "change", {**ys, d: -1.0}, "<=", n, "count")
            m.row(f"change.removed[{label}]", "change", {**{k: -v for k, v in ys.items()}, d: -1.0}, "<=", -n,
                  "count")
            coeffs[d] = g
        m.row(f.scalar_name("change.definition", s), "change", coeffs, "==", -gone, "count")


def _running(f: Formulation) -> list[tuple[int, float, float, bool]]:
    """(slot, GPUs per replica, replicas, matched by an alive candidate) per running
    configuration of the table, and per deployment no candidate matches (from the problem's
    raw list, kept on the candidate table)."""
    c = f.cands
    out = []
    alive = np.zeros(len(c), dtype=bool)
    alive[f.alive] = True
    assert c.current is not None
    for group in c.config_groups():
        if c.current[group[0]] > 0:
            out.append((int(c.slot[group[0]]), float(c.ev.gpus[group[0]]), float(c.current[group[0]]),
                        bool(alive[group].any())))
    out += [(s, g, n, False) for s, g, n in c.unmatched]
    return out
