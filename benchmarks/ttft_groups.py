"""Where the silicon corpus's TTFT error lies, group by group (issue 22 item 2;
docs/validation.md "TTFT under load, group by group").

    python benchmarks/ttft_groups.py [CORPUS] [VALIDATE_CSV] [--min N] [--top K]

Reads the corpus (default ../shared/reference/measured-silicon.csv) and the CSV that
``python -m planner validate CORPUS --csv OUT`` writes (default /tmp/validate.csv), and
prints, over the counted TTFT rows (each measurement once, as validate counts them):

1. **model x engine x clients**: n, median |error| and median signed error (predicted /
   measured - 1), aggregated and disaggregated apart;
2. **model x engine x clients x prompt length** (input <= 1,500, <= 4,500, longer);
3. **the largest coherent groups** (cut 2's groups of at least ``--min`` rows, ordered by
   n x |median signed error|, the first ``--top``): what the rows themselves say (engine
   versions, GPUs, TP, input and output lengths, length distribution, provenance, weights,
   KV dtype), the medians of the measured and predicted TTFT and TPOT (the TPOT rows of the
   same measurements), and the share of a request's measured time its TTFT is
   (TTFT / (TTFT + (O - 1) TPOT)), which tells a queue (a large share) from a slow prefill.
3b. **TTFT against the interval between completions**: series alike but for the output
   length (``completion_slopes``): does a new request wait for the next completion?
4. with ``--leads`` (~9 validate runs, a few minutes): **clumps of fixed-length clients**, the
   lead of docs/validation.md "TTFT under load, group by group". Clients that start together
   with fixed lengths (the NVIDIA AIPerf runs) are taken by the load model to come back in
   clumps of g = min(N_l, M, Ta / S) prompts every cycle (planner/physics/load.py ``_clump``).
   The validation is rerun with the clump capped at k prompts (k = 1: no clumps) and with it
   dissolved by a client turnaround jitter sigma (g / (1 + sigma / t_0), t_0 the lane's decode
   step: prompts that return within one step stay together), each with the load model patched
   for the run only; the headline, the groups that move, and leave one model / system / engine
   out (the value the other rows choose, the held-out rows' median |error| under it).
5. with ``--simulate`` (a few minutes; ``--rows`` prints every run): **the in-step clients in
   the simulator**. The NVIDIA AIPerf runs (fixed lengths, 20 N requests; ``SIM_SERIES``:
   Qwen3-32B on vLLM 0.12, SGLang 0.5.1 and TensorRT-LLM 1.0 and Llama-3.1-8B on TensorRT-LLM
   1.0, all on H100; Llama-3.1-8B on SGLang 0.5.6 on H200), each at
   its own TP, lengths and clients: validate's TTFT (the closed form), the closed form
   recomputed here (a check that the case is validate's), and planner/simulate.py's
   closed loop (one seed) in four readings: starting together with fixed lengths (what the
   load model takes these runs to be), the same with an exponential client delay of 20 ms
   between a response and the next request, starting together with outputs spread uniformly
   on [0.95 O, O], and fixed lengths in the steady state (clients out of step); the median
   signed error of each against the measurement; for the mixed engines, the simulator with
   outputs on [a O, O] for each a of ``SPREADS`` (how far apart their clients' cycles are).
"""

from __future__ import annotations

import argparse
import csv
import statistics as st
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner.fidelity.rows import load_measurements  # noqa: E402

BUCKETS = ((4, "1-4"), (16, "5-16"), (64, "17-64"), (256, "65-256"), (1024, "257-1024"))
PROMPTS = ((1500, "<=1.5k"), (4500, "<=4.5k"))


def clients_bucket(n: float) -> str:
    return next((label for top, label in BUCKETS if n <= top), ">1024")


def prompt_bucket(s: int) -> str:
    return next((label for top, label in PROMPTS if s <= top), ">4.5k")


def load(corpus: str, predictions: str) -> list[dict]:
    """The counted TTFT rows with their corpus row and the TPOT prediction of the same run."""
    return pair(load_measurements(corpus), list(csv.DictReader(open(predictions))))


def pair(rows: list[dict], recs: list[dict]) -> list[dict]:
    """Each counted, predicted TTFT record (``recs``: validate's --csv, whose ``row`` is the
    corpus line, the header line 1) with its corpus row and the TPOT record of the same
    measurement (same model and ``silicon_id``), None where that is not counted."""
    tpot = {(r["model_id"], rows[int(r["row"]) - 2]["silicon_id"]): r for r in recs
            if r["metric"] == "tpot_ms_mean" and r["counted"] == "yes" and r["predicted"]}
    out = []
    for p in recs:
        if p["metric"] != "ttft_ms_mean" or p["counted"] != "yes" or not p["predicted"]:
            continue
        r = rows[int(p["row"]) - 2]
        q = tpot.get((p["model_id"], r["silicon_id"]))
        n = float(r["concurrency_total"] or 0)
        out.append(dict(
            r=r, model=p["model_id"], engine=p["engine"], mode=p["mode"], system=p["system"],
            version=p["engine_version"] or "?", clients=clients_bucket(n), n=n,
            prompt=prompt_bucket(int(r["input_len"])), isl=int(r["input_len"]),
            osl=int(r["output_len"]), measured=float(p["measured"]), predicted=float(p["predicted"]),
            signed=float(p["signed_pct_error"]),
            tpot_measured=float(q["measured"]) if q else None,
            tpot_predicted=float(q["predicted"]) if q else None,
            tpot_signed=float(q["signed_pct_error"]) if q else None))
    return out


def stats(xs: list[dict]) -> str:
    s = [x["signed"] for x in xs]
    return f"n={len(s):4d}  |error| {st.median(abs(e) for e in s):6.1f} %  signed {st.median(s):+7.1f} %"


def cut(xs: list[dict], keys: tuple[str, ...]) -> dict[tuple, list[dict]]:
    g: dict[tuple, list[dict]] = defaultdict(list)
    for x in xs:
        g[tuple(x[k] for k in keys)].append(x)
    return g


def table(title: str, xs: list[dict], keys: tuple[str, ...], least: int = 1) -> None:
    print(title)
    order = {label: k for k, (_, label) in enumerate(BUCKETS + ((0, ">1024"),) + PROMPTS + ((0, ">4.5k"),))}
    for key, g in sorted(cut(xs, keys).items(), key=lambda kv: tuple(order.get(v, v) for v in kv[0])):
        if len(g) >= least:
            print(f"  {' '.join(f'{v:>9s}' if k in ('clients', 'prompt') else f'{v:14s}' for k, v in zip(keys, key))}"
                  f"  {stats(g)}")
    print()


def _counts(values) -> str:
    c = Counter(values)
    return ", ".join(f"{k} {n}" for k, n in sorted(c.items(), key=lambda kv: (-kv[1], str(kv[0]))))


def _median(xs: list[dict], key: str) -> float:
    v = [x[key] for x in xs if x[key] is not None]
    return st.median(v) if v else float("nan")


def share(x: dict) -> float | None:
    """TTFT's share of the request's measured time (None without a measured TPOT)."""
    if x["tpot_measured"] is None:
        return None
    return x["measured"] / (x["measured"] + (x["osl"] - 1) * x["tpot_measured"])


def settings(xs: list[dict]) -> None:
    r = [x["r"] for x in xs]
    print(f"      versions: {_counts(x['version'] for x in xs)}")
    print(f"      GPUs: {_counts(x['system'] for x in xs)};  TP: {_counts(y['tp'][:12] for y in r)};"
          f"  replicas: {_counts(y['replicas'] for y in r)}")
    print(f"      clients: {_counts(int(x['n']) for x in xs)}")
    print(f"      input x output: {_counts(str(x['isl']) + '/' + str(x['osl']) for x in xs)}")
    print(f"      lengths: {_counts(y['length_distribution'].split(' (')[0][:40] for y in r)}")
    print(f"      provenance: {_counts(y['provenance'][:40] for y in r)}")
    print(f"      weights: {_counts(y['precision'].split(';KV')[0] for y in r)};  KV: {_counts(y['kv_dtype'] for y in r)}")
    shares = [s for s in map(share, xs) if s is not None]
    print(f"      TTFT ms measured {_median(xs, 'measured'):.0f} predicted {_median(xs, 'predicted'):.0f};"
          f"  TPOT ms measured {_median(xs, 'tpot_measured'):.1f} predicted {_median(xs, 'tpot_predicted'):.1f}"
          f" (signed {_median(xs, 'tpot_signed'):+.1f} %);"
          f"  TTFT share of the measured request {st.median(shares) if shares else float('nan'):.2f}")


def completion_slopes(xs: list[dict], most_clients: float = 32.0) -> dict[tuple[str, str], list[float]]:
    """Section 3b. Series of aggregated runs alike in model, engine, version, system, TP,
    prompt length and clients (at most ``most_clients``, a measured TPOT) and differing in the
    output length: between the series' shortest and longest output, the change of the measured
    TTFT over the change of the mean interval between completions, (O - 1) TPOT / N from the
    rows' own figures. 1: a new request waits for the next completion; 0: TTFT does not follow
    the output length. Per (model, engine): the slopes of its series."""
    series: dict[tuple, list[dict]] = defaultdict(list)
    for x in xs:
        if x["mode"] == "agg" and x["tpot_measured"] is not None and 1 <= x["n"] <= most_clients:
            series[(x["model"], x["engine"], x["version"], x["system"], x["r"]["tp"], x["isl"], x["n"])].append(x)
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    for key, runs in series.items():
        a, b = min(runs, key=lambda x: x["osl"]), max(runs, key=lambda x: x["osl"])
        d = ((b["osl"] - 1) * b["tpot_measured"] - (a["osl"] - 1) * a["tpot_measured"]) / b["n"]
        if b["osl"] > a["osl"] and d > 0:
            out[(key[0], key[1])].append((b["measured"] - a["measured"]) / d)
    return out


def slopes_table(xs: list[dict]) -> None:
    print("3b. TTFT against the interval between completions ((O - 1) TPOT / N) in series differing only in "
          "the output length (at most 32 clients): median slope (p25..p75), series")
    for (model, engine), v in sorted(completion_slopes(xs).items()):
        if len(v) >= 5:
            q = st.quantiles(v, n=4)
            print(f"  {model:16s} {engine:7s} {st.median(v):+5.2f} ({q[0]:+.2f}..{q[2]:+.2f})  {len(v)}")
    print()


CAPS = (1, 2, 3, 4, 6)
JITTERS_MS = (5, 10, 20, 40)


def rerun(corpus: str, cap: float | None = None, jitter_ms: float | None = None) -> list[dict]:
    """``planner validate`` with the load model's clump capped at ``cap`` prompts or dissolved
    by ``jitter_ms``, for this run only; the records as the --csv writes them."""
    import numpy as np

    from planner.fidelity import validate as V
    from planner.physics import load as L

    saved_clump, saved_steady = L._clump, L._steady
    step: dict[str, np.ndarray] = {}

    def steady(*a, **k):
        st_ = saved_steady(*a, **k)
        step["t0"] = st_["t0"]
        return st_

    def clump(eng, Nl, S, Ta):
        g = saved_clump(eng, Nl, S, Ta)
        if cap is not None:
            return np.minimum(g, cap)
        return np.maximum(g / (1.0 + (jitter_ms or 0.0) / 1000.0 / step["t0"]), 1.0)

    L._clump, L._steady = clump, steady
    try:
        return [{k: ("" if v is None else str(v)) for k, v in r.items()} for r in V.validate_file(corpus).records()]
    finally:
        L._clump, L._steady = saved_clump, saved_steady


def _abs(xs: list[dict]) -> float:
    return st.median(abs(x["signed"]) for x in xs) if xs else float("nan")


def leads(corpus: str, base: list[dict]) -> None:
    import tempfile

    print("4. clumps of fixed-length clients: the validation rerun with the clump capped (cap k) or "
          "dissolved by a client jitter (jitter ms)")
    runs: dict[str, list[dict]] = {"today": base}
    for label, kw in [(f"cap {k}", dict(cap=k)) for k in CAPS] + [(f"jitter {j}", dict(jitter_ms=j)) for j in JITTERS_MS]:
        recs = rerun(corpus, **kw)
        with tempfile.NamedTemporaryFile("w", suffix=".csv", newline="", delete=False) as f:
            w = csv.DictWriter(f, fieldnames=list(recs[0]))
            w.writeheader()
            w.writerows(recs)
        runs[label] = load(corpus, f.name)
        Path(f.name).unlink()
    for label, xs in runs.items():
        tp = st.median(abs(x["tpot_signed"]) for x in xs if x["tpot_signed"] is not None)
        print(f"  {label:10s} TTFT {stats(xs)}   TPOT |error| {tp:5.1f} %")
    keys = ("model", "engine", "clients")
    before = cut(base, keys)
    for label in ("cap 3", "jitter 10"):
        print(f"  groups that move with {label} (>= 5 rows):")
        after = cut(runs[label], keys)
        for key in sorted(before):
            if len(before[key]) >= 5 and stats(before[key]) != stats(after[key]):
                print(f"    {' '.join(key):40s} {stats(before[key])} -> {stats(after[key])[6:]}")
    for by in ("model", "system", "engine"):
        print(f"  leave one {by} out: the value the other rows choose, and the held-out rows' median |error|")
        for v in sorted({x[by] for x in base}):
            rest = {k: _abs([x for x in xs if x[by] != v]) for k, xs in runs.items()}
            best = min(rest, key=lambda k: rest[k])
            held = {k: _abs([x for x in xs if x[by] == v]) for k, xs in runs.items()}
            print(f"    {v:16s} n={sum(1 for x in base if x[by] == v):4d}  chooses {best:10s} "
                  f"today {held['today']:5.1f} -> {held[best]:5.1f} %")
    print()


SIM_READINGS = ("validate", "closed form", "sim in step", "sim +20 ms delay", "sim O spread 5 %", "sim out of step")
SPREADS = (0.99, 0.98, 0.95, 0.9)
# the NVIDIA AIPerf series (fixed lengths, 20 N requests): model, engine, engine version, preset, system
SIM_SERIES = (("qwen3-32b", "vllm", "0.12.0", "realistic", "h100-sxm"),
              ("qwen3-32b", "sglang", "0.5.1.post1", "sglang", "h100-sxm"),
              ("qwen3-32b", "trtllm", "1.0.0rc3", "trtllm", "h100-sxm"),
              ("llama-3.1-8b", "trtllm", "1.0.0rc3", "trtllm", "h100-sxm"),
              ("llama-3.1-8b", "sglang", "0.5.6.post2", "sglang", "h200"))


def simulated(xs: list[dict], every_row: bool = False) -> None:
    """Section 5: each run's case as validate reads it (the row's weights and KV through
    ``scheme_of_row``, TensorRT-LLM's FP8 cache rule included), checked by the closed form
    recomputed here against validate's figure."""
    import numpy as np

    from planner.catalog.store import Catalog
    from planner.fidelity.rows import scheme_of_row
    from planner.physics import load as L
    from planner.physics.options import PRESETS
    from planner.physics.space import Configs, GpuTable
    from planner.simulate import Arrivals, Lengths, simulate_config

    print("5. the NVIDIA AIPerf runs (fixed lengths, clients together, 20 N requests) in the simulator: "
          "median signed error of the mean TTFT (|error|) by prompt and clients; readings: validate, the closed "
          "form recomputed, the simulator in step / with a 20 ms client delay / outputs spread on [0.95 O, O] / "
          "out of step (steady state)")
    cat = Catalog.default()
    for model, engine, version, preset, system in SIM_SERIES:
        rows = sorted((x for x in xs if x["model"] == model and x["engine"] == engine and x["version"] == version
                       and x["mode"] == "agg" and x["system"] == system and x["n"] >= 1),
                      key=lambda x: (int(x["r"]["tp"]), x["isl"], x["osl"], x["n"]))
        errs: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for x in rows:
            tp, S, O, N = int(x["r"]["tp"]), x["isl"], x["osl"], int(x["n"])
            scheme_kv = scheme_of_row(x["r"]["precision"], fp8_cache=engine == "trtllm")
            assert not isinstance(scheme_kv, str)
            ph = L.step_physics(cat.model(model), GpuTable.build([cat.gpus[system]]),
                                Configs.single(0, *scheme_kv, tp, 1, 1, 8192, S, O), PRESETS[preset])
            eng = L.engine(ph)
            cf = 1e3 * float(L.load_metrics(ph, eng, L.Workload(S, O, start="together", requests_per_client=20),
                                            clients=N).get("ttft", "mean")[0])
            def together(think_s: float = 0.0, N: int = N) -> Arrivals:
                return Arrivals("closed", clients=N, think_s=think_s, start="together", requests_per_client=20)

            readings = ((together(), Lengths(O)), (together(0.02), Lengths(O)),
                        (together(), Lengths(list(range(int(0.95 * O), O + 1)))),
                        (Arrivals("closed", clients=N), Lengths(O)))
            sims = [1e3 * simulate_config(ph, eng, 0, arr, Lengths(S), osl, n_requests=20 * N, seed=0).summary["ttft_mean"]
                    for arr, osl in readings]
            m = x["measured"]
            for key in ((prompt_bucket(S), "<= 32" if N <= 32 else "> 32"), ("all", "")):
                for label, v in zip(SIM_READINGS, [x["predicted"], cf] + sims):
                    errs[key][label].append(100.0 * (v / m - 1.0))
            if every_row:
                print(f"    TP {tp} {S:5d}/{O:<5d} N {N:4d}: measured {m:7.0f}  validate {x['predicted']:7.0f}  closed form"
                      f" {cf:7.0f}  simulator {' / '.join(f'{v:.0f}' for v in sims)}")
            if preset != "sglang":      # the mixed engines: how much spread their runs want
                for a in SPREADS:
                    sim = simulate_config(ph, eng, 0, together(), Lengths(S),
                                          Lengths(list(range(int(a * O), O + 1))), n_requests=20 * N, seed=0)
                    errs[("all", "")][f"[{a} O, O]"].append(100.0 * (1e3 * sim.summary["ttft_mean"] / m - 1.0))
        print(f"  {model} {engine} {version} {system}:")
        for key in sorted(errs, key=lambda k: (k[0] == "all", k)):
            e = errs[key]
            print(f"    prompt {key[0]:6s} clients {key[1]:5s} n={len(e['validate']):3d}  " + "  ".join(
                f"{float(np.median(v)):+5.0f} ({float(np.median(np.abs(v))):3.0f})" for k, v in e.items()
                if k in SIM_READINGS))
        spread = {k: v for k, v in errs[("all", "")].items() if k not in SIM_READINGS}
        if spread:
            print("    the simulator with clients together and outputs spread on " + "  ".join(
                f"{k}: {float(np.median(v)):+.0f} ({float(np.median(np.abs(v))):.0f})" for k, v in spread.items()))
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", nargs="?", default=str(ROOT.parent / "shared/reference/measured-silicon.csv"))
    ap.add_argument("predictions", nargs="?", default="/tmp/validate.csv")
    ap.add_argument("--min", type=int, default=12, help="least rows of a group in section 3")
    ap.add_argument("--top", type=int, default=12, help="groups shown in section 3")
    ap.add_argument("--leads", action="store_true", help="section 4: rerun the validation per candidate")
    ap.add_argument("--simulate", action="store_true", help="section 5: the NVIDIA AIPerf runs in the simulator")
    ap.add_argument("--rows", action="store_true", help="section 5: every run's figures too")
    a = ap.parse_args()
    xs = load(a.corpus, a.predictions)
    print(f"{len(xs)} counted TTFT rows: {stats(xs)}\n")
    table("1. model x engine x mode x clients", xs, ("model", "engine", "mode", "clients"))
    table(f"2. model x engine x mode x clients x prompt (groups of >= {a.min // 2} rows)", xs,
          ("model", "engine", "mode", "clients", "prompt"), least=max(a.min // 2, 1))
    groups = [(k, g) for k, g in cut(xs, ("model", "engine", "mode", "clients", "prompt")).items()
              if len(g) >= a.min]
    groups.sort(key=lambda kv: -len(kv[1]) * abs(st.median(x["signed"] for x in kv[1])))
    print(f"3. the largest coherent groups (>= {a.min} rows; by n x |median signed|), and the rows' settings")
    for key, g in groups[:a.top]:
        print(f"  {' '.join(key)}: {stats(g)}")
        settings(g)
    print()
    slopes_table(xs)
    if a.leads:
        leads(a.corpus, xs)
    if a.simulate:
        simulated(xs, a.rows)


if __name__ == "__main__":
    main()
