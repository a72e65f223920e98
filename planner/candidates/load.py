"""Each candidate row under load: its capacity at SLO (the highest request rate at which it
meets every latency target of its slot, and at most ``max_utilization`` of saturation) and
the latency statistics at that rate (docs/load.md sections 3-6). This is the quantity the
demand rows, the prices per token and the fleet planner consume."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, fields
from typing import Any, cast

import numpy as np

from planner.candidates.cache import digest
from planner.physics import disagg
from planner.physics.load import (
    Engine,
    LoadResult,
    StepPhysics,
    Target,
    Workload,
    capacity_at_slo,
    engine,
    load_metrics,
    merge_results,
    step_physics,
)
from planner.physics.numerics import RESTRICT_ROWS, bisect_levels, bisection_by_bracket, points_per_call, rows_taken
from planner.physics.options import Assumptions
from planner.physics.space import Configs, GpuTable
from planner.resolve.problem import Slot

LOAD_METRIC = {"ttft": "ttft", "tpot": "tpot", "itl": "itl", "e2e_latency": "e2e"}
REPORTED = (("ttft", "mean"), ("tpot", "mean"), ("itl", "mean"), ("e2e", "mean"), ("ttft", "p50"),
            ("ttft", "p90"), ("ttft", "p99"), ("tpot", "p50"), ("tpot", "p90"), ("tpot", "p99"),
            ("itl", "p99"), ("e2e", "p99"))


@dataclass(frozen=True)
class RowLoad:
    """Per row, at its capacity (or, where no rate meets the targets, at a vanishing rate)."""

    rate: np.ndarray                 # requests/s per replica at capacity (0: no rate meets the targets)
    tokens_per_s: np.ndarray         # output tokens/s per replica at capacity
    clients: np.ndarray              # requests in flight per replica at capacity (Little's law)
    utilization: np.ndarray          # rate / saturation rate
    running: np.ndarray              # decode sequences per lane at capacity (mean)
    saturation_rate: np.ndarray      # requests/s at which the engine saturates
    binding: np.ndarray              # index into the slot's targets; -1: max_utilization binds
    token_budget: np.ndarray         # scheduler: tokens per step (plan output)
    max_seqs: np.ndarray             # scheduler: running sequences per lane (plan output)
    stats: dict[tuple[str, str], np.ndarray]   # (metric, statistic) -> seconds

    def get(self, metric: str, statistic: str) -> np.ndarray:
        return self.stats[(LOAD_METRIC.get(metric, metric), statistic)]


def workload_of(slot: Slot, eng: Engine | None = None) -> Workload:
    """The slot's workload for the load model; with a prefix cache, its cached prompt tokens a
    request on each configuration of ``eng`` (a trace's LRU of each one's KV pool, or the
    stated figure: ``CacheSpec.cached_at``)."""
    cv2 = 1.0 if slot.demand is None else slot.demand.arrival_cv2
    cached = 0.0 if slot.cache is None else \
        slot.cache.cached_tokens if eng is None else slot.cache.cached_at(eng.kv_pool_tokens)
    return Workload(isl=slot.input.mean, osl=slot.output.mean, arrival_cv2=cv2, isl_cv2=slot.input.cv2,
                    cached=cached, isl_m3=slot.input.moment(3), isl_m4=slot.input.moment(4))


def load_targets(slot: Slot) -> list[Target]:
    return [Target(LOAD_METRIC[t.metric], t.statistic, t.seconds) for t in slot.targets]


def _start(slot: Slot, table: GpuTable, configs: Configs, o: Assumptions, fits: np.ndarray, fill: float
           ) -> tuple[RowLoad, np.ndarray, StepPhysics, Engine, Workload]:
    """An empty RowLoad (statistics ``fill``), the rows that fit, their step physics, engine
    and the slot's workload (the physics only when some row fits)."""
    n = len(configs)
    stats = {k: np.full(n, fill) for k in REPORTED}
    for t in slot.targets:
        stats.setdefault((LOAD_METRIC[t.metric], t.statistic), np.full(n, fill))
    out = RowLoad(rate=np.zeros(n), tokens_per_s=np.zeros(n), clients=np.zeros(n), utilization=np.zeros(n),
                  running=np.zeros(n), saturation_rate=np.zeros(n), binding=np.full(n, -1, dtype=np.int64),
                  token_budget=np.zeros(n), max_seqs=np.zeros(n), stats=stats)
    rows = np.nonzero(fits)[0]
    phys = step_physics(slot.model, table, configs.take(rows), o)
    eng = engine(phys)
    return out, rows, phys, eng, workload_of(slot, eng)


def together(slot: Slot) -> Hashable | None:
    """What the slots whose rows ``row_loads`` computes together share (None: computed alone):
    the model, the kinds of latency target and the utilisation ceiling; a slot whose demand is
    clients (a closed loop's own search) or with a prefix cache (per configuration) is alone."""
    if (slot.demand is not None and slot.demand.kind == "clients") or slot.cache is not None or not slot.targets:
        return None
    return (digest(slot.model), tuple((t.metric, t.statistic) for t in slot.targets),
            slot.slo.max_utilization)


def row_loads(slots: list[Slot], table: GpuTable, parts: list[tuple[Configs, np.ndarray]], o: Assumptions
              ) -> list[RowLoad]:
    """``row_load`` of each slot's (configurations, fits) part, the slots (all ``together``
    alike) computed in one pass: one vectorised search over every part's rows, each row under
    its own slot's lengths and targets. The load model's cost is mostly per numpy call, not per
    row (benchmarks/load_per_case.py), so a fleet's workloads of one model take about as many
    calls as one. Each row is computed on its own: the figures are ``row_load``'s, bit for bit."""
    if len(slots) == 1:
        return [row_load(slots[0], table, parts[0][0], o, parts[0][1])]
    configs = Configs(**{f.name: np.concatenate([getattr(c, f.name) for c, _ in parts]) for f in fields(Configs)})
    owner = np.concatenate([np.full(len(c), k, dtype=np.int64) for k, (c, _) in enumerate(parts)])
    whole = row_load(slots[0], table, configs, o, np.concatenate([f for _, f in parts]), (slots, owner))
    return [_rows_of(whole, owner == k) for k in range(len(slots))]


def _rows_of(r: RowLoad, mine: np.ndarray) -> RowLoad:
    return RowLoad(**{f.name: getattr(r, f.name)[mine] for f in fields(RowLoad) if f.name != "stats"},
                   stats={k: v[mine] for k, v in r.stats.items()})


def _each(values: list[Any], owner: np.ndarray) -> np.ndarray:
    """Each slot's figure (``values``, in the order of the slots) on each of the rows it owns."""
    return np.array(values, dtype=float)[owner]


def row_load(slot: Slot, table: GpuTable, configs: Configs, o: Assumptions, fits: np.ndarray,
             stack: tuple[list[Slot], np.ndarray] | None = None) -> RowLoad:
    """Capacity at SLO of every row of one slot; rows that do not fit in memory get 0.
    ``stack``: (slots all ``together`` alike, the slot owning each row), from ``row_loads``."""
    out, rows, phys, eng, wl = _start(slot, table, configs, o, fits, np.inf)
    if not len(rows):
        return out
    rate, binding, stats = out.rate, out.binding, out.stats
    targets = load_targets(slot)
    seconds, osl = None, cast(Any, slot.output.mean)
    if stack is not None:        # each row under its own slot's workload and targets
        slots, owner = stack[0], stack[1][rows]
        each = [workload_of(s) for s in slots]
        per_row: dict[str, Any] = {f.name: _each([getattr(w, f.name) for w in each], owner) for f in fields(Workload)
                                   if f.name not in ("start", "requests_per_client")}
        wl = Workload(**per_row)
        seconds = np.stack([_each([s.targets[j].seconds for s in slots], owner) for j in range(len(targets))])
        osl = _each([s.output.mean for s in slots], owner)
    if targets:
        cap = capacity_at_slo(phys, eng, wl, targets, max_utilization=slot.slo.max_utilization, report=set(stats),
                              seconds=seconds)
        sat, found, found_binding, known = cap.result.saturation_rate, cap.rate, cap.binding, cap.result
    else:                    # no latency target: only the utilisation ceiling limits the rate
        sat = load_metrics(phys, eng, wl, rate=np.zeros(len(rows)), quantiles=False).saturation_rate
        found, found_binding, known = np.full(len(rows), np.inf), np.full(len(rows), -1), None
    sat = np.where(np.isfinite(sat) & (sat > 0), sat, 0.0)
    ceiling = slot.slo.max_utilization * sat
    r = np.minimum(found, ceiling)
    bind = np.where(found > ceiling, -1, found_binding)
    # the load model at r: capacity_at_slo's own result where r is its rate, evaluated elsewhere
    # (at the ceiling, or at a vanishing rate where no rate serves)
    same = (r > 0) & (r == found)
    at = _at(phys, eng, wl, r, sat, np.flatnonzero(~same), [] if known is None else [(np.flatnonzero(same), known)],
             set(stats))
    over = np.nonzero((r > 0) & (at.rho > slot.slo.max_utilization))[0]
    if len(over):      # the KV pool, not the step budget, sets the utilisation: lower the rate to the ceiling
        r[over] = _rate_at_utilization(phys.take(over), eng.take(over), wl.take(over, len(rows)), r[over],
                                       at.rho[over], slot.slo.max_utilization)
        bind[over] = -1
        rest = np.ones(len(rows), dtype=bool)
        rest[over] = False
        at = _at(phys, eng, wl, r, sat, over, [(np.flatnonzero(rest), at)], set(stats))
    rate[rows] = r
    binding[rows] = bind
    out.tokens_per_s[rows] = r * osl
    out.clients[rows] = np.where(r > 0, at.concurrency, 0.0)
    if slot.demand is not None and slot.demand.kind == "clients" and targets:
        out.clients[rows] = _closed_clients(phys, eng, wl, targets, out.clients[rows])
    out.utilization[rows] = np.where(r > 0, at.rho, 0.0)
    out.running[rows] = np.where(r > 0, at.running, 0.0)
    out.saturation_rate[rows] = sat
    out.token_budget[rows] = eng.token_budget
    out.max_seqs[rows] = eng.max_seqs
    for key, arr in stats.items():
        arr[rows] = at.get(*key)
    return out


def _closed_meets(phys: StepPhysics, eng: Engine, wl: Workload, targets: list[Target], clients: np.ndarray
                  ) -> np.ndarray:
    """Whether a closed loop of ``clients`` per replica meets every target, stable."""
    at = load_metrics(phys, eng, wl, clients=clients, report={(t.metric, t.statistic) for t in targets})
    ok = at.stable.copy()
    for t in targets:
        ok &= at.get(t.metric, t.statistic) <= t.seconds
    return ok


def _closed_clients(phys: StepPhysics, eng: Engine, wl: Workload, targets: list[Target], open_clients: np.ndarray,
                    iters: int = 30) -> np.ndarray:
    """Clients per replica at SLO of a closed loop: the open loop's requests in flight at its
    capacity (Little's law) where the closed loop of that many clients meets every target,
    else the most clients that do (bisection; latency grows with the clients). A closed loop
    has no idle periods between requests, so the same requests in flight can run a fuller
    batch than Poisson arrivals at that rate: 2 clients of Llama-2-70B on 2 H100s (PP 2,
    batch 1, 1,751 / 16 tokens) ran TPOT 85.6 ms at the 2.00 clients the open loop's 75.5 ms
    capacity gave (tests/test_plan_random.py)."""
    n = len(open_clients)
    out = open_clients.copy()
    bad = np.flatnonzero((open_clients > 0) & ~_closed_meets(phys, eng, wl, targets, np.maximum(open_clients, 1e-9)))
    if not len(bad):
        return out
    at = rows_taken(lambda rows: (phys.take(bad[rows]), eng.take(bad[rows]), wl.take(bad[rows], n)))

    def meets(x: np.ndarray, rows: np.ndarray) -> np.ndarray:     # the rows bisect_levels repeats, of ``bad``
        return _closed_meets(*at(rows), targets, np.maximum(x, 1e-9))
    out[bad], _ = bisect_levels(meets, np.zeros(len(bad)), open_clients[bad], iters)
    return out


def operating_point(slot: Slot, table: GpuTable, configs: Configs, o: Assumptions, *, rate: float | None = None,
                    clients: float | None = None) -> dict[str, float]:
    """One configuration (``configs`` of length 1) at a given per-replica load: the figures
    a plan reports (seconds, requests/s, output tokens/s), Little's law holding among them."""
    return operating_points((slot,), table, configs, o, rate=None if rate is None else np.array([rate]),
                            clients=None if clients is None else np.array([clients]))[0]


def operating_points(slots: tuple[Slot, ...], table: GpuTable, configs: Configs, o: Assumptions, *,
                     rate: np.ndarray | None = None, clients: np.ndarray | None = None) -> list[dict[str, float]]:
    """``operating_point`` of several configurations of one model at once (the deployments of a
    fleet's answer, planner/plan/describe.py): row i under ``slots[i]``'s workload at its own
    ``rate`` or ``clients``. Each row is computed on its own (the load model's iterates are
    per configuration), so a row's figures are the same as alone; a workload field the slots
    share stays the scalar it is alone."""
    phys = step_physics(slots[0].model, table, configs, o)
    eng = engine(phys)
    n = len(configs)
    each = [workload_of(s, eng.take(np.array([i])) if s.cache is not None else None) for i, s in enumerate(slots)]
    wl = Workload(**{f.name: _stacked([getattr(w, f.name) for w in each]) for f in fields(Workload)})
    r = load_metrics(phys, eng, wl, rate=rate, clients=clients)
    out = []
    for i in range(n):
        at = {f"{m}_{s}": float(r.get(m, s)[i]) for m, s in REPORTED}
        at |= _cached(slots[i], each[i])
        at |= {"rate": float(r.rate[i]), "tokens_per_s": float(r.throughput_tokens_per_s[i]),
               "concurrency": float(r.concurrency[i]), "utilization": float(r.rho[i]),
               "running_per_lane": float(r.running[i]), "token_budget": float(eng.token_budget[i]),
               "max_seqs": float(eng.max_seqs[i]), "stable": bool(r.stable[i])}
        out.append(at)
    return out


def _stacked(values: list) -> Any:
    """One workload field over rows: the value itself where every row has it, else per row."""
    first = values[0]
    if all(isinstance(v, (str, float, int)) and v == first for v in values):
        return first
    return np.array([float(np.asarray(v, dtype=float).reshape(-1)[0]) for v in values])


def _cached(slot: Slot, wl: Workload) -> dict[str, float]:
    """A configuration's cached prompt tokens a request (one configuration), where its slot has
    a prefix cache: nothing otherwise, so a plan without one reports what it did before."""
    if slot.cache is None:
        return {}
    cached = float(np.asarray(wl.cached, dtype=float).reshape(-1)[0])
    return {"cached_prompt_tokens": cached, "computed_prompt_tokens": slot.input.mean - cached}


def _at(phys: StepPhysics, eng: Engine, wl: Workload, r: np.ndarray, sat: np.ndarray, idx: np.ndarray,
        known: list[tuple[np.ndarray, LoadResult]], report: set) -> LoadResult:
    """The load model of every configuration: at rate ``r`` (a vanishing rate where r is 0)
    on ``idx``, taken from the results already ``known`` (index set, result over all)
    elsewhere; ``report``: the statistics computed."""
    n = len(phys)
    parts = [(i, res.take(i)) for i, res in known if len(i)]
    if len(idx):
        rate = np.where(r[idx] > 0, r[idx], np.maximum(sat[idx], 1e-300) * 1e-6)
        parts.append((idx, load_metrics(phys.take(idx), eng.take(idx), wl.take(idx, n), rate=rate, report=report)))
    return merge_results(n, parts)


def _rate_at_utilization(phys: StepPhysics, eng: Engine, wl: Workload, hi: np.ndarray, rho_hi: np.ndarray,
                         ceiling: float, iters: int = 16) -> np.ndarray:
    """The highest rate below ``hi`` (where the utilisation is ``rho_hi`` > ``ceiling``) at
    which the utilisation (rate and KV pool together, docs/load.md section 3) is at most
    ``ceiling``, for each configuration: the lower end of an ``iters``-step bisection from
    0, its steps settled from a bracket (the utilisation grows with the rate;
    ``bisection_by_bracket``, several points a call on a small table), first tried at
    hi x ceiling / rho_hi."""
    n = len(phys)
    hi = np.asarray(hi, dtype=float)
    first = hi * ceiling / rho_hi

    points = points_per_call(n)

    def evaluate(x: np.ndarray, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if n <= RESTRICT_ROWS and points == 1:   # a small table whole, the other rows at their first point
            xs = first.copy()
            xs[i] = x
            rho = load_metrics(phys, eng, wl, rate=xs, quantiles=False).rho[i]
        else:
            rho = load_metrics(phys.take(i), eng.take(i), wl.take(i, n), rate=x, quantiles=False).rho
        return rho <= ceiling, rho / ceiling - 1.0
    # the distance rho / ceiling - 1, -1 at rate 0 (no load): the secant from 0 starts at the
    # estimate hi x ceiling / rho_hi of a utilisation proportional to the rate
    lo, _, _ = bisection_by_bracket(evaluate, np.zeros(n), hi, np.full(n, -1.0), iters, np.full(n, np.inf),
                                     geometric=False, g_hi=rho_hi / ceiling - 1.0, first=first, points=points)
    return lo


# ----------------------------------------------------------------------------------------
# Disaggregated pools (docs/disaggregation.md section 7): a row of role prefill or decode
# ----------------------------------------------------------------------------------------

AGGREGATED, PREFILL, DECODE = 0, 1, 2
ROLE_NAMES = ("aggregated", "prefill", "decode")
POOL_METRICS = {PREFILL: ("ttft",), DECODE: ("tpot", "itl")}
"""The latency metrics (load.py's names) each pool answers for: a prefill row's TTFT is
queueing + prefill + KV transfer; a decode row's TPOT and ITL are decode-only steps. A
target on any other metric is the other pool's."""


def pool_targets(slot: Slot, role: int) -> tuple[list[int], list[Target]]:
    """(index into the slot's targets, the target) of each target a pool of ``role`` answers for."""
    idx = [i for i, t in enumerate(slot.targets) if LOAD_METRIC[t.metric] in POOL_METRICS[role]]
    return idx, [Target(LOAD_METRIC[slot.targets[i].metric], slot.targets[i].statistic, slot.targets[i].seconds)
                 for i in idx]


def _pool_at(role: int, phys: StepPhysics, eng: Engine, wl: Workload, rate: np.ndarray, link: str
             ) -> disagg.PrefillResult | disagg.DecodeResult:
    kind = cast(disagg.LinkKind, link)
    if role == PREFILL:
        return disagg.prefill_metrics(phys, eng, wl, rate, kind)
    return disagg.decode_metrics(phys, eng, wl, rate, disagg.kv_transfer_time(phys, wl.isl, kind))


def _pool_stats(role: int, at: disagg.PrefillResult | disagg.DecodeResult, n: int) -> dict[tuple[str, str], np.ndarray]:
    """The reported statistics of a pool at a rate: its own metrics, NaN for the other pool's."""
    out = {k: np.full(n, np.nan) for k in REPORTED}
    for (metric, stat), arr in at.stats.items():
        if metric in POOL_METRICS[role]:
            out[(metric, stat)] = np.asarray(arr, dtype=float) * np.ones(n)
    return out


def pool_load(slot: Slot, table: GpuTable, configs: Configs, o: Assumptions, fits: np.ndarray, role: int) -> RowLoad:
    """Capacity at SLO of every row of one slot taken as a replica of a prefill pool
    (``role`` PREFILL: TTFT targets, planner/physics/disagg.py ``prefill_capacity``) or of a
    decode pool (DECODE: TPOT/ITL targets, ``decode_capacity``, the KV arriving over the
    slot's link; its rate also at most ``max_utilization`` of what that link can receive),
    in requests/s per replica; ``tokens_per_s`` is that rate times the slot's mean output
    tokens, the unit of its demand. ``binding`` indexes the slot's own targets."""
    n = len(configs)
    out, rows, phys, eng, wl = _start(slot, table, configs, o, fits, np.nan)
    if not len(rows):
        return out
    idx, targets = pool_targets(slot, role)
    ceiling = slot.slo.max_utilization
    link = cast(disagg.LinkKind, slot.kv_link)
    if role == PREFILL:
        cap = disagg.prefill_capacity(phys, eng, wl, targets, link, max_utilization=ceiling)
        r = cap.rate
    else:
        xfer = disagg.kv_transfer_time(phys, wl.isl, link)
        cap = disagg.decode_capacity(phys, eng, wl, targets, xfer, max_utilization=ceiling)
        with np.errstate(divide="ignore", invalid="ignore"):
            receive = ceiling * disagg.kv_link_bandwidth(phys, link) / disagg.kv_bytes_per_request(phys, wl.isl)
        r = np.minimum(cap.rate, receive)
    bind = np.where(cap.binding >= 0, np.asarray(idx + [-1], dtype=np.int64)[np.maximum(cap.binding, 0)], -1)
    bind = np.where(r < cap.rate, -1, bind)
    at = _pool_at(role, phys, eng, wl, np.where(r > 0, r, np.maximum(cap.saturation_rate, 1e-300) * 1e-6), link)
    out.rate[rows] = r
    out.binding[rows] = bind
    out.tokens_per_s[rows] = r * slot.output.mean
    latency = at.get("ttft", "mean") if role == PREFILL else (slot.output.mean - 1.0) * at.step
    out.clients[rows] = np.where(r > 0, r * latency, 0.0)
    out.utilization[rows] = np.where(r > 0, at.rho, 0.0)
    out.running[rows] = np.where(r > 0, at.running, 0.0) if isinstance(at, disagg.DecodeResult) else 0.0
    out.saturation_rate[rows] = cap.saturation_rate
    out.token_budget[rows] = eng.token_budget
    out.max_seqs[rows] = eng.max_seqs
    for key, arr in _pool_stats(role, at, len(rows)).items():
        out.stats.setdefault(key, np.full(n, np.nan))[rows] = arr
    return out


def pool_operating_point(slot: Slot, table: GpuTable, configs: Configs, o: Assumptions, role: int,
                         rate: float) -> dict[str, float]:
    """``operating_point`` of a pool replica (``configs`` of length 1) at ``rate`` requests/s:
    the same keys, the other pool's metrics NaN."""
    phys = step_physics(slot.model, table, configs, o)
    eng = engine(phys)
    wl = workload_of(slot, eng)
    at = _pool_at(role, phys, eng, wl, np.array([rate]), slot.kv_link)
    out = {f"{m}_{s}": float(v[0]) for (m, s), v in _pool_stats(role, at, 1).items()}
    if role == PREFILL:       # the cache lives in the prefill pool
        out |= _cached(slot, wl)
    latency = float(at.get("ttft", "mean")[0]) if role == PREFILL else (slot.output.mean - 1.0) * float(at.step[0])
    running = float(at.running[0]) if isinstance(at, disagg.DecodeResult) else 0.0
    out |= {"rate": float(rate), "tokens_per_s": float(rate) * slot.output.mean, "concurrency": float(rate) * latency,
            "utilization": float(at.rho[0]), "running_per_lane": running,
            "token_budget": float(eng.token_budget[0]), "max_seqs": float(eng.max_seqs[0]),
            "stable": bool(at.stable[0])}
    return out
