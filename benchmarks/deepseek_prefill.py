"""Where DeepSeek's TTFT error lies (issue 22 item 2): its prefill decomposed, and whether its
growth with the clients follows from the prefill.

    python benchmarks/deepseek_prefill.py [--csv ../shared/reference/measured-silicon.csv]

The aggregated closed-loop measurements (validate's reading of them, each measurement once:
``fit_serving_path.rows``), each predicted under its engine's profile as `planner validate`
does (the load model; no calibration). Nine sections (~60 s):

1. **DeepSeek at <= 4 clients a replica** (the corpus's least load: InferenceX runs start at
   4): per engine, version, GPU, weights and prompt length, the measured TTFT, the model's,
   and the model's idle prefill of the mean prompt split into its terms (ms): the GPU time
   and, of it, the dense GEMMs, the routed experts' grouped GEMMs, attention, the TP/EP
   collectives and the fixed costs (kernels' fixed times, activations); the host floor (eager
   launches) above the GPU time; the serving path. ``extra`` = measured - serving path - the
   GPU prefill: what the rows say the prefill costs beyond the model's. Then per deployment
   the extra at 8k prompts over that at 1k: ~1 for a cost per request, ~8 per prompt token,
   ~64 per token x context (attention).
2. **TTFT slope with the prompt length** at <= 4 clients (series alike but for the input
   length, 1k and 8k): measured us per prompt token against the model's GPU prefill slope, per
   model, engine and GPU.
3. **The prefill implied by the measured TPOT under load** (>= 8 clients, prompts >= 4k):
   a step's time is shared between decoding and the prompts it prefills, so the measured TPOT
   over the model's pure decode step at the run's batch gives the prefill's share of the GPU,
   u = 1 - decode / TPOT, and with the run's request rate X = N / (TTFT + (O - 1) TPOT) (both
   measured) the GPU time a prompt costs, u / X, independent of the serving path. Its ratio
   to the model's marginal prefill of one prompt at that batch, per model, weights, engine
   (rows with u >= 0.15; the 1k rows' small shares are the decode step's error, not the prefill).
4. **What one term alone would need**: on the DeepSeek rows of 3, the implied prefill beyond
   the model's over each of its terms at that prompt (the factor that term would have to
   grow by), and the efficiency that factor gives the routed experts' grouped GEMMs (0.45
   today) and attention (0.78).
5. **Does the growth with the clients follow from the prefill?** DeepSeek's TTFT and TPOT
   median |error| (signed) by engine and clients with the profiles as they are, and with a
   prefill slowed as 3 and 4 ask (the routed experts' prefill at 0.1 of a dense GEMM's rate;
   every prefill GEMM at 0.3 of its ceiling): if the queue of a slower prefill were the growth,
   the bands past 16 clients would close with the low-load one. The same variants on the other
   MoE models say whether a slower MoE prefill could be a term for every MoE model.
6. **A candidate checked before building it**: the FP8 routed experts' grouped GEMMs in prefill
   at an efficiency of their own (block-scaled FP8: DeepSeek and Qwen3-235B), fitted on section
   3's FP8 MoE rows with each model and each system left out, then set against the TTFT at <= 4
   clients (the idle prefill's routed term grown, added to the load model's TTFT).
7. **What the growth with the clients follows**: per series (``ttft_growth_check.growth``) the
   measured slope in units of the measured prefill of a lone prompt (TTFT at the series' fewest
   clients less the serving path) beside the model's slope in its own; and DeepSeek's TTFT at 8k
   outputs over 1k outputs at the same deployment, prompt and clients, beside the measured
   request rates' ratio (a steady-state queue follows the rate; a run's first wave does not).
8. **Section 7's reading as a rule, checked**: a run's first wave prefilled one prompt a step
   (for every model; a what-if patched in here, not the physics), on every aggregated row.
9. **Disaggregated DeepSeek at <= 4 clients**: `planner validate`'s TTFT against the measured,
   by engine, GPU, weights and prompt length (does the prefill pool show the aggregated pattern?).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fit_serving_path import components, rows  # noqa: E402
from ttft_growth_check import REFERENCE, growth  # noqa: E402

import planner.physics.load as load_model  # noqa: E402
from planner.fidelity.predict import _configs, row_assumptions  # noqa: E402
from planner.fidelity.rows import load_measurements  # noqa: E402
from planner.physics.options import PRESETS  # noqa: E402
from planner.physics.space import GpuTable  # noqa: E402
from planner.physics.step import step_physics, step_terms, step_time  # noqa: E402

BANDS = ((1, 4), (5, 16), (17, 64), (65, 256), (257, 10**6))
SLOWER = {"routed experts' prefill at 0.1": {"grouped_gemm_prefill_efficiency": 0.1},
          "prefill GEMMs at 0.3": {"prefill_compute_efficiency": 0.3}}


def nominal(S: float) -> int:
    """The row's stated input length from the mean the model reads (0.9 L for InferenceX's [0.8 L, L])."""
    for L in (1024, 4000, 8192):
        if abs(S - 0.9 * L) < 1.0 or abs(S - L) < 1.0:
            return L
    return int(round(S))


def terms(data, cat, idx: list[int], decode_batch=None) -> dict[str, np.ndarray]:
    """Per case (``idx``), under its engine's profile, in seconds: the idle prefill of the mean
    prompt and its terms; with ``decode_batch`` (a batch per case) also the pure decode step at
    that batch and the marginal prefill of one prompt in a step beside it."""
    out: dict[str, np.ndarray] = defaultdict(lambda: np.full(len(idx), np.nan))
    gpu_ids = sorted({data[k][0].gpu for k in idx})
    table = GpuTable.build([cat.gpu(g) for g in gpu_ids])
    groups: dict[tuple, list[int]] = defaultdict(list)
    for j, k in enumerate(idx):
        groups[(data[k][0].model, data[k][0].engine)].append(j)
    for (model, eng), js in groups.items():
        cs = [data[idx[j]][0] for j in js]
        o = row_assumptions(PRESETS["realistic"], eng)
        ph = step_physics(cat.models[model], table, _configs(cs, gpu_ids, np.array([c.batch for c in cs])), o)
        S = np.array([c.input_tokens for c in cs])
        t: dict = {}
        total = step_terms(ph, 0.0, 0.0, S, None, None, terms=t)
        pad = ph.moe_pad(S) if ph.routed else np.ones_like(S)
        routed = pad * S * ph.routed_prefill if ph.routed else np.zeros_like(S)
        attn = S * S * ph.attn_prefill
        parts = dict(gpu=t["gpu"], host=total - t["gpu"], serving=np.full(len(cs), o.serving_overhead_s),
                     routed=routed, attn=attn, dense=t["flops"] - routed - attn, comm=t["t_tp"] + t["t_ep"],
                     fixed=t["fixed"])
        if decode_batch is not None:
            n = np.minimum(np.array([decode_batch[j] for j in js]), ph.max_batch)
            ctx = n * (S + np.array([c.output_tokens for c in cs]) / 2.0)
            dec = step_time(ph, n, ctx, 0.0)
            parts.update(decode=dec, marginal=step_time(ph, n, ctx, S) - dec)
        for name, v in parts.items():
            out[name][js] = v
    return out


def section1(data, cat, corpus) -> None:
    idx = [k for k, d in enumerate(data) if d[4].startswith("deepseek") and d[0].load[1] / d[0].replicas <= 4]
    t = terms(data, cat, idx)
    pred = components(data, cat, 0.0, 0.0, update={})["ttft"]
    print("1. DeepSeek, <= 4 clients a replica: TTFT and the model's idle prefill of the mean prompt (ms, medians)")
    print(f"{'engine':7} {'version':16} {'gpu':6} {'weights':9} {'ISL':>5} {'n':>3} {'measured':>8} {'model':>7} "
          f"{'GPU':>6} {'host':>6} {'serving':>7} {'dense':>6} {'routed':>6} {'attn':>6} {'comm':>6} {'fixed':>6} "
          f"{'extra':>7}")
    groups: dict[tuple, list[int]] = defaultdict(list)
    for j, k in enumerate(idx):
        c = data[k][0]
        version = corpus[c.row]["framework"].split(" ", 1)[-1][:16]
        groups[(data[k][5], version, c.gpu, c.scheme, nominal(c.input_tokens))].append(j)
    extra_by: dict[tuple, dict[int, float]] = defaultdict(dict)
    for key, js in sorted(groups.items()):
        ks = [idx[j] for j in js]
        meas = np.array([data[k][1] for k in ks])
        ms = {name: np.asarray(t[name])[js] * 1e3 for name in ("gpu", "host", "serving", "dense", "routed", "attn",
                                                                 "comm", "fixed")}
        extra = meas - ms["serving"] - ms["gpu"]
        extra_by[key[:4]][key[4]] = float(np.median(extra))
        print(f"{key[0]:7} {key[1]:16} {key[2][:6]:6} {key[3][:9]:9} {key[4]:5d} {len(js):3d} {np.median(meas):8.1f} "
              f"{np.nanmedian(pred[ks]):7.1f} " + " ".join(f"{np.median(ms[n]):6.1f}" for n in
                                                        ("gpu", "host", "serving", "dense", "routed", "attn", "comm",
                                                         "fixed")) + f" {np.median(extra):+7.1f}")
    print("   extra at 8k prompts over extra at 1k (1: per request; ~8: per prompt token; ~64: per token x context):")
    for key, by in sorted(extra_by.items()):
        if 1024 in by and 8192 in by and by[1024] > 0:
            print(f"   {key[0]:7} {key[1]:16} {key[2][:6]:6} {key[3][:9]:9} {by[1024]:+7.1f} -> {by[8192]:+7.1f} ms: "
                  f"x {by[8192] / by[1024]:.1f}, {(by[8192] - by[1024]) / (0.9 * (8192 - 1024)) * 1e3:+.1f} us a prompt token")


def section2(data, cat, corpus) -> None:
    idx = [k for k, d in enumerate(data) if d[0].load[1] / d[0].replicas <= 4
           and not odd_population(corpus[d[0].row]["framework"])]
    t = terms(data, cat, idx)
    series: dict[tuple, dict[float, tuple[float, float]]] = defaultdict(dict)
    for j, k in enumerate(idx):
        c = data[k][0]
        key = (c.model, data[k][5], c.gpu, corpus[c.row]["framework"], c.scheme, c.tp, c.ep, c.output_tokens,
               c.load[1], c.replicas)
        series[key][c.input_tokens] = (data[k][1], float(t["gpu"][j]) * 1e3)
    ratios: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
    for key, runs in series.items():
        if len(runs) < 2:
            continue
        lo, hi = min(runs), max(runs)
        if hi - lo < 2000:
            continue
        meas = (runs[hi][0] - runs[lo][0]) / (hi - lo) * 1e3
        model = (runs[hi][1] - runs[lo][1]) / (hi - lo) * 1e3
        ratios[(key[0][:12], key[1], key[2])].append((meas, model))
    print("\n2. TTFT slope with the prompt length, <= 4 clients (us per prompt token; series alike but for the input; "
          "without section 1's two odd populations)")
    print(f"{'model':12} {'engine':7} {'gpu':9} {'series':>6} {'measured':>9} {'model GPU':>9} {'ratio':>6}")
    for key, v in sorted(ratios.items()):
        a = np.array(v)
        print(f"{key[0]:12} {key[1]:7} {key[2][:9]:9} {len(v):6d} {np.median(a[:, 0]):9.1f} {np.median(a[:, 1]):9.1f} "
              f"{np.median(a[:, 0] / a[:, 1]):6.2f}")


def implied_prefill(N, O, ttft, tpot, decode):
    """(u, seconds of GPU a prompt costs) from a closed loop's measured TTFT and TPOT (s), its
    N clients and O output tokens, and the model's pure decode step at the run's batch (s):
    u = 1 - decode / TPOT is the prefill's share of the GPU, X = N / (TTFT + (O - 1) TPOT) the
    request rate (Little's law), u / X the prefill's GPU time per request."""
    u = 1.0 - decode / tpot
    return u, u * (ttft + (O - 1.0) * tpot) / N


def implied(data, cat, corpus) -> tuple[list[int], dict[str, np.ndarray], np.ndarray]:
    """Section 3's rows (>= 8 clients a replica, no attention DP, not section 1's two odd
    populations) with their terms and u."""
    idx = [k for k, d in enumerate(data) if d[0].load[1] / d[0].replicas >= 8 and d[0].ep <= d[0].tp
           and not odd_population(corpus[d[0].row]["framework"])]
    N = np.array([data[k][0].load[1] / data[k][0].replicas for k in idx])
    O = np.array([data[k][0].output_tokens for k in idx])
    T, P = np.array([data[k][1] for k in idx]) / 1e3, np.array([data[k][2] for k in idx]) / 1e3
    cycle = T + (O - 1.0) * P
    t = terms(data, cat, idx, decode_batch=N * (O - 1.0) * P / cycle)
    u, t["implied"] = implied_prefill(N, O, T, P, t["decode"])
    return idx, t, u


def section3_4(data, cat, corpus) -> None:
    idx, t, u = implied(data, cat, corpus)
    S = np.array([data[k][0].input_tokens for k in idx])
    keep = (u >= 0.15) & (S >= 0.9 * 4000 - 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = t["implied"] / t["marginal"]
    print("\n3. The prefill a prompt costs as the measured TPOT under load implies it, over the model's "
          "(>= 8 clients, prompts >= 4k, share u >= 0.15; without section 1's two odd populations)")
    print(f"{'model':12} {'weights':14} {'engine':7} {'rows':>4} {'implied/model':>13} {'p25..p75':>11}  by GPU")
    groups: dict[tuple, list[int]] = defaultdict(list)
    for j, k in enumerate(idx):
        if keep[j]:
            groups[(data[k][4][:12], data[k][0].scheme, data[k][5])].append(j)
    for key, js in sorted(groups.items()):
        r = ratio[js]
        gpus = sorted({data[idx[j]][3] for j in js})
        by = ", ".join(f"{g} {np.median([ratio[j] for j in js if data[idx[j]][3] == g]):.2f} "
                       f"({sum(1 for j in js if data[idx[j]][3] == g)})" for g in gpus)
        print(f"{key[0]:12} {key[1]:14} {key[2]:7} {len(js):4d} {np.median(r):13.2f} "
              f"{np.percentile(r, 25):5.2f}..{np.percentile(r, 75):4.2f}  {by}")
    ds = [j for j in range(len(idx)) if keep[j] and data[idx[j]][4].startswith("deepseek")]
    gap = t["implied"][ds] - t["marginal"][ds]
    print(f"\n4. DeepSeek ({len(ds)} rows of 3): the implied prefill beyond the model's, over each term of the model's "
          "idle prefill of that prompt (the factor that term alone would need)")
    for name in ("routed", "attn", "dense", "comm", "fixed"):
        f = 1.0 + gap / t[name][ds]
        line = f"   {name:7} median x {np.median(f):6.1f} (p25 {np.percentile(f, 25):5.1f}, p75 {np.percentile(f, 75):5.1f})"
        if name == "routed":
            line += f": a grouped-GEMM prefill efficiency of {0.45 / np.median(f):.3f} (0.45 today)"
        if name == "attn":
            line += f": an attention efficiency of {0.78 / np.median(f):.3f} (0.78 today)"
        print(line)
    print(f"   median implied prefill {np.median(t['implied'][ds]) * 1e3:.0f} ms a prompt, the model's "
          f"{np.median(t['marginal'][ds]) * 1e3:.0f} ms")


FP8_ETAS = (0.45, 0.35, 0.25, 0.2, 0.15, 0.1, 0.07, 0.05, 0.035, 0.025)


def section6(data, cat, corpus) -> None:
    """Section 6: one candidate term checked against section 3's rows before building it."""
    idx, t, u = implied(data, cat, corpus)
    S = np.array([data[k][0].input_tokens for k in idx])
    fp8 = np.array([data[k][0].scheme == "w8a8-fp8" and cat.models[data[k][0].model].moe is not None for k in idx])
    keep = (u >= 0.15) & (S >= 0.9 * 4000 - 1.0) & fp8 & (t["marginal"] > 0)
    js = np.flatnonzero(keep)
    family = np.array(["deepseek" if data[idx[j]][4].startswith("deepseek") else data[idx[j]][4] for j in js])
    system = np.array([data[idx[j]][3] for j in js])

    def loss(eta: float, sel: np.ndarray) -> float:
        model = t["marginal"][js] + t["routed"][js] * (0.45 / eta - 1.0)
        return float(np.median(np.abs(np.log(t["implied"][js][sel] / model[sel]))))

    def fit(sel: np.ndarray) -> float:
        return min(FP8_ETAS, key=lambda e: loss(e, sel))
    print("\n6. Candidate: the FP8 routed experts' grouped GEMMs in prefill at their own efficiency (block-scaled FP8: "
          "DeepSeek and Qwen3-235B), fitted on section 3's FP8 MoE rows: median |log(implied / model)|, "
          "today (0.45) and at the fit")
    everything = np.ones(len(js), bool)
    eta = fit(everything)
    print(f"   in sample ({len(js)} rows): efficiency {eta}; {loss(0.45, everything):.3f} -> {loss(eta, everything):.3f}")
    for name, groups in (("model", family), ("system", system)):
        for g in sorted(set(groups)):
            held = groups == g
            e = fit(~held)
            print(f"   leave {name} {g:10} out ({int(held.sum())} rows): fitted {e} on the others; held out "
                  f"{loss(0.45, held):.3f} -> {loss(e, held):.3f}")
    # the same efficiency against the TTFT at <= 4 clients (InferenceX) or 1-2 (NVIDIA runs): the
    # load model's TTFT plus the idle prefill's routed term grown by 0.45 / eta (its prompt alone)
    low = [k for k, d in enumerate(data) if d[0].load[1] / d[0].replicas <= 4 and d[0].scheme == "w8a8-fp8"
           and cat.models[d[0].model].moe is not None and not odd_population(corpus[d[0].row]["framework"])]
    tl = terms(data, cat, low)
    pred = components([data[k] for k in low], cat, 0.0, 0.0, update={})["ttft"]
    meas = np.array([data[k][1] for k in low])
    grown = pred + np.asarray(tl["routed"]) * (0.45 / eta - 1.0) * 1e3
    print(f"   at <= 4 clients, TTFT signed error % today -> with {eta} (the routed term of the idle prefill grown):")
    groups: dict[tuple, list[int]] = defaultdict(list)
    for j, k in enumerate(low):
        groups[(data[k][4][:12], data[k][3], data[k][5], nominal(data[k][0].input_tokens))].append(j)
    for key, jj in sorted(groups.items()):
        print(f"   {key[0]:12} {key[1][:8]:8} {key[2]:7} ISL {key[3]:5d} n {len(jj):2d}: "
              f"{np.nanmedian(pred[jj] / meas[jj] - 1) * 100:+6.1f} -> {np.nanmedian(grown[jj] / meas[jj] - 1) * 100:+6.1f}")


def section7(data, cat, corpus) -> None:
    """Section 7: what the growth with the clients follows."""
    keep = [k for k, d in enumerate(data) if not odd_population(corpus[d[0].row]["framework"])]
    sub = [data[k] for k in keep]
    res = components(sub, cat, 0.0, 0.0, update={})
    series: dict[tuple, dict[float, dict[str, tuple[float, float]]]] = defaultdict(dict)
    for j, d in enumerate(sub):
        c = d[0]
        key = (d[4][:12], d[5], d[3], corpus[c.row]["framework"], c.scheme, c.tp, c.ep, c.replicas, c.input_tokens,
               c.output_tokens)
        series[key][c.load[1]] = {"ttft_ms_mean": (d[1], float(res["ttft"][j])),
                                  "tpot_ms_mean": (d[2], float(res["tpot"][j]))}
    serving = {e: float(row_assumptions(PRESETS["realistic"], data[k][0].engine).serving_overhead_s)
               for k in keep for e in [data[k][5]]}
    print("\n7. Growth with the clients (series at <= 64 clients, >= 3 runs; ttft_growth_check.growth): the measured "
          "slope over the measured prefill t_m (TTFT at the series' fewest clients less the serving path) and the "
          "model's slope over its own; clients that spread after the first wave give ~0.05, every cycle a wave 0.5")
    print(f"{'model':12} {'engine':7} {'ISL':>5} {'series':>6} {'ms/client':>9} {'model':>6} {'t_m ms':>7} "
          f"{'slope/t_m':>9} {'model/t_p':>9}")
    groups: dict[tuple, list[tuple[float, ...]]] = defaultdict(list)
    for key, runs in series.items():
        g = growth(runs, serving[key[1]])
        if g is None:
            continue
        first = min(n for n in runs if n <= 64)
        t_m = runs[first]["ttft_ms_mean"][0] - serving[key[1]] * 1e3
        groups[(key[0], key[1], nominal(key[8]))].append((g[0], g[1], t_m, g[2]))
    for key, v in sorted(groups.items()):
        a = np.array(v)
        ok = (a[:, 2] > 1.0) & (a[:, 3] > 1.0)
        if not ok.any():
            continue
        print(f"{key[0]:12} {key[1]:7} {key[2]:5d} {len(v):6d} {np.median(a[:, 0]):9.2f} {np.median(a[:, 1]):6.2f} "
              f"{np.median(a[ok, 2]):7.0f} {np.median(a[ok, 0] / a[ok, 2]):9.3f} {np.median(a[ok, 1] / a[ok, 3]):9.3f}")
    print("   DeepSeek: TTFT at 8k outputs over 1k outputs, same deployment, prompt and clients (> 16 clients), "
          "beside the measured request rates' ratio")
    pairs: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for key, runs in series.items():
        other = series.get(key[:9] + (0.9 * 8192,)) if abs(key[9] - 0.9 * 1024) < 1.0 else None
        if not key[0].startswith("deepseek") or not other:
            continue
        for n, m in runs.items():
            if n > 16 and n in other:
                (a, pa), (b, pb) = m["ttft_ms_mean"], other[n]["ttft_ms_mean"]
                x_short = n / (a + (0.9 * 1024 - 1) * m["tpot_ms_mean"][0])
                x_long = n / (b + (0.9 * 8192 - 1) * other[n]["tpot_ms_mean"][0])
                pairs[key[1]].append((b / a, pb / pa, x_long / x_short))
    for e, v in sorted(pairs.items()):
        a = np.array(v)
        print(f"   {e:7} {len(v):3d} pairs: measured {np.median(a[:, 0]):.2f} ({np.percentile(a[:, 0], 25):.2f}.."
              f"{np.percentile(a[:, 0], 75):.2f}), model {np.median(a[:, 1]):.2f}, request rate {np.median(a[:, 2]):.2f}")


@contextmanager
def first_wave_one_prompt_a_step():
    """Section 8's what-if, not the physics: the first wave of a run whose clients start together
    (``load._firstwave``) prefilled one prompt a step (its ``wave`` given a budget of one prompt
    beside the decoders), every other step as the load model has it."""
    wave, firstwave = load_model.wave, load_model._firstwave
    inside = {"on": False}

    def one_a_step(phys, W, S, O, T, n_dec, P=0.0):
        if inside["on"]:
            T = S + load_model._budget_share(phys) * n_dec
        return wave(phys, W, S, O, T, n_dec, P)

    def marked(*args, **kwargs):
        inside["on"] = True
        try:
            return firstwave(*args, **kwargs)
        finally:
            inside["on"] = False
    load_model.wave, load_model._firstwave = one_a_step, marked
    try:
        yield
    finally:
        load_model.wave, load_model._firstwave = wave, firstwave


def section8(data, cat) -> None:
    """Section 8: section 7's reading as a rule for every model, checked on every aggregated row."""
    meas_t, meas_p = np.array([d[1] for d in data]), np.array([d[2] for d in data])
    N = np.array([d[0].load[1] / d[0].replicas for d in data])
    kind = np.array(["DeepSeek" if d[4].startswith("deepseek") else
                     ("other MoE" if cat.models[d[4]].moe is not None else "dense") for d in data])
    today = components(data, cat, 0.0, 0.0, update={})
    with first_wave_one_prompt_a_step():
        rule = components(data, cat, 0.0, 0.0, update={})
    print(f"\n8. Candidate: a run's first wave prefilled one prompt a step, every model ({len(data)} aggregated "
          "measurements): TTFT / TPOT median |error| % (TTFT signed), today -> with it")
    for name, sel in (("all", np.ones(len(data), bool)),
                      *(((k, lo, hi), (kind == k) & (N >= lo) & (N <= hi))
                        for k in ("DeepSeek", "other MoE", "dense") for lo, hi in ((1, 8), (9, 64), (65, 10**6)))):
        cells = []
        for r in (today, rule):
            et, ep = r["ttft"][sel] / meas_t[sel] - 1.0, r["tpot"][sel] / meas_p[sel] - 1.0
            cells.append(f"{np.nanmedian(abs(et)) * 100:5.1f} ({np.nanmedian(et) * 100:+6.1f}) / "
                         f"{np.nanmedian(abs(ep)) * 100:5.1f}")
        label = name if isinstance(name, str) else f"{name[0]} {name[1]}-{name[2]}" if name[2] < 10**6 \
            else f"{name[0]} > {name[1] - 1}"
        print(f"   {label:22} n {int(sel.sum()):4d}: {cells[0]} -> {cells[1]}")


def section9(path: str, corpus) -> None:
    """Section 9: the disaggregated DeepSeek rows at <= 4 clients, as `planner validate` predicts them."""
    from planner.fidelity.validate import validate_file
    groups: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
    for r in validate_file(path).records():
        if (r["mode"] is None or not str(r["mode"]).startswith("disagg") or r["counted"] != "yes"
                or r["predicted"] in (None, "") or r["metric"] != "ttft_ms_mean"
                or not str(r["model_id"]).startswith("deepseek")):
            continue
        row = corpus[int(r["row"]) - 2]
        n = float(str(r["load"]).split()[0])
        if n <= 4:
            weights = "nvfp4" if "nvfp4" in row["precision"] else "fp8"
            groups[(r["engine"], r["system"], weights, int(row["input_len"]))].append(
                (float(r["measured"]), float(r["predicted"])))
    print("\n9. DeepSeek disaggregated, <= 4 clients: TTFT measured / predicted by `planner validate` (medians)")
    for key, v in sorted(groups.items()):
        a = np.array(v)
        print(f"   {key[0]:7} {key[1][:8]:8} {key[2]:6} ISL {key[3]:5d} n {len(v):2d}: measured {np.median(a[:, 0]):7.0f} "
              f"predicted {np.median(a[:, 1]):6.0f} ms, ratio {np.median(a[:, 0] / a[:, 1]):5.2f}")


def odd_population(framework: str) -> bool:
    """Section 1's two populations slow at every load: TensorRT-LLM 1.1.0rc2 (InferenceX,
    2025-12: decode steps twice the model's at 4 clients too) and SGLang runs whose version is
    not stated (InferenceX, 2025-11)."""
    return "1.1.0rc2" in framework or framework.strip() == "SGLang version not stated"


def section5(data, cat, corpus, without_odd: bool = False, b200_fp8: bool = False, others: bool = False) -> None:
    ds = [d for d in data if d[4].startswith("deepseek") != others
          and (not others or cat.models[d[4]].moe is not None)
          and not (without_odd and odd_population(corpus[d[0].row]["framework"]))
          and (not b200_fp8 or (d[3] == "b200" and d[0].scheme == "w8a8-fp8"))]
    if others:
        print("\n   the other MoE models (gpt-oss-120b, Qwen3-235B) under the same slower prefill:")
    elif b200_fp8:
        print("\n   B200 FP8 alone (where sections 1 and 3 agree that the prefill is 2.7-3.6x the model's), "
              "without the odd populations:")
    elif without_odd:
        print("\n   the same without section 1's two odd populations (TensorRT-LLM 1.1.0rc2, SGLang of no stated version):")
    meas_t, meas_p = np.array([d[1] for d in ds]), np.array([d[2] for d in ds])
    N = np.array([d[0].load[1] / d[0].replicas for d in ds])
    eng = np.array([d[5] for d in ds])
    if not (without_odd or b200_fp8 or others):
        print(f"\n5. DeepSeek aggregated ({len(ds)} measurements): median |error| % (signed) by engine and clients a replica")
    variants = {"profiles as they are": {}, **SLOWER}
    results = {name: components(ds, cat, 0.0, 0.0, update=upd) for name, upd in variants.items()}
    print(f"{'engine':7} {'clients':>9} {'n':>4}  " + "  ".join(f"{name:>36}" for name in variants))
    print(f"{'':7} {'':>9} {'':>4}  " + "  ".join(f"{'TTFT':>17} {'TPOT':>18}" for _ in variants))
    for e in sorted(set(eng)):
        for lo, hi in BANDS:
            m = (eng == e) & (N >= lo) & (N <= hi)
            if m.sum() < 3:
                continue
            cells = []
            for name in variants:
                et = results[name]["ttft"][m] / meas_t[m] - 1.0
                ep = results[name]["tpot"][m] / meas_p[m] - 1.0
                cells.append(f"{np.nanmedian(abs(et)) * 100:7.1f} ({np.nanmedian(et) * 100:+6.1f}) "
                             f"{np.nanmedian(abs(ep)) * 100:7.1f} ({np.nanmedian(ep) * 100:+6.1f})")
            band = f"{lo}-{hi}" if hi < 10**6 else f"> {lo - 1}"
            print(f"{e:7} {band:>9} {int(m.sum()):4d}  " + "  ".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", default=str(REFERENCE / "measured-silicon.csv"))
    args = ap.parse_args()
    data, cat = rows(args.csv)
    corpus = load_measurements(args.csv)
    section1(data, cat, corpus)
    section2(data, cat, corpus)
    section3_4(data, cat, corpus)
    section5(data, cat, corpus)
    section5(data, cat, corpus, without_odd=True)
    section5(data, cat, corpus, without_odd=True, b200_fp8=True)
    section5(data, cat, corpus, others=True)
    section6(data, cat, corpus)
    section7(data, cat, corpus)
    section8(data, cat)
    section9(args.csv, corpus)


if __name__ == "__main__":
    main()
