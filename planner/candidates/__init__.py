"""From a resolved problem to the candidate table: every configuration x batch level, with the
physics coefficients the constraint families need (docs/formulation.md section 2).

Only what cannot exist is filtered here (an invalid parallel layout, a GPU without the
scheme's math format or without a price for a cost objective, TP across nodes when not
allowed). Memory, latency, demand, inventory, budget and power stay constraints of the
model, so the solvers see them and the diagnosis can name them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.errors import InputError
from planner.physics.perf import Evaluation, evaluate
from planner.physics.quant import DEFAULT_SCHEMES
from planner.physics.space import KV_NAMES, SCHEME_NAMES, Configs, GpuTable
from planner.resolve import Problem
from planner.schemas.plan import MAX_CANDIDATES

@dataclass(frozen=True)
class Candidates:
    """One row per (configuration, batch level); ``config`` indexes distinct configurations."""

    configs: Configs
    ev: Evaluation
    config: np.ndarray          # configuration id of each row (same id = differs only in batch)
    e2e: np.ndarray             # seconds: TTFT + TPOT x (output - 1)
    nodes_per_replica: np.ndarray  # coefficient for node packing (fraction of a node, or whole nodes)
    replica_cap: np.ndarray     # upper bound on replicas of this row
    searched: int               # configurations x batch levels evaluated

    def __len__(self) -> int:
        return len(self.configs)

    def describe(self, i: int, table: GpuTable) -> dict:
        c = self.configs
        return {"gpu": table.ids[int(c.gpu[i])], "tp": int(c.tp[i]), "pp": int(c.pp[i]), "ep": int(c.ep[i]),
                "quantization": SCHEME_NAMES[int(c.scheme[i])], "kv_dtype": KV_NAMES[int(c.kv[i])],
                "batch": int(c.batch[i])}

    def label(self, i: int, table: GpuTable, *, batch: bool = True) -> str:
        d = self.describe(i, table)
        text = f"gpu={d['gpu']},tp={d['tp']},pp={d['pp']},ep={d['ep']},q={d['quantization']},kv={d['kv_dtype']}"
        return text + (f",batch={d['batch']}" if batch else "")


def _levels(max_batch: int) -> list[int]:
    out, b = [], 1
    while b <= max_batch:
        out.append(b)
        b *= 2
    return out


def _ep_degrees(p: Problem) -> list[int]:
    s = p.spec.search
    if s.ep is not None:
        return sorted(set(s.ep))
    if p.model.moe is None:
        return [1]
    return sorted({1, *[e for e in (2, 4, 8, 16, 32, 64) if p.model.moe.num_experts % e == 0]})


def build_candidates(p: Problem) -> Candidates:
    s, w, o = p.spec.search, p.spec.workload, p.assumptions
    schemes = [SCHEME_NAMES.index(q) for q in (s.quantizations or DEFAULT_SCHEMES)]
    kvs = [KV_NAMES.index(k) for k in s.kv_dtypes]
    base = Configs.grid(range(len(p.gpus)), schemes, kvs, sorted(set(s.tp)), sorted(set(s.pp)), _ep_degrees(p),
                        [1], [w.input_tokens], [w.output_tokens])
    probe = evaluate(p.model, p.table, base, o)
    keep = probe.valid.copy()
    if not s.allow_cross_node_tp:
        keep &= base.tp <= p.table.domain[base.gpu]
    base = base.take(np.nonzero(keep)[0])
    levels = sorted(set(s.batch_levels or _levels(s.max_batch)))
    n = len(base)
    if n * (len(levels) + 1) > MAX_CANDIDATES:
        raise InputError(f"the search space has {n * (len(levels) + 1):,} candidates, above the limit of "
                         f"{MAX_CANDIDATES:,}; narrow search.gpus, quantizations, tp, pp or batch_levels",
                         path="search", file=p.file)
    best = _largest_feasible_batch(p, base, min(s.max_batch, max(levels)))
    fewest = _smallest_batch_for_demand(p, base, best)
    rows = np.repeat(np.arange(n), len(levels))
    batch = np.tile(np.asarray(levels, dtype=float), n)
    for extra_batch in (best, fewest):
        extra = np.nonzero((extra_batch >= 1) & ~np.isin(extra_batch, levels))[0]
        rows = np.concatenate([rows, extra])
        batch = np.concatenate([batch, extra_batch[extra]])
    rows, batch = _unique_rows(rows, batch)
    order = np.lexsort((batch, rows))
    rows, batch = rows[order], batch[order]
    configs = base.take(rows)
    configs = Configs(**{**{k: getattr(configs, k) for k in configs.__dataclass_fields__}, "batch": batch})
    ev = evaluate(p.model, p.table, configs, o)
    e2e = ev.ttft + ev.tpot * (w.output_tokens - 1)
    per_node = p.table.per_node[configs.gpu]
    nodes = np.where(ev.gpus <= per_node, ev.gpus / per_node, np.ceil(ev.gpus / per_node))
    return Candidates(configs=configs, ev=ev, config=rows, e2e=e2e, nodes_per_replica=nodes,
                      replica_cap=_replica_cap(p, ev, configs), searched=len(configs))


def _unique_rows(rows: np.ndarray, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = np.unique(np.stack([rows.astype(float), batch]), axis=1)
    return pairs[0].astype(np.int64), pairs[1]


def _latency_ok(p: Problem, ev: Evaluation, w) -> np.ndarray:
    slo = p.spec.slo
    ok = ev.fits.copy()
    if slo.tpot_ms is not None:
        ok &= ev.tpot <= slo.tpot_ms * 1e-3
    if slo.ttft_ms is not None:
        ok &= ev.ttft <= slo.ttft_ms * 1e-3
    if slo.e2e_latency_ms is not None:
        ok &= ev.ttft + ev.tpot * (w.output_tokens - 1) <= slo.e2e_latency_ms * 1e-3
    return ok


def _bisect(p: Problem, base: Configs, ok, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per configuration, the boundary of a predicate monotone in the batch: ``ok`` is true
    at ``lo`` side and false at ``hi`` side; returns the last batch on the ``lo`` side.
    Vectorised over configurations (docs/formulation.md section 2)."""
    fields_ = {k: getattr(base, k) for k in base.__dataclass_fields__}
    lo, hi = lo.astype(float).copy(), hi.astype(float).copy()
    while True:
        active = np.abs(hi - lo) > 1
        if not active.any():
            return lo
        mid = np.floor((lo + hi) / 2)
        ev = evaluate(p.model, p.table, Configs(**{**fields_, "batch": np.where(active, np.maximum(mid, 1.0), 1.0)}),
                      p.assumptions)
        good = ok(ev) & active
        lo = np.where(good, mid, lo)
        hi = np.where(active & ~good, mid, hi)


def _largest_feasible_batch(p: Problem, base: Configs, cap: int) -> np.ndarray:
    """Per configuration, the largest batch <= cap meeting memory and the latency SLOs
    (0 if none): all are monotone in the batch."""
    n = len(base)
    return _bisect(p, base, lambda ev: _latency_ok(p, ev, p.spec.workload), np.zeros(n), np.full(n, cap + 1.0))


def _smallest_batch_for_demand(p: Problem, base: Configs, largest: np.ndarray) -> np.ndarray:
    """Per configuration, the smallest batch whose replicas, as many as the limits allow,
    still meet the demand (0 if none). Throughput per replica grows with the batch and the
    replica cap does not depend on it; a smaller batch has a shorter TPOT, so this is the
    TPOT-optimal batch of the configuration under a demand."""
    demand = p.demand_tokens_per_s
    if demand is None:
        return np.zeros(len(base))
    at1 = evaluate(p.model, p.table, base, p.assumptions)
    r_max = _replica_cap(p, at1, base, with_demand=False)

    def meets(ev: Evaluation) -> np.ndarray:
        return ev.throughput_tokens_per_s * r_max < demand  # true below the boundary

    below = _bisect(p, base, meets, np.zeros(len(base)), largest + 1.0)
    smallest = below + 1.0
    return np.where((largest >= 1) & (smallest <= largest), smallest, 0.0)


def _replica_cap(p: Problem, ev: Evaluation, configs: Configs, *, with_demand: bool = True) -> np.ndarray:
    """An upper bound on useful replicas per row, from the limits and the demand: the
    domain of the replica variables. The exhaustive oracle computes its own bounds
    (planner/backends/exhaustive.py) on purpose: code shared by the model and the oracle
    that checks it could make both agree on a wrong answer."""
    cap = np.full(len(ev.gpus), 100_000.0)
    lim, s = p.spec.limits, p.spec.search
    if s.max_gpus is not None:
        cap = np.minimum(cap, np.floor(s.max_gpus / ev.gpus))
    for gid, count in lim.inventory.items():
        if gid in p.table.ids:
            mine = configs.gpu == p.table.ids.index(gid)
            cap = np.where(mine, np.minimum(cap, np.floor(count / ev.gpus)), cap)
    if lim.budget_usd_per_hour is not None:
        cost = np.nan_to_num(ev.cost_per_hour, nan=0.0)
        cap = np.minimum(cap, np.floor(lim.budget_usd_per_hour / np.maximum(cost, 1e-12)))
    if lim.power_cap_w is not None:
        power = np.nan_to_num(ev.power_w, nan=0.0)
        cap = np.minimum(cap, np.floor(lim.power_cap_w / np.maximum(power, 1e-12)))
    if s.max_nodes is not None:
        per_node = p.table.per_node[configs.gpu]
        slots = np.where(ev.gpus <= per_node, ev.gpus, np.ceil(ev.gpus / per_node) * per_node)
        cap = np.minimum(cap, np.floor(s.max_nodes * per_node / slots))
    demand = p.demand_tokens_per_s
    if with_demand and demand is not None and p.spec.objective != "throughput":
        cap = np.minimum(cap, np.ceil(demand / ev.throughput_tokens_per_s))
    return np.maximum(cap, 1.0) if with_demand else np.maximum(cap, 0.0)
