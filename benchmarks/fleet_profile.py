"""Where a fleet's seconds and MiB go (issue 26): one size of benchmarks/fleet_scale.py's
generated fleet, its candidate table and its solve each under cProfile, with the process's CPU
seconds, wall seconds and resident high-water mark after each.

    python benchmarks/fleet_profile.py --size 1000 --time-limit 120 --top 40
    python benchmarks/fleet_profile.py --size 200 --tie-break
    python benchmarks/fleet_profile.py --size 1000 --time-limit 120 --memory    # MiB around each step

cProfile slows Python-heavy code (about 1.3x here); the CPU seconds of
benchmarks/fleet_scale.py are the figures to quote, these the shares."""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fleet_scale import SCALING_BACKEND, cpu_seconds, peak_mib, spec_for

from planner.candidates.table import build_candidates
from planner.plan.solve import solve
from planner.resolve.problem import resolve_fleet


def resident_mib() -> str:
    """The resident set now and its high-water mark so far (Linux /proc), in MiB."""
    with open("/proc/self/status") as fh:
        got = {k: int(v.split()[0]) // 1024 for k, v in (line.split(":", 1) for line in fh) if k in ("VmRSS", "VmHWM")}
    return f"resident {got['VmRSS']:,} MiB, peak {got['VmHWM']:,} MiB"


def watch_memory() -> None:
    """Print the resident set before and after each step of the solve stage that holds memory:
    the model's build, the starting answer, the decomposition's blocks and solve, the
    description and explanation of the answer."""
    import constraints
    import planner.plan.solve as stage
    from planner.backends import decompose
    t0 = time.perf_counter()

    def watched(owner: object, name: str) -> None:
        real = getattr(owner, name)

        def step(*a: object, **k: object) -> object:
            print(f"{time.perf_counter() - t0:7.1f} s  > {name}: {resident_mib()}", flush=True)
            out = real(*a, **k)
            print(f"{time.perf_counter() - t0:7.1f} s  < {name}: {resident_mib()}", flush=True)
            return out
        setattr(owner, name, step)

    for owner, name in ((constraints, "build"), (stage.starting, "starting_answer"), (decompose, "blocks"),
                        (decompose, "solve"), (stage, "describe"), (stage, "explain_plans")):
        watched(owner, name)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--backend", default=SCALING_BACKEND)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--tie-break", action="store_true", help="also the tie-break phases")
    ap.add_argument("--top", type=int, default=30, help="functions listed per stage, by cumulative time")
    ap.add_argument("--memory", action="store_true",
                    help="no profile: the resident set before and after each step of the solve")
    args = ap.parse_args()
    problem = resolve_fleet(spec_for(args.size))
    if args.memory:
        cands = build_candidates(problem)
        print(f"table: {len(cands):,} candidates, {resident_mib()}", flush=True)
        watch_memory()
        r = solve(problem, cands, backend=args.backend, time_limit=args.time_limit, tie_break=args.tie_break)
        print(f"status {r.status}; phases: " + ", ".join(f"{p.objective} {p.status} gap {p.gap}" for p in r.phases))
        print(f"done: {resident_mib()}")
        return
    for stage in ("table", "solve"):
        prof = cProfile.Profile()
        t0, c0 = time.perf_counter(), cpu_seconds()
        prof.enable()
        if stage == "table":
            timings: dict[str, float] = {}
            cands = build_candidates(problem, timings)
        else:
            r = solve(problem, cands, backend=args.backend, time_limit=args.time_limit, tie_break=args.tie_break)
        prof.disable()
        print(f"## {stage}: {cpu_seconds() - c0:.2f} CPU s, {time.perf_counter() - t0:.2f} s wall, "
              f"peak {peak_mib():.0f} MiB", flush=True)
        if stage == "table":
            print(f"{len(cands):,} candidates; wall s per stage: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))
        else:
            print(f"status {r.status}; phases: "
                  + ", ".join(f"{p.objective} {p.status} gap {p.gap}" for p in r.phases))
        pstats.Stats(prof, stream=sys.stdout).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
