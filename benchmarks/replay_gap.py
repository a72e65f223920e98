"""Where the trace replay and the closed forms part (issue 25, review round 2 finding 9).

Solves a trace instance (no simulation), takes rank 1's first aggregated deployment at the load
the answer puts on one replica, and simulates that one configuration under controlled changes,
one factor at a time, each beside the closed form for the same workload (``load_metrics``):

- times: the trace's own (its clock ticks, as stamped), the trace's with each request spread
  uniformly over its clock tick, Poisson, or Gamma at the trace's burstiness;
- lengths: the trace's in order, sampled from its histograms (what the closed form takes),
  or fixed at their means;
- the KV pool: the configuration's, or unbounded (no slot or pool wait);
- the prefix cache: none (the shipped instances plan without one) or the trace's hashes.

One replica's stream: the window's requests are time-scaled to the replica's rate (so that a
replica of a 4-replica plan sees every request of a short sample, not a quarter of them), or,
with ``--whole FILE``, the first ``--requests`` requests of a whole trace at that rate.

    python benchmarks/replay_gap.py [--instance instances/trace_mooncake_conversation.yaml]
                                    [--whole ../shared/traces/mooncake-conversation.jsonl]
                                    [--seeds 3] [--requests 3000]

Columns: simulated / closed-form TTFT mean, p90, p99 (s) and TPOT mean (ms); the simulated TPOT
three ways (ms): per request, (e2e - TTFT) / (O - 1) averaged over the requests with O > 1 (what
``vllm bench serve`` reports and what the simulator's and the verdict's "TPOT mean" is), per token
(the decode time of all requests over their O - 1 tokens: the mean ITL weighted by the sequences in
each step) and per step (the plain mean of the decode steps' times, what the closed form's mean
TPOT, the fluid step tau of docs/load.md section 3, stands for); the gap (simulated / closed form)
of the instance's TTFT target statistic."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner.physics.load import Workload, engine, load_metrics, step_physics  # noqa: E402
from planner.plan.solve import prepare, solve  # noqa: E402
from planner.schemas.plan import load_plan_spec  # noqa: E402
from planner.simulate import Arrivals, Lengths, simulate_config  # noqa: E402
from planner.traces.cache import TraceCache  # noqa: E402
from planner.traces.figures import spread_over_ticks  # noqa: E402
from planner.traces.read import read_trace  # noqa: E402


@dataclass(frozen=True)
class Stream:
    times: np.ndarray      # seconds from the first request, on one replica's clock
    tick: float            # the clock's resolution on that clock (0: none)
    S: np.ndarray
    O: np.ndarray
    blocks: list[list[int]] | None
    block_tokens: int


def _stream(path: str, rate: float, requests: int | None) -> Stream:
    tr = read_trace(path)
    n = tr.requests if requests is None else min(requests, tr.requests)
    t = tr.time_s[:n] - tr.time_s[0]
    scale = ((n - 1) / t[-1]) / rate            # the replica's rate: times x scale
    gaps = np.diff(np.unique(t))
    tick = float(np.median(gaps)) * scale if np.mean(np.diff(t) == 0) > 0.5 else 0.0
    blocks = None if tr.block_ids is None else [tr.blocks(i).tolist() for i in range(n)]
    return Stream(t * scale, tick, tr.input_tokens[:n].astype(int), tr.output_tokens[:n].astype(int), blocks,
                  tr.block_tokens)


def empirical_cv2(x: np.ndarray) -> float:
    v = np.asarray(x, dtype=float)
    return float(v.var() / v.mean() ** 2)


def _arrivals(kind: str, s: Stream, rate: float, cv2: float, seed: int) -> Arrivals:
    if kind == "trace":
        return Arrivals("trace", times=tuple(s.times.tolist()))
    if kind == "trace, spread over its tick":
        t = spread_over_ticks(s.times, seed)
        return Arrivals("trace", times=tuple((t - t[0]).tolist()))
    if kind == "poisson":
        return Arrivals("poisson", rate=rate)
    return Arrivals("gamma", rate=rate, cv=float(np.sqrt(cv2)))


def _lengths(kind: str, x: np.ndarray) -> Lengths:
    if kind == "trace, in order":
        return Lengths(x.tolist(), in_order=True)
    if kind == "sampled":
        v, k = np.unique(x, return_counts=True)
        return Lengths(v.tolist(), (k / k.sum()).tolist())
    return Lengths(int(round(float(x.mean()))))


def rank1(instance: str):
    """Solve a trace instance (no simulation) and return rank 1's first aggregated deployment:
    the candidates, its row, its slot, its step physics and engine (one configuration), and the
    load the answer puts on one replica (requests/s)."""
    spec, doc = load_plan_spec(instance)
    spec, problem, cands = prepare(spec, doc)
    result = solve(problem, cands, backend="highs", top_k=1, time_limit=60)
    plan = next(p for p in result.deployments(1) if p.role == "aggregated")
    j = plan.candidate
    slot = cands.slots[int(cands.slot[j])]
    phys = step_physics(slot.model, problem.table, cands.configs.take(np.array([j])), problem.assumptions)
    assert slot.replay is not None, "the instance's demand is not its trace's"
    return cands, j, slot, phys, engine(phys), float(plan.load["requests_per_s_per_replica"])


def tpot_split(r) -> dict[str, float]:
    """A simulation's mean TPOT per token (all decode time over all decode tokens, requests with
    O > 1) and per step (the plain mean of the measured steps that decoded): beside its per
    request mean, ``summary["tpot_mean"]``."""
    ok = np.isfinite(r.tpot)
    decode = (r.e2e - r.ttft)[ok]                       # (O - 1) x TPOT of each request
    tokens = decode / r.tpot[ok]                        # O - 1
    return {"tpot_token": float(decode.sum() / tokens.sum()) if ok.any() else float("nan"),
            "tpot_step": float(np.mean(r.itl)) if r.itl.size else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instance", default=str(ROOT / "instances" / "trace_mooncake_conversation.yaml"))
    ap.add_argument("--whole", default=None, help="a whole trace to draw the replica's stream from")
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--rate", type=float, default=None, help="requests/s per replica (default: the plan's)")
    ap.add_argument("--cases", default="all", help="comma-separated case numbers (default all)")
    args = ap.parse_args()

    cands, j, slot, phys, eng, planned = rank1(args.instance)
    rate = float(args.rate or planned)
    lanes = float(phys.lanes[0])
    path = args.whole or str(slot.replay.requests.file)
    s = _stream(path, rate / lanes, args.requests if args.whole else None)
    cv2 = float(slot.demand.arrival_cv2) if slot.demand is not None else 1.0
    d = cands.describe(j)
    target = next(t for t in slot.targets if t.metric == "ttft")
    print(f"{Path(args.instance).name}: rank 1 {d['gpu']} TP {d['tp']} PP {d['pp']}, {d['quantization']} / KV "
          f"{d['kv_dtype']}, batch {d['batch']} (max seqs {eng.max_seqs[0]:.0f}, KV pool {eng.kv_pool_tokens[0]:,.0f} "
          f"tokens, budget {eng.token_budget[0]:.0f}); {rate:.3g} req/s per replica, {lanes:.0f} lane(s)")
    print(f"stream: {Path(path).name}, {s.S.size} requests at {rate / lanes:.3g} req/s a lane; prompt mean "
          f"{s.S.mean():,.0f} CV^2 {empirical_cv2(s.S):.2f}, output mean {s.O.mean():,.0f}; clock tick "
          f"{s.tick:.2f} s; planned burstiness {cv2:.2f}; target ttft {target.statistic} {target.seconds:g} s")
    cases = [
        ("trace", "trace, in order", "pool", "none"),
        ("trace, spread over its tick", "trace, in order", "pool", "none"),
        ("poisson", "trace, in order", "pool", "none"),
        ("poisson", "sampled", "pool", "none"),
        ("gamma", "sampled", "pool", "none"),
        ("poisson", "fixed at the means", "pool", "none"),
        ("poisson", "sampled", "unbounded", "none"),
        ("poisson", "fixed at the means", "unbounded", "none"),
        ("trace, spread over its tick", "trace, in order", "pool", "trace hashes"),
    ]
    keep = None if args.cases == "all" else {int(x) for x in args.cases.split(",")}
    print("\n| # | arrivals | lengths | KV pool | cache | TTFT mean s | p90 | p99 | TPOT mean ms | "
          "TPOT per request / per token / per step ms | "
          f"sim / closed, TTFT {target.statistic} |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for k, (arr, lens, pool, cache) in enumerate(cases, 1):
        if keep is not None and k not in keep:
            continue
        if cache != "none" and s.blocks is None:
            continue
        e = eng if pool == "pool" else type(eng)(token_budget=eng.token_budget, max_seqs=eng.max_seqs * 0 + 4096,
                                                 kv_pool_tokens=eng.kv_pool_tokens * 0 + 1e12)
        fixed = lens == "fixed at the means"
        ca2 = {"poisson": 1.0, "gamma": cv2}.get(arr, cv2)
        r = s.S / s.S.mean()
        wl = Workload(isl=float(s.S.mean()), osl=float(s.O.mean()), arrival_cv2=ca2,
                      isl_cv2=0.0 if fixed else empirical_cv2(s.S), osl_cv2=0.0 if fixed else empirical_cv2(s.O),
                      isl_m3=0.0 if fixed else float(np.mean(r**3)), isl_m4=0.0 if fixed else float(np.mean(r**4)))
        cf = load_metrics(phys, e, wl, rate=rate)
        sims = []
        for seed in range(args.seeds if arr != "trace" or lens != "trace, in order" else 1):
            kw = {}
            if cache != "none":
                assert s.blocks is not None
                kw["prefix_cache"] = TraceCache(s.blocks, s.block_tokens, int(eng.kv_pool_tokens[0] // s.block_tokens))
            n = s.S.size if lens == "trace, in order" else args.requests
            r = simulate_config(phys, e, 0, _arrivals(arr, s, rate, cv2, seed), _lengths(lens, s.S),
                                _lengths(lens, s.O), n_requests=n, seed=seed, max_steps=2e7, **kw)
            sims.append(dict(r.summary, **tpot_split(r)))
        sm = {key: float(np.mean([x[key] for x in sims]))
              for key in ("ttft_mean", "ttft_p90", "ttft_p99", "tpot_mean", "tpot_token", "tpot_step")}
        c = {key: float(cf.get(*key.split("_"))[0]) for key in ("ttft_mean", "ttft_p90", "ttft_p99", "tpot_mean")}
        key = f"ttft_{target.statistic}"
        print(f"| {k} | {arr} | {lens} | {pool} | {cache} | {sm['ttft_mean']:.2f} / {c['ttft_mean']:.2f} | "
              f"{sm['ttft_p90']:.2f} / {c['ttft_p90']:.2f} | {sm['ttft_p99']:.1f} / {c['ttft_p99']:.1f} | "
              f"{sm['tpot_mean'] * 1e3:.1f} / {c['tpot_mean'] * 1e3:.1f} | "
              f"{sm['tpot_mean'] * 1e3:.1f} / {sm['tpot_token'] * 1e3:.1f} / {sm['tpot_step'] * 1e3:.1f} | "
              f"{sm[key] / c[key]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
