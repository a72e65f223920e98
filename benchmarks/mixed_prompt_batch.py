"""A mixed engine's prompt-carrying steps (docs/load.md section 3, 'chunk fill';
docs/validation.md "Decode steps: mixed steps, prompt batches and Hopper's MXFP4 experts"):
the shipped closed form's mean prompt tokens a carrying step, mean TTFT and mean TPOT, beside
the same closed form with the prompt batch a prefill-first engine uses (``_prompt_batch``:
the prompts that arrived during the step before, N ~ Poisson(lambda tau)) in place of the
chunk fill, and beside the simulator's mixed scheduler (prompts ride in the decode steps, FIFO
within the token budget). Open loop, Poisson arrivals at 0.2 / 0.5 / 0.8 of saturation, 3,000
requests, seed 1, fixed lengths (so a prompt's first piece c1 is S or its equal pieces, and the
arrivals a step are u / S). Prompts shorter than the budget, as in the corpus's TensorRT-LLM
rows (whole prompts), and one longer (12,000 tokens, chunked).

    python benchmarks/mixed_prompt_batch.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from prefill_first_batch import case, simulated  # noqa: E402

import planner.physics.load as L  # noqa: E402
from planner.physics.load import load_metrics  # noqa: E402

CASES = [("qwen3-32b", "h100-sxm", "w8a8-fp8", "trtllm", 8, 64, 1024, 128),
         ("qwen3-32b", "h100-sxm", "w8a8-fp8", "trtllm", 1, 64, 1024, 512),
         ("llama-3.1-8b", "h100-sxm", "w16a16", "realistic", 1, 64, 293, 157),
         ("llama-3.1-70b", "h100-sxm", "w16a16", "realistic", 4, 64, 1000, 300),
         ("llama-3.1-8b", "h100-sxm", "w16a16", "realistic", 1, 64, 12000, 300)]


def closed(ph, eng, wl, rate, S, batch: bool):
    """(prompt tokens a carrying step, TTFT, TPOT) of the closed form, with the chunk fill or
    (``batch``) the prompt batch in its place."""
    shipped = L._chunk
    if batch:
        L._chunk = lambda c1, Ta, u: L._prompt_batch(c1, Ta, S, u / S)   # type: ignore[assignment]
    try:
        r = load_metrics(ph, eng, wl, rate=np.array([rate]))
    finally:
        L._chunk = shipped
    return r.chunk_tokens[0], r.get("ttft", "mean")[0] * 1e3, r.get("tpot", "mean")[0] * 1e3


def main() -> None:
    print("case, load: prompt tokens a carrying step, TTFT ms, TPOT ms: chunk fill / prompt batch / simulated")
    for model, gpu, scheme, preset, tp, batch, S, O in CASES:
        ph, eng, wl, sat = case(model, gpu, scheme, tp, batch, S, O, preset)
        for load in (0.2, 0.5, 0.8):
            rate = load * sat
            s, prompts = simulated(ph, eng, S, O, rate, False)
            f, b = closed(ph, eng, wl, rate, S, False), closed(ph, eng, wl, rate, S, True)
            print(f"{model} {scheme} {preset} TP{tp} {S}/{O} at {load:.1f}: tokens {f[0]:,.0f} / {b[0]:,.0f} / "
                  f"{prompts:,.0f}; TTFT {f[1]:.1f} / {b[1]:.1f} / {s['ttft_mean'] * 1e3:.1f}; "
                  f"TPOT {f[2]:.2f} / {b[2]:.2f} / {s['tpot_mean'] * 1e3:.2f}", flush=True)


if __name__ == "__main__":
    main()
