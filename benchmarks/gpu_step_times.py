"""Measure on a real GPU what the step physics predicts: GEMMs over M, decode steps, prefills.

Runs where PyTorch sees a CUDA GPU (the planner and its tests never need one). Writes one
CSV per experiment; ``benchmarks/compare_step_times.py`` puts the planner's predictions
beside them. Every model here is built from its Hugging Face dimensions with random
weights: a step's time depends on shapes and formats, not on the values.

    python benchmarks/gpu_step_times.py --out benchmarks/data/h100 [--quick]

Experiments (all timed as CUDA-graph replays, so Python launch costs are not counted: the
engines run their decode steps as graphs too):

- ``gemm.csv``: y = x W for the per-GPU weight shards of Llama-3.1-8B (TP1) and
  Llama-3.1-70B (TP1/2/4/8), BF16 and FP8 (E4M3, per-tensor scales, ``torch._scaled_mm``),
  M = 1 .. 8192. Weights rotate over enough copies that no replay reads them from L2.
- ``decode.csv``: one decode step (every layer: RMSNorm, QKV, attention over a dense BF16
  KV cache of C tokens per sequence via SDPA with GQA, O, RMSNorm, gate/up,
  SiLU-and-multiply, down, residuals; final norm and the LM head) at batch B and context C,
  for Llama-3.1-8B whole and one GPU's TP8 shard of Llama-3.1-70B (no collectives), with
  BF16 or FP8 linear layers.
- ``prefill.csv``: the same model's prefill of one prompt of S tokens (causal SDPA).
- ``memory.csv``: read bandwidth (a sum over 4 GiB) and copy bandwidth.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import time

import torch
import torch.nn.functional as F

# Hugging Face dimensions (../shared/reference/hf-configs/meta-llama--Meta-Llama-3.1-{8B,70B}.json);
# compare_step_times.py checks them against the planner's catalog.
LLAMA_8B = dict(hidden=4096, layers=32, heads=32, kv_heads=8, head_dim=128, ffn=14336, vocab=128256)
LLAMA_70B = dict(hidden=8192, layers=80, heads=64, kv_heads=8, head_dim=128, ffn=28672, vocab=128256)
L2_BYTES = 50 * 2**20
DEV = "cuda"


def shard_shapes(m: dict, tp: int) -> dict[str, tuple[int, int]]:
    """(K, N) of each linear layer on one GPU of a TP group (Megatron split)."""
    h, d = m["hidden"], m["head_dim"]
    kv = max(m["kv_heads"] // tp, 1)
    return {
        "qkv": (h, (m["heads"] // tp + 2 * kv) * d),
        "o": (m["heads"] // tp * d, h),
        "gate_up": (h, 2 * m["ffn"] // tp),
        "down": (m["ffn"] // tp, h),
    }


def graph_time(fn, *, reps: int = 20, inner: int = 1) -> float:
    """Seconds per call of ``fn`` (which makes ``inner`` calls), captured in a CUDA graph."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    for _ in range(3):
        g.replay()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    best = math.inf
    for _ in range(5):                       # best of five batches of replays: noise only adds time
        start.record()
        for _ in range(reps):
            g.replay()
        end.record()
        torch.cuda.synchronize()
        best = min(best, start.elapsed_time(end) / 1e3 / reps / inner)
    del g
    return best


def gemm_sweep(out: str, ms: list[int]) -> None:
    rows = []
    configs = [("llama-3.1-8b", LLAMA_8B, 1)] + [("llama-3.1-70b", LLAMA_70B, tp) for tp in (1, 2, 4, 8)]
    f8 = torch.float8_e4m3fn
    one = torch.ones((), device=DEV)
    for name, m, tp in configs:
        for layer, (K, N) in shard_shapes(m, tp).items():
            for dtype in ("bf16", "fp8"):
                wbytes = K * N * (2 if dtype == "bf16" else 1)
                copies = max(2, math.ceil(4 * L2_BYTES / wbytes))
                if dtype == "bf16":
                    ws = [torch.randn(K, N, device=DEV, dtype=torch.bfloat16) / math.sqrt(K) for _ in range(copies)]
                else:   # _scaled_mm wants the second operand column-major: (N, K) row-major, transposed
                    ws = [torch.randn(N, K, device=DEV).to(f8).t() for _ in range(copies)]
                for M in ms:
                    if dtype == "bf16":
                        x = torch.randn(M, K, device=DEV, dtype=torch.bfloat16)

                        def fn(x=x, ws=ws):
                            for w in ws:
                                torch.mm(x, w)
                    else:
                        x = torch.randn(M, K, device=DEV).to(f8)

                        def fn(x=x, ws=ws):
                            for w in ws:
                                torch._scaled_mm(x, w, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
                    t = graph_time(fn, reps=10, inner=len(ws))
                    rows.append(dict(model=name, tp=tp, layer=layer, dtype=dtype, M=M, K=K, N=N, seconds=t,
                                     tflops=2 * M * K * N / t / 1e12, weight_gbps=wbytes / t / 1e9))
                    print(f"gemm {name} tp{tp} {layer:7s} {dtype} M={M:5d}: {t * 1e6:8.1f} us "
                          f"{rows[-1]['tflops']:6.0f} TFLOP/s {rows[-1]['weight_gbps']:6.0f} GB/s", flush=True)
                del ws
                torch.cuda.empty_cache()
    write(out, "gemm.csv", rows)


class Llama:
    """Random-weight Llama decoder (BF16), the parts whose cost the planner models."""

    def __init__(self, m: dict, *, tp: int = 1, fp8: bool = False):
        """One GPU's shard of a TP group (heads and FFN split, no collectives: what one GPU
        computes between its all-reduces); ``fp8``: linear layers in FP8 with static
        per-tensor activation scales (one cast kernel per GEMM input), as W8A8 engines run."""
        h, d, L = m["hidden"], m["head_dim"], m["layers"]
        self.m, self.tp, self.fp8 = m, tp, fp8
        bf = torch.bfloat16
        self.one = torch.ones((), device=DEV)
        self.layers = []
        for _ in range(L):
            shapes = shard_shapes(m, tp)
            self.layers.append({k: self._weight(*s) for k, s in shapes.items()}
                               | {"n1": torch.ones(h, device=DEV, dtype=bf), "n2": torch.ones(h, device=DEV, dtype=bf)})
        self.norm = torch.ones(h, device=DEV, dtype=bf)
        self.head = torch.randn(h, m["vocab"] // tp, device=DEV, dtype=bf) / math.sqrt(h)
        self.heads, self.kv_heads = m["heads"] // tp, max(m["kv_heads"] // tp, 1)
        self.q_width, self.kv_width = self.heads * d, self.kv_heads * d

    def _weight(self, K: int, N: int) -> torch.Tensor:
        if self.fp8:
            return torch.randn(N, K, device=DEV).to(torch.float8_e4m3fn).t()
        return torch.randn(K, N, device=DEV, dtype=torch.bfloat16) / math.sqrt(K)

    def mm(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if not self.fp8:
            return x @ w
        return torch._scaled_mm(x.to(torch.float8_e4m3fn), w, scale_a=self.one, scale_b=self.one,
                                out_dtype=torch.bfloat16)

    def forward(self, x: torch.Tensor, caches, *, causal: bool) -> torch.Tensor:
        """x: (B, T, h); caches: per layer (k, v) of (B, n_kv, C, d) or None (prefill: attend to itself)."""
        m = self.m
        B, T, h = x.shape
        d = m["head_dim"]
        for i, p in enumerate(self.layers):
            y = F.rms_norm(x, (h,), p["n1"])
            qkv = self.mm(y.reshape(B * T, h), p["qkv"])
            q, k, v = qkv.split([self.q_width, self.kv_width, self.kv_width], dim=-1)
            q = q.reshape(B, T, self.heads, d).transpose(1, 2)
            if caches is None:
                k = k.reshape(B, T, self.kv_heads, d).transpose(1, 2)
                v = v.reshape(B, T, self.kv_heads, d).transpose(1, 2)
            else:
                k, v = caches[i]
            a = F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
            a = a.transpose(1, 2).reshape(B * T, self.q_width)
            x = x + self.mm(a, p["o"]).reshape(B, T, h)
            y = F.rms_norm(x, (h,), p["n2"]).reshape(B * T, h)
            gu = self.mm(y, p["gate_up"])
            g, u = gu.chunk(2, dim=-1)
            x = x + self.mm((F.silu(g) * u).contiguous(), p["down"]).reshape(B, T, h)
        last = F.rms_norm(x[:, -1, :], (h,), self.norm)
        return last @ self.head


DECODE_SETUPS = (   # (model name, dims, TP shard, FP8 linear layers)
    ("llama-3.1-8b", LLAMA_8B, 1, False),
    ("llama-3.1-8b", LLAMA_8B, 1, True),
    ("llama-3.1-70b", LLAMA_70B, 8, False),
    ("llama-3.1-70b", LLAMA_70B, 8, True),
)


def decode_sweep(out: str, batches: list[int], contexts: list[int], max_tokens: int) -> None:
    rows = []
    for name, m, tp, fp8 in DECODE_SETUPS:
        model = Llama(m, tp=tp, fp8=fp8)
        for C in contexts:
            for B in batches:
                if B * C * m["layers"] / tp > max_tokens * 32:     # KV of at most max_tokens x 32 layers
                    continue
                caches = [(torch.randn(B, model.kv_heads, C, m["head_dim"], device=DEV, dtype=torch.bfloat16),
                           torch.randn(B, model.kv_heads, C, m["head_dim"], device=DEV, dtype=torch.bfloat16))
                          for _ in range(m["layers"])]
                x = torch.randn(B, 1, m["hidden"], device=DEV, dtype=torch.bfloat16)
                t = graph_time(lambda x=x, caches=caches, model=model: model.forward(x, caches, causal=False), reps=10)
                rows.append(dict(model=name, tp_shard=tp, dtype="fp8" if fp8 else "bf16", kv_dtype="bf16",
                                 batch=B, context=C, seconds=t))
                print(f"decode {name} tp{tp} {rows[-1]['dtype']} B={B:4d} C={C:5d}: {t * 1e3:7.3f} ms", flush=True)
                del caches
                torch.cuda.empty_cache()
        del model
        torch.cuda.empty_cache()
    write(out, "decode.csv", rows)


def prefill_sweep(out: str, lengths: list[int]) -> None:
    rows = []
    for name, m, tp, fp8 in DECODE_SETUPS:
        model = Llama(m, tp=tp, fp8=fp8)
        for S in lengths:
            x = torch.randn(1, S, m["hidden"], device=DEV, dtype=torch.bfloat16)
            t = graph_time(lambda x=x, model=model: model.forward(x, None, causal=True), reps=5)
            rows.append(dict(model=name, tp_shard=tp, dtype="fp8" if fp8 else "bf16", batch=1, prompt=S, seconds=t))
            print(f"prefill {name} tp{tp} {rows[-1]['dtype']} S={S:5d}: {t * 1e3:7.3f} ms", flush=True)
        del model
        torch.cuda.empty_cache()
    write(out, "prefill.csv", rows)


def memory_probe(out: str) -> None:
    n = 4 * 2**30 // 2
    a = torch.empty(n, device=DEV, dtype=torch.bfloat16).normal_()
    b = torch.empty_like(a)
    t_read = graph_time(lambda: a.sum(dtype=torch.float32), reps=10)
    t_copy = graph_time(lambda: b.copy_(a), reps=10)
    rows = [dict(kind="read", bytes=2 * n, seconds=t_read, gbps=2 * n / t_read / 1e9),
            dict(kind="copy (read + write)", bytes=4 * n, seconds=t_copy, gbps=4 * n / t_copy / 1e9)]
    for r in rows:
        print(f"memory {r['kind']}: {r['gbps']:.0f} GB/s", flush=True)
    write(out, "memory.csv", rows)


def write(out: str, name: str, rows: list[dict]) -> None:
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, name), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder for the CSVs")
    ap.add_argument("--quick", action="store_true", help="a few points of each experiment")
    ap.add_argument("--only", default="memory,gemm,decode,prefill")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = True
    props = torch.cuda.get_device_properties(0)
    print(f"device: {props.name}, {props.multi_processor_count} SMs, torch {torch.__version__}", flush=True)
    t0 = time.time()
    only = set(args.only.split(","))
    ms = [1, 16, 128, 1024] if args.quick else [1, 2, 4, 8, 16, 32, 64, 96, 128, 192, 256, 384, 512, 768, 1024,
                                                 2048, 4096, 8192]
    if "memory" in only:
        memory_probe(args.out)
    if "gemm" in only:
        gemm_sweep(args.out, ms)
    if "decode" in only:
        decode_sweep(args.out, [1, 8] if args.quick else [1, 4, 16, 32, 64, 128, 256],
                     [1024] if args.quick else [512, 2048, 8192], max_tokens=262144)
    if "prefill" in only:
        prefill_sweep(args.out, [512] if args.quick else [128, 512, 2048, 8192])
    print(f"done in {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
