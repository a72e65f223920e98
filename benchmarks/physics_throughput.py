"""Evaluate the whole configuration space of one model over the whole catalog.

Every combination of GPU (all catalog entries), TP, PP, quantization scheme, KV dtype and
batch, in one vectorised pass. Prints configurations evaluated per second (best of N
repeats, so a noisy neighbour costs us a repeat, not the figure).

    python benchmarks/physics_throughput.py [--model llama-3.1-70b] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.catalog.store import Catalog
from planner.physics.options import PRESETS
from planner.physics.perf import evaluate
from planner.physics.quant import DEFAULT_SCHEMES
from planner.physics.space import KV_NAMES, SCHEME_NAMES, Configs, GpuTable

TP = [1, 2, 4, 8, 16, 32, 64]
PP = [1, 2, 4, 8, 16]
BATCH = [1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="llama-3.1-70b")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    cat = Catalog.default()
    model = cat.model(args.model)
    table = GpuTable.build(list(cat.gpus.values()))
    schemes = [SCHEME_NAMES.index(s) for s in DEFAULT_SCHEMES]
    configs = Configs.grid(range(len(table.gpus)), schemes, range(len(KV_NAMES)), TP, PP, [1],
                           BATCH, [2048], [512])
    o = PRESETS["realistic"]
    evaluate(model, table, configs.take(np.arange(10)), o)  # warm-up
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ev = evaluate(model, table, configs, o)
        times.append(time.perf_counter() - t0)
    best = min(times)
    n = len(configs)
    feasible = int(np.sum(ev.valid & ev.fits))
    print(f"model {args.model}: {len(table.gpus)} GPUs x {len(schemes)} schemes x {len(KV_NAMES)} KV dtypes "
          f"x {len(TP)} TP x {len(PP)} PP x {len(BATCH)} batches = {n:,} configurations")
    print(f"valid and fitting in memory: {feasible:,}")
    print(f"best of {args.repeats}: {best * 1e3:.1f} ms for the whole space "
          f"= {n / best:,.0f} configurations/s (median {np.median(times) * 1e3:.1f} ms)")


if __name__ == "__main__":
    main()
