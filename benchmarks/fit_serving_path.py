"""Fit the serving path and host-floor parameters of each engine profile, and the grouped-GEMM
efficiency in decode and in prefill, on the measured serving corpus, with leave-one-system-out and leave-one-model-out
cross-validation (docs/model.md section 4, 'the serving path'; issue 22 item 3).

The aggregated closed-loop rows of the corpus (validate's own reading of them, planner/fidelity/
rows.py, each measurement once) are predicted by the load model with the new terms off, for
each pair of grouped-GEMM efficiencies (decode, prefill) of a grid; the terms then enter separably:

    TTFT = TTFT_0 + serving_e + max(0, host_prefill_e - idle GPU prefill)
    TPOT = max(TPOT_0, host_step_e + running sequences x host_per_sequence_e)

with host_prefill_e = host_step_e + host_per_sequence_e + (S > 512 tokens: the forward pass's
kernels x host_launch_e). The TTFT terms are fitted on the rows of at most 8 clients, the TPOT
terms on every row, minimising the sum of |log(predicted / measured)| by coordinate descent
over grids whose ends are the physical bounds. The profiles in planner/physics/options.py keep
these values, except where a bound from other measurements is tighter (options.py says which);
`planner validate` then checks the full model, not this separable approximation.

    python benchmarks/fit_serving_path.py [--csv ../shared/reference/measured-silicon.csv]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.catalog.store import Catalog  # noqa: E402
from planner.fidelity.predict import _configs, row_assumptions  # noqa: E402
from planner.fidelity.rows import load_measurements, map_row  # noqa: E402
from planner.physics.load import Workload, engine, load_metrics, step_physics, step_time  # noqa: E402
from planner.physics.options import PRESETS  # noqa: E402
from planner.physics.space import GpuTable  # noqa: E402
from planner.physics.terms import Arch, kernels_per_forward  # noqa: E402

ENGINES = ("vllm", "sglang", "trtllm")
ETAS = (1.0, 0.85, 0.7, 0.55, 0.4)
ETAPS = (0.85, 0.6, 0.45, 0.35, 0.25)     # the prefill's grouped GEMMs (grouped_gemm_prefill_efficiency)
PAIRS = tuple((e, p) for e in ETAS for p in ETAPS if p <= e)
OFF = {"serving_overhead_s": 0.0, "host_step_s": 0.0, "host_per_sequence_s": 0.0, "host_launch_s": 0.0}
GRIDS = {"serving ms": [0, 5, 10, 15, 20, 25, 30, 40, 50, 60, 80, 100],
         "host step ms": [0, 0.5, 1, 2, 3, 4, 5],
         "host per sequence ms": [0, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05],
         "host launch ms": [0, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1]}


def rows(path: str):
    """(case, measured TTFT ms, measured TPOT ms, system, model, engine) per aggregated
    closed-loop measurement, each measurement once."""
    cat = Catalog.default()
    by_id: dict[str, dict] = {}
    seen: set[str] = set()
    for i, r in enumerate(load_measurements(path)):
        if r.get("mode") != "agg" or r["metric"] not in ("ttft_ms_mean", "tpot_ms_mean"):
            continue
        key = r.get("silicon_id") or f"{r['source']}|{r['batch_or_concurrency']}|{r['input_len']}|{r['output_len']}"
        if key not in by_id:
            ids = {key, *r.get("same_measurement_as", "").split()}
            if ids & seen:
                continue
            seen |= ids
            by_id[key] = {"i": i, "r": r}
        by_id[key][r["metric"]] = float(r["value"])
    out = []
    for m in by_id.values():
        case = map_row(m["i"], m["r"], cat)
        if isinstance(case, str) or case.load is None or case.load[0] != "clients" or case.pools is not None:
            continue
        if "ttft_ms_mean" in m and "tpot_ms_mean" in m and case.engine:
            out.append((case, m["ttft_ms_mean"], m["tpot_ms_mean"], case.gpu, case.model, dict(case.engine)["engine"]))
    return out, cat


def components(data, cat, eta: float, etap: float, update: dict | None = None) -> dict[str, np.ndarray]:
    """TTFT_0, TPOT_0 (ms), the idle GPU prefill (ms) and the running sequences per lane.
    ``update``: the assumptions over each row's engine profile instead of the new terms off
    at (``eta``, ``etap``) (benchmarks/deepseek_prefill.py: the profiles as they are)."""
    n = len(data)
    out = {k: np.full(n, np.nan) for k in ("ttft", "tpot", "idle", "running")}
    gpu_ids = sorted({d[0].gpu for d in data})
    table = GpuTable.build([cat.gpu(g) for g in gpu_ids])
    groups: dict[tuple, list[int]] = {}
    for k, d in enumerate(data):
        groups.setdefault((d[0].model, d[0].engine, d[0].start), []).append(k)
    for (model, eng, start), idx in groups.items():
        cs = [data[k][0] for k in idx]
        o = row_assumptions(PRESETS["realistic"], eng, {**OFF, "grouped_gemm_efficiency": eta,
                                                         "grouped_gemm_prefill_efficiency": etap}
                            if update is None else update)
        ph = step_physics(cat.models[model], table, _configs(cs, gpu_ids, np.array([c.batch for c in cs])), o)
        cv2 = np.array([c.isl_cv2 for c in cs])
        wl = Workload(isl=np.array([c.input_tokens for c in cs]), osl=np.array([c.output_tokens for c in cs]),
                      isl_cv2=cv2, osl_cv2=cv2, start=start,
                      requests_per_client=np.array([c.requests_per_client for c in cs]))
        r = load_metrics(ph, engine(ph), wl, clients=np.array([c.load[1] / c.replicas for c in cs]), report=set())
        ok = (ph.max_batch >= 1) & r.stable
        out["ttft"][idx] = np.where(ok, r.get("ttft", "mean") * 1e3, np.nan)
        out["tpot"][idx] = np.where(ok, r.get("tpot", "mean") * 1e3, np.nan)
        out["idle"][idx] = step_time(ph, 0.0, 0.0, wl.isl) * 1e3
        out["running"][idx] = r.running
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", default=str(Path(__file__).resolve().parents[2] / "shared/reference/measured-silicon.csv"))
    ap.add_argument("--launch", choices=("max", "sum"), default="max",
                    help="an eager prefill's kernel launches: overlapped with its GPU work (max, the physics') "
                         "or in series with it (sum: the GPU idles through each launch)")
    args = ap.parse_args()
    data, cat = rows(args.csv)
    comp = {pair: components(data, cat, *pair) for pair in PAIRS}
    t_meas = np.array([d[1] for d in data])
    p_meas = np.array([d[2] for d in data])
    eng = np.array([d[5] for d in data])
    systems, models = np.array([d[3] for d in data]), np.array([d[4] for d in data])
    S = np.array([d[0].input_tokens for d in data])
    N = np.array([d[0].load[1] / d[0].replicas for d in data])
    K = np.array([kernels_per_forward(Arch.of(cat.models[d[0].model])) for d in data])
    ok = np.all([np.isfinite(comp[e]["ttft"]) & np.isfinite(comp[e]["tpot"]) for e in PAIRS], axis=0)
    low = N <= 8

    def predict(eta, par):
        c = comp[eta]
        ttft, tpot = c["ttft"].copy(), c["tpot"].copy()
        for e in ENGINES:
            s, h0, h1, lch = par[e]
            m = eng == e
            host_pre = h0 + h1 + np.where(S > 512, K * lch, 0.0)
            extra = host_pre[m] if args.launch == "sum" else np.maximum(0.0, host_pre[m] - c["idle"][m])
            ttft[m] = c["ttft"][m] + s + extra
            tpot[m] = np.maximum(c["tpot"][m], h0 + c["running"][m] * h1)
        return ttft, tpot

    def loss(eta, par, sel):
        ttft, tpot = predict(eta, par)
        return (np.sum(np.abs(np.log(ttft / t_meas))[sel & low]) + np.sum(np.abs(np.log(tpot / p_meas))[sel]))

    def fit(sel):
        best = None
        for eta in PAIRS:
            par = {e: [0.0, 0.0, 0.0, 0.0] for e in ENGINES}
            for _ in range(3):
                for e in ENGINES:
                    for j, grid in enumerate(GRIDS.values()):
                        vals = []
                        for v in grid:
                            par[e][j] = v
                            vals.append(loss(eta, par, sel))
                        par[e][j] = grid[int(np.argmin(vals))]
            value = loss(eta, par, sel)
            if best is None or value < best[0]:
                best = (value, eta, {e: list(v) for e, v in par.items()})
        return best[1], best[2]

    def errors(eta, par, sel):
        ttft, tpot = predict(eta, par)
        return (float(np.median(np.abs(ttft / t_meas - 1)[sel])) * 100,
                float(np.median(np.abs(tpot / p_meas - 1)[sel])) * 100)

    eta, par = fit(ok)
    print(f"{int(ok.sum())} aggregated closed-loop measurements ({int((ok & low).sum())} of at most 8 clients)")
    print(f"grouped_gemm_efficiency {eta[0]}, grouped_gemm_prefill_efficiency {eta[1]}")
    print(f"{'engine':8s} " + " ".join(f"{k:>20s}" for k in GRIDS))
    for e in ENGINES:
        print(f"{e:8s} " + " ".join(f"{v:20g}" for v in par[e]))
    t_in, p_in = errors(eta, par, ok)
    print(f"in-sample median |error|: TTFT {t_in:.1f} %, TPOT {p_in:.1f} %")
    for name, groups in (("system", systems), ("model", models)):
        print(f"leave one {name} out (fitted without it, median |error| on it):")
        for g in sorted(set(groups[ok])):
            held = ok & (groups == g)
            eta_g, par_g = fit(ok & ~held)
            t, p = errors(eta_g, par_g, held)
            print(f"  {g:18s} n={int(held.sum()):4d}  TTFT {t:5.1f} %  TPOT {p:5.1f} %  "
                  f"(grouped GEMMs {eta_g[0]} decode, {eta_g[1]} prefill; serving ms "
                  + ", ".join(f"{e} {par_g[e][0]:g}" for e in ENGINES) + ")")


if __name__ == "__main__":
    main()
