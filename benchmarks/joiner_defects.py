"""Two defects of the fluid joiners of a prompt's last step, found in the review of issue 25 and
since fixed by whole joiners (docs/load.md section 5, 'the last step at a percentile' and 'whole
joiners'; tests/test_prefix_cache.py): run in a tree before and after to compare.

    python benchmarks/joiner_defects.py vanishing     # mean TTFT at a vanishing rate vs p50, p99, simulator
    python benchmarks/joiner_defects.py disagg        # disaggregated prefill: TTFT rising with reuse
    python benchmarks/joiner_defects.py grid FILE     # TTFT statistics over a grid, as JSON (run in two trees)
    python benchmarks/joiner_defects.py compare BEFORE AFTER   # where they differ, by load band
    python benchmarks/joiner_defects.py expectation   # the last step: at E[N | N >= 1] vs over the count

``vanishing``: Llama-3.1-8B on one H100 (batch 64), SGLang's prefill first and vLLM's mixed
steps, 500- and 512-token prompts, 128 output tokens, Poisson at 10^-9, 0.01 and 0.05 of
saturation: the closed form's mean, p50, p90, p99 TTFT and the simulator's (3,000 requests,
seed 1, at 0.01 of saturation where the closed form's rate is below). ``disagg``: the same model
as a disaggregated prefill pool, 11 prompt lengths x 5 pairs of cached shares x arrival CV^2 1
and 4 x 5 loads (of the less cached prefill saturation) x 2 engines: each statistic (mean, p50,
p90, p99) that rises with reuse where its nearly idle value (10^-6 of the load) does not.
``grid``: the aggregated model, both engines, prompts 512 / 2,000 / 8,942 / 9,285 / 12,000 /
20,809 tokens, 0 / 6.25 / 30 % cached, arrival CV^2 1 and 4, prompt CV^2 0 and 0.5, 23 loads from
0.001 to 0.95 of saturation, and closed loops of 1-128 clients (out of step and together):
mean, p50, p90, p95, p99 TTFT; ``compare`` counts, per statistic, the stable points that differ
between two such files (a worktree of ac8b429 against this tree) below and from 0.1 of saturation.
``expectation``: a one-step prompt's last step with Poisson(m) whole joiners of its own length
(the step of prompts alone: SGLang's prompt step, vLLM's mixed step without decoders), 256-token
prompts at m = 0.05, 0.3, 1 and 2,000-token ones at m = 2, 5: the step at E[N | N >= 1] joiners
(``joined_step`` with most=0, the step before the review of f37b168), the expectation over the
count as the load model takes it (the counts it sums: K), and summed to the budget exactly.
Every figure is Llama-3.1-8B on one H100 (batch 64)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.catalog.store import Catalog  # noqa: E402
from planner.physics.disagg import prefill_metrics, prefill_saturation  # noqa: E402
from planner.physics.load import Workload, engine, load_metrics, step_physics  # noqa: E402
from planner.physics.numerics import joined_step  # noqa: E402
from planner.physics.options import PRESETS  # noqa: E402
from planner.physics.space import Configs, GpuTable  # noqa: E402
from planner.physics.step import step_time  # noqa: E402
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


def expectation(cat: Catalog, gpus: GpuTable) -> None:
    print("preset     prompt     m | at E[N|N>=1]  expectation (K)  exact (ms) | at E[N|N>=1] vs exact")
    for preset, S, ms in (("sglang", 256, (0.05, 0.3, 1.0)), ("sglang", 2000, (2.0, 5.0)),
                          ("realistic", 2000, (2.0, 5.0))):
        ph, eng = _phys(cat, gpus, S, 2, preset)
        T = float(eng.token_budget[0])
        last = np.array([float(S)])

        def step(c, S=S, ph=ph):
            return step_time(ph, 0.0, 0.0, c, c * S, c / S)
        counted: list[int] = []

        def counting(c, step=step, counted=counted):
            counted.append(len(c))
            return step(c)
        for m in ms:
            args = (step(last), last, float(S), T, np.array([m]), np.array([1.0]))
            counted.clear()
            at_mean, got = joined_step(step, *args, most=0)[0], joined_step(counting, *args)[0]
            exact = joined_step(step, *args, most=int(T), tail=0.0)[0]
            print(f"{preset:10s} {S:6d} {m:5.2f} | {1e3 * at_mean:12.2f} {1e3 * got:12.2f} ({counted[0] - 1:2d}) "
                  f"{1e3 * exact:10.2f} | {100 * (at_mean / exact - 1):+6.1f} %")


LOADS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75,
         0.8, 0.85, 0.9, 0.95)
GRID_STATS = ("mean", "p50", "p90", "p95", "p99")


def _row(r) -> list:
    return [bool(r.stable[0])] + [float(r.get("ttft", s)[0]) for s in GRID_STATS]


def grid(cat: Catalog, gpus: GpuTable, path: str) -> None:
    out: dict[str, list] = {}
    for preset in ("realistic", "sglang"):
        for S, O in ((512, 128), (2000, 200), (8942, 2), (9285, 2), (12000, 100), (20809, 504)):
            ph, eng = _phys(cat, gpus, S, O, preset)
            for h in (0.0, 0.0625, 0.3):
                for cv2 in (1.0, 4.0):
                    for icv in (0.0, 0.5):
                        w = Workload(isl=float(S), osl=float(O), arrival_cv2=cv2, isl_cv2=icv, cached=h * S)
                        sat = load_metrics(ph, eng, w, rate=np.array([0.0])).saturation_rate[0]
                        out[f"open {preset} {S}/{O} h{h} cv2 {cv2} icv {icv}"] = [
                            _row(load_metrics(ph, eng, w, rate=np.array([x * sat]))) for x in LOADS]
        for S, O in ((2000, 200), (8942, 2), (12000, 100)):
            ph, eng = _phys(cat, gpus, S, O, preset)
            for h in (0.0, 0.3):
                for start in ("independent", "together"):
                    for icv in (0.0, 0.5):
                        w = Workload(isl=float(S), osl=float(O), isl_cv2=icv, cached=h * S, start=start)
                        out[f"closed {preset} {S}/{O} h{h} {start} icv {icv}"] = [
                            _row(load_metrics(ph, eng, w, clients=np.array([float(n)])))
                            for n in (1, 2, 4, 8, 16, 32, 64, 128)]
    Path(path).write_text(json.dumps(out))


def compare(before: str, after: str) -> None:
    b, a = json.loads(Path(before).read_text()), json.loads(Path(after).read_text())
    for j, s in enumerate(GRID_STATS, start=1):
        counts = {"open, load < 0.1": [0, 0, 0.0], "open, load >= 0.1": [0, 0, 0.0], "closed": [0, 0, 0.0]}
        for key in a:
            for i, (ra, rb) in enumerate(zip(a[key], b[key])):
                if not ra[0]:
                    continue
                band = "closed" if key.startswith("closed") else (
                    "open, load < 0.1" if LOADS[i] < 0.1 else "open, load >= 0.1")
                c = counts[band]
                c[1] += 1
                if ra[j] != rb[j]:
                    c[0] += 1
                    c[2] = max(c[2], abs(ra[j] / rb[j] - 1.0))
        print(f"TTFT {s:4s}: " + "; ".join(f"{band}: {c[0]} of {c[1]} differ (at most {100 * c[2]:.2f} %)"
                                           for band, c in counts.items()))


def main() -> None:
    args = sys.argv[1:]
    cat = Catalog.default()
    gpus = GpuTable.build([cat.gpus["h100-sxm"]])
    if args == ["vanishing"]:
        vanishing(cat, gpus)
    elif args == ["expectation"]:
        expectation(cat, gpus)
    elif args == ["disagg"]:
        disagg(cat, gpus)
    elif len(args) == 2 and args[0] == "grid":
        grid(cat, gpus, args[1])
    elif len(args) == 3 and args[0] == "compare":
        compare(args[1], args[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
