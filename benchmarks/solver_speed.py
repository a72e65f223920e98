"""Solver speed against the exhaustive oracle (issue 16): for every objective, with and
without a demand, on the whole catalog and on catalogs grown to 60 and 240 GPU types
(variants of the catalog's GPUs with perturbed prices, bandwidths and FLOP/s), the wall
time and solver time of every backend and their ratio to the oracle, in one run.

    python benchmarks/solver_speed.py [--sizes 15,60,240] [--time-limit 60] [--instance PATH]

Columns: candidates (rows of the table) and the seconds to build it (the load model
included; shared by every backend), the model's columns after screening and after
dominance pruning, then per backend: model build (constraints.build), translation into the
solver, the solve, status, and ``x oracle``: (build + translate + solve) over the oracle's
solve, and (candidates + that) over (candidates + oracle), the whole plan's wall ratio."""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import constraints
from planner.backends.base import BACKENDS, get_backend
from planner.candidates.table import build_candidates, with_objective
from planner.physics.space import GpuTable
from planner.resolve.problem import Problem, resolve
from planner.schemas.plan import PlanSpec, load_plan_spec

ROOT = Path(__file__).resolve().parents[1]
OBJECTIVES = ("cost_per_million_tokens", "cost_per_hour", "gpus", "throughput", "tpot", "ttft")
LINEAR = tuple(b for b in BACKENDS if b != "exhaustive")   # the solvers timed against the oracle
DEMAND = {"requests_per_s": 100.0}
THROUGHPUT_LIMIT = {"max_gpus": 64}   # throughput needs a limit on every GPU type


def grown(p: Problem, size: int, seed: int = 0) -> Problem:
    """The problem with its catalog grown to ``size`` GPU types: the originals, then variants
    with price x U(0.6, 1.4), bandwidth and FLOP/s x U(0.8, 1.2), memory x U(0.75, 1.25)."""
    rng = np.random.default_rng(seed)
    gpus, prices, sources = list(p.gpus), list(p.prices), list(p.price_sources)
    source = list(range(len(p.gpus)))     # each variant runs what its original runs (support table)
    k = 0
    while len(gpus) < size:
        i = k % len(p.gpus)
        g = p.gpus[i]
        f = rng.uniform(0.8, 1.2)
        gpus.append(g.model_copy(update={
            "id": f"{g.id}-v{k}",
            "memory_bandwidth_bytes_per_s": g.memory_bandwidth_bytes_per_s * rng.uniform(0.8, 1.2),
            "memory_bytes": g.memory_bytes * rng.uniform(0.75, 1.25),
            "peak_dense_flops_per_s": {m: v * f for m, v in g.peak_dense_flops_per_s.items()}}))
        prices.append(p.prices[i] * rng.uniform(0.6, 1.4))
        sources.append("benchmark variant")
        source.append(i)
        k += 1
    support = p.support
    if support is not None:
        support = replace(support, ok=support.ok[source], runs_as=support.runs_as[source],
                          reason=support.reason[source], degraded=support.degraded[source])
    offers = tuple(p.offers[i] for i in source) if p.offers else ()     # each variant priced as its original
    return replace(p, gpus=tuple(gpus), table=GpuTable.build(gpus), prices=np.array(prices, dtype=float),
                   price_sources=tuple(sources), support=support, offers=offers)


def timed(fn, repeat: int):
    out, times = None, []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instance", default=str(ROOT / "instances" / "chat_llama70b.yaml"))
    ap.add_argument("--sizes", default="15,60,240")
    ap.add_argument("--objectives", default=",".join(OBJECTIVES))
    ap.add_argument("--backends", default=",".join(LINEAR))
    ap.add_argument("--demands", default="no,yes", help="without and/or with a demand")
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--repeat", type=int, default=1, help="median of this many solves (fresh model each)")
    args = ap.parse_args()
    spec0, doc = load_plan_spec(args.instance)
    backends = args.backends.split(",")
    print(f"instance {Path(args.instance).name}; time limit {args.time_limit:g} s; backends {', '.join(backends)}")
    print("| GPU types | demand | objective | candidates | table s | after screening | after pruning | oracle s | "
          + " | ".join(f"{b}: build+translate+solve s, status | {b} x oracle (solve / wall)" for b in backends) + " |")
    print("|" + "---|" * (8 + 2 * len(backends)))
    for size in [int(x) for x in args.sizes.split(",")]:
        for demand in [x == "yes" for x in args.demands.split(",")]:
            d = spec0.model_dump()
            d["workload"] = d["workload"] | ({"demand": DEMAND} if demand else {})
            tables: dict[tuple, tuple] = {}   # priced GPUs only for a cost objective, as resolve does
            for obj in args.objectives.split(","):
                d_obj = d | {"objective": obj}
                if obj == "throughput":
                    d_obj = d_obj | {"search": d["search"] | THROUGHPUT_LIMIT}
                try:
                    PlanSpec.model_validate(d_obj)
                except Exception:
                    print(f"| {size} | {demand} | {obj} | (the spec refuses this objective "
                          f"{'with' if demand else 'without'} a demand) |")
                    continue
                key = (obj.startswith("cost"), obj == "throughput")
                if key not in tables:
                    problem = resolve(PlanSpec.model_validate(d_obj), doc)
                    if size > len(problem.gpus):
                        problem = grown(problem, size)
                    tables[key] = (problem, *timed(lambda: build_candidates(problem), 1))
                problem, base, t_table = tables[key]
                cands = with_objective(base, obj)
                oracle, t_oracle = timed(lambda: get_backend("exhaustive").solve(constraints.build(cands), 600.0), 3)
                cells = []
                f = constraints.build(cands)
                for b in backends:
                    def run():
                        t0 = time.perf_counter()
                        fb = constraints.build(cands)
                        t1 = time.perf_counter()
                        sol = get_backend(b).solve(fb, args.time_limit)
                        return fb, sol, t1 - t0, time.perf_counter() - t1
                    runs = [run() for _ in range(args.repeat)]
                    fb, sol, t_build, t_solve = runs[-1]
                    t_build = statistics.median(r[2] for r in runs)
                    t_solve = statistics.median(r[3] for r in runs)
                    t_tr = fb.__dict__.get("_" + b, {}).get("translate_seconds", 0.0)
                    same = "" if sol.status.value != "optimal" or oracle.picks is None else (
                        "" if _agree(cands, fb, sol, oracle) else " DISAGREES")
                    total = t_build + t_solve
                    cells.append(f"{t_build:.3f}+{t_tr:.3f}+{t_solve - t_tr:.3f} = {total:.3f}, "
                                 f"{sol.status.value}{same}")
                    cells.append(f"{total / max(t_oracle, 1e-6):.0f}x / "
                                 f"{(t_table + total) / (t_table + t_oracle):.2f}x")
                print(f"| {len(problem.gpus)} | {demand} | {obj} | {len(cands):,} | {t_table:.2f} | "
                      f"{f.size['after_screening']:,} | {f.size['after_pruning']:,} | {t_oracle:.4f} | "
                      + " | ".join(cells) + " |", flush=True)


def _agree(cands, f, sol, oracle) -> bool:
    """Same objective value as the oracle's plan (ties may pick another row)."""
    from planner.candidates.objectives import OBJECTIVES as REG
    from planner.plan.solve import decode
    (j, r), = decode(f, sol.values)[:1]
    o = REG[cands.objective]
    a, b = o.value(cands, j, r), o.value(cands, oracle.picks[0], oracle.replicas[0])
    return abs(a - b) <= 1e-6 * max(abs(a), abs(b), 1e-12)


if __name__ == "__main__":
    main()
