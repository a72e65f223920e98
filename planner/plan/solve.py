"""The one solve stage, for one workload (`planner plan`) or many (`planner fleet`): a plan
is a fleet of one (docs/architecture.md).

For each rank in turn, the phases of the lexicographic order are solved one after the other
(docs/formulation.md section 4b): the instance's objectives, then the documented tie-breaks
(fewer GPUs, then the rows' order, planner/candidates/objectives.py TIE_BREAK), each later
phase keeping every earlier one at the value it reached (``Candidates.bounds``). The answer
of a rank is then cut (constraints.Formulation.add_cut) and the next rank solved the same
way, so the first answer does not depend on how many are asked for, nor on the backend. A
slot that splits its traffic enforces its configuration count lazily (only on slots whose
optimum breaks it) while no cut or tie-break needs its choice binaries.

Every backend is driven alike: the linear backends get the model and a starting hint
(planner/plan/start.py, also the answer when the first phase ends without one in time); the
exhaustive oracle ranks the same phases by enumeration, in its own terms."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np

import constraints
import constraints.schedule
import constraints.schedule_static
from constraints import choice
from planner.backends.base import HAS_SOLUTION, Backend, Feature, PhaseInterrupted, Solution, Status, get_backend
from planner.candidates.cache import PhysicsCache, picked
from planner.candidates.objectives import OBJECTIVES, served_weights, tie_breaks
from planner.candidates.schedule import PeriodTables
from planner.candidates.table import Candidates, build_candidates, with_objective
from planner.catalog.store import Catalog
from planner.errors import InputError
from planner.plan import start as starting
from planner.plan.describe import Picks, describe, under_priors
from planner.plan.diagnose import diagnose
from planner.plan.explain import explain_plans
from planner.plan.rescore import simulate_plans
from planner.plan.result import Answer, Phase, Plan, PlanResult
from planner.resolve.problem import Problem, resolve, resolve_fleet
from planner.resolve.schedule import at_peak
from planner.schemas.fleet import FleetSpec
from planner.schemas.plan import PlanSpec
from planner.yamlio import Document

TIE_BREAK_SHARE, TIE_BREAK_FLOOR = 0.05, 1.0
"""Each tie-break phase has at most this share of the time limit (and at least this many
seconds, within what is left): with one deployment per workload it is a solve over the tied
rows only (milliseconds); a large fleet has many equal answers, and an unproven tie-break
keeps the best it found, says so, and leaves the objectives proven."""

KEEP_TOLERANCE = 1e-6
"""Relative slack on an earlier phase's optimum kept by a later phase, and absolute in the
unit a person reads the objective in ($/hour, ms, GPUs; ``Objective.scale``): CP-SAT rounds
the row's coefficients conservatively, and an exact bound could cut off the optimum itself.
Answers within it are ties (docs/formulation.md section 4b); the exhaustive oracle keeps its
own copy of the rule."""


MAX_TIME_LIMIT = 86_400.0
"""The longest time limit accepted for one run: a day."""
MAX_RANKS = 50
"""The most ranked answers one run may ask for (as an instance's ``top_k``)."""


def check_run(time_limit: float, top_k: int | None = None, *,
              names: tuple[str, str] = ("--time-limit", "--top")) -> None:
    """A run's time limit (finite seconds, at most a day) and ranks asked for (1..50), or an input
    error located at the option or keyword that gave it (``names``)."""
    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)) or not math.isfinite(time_limit) \
            or not 0 < time_limit <= MAX_TIME_LIMIT:
        raise InputError("time limit out of range", path=names[0], value=time_limit,
                         accepted=f"seconds, 0 < S <= {MAX_TIME_LIMIT:.0f}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_RANKS):
        raise InputError(f"{names[1]} must be between 1 and {MAX_RANKS}", path=names[1], value=top_k)


def check_gap(gap: float, name: str = "--gap") -> None:
    """A relative gap target (a fraction, 0 <= gap < 1: 0.005 stops once an answer is proven within
    0.5 % of the optimum), or an input error located at the option or keyword ``name``."""
    if isinstance(gap, bool) or not isinstance(gap, (int, float)) or not math.isfinite(gap) or not 0 <= gap < 1:
        raise InputError("relative gap out of range", path=name, value=gap,
                         accepted="a fraction 0 <= G < 1 (0.005: within 0.5 % of the proven bound; 0: optimal)")


def gap_note(gap: float) -> str:
    """The note a result solved to a gap target carries (its status and gap say where it stopped)."""
    return (f"solved to a relative gap target of {gap:.2%}: each phase stopped once its answer was proven "
            f"within it of the best bound; a phase so stopped is 'feasible' with its gap, and 'optimal' only "
            f"where its optimum was proven all the same")


@dataclass
class Solved:
    """One ranked answer as the solver gave it: status, (row, replicas) chosen, the share of
    each slot's demand served, each phase's log and reached value."""

    status: Status
    picks: Picks
    served: np.ndarray
    phases: list[Phase]
    size: dict[str, int] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False         # Ctrl-C in a phase after the first: the answer of those finished


def objective_phases(problem: Problem) -> tuple[str, ...]:
    """The instance's own objectives, in the order they are solved (a fleet's list; cost
    before change, cost after served demand: schemas/fleet.py ``FleetSpec.phases``)."""
    phases = getattr(problem.spec, "phases", None)
    return tuple(phases) if phases else (str(problem.spec.objective),)


def first_phase_view(problem: Problem, cands: Candidates, phases: tuple[str, ...] | None = None) -> Candidates:
    """The table as the first phase reads it: its objective, served share free when
    served_demand is one of the objectives."""
    names = phases or objective_phases(problem)
    return replace(with_objective(cands, names[0]), partial="served_demand" in names)


def prepare(spec: PlanSpec | FleetSpec, doc: Document | None = None, *, objective: str | None = None,
            calibration: str | None = None, cache: PhysicsCache | None = None
            ) -> tuple[PlanSpec | FleetSpec, Problem, Candidates]:
    """An instance (one workload, or a fleet of several) resolved, with its candidate table;
    ``objective`` replaces a plan instance's own; ``cache``: physics kept across calls
    (planner/candidates/cache.py: the same figures, bit for bit)."""
    if isinstance(spec, PlanSpec) and objective is not None and objective != spec.objective:
        spec = PlanSpec.model_validate(spec.model_dump() | {"objective": objective})
    problem = resolved(spec, doc, calibration)
    return spec, problem, build_candidates(problem, cache=cache)


def resolved(spec: PlanSpec | FleetSpec, doc: Document | None = None, calibration: str | None = None,
             catalog: Catalog | None = None) -> Problem:
    """The instance resolved as a plan or a fleet reads it, for every command that plans it
    (plan, fleet, sweeps, Pareto fronts, relaxations): a demand profile at its busiest period
    (``at_peak``, said in the result's notes). ``catalog``: resolved catalog files (a sweep's)."""
    problem = (resolve_fleet(spec, doc, calibration, catalog) if isinstance(spec, FleetSpec)
               else resolve(spec, doc, calibration, catalog))
    return at_peak(spec, problem, doc)


def plan(spec: PlanSpec | FleetSpec, doc: Document | None = None, *, backend: str | None = None,
         top_k: int | None = None, time_limit: float = 60.0, objective: str | None = None,
         calibration: str | None = None, simulate: bool = False, cache: PhysicsCache | None = None,
         gap: float = 0.0) -> PlanResult:
    """Resolve an instance (one workload, or a fleet of several), build its candidate table
    and rank ``top_k`` answers. The default backend: cpsat for one workload, milp for a fleet
    (``default_backend``; highs scales further, with a proven gap: benchmarks/fleet_scale.py).
    When nothing is feasible the result carries the diagnosis; the smallest relaxations,
    marginal values, the verdicts on disaggregation and the baselines are what-ifs above this
    function (planner/whatif/). ``cache``: the physics of the cases computed so far, kept by a
    caller that plans many alike instances (``prepare``). ``gap``: as for ``solve``."""
    t0 = time.perf_counter()
    spec, problem, cands = prepare(spec, doc, objective=objective, calibration=calibration, cache=cache)
    deadline = time.perf_counter() + time_limit      # one limit for the solve and the re-score together
    result = solve(problem, cands, backend=backend or default_backend(spec), top_k=top_k or spec.ranks(),
                   time_limit=time_limit, started=t0, gap=gap)
    with_priors(spec, doc, cands, result, calibration)
    if simulate:
        rescore(problem, cands, result, deadline=deadline)
    return result


def with_priors(spec: PlanSpec | FleetSpec, doc: Document | None, cands: Candidates, result: PlanResult,
                calibration: str | None) -> None:
    """With a calibration, each ranked deployment's moved figures under the priors beside its own
    (``Plan.uncalibrated``; planner/plan/describe.py ``under_priors``): the instance resolved again
    without it, the answer's configurations kept."""
    if calibration in (None, "none") or not result.plans:
        return
    prior = resolved(spec, doc, None)
    under_priors(prior, cands, result.plans)


def rescore(problem: Problem, cands: Candidates, result: PlanResult, deadline: float | None = None) -> None:
    """The simulator's re-score of every aggregated deployment (planner/plan/rescore.py; a
    pool replica serves half a request and is checked through the pair), stopped at
    ``deadline`` (a ``time.perf_counter()`` time: what the command's one time limit leaves
    it, planner/whatif/budget.py); a deployment it cuts short says so in its ``simulation``."""
    if not result.plans:
        return
    try:
        simulate_plans(problem, cands, [p for p in result.plans if p.role == "aggregated"], deadline=deadline)
    except KeyboardInterrupt:       # Ctrl-C while re-scoring: the plans stand, some unsimulated
        result.interrupted = True


def default_backend(spec: PlanSpec | FleetSpec) -> str:
    """cpsat for a plan, milp (CBC) for a fleet: CBC proves the tie-break phases of the shipped
    fleets in their time share where HiGHS (which scales further and reports a proven gap:
    --backend highs, benchmarks/fleet_scale.py) may stop short of them on a loaded machine."""
    return "milp" if isinstance(spec, FleetSpec) else "cpsat"


def solve(problem: Problem, cands: Candidates, *, backend: str = "cpsat", top_k: int = 1, time_limit: float = 60.0,
          started: float | None = None, phases: tuple[str, ...] | None = None, tie_break: bool = True,
          gap: float = 0.0) -> PlanResult:
    """Rank up to ``top_k`` distinct answers of a resolved problem's candidate table.
    ``phases``: the objectives (default: the instance's); ``tie_break``: solve the documented
    tie-breaks after them (off for what-if re-solves that read only the first value);
    ``gap``: each phase's solve stops once its answer is proven within this relative gap of
    the best bound (``check_gap``; 0: to the proven optimum). An answer stopped there is
    ``feasible``, its phase and the result carry the gap reached, and a note says so; the
    exhaustive oracle ignores it (its answers are proven optima)."""
    t0 = time.perf_counter() if started is None else started
    objectives = phases or objective_phases(problem)
    names = objectives + (tie_breaks(cands, objectives) if tie_break else ())
    solver = get_backend(backend)
    base = first_phase_view(problem, cands, objectives)
    deadline = time.perf_counter() + time_limit
    first: Solved | None = None
    cuts: list[frozenset[int]] = []
    plans: list[Plan] = []
    answers: list[Answer] = []
    interrupted = False
    try:
        for rank in range(1, top_k + 1):
            s = rank_one(base, solver, backend, names, len(objectives), tuple(cuts), deadline,
                         _change_slack(problem), max(TIE_BREAK_FLOOR, TIE_BREAK_SHARE * time_limit), gap)
            first = first or s
            interrupted = s.interrupted      # Ctrl-C after its first phase: this rank stands, no more
            if not s.picks:
                break
            ps, a = describe(problem, rows_view(base, [j for j, _ in s.picks]), s.picks, s.served, rank, s.values,
                             _si_value(base, objectives[0], s))
            a.start = any(p.start for p in s.phases)
            plans, answers = plans + ps, answers + [a]
            cuts.append(frozenset(int(cands.config[j]) for j, _ in s.picks))
            if interrupted or time.perf_counter() >= deadline:
                break
    except KeyboardInterrupt:
        interrupted = True     # keep what was found (earlier ranks); the CLI exits 130
    if first is None:
        status = Status.INTERRUPTED if interrupted else Status.TIME_LIMIT
        first = Solved(status, [], np.zeros(cands.n_slots), [])
    status = first.status if answers or not interrupted else Status.INTERRUPTED
    mark_ties(answers, objectives)
    explain_plans(problem, rows_view(base, [p.candidate for p in plans]), plans, answers)
    infeasible = not plans and status == Status.INFEASIBLE and not interrupted
    diagnosis, shortfalls, together = diagnose(problem, base) if infeasible else ([], [], None)
    size = dict(first.size)
    if "after_screening" in size:
        size |= {"candidates_fixed_by_screening": int(len(cands) - size["after_screening"]),
                 "candidates_pruned_as_dominated": int(size["after_screening"] - size["after_pruning"])}
    reached = next((p.gap for p in first.phases if p.kind == "objective"), None) if answers else None
    return PlanResult(status=status.value, objective=objectives[0], backend=backend, plans=plans,
                      searched_configurations=cands.searched, solve_seconds=time.perf_counter() - t0, gap=reached,
                      excluded_gpus=dict(problem.excluded), inputs=problem.inputs(), model_size=size,
                      diagnosis=diagnosis, interrupted=interrupted, unsupported=problem.unsupported(),
                      phases=first.phases, answers=answers, shortfalls=shortfalls, together=together,
                      notes=list(problem.notes) + ([gap_note(gap)] if gap and Feature.LINEAR_MODEL in solver.features
                                                   else []))


def rows_view(c: Candidates, rows: list[int]) -> Candidates:
    """The table as an answer's description reads it: its physics (``ev``, ``load``) at
    ``rows`` from the cache's stores, a field not read yet not gathered for every row
    (planner/candidates/cache.py ``picked``: the same figures); the rest, and what the table
    computed once (``spare_cost``, per-row objective values), the table's own."""
    view = replace(c, ev=picked(c.ev, rows), load=None if c.load is None else picked(c.load, rows))
    view.__dict__.update({k: v for k, v in c.__dict__.items() if k in ("spare_cost", "has_demand", "_per_row")})
    return view


def solve_phases(problem: Problem, cands: Candidates, *, backend: str, time_limit: float,
                 phases: tuple[str, ...] | None = None, tie_break: bool = False, gap: float = 0.0) -> Solved:
    """The first answer only, as the solver gives it (no figures): the what-if drivers'
    re-solve, which reads a phase's value or the choice (planner/whatif/); ``gap`` as for
    ``solve`` (a schedule's periods)."""
    objectives = phases or objective_phases(problem)
    names = objectives + (tie_breaks(cands, objectives) if tie_break else ())
    s = rank_one(first_phase_view(problem, cands, objectives), get_backend(backend), backend, names,
                 len(objectives), (), time.perf_counter() + time_limit, _change_slack(problem),
                 max(TIE_BREAK_FLOOR, TIE_BREAK_SHARE * time_limit), gap)
    if s.interrupted:       # a what-if reads one phase's value: a Ctrl-C there stops it, as before
        raise KeyboardInterrupt
    return s


def _change_slack(problem: Problem) -> float:
    return problem.spec.change.max_extra_cost if isinstance(problem.spec, FleetSpec) else 0.0


def _si_value(c: Candidates, name: str, s: Solved) -> float:
    """The first objective of an answer in SI units (a plan's ``objective_value``): the sum
    of its deployments' parts, or for a latency objective the slot's one value."""
    obj = OBJECTIVES[name]
    if name == "served_demand":
        return float(s.values.get(name, 0.0))
    parts = [obj.value(c, j, r) for j, r in s.picks]
    return max(parts) if name in ("tpot", "ttft") else float(sum(parts))


def mark_ties(answers: list[Answer], objectives: tuple[str, ...]) -> None:
    """``tied_with``: the first earlier rank whose objective values and GPUs equal this one's
    exactly (within the solver tolerance): the documented order alone put it first."""
    for k, a in enumerate(answers):
        for b in answers[:k]:
            if b.tied_with is None and all(_same(a.values.get(n), b.values.get(n))
                                           for n in (*objectives, "gpus")):
                a.tied_with = b.rank
                break


def _same(x: float | None, y: float | None) -> bool:
    """Two phase values (as ``Phase.value``, in the unit a person reads) tie."""
    if x is None or y is None:
        return x is y
    return abs(x - y) <= KEEP_TOLERANCE * max(abs(x), abs(y)) + KEEP_TOLERANCE


def rank_one(base: Candidates, solver: Backend, backend: str, names: tuple[str, ...], n_objectives: int,
             cuts: tuple[frozenset[int], ...], deadline: float, change_slack: float,
             tie_seconds: float = math.inf, gap: float = 0.0) -> Solved:
    """One ranked answer: every phase in turn, each later one keeping the earlier ones. The
    status is the weakest of the objective phases' (optimal only if each is); a tie-break
    phase has at most ``tie_seconds``, and without an answer in time it leaves the answer
    of the phase before (its own status says so). Each solve stops once proven within
    ``gap`` (relative). A Ctrl-C in a phase after the first leaves the answer of the phases
    finished the same way, that phase ``interrupted`` and ``Solved.interrupted`` set; in the
    first, nothing is proven and the KeyboardInterrupt goes on to the caller."""
    slack = {name: (change_slack if name == "cost_per_hour" and k + 1 < len(names) and names[k + 1] == "change"
                    else KEEP_TOLERANCE) for k, name in enumerate(names)}
    if Feature.LINEAR_MODEL not in solver.features:      # the independent oracle: enumeration, no model
        t0 = time.perf_counter()
        cut_at: str | None = None
        try:
            st, chosen, shares, reached = solver.rank(base, names, slack, cuts,  # type: ignore[attr-defined]
                                                     deadline=deadline)
        except PhaseInterrupted as ctrl_c:
            # Ctrl-C once its first phase was decided: the rank stands as the phases decided leave
            # it, as for the other backends below; in the enumeration or the first phase, nothing
            # is proven and the KeyboardInterrupt goes on to the caller
            (st, chosen, shares, reached), cut_at = ctrl_c.answer, ctrl_c.phase
        took = time.perf_counter() - t0
        done = [Phase(n, "objective" if k < n_objectives else "tie-break", st.value,
                      _reported(base, n, v) if n != "served_demand" else v, OBJECTIVES[n].unit, 0.0, took)
                for k, (n, v) in enumerate(reached.items())]
        if cut_at is not None:
            done.append(Phase(cut_at, "objective" if names.index(cut_at) < n_objectives else "tie-break",
                              Status.INTERRUPTED.value))
            if names.index(cut_at) < n_objectives:     # a later objective unfinished: the answer unproven
                st = Status.FEASIBLE
        return Solved(st, chosen, shares, done, {}, {p.objective: p.value for p in done if p.value is not None},
                      cut_at is not None)
    bounds: list[tuple[str, float]] = []
    picks: Picks = []
    served = np.zeros(base.n_slots)
    log: list[Phase] = []
    values: dict[str, float] = {}
    status = Status.OPTIMAL
    size: dict[str, int] = {}
    limited: tuple[int, ...] | None = () if base.split else None
    rounds = 0
    building = 0.0             # seconds the last model took to build
    start: starting.Start | None = None
    interrupted = False
    for k, name in enumerate(names):
        objective = k < n_objectives
        kind = "objective" if objective else "tie-break"
        kept = (len(log), picks, served, status, dict(values))   # as the phases before left them
        try:
            until = deadline if objective else min(deadline, time.perf_counter() + tie_seconds)
            if cuts:
                limited = None               # a cut reads every choice binary
            sol: Solution | None = None
            f: constraints.Formulation | None = None
            while True:       # configuration limits enforced lazily: only on slots whose optimum breaks them
                if not objective and f is None and time.perf_counter() + building >= until:
                    # no time left for this tie-break beyond building its model (as long as the last
                    # one took): it is not built (a fleet's: seconds); an objective phase is always
                    # built and solved in what is left, as its status depends on it
                    sol = None
                    break
                c = constraints.objective.share_terms(replace(with_objective(base, name), partial=base.partial,
                                                              bounds=tuple(bounds), limited=limited), base)
                if f is None or limited is None or not choice.limit(f, set(limited)):
                    built = time.perf_counter()
                    f = sol = None                   # the last model (and its solver's copy) freed before the next
                    f = constraints.build(c, cuts)   # else the rows were added to the model its solver keeps
                    building = time.perf_counter() - built
                else:
                    c = f.cands
                size = dict(f.size) if k == 0 else size
                empty = [s for s in range(c.n_slots) if not len(f.alive_in(s))]
                if empty and not c.partial:       # a workload no configuration can serve: proven, no solver needed
                    sol = Solution(Status.INFEASIBLE, None)
                    break
                if k == 0:
                    start = starting.starting_answer(f)
                if time.perf_counter() >= until:
                    sol = None
                    break
                f.hint = start.values if start is not None and k == 0 else \
                    constraints.assignment(f, picks) if picks else None
                sol = solver.solve(f, max(until - time.perf_counter(), 1e-3), gap=gap)
                rounds += 1
                if sol.status not in HAS_SOLUTION or sol.values is None or limited is None:
                    break
                over = starting.over_configuration_limit(c, decode(f, sol.values)) - set(limited)
                if not over:
                    break
                if sol.status != Status.OPTIMAL:    # time is short: enforce every limit at once, no more rounds
                    over = set(range(c.n_slots))
                limited = tuple(sorted(set(limited) | over))
            if k == 0:
                size |= {"configuration_limit_rounds": rounds, "slots_with_enforced_limit":
                         c.n_slots if limited is None else len(limited)}
            no_answer = sol is None or sol.status not in HAS_SOLUTION or sol.values is None
            stopped = no_answer and (sol.status in (Status.TIME_LIMIT, Status.UNKNOWN) if sol is not None else not cuts)
            if k == 0 and start is not None and (stopped or _start_better(f, c, name, start, sol)) \
                    and starting.stands(c, start):
                # the solver stopped without an answer (or no time was left for the first answer), or
                # with a worse one than the start: the starting answer keeps every limit; optimality
                # unproven, its gap against the best proven bound there is
                picks, served = list(start.picks), np.asarray(start.served, dtype=float)
                value = _picks_value(c, name, picks, served)
                bound = _lower_bound(c, name, sol)
                within = max(0.0, (value - bound) / value) if bound is not None and value > 0 else None
                log.append(Phase(name, "objective", Status.FEASIBLE.value, _reported(c, name, value),
                                 OBJECTIVES[name].unit, within, None if sol is None else sol.seconds, start=True,
                                 lower_bound=bound))
                values[name] = _reported(c, name, value)
                status = Status.FEASIBLE
                break
            if no_answer:
                st = Status.TIME_LIMIT if sol is None else sol.status
                log.append(Phase(name, kind, st.value,
                                 seconds=None if sol is None else sol.seconds))
                if objective:      # a later objective without an answer leaves the earlier answer standing, unproven
                    status = st if not picks else Status.FEASIBLE
                break
            assert sol is not None and sol.values is not None and f is not None
            value = _model_value(f, name, sol.values)
            log.append(Phase(name, kind, sol.status.value, _reported(c, name, value),
                             OBJECTIVES[name].unit, sol.gap, sol.seconds,
                             lower_bound=_reported(c, name, sol.bound) if gap and sol.bound is not None
                             and OBJECTIVES[name].sense == "min" else None))   # a maximum's bound is no lower bound
            values[name] = _reported(c, name, value)
            if sol.status != Status.OPTIMAL and objective:
                status = Status.FEASIBLE
            picks = decode(f, sol.values)        # each later phase starts from this answer
            served = np.array([sol.values[f.scalars[f.scalar_name("served", s)]]
                               if f.scalar_name("served", s) in f.scalars else 1.0 for s in range(c.n_slots)])
            tol, obj = slack[name], OBJECTIVES[name]
            room = KEEP_TOLERANCE / obj.scale
            bounds.append((name, value * (1 + tol) + room if obj.sense == "min" else value * (1 - tol) - room))
        except KeyboardInterrupt:
            if k == 0:       # Ctrl-C in the first objective: nothing proven, no answer of this rank
                raise
            # Ctrl-C in a later phase: the answer of the phases finished stands, as a tie-break
            # stopped by its time limit leaves it; the caller records this rank and ranks no more
            n, picks, served, status, values = kept
            del log[n:]
            log.append(Phase(name, kind, Status.INTERRUPTED.value))
            if objective:    # a later objective unfinished leaves the earlier answer standing, unproven
                status = Status.FEASIBLE
            interrupted = True
            break
    return Solved(status, picks, served, log, size, values, interrupted)


def _start_better(f: constraints.Formulation | None, c: Candidates, name: str, start: starting.Start,
                  sol: Solution | None) -> bool:
    """The solver's answer, not proven optimal, is worse than the starting answer (never the
    answer then: the better of the two stands)."""
    if f is None or sol is None or sol.status != Status.FEASIBLE or sol.values is None or name == "served_demand":
        return False
    found = _model_value(f, name, sol.values)
    mine = _picks_value(c, name, list(start.picks), np.asarray(start.served, dtype=float))
    worse = found > mine if OBJECTIVES[name].sense == "min" else found < mine
    return worse and not _same(found, mine)


def _model_value(f: constraints.Formulation, name: str, values: np.ndarray) -> float:
    """Objective ``name`` of the model at ``values``, summed once per answer (a fleet's model has
    a million terms; the check against the start and the phase's record both read it)."""
    held = f.__dict__.setdefault("_values", {})
    if name not in held or held[name][0] is not values:
        held[name] = (values, constraints.objective.coefficients(f, name).dot(values))
    return float(held[name][1])


def _lower_bound(c: Candidates, name: str, sol: Solution | None) -> float | None:
    """The best proven lower bound on a minimised objective: the solver's (its dual bound, when
    it gave one) or, on cost, the closed-form bound of planner/plan/start.py; None if neither."""
    if OBJECTIVES[name].sense != "min":
        return None
    found = [b for b in (sol.bound if sol is not None else None,
                         starting.cost_lower_bound(c) if name == "cost_per_hour" else None) if b is not None]
    return max(found) if found else None


def _picks_value(c: Candidates, name: str, picks: Picks, served: np.ndarray) -> float:
    """An objective at given picks, in the model's terms (the starting answer's value)."""
    if name == "served_demand":
        return float((served_weights(c) * np.minimum(1.0, served)).sum())
    t = constraints.objective.terms(c, name)
    return float(sum(float(t.x[j]) + float(t.y[j]) * n for j, n in picks))


def _reported(c: Candidates, name: str, value: float) -> float:
    """A phase's value as a person reads it: served_demand as the weighted share served (0..1)."""
    if name == "served_demand":
        return value / float(served_weights(c).sum())
    return value * OBJECTIVES[name].scale if name in ("tpot", "ttft") else value


def decode(f: constraints.Formulation, values: np.ndarray) -> Picks:
    """(row, replicas) chosen: every row whose choice is on (and at least one replica)."""
    on = f.alive[values[f.x[f.alive]] > 0.5]
    count = np.round(values[f.y[on]]) if f.replicas else np.ones(len(on))
    assert np.isfinite(count).all(), "a solver returned a replica count that is not a number"
    return [(j, int(r)) for j, r in zip(on.tolist(), count.tolist()) if r >= 1]


def solve_schedule(t: PeriodTables, *, backend: str, time_limit: float,
                   start: constraints.schedule.Start | None = None, gap: float = 0.0
                   ) -> tuple[Status, list[Picks], np.ndarray, float | None, float | None, dict[str, int]]:
    """A schedule over periods (planner/plan/schedule.py), driven here like every solve: the
    oracle by its own enumeration, any other backend on the program of constraints/schedule.py
    starting from ``start`` (the static fleet's deployments), stopped once proven within
    ``gap`` (as ``solve``). Returns status, (row, replicas) per period, GPUs held per period
    and type, $ per cycle, gap, model size."""
    solver = get_backend(backend)
    if Feature.LINEAR_MODEL not in solver.features:
        status, picks, held, cost = solver.schedule(t, time.perf_counter() + time_limit)  # type: ignore[attr-defined]
        return status, picks, held, cost, 0.0 if status in HAS_SOLUTION else None, {}
    deadline = time.perf_counter() + time_limit
    limited: frozenset[tuple[int, int]] = frozenset()
    rounds = 0
    while True:       # configuration limits enforced lazily: only where an optimum breaks them
        f = constraints.schedule.build(t, limited, keep=tuple((c, j) for c, j, _ in start or []))
        static = constraints.schedule.assignment(f, start or [])
        # the static fleet is the solver's start where integer replicas are decided; on the enumerated
        # options (a few hundred binaries) CBC and CP-SAT need none, and HiGHS takes it as a checked
        # start (kept only when its answer beats it: planner/backends/highs.py), which halves its
        # time on the hourly day (benchmarks/schedule_scale.py)
        f.hint = None if f.enumerated else static
        f.checked_hint = static
        sol = solver.solve(f, max(deadline - time.perf_counter(), 1e-3), gap=gap)
        rounds += 1
        if sol.status not in HAS_SOLUTION or sol.values is None:
            break
        over = constraints.schedule.over_limit(f, constraints.schedule.decode(f, sol.values)[0])
        if not over:
            break
        every = {(p, s) for p in range(t.count) for s in range(t.peak.n_slots)}
        limited = frozenset(every if sol.status != Status.OPTIMAL else limited | over)
    f.size["configuration_limit_rounds"] = rounds
    fallback = None
    if static is not None and sol.status != Status.OPTIMAL:
        # the static fleet is a schedule: it stands in when the solver stops without a better one
        values = np.zeros(len(f.model.vars))
        for i, v in static.items():
            values[i] = v
        fallback = constraints.schedule.decode(f, values)
    if sol.status not in HAS_SOLUTION or sol.values is None:
        if fallback is not None and sol.status in (Status.TIME_LIMIT, Status.UNKNOWN):
            return (Status.FEASIBLE, *fallback, None, f.size)
        return sol.status, [], np.zeros((0, 0)), None, None, f.size
    picks, held, cost = constraints.schedule.decode(f, sol.values)
    if fallback is not None and fallback[2] < cost:
        return (Status.FEASIBLE, *fallback, None, f.size)
    return sol.status, picks, held, cost, sol.gap, f.size


def solve_static(t: PeriodTables, *, backend: str, time_limit: float, start: Picks | None = None
                 ) -> tuple[Status, list[tuple[int, int, int]], float | None, float | None]:
    """The static fleet a schedule with several SLO cases is compared with (planner/plan/schedule.py):
    the oracle by its own enumeration, any other backend on the program of
    constraints/schedule_static.py, started from ``start`` (rows of ``t.peak``) where it maps
    onto the program. Returns status, (period, row of its table, replicas) per deployment, $
    per cycle, gap."""
    solver = get_backend(backend)
    if Feature.LINEAR_MODEL not in solver.features:
        status, picks, cost = solver.static(t, time.perf_counter() + time_limit)  # type: ignore[attr-defined]
        ok = status in HAS_SOLUTION
        return status, picks, cost if ok else None, 0.0 if ok else None
    f = constraints.schedule_static.build(t)
    f.hint = constraints.schedule_static.assignment(f, list(start or []))
    sol = solver.solve(f, max(time_limit, 1e-3))
    if sol.status not in HAS_SOLUTION or sol.values is None:
        return sol.status, [], None, None
    picks, cost = constraints.schedule_static.decode(f, sol.values)
    first = {c: t.case.index(c) for c in set(t.case)}
    return sol.status, [(first[c], j, r) for c, j, r in picks], cost, sol.gap
