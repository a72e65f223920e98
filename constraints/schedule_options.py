"""A workload's choices in one period of a schedule, enumerated (docs/workloads.md section 8,
"Options"): with at most K = 2 configurations per workload, each way to serve the period's
demand D with one row (its N replicas, the fewest that cover D) or two rows (r1 replicas of
one, 1 <= r1 < what it needs alone, and the fewest r2 of the other that cover the rest),
each within its replica bound. A period's cost, its holding and every limit read a choice
only through the GPUs of each type it runs (serving and spot spares) and its watts, so only
the choices no other beats on those (watts only under a power cap) are kept: the program
then picks one option per period and workload, its replicas fixed, instead of integer
replicas and their choice binaries per row. Same optimum: every choice of the replica model
is met or beaten by a kept option."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.candidates.table import Candidates

MAX_SPLIT = 2
"""Configurations per workload the options enumerate; a larger K keeps the replica model."""
MAX_PAIRS = 2_000_000
"""Pairs (row, r1, other row) enumerated per workload and period at most; beyond, that
workload keeps the replica model in that period."""
COVER_TOLERANCE = 1e-9
"""Replicas cover the demand when their share of it reaches 1 within this (the float error
of ceil(D / CAP) x CAP / D)."""


@dataclass(frozen=True)
class Option:
    picks: tuple[tuple[int, int], ...]   # (row, replicas), one or two rows
    gpus: np.ndarray                     # per GPU type: GPUs running (serving replicas and spot spares)
    watts: float


def spares(view: Candidates) -> np.ndarray:
    """Spare replicas per row of a period's table (0 off spot; NaN rows have no replicas)."""
    return np.nan_to_num(view.spares) if len(view.spares) else np.zeros(len(view))


def options(view: Candidates, mine: np.ndarray, split: int, power: bool) -> list[Option] | None:
    """The kept options of one workload (rows ``mine`` of period table ``view``) with at
    most ``split`` (1 or 2) configurations, in a stable order; None when the pairs to
    enumerate are more than MAX_PAIRS (the replica model then serves)."""
    if not len(mine):
        return []
    demand = view.slots[int(view.slot[mine[0]])].demand
    assert demand is not None
    k = spares(view)
    if not power:
        mine = _strongest(view, mine, k)
    mine = mine[view.capacity[mine] > 0]           # a row without capacity serves nothing (screened out before)
    share = np.minimum(view.capacity[mine] / float(demand.value), 1.0)
    bound = view.replica_cap[mine]
    alone = np.maximum(np.ceil((1.0 - COVER_TOLERANCE) / share), 1.0)
    a_idx, r1 = _singles(alone, bound)
    b_idx, r2 = np.full(len(a_idx), -1), np.zeros(len(a_idx))
    if split >= 2 and len(mine) > 1:
        # without a power cap a part of a pair on type g runs fewer GPUs of g than the leanest
        # single on g, or that single beats it
        gpu, gpus = view.configs.gpu[mine], view.ev.gpus[mine]
        lean = np.full(len(view.gpu_ids), np.inf)
        if not power:
            np.minimum.at(lean, gpu[a_idx], gpus[a_idx] * (r1 + k[mine][a_idx]))
        most = np.minimum(bound, np.floor((lean[gpu] - 1e-9) / gpus) - k[mine])
        if float(np.maximum(np.minimum(alone - 1.0, most), 0.0).sum()) * len(mine) > MAX_PAIRS:
            return None
        pa, pr1, pb, pr2 = _pairs(share, alone, most)
        a_idx, r1 = np.concatenate([a_idx, pa]), np.concatenate([r1, pr1])
        b_idx, r2 = np.concatenate([b_idx, pb]), np.concatenate([r2, pr2])
    if not len(a_idx):
        return []
    k, gpu, gpus = k[mine], view.configs.gpu[mine], view.ev.gpus[mine]
    w = np.nan_to_num(view.ev.power_w[mine])
    n_types = len(view.gpu_ids)
    two = b_idx >= 0
    bb = np.where(two, b_idx, 0)
    run_a, run_b = r1 + k[a_idx], np.where(two, r2 + k[bb], 0.0)
    vec = np.zeros((len(a_idx), n_types))
    np.add.at(vec, (np.arange(len(a_idx)), gpu[a_idx]), gpus[a_idx] * run_a)
    np.add.at(vec, (np.arange(len(a_idx)), gpu[bb]), gpus[bb] * run_b)
    watts = w[a_idx] * run_a + w[bb] * run_b
    served = share[a_idx] * r1 + np.where(two, share[bb] * r2, 0.0)
    keep = _front(vec, watts if power else np.zeros(len(watts)), served, two)
    out = []
    for i in keep:
        picks = [(int(mine[a_idx[i]]), int(r1[i]))] + ([(int(mine[bb[i]]), int(r2[i]))] if two[i] else [])
        out.append(Option(tuple(sorted(picks)), vec[i], float(watts[i])))
    return out


def _strongest(view: Candidates, mine: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Without a power cap, of the rows with the same GPU type, GPUs per replica and spares,
    the one with the most capacity (the first of equals): alone it needs no more replicas, in
    a pair it leaves no more to the other, and GPUs are all the choice reaches."""
    key = np.column_stack([view.configs.gpu[mine], view.ev.gpus[mine], k[mine]])
    order = np.lexsort((mine, -view.capacity[mine]))
    _, first = np.unique(key[order], axis=0, return_index=True)
    return np.sort(mine[order[first]])


def _singles(alone: np.ndarray, bound: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows that cover the demand alone within their bound, at the replicas they need."""
    ok = np.flatnonzero(alone <= bound)
    return ok, alone[ok]


def _pairs(share: np.ndarray, alone: np.ndarray, bound: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(a, r1, b, r2): r1 of row a, 1 <= r1 < what a needs alone (and within ``bound``), and
    the fewest r2 of row b != a that cover the rest, within b's ``bound``."""
    top = np.minimum(alone - 1.0, bound).astype(np.int64)
    a = np.repeat(np.arange(len(share)), np.maximum(top, 0))
    if not len(a):
        none = np.zeros(0, dtype=np.int64)
        return none, np.zeros(0), none, np.zeros(0)
    r1 = np.concatenate([np.arange(1, t + 1) for t in top if t > 0]).astype(float)
    rest = 1.0 - COVER_TOLERANCE - r1 * share[a]
    r2 = np.maximum(np.ceil(rest[:, None] / share[None, :]), 1.0)
    ok = (r2 <= bound[None, :]) & (a[:, None] != np.arange(len(share))[None, :])
    i, b = np.nonzero(ok)
    return a[i], r1[i], b, r2[i, b]


def _front(vec: np.ndarray, watts: np.ndarray, served: np.ndarray, two: np.ndarray) -> list[int]:
    """Indices of the options no other beats: no more GPUs of any type and no more watts,
    fewer of one; of equal ones the first in order of one configuration before two, most
    demand served, then position."""
    order = np.lexsort((np.arange(len(served)), -served, two, watts))
    vec, watts, order = vec[order], watts[order], order
    _, first = np.unique(np.column_stack([vec, watts]), axis=0, return_index=True)
    cand = np.sort(first)              # per distinct (GPUs, watts): its best, in sorted order
    # a cheap pass first: by total GPUs, a point beaten by one of fewer total GPUs is dropped
    tot = vec[cand].sum(axis=1)
    cand = cand[np.lexsort((watts[cand], tot))]
    kept: list[int] = []
    kv = np.zeros((0, vec.shape[1]))
    kw = np.zeros(0)
    for i in cand:
        if len(kept) and bool(np.any(np.all(kv <= vec[i], axis=1) & (kw <= watts[i]))):
            continue
        kept.append(int(i))
        kv = np.vstack([kv, vec[i]])
        kw = np.append(kw, watts[i])
    return sorted(int(order[i]) for i in kept)
