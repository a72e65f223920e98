"""Where the silicon corpus's TPOT error lies, and the candidate causes checked against the
rows (issue 22 item 3; docs/validation.md "Decode steps: where the TPOT error lies").

Reads the corpus and the CSV ``planner validate CORPUS --csv OUT`` writes, and prints:

1. **groups**: the counted TPOT rows under load by system x engine x model x weights x KV dtype
   (as validate reads them) x clients per attention group, with n, median |error| and
   median signed error (predicted / measured - 1); the groups that carry the error first.
2. **speculative twins**: configurations InferenceX measured twice on one day (same
   deployment, lengths, clients, image), one measurement the DB dump's: the ratio of the two
   TPOTs and which one the dump's is; the DeepSeek rows by provenance (the dump's plain runs,
   the twins' MTP runs, and export rows the dump does not hold: a mixture).
3. **FP8 KV cache** (the lead "decode on an FP8 cache is predicted too fast"): TensorRT-LLM's
   aggregated rows by KV dtype and by the KV term's share of the model's step (at the row's
   clients per attention group), and a multiplier x on the FP8 KV term fitted in its
   separable approximation (TPOT x (1 + (x - 1) share)) with leave-one-system-out and
   leave-one-model-out cross-validation.
4. **NVFP4 weight reads**: the same system, engine, model and clients with NVFP4 or FP8
   weights; then ``fp4_dense_read_efficiency`` chosen on a grid through the whole model
   (``predict`` with the value as a fitted one) on the plain NVFP4 TPOT rows (not the export
   rows of DeepSeek that may be MTP runs, section 2), minimising the median |log(predicted /
   measured)|, in sample and leaving out each system, model and engine in turn: fitted on the
   dense models' rows, the MoE models' rows held out by kind.
5. **attention DP**: ``attention_dp_layer_overhead_s`` per engine on the plain TPOT rows whose
   (decode) attention is data-parallel, through the whole model, leaving out each system and
   model.
6. **TensorRT-LLM's MoE rows**: (measured - predicted) TPOT per MoE layer by system, model,
   weights and layout, and ``moe_layer_overhead_s`` fitted on its plain MoE rows, held out by
   system and model.

Usage: python benchmarks/tpot_groups.py [CORPUS] [VALIDATE_CSV]
(default ../shared/reference/measured-silicon.csv and /tmp/validate.csv; write the second with
``python -m planner validate CORPUS --csv /tmp/validate.csv``).
"""

from __future__ import annotations

import csv
import statistics as st
import sys
from collections import defaultdict
from math import exp, log
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tpot_checks import REFERENCE  # noqa: E402

from planner.catalog.store import Catalog  # noqa: E402
from planner.fidelity.corpus import load_corpus  # noqa: E402
from planner.fidelity.predict import _configs, _groups, predict, row_assumptions  # noqa: E402
from planner.fidelity.rows import load_measurements  # noqa: E402
from planner.physics.options import PRESETS  # noqa: E402
from planner.physics.space import GpuTable  # noqa: E402
from planner.physics.step import step_physics, step_terms  # noqa: E402
from planner.physics.terms import Arch  # noqa: E402

GRID = tuple(round(0.4 + 0.05 * k, 2) for k in range(13))      # 0.40 ... 1.00
X_GRID = tuple(round(1.0 + 0.1 * k, 1) for k in range(21))       # FP8 KV multiplier 1.0 ... 3.0


def _band(n: float) -> str:
    return "1-4" if n <= 4 else "5-32" if n <= 32 else "33-128" if n <= 128 else ">128"


def _in_dump(r: dict) -> bool:
    """The row is the InferenceX DB dump's, or names one of its measurements."""
    return r["provenance"].startswith("InferenceX DB") or any(
        not s.startswith("20") for s in r["same_measurement_as"].split())


def load(corpus: str, predictions: str) -> list[dict]:
    """Every counted TPOT row under load with its case (as validate maps it) and prediction."""
    pred = {int(r["row"]) - 2: r for r in csv.DictReader(open(predictions))}

    def counted_tpot(i: int, r: dict) -> bool:
        p = pred.get(i)
        return p is not None and p["metric"] == "tpot_ms_mean" and p["counted"] == "yes" and bool(p["predicted"])
    out = []
    for m in load_corpus(corpus).mapped(counted_tpot):
        case, i, r, p = m.expressed, m.i, m.row, pred[m.i]
        if case is None:
            continue
        dec = case.pools.decode if case.pools is not None else case
        lanes = max(dec.ep // dec.tp, 1)
        workers = case.pools.decode.workers if case.pools is not None else case.replicas
        deepseek = r["model"].startswith(("DeepSeek-R1", "DeepSeek-V3"))
        kind = ("MTP twin" if m.twin else "DB dump (plain)" if deepseek and _in_dump(r)
                else "export, not in the dump" if deepseek and r["provenance"].startswith("InferenceX") else "")
        out.append(dict(i=i, r=r, case=case, p=p,
                        measured=float(p["measured"]), predicted=float(p["predicted"]),
                        signed=float(p["signed_pct_error"]), system=p["system"], engine=p["engine"],
                        model=p["model_id"], per_lane=float(r["concurrency_total"] or 0) / workers / lanes,
                        deepseek_kind=kind, plain=kind != "export, not in the dump" and not m.twin))
    return out


def _line(label: str, errs: list[float], width: int = 62) -> str:
    return (f"  {label:{width}s} n={len(errs):4d}  median |error| {st.median(abs(e) for e in errs):5.1f} %"
            f"  signed {st.median(errs):+6.1f} %")


def groups(xs: list[dict]) -> None:
    print("1. TPOT under load by system x engine x model x weights x KV x clients per attention group "
          "(groups of >= 5 rows, largest |error| x n first)")
    g: dict[tuple, list[float]] = defaultdict(list)
    for x in xs:
        c = x["case"]
        g[(x["system"], x["engine"], x["model"], c.scheme, c.kv, _band(x["per_lane"]))].append(x["signed"])
    ranked = sorted((k for k in g if len(g[k]) >= 5), key=lambda k: -len(g[k]) * st.median(abs(e) for e in g[k]))
    for k in ranked[:30]:
        print(_line(" ".join(k), g[k]))


def twins(corpus: str, xs: list[dict]) -> None:
    print("\n2. Speculative twins (InferenceX configurations measured twice on one day, one the DB dump's)")
    rows = load_measurements(corpus)
    keys = ("gpu", "framework", "image", "precision", "attention_tp", "attention_dp", "moe_ep", "input_len",
            "output_len", "concurrency_total", "mode", "prefill_tp", "decode_tp", "decode_attention_dp")
    same: dict[tuple, dict[float, bool]] = defaultdict(dict)
    for r in rows:
        if r["metric"] == "tpot_ms_mean" and r["provenance"].startswith("InferenceX"):
            v = round(float(r["value"]), 3)
            d = same[tuple(r[k] for k in keys) + (r["measured"][:10],)]
            d[v] = d.get(v, False) or _in_dump(r)
    pairs = [d for d in same.values() if len(d) == 2 and any(d.values())]
    dump_slower = sum(1 for d in pairs if d[max(d)] and not d[min(d)])
    ratios = [min(d) / max(d) for d in pairs]
    print(f"  {len(pairs)} configurations with two TPOTs, one the dump's: the dump's is the slower in "
          f"{dump_slower}; faster / slower median {st.median(ratios):.2f} "
          f"(p10 {np.percentile(ratios, 10):.2f}, p90 {np.percentile(ratios, 90):.2f})")
    g: dict[tuple, list[float]] = defaultdict(list)
    for x in xs:
        if x["deepseek_kind"]:
            g[(x["deepseek_kind"], x["engine"])].append(x["signed"])
    for k in sorted(g):
        print(_line("DeepSeek " + " / ".join(k), g[k]))


def _kv_shares(xs: list[dict]) -> None:
    """The KV term's share of the model's step at each aggregated row's clients per attention
    group (capped by the KV cache), context = prompt + half the output a sequence."""
    cat, o = Catalog.default(), PRESETS["realistic"]
    agg = [x for x in xs if x["case"].pools is None]
    cases = [x["case"] for x in agg]
    gpu_ids = sorted({c.gpu for c in cases})
    table = GpuTable.build([cat.gpu(g) for g in gpu_ids])
    for _, idx in _groups(cases, cat).items():
        cs = [cases[i] for i in idx]
        phys = step_physics(cat.models[cs[0].model], table, _configs(cs, gpu_ids, np.array([c.batch for c in cs])),
                            row_assumptions(o, cs[0].engine))
        n = np.minimum(np.array([agg[i]["per_lane"] for i in idx]), phys.max_batch)
        terms: dict = {}
        step_terms(phys, n, n * np.array([c.input_tokens + c.output_tokens / 2 for c in cs]), terms=terms)
        for j, i in enumerate(idx):
            agg[i]["kv_share"] = float(terms["kv"][j] / terms["total"][j])


def fp8_kv(xs: list[dict]) -> None:
    print("\n3. FP8 KV cache: TensorRT-LLM aggregated rows by KV dtype and the KV term's share of the step")
    _kv_shares(xs)
    trt = [x for x in xs if x["engine"] == "trtllm" and "kv_share" in x and x["plain"]]

    def share(s: float) -> str:
        return "< 0.1" if s < 0.1 else "0.1-0.25" if s < 0.25 else ">= 0.25"
    g: dict[tuple, list[float]] = defaultdict(list)
    for x in trt:
        g[(x["case"].kv, share(x["kv_share"]))].append(x["signed"])
        g[(x["case"].kv, x["system"], x["model"], x["case"].scheme, share(x["kv_share"]))].append(x["signed"])
    for k in sorted(g, key=lambda k: (len(k), k)):
        if len(g[k]) >= 5:
            print(_line("KV " + " ".join(k), g[k], 70))
    fp8 = [x for x in trt if x["case"].kv == "fp8"]
    err_fmt, _ = _grid_fit(fp8, "attention_format", ("fp8", "bf16"))
    every = list(range(len(fp8)))
    print(f"  the attention kernel at the BF16 rate on the FP8 cache (the profile's FP8 FMHA off): median |error| "
          f"{err_fmt(every, 'fp8'):.1f} -> {err_fmt(every, 'bf16'):.1f} %")

    def err(ys: list[dict], m: float) -> float:
        return st.median(abs(log(y["predicted"] * (1.0 + (m - 1.0) * y["kv_share"]) / y["measured"])) for y in ys)

    def fit(ys: list[dict]) -> float:
        return min(X_GRID, key=lambda m: (err(ys, m), m))
    m = fit(fp8)
    print(f"  a multiplier on the FP8 KV term (separable): {len(fp8)} rows, fitted x = {m}; median |error| "
          f"{100 * (exp(err(fp8, 1.0)) - 1):.1f} -> {100 * (exp(err(fp8, m)) - 1):.1f} % in sample")
    for key in ("system", "model"):
        for v in sorted({x[key] for x in fp8}):
            test = [x for x in fp8 if x[key] == v]
            mv = fit([x for x in fp8 if x[key] != v])
            print(f"    leave out {key} {v:16s} ({len(test):3d} rows): x = {mv}; held out "
                  f"{100 * (exp(err(test, 1.0)) - 1):5.1f} -> {100 * (exp(err(test, mv)) - 1):5.1f} %")


def nvfp4(xs: list[dict]) -> None:
    print("\n4. NVFP4 weight reads")
    g: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for x in xs:
        c = x["case"]
        if c.pools is None and x["plain"] and c.scheme in ("fp4", "w8a8-fp8"):
            g[(x["system"], x["engine"], x["model"], f"TP{c.tp}", _band(x["per_lane"]))][c.scheme].append(x["signed"])
    print("  the same system, engine, model, TP and clients with NVFP4 and FP8 weights (median signed %, rows):")
    for k in sorted(g):
        if len(g[k]) == 2:
            a, b = g[k]["fp4"], g[k]["w8a8-fp8"]
            print(f"    {' '.join(k):48s} NVFP4 {st.median(a):+6.1f} ({len(a):2d})   FP8 {st.median(b):+6.1f} ({len(b):2d})")
    rows = [x for x in xs if x["case"].scheme == "fp4" and x["plain"]]
    cat, o = Catalog.default(), PRESETS["realistic"]
    cases = [x["case"] for x in rows]
    logs = {}
    for eta in GRID:
        pred = predict(cases, cat, o, {"fp4_dense_read_efficiency": eta})[0]
        logs[eta] = [abs(log(p / x["measured"])) for p, x in zip(pred, rows)]

    def err(idx: list[int], eta: float) -> float:
        return st.median(logs[eta][i] for i in idx)

    def fit(idx: list[int]) -> float:
        return min(GRID, key=lambda e: (err(idx, e), -e))
    dense = [i for i, x in enumerate(rows) if cat.models[x["case"].model].moe is None]
    moe = [i for i, x in enumerate(rows) if i not in set(dense)]
    eta = fit(dense)
    print(f"  fp4_dense_read_efficiency fitted on the {len(dense)} plain NVFP4 TPOT rows of dense models "
          f"(grid {GRID[0]}-{GRID[-1]}; 1.0: the term off): {eta}, median |error| "
          f"{100 * (exp(err(dense, 1.0)) - 1):.1f} -> {100 * (exp(err(dense, eta)) - 1):.1f} % in sample")
    for key in ("system", "model", "engine"):
        for v in sorted({rows[i][key] for i in dense}):
            test = [i for i in dense if rows[i][key] == v]
            train = [i for i in dense if rows[i][key] != v]
            if not train:
                continue
            ev = fit(train)
            print(f"    leave out {key} {v:16s} ({len(test):3d} rows): {ev:.2f}; held out "
                  f"{100 * (exp(err(test, 1.0)) - 1):5.1f} -> {100 * (exp(err(test, ev)) - 1):5.1f} %")
    print(f"  held out by kind, the {len(moe)} NVFP4 rows of MoE models (their dense layers only move) at {eta}:")
    for key in ("system", "engine"):
        for v in sorted({rows[i][key] for i in moe}):
            test = [i for i in moe if rows[i][key] == v]
            print(f"    {key} {v:16s} ({len(test):3d} rows): {100 * (exp(err(test, 1.0)) - 1):5.1f} -> "
                  f"{100 * (exp(err(test, eta)) - 1):5.1f} %")
    print(f"    all of them: {100 * (exp(err(moe, 1.0)) - 1):5.1f} -> {100 * (exp(err(moe, eta)) - 1):5.1f} %")


def _grid_fit(rows: list[dict], field: str, grid: tuple[float, ...]) -> tuple:
    """(|log error| per grid value and row, fit(indices) -> the value minimising the median)."""
    cat, o = Catalog.default(), PRESETS["realistic"]
    cases = [x["case"] for x in rows]
    logs = {v: [abs(log(p / x["measured"])) for p, x in zip(predict(cases, cat, o, {field: v})[0], rows)]
            for v in grid}

    def err(idx: list[int], v: float) -> float:
        return 100.0 * (exp(st.median(logs[v][i] for i in idx)) - 1.0)
    return err, (lambda idx: min(grid, key=lambda v: (err(idx, v), v)))


def attention_dp(xs: list[dict]) -> None:
    print("\n5. Attention DP: a fixed cost per MoE layer and step where attention is data-parallel "
          "(attention_dp_layer_overhead_s), per engine, on the plain TPOT rows with attention DP > 1")
    grid = tuple(k * 10e-6 for k in range(21))          # 0 ... 200 us
    for engine in ("sglang", "trtllm"):
        rows = []
        for x in xs:
            dec = x["case"].pools.decode if x["case"].pools is not None else x["case"]
            if x["engine"] == engine and x["plain"] and dec.ep > dec.tp:
                rows.append(x)
        if not rows:
            continue
        err, fit = _grid_fit(rows, "attention_dp_layer_overhead_s", grid)
        every = list(range(len(rows)))
        v = fit(every)
        print(f"  {engine}: {len(rows)} rows; fitted {v * 1e6:.0f} us, median |error| {err(every, 0.0):.1f} -> "
              f"{err(every, v):.1f} % in sample")
        for key in ("system", "model"):
            for g in sorted({x[key] for x in rows}):
                test = [i for i, x in enumerate(rows) if x[key] == g]
                train = [i for i, x in enumerate(rows) if x[key] != g]
                if not train:
                    print(f"    leave out {key} {g}: nothing left to fit")
                    continue
                vg = fit(train)
                print(f"    leave out {key} {g:16s} ({len(test):3d} rows): {vg * 1e6:3.0f} us; held out "
                      f"{err(test, 0.0):5.1f} -> {err(test, vg):5.1f} %")


def trtllm_moe(xs: list[dict]) -> None:
    print("\n6. TensorRT-LLM's MoE rows: the step's shortfall per MoE layer, and a fixed cost per MoE layer "
          "(moe_layer_overhead_s) fitted through the whole model on its plain MoE rows")
    cat = Catalog.default()
    rows = [x for x in xs if x["engine"] == "trtllm" and x["plain"] and cat.models[x["case"].model].moe is not None]
    g: dict[tuple, list[float]] = defaultdict(list)
    for x in rows:
        c = x["case"]
        dec = c.pools.decode if c.pools is not None else c
        moe = Arch.of(cat.models[c.model]).params.moe_layers
        g[(x["system"], x["model"], c.scheme, f"TP{dec.tp} EP{dec.ep}")].append(
            (x["measured"] - x["predicted"]) / moe * 1e3)
    for k in sorted(g):
        if len(g[k]) >= 3:
            v = g[k]
            print(f"    {' '.join(k):52s} n={len(v):3d}  (measured - predicted) / MoE layers: median "
                  f"{st.median(v):+6.0f} us (p25 {np.percentile(v, 25):+5.0f}, p75 {np.percentile(v, 75):+5.0f})")
    grid = tuple(k * 10e-6 for k in range(11))          # 0 ... 100 us
    err, fit = _grid_fit(rows, "moe_layer_overhead_s", grid)
    every = list(range(len(rows)))
    v = fit(every)
    print(f"  {len(rows)} rows; fitted {v * 1e6:.0f} us, median |error| {err(every, 0.0):.1f} -> {err(every, v):.1f} %")
    for key in ("system", "model"):
        for g_ in sorted({x[key] for x in rows}):
            test = [i for i, x in enumerate(rows) if x[key] == g_]
            vg = fit([i for i, x in enumerate(rows) if x[key] != g_])
            print(f"    leave out {key} {g_:16s} ({len(test):3d} rows): {vg * 1e6:3.0f} us; held out "
                  f"{err(test, 0.0):5.1f} -> {err(test, vg):5.1f} %")


def main() -> None:
    corpus = sys.argv[1] if len(sys.argv) > 1 else str(REFERENCE / "measured-silicon.csv")
    preds = sys.argv[2] if len(sys.argv) > 2 else "/tmp/validate.csv"
    xs = load(corpus, preds)
    groups(xs)
    twins(corpus, xs)
    fp8_kv(xs)
    nvfp4(xs)
    attention_dp(xs)
    trtllm_moe(xs)


if __name__ == "__main__":
    main()
