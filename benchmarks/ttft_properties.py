"""A random sweep of the load model's TTFT properties (docs/load.md sections 5 and 9): prints
each violation as JSON.

    python benchmarks/ttft_properties.py rate 400 [SEED]     # statistics never fall as the rate rises
    python benchmarks/ttft_properties.py reuse 400 [SEED]    # more prefix reuse never raises TTFT (idle_rises: it
                                                             # rises on a nearly idle replica too)
    python benchmarks/ttft_properties.py cap 400 [SEED]      # capacity at SLO monotone in the target
    python benchmarks/ttft_properties.py closed 400 [SEED]   # closed loops: ordered, rising with a client

N random configurations (5 model/GPU setups, the realistic, sglang and trtllm presets, prompts
of 64-24,000 tokens, length CV^2 0 / 0.5 / 1.6, arrival CV^2 1 / 4, random cached shares),
seed 0 unless given. ``rate`` also lists where p90 is below the mean at some rate (plausible
for a skewed distribution at a low rate, not a violation). The suite runs the same properties
on fixed cases (tests/test_load.py, tests/test_prefix_cache.py). Written by the review of the
TTFT percentile change (2026-12-07)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.catalog.store import Catalog  # noqa: E402
from planner.physics.load import Target, Workload, capacity_at_slo, engine, load_metrics, step_physics  # noqa: E402
from planner.physics.options import PRESETS  # noqa: E402
from planner.physics.space import Configs, GpuTable  # noqa: E402

CAT = Catalog.default()
CONFIGS = [("llama-3.1-8b", "h100-sxm", 1, 64), ("llama-3.1-8b", "l40s", 2, 32), ("llama-3.1-70b", "h100-sxm", 4, 64),
           ("qwen3-32b", "a100-80gb", 2, 32), ("mixtral-8x7b", "h100-sxm", 2, 64)]
ENGINES = ["realistic", "sglang", "trtllm"]
STATS = ("mean", "p50", "p90", "p99")
K = 40
FRACTIONS = np.linspace(0.01, 0.97, K)


def rate_case(ph, eng, desc, S, O, cv2, arr, h, k) -> list[dict]:
    out = []
    w = Workload(isl=float(S), osl=float(O), arrival_cv2=arr, isl_cv2=cv2, cached=min(h[0] * S, S - 1.0))
    sat = load_metrics(ph, eng, w, rate=np.zeros(k)).saturation_rate[0]
    r = load_metrics(ph, eng, w, rate=FRACTIONS * sat)
    ok = r.stable
    for s in STATS:
        v, f = r.get("ttft", s)[ok], FRACTIONS[ok]
        d = v[1:] / v[:-1] - 1
        if d.size and d.min() < -1e-9:
            i = int(np.argmin(d))
            out.append(dict(desc, h=h[0], stat=s, f=[f[i], f[i + 1]], v=[v[i], v[i + 1]], drop=float(d[i])))
    for a, b in (("p50", "p90"), ("p90", "p99")):
        if np.any(r.get("ttft", a)[ok] > r.get("ttft", b)[ok] * (1 + 1e-12)):
            out.append(dict(desc, h=h[0], order=(a, b)))
    below = r.get("ttft", "p90")[ok] < r.get("ttft", "mean")[ok] * (1 - 1e-6)
    if below.any():
        out.append(dict(desc, h=h[0], p90_below_mean=float(FRACTIONS[ok][below][0])))
    return out


def reuse_case(ph, eng, desc, S, O, cv2, arr, h, load) -> list[dict]:
    wl = [Workload(isl=float(S), osl=float(O), arrival_cv2=arr, isl_cv2=cv2, cached=min(x * S, S - 1.0)) for x in h]
    sat = load_metrics(ph, eng, wl[0], rate=np.array([0.0])).saturation_rate[0]
    a, b = (load_metrics(ph, eng, w, rate=np.array([load * sat])) for w in wl)
    out = []
    if a.stable[0]:
        for s in STATS:
            x, y = a.get("ttft", s)[0], b.get("ttft", s)[0]
            if y > x * (1 + 1e-9):
                # idle_rises: the same statistic rises on a nearly idle replica too (the step physics:
                # a last step no shorter, the cached keys' attention longer; docs/load.md section 5)
                a0, b0 = (load_metrics(ph, eng, w, rate=np.array([load * sat * 1e-6])).get("ttft", s)[0] for w in wl)
                out.append(dict(desc, h=h, load=load, stat=s, less=x, more=y, rise=y / x - 1,
                                idle_rises=bool(b0 > a0 * (1 + 1e-12))))
    return out


def cap_case(ph, eng, desc, S, O, cv2, arr, rng) -> list[dict]:
    w = Workload(isl=float(S), osl=float(O), arrival_cv2=arr, isl_cv2=cv2)
    stat = ("p50", "p90", "p99")[rng.integers(3)]
    seconds = float(np.exp(rng.uniform(np.log(0.05), np.log(5))))
    m = float(rng.uniform(1.05, 3))
    c1 = capacity_at_slo(ph, eng, w, [Target("ttft", stat, seconds)]).rate[0]
    c2 = capacity_at_slo(ph, eng, w, [Target("ttft", stat, seconds * m)]).rate[0]
    return [dict(desc, stat=stat, t=seconds, m=m, c1=c1, c2=c2)] if c2 < c1 * (1 - 1e-9) else []


def closed_case(ph, eng, desc, S, O, cv2, h, rng) -> list[dict]:
    n = int(rng.integers(1, 300))
    start = ["independent", "together"][rng.integers(2)]
    w = Workload(isl=float(S), osl=float(O), isl_cv2=cv2, start=start, cached=min(h[0] * S, S - 1.0))
    r = load_metrics(ph, eng, w, clients=np.array([float(n)]))
    out = []
    for a, b in (("p50", "p90"), ("p90", "p99")):
        if r.get("ttft", a)[0] > r.get("ttft", b)[0] * (1 + 1e-12):
            out.append(dict(desc, N=n, start=start, order=(a, b), va=r.get("ttft", a)[0], vb=r.get("ttft", b)[0]))
    if start == "independent":
        r2 = load_metrics(ph, eng, w, clients=np.array([float(n + 1)]))
        for s in STATS:
            if r2.get("ttft", s)[0] < r.get("ttft", s)[0] * (1 - 1e-9):
                out.append(dict(desc, N=n, h=h[0], stat=s, fall=[r.get("ttft", s)[0], r2.get("ttft", s)[0]]))
    return out


def main() -> None:
    prop, n = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    out: list[dict] = []
    for _ in range(n):
        cfg = CONFIGS[rng.integers(len(CONFIGS))]
        S = int(np.exp(rng.uniform(np.log(64), np.log(24000))))
        O = int(rng.integers(2, 1000))
        cv2 = float(rng.choice([0.0, 0.5, 1.6]))
        arr = float(rng.choice([1.0, 4.0]))
        e = ENGINES[rng.integers(3)]
        h = sorted(rng.uniform(0, 1, 2))
        load = float(rng.uniform(0.02, 0.95))
        model, gpu, tp, batch = cfg
        t = GpuTable.build([CAT.gpus[gpu]])
        k = K if prop == "rate" else 1
        configs = Configs.single(0, "w16a16", "bf16", tp, 1, 1, batch, S, O).take(np.zeros(k, int))
        ph = step_physics(CAT.model(model), t, configs, PRESETS[e])
        eng = engine(ph)
        if eng.max_seqs[0] < 1:
            continue
        desc = dict(cfg=cfg, S=S, O=O, cv2=cv2, arrival=arr, engine=e)
        if prop == "rate":
            out += rate_case(ph, eng, desc, S, O, cv2, arr, h, k)
        elif prop == "reuse":
            out += reuse_case(ph, eng, desc, S, O, cv2, arr, h, load)
        elif prop == "cap":
            out += cap_case(ph, eng, desc, S, O, cv2, arr, rng)
        elif prop == "closed":
            out += closed_case(ph, eng, desc, S, O, cv2, h, rng)
        else:
            raise SystemExit(f"unknown property {prop!r}: rate, reuse, cap or closed")
    print(json.dumps(dict(prop=prop, n=n, violations=out), default=float))


if __name__ == "__main__":
    main()
