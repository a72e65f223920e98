"""How many times the load model runs for a fleet's candidate table (issue 26): per row of
``capacity_at_slo``, the rate evaluations of its bisection (``bisection_by_bracket``) for rows
settled above the utilisation ceiling and for the others, and the rows the open-loop model
(``_open``) computes in all. Counts, not times: they do not depend on the machine's load.

    python benchmarks/load_evaluations.py --size 50

The fleet is benchmarks/fleet_scale.py's generated one of ``--size`` workloads."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fleet_scale import spec_for  # noqa: E402

import planner.physics.load as load_mod  # noqa: E402
from planner.candidates.table import build_candidates  # noqa: E402
from planner.resolve.problem import resolve_fleet  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=50)
    args = ap.parse_args()
    count: Counter = Counter()
    bisection, open_loop = load_mod.bisection_by_bracket, load_mod._open

    def counted_bisection(evaluate, lo, *rest, **kw):
        per_row = np.zeros(len(lo), dtype=np.int64)

        def ev(x, rows):
            np.add.at(per_row, rows, 1)
            return evaluate(x, rows)
        out = bisection(ev, lo, *rest, **kw)
        above = out[2]
        count["rows above the ceiling"] += int(above.sum())
        count["their evaluations"] += int(per_row[above].sum())
        count["rows below it"] += int((~above).sum())
        count["their evaluations "] += int(per_row[~above].sum())
        return out

    def counted_open(phys, eng, wl, lam, *rest, **kw):
        count["open-loop rows computed"] += len(lam)
        return open_loop(phys, eng, wl, lam, *rest, **kw)
    load_mod.bisection_by_bracket, load_mod._open = counted_bisection, counted_open
    build_candidates(resolve_fleet(spec_for(args.size)))
    up, down = count["rows above the ceiling"], count["rows below it"]
    print(f"{args.size} workloads: bisection rows above the ceiling {up:,}, "
          f"{count['their evaluations'] / max(up, 1):.2f} evaluations a row; below it {down:,}, "
          f"{count['their evaluations '] / max(down, 1):.2f} a row; "
          f"open-loop rows computed {count['open-loop rows computed']:,}")


if __name__ == "__main__":
    main()
