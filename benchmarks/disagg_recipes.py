"""Disaggregated rows of the measured corpus: the worker-count rule held out, and where the
TTFT gap comes from (issue 22; docs/disaggregation.md section 8, docs/validation.md).

0. **The layout columns of rows without worker counts.** Each such row that names a repeat of
   its measurement stating its pools (``same_measurement_as``: the InferenceX DB dump lists
   the same run with its deployment) is compared with it, pool by pool: how often the two
   read the same attention TP / DP / MoE TP / EP. Where they mostly differ, the row's layout
   columns are not a reading of the deployment, and the rule takes the recipe's pools whole.
1. **The recipe rule, held out.** A disaggregated row that states no worker counts takes the
   pool sizes of the nearest stated point of its recipe family (``rows.pool_recipes``). On the
   rows that *do* state them, each is predicted three ways: with its own counts, with one
   worker of each pool (the rule before), and with the counts the shipped rule
   (``pool_recipes`` with ``exclude``) reads from the other rows of its family (every row at
   its own concurrency left out). Median |error| and signed error by metric, system, engine
   and model, on the rows predicted all three ways (it prints how many).
2. **Low concurrency (<= 8 clients).** Measured over predicted TTFT, disaggregated against
   aggregated rows of the same system, engine, model and prompt length: where the two ratios
   agree, the disaggregated gap is the prefill's, shared with the aggregated rows.
3. **Throughput against the pools' saturation.** X = N / (TTFT + (O - 1) TPOT) from each row's
   own measured TTFT and TPOT, over the model's prefill and decode pool saturation rates
   (P x ``prefill_saturation``, D x ``decode_saturation``) with the row's pools: a row
   measured with seconds of TTFT at X well below both saturations is a deployment that
   saturates below the model's rates.

4. **A fixed per-request TTFT term, refuted or not.** Could one constant per engine (a router
   hop, a prefill/decode handshake) explain the disaggregated rows at <= 8 clients? Fitted on a
   grid of 0-2,000 ms minimising the median |log(predicted + c) / measured| over those rows,
   in sample and leaving out each system (and each model) in turn: the constant per fold and
   the held-out median |error| against c = 0.
5. **The rule on the rows it serves, held out.** The results-export rows that state no worker
   counts but name a repeat of the same measurement that does (``same_measurement_as``): the
   shipped rule with each row's own concurrency left out, how often it recovers the repeat's
   pools exactly, and TTFT / TPOT median |error| with its pools, the true ones and 1 + 1, on
   the rows predicted all three ways.
6. **The decode admission's step in progress.** What the residual of the decode step in
   progress (``disagg.decode_admission``) adds to the disaggregated TTFT rows validate counts
   (p10 / median / p90, the closed loop re-solved without it) and their median |error| with
   and without it.

    python benchmarks/disagg_recipes.py [CORPUS] [--validate-csv VALIDATE_CSV]

``VALIDATE_CSV``: a ``planner validate CORPUS --csv`` output, for section 2 (skipped without).
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics as st
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.catalog.store import Catalog  # noqa: E402
from planner.fidelity.corpus import Corpus, load_corpus  # noqa: E402
from planner.fidelity.predict import predict, row_assumptions  # noqa: E402
from planner.fidelity.repeats import measurement_of  # noqa: E402
from planner.fidelity.rows import Case, engine_of, load_of, map_row, pool_recipes, recipe_family  # noqa: E402
from planner.physics import disagg  # noqa: E402
from planner.physics.load import engine, step_physics  # noqa: E402
from planner.physics.options import PRESETS  # noqa: E402
from planner.physics.space import Configs, GpuTable  # noqa: E402

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "measured-silicon.csv"
O = PRESETS["realistic"]


def _summary(label: str, errors: dict[tuple, list[float]]) -> None:
    print(f"\n{label}: n, median |error| %, median signed %")
    for key in sorted(errors, key=str):
        e = errors[key]
        print(f"  {' '.join(map(str, key)):<40} {len(e):>4} {st.median(map(abs, e)):>7.1f} {st.median(e):>+8.1f}")


def twins(rows: list[dict]) -> None:
    by_id = {r["silicon_id"]: r for r in rows}
    fields = ("tp", "attention_dp", "moe_tp", "moe_ep")
    same = {"prefill": 0, "decode": 0}
    n = 0
    for r in rows:
        if r.get("mode") != "disagg" or r["prefill_workers"].strip():
            continue
        for other in r.get("same_measurement_as", "").split():
            t = by_id.get(other)
            if t is None or not t["prefill_workers"].strip():
                continue
            n += 1
            for role in same:
                same[role] += all(r[f"{role}_{f}"] == t[f"{role}_{f}"] for f in fields)
    print(f"0. Rows without worker counts beside their stated repeat: {n} pairs; the same layout: "
          f"prefill {same['prefill']}, decode {same['decode']}")


def held_out(rows: list[dict], cat: Catalog) -> None:
    stand = measurement_of(rows)
    names: dict = {}
    family = recipe_family(cat, names)
    stated = [i for i, r in enumerate(rows) if stand[i] == i and r.get("mode") == "disagg"
              and r["prefill_workers"].strip() and r["decode_workers"].strip() and load_of(r)]
    ways: dict[str, list[Case]] = {"own counts": [], "1 + 1": [], "rule, own concurrency out": []}
    disagg = [j for j, o in enumerate(rows) if o.get("mode") == "disagg"]
    for i in stated:
        r = rows[i]
        own = map_row(i, r, cat, names)
        if isinstance(own, str):
            continue
        blank = dict(r, prefill_workers="", decode_workers="")
        one = map_row(i, blank, cat, names)
        # the shipped rule over every disaggregated row but this one (blanked: it asks), each
        # donor at its concurrency left out
        sub = [blank] + [rows[j] for j in disagg if j != i]
        pick = pool_recipes(sub, family, exclude=lambda a, b: load_of(sub[b]) == load_of(sub[a])).get(0)
        ruled = one if pick is None else map_row(i, blank, cat, names, (pick, sub[pick]))
        if isinstance(one, str) or isinstance(ruled, str):
            continue
        ways["own counts"].append(own)
        ways["1 + 1"].append(one)
        ways["rule, own concurrency out"].append(ruled)
    pred = {way: predict(cases, cat, O)[0] for way, cases in ways.items()}
    scored = np.all([np.isfinite(p) for p in pred.values()], axis=0)      # the same rows for each way
    print(f"1. The recipe rule held out: {len(ways['own counts'])} rows (TTFT and TPOT) that state their worker "
          f"counts, {int(scored.sum())} predicted all three ways (scored below)")
    for way, cases in ways.items():
        errors: dict[tuple, list[float]] = defaultdict(list)
        for c, p, ok in zip(cases, pred[way], scored):
            if not ok:
                continue
            r = rows[c.row]
            e = (p / float(r["value"]) - 1.0) * 100.0
            m = r["metric"].removesuffix("_ms_mean")
            for key in ((m,), (m, "system", c.gpu), (m, "engine", engine_of(r["framework"])[0]),
                        (m, "model", c.model)):
                errors[key].append(e)
        _summary(way, errors)


def low_concurrency(validate_csv: str, rows: list[dict]) -> None:
    ratios: dict[tuple, list[float]] = defaultdict(list)
    with open(validate_csv, newline="") as fh:
        for p in csv.DictReader(fh):
            if p["counted"] != "yes" or not p["predicted"] or p["metric"] != "ttft_ms_mean":
                continue
            r = rows[int(p["row"]) - 2]
            load = load_of(r)
            if load is None or load[0] != "clients" or load[1] > 8:
                continue
            mode = "disagg" if "disagg" in p["mode"] else "agg"
            ratios[(p["system"], p["engine"], p["model_id"], r["input_len"], mode)].append(
                float(p["measured"]) / float(p["predicted"]))
    print("\n2. TTFT at <= 8 clients, measured / predicted (median, rows): disaggregated beside aggregated")
    for key in sorted({k[:4] for k in ratios if k[4] == "disagg"}):
        d, a = ratios[key + ("disagg",)], ratios.get(key + ("agg",), [])
        agg = f"{st.median(a):6.2f} ({len(a)})" if a else "     -"
        print(f"  {' '.join(key):<45} disagg {st.median(d):6.2f} ({len(d)})   agg {agg}")


GRID_MS = tuple(range(0, 2001, 25))


def _fit(points: list[tuple[float, float]]) -> float:
    return min(GRID_MS, key=lambda c: (st.median(abs(math.log((p + c) / m)) for p, m in points), c))


def constant_term(validate_csv: str, rows: list[dict]) -> None:
    pts: dict[str, list[tuple[str, str, float, float]]] = defaultdict(list)
    with open(validate_csv, newline="") as fh:
        for p in csv.DictReader(fh):
            if (p["counted"] != "yes" or not p["predicted"] or p["metric"] != "ttft_ms_mean"
                    or "disagg" not in p["mode"]):
                continue
            load = load_of(rows[int(p["row"]) - 2])
            if load is not None and load[0] == "clients" and load[1] <= 8:
                pts[p["engine"]].append((p["system"], p["model_id"], float(p["predicted"]), float(p["measured"])))
    print("\n4. One TTFT constant per engine on the disaggregated rows at <= 8 clients (ms; held-out median "
          "|error| %, c = 0 beside)")
    for eng, v in sorted(pts.items()):
        print(f"  {eng}: {len(v)} rows, in sample c = {_fit([(p, m) for _, _, p, m in v])} ms")
        for kind, k in (("system", 0), ("model", 1)):
            for out in sorted({x[k] for x in v}):
                train = [(p, m) for *key, p, m in v if key[k] != out]
                test = [(p, m) for *key, p, m in v if key[k] == out]
                if not train:
                    continue
                c = _fit(train)
                err = st.median(abs((p + c) / m - 1.0) * 100.0 for p, m in test)
                base = st.median(abs(p / m - 1.0) * 100.0 for p, m in test)
                print(f"    {kind} {out} out ({len(test)} rows): c = {c} ms, held out {err:.1f} % (c = 0: {base:.1f} %)")


def _disagg_ttft(corpus: Corpus, also=lambda r: True):
    """The disaggregated TTFT measurements (``also`` of their rows) as validate maps them,
    twins as plain runs: (row, its case, how its pools were read)."""
    for m in corpus.mapped(lambda i, r: r.get("mode") == "disagg" and r["metric"] == "ttft_ms_mean" and also(r),
                           speculate=False):
        if m.expressed is not None:
            yield m.row, m.expressed, m.pools


def saturation(corpus: Corpus) -> None:
    rows, cat = corpus.rows, corpus.catalog
    tpot = {r["silicon_id"]: float(r["value"]) for r in rows if r.get("mode") == "disagg"
            and r["metric"] == "tpot_ms_mean"}
    out: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
    for r, c, pools in _disagg_ttft(corpus, lambda r: r["silicon_id"] in tpot):
        if c.pools is None or c.load is None:
            continue
        x = c.load[1] / (float(r["value"]) / 1e3 + (c.output_tokens - 1.0) * tpot[r["silicon_id"]] / 1e3)
        table = GpuTable.build([cat.gpu(c.gpu)])
        o = row_assumptions(O, c.engine)
        dec_c = Configs.single(0, c.scheme, c.kv, c.tp, c.pp, c.ep, 8192.0, c.input_tokens, c.output_tokens)
        pre_c = replace(dec_c, tp=np.array([c.pools.prefill.tp], float), ep=np.array([c.pools.prefill.ep], float))
        pre, dec = (step_physics(cat.models[c.model], table, k, o) for k in (pre_c, dec_c))
        ps = c.pools.prefill.workers * float(disagg.prefill_saturation(pre, engine(pre), c.input_tokens)[0])
        ds = c.pools.decode.workers * float(disagg.decode_saturation(dec, engine(dec), c.input_tokens,
                                                                     c.output_tokens)[0])
        if ps > 0 and ds > 0 and math.isfinite(x):
            out[(c.gpu, r["framework"].split()[0], str(pools), ">=64" if c.load[1] >= 64 else "<64")].append(
                (x / ps, x / ds))
    print("\n3. Measured throughput over the model's pool saturation (median, rows): prefill, decode")
    for key, v in sorted(out.items()):
        print(f"  {' '.join(key):<40} {len(v):>4} prefill {st.median(a for a, _ in v):5.2f} "
              f"decode {st.median(b for _, b in v):5.2f}")


def served_rows(rows: list[dict], cat: Catalog) -> None:
    names: dict = {}
    family = recipe_family(cat, names)
    by_id = {r["silicon_id"]: i for i, r in enumerate(rows)}
    truth: dict[int, int] = {}              # a row without worker counts -> its repeat stating them
    for i, r in enumerate(rows):
        if r.get("mode") != "disagg" or r["prefill_workers"].strip() or r["decode_workers"].strip():
            continue
        for other in r.get("same_measurement_as", "").split():
            j = by_id.get(other)
            if j is not None and rows[j]["prefill_workers"].strip() and rows[j]["decode_workers"].strip():
                truth[i] = j
                break
    # the shipped rule, each row's own concurrency left out (its repeat among them)
    picks = pool_recipes(rows, family, exclude=lambda i, j: load_of(rows[j]) == load_of(rows[i]))
    ways: dict[str, list[Case]] = {"true pools (the repeat's)": [], "the rule, own concurrency out": [],
                                   "1 + 1": []}
    exact = no_donor = 0
    for i, j in truth.items():
        k = picks.get(i)
        true, one = map_row(i, rows[i], cat, names, (j, rows[j])), map_row(i, rows[i], cat, names)
        ruled = one if k is None else map_row(i, rows[i], cat, names, (k, rows[k]))
        if isinstance(true, str) or isinstance(one, str) or isinstance(ruled, str):
            continue
        assert true.pools is not None and ruled.pools is not None
        exact += (ruled.pools.prefill, ruled.pools.decode) == (true.pools.prefill, true.pools.decode)
        no_donor += k is None
        for way, c in zip(ways, (true, ruled, one)):
            ways[way].append(c)
    pred = {way: predict(cases, cat, O)[0] for way, cases in ways.items()}
    scored = np.all([np.isfinite(p) for p in pred.values()], axis=0)      # the same rows for each way
    print(f"\n5. The rule on the rows it serves, held out: {len(ways['1 + 1'])} rows without worker counts whose "
          f"repeat (same_measurement_as) states them; the rule with each row's own concurrency left out recovers "
          f"the repeat's pools exactly in {exact} ({no_donor} without a donor: 1 + 1). Errors on the "
          f"{int(scored.sum())} rows predicted all three ways:")
    print("  pools                               metric    n  median |error| %  median signed %")
    for way, cases in ways.items():
        errors: dict[str, list[float]] = defaultdict(list)
        for c, p, ok in zip(cases, pred[way], scored):
            if ok:
                r = rows[c.row]
                errors[r["metric"].removesuffix("_ms_mean")].append((p / float(r["value"]) - 1.0) * 100.0)
        for m, e in sorted(errors.items(), reverse=True):
            print(f"  {way:<35} {m:<6} {len(e):>4} {st.median(map(abs, e)):>17.1f} {st.median(e):>+16.1f}")


def admission(corpus: Corpus) -> None:
    rows, cat = corpus.rows, corpus.catalog
    cases = [c for _, c, _ in _disagg_ttft(corpus)]
    with_step = predict(cases, cat, O)[0]
    shipped = disagg.decode_admission
    try:            # the admission without the decode step in progress: the KV-slot wait only
        disagg.decode_admission = lambda d, lanes, clients: d.kv_wait          # type: ignore[assignment]
        without = predict(cases, cat, O)[0]
    finally:
        disagg.decode_admission = shipped
    ok = np.isfinite(with_step) & np.isfinite(without)
    measured = np.array([float(rows[c.row]["value"]) for c in cases])[ok]
    added = (with_step - without)[ok]
    p10, p50, p90 = np.percentile(added, [10, 50, 90])
    err = [float(np.median(np.abs(x[ok] / measured - 1.0))) * 100.0 for x in (with_step, without)]
    print(f"\n6. The decode step in progress in the decode admission (``disagg.decode_admission``), on the "
          f"{int(ok.sum())} disaggregated TTFT rows validate counts: it adds {p10:.1f} / {p50:.1f} / {p90:.1f} ms "
          f"(p10 / median / p90) to the predicted TTFT (the closed loop re-solved without it); median |error| "
          f"{err[0]:.1f} % with it, {err[1]:.1f} % without")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus", nargs="?", default=str(CORPUS))
    ap.add_argument("--validate-csv")
    args = ap.parse_args()
    corpus = load_corpus(args.corpus)
    rows, cat = corpus.rows, corpus.catalog
    twins(rows)
    held_out(rows, cat)
    served_rows(rows, cat)
    if args.validate_csv:
        low_concurrency(args.validate_csv, rows)
        constant_term(args.validate_csv, rows)
    saturation(corpus)
    admission(corpus)


if __name__ == "__main__":
    main()
