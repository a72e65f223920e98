"""Per shipped instance and backend: candidates searched, model size, time to the first
(proven optimal) plan and to all K plans. Backends are compared within one run.

    python benchmarks/plan_backends.py [--top 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import constraints
from planner.backends.base import BACKENDS, get_backend
from planner.candidates.table import build_candidates
from planner.plan.solve import plan
from planner.resolve.problem import resolve
from planner.schemas.plan import load_plan_spec

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--top", type=int, default=3)
    args = ap.parse_args()
    print("| instance | candidates | after screening | backend | first plan: solver s | status | "
          f"top {args.top}: wall s | top objective |")
    print("|---|---|---|---|---|---|---|---|")
    for path in sorted((ROOT / "instances").glob("*.yaml")):
        if path.name.startswith(("estimate_", "fleet_")):
            continue
        spec, doc = load_plan_spec(str(path))
        problem = resolve(spec, doc)
        cands = build_candidates(problem)
        for name in BACKENDS:
            f = constraints.build(cands)
            sol = get_backend(name).solve(f, 600.0)
            t0 = time.perf_counter()
            r = plan(spec, doc, backend=name, top_k=args.top)
            wall = time.perf_counter() - t0
            top = f"{r.plans[0].objective_value:.6g}" if r.plans else "-"
            print(f"| {path.stem} | {cands.searched:,} | {len(f.alive):,} | {name} | {sol.seconds:.3f} | "
                  f"{sol.status.value} | {wall:.2f} | {top} |")


if __name__ == "__main__":
    main()
