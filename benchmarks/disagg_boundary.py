"""Where prefill/decode disaggregation beats aggregated serving, in $ per million output tokens.

For each model, GPU, ISL/OSL and (TTFT p99, TPOT p99) target pair: the cheapest aggregated
configuration at its capacity at SLO (planner/physics/load.py, utilisation <= 0.8) against
the cheapest disaggregated pair: the cheapest prefill replica per request/s meeting the TTFT
target (queueing + prefill + KV transfer over the inter-node network) plus the cheapest
decode replica per request/s meeting the TPOT target (planner/physics/disagg.py, busy share
and KV occupancy <= 0.8), both in the same KV format. Pools are priced as GPUs per unit of
rate (fractional replicas: no integer rounding). Prints every case and the ISL at which the
winner flips for each (model, GPU, OSL, targets). docs/disaggregation.md section 6.

    python benchmarks/disagg_boundary.py [--quick] [--link inter|intra]
    python benchmarks/disagg_boundary.py --agreement     # closed forms vs the pool simulators
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.catalog.store import Catalog
from planner.physics import disagg as D
from planner.physics import load as L
from planner.physics.options import PRESETS
from planner.physics.space import KV_NAMES, SCHEME_NAMES, Configs, GpuTable
from planner.simulate import Arrivals, Lengths, simulate_decode_pool, simulate_prefill_pool

MAX_U = 0.8
SCHEMES = ("w16a16", "w8a8-fp8")
KVS = ("bf16", "fp8")


def _configs(table: GpuTable, S: float, O: float) -> Configs:
    return Configs.grid(range(len(table.gpus)), [SCHEME_NAMES.index(s) for s in SCHEMES],
                        [KV_NAMES.index(k) for k in KVS], [1, 2, 4, 8], [1], [1], [32, 128, 512], [S], [O])


def _label(c: Configs, i: int) -> str:
    return f"{SCHEME_NAMES[c.scheme[i]]}/{KV_NAMES[c.kv[i]]} TP{int(c.tp[i])} b{int(c.batch[i])}"


def case(model, table: GpuTable, price: float, S: float, O: float, ttft: float, tpot: float, link: str) -> dict:
    c = _configs(table, S, O)
    ph0 = L.step_physics(model, table, c, PRESETS["realistic"])
    keep = np.flatnonzero(L.engine(ph0).max_seqs >= 1)
    c = c.take(keep)
    ph = L.step_physics(model, table, c, PRESETS["realistic"])
    eng = L.engine(ph)
    wl = L.Workload(S, O)
    gpus = c.tp * c.pp
    usd_s = price * gpus / 3600.0                 # $ per second per replica
    with np.errstate(divide="ignore", invalid="ignore"):
        # aggregated: both targets on one engine, utilisation (steps and KV) <= 0.8
        tg = [L.Target("ttft", "p99", ttft), L.Target("tpot", "p99", tpot)]
        agg = L.capacity_at_slo(ph, eng, wl, tg, max_utilization=MAX_U)     # as the planner sizes it
        agg_cost = np.where(agg.rate > 0, usd_s / (agg.rate * O) * 1e6, np.inf)
        # disaggregated: each pool at its own capacity
        pre = D.prefill_capacity(ph, eng, wl, [L.Target("ttft", "p99", ttft)], link=link, max_utilization=MAX_U)
        xfer = D.kv_transfer_time(ph, S, link)
        dec = D.decode_capacity(ph, eng, wl, [L.Target("tpot", "p99", tpot)], transfer=xfer, max_utilization=MAX_U)
        pre_cost = np.where(pre.rate > 0, usd_s / pre.rate, np.inf)     # $ per request
        dec_cost = np.where(dec.rate > 0, usd_s / dec.rate, np.inf)
    ia = int(np.argmin(agg_cost))
    best = (np.inf, -1, -1)
    for k in np.unique(c.kv):
        mk = c.kv == k
        ip = int(np.flatnonzero(mk)[np.argmin(pre_cost[mk])])
        idd = int(np.flatnonzero(mk)[np.argmin(dec_cost[mk])])
        tot = (pre_cost[ip] + dec_cost[idd]) / O * 1e6
        if tot < best[0]:
            best = (tot, ip, idd)
    dis_cost, ip, idd = best
    # the aggregated winner's prefill share of GPU time, and the prefill pool's busy share
    at = L.load_metrics(ph, eng, wl, rate=np.array([agg.rate[ia]] * len(c))) if np.isfinite(agg_cost[ia]) else None
    return dict(
        S=S, O=O, ttft=ttft, tpot=tpot, agg=float(agg_cost[ia]), dis=float(dis_cost),
        agg_cfg=_label(c, ia) if np.isfinite(agg_cost[ia]) else "-",
        pre_cfg=_label(c, ip) if ip >= 0 and np.isfinite(pre_cost[ip]) else "-",
        dec_cfg=_label(c, idd) if idd >= 0 and np.isfinite(dec_cost[idd]) else "-",
        prefill_share=float(at.rho_prefill[ia]) if at is not None else float("nan"),
        # GPUs per request/s of each pool: the pool ratio at this level
        gpus_per_rate_p=float(gpus[ip] / pre.rate[ip]) if ip >= 0 and pre.rate[ip] > 0 else float("inf"),
        gpus_per_rate_d=float(gpus[idd] / dec.rate[idd]) if idd >= 0 and dec.rate[idd] > 0 else float("inf"),
    )


AGREEMENT = [("llama-3.1-8b", "w16a16", "bf16", 1, 64, 1024, 256),
             ("llama-3.1-70b", "w8a8-fp8", "fp8", 2, 128, 4000, 300),
             ("llama-3.1-8b", "w16a16", "bf16", 1, 256, 300, 200)]


def agreement(cat: Catalog) -> None:
    """docs/disaggregation.md section 5: closed form / simulation - 1 at u x saturation."""
    table = GpuTable.build([cat.gpus["h100-sxm"]])
    print("case | u | busy share | TTFT mean | TTFT p99 | TPOT mean | TPOT p99 | ITL p99")
    for model, scheme, kv, tp, b, S, O in AGREEMENT:
        c = Configs.single(0, scheme, kv, tp, 1, 1, b, S, O)
        ph = L.step_physics(cat.model(model), table, c, PRESETS["realistic"])
        eng = L.engine(ph)
        wl = L.Workload(float(S), float(O))
        xf = float(D.kv_transfer_time(ph, S, "inter")[0])
        sp, sd = float(D.prefill_saturation(ph, eng, S)[0]), float(D.decode_saturation(ph, eng, S, O)[0])
        for u in (0.3, 0.6, 0.8):
            p = D.prefill_metrics(ph, eng, wl, u * sp)
            r = simulate_prefill_pool(ph, eng, 0, Arrivals("poisson", rate=u * sp), Lengths(S), transfer_s=xf,
                                      n_requests=8000).summary
            d = D.decode_metrics(ph, eng, wl, u * sd)
            q = simulate_decode_pool(ph, eng, 0, Arrivals("poisson", rate=u * sd), Lengths(S), Lengths(O),
                                     n_requests=5000).summary

            def f(a, b):
                return f"{float(a[0]) / b - 1:+.0%}"
            print(f"{model} {scheme}/{kv} TP{tp}, {S}/{O} | {u} | {float(p.rho[0]):.2f} | "
                  f"{f(p.get('ttft', 'mean'), r['ttft_mean'])} | {f(p.get('ttft', 'p99'), r['ttft_p99'])} | "
                  f"{f(d.get('tpot', 'mean'), q['tpot_mean'])} | {f(d.get('tpot', 'p99'), q['tpot_p99'])} | "
                  f"{f(d.get('itl', 'p99'), q['itl_p99'])}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one model, fewer lengths")
    ap.add_argument("--link", default="inter", choices=("inter", "intra"))
    ap.add_argument("--agreement", action="store_true", help="closed forms vs the pool simulators")
    args = ap.parse_args()
    cat = Catalog.default()
    if args.agreement:
        agreement(cat)
        return
    models = ["llama-3.1-8b"] if args.quick else ["llama-3.1-8b", "llama-3.1-70b"]
    gpus = ["h100-sxm"]
    isls = [256, 1024, 4096, 16384] if args.quick else [512, 2048, 8192, 16384]
    osls = [256] if args.quick else [256, 1024]
    targets = [(2.0, 0.050), (2.0, 0.015), (1.0, 0.030)]
    print(f"link: {args.link}; $/Mtok output at capacity, utilisation <= {MAX_U}; "
          "dis = cheapest prefill + cheapest decode per request/s")
    print(f"{'model':14} {'gpu':9} {'ISL':>6} {'OSL':>5} {'TTFT99':>6} {'TPOT99':>6} | {'agg $/M':>8} "
          f"{'dis $/M':>8} {'win':4} {'margin':>7} | {'agg pre%':>8} {'P:D gpus':>8} | agg cfg ; prefill ; decode")
    for mname, gname in itertools.product(models, gpus):
        model = cat.model(mname)
        g = cat.gpus[gname]
        table = GpuTable.build([g])
        price = float(g.price_usd_per_gpu_hour or np.nan)
        for O, (ttft, tpot) in itertools.product(osls, targets):
            prev = None
            for S in isls:
                r = case(model, table, price, float(S), float(O), ttft, tpot, args.link)
                win = "agg" if r["agg"] <= r["dis"] else "dis"
                lo, hi = min(r["agg"], r["dis"]), max(r["agg"], r["dis"])
                margin = f"{hi / lo - 1:+.0%}" if np.isfinite(hi) else "only"
                if not np.isfinite(lo):
                    win, margin = "none", "-"
                ratio = r["gpus_per_rate_p"] / r["gpus_per_rate_d"] if np.isfinite(r["gpus_per_rate_d"]) else np.inf
                print(f"{mname:14} {gname:9} {S:6d} {O:5d} {ttft:6.1f} {tpot * 1e3:4.0f}ms | {r['agg']:8.3f} "
                      f"{r['dis']:8.3f} {win:4} {margin:>7} | {r['prefill_share']:8.0%} {ratio:8.2f} | "
                      f"{r['agg_cfg']} ; {r['pre_cfg']} ; {r['dec_cfg']}")
                if prev is not None and prev != win:
                    print(f"  -> winner flips {prev} -> {win} between ISL {isls[isls.index(S) - 1]} and {S}")
                prev = win


if __name__ == "__main__":
    main()
