"""Dantzig-Wolfe decomposition of a fleet's covering model, with a proven Lagrangian bound
(issue 26 item 2; docs/formulation.md section 6.3).

A fleet couples its workloads only through the shared rows (inventory per owned GPU type,
budget, power, GPU caps, an earlier phase's ``keep`` row). Everything else is per workload
(a *block*): the demand row ``sum_j CAP_j y_j >= D``, replicas ``0 <= y_j <= R_j`` and at
most K configurations. With multipliers ``u >= 0`` on the shared rows ``L y <= b``, each
block alone is a small integer covering problem

    v_s(u) = min sum_{j in s} (c_j + u^T L_j) y_j   s.t. its demand, replicas and K,

solved exactly here (``cover``: every configuration alone, and every pair with the first's
replicas enumerated and the second covering the rest: K <= 2), and for every u

    LB(u) = sum_s v_s(u) - u^T b  <=  the optimum         (Lagrangian relaxation)

is a proven lower bound, with each block's integrality kept (the LP relaxation loses it: a
workload of 0.5 requests/s pays one whole replica). The multipliers are the duals of the
restricted master LP over the blocks' answers found so far (column generation: each block's
best answer at the current duals is added while it prices out), and the fleet is the
restricted master as an integer program: one of its answers per block under the shared rows,
solved by HiGHS. The starting assignment's answers are columns from the start, so the fleet
found is never worse than the start.

Shapes it takes (``blocks`` returns None otherwise and the caller solves the whole model):
a minimised objective on replicas only, a split fleet (no latency variables), every slot
served in full, integer replicas, shared rows ``<=`` with nonnegative coefficients on
replicas only (no node packing, no spot spares, no ranking cut), K <= 2."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import highspy
import numpy as np

from constraints.model import Coeffs
from planner.backends.base import OPTIMAL_GAP
from planner.candidates.cache import grouped

EPS = 1e-9
"""A replica count covers a remainder r of demand at n = ceil(r / CAP - EPS): the solvers'
feasibility tolerance, not a rounding of the figures."""
MAX_ROUNDS = 200
"""Column generation rounds at most (each prices every block once)."""
COLUMN_SHARE = 0.5
"""With a gap target g (``solve(..., gap=g)``), column generation stops once the restricted
master LP is within this share of g of the Lagrangian bound: the integer master's answer is
dearer than that LP, and the rest of g is its room to round the LP's fractions to one answer
per block (it stops once its answer is within g of the Lagrangian bound: ``_integer``)."""


@dataclass
class Block:
    """One workload's part of the model: its replica variables and what its rows say."""

    y: np.ndarray          # model variable of each row's replicas
    x: np.ndarray          # its choice binary (== y where the slot has none)
    cap: np.ndarray        # capacity per replica (the demand row's coefficient)
    demand: float
    ub: np.ndarray         # replicas allowed (the variable's upper bound)
    k: int                 # configurations allowed
    cost: np.ndarray       # objective per replica
    link: np.ndarray       # (shared rows, rows of the block): use per replica


@dataclass
class Blocks:
    blocks: list[Block]
    rhs: np.ndarray        # the shared rows' right-hand sides
    names: list[str] = field(default_factory=list)


def blocks(f: Any) -> Blocks | None:
    """The formulation as blocks and shared rows, or None when its shape is not one this
    decomposition solves exactly (module docstring)."""
    c, m = getattr(f, "cands", None), f.model
    if c is None:          # a schedule's program (constraints/schedule.py): periods, not blocks of one table
        return None
    if not (f.covering and f.replicas) or c.partial or m.objective_sense != "min" or f.nodes or f.scalars \
            or f.cuts or c.max_configs > 2 or not len(f.alive):
        return None
    nvar = len(m.vars)
    slot_of = np.full(nvar, -1, dtype=np.int64)
    ys = np.asarray(f.y[f.alive], dtype=np.int64)
    xs = np.asarray(f.x[f.alive], dtype=np.int64)
    slots = np.asarray(c.slot[f.alive], dtype=np.int64)
    is_y = np.zeros(nvar, dtype=bool)
    is_y[ys] = True
    slot_of[ys], slot_of[xs] = slots, slots
    members = grouped(slots, c.n_slots)
    if (slot_of < 0).any() or not m.vars.integer[ys].all():
        return None
    cost = np.zeros(nvar)
    objective = Coeffs.of(m.objective)
    on, weight = objective.index, objective.value
    if (weight < 0).any() or ((weight != 0) & ~is_y[on]).any():
        return None
    cost[on] = weight
    demand: dict[int, tuple[Coeffs, float]] = {}
    kmax = {s: int(c.max_configs) for s in range(c.n_slots)}
    shared = []
    for r in m.rows:
        ids = r.coeffs.index
        here = set(np.unique(slot_of[ids]).tolist())
        if r.family == "demand" and len(here) == 1 and r.sense == ">=" and is_y[ids].all():
            s = here.pop()
            if s in demand:
                return None
            demand[s] = (r.coeffs, r.rhs)
        elif r.family == "choice" and len(here) == 1:
            if r.name.startswith("max_configurations"):
                kmax[next(iter(here))] = min(kmax[next(iter(here))], int(round(r.rhs)))
            elif not r.name.startswith(("at_least_one", "replicas_")):
                return None
        elif r.sense == "<=" and is_y[ids].all() and (r.coeffs.value >= 0).all():
            shared.append(r)
        else:
            return None
    if len(demand) != c.n_slots:
        return None
    link = np.zeros((len(shared), len(ys)))        # each shared row's use per replica of each alive row
    at = np.full(nvar, -1, dtype=np.int64)
    at[ys] = np.arange(len(ys))
    for r_i, r in enumerate(shared):
        link[r_i, at[r.coeffs.index]] = r.coeffs.value
    out = []
    for s, idx in enumerate(members):
        coeffs, rhs = demand[s]
        y = ys[idx]
        if rhs <= 0 or len(coeffs) != len(y):
            return None
        order = np.argsort(coeffs.index, kind="stable")       # each replica variable's capacity
        cap = coeffs.value[order[np.searchsorted(coeffs.index, y, sorter=order)]]
        if not np.array_equal(coeffs.index[order[np.searchsorted(coeffs.index, y, sorter=order)]], y):
            return None
        out.append(Block(y=y, x=xs[idx], cap=cap, demand=float(rhs), ub=m.vars.ub[y], k=kmax[s], cost=cost[y],
                         link=link[:, idx]))
    return Blocks(out, np.array([r.rhs for r in shared], dtype=float), [r.name for r in shared])


def cover(w: np.ndarray, cap: np.ndarray, ub: np.ndarray, demand: float, k: int) -> tuple[float, list[tuple[int, int]]]:
    """The cheapest integer replicas covering ``demand`` with at most ``k`` (1 or 2) rows, each
    row j at ``w[j] >= 0`` per replica, ``cap[j]`` capacity and at most ``ub[j]`` replicas:
    (cost, [(row, replicas)]), or (inf, []) when none covers it.

    A row is dropped when another at no more cost per replica and no less capacity covers the
    demand alone: it takes the dropped row's replicas (or, when that would pass its cap, covers
    the demand alone at its own count), for no more. Only a row covering alone drops another:
    two rows each capped below the demand may be needed together."""
    need = np.maximum(1.0, np.ceil(demand / cap - EPS))
    full = ub >= need
    order = np.lexsort((-cap, w))
    # the most capacity of a row covering alone at no more cost, before each row in this order
    ahead = np.maximum.accumulate(np.concatenate([[-math.inf], np.where(full[order], cap[order], -math.inf)]))[:-1]
    kept = np.sort(order[cap[order] > ahead])
    wk, ck, uk, nk = w[kept], cap[kept], ub[kept], need[kept]
    alone = np.where(full[kept], wk * nk, np.inf)
    b = int(np.argmin(alone)) if len(kept) else 0
    best = (float(alone[b]) if len(kept) else math.inf, [(int(kept[b]), int(nk[b]))] if len(kept) else [])
    if k < 2 or len(kept) < 2:
        return best
    first = np.minimum(uk, nk - 1).astype(np.int64)          # partial counts of the first row
    rows = np.repeat(np.arange(len(kept)), np.maximum(first, 0))
    if not len(rows):
        return best
    counts = np.concatenate([np.arange(1, n + 1) for n in first if n > 0])
    rest = demand - ck[rows] * counts
    second = np.maximum(1.0, np.ceil(rest[:, None] / ck[None, :] - EPS))
    total = wk[rows, None] * counts[:, None] + wk[None, :] * second
    total[(second > uk[None, :]) | (rows[:, None] == np.arange(len(kept))[None, :])] = np.inf
    flat = int(np.argmin(total))
    i, q = divmod(flat, len(kept))
    if total[i, q] < best[0]:
        best = (float(total[i, q]), [(int(kept[rows[i]]), int(counts[i])), (int(kept[q]), int(second[i, q]))])
    return best


@dataclass
class Result:
    values: np.ndarray | None     # the model's variables at the fleet found (None: none)
    value: float                  # its objective (inf: none)
    bound: float                  # proven lower bound on the model's optimum
    seconds: float
    rounds: int
    columns: int


def solve(f: Any, bl: Blocks, time_limit: float, hint: dict[int, float] | None = None, gap: float = 0.0) -> Result:
    """Column generation on the restricted master LP (its duals price each block), then the
    restricted master as an integer program; the bound is the best Lagrangian bound met.
    ``gap``: stop once the fleet is proven within it (relative) of that bound: the columns
    once the LP is within ``COLUMN_SHARE`` of it, the integer master at its first answer
    within it, nothing more once the hint's fleet is within it. The restricted master's own
    bounds prove nothing about the whole model (its columns are a subset): the gap is always
    taken against the Lagrangian bound."""
    t0 = time.perf_counter()
    deadline = t0 + time_limit
    nb, nl = len(bl.blocks), len(bl.rhs)
    cols: list[tuple[int, dict[int, int]]] = []       # (block, {local row: replicas})
    seen: set[tuple[int, tuple[tuple[int, int], ...]]] = set()
    lp = _highs()
    lp.addRows(nb, np.ones(nb), np.ones(nb), 0, np.zeros(nb, np.int32), np.zeros(0, np.int32), np.zeros(0))
    if nl:
        lp.addRows(nl, np.full(nl, -highspy.kHighsInf), bl.rhs, 0, np.zeros(0, np.int32), np.zeros(0, np.int32),
                   np.zeros(0))
    # artificial use of each shared row, dear enough to leave it when the columns allow it
    big = 1e3 * (1.0 + sum(float(np.max(b.cost * np.maximum(1.0, np.ceil(b.demand / b.cap - EPS))))
                           for b in bl.blocks))
    for r in range(nl):
        lp.addCol(big, 0.0, highspy.kHighsInf, 1, np.array([nb + r], np.int32), np.array([-1.0]))

    def add(s: int, pattern: list[tuple[int, int]]) -> bool:
        key = (s, tuple(sorted(pattern)))
        if key in seen or not pattern:
            return False
        seen.add(key)
        cols.append((s, dict(pattern)))
        cost, idx, val = _column(bl, s, dict(pattern))
        lp.addCol(cost, 0.0, highspy.kHighsInf, len(idx), idx, val)
        return True

    if hint:
        for s, b in enumerate(bl.blocks):
            pattern = [(j, int(round(hint.get(int(v), 0.0)))) for j, v in enumerate(b.y)
                       if round(hint.get(int(v), 0.0)) >= 1]
            if answers(b, pattern):
                add(s, pattern)
    start = list(range(len(cols))) if len(cols) == nb else []     # the hint, when it is a whole fleet
    best = _start_value(bl, cols, start)          # the dearest fleet worth stopping at: the best one known
    bound, rounds, u = -math.inf, 0, np.zeros(nl)

    def generate(tolerance: float) -> str | None:
        """Rounds until the restricted master LP is within ``tolerance`` (relative) of the
        bound, or the best fleet known within ``gap`` of it: "infeasible" (a block has no
        answer), "loose" (stopped at a tolerance above OPTIMAL_GAP), None (converged, no
        column left, out of rounds or time)."""
        nonlocal bound, rounds, u
        while True:
            rounds += 1
            lagrangian = -float(u @ bl.rhs)
            added = 0
            for s, b in enumerate(bl.blocks):
                w = b.cost + (u @ b.link if nl else 0.0)
                v, pattern = cover(w, b.cap, b.ub, b.demand, b.k)
                if not math.isfinite(v):
                    return "infeasible"
                lagrangian += v
                added += add(s, pattern)
            bound = max(bound, lagrangian)
            lp.setOptionValue("time_limit", max(deadline - time.perf_counter(), 0.01))
            lp.run()
            if lp.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                return None
            master = lp.getInfo().objective_function_value
            duals = np.asarray(lp.getSolution().row_dual)
            u = np.maximum(0.0, -duals[nb:nb + nl])
            converged = master - bound <= tolerance * max(1.0, abs(master))
            if not added or rounds >= MAX_ROUNDS or time.perf_counter() >= deadline or within(best, bound, gap):
                return None
            if converged:
                return "loose" if tolerance > OPTIMAL_GAP else None

    ended = generate(max(OPTIMAL_GAP, COLUMN_SHARE * gap))
    if ended == "infeasible":
        return Result(None, math.inf, math.inf, time.perf_counter() - t0, rounds, len(cols))
    values, value = _integer(f, bl, cols, max(deadline - time.perf_counter(), 0.05), start, _target(bound, gap))
    if ended == "loose" and not within(value, bound, gap) and time.perf_counter() < deadline:
        # the integer master could not round the loose LP within the gap: the columns to convergence
        # (or until the fleet found is within the gap of the rising bound), then the integer master again
        best = min(best, value)
        if generate(OPTIMAL_GAP) == "infeasible":
            return Result(None, math.inf, math.inf, time.perf_counter() - t0, rounds, len(cols))
        if not within(best, bound, gap):
            again, worth = _integer(f, bl, cols, max(deadline - time.perf_counter(), 0.05), start,
                                    _target(bound, gap))
            if again is not None and worth < value:
                values, value = again, worth
    return Result(values, value, bound, time.perf_counter() - t0, rounds, len(cols))


def _target(bound: float, gap: float) -> float | None:
    """The dearest fleet within ``gap`` (relative) of the lower ``bound``: value - bound <= gap x value."""
    return bound / (1.0 - gap) if gap > 0 and bound > 0 else None


def within(value: float, bound: float, gap: float) -> bool:
    """``value`` is proven within ``gap`` (relative, > 0) of the lower ``bound``."""
    return gap > 0 and math.isfinite(value) and value - bound <= gap * abs(value)


def _start_value(bl: Blocks, cols: list[tuple[int, dict[int, int]]], start: list[int]) -> float:
    """The hint's fleet's objective (inf: no whole fleet given)."""
    return sum(_column(bl, *cols[i])[0] for i in start) if start else math.inf


def _integer(f: Any, bl: Blocks, cols: list[tuple[int, dict[int, int]]], time_limit: float,
             start: list[int], target: float | None = None) -> tuple[np.ndarray | None, float]:
    """The restricted master as an integer program: one generated answer per block under the
    shared rows (HiGHS), or the columns ``start`` (the hint's fleet) when they are cheaper or
    HiGHS has no answer in time. (Not given to HiGHS as a start: HiGHS 1.16 took such a start,
    built column by column, at a wrong objective value and stopped there as optimal.)
    ``target``: HiGHS stops at its first answer costing at most this (its objective_target),
    and is not run when the start costs at most this."""
    if target is not None and _start_value(bl, cols, start) <= target:
        return _values(f, bl, cols, np.isin(np.arange(len(cols)), start).astype(float))
    nb, nl = len(bl.blocks), len(bl.rhs)
    h = _highs()
    h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("mip_rel_gap", OPTIMAL_GAP)
    if target is not None:
        h.setOptionValue("objective_target", float(target))
    h.addRows(nb, np.ones(nb), np.ones(nb), 0, np.zeros(nb, np.int32), np.zeros(0, np.int32), np.zeros(0))
    if nl:
        h.addRows(nl, np.full(nl, -highspy.kHighsInf), bl.rhs, 0, np.zeros(0, np.int32), np.zeros(0, np.int32),
                  np.zeros(0))
    for s, pattern in cols:
        cost, idx, val = _column(bl, s, pattern)
        h.addCol(cost, 0.0, 1.0, len(idx), idx, val)
    h.changeColsIntegrality(len(cols), np.arange(len(cols), dtype=np.int32),
                            np.full(len(cols), highspy.HighsVarType.kInteger))
    from planner.backends.highs import run_within
    run = run_within(h, time_limit)           # stopped from outside should HiGHS outlast its limit
    z0 = np.zeros(len(cols))
    z0[start] = 1.0
    if run is not None and run.columns is not None:
        z = run.columns
        if start and float(z0 @ np.asarray(h.getLp().col_cost_)) < float(z @ np.asarray(h.getLp().col_cost_)):
            z = z0
    elif start:
        z = z0
    else:
        return None, math.inf
    return _values(f, bl, cols, z)


def _values(f: Any, bl: Blocks, cols: list[tuple[int, dict[int, int]]], z: np.ndarray
            ) -> tuple[np.ndarray, float]:
    """The model's variables and objective with the columns ``z`` (one per block) chosen."""
    values = np.zeros(len(f.model.vars))
    for (s, pattern), on in zip(cols, z):
        if on > 0.5:
            b = bl.blocks[s]
            for j, n in pattern.items():
                values[b.y[j]] = n
                values[b.x[j]] = n if b.x[j] == b.y[j] else 1.0
    return values, value_of(f, values)


def answers(b: Block, pattern: list[tuple[int, int]]) -> bool:
    """``pattern`` is an answer of block ``b``: its demand covered (within EPS of a replica),
    each row within its replicas, at most K rows. (A hint may serve part of a demand: the
    greedy fleet under a budget.)"""
    return bool(pattern) and len(pattern) <= b.k and all(n <= b.ub[j] for j, n in pattern) \
        and sum(b.cap[j] * n for j, n in pattern) >= b.demand - EPS * max(b.cap[j] for j, _ in pattern)


def _column(bl: Blocks, s: int, pattern: dict[int, int]) -> tuple[float, np.ndarray, np.ndarray]:
    """A master column: block s's answer ``pattern`` ({row: replicas}): its cost, and its
    entries (1 in the block's convexity row, its use of each shared row)."""
    b, nb = bl.blocks[s], len(bl.blocks)
    use = np.zeros(len(bl.rhs))
    for j, n in pattern.items():
        use += b.link[:, j] * n
    on = np.nonzero(use)[0]
    return (float(sum(b.cost[j] * n for j, n in pattern.items())), np.concatenate([[s], nb + on]).astype(np.int32),
            np.concatenate([[1.0], use[on]]))


def value_of(f: Any, values: np.ndarray) -> float:
    """The model's objective at ``values``."""
    return f.model.objective_at(values)


def _highs() -> highspy.Highs:
    from planner.backends.highs import stdout_silenced
    with stdout_silenced():
        h = highspy.Highs()
    for k, v in {"output_flag": False, "random_seed": 0, "threads": 1}.items():
        h.setOptionValue(k, v)
    return h
