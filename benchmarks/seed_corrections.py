"""The realistic mode's corrections to seed 002's 8 x H100 figure, one at a time.

Starts from the article's own simplifications (Llama-2-70B as 70e9 parameters with an
MHA cache, TP 8, batch 295, peak rates, (n-1)/n all-reduce message, 1 us latency) and
switches each correction on cumulatively. Prints a markdown table (docs/model.md).

    python benchmarks/seed_corrections.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from seed_cases import H100_ARTICLE, LLAMA70_ARTICLE, run  # noqa: E402

from planner.catalog.store import Catalog
from planner.physics.options import PRESETS  # noqa: E402

BATCH, CONTEXT_IN, CONTEXT_OUT = 295, 1024, 256


def main() -> None:
    cat = Catalog.default()
    o = PRESETS["seed-article"].model_copy(update={"allreduce": "all-gather"})
    model, gpu = LLAMA70_ARTICLE, H100_ARTICLE
    steps = [
        ("the article (seed-article preset, (n-1)/n message, 1 us)", {}, None, None),
        ("ring all-reduce: 2(n-1)/n of the message per GPU", {"allreduce": "ring"}, None, None),
        ("per-collective latency added, 10 us (catalog H100)", {"comm_latency": "add"}, None, cat.gpu("h100-sxm")),
        ("KV-cache reads at the mean context (1024 in + 128)", {"include_kv_reads": True}, None, None),
        ("true Llama-2-70B: 68.98e9 parameters, GQA (8 KV heads)", {}, cat.model("llama-2-70b"), None),
        ("achieved rates: 80 % HBM, 60 % FLOP/s, 80 % link", {"memory_bandwidth_efficiency": 0.8,
                                                           "compute_efficiency": 0.6, "comm_efficiency": 0.8}, None,
         None),
        ("20 us of non-GEMM kernels per layer", {"per_layer_overhead_s": 20e-6}, None, None),
        ("5 us per GEMM kernel, 4 per layer (measured on an H100)", {"gemm_latency_s": 5e-6}, None, None),
        ("activations moved by the non-GEMM kernels",
         {"activation_passes_hidden": 8.0, "activation_passes_ffn": 3.0, "activation_passes_attention": 2.0},
         None, None),
    ]
    print("| step | correction | TPOT ms | tokens/s per sequence | throughput tok/s (batch 295) |")
    print("|---|---|---|---|---|")
    for i, (label, update, new_model, new_gpu) in enumerate(steps):
        o = o.model_copy(update=update)
        model = new_model or model
        gpu = new_gpu or gpu
        r = run(model, gpu, o, tp=8, batch=BATCH, input_tokens=CONTEXT_IN, output_tokens=CONTEXT_OUT)
        print(f"| {i} | {label} | {r['tpot'] * 1e3:.2f} | {1 / r['tpot']:.0f} | {BATCH / r['tpot']:,.0f} |")
    full = run(cat.model("llama-2-70b"), cat.gpu("h100-sxm"), PRESETS["realistic"], tp=8, batch=BATCH,
               input_tokens=CONTEXT_IN, output_tokens=CONTEXT_OUT)
    print(f"\nrealistic preset on the catalog H100: TPOT {full['tpot'] * 1e3:.2f} ms, regime shares: "
          f"weights {full['share_weights']:.0%}, compute {full['share_compute']:.0%}, KV {full['share_kv']:.0%}, "
          f"activations {full['share_activations']:.0%}, communication {full['share_comm']:.0%}, "
          f"overhead {full['share_overhead']:.0%}")


if __name__ == "__main__":
    main()
