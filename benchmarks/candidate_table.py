"""Cost of building the candidate table (issue 16), split by stage: ``physics`` (the rows and
their idle physics, with the batch-level bisections), ``load`` (capacity at SLO of every row,
planner/candidates/load.py) and ``derive`` (every other derived quantity), for every shipped
plan instance and for one instance with its catalog grown to 60 and 240 GPU types (variants
of the catalog's GPUs, benchmarks/solver_speed.py's ``grown``).

    python benchmarks/candidate_table.py [--instance PATH] [--sizes 60,240] [--repeat 3]

Columns: candidates (rows of the table), rows that fit in memory, rows with a capacity
(rate > 0: those meeting every target at a vanishing rate, on which the capacity bisection
runs), then the median seconds of each stage and of the whole build, and microseconds per
candidate. Compare commits by running the same command on each."""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from solver_speed import grown  # noqa: E402

from planner.candidates.table import build_candidates
from planner.resolve.problem import Problem, resolve
from planner.schemas.plan import load_plan_spec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("physics", "load", "derive")


def measure(p: Problem, repeat: int) -> tuple[list[int], dict[str, float]]:
    runs: list[dict[str, float]] = []
    c = None
    for _ in range(repeat):
        t: dict[str, float] = {}
        c = build_candidates(p, timings=t)
        runs.append(t)
    assert c is not None and c.load is not None
    med = {k: statistics.median(r[k] for r in runs) for k in STAGES}
    med["total"] = statistics.median(sum(r[k] for k in STAGES) for r in runs)
    fits = c.ev.fits
    return [len(c), int(fits.sum()), int(np.sum(c.load.rate > 0))], med


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instance", default=str(ROOT / "instances" / "chat_llama70b.yaml"),
                    help="the instance whose catalog is grown")
    ap.add_argument("--sizes", default="60,240", help="grown catalog sizes (GPU types); empty for none")
    ap.add_argument("--repeat", type=int, default=3, help="median of this many builds (1 for grown catalogs)")
    args = ap.parse_args()
    print("| instance | GPU types | candidates | fit | capacity > 0 | physics s | load s | derive s | total s | "
          "us / candidate |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    cases: list[tuple[str, Problem, int]] = []
    for path in sorted((ROOT / "instances").glob("*.yaml")):
        if path.name.startswith(("estimate_", "fleet_")):
            continue
        spec, doc = load_plan_spec(str(path))
        cases.append((path.name, resolve(spec, doc), args.repeat))
    spec, doc = load_plan_spec(args.instance)
    base = resolve(spec, doc)
    for size in [int(x) for x in args.sizes.split(",") if x]:
        cases.append((Path(args.instance).name, grown(base, size), 1))
    for name, p, repeat in cases:
        counts, t = measure(p, repeat)
        n = counts[0]
        print(f"| {name} | {len(p.gpus)} | " + " | ".join(f"{x:,}" for x in counts) + " | "
              + " | ".join(f"{t[k]:.4f}" for k in (*STAGES, "total"))
              + f" | {t['total'] / max(n, 1) * 1e6:.0f} |", flush=True)


if __name__ == "__main__":
    main()
