"""The shipped sweep (instances/sweeps/demand_prices.yaml, 128 scenarios) through each
executor: wall time with 1 and 2 workers, serial, Ray when installed, and the price-only fast
path (one candidate table per physics group, re-priced) against rebuilding every table.
Every run's JSON is compared with the serial one, byte for byte.

    python benchmarks/sweep_executors.py [--sweep FILE] [--workers 2] [--no-ray]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from planner.schemas.sweep import load_sweep_spec
from planner.whatif.executors import get_executor
from planner.whatif.sweep import sweep
from planner.yamlio import load_yaml

ROOT = Path(__file__).resolve().parents[1]


def run(path: Path, executor: str, workers: int, reuse: bool = True) -> tuple[float, str]:
    spec, doc = load_sweep_spec(str(path))
    base = load_yaml(str(path.parent / spec.base))
    t0 = time.perf_counter()
    r = sweep(spec, doc, base, get_executor(executor, workers), reuse=reuse)
    return time.perf_counter() - t0, r.to_json()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweep", type=Path, default=ROOT / "instances" / "sweeps" / "demand_prices.yaml")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()
    print(f"{args.sweep.name}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f} at the start")
    print("| executor | workers | fast path | wall s | identical to serial |")
    print("|---|---|---|---|---|")
    base_s, ref = run(args.sweep, "serial", 1)
    rows = [("serial", 1, "yes", base_s, True)]
    slow_s, slow = run(args.sweep, "serial", 1, reuse=False)
    rows.append(("serial", 1, "no (rebuild every table)", slow_s, slow == ref))
    for w in sorted({1, args.workers}):
        s, out = run(args.sweep, "process", w)
        rows.append(("process", w, "yes", s, out == ref))
    if not args.no_ray:
        try:
            import ray  # noqa: F401
        except ImportError:
            print("(ray not installed: pip install -e '.[ray]')")
        else:
            s, out = run(args.sweep, "ray", args.workers)
            rows.append(("ray (start included)", args.workers, "yes", s, out == ref))
            s, out = run(args.sweep, "ray", args.workers)
            rows.append(("ray (running)", args.workers, "yes", s, out == ref))
    for executor, w, fast, s, same in rows:
        print(f"| {executor} | {w} | {fast} | {s:.1f} | {'yes' if same else 'NO'} |")
    p1 = next(s for e, w, _, s, _ in rows if e == "process" and w == 1)
    pn = next(s for e, w, _, s, _ in rows if e == "process" and w == args.workers)
    print(f"process: {args.workers} workers vs 1: {p1 / pn:.2f}x; fast path vs rebuild (serial): "
          f"{slow_s / base_s:.2f}x")


if __name__ == "__main__":
    main()
