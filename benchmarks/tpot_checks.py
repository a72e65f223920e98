"""Four checks of what the TPOT error of the silicon corpus follows (issue 22 item 3).

Reads the corpus and the CSV ``planner validate CORPUS --csv OUT`` writes (every prediction
beside its measurement) and prints, from measured columns only unless said otherwise:

1. **prefill share** (aggregated rows under a closed loop): a decode sequence waits while its
   replica prefills the prompts that arrive during its decode (SGLang runs them first,
   the others mix them into the steps as chunks), so TPOT = t_dec / (1 - u) with u the share
   of the replica's time spent prefilling. u is taken from the measurements: the run's
   throughput X = N / (TTFT + (O - 1) TPOT) per replica times one prompt's prefill, the
   series' TTFT at its fewest clients (<= 8) less the engine's serving path (its profile's
   ``serving_overhead_s``). Rows binned by u: the median measured / predicted TPOT beside
   the median 1 / (1 - u) the hypothesis gives (the model's own u is in its prediction).
2. **busiest expert-parallel rank at few tokens** (aggregated MoE rows, <= 16 clients): with
   EP > 1 the step waits for the rank whose experts the batch hits most; at one to a few
   tokens per step that rank reads up to ~1.7x the mean's routed experts (DeepSeek at EP4,
   one token: 8 draws over 4 ranks, E[max] ~ 3.4 of a mean 2). The term predicts EP rows
   slower than the same system, engine, model and TP without EP; printed: the median signed
   error with and without EP, pair by pair.
3. **series whose TPOT falls as the clients grow** (same system, engine and version, model,
   precision, layout and lengths): no step model has a TPOT falling by > 20 % when the
   clients double or more (the decode batch only grows); such series are printed as
   measurements to question, not to model.
4. **wide expert parallelism, disaggregated** (decode pools with attention DP >= 16): the
   decode batch per rank a run had, by Little's law on its measured TTFT and TPOT
   (n = N (O - 1) TPOT / (TTFT + (O - 1) TPOT) / ranks), beside measured / predicted TPOT.

Usage: python benchmarks/tpot_checks.py [CORPUS] [VALIDATE_CSV]
(default ../shared/reference/measured-silicon.csv and /tmp/validate.csv; write the second
with ``python -m planner validate CORPUS --csv /tmp/validate.csv``).
"""

from __future__ import annotations

import argparse
import csv
import statistics as st
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner.catalog.store import Catalog  # noqa: E402
from planner.fidelity.rows import engine_of, lengths_of, load_measurements, map_row  # noqa: E402
from planner.physics.options import engine_profile  # noqa: E402

REFERENCE = next((p for p in (ROOT.parent / "shared" / "reference", Path("/work/shared/reference")) if p.is_dir()),
                 ROOT.parent / "shared" / "reference")
SERIES = ("gpu", "framework", "model", "precision", "tp", "attention_tp", "attention_dp", "moe_ep", "gpu_count",
          "replicas", "input_len", "output_len", "length_distribution")


def _rows(corpus: str, predictions: str) -> list[dict]:
    """Each TPOT row of the corpus with its TTFT partner (same silicon_id) and predictions."""
    rows = load_measurements(corpus)
    pred = {(int(r["row"]), r["metric"]): r for r in csv.DictReader(open(predictions))}
    by_id: dict[str, dict] = defaultdict(dict)
    for i, r in enumerate(rows):
        by_id[r["silicon_id"]][r["metric"]] = (i, r)
    cat = Catalog.default()
    out = []
    for sid, metrics in by_id.items():
        if "tpot_ms_mean" not in metrics or "ttft_ms_mean" not in metrics:
            continue
        i, r = metrics["tpot_ms_mean"]
        j, _ = metrics["ttft_ms_mean"]
        p, q = pred.get((i + 2, "tpot_ms_mean")), pred.get((j + 2, "ttft_ms_mean"))
        if p is None or q is None or p["counted"] != "yes" or not p["predicted"] or not r["concurrency_total"]:
            continue
        lengths = lengths_of(r)
        case = map_row(i, r, cat, {})
        if isinstance(lengths, str) or isinstance(case, str):
            continue
        out.append(dict(r=r, case=case, n=float(r["concurrency_total"]), tpot=float(r["value"]) / 1e3,
                        ttft=float(q["measured"]) / 1e3, pred=float(p["predicted"]) / 1e3,
                        S=lengths[0], O=lengths[1], engine=engine_of(r["framework"])[0] or "other",
                        system=p["system"], model=p["model_id"], mode=p["mode"]))
    return out


def measured_shares(rows: list[dict]) -> list[tuple[dict, float]]:
    """(row, u) for the aggregated rows of a series with a run at <= 8 clients: u the share of
    a replica's time spent prefilling, from the measurements (check 1)."""
    series: dict[tuple, list[dict]] = defaultdict(list)
    for x in rows:
        if x["mode"] == "agg" and x["engine"] in ("sglang", "trtllm", "vllm"):
            series[tuple(x["r"][k] for k in SERIES)].append(x)
    out = []
    for xs in series.values():
        low = [x for x in xs if x["n"] <= 8]
        if not low:
            continue
        base = min(low, key=lambda x: x["n"])
        t_p = base["ttft"] - float(engine_profile(base["engine"])["serving_overhead_s"])   # type: ignore[arg-type]
        if t_p <= 0:
            continue
        for x in xs:
            X = x["n"] / (x["ttft"] + (x["O"] - 1.0) * x["tpot"]) / x["case"].replicas
            out.append((x, X * t_p))
    return out


def prefill_share(rows: list[dict]) -> None:
    bins: dict[str, list[tuple[float, float]]] = defaultdict(list)
    by_engine: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for x, u in measured_shares(rows):
        if u >= 0.98:
            continue
        b = "u < 0.1" if u < 0.1 else "0.1-0.3" if u < 0.3 else "0.3-0.5" if u < 0.5 else "0.5-0.7" \
            if u < 0.7 else ">= 0.7"
        bins[b].append((x["tpot"] / x["pred"], 1.0 / (1.0 - u)))
        by_engine[(x["engine"], b)].append((x["tpot"] / x["pred"], 1.0 / (1.0 - u)))
    print("1. prefill share u (measured): measured / predicted TPOT against 1 / (1 - u)")
    print(f"   {'u':>8} {'rows':>5} {'meas/pred':>10} {'1/(1-u)':>8}")
    for b in ("u < 0.1", "0.1-0.3", "0.3-0.5", "0.5-0.7", ">= 0.7"):
        v = bins.get(b, [])
        if v:
            print(f"   {b:>8} {len(v):5d} {st.median(a for a, _ in v):10.2f} {st.median(c for _, c in v):8.2f}")
    print("   by engine:")
    for (eng, b), v in sorted(by_engine.items()):
        print(f"   {eng:>7} {b:>8} {len(v):5d} {st.median(a for a, _ in v):10.2f} {st.median(c for _, c in v):8.2f}")


def busiest_rank(rows: list[dict]) -> None:
    moe = ("deepseek-r1", "deepseek-v3", "deepseek-v3.1", "qwen3-235b-a22b", "gpt-oss-120b")
    cells: dict[tuple, dict[bool, list[float]]] = defaultdict(lambda: {True: [], False: []})
    for x in rows:
        if x["mode"] == "agg" and x["model"] in moe and x["n"] <= 16 and int(x["case"].tp) > 1:
            c = x["case"]
            cells[(x["system"], x["engine"], x["model"], int(c.tp))][c.ep > 1].append((x["pred"] / x["tpot"] - 1) * 100)
    print("\n2. busiest EP rank at <= 16 clients: median signed TPOT error (%), EP > 1 vs EP 1, same TP")
    diffs = []
    for k, v in sorted(cells.items()):
        if v[True] and v[False]:
            a, b = st.median(v[True]), st.median(v[False])
            diffs.append(a - b)
            print(f"   {' '.join(map(str, k)):45s} EP: {a:+6.1f} ({len(v[True])})  no EP: {b:+6.1f} ({len(v[False])})")
    if diffs:
        print(f"   median of (EP - no EP) over {len(diffs)} pairs: {st.median(diffs):+.1f} points "
              "(the term would make it more negative by the routed share's excess)")


def falling(rows: list[dict]) -> None:
    series: dict[tuple, list[dict]] = defaultdict(list)
    for x in rows:
        if x["mode"] == "agg":
            series[tuple(x["r"][k] for k in SERIES)].append(x)
    print("\n3. series whose measured TPOT falls > 20 % while the clients at least double")
    for k, xs in sorted(series.items()):
        xs = sorted(xs, key=lambda x: x["n"])
        bad = [(a, b) for a in xs for b in xs if b["n"] >= 2 * a["n"] and b["tpot"] < 0.8 * a["tpot"]]
        if bad:
            pts = ", ".join(f"{x['n']:.0f}: {x['tpot'] * 1e3:.1f}" for x in xs)
            print(f"   {xs[0]['system']} {xs[0]['engine']} {xs[0]['r']['framework'][-22:]} {xs[0]['model']} "
                  f"{xs[0]['r']['precision'][:9]} TP{k[4]} {k[10]}/{k[11]}: clients: TPOT ms = {pts}")


def wide_ep(rows: list[dict]) -> None:
    print("\n4. disaggregated decode pools with attention DP >= 16: the decode batch per rank by Little's law")
    print(f"   {'system engine model':32s} {'N':>6} {'ranks':>5} {'n/rank':>7} {'TPOT ms':>8} {'model':>6} {'meas/pred':>9}")
    for x in sorted(rows, key=lambda x: (x["system"], x["engine"], x["n"])):
        r = x["r"]
        d = int(r["decode_attention_dp"] or 1) * int(r["decode_workers"] or 0)
        if not x["mode"].startswith("disagg") or int(r["decode_attention_dp"] or 1) < 16 or d == 0:
            continue
        n = x["n"] * (x["O"] - 1.0) * x["tpot"] / (x["ttft"] + (x["O"] - 1.0) * x["tpot"]) / d
        print(f"   {x['system'] + ' ' + x['engine'] + ' ' + x['model']:32s} {x['n']:6.0f} {d:5d} {n:7.1f} "
              f"{x['tpot'] * 1e3:8.1f} {x['pred'] * 1e3:6.1f} {x['tpot'] / x['pred']:9.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="?", default=str(REFERENCE / "measured-silicon.csv"))
    ap.add_argument("predictions", nargs="?", default="/tmp/validate.csv")
    a = ap.parse_args()
    rows = _rows(a.corpus, a.predictions)
    prefill_share(rows)
    busiest_rank(rows)
    falling(rows)
    wide_ep(rows)


if __name__ == "__main__":
    main()
