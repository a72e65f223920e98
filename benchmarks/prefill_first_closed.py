"""A prefill-first engine's closed loop with uneven lengths (docs/load.md section 5, 'prefill
first'): Qwen3-32B FP8 (W8A8, FP8 KV) on 4 H100 (TP 4, batch 512), SGLang's profile, 64
clients out of step, prompts and outputs drawn uniformly from [0.8 L, L] with L = 1,024 / 128.
The steady state's closed form (``load_metrics``: the prompt batch of a prompt-only step is the
prompts that arrived during the step before, ``_prompt_batch``) beside the simulator's
prefill-first scheduler, two seeds of 5,000 requests: mean TTFT and TPOT, prompt steps per
decode step, mean prompt tokens a prompt step, and the mean seconds of each kind of step. The
steps are counted on the per-step reference of the simulator (tests/sim_reference.py, the same
runs as planner/simulate.py, which sums runs of decode steps in closed form instead of asking
for each); the clients' first requests are spread over one cycle as the simulator spreads them
(one prompt step of that estimate is counted with the run's).

    python benchmarks/prefill_first_closed.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from planner.catalog.store import Catalog
from planner.physics.load import Workload, engine, load_metrics, step_physics
from planner.physics.options import PRESETS
from planner.physics.space import Configs, GpuTable
from planner.physics.step import scalar_step_fn
from planner.simulate import Arrivals, Lengths

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from sim_reference import reference  # noqa: E402  (the per-step simulator: every step's time is asked for)

MODEL, GPU, TP, BATCH, S, O, CLIENTS, LOW = "qwen3-32b", "h100-sxm", 4, 512, 1024, 128, 64, 0.8
SEEDS = (1, 2)


def uniform(top: int) -> tuple[Lengths, float, float, float, float]:
    """Integers uniform on [round(LOW top), top]: the simulator's lengths, their mean, CV^2,
    and E[S^3] / E[S]^3, E[S^4] / E[S]^4 (the closed form's moments of the prompt's length)."""
    v = np.arange(int(round(LOW * top)), top + 1, dtype=float)
    m = float(v.mean())
    return Lengths(v.astype(int).tolist()), m, float(v.var()) / m**2, float((v**3).mean()) / m**3, \
        float((v**4).mean()) / m**4


def main() -> None:
    cat = Catalog.default()
    table = GpuTable.build([cat.gpus[GPU]])
    isl, s_mean, s_cv2, m3, m4 = uniform(S)
    osl, o_mean, o_cv2, _, _ = uniform(O)
    ph = step_physics(cat.model(MODEL), table, Configs.single(0, "w8a8-fp8", "fp8", TP, 1, 1, BATCH, S, O),
                      PRESETS["sglang"])
    eng = engine(ph)
    T, cap = int(eng.token_budget[0]), int(eng.max_seqs[0])
    wl = Workload(isl=s_mean, osl=o_mean, isl_cv2=s_cv2, osl_cv2=o_cv2, isl_m3=m3, isl_m4=m4)
    r = load_metrics(ph, eng, wl, clients=np.array([float(CLIENTS)]))
    q = float(r.prefill_step_fraction[0])
    print(f"{MODEL} W8A8 on {TP} {GPU}, batch {BATCH}, {CLIENTS} clients, lengths uniform on "
          f"[{LOW} L, L], L = {S} / {O}, SGLang (prefill first)")
    print(f"  closed form: TTFT mean {r.get('ttft', 'mean')[0] * 1e3:.1f} ms, TPOT mean "
          f"{r.get('tpot', 'mean')[0] * 1e3:.2f} ms; prompt steps per decode step {q:.3f}, "
          f"{r.chunk_tokens[0]:,.0f} prompt tokens a prompt step; decode step "
          f"{r.step_decode[0] * 1e3:.2f} ms")
    base = scalar_step_fn(ph, 0, T + cap + 1)
    for seed in SEEDS:
        prompt: list[tuple[float, float]] = []     # (tokens, seconds) per prompt-only step
        decode: list[float] = []                   # seconds per decode step

        def step(n, ctx, c=0, *rest, prompt=prompt, decode=decode):
            t = base(n, ctx, c, *rest)
            if c > 0:
                prompt.append((float(c), float(t)))
            elif n > 0:
                decode.append(float(t))
            return t
        s = reference(step, Arrivals("closed", clients=CLIENTS), isl, osl, token_budget=T, max_seqs=cap,
                     kv_pool_tokens=float(eng.kv_pool_tokens[0]), seed=seed, prefill_first=True,
                     serving_s=ph.o.serving_overhead_s).summary
        tokens, seconds = np.array(prompt).T
        print(f"  simulated, seed {seed}: TTFT mean {s['ttft_mean'] * 1e3:.1f} ms, TPOT mean "
              f"{s['tpot_mean'] * 1e3:.2f} ms; prompt steps per decode step {len(prompt) / len(decode):.3f}, "
              f"{tokens.mean():,.0f} prompt tokens a prompt step ({seconds.mean() * 1e3:.1f} ms, "
              f"{np.percentile(seconds, 10) * 1e3:.1f}-{np.percentile(seconds, 90) * 1e3:.1f} ms p10-p90); "
              f"decode step {np.mean(decode) * 1e3:.2f} ms", flush=True)


if __name__ == "__main__":
    main()
