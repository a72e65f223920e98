"""How does the measured TTFT grow with the clients and with the output length (issue 22 item 2)?

    python benchmarks/ttft_growth_check.py [CSV] [--records VALIDATE_CSV]

Default: ../shared/reference/measured-silicon.csv, predicted by `planner validate` (realistic
preset, each row's engine profile, no calibration; ~30 s); `--records` reads instead the
`--csv` of such a run. The aggregated TTFT rows (each counted measurement once) are grouped
into *series*: runs alike in every recorded column (system, engine and version, model,
precision, layout, replicas, length distribution, input and output length) but the clients N.
Two checks of the candidates for the TTFT under load that the model misses:

1. **Growth with the clients.** The least-squares slope of TTFT against N over a series' runs
   at N <= 64 (at least 3 runs; runs whose predicted TTFT is over 3x the series' first are
   left out: there the model's KV admission queues, a separate question, admission_check.py),
   measured and predicted, in ms per client, per engine and model. Beside them the slope in
   units of the model's idle prefill t_p (the predicted TTFT at the series' smallest N minus
   the profile's serving path): clients that start together and spread after the first
   wave (the model) give about t_p / 20 per client (the first wave's mean wait (N + 1) / 2
   t_p in 1 of the run's 10 waves); clients that stay in step so that every cycle is a wave
   give t_p / 2. And the slope over the series' median measured TPOT: a client adding one
   decode step to every TTFT gives 1.
2. **Growth with the output length.** Pairs of series alike but for the output length (1,024
   and 8,192 tokens, the same input and N): the measured TTFT at O = 8,192 over that at
   O = 1,024, and the model's. In-step clumps that dissolve over a run (the clients' output
   lengths drawn on [0.8 O, O]) would make it depend on O; nothing in the model does, apart
   from the KV admission. Where the measured ratio is r and the model predicts one figure for
   both runs, no prediction of that figure is within (1 - r) / (1 + r) of both (r < 1): the
   floor printed per group is the median of that bound over its pairs.
3. **Growth with the clients by input length.** The slopes of 1. per engine, model and input
   length, and the median of their difference (measured - model) per series: a prefill-bound
   queue (the first wave's prompts, a chunk's worth a step) grows with the prompt's prefill,
   a per-request cost of the engine (one step or one fixed cost per prompt) does not.
4. **One more decode step in TTFT?** (the first token streamed only after the step that
   follows its prefill, as an engine that overlaps scheduling with the GPU returns it). At
   1-4 clients, where nothing queues, the TTFT the model misses would then grow with the
   decode step: per engine and model, the median slope over pairs of runs (Theil-Sen) of
   measured - predicted TTFT against the measured TPOT (which varies with TP and system).
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REFERENCE = next((p for p in (ROOT.parent / "shared" / "reference", Path("/work/shared/reference")) if p.is_dir()),
                 ROOT.parent / "shared" / "reference")
SERIES_COLUMNS = ("system", "engine", "engine_version", "model_id", "precision", "tp", "attention_dp", "moe_ep",
                  "replicas", "length_distribution", "input_len", "output_len")
MAX_CLIENTS = 64
SHORT, LONG = 1024, 8192


def clients(load: str) -> float:
    m = re.match(r"[\d.]+", str(load))
    return float(m.group()) if m else float("nan")


def series(records: list[dict], corpus: list[dict]) -> dict[tuple, dict[float, dict[str, tuple[float, float]]]]:
    """{series key: {N: {metric: (measured, predicted)}}} of the counted, predicted aggregated rows."""
    out: dict[tuple, dict[float, dict[str, tuple[float, float]]]] = defaultdict(lambda: defaultdict(dict))
    for r in records:
        if r["mode"] != "agg" or r["counted"] != "yes" or r["predicted"] == "":
            continue
        src = {**corpus[int(r["row"]) - 2], **r}
        n = clients(r["load"])
        if np.isfinite(n):
            out[tuple(src[c] for c in SERIES_COLUMNS)][n][r["metric"]] = (float(r["measured"]), float(r["predicted"]))
    return out


def slope(x: list[float], y: list[float]) -> float:
    """Least-squares slope of y against x."""
    return float(np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)[0])


def growth(runs: dict[float, dict[str, tuple[float, float]]], serving_s: float) -> tuple[float, float, float, float] | None:
    """(measured slope, predicted slope) in ms per client, the model's idle prefill t_p (ms)
    and the median measured TPOT (ms) of one series; None where fewer than 3 runs qualify."""
    ns = sorted(n for n, m in runs.items() if n <= MAX_CLIENTS and "ttft_ms_mean" in m)
    if not ns:
        return None
    first = runs[ns[0]]["ttft_ms_mean"][1]
    ns = [n for n in ns if runs[n]["ttft_ms_mean"][1] < 3.0 * first]
    if len(ns) < 3:
        return None
    meas = [runs[n]["ttft_ms_mean"][0] for n in ns]
    pred = [runs[n]["ttft_ms_mean"][1] for n in ns]
    tpot = [runs[n]["tpot_ms_mean"][0] for n in ns if "tpot_ms_mean" in runs[n]]
    return slope(ns, meas), slope(ns, pred), first - serving_s * 1e3, float(np.median(tpot)) if tpot else float("nan")


def pair_floor(r: float) -> float:
    """The least worst |error| of one figure predicted for two runs whose measured ratio is r."""
    r = min(r, 1.0 / r)
    return (1.0 - r) / (1.0 + r)


def moe(model_id: str) -> bool:
    from planner.catalog.store import Catalog
    return Catalog.default().models[model_id].moe is not None


def growth_table(ser, serving: dict[str, float], by_input: bool = False) -> None:
    if by_input:
        print("\n3. the same slopes by input length (tokens), measured beside the model's, and their difference")
        print(f"{'engine':7} {'model':16} {'input':>6} {'series':>6} {'measured':>9} {'model':>7} {'difference':>11}")
    else:
        print(f"1. TTFT growth with the clients (series at N <= {MAX_CLIENTS}, >= 3 runs): least-squares slope, "
              "ms per client; t_p the model's idle prefill, TPOT the series' median measured")
        print(f"{'engine':7} {'model':16} {'series':>6} {'measured':>9} {'model':>7} {'ratio':>6} "
              f"{'measured/t_p':>13} {'model/t_p':>10} {'measured/TPOT':>14}")
    groups: dict[tuple, list[tuple[float, float, float, float]]] = defaultdict(list)
    for key, runs in ser.items():
        g = growth(runs, serving[key[1]])
        if g is not None:
            groups[(key[1], key[3], int(key[10])) if by_input else (key[1], key[3])].append(g)
    for k, gs in sorted(groups.items()):
        a = np.array(gs)
        if by_input:
            print(f"{k[0]:7} {k[1]:16} {k[2]:6d} {len(gs):6d} {np.median(a[:, 0]):9.2f} {np.median(a[:, 1]):7.2f} "
                  f"{np.median(a[:, 0] - a[:, 1]):+11.2f}")
            continue
        ok = a[:, 2] > 1.0
        print(f"{k[0]:7} {k[1]:16} {len(gs):6d} {np.median(a[:, 0]):9.2f} {np.median(a[:, 1]):7.2f} "
              f"{np.median(a[:, 0] / np.where(a[:, 1] > 0, a[:, 1], np.nan)):6.1f} "
              f"{np.median(a[ok, 0] / a[ok, 2]):13.3f} {np.median(a[ok, 1] / a[ok, 2]):10.3f} "
              f"{np.nanmedian(a[:, 0] / a[:, 3]):14.2f}")


def pair_table(ser) -> None:
    print(f"\n2. TTFT at O = {LONG} over O = {SHORT} (series alike but for the output length, same input and N)")
    print(f"{'engine':7} {'models':6} {'N':>6} {'pairs':>5} {'measured':>9} {'p25..p75':>11} {'model':>6} "
          f"{'floor %':>8}")
    groups: dict[tuple[str, str, str], list[tuple[float, float]]] = defaultdict(list)
    kinds: dict[str, bool] = {}
    by: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for key, runs in ser.items():
        by[key[:11]][key[11]] = runs
    for key, outs in by.items():
        if str(SHORT) not in outs or str(LONG) not in outs:
            continue
        kind = "MoE" if kinds.setdefault(key[3], moe(key[3])) else "dense"
        for n, m in outs[str(SHORT)].items():
            other = outs[str(LONG)].get(n, {})
            if "ttft_ms_mean" in m and "ttft_ms_mean" in other:
                (a, pa), (b, pb) = m["ttft_ms_mean"], other["ttft_ms_mean"]
                groups[(key[1], kind, "<=16" if n <= 16 else ">16")].append((b / a, pb / pa))
    for (eng, kind, band), v in sorted(groups.items()):
        a = np.array(v)
        floor = np.median([pair_floor(r) for r in a[:, 0]]) * 100.0
        print(f"{eng:7} {kind:6} {band:>6} {len(v):5d} {np.median(a[:, 0]):9.2f} "
              f"{np.percentile(a[:, 0], 25):5.2f}..{np.percentile(a[:, 0], 75):4.2f} {np.median(a[:, 1]):6.2f} "
              f"{floor:8.1f}")


def theil_sen(x: list[float], y: list[float], min_dx: float = 0.5) -> float:
    """Median slope over the pairs of points whose x differ by more than ``min_dx``."""
    slopes = [(y[j] - y[i]) / (x[j] - x[i]) for i in range(len(x)) for j in range(i + 1, len(x))
              if abs(x[j] - x[i]) > min_dx]
    return float(np.median(slopes)) if slopes else float("nan")


def step_table(ser) -> None:
    print("\n4. TTFT at 1-4 clients: measured - predicted against the measured TPOT, within each engine and "
          "model (median slope over pairs of runs, ms per ms of TPOT; one more decode step in TTFT gives 1)")
    print(f"{'engine':7} {'model':16} {'runs':>5} {'slope':>6} {'median residual ms':>19} {'median TPOT ms':>15}")
    groups: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for key, runs in ser.items():
        for n, m in runs.items():
            if n <= 4 and "ttft_ms_mean" in m and "tpot_ms_mean" in m:
                groups[(key[1], key[3])].append((m["tpot_ms_mean"][0], m["ttft_ms_mean"][0] - m["ttft_ms_mean"][1]))
    for (eng, model), v in sorted(groups.items()):
        if len(v) >= 5:
            x, y = [a for a, _ in v], [b for _, b in v]
            print(f"{eng:7} {model:16} {len(v):5d} {theil_sen(x, y):6.2f} {np.median(y):19.1f} {np.median(x):15.1f}")


def load_inputs(description: str) -> tuple[argparse.Namespace, list[dict], list[dict]]:
    """The command line (a corpus CSV, ``--records`` a validate ``--csv`` of it), the corpus's
    rows, and validate's records of them (read from ``--records``, else computed here)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("csv", nargs="?", default=str(REFERENCE / "measured-silicon.csv"))
    ap.add_argument("--records", help="the --csv of `planner validate CSV` (else it is run here)")
    args = ap.parse_args()
    with open(args.csv, newline="", encoding="utf-8") as fh:
        corpus = list(csv.DictReader(fh))
    if args.records:
        with open(args.records, newline="", encoding="utf-8") as fh:
            records = list(csv.DictReader(fh))
    else:
        from planner.fidelity import validate as V
        records = [{k: ("" if v is None else str(v)) for k, v in r.items()} for r in V.validate_file(args.csv).records()]
    return args, corpus, records


def main() -> None:
    _, corpus, records = load_inputs(__doc__.splitlines()[0])
    from planner.physics.options import PRESETS, engine_profile
    serving = {e: float(engine_profile(e).get("serving_overhead_s", PRESETS["realistic"].serving_overhead_s))
               for e in ("sglang", "trtllm", "vllm")}
    ser = series(records, corpus)
    growth_table(ser, serving)
    pair_table(ser)
    growth_table(ser, serving, by_input=True)
    step_table(ser)


if __name__ == "__main__":
    main()
