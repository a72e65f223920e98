"""Prefix caching (docs/workloads.md section 7): the simulator's LRU against the closed form's reuse.

Replays Mooncake traces in order (their lengths, Poisson arrivals at the trace's mean rate)
through one lane of a configuration with a prefix cache of its KV pool (``TraceCache``: an LRU
of pool tokens / 512 blocks, the blocks of requests in flight pinned) and prints the
simulator's hit rate beside the closed form's (the trace's reuse in an LRU of the same size,
``ReuseCurve``), with the time each takes.

    python benchmarks/prefix_cache.py [--trace FILE ...] [--config MODEL:GPU:TP ...]

Default traces: the shipped samples (instances/traces/) and, where they exist, the whole
traces in ../shared/traces/ (requests longer than the pool are left out, and counted).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.catalog.store import Catalog
from planner.physics.load import engine, step_physics
from planner.physics.options import PRESETS
from planner.physics.space import Configs, GpuTable
from planner.physics.step import scalar_step_fn
from planner.simulate import Arrivals, Lengths, simulate
from planner.traces.cache import ReuseCurve, TraceCache
from planner.traces.read import read_trace

ROOT = Path(__file__).resolve().parent.parent
TRACES = [ROOT / "instances" / "traces" / "mooncake-conversation-sample.jsonl",
          ROOT / "instances" / "traces" / "mooncake-synthetic-sample.jsonl",
          ROOT.parent / "shared" / "traces" / "mooncake-conversation.jsonl",
          ROOT.parent / "shared" / "traces" / "mooncake-synthetic.jsonl"]
CONFIGS = ["llama-3.1-70b:h100-sxm:4", "llama-3.1-8b:h200:1"]


def run(path: Path, config: str) -> str:
    model, gpu, tp = config.split(":")
    trace = read_trace(str(path))
    assert trace.block_ids is not None and trace.block_offsets is not None
    S, out = trace.input_tokens, trace.output_tokens
    cat = Catalog.default()
    c = Configs.single(0, "w16a16", "bf16", int(tp), 1, 1, 64, float(S.mean()), float(out.mean()))
    phys = step_physics(cat.model(model), GpuTable.build([cat.gpus[gpu]]), c, PRESETS["realistic"])
    eng = engine(phys)
    pool = float(eng.kv_pool_tokens[0])
    blocks = int(pool // trace.block_tokens)
    keep = (S + out <= pool).tolist()
    ids, off = trace.block_ids.tolist(), trace.block_offsets.tolist()
    per = [ids[off[i]:off[i + 1]] for i in range(trace.requests) if keep[i]]
    s_kept = [int(x) for x, k in zip(S.tolist(), keep) if k]
    o_kept = [int(x) for x, k in zip(out.tolist(), keep) if k]
    T, cap = int(eng.token_budget[0]), int(eng.max_seqs[0])
    span = float(trace.time_s[-1] - trace.time_s[0])
    t0 = time.perf_counter()
    r = simulate(scalar_step_fn(phys, 0, T + cap + 1), Arrivals("poisson", rate=(trace.requests - 1) / span),
                 Lengths(s_kept, in_order=True), Lengths(o_kept, in_order=True), token_budget=T, max_seqs=cap,
                 kv_pool_tokens=pool, n_requests=len(per), prefix_cache=TraceCache(per, trace.block_tokens, blocks))
    t1 = time.perf_counter()
    curve = ReuseCurve(per, s_kept, trace.block_tokens)
    t2 = time.perf_counter()
    sim, closed = r.summary["cache_hit_rate"], curve.share(blocks)
    return (f"| {path.name} | {model} {gpu} TP{tp} | {len(per):,} / {trace.requests:,} | {blocks:,} | {sim:.1%} | "
            f"{closed:.1%} | {100 * (sim - closed):+.1f} | {curve.share(None):.1%} | {t1 - t0:.1f} | {t2 - t1:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trace", action="append", type=Path, help="Mooncake trace(s) (default: the samples and "
                    "../shared/traces where present)")
    ap.add_argument("--config", action="append", help=f"MODEL:GPU:TP (default: {', '.join(CONFIGS)})")
    a = ap.parse_args()
    print("| trace | configuration | requests in the pool / all | LRU blocks | simulator hit rate | closed form "
          "| points | unbounded | simulator s | curve s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for path in a.trace or [p for p in TRACES if p.exists()]:
        for config in a.config or CONFIGS:
            print(run(path, config), flush=True)


if __name__ == "__main__":
    main()
