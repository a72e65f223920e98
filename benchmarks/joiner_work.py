"""Work of the whole joiners' steps and of the experts-touched power in a fleet's candidate
table (docs/fleet.md "Scale", issue 26): builds benchmarks/fleet_scale.py's table of N
workloads once and counts, in ``joined_step`` (planner/physics/numerics.py), the steps the
stacked call over every configuration would evaluate against those evaluated (the split of
``_joiner_split``), and in ``expected_touched`` (planner/physics/terms.py) the elements and
those past the token count where (1 - k/E)^tokens < 2^-60 (no power there). Prints the
table's CPU seconds and those spent in ``joined_step`` (``process_time``; the counting adds a
little to both).

    python benchmarks/joiner_work.py [--size 50]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fleet_scale import spec_for  # noqa: E402

import planner.physics.disagg as disagg_mod  # noqa: E402
import planner.physics.load as load_mod  # noqa: E402
import planner.physics.numerics as numerics  # noqa: E402
import planner.physics.step as step_mod  # noqa: E402
import planner.physics.terms as terms  # noqa: E402
from planner.candidates.table import build_candidates  # noqa: E402
from planner.resolve.problem import resolve_fleet  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=50)
    args = ap.parse_args()
    n = {"calls": 0, "configurations": 0, "stacked": 0, "evaluated": 0, "cpu": 0.0, "touched": 0, "past": 0}
    joined, touched = numerics.joined_step, terms.expected_touched

    def counted_joined(step, *a, step_at=None, **k):
        def st(tokens):
            n["evaluated"] += tokens.size
            return step(tokens)

        def at(rows, m):
            f = step_at(rows, m)

            def g(tokens):
                n["evaluated"] += tokens.size
                return f(tokens)
            return g
        t0 = time.process_time()
        out = joined(st, *a, **k) if step_at is None else joined(st, *a, step_at=at, **k)   # (before step_at too)
        n["cpu"] += time.process_time() - t0
        n["calls"] += 1
        n["configurations"] += np.size(out)
        return out

    def counted_touched(arch, tokens):
        miss = 1.0 - arch.params.experts_per_token / arch.params.num_experts
        m = np.maximum(tokens, 1.0)
        n["touched"] += np.size(m)
        n["past"] += int(np.count_nonzero(m > 60.0 * math.log(2.0) / -math.log(miss))) if miss > 0 else np.size(m)
        return touched(arch, tokens)

    # the stacked call's size (every configuration to the call's largest count): joined_step
    # once more without the split, its step a stub that counts
    def stacked_size(step, alone, last, size, cap, rate, fixed, wait=0.0, prob_wait=1.0, **k):
        sizes: list[int] = []

        def stub(tokens):
            sizes.append(tokens.size)
            return np.zeros(tokens.shape)
        joined(stub, alone, last, size, cap, rate, fixed, wait, prob_wait)
        return sizes[0]

    def both(*a, **k):
        n["stacked"] += stacked_size(*a, **k)
        return counted_joined(*a, **k)
    load_mod.joined_step = disagg_mod.joined_step = both
    step_mod.expected_touched = terms.expected_touched = counted_touched
    c0 = time.process_time()
    cands = build_candidates(resolve_fleet(spec_for(args.size)))
    table = time.process_time() - c0
    print(f"{args.size} workloads, {len(cands):,} candidates, table {table:.2f} CPU s "
          f"(joined_step {n['cpu']:.2f}, counting included)")
    print(f"joined_step: {n['calls']} calls over {n['configurations']:,} configurations: "
          f"{n['stacked']:,} steps stacked to each call's largest count, "
          f"{n['evaluated']:,} evaluated")
    print(f"expected_touched: {n['touched']:,} elements, {n['past']:,} ({100 * n['past'] / max(n['touched'], 1):.0f} %)"
          " past (1 - k/E)^tokens < 2^-60")


if __name__ == "__main__":
    main()
