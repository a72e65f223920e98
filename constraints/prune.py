"""Dominance pruning: drop, before the solver sees them, the candidates that another one of
the same slot, GPU type and role (and, for a pool row, KV format) beats or ties on everything the model can ask of it
(docs/formulation.md section 3b).

Row k dominates row j when, in every criterion below (each "smaller is better"), k is no
worse, and k is strictly better in one or, all equal, comes first:

- the objective: its coefficients on x and y (and, for a TPOT/TTFT objective, the value of
  the slot's latency scalar that the row alone sets, constraints.latency.per_row), and
  likewise every earlier lexicographic phase the model keeps at its optimum (``bounds``);
- every limit that is active: GPUs (max_gpus, inventory), GPU slots (max_nodes), $/hour
  (budget), watts (power cap);
- the replica variable's domain (larger is better) and the capacity at SLO (larger is
  better) when replicas are free.

Two cases of replicas. With a demand in the slot and an objective other than throughput,
the replica domain is [1, needed] and the demand row forces y_j = needed: every quantity is
compared as a plan total (per replica x needed) and a row whose replicas cannot meet the
demand is dropped outright. Otherwise y is free (or is x): the same y on row k is feasible
wherever it is on row j, so per-replica figures are compared.

Ranking. The solve loop cuts whole configurations (all batch levels of a layout) after each
plan, so a row is dropped only if a row of its own configuration dominates it, or rows of at
least ``ranks`` other configurations do: whatever the first ``ranks`` - 1 cuts remove, a
dominating row survives, and by transitivity an optimal row always stays in the model.

Phases. The lexicographic phases of one table (planner/plan/solve.py) prune it again and
again, each with the criteria of the one before plus its own objective, on the rows an earlier
phase's bound left. A phase reuses the last phase's pruning (``Memo``, for one answer) where
that is sound, chunk by chunk, and the same rows go as in a fresh pruning: when every row
compared now was compared then and every criterion then is one now (the same values), a row
kept then with no row equal to it on every criterion then is kept now (a row dominating it now
would have dominated it then); a row dropped then whose recorded dominator is still compared
and dominates it now goes at once; only the rest is compared, and only with the rows of the
first kind and each other (a row's undominated dominator is of neither the second kind nor
dropped). Otherwise the chunk is pruned afresh."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from constraints import latency, objective
from planner.candidates.objectives import OBJECTIVES, Terms
from planner.physics.space import KV_NAMES

if TYPE_CHECKING:
    from constraints import Formulation
    from planner.candidates.table import Candidates

CHUNK = 256
"""Dominated rows compared per block (memory: group size x CHUNK x criteria booleans)."""


def criteria(f: Formulation, rows: np.ndarray, terms: dict[str, Terms] | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """(criteria of candidates ``rows``, shape (len(rows), d), smaller is better; which of
    them cannot meet their slot's demand). NaN criteria never dominate nor are dominated.
    Each figure is row by row: the same for a row whatever other rows are asked with it.
    ``terms``: the objectives' terms by name (``objective_terms``), computed once per table."""
    return _criteria(f.cands, f.replicas, rows, terms)


def _criteria(c: Candidates, replicas: bool, rows: np.ndarray, terms: dict[str, Terms] | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """``criteria`` of table ``c`` as a model with (or without) replica variables reads it."""
    terms = terms if terms is not None else objective_terms(c)
    obj = OBJECTIVES[c.objective]
    t = terms[c.objective]
    sign = -1.0 if obj.sense == "max" else 1.0
    n = len(rows)
    has_demand, cap, gpus = c.has_demand[rows], c.replica_cap[rows], c.ev.gpus[rows]
    fixed = has_demand & replicas & (c.objective != "throughput") & (not c.split)
    reps = np.where(fixed, cap, 1.0)
    cols = []
    ox, oy = sign * t.x[rows], sign * t.y[rows]
    if not replicas:                        # y is x: one coefficient
        cols.append(ox + oy)
    else:
        cols += [np.where(fixed, ox + oy * reps, ox), np.where(fixed, 0.0, oy)]
    kept = {c.objective, *(name for name, _ in c.bounds)}
    if t.scalars:
        tpot, ttft = latency.per_row(c)
        for name in t.scalars:
            if name not in ("served", "change"):       # served: the capacity column below compares it
                cols.append({"tpot": tpot, "ttft": ttft}[name][rows] if name in ("tpot", "ttft")
                            else np.full(n, np.nan))
    for name, _ in c.bounds:       # an earlier phase kept at its optimum: its value is a criterion too
        b = OBJECTIVES[name]
        bt = terms[name]
        bsign = -1.0 if b.sense == "max" else 1.0
        if bt.scalars:
            if set(bt.scalars) <= {"tpot", "ttft"}:
                tpot, ttft = latency.per_row(c)
                cols += [bsign * {"tpot": tpot, "ttft": ttft}[name][rows] for name in bt.scalars]
            continue                       # served: the capacity column; change: the GPUs column below
        bx, by = bsign * bt.x[rows], bsign * np.nan_to_num(bt.y[rows], nan=0.0)
        cols += [np.where(fixed, bx + by * reps, bx), np.where(fixed, 0.0, by)] if replicas else [bx + by]
    if "change" in kept:     # GPUs started per replica; rows run today are never dropped (pruned())
        cols.append(gpus * reps)
    lim = c.limits
    if lim.max_gpus is not None or lim.inventory:
        cols.append(gpus * reps)
    if lim.max_nodes is not None:
        cols.append(c.slots_per_replica[rows] * reps)
    if lim.budget_usd_per_hour is not None:
        cols.append(np.nan_to_num(c.cost_per_hour[rows], nan=0.0) * reps)
        if (c.spare_cost > 0).any():       # a spot deployment's spares: paid once, whatever its replicas
            cols.append(np.nan_to_num(c.spare_cost[rows], nan=0.0))
    if lim.power_cap_w is not None:
        cols.append(c.ev.power_w[rows] * reps)
    capacity = c.capacity[rows]
    if replicas:                             # free replicas: a wider domain, more capacity per replica
        cols.append(np.where(fixed, 0.0, -cap))
        cols.append(np.where(fixed | ~has_demand, 0.0, -capacity))
    with np.errstate(invalid="ignore"):
        short = has_demand & ~(capacity * cap >= c.demand[rows]) & (not c.split)
        short |= c.replicas_allowed[rows] < 1     # one replica already breaks a limit on its own
    return np.stack(cols, axis=1).astype(float, copy=False), short


SOUND_ROWS = 50_000
"""Rows whose criteria under the last phase are held at once while checking that its pruning
may be reused (``_sound``)."""

CHUNK_ROWS = 200_000
"""Candidates whose criteria are held at once (whole groups: a group never spans two chunks);
a fleet of a thousand workloads has three million (memory: rows x criteria x 8 bytes, and the
ranks' sorts)."""


@dataclass
class Memo:
    """A table's last pruning for one answer, as the next phase reuses it (``pruned``): the
    phase's table and whether its model had replica variables (its criteria are computed again,
    a chunk at a time, rather than held: a thousand workloads have millions of rows), and per
    row of the table: compared (alive, able to meet its demand, no NaN criterion), a compared
    row that dominated it (-1: none, it was kept), and, for a kept row, whether another compared
    row was equal to it on every criterion."""

    view: Candidates
    replicas: bool
    compared: np.ndarray
    dominator: np.ndarray
    twin: np.ndarray

    @classmethod
    def empty(cls, c: Candidates, replicas: bool) -> Memo:
        n = len(c)
        index = np.int32 if n < 2**31 else np.int64
        return cls(c, replicas, np.zeros(n, dtype=bool), np.full(n, -1, dtype=index), np.zeros(n, dtype=bool))


def pruned(f: Formulation, ranks: int) -> np.ndarray:
    """Mask over candidates: the alive rows dropped (dominated, or unable to meet the demand).
    Groups (slot, GPU type, role) are independent: they are compared a chunk of whole groups
    at a time, each chunk's criteria computed for its rows only. For one answer, a table whose
    phases share their work (``constraints.objective.share_terms``) keeps its last pruning
    (``Memo``) and reuses it where sound: the same rows dropped as afresh."""
    c = f.cands
    out = np.zeros(len(c), dtype=bool)
    alive = f.alive
    store: dict[str, Memo] | None = c.__dict__.get("_pruning") if ranks == 1 else None
    last = store.get("memo") if store is not None else None
    if last is not None and (last.view.slot is not c.slot or len(last.compared) != len(c)):
        last = None                   # another table's
    memo = Memo.empty(c, f.replicas) if store is not None else None
    if len(alive):
        key = c.slot[alive] * (len(c.gpu_ids) + 1) + c.configs.gpu[alive]
        if c.has_pools:          # a pool row competes only with rows of its own role and KV format
            pool = c.role[alive] > 0
            part = np.where(pool, 1 + c.role[alive] * (len(KV_NAMES) + 1) + c.configs.kv[alive], 0)
            key = key * (3 * (len(KV_NAMES) + 1) + 1) + part
        order = np.lexsort((c.config[alive], key))
        rows, key = alive[order], key[order]
        starts = np.concatenate([[0], np.flatnonzero(np.diff(key)) + 1])
        at = np.searchsorted(starts, np.arange(0, len(rows), CHUNK_ROWS))
        cuts = np.unique(np.concatenate([starts[at[at < len(starts)]], [len(rows)]]))
        terms = objective_terms(c)
        for lo, hi in zip(cuts[:-1], cuts[1:]):
            _prune_groups(f, rows[lo:hi], key[lo:hi], ranks, out, terms, last, memo)
    if store is not None and memo is not None:
        store["memo"] = memo
    if c.current is not None:
        out &= c.current == 0         # a configuration run today carries its own change term
    return out


def objective_terms(c: Candidates) -> dict[str, Terms]:
    """The terms of the table's objective and of every earlier phase it keeps, by name."""
    return {name: objective.terms(c, name) for name in (c.objective, *(n for n, _ in c.bounds))}


def _prune_groups(f: Formulation, rows: np.ndarray, key: np.ndarray, ranks: int, out: np.ndarray,
                  terms: dict[str, Terms], last: Memo | None = None, memo: Memo | None = None) -> None:
    """``pruned`` on whole groups: ``rows`` sorted by group ``key``, then configuration; the
    dropped ones marked in ``out``. For one answer: ``last``, the table's last pruning to
    reuse where sound; ``memo``, this one, recorded for the next."""
    c = f.cands
    crit, short = criteria(f, rows, terms)
    out[rows[short]] = True
    crit, rows, key = crit[~short], rows[~short], key[~short]
    if ranks != 1:
        bounds = np.flatnonzero(np.diff(key)) + 1
        at = np.concatenate([[0], bounds, [len(rows)]])
        for lo, hi in zip(at[:-1], at[1:]):
            group = rows[lo:hi]
            out[group[_dominated(crit[lo:hi], c.config[group], ranks)]] = True
        return
    compared = ~np.isnan(crit).any(axis=1)
    by = np.full(len(rows), -1, dtype=np.int64)        # a dominating row, by position in ``rows``
    known = np.zeros(len(rows), dtype=bool)            # kept, as the last pruning proves
    if last is not None and _sound(last, crit, rows, compared):
        known = compared & (last.dominator[rows] < 0) & ~last.twin[rows]
        by = _carried(last, crit, rows, key, compared)
    test = compared & ~known & (by < 0)
    if test.any():
        pool = np.flatnonzero(compared & (known | test))
        local = _group_ranks(*((crit, key) if len(pool) == len(rows) else (crit[pool], key[pool])))[0]
        edges = np.concatenate([[0], np.flatnonzero(np.diff(key[pool])) + 1, [len(pool)]])
        for lo, hi in zip(edges[:-1], edges[1:]):
            if test[pool[lo:hi]].any():
                found = _sweep(local[lo:hi], test[pool[lo:hi]])
                hit = found >= 0
                by[pool[lo:hi][hit]] = pool[lo:hi][found[hit]]
    out[rows[by >= 0]] = True
    if memo is not None:
        memo.compared[rows] = compared
        memo.dominator[rows] = np.where(by >= 0, rows[np.maximum(by, 0)], -1)
        memo.twin[rows] = _twins(crit, by)


def _sound(last: Memo, crit: np.ndarray, rows: np.ndarray, compared: np.ndarray) -> bool:
    """The last pruning is sound to reuse on these rows: each row compared now was compared
    then, and each criterion then has the same values as one now on those rows."""
    now = rows[compared]
    if not last.compared[now].all():
        return False
    mine = crit if compared.all() else crit[compared]
    terms = objective_terms(last.view)
    match: np.ndarray | None = None     # [i, k]: criterion i then equals criterion k now, on every row so far
    for a in range(0, len(now), SOUND_ROWS):       # a block of rows at a time: no second chunk's criteria held
        then = _criteria(last.view, last.replicas, now[a:a + SOUND_ROWS], terms)[0]
        block = mine[a:a + SOUND_ROWS]
        match = np.array([[(match is None or bool(match[i, k])) and _same(then[:, i], block[:, k])
                           for k in range(block.shape[1])] for i in range(then.shape[1])], dtype=bool)
        if not match.any(axis=1).all():
            return False
    return True


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal arrays, a few values compared first (most pairs of criteria differ there)."""
    return np.array_equal(a[:16], b[:16]) and np.array_equal(a, b)


def _carried(last: Memo, crit: np.ndarray, rows: np.ndarray, key: np.ndarray, compared: np.ndarray
             ) -> np.ndarray:
    """Per row (position in ``rows``): the row that dominated it in the last pruning, where that
    row is still compared and dominates it now too (checked on the criteria now), else -1."""
    by = np.full(len(rows), -1, dtype=np.int64)
    j = np.flatnonzero(compared & (last.dominator[rows] >= 0))
    then = last.dominator[rows[j]]
    by_id = np.argsort(rows)
    k = by_id[np.minimum(np.searchsorted(rows, then, sorter=by_id), len(rows) - 1)]
    here = (rows[k] == then) & compared[k] & (key[k] == key[j])     # still compared, in its group
    j, k = j[here], k[here]
    no_worse, better = np.ones(len(j), dtype=bool), k < j
    for col in crit.T:             # one criterion at a time: no (rows x criteria) copies
        a, b = col[k], col[j]
        no_worse &= a <= b
        better |= a < b
    ok = no_worse & better
    by[j[ok]] = k[ok]
    return by


def _twins(crit: np.ndarray, by: np.ndarray) -> np.ndarray:
    """Per row: another compared row equals it on every criterion (read for kept rows only).
    A kept row's equals are dropped, each by a row equal to it (one strictly better would beat
    the kept row too), so following dominators from a row dropped by its equal ends at it."""
    tied = np.flatnonzero(by >= 0)
    equal = np.ones(len(tied), dtype=bool)
    for col in crit.T:
        equal &= col[by[tied]] == col[tied]
    tied = tied[equal]
    head = np.arange(len(by))
    head[tied] = by[tied]
    while True:                        # pointer doubling: each row to the end of its chain
        nxt = head[head]
        if np.array_equal(nxt, head):
            break
        head = nxt
    out = np.zeros(len(by), dtype=bool)
    out[head[tied]] = True
    return out


def _dominated(v: np.ndarray, cfg: np.ndarray, ranks: int) -> np.ndarray:
    """Rows of one group dropped as the module says, counting only dominating rows that are
    themselves kept (an alive dominator then survives any ``ranks`` - 1 cuts directly).

    Sort-filter: in lexicographic order of the criteria (ties by position) every dominator
    of a row comes before it, so each row is compared with the rows kept so far only: a
    block at a time against the kept set (vectorised), then the block's survivors in order
    against each other (one matrix, then sets of configurations)."""
    m = len(v)
    out = np.zeros(m, dtype=bool)
    if m < 2:
        return out
    if ranks == 1:
        return _dominated_once(*_group_ranks(v, np.zeros(m, dtype=np.int64)))
    order = np.lexsort(tuple(v[:, k] for k in range(v.shape[1] - 1, -1, -1)))
    kept = np.zeros(0, dtype=np.int64)
    for a in range(0, m, CHUNK):
        block = order[a:a + CHUNK]
        dom_k = _dominates(v, kept, block)
        same_k = cfg[kept][:, None] == cfg[block][None, :]
        own = (dom_k & same_k).any(axis=0)
        by_other = dom_k & ~same_k
        ids = np.sort(np.where(by_other, cfg[kept][:, None], -1), axis=0)
        first = np.vstack([np.ones((1, len(block)), dtype=bool), ids[1:] != ids[:-1]]) if len(kept) else ids >= 0
        drop = own | (((ids >= 0) & first).sum(axis=0) >= ranks)
        out[block[drop]] = True
        idx = np.nonzero(~drop)[0]
        rows = block[idx]
        other = [set(cfg[kept][by_other[:, i]].tolist()) if ranks > 1 else set() for i in idx]
        dom_s = _dominates(v, rows, rows)
        new: list[int] = []
        for i, j in enumerate(rows):
            beaten = own_cfgs = False
            configs = other[i]
            for k in new:
                if dom_s[k, i]:
                    if cfg[rows[k]] == cfg[j]:
                        own_cfgs = True
                        break
                    configs = configs | {int(cfg[rows[k]])}
            beaten = own_cfgs or len(configs) >= ranks
            if beaten:
                out[j] = True
            else:
                new.append(i)
        kept = np.concatenate([kept, rows[new]])
    return out


def _group_ranks(v: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(each criterion's dense rank among the rows of its group, ``key`` sorted; rows with a
    NaN criterion): the same comparisons within a group as the criteria themselves."""
    local = np.zeros(v.shape, dtype=np.int32)
    for k in range(v.shape[1]):
        values, rank = np.unique(v[:, k], return_inverse=True)     # by key, then value: one integer sort
        order = np.argsort(key * (len(values) + 1) + rank.ravel(), kind="stable")
        val, group = v[order, k], key[order]
        start = np.ones(len(order), dtype=bool)
        start[1:] = group[1:] != group[:-1]
        new = start.copy()
        new[1:] |= val[1:] != val[:-1]
        dense = np.cumsum(new)
        first = np.maximum.accumulate(np.where(start, np.arange(len(order)), 0))
        local[order, k] = dense - dense[first]
    return local, np.isnan(v).any(axis=1)


def _dominated_once(rank: np.ndarray, unknown: np.ndarray) -> np.ndarray:
    """``_dominated`` for one answer (``ranks`` 1), given each criterion's dense rank in the
    group and the rows with a NaN criterion (which neither dominate nor are dominated): a row
    goes when any row dominates it (``_sweep``)."""
    out = np.zeros(len(rank), dtype=bool)
    rows = np.flatnonzero(~unknown)
    out[rows[_sweep(rank[rows], np.ones(len(rows), dtype=bool)) >= 0]] = True
    return out


def _sweep(rank: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Per row of one group (each criterion's dense rank in it, no NaN): a row dominating it,
    by position, for the rows ``test`` marks that some row dominates (-1 otherwise); the
    other rows are known to be kept, and are compared with only as dominators.

    The same rule on fewer comparisons. A criterion constant over the rows, or ordering them
    as an earlier one does (a group's $/hour and GPUs on one GPU type), decides nothing and is
    dropped. In lexicographic order of what is left (ties by position), a row's dominators are
    exactly the rows before it no worse on every criterion but the first: being before it, they
    are no worse on the first, and strictly better somewhere or, all equal, first. Each block
    of tested rows is compared with the rows kept before it (a dropped row's dominator
    dominates what it dominates) and with its own earlier rows."""
    out = np.full(len(rank), -1, dtype=np.int64)
    if len(rank) < 2 or not test.any():
        return out
    cols: list[np.ndarray] = []
    seen: set[bytes] = set()
    for k in range(rank.shape[1]):
        col = np.ascontiguousarray(rank[:, k])
        if col.max() > col.min() and col.tobytes() not in seen:
            seen.add(col.tobytes())
            cols.append(col)
    if not cols:                   # every row equal: the first dominates the others
        out[1:][test[1:]] = 0
        return out
    order = np.lexsort(tuple(reversed(cols)))
    rest = [c[order] for c in cols[1:]]
    every = bool(test.all())
    tested = np.arange(len(order)) if every else np.flatnonzero(test[order])
    others = tested[:0] if every else np.flatnonzero(~test[order])     # known to be kept: dominators once passed
    kept = tested[:0]
    passed = 0
    for a in range(0, len(tested), CHUNK):
        block = tested[a:a + CHUNK]
        if len(others):
            upto = int(np.searchsorted(others, block[-1]))
            kept = np.concatenate([kept, others[passed:upto]])
            passed = upto
        earlier = np.concatenate([kept, block]) if len(kept) else block
        beaten = block[:, None] > earlier[None, :]      # [j, i]: row i beats row j (rows along, for speed)
        for r in rest:             # one criterion at a time: two matrices, no third axis
            beaten &= r[block, None] >= r[None, earlier]
        drop = beaten.any(axis=1)
        out[order[block[drop]]] = order[earlier[beaten.argmax(axis=1)[drop]]]
        kept = np.concatenate([kept, block[~drop]])
    return out


def _dominates(v: np.ndarray, rows_k: np.ndarray, rows_j: np.ndarray) -> np.ndarray:
    """[k, j]: row rows_k[k] dominates row rows_j[j] (no worse everywhere; strictly better
    somewhere, or all equal and first in the table)."""
    vk, vj = v[rows_k], v[rows_j]
    no_worse = np.ones((len(rows_k), len(rows_j)), dtype=bool)
    better = rows_k[:, None] < rows_j[None, :]
    for d in range(v.shape[1]):        # one criterion at a time: two matrices, no third axis
        a, b = vk[:, d, None], vj[None, :, d]
        no_worse &= a <= b
        better |= a < b
    return no_worse & better
