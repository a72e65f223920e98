"""The simulator's cost per shipped plan (issue 26 item 3): one 5,000-request simulation of
every ranked aggregated deployment of every shipped plan and fleet instance (the re-score's
``simulate_row`` at the deployment's own load, its cap on steps included), timed before (a
git revision with the per-step simulator, default e0f71d0) and after, in one run.

    python benchmarks/simulate_speed.py [--baseline-rev REV] [--instances a,b]

Prints per instance the deployments simulated and the slowest simulation's CPU seconds
before and after (target: < 0.3 s), and its wall seconds after (noisy on a shared machine).
The schedule instances (instances/schedule_*.yaml) are skipped with a note: they are not
plans."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MEASURE = """
import json, sys, time
sys.path.insert(0, {root!r})
from planner.plan.rescore import simulate_row
from planner.plan.solve import plan, prepare
from planner.schemas.fleet import load_fleet_spec
from planner.schemas.plan import load_plan_spec
spec, doc = (load_fleet_spec if {fleet!r} else load_plan_spec)({path!r})
_, problem, cands = prepare(spec, doc)
result = plan(spec, doc)
out = []
for p in result.plans:
    if p.role != "aggregated":
        continue
    slot = cands.slots[int(cands.slot[p.candidate])]
    d = slot.demand
    closed = d is not None and d.kind == "clients"
    kw = dict(clients=max(1, int(round(p.share * d.value / p.replicas)))) if closed else \\
        dict(rate=p.load["requests_per_s_per_replica"])
    t, c = time.perf_counter(), time.process_time()
    try:
        _, s = simulate_row(problem, cands, p.candidate, **kw)
    except ValueError as exc:
        out.append(dict(error=str(exc)[:60]))
        continue
    out.append(dict(seconds=time.perf_counter() - t, cpu=time.process_time() - c, requests=s["requests"]))
print(json.dumps(out))
"""


SKIPPED = ("estimate_", "schedule_")
"""Shipped instances that are not plans: an estimate's one configuration, and a schedule's
demand profile (`planner schedule`; its fleets are solved per period, nothing to re-score)."""


def instances(names: str | None) -> tuple[list[Path], list[Path]]:
    """(the shipped plan and fleet instances to time, the schedule instances skipped), of
    ``names`` where given."""
    paths = sorted((ROOT / "instances").glob("*.yaml"))
    if names:
        paths = [p for p in paths if p.stem in names.split(",")]
    return ([p for p in paths if not p.name.startswith(SKIPPED)],
            [p for p in paths if p.name.startswith("schedule_")])


def measure(root: Path, path: Path) -> list[dict]:
    code = MEASURE.format(root=str(root), path=str(path), fleet=path.name.startswith("fleet_"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    if out.returncode:
        return [dict(error=(out.stderr.strip().splitlines() or ["failed"])[-1][:60])]
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline-rev", default="e0f71d0")
    ap.add_argument("--instances", default=None, help="comma-separated instance names (default: all shipped)")
    args = ap.parse_args()
    print("| instance | deployments | slowest before, CPU s | slowest after, CPU s | speed-up | after, wall s |")
    print("|---|---|---|---|---|---|")
    worst = 0.0
    timed, skipped = instances(args.instances)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(base), args.baseline_rev], cwd=ROOT,
                       check=True)
        try:
            for path in timed:
                before = measure(base, base / "instances" / path.name)
                after = measure(ROOT, path)
                b = max((r.get("cpu", 0.0) for r in before), default=0.0)
                a = max((r.get("cpu", 0.0) for r in after), default=0.0)
                wall = max((r.get("seconds", 0.0) for r in after), default=0.0)
                worst = max(worst, a)
                errors = {r["error"] for r in after if "error" in r}
                note = f" ({'; '.join(sorted(errors))})" if errors else ""
                print(f"| {path.stem} | {sum('seconds' in r for r in after)}{note} | {b:.3f} | {a:.3f} | "
                      f"{b / a if a else float('nan'):.1f}x | {wall:.3f} |", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    print(f"\nslowest 5,000-request simulation of a shipped plan after: {worst:.3f} CPU s (target < 0.3 s)")
    if skipped:
        print(f"skipped, schedules, not plans (`planner schedule`): {', '.join(p.stem for p in skipped)}")


if __name__ == "__main__":
    main()
