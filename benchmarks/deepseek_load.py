"""DeepSeek's aggregated TTFT under load: the closed loop, the simulator and the KV admission
(issue 22 item 2; docs/validation.md "DeepSeek under load: the closed loop and the KV
admission").

    python benchmarks/deepseek_load.py [CORPUS] [--no-simulate] [--no-paged]

Prints, from the corpus (default ../shared/reference/measured-silicon.csv) and this checkout's
``planner validate`` of it (run here, ~20 s):

1. **The growth with the clients** (DeepSeek-R1 on 8 B200, SGLang 0.5.9, FP8 and NVFP4, 1k
   prompts, ``SERIES``): per run the measured TTFT and TPOT, the closed form's (validate's),
   and planner/simulate.py's closed loop of the same case (clients starting together, prompts
   and outputs uniform on [0.8 L, L], 10 N requests, one seed); then the least-squares slope of
   each TTFT against the clients at <= 64 clients (ms a client). With ``--no-simulate`` the
   simulator's columns are left out (a few minutes saved).
2. **The KV admission** (every aggregated SGLang and vLLM run whose clients a lane's KV slots
   cannot all hold as the model counts them, N_l > M): the slots M at S + O tokens a sequence
   (reserved at admission, the model), at S + O / 2 (pages allocated as tokens arrive: the mean a
   sequence holds over its life), and the sequences the measurement implies were running,
   N (O - 1) TPOT / (TTFT + (O - 1) TPOT) (Little's law on the decode phase); the measured TTFT,
   validate's, and validate's with the slots at S + O / 2 (``paged``, a what-if for this run
   only: the load model's engine() patched, SGLang's and vLLM's slots both).
3. With ``--no-paged`` left out: **the what-if's headline**: validate with SGLang's slots at
   S + O / 2 (and with vLLM's too), the rows that move and how many get better or worse, by
   model, engine, system and mode (aggregated, disaggregated).
"""

from __future__ import annotations

import argparse
import math
import statistics as st
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from planner.fidelity import predict as P  # noqa: E402
from planner.fidelity import validate as V  # noqa: E402
from planner.fidelity.corpus import load_corpus  # noqa: E402
from planner.fidelity.predict import _configs, row_assumptions  # noqa: E402
from planner.physics import load as L  # noqa: E402
from planner.physics.options import PRESETS  # noqa: E402
from planner.physics.space import GpuTable  # noqa: E402
from planner.simulate import Arrivals, Lengths, simulate_config  # noqa: E402

# (engine version, weights, TP, input, output) of the DeepSeek-R1 series on 8 B200 read in section 1
SERIES = (("0.5.9", "W=fp8", 8, 1024, 1024), ("0.5.9", "W=fp8", 8, 1024, 8192),
          ("0.5.9", "W=nvfp4", 8, 1024, 1024), ("0.5.9", "W=nvfp4", 8, 1024, 8192))


def records(corpus: str, paged: tuple[str, ...] = ()) -> dict[int, dict]:
    """validate's records by row (CSV line), with the KV slots of the ``paged`` engines at
    S + O / 2 tokens a sequence for this run only."""
    saved = P.scheduler

    def scheduler(phys, *a, **k):
        eng = saved(phys, *a, **k)
        if phys.o.engine not in paged:
            return eng
        held = phys.configs.input_tokens + 0.5 * phys.configs.output_tokens
        room = np.where(phys.max_batch >= 1.0, np.maximum(np.floor(phys.kv_pool_tokens / held), phys.max_batch), 0.0)
        return replace(eng, max_seqs=np.minimum(phys.configs.batch, room))

    P.scheduler = scheduler
    try:
        return {int(r["row"]): r for r in V.validate_file(corpus).records()}
    finally:
        P.scheduler = saved


def _case_physics(corp, c):
    table = GpuTable.build([corp.catalog.gpu(c.gpu)])
    o = row_assumptions(PRESETS["realistic"], c.engine)
    ph = L.step_physics(corp.catalog.models[c.model], table, _configs([c], [c.gpu], np.array([float(c.batch)])), o)
    return ph, L.engine(ph)


def _slope(points: list[tuple[float, float]]) -> float:
    pts = [(n, y) for n, y in points if n <= 64]
    if len(pts) < 3:
        return float("nan")
    mx, my = st.mean(n for n, _ in pts), st.mean(y for _, y in pts)
    return sum((n - mx) * (y - my) for n, y in pts) / sum((n - mx) ** 2 for n, _ in pts)


def growth(corp, recs: dict[int, dict], simulate: bool) -> None:
    print("1. DeepSeek-R1 on 8 B200, SGLang: TTFT (ms) and TPOT (ms) against the clients")
    mapped = {m.i: m for m in corp.mapped() if m.expressed is not None}
    for version, weights, tp, isl, osl in SERIES:
        runs = []
        for i, m in mapped.items():
            r, c = m.row, m.expressed
            if not (c.model.startswith("deepseek") and c.gpu == "b200" and dict(c.engine).get("engine") == "sglang"
                    and r["framework"].endswith(version) and r["precision"].startswith(weights + ";")
                    and c.tp == tp and int(r["input_len"]) == isl and int(r["output_len"]) == osl
                    and r["mode"] == "agg" and r["metric"] == "ttft_ms_mean" and c.load is not None):
                continue
            tpot_row = next((j for j in (i - 1, i + 1) if j in mapped and mapped[j].row["metric"] == "tpot_ms_mean"
                             and mapped[j].row["silicon_id"] == r["silicon_id"]), None)
            if tpot_row is None or "MTP" in recs[i + 2]["mode"]:
                continue
            runs.append((c.load[1], i, tpot_row, c))
        if not runs:
            continue
        print(f"\n  SGLang {version}, {weights[2:]}, TP {tp}, {isl} / {osl} (InferenceX; lengths on [0.8 L, L])")
        head = "  clients | measured TTFT TPOT | closed form TTFT TPOT"
        print(head + (" | simulated TTFT TPOT X/s" if simulate else ""))
        cols: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for n, i, j, c in sorted(runs, key=lambda x: x[0]):
            mt, mp = float(corp.rows[i]["value"]), float(corp.rows[j]["value"])
            pt, pp = float(recs[i + 2]["predicted"] or "nan"), float(recs[j + 2]["predicted"] or "nan")
            line = f"  {n:7.0f} | {mt:9.1f} {mp:6.2f} | {pt:11.1f} {pp:6.2f}"
            cols["measured"].append((n, mt))
            cols["closed form"].append((n, pt))
            if simulate:
                ph, eng = _case_physics(corp, c)
                S, O = round(c.input_tokens / 0.9), round(c.output_tokens / 0.9)
                s = simulate_config(ph, eng, 0, Arrivals("closed", clients=int(n), start="together",
                                                         requests_per_client=c.requests_per_client),
                                    Lengths(list(range(int(0.8 * S), S + 1))), Lengths(list(range(int(0.8 * O), O + 1))),
                                    seed=1)
                line += f" | {s.summary['ttft_mean'] * 1e3:9.1f} {s.summary['tpot_mean'] * 1e3:6.2f} {s.throughput_rps:5.2f}"
                cols["simulated"].append((n, s.summary["ttft_mean"] * 1e3))
            print(line, flush=True)
        print("  TTFT slope at <= 64 clients, ms a client: "
              + ", ".join(f"{k} {_slope(v):.2f}" for k, v in cols.items()))


def admission(corp, base: dict[int, dict], paged: dict[int, dict]) -> None:
    print("\n2. KV admission: runs whose lane's clients exceed the model's KV slots (S + O reserved)")
    print("  row | model | GPU | engine | TP | S / O | clients | M at S+O | M at S+O/2 | running implied | "
          "TTFT measured | validate | slots at S+O/2")
    for m in corp.mapped():
        c, r = m.expressed, m.row
        if (c is None or c.load is None or c.pools is not None or r["metric"] != "ttft_ms_mean"
                or dict(c.engine).get("engine") not in ("sglang", "vllm")):
            continue
        ph, eng = _case_physics(corp, c)
        N_l = c.load[1] / c.replicas / float(ph.lanes[0])
        M = float(eng.max_seqs[0])
        if N_l <= M:
            continue
        k = m.i + 2
        tp_rows = [j for j in (m.i - 1, m.i + 1) if 0 <= j < len(corp.rows)
                   and corp.rows[j]["silicon_id"] == r["silicon_id"] and corp.rows[j]["metric"] == "tpot_ms_mean"]
        if not tp_rows or base[k]["counted"] != "yes":
            continue
        ttft, tpot = float(r["value"]), float(corp.rows[tp_rows[0]]["value"])
        running = N_l * (c.output_tokens - 1.0) * tpot / (ttft + (c.output_tokens - 1.0) * tpot)
        held = c.input_tokens + 0.5 * c.output_tokens
        m_paged = min(float(c.batch), math.floor(float(ph.kv_pool_tokens[0]) / held))
        print(f"  {k} | {c.model} | {c.gpu} | {dict(c.engine).get('engine')} | {c.tp} | {c.input_tokens:.0f} / "
              f"{c.output_tokens:.0f} | {N_l:.0f} | {M:.0f} | {m_paged:.0f} | {running:.0f} | {ttft:,.0f} | "
              f"{float(base[k]['predicted'] or 'nan'):,.0f} | {float(paged[k]['predicted'] or 'nan'):,.0f}")


def _logerr(r: dict) -> float:
    return abs(math.log(float(r["predicted"]) / float(r["measured"])))


def what_if(name: str, base: dict[int, dict], other: dict[int, dict]) -> None:
    rows = [k for k, r in base.items() if r["counted"] == "yes" and r["abs_pct_error"] and other[k]["abs_pct_error"]]
    print(f"\n3. {name}")
    for metric in ("ttft", "tpot"):
        ks = [k for k in rows if base[k]["metric"].startswith(metric)]
        a = st.median(float(base[k]["abs_pct_error"]) for k in ks)
        b = st.median(float(other[k]["abs_pct_error"]) for k in ks)
        print(f"  {metric}: median |error| {a:.1f} -> {b:.1f} % ({len(ks)} counted rows)")
    moved: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
    for k in rows:
        if abs(_logerr(other[k]) - _logerr(base[k])) > 0.01:       # moved by more than 1 %
            r = base[k]
            mode = "agg" if r["mode"].startswith("agg") else "disagg"
            moved[(r["metric"][:4], r["model_id"], r["engine"], r["system"], mode)].append((_logerr(r), _logerr(other[k])))
    print("  rows that move by more than 1 %: metric, model, engine, system, mode: n, better / worse, mean "
          "|log(predicted / measured)|")
    for key, v in sorted(moved.items()):
        better = sum(b < a for a, b in v)
        worse = sum(b > a for a, b in v)
        print(f"    {' '.join(key)}: {len(v)}, {better} / {worse}, {st.mean(a for a, _ in v):.3f} -> "
              f"{st.mean(b for _, b in v):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="?", default=str(ROOT.parent / "shared" / "reference" / "measured-silicon.csv"))
    ap.add_argument("--no-simulate", action="store_true")
    ap.add_argument("--no-paged", action="store_true")
    args = ap.parse_args()
    corp = load_corpus(args.corpus)
    base = records(args.corpus)
    growth(corp, base, not args.no_simulate)
    both = records(args.corpus, ("sglang", "vllm"))
    admission(corp, base, both)
    if not args.no_paged:
        what_if("validate with SGLang's KV slots at S + O / 2", base, records(args.corpus, ("sglang",)))
        what_if("validate with SGLang's and vLLM's KV slots at S + O / 2", base, both)


if __name__ == "__main__":
    main()
