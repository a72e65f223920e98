"""Fleets of 10, 50 and 200 workloads over the whole catalog with inventory limits: time to
build the candidate tables, the model's size, solve time, status and gap per backend, and
the saving over each baseline (docs/fleet.md, issue 13).

    python benchmarks/fleet_scale.py                    # 10 and 50 workloads, cpsat + highs + milp
    python benchmarks/fleet_scale.py --sizes 10,50,200 --backends cpsat,highs --time-limit 60

Workloads are generated from a fixed seed: models from 8B to 70B (dense and MoE) with chat,
RAG, summarisation and code length profiles, demands from 0.5 to 60 req/s, TTFT p99 and TPOT
targets per profile. The inventory owns some of every common type and rents the rest at
catalog prices (rent_outside_inventory), so both the inventory and the prices shape the fleet.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner.candidates.table import build_candidates
from planner.plan.solve import solve
from planner.resolve.problem import resolve_fleet
from planner.schemas.fleet import FleetSpec
from planner.whatif.answer import around

MODELS = ["llama-3.1-8b", "qwen3-8b", "qwen3-32b", "llama-3.1-70b", "qwen3-30b-a3b", "gpt-oss-20b"]
PROFILES = {   # name: (input, output, TTFT p99 ms, TPOT ms)
    "chat": (1024, 256, 1500, 50),
    "rag": (4096, 256, 3000, 60),
    "summarise": (8192, 512, 6000, 80),
    "code": (2048, 512, 2000, 40),
}


def workloads(n: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        model = rng.choice(MODELS)
        name = rng.choice(list(PROFILES))
        isl, osl, ttft, tpot = PROFILES[name]
        big = "70b" in model or "32b" in model
        rate = round(rng.uniform(0.5, 12 if big else 60), 1)
        out.append({"name": f"w{i:03d}-{name}", "model": model, "input_tokens": isl, "output_tokens": osl,
                    "demand": {"requests_per_s": rate}, "slo": {"ttft_ms": {"p99": ttft}, "tpot_ms": tpot},
                    "weight": rng.choice([1, 1, 2, 3])})
    return out


def spec_for(n: int) -> FleetSpec:
    scale = max(1, n // 10)
    return FleetSpec.model_validate({
        "workloads": workloads(n),
        "search": {"quantizations": ["w16a16", "w8a8-fp8", "w8a16"], "kv_dtypes": ["fp8"], "tp": [1, 2, 4, 8],
                   "pp": [1], "max_batch": 512},
        "limits": {"inventory": {"h100-sxm": 16 * scale, "a100-80gb": 16 * scale, "l40s": 32 * scale,
                                 "mi300x": 8 * scale}, "rent_outside_inventory": True},
        "objective": "cost_per_hour", "max_configurations_per_workload": 2})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10,50")
    ap.add_argument("--backends", default="cpsat,highs,milp")
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--no-tie-break", action="store_true", help="solve the objectives only (the order before "
                    "issue 21): what the documented tie-breaks cost")
    args = ap.parse_args()
    print("| workloads | candidates | build s | columns after pruning | rows | backend | status | gap | "
          "solve s | tie-breaks | $/hour | vs alone | vs greedy |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in [int(x) for x in args.sizes.split(",")]:
        spec = spec_for(n)
        t0 = time.perf_counter()
        problem = resolve_fleet(spec)
        cands = build_candidates(problem)
        build = time.perf_counter() - t0
        for b in args.backends.split(","):
            t1 = time.perf_counter()
            r = solve(problem, cands, backend=b, time_limit=args.time_limit, tie_break=not args.no_tie_break)
            around(problem, cands, r, backend=b, time_limit=args.time_limit, baselines=True)
            seconds = time.perf_counter() - t1
            size = r.model_size
            gap = r.phases[0].gap if r.phases else None
            a = r.answer(1)
            cost = a.totals.cost_per_hour if a is not None and a.totals is not None else None
            base = {x.baseline: x for x in r.baselines}

            def vs(name: str) -> str:
                x = base.get(name)
                if x is None or cost is None or x.cost_per_hour is None:
                    return "-"
                if x.breaks or x.served_share < 1 - 1e-9:
                    return f"{x.cost_per_hour:.1f} (" + ("breaks limits" if x.breaks else
                                                        f"serves {x.served_share:.0%}") + ")"
                return f"{x.cost_per_hour:.1f} ({(x.cost_per_hour - cost) / x.cost_per_hour:+.1%} saved)"

            print(f"| {n} | {len(cands):,} | {build:.1f} | {size.get('after_pruning', '-')} | {size.get('rows', '-')} | "
                  f"{b} | {r.status} | {'-' if gap is None else f'{gap:.2%}'} | {seconds:.2f} | "
                  f"{', '.join(p.status for p in r.phases if p.kind == 'tie-break') or '-'} | "
                  f"{'-' if cost is None else f'{cost:.2f}'} | {vs('alone')} | {vs('greedy')} |", flush=True)


if __name__ == "__main__":
    main()
