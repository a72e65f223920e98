"""The disaggregated prefill pool's capacity at SLO (planner/physics/disagg.py
``prefill_capacity``, what ``planner plan`` sizes a prefill pool with) against what the pool
simulator (``simulate_prefill_pool``) sustains at that rate (issue 25, the busy branch;
docs/disaggregation.md section 5, 'capacity at SLO against the simulator'):

    python benchmarks/prefill_capacity_check.py caps FILE          # this tree's capacities, as JSON
    python benchmarks/prefill_capacity_check.py check CAPS [CAPS ...]   # simulated statistic / target at each
    python benchmarks/prefill_capacity_check.py sustain CAPS KEY [KEY ...]  # the load the simulator sustains

Llama-3.1-8B on one H100 (batch 64, w16a16, bf16 KV), inter-node KV link, both engine
presets, prompts of 128-8,192 tokens (fixed, none cached), Poisson arrivals. Each case's
target is a multiple (x2, x4) of the closed form's mean TTFT at 0.01 of the prefill
saturation, on the TTFT mean, p90 or p99; the busy-share ceiling is the default 0.8.
``caps`` runs in any tree (copy the script to another worktree's benchmarks/ to measure it).
``check`` simulates each file's capacity (seeds 1 and 2, 4,000 requests each) and prints the
simulated statistic over the target: above 1 the plan promises a rate the pool does not
serve at its SLO. ``sustain`` walks the load up in steps of 0.025 of saturation (seeds 1-3)
to the last the simulator serves within the target (minutes per case)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.catalog.store import Catalog  # noqa: E402
from planner.physics.disagg import kv_transfer_time, prefill_capacity, prefill_metrics, prefill_saturation  # noqa: E402
from planner.physics.load import Target, Workload, engine, step_physics  # noqa: E402
from planner.physics.options import PRESETS  # noqa: E402
from planner.physics.space import Configs, GpuTable  # noqa: E402

PRESET_NAMES = ("sglang", "realistic")
PROMPTS = (128, 256, 512, 1000, 2000, 4000, 8192)
TARGETS = (("p90", 2.0), ("p99", 2.0), ("p99", 4.0), ("mean", 2.0))


def _pool(preset: str, S: int):
    cat = Catalog.default()
    ph = step_physics(cat.model("llama-3.1-8b"), GpuTable.build([cat.gpus["h100-sxm"]]),
                      Configs.single(0, "w16a16", "bf16", 1, 1, 1, 64, S, 2), PRESETS[preset])
    return ph, engine(ph)


def caps(path: str) -> None:
    out = {}
    for preset in PRESET_NAMES:
        for S in PROMPTS:
            ph, eng = _pool(preset, S)
            w = Workload(isl=float(S), osl=2.0)
            sat = float(prefill_saturation(ph, eng, float(S))[0])
            base = float(prefill_metrics(ph, eng, w, np.array([0.01 * sat])).get("ttft", "mean")[0])
            for stat, f in TARGETS:
                target = round(f * base, 4)
                cap = prefill_capacity(ph, eng, w, [Target("ttft", stat, target)])
                out[f"{preset} {S} {stat} x{f}"] = dict(target=target, sat=sat, rate=float(cap.rate[0]),
                                                       rho=float(cap.rho[0]), binding=int(cap.binding[0]))
    Path(path).write_text(json.dumps(out))


def _simulated(key: str, rate: float, seeds=(1, 2)) -> float:
    from planner.simulate import Arrivals, Lengths, simulate_prefill_pool
    preset, S, stat, _ = key.split()
    ph, eng = _pool(preset, int(S))
    xf = float(kv_transfer_time(ph, float(S), "inter")[0])
    tt = np.concatenate([np.asarray(simulate_prefill_pool(ph, eng, 0, Arrivals("poisson", rate=rate), Lengths(int(S)),
                                                          transfer_s=xf, n_requests=4000, seed=s).ttft) for s in seeds])
    return float(tt.mean() if stat == "mean" else np.percentile(tt, float(stat[1:])))


def check(paths: list[str]) -> None:
    files = {p: json.loads(Path(p).read_text()) for p in paths}
    first = files[paths[0]]
    print("| case | target ms | " + " | ".join(f"{p}: load, sim / target" for p in paths) + " |")
    print("|---|---|" + "---|" * len(paths))
    over = {p: 0 for p in paths}
    for key in first:
        cells = []
        for p, c in files.items():
            r = _simulated(key, c[key]["rate"]) / c[key]["target"] if c[key]["rate"] > 0 else 0.0
            over[p] += r > 1.05
            cells.append(f"{c[key]['rate'] / c[key]['sat']:.3f}, {r:.2f}{' **over**' if r > 1.05 else ''}")
        print(f"| {key} | {1e3 * first[key]['target']:.1f} | " + " | ".join(cells) + " |", flush=True)
    for p in paths:
        print(f"{p}: {over[p]} of {len(first)} capacities where the simulated statistic is over 1.05 x the target")


def sustain(path: str, keys: list[str]) -> None:
    c = json.loads(Path(path).read_text())
    for key in keys:
        tgt, sat = c[key]["target"], c[key]["sat"]
        best = 0.0
        for u in np.arange(0.025, 0.951, 0.025):
            if _simulated(key, u * sat, (1, 2, 3)) > tgt:
                break
            best = float(u)
        print(f"{key}: target {1e3 * tgt:.1f} ms; the simulator serves it to {best:.3f} of saturation; "
              f"the closed form's capacity {c[key]['rate'] / sat:.3f} ({c[key]['rate'] / sat / max(best, 1e-9):.2f} x)",
              flush=True)


def main() -> None:
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "caps":
        caps(args[1])
    elif len(args) >= 2 and args[0] == "check":
        check(args[1:])
    elif len(args) >= 3 and args[0] == "sustain":
        sustain(args[1], args[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
