"""The simulator in the verdict (issue 21 item 4; docs/load.md section 9).

The closed forms price every candidate (planner/candidates/load.py); the discrete-event
simulator (planner/simulate.py) is too slow for that but is the better model of one
configuration under load. So the answer is checked by simulation: rank 1's aggregated
deployments are simulated at the load the answer puts them at; each that misses one of its
targets has its capacity at SLO lowered to the highest load its simulation meets every target
at (a bisection over requests/s per replica, or clients in a closed loop,
``simulated_capacity``), and the instance is re-solved on that table
(``Candidates.with_capacity``). Rounds repeat until rank 1 simulates within its targets, or
``ROUNDS`` or the time limit run out: then the answer says it missed, and by how much.

A capacity is only ever lowered, and only for a configuration the simulator has run, so the
re-solved answer is optimal over the closed form's capacities tightened where the simulator
disagreed; a configuration never simulated keeps the closed form's figure."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from planner.backends.base import Status
from planner.candidates.table import Candidates, with_capacity
from planner.physics.load import engine, step_physics
from planner.physics.step import step_time
from planner.plan.rescore import metric_name, misses, simulate_plans, simulate_row
from planner.plan.result import Parting, Plan, PlanResult, Tightening, Verification
from planner.plan.solve import solve
from planner.resolve.problem import Problem
from planner.simulate import WorkLimit

ROUNDS = 4
"""Simulations of rank 1 at most: each re-solve moves to configurations the simulator has not
run, which the next round checks."""

STEPS = 6
"""Bisection steps on a missed configuration's load: its capacity to within 1/64 of the load
it missed at (a closed loop stops at one client)."""


def verify(problem: Problem, cands: Candidates, result: PlanResult, *, backend: str, top_k: int,
           time_limit: float, gap: float = 0.0) -> tuple[PlanResult, Candidates]:
    """The answer checked (and where needed re-solved, to the relative ``gap``) by simulation: the
    result to report, with ``verification`` set, and the table it was solved on. ``time_limit``:
    the seconds of every simulation and re-solve together (planner/whatif/budget.py); where
    they run out the answer stands and the verdict says ``time_limit``."""
    if time_limit <= 0:             # the answer's solve used the whole limit: nothing simulated, said so
        result.verification = Verification("not_checked", 0, [], "time_limit")
        return result, cands
    deadline = time.perf_counter() + time_limit
    facts: list[Tightening] = []
    for k in range(1, ROUNDS + 1):
        _rescore(problem, cands, result, deadline, rank=1)
        if result.interrupted:
            result.verification = Verification("not_checked", k, facts, "interrupted")
            return result, cands
        mine = [p for p in result.deployments(1) if p.role == "aggregated" and p.simulation is not None]
        if any("error" in (p.simulation or {}) for p in mine):
            why = "time_limit" if time.perf_counter() >= deadline else "error"     # cut short, or cannot run
            return _final(problem, cands, result, deadline, Verification("not_checked", k, facts, why))
        missed = [(p, m) for p in mine if (m := _first_miss(p)) is not None]
        if not missed:
            return _final(problem, cands, result, deadline, Verification("holds", k, facts))
        if k == ROUNDS or time.perf_counter() >= deadline:
            return _final(problem, cands, result, deadline,
                          Verification("missed", k, facts, "rounds" if k == ROUNDS else "time_limit"))
        lowered: dict[int, tuple[float, int]] = {}
        try:
            for p, miss in missed:
                capacity, unit = simulated_capacity(problem, cands, p, deadline)
                for twin in twins(problem, cands, p.candidate):
                    lowered[twin] = (capacity, miss[0])
                facts.append(_fact(k, cands, p, miss, capacity, unit))
        except WorkLimit:            # the time limit ran out inside a bisection: the answer stands, said missed
            return _final(problem, cands, result, deadline, Verification("missed", k, facts, "time_limit"))
        remaining = deadline - time.perf_counter()
        if remaining <= 0:           # no time left to re-solve: the answer stands, said missed
            return _final(problem, cands, result, deadline, Verification("missed", k, facts, "time_limit"))
        tighter = with_capacity(cands, lowered)
        again = solve(problem, tighter, backend=backend, top_k=top_k, time_limit=remaining, gap=gap)
        if not again.plans and again.status != Status.INFEASIBLE.value and not again.interrupted:
            # the time ran out before the re-solve found an answer: nothing is proven of the
            # tighter table, so the answer simulated stands, said missed
            return _final(problem, cands, result, deadline, Verification("missed", k, facts, "time_limit"))
        result, cands = again, tighter
        if not result.plans:         # nothing holds its targets any more: the answer says why
            result.verification = Verification("missed", k, facts, "no_answer")
            return result, cands
    raise AssertionError("unreachable: the last round returns")


def twins(problem: Problem, c: Candidates, j: int) -> list[int]:
    """Row j and the rows the simulator cannot tell from it: the same slot, role, GPU, layout,
    KV dtype and batch, another weight scheme with the same step physics (the same step time
    at every probe of ``PROBES``, the same KV pool and sequence cap: e.g. int8 and fp8 weights
    on a GPU that runs both at one rate). Their simulation is row j's, so a capacity lowered
    for j is lowered for them too; otherwise each round's re-solve moves to an unsimulated
    twin and the rounds run out on ties."""
    cf = c.configs
    same = np.flatnonzero((c.slot == c.slot[j]) & (cf.gpu == cf.gpu[j]) & (cf.tp == cf.tp[j]) & (cf.pp == cf.pp[j])
                          & (cf.ep == cf.ep[j]) & (cf.kv == cf.kv[j]) & (cf.batch == cf.batch[j])
                          & ((c.role == c.role[j]) if len(c.role) else True) & c.meets_slo)
    if same.size <= 1:
        return [j]
    slot = c.slots[int(c.slot[j])]
    phys = step_physics(slot.model, problem.table, cf.take(same), problem.assumptions)
    eng = engine(phys)
    n, ctx, chunk = (np.full(same.size, x) for x in PROBES)
    t = np.stack([step_time(phys, n * a, ctx * a, chunk * b, chunk * b * 4096.0, b)
                  for a, b in ((1, 0), (0, 1), (1, 1))])
    mine = int(np.flatnonzero(same == j)[0])
    alike = (np.all(t == t[:, [mine]], axis=0) & (eng.kv_pool_tokens == eng.kv_pool_tokens[mine])
             & (eng.max_seqs == eng.max_seqs[mine]))
    return [int(x) for x in same[alike]]


PROBES = (16.0, 16.0 * 4096.0, 2048.0)
"""Where ``twins`` compares step times: 16 decoders of 4,096 tokens of context each, a
2,048-token chunk of 4,096 attention units a token, and both in one step."""


def _rescore(problem: Problem, cands: Candidates, result: PlanResult, deadline: float, rank: int | None = None
             ) -> None:
    """The simulator's re-score (``solve.rescore``) of the aggregated deployments not yet
    simulated, of rank ``rank`` only when given: a round checks rank 1, and the other ranks
    are simulated once, for the answer that stands (``_final``)."""
    todo = [p for p in result.plans if p.role == "aggregated" and p.simulation is None
            and (rank is None or p.rank == rank)]
    try:
        simulate_plans(problem, cands, todo, deadline=deadline)
    except KeyboardInterrupt:       # Ctrl-C while re-scoring: the plans stand, some unsimulated
        result.interrupted = True


def _final(problem: Problem, cands: Candidates, result: PlanResult, deadline: float, verdict: Verification
           ) -> tuple[PlanResult, Candidates]:
    """The answer that stands, every ranked deployment simulated, with its verdict (and, where
    it missed, where and why the two models part)."""
    _rescore(problem, cands, result, deadline)
    if verdict.status != "not_checked":
        verdict.parted = partings(problem, cands, result, deadline)
    result.verification = verdict
    return result, cands


TRUSTED = {"mean": 0.15, "percentile": 0.20}
"""How far a simulated figure may be from the closed form's before the verdict says where and why
they part: the bounds docs/load.md section 9 states for the Poisson case (means within 15 %,
percentiles within 20 % where the closed form is trusted)."""


def _bound(statistic: str) -> float:
    return TRUSTED["mean" if statistic == "mean" else "percentile"]


def partings(problem: Problem, c: Candidates, result: PlanResult, deadline: float | None = None) -> list[Parting]:
    """Each target of rank 1 whose simulation misses it, or is further from the closed form's
    figure than ``TRUSTED``, beside the closed form's figure and the same configuration
    simulated at the same load under the closed form's own assumptions (one more simulation:
    ``simulate_row(replay=False)``, for a trace's replay), which names the cause: ``trace``
    where that run is within the bound of the closed form (the trace's own arrivals and order
    of lengths make the difference), else ``load_model`` (``Parting``)."""
    out = []
    for p in result.deployments(1):
        sim = p.simulation or {}
        if p.role != "aggregated" or "error" in sim:
            continue
        slot = c.slots[int(c.slot[p.candidate])]
        pct = p.load.get("percentiles_ms", {})
        targets = sim.get("targets", [])
        keys = [f"{metric_name(slot.targets[k].metric)}_{t['statistic']}" for k, t in enumerate(targets)]
        parted = [(key, t) for key, t in zip(keys, targets) if not t["met"] or (
            pct.get(key) and abs(t["simulated_ms"] / pct[key] - 1.0) > _bound(t["statistic"]))]
        if not parted:
            continue
        assumed: dict[str, float] | None = None
        if sim.get("arrivals") == "trace":
            try:
                _, assumed = simulate_row(problem, c, p.candidate, rate=p.load["requests_per_s_per_replica"],
                                          deadline=deadline, replay=False)
            except ValueError:       # out of time, or the sampled run cannot be simulated: no attribution
                assumed = None
        for key, t in parted:
            cf = pct.get(key)
            ms = None if assumed is None else float(assumed.get(key, float("nan"))) * 1e3
            near = ms is not None and cf is not None and cf > 0 and abs(ms / cf - 1.0) <= _bound(t["statistic"])
            out.append(Parting(workload=p.workload, configuration=_configuration(c, p.candidate), target=t["path"],
                               statistic=t["statistic"], target_ms=float(t["target_ms"]),
                               simulated_ms=float(t["simulated_ms"]), closed_form_ms=None if cf is None else float(cf),
                               assumptions_ms=ms, cause="trace" if near else "load_model", met=bool(t["met"])))
    return out


def _first_miss(p: Plan) -> tuple[int, dict[str, Any]] | None:
    """The first target a deployment's simulation missed: (its index among the workload's
    targets, the simulation's record of it)."""
    for k, t in enumerate((p.simulation or {}).get("targets", [])):
        if not t["met"]:
            return k, t
    return None


def simulated_capacity(problem: Problem, c: Candidates, p: Plan, deadline: float | None = None
                       ) -> tuple[float, str]:
    """The highest load per replica at which deployment ``p``'s simulation meets every target
    of its workload, below the load it missed at: (requests/s or clients, the unit). A
    ``WorkLimit`` when ``deadline`` (a ``time.perf_counter()`` time) passes first."""
    j = p.candidate
    d = c.slots[int(c.slot[j])].demand
    if d is not None and d.kind == "clients":
        fewest, most = 0, max(1, int(round(p.share * d.value / p.replicas)))
        while most - fewest > 1:
            n = (fewest + most) // 2
            fewest, most = (n, most) if _holds(problem, c, j, deadline, clients=n) else (fewest, n)
        return float(fewest), "clients"
    low, high = 0.0, float(p.load["requests_per_s_per_replica"])
    for _ in range(STEPS):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if _holds(problem, c, j, deadline, rate=mid) else (low, mid)
    return low, "requests/s"


def _holds(problem: Problem, c: Candidates, j: int, deadline: float | None, *, rate: float | None = None,
           clients: int | None = None) -> bool:
    """Whether row j's simulation at this load meets every target (a load it cannot simulate,
    a request longer than a lane's KV pool, does not; running out of time is not an answer:
    ``WorkLimit`` goes up)."""
    try:
        _, summary = simulate_row(problem, c, j, rate=rate, clients=clients, deadline=deadline)
    except WorkLimit:
        raise
    except ValueError:
        return False
    return not misses(c, j, summary)


def _fact(k: int, c: Candidates, p: Plan, miss: tuple[int, dict[str, Any]], capacity: float,
          unit: str) -> Tightening:
    j = p.candidate
    assert c.load is not None
    closed = unit == "clients"
    before = float(c.load.clients[j] if closed else c.load.rate[j])
    _, t = miss
    return Tightening(round=k, workload=p.workload, configuration=_configuration(c, j), target=t["path"],
                      statistic=t["statistic"], simulated_ms=float(t["simulated_ms"]),
                      target_ms=float(t["target_ms"]), closed_form_capacity=before, simulated_capacity=capacity,
                      unit=unit)


def _configuration(c: Candidates, j: int) -> str:
    d = c.describe(j)
    return (f"{d['gpu']} TP {d['tp']} PP {d['pp']} EP {d['ep']}, {d['quantization']} / KV {d['kv_dtype']}, "
            f"batch {d['batch']}")
