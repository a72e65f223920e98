"""The prefill pool under spread prompt lengths: closed form against the pool simulator
(docs/disaggregation.md sections 1 and 5; issue 25's leftover).

A prefill replica of Llama-3.1-70B (FP8, TP2, one H100 lane, inter-node KV link) fed Poisson
arrivals at u x the closed form's saturation, prompts drawn from a histogram (mean 4,100
tokens, squared CV 0.431: the first line it prints), outputs of one token. For each u: the closed form's mean and p99
TTFT (``prefill_metrics``, the lengths' moments given: attention at S (1 + CV^2) + 2P, the
prompt's own steps too, the backlog's service CV^2 the prefill time's) beside the simulator's (``simulate_prefill_pool``,
each prompt its own length), and the closed form / simulation - 1.

    python benchmarks/disagg_spread.py [--requests N] [--seed S]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.catalog.store import Catalog  # noqa: E402
from planner.physics import disagg  # noqa: E402
from planner.physics import load as L  # noqa: E402
from planner.physics.options import PRESETS  # noqa: E402
from planner.physics.space import Configs, GpuTable  # noqa: E402
from planner.simulate import Arrivals, Lengths, simulate_prefill_pool  # noqa: E402

VALUES = (1000, 2500, 4000, 6000, 9000)
WEIGHTS = (0.25, 0.2, 0.2, 0.2, 0.15)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=12000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    v, p = np.array(VALUES, float), np.array(WEIGHTS, float) / sum(WEIGHTS)
    mean = float(v @ p)
    moments = [float((v ** k) @ p) / mean ** k for k in (2, 3, 4)]
    cat = Catalog.default()
    table = GpuTable.build([cat.gpus["h100-sxm"]])
    c = Configs.single(0, "w8a8-fp8", "fp8", 2, 1, 1, 256, mean, 1.0)
    ph = L.step_physics(cat.model("llama-3.1-70b"), table, c, PRESETS["realistic"])
    eng = L.engine(ph)
    wl = L.Workload(mean, 1.0, isl_cv2=moments[0] - 1.0, isl_m3=moments[1], isl_m4=moments[2])
    xf = float(disagg.kv_transfer_time(ph, mean, "inter")[0])
    sat = float(disagg.prefill_saturation(ph, eng, mean, 0.0, wl.isl_cv2)[0])
    print(f"prompts: mean {mean:.0f} tokens, CV^2 {moments[0] - 1.0:.3f}; saturation {sat:.3f} requests/s")
    print("| u | closed mean ms | sim mean ms | mean | closed p99 ms | sim p99 ms | p99 |")
    print("|---|---|---|---|---|---|---|")
    for u in (0.3, 0.6, 0.8):
        r = disagg.prefill_metrics(ph, eng, wl, u * sat)
        s = simulate_prefill_pool(ph, eng, 0, Arrivals("poisson", rate=u * sat),
                                  Lengths(list(VALUES), list(WEIGHTS)), transfer_s=xf, n_requests=args.requests,
                                  seed=args.seed).summary
        cm, cp = float(r.get("ttft", "mean")[0]), float(r.get("ttft", "p99")[0])
        print(f"| {u} | {cm * 1e3:.0f} | {s['ttft_mean'] * 1e3:.0f} | {cm / s['ttft_mean'] - 1:+.0%} "
              f"| {cp * 1e3:.0f} | {s['ttft_p99'] * 1e3:.0f} | {cp / s['ttft_p99'] - 1:+.0%} |")


if __name__ == "__main__":
    main()
