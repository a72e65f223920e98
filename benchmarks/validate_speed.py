"""How fast `planner validate` goes through a measurements corpus (issue 22: the whole of
../shared/reference/measured-silicon.csv in under 10 s): rows per second, the wall and CPU
seconds of each stage (reading and reading off the rows; the physics: idle rows, rows under
load, disaggregated rows; grouping and summaries), and the physics calls made.

    python benchmarks/validate_speed.py [CSV ...] [--repeat 3]

Default: ../shared/reference/measured-silicon.csv and measured-public.csv. The best of
``--repeat`` runs is printed (the machine is shared: the CPU seconds are the steadier
figure). The validation itself is `planner.fidelity.validate.validate` with the realistic
preset and no calibration, as `planner validate CSV` runs it; then the command itself,
`python -m planner validate CSV` in a process of its own (start-up, the validation and the
tables written to stdout), wall and CPU seconds, the best of ``--repeat``."""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner.fidelity import predict as P  # noqa: E402
from planner.fidelity import validate as V  # noqa: E402
from planner.physics.options import PRESETS  # noqa: E402

REFERENCE = next((p for p in (ROOT.parent / "shared" / "reference", Path("/work/shared/reference")) if p.is_dir()),
                 ROOT.parent / "shared" / "reference")
STAGES = {"idle": "_predict_idle", "load": "predict_load", "disagg": "predict_disagg"}


def timed(path: str) -> dict[str, float]:
    """One validation of ``path`` with each prediction stage timed (wall and CPU seconds)."""
    spent: dict[str, list[float]] = {k: [0.0, 0.0] for k in STAGES}
    calls: dict[str, int] = dict.fromkeys(STAGES, 0)
    originals = {k: getattr(P, fn) for k, fn in STAGES.items()}

    def wrap(kind: str):
        def run(*a, **kw):
            w, c = time.perf_counter(), time.process_time()
            try:
                return originals[kind](*a, **kw)
            finally:
                spent[kind][0] += time.perf_counter() - w
                spent[kind][1] += time.process_time() - c
                calls[kind] += 1
        return run

    for kind, fn in STAGES.items():
        setattr(P, fn, wrap(kind))
    try:
        w, c = time.perf_counter(), time.process_time()
        v = V.validate(path, PRESETS["realistic"])
        wall, cpu = time.perf_counter() - w, time.process_time() - c
    finally:
        for kind, fn in STAGES.items():
            setattr(P, fn, originals[kind])
    out = {"rows": float(len(v.rows)), "predicted": float(v.coverage["rows_predicted"]), "wall": wall, "cpu": cpu}
    for kind in STAGES:
        out[f"{kind} wall"], out[f"{kind} cpu"] = spent[kind]
        out[f"{kind} calls"] = float(calls[kind])
    return out


def command(path: str) -> tuple[float, float]:
    """(wall, CPU seconds) of `python -m planner validate PATH` run as a user runs it."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    w = time.perf_counter()
    subprocess.run([sys.executable, "-m", "planner", "validate", path], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - w
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", nargs="*", default=[str(REFERENCE / "measured-silicon.csv"),
                                               str(REFERENCE / "measured-public.csv")])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    for path in args.csv:
        runs = [timed(path) for _ in range(max(args.repeat, 1))]
        best = min(runs, key=lambda r: r["cpu"])
        physics = sum(best[f"{k} cpu"] for k in STAGES)
        print(f"{Path(path).name}: {best['rows']:,.0f} rows, {best['predicted']:,.0f} predicted")
        print(f"  wall {best['wall']:.2f} s, CPU {best['cpu']:.2f} s: {best['rows'] / best['wall']:,.0f} rows/s "
              f"wall, {best['rows'] / best['cpu']:,.0f} rows/s CPU (best of {len(runs)} by CPU)")
        for kind in STAGES:
            if best[f"{kind} calls"]:
                print(f"  {kind:>6}: {best[f'{kind} cpu']:.2f} s CPU ({best[f'{kind} wall']:.2f} s wall)")
        print(f"  rows, names, grouping and summaries: {best['cpu'] - physics:.2f} s CPU")
        wall, cpu = min((command(path) for _ in range(max(args.repeat, 1))), key=lambda t: t[1])
        print(f"  python -m planner validate {Path(path).name}: wall {wall:.2f} s, CPU {cpu:.2f} s "
              f"(best of {max(args.repeat, 1)} by CPU)")


if __name__ == "__main__":
    main()
