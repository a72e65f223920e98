"""Re-score ranked plans with the discrete-event simulator (planner/simulate.py): each plan's
configuration at its own operating point (one lane fed its share of the replica's arrivals,
or of its closed-loop clients), with the slot's arrival process and whole length
distributions, next to the closed-form figures the plan reports (docs/load.md section 9)."""

from __future__ import annotations

import numpy as np

from planner.candidates.table import Candidates
from planner.physics.load import Engine, engine, step_physics
from planner.physics.step import StepPhysics
from planner.plan.result import Plan
from planner.resolve.problem import Problem, Slot
from planner.resolve.workload import CacheSpec, Replay
from planner.resolve.workload import Lengths as ResolvedLengths
from planner.simulate import Arrivals, Lengths, simulate_config
from planner.traces.cache import StatedCache, TraceCache

REQUESTS = 5000
MIN_REQUESTS = 100        # fewer would not say much: the plan is left unsimulated, with the reason
REPLAY_REQUESTS = 1000    # a trace's window replayed to one lane as often as it takes to give it this many
MAX_STEPS = 4_000_000     # the cap on a plan's simulated steps, hence its memory (a few numbers a step)
MAX_SPAN_S = 1e9          # an open loop's requests must arrive within this many seconds (the clock's resolution)
METRICS = ("ttft", "tpot", "itl", "e2e")


def simulate_row(p: Problem, c: Candidates, j: int, *, rate: float | None = None, clients: int | None = None,
                 requests: int = REQUESTS, seed: int = 0, max_steps: float = MAX_STEPS,
                 deadline: float | None = None, replay: bool = True) -> tuple[str, dict[str, float]]:
    """Simulate row j's configuration at ``rate`` requests/s per replica (the slot's arrival
    process) or with ``clients`` in a closed loop: (arrival kind, the simulator's summary).
    Bounded: at most ``requests`` requests and ``max_steps`` steps (fewer requests where long
    requests would pass it), nothing past ``deadline`` (a ``time.perf_counter()`` time). A
    ValueError when it cannot run: a request longer than one lane's KV pool, fewer than
    ``MIN_REQUESTS`` within the cap, arrivals spanning past the clock, or ``WorkLimit``.
    ``replay=False``: a trace workload's lengths sampled and its arrivals drawn, as for a
    stated demand (the closed form's own assumptions), instead of its requests replayed."""
    slot = c.slots[int(c.slot[j])]
    phys = step_physics(slot.model, p.table, c.configs.take(np.array([j])), p.assumptions)
    eng = engine(phys)
    per_request = slot.output.mean + 1.0 + slot.input.mean / max(float(eng.token_budget[0]), 1.0)
    n = int(min(requests, max_steps // per_request))
    if n < min(MIN_REQUESTS, requests):
        raise ValueError(f"requests of {slot.input.mean:,.0f} + {slot.output.mean:,.0f} tokens: fewer than "
                         f"{MIN_REQUESTS} fit the simulator's cap of {max_steps:,.0f} steps")
    if clients is None and not (rate is not None and rate > 0 and n / rate <= MAX_SPAN_S):
        raise ValueError(f"{rate or 0:.3g} req/s per replica: {n:,} requests would span more than {MAX_SPAN_S:.0e} s, "
                         "past the simulator's clock")
    d = slot.demand
    own = slot.replay if replay and clients is None and d is not None and d.requests_per_s else None
    if own is not None:
        return _replay(phys, eng, slot, own, rate / d.requests_per_s, n, seed, max_steps, deadline)  # type: ignore
    if clients is not None:
        arrivals = Arrivals("closed", clients=max(1, int(clients)))
    elif d is not None and d.arrival_cv2 != 1.0:
        arrivals = Arrivals("gamma", rate=rate, cv=float(np.sqrt(d.arrival_cv2)))
    else:
        arrivals = Arrivals("poisson", rate=rate)
    # the lengths here are sampled, not the trace's requests in order: its cache is stated
    kw = {} if slot.cache is None else {"prefix_cache": _stated_cache(slot.cache, eng)}
    r = simulate_config(phys, eng, 0, arrivals, _lengths(slot.input), _lengths(slot.output),
                        n_requests=n, seed=seed, targets=_targets(slot), max_steps=max_steps, deadline=deadline, **kw)
    return arrivals.kind, r.summary


def _pool_tokens(eng: Engine) -> float:
    """The KV pool of the configuration simulated (the engine of one row)."""
    return float(np.asarray(eng.kv_pool_tokens).reshape(-1)[0])


def _stated_cache(cache: CacheSpec, eng: Engine) -> StatedCache:
    """A prefix cache as the closed form takes it, per request: the stated share or prefix, or
    the trace's reuse at this configuration's KV pool as a share."""
    share = cache.cached_at(np.array([_pool_tokens(eng)]))
    return StatedCache(float(np.asarray(share).reshape(-1)[0]) / cache.prompt_tokens if cache.source == "trace"
                       else cache.hit_rate, cache.prefix_tokens)


def _targets(slot: Slot) -> list[tuple[str, str, float]]:
    """The slot's latency targets as the simulator reads them: (metric, statistic, seconds)."""
    return [(metric_name(t.metric), t.statistic, t.seconds) for t in slot.targets]


def _replay(phys: StepPhysics, eng: Engine, slot: Slot, replay: Replay, fraction: float, n: int, seed: int,
            max_steps: float, deadline: float | None) -> tuple[str, dict[str, float]]:
    """A trace workload's own requests replayed against one lane (docs/workloads.md section 3):
    the lane's ``fraction`` of them spread evenly (a round-robin balancer), their arrival
    times, lengths in order and, with ``prefix_cache: {from_trace: true}``, their block hashes
    in an LRU of the lane's KV pool (each lane's cache sees its own requests only). A window
    that gives the lane fewer than ``REPLAY_REQUESTS`` is replayed again after itself, each
    pass with the next replica's share (``Replay.looped``), and the summary says how often."""
    f = fraction / float(phys.lanes[0])                          # one lane's share of the replica's
    pick, times, passes = replay.looped(f, min(n, REPLAY_REQUESTS))
    pick, times = pick[:n], times[:n]
    if pick.size < MIN_REQUESTS:
        raise ValueError(f"the trace gives one lane {pick.size} request(s) to replay: fewer than {MIN_REQUESTS}")
    if times[-1] > MAX_SPAN_S:
        raise ValueError(f"the replay spans {times[-1]:.3g} s, past the simulator's clock")
    cache, kw = slot.cache, dict[str, TraceCache | StatedCache]()
    if cache is not None and cache.source == "trace" and replay.requests.block_ids is not None:
        tr = replay.requests
        assert tr.block_ids is not None
        fresh = int(tr.block_ids.max(initial=0))
        seen = np.zeros(replay.times_s.size, dtype=np.int64)    # a request's later replay gets new blocks:
        blocks = []                                             # the cache sees only the window's own reuse
        for i in pick.tolist():
            blocks.append((tr.blocks(i) + int(seen[i]) * (fresh + 1)).tolist())
            seen[i] += 1
        kw["prefix_cache"] = TraceCache(blocks, tr.block_tokens, int(_pool_tokens(eng) // tr.block_tokens))
    elif cache is not None:
        kw["prefix_cache"] = _stated_cache(cache, eng)
    r = simulate_config(phys, eng, 0, Arrivals("trace", times=tuple(times.tolist())),
                        Lengths(replay.input_tokens[pick].tolist(), in_order=True),
                        Lengths(replay.output_tokens[pick].tolist(), in_order=True),
                        n_requests=int(pick.size), seed=seed, targets=_targets(slot), max_steps=max_steps,
                        deadline=deadline, **kw)
    return "trace", {**r.summary, "window_passes": float(passes)}


def misses(c: Candidates, j: int, summary: dict[str, float]) -> list[tuple[int, float]]:
    """The targets of row j's slot a simulation missed: (index into the slot's targets,
    simulated seconds)."""
    slot = c.slots[int(c.slot[j])]
    out = []
    for k, t in enumerate(slot.targets):
        key = f"{metric_name(t.metric)}_{t.statistic}"
        if not summary.get(f"met_{key}", 0.0):
            out.append((k, float(summary.get(key, float("nan")))))
    return out


def simulate_plans(p: Problem, c: Candidates, plans: list[Plan], *, requests: int = REQUESTS, seed: int = 0,
                   max_steps: float = MAX_STEPS, deadline: float | None = None) -> None:
    """Attach ``plan.simulation``: simulated mean/p50/p90/p99 per metric (ms), the closed
    form's figures beside them, and the share of requests meeting each target. Bounded:
    each plan runs at most ``requests`` requests and ``max_steps`` steps (fewer requests
    where long requests would pass it; none, with the reason, where even ``MIN_REQUESTS``
    would), and nothing runs past ``deadline`` (a ``time.perf_counter()`` time)."""
    for plan in plans:
        j = plan.candidate
        slot = c.slots[int(c.slot[j])]
        d = slot.demand
        closed = d is not None and d.kind == "clients"
        try:
            kind, s = simulate_row(p, c, j, rate=None if closed else plan.load["requests_per_s_per_replica"],
                                   clients=max(1, int(round(plan.share * d.value / plan.replicas)))
                                   if closed and d is not None else None, requests=requests, seed=seed,
                                   max_steps=max_steps, deadline=deadline)
        except ValueError as exc:          # e.g. a request longer than the KV pool of one lane; WorkLimit
            plan.simulation = {"error": str(exc)}
            continue
        pct = plan.load.get("percentiles_ms", {})
        figures = {f"{m}_{q}": s[f"{m}_{q}"] * 1e3 for m in METRICS for q in ("mean", "p50", "p90", "p99")
                   if f"{m}_{q}" in s}
        plan.simulation = {
            "requests": int(s["requests"]), "seed": seed, "arrivals": kind,
            **({"window_passes": int(s["window_passes"])} if "window_passes" in s else {}),
            "simulated_ms": figures,
            "closed_form_ms": {k: pct[k] for k in figures if k in pct},
            "throughput_tokens_per_s_per_replica": s["throughput_tokens_per_s"],
            "concurrency_per_replica": s["concurrency"],
            "targets": [{"path": t.path, "statistic": t.statistic, "target_ms": t.seconds * 1e3,
                         "simulated_ms": s.get(f"{metric_name(t.metric)}_{t.statistic}", float("nan")) * 1e3,
                         "met": bool(s.get(f"met_{metric_name(t.metric)}_{t.statistic}", 0.0)),
                         "share_of_requests_within": s.get(f"attain_{metric_name(t.metric)}_{t.statistic}")}
                        for t in slot.targets],
        }


def metric_name(name: str) -> str:
    return "e2e" if name == "e2e_latency" else name


def _lengths(x: ResolvedLengths) -> Lengths:
    values = np.round(np.asarray(x.values)).astype(np.int64)
    return Lengths(values.tolist() if len(values) > 1 else int(values[0]),
                   list(x.probabilities) if len(values) > 1 else None)
