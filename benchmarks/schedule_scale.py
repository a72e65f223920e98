"""Schedules of the shipped day (instances/schedule_day.yaml) at 6, 12 and 24 periods: the
program's size, the schedule's solve time and status per backend, and its $/day against the
static peak fleet and the sum of per-period optima (docs/workloads.md section 7).

    python benchmarks/schedule_scale.py
    python benchmarks/schedule_scale.py --periods 6,24 --backends highs,milp,cpsat --time-limit 120

Finer periods repeat the day's hourly shape: each of the instance's 4-hour periods is cut into
4 / (24 / P) hour periods at the same multiplier, so the optimum can only fall or stay."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner.plan.schedule import prepare, solve_prepared  # noqa: E402
from planner.schemas.fleet import FleetSpec  # noqa: E402
from planner.yamlio import load_yaml  # noqa: E402


def _spec(periods: int) -> FleetSpec:
    data = load_yaml(str(ROOT / "instances" / "schedule_day.yaml")).data
    split = periods // 6
    for w in data["workloads"]:
        w["demand"]["profile"] = [{"hours": p["hours"] / split, "multiplier": p["multiplier"]}
                                  for p in w["demand"]["profile"] for _ in range(split)]
    return FleetSpec.model_validate(data)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--periods", default="6,12,24")
    ap.add_argument("--backends", default="highs,milp,cpsat")
    ap.add_argument("--time-limit", type=float, default=120.0)
    args = ap.parse_args()
    print(f"{'periods':>7} {'backend':>7} {'vars':>6} {'rows':>6} {'prepare s':>9} {'solve s':>8} {'status':>9} "
          f"{'$/day':>9} {'static':>9} {'lower':>9}")
    for n in (int(x) for x in args.periods.split(",")):
        spec = _spec(n)
        for backend in args.backends.split(","):
            t0 = time.perf_counter()
            p = prepare(spec, backend=backend, time_limit=args.time_limit)
            t1 = time.perf_counter()
            r = solve_prepared(p, backend=backend, time_limit=args.time_limit)
            t2 = time.perf_counter()
            day = 24.0 / r.cycle_hours
            print(f"{n:>7} {backend:>7} {r.model_size.get('variables', 0):>6} {r.model_size.get('rows', 0):>6} "
                  f"{t1 - t0:>9.1f} {t2 - t1:>8.1f} {r.status:>9} {r.usd_per_day or float('nan'):>9.2f} "
                  f"{(p.static.usd_per_cycle or float('nan')) * day:>9.2f} "
                  f"{(p.lower.usd_per_cycle or float('nan')) * day:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
