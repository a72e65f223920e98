"""What-if sweeps (issue 13, item 4; docs/whatif.md): the scenarios of a sweep file over a
base instance, each solved for its cheapest (or otherwise best) plan, one row per scenario.

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

from planner.candidates import Candidates, Limits, build_candidates, replicas_allowed
from planner.catalog import Catalog
from planner.errors import InputError, PlannerError
from planner.plan.result import PlanResult
from planner.plan.solve import solve
from planner.pricing import cost_per_hour, cost_per_million_tokens
from planner.resolve import Problem, resolve, resolve_catalog, resolve_model
from planner.schemas.plan import PlanSpec
from planner.schemas.sweep import Change, SweepSpec
from planner.whatif.executors import Executor, SerialExecutor
from planner.yamlio import Document

COLUMNS = ("status", "gpu", "gpus", "replicas", "tp", "pp", "ep", "quantization", "kv_dtype", "batch",
           "cost_per_hour", "cost_per_million_tokens", "demand", "demand_unit", "throughput_tokens_per_s",
           "ttft_ms", "tpot_ms", "ttft_p99_ms", "tpot_p99_ms", "power_w", "binding", "gap")
"""Result columns of each scenario, after its id and its axis values."""


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


@dataclass
class SweepResult:
    sweep: str
    base: str
    backend: str
    axes: list[str]
    rows: list[dict[str, Any]]      # sorted by id

    def to_dict(self) -> dict[str, Any]:
        feasible = sum(1 for r in self.rows if r["gpu"] is not None)
        return {"sweep": self.sweep, "base": self.base, "backend": self.backend, "axes": self.axes,
                "scenarios": len(self.rows), "with_a_plan": feasible, "results": self.rows}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"

    def to_csv(self) -> str:
        head = ["id", *self.axes, *COLUMNS]
        lines = [",".join(head)]
        for r in self.rows:
            cells = [r["id"], *(r["scenario"].get(a) for a in self.axes), *(r[c] for c in COLUMNS)]
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
            demand = (data.get("workload") or {}).get("demand")
            if not isinstance(demand, dict):
                raise ValueError("demand_multiplier needs a workload.demand in the base instance")
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
        elif name == "slo":
            data.setdefault("slo", {})[key] = v
        else:  # pragma: no cover - the schema lists every axis
            raise ValueError(f"unknown axis {axis}")
    return data


def physics_key(spec: PlanSpec, p: Problem) -> str:
    """Equal for two scenarios whose candidate tables differ only in their prices: the same
    instance but for ``prices.usd_per_gpu_hour``, the same GPUs searched, and no budget (with a
    budget, the batch levels offered depend on how many replicas it buys, so on the prices:
    ``_smallest_batch_for_demand`` in planner/candidates)."""
    data = spec.model_dump(mode="json")
    if data["limits"].get("budget_usd_per_hour") is None:
        data["prices"] = {k: v for k, v in data["prices"].items() if k != "usd_per_gpu_hour"}
    return json.dumps([data, list(p.table.ids), p.calibration], sort_keys=True)


def repriced(c: Candidates, p: Problem) -> Candidates:
    """The candidate table ``c`` with the prices of ``p``, a problem with the same physics
    (``physics_key``): no physics is re-run. Equal, field by field, to
    ``build_candidates(p)`` (tests/test_sweep.py checks it)."""
    price = p.prices[c.configs.gpu]
    cost_h = cost_per_hour(c.ev.gpus, price)
    lim, s = p.spec.limits, p.spec.search
    limits = Limits(budget_usd_per_hour=lim.budget_usd_per_hour, power_cap_w=lim.power_cap_w, max_gpus=s.max_gpus,
                    max_nodes=s.max_nodes, inventory=dict(lim.inventory))
    allowed = replicas_allowed(limits, p.table.ids, c.configs.gpu, c.ev.gpus, cost_h, c.ev.power_w,
                               c.slots_per_replica, c.per_node)
    cap = allowed.copy()
    if p.spec.objective != "throughput":
        cap = np.where(np.isnan(c.demand), cap, np.minimum(cap, c.replicas_needed))
    return replace(c, slots=p.slots, price=price, cost_per_hour=cost_h,
                   cost_per_million_tokens=cost_per_million_tokens(cost_h, c.tokens_per_s),
                   replicas_allowed=allowed, replica_cap=np.maximum(cap, 1.0), limits=limits)


# -- the worker's side -----------------------------------------------------------------------------

def run_batch(shared: Shared, task: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Solve a task's scenarios (in a worker): resolve each from the base and its changes,
    build each physics group's candidate table once, re-price it for the others."""
    tables: dict[str, Candidates] = {}
    rows = []
    for sid, values in task:
        spec = PlanSpec.model_validate(apply(shared.base, values))
        p = resolve(spec, None, shared.calibration, shared.catalog)
        key = physics_key(spec, p)
        if shared.reuse and key in tables:
            c = repriced(tables[key], p)
        else:
            c = tables[key] = build_candidates(p)
        r = solve(p, c, backend=shared.backend, top_k=1, time_limit=shared.time_limit)
        rows.append(row(sid, values, p, r))
    return rows


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
    base = base_doc.validate(PlanSpec)
    base_dir = None
    if base_doc.file:
        base_dir = Path(base_doc.file).parent
    catalog = resolve_catalog(base.catalog, base_dir)
    data = copy.deepcopy(base_doc.data)
    if not isinstance(base.model, str):
        model = resolve_model(base.model, catalog, base_doc, ("model",))
        data["model"] = model.model_dump(mode="json", exclude_none=True)
    data["catalog"] = []            # resolved above: the workers get the catalog itself
    data["top_k"] = 1
    shared = Shared(base=data, catalog=catalog, backend=spec.backend, time_limit=spec.time_limit_s,
                    calibration=spec.calibration)
    scenarios = expand(spec)
    keys: dict[str, str] = {}
    for sid, values, where in scenarios:
        try:
            s = PlanSpec.model_validate(apply(data, values))
            p = resolve(s, None, spec.calibration, catalog)
        except ValidationError as exc:
            e = base_doc.from_validation(exc, PlanSpec)
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
    done = (executor or SerialExecutor()).run(run_batch, shared, tasks, [len(t) for t in tasks], progress)
    rows = sorted((r for batch in done for r in batch), key=lambda r: r["id"])
    axes: list[str] = []
    for _, values, _ in scenarios:
        axes += [a for a in values if a not in axes]
    return SweepResult(sweep=_name(doc), base=spec.base, backend=spec.backend, axes=axes, rows=rows)


def _name(doc: Document) -> str:
    return Path(doc.file).name if doc.file else "<sweep>"
