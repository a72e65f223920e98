"""SGLang's TTFT rows: where the error lies, and two leads read off the rows themselves
(issue 22 item 2; docs/validation.md "SGLang's TTFT: where the error lies").

Reads the corpus and the CSV ``planner validate CORPUS --csv OUT`` writes (each measurement
once: validate's ``counted`` rows with both metrics predicted) and prints, for SGLang:

1. **groups**: mode x system x model x clients band (<= 8, 9-64, 65-256, > 256): rows, median
   |error| and signed error of the TTFT, TTFT's share f of a request's measured time
   (TTFT / (TTFT + (O - 1) TPOT)), and the ratio of the measured request rate to the model's
   (X = N / (TTFT + (O - 1) TPOT) for each, Little's law over a closed loop of N clients).
   Where f is small the request rate is fixed by the decode and a TTFT error is the prompt's
   own path; where f is large the TTFT is a queue, and an error in X of e gives an error in
   TTFT of about e / f.
2. **the engine's median**: how many rows are within 25 % today, how many more the median
   needs, and the rows above 25 % by group.
3. **the prefill pools at saturation**: disaggregated rows with stated pools whose TTFT is a
   queue (f >= 0.15): prompt tokens a second a prefill GPU, X x S / (prefill GPUs), measured
   and the model's, by the prefill pool's MoE layout (experts split by EP, whose all-to-all the
   SGLang profile's two-batch overlap hides, or by TP, with no all-to-all), beside the same
   system and format's TTFT ratio at <= 8 clients (a lone prompt's prefill and serving path,
   measured / predicted).

Mean lengths: 0.9 L where the row's lengths are uniform on [0.8 L, L], else L.

``--engine trtllm`` (or vllm) reads that engine's rows instead (the contrast of section 3).
``--whatif OUT`` runs ``planner validate`` (in a process of its own, ~10 s) on the corpus with
SGLang's NVFP4 rows read as NVFP4 bytes with FP8 math (a scheme registered for that run only,
``WHATIF_SCHEME``: 4.5 bits a weight, the GEMMs at the fp8 rate), writes its CSV to OUT and
prints validate's tables with the plain run's (VALIDATE_CSV, ``--baseline``) beside them: a
what-if, not a reading of the model.

Usage: python benchmarks/sglang_ttft.py [CORPUS] [VALIDATE_CSV] [--engine E] [--whatif OUT]
(default ../shared/reference/measured-silicon.csv and /tmp/validate.csv).
"""

from __future__ import annotations

import csv
import math
import statistics as st
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.far_groups import validate_rows  # noqa: E402

BANDS = ((8, "<=8"), (64, "9-64"), (256, "65-256"), (math.inf, ">256"))


def band(n: float) -> str:
    return next(name for top, name in BANDS if n <= top)


def mean_length(nominal: float, distribution: str) -> float:
    """The mean of a row's lengths: 0.9 L for lengths uniform on [0.8 L, L], else L."""
    return 0.9 * nominal if "0.8 L" in distribution else nominal


def rate(clients: float, ttft_ms: float, tpot_ms: float, output_tokens: float) -> float:
    """Requests a second of a closed loop of ``clients`` whose requests take TTFT + (O - 1) TPOT."""
    return clients / ((ttft_ms + (output_tokens - 1.0) * tpot_ms) / 1e3)


def ttft_share(ttft_ms: float, tpot_ms: float, output_tokens: float) -> float:
    return ttft_ms / (ttft_ms + (output_tokens - 1.0) * tpot_ms)


def fmt(row: dict) -> str:
    return "nvfp4" if "nvfp4" in row["precision"].lower() else "fp8" if "fp8" in row["precision"].lower() else "16-bit"


def num(x: str) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def records(rows: list[dict], val: dict[int, dict], engine: str = "sglang") -> list[dict]:
    """One record a counted measurement of ``engine`` with both metrics predicted."""
    by_id: dict[str, dict[str, tuple]] = defaultdict(dict)
    for i, r in enumerate(rows):
        v = val.get(i + 2)
        if v is None or v["engine"] != engine or v["counted"] != "yes" or not v["predicted"]:
            continue
        by_id[r["silicon_id"]][r["metric"][:4]] = (r, v)
    out = []
    for d in by_id.values():
        if "ttft" not in d or "tpot" not in d:
            continue
        (r, vt), (_, vp) = d["ttft"], d["tpot"]
        N = num(r["concurrency_total"])
        if not N > 0:
            continue
        O = mean_length(num(r["output_len"]), r["length_distribution"])
        S = mean_length(num(r["input_len"]), r["length_distribution"])
        tm, tp, pm, pp = (float(vt["measured"]), float(vt["predicted"]), float(vp["measured"]),
                          float(vp["predicted"]))
        gpus = num(r["prefill_workers"]) * num(r["prefill_gpus_per_worker"])
        out.append(dict(mode="disagg" if vt["mode"].startswith("disagg") else "agg", system=vt["system"],
                        model=vt["model_id"], fmt=fmt(r), N=N, S=S, O=O, err=float(vt["signed_pct_error"]),
                        ttft_m=tm, ttft_p=tp, f=ttft_share(tm, pm, O), x_ratio=rate(N, tm, pm, O) / rate(N, tp, pp, O),
                        prefill_gpus=gpus, stated=vt["mode"].startswith("disagg") and "recipe" not in vt["mode"]
                        and "assumed" not in vt["mode"], tok_m=rate(N, tm, pm, O) * S / gpus,
                        tok_p=rate(N, tp, pp, O) * S / gpus, line=r))
    return out


def med(xs: list[float]) -> float:
    return st.median(xs) if xs else math.nan


WHATIF_SCHEME = "fp4-fp8math"
"""The what-if's scheme: NVFP4's 4.5 bits a weight, fp8 math (registered in the what-if's process only)."""

_WHATIF_RUN = """
import sys
from planner.physics import quant
quant.SCHEMES[{name!r}] = quant.Scheme({name!r}, 4.5, "fp8", None, "what-if: NVFP4 bytes, fp8 math", False)
from planner.cli.entry import main
main(["validate", {corpus!r}, "--csv", {out!r}, "--baseline", {base!r}])
"""


def whatif_rows(rows: list[dict], scheme: str = WHATIF_SCHEME) -> list[dict]:
    """The corpus with SGLang's NVFP4 rows naming ``scheme`` in their precision column."""
    return [dict(r, precision=r["precision"] + f" scheme={scheme}")
            if "sglang" in r["framework"].lower() and "w=nvfp4" in r["precision"].lower() else r for r in rows]


def run_whatif(rows: list[dict], out: str, baseline: str) -> int:
    """``planner validate`` on ``whatif_rows`` with ``WHATIF_SCHEME`` registered, its CSV to
    ``out`` and its tables beside ``baseline`` (the plain run's CSV)."""
    import os
    import subprocess
    import tempfile
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        corpus = os.path.join(tmp, "whatif.csv")
        with open(corpus, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(whatif_rows(rows))
        code = _WHATIF_RUN.format(name=WHATIF_SCHEME, corpus=corpus, out=out, base=baseline)
        env = dict(os.environ, PYTHONPATH=str(root))
        return subprocess.run([sys.executable, "-c", code], cwd=root, env=env).returncode


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    opts: dict[str, str] = {}
    for flag in ("--engine", "--whatif"):
        if flag in argv:
            k = argv.index(flag)
            if k + 1 >= len(argv):
                print(f"sglang_ttft.py: {flag} needs a value", file=sys.stderr)
                raise SystemExit(2)
            opts[flag] = argv[k + 1]
            del argv[k:k + 2]
    engine = opts.get("--engine", "sglang")
    corpus_path = argv[0] if argv else "../shared/reference/measured-silicon.csv"
    csv_path = argv[1] if len(argv) > 1 else "/tmp/validate.csv"
    try:
        with open(corpus_path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        print(f"sglang_ttft.py: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if "--whatif" in opts:
        rc = run_whatif(rows, opts["--whatif"], csv_path)
        print(f"what-if validate: exit {rc}, its CSV in {opts['--whatif']} (set it beside {csv_path})")
        if rc:
            raise SystemExit(rc)
        return
    val = validate_rows(rows, csv_path)
    if isinstance(val, str):
        print(f"sglang_ttft.py: {val}; write it with: python -m planner validate {corpus_path} --csv {csv_path}",
              file=sys.stderr)
        raise SystemExit(2)
    recs = records(rows, val, engine)
    print(f"engine: {engine}")

    print("1. SGLang TTFT by mode x system x model x clients: rows, median |error| % (signed), "
          "TTFT's share f of a request, measured / model request rate X")
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in recs:
        groups[(r["mode"], r["system"], r["model"], band(r["N"]))].append(r)
    order = {name: i for i, (_, name) in enumerate(BANDS)}
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2], order[k[3]])):
        g = groups[key]
        errs = [r["err"] for r in g]
        print(f"  {key[0]:6s} {key[1]:8s} {key[2]:16s} {key[3]:>6s} {len(g):4d}  "
              f"{med([abs(e) for e in errs]):6.1f} ({med(errs):+6.1f})  f {med([r['f'] for r in g]):.3f}  "
              f"X {med([r['x_ratio'] for r in g]):.2f}")

    print("\n2. The engine's median: rows within 25 % and what the median needs")
    n = len(recs)
    within = sum(abs(r["err"]) <= 25.0 for r in recs)
    print(f"  {n} measurements, {within} within 25 %, {max(math.ceil(n / 2) - within, 0)} more needed; "
          f"median |error| {med([abs(r['err']) for r in recs]):.1f} %")
    for name, sub in (("DeepSeek-R1/V3", [r for r in recs if r["model"].startswith("deepseek")]),
                      ("every other model", [r for r in recs if not r["model"].startswith("deepseek")])):
        print(f"  {name}: {len(sub)} measurements, median |error| {med([abs(r['err']) for r in sub]):.1f} % "
              f"({med([r['err'] for r in sub]):+.1f} signed)")
    for b in (name for _, name in BANDS):
        sub = [r["err"] for r in recs if band(r["N"]) == b]
        print(f"  clients {b:>6s}: {len(sub)} measurements, median |error| {med([abs(e) for e in sub]):.1f} % "
              f"({med(sub):+.1f} signed)")
    over: dict[tuple, list[float]] = defaultdict(list)
    for r in recs:
        if abs(r["err"]) > 25.0:
            over[(r["mode"], r["system"], r["model"])].append(r["err"])
    for key, errs in sorted(over.items(), key=lambda kv: -len(kv[1])):
        print(f"  {' '.join(key):42s} {len(errs):4d} above 25 %, signed median {med(errs):+6.1f}")

    print("\n3. Disaggregated rows with stated pools, TTFT a queue (f >= 0.15): prompt tokens/s a prefill GPU "
          "(measured / model), beside the TTFT ratio at <= 8 clients")
    low: dict[tuple, list[float]] = defaultdict(list)
    for r in recs:
        if r["mode"] == "disagg" and r["N"] <= 8:
            low[(r["system"], r["fmt"])].append(r["ttft_m"] / r["ttft_p"])
    sat: dict[tuple, list[dict]] = defaultdict(list)
    for r in recs:
        if r["stated"] and r["f"] >= 0.15 and r["prefill_gpus"] > 0:
            moe = "EP" if num(r["line"]["prefill_moe_ep"]) > 1 else "TP"
            sat[(r["system"], r["fmt"], int(r["line"]["input_len"]), moe)].append(r)
    for key in sorted(sat):
        g = sat[key]
        ratio = med([r["tok_m"] / r["tok_p"] for r in g])
        print(f"  {key[0]:6s} {key[1]:6s} ISL {key[2]:5d} MoE {key[3]}  {len(g):3d} rows  measured {med([r['tok_m'] for r in g]):8.0f}"
              f"  model {med([r['tok_p'] for r in g]):8.0f}  ratio {ratio:.2f} (1 / ratio {1 / ratio:.2f})"
              f"   TTFT ratio at <= 8 clients {med(low[(key[0], key[1])]):.2f} ({len(low[(key[0], key[1])])} rows)")
        for r in sorted(g, key=lambda r: r["N"]):
            ln = r["line"]
            print(f"      N {r['N']:6.0f}  {ln['prefill_workers']} x attention DP {ln['prefill_attention_dp']}, "
                  f"{ln['framework'][:24]:24s} measured {r['tok_m']:6.0f}  model {r['tok_p']:6.0f}  "
                  f"TTFT {r['ttft_m'] / 1e3:6.1f} s / {r['ttft_p'] / 1e3:6.1f} s")


if __name__ == "__main__":
    main()
