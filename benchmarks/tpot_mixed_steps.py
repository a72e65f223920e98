"""Two readings of the aggregated TPOT rows of the silicon corpus (issue 22 item 3;
docs/validation.md "Decode steps: mixed steps, prompt batches and Hopper's MXFP4 experts").

Reads the corpus and the CSV ``planner validate CORPUS --csv OUT`` writes, and prints:

1. **the prefill a TPOT implies** (aggregated closed-loop rows of one replica): each client
   decodes O - 1 tokens per cycle TTFT + (O - 1) TPOT, so the decode batch is
   n = N (O - 1) TPOT / cycle (Little) and X TPOT prompts (X = N / cycle) arrive a step. Where
   prompts ride in the decode steps, TPOT = t0(n) + X TPOT d, d the time one prompt adds to
   the steps that carry it; the model's t0 (its decode step at n) leaves the measured
   d = (TPOT - t0(n)) / (X TPOT), printed over the model's own d = t(n, S) - t0(n) (its step
   with one whole prompt, the host floor included) by system x engine x model x weights x TP,
   medians over rows whose implied d is positive.
2. **gpt-oss-120b at <= 8 clients** (decode-bound): median measured - predicted TPOT by
   system x engine x TP, and that per MoE layer (36).

Usage: python benchmarks/tpot_mixed_steps.py [CORPUS] [VALIDATE_CSV]
(default ../shared/reference/measured-silicon.csv and /tmp/validate.csv).
"""

from __future__ import annotations

import statistics as st
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tpot_checks import REFERENCE, _rows  # noqa: E402

from planner.catalog.store import Catalog  # noqa: E402
from planner.fidelity.predict import _configs, row_assumptions  # noqa: E402
from planner.physics.options import PRESETS  # noqa: E402
from planner.physics.space import GpuTable  # noqa: E402
from planner.physics.step import step_physics, step_time  # noqa: E402


def implied_prompt_time(N: float, O: float, ttft: float, tpot: float, t0_of) -> tuple[float, float, float]:
    """(decode batch n, prompts a step, seconds one prompt adds to the steps) a closed loop of N
    clients implies: a cycle TTFT + (O - 1) TPOT, n = N (O - 1) TPOT / cycle (Little), X TPOT
    prompts a step (X = N / cycle) and d = (TPOT - t0(n)) / (X TPOT), ``t0_of`` the decode step
    at a batch."""
    cycle = ttft + (O - 1.0) * tpot
    n = N * (O - 1.0) * tpot / cycle
    per_step = N / cycle * tpot
    return n, per_step, (tpot - t0_of(n)) / per_step


def implied_prefill(xs: list[dict]) -> None:
    print("1. the prefill a TPOT implies: measured / model time one prompt adds to the steps (median), "
          "measured TPOT / model decode step")
    cat, o = Catalog.default(), PRESETS["realistic"]
    groups: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
    for x in xs:
        c = x["case"]
        if x["mode"] != "agg" or c.replicas != 1 or x["engine"] not in ("sglang", "trtllm", "vllm"):
            continue
        S, O = x["S"], x["O"]
        ph = step_physics(cat.models[c.model], GpuTable.build([cat.gpu(c.gpu)]),
                          _configs([c], [c.gpu], np.array([c.batch])), row_assumptions(o, c.engine))

        def step(n, c=0.0, ph=ph, S=S, O=O):
            return float(step_time(ph, np.array([n]), np.array([n * (S + O / 2.0)]), np.array([c]))[0])
        n, _, d = implied_prompt_time(x["n"], O, x["ttft"], x["tpot"], step)
        t0, t1 = step(n), step(n, float(S))
        if d > 0 and t1 > t0:
            groups[(x["system"], x["engine"], x["model"], x["r"]["precision"].split(";")[0], c.tp)].append(
                (d / (t1 - t0), x["tpot"] / t0))
    print(f"   {'system':9} {'engine':7} {'model':16} {'weights':9} {'TP':>3} {'rows':>5} {'d meas/model':>12} "
          f"{'TPOT/t0':>8}")
    for k in sorted(groups):
        v = groups[k]
        if len(v) >= 8:
            print(f"   {k[0]:9} {k[1]:7} {k[2]:16} {k[3]:9} {k[4]:3d} {len(v):5d} "
                  f"{st.median(a for a, _ in v):12.2f} {st.median(b for _, b in v):8.2f}")


def gpt_oss_low(xs: list[dict]) -> None:
    print("\n2. gpt-oss-120b at <= 8 clients: median measured - predicted TPOT (ms), and per MoE layer (us)")
    g: dict[tuple, list[float]] = defaultdict(list)
    for x in xs:
        if x["model"] == "gpt-oss-120b" and x["mode"] == "agg" and x["n"] / x["case"].replicas <= 8:
            g[(x["system"], x["engine"], x["case"].tp)].append(x["tpot"] - x["pred"])
    for k in sorted(g):
        v = g[k]
        print(f"   {k[0]:9} {k[1]:7} TP {k[2]}: {len(v):3d} rows, {st.median(v) * 1e3:+6.2f} ms, "
              f"{st.median(v) / 36 * 1e6:+5.0f} us a layer")


def main() -> None:
    corpus = sys.argv[1] if len(sys.argv) > 1 else str(REFERENCE / "measured-silicon.csv")
    xs = _rows(corpus, sys.argv[2] if len(sys.argv) > 2 else "/tmp/validate.csv")
    implied_prefill(xs)
    gpt_oss_low(xs)


if __name__ == "__main__":
    main()
