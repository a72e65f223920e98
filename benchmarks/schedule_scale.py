"""Schedules of the shipped hourly day (instances/schedule_day_hourly.yaml) cut into 4, 12 and
24 periods: the program's size, the time to build the tables and solve the two comparisons
(prepare), the schedule's solve time and status per backend, and its $/day against the
static peak fleet and the sum of per-period optima (docs/workloads.md section 8).

    python benchmarks/schedule_scale.py
    python benchmarks/schedule_scale.py --periods 4,24 --backends highs,milp,cpsat --time-limit 120

P periods are 24 / P hours each, each at the busiest of its hours' multipliers (a period's
fleet serves its busiest hour), and at the night SLO only where all its hours state it; so
the finer the periods, the lower (or equal) the optimum. Run it on a quiet machine for
timings (the solve's CPU seconds, its own and its CBC child's, are steadier on a shared one);
the figures printed are the planner's own (closed-form capacities, docs/load.md)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner.plan.schedule import prepare, solve_prepared  # noqa: E402
from planner.schemas.fleet import FleetSpec  # noqa: E402
from planner.yamlio import load_yaml  # noqa: E402


def _spec(periods: int) -> FleetSpec:
    data = load_yaml(str(ROOT / "instances" / "schedule_day_hourly.yaml")).data
    if 24 % periods:
        raise SystemExit(f"--periods: {periods} does not divide 24 hours")
    span = 24 // periods
    for w in data["workloads"]:
        hours = w["demand"]["profile"]
        cut = []
        for k in range(periods):
            part = hours[k * span:(k + 1) * span]
            period = {"hours": float(span), "multiplier": max(h["multiplier"] for h in part)}
            if all("slo" in h for h in part) and all(h["slo"] == part[0]["slo"] for h in part):
                period["slo"] = part[0]["slo"]
            cut.append(period)
        w["demand"]["profile"] = cut
    return FleetSpec.model_validate(data)


def _cpu() -> float:
    """CPU seconds of this process and its finished children (CBC runs as one)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--periods", default="4,12,24")
    ap.add_argument("--backends", default="highs,milp,cpsat")
    ap.add_argument("--time-limit", type=float, default=120.0)
    args = ap.parse_args()
    print(f"{'periods':>7} {'backend':>7} {'vars':>6} {'rows':>6} {'options':>7} {'prepare s':>9} {'solve s':>8} {'solve CPU s':>11} "
          f"{'status':>9} {'gap':>6} {'$/day':>9} {'static':>9} {'lower':>9}")
    for n in (int(x) for x in args.periods.split(",")):
        spec = _spec(n)
        for backend in args.backends.split(","):
            t0 = time.perf_counter()
            p = prepare(spec, backend=backend, time_limit=args.time_limit)
            t1, c1 = time.perf_counter(), _cpu()
            r = solve_prepared(p, backend=backend, time_limit=args.time_limit)
            t2, c2 = time.perf_counter(), _cpu()
            day = 24.0 / r.cycle_hours
            gap = "-" if r.gap is None else f"{r.gap:.1%}"
            print(f"{n:>7} {backend:>7} {r.model_size.get('variables', 0):>6} {r.model_size.get('rows', 0):>6} "
                  f"{r.model_size.get('options', 0):>7} {t1 - t0:>9.1f} {t2 - t1:>8.1f} {c2 - c1:>11.2f} {r.status:>9} {gap:>6} "
                  f"{r.usd_per_day or float('nan'):>9.2f} {(p.static.usd_per_cycle or float('nan')) * day:>9.2f} "
                  f"{(p.lower.usd_per_cycle or float('nan')) * day:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
