"""Two open defects of the fluid joiners of a prompt's last step (docs/load.md section 5, 'the
last step at a percentile'; tests/test_prefix_cache.py, the review of issue 25).

    python benchmarks/joiner_defects.py vanishing     # mean TTFT at a vanishing rate vs p50, p99, simulator
    python benchmarks/joiner_defects.py disagg        # disaggregated prefill: TTFT rising with reuse

``vanishing``: Llama-3.1-8B on one H100 (batch 64), SGLang's prefill first and vLLM's mixed
steps, 500- and 512-token prompts, 128 output tokens, Poisson at 10^-9, 0.01 and 0.05 of
saturation: the closed form's mean, p50, p90, p99 TTFT and the simulator's (3,000 requests,
seed 1, at 0.01 of saturation where the closed form's rate is below). ``disagg``: the same model
as a disaggregated prefill pool, 11 prompt lengths x 5 pairs of cached shares x arrival CV^2 1
and 4 x 5 loads (of the less cached prefill saturation) x 2 engines: each statistic (mean, p50,
p90, p99) that rises with reuse where its nearly idle value (10^-6 of the load) does not."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.catalog.store import Catalog  # noqa: E402
from planner.physics.disagg import prefill_metrics, prefill_saturation  # noqa: E402
from planner.physics.load import Workload, engine, load_metrics, step_physics  # noqa: E402
from planner.physics.options import PRESETS  # noqa: E402
from planner.physics.space import Configs, GpuTable  # noqa: E402
from planner.simulate import Arrivals, Lengths, simulate_config  # noqa: E402

STATS = ("mean", "p50", "p90", "p99")


def _phys(cat: Catalog, gpus: GpuTable, S: int, O: int, preset: str):
    ph = step_physics(cat.model("llama-3.1-8b"), gpus, Configs.single(0, "w16a16", "bf16", 1, 1, 1, 64, S, O),
                      PRESETS[preset])
    return ph, engine(ph)


def vanishing(cat: Catalog, gpus: GpuTable) -> None:
    print("preset     prompt load  | closed mean p50 p90 p99 | simulated mean p50 p90 p99 (ms)")
    for preset, S in (("sglang", 512), ("sglang", 500), ("realistic", 512)):
        ph, eng = _phys(cat, gpus, S, 128, preset)
        w = Workload(isl=float(S), osl=128.0)
        sat = load_metrics(ph, eng, w, rate=np.array([0.0])).saturation_rate[0]
        for load in (1e-9, 0.01, 0.05):
            r = load_metrics(ph, eng, w, rate=np.array([load * sat]))
            sim = simulate_config(ph, eng, 0, Arrivals("poisson", rate=max(load, 0.01) * sat), Lengths(S),
                                  Lengths(128), n_requests=3000, seed=1)
            tt = 1e3 * np.asarray(sim.ttft)
            print(f"{preset:10s} {S:6d} {load:5.0e} | " + " ".join(f"{1e3 * r.get('ttft', s)[0]:6.1f}" for s in STATS)
                  + " | " + " ".join(f"{x:6.1f}" for x in (tt.mean(), *np.percentile(tt, [50, 90, 99]))), flush=True)


def disagg(cat: Catalog, gpus: GpuTable) -> None:
    rises, checked = [], 0
    for preset in ("realistic", "sglang"):
        for S in (512, 1000, 2000, 4000, 8192, 8193, 8942, 9285, 12000, 16000, 20809):
            ph, eng = _phys(cat, gpus, S, 2, preset)
            for shares in ((0.0, 0.0625), (0.0, 0.1), (0.1, 0.2), (0.066, 0.121), (0.0, 0.3)):
                for cv2 in (1.0, 4.0):
                    wl = [Workload(isl=float(S), osl=2.0, arrival_cv2=cv2, cached=h * S) for h in shares]
                    sat = prefill_saturation(ph, eng, float(S), cached=shares[0] * S)[0]
                    for load in (0.05, 0.25, 0.5, 0.75, 0.9):
                        a, b, a0, b0 = (prefill_metrics(ph, eng, w, np.array([x])) for x in
                                        (load * sat, load * sat * 1e-6) for w in wl)
                        if not a.stable[0]:
                            continue
                        for s in STATS:
                            checked += 1
                            x, y = a.get("ttft", s)[0], b.get("ttft", s)[0]
                            if y > x * (1 + 1e-9) and b0.get("ttft", s)[0] <= a0.get("ttft", s)[0] * (1 + 1e-12):
                                rises.append(f"{preset:10s} {S:6d} {shares[0]:6.1%} -> {shares[1]:6.1%} CV^2 {cv2:.0f} "
                                             f"load {load:4.2f} {s:4s} {1e3 * x:8.1f} -> {1e3 * y:8.1f} ms")
    print(f"disaggregated prefill: {len(rises)} of {checked} statistics rise with reuse where the nearly idle "
          "one does not")
    print("\n".join(rises))


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in ("vanishing", "disagg"):
        sys.exit(__doc__)
    cat = Catalog.default()
    gpus = GpuTable.build([cat.gpus["h100-sxm"]])
    (vanishing if sys.argv[1] == "vanishing" else disagg)(cat, gpus)


if __name__ == "__main__":
    main()
