"""Cost of the load model (planner/physics/load.py) and of the simulator (planner/simulate.py).

Times the closed forms at a rate, the closed loop at N clients and capacity at SLO over
~10,000 configurations of one model, and one simulation of 5,000 requests; with
--agreement, prints closed forms vs simulation at utilisation 0.3 / 0.6 / 0.8, and for
closed loops of 4 to 256 clients out of step and starting together.

    python benchmarks/load_model.py [--model llama-3.1-70b] [--profile sglang] [--agreement]

--profile: the engine profile (a preset of planner/physics/options.py ENGINE_PRESETS); sglang's
prefill-first scheduler takes the prefill-first closed forms and simulator (docs/load.md section 5).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.catalog.store import Catalog
from planner.physics import load as L
from planner.physics.options import ENGINE_PRESETS, PRESETS
from planner.physics.space import KV_NAMES, SCHEME_NAMES, Configs, GpuTable
from planner.simulate import Arrivals, Lengths, simulate_config

CASES = [
    ("llama-3.1-8b", "h100-sxm", "w16a16", "bf16", 1, 64, 1024, 256),
    ("llama-3.1-70b", "h100-sxm", "w8a8-fp8", "fp8", 2, 128, 2000, 300),
    ("mixtral-8x7b", "h100-sxm", "w16a16", "bf16", 2, 64, 3000, 200),
    ("llama-3.1-70b", "h100-sxm", "w8a8-fp8", "fp8", 2, 256, 5000, 500),
]


def best(fn, repeats=3):
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return min(ts), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="llama-3.1-70b")
    ap.add_argument("--agreement", action="store_true")
    ap.add_argument("--profile", default="realistic", choices=sorted(ENGINE_PRESETS.values()))
    ap.add_argument("--seeds", type=int, default=1,
                    help="with --agreement: average the simulation over seeds 1..N (the p99s move between seeds)")
    args = ap.parse_args()
    cat = Catalog.default()
    o = PRESETS[args.profile]
    model = cat.model(args.model)
    table = GpuTable.build(list(cat.gpus.values()))
    c = Configs.grid(range(len(table.gpus)), [SCHEME_NAMES.index(s) for s in ("w16a16", "w8a8-fp8", "w4a16")],
                     range(len(KV_NAMES)), [1, 2, 4, 8], [1, 2, 4], [1], [16, 32, 64, 128, 256], [2048], [256])
    t_phys, ph = best(lambda: L.step_physics(model, table, c, o))
    eng = L.engine(ph)
    keep = np.flatnonzero(eng.max_seqs >= 1)
    c = c.take(keep)
    ph = L.step_physics(model, table, c, o)
    eng = L.engine(ph)
    n = len(c)
    wl = L.Workload(2048.0, 256.0)
    sat, _ = L._saturation(ph, eng, np.full(n, 2048.0), np.full(n, 256.0))
    t_rate, _ = best(lambda: L.load_metrics(ph, eng, wl, rate=0.5 * sat))
    t_closed, _ = best(lambda: L.load_metrics(ph, eng, wl, clients=32))
    fixed = L.Workload(2048.0, 256.0, start="together")
    t_together, _ = best(lambda: L.load_metrics(ph, eng, fixed, clients=32))
    targets = [L.Target("ttft", "p99", 2.0), L.Target("tpot", "p90", 0.05)]
    t_cap, cap = best(lambda: L.capacity_at_slo(ph, eng, wl, targets), repeats=1)
    print(f"{args.model}, profile {args.profile}: {n:,} feasible configurations (step physics {t_phys * 1e3:.0f} ms for {len(keep):,}+ rows)")
    print(f"  closed forms at a rate:     {t_rate * 1e3:8.1f} ms  ({t_rate / n * 1e6:.2f} us/config)")
    print(f"  closed loop, 32 clients:    {t_closed * 1e3:8.1f} ms  ({t_closed / n * 1e6:.2f} us/config)")
    print(f"  the same, starting together:{t_together * 1e3:8.1f} ms  ({t_together / n * 1e6:.2f} us/config)")
    print(f"  capacity at SLO (2 targets):{t_cap * 1e3:8.1f} ms  ({t_cap / n * 1e6:.2f} us/config); "
          f"{int(np.sum(cap.rate > 0)):,} configurations meet both")

    m, g, sch, kv, tp, b, S, Ou = CASES[3]
    t1 = GpuTable.build([cat.gpus[g]])
    ph1 = L.step_physics(cat.model(m), t1, Configs.single(0, sch, kv, tp, 1, 1, b, S, Ou), o)
    eng1 = L.engine(ph1)
    for arr in (Arrivals("poisson", rate=1.2), Arrivals("closed", clients=25, think_s=0.005)):
        ts, r = best(lambda: simulate_config(ph1, eng1, 0, arr, Lengths(S), Lengths(Ou), n_requests=5000))
        print(f"  simulation, 5,000 requests of {S}/{Ou} ({arr.kind}): {ts * 1e3:.0f} ms, {r.steps:,} steps")
    m, g, sch, kv, tp, b, S, Ou = CASES[0]
    t1 = GpuTable.build([cat.gpus[g]])
    ph1 = L.step_physics(cat.model(m), t1, Configs.single(0, sch, kv, tp, 1, 1, b, S, Ou), o)
    eng1 = L.engine(ph1)
    ts, r = best(lambda: simulate_config(ph1, eng1, 0, Arrivals("poisson", rate=10.0), Lengths(S), Lengths(Ou), n_requests=5000))
    print(f"  simulation, 5,000 requests of {S}/{Ou} (poisson, 8B): {ts * 1e3:.0f} ms, {r.steps:,} steps")

    if args.agreement:
        seeds = list(range(1, args.seeds + 1))
        print(f"\nclosed form / simulation - 1 (5,000 Poisson requests, simulation averaged over seeds {seeds})")
        print(f"{'case':28s} {'rho':>4s} {'TTFT':>6s} {'p99':>6s} {'TPOT':>6s} {'p99':>6s} {'ITLp50':>6s} {'ITLp99':>6s}")
        for case in CASES:
            m, g, sch, kv, tp, b, S, Ou = case
            t1 = GpuTable.build([cat.gpus[g]])
            ph1 = L.step_physics(cat.model(m), t1, Configs.single(0, sch, kv, tp, 1, 1, b, S, Ou), o)
            eng1 = L.engine(ph1)
            sat1, _ = L._saturation(ph1, eng1, np.array([float(S)]), np.array([float(Ou)]))
            for frac in (0.3, 0.6, 0.8):
                lam = frac * float(sat1[0])
                cf = L.load_metrics(ph1, eng1, L.Workload(S, Ou), rate=lam)
                runs = [simulate_config(ph1, eng1, 0, Arrivals("poisson", rate=lam), Lengths(S), Lengths(Ou),
                                        n_requests=5000, seed=seed).summary for seed in seeds]
                sim = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
                cols = [float(cf.get(k, s)[0]) / sim[f"{k}_{s}"] - 1 for k, s in
                        (("ttft", "mean"), ("ttft", "p99"), ("tpot", "mean"), ("tpot", "p99"), ("itl", "p50"), ("itl", "p99"))]
                tag = "" if cf.stable[0] else "  (closed form: unstable)"
                print(f"{m + ' ' + str(S) + '/' + str(Ou):28s} {float(cf.rho[0]):4.2f} " + " ".join(f"{x:+6.0%}" for x in cols) + tag)

        print(f"\nclosed loops: closed form / simulation - 1 of mean TTFT, TPOT and throughput (seeds {seeds});"
              " out of step: the steady state; together: a run of 10 N requests from t = 0")
        print(f"{'case':28s} {'start':>11s} {'N':>5s} {'TTFT':>6s} {'TPOT':>6s} {'X':>6s}")
        for case in CASES:
            m, g, sch, kv, tp, b, S, Ou = case
            t1 = GpuTable.build([cat.gpus[g]])
            ph1 = L.step_physics(cat.model(m), t1, Configs.single(0, sch, kv, tp, 1, 1, b, S, Ou), o)
            eng1 = L.engine(ph1)
            for start in L.CLIENT_STARTS:
                for n in (4, 16, 64, 256):
                    cf = L.load_metrics(ph1, eng1, L.Workload(S, Ou, start=start), clients=n)
                    runs = [simulate_config(ph1, eng1, 0, Arrivals("closed", clients=n, start=start), Lengths(S),
                                            Lengths(Ou), n_requests=max(1000, 20 * n), seed=seed).summary
                            for seed in seeds]
                    sim = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
                    cols = [float(cf.get("ttft", "mean")[0]) / sim["ttft_mean"] - 1,
                            float(cf.get("tpot", "mean")[0]) / sim["tpot_mean"] - 1,
                            float(cf.rate[0]) / sim["throughput_rps"] - 1]
                    print(f"{m + ' ' + str(S) + '/' + str(Ou):28s} {start:>11s} {n:5d} "
                          + " ".join(f"{x:+6.0%}" for x in cols))


if __name__ == "__main__":
    main()
