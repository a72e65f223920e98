"""What carries the TPOT error of the disaggregated rows (issue 22 item 3; docs/validation.md,
"Disaggregated TPOT: the decode pool's batch").

Every counted disaggregated measurement of the corpus that validate predicts, with both its
TTFT and its TPOT, is read three ways:

- the model's closed loop as validate computes it (``predict.disagg_loops``): the decode
  pool's sequences per lane (attention-DP rank) n_model and its TPOT;
- the batch the measurement itself implies: in a closed loop each client spends TTFT, then
  (O - 1) TPOT in the decode pool, so (Little's law) the decode pool holds
  n_meas = N (O - 1) TPOT / (TTFT + (O - 1) TPOT) / (D G) sequences a lane, from the measured
  TTFT and TPOT, the row's clients N, decode workers D and lanes G;
- the model's decode step at that batch, t(n_meas) / E (``step.step_time``, E tokens a step
  with MTP): the step's own error, with the batch taken from the measurement.

If TPOT at n_meas is close to the measurement where TPOT at n_model is not, the error is the
batch the closed loop gives the decode pool (that is, the TTFT's: a prefill queue the model
does not see holds clients out of decode), not the decode step. Groups: system, engine, how
the pools are read (stated, a recipe's, 1 + 1 assumed, MTP twin), provenance (the DB dump's
runs, export rows the dump does not hold, NVIDIA's), clients band. Section 2 prints the ratio
measured / t(n_meas) of the export rows the dump does not hold beside the dump's, as a
histogram: a mixture of plain and MTP runs shows as two modes (~0.65 and ~1).

Sections 5-8 check the leads further: 5. each recipe row's TPOT against its donor's (the
stated plain run of the same pools; a mixture of MTP runs shows as a mode near 0.5-0.65);
6. the stated rows by decode layout (TP against attention DP + EP, NVLink domains of 8 and
72); 7. validate's TPOT with and without the DeepSeek export rows the DB dump does not hold
(needs VALIDATE_CSV, ``planner validate CORPUS --csv``); 8. the GB200 export rows' one GPU
count read as the whole deployment's; 9. the KV transfers landing on the decode GPUs.

    python benchmarks/disagg_tpot.py [CORPUS] [VALIDATE_CSV]
"""

from __future__ import annotations

import statistics as st
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.fidelity.corpus import load_corpus  # noqa: E402
from planner.fidelity.predict import disagg_loops  # noqa: E402
from planner.fidelity.rows import cell_int, engine_of, load_measurements, pool_recipes  # noqa: E402
from planner.physics.disagg import kv_bytes_per_request  # noqa: E402
from planner.physics.options import PRESETS  # noqa: E402
from planner.physics.step import step_time  # noqa: E402
from planner.physics.terms import tokens_per_step  # noqa: E402

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "measured-silicon.csv"


def _band(n: float) -> str:
    return "<=8" if n <= 8 else "9-64" if n <= 64 else "65-512" if n <= 512 else "513-2048" if n <= 2048 else ">2048"


def _provenance(r: dict) -> str:
    p = r["provenance"]
    if p.startswith("InferenceX DB"):
        return "dump"
    if p.startswith("InferenceX"):
        in_dump = any(not s.startswith("20") for s in r["same_measurement_as"].split())
        return "export (dump's too)" if in_dump else "export only"
    return "nvidia"


def cases(corpus: str, rule=pool_recipes, mtp: bool = True):
    """The disaggregated measurements as validate maps them: (row index, row, case, how read);
    ``rule``: the recipe rule (``rows.pool_recipes``, or a variant checked in section 8);
    ``mtp`` False: the speculative twins predicted as plain runs (still marked MTP)."""
    corp = load_corpus(corpus, rule=rule)
    out = []
    for m in corp.mapped(lambda i, r: r.get("mode") == "disagg", speculate=mtp):
        if m.expressed is not None and m.expressed.pools is not None:
            out.append((m.i, m.row, m.expressed, f"{m.pools}, MTP" if m.twin else m.pools))
    return corp.rows, corp.catalog, out


def implied_decode_batch(clients: float, ttft: float, tpot: float, osl: float, workers: float,
                         lanes: float) -> float:
    """Sequences a decode lane holds in a closed loop of ``clients`` measured at ``ttft`` and
    ``tpot`` (seconds) for ``osl`` output tokens: each client's cycle is TTFT + (O - 1) TPOT,
    the decode share of it (O - 1) TPOT, so by Little's law the decode pool holds
    N (O - 1) TPOT / (TTFT + (O - 1) TPOT) requests, over ``workers`` x ``lanes`` lanes."""
    in_decode = (osl - 1.0) * tpot
    return clients * in_decode / (ttft + in_decode) / (workers * lanes)


def readings(corpus: str, rule=pool_recipes, mtp: bool = True) -> list[dict]:
    """One dict per measurement with both metrics predicted: measured and model TTFT and TPOT,
    n_model, n_meas and the model's TPOT at n_meas."""
    rows, cat, found = cases(corpus, rule, mtp)
    o = PRESETS["realistic"]
    cs = [c for _, _, c, _ in found]
    by_row = {}
    for loop in disagg_loops(cs, cat, o):
        r, dec = loop.result, loop.decode
        E = tokens_per_step(dec.o)
        for i, k in zip(loop.rows, loop.where):
            by_row[i] = (r, dec, k, E)
    pairs: dict[str, dict] = defaultdict(dict)
    for (i, row, c, how), j in zip(found, range(len(found))):
        if j in by_row:
            pairs[row["silicon_id"]][row["metric"]] = (i, row, c, how, by_row[j])
    out = []
    for both in pairs.values():
        if set(both) != {"ttft_ms_mean", "tpot_ms_mean"}:
            continue
        i, row, c, how, (r, dec, k, E) = both["tpot_ms_mean"]
        ttft_m = float(both["ttft_ms_mean"][1]["value"]) / 1e3
        tpot_m = float(row["value"]) / 1e3
        if not (r.stable[k] and np.isfinite(r.tpot[k])):
            continue
        N, O, S = c.load[1], c.output_tokens, c.input_tokens      # type: ignore[index]
        lanes = float(dec.lanes[k])
        D = c.pools.decode.workers                                 # type: ignore[union-attr]
        n_meas = implied_decode_batch(N, ttft_m, tpot_m, O, D, lanes)
        one = dec.take(np.array([k]))
        at = float(step_time(one, np.array([n_meas]), np.array([n_meas * (S + O / 2.0)]))[0]) / E
        donor = None if c.pools.recipe is None else rows[c.pools.recipe]     # type: ignore[union-attr]
        rate = N / (ttft_m + (O - 1.0) * tpot_m)                              # measured requests/s
        gpus = c.pools.decode.workers * c.pools.decode.gpus                   # type: ignore[union-attr]
        inflow = rate * float(kv_bytes_per_request(one, np.array([S]))[0]) / gpus
        out.append(dict(i=i, row=row, case=c, donor=donor, how=how, system=c.gpu, engine=engine_of(row["framework"])[0],
                        provenance=_provenance(row), band=_band(N), clients=N, ttft_m=ttft_m, tpot_m=tpot_m,
                        ttft_p=float(r.ttft[k]), tpot_p=float(r.tpot[k]), n_model=float(r.decode.running[k]),
                        n_meas=n_meas, tpot_at=at, inflow=inflow))
    return out


def _pct(pred: float, meas: float) -> float:
    return (pred / meas - 1.0) * 100.0


def table(rs: list[dict], keys: tuple[str, ...], label: str) -> None:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for x in rs:
        groups[tuple(x[k] for k in keys)].append(x)
    print(f"\n{label}")
    print(f"  {' / '.join(keys):<58} {'n':>4} {'TPOT model':>10} {'at n_meas':>10} {'n_meas/n_model':>14} "
          f"{'TTFT model':>10}")
    for key in sorted(groups, key=str):
        g = groups[key]
        print(f"  {' / '.join(map(str, key)):<58} {len(g):>4} "
              f"{st.median(_pct(x['tpot_p'], x['tpot_m']) for x in g):>+10.1f} "
              f"{st.median(_pct(x['tpot_at'], x['tpot_m']) for x in g):>+10.1f} "
              f"{st.median(x['n_meas'] / max(x['n_model'], 1e-9) for x in g):>14.2f} "
              f"{st.median(_pct(x['ttft_p'], x['ttft_m']) for x in g):>+10.1f}")


def overall(rs: list[dict]) -> None:
    def med(f, sel):
        v = [abs(f(x)) for x in rs if sel(x)]
        return f"{st.median(v):5.1f} % ({len(v)})" if v else "  -"
    print("\n1. median |error| of TPOT, the model's closed loop / the model's step at the measured batch")
    for name, sel in (("all", lambda x: True), ("stated", lambda x: x["how"] == "stated"),
                      ("recipe", lambda x: x["how"] == "recipe"), ("1+1", lambda x: x["how"] == "1+1"),
                      ("MTP twins", lambda x: "MTP" in x["how"])):
        print(f"  {name:<10} {med(lambda x: _pct(x['tpot_p'], x['tpot_m']), sel)} / "
              f"{med(lambda x: _pct(x['tpot_at'], x['tpot_m']), sel)}")


def histogram(rs: list[dict]) -> None:
    print("\n2. measured TPOT / the model's step at n_meas, DeepSeek rows not read as MTP twins, by provenance")
    edges = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.4, 10.0)
    print("  " + " " * 22 + "".join(f"{f'<{hi:g}':>7}" for hi in edges[1:]))
    by: dict[str, list[float]] = defaultdict(list)
    for x in rs:
        if x["case"].model.startswith("deepseek") and "MTP" not in x["how"]:
            by[x["provenance"]].append(x["tpot_m"] / x["tpot_at"])
    for k in sorted(by):
        counts = np.histogram(by[k], bins=edges)[0]
        print(f"  {k:<20} {len(by[k]):>2}" + "".join(f"{c:>7}" for c in counts))


def _donor_ratios(rs: list[dict], twins: bool) -> list[tuple[str, float]]:
    """measured / model TPOT of each recipe row over its donor's (the stated run whose pools it
    takes): the recipe rows not read as MTP twins, or (``twins``) only those."""
    by = {x["row"]["silicon_id"]: x for x in rs}

    def q(x: dict) -> float:
        return x["tpot_m"] / x["tpot_p"]

    out = []
    for x in rs:
        d = x["donor"]
        ref = next((by[s] for s in [d["silicon_id"], *d["same_measurement_as"].split()] if s in by), None) if d else None
        if ref is not None and ("MTP" in x["how"]) == twins:
            out.append((x["system"], q(x) / q(ref)))
    return out


def donor_ratio(corpus: str, rs: list[dict]) -> dict[str, float]:
    """Section 5: each recipe row's measured / model TPOT over its donor's (the stated, plain
    run whose pools it takes), the model carrying the concurrency between the two; the same
    reading of the speculative twins (labelled MTP by columns, here predicted plain) and of
    two stated runs of one deployment (plain) says how well a threshold separates the two."""
    pairs = [r for _, r in _donor_ratios(rs, twins=False)]
    print("\n5. recipe rows (not MTP twins): measured / model TPOT over their donor's (a stated, plain run of "
          "the same pools)")
    edges = (0.0, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.5, 100.0)
    print("  " + "".join(f"{f'<{hi:g}':>6}" for hi in edges[1:]))
    print("  " + "".join(f"{c:>6}" for c in np.histogram(pairs, bins=edges)[0]))
    stated = defaultdict(list)
    for x in rs:
        if x["how"] == "stated" and x["provenance"] != "nvidia":
            c = x["case"]
            stated[(x["system"], x["engine"], c.scheme, c.input_tokens, c.output_tokens, c.pools)].append(
                x["tpot_m"] / x["tpot_p"])
    within = [(k[0], a / b) for k, g in stated.items() for i, a in enumerate(g) for j, b in enumerate(g) if i != j]
    twins = _donor_ratios(readings(corpus, mtp=False), twins=True)
    for th in (0.6, 0.7, 0.8, 0.9):
        below = sum(r < th for r in pairs) / len(pairs)
        tp = sum(r < th for _, r in twins) / len(twins)
        fp = sum(v < th for _, v in within) / len(within)
        share = (below - fp) / (tp - fp) if tp > fp else float("nan")
        print(f"  below {th}: recipe rows {below:.1%} of {len(pairs)}; MTP twins (predicted plain) {tp:.1%} of "
              f"{len(twins)}; two stated runs of one deployment {fp:.1%} of {len(within)} ordered pairs; "
              f"so MTP runs among the recipe rows ~{share:.0%}")
    print("  the threshold chosen from the labelled readings (the largest share of twins below less share "
          "of plain pairs below, grid 0.50-0.95), on all systems and without each:")
    folds = {}
    for system in ["none", *sorted({s for s, _ in twins} | {s for s, _ in within})]:
        folds[system] = _threshold([r for s, r in twins if s != system], [r for s, r in within if s != system])
        print(f"    without {system:<9} {folds[system]:.2f}")
    return folds


def _threshold(twins: list[float], plain: list[float]) -> float:
    """The grid value (0.50 ... 0.95) below which most twins and fewest plain pairs fall
    (the largest difference of the two shares; the lower value on a tie)."""
    grid = [round(0.5 + 0.05 * k, 2) for k in range(10)]
    return max(grid, key=lambda t: (sum(r < t for r in twins) / len(twins) - sum(r < t for r in plain) / len(plain),
                                    -t))


def held_out(corpus: str, folds: dict[str, float]) -> None:
    """Section 10: validate's TPOT median |error| per system with the threshold its fold
    chose (the other systems' labelled readings) against the one chosen on all of them
    (``repeats.MTP_TPOT_RATIO``) and against none (no row read by its TPOT)."""
    from planner.fidelity import repeats as rows_module
    from planner.fidelity.validate import validate
    shipped = rows_module.MTP_TPOT_RATIO
    runs = {}
    for th in sorted(set(folds.values()) | {shipped, 0.0}):
        rows_module.MTP_TPOT_RATIO = th
        v = validate(corpus, PRESETS["realistic"], mtp_by_tpot=True)
        runs[th] = defaultdict(list)
        for r in v.rows:
            if r.counted and r.metric == "tpot_ms_mean" and r.load and r.abs_pct_error is not None:
                for key in ("all", r.system):
                    runs[th][key].append(r.abs_pct_error)
    rows_module.MTP_TPOT_RATIO = shipped
    print(f"\n10. TPOT median |error| under load by system: no row read by its TPOT / threshold {shipped} "
          "(all systems' readings) / the fold's threshold (the system held out)")
    for key in sorted(runs[0.0]):
        th = folds.get(key, shipped)
        print(f"  {key:<9} {st.median(runs[0.0][key]):5.1f} / {st.median(runs[shipped][key]):5.1f} / "
              f"{st.median(runs[th][key]):5.1f} % (fold {th:.2f})")


def layouts(rs: list[dict]) -> None:
    """Section 6: the stated rows' measured TPOT over the model's step at the measured batch,
    by engine, system and decode layout."""
    g: dict[tuple, list[float]] = defaultdict(list)
    for x in rs:
        if x["how"] == "stated":
            d = x["case"].pools.decode
            g[(x["engine"], x["system"], f"DEP{d.ep}" if d.ep > d.tp else f"TP{d.tp} EP{d.ep}")].append(
                x["tpot_m"] / x["tpot_at"])
    print("\n6. stated rows: measured TPOT / the model's step at n_meas, by engine, system, decode layout "
          "(n, median, p10-p90)")
    for k in sorted(g):
        v = sorted(g[k])
        print(f"  {' / '.join(k):<34} {len(v):>3} {st.median(v):5.2f}  {v[len(v) // 10]:.2f}-{v[(9 * len(v)) // 10]:.2f}")


def without_exports(corpus: str, validate_csv: str) -> None:
    """Section 7: validate's rows under load (its CSV) with and without the DeepSeek export
    rows the DB dump does not hold, TPOT and TTFT, all, by system, by mode (aggregated or
    disaggregated) and by system and mode."""
    import csv
    rows = load_measurements(corpus)
    errors: dict[tuple, list[tuple[bool, float]]] = defaultdict(list)
    with open(validate_csv) as fh:
        for p in csv.DictReader(fh):
            if p["counted"] != "yes" or not p["predicted"] or not p["load"]:
                continue
            r = rows[int(p["row"]) - 2]
            unlabelled = p["model_id"].startswith("deepseek") and _provenance(r) == "export only"
            mode = "disagg" if p["mode"].startswith("disagg") else "agg"
            for key in ("all", p["system"], mode, f"{p['system']} {mode}"):
                errors[(p["metric"][:4].upper(), key)].append((unlabelled, abs(float(p["signed_pct_error"]))))
    print("\n7. median |error| under load: every row / without the DeepSeek export rows the dump does not "
          "hold (n)")
    for k in sorted(errors):
        a, b = [e for _, e in errors[k]], [e for u, e in errors[k] if not u]
        print(f"  {k[0]} {k[1]:<16} {st.median(a):5.1f} % ({len(a)}) / "
              f"{st.median(b) if b else float('nan'):5.1f} % ({len(b)})")


def whole_deployment(corpus: str, rs: list[dict]) -> None:
    """Section 8: the lead "GB200 export rows state the whole deployment's GPUs": rows without
    counts whose two pools state one count G (1-72) that no stated worker of their family
    has, where a stated deployment of G GPUs exists, take that donor instead."""
    def gpus(r: dict) -> tuple:
        return tuple(cell_int(r.get(f"{p}_gpus_per_worker", "")) for p in ("prefill", "decode"))

    def total(r: dict):
        pw, dw = cell_int(r.get("prefill_workers", "")), cell_int(r.get("decode_workers", ""))
        pg, dg = gpus(r)
        return None if None in (pw, dw, pg, dg) else pw * pg + dw * dg

    def rule(rows, family):
        fam: dict = defaultdict(list)
        for j, r in enumerate(rows):
            if total(r) is not None:
                fam[family(r)].append(j)

        def whole(i: int):
            pg, dg = gpus(rows[i])
            ds = fam.get(family(rows[i]), [])
            if pg is None or pg != dg or any(gpus(rows[j]) == (pg, dg) for j in ds):
                return None
            return pg if any(total(rows[j]) == pg for j in ds) else None
        return pool_recipes(rows, family, exclude=lambda i, j: whole(i) is not None and total(rows[j]) != whole(i))
    after = {x["row"]["silicon_id"]: x for x in readings(corpus, rule)}
    moved = [(x, after[x["row"]["silicon_id"]]) for x in rs if x["row"]["silicon_id"] in after
             and after[x["row"]["silicon_id"]]["case"].pools != x["case"].pools]
    print(f"\n8. the whole-deployment reading moves {len(moved)} measurements' pools")
    for name, k in (("TPOT", "tpot"), ("TTFT", "ttft")):
        if moved:
            b = st.median(abs(_pct(x[f"{k}_p"], x[f"{k}_m"])) for x, _ in moved)
            a = st.median(abs(_pct(y[f"{k}_p"], y[f"{k}_m"])) for _, y in moved)
            print(f"  {name} median |error| {b:.1f} -> {a:.1f} %")


def kv_inflow(rs: list[dict]) -> None:
    """Section 9: the lead "the KV transfers landing on a decode GPU slow its steps": the
    stated rows' measured TPOT over the model's step at n_meas, by the KV bytes/s each decode
    GPU receives at the measured throughput (N / (TTFT + (O - 1) TPOT))."""
    g: dict[tuple, list[float]] = defaultdict(list)
    for x in rs:
        if x["how"] == "stated":
            gb = x["inflow"] / 1e9
            band = "<1 GB/s" if gb < 1 else "1-5 GB/s" if gb < 5 else ">=5 GB/s"
            g[(x["engine"], band)].append(x["tpot_m"] / x["tpot_at"])
    print("\n9. stated rows: measured TPOT / the model's step at n_meas by KV inflow per decode GPU (n, median); "
          f"the largest inflow {max(x['inflow'] for x in rs) / 1e9:.1f} GB/s")
    for k in sorted(g):
        print(f"  {' / '.join(k):<22} {len(g[k]):>3} {st.median(g[k]):5.2f}")


def main() -> None:
    corpus = sys.argv[1] if len(sys.argv) > 1 else str(CORPUS)
    rs = readings(corpus)
    print(f"{len(rs)} disaggregated measurements with TTFT and TPOT predicted "
          "(signed medians %, predicted / measured - 1)")
    overall(rs)
    histogram(rs)
    table(rs, ("system", "engine", "how", "provenance"), "3. by system, engine, pools, provenance")
    table(rs, ("system", "engine", "how", "band"), "4. by system, engine, pools, clients")
    folds = donor_ratio(corpus, rs)
    layouts(rs)
    if len(sys.argv) > 2:
        without_exports(corpus, sys.argv[2])
    whole_deployment(corpus, rs)
    kv_inflow(rs)
    held_out(corpus, folds)


if __name__ == "__main__":
    main()
