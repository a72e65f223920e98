"""Predictions for measurement cases (planner/fidelity/rows.py ``Case``), vectorised.

Each row is predicted with the profile of the engine that measured it, as a plan that names
that engine is: the base assumptions, then the engine's profile (``engine_profile`` in
planner/physics/options.py, the one home of what a profile changes, derived from PRESETS)
and the memory fraction the row states, then a calibration's fitted values
(``row_assumptions``). That is the plan path's order (planner/resolve/calibration.py
``calibrated``: preset, then calibration): validation measures what a calibrated plan would
compute. A calibration therefore replaces an engine's prior for what it fits (the per-layer
and per-step overheads and the efficiencies, one global value for every engine) and keeps
what it does not fit (attention format, memory convention, all-to-all overlap).

Rows are grouped by architecture (DeepSeek-R1, -V3 and -V3.1 are one) and engine, and each
distinct configuration (GPU, scheme, layout, lengths, load) is computed once: one physics
call per group and prediction kind, however many rows and repeats it holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from planner.catalog.store import Catalog, ModelSpec
from planner.fidelity.rows import CUDA_GRAPH_BATCH_CAP, Case
from planner.physics.disagg import ClosedLoopResult, closed_loop
from planner.physics.load import Workload, load_metrics, step_physics
from planner.physics.load import engine as scheduler
from planner.physics.options import Assumptions
from planner.physics.perf import INVALID_REASONS, evaluate
from planner.physics.space import KV_NAMES, SCHEME_NAMES, Configs, GpuTable
from planner.physics.step import StepPhysics

_NAMING = {"id", "name", "source", "hf_id", "aliases", "release_quantization"}


def row_assumptions(o: Assumptions, engine: tuple[tuple[str, object], ...],
                    fitted: dict[str, float] | None = None) -> Assumptions:
    """A row's assumptions: the base, then its engine's settings, then the calibration's fitted
    values (the plan path's order, module docstring)."""
    return o.model_copy(update={**dict(engine), **(fitted or {})})


def architecture_key(model: ModelSpec, checkpoints: bool = True) -> str:
    """What the physics reads of a model (its names and release format left out): entries
    with equal keys are one architecture and are computed together. ``checkpoints=False``
    leaves out the published checkpoints and notes too: the network alone (DeepSeek-R1 and
    -V3 are one)."""
    return model.model_dump_json(exclude=_NAMING if checkpoints else _NAMING | {"checkpoints", "notes"})


def _configs(cs: list[Case], gpu_ids: list[str], batch: np.ndarray) -> Configs:
    return Configs(gpu=np.array([gpu_ids.index(c.gpu) for c in cs]),
                   scheme=np.array([SCHEME_NAMES.index(c.scheme) for c in cs]),
                   kv=np.array([KV_NAMES.index(c.kv) for c in cs]),
                   tp=np.array([c.tp for c in cs], float), pp=np.array([c.pp for c in cs], float),
                   ep=np.array([c.ep for c in cs], float), batch=batch.astype(float),
                   input_tokens=np.array([c.input_tokens for c in cs], float),
                   output_tokens=np.array([c.output_tokens for c in cs], float))


def _groups(cases: list[Case], catalog: Catalog, extra=lambda c: ()) -> dict[tuple, list[int]]:
    out: dict[tuple, list[int]] = {}
    arch: dict[str, str] = {}
    for i, c in enumerate(cases):
        key = arch.setdefault(c.model, architecture_key(catalog.models[c.model]))
        out.setdefault((key, c.engine, *extra(c)), []).append(i)
    return out


def _invalid(ev, k: int) -> str | None:
    if not ev.valid[k]:
        return f"the physics cannot express this layout: {INVALID_REASONS[int(ev.invalid_reason[k])]}"
    if ev.max_batch[k] < 1:
        return (f"the weights do not leave room for one sequence's KV cache "
                f"({ev.weights_bytes[k] / 1e9:.1f} GB of weights per GPU of {ev.capacity_bytes[k] / 1e9:.1f} GB)")
    return None


class Prepared:
    """Cases to predict again and again under different assumptions (a calibration's fit, one
    prediction per step): what ``predict`` works out of the cases and the catalog alone (the
    idle rows' groups, GPU table and configurations) is worked out once, the figures are the
    same as ``predict`` of the list gives. The cases must not change after."""

    def __init__(self, cases: list[Case], catalog: Catalog) -> None:
        self.cases, self.catalog = list(cases), catalog
        self._idle: _IdlePlan | None = None

    def idle_plan(self, idle: list[Case], catalog: Catalog) -> _IdlePlan:
        if catalog is not self.catalog:
            return _idle_plan(idle, catalog)
        if self._idle is None:
            self._idle = _idle_plan(idle, catalog)
        return self._idle


def predict(cases: list[Case] | Prepared, catalog: Catalog, o: Assumptions,
            fitted: dict[str, float] | None = None) -> tuple[np.ndarray, list[str | None]]:
    """(prediction in each row's unit, why none where the physics gives none) for each case:
    one vectorised evaluation per architecture, engine and kind, each row under
    ``row_assumptions`` (base ``o``, its engine, then the ``fitted`` calibration values); the
    rows under load through the load model (``predict_load``), the disaggregated ones through
    both pools' closed loop (``predict_disagg``). ``Prepared`` cases keep what does not depend
    on the assumptions between calls."""
    prepared = cases if isinstance(cases, Prepared) else None
    if isinstance(cases, Prepared):
        cases = cases.cases
    out = np.full(len(cases), np.nan)
    why: list[str | None] = [None] * len(cases)
    kinds = {"idle": [i for i, c in enumerate(cases) if not c.under_load],
             "load": [i for i, c in enumerate(cases) if c.under_load and c.pools is None],
             "disagg": [i for i, c in enumerate(cases) if c.pools is not None]}
    fns = {"idle": _predict_idle, "load": predict_load, "disagg": predict_disagg}
    for kind, idx in kinds.items():
        if idx:
            sub = [cases[i] for i in idx]
            if kind == "idle" and prepared is not None:
                pred, reasons = _predict_idle(sub, catalog, o, fitted, prepared.idle_plan(sub, catalog))
            else:
                pred, reasons = fns[kind](sub, catalog, o, fitted)
            out[idx] = pred
            for i, r in zip(idx, reasons):
                why[i] = r
    return out, why


def predict_all(cases: list[Case] | Prepared, catalog: Catalog, o: Assumptions,
                fitted: dict[str, float] | None = None) -> np.ndarray:
    """``predict``'s predictions alone (NaN where the physics gives none)."""
    return predict(cases, catalog, o, fitted)[0]


_LARGEST: dict[tuple, np.ndarray] = {}
"""The largest batches of a group's maximum-throughput rows as last found (``_predict_idle``):
the next prediction of the group evaluates those rows at them beside the probe, in one call,
and keeps them where the probe finds the same batches (the calls of a calibration fit differ
in efficiencies and overheads, which the KV cache's room does not read); elsewhere it
evaluates them again. A guess, never a figure: the result is the same either way."""


@dataclass
class _IdleGroup:
    """One architecture and engine's idle rows, as far as the assumptions do not reach: which
    rows, their configurations' columns (``Configs`` at batch 0, taken as each evaluation
    needs them) and the maximum-throughput rows' layout (``_predict_idle``)."""

    idx: list[int]
    cs: list[Case]
    engine: tuple[tuple[str, object], ...]
    model: ModelSpec
    columns: Configs
    fixed: np.ndarray
    mt: np.ndarray
    rows: np.ndarray
    requests: np.ndarray
    stated: np.ndarray
    key: tuple


@dataclass
class _IdlePlan:
    gpu_ids: list[str]
    table: GpuTable
    groups: list[_IdleGroup]


def _idle_plan(cases: list[Case], catalog: Catalog) -> _IdlePlan:
    """What ``_predict_idle`` works out of the cases and the catalog alone: the same under any
    assumptions, so a ``Prepared`` set of cases keeps it."""
    gpu_ids = sorted({c.gpu for c in cases})
    table = GpuTable.build([catalog.gpu(g) for g in gpu_ids])
    groups = []
    for (_, engine), idx in _groups(cases, catalog).items():
        cs = [cases[i] for i in idx]
        mt = np.array([c.rule == "max_throughput" for c in cs])
        rows = np.flatnonzero(mt)
        # a run of N requests never has more than N in flight; its last wave is N mod B requests,
        # at that batch (batch 1 where none)
        requests = np.array([c.requests or np.inf for c in cs], float)
        key = (cs[0].model, engine, tuple((c.gpu, c.scheme, c.kv, c.tp, c.pp, c.ep, c.input_tokens,
                                           c.output_tokens, c.requests) for c in cs if c.rule == "max_throughput"))
        groups.append(_IdleGroup(
            idx=idx, cs=cs, engine=engine, model=catalog.models[cs[0].model],
            columns=_configs(cs, gpu_ids, np.zeros(len(cs))), fixed=np.array([c.batch for c in cs], float),
            mt=mt, rows=rows, requests=requests, stated=np.where(np.isfinite(requests), requests, 0.0), key=key))
    return _IdlePlan(gpu_ids, table, groups)


def _predict_idle(cases: list[Case], catalog: Catalog, o: Assumptions,
                  fitted: dict[str, float] | None = None,
                  plan: _IdlePlan | None = None) -> tuple[np.ndarray, list[str | None]]:
    out = np.full(len(cases), np.nan)
    why: list[str | None] = [None] * len(cases)
    plan = plan or _idle_plan(cases, catalog)
    table = plan.table
    for g in plan.groups:
        idx, cs, mt, rows, requests, stated = g.idx, g.cs, g.mt, g.rows, g.requests, g.stated
        o_engine = row_assumptions(o, g.engine, fitted)

        def grid(batch: np.ndarray, which: np.ndarray, g=g, o_engine=o_engine):
            # the group's rows ``which`` (positions in ``cs``) at ``batch``
            return evaluate(g.model, table, replace(g.columns.take(which), batch=batch.astype(float)), o_engine)

        m = len(cs)
        guess = _LARGEST.get(g.key) if len(rows) else None
        ahead = [] if guess is None else [guess, np.maximum(np.mod(stated[rows], np.maximum(guess, 1.0)), 1.0)]
        # the probe at batch 1 (what the weights leave for the KV cache, and whether the layout
        # is valid), each row not at its largest batch at its own and, where the group was seen
        # before, the others at the largest batch then found, in one evaluation (the physics
        # computes each row on its own: the same figures as apart)
        first = grid(np.concatenate([np.ones(m), g.fixed[~mt], *ahead]),
                     np.concatenate([np.arange(m), np.flatnonzero(~mt), *([rows, rows] if ahead else [])]))
        at = np.full(m, -1)
        at[~mt] = m + np.arange(m - len(rows))
        largest = np.minimum(np.clip(first.max_batch[:m], 1.0, CUDA_GRAPH_BATCH_CAP), requests)
        rest = np.mod(stated, np.maximum(largest, 1.0))
        full, off = first, 2 * m - len(rows)
        if len(rows) and (guess is None or not np.array_equal(guess, largest[rows])):
            # the rows at their largest batch (then their last wave's), now that it is known
            full, off = grid(np.concatenate([largest[rows], np.maximum(rest[rows], 1.0)]),
                             np.concatenate([rows, rows])), 0
            if len(_LARGEST) > 4096:
                _LARGEST.clear()
            _LARGEST[g.key] = largest[rows].copy()
        for k, c in enumerate(cs):
            why[idx[k]] = _invalid(first, k) if not first.valid[k] else None   # idle rows: only invalid layouts
            if not mt[k]:
                out[idx[k]] = _rule(c, first, int(at[k]), o_engine)
                continue
            j = off + int(np.searchsorted(rows, k))
            out[idx[k]] = _rule(c, full, j, o_engine)
            if c.requests:
                out[idx[k]] *= _finite_run(c.requests, largest[k], rest[k], float(full.throughput_tokens_per_s[j]),
                                           float(full.throughput_tokens_per_s[j + len(rows)]))
    return out, why


def _finite_run(n: int, batch: float, rest: float, x_full: float, x_rest: float) -> float:
    """Throughput of a run of ``n`` equal requests all sent at once, as a fraction of the
    steady state at ``batch``: floor(n / batch) waves at the full batch, then the ``rest``
    at their own, smaller batch (a wave of b requests takes b·O / X(b) at the model's own
    throughput X; docs/validation.md)."""
    full = (n - rest) / x_full + (rest / x_rest if rest > 0 else 0.0)
    return (n / full) / x_full


def _distinct(keys: list[tuple]) -> tuple[list[int], list[int]]:
    """(the first index of each distinct key, each index's position among those firsts)."""
    firsts: list[int] = []
    pos: dict[tuple, int] = {}
    where = []
    for i, k in enumerate(keys):
        if k not in pos:
            pos[k] = len(firsts)
            firsts.append(i)
        where.append(pos[k])
    return firsts, where


def _config_key(c: Case) -> tuple:
    return (c.gpu, c.scheme, c.kv, c.tp, c.pp, c.ep, c.batch, c.input_tokens, c.output_tokens, c.isl_cv2,
            c.load, c.replicas, c.pools, c.start, c.requests_per_client)


def predict_load(cases: list[Case], catalog: Catalog, o: Assumptions,
                 fitted: dict[str, float] | None = None) -> tuple[np.ndarray, list[str | None]]:
    """Rows measured under load: the closed forms of docs/load.md (physics/load.py's
    load_metrics) per replica, at the row's clients or rate divided over its replicas,
    Poisson arrivals or a closed loop whose clients start as the row's benchmark starts them
    (``rows.benchmark_run``), and the row's mean lengths and their spread; throughput
    summed over the replicas. Each distinct configuration is computed once."""
    out = np.full(len(cases), np.nan)
    why: list[str | None] = [None] * len(cases)
    gpu_ids = sorted({c.gpu for c in cases})
    table = GpuTable.build([catalog.gpu(g) for g in gpu_ids])
    for (_, engine, kind, start), idx in _groups(cases, catalog,
                                                lambda c: (c.load[0] if c.load else "", c.start)).items():
        firsts, where = _distinct([_config_key(cases[i]) for i in idx])
        cs = [cases[idx[f]] for f in firsts]
        model = catalog.models[cs[0].model]
        o_row = row_assumptions(o, engine, fitted)
        configs = _configs(cs, gpu_ids, np.array([c.batch for c in cs]))
        valid = evaluate(model, table, configs, o_row)
        phys = step_physics(model, table, configs, o_row)
        per_replica = np.array([c.load[1] / c.replicas if c.load else np.nan for c in cs])
        cv2 = np.array([c.isl_cv2 for c in cs], float)      # outputs drawn as the inputs are
        wl = Workload(isl=np.array([c.input_tokens for c in cs], float),
                      osl=np.array([c.output_tokens for c in cs], float), isl_cv2=cv2, osl_cv2=cv2,
                      start=start, requests_per_client=np.array([c.requests_per_client for c in cs], float))
        needed = {(cases[i].rule.removeprefix("load_"), cases[i].statistic) for i in idx   # every row's, not only
                  if cases[i].rule != "load_throughput"}                                   # each configuration's first
        quantiles = any(stat != "mean" for _, stat in needed)
        r = load_metrics(phys, scheduler(phys), wl, quantiles=quantiles, report=needed,
                         **({"clients": per_replica} if kind == "clients" else {"rate": per_replica}))
        for j, i in enumerate(idx):
            c, k = cases[i], where[j]
            why[i] = _invalid(valid, k)
            if why[i] is not None:
                continue
            if c.rule == "load_throughput":
                # an unstable open loop is served at saturation; a closed loop is always stable
                x = r.throughput_tokens_per_s[k] if r.stable[k] else r.saturation_rate[k] * c.output_tokens
                out[i] = x * c.replicas / (c.gpu_count if c.per_gpu else 1.0)
            else:
                value = r.get(c.rule.removeprefix("load_"), c.statistic)[k]
                out[i] = value * c.scale if r.stable[k] else np.inf
    return out, why


def predict_disagg(cases: list[Case], catalog: Catalog, o: Assumptions,
                   fitted: dict[str, float] | None = None) -> tuple[np.ndarray, list[str | None]]:
    """Disaggregated rows: the row's clients in a closed loop over its prefill and decode
    workers (planner/physics/disagg.py ``closed_loop``; where the counts are not stated, the
    pools of the nearest stated point of the row's recipe, else one worker of each:
    rows.pools_of); TTFT the prefill pool's (with the KV transfer) and the decode pool's
    admission (``disagg.decode_admission``), TPOT the decode pool's. Each distinct
    configuration is computed once (``disagg_loops``)."""
    out = np.full(len(cases), np.nan)
    why: list[str | None] = [None] * len(cases)
    for loop in disagg_loops(cases, catalog, o, fitted):
        r = loop.result
        for i, k in zip(loop.rows, loop.where):
            c = cases[i]
            for role, ev in zip(("prefill", "decode"), loop.checks):
                reason = _invalid(ev, k)
                if reason is not None and why[i] is None:
                    why[i] = f"the {role} pool: {reason}"
            if why[i] is not None:
                continue
            value = r.ttft[k] if c.rule == "load_ttft" else r.tpot[k]
            out[i] = value * c.scale if r.stable[k] else np.inf
    return out, why


@dataclass
class DisaggLoop:
    """One group's closed loops (``disagg_loops``): ``rows`` index the cases given, ``where``
    each one's configuration among ``configs`` (the distinct cases, computed once), ``result``
    the closed loop of each configuration, ``decode`` its decode pool's step physics and
    ``checks`` both pools' evaluations (which say where a layout does not fit)."""

    rows: list[int]
    where: list[int]
    configs: list[Case]
    result: ClosedLoopResult
    decode: StepPhysics
    checks: list


def disagg_loops(cases: list[Case], catalog: Catalog, o: Assumptions,
                 fitted: dict[str, float] | None = None) -> Iterator[DisaggLoop]:
    """The closed loops of disaggregated cases, one ``DisaggLoop`` per architecture, engine
    and client start: what ``predict_disagg`` reads its TTFT and TPOT from, and what a
    check of the decode pool's batch reads its internals from (benchmarks/disagg_tpot.py)."""
    gpu_ids = sorted({c.gpu for c in cases})
    table = GpuTable.build([catalog.gpu(g) for g in gpu_ids])
    for (_, engine, _), idx in _groups(cases, catalog, lambda c: (c.start,)).items():
        firsts, where = _distinct([_config_key(cases[i]) for i in idx])
        cs = [cases[idx[f]] for f in firsts]
        model = catalog.models[cs[0].model]
        o_row = row_assumptions(o, engine, fitted)
        batch = np.full(len(cs), float(CUDA_GRAPH_BATCH_CAP))
        pools = [c.pools for c in cs]
        assert all(p is not None for p in pools)
        dec_c = _configs(cs, gpu_ids, batch)
        pre_c = replace(dec_c, tp=np.array([p.prefill.tp for p in pools], float),   # type: ignore[union-attr]
                        ep=np.array([p.prefill.ep for p in pools], float))           # type: ignore[union-attr]
        checks = [evaluate(model, table, pre_c, o_row), evaluate(model, table, dec_c, o_row)]
        pre, dec = step_physics(model, table, pre_c, o_row), step_physics(model, table, dec_c, o_row)
        start = cs[0].start                      # one per group: the source's benchmark
        wl = Workload(isl=np.array([c.input_tokens for c in cs], float),
                      osl=np.array([c.output_tokens for c in cs], float),
                      isl_cv2=np.array([c.isl_cv2 for c in cs], float), start=start,
                      requests_per_client=np.array([c.requests_per_client for c in cs], float))
        r = closed_loop(pre, scheduler(pre), dec, scheduler(dec), wl,
                        clients=np.array([c.load[1] if c.load else np.nan for c in cs]),
                        prefill_replicas=np.array([p.prefill.workers for p in pools], float),  # type: ignore[union-attr]
                        decode_replicas=np.array([p.decode.workers for p in pools], float),    # type: ignore[union-attr]
                        link=np.array([p.link for p in pools]))                                # type: ignore[union-attr]
        yield DisaggLoop(rows=idx, where=where, configs=cs, result=r, decode=dec, checks=checks)


def _rule(c: Case, ev, k: int, o: Assumptions) -> float:
    if c.rule == "max_throughput":
        total = ev.throughput_tokens_per_s[k] * c.replicas
        return total / c.gpu_count if c.per_gpu else total
    if c.rule in ("static_throughput", "e2e"):
        r = {f: float(getattr(ev, f)[k]) for f in ("prefill_flops", "peak_flops", "ttft", "ttft_compute", "ttft_comm")}
        e2e = _static_batch_ttft(r, c.batch, o) + (c.output_tokens - 1) * float(ev.tpot[k])
        if c.rule == "e2e":
            return e2e
        per_replica = float(ev.concurrency[k]) * c.output_tokens / e2e
        return per_replica / (c.tp * c.pp) if c.per_gpu else per_replica * c.replicas
    if c.rule == "ttft":
        return float(ev.ttft[k]) * 1e3
    if c.rule == "prefill_rate":
        return c.input_tokens / float(ev.ttft[k])
    return 1.0 / float(ev.tpot[k])   # decode_rate


def _static_batch_ttft(r: dict, batch: int, o: Assumptions) -> float:
    """Prefill of ``batch`` prompts together: FLOPs and collectives scale with the batch,
    the weights are read once (docs/validation.md)."""
    t_flops = r["prefill_flops"] / (r["peak_flops"] * o.prefill_compute_efficiency)
    overhead = r["ttft"] - r["ttft_compute"] - r["ttft_comm"]
    return max(batch * t_flops, r["ttft_compute"]) + batch * r["ttft_comm"] + overhead
