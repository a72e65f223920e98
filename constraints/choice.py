"""Choice: exactly one deployment (configuration and batch), replicated y times.

x_j in {0,1} picks candidate j; y_j in {0..R_j} counts its replicas, linked by
x_j <= y_j <= R_j x_j. Without a demand or a throughput objective one replica is the
plan and y_j is x_j itself."""

from __future__ import annotations

import numpy as np


def add(f) -> None:
    p, c, m = f.problem, f.cands, f.model
    n = len(c)
    f.replicas = p.demand_tokens_per_s is not None or p.spec.objective == "throughput"
    f.x = np.array([m.var(f"x[{c.label(j, p.table)}]", 0, 1, integer=True) for j in range(n)], dtype=np.int64)


def add_replicas(f) -> None:
    """After screening: the one-deployment row and, if needed, replica counts for the survivors."""
    p, c, m = f.problem, f.cands, f.model
    m.row("one_deployment", "choice", {int(f.x[j]): 1.0 for j in f.alive}, "==", 1.0, "count")
    if not f.replicas:
        f.y = f.x
        return
    caps = c.replica_cap
    f.y = np.full(len(c), -1, dtype=np.int64)
    for j in f.alive:
        label = c.label(int(j), p.table)
        xi = int(f.x[j])
        yi = f.y[j] = m.var(f"replicas[{label}]", 0, caps[j], integer=True)
        m.row(f"replicas_at_least_one[{label}]", "choice", {xi: 1.0, yi: -1.0}, "<=", 0.0, "count")
        m.row(f"replicas_only_if_chosen[{label}]", "choice", {yi: 1.0, xi: -float(caps[j])}, "<=", 0.0, "count")
