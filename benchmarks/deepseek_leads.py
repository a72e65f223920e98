"""DeepSeek's TTFT: four more leads checked (issue 22; docs/validation.md, "DeepSeek's TTFT:
four more leads, checked").

    python benchmarks/deepseek_leads.py [--csv ../shared/reference/measured-silicon.csv] [--no-whatif]

Four mechanisms that could make DeepSeek-R1/V3's prefill slower than the model charges, each
set against the rows (`planner validate`'s own predictions; no physics changes here):

1. **Where the gap lies by layout** (leads a and c): DeepSeek's counted TTFT (and TPOT) rows by mode, by
   layout class (attention data-parallel; expert-parallel MoE with TP attention; TP only) and
   by clients, median signed / |error| %. A mechanism of attention DP or of EP cannot be the
   gap of rows that have neither. Disaggregated rows are classed by their stated prefill pool
   (rows whose pools come from a recipe are left out: their layout is not the row's).
2. **(a) What the step charges a prompt under attention DP**: the per-GPU seconds per prompt
   token of the dense GEMMs and the attention per S^2 (``step_physics``), attention DP 8
   (attention TP 1, EP 8) over TP 8, on 8 B200 in FP8: 8 means a lone prompt's attention,
   MLA decompression and dense projections run on one GPU, as the engines do.
3. **(c) The busiest EP rank under uniform routing** (``busiest_rank_ratio``, closed form,
   beside a Monte Carlo draw) at the corpus's EP degrees, at a decode step's and a prompt's
   token counts; the largest at a prompt's size and EP <= 16 is section 4's what-if.
4. **What-ifs**, `planner validate` on every row with (c) ``expert_imbalance`` at section 3's
   largest ratio (decode and rows without EP too: an upper bound of the term's effect), (b)
   the attention kernels at half their rate (an MLA prefill kernel off the fast paths; every
   model, so read DeepSeek's groups) and (d) a token budget a step (chunked prefill) of 4,096
   and of 2,048 tokens on every engine: median |error| % (signed) by group, DeepSeek against
   the other MoE models and the dense ones, and each model apart.
5. **The same what-ifs at <= 8 clients**: TTFT median signed error by model, mode, engine,
   GPU family, weights and prompt length (the idle prefill and a short first wave).

`planner validate` runs six times (~70 s on the shared 2-core machine); ``--no-whatif`` leaves
sections 4 and 5 out (~15 s).
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.catalog.store import Catalog  # noqa: E402
from planner.fidelity.rows import load_measurements  # noqa: E402
from planner.fidelity.validate import RowResult, validate  # noqa: E402
from planner.physics.options import PRESETS  # noqa: E402
from planner.physics.space import KV_NAMES, SCHEME_NAMES, Configs, GpuTable  # noqa: E402
from planner.physics.step import step_physics  # noqa: E402
from planner.physics.terms import Arch  # noqa: E402

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
BANDS = ((1, 8, "<= 8"), (9, 64, "9-64"), (65, 10**7, "> 64"))


def busiest_rank_ratio(tokens: float, k: int, experts: int, ranks: int) -> float:
    """Expected load of the busiest of ``ranks`` expert-parallel ranks over the mean load, for
    ``tokens`` tokens each routed to ``k`` distinct experts of ``experts`` drawn uniformly, the
    experts split evenly over the ranks (E / R a rank).

    A token's expert picks on one rank are hypergeometric (k draws from E, E / R of them the
    rank's): mean k / R, variance k (1 / R)(1 - 1 / R)(E - k) / (E - 1). A rank's load over T
    tokens is a sum of T independent such counts: mean mu = T k / R, variance sigma^2 = T x the
    above. The expected maximum of R such loads is at most mu + sigma sqrt(2 ln R) (the
    Gaussian maximal inequality; the ranks' loads are negatively correlated, which lowers it),
    so the ratio is 1 + sqrt(2 ln R) sigma / mu. 1 for one rank. Units: tokens / tokens."""
    if ranks <= 1 or tokens <= 0:
        return 1.0
    var = k * (1.0 / ranks) * (1.0 - 1.0 / ranks) * (experts - k) / (experts - 1.0)
    mu = tokens * k / ranks
    return 1.0 + math.sqrt(2.0 * math.log(ranks)) * math.sqrt(tokens * var) / mu


def busiest_rank_sampled(tokens: int, k: int, experts: int, ranks: int, draws: int, seed: int = 0) -> float:
    """``busiest_rank_ratio`` by drawing: each token picks k distinct experts uniformly; the mean
    over ``draws`` steps of the busiest rank's load over the mean load."""
    rng = np.random.default_rng(seed)
    per = experts // ranks
    out = []
    for _ in range(draws):
        picks = np.argsort(rng.random((tokens, experts)), axis=1)[:, :k]
        load = np.bincount((picks // per).ravel(), minlength=ranks)
        out.append(load.max() / (tokens * k / ranks))
    return float(np.mean(out))


def clients_of(text: str) -> int | None:
    m = re.search(r"\d+", text or "")
    return int(m.group()) if m else None


def band_of(n: int | None) -> str | None:
    for lo, hi, name in BANDS:
        if n is not None and lo <= n <= hi:
            return name
    return None


def layout_class(row: dict, mode: str) -> str | None:
    """'attention DP' (attention data-parallel > 1), 'EP, TP attention' (experts spread over
    ranks, attention tensor-parallel) or 'TP only'; the prefill pool's for a disaggregated row
    that states it, None for one whose pools are a recipe's or assumed."""
    if mode == "agg":
        pre = ""
    elif mode == "disagg":
        pre = "prefill_"
    else:
        return None
    dp = int(row.get(pre + "attention_dp") or 1)
    ep = int(row.get(pre + "moe_ep") or 1)
    return "attention DP" if dp > 1 else ("EP, TP attention" if ep > 1 else "TP only")


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _cell(xs: list[float]) -> str:
    if not xs:
        return "-"
    return f"{_median([abs(x) for x in xs]):.1f} ({_median(xs):+.1f}), {len(xs)}"


def section1(rows: list[RowResult], corpus: list[dict]) -> None:
    print("1. DeepSeek TTFT and TPOT by layout class and clients: median |error| % (signed), rows")
    cells: dict[tuple[str, str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        metric = _metric(r)
        if not (r.counted and metric and (r.model_id or "").startswith("deepseek")):
            continue
        src = corpus[r.row - 2]
        cls = layout_class(src, r.mode)
        band = band_of(clients_of(src.get("batch_or_concurrency", "")))
        if cls is None or band is None or r.signed_pct_error is None:
            continue
        cells[(metric, r.mode, cls)][band].append(r.signed_pct_error)
        cells[(metric, r.mode, cls)]["all"].append(r.signed_pct_error)
    cols = [*(n for *_, n in BANDS), "all"]
    print(f"   {'':4s} {'mode':7s} {'layout':18s} " + " ".join(f"{b:>20s}" for b in cols))
    for (metric, mode, cls), by in sorted(cells.items(), key=lambda kv: (kv[0][0] != "TTFT", kv[0])):
        print(f"   {metric:4s} {mode:7s} {cls:18s} " + " ".join(f"{_cell(by[b]):>20s}" for b in cols))
    print()


def section2() -> None:
    print("2. (a) What the step charges a prompt under attention DP: DeepSeek-R1 on 8 B200, FP8, per GPU")
    cat = Catalog.default()
    model = cat.models["deepseek-r1"]
    table = GpuTable.build([cat.gpu("b200")])
    o = PRESETS["realistic"]
    # TP 8 (attention TP 8, experts TP 8) and attention DP 8 (attention TP 1, EP 8)
    cfg = Configs(gpu=np.zeros(2, int), scheme=np.full(2, SCHEME_NAMES.index("w8a8-fp8")),
                  kv=np.full(2, KV_NAMES.index("bf16")), tp=np.array([8.0, 1.0]), pp=np.ones(2),
                  ep=np.array([1.0, 8.0]), batch=np.ones(2), input_tokens=np.full(2, 8192.0),
                  output_tokens=np.full(2, 1024.0))
    ph = step_physics(model, table, cfg, o)
    for name in ("lin_prefill", "attn_prefill", "routed_prefill"):
        v = getattr(ph, name)
        print(f"   {name:15s} TP 8 {v[0]:.3e}  DP 8 {v[1]:.3e}  DP 8 / TP 8 = {v[1] / v[0]:.2f}")
    print("   lanes (independent batches)   TP 8", ph.lanes[0], " DP 8", ph.lanes[1])
    print()


EP_LAYOUTS = (4, 8, 16, 32)
PREFILL_EP_MAX = 16   # the largest EP of a DeepSeek prefill in the corpus (H100 TensorRT-LLM prefill pools)


def section3(k: int, experts: int) -> float:
    print(f"3. (c) Busiest EP rank under uniform routing (top-{k} of {experts} experts): expected max / mean load")
    print(f"   {'tokens':>7s} " + " ".join(f"{'EP ' + str(r):>16s}" for r in EP_LAYOUTS))
    worst = 1.0
    for T in (64, 922, 7373):
        cells = []
        for R in EP_LAYOUTS:
            c = busiest_rank_ratio(T, k, experts, R)
            s = busiest_rank_sampled(T, k, experts, R, draws=200 if T < 1000 else 40, seed=1)
            cells.append(f"{c:.3f} (drawn {s:.3f})")
            if T >= 922 and R <= PREFILL_EP_MAX:
                worst = max(worst, c)
        print(f"   {T:7d} " + " ".join(f"{c:>16s}" for c in cells))
    print(f"   at a prompt's size (>= 922 tokens a step) and EP <= {PREFILL_EP_MAX}: at most {worst:.3f};"
          " 64 tokens is a decode step's size")
    print()
    return worst


def _model_class(model_id: str | None, moe: dict[str, bool]) -> str:
    if model_id is None:
        return "?"
    if model_id.startswith("deepseek"):
        return "DeepSeek"
    return "other MoE" if moe.get(model_id) else "dense"


def _metric(r: RowResult) -> str | None:
    return "TTFT" if r.metric.startswith("ttft") else ("TPOT" if r.metric.startswith("tpot") else None)


def _groups(rows: list[RowResult], moe: dict[str, bool]) -> dict[tuple, list[float]]:
    """Signed errors by (models, mode, GPU family, metric): every model; DeepSeek, the other
    MoE models and the dense ones by mode and family; and each model apart by mode."""
    out: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        metric = _metric(r)
        if not r.counted or r.signed_pct_error is None or metric is None:
            continue
        cls = _model_class(r.model_id, moe)
        mode = "agg" if r.mode.startswith("agg") else "disagg"
        fam = (r.family or "?").replace("nvidia-", "")
        for key in (("every model", "all", "all", metric), (cls, mode, "all", metric), (cls, mode, fam, metric),
                    (r.model_id or "?", mode, "all", metric)):
            out[key].append(r.signed_pct_error)
    return out


def _idle(rows: list[RowResult], corpus: list[dict]) -> dict[tuple, list[float]]:
    """TTFT signed errors at <= 8 clients (the idle prefill and a short first wave), by model,
    mode, engine, GPU family, weights and nominal prompt length."""
    out: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        if not r.counted or r.signed_pct_error is None or _metric(r) != "TTFT":
            continue
        src = corpus[r.row - 2]
        n = clients_of(src.get("batch_or_concurrency", ""))
        if n is None or n > 8:
            continue
        w = src["precision"].split(";")[0].removeprefix("W=").split(" ")[0].lower()
        mode = "agg" if r.mode.startswith("agg") else "disagg"
        out[(r.model_id or "?", mode, r.engine, (r.family or "?").replace("nvidia-", ""), w,
             int(src["input_len"]))].append(r.signed_pct_error)
    return out


def section4(path: str, corpus: list[dict], worst: float) -> None:
    cat = Catalog.default()
    moe = {m: Arch.of(spec).params.num_experts > 0 for m, spec in cat.models.items()}
    base = PRESETS["realistic"]
    runs = {
        "today": {},
        f"(c) imbalance {worst:.3f}": {"expert_imbalance": worst},
        "(b) attention x 1/2": {"attention_efficiency": base.attention_efficiency / 2.0},
        "(d) budget 4,096": {"max_batched_tokens": 4096},
        "(d) budget 2,048": {"max_batched_tokens": 2048},
    }
    grouped, idle = {}, {}
    for name, update in runs.items():
        rows = validate(path, base.model_copy(update=update)).rows
        grouped[name], idle[name] = _groups(rows, moe), _idle(rows, corpus)
    names = list(runs)
    print("4. What-ifs: `planner validate` median |error| % (signed), rows; every row as validate predicts it")
    print("   " + f"{'models':16s} {'mode':6s} {'GPU':9s} {'':4s} " + " | ".join(f"{n:>22s}" for n in names))
    for key in sorted(grouped["today"], key=lambda k: (k[0] != "every model", k[0] not in ("DeepSeek", "other MoE",
                                                                                              "dense"), k)):
        cells = [_cell(grouped[n].get(key, [])) for n in names]
        print("   " + f"{key[0]:16s} {key[1]:6s} {key[2]:9s} {key[3]:4s} " + " | ".join(f"{c:>22s}" for c in cells))
    print()
    print("5. The same what-ifs at <= 8 clients: TTFT median signed error %, by model, mode, engine, GPU, weights, ISL")
    print("   " + f"{'':58s} " + " ".join(f"{n:>22s}" for n in names) + "  rows")
    for key in sorted(idle["today"]):
        cells = [f"{_median(idle[n].get(key, [])):+.1f}" for n in names]
        label = " ".join(str(x) for x in key)
        print("   " + f"{label:58s} " + " ".join(f"{c:>22s}" for c in cells) + f"  {len(idle['today'][key])}")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", default=str(REFERENCE / "measured-silicon.csv"))
    ap.add_argument("--no-whatif", action="store_true", help="leave out sections 4 and 5 (five validate runs)")
    args = ap.parse_args()
    corpus = load_measurements(args.csv)
    today = validate(args.csv, PRESETS["realistic"])
    section1(today.rows, corpus)
    section2()
    spec = Catalog.default().models["deepseek-r1"]
    p = Arch.of(spec).params
    worst = section3(int(p.experts_per_token), int(p.num_experts))
    if not args.no_whatif:
        section4(args.csv, corpus, worst)


if __name__ == "__main__":
    main()
