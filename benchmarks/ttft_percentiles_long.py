"""TTFT percentiles of prompts longer than a step, closed form against the simulator (docs/load.md
section 5, 'the last step at a percentile').

    python benchmarks/ttft_percentiles_long.py [--requests 4000] [--seeds 2]
    python benchmarks/ttft_percentiles_long.py --reuse [--requests 20000] [--seeds 2]

Llama-3.1-8B on one H100 (batch 64), the realistic (mixed steps) and sglang (prefill first)
presets, prompts of 8,942 / 12,000 / 20,000 / 9,000 tokens with 2 / 100 / 200 / 300 output
tokens, 0 and 10 % cached, Poisson arrivals at 0.25, 0.5 and 0.75 of saturation: one line a
case (closed form and simulated mean, p50, p90 and p99 TTFT in ms, the simulation averaged over
seeds 1..N), then the mean |closed form / simulation - 1| and its signed mean per statistic.
``--reuse``: instead, the reuse cases of docs/load.md section 5 ('the last step at a
percentile', 'reuse and TTFT'), each at its two cached shares."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.catalog.store import Catalog  # noqa: E402
from planner.physics.load import Workload, engine, load_metrics, step_physics  # noqa: E402
from planner.physics.options import PRESETS  # noqa: E402
from planner.physics.space import Configs, GpuTable  # noqa: E402
from planner.simulate import Arrivals, Lengths, simulate_config  # noqa: E402
from planner.traces.cache import StatedCache  # noqa: E402

STATS = ("mean", "p50", "p90", "p99")
# (prompt, output, preset, two cached shares, load as a share of the less cached saturation, arrival CV^2)
REUSE = [(8942, 2, "sglang", (0.0, 0.0625), 0.25, 1.0), (20809, 504, "realistic", (0.066, 0.121), 0.81, 4.0),
         (9285, 2, "sglang", (0.0, 0.0625), 0.05, 1.0), (9285, 2, "sglang", (0.0, 0.0625), 0.5, 1.0)]


def ttft(ph, eng, w: Workload, rate: float, S: int, O: int, h: float, cv2: float, requests: int,
         seeds: int) -> tuple[np.ndarray, np.ndarray]:
    """Closed form and simulated (mean over seeds) mean, p50, p90 and p99 TTFT in ms."""
    r = load_metrics(ph, eng, w, rate=np.array([rate]))
    cf = np.array([1e3 * r.get("ttft", s)[0] for s in STATS])
    arrivals = Arrivals("poisson", rate=rate) if cv2 == 1.0 else Arrivals("gamma", rate=rate, cv=cv2 ** 0.5)
    sims = []
    for seed in range(1, seeds + 1):
        res = simulate_config(ph, eng, 0, arrivals, Lengths(S), Lengths(O), n_requests=requests, seed=seed,
                              prefix_cache=StatedCache(hit_rate=h) if h else None)
        tt = 1e3 * np.asarray(res.ttft)
        sims.append([tt.mean(), *np.percentile(tt, [50, 90, 99])])
    return cf, np.mean(sims, axis=0)


def reuse(cat: Catalog, gpus: GpuTable, requests: int, seeds: int) -> None:
    print("preset     prompt out cached load | closed mean p50 p90 p99 | simulated mean p50 p90 p99 (ms)")
    for S, O, preset, shares, load, cv2 in REUSE:
        ph = step_physics(cat.model("llama-3.1-8b"), gpus, Configs.single(0, "w16a16", "bf16", 1, 1, 1, 64, S, O),
                          PRESETS[preset])
        eng = engine(ph)
        wl = [Workload(isl=float(S), osl=float(O), arrival_cv2=cv2, cached=h * S) for h in shares]
        rate = load * load_metrics(ph, eng, wl[0], rate=np.array([0.0])).saturation_rate[0]
        for h, w in zip(shares, wl):
            cf, sim = ttft(ph, eng, w, rate, S, O, h, cv2, requests, seeds)
            print(f"{preset:10s} {S:6d} {O:3d} {h:6.1%} {load:4.2f} | " + " ".join(f"{x:6.1f}" for x in cf)
                  + " | " + " ".join(f"{x:6.1f}" for x in sim), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=None, help="per run (default 4,000; --reuse 20,000)")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--reuse", action="store_true")
    args = ap.parse_args()
    cat = Catalog.default()
    gpus = GpuTable.build([cat.gpus["h100-sxm"]])
    if args.reuse:
        reuse(cat, gpus, args.requests or 20_000, args.seeds)
        return
    requests = args.requests or 4000
    errors: list[np.ndarray] = []
    print("preset     prompt out cached load | closed mean p50 p90 p99 | simulated mean p50 p90 p99 (ms)")
    for preset in ("realistic", "sglang"):
        for S, O in ((8942, 2), (12000, 100), (20000, 200), (9000, 300)):
            for h in (0.0, 0.1):
                for load in (0.25, 0.5, 0.75):
                    ph = step_physics(cat.model("llama-3.1-8b"), gpus,
                                      Configs.single(0, "w16a16", "bf16", 1, 1, 1, 64, S, O), PRESETS[preset])
                    eng = engine(ph)
                    w = Workload(isl=float(S), osl=float(O), cached=h * S)
                    rate = load * load_metrics(ph, eng, w, rate=np.array([0.0])).saturation_rate[0]
                    cf, sim = ttft(ph, eng, w, rate, S, O, h, 1.0, requests, args.seeds)
                    errors.append(cf / sim - 1.0)
                    print(f"{preset:10s} {S:6d} {O:3d} {h:6.0%} {load:4.2f} | " + " ".join(f"{x:6.0f}" for x in cf)
                          + " | " + " ".join(f"{x:6.0f}" for x in sim), flush=True)
    e = np.array(errors)
    for i, s in enumerate(STATS):
        print(f"TTFT {s:4s}: mean |closed form / simulation - 1| {100 * np.mean(np.abs(e[:, i])):.1f} %, "
              f"signed {100 * np.mean(e[:, i]):+.1f} %, max {100 * np.max(np.abs(e[:, i])):.1f} %")


if __name__ == "__main__":
    main()
