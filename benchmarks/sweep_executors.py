"""The shipped sweeps (instances/sweeps/demand_prices.yaml, 128 scenarios of one model;
fleet_budgets.yaml, a fleet's) through each executor: scenarios per second serial, with 2
processes, on a local Ray of 2 workers and on a 3-worker local Ray cluster (a head and two
worker nodes on this machine, ``ray.cluster_utils.Cluster``), and the price-only fast path
against rebuilding every table. Every run's JSON is compared with the serial one, byte for
byte; "workers" count this process, which runs tasks too (planner/whatif/executors.py).

    python benchmarks/sweep_executors.py [--sweeps a.yaml,b.yaml] [--no-ray] [--no-rebuild] [--repeat N]

Wall seconds on this machine (noisy, shared: the load average at each row is printed). With
``--repeat N`` each run is made N times and the fastest kept (the one least slowed by other
work); on a shared machine, ``nice -n -10`` (as root) brings the figures nearer a quiet one's."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))               # this checkout, not an installed planner

from planner.schemas.sweep import load_sweep_spec  # noqa: E402
from planner.whatif.executors import RayExecutor, get_executor  # noqa: E402
from planner.whatif.sweep import sweep  # noqa: E402
from planner.yamlio import load_yaml  # noqa: E402

SWEEPS = ("demand_prices.yaml", "fleet_budgets.yaml")


REPEAT = 1
"""Runs of each executor; the fastest is reported (--repeat)."""


NOTES: list[str] = []
"""Why an executor's workers did not start, per run (planner/whatif/executors.py ``share``)."""


CPU: list[float] = []
"""CPU seconds of this process (its workers' not included) in each run of the last ``run``."""


def run(path: Path, executor, reuse: bool = True) -> tuple[float, str, int]:
    spec, doc = load_sweep_spec(str(path))
    base = load_yaml(str(path.parent / spec.base))
    best, out = math.inf, ""
    NOTES.clear()
    CPU.clear()
    for _ in range(REPEAT):
        t0, c0 = time.perf_counter(), time.process_time()
        r = sweep(spec, doc, base, executor, reuse=reuse)
        s = time.perf_counter() - t0
        CPU.append(time.process_time() - c0)
        if getattr(executor, "note", None):
            NOTES.append(executor.note)
        if out and r.to_json() != out:
            return s, r.to_json(), len(r.rows)        # a repeat that differs is shown as it is
        best, out = min(best, s), r.to_json()
    return best, out, len(r.rows)


def differing(ref: str, out: str) -> str:
    """The scenarios whose rows differ, with each run's status (a solve cut short by its time
    limit on a loaded machine is not reproducible, whatever the executor)."""
    a, b = (json.loads(x)["results"] for x in (ref, out))
    diff = [(x["id"], x["status"], y["status"]) for x, y in zip(a, b) if x != y]
    return "; ".join(f"{i} ({s} / {t})" for i, s, t in diff)


def main() -> None:
    os.environ["PYTHONPATH"] = str(ROOT)       # workers (spawned, Ray's) import this checkout too
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweeps", default=",".join(SWEEPS))
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--no-rebuild", action="store_true", help="skip the serial run rebuilding every table")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each executor, the fastest reported")
    args = ap.parse_args()
    global REPEAT
    REPEAT = max(1, args.repeat)
    paths = [ROOT / "instances" / "sweeps" / name for name in args.sweeps.split(",")]
    print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f} at the start\n")
    print(f"fastest of {REPEAT} run(s) each\n")
    print("| sweep | executor | workers | wall s | scenarios/s | vs serial | identical to serial | load | "
          "CPU s here, each run | runs without workers |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    refs: dict[Path, tuple[float, str]] = {}

    def show(path: Path, name: str, workers: int, s: float, out: str, n: int) -> None:
        base_s, ref = refs[path]
        print(f"| {path.stem} | {name} | {workers} | {s:.1f} | {n / s:.2f} | {base_s / s:.2f}x | "
              f"{'yes' if out == ref else 'NO: ' + differing(ref, out)} | {os.getloadavg()[0]:.1f} | "
              f"{', '.join(f'{c:.1f}' for c in CPU)} | {len(NOTES) if workers > 1 else ''} |", flush=True)
        for note in NOTES if workers > 1 else ():
            print(f"|   | ({note}) |", flush=True)

    for path in paths:
        s, ref, n = run(path, get_executor("serial"))
        refs[path] = (s, ref)
        show(path, "serial", 1, s, ref, n)
        if not args.no_rebuild:
            show(path, "serial, every table rebuilt", 1, *run(path, get_executor("serial"), reuse=False))
        show(path, "process", 2, *run(path, get_executor("process", 2)))
    if args.no_ray:
        return
    try:
        import ray
        from ray.cluster_utils import Cluster
    except ImportError:
        print("(ray not installed: pip install -e '.[ray]')")
        return
    for path in paths:
        show(path, "ray local (its start included)", 2, *run(path, RayExecutor(2)))
        show(path, "ray local (running)", 2, *run(path, RayExecutor(2)))
        ray.shutdown()
    t0 = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args=dict(num_cpus=1, include_dashboard=False))
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        print(f"\n(a 3-node local cluster started in {time.perf_counter() - t0:.1f} s)\n")
        for path in paths:
            show(path, "ray cluster, 3 nodes (running)", 3, *run(path, RayExecutor(3, address=cluster.address)))
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main()
