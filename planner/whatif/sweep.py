"""What-if sweeps (issue 13, item 4; docs/whatif.md): the scenarios of a sweep file over a
base instance or a fleet (docs/fleet.md), each solved for its cheapest (or otherwise best)
plan or fleet, one row per scenario.

The driver expands the grid and the list, applies each scenario to the base instance and
validates and resolves it (so a bad scenario is a located error before anything runs).
Scenarios are then grouped by their physics (everything but the prices, when no budget is
set) and cut into tasks of a few scenarios; a task resolves each scenario from the base
instance and its changes inside the worker, builds the candidate table once per physics
group, and only re-prices it for the next scenario of the group (``repriced``: prices enter
after the physics, as ``Problem.with_prices`` intends). Results are sorted by scenario id,
carry no timing, and do not depend on the engine, the number of workers or the batching.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from planner.backends.base import BACKENDS
from planner.candidates.cache import PhysicsCache
from planner.candidates.table import Candidates, build_candidates, repriced
from planner.catalog.store import Catalog
from planner.errors import InputError, PlannerError
from planner.plan.result import PlanResult
from planner.plan.solve import default_backend, resolved, solve
from planner.resolve.problem import Problem, resolve_catalog, resolve_model
from planner.schemas.fleet import FleetSpec, is_fleet
from planner.schemas.plan import PlanSpec
from planner.schemas.sweep import Change, SweepSpec
from planner.whatif.executors import Executor, SerialExecutor
from planner.whatif.interrupts import whole
from planner.yamlio import Document, load_yaml

COLUMNS = ("status", "gpu", "gpus", "replicas", "tp", "pp", "ep", "quantization", "kv_dtype", "batch",
           "cost_per_hour", "cost_per_million_tokens", "demand", "demand_unit", "throughput_tokens_per_s",
           "ttft_ms", "tpot_ms", "ttft_p99_ms", "tpot_p99_ms", "power_w", "binding", "gap")
"""Result columns of each scenario, after its id and its axis values."""
FLEET_COLUMNS = ("status", "cost_per_hour", "gpus", "replicas", "configurations", "gpu_mix", "served_share",
                 "demand_requests_per_s", "power_w", "binding", "gap")
"""Result columns of each scenario of a fleet sweep (the base is a fleet instance, docs/fleet.md)."""


@dataclass(frozen=True)
class Shared:
    """What every worker needs once: the base instance (with its model resolved inline and
    its catalog resolved), the solver settings."""

    base: dict[str, Any]
    catalog: Catalog
    backend: str
    time_limit: float
    calibration: str
    reuse: bool = True          # re-price a physics group's table (False: rebuild it, to measure)
    fleet: bool = False         # the base is a fleet instance (planner fleet)
    gap: float = 0.0            # each solve stops once proven within it (relative; the sweep file's gap)


@dataclass
class SweepResult:
    sweep: str
    base: str
    backend: str
    axes: list[str]
    rows: list[dict[str, Any]]      # sorted by id
    fleet: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        return FLEET_COLUMNS if self.fleet else COLUMNS

    def to_dict(self) -> dict[str, Any]:
        feasible = sum(1 for r in self.rows if r["cost_per_hour"] is not None)
        return {"sweep": self.sweep, "base": self.base, "backend": self.backend, "axes": self.axes,
                "kind": "fleet" if self.fleet else "plan", "scenarios": len(self.rows), "with_a_plan": feasible,
                "results": self.rows}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"

    def to_csv(self) -> str:
        head = ["id", *self.axes, *self.columns]
        lines = [",".join(head)]
        for r in self.rows:
            cells = [r["id"], *(r["scenario"].get(a) for a in self.axes), *(r[c] for c in self.columns)]
            lines.append(",".join(_cell(x) for x in cells))
        return "\n".join(lines) + "\n"


def _cell(x: Any) -> str:
    if x is None:
        return ""
    text = x if isinstance(x, str) else json.dumps(x, sort_keys=True, separators=(",", ":"))
    return '"' + text.replace('"', '""') + '"' if any(ch in text for ch in ',"\n') else text


# -- scenarios -------------------------------------------------------------------------------------

def _plain(v: Any) -> Any:
    return v.model_dump(exclude_none=True) if isinstance(v, BaseModel) else v


def expand(spec: SweepSpec) -> list[tuple[str, dict[str, Any], tuple]]:
    """(id, {axis: value}, YAML path it comes from) for every scenario: the grid's, then the list's."""
    out: list[tuple[str, dict[str, Any], tuple]] = []
    if spec.grid is not None and spec.grid.axes():
        axes = spec.grid.axes()
        combos = list(itertools.product(*(values for _, values in axes)))
        width = max(4, len(str(len(combos))))
        for n, combo in enumerate(combos, 1):
            out.append((f"grid-{n:0{width}d}", {a: _plain(v) for (a, _), v in zip(axes, combo)}, ("grid",)))
    for i, s in enumerate(spec.scenarios):
        out.append((s.id, flatten(s), ("scenarios", i)))
    return out


def flatten(change: Change) -> dict[str, Any]:
    """A scenario's changes as {axis: value}, the grid's axis names."""
    out: dict[str, Any] = {}
    for name in ("demand_multiplier", "budget_usd_per_hour", "prices", "inventory", "gpus", "slo"):
        value = getattr(change, name)
        if isinstance(value, dict):
            out.update({f"{name}.{k}": _plain(v) for k, v in value.items()})
        elif name in change.model_fields_set:
            out[name] = _plain(value)
    return out


def apply(base: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The base instance's data with one scenario's changes (a new dict)."""
    data = copy.deepcopy(base)
    for axis, v in values.items():
        name, _, key = axis.partition(".")
        if name == "demand_multiplier":
            fleet = isinstance(data.get("workloads"), list)
            holders = [w for w in data["workloads"] if isinstance(w, dict)] if fleet else [data.get("workload") or {}]
            for holder in holders:
                demand = holder.get("demand")
                if demand is None and holder.get("trace") is not None:     # a trace's rate: scale its replay
                    holder["rate_scale"] = holder.get("rate_scale", 1.0) * v
                    continue
                if not isinstance(demand, dict):
                    raise ValueError("demand_multiplier needs a workload.demand (or a trace) in the base instance")
                for k in ("requests_per_s", "output_tokens_per_s"):
                    if demand.get(k) is not None:
                        demand[k] = demand[k] * v
                if demand.get("concurrency") is not None:
                    demand["concurrency"] = max(1, round(demand["concurrency"] * v))
        elif name == "budget_usd_per_hour":
            limits = data.setdefault("limits", {})
            if v is None:
                limits.pop("budget_usd_per_hour", None)
            else:
                limits["budget_usd_per_hour"] = v
        elif name == "prices":
            data.setdefault("prices", {}).setdefault("usd_per_gpu_hour", {})[key] = v
        elif name == "inventory":
            data.setdefault("limits", {}).setdefault("inventory", {})[key] = v
        elif name == "gpus":
            data.setdefault("search", {})["gpus"] = list(v)
        elif name == "slo":        # a fleet: every workload's target
            for holder in (data["workloads"] if isinstance(data.get("workloads"), list) else [data]):
                holder.setdefault("slo", {})[key] = v
        else:  # pragma: no cover - the schema lists every axis
            raise ValueError(f"unknown axis {axis}")
    return data


def physics_key(spec: PlanSpec | FleetSpec, p: Problem) -> str:
    """Equal for two scenarios whose candidate tables differ only in their prices: the same
    instance but for ``prices.usd_per_gpu_hour``, the same GPUs searched, and no budget (with a
    budget, the batch levels offered depend on how many replicas it buys, so on the prices:
    ``_smallest_batch_for_demand`` in planner/candidates).

    The instance but its limits and prices comes first, so that keys sorted (``tasks_of``)
    put scenarios that differ only in limits and prices side by side: most of their physics
    is the same cases (``_sweep_cache``), and a process taking a run of tasks computes it
    once (planner/whatif/executors.py ``share``: workers from the first task on, this
    process from the last one back)."""
    data = spec.model_dump(mode="json")
    if data["limits"].get("budget_usd_per_hour") is None:
        data["prices"] = {k: v for k, v in data["prices"].items() if k != "usd_per_gpu_hour"}
    money = {k: data.pop(k) for k in ("limits", "prices")}
    return json.dumps([data, money, list(p.table.ids), p.calibration], sort_keys=True)


# -- the worker's side -----------------------------------------------------------------------------

_SWEEP_CACHE: list[Any] = []
"""[the sweep's shared data, its physics cache] in this process (a worker, or the driver while
its sweep runs): every task of one sweep that runs here shares one cache."""


def _sweep_cache(shared: Shared) -> PhysicsCache:
    """This process's physics cache for ``shared``'s sweep, a new one for a new sweep (the
    cache is keyed by the physics inputs, so sharing it changes no figure: planner/candidates/cache.py)."""
    if not _SWEEP_CACHE or _SWEEP_CACHE[0] is not shared:
        _SWEEP_CACHE[:] = [shared, PhysicsCache()]
    cache: PhysicsCache = _SWEEP_CACHE[1]
    return cache


def run_batch(shared: Shared, task: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Solve a task's scenarios (in a worker): resolve each from the base and its changes,
    build each physics group's candidate table once, re-price it for the others; every build
    of the sweep in this process shares one physics cache (a scenario that changes a demand or
    a limit recomputes none of the physics its model, lengths and targets already had)."""
    tables: dict[str, Candidates] = {}
    cache = _sweep_cache(shared)
    rows = []
    for sid, values in task:
        p, spec = _resolved(shared.base, values, shared.calibration, shared.catalog, shared.fleet)
        key = physics_key(spec, p)
        if shared.reuse and key in tables:
            c = repriced(tables[key], p)
        else:
            c = tables[key] = build_candidates(p, cache=cache)
        r = whole(solve(p, c, backend=shared.backend, top_k=1, time_limit=shared.time_limit, gap=shared.gap))
        rows.append(fleet_row(sid, values, p, r) if shared.fleet else row(sid, values, p, r))
    return rows


def _resolved(base: dict[str, Any], values: dict[str, Any], calibration: str, catalog: Catalog,
              fleet: bool) -> tuple[Problem, PlanSpec | FleetSpec]:
    data = apply(base, values)
    spec = FleetSpec.model_validate(data) if fleet else PlanSpec.model_validate(data)
    return resolved(spec, None, calibration, catalog), spec


def fleet_row(sid: str, values: dict[str, Any], p: Problem, r: PlanResult) -> dict[str, Any]:
    """One fleet scenario: its cost, GPUs per type, configurations, served share, what binds."""
    a = r.answer(1)
    ok = a is not None and a.totals is not None and bool(r.plans)
    out: dict[str, Any] = {"id": sid, "scenario": values, "status": r.status, "gap": _fleet_gap(r) if ok else None}
    t = a.totals if a is not None else None
    out["cost_per_hour"] = t.cost_per_hour if t is not None else None
    out["gpus"], out["power_w"] = (t.gpus, t.power_w) if t is not None else (None, None)
    out["replicas"] = t.replicas if t is not None else None
    out["configurations"] = t.configurations if t is not None else None
    out["gpu_mix"] = ";".join(f"{g.gpu}:{g.used}" for g in a.gpus if g.used) if a is not None and ok else None
    out["served_share"] = t.served_share_weighted if t is not None else None
    out["demand_requests_per_s"] = sum(float(s.demand.requests_per_s or 0.0) for s in p.slots
                                       if s.demand is not None)
    out["binding"] = ";".join(b.limit for b in a.binding) if a is not None and ok else None
    return {k: _finite(v) for k, v in out.items()}


def _fleet_gap(r: PlanResult) -> float | None:
    """The largest gap of the objective phases: 0 for a proven phase without one, None (unknown,
    not 0) where a phase stopped short of proof without a bound."""
    gaps = []
    for ph in r.phases:
        if ph.kind != "objective":
            continue
        if ph.gap is None and ph.status != "optimal":
            return None
        gaps.append(ph.gap or 0.0)
    return max(gaps, default=None)


def row(sid: str, values: dict[str, Any], p: Problem, r: PlanResult) -> dict[str, Any]:
    out: dict[str, Any] = {"id": sid, "scenario": values, "status": r.status, "gap": r.gap}
    d = p.slots[0].demand
    out["demand"] = None if d is None else float(d.value)
    out["demand_unit"] = None if d is None else {"clients": "clients"}.get(d.kind, "output_tokens_per_s")
    plan = r.plans[0] if r.plans else None
    for k in ("gpu", "gpus", "replicas", "tp", "pp", "ep", "quantization", "kv_dtype", "batch", "cost_per_hour",
              "cost_per_million_tokens", "throughput_tokens_per_s", "ttft_ms", "tpot_ms", "power_w"):
        out[k] = getattr(plan, k) if plan is not None else None
    pct = plan.load.get("percentiles_ms", {}) if plan is not None else {}
    out["ttft_p99_ms"], out["tpot_p99_ms"] = pct.get("ttft_p99"), pct.get("tpot_p99")
    out["binding"] = plan.load.get("binding") if plan is not None else None
    return {k: _finite(v) for k, v in out.items()}


def _finite(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


# -- the driver's side -----------------------------------------------------------------------------

def prepare(spec: SweepSpec, doc: Document, base_doc: Document) -> tuple[Shared, list[tuple[str, dict, tuple]],
                                                                         dict[str, str]]:
    """Resolve the base once (its catalog files and model, so workers read no file), then
    apply, validate and resolve every scenario here: a bad one is a located error before any
    solve. Returns the shared data, the scenarios and each scenario's physics key."""
    fleet = is_fleet(base_doc.data)
    kind: type[PlanSpec] | type[FleetSpec] = FleetSpec if fleet else PlanSpec
    base = base_doc.validate(kind)
    if isinstance(base, FleetSpec):
        base.checked(base_doc)
    base_dir = None
    if base_doc.file:
        base_dir = Path(base_doc.file).parent
    catalog = resolve_catalog(base.catalog, base_dir)
    data = copy.deepcopy(base_doc.data)
    if isinstance(base, FleetSpec):
        for i, w in enumerate(base.workloads):
            if not isinstance(w.model, str):
                model = resolve_model(w.model, catalog, base_doc, ("workloads", i, "model"))
                data["workloads"][i]["model"] = model.model_dump(mode="json", exclude_none=True)
    elif not isinstance(base.model, str):
        model = resolve_model(base.model, catalog, base_doc, ("model",))
        data["model"] = model.model_dump(mode="json", exclude_none=True)
    data["catalog"] = []            # resolved above: the workers get the catalog itself
    for w in data["workloads"] if fleet else [data["workload"]]:
        if isinstance(w, dict) and isinstance(w.get("trace"), str) and base_dir is not None:
            w["trace"] = str(base_dir / w["trace"])     # relative to the base instance (an absolute path stays)
    if not fleet:
        data["top_k"] = 1
    if spec.backend is not None and spec.backend not in BACKENDS:
        raise doc.error("unknown backend", ("backend",), spec.backend, ", ".join(BACKENDS))
    backend = spec.backend or default_backend(base)
    shared = Shared(base=data, catalog=catalog, backend=backend, time_limit=spec.time_limit_s,
                    calibration=spec.calibration, fleet=fleet, gap=spec.gap)
    scenarios = expand(spec)
    keys: dict[str, str] = {}
    for sid, values, where in scenarios:
        try:
            p, s = _resolved(data, values, spec.calibration, catalog, fleet)
        except ValidationError as exc:
            e = base_doc.from_validation(exc, kind)
            raise doc.error(f"scenario {sid}: {e.message} (at {e.path} of the base instance)", where,
                            values) from None
        except (ValueError, PlannerError) as exc:
            msg = exc.message if isinstance(exc, InputError) else str(exc)
            extra = f" (at {exc.path})" if isinstance(exc, InputError) and exc.path else ""
            raise doc.error(f"scenario {sid}: {msg}{extra}", where, values) from None
        keys[sid] = physics_key(s, p)
    return shared, scenarios, keys


def tasks_of(scenarios: list[tuple[str, dict, tuple]], keys: dict[str, str],
             batch_size: int | None) -> list[list[tuple[str, dict[str, Any]]]]:
    """Scenarios of one physics group together, cut into tasks of ``batch_size``: the
    default depends only on the number of scenarios, never on the engine."""
    n = len(scenarios)
    size = batch_size or max(1, min(16, math.ceil(n / 8)))
    order = sorted(scenarios, key=lambda s: (keys[s[0]], s[0]))
    out: list[list[tuple[str, dict[str, Any]]]] = []
    for _, group in itertools.groupby(order, key=lambda s: keys[s[0]]):
        items = [(sid, values) for sid, values, _ in group]
        out += [items[i:i + size] for i in range(0, len(items), size)]
    return out


def sweep(spec: SweepSpec, doc: Document, base_doc: Document, executor: Executor | None = None,
          progress: Callable[[int], None] | None = None,
          on_start: Callable[[int], None] | None = None, *, reuse: bool = True) -> SweepResult:
    """Solve every scenario of a sweep with ``executor`` (serial by default); ``reuse=False``
    rebuilds every candidate table (the fast path's benchmark)."""
    shared, scenarios, keys = prepare(spec, doc, base_doc)
    shared = replace(shared, reuse=reuse)
    tasks = tasks_of(scenarios, keys, spec.batch_size)
    if on_start:
        on_start(len(scenarios))
    try:
        done = (executor or SerialExecutor()).run(run_batch, shared, tasks, [len(t) for t in tasks], progress)
    finally:
        _SWEEP_CACHE.clear()        # this process's tasks are done: its cache goes
    rows = sorted((r for batch in done for r in batch), key=lambda r: r["id"])
    axes: list[str] = []
    for _, values, _ in scenarios:
        axes += [a for a in values if a not in axes]
    return SweepResult(sweep=_name(doc), base=spec.base, backend=shared.backend, axes=axes, rows=rows,
                       fleet=shared.fleet)


def load_base(spec: SweepSpec, doc: Document) -> Document:
    """The base instance (or fleet) of a sweep, loaded: ``base`` is relative to the sweep file
    (to the working folder for a sweep given as a mapping); a missing file is an input error
    located at ``base``."""
    base_path = Path(spec.base)
    if not base_path.is_absolute() and not doc.file.startswith("<"):
        base_path = Path(doc.file).parent / base_path
    if not base_path.is_file():
        raise doc.error("base instance not found", ("base",), str(base_path),
                        "an instance file, relative to the sweep file")
    base_doc = load_yaml(str(base_path))
    base_doc.require_mapping("an instance file")
    return base_doc


def _name(doc: Document) -> str:
    return Path(doc.file).name if doc.file else "<sweep>"
