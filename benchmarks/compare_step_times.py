"""Put the planner's step physics beside step times measured on a GPU (no GPU needed).

Reads the CSVs that ``benchmarks/gpu_step_times.py`` wrote on an H100 SXM
(``benchmarks/data/h100/``, kept in the repository) and prints, per experiment, measured
vs predicted with the shipped priors (preset ``realistic``), and what the measurements say
about the priors themselves:

- GEMMs: the smooth roofline t = (t_mem^k + t_flop^k)^(1/k) with t_mem = bytes / (BW x
  memory efficiency) and t_flop = FLOPs / (MAMF x compute efficiency), per M;
- decode steps and prefills: ``planner.physics.perf.evaluate`` at the same model, batch,
  context and format, less its collectives (the measured 70B runs are one GPU's TP8 shard,
  which does everything but the all-reduces).

    python benchmarks/compare_step_times.py [--data benchmarks/data/h100] [--rows]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.catalog.store import Catalog
from planner.physics.options import PRESETS
from planner.physics.perf import evaluate
from planner.physics.space import KV_NAMES, SCHEME_NAMES, Configs, GpuTable
from planner.physics.terms import smax

SCHEME = {"bf16": "w16a16", "fp8": "w8a8-fp8"}
DIMS = {   # as in gpu_step_times.py; checked against the catalog below
    "llama-3.1-8b": dict(hidden_size=4096, num_layers=32, num_attention_heads=32, num_kv_heads=8, head_dim=128,
                         intermediate_size=14336, vocab_size=128256),
    "llama-3.1-70b": dict(hidden_size=8192, num_layers=80, num_attention_heads=64, num_kv_heads=8, head_dim=128,
                          intermediate_size=28672, vocab_size=128256),
}


def read(path: str) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def gemm_table(rows: list[dict], gpu, o, *, show_rows: bool) -> None:
    bw = gpu.memory_bandwidth_bytes_per_s * o.memory_bandwidth_efficiency
    mamf = {k: float(v) for k, v in gpu.measured_mamf_flops_per_s.items()}
    buckets: dict[tuple[str, str], list[float]] = {}
    print("GEMMs: measured / predicted time (median over the 20 weight shards of Llama-3.1-8B TP1 and "
          f"Llama-3.1-70B TP1-8), prior: smooth roofline k={o.roofline_sharpness:g}, memory "
          f"x{o.memory_bandwidth_efficiency:.2f}, MAMF x{o.compute_efficiency:.2f}, "
          f"+ {o.gemm_latency_s * 1e6:g} us per kernel")
    for r in rows:
        M, K, N, t = int(r["M"]), int(r["K"]), int(r["N"]), float(r["seconds"])
        b = 2 if r["dtype"] == "bf16" else 1
        t_mem = K * N * b / bw
        t_flop = 2.0 * M * K * N / (mamf[r["dtype"]] * o.compute_efficiency)
        pred = float(smax(np.array(t_mem), np.array(t_flop), o.roofline_sharpness)) + o.gemm_latency_s
        bucket = "1-16" if M <= 16 else "32-128" if M <= 128 else "192-512" if M <= 512 else "768-2048" if M <= 2048 else "4096-8192"
        buckets.setdefault((r["dtype"], bucket), []).append(t / pred)
        if show_rows:
            print(f"  {r['model']} tp{r['tp']} {r['layer']:7s} {r['dtype']} M={M:5d}: {t * 1e6:8.1f} us, "
                  f"predicted {pred * 1e6:8.1f} us ({(pred / t - 1) * 100:+.0f} %)")
    print(f"  {'format':6s} {'M':>10s} {'shards':>6s} {'median':>7s} {'min':>6s} {'max':>6s}")
    for (dt, bk), v in buckets.items():
        print(f"  {dt:6s} {bk:>10s} {len(v):6d} {np.median(v):7.2f} {min(v):6.2f} {max(v):6.2f}")
    # What the measurements say: bandwidth of the largest weight reads at M=1, best FLOP/s,
    # and a per-kernel latency from the M=1 times (t = alpha + bytes / beta, least squares).
    for dt in ("bf16", "fp8"):
        b = 2 if dt == "bf16" else 1
        one = [r for r in rows if r["dtype"] == dt and int(r["M"]) == 1]
        x = np.array([int(r["K"]) * int(r["N"]) * b for r in one], float)
        y = np.array([float(r["seconds"]) for r in one])
        A = np.vstack([np.ones_like(x), x]).T
        (alpha, inv_beta), *_ = np.linalg.lstsq(A, y, rcond=None)
        best = max(float(r["tflops"]) for r in rows if r["dtype"] == dt) * 1e12
        print(f"  {dt}: M=1 time = {alpha * 1e6:.1f} us + bytes / {1 / inv_beta / 1e12:.2f} TB/s "
              f"({1 / inv_beta / gpu.memory_bandwidth_bytes_per_s:.2f} of the {gpu.memory_bandwidth_bytes_per_s / 1e12:.2f} "
              f"TB/s spec); best {best / 1e12:.0f} TFLOP/s = {best / mamf[dt]:.2f} of the MAMF "
              f"{mamf[dt] / 1e12:.0f}")


def script_kernels(o, dtype: str):
    """The activation traffic of gpu_step_times.py's own kernels (not an engine's fused ones):
    per layer two RMSNorms (read + write the hidden width each: 4), two residual adds (read
    two, write one: 6), the attention output's transpose copy (2 x the query width), SiLU then
    multiply on the FFN shard (2 + 3); FP8 adds a cast of every GEMM input (read 2 bytes, write
    1: 1.5 widths of the QKV and gate/up inputs, the O and down inputs)."""
    extra = 1.5 if dtype == "fp8" else 0.0
    return o.model_copy(update=dict(activation_passes_hidden=10.0 + 2 * extra, activation_passes_ffn=5.0 + extra,
                                    activation_passes_attention=2.0 + extra))


def step_table(kind: str, rows: list[dict], cat: Catalog, o, *, show_rows: bool, own_kernels: bool = False) -> list[float]:
    gpu = cat.gpu("h100-sxm")
    table = GpuTable.build([gpu])
    errs: list[float] = []
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], int(r.get("tp_shard", 1)), r["dtype"]), []).append(r)
    for (name, tp, dt), rs in groups.items():
        model = cat.model(name)
        for key, v in DIMS[name].items():
            assert getattr(model, key) == v, (name, key, getattr(model, key), v)
        n = len(rs)
        batch = np.array([float(r.get("batch", 1)) for r in rs])
        tokens = np.array([float(r["context"] if kind == "decode" else r["prompt"]) for r in rs])
        c = Configs(gpu=np.zeros(n, int), scheme=np.full(n, SCHEME_NAMES.index(SCHEME[dt])),
                    kv=np.full(n, KV_NAMES.index("bf16")), tp=np.full(n, float(tp)), pp=np.ones(n),
                    ep=np.ones(n), batch=batch, input_tokens=tokens, output_tokens=np.zeros(n))
        ev = evaluate(model, table, c, script_kernels(o, dt) if own_kernels else o)
        pred = ev.tpot - ev.t_tp_comm if kind == "decode" else ev.ttft - ev.ttft_comm
        meas = np.array([float(r["seconds"]) for r in rs])
        e = (pred / meas - 1.0) * 100.0
        errs.extend(np.abs(e).tolist())
        shard = f"TP{tp} shard" if tp > 1 else "whole"
        print(f"  {name} {shard} {dt}: median |error| {np.median(np.abs(e)):.1f} %, "
              f"range {e.min():+.0f} to {e.max():+.0f} %")
        if show_rows:
            for k, r in enumerate(rs):
                where = f"B={int(batch[k]):4d} C={int(tokens[k]):5d}" if kind == "decode" else f"S={int(tokens[k]):5d}"
                print(f"    {where}: measured {meas[k] * 1e3:7.3f} ms, predicted {pred[k] * 1e3:7.3f} ms ({e[k]:+.1f} %)")
    return errs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "data", "h100"))
    ap.add_argument("--rows", action="store_true", help="every measurement, not only the summaries")
    ap.add_argument("--preset", default="realistic")
    args = ap.parse_args()
    cat = Catalog.default()
    o = PRESETS[args.preset]
    gpu = cat.gpu("h100-sxm")
    mem = read(os.path.join(args.data, "memory.csv"))
    for r in mem:
        print(f"memory {r['kind']}: {float(r['gbps']):.0f} GB/s = {float(r['gbps']) * 1e9 / gpu.memory_bandwidth_bytes_per_s:.2f} "
              f"of the spec (prior: {o.memory_bandwidth_efficiency:.2f})")
    gemm_table(read(os.path.join(args.data, "gemm.csv")), gpu, o, show_rows=args.rows)
    print(f"Decode steps (preset {args.preset}; predicted = TPOT less its all-reduces):")
    d = step_table("decode", read(os.path.join(args.data, "decode.csv")), cat, o, show_rows=args.rows)
    print(f"Prefills of one prompt (preset {args.preset}; predicted = TTFT less its all-reduces):")
    p = step_table("prefill", read(os.path.join(args.data, "prefill.csv")), cat, o, show_rows=args.rows)
    print(f"median |error|: decode {np.median(d):.1f} % ({len(d)} steps), prefill {np.median(p):.1f} % ({len(p)})")
    print("With the activation traffic of the measured script's own (unfused) kernels instead of vLLM's fused ones:")
    print("Decode steps:")
    d = step_table("decode", read(os.path.join(args.data, "decode.csv")), cat, o, show_rows=False, own_kernels=True)
    print("Prefills:")
    p = step_table("prefill", read(os.path.join(args.data, "prefill.csv")), cat, o, show_rows=False, own_kernels=True)
    print(f"median |error|: decode {np.median(d):.1f} % ({len(d)} steps), prefill {np.median(p):.1f} % ({len(p)})")


if __name__ == "__main__":
    main()
