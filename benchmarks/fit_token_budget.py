"""Which prefill token budget per step do the measured runs of each engine behave as if they had
(issue 22 item 2: the chunked-prefill budget)? Fitted per engine, cross-validated leaving out
whole systems and whole models.

    python benchmarks/fit_token_budget.py [CSV]        # ~5 validations of the corpus, minutes

Default: ../shared/reference/measured-silicon.csv. The load model prefills a step's prompt
tokens up to a budget T (physics/load.py ``engine``: the profile's max_batched_tokens, 8,192 where
it states none: vLLM's max_num_batched_tokens, TensorRT-LLM's max_num_tokens, SGLang's
chunked_prefill_size). The corpus does not record it. `planner validate CSV` is run once per
budget of BUDGETS with every engine's scheduler given that budget (nothing else changed: the
validator's scheduler replaced, as benchmarks/admission_check.py does), which gives every
counted measurement's TTFT and TPOT error at each budget. A row depends only on its own
engine's budget, so each engine's is chosen separately: the budget of the grid minimising the
mean |log(predicted / measured)| of the engine's TTFT and TPOT rows. Then, for each system and
each model, the budgets are fitted without its rows and its rows predicted with them (median
|error| of TTFT and TPOT on it, and the budgets chosen). The grid's ends are the engines'
configurable range that the benchmarks' recipes use (1,024 to 16,384 tokens).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner.fidelity import predict as P  # noqa: E402
from planner.fidelity import validate as V  # noqa: E402

REFERENCE = next((p for p in (ROOT.parent / "shared" / "reference", Path("/work/shared/reference")) if p.is_dir()),
                 ROOT.parent / "shared" / "reference")
BUDGETS = (1024, 2048, 4096, 8192, 16384)
ENGINES = ("sglang", "trtllm", "vllm")
METRICS = ("ttft_ms_mean", "tpot_ms_mean")
TODAY = P.scheduler


def with_budget(budget: int):
    def scheduler(phys, token_budget=None, max_seqs=None):
        return TODAY(phys, budget, max_seqs)
    return scheduler


def errors(path: str) -> tuple[list[tuple[str, str, str, str]], dict[int, np.ndarray]]:
    """The rows counted and predicted at every budget (engine, metric, system, model) and their
    log(predicted / measured) per budget."""
    per: dict[int, dict[str, tuple[tuple[str, str, str, str], float]]] = {}
    for b in BUDGETS:
        P.scheduler = with_budget(b)
        try:
            recs = V.validate_file(path).records()
        finally:
            P.scheduler = TODAY
        per[b] = {str(r["row"]): ((str(r["engine"]), str(r["metric"]), str(r["system"]), str(r["model_id"])),
                                  float(np.log(float(r["predicted"]) / float(r["measured"]))))
                  for r in recs if r["counted"] == "yes" and r["metric"] in METRICS
                  and r["predicted"] not in ("", None) and np.isfinite(float(r["predicted"])) and float(r["predicted"]) > 0}
    common = sorted(set.intersection(*(set(v) for v in per.values())), key=int)
    keys = [per[BUDGETS[0]][r][0] for r in common]
    return keys, {b: np.array([per[b][r][1] for r in common]) for b in BUDGETS}


def fit(keys, err: dict[int, np.ndarray], sel: np.ndarray) -> dict[str, int]:
    eng = np.array([k[0] for k in keys])
    best = {}
    for e in ENGINES:
        m = sel & (eng == e)
        if not m.any():
            best[e] = 8192
            continue
        best[e] = min(BUDGETS, key=lambda b: float(np.mean(np.abs(err[b][m]))))
    return best


def medians(keys, err, budgets: dict[str, int], sel: np.ndarray) -> dict[str, float]:
    eng = np.array([k[0] for k in keys])
    metric = np.array([k[1] for k in keys])
    e = np.zeros(len(keys))
    for name, b in budgets.items():
        e = np.where(eng == name, err[b], e)
    pct = np.abs(np.exp(e) - 1.0) * 100.0
    return {m: float(np.median(pct[sel & (metric == m)])) if (sel & (metric == m)).any() else float("nan")
            for m in METRICS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", nargs="?", default=str(REFERENCE / "measured-silicon.csv"))
    path = ap.parse_args().csv
    keys, err = errors(path)
    everything = np.ones(len(keys), bool)
    today = {e: 8192 for e in ENGINES}
    fitted = fit(keys, err, everything)
    print(f"{len(keys)} counted TTFT and TPOT rows; mean |log error| per engine and budget:")
    eng = np.array([k[0] for k in keys])
    print(f"{'engine':8}" + "".join(f"{b:>9}" for b in BUDGETS))
    for e in ENGINES:
        print(f"{e:8}" + "".join(f"{np.mean(np.abs(err[b][eng == e])):9.3f}" for b in BUDGETS))
    a, f = medians(keys, err, today, everything), medians(keys, err, fitted, everything)
    print("fitted on every row: " + ", ".join(f"{e} {b}" for e, b in fitted.items())
          + f"; median |error| TTFT {a['ttft_ms_mean']:.1f} -> {f['ttft_ms_mean']:.1f} %, "
          f"TPOT {a['tpot_ms_mean']:.1f} -> {f['tpot_ms_mean']:.1f} % (8,192 everywhere -> fitted)")
    by_engine = defaultdict(dict)
    for e in ENGINES:
        m = eng == e
        by_engine[e] = (medians(keys, err, today, m), medians(keys, err, fitted, m))
        print(f"  {e:8} TTFT {by_engine[e][0]['ttft_ms_mean']:.1f} -> {by_engine[e][1]['ttft_ms_mean']:.1f} %, "
              f"TPOT {by_engine[e][0]['tpot_ms_mean']:.1f} -> {by_engine[e][1]['tpot_ms_mean']:.1f} %")
    for name, col in (("system", 2), ("model", 3)):
        groups = np.array([k[col] for k in keys])
        print(f"leave one {name} out (fitted without it; on it: median |error| at 8,192 -> held-out fit):")
        for g in sorted(set(groups)):
            held = groups == g
            b = fit(keys, err, ~held)
            a, h = medians(keys, err, today, held), medians(keys, err, b, held)
            print(f"  {g:18} n={int(held.sum()):5d}  TTFT {a['ttft_ms_mean']:5.1f} -> {h['ttft_ms_mean']:5.1f} %  "
                  f"TPOT {a['tpot_ms_mean']:5.1f} -> {h['tpot_ms_mean']:5.1f} %  ("
                  + ", ".join(f"{e} {v}" for e, v in b.items()) + ")")


if __name__ == "__main__":
    main()
