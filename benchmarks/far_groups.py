"""The silicon corpus's far-off groups: what the measurements themselves say, beside the model
(issue 22; docs/validation.md "The far-off groups: misread rows or missing physics?").

Reads the corpus and the CSV ``planner validate CORPUS --csv OUT`` writes, and prints four
checks that need no step model: two bounds the measurement must obey if the row is read as
the corpus states it (1, 2), a comparison (3) and a residual (4):

1. **implied prefill compute**: a closed loop of N clients whose requests take TTFT + (O - 1)
   TPOT (measured) sends N / (TTFT + (O - 1) TPOT) prompts a second, each at least
   2 x (active non-embedding parameters) x S FLOPs. Over the deployment's GPUs at the GPU's
   highest dense peak (any format: a lower bound on the share), per system x engine x model:
   median and largest share, and the rows above the GPU's measured matmul ceiling
   (``measured_mamf_flops_per_s``, the largest format's) as a share of that peak. A lower
   bound where the stated lengths were served and each client sends its next request as its
   last one ends: time between a client's requests, shorter prompts or longer outputs lower
   the true share (shorter outputs raise it).
2. **clients in step**: rows validate reads as clients that start together and stay in step
   (fixed lengths, a benchmark's max-concurrency): a full wave of W = N / replicas prompts
   prefilled at the highest dense peak makes the mean TTFT at least (W + 1) / 2 x S x 2 P /
   (TP x PP x peak). Per group: rows measured below that bound (the clients were not all in
   one wave), with the median signed error of their TTFT.
3. **replicas read from N / batch**: the NVIDIA rows whose replica count the corpus reads as
   N / AIC's batch_size (measured-silicon.md: "read so here; the source does not state it")
   against the NVIDIA rows of one replica: median signed TPOT and TTFT error, and the
   Qwen3-32B GB200 family where one client on one replica and one client a replica on two
   are both measured.
4. **few clients**: median measured - predicted TTFT (ms) of the aggregated rows with at most
   8 clients a replica, where nothing queues (the serving path and the prefill), per engine x
   system x model.

Usage: python benchmarks/far_groups.py [CORPUS] [VALIDATE_CSV]
(default ../shared/reference/measured-silicon.csv and /tmp/validate.csv).
"""

from __future__ import annotations

import csv
import math
import statistics as st
import sys
from collections import defaultdict

from planner.errors import InputError
from planner.fidelity.corpus import load_corpus
from planner.physics.params import count_parameters


def prefill_share(clients: float, ttft_ms: float, tpot_ms: float, input_tokens: float, output_tokens: float,
                  active_params: float, gpus: float, peak_flops: float) -> float:
    """Section 1: the share of ``gpus`` x ``peak_flops`` that the prompts of a closed loop of
    ``clients`` need, each request taking TTFT + (O - 1) TPOT and each prompt at least
    2 x ``active_params`` x S FLOPs."""
    cycle_s = (ttft_ms + (output_tokens - 1.0) * tpot_ms) / 1e3
    return clients / cycle_s * input_tokens * 2.0 * active_params / (gpus * peak_flops)


def wave_bound_ms(wave: float, input_tokens: float, active_params: float, tp: float, pp: float,
                  peak_flops: float) -> float:
    """Section 2: the least mean TTFT (ms) of ``wave`` prompts of S tokens arriving together and
    prefilled one after another at the replica's peak: the i-th waits i prompts, mean (W + 1) / 2."""
    return (wave + 1.0) / 2.0 * input_tokens * 2.0 * active_params / (tp * pp * peak_flops) * 1e3


def validate_rows(rows: list[dict], csv_path: str) -> dict[int, dict] | str:
    """validate's CSV (``--csv``) by corpus line, or why it is not the CSV of these ``rows``:
    every line must carry its corpus row's metric and measured value (a CSV of another file,
    or of an older corpus, would pair each row with another row's prediction)."""
    try:
        with open(csv_path, newline="") as fh:
            val = {int(r["row"]): r for r in csv.DictReader(fh)}
        for i, r in enumerate(rows):
            v = val.get(i + 2)
            if v is None or v["metric"] != r["metric"] or not math.isclose(
                    float(v["measured"]), float(r["value"]), rel_tol=1e-4):
                return (f"{csv_path} is not validate's CSV of this corpus: line {i + 2} "
                        f"({r['metric']} {r['value']}) is {'missing' if v is None else v['metric'] + ' ' + v['measured']}")
    except (OSError, KeyError, ValueError, TypeError, csv.Error) as exc:
        return f"{csv_path} is not validate's CSV ({type(exc).__name__}: {exc})"
    return val


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    corpus_path = argv[0] if argv else "../shared/reference/measured-silicon.csv"
    csv_path = argv[1] if len(argv) > 1 else "/tmp/validate.csv"
    try:
        c = load_corpus(corpus_path)
    except InputError as exc:
        print(f"far_groups.py: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    val = validate_rows(c.rows, csv_path)
    if isinstance(val, str):
        print(f"far_groups.py: {val}; write it with: python -m planner validate {corpus_path} --csv {csv_path}",
              file=sys.stderr)
        raise SystemExit(2)
    pairs: dict[str, dict[str, tuple]] = defaultdict(dict)
    for m in c.mapped():
        v, k = val.get(m.i + 2), m.expressed
        if v is None or v["counted"] != "yes" or k is None or k.pools is not None or k.load is None:
            continue
        pairs[m.row["silicon_id"]][m.row["metric"][:4]] = (m, v)

    prefill: dict[tuple, list[tuple]] = defaultdict(list)
    wave: dict[tuple, list[tuple]] = defaultdict(list)
    replicas: dict[tuple, list[float]] = defaultdict(list)
    few: dict[tuple, list[float]] = defaultdict(list)
    for d in pairs.values():
        if len(d) < 2:
            continue
        (m, vt), (_, vp) = d["ttft"], d["tpot"]
        k = m.expressed
        gpu = c.catalog.gpus[k.gpu]
        peak = max(gpu.peak_dense_flops_per_s.values())
        mamf = max((gpu.measured_mamf_flops_per_s or {}).values(), default=peak)
        p = count_parameters(c.catalog.models[k.model]).active_nonembedding
        n, s, o = k.load[1], k.input_tokens, k.output_tokens
        ttft, tpot = float(vt["measured"]), float(vp["measured"])
        key = (vt["system"], vt["engine"], vt["model_id"])
        share = prefill_share(n, ttft, tpot, s, o, p, k.gpu_count, peak)
        prefill[key].append((share, mamf / peak, m.i + 2))
        if k.start == "together" and k.isl_cv2 == 0.0:
            bound = wave_bound_ms(n / k.replicas, s, p, k.tp, k.pp, peak)
            wave[key].append((ttft / bound, float(vt["signed_pct_error"])))
        if n / k.replicas <= 8.0:
            few[(vt["engine"], vt["system"], vt["model_id"])].append(ttft - float(vt["predicted"]))
        if m.row["provenance"].startswith("NVIDIA"):
            many = "N / batch replicas" if k.replicas > 1 else "one replica"
            replicas[(many, "tpot")].append(float(vp["signed_pct_error"]))
            replicas[(many, "ttft")].append(float(vt["signed_pct_error"]))

    print("1. implied prefill compute: share of the GPUs' highest dense peak (aggregated rows under load)")
    print(f"{'system':9} {'engine':7} {'model':16} {'n':>4} {'median':>7} {'max':>6}  rows above the matmul ceiling")
    for key, xs in sorted(prefill.items()):
        shares = [x[0] for x in xs]
        above = [x[2] for x in xs if x[0] > x[1]]
        print(f"{key[0]:9} {key[1]:7} {key[2]:16} {len(xs):4d} {st.median(shares):7.2f} {max(shares):6.2f}  "
              f"{len(above)} {above[:6]}")

    print("\n2. clients in step: mean TTFT against a full wave's lower bound (rows read as in step)")
    print(f"{'system':9} {'engine':7} {'model':16} {'n':>4} {'below':>5} {'median TTFT / bound':>20} "
          f"{'signed TTFT error %, median':>28}")
    for key, ws in sorted(wave.items()):
        print(f"{key[0]:9} {key[1]:7} {key[2]:16} {len(ws):4d} {sum(x[0] < 1.0 for x in ws):5d} "
              f"{st.median(x[0] for x in ws):20.2f} {st.median(x[1] for x in ws):28.1f}")

    print("\n3. NVIDIA rows: replicas read as N / batch against one replica (median signed error %)")
    for key, errs in sorted(replicas.items()):
        print(f"  {key[0]:18} {key[1]}: n {len(errs):4d}, {st.median(errs):+.1f}")
    print("  Qwen3-32B, GB200, TensorRT-LLM 1.3.0rc1, 2000/500 (measured TPOT, ms; replicas as read):")
    for m in c.mapped(lambda i, r: "qwen3_32b" in r["silicon_id"] and r["gpu"].startswith("GB200")
                      and r["framework"].startswith("TensorRT-LLM 1.3.0rc1") and r["input_len"] == "2000"
                      and r["metric"] == "tpot_ms_mean"):
        k = m.expressed
        if k is not None and k.load is not None and k.load[1] / k.replicas <= 1.0:
            print(f"    line {m.i + 2}: {k.load[1]:g} clients over {k.replicas:g} replica(s) of TP {k.tp}: "
                  f"TPOT {float(m.row['value']):.1f}")

    print("\n4. at most 8 clients a replica: median measured - predicted TTFT, ms")
    for key, diffs in sorted(few.items()):
        print(f"  {key[0]:7} {key[1]:9} {key[2]:16} n {len(diffs):3d}  {st.median(diffs):+8.1f}")


if __name__ == "__main__":
    main()
