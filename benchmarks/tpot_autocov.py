"""The per-token mean TPOT from the autocovariance of step times (issue 25; docs/workloads.md
section 3, 'Which mean TPOT'): a lead for a closed form, checked on the simulator's own steps.

The decoders of a step are the requests whose prompt finished within their last O - 1 steps:
with arrivals at rate lam, n_s ~ lam sum_k P(O - 1 >= k) t_{s-k}. So the mean per token,
E[n t] / E[n], is

    tau_token = tau + sum_k P(O - 1 >= k) C_k / (E[O - 1] tau),

where tau is the mean step and C_k the steps' autocovariance at lag k. Steps that carry prefill
come in runs (a prefill busy period), so C_k > 0 and a token waits longer than a step lasts.
The script simulates rank 1's configuration of a trace instance at its load (Poisson, lengths
sampled from the trace, as ``replay_gap.py`` case 4), then prints the step mean, the
prediction from the simulated steps' autocovariance, and the simulated per-token mean.

    python benchmarks/tpot_autocov.py [--instance instances/trace_mooncake_synthetic.yaml] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import replay_gap as rg  # noqa: E402

from planner.simulate import simulate_config  # noqa: E402


def per_token_from_steps(dt: np.ndarray, decode_steps: np.ndarray) -> float:
    """tau + sum_k P(L >= k) C_k / (E[L] tau) over the steps ``dt`` (in order) and the requests'
    decode steps L = O - 1 (``decode_steps``)."""
    L = np.asarray(decode_steps, dtype=int)
    L = L[L > 0]
    tau = float(np.mean(dt))
    x = np.asarray(dt, dtype=float) - tau
    top = min(int(L.max()), x.size - 1)
    total = 0.0
    for k in range(1, top + 1):
        total += float(np.mean(L >= k)) * float(np.mean(x[k:] * x[:-k]))
    return tau + total / (float(L.mean()) * tau)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instance", default=str(ROOT / "instances" / "trace_mooncake_synthetic.yaml"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--requests", type=int, default=3000)
    args = ap.parse_args()
    _, _, slot, phys, eng, rate = rg.rank1(args.instance)
    s = rg._stream(str(slot.replay.requests.file), rate / float(phys.lanes[0]), None)
    r = simulate_config(phys, eng, 0, rg._arrivals("poisson", s, rate, 1.0, args.seed), rg._lengths("sampled", s.S),
                        rg._lengths("sampled", s.O), n_requests=args.requests, seed=args.seed, max_steps=2e7)
    split = rg.tpot_split(r)
    heavy = r.itl > 3.0 * np.median(r.itl)
    print(f"{Path(args.instance).name}, seed {args.seed}: {r.itl.size:,} steps; decoders a step {r.itl_weight.mean():.1f} "
          f"({r.itl_weight[heavy].mean():.1f} in the steps over 3x the median step, "
          f"{r.itl_weight[~heavy].mean():.1f} in the others)")
    print(f"TPOT ms: per step {split['tpot_step'] * 1e3:.1f}; per token from the autocovariance "
          f"{per_token_from_steps(r.itl, s.O - 1) * 1e3:.1f}; per token simulated {split['tpot_token'] * 1e3:.1f}; "
          f"per request simulated {r.summary['tpot_mean'] * 1e3:.1f}")


if __name__ == "__main__":
    main()
