"""Three more candidate causes of the aggregated TTFT error under load (issue 22 item 2).

    python benchmarks/ttft_causes.py [CSV] [--records VALIDATE_CSV]

Default: ../shared/reference/measured-silicon.csv, predicted by `planner validate` (realistic
preset, each row's engine profile, no calibration; ~30 s); `--records` reads instead the
`--csv` of such a run. Aggregated closed-loop runs with both metrics predicted, each counted
measurement once. Each check prints its evidence; docs/validation.md says what was concluded.

1. **The first token k decode steps late** (an engine's stream interval, its overlap
   scheduler returning a token one step after the step that made it, output batching in the
   detokenizer): TTFT would be the model's minus the profile's serving path, plus a + k x the
   decode step. Per engine, (a, k) fitted on a grid (a 0-200 ms, k 0-30 steps; median |log
   error|) on the runs of at most 8 clients, where nothing queues, the model's predicted TPOT
   as the step; then the median |error| of every run of the engine, of the runs past 8
   clients (out of sample), and of each system and each model left out of the fit (its runs
   predicted by the fit of the others), against today's serving path.
2. **A throughput ceiling the model lacks.** Pairs of runs alike in every recorded column but
   the clients (N and 2N, N >= 32): the measured throughput X = N / (TTFT + (O - 1) TPOT) at 2N
   over that at N, and the model's. Where the measured ratio is near 1 and the model's is not,
   the engine is at a ceiling the model does not have, and the TTFT the model misses is the
   queue for it: its share of the measured cycle, and the running requests it implies, 2N
   (1 - share).
3. **Attention data parallelism.** DeepSeek's TTFT and TPOT errors with attention DP (attention
   TP x DP = the GPUs, the MoE over them) and without, by clients: a lock-step of the DP ranks
   (the MoE layers' all-to-all makes every rank wait for the slowest, so one rank's prompt
   stalls the others' decode) would show in TPOT and grow with the clients.
4. **How much KV a sequence holds, and in what dtype.** A closed loop whose lane holds at most
   M sequences keeps N_l - M clients waiting, (N_l - M) / N_l of the cycle: a run is counted
   queued when its measured TTFT is over 10 % of its measured cycle (TTFT + (O - 1) TPOT),
   and each hypothesis predicts it queued where M < 0.9 N_l. M = the KV pool over what a
   sequence holds: S + O reserved at admission (the load model today; TensorRT-LLM's
   GUARANTEED_NO_EVICT) or S + O/2 held on average (blocks allocated as tokens arrive: vLLM's
   paged KV, SGLang's retracting scheduler, TensorRT-LLM's MAX_UTILIZATION), with the row's KV
   dtype (16-bit where unstated) or FP8. Counted per engine over the runs on which the four
   hypotheses do not all agree, with the TPOT median |error| of the same engine's runs under
   an FP8 cache (a cache of half the bytes makes decode faster where it reads long contexts).
   4b: the validation rerun with vLLM's and SGLang's lanes holding S + O/2 a sequence (what
   building "held as tokens arrive" for them would move; aggregated rows, per engine).
5. **One prompt a step** (a recipe's token budget sized to the running sequences plus one
   prompt, T = S + min(N_l, M)): the validation rerun with that budget, per engine and model.
6. **The closed form against its simulator, and the mean TPOT as the corpus computes it**
   (issue 22 item 2, second part): on corpus-like configurations (clients starting together,
   lengths uniform on [0.8 L, L], a run of 10 N requests), the closed form's mean TTFT and TPOT
   beside the simulator's (planner/simulate.py, the same step physics), whose TPOT is the mean
   over requests of (end-to-end - TTFT) / (O - 1), as `vllm bench serve` and InferenceX compute
   it, and beside its token-weighted mean inter-token time (what a time average of the step
   is). Where the closed form agrees with the simulator, what the rows miss is in the step
   physics or the engine, not in the queueing.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from admission_check import paired  # noqa: E402
from ttft_growth_check import load_inputs  # noqa: E402

from planner.catalog.store import Catalog  # noqa: E402
from planner.fidelity import predict as P  # noqa: E402
from planner.fidelity import rows as RW  # noqa: E402
from planner.physics import load as L  # noqa: E402
from planner.physics.options import PRESETS, engine_profile  # noqa: E402
from planner.physics.space import Configs, GpuTable  # noqa: E402
from planner.simulate import Arrivals, Lengths, simulate_config  # noqa: E402

SERIES_COLUMNS = ("system", "engine", "engine_version", "model_id", "precision", "attention_tp", "attention_dp",
                  "moe_ep", "replicas", "length_distribution", "input_len", "output_len")
LOW = 8
A_GRID = np.arange(0.0, 201.0, 10.0)
K_GRID = np.arange(0.0, 31.0, 1.0)


def runs(records: list[dict], corpus: list[dict]) -> list[dict]:
    """One dict per aggregated closed-loop run with both metrics predicted."""
    out = []
    for t, p, src in paired(records, corpus):
        n = re.match(r"[\d.]+", t["load"])
        if not n:
            continue
        scale = 0.9 if src["length_distribution"].startswith("uniform") else 1.0
        out.append({"row": int(t["row"]), "engine": t["engine"], "system": t["system"], "model": t["model_id"], "N": float(n.group()),
                    "ttft": float(t["measured"]), "ttft_pred": float(t["predicted"]),
                    "tpot": float(p["measured"]), "tpot_pred": float(p["predicted"]),
                    "O": float(src["output_len"]) * scale,
                    "adp": int(src["attention_dp"] or 1) > 1 or int(src["moe_ep"] or 1) > int(src["attention_tp"] or 1),
                    "key": tuple(src.get(c, "") for c in SERIES_COLUMNS if c not in ("system", "engine"))
                    + (t["system"], t["engine"], t["engine_version"], t["model_id"])})
    return out


def shifted(rs: list[dict], a_ms: float, k: float) -> np.ndarray:
    """TTFT with the profile's serving path replaced by a + k predicted decode steps."""
    return np.array([r["ttft_pred"] - 1e3 * float(engine_profile(r["engine"])["serving_overhead_s"])  # type: ignore[arg-type]
                     + a_ms + k * r["tpot_pred"] for r in rs])


def med_abs(pred: np.ndarray, rs: list[dict]) -> float:
    meas = np.array([r["ttft"] for r in rs])
    return float(100 * np.median(np.abs(pred / meas - 1))) if len(rs) else float("nan")


def fit(rs: list[dict]) -> tuple[float, float]:
    meas = np.log([r["ttft"] for r in rs])
    best = min((float(np.median(np.abs(np.log(np.maximum(shifted(rs, a, k), 1e-9)) - meas))), a, k)
               for a in A_GRID for k in K_GRID)
    return best[1], best[2]


def first_token_late(rs: list[dict]) -> None:
    print(f"1. the first token k decode steps late: (a, k) fitted per engine on runs of <= {LOW} clients; "
          "TTFT median |error| %, today -> with the fit")
    for eng in sorted({r["engine"] for r in rs}):
        e = [r for r in rs if r["engine"] == eng]
        a, k = fit([r for r in e if r["N"] <= LOW])
        hi = [r for r in e if r["N"] > LOW]
        today = 1e3 * float(engine_profile(eng)["serving_overhead_s"])  # type: ignore[arg-type]
        print(f"  {eng:7} a {a:5.0f} ms, k {k:4.0f}: all {len(e):4d} runs {med_abs(shifted(e, today, 0), e):5.1f} -> "
              f"{med_abs(shifted(e, a, k), e):5.1f}; past {LOW} clients (out of sample) {len(hi):4d} "
              f"{med_abs(shifted(hi, today, 0), hi):5.1f} -> {med_abs(shifted(hi, a, k), hi):5.1f}")
        for by in ("system", "model"):
            for g in sorted({r[by] for r in e}):
                held = [r for r in e if r[by] == g]
                rest = [r for r in e if r[by] != g and r["N"] <= LOW]
                if len(held) < 5 or len(rest) < 5:
                    continue
                ga, gk = fit(rest)
                print(f"      {by} {g:16} left out ({len(held):3d} runs): fit a {ga:4.0f} k {gk:3.0f}: "
                      f"{med_abs(shifted(held, today, 0), held):5.1f} -> {med_abs(shifted(held, ga, gk), held):5.1f}")


def ceiling(rs: list[dict]) -> None:
    print("\n2. throughput at 2N over N (pairs alike but for N, N >= 32): measured and model; the TTFT the "
          "model misses as a share of the measured cycle at 2N, and the running requests it implies")
    by_key: dict[tuple, dict[float, dict]] = defaultdict(dict)
    for r in rs:
        by_key[r["key"]][r["N"]] = r
    rows: dict[tuple[str, str], list[tuple[float, float, float, float]]] = defaultdict(list)
    for series in by_key.values():
        for n, r in series.items():
            r2 = series.get(2 * n)
            if n < 32 or r2 is None:
                continue
            x = lambda q, t, p: q["N"] / (q[t] + (q["O"] - 1) * q[p])  # noqa: E731
            meas = x(r2, "ttft", "tpot") / x(r, "ttft", "tpot")
            model = x(r2, "ttft_pred", "tpot_pred") / x(r, "ttft_pred", "tpot_pred")
            share = (r2["ttft"] - r2["ttft_pred"]) / (r2["ttft"] + (r2["O"] - 1) * r2["tpot"])
            rows[(r["engine"], r["model"])].append((meas, model, share, 2 * n * (1 - share)))
    print(f"  {'engine':7} {'model':16} {'pairs':>5} {'X(2N)/X(N) measured':>20} {'model':>6} "
          f"{'missed TTFT share':>18} {'implied running':>16}")
    for (eng, model), v in sorted(rows.items()):
        a = np.array(v)
        print(f"  {eng:7} {model:16} {len(v):5d} {np.median(a[:, 0]):20.2f} {np.median(a[:, 1]):6.2f} "
              f"{np.median(a[:, 2]):+18.3f} {np.median(a[:, 3]):16.0f}")


def attention_dp(rs: list[dict]) -> None:
    print("\n3. DeepSeek with and without attention DP: median signed error % (TTFT, TPOT) by clients")
    bands = ((1, LOW), (LOW + 1, 64), (65, 1_000_000))
    for eng in sorted({r["engine"] for r in rs}):
        for adp in (False, True):
            e = [r for r in rs if r["engine"] == eng and r["model"].startswith("deepseek") and r["adp"] == adp]
            if not e:
                continue
            cells = []
            for lo, hi in bands:
                b = [r for r in e if lo <= r["N"] <= hi]
                if b:
                    t = np.median([100 * (r["ttft_pred"] / r["ttft"] - 1) for r in b])
                    p = np.median([100 * (r["tpot_pred"] / r["tpot"] - 1) for r in b])
                    cells.append(f"{lo}-{hi if hi < 1_000_000 else 'up'}: {len(b):3d} runs {t:+6.1f} / {p:+6.1f}")
            print(f"  {eng:7} {'attention DP' if adp else 'no DP':13} " + "; ".join(cells))


HYPOTHESES = (("16-bit where unstated, S + O reserved", None, 1.0), ("16-bit where unstated, S + O/2 held", None, 0.5),
              ("FP8, S + O reserved", "fp8", 1.0), ("FP8, S + O/2 held", "fp8", 0.5))


def kv_pools(rs: list[dict], path: str) -> dict[tuple[int, str], tuple[float, float, float, float]]:
    """(KV pool tokens per lane, lanes, mean S, mean O) of each run's configuration, with the
    row's KV dtype and with FP8, computed as the validator computes them (its Case, its
    engine profile over the realistic preset)."""
    catalog = Catalog.default()
    corpus = RW.load_measurements(path)
    names: dict = {}
    cases = {r["row"]: RW.map_row(r["row"] - 2, corpus[r["row"] - 2], catalog, names) for r in rs}
    by_group: dict[tuple, list] = defaultdict(list)
    for row, c in cases.items():
        if not isinstance(c, str):
            by_group[(c.model, c.engine)].append((row, c))
    out = {}
    for (model, engine), items in by_group.items():
        gpu_ids = sorted({c.gpu for _, c in items})
        table = GpuTable.build([catalog.gpu(g) for g in gpu_ids])
        o = P.row_assumptions(PRESETS["realistic"], engine)
        for kv in ("row", "fp8"):
            # the row's own dtype as the 16-bit default reads it (rows.scheme_of_row without
            # TensorRT-LLM's FP8 cache), or FP8
            cs = [replace(c, kv="fp8" if kv == "fp8" else str(RW.scheme_of_row(corpus[row - 2]["precision"],
                                                                                RW.model_name(corpus[row - 2]["model"]))[1]))
                  for row, c in items]
            ph = L.step_physics(catalog.models[model], table, P._configs(cs, gpu_ids, np.array([c.batch for c in cs])), o)
            for j, (row, c) in enumerate(items):
                out[(row, kv)] = (float(ph.kv_pool_tokens[j]), float(ph.lanes[j]), c.input_tokens, c.output_tokens)
    return out


def kv_held(rs: list[dict], path: str) -> None:
    print("\n4. runs queued for KV (measured TTFT > 10 % of the measured cycle) against each hypothesis "
          "(queued where M < 0.9 N_l), over the runs on which the hypotheses differ")
    pools = kv_pools(rs, path)
    tally: dict[str, list[int]] = defaultdict(lambda: [0] * (len(HYPOTHESES) + 1))
    for r in rs:
        if (r["row"], "row") not in pools:
            continue
        queued = r["ttft"] > 0.1 * (r["ttft"] + (r["O"] - 1) * r["tpot"])
        calls = []
        for _, kv, share in HYPOTHESES:
            K, lanes, S, O = pools[(r["row"], kv or "row")]
            calls.append(np.floor(K / (S + share * O)) < 0.9 * r["N"] / lanes)
        if len(set(calls)) == 1:
            continue
        t = tally[r["engine"]]
        t[0] += 1
        for k, call in enumerate(calls):
            t[k + 1] += int(call == queued)
    print(f"  {'engine':7} {'runs':>5} " + " ".join(f"{name:>34}" for name, _, _ in HYPOTHESES))
    for eng, t in sorted(tally.items()):
        print(f"  {eng:7} {t[0]:5d} " + " ".join(f"{t[k + 1]:>27d} agree" for k in range(len(HYPOTHESES))))


def rerun(path: str, patch) -> list[dict]:
    """`planner validate` with ``patch`` applied to the validator's load model for the run."""
    from planner.fidelity import validate as V
    saved = P.load_metrics
    P.load_metrics = patch(saved)
    try:
        return [{k: ("" if v is None else str(v)) for k, v in r.items()}
                for r in V.validate_file(path).records()]
    finally:
        P.load_metrics = saved


def one_prompt_a_step(saved):
    def patched(phys, eng, wl, **kw):
        n = kw.get("clients")
        if n is not None:
            S = np.broadcast_to(np.asarray(wl.isl, float), n.shape)
            eng = L.Engine(token_budget=S + np.minimum(n / phys.lanes, eng.max_seqs), max_seqs=eng.max_seqs,
                           kv_pool_tokens=eng.kv_pool_tokens)
        return saved(phys, eng, wl, **kw)
    return patched


def held_as_tokens_arrive(saved):
    """vLLM's and SGLang's lanes capped at the KV pool over S + O/2 (blocks allocated as tokens
    arrive, held half the output on average) instead of S + O reserved at admission."""
    def patched(phys, eng, wl, **kw):
        if kw.get("clients") is not None and phys.o.engine in ("vllm", "sglang"):
            S, O = (np.broadcast_to(np.asarray(x, float), eng.max_seqs.shape) for x in (wl.isl, wl.osl))
            held = np.where(phys.max_batch > 0, np.floor(eng.kv_pool_tokens / (S + O / 2.0)), 0.0)
            eng = L.Engine(token_budget=eng.token_budget, max_seqs=np.minimum(phys.configs.batch, held),
                           kv_pool_tokens=eng.kv_pool_tokens)
        return saved(phys, eng, wl, **kw)
    return patched


def if_built(path: str, records: list[dict], corpus: list[dict]) -> None:
    print("\n4b. vLLM's and SGLang's KV held as tokens arrive (S + O/2), the validation rerun with it: "
          "median |error| %, today -> with it")
    after = rerun(path, held_as_tokens_arrive)
    a, b = medians_by(records, corpus), medians_by(after, corpus)
    for key in sorted(a):
        if key[2] == "all" and key in b:
            print(f"  {key[0]} {key[1]:7} {len(a[key]):4d} {np.median(a[key]):6.1f} -> {np.median(b[key]):6.1f}")
    band = lambda r: "<= 64" if float(re.match(r"[\d.]+", r["load"]).group()) <= 64 else "65-256" \
        if float(re.match(r"[\d.]+", r["load"]).group()) <= 256 else "> 256"  # noqa: E731
    by: dict[tuple, list[tuple[float, float, dict]]] = defaultdict(list)
    for r, q in zip(records, after):
        if (r["mode"] == "agg" and r["counted"] == "yes" and r["abs_pct_error"] != "" and q["abs_pct_error"] != ""
                and r["metric"] == "ttft_ms_mean" and r["engine"] in ("vllm", "sglang")):
            by[(r["engine"], band(r))].append((float(r["abs_pct_error"]), float(q["abs_pct_error"]), r))
    for (eng, b_), v in sorted(by.items()):
        print(f"  ttft {eng:7} clients {b_:6} {len(v):4d} {np.median([x[0] for x in v]):6.1f} -> "
              f"{np.median([x[1] for x in v]):6.1f}")
    worst = sorted((x for v in by.values() for x in v), key=lambda x: -x[0])[:3]
    for x0, x1, r in worst:
        print(f"  worst: row {r['row']} {r['engine']} {r['model_id']} {r['system']} {r['load']}: measured "
              f"{float(r['measured']):,.0f} ms, |error| {x0:,.0f} % -> {x1:,.0f} %")


def medians_by(records: list[dict], corpus: list[dict]) -> dict[tuple, list[float]]:
    out: dict[tuple, list[float]] = defaultdict(list)
    for r in records:
        if r["mode"] != "agg" or r["counted"] != "yes" or r["abs_pct_error"] == "":
            continue
        src = corpus[int(r["row"]) - 2]
        family = "DeepSeek" if r["model_id"].startswith("deepseek") else r["model_id"]
        source = "InferenceX" if src["provenance"].startswith("InferenceX") else "NVIDIA"
        for key in ((r["metric"][:4], r["engine"], "all", ""), (r["metric"][:4], r["engine"], family, source)):
            out[key].append(float(r["abs_pct_error"]))
    return out


def budget(path: str, records: list[dict], corpus: list[dict]) -> None:
    print("\n5. one prompt a step (T = S + min(N_l, M)): aggregated TTFT median |error| %, today -> with it")
    a, b = medians_by(records, corpus), medians_by(rerun(path, one_prompt_a_step), corpus)
    for key in sorted(a):
        if key[0] == "ttft" and key in b:
            print(f"  {key[1]:7} {key[2]:16} {key[3]:10} {len(a[key]):4d} {np.median(a[key]):6.1f} -> "
                  f"{np.median(b[key]):6.1f}")


SIM_CASES = (("deepseek-r1", "b200", "fp4", "bf16", 8, 1, 1024, 1024, "trtllm", (4, 32, 128)),
             ("llama-3.1-70b", "h100-sxm", "w8a8-fp8", "bf16", 2, 1, 1024, 1024, "realistic", (8, 64)),
             ("gpt-oss-120b", "h200", "mxfp4-experts", "bf16", 2, 1, 1024, 8192, "realistic", (16, 64)))


def simulator_check() -> None:
    print("\n6. closed form (CF) and simulator (SIM, one seed), clients together, lengths on [0.8 L, L], "
          "10 N requests: mean TTFT ms, mean TPOT ms; SIM's TPOT per request (the corpus's) and its "
          "token-weighted inter-token time")
    catalog = Catalog.default()
    for model, gpu, scheme, kv, tp, ep, S, Ou, preset, Ns in SIM_CASES:
        ph = L.step_physics(catalog.model(model), GpuTable.build([catalog.gpus[gpu]]),
                            Configs.single(0, scheme, kv, tp, 1, ep, 8192, 0.9 * S, 0.9 * Ou), PRESETS[preset])
        eng = L.engine(ph)
        cv2 = (0.2 ** 2 / 12) / 0.81
        for N in Ns:
            cf = L.load_metrics(ph, eng, L.Workload(0.9 * S, 0.9 * Ou, isl_cv2=cv2, osl_cv2=cv2, start="together",
                                                    requests_per_client=10), clients=N)
            sim = simulate_config(ph, eng, 0, Arrivals("closed", clients=N, start="together", requests_per_client=10),
                                  Lengths(list(range(int(0.8 * S), S + 1))), Lengths(list(range(int(0.8 * Ou), Ou + 1))),
                                  n_requests=10 * N, seed=0)
            itl = float(np.sum(sim.itl * sim.itl_weight) / np.sum(sim.itl_weight))
            print(f"  {model:14} {gpu:8} TP{tp} {preset:9} {S}/{Ou} N {N:4d}: CF {1e3 * cf.get('ttft', 'mean')[0]:7.1f} "
                  f"{1e3 * cf.get('tpot', 'mean')[0]:6.2f} | SIM {1e3 * sim.summary['ttft_mean']:7.1f} "
                  f"{1e3 * sim.summary['tpot_mean']:6.2f} per request, {1e3 * itl:6.2f} token-weighted")


def main() -> None:
    args, corpus, records = load_inputs(__doc__.splitlines()[0])
    rs = runs(records, corpus)
    first_token_late(rs)
    ceiling(rs)
    attention_dp(rs)
    kv_held(rs, args.csv)
    if_built(args.csv, records, corpus)
    budget(args.csv, records, corpus)
    simulator_check()


if __name__ == "__main__":
    main()
