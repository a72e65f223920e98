"""What a solve returns, as data: one result type for one workload or many (a plan is a fleet
of one). Every field is a figure or a fact (the constraint, the value used, the limit, its
unit and spec path); planner/report/wording.py turns them into sentences for the CLI and the
HTML report. A result records its inputs and round-trips through JSON
(``PlanResult.from_dict(result.to_dict())``).

- ``Plan``: one deployment: replicas of one configuration serving a share of one workload's
  traffic (all of it, with one configuration), its figures at that load and its explanation.
  ``PlanResult.plans`` lists the deployments of every ranked answer, each with its ``rank``.
- ``Answer``: what the deployments of one rank add up to: the objective phases' values,
  totals, per workload and per GPU type, what binds, the moves from today's fleet, and
  whether it ties an earlier rank exactly.
- ``Phase``: one solve of the lexicographic order (docs/formulation.md section 4b).
- ``Diagnosis``, ``Shortfall``, ``Together``: why nothing is feasible.
- ``Marginal``, ``ModeVerdict``, ``Baseline``, ``Relaxation``: the what-if drivers' results
  (planner/whatif/); ``Unfinished``: one the time limit cut short."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from planner.physics.quant import SCHEMES


@dataclass
class Fact:
    """One reason, as data. ``constraint`` names what binds or rules out (memory, tpot,
    demand, budget, ...); ``value`` is the figure used against ``limit``, both in ``unit``;
    ``path`` is the spec path of the limit when the input sets it; ``context`` holds the other
    figures a sentence needs (named with their units)."""

    constraint: str
    value: float | None = None
    limit: float | None = None
    unit: str = ""
    path: str | None = None
    context: dict[str, Any] = field(default_factory=dict)


@dataclass
class Explanation:
    batch_limit: list[Fact]            # the first binds; the others would bind too
    count_limit: Fact
    regime: Fact
    headroom: list[Fact]               # memory, and each latency target at the operating point
    capacity: Fact | None = None       # what caps a replica's request rate (a target, or the utilisation ceiling)
    versus_next: Fact | None = None    # on a rank's first deployment: why this answer ranks above the next


@dataclass
class Plan:
    """One deployment of a ranked answer."""

    rank: int
    workload: str
    gpu: str
    gpus: int
    nodes: int
    tp: int
    pp: int
    ep: int
    replicas: int
    quantization: str
    kv_dtype: str
    batch: int
    concurrency: float                # requests in flight, all replicas (Little's law at the operating point)
    ttft_ms: float
    tpot_ms: float
    e2e_latency_ms: float
    throughput_tokens_per_s: float
    throughput_tokens_per_s_per_gpu: float
    price_usd_per_gpu_hour: float | None
    price_kind: str | None            # on-demand, reserved, serverless, estimate (planner/catalog/data/gpus.yaml)
    price_date: str | None
    quality: str                      # what the weight format costs in accuracy (docs/support.md)
    cost_per_hour: float | None
    cost_per_million_tokens: float | None
    power_w: float | None
    memory: dict[str, float]
    mbu: float | None                 # None for a prefill-pool replica (its step is compute, not bandwidth)
    mfu: float
    regime: str
    regime_shares: dict[str, float]
    objective_value: float            # this deployment's part of the first objective (SI units)
    load: dict[str, Any] = field(default_factory=dict)   # the operating point: rate, utilisation, percentiles
    simulation: dict[str, Any] | None = None             # the simulator's re-score (planner/plan/rescore.py)
    explanation: Explanation | None = None
    candidate: int = -1
    role: str = "aggregated"          # aggregated, or a prefill- or decode-pool replica (docs/disaggregation.md)
    share: float = 1.0                # of its workload's demand this deployment carries
    slo_margins_ms: dict[str, float] = field(default_factory=dict)   # target - value at capacity, per target path
    phase: str = "decode"             # the figures mbu, mfu, regime describe: decode, or prefill (a prefill pool)
    checkpoint: dict[str, Any] | None = None   # the checkpoint that serves its format (planner/catalog/checkpoints.py)
    offer: str = "rented"             # how its GPUs are paid for: owned, rented, on_demand, spot, commit_1y, commit_3y
    committed: bool = False           # committed capacity (owned, a commitment) rather than burst (paid as it runs)
    spare_replicas: int = 0           # a spot deployment's spares: in cost_per_hour, not in replicas nor capacity
    term_years: float | None = None   # a commitment's minimum term (None: not a commitment)
    commitment_usd: float | None = None   # what the term commits to: cost_per_hour x the term's hours
    uncalibrated: dict[str, Any] | None = None   # with a calibration: the figures it moves, under the priors


@dataclass
class Phase:
    """One solve of the lexicographic order: an objective of the instance, or a documented
    tie-break (docs/formulation.md section 4b). ``value`` as a person reads it (a served
    share 0..1, $/hour, GPUs, ...), in ``unit``."""

    objective: str
    kind: str = "objective"             # objective | tie-break
    status: str = "optimal"
    value: float | None = None
    unit: str = ""
    gap: float | None = None
    seconds: float | None = None
    start: bool = False                 # the starting solution stood in: the solver found none in time
    lower_bound: float | None = None    # a proven bound on the value (with ``start``)


@dataclass
class WorkloadUse:
    workload: str
    model: str
    weight: float
    demand_kind: str                   # tokens_per_s | clients
    demand: float                      # in ``demand_kind``
    requests_per_s: float | None
    served_share: float
    configurations: int
    replicas: int
    gpus: int
    cost_per_hour: float | None
    cost_share: float
    capacity: float                    # of its deployments, in the demand's unit
    load_vs_capacity: float | None


@dataclass
class GpuUse:
    gpu: str
    used: int
    inventory: int | None
    nodes: int
    cost_per_hour: float | None
    offer: str = "rented"             # owned, rented, on_demand, spot, commit_1y, commit_3y (docs/workloads.md)
    committed: bool = False           # committed capacity, paid whether it runs or not, rather than burst
    spare_gpus: int = 0               # GPUs of its spot deployments' spare replicas (not in ``used``)


@dataclass
class Totals:
    cost_per_hour: float | None
    gpus: int
    nodes: int
    power_w: float | None
    replicas: int
    configurations: int
    served_share_weighted: float


@dataclass
class Binding:
    """A shared limit used to within one replica of the smallest configuration meeting targets."""

    limit: str            # its YAML path
    used: float
    available: float
    unit: str
    gpu: str | None = None


@dataclass
class Layout:
    """A configuration by its catalog names, any batch (never an internal row key)."""

    gpu: str
    tp: int
    pp: int
    ep: int
    quantization: str
    kv_dtype: str
    role: str = "aggregated"


@dataclass
class Move:
    """One configuration of one workload, today and in the answer: replicas started, stopped, kept
    (any batch level: the scheduler's batch is a flag, not a move)."""

    workload: str
    layout: Layout
    gpus_per_replica: int
    before: int          # replicas today
    after: int           # replicas in the answer
    start: int
    stop: int
    keep: int


@dataclass
class GpuMoves:
    gpu: str
    start: int           # GPUs
    stop: int
    keep: int


@dataclass
class Answer:
    """What the deployments of one rank add up to."""

    rank: int
    objective_value: float                      # the first objective's value (SI units)
    values: dict[str, float] = field(default_factory=dict)    # each phase's value, as ``Phase.value``
    tied_with: int | None = None                # the first rank it equals exactly (objectives and GPUs)
    start: bool = False                         # the solve's starting answer stood in (planner/plan/start.py)
    totals: Totals | None = None
    workloads: list[WorkloadUse] = field(default_factory=list)
    gpus: list[GpuUse] = field(default_factory=list)
    binding: list[Binding] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)            # against ``current`` (a fleet running today)
    gpu_moves: list[GpuMoves] = field(default_factory=list)


@dataclass
class Diagnosis:
    """Why a family of options (a GPU type, a quantization) is ruled out, as a fact."""

    family: str                 # gpu | quantization
    name: str
    fact: Fact
    workload: str | None = None   # with several workloads, whose options


@dataclass
class Alone:
    layout: Layout
    batch: int
    replicas: int
    gpus: int
    cost_per_hour: float | None


@dataclass
class Shortfall:
    """One workload when nothing is feasible: how many configurations meet its targets, how
    many fit the limits on their own, and what it needs alone."""

    workload: str
    path: str
    configurations: int
    meet_targets: int
    fit_limits_alone: int
    reason: str | None                  # targets | limits | None (it can be served alone)
    cheapest_alone: Alone | None = None


@dataclass
class Together:
    """Every workload can be served alone, not all within the shared limits: what the
    cheapest of each alone needs in total."""

    cost_per_hour: float
    gpus: dict[str, float]
    budget_usd_per_hour: float | None
    inventory: dict[str, int]


@dataclass
class Marginal:
    """What one more unit of a binding limit is worth, by a re-solve (planner/whatif/marginal.py)."""

    limit: str            # YAML path
    kind: str             # gpu | budget | power
    amount: float         # the unit added: 1 GPU, $1/hour, 1000 W
    objective: str
    value: float
    improvement: float    # of the objective, in its reported unit (positive: better)
    status: str
    gpu: str | None = None


@dataclass
class ModeDeployment:
    role: str
    replicas: int
    gpu: str
    tp: int
    utilization: float | None
    binding: str | None


@dataclass
class ModeRun:
    status: str
    cost_per_hour: float | None
    deployments: list[ModeDeployment] = field(default_factory=list)
    configurations_meeting_targets: int | None = None


@dataclass
class ModeVerdict:
    """One workload that may run prefill/decode pools: the answer re-solved with it forced to
    aggregated replicas and to pools (planner/whatif/modes.py), which wins and why."""

    workload: str
    mode: str
    chosen: str                         # aggregated | disaggregated | mixed
    cost_per_hour: float | None
    aggregated: ModeRun
    disaggregated: ModeRun
    winner: str | None                  # aggregated | disaggregated | tie | None (neither serves)
    margin: float | None
    within_uncertainty: bool
    uncertainty: float
    reason: str                         # cheaper | tie | neither | no_aggregated_configuration | aggregated_over_limits
    #                                     | no_pool_configuration | pools_over_limits


@dataclass
class Break:
    limit: str
    used: float
    available: float


@dataclass
class Baseline:
    """A way of sizing without the joint optimum (planner/whatif/baselines.py)."""

    baseline: str           # alone | greedy | current
    cost_per_hour: float | None
    gpus: dict[str, int]
    served_share: float
    breaks: list[Break] = field(default_factory=list)
    saving_per_hour: float | None = None
    unmatched_gpus: float = 0.0    # current: GPUs running configurations outside the searched table


@dataclass
class Relaxation:
    limit: str            # YAML path of the limit
    current: Any
    needed: Any           # the smallest value that makes the instance feasible (None: no value does)
    patch: dict | None    # merge into the instance file to apply it
    plan: dict | None     # the plan the relaxed instance gives (None if still infeasible)


@dataclass
class Unfinished:
    """A what-if the command's one time limit cut short (planner/whatif/budget.py): what it
    did not state, never a figure read from a solve the limit stopped."""

    whatif: str             # verification | simulation | marginal | disaggregation | relaxations
    seconds: float | None   # the share of the time limit it had (0: none was left; None: --reproducible)
    left: list[str]         # what it does not state: limits, workloads, deployments


@dataclass
class Tightening:
    """One configuration whose simulation missed a target at the load the closed form put it
    at: its capacity at SLO lowered to what the simulation holds (planner/whatif/verify.py)."""

    round: int                  # the verification round that simulated it (1: the first answer)
    workload: str
    configuration: str          # GPU, layout, precision, batch (Candidates.describe)
    target: str                 # the YAML path of the first target it missed
    statistic: str
    simulated_ms: float         # that target's figure in the simulation, at the closed form's capacity load
    target_ms: float
    closed_form_capacity: float  # per replica, in ``unit``: what the closed form allowed
    simulated_capacity: float   # per replica, in ``unit``: the highest load its simulation meets every target at
    unit: str                   # requests/s | clients


@dataclass
class Parting:
    """Where rank 1's simulation and the closed forms part, and why (planner/whatif/verify.py
    ``partings``): a target missed in the simulator, or met with a simulated figure further
    from the closed form's than docs/load.md section 9's bounds, the closed form's figure
    beside it, and the same configuration simulated at the same load under the closed form's
    own assumptions (its arrival process, lengths sampled from the distributions) to tell the
    cause: ``trace`` (that run is within the bounds of the closed form: the trace's own
    arrivals and order of lengths, which the stationary load model does not see, make the
    difference) or ``load_model`` (it is not: the closed form's own approximation)."""

    workload: str
    configuration: str
    target: str                 # the YAML path of the target missed
    statistic: str
    target_ms: float
    simulated_ms: float         # the plan's simulation (the trace replayed, where the demand is a trace's)
    closed_form_ms: float | None
    assumptions_ms: float | None  # simulated under the closed form's arrival process and sampled lengths
    cause: str                  # trace | load_model
    met: bool = False           # whether the simulation meets the target all the same


@dataclass
class Verification:
    """The simulator in the verdict (docs/load.md section 9): rank 1's aggregated deployments
    simulated; each that missed a target had its capacity lowered and the instance was
    re-solved, until rank 1 simulates within its targets or the rounds or time ran out."""

    status: str                 # holds | missed | not_checked
    rounds: int                 # simulations of rank 1 (1: the first answer held; 0: no time was left)
    tightened: list[Tightening] = field(default_factory=list)
    stopped: str | None = None  # why it ended before holding: rounds | time_limit | error
    parted: list[Parting] = field(default_factory=list)   # where the two models part, and why


@dataclass
class PlanResult:
    status: str
    objective: str
    backend: str
    plans: list[Plan]
    searched_configurations: int
    solve_seconds: float | None
    gap: float | None
    excluded_gpus: dict[str, str]
    inputs: dict[str, Any] = field(default_factory=dict)     # models, assumptions, calibration, prices, catalog
    notes: list[str] = field(default_factory=list)
    model_size: dict[str, int] = field(default_factory=dict)
    diagnosis: list[Diagnosis] = field(default_factory=list)      # when infeasible: per family
    relaxations: list[Relaxation] = field(default_factory=list)   # when infeasible: smallest change per limit
    interrupted: bool = False                                     # Ctrl-C: the plans found so far
    unsupported: list[dict[str, str]] = field(default_factory=list)  # searched combinations the engine does not run
    phases: list[Phase] = field(default_factory=list)             # rank 1's solves, in order
    answers: list[Answer] = field(default_factory=list)           # per rank
    shortfalls: list[Shortfall] = field(default_factory=list)     # when infeasible: per workload
    together: Together | None = None                              # when infeasible only together
    marginal: list[Marginal] = field(default_factory=list)
    baselines: list[Baseline] = field(default_factory=list)
    disaggregation: list[ModeVerdict] = field(default_factory=list)
    verification: Verification | None = None  # the simulator's check of rank 1 (planner/whatif/verify.py)
    unfinished: list[Unfinished] = field(default_factory=list)  # what-ifs the time limit cut short

    def deployments(self, rank: int = 1) -> list[Plan]:
        """The deployments of one ranked answer."""
        return [p for p in self.plans if p.rank == rank]

    def answer(self, rank: int = 1) -> Answer | None:
        return next((a for a in self.answers if a.rank == rank), None)

    def label(self, plan: Plan) -> str:
        """A deployment's name in the result: its rank, and ``.K`` for the K-th deployment of a
        rank with several (launch scripts, report sections)."""
        mine = [id(p) for p in self.plans if p.rank == plan.rank]
        return str(plan.rank) if len(mine) < 2 or id(plan) not in mine else f"{plan.rank}.{mine.index(id(plan)) + 1}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for plan in d["plans"]:
            plan.pop("candidate", None)
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> PlanResult:
        """The inverse of ``to_dict`` (a report or launch script rebuilt from the JSON)."""
        return _build(PlanResult, d)


RESULT_EXTRAS: dict[str, dict[str, Any]] = {
    "status_detail": {"type": "string", "description": "what the status promises (docs/exit-codes.md), in words; "
                      "added by the CLI"}}
"""Top-level fields the CLI adds to a result it writes (``planner plan --output``)."""


def json_schema(tp: Any, extras: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The JSON Schema of a result dataclass as written (``asdict``, then strict JSON: a figure
    that is not a finite number is null), derived from the dataclasses so it cannot drift: every
    number may be null; no object takes a field its dataclass lacks (``from_dict`` refuses them),
    but for ``extras`` at the top level; ``Plan.candidate`` (an internal row, never written) is
    left out."""
    from pydantic import TypeAdapter

    schema = TypeAdapter(tp).json_schema(mode="validation")

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "number":
                node["type"] = ["number", "null"]
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(schema)
    for name, node in [*schema.get("$defs", {}).items(), (None, schema)]:
        node["additionalProperties"] = False
        if name == "Plan":
            node["properties"].pop("candidate", None)
    schema["properties"].update(extras or {})
    return {"$schema": SCHEMA_DIALECT, **schema}


SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
"""The JSON Schema dialect of every schema the planner prints (pydantic writes 2020-12)."""


def _build(tp: Any, x: Any) -> Any:
    """``x`` (as ``asdict`` wrote it) as an instance of type ``tp``: dataclasses field by field
    (missing fields take their defaults; an unknown one is refused, but at the top level,
    where the CLI adds its own), lists and dicts element by element."""
    if x is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _build(inner[0], x) if len(inner) == 1 else x
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(x, dict):
            raise TypeError(f"{tp.__name__}: expected a mapping, got {type(x).__name__}")
        hints = typing.get_type_hints(tp)
        known = {f.name for f in dataclasses.fields(tp)}
        unknown = set(x) - known - {"candidate"}
        if unknown and tp is not PlanResult:       # a result file may carry more (status_detail)
            raise TypeError(f"{tp.__name__}: unknown field(s) {', '.join(sorted(unknown))}")
        return tp(**{k: _build(hints[k], v) for k, v in x.items() if k in known})
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(x, list):
            raise TypeError(f"expected a list, got {type(x).__name__}")
        return [_build(item, v) for v in x]
    if origin is dict:
        _, value = typing.get_args(tp)
        if not isinstance(x, dict):
            raise TypeError(f"expected a mapping, got {type(x).__name__}")
        return {k: _build(value, v) for k, v in x.items()}
    return x


PLAN_UNCALIBRATED: tuple[str, ...] = ("ttft_ms", "tpot_ms", "throughput_tokens_per_s", "cost_per_million_tokens")
"""The figures of a plan's deployment that a calibration moves, shown again under the priors."""
PLAN_UNCALIBRATED_LOAD: tuple[str, ...] = ("capacity_requests_per_s_per_replica", "capacity_tokens_per_s_per_replica",
                                           "requests_per_s_per_replica", "utilization", "percentiles_ms")
"""The same, in its operating point (``Plan.load``): capacity at SLO and the load it carries."""


def beside(priors: Mapping[str, Any], keys: tuple[str, ...], nested: Mapping[str, tuple[str, ...]]
           ) -> dict[str, Any]:
    """The figures ``keys`` (and ``nested``: a mapping's own keys) of a result computed under the
    priors, for showing beside the calibrated ones (issue 22 item 4): the one place estimates
    and plans pick them. A figure the priors do not give is None."""
    out: dict[str, Any] = {k: priors.get(k) for k in keys}
    for name, inner in nested.items():
        part = priors.get(name)
        if part is not None:
            out[name] = {k: part.get(k) for k in inner}
    return out


def quality_of(scheme: str, release: str | None = None) -> str:
    """The accuracy cost of a weight format, in words the plan carries (docs/support.md): the
    release format (``release``, the model's checkpoint as published) is the reference, whatever
    its bits; another format is judged by its fewest bits (a MoE's experts included)."""
    if scheme == (release or "w16a16"):
        return "the release format: the model as published" + ("" if release in (None, "w16a16") else
                                                                  f" ({SCHEMES[scheme].description})")
    bits = min(SCHEMES[scheme].bits_per_weight, SCHEMES[scheme].expert_bits)
    if bits >= 16:
        return "16-bit weights: the reference"
    if bits >= 8:
        return "8-bit weights: near-lossless for most models (check your task)"
    return "LOSSY: 4-bit weights; validate accuracy on your task before serving"
