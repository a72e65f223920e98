"""A prefill-first engine's prompt steps (docs/load.md section 5, 'prefill first'): the closed
form's mean prompt tokens a prompt-only step (``_prompt_batch``: the arrivals of the step
before) against the simulator's prefill-first scheduler, with mean and p99 TTFT and mean TPOT,
open loop, Poisson arrivals at 0.2 / 0.5 / 0.8 of saturation, 3,000 requests, seed 1.

    python benchmarks/prefill_first_batch.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.catalog.store import Catalog
from planner.physics.load import Workload, engine, load_metrics, step_physics
from planner.physics.options import PRESETS
from planner.physics.space import Configs, GpuTable
from planner.physics.step import scalar_step_fn
from planner.simulate import Arrivals, Lengths, simulate

CASES = [("llama-3.1-8b", "h100-sxm", 1, 64, 293, 157), ("llama-3.1-70b", "h100-sxm", 4, 64, 1000, 300)]


def simulated(ph, eng, S: int, O: int, rate: float, prefill_first: bool) -> tuple[dict, float]:
    """The simulator's summary of configuration 0 at ``rate`` (Poisson, fixed lengths, 3,000
    requests, seed 1) and the mean prompt tokens of its prompt-carrying steps."""
    T, cap = int(eng.token_budget[0]), int(eng.max_seqs[0])
    base = scalar_step_fn(ph, 0, T + cap + 1)
    prompts: list[float] = []

    def step(n, ctx, c=0, *rest):
        if c > 0:
            prompts.append(c)
        return base(n, ctx, c, *rest)
    s = simulate(step, Arrivals("poisson", rate=rate), Lengths(S), Lengths(O), token_budget=T, max_seqs=cap,
                 kv_pool_tokens=float(eng.kv_pool_tokens[0]), n_requests=3000, seed=1, prefill_first=prefill_first,
                 serving_s=ph.o.serving_overhead_s).summary
    return s, float(np.mean(prompts))


def case(model: str, gpu: str, scheme: str, tp: int, batch: int, S: int, O: int, preset: str):
    """(step physics, engine, workload, saturation rate) of one configuration under ``preset``."""
    cat = Catalog.default()
    ph = step_physics(cat.model(model), GpuTable.build([cat.gpus[gpu]]),
                      Configs.single(0, scheme, "bf16", tp, 1, 1, batch, S, O), PRESETS[preset])
    eng = engine(ph)
    wl = Workload(isl=float(S), osl=float(O))
    return ph, eng, wl, float(load_metrics(ph, eng, wl, rate=np.array([0.0])).saturation_rate[0])


def main() -> None:
    for model, gpu, tp, batch, S, O in CASES:
        ph, eng, wl, sat = case(model, gpu, "w16a16", tp, batch, S, O, "sglang")
        for load in (0.2, 0.5, 0.8):
            rate = load * sat
            s, prompts = simulated(ph, eng, S, O, rate, True)
            r = load_metrics(ph, eng, wl, rate=np.array([rate]))
            print(f"{model} {gpu} TP{tp} {S}/{O} at {load:.1f} of saturation: prompt tokens a prompt step "
                  f"{r.chunk_tokens[0]:,.0f} (simulated {prompts:,.0f}); TTFT mean "
                  f"{r.get('ttft', 'mean')[0] * 1e3:.1f} ms ({s['ttft_mean'] * 1e3:.1f}), p99 "
                  f"{r.get('ttft', 'p99')[0] * 1e3:.1f} ms ({s['ttft_p99'] * 1e3:.1f}); TPOT mean "
                  f"{r.get('tpot', 'mean')[0] * 1e3:.2f} ms ({s['tpot_mean'] * 1e3:.2f})", flush=True)


if __name__ == "__main__":
    main()
