"""The planner as a Python library (docs/api.md): what the commands do, for a program.

Each function takes its input as a spec object (``PlanSpec``, ``FleetSpec``, ``SweepSpec``,
``EstimateSpec``), a mapping with the content of an input file (validated as the file would
be: a bad value is a ``planner.errors.InputError`` naming the path in the mapping, the value
and what is accepted), or the path of a YAML file; it returns the typed result the command
renders. Each calls the same library function as its command (no second path):

- ``plan``: ``planner plan`` (planner/whatif/answer.py ``answer``) -> ``PlanResult``
- ``fleet``: ``planner fleet`` (the same ``answer``: a plan is a fleet of one) -> ``PlanResult``
- ``schedule``: ``planner schedule`` (planner/plan/schedule.py) -> ``ScheduleResult``
- ``estimate``: ``planner estimate FILE`` (planner/estimate/run.py) -> ``Estimate``
- ``sweep``: ``planner sweep`` (planner/whatif/sweep.py) -> ``SweepResult``
- ``validate``: ``planner validate`` (planner/fidelity/validate.py) -> ``Validation``
- ``schema``: ``planner schema KIND``: the JSON Schema of an input file or a result.
- ``to_json``: a result as the command's ``--json`` prints it.

``to_json(result)`` is what the command's ``--json`` prints (``result.to_dict()`` as strict
JSON: a figure that is not a finite number is null); ``PlanResult.from_dict`` reads it back. Relative paths
inside a mapping (a trace, a catalog override, a sweep's ``base``) are taken from the working
folder; inside a file, from the file's folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from planner.backends.base import BACKENDS
from planner.errors import InputError
from planner.estimate.run import Estimate, estimate_from_spec
from planner.plan.result import RESULT_EXTRAS, SCHEMA_DIALECT, PlanResult, json_schema
from planner.plan.schedule import ScheduleResult
from planner.plan.solve import check_gap, check_run
from planner.schemas.estimate import EstimateSpec, estimate_spec_of
from planner.schemas.fleet import FleetSpec, fleet_spec_of, is_fleet
from planner.schemas.plan import PlanSpec, plan_spec_of, with_objective
from planner.schemas.sweep import SweepSpec, sweep_spec_of
from planner.whatif.answer import answer
from planner.whatif.executors import EXECUTORS, default_executor, get_executor
from planner.whatif.schedule_sweep import schedule_with_sweep
from planner.whatif.sweep import SweepResult, load_base
from planner.whatif.sweep import sweep as run_sweep
from planner.yamlio import Document, dump_json, load_yaml

if TYPE_CHECKING:
    from planner.fidelity.validate import Validation

__all__ = ["SCHEMAS", "estimate", "fleet", "plan", "schedule", "schema", "sweep", "to_json", "validate"]

S = TypeVar("S", bound=BaseModel)
Source = BaseModel | Mapping[str, Any] | str | os.PathLike
"""An input: a spec object, a mapping with an input file's content, or a YAML file's path."""
MAPPING = "<dict>"
"""The file name an error gives for an input passed as a mapping."""


def _load(source: Source, kind: type[S], parse: Callable[[Document], S]) -> tuple[S, Document | None]:
    """The spec and its document (None for a spec object) from any ``Source``."""
    if isinstance(source, kind):
        return source, None
    if isinstance(source, Mapping):
        doc = Document(data=dict(source), file=MAPPING)
    elif isinstance(source, (str, os.PathLike)):
        doc = load_yaml(source)
    else:
        raise InputError(f"not an input the planner reads ({type(source).__name__})", path="spec",
                         accepted=f"a {kind.__name__}, a dict with a file's content, or a path to a YAML file")
    return parse(doc), doc


def _check_backend(backend: str | None) -> None:
    if backend is not None and backend not in BACKENDS:
        raise InputError("unknown backend", path="backend", value=backend, accepted=", ".join(BACKENDS))


def plan(spec: PlanSpec | Mapping[str, Any] | str | os.PathLike, *, backend: str | None = None,
         top_k: int | None = None, time_limit: float = 60.0, objective: str | None = None,
         calibration: str = "none", simulate: bool = True, marginal: bool = False, gap: float = 0.0) -> PlanResult:
    """Ranked deployments for one workload: ``planner plan``.

    ``spec``: an instance (docs/instances.md): ``PlanSpec``, mapping or YAML path.
    ``backend``: a solver of planner/backends/base.py ``BACKENDS`` (default cpsat).
    ``top_k``: answers to rank, 1..50 (default: the instance's ``top_k``).
    ``time_limit``: seconds for all solves together. ``objective``: replaces the instance's.
    ``calibration``: 'none', 'default' (the shipped fit) or a calibration file.
    ``simulate``: check rank 1 with the discrete-event simulator and re-solve where it misses
    (``result.verification``; the CLI's default). ``marginal``: also re-solve for what one more
    unit of each binding limit is worth (``result.marginal``; off, as with ``--json``).
    ``gap``: stop each solve once its answer is proven within this relative gap of the best
    bound, a fraction in [0, 1) (0.005: 0.5 %; 0: to the proven optimum); an answer stopped
    there has status 'feasible' and its ``gap``. The exhaustive backend ignores it (exact).

    Returns a ``PlanResult``: ``status`` ('optimal', 'feasible', 'infeasible', 'time_limit', ...),
    ``plans`` (every ranked deployment, ``rank`` 1 first; ``deployments(1)`` for one rank),
    ``answers`` (totals per rank), ``diagnosis`` and ``relaxations`` when nothing is feasible.
    Raises ``InputError`` for bad input (the CLI's exit 2)."""
    check_run(time_limit, top_k, names=("time_limit", "top_k"))
    check_gap(gap, "gap")
    _check_backend(backend)
    s, doc = _load(spec, PlanSpec, plan_spec_of)
    s = with_objective(s, doc, objective, option="objective")
    return answer(s, doc, backend=backend, top_k=top_k, time_limit=time_limit, calibration=calibration,
                  simulate=simulate, marginal=marginal, gap=gap)


def fleet(spec: FleetSpec | Mapping[str, Any] | str | os.PathLike, *, backend: str | None = None,
          time_limit: float = 60.0, calibration: str = "none", simulate: bool = False, marginal: bool = False,
          baselines: bool = True, gap: float = 0.0) -> PlanResult:
    """One joint plan for several workloads on a shared inventory: ``planner fleet``.

    ``spec``: a fleet (docs/fleet.md): ``FleetSpec``, mapping or YAML path. ``backend``:
    default milp. ``time_limit``, ``calibration``, ``marginal``, ``gap``: as for ``plan``.
    ``simulate``: re-score each aggregated deployment with the simulator (off, as in the CLI).
    ``baselines``: compare with planning each workload alone, greedily and (with ``current``)
    the fleet running today (``result.baselines``; as in the CLI).

    Returns a ``PlanResult`` of one rank: its deployments (``plans``, each with its
    ``workload`` and ``share``), ``answers[0]``'s per workload and per GPU type totals, what
    binds and the moves from ``current``."""
    check_run(time_limit, names=("time_limit", "top_k"))
    check_gap(gap, "gap")
    _check_backend(backend)
    s, doc = _load(spec, FleetSpec, fleet_spec_of)     # a file or a mapping is checked as it is read
    return answer(s if doc is not None else s.checked(), doc, backend=backend, time_limit=time_limit,
                  calibration=calibration, simulate=simulate, marginal=marginal, baselines=baselines, gap=gap)


def schedule(spec: PlanSpec | FleetSpec | Mapping[str, Any] | str | os.PathLike, *, backend: str | None = None,
             time_limit: float = 60.0, calibration: str = "none", start_costs: Sequence[float] = (),
             gap: float = 0.0) -> ScheduleResult:
    """A fleet per period of a demand profile, as one program over the periods: ``planner schedule``.

    ``spec``: a plan or a fleet whose demand has a ``profile`` (docs/workloads.md section 8):
    ``PlanSpec``, ``FleetSpec``, mapping or YAML path (a fleet when it lists ``workloads``).
    ``backend``: default milp. ``time_limit``, ``calibration``: as for ``plan``; ``gap``: as for
    ``plan``, for the schedule's solve (the static fleet and the per-period optima stay exact).
    ``start_costs``: also solve the schedule at each of these $ per GPU started
    (``result.start_costs``; the CLI's ``--start-costs``).

    Returns a ``ScheduleResult``: ``periods`` (each period's deployments and GPUs held),
    ``usd_per_day``, ``static`` (the static fleet: one fleet all cycle, each period at its own
    demand and SLO) and ``per_period_optima`` (a
    lower bound), ``saving_vs_static`` and the ``autoscaler`` bounds."""
    check_run(time_limit, names=("time_limit", "top_k"))
    check_gap(gap, "gap")
    _check_backend(backend)
    if isinstance(spec, (PlanSpec, FleetSpec)):
        s: PlanSpec | FleetSpec = spec.checked() if isinstance(spec, FleetSpec) else spec
        doc = None
    else:
        data = dict(spec) if isinstance(spec, Mapping) else load_yaml(spec).data if isinstance(
            spec, (str, os.PathLike)) else None
        s, doc = _load(spec, FleetSpec, fleet_spec_of) if is_fleet(data) else _load(spec, PlanSpec, plan_spec_of)
    return schedule_with_sweep(s, doc, backend=backend or "milp", time_limit=time_limit, calibration=calibration,
                               start_costs=start_costs, gap=gap)


def estimate(spec: EstimateSpec | Mapping[str, Any] | str | os.PathLike, *, calibration: str = "none") -> Estimate:
    """One fixed configuration's physics: ``planner estimate FILE``.

    ``spec``: an estimate file (docs/instances.md): ``EstimateSpec``, mapping or YAML path:
    model, gpu, tp, pp, ep, quantization, kv_dtype, batch, lengths, optionally a load.
    Returns an ``Estimate``: memory (GiB), step times, TTFT and TPOT (ms), throughput, cost,
    the regime; figures under load in ``under_load`` when the spec states one."""
    s, doc = _load(spec, EstimateSpec, estimate_spec_of)
    return estimate_from_spec(s, doc, calibration=calibration)


def sweep(spec: SweepSpec | Mapping[str, Any] | str | os.PathLike, *, executor: str | None = None,
          workers: int = 1, address: str | None = None,
          progress: Callable[[int], None] | None = None) -> SweepResult:
    """Every scenario of a sweep solved: ``planner sweep``.

    ``spec``: a sweep (docs/whatif.md): ``SweepSpec``, mapping or YAML path; its ``base`` is
    relative to the sweep file (to the working folder for a spec object or a mapping).
    ``executor``: one of planner/whatif/executors.py ``EXECUTORS`` (default: process with
    several ``workers``, else serial); ``address``: a Ray cluster's. ``progress``: called with
    the number of scenarios each finished task held.

    Returns a ``SweepResult``: one row per scenario (``rows``, sorted by id: its status and
    cheapest plan, or a fleet's totals), the same whatever the executor."""
    s, doc = _load(spec, SweepSpec, sweep_spec_of)
    if doc is None:
        doc = Document(data=s.model_dump(exclude_unset=True), file=f"<{SweepSpec.__name__}>")
    name = executor or default_executor(workers)
    if name not in EXECUTORS:
        raise InputError("unknown executor", path="executor", value=name, accepted=", ".join(EXECUTORS))
    return run_sweep(s, doc, load_base(s, doc), get_executor(name, workers, address), progress)


def validate(csv_path: str | os.PathLike, *, calibration: str = "none", catalog: Sequence[str] = ()) -> Validation:
    """The model against published measurements: ``planner validate``.

    ``csv_path``: a measurements CSV (docs/validation.md). ``calibration``: as for ``plan``.
    ``catalog``: catalog override files, merged in order. Returns a ``Validation``: every row
    with its prediction or why it has none (``rows``), medians by metric, GPU family and group
    (``summary``, ``by_family``, ``by_group``), the grouped ``tables`` and the ``worst`` rows."""
    from planner.fidelity.validate import validate_file  # off the plan path (docs/architecture.md)

    return validate_file(os.fspath(csv_path), calibration=calibration, catalog=catalog)


def to_json(result: PlanResult | Estimate | SweepResult | Validation | ScheduleResult) -> str:
    """A result as its command's ``--json`` prints it (without the CLI's ``status_detail``):
    sorted keys, and a figure that is not a finite number as null, never NaN."""
    return dump_json(result.to_dict())


def _spec_schema(model: type[BaseModel]) -> dict[str, Any]:
    return {"$schema": SCHEMA_DIALECT, **model.model_json_schema()}


def _validation_schema() -> dict[str, Any]:
    from planner.fidelity.validate import Validation

    return json_schema(Validation)


SCHEMAS: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
    "instance": ("an instance file of planner plan (docs/instances.md)", lambda: _spec_schema(PlanSpec)),
    "fleet": ("a fleet file of planner fleet (docs/fleet.md)", lambda: _spec_schema(FleetSpec)),
    "sweep": ("a sweep file of planner sweep (docs/whatif.md)", lambda: _spec_schema(SweepSpec)),
    "estimate": ("an estimate file of planner estimate (docs/instances.md)", lambda: _spec_schema(EstimateSpec)),
    "result": ("the result of planner plan and planner fleet (--json, --output FILE.json)",
               lambda: json_schema(PlanResult, RESULT_EXTRAS)),
    "schedule-result": ("the result of planner schedule (--json, --output FILE.json)",
                        lambda: json_schema(ScheduleResult)),
    "estimate-result": ("the result of planner estimate --json", lambda: json_schema(Estimate)),
    "validate-result": ("the result of planner validate --json", _validation_schema),
}
"""The JSON Schemas the planner prints (``planner schema KIND``): name -> (what it describes,
how it is made: pydantic's for an input file, derived from the result dataclasses for a
result, planner/plan/result.py ``json_schema``)."""


def schema(kind: str = "instance") -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of an input file or a result: a key of ``SCHEMAS``."""
    if kind not in SCHEMAS:
        raise InputError("unknown schema", path="kind", value=kind, accepted=", ".join(SCHEMAS))
    return SCHEMAS[kind][1]()
