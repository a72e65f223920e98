"""Does engine admission explain the TTFT error at high concurrency (issue 22 item 2)?

    python benchmarks/admission_check.py [CSV]

Default: ../shared/reference/measured-silicon.csv. Two checks on the aggregated rows that
measure both TTFT and TPOT of one closed-loop run of N clients (each counted measurement once):

1. **A cap on running requests.** An engine that runs at most L requests at once (SGLang
   --max-running-requests, TensorRT-LLM max_batch_size, vLLM max_num_seqs, or a KV pool that
   admits no more) keeps N - L of the N clients waiting in its queue. Every client spends
   N / X per request (X requests/s, Little's law), of which (N - L) / X waiting: the wait is
   1 - L/N of the measured end-to-end time (TTFT + (O - 1) x TPOT, O the mean output
   tokens). The validator's TTFT has no such wait where its engine admits all N, so the
   share f = (measured TTFT - predicted TTFT) / measured end-to-end is about 1 - L/N where a
   cap binds, and about 0 where none does; N (1 - f) is the cap the row implies (about N:
   no cap). Printed per engine and band of N: rows, median signed TTFT error, median f and
   the implied cap.
2. **KV allocated as tokens arrive.** The load model caps a lane's running sequences at the
   KV pool over S + O tokens (KV reserved at admission, physics/load.py ``engine``). Engines
   that page KV in as tokens arrive hold S + O/2 on average; the validation is run again
   with that cap (the validator's scheduler replaced, nothing else) and the TTFT and TPOT
   median |error| printed beside today's, per engine, at N < 128 and N >= 128.

The validation is `planner validate CSV` (realistic preset, no calibration)."""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner.fidelity import predict as P  # noqa: E402
from planner.fidelity import validate as V  # noqa: E402
from planner.physics.load import Engine  # noqa: E402

REFERENCE = next((p for p in (ROOT.parent / "shared" / "reference", Path("/work/shared/reference")) if p.is_dir()),
                 ROOT.parent / "shared" / "reference")
BANDS = ((1, 16), (16, 64), (64, 128), (128, 256), (256, 512), (512, 1_000_000))
ENGINES = ("sglang", "trtllm", "vllm")


def clients(record: dict) -> float:
    m = re.match(r"[\d.]+", str(record["load"]))
    return float(m.group()) if m else float("nan")


def paired(records: list[dict], corpus: list[dict]) -> Iterator[tuple[dict, dict, dict]]:
    """(TTFT record, TPOT record, corpus row) per aggregated run with both metrics predicted,
    each counted measurement once."""
    by_run: dict[str, dict[str, tuple[dict, dict]]] = defaultdict(dict)
    for r in records:
        if r["mode"] == "agg" and r["counted"] == "yes" and r["predicted"] != "":
            src = corpus[int(r["row"]) - 2]
            by_run[src["silicon_id"]][r["metric"]] = (r, src)
    for metrics in by_run.values():
        if not {"ttft_ms_mean", "tpot_ms_mean"} - set(metrics):
            (t, src), (p, _) = metrics["ttft_ms_mean"], metrics["tpot_ms_mean"]
            yield t, p, src


def runs(records: list[dict], corpus: list[dict]) -> list[tuple[str, float, float, float, float]]:
    """(engine, N, f, signed TTFT error %, measured - predicted TTFT ms) per aggregated run with both metrics predicted."""
    out = []
    for t, p, src in paired(records, corpus):
        osl = float(src["output_len"]) * (0.9 if src["length_distribution"].startswith("uniform") else 1.0)
        e2e = float(t["measured"]) + (osl - 1.0) * float(p["measured"])
        f = (float(t["measured"]) - float(t["predicted"])) / e2e
        out.append((t["engine"], clients(t), f, float(t["signed_pct_error"]),
                    float(t["measured"]) - float(t["predicted"])))
    return out


def admission_table(rs: list[tuple[str, float, float, float, float]]) -> None:
    print("1. aggregated closed-loop runs: TTFT excess over the model as a share f of the measured end-to-end "
          "time; a cap of L running requests makes f about 1 - L/N")
    print(f"{'engine':8} {'N':>11} {'runs':>5} {'signed TTFT %':>14} {'f median':>9} {'f p25..p75':>15} "
          f"{'implied cap N(1-f)':>19} {'meas - pred TTFT ms':>20}")
    for eng in ENGINES:
        for lo, hi in BANDS:
            x = [r for r in rs if r[0] == eng and lo <= r[1] < hi]
            if not x:
                continue
            n, f, s, d = (np.array([r[k] for r in x]) for k in (1, 2, 3, 4))
            band = f"{lo}-{hi - 1}" if hi < 1_000_000 else f">={lo}"
            print(f"{eng:8} {band:>11} {len(x):5d} {np.median(s):+14.1f} {np.median(f):+9.3f} "
                  f"{np.percentile(f, 25):+7.3f}..{np.percentile(f, 75):+.3f} {np.median(n * (1 - f)):19.0f} "
                  f"{np.median(d):+20,.0f}")


def medians(records: list[dict]) -> dict[tuple[str, str, str], tuple[int, float]]:
    out: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for r in records:
        if r["counted"] != "yes" or r["abs_pct_error"] == "" or r["metric"] not in ("ttft_ms_mean", "tpot_ms_mean"):
            continue
        band = "N<128" if clients(r) < 128 else "N>=128"
        for key in ((r["metric"], "all", "all"), (r["metric"], r["engine"], band)):
            out[key].append(float(r["abs_pct_error"]))
    return {k: (len(v), float(np.median(v))) for k, v in out.items()}


def kv_as_tokens_arrive(phys, token_budget=None, max_seqs=None) -> Engine:
    """The validator's scheduler with each lane's running sequences capped at the KV pool over
    S + O/2 tokens (half the output's KV held on average) instead of S + O."""
    eng = TODAY(phys, token_budget, max_seqs)
    S, O = phys.configs.input_tokens.astype(float), phys.configs.output_tokens.astype(float)
    held = np.where(phys.max_batch > 0, np.floor(phys.kv_pool_tokens / (S + O / 2.0)), 0.0)
    cap = phys.configs.batch if max_seqs is None else np.broadcast_to(np.asarray(max_seqs, float), held.shape)
    return Engine(token_budget=eng.token_budget, max_seqs=np.minimum(cap, held), kv_pool_tokens=eng.kv_pool_tokens)


TODAY = P.scheduler


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", nargs="?", default=str(REFERENCE / "measured-silicon.csv"))
    path = ap.parse_args().csv
    with open(path, newline="", encoding="utf-8") as fh:
        corpus = list(csv.DictReader(fh))
    today = V.validate_file(path).records()
    admission_table(runs(today, corpus))
    P.scheduler = kv_as_tokens_arrive
    try:
        arrive = V.validate_file(path).records()
    finally:
        P.scheduler = TODAY
    a, b = medians(today), medians(arrive)
    print("\n2. median |error| %, KV reserved at admission (today) vs allocated as tokens arrive (S + O/2 held)")
    print(f"{'metric':13} {'engine':8} {'band':7} {'rows':>5} {'today':>7} {'as tokens arrive':>17}")
    for key in sorted(a):
        print(f"{key[0]:13} {key[1]:8} {key[2]:7} {a[key][0]:5d} {a[key][1]:7.1f} {b.get(key, (0, float('nan')))[1]:17.1f}")


if __name__ == "__main__":
    main()
