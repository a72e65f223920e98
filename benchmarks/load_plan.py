"""Latency under load in the plan path (issue 9): the cost of the load model per candidate
row and of one 5,000-request simulation, and `planner plan` wall time per shipped instance
before (a git revision without the load model, default 329bf5a) and after, in one run.

    python benchmarks/load_plan.py [--baseline-rev REV] [--repeat N]

Timings are wall seconds on this machine (noisy, shared: take the ratios)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner.candidates.load import row_load  # noqa: E402
from planner.candidates.table import build_candidates
from planner.physics.load import engine, step_physics  # noqa: E402
from planner.resolve.problem import resolve
from planner.schemas.plan import load_plan_spec  # noqa: E402
from planner.simulate import Arrivals, Lengths, simulate_config  # noqa: E402

INSTANCES = ["chat_llama70b", "deepseek_v3", "budget_whatif", "latency_llama8b", "seed_4090_vs_h100",
             "infeasible_slo", "infeasible_405b"]
TIMER = ("import sys, time; sys.path.insert(0, {root!r}); "
         "from planner.schemas.plan import load_plan_spec; {imp}; "
         "spec, doc = load_plan_spec({path!r}); t = time.perf_counter(); {call}; print(time.perf_counter() - t)")


def _wall(root: Path, path: Path, new: bool, repeat: int) -> float:
    imp = "from planner.whatif.relax import plan_and_relax as run" if new else \
        "from planner.plan.solve import plan as run"
    call = "run(spec, doc, backend='cpsat', simulate=True)" if new else "run(spec, doc, backend='cpsat')"
    code = TIMER.format(root=str(root), imp=imp, path=str(path), call=call)
    best = np.inf
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
        best = min(best, float(out.stdout.strip().splitlines()[-1]))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline-rev", default="329bf5a")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()

    spec, doc = load_plan_spec(str(ROOT / "instances" / "chat_llama70b.yaml"))
    p = resolve(spec, doc)
    c = build_candidates(p)
    rows = np.nonzero(c.ev.fits)[0]
    slot = p.slots[0]
    t0 = time.perf_counter()
    row_load(slot, p.table, c.configs.take(rows), p.assumptions, np.ones(len(rows), dtype=bool))
    dt = time.perf_counter() - t0
    print(f"load model: capacity at SLO for {len(rows):,} candidate rows in {dt:.2f} s "
          f"({dt / len(rows) * 1e6:.0f} us per row)")
    j = int(rows[np.argmax(c.load.tokens_per_s[rows])])
    phys = step_physics(slot.model, p.table, c.configs.take(np.array([j])), p.assumptions)
    t0 = time.perf_counter()
    r = simulate_config(phys, engine(phys), 0, Arrivals("poisson", rate=float(c.load.rate[j])),
                        Lengths(int(slot.input.mean)), Lengths(int(slot.output.mean)), n_requests=5000)
    print(f"simulation: 5,000 requests ({r.steps:,} steps) in {time.perf_counter() - t0:.3f} s")

    print("\n| instance | before: plan wall s | after: plan + relaxations + simulation wall s | ratio |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(base), args.baseline_rev], cwd=ROOT,
                       check=True)
        try:
            for name in INSTANCES:
                before = _wall(base, base / "instances" / f"{name}.yaml", False, args.repeat)
                after = _wall(ROOT, ROOT / "instances" / f"{name}.yaml", True, args.repeat)
                print(f"| {name} | {before:.2f} | {after:.2f} | {after / before:.1f}x |")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)


if __name__ == "__main__":
    main()
