"""Prefix caching (issue 25 item 2; docs/workloads.md section 7, docs/load.md section 1b): cached
prompt tokens skip prefill compute but hold KV. By hand on a known model and GPU; hit rate 0 is
today's figures exactly on every shipped instance; more reuse never costs more nor raises
TTFT; the simulator's LRU, sized by a plan's KV pool, agrees with the closed form's reuse on
the Mooncake sample trace."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from planner.candidates.table import build_candidates
from planner.catalog.store import Catalog
from planner.errors import InputError
from planner.physics.load import Target, Workload, capacity_at_slo, engine, load_metrics, step_physics
from planner.physics.options import PRESETS
from planner.physics.space import Configs, GpuTable
from planner.physics.step import step_terms, step_time
from planner.resolve.problem import resolve, resolve_fleet
from planner.schemas.fleet import fleet_spec_of
from planner.schemas.plan import plan_spec_of
from planner.simulate import Arrivals, Lengths, simulate, simulate_config
from planner.traces.cache import BlockLRU, StatedCache, TraceCache, cached_tokens
from planner.traces.figures import prefix_reuse
from planner.traces.read import read_trace
from planner.yamlio import load_yaml, parse_yaml

ROOT = Path(__file__).resolve().parent.parent
CAT = Catalog.default()
O = PRESETS["realistic"]
H100_BF16_MAMF = 794.5e12          # FLOP/s (tests/test_step_physics.py)


def _phys(model="llama-3.1-8b", gpu="h100-sxm", tp=1, batch=16, S=2000, out=200, o=O):
    t = GpuTable.build([CAT.gpus[gpu]])
    return step_physics(CAT.model(model), t, Configs.single(0, "w16a16", "bf16", tp, 1, 1, batch, S, out), o)


# ----------------------------------------------------------------------------------------
# By hand: Llama-3.1-8B (32 layers, 32 query heads of 128, 6,979,588,096 non-embedding
# parameters, LM head 4,096 x 128,256) on one H100 SXM, BF16
# ----------------------------------------------------------------------------------------

def test_prefill_of_a_cached_prompt_by_hand():
    """A 2,000-token prompt with 1,500 tokens cached computes 500: the GEMMs 2 x 6,979,588,096
    x 500 = 6.98e12 FLOPs (not 2,000's 2.79e13), the LM head one row, 2 x 4,096 x 128,256, and
    the causal attention of 500 queries over 1,500 cached + their own keys: per layer
    (500^2 / 2 + 500 x 1,500) pairs x 2 x 32 heads x (128 + 128) = 1.4336e10 FLOPs, x 32 layers
    = 4.588e11 (the uncached prompt: 2,000^2 / 2 pairs, 1.048e12). Seconds at the MAMF x the
    prefill efficiency 0.8 (GEMMs) and the attention efficiency 0.78."""
    ph = _phys()
    c, p = 500.0, 1500.0
    gemm = 2.0 * 6_979_588_096 * c                           # FLOPs
    head = 2.0 * 4096 * 128_256                              # FLOPs, one logit row
    attn = 32 * (c * c / 2.0 + c * p) * 2.0 * 32 * (128 + 128)   # FLOPs
    assert attn == pytest.approx(4.58752e11)
    want = (gemm + head) / (H100_BF16_MAMF * 0.8) + attn / (H100_BF16_MAMF * 0.78)   # seconds
    terms: dict = {}
    step_terms(ph, 0.0, 0.0, c, c * c + 2.0 * c * p, 1.0, terms)
    assert terms["flops"][0] == pytest.approx(want, rel=1e-9)
    uncached: dict = {}
    step_terms(ph, 0.0, 0.0, 2000.0, 2000.0**2, 1.0, uncached)
    full = (2.0 * 6_979_588_096 * 2000 + head) / (H100_BF16_MAMF * 0.8) \
        + 32 * 2000.0**2 / 2.0 * 2.0 * 32 * 256 / (H100_BF16_MAMF * 0.78)
    assert uncached["flops"][0] == pytest.approx(full, rel=1e-9)
    assert terms["flops"][0] < 0.3 * uncached["flops"][0]


def test_ttft_at_no_load_is_the_computed_parts_step():
    """The load model at a vanishing rate: TTFT = the serving path + the residual of the idle
    step in progress + one prompt step, which for the cached prompt carries the 500 computed
    tokens with c(S + 2P) = 500^2 + 2 x 500 x 1,500 attention units (section 1b), for the
    uncached one all 2,000 with 2,000^2: the TTFTs differ by the two steps exactly."""
    ph = _phys()
    eng = engine(ph)
    lam = np.array([1e-9])
    cached = load_metrics(ph, eng, Workload(isl=2000.0, osl=200.0, cached=1500.0), rate=lam)
    plain = load_metrics(ph, eng, Workload(isl=2000.0, osl=200.0), rate=lam)
    step = float(step_time(ph, 0.0, 0.0, 500.0, 500.0**2 + 2 * 500 * 1500, 1.0)[0])
    whole = float(step_time(ph, 0.0, 0.0, 2000.0, 2000.0**2, 1.0)[0])
    drop = plain.get("ttft", "mean")[0] - cached.get("ttft", "mean")[0]
    assert drop == pytest.approx(whole - step, rel=1e-6)
    assert step < 0.5 * whole
    # the decode step still reads the whole context: cached tokens hold KV
    assert cached.step_decode[0] == pytest.approx(plain.step_decode[0], rel=1e-12)


def test_idle_ttft_is_the_whole_prompts_less_the_step_the_cache_saves():
    """docs/load.md section 1b: the zero-load TTFT of a 2,000-token prompt with 1,500 cached is
    perf.py's idle TTFT of the whole prompt less (the prompt step of 2,000 tokens, 2,000^2
    attention units, minus the step of the 500 computed ones, 500^2 + 2 x 500 x 1,500): the
    same prompt step the loaded TTFT takes (``test_ttft_at_no_load_is_the_computed_parts_step``);
    without a cache, perf.py's figure bit for bit."""
    from planner.physics.load import idle_ttft
    ph = _phys()
    whole = np.array([0.25])                                   # seconds
    step = float(step_time(ph, 0.0, 0.0, 500.0, 500.0**2 + 2 * 500 * 1500, 1.0)[0])
    full = float(step_time(ph, 0.0, 0.0, 2000.0, 2000.0**2, 1.0)[0])
    got = idle_ttft(ph, Workload(isl=2000.0, osl=200.0, cached=1500.0), whole)
    assert got[0] == pytest.approx(0.25 - (full - step), rel=1e-12) and full - step > 0.5 * full
    assert idle_ttft(ph, Workload(isl=2000.0, osl=200.0), whole)[0] == 0.25
    assert idle_ttft(ph, Workload(isl=2000.0, osl=200.0, cached=0.0), whole)[0] == 0.25


# ----------------------------------------------------------------------------------------
# Metamorphic: hit rate 0 gives today's figures exactly, on every shipped instance
# ----------------------------------------------------------------------------------------

PLANS = sorted(p.name for p in (ROOT / "instances").glob("*.yaml")
               if not p.name.startswith("estimate_") and not p.name.startswith("fleet_"))
FLEETS = sorted(p.name for p in (ROOT / "instances").glob("fleet_*.yaml"))


def _arrays_equal(a, b, where=""):
    if isinstance(a, np.ndarray):
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), where
    elif isinstance(a, Mapping):     # a dict, or a gathered table's statistics (read when used)
        assert a.keys() == b.keys(), where
        for k in a:
            _arrays_equal(a[k], b[k], f"{where}.{k}")
    elif hasattr(a, "__dataclass_fields__") and not isinstance(a, type):
        for f in fields(a):
            if f.name in ("slots", "ev", "configs", "limits", "slo"):
                continue
            _arrays_equal(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")


def _candidates(path: Path, hit_rate: float | None):
    data = copy.deepcopy(load_yaml(path).data)
    fleet = "workloads" in data
    for w in data["workloads"] if fleet else [data["workload"]]:
        if hit_rate is not None:
            w["prefix_cache"] = {"hit_rate": hit_rate}
    doc = parse_yaml(_dump(data), str(path))
    p = resolve_fleet(fleet_spec_of(doc), doc) if fleet else resolve(plan_spec_of(doc), doc)
    return build_candidates(p)


@pytest.mark.parametrize("name", PLANS + FLEETS)
def test_hit_rate_zero_is_todays_figures_exactly(name):
    base = _candidates(ROOT / "instances" / name, None)
    zero = _candidates(ROOT / "instances" / name, 0.0)
    assert all(s.cache is not None and s.cache.cached_tokens == 0.0 for s in zero.slots)
    _arrays_equal(base, zero, name)
    assert base.load is not None and zero.load is not None
    _arrays_equal(base.load, zero.load, f"{name}.load")


# ----------------------------------------------------------------------------------------
# Property: more reuse never costs more nor raises TTFT
# ----------------------------------------------------------------------------------------

CONFIGS = [("llama-3.1-8b", "h100-sxm", 1, 64), ("llama-3.1-8b", "l40s", 2, 32), ("llama-3.1-70b", "h100-sxm", 4, 64),
           ("qwen3-32b", "a100-80gb", 2, 32)]


# derandomized: the same 200 examples each run (a random run may draw an open counterexample). The two
# hit rates differ by at least 1 point: two independent floats drew the same value in 90 of 203
# examples (the draw repeats values), comparing a workload with itself (review of issue 25)
@settings(max_examples=200, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
# SGLang's prefill first, 12.5 % cached: p99 TTFT rose 146.654 -> 146.658 ms when the chunk fill
# put more prompts in a step the shorter they were (``_prompt_batch``, docs/load.md section 5)
@example(cfg=("llama-3.1-8b", "h100-sxm", 1, 64), S=293, out=157, h=[0.0, 0.125], load=0.125, cv2=0.0, arrival=1.0,
         engine_="sglang")
# 8,192.25 computed tokens against 6,826.9: a prompt cut in two equal halves made a shorter step
# for the residual than the one step of the shorter prompt (p90 602 -> 626 ms); cut as the engine does
@example(cfg=("llama-3.1-8b", "h100-sxm", 1, 64), S=10923, out=2, h=[0.25, 0.375], load=0.5, cv2=0.0, arrival=1.0,
         engine_="sglang")
# the p50 that rose 398.7 -> 400.6 ms when every percentile's last step carried the mean wait's
# joiners (test_prefill_first_p50_ttft_never_rises_with_reuse_a_residual_chunk_apart): the 200 drawn
# examples pass on that code too, so the property keeps it (review of issue 25)
@example(cfg=("llama-3.1-8b", "h100-sxm", 1, 64), S=8942, out=2, h=[0.0, 0.0625], load=0.25, cv2=0.0, arrival=1.0,
         engine_="sglang")
# 6.25 % cached leaves a 513-token last piece, in the eager step's floor as the 1,093 tokens
# uncached: the prompt's own prefill rises, idle as under load (the simulator's p50 too, 366.2 ->
# 370.2 ms; test_reuse_raises_an_idle_prefill_where_its_last_step_stays_as_long): no claim on it
@example(cfg=("llama-3.1-8b", "h100-sxm", 1, 64), S=9285, out=2, h=[0.0, 0.0625], load=0.5, cv2=0.0, arrival=1.0,
         engine_="sglang")
@given(cfg=st.sampled_from(CONFIGS), S=st.integers(64, 16_000), out=st.integers(2, 1000),
       h=st.tuples(st.floats(0.0, 0.95), st.floats(0.01, 1.0)).map(lambda t: [t[0], min(t[0] + t[1], 1.0)]),
       load=st.floats(0.05, 0.9),
       cv2=st.sampled_from([0.0, 0.5]), arrival=st.sampled_from([1.0, 4.0]), engine_=st.sampled_from(["realistic",
                                                                                                    "sglang"]))
def test_more_reuse_never_costs_more_nor_raises_ttft(cfg, S, out, h, load, cv2, arrival, engine_):
    """Two hit rates on one configuration (vLLM's mixed steps or SGLang's prefill first): the
    more cached workload saturates no sooner, has no lower capacity at SLO (so never more
    replicas), and wherever its prompt's prefill on a nearly idle replica is no longer, no higher
    TTFT (mean and percentiles) at a load the other carries. Where the idle prefill is longer the
    rise is the step physics, not the load model's: a cached prefix lengthens the attention of
    every computed token (2 P keys), and where the cache does not shorten the prompt's last step
    (the eager step's floor) its own prefill takes longer, in the simulator as in the closed form,
    idle and under load (docs/load.md section 5, 'reuse and TTFT';
    test_reuse_raises_an_idle_prefill_where_its_last_step_stays_as_long)."""
    model, gpu, tp, batch = cfg
    ph = _phys(model, gpu, tp, batch, S, out, o=PRESETS[engine_])
    eng = engine(ph)
    lo, hi = sorted(h)
    wl = [Workload(isl=float(S), osl=float(out), arrival_cv2=arrival, isl_cv2=cv2, cached=min(x * S, S - 1.0))
          for x in (lo, hi)]
    less, more = (load_metrics(ph, eng, w, rate=np.array([0.0])) for w in wl)
    assert more.saturation_rate[0] >= less.saturation_rate[0] * (1 - 1e-9)
    rate = np.array([load * less.saturation_rate[0]])     # a load the less cached engine carries
    a, b = (load_metrics(ph, eng, w, rate=rate) for w in wl)
    a0, b0 = (load_metrics(ph, eng, w, rate=rate * 1e-6) for w in wl)      # nearly idle
    if a.stable[0]:
        assert b.stable[0]
        for stat in ("mean", "p50", "p90", "p99"):
            if b0.get("ttft", stat)[0] <= a0.get("ttft", stat)[0] * (1 + 1e-12):     # the idle prefill no longer
                assert b.get("ttft", stat)[0] <= a.get("ttft", stat)[0] * (1 + 1e-9), stat
    targets = [Target("ttft", "p90", 4.0), Target("tpot", "mean", 0.2)]
    ca, cb = (capacity_at_slo(ph, eng, w, targets, max_utilization=0.8) for w in wl)
    assert cb.rate[0] >= ca.rate[0] * (1 - 1e-3)     # more capacity: never more replicas, never more cost


def _reuse_pair(S: int, out: int, preset: str, shares: tuple[float, float], load: float, arrival: float = 1.0):
    """Llama-3.1-8B on one H100 (batch 64) at ``load`` x the less cached workload's saturation:
    the load model's result for each of two cached shares of an S-token prompt."""
    ph = _phys("llama-3.1-8b", "h100-sxm", 1, 64, S, out, o=PRESETS[preset])
    eng = engine(ph)
    wl = [Workload(isl=float(S), osl=float(out), arrival_cv2=arrival, isl_cv2=0.0, cached=x * S) for x in shares]
    rate = np.array([load * load_metrics(ph, eng, wl[0], rate=np.array([0.0])).saturation_rate[0]])
    return tuple(load_metrics(ph, eng, w, rate=rate) for w in wl)


def _never_rises(a, b, stats=("mean", "p50", "p90", "p99")) -> None:
    for stat in stats:
        assert b.get("ttft", stat)[0] <= a.get("ttft", stat)[0] * (1 + 1e-9), stat


@pytest.mark.parametrize("S, h, load", [(8192, 0.0625, 0.5), (9363, 0.2, 0.125)])
def test_mixed_steps_ttft_percentiles_never_rise_with_reuse(S, h, load):
    """Former counterexamples to the property above on the mixed (vLLM) engine, Llama-3.1-8B on
    one H100, 2 output tokens, Poisson: p90 TTFT 505 -> 623 ms at 8,192 tokens and 6.25 % cached,
    p99 506 -> 524 ms at 9,363 tokens and 20 % cached, when the backlog that fitted the spare room
    of a two-step prompt's last step was charged no time. The queued work ahead is charged at the
    prefill's rate wherever it lands (docs/load.md section 4): the cached prompt's TTFT is lower at
    every percentile, as the simulator finds (20,000 requests, seed 1: p90 799 -> 565 ms)."""
    _never_rises(*_reuse_pair(S, 2, "realistic", (0.0, h), load))


def test_prefill_first_p99_ttft_never_rises_with_reuse_one_token_over_the_chunk():
    """A former counterexample to the property above that 200 derandomized examples found:
    SGLang's prefill first, Llama-3.1-8B on one H100, batch 64, 8,193-token prompts, 2 output
    tokens, Poisson at a quarter of the uncached saturation: 12.5 % cached lowered the mean, p50
    and p90 TTFT but raised p99 from 654.9 to 722.2 ms (uncached the prompt is cut into the chunk
    and a 1-token residual, so the backlog beyond its spare room was nearly none). With the whole
    backlog's tail in the percentiles (docs/load.md section 5) p99 falls, 832.1 -> 722.2 ms."""
    _never_rises(*_reuse_pair(8193, 2, "sglang", (0.0, 0.125), 0.25))


def test_long_bursty_prompts_ttft_p50_never_rises_with_reuse():
    """A former counterexample to the property above that a 400-case random sweep found (review
    of the percentile change): Llama-3.1-8B on one H100, batch 64, 20,809-token prompts, 504
    output tokens, arrivals of CV^2 4 at 0.81 of saturation: 6.6 -> 12.1 % cached lowered the
    mean, p90 and p99 TTFT (2,183 -> 1,956, 4,654 -> 4,238, 16,120 -> 12,849 ms) but raised p50,
    948.0 -> 956.1 ms: every percentile's last step carried the prompts that join during the
    *mean* wait (1.07 s, the bursty backlog's), so it was full either way and its cached tokens'
    longer attention made it longer. The median request finds no backlog (P(wait) 0.42, rho_p
    0.46): its last step is its own 3,072- or 1,926-token piece, and p50 falls, 777.2 -> 744.1 ms
    (docs/load.md section 5, 'the last step at a percentile'; the simulator's falls too, 8.4 ->
    6.1 s: far from both, the bursty heavy traffic of section 9). Since the prompts that arrive
    during its own full chunks join that piece too (whole prompts, their expected effect on the
    step: section 5, 'whole joiners'), p50 is 831.1 -> 811.6 ms: it still falls."""
    a, b = _reuse_pair(20809, 504, "realistic", (0.066, 0.121), 0.81, arrival=4.0)
    assert a.stable[0] and b.stable[0]
    _never_rises(a, b)
    assert 1e3 * a.get("ttft", "p50")[0] == pytest.approx(831.1, abs=0.1)
    assert 1e3 * b.get("ttft", "p50")[0] == pytest.approx(811.6, abs=0.1)


def test_prefill_first_p50_ttft_never_rises_with_reuse_a_residual_chunk_apart():
    """A former counterexample to the property above (200 derandomized examples drew it):
    SGLang's prefill first, Llama-3.1-8B on one H100, batch 64, 8,942-token prompts (the chunk and
    a 750-token residual), 2 output tokens, Poisson at a quarter of the uncached saturation: 6.25 %
    cached (a 191-token residual) lowered the mean, p90 and p99 TTFT but raised p50 from 398.7 to
    400.6 ms: the mean wait's joiners (lambda S (R + W_backlog), 321 tokens) put the cached
    prompt's last step at 512.5 tokens, past the 512-token CUDA graphs into the eager step's
    40.3 ms floor, where the uncached one already was. The median request queues behind no
    backlog (P(wait) 0.074): its last step is its own piece, 750 tokens (40.3 ms) against 191
    (8.2 ms), and p50 falls to 368.5 ms, as the simulator's does (366.2 -> 338.3 ms: `python
    benchmarks/ttft_percentiles_long.py --reuse`). The prompts that arrive during its full
    chunk join that piece too, m = lambda t(8,192) of them on average (0.22 and 0.22, whole
    prompts: none with probability e^-m, else a full step of 8,192 tokens; docs/load.md section
    5, 'whole joiners'): p50 398.7 -> 436.2 ms uncached, 368.5 -> 413.1 cached, further above
    the simulator's (its median request has none: P(N >= 1) = 0.20 < 1/2; the percentile takes
    the expected step). By hand, from the step times: p50 moves by the own steps'
    t(8,192) + (1 - s) t(last) + s t(8,192), s = 1 - e^-m, each at its attention (A = 9,501 cached
    and 8,942 uncached units a token), and the mean residual's change (under 0.05 ms)."""
    from planner.physics.step import step_time
    a, b = _reuse_pair(8942, 2, "sglang", (0.0, 0.0625), 0.25)
    _never_rises(a, b)
    ph = _phys("llama-3.1-8b", "h100-sxm", 1, 64, 8942, 2, o=PRESETS["sglang"])

    def t(c, A, S):          # a prompt-only step of c computed tokens, A attention units each, c / S prompts
        return step_time(ph, 0.0, 0.0, np.array([c]), np.array([c * A]), np.array([c / S]))[0]
    P = 0.0625 * 8942.0
    S_c = 8942.0 - P
    A_u, A_c = 8942.0, S_c + 2.0 * P         # S + 2P per computed token: 8,942 and 9,501.0
    def own(A, S, last):     # the full chunk, then the last piece alone or with whole joiners (a full step)
        m = a.rate[0] * t(8192.0, A, S)          # requests/s x s: prompts arriving during the full chunk
        s = -math.expm1(-m)
        assert 0.19 < s < 0.21
        return t(8192.0, A, S) + (1.0 - s) * t(last, A, S) + s * t(min(8192.0, last + S * m / s), A, S)
    by_hand = own(A_c, S_c, S_c - 8192.0) - own(A_u, 8942.0, 750.0)
    assert t(750.0, A_u, 8942.0) == pytest.approx(0.0403, abs=1e-4)        # the eager floor
    assert t(512.5, A_c, S_c) == pytest.approx(0.0403, abs=1e-4)           # the mean wait's last step: past it
    assert t(S_c - 8192.0, A_c, S_c) == pytest.approx(0.0082, abs=1e-4)    # the 191-token piece alone
    assert b.get("ttft", "p50")[0] - a.get("ttft", "p50")[0] == pytest.approx(by_hand, abs=5e-5)
    assert 1e3 * a.get("ttft", "p50")[0] == pytest.approx(436.2, abs=0.05)
    assert 1e3 * b.get("ttft", "p50")[0] == pytest.approx(413.1, abs=0.05)


def test_reuse_raises_an_idle_prefill_where_its_last_step_stays_as_long():
    """Why the property above makes no claim where the prefill on a nearly idle replica rises:
    the simulator shows the rise too, idle and under load. SGLang's prefill first, Llama-3.1-8B on one H100, 9,285-token prompts, 2
    output tokens: uncached the prompt is a 8,192-token chunk and 1,093 tokens, 6.25 % cached a
    chunk and 513 tokens, both past the 512-token CUDA graphs (the eager step's 40.3 ms floor),
    so the last step is no shorter while each computed token attends to 580 more cached keys:
    at 0.05 of saturation the simulated p50 TTFT rises 366.2 -> 370.2 ms (an idle prompt's), the
    closed form's 386.5 -> 388.7 ms (its nearly idle p50 by 2.0 ms, the step in progress and the
    whole joiners of its full chunk a little more). At half of saturation the simulated p50 rises
    552.7 -> 560.0 ms, the closed form's 492.4 -> 493.4 (`python benchmarks/ttft_percentiles_long.py
    --reuse`: 20,000 requests, seeds 1-2; the closed form's 378.5 -> 380.6 and 425.1 -> 426.4
    before the arrivals during its full chunk joined its last piece)."""
    ph = _phys("llama-3.1-8b", "h100-sxm", 1, 64, 9285, 2, o=PRESETS["sglang"])
    eng = engine(ph)
    wl = [Workload(isl=9285.0, osl=2.0, cached=x * 9285.0) for x in (0.0, 0.0625)]
    rate = 0.05 * load_metrics(ph, eng, wl[0], rate=np.array([0.0])).saturation_rate[0]
    sim = []
    for x in (0.0, 0.0625):
        r = simulate_config(ph, eng, 0, Arrivals("poisson", rate=rate), Lengths(9285), Lengths(2), n_requests=400,
                            seed=1, prefix_cache=StatedCache(hit_rate=x))
        sim.append(float(np.percentile(r.ttft, 50)))
    assert sim[0] == pytest.approx(0.3662, abs=5e-4) and sim[1] == pytest.approx(0.3702, abs=5e-4)
    a, b = (load_metrics(ph, eng, w, rate=np.array([rate])) for w in wl)
    a0, b0 = (load_metrics(ph, eng, w, rate=np.array([rate * 1e-6])) for w in wl)
    rise, idle_rise = (b.get("ttft", "p50")[0] - a.get("ttft", "p50")[0],
                       b0.get("ttft", "p50")[0] - a0.get("ttft", "p50")[0])
    assert 0.0 < idle_rise < rise < sim[1] - sim[0]


def test_a_prefill_first_prompt_step_runs_the_prompts_of_the_step_before():
    """docs/load.md section 5, 'prefill first': a prompt-only step runs the prompts that arrived
    during the step before, N ~ Poisson(a), a = lambda tau. By hand at a = 0.5: a step runs
    prompts with probability 1 - e^-0.5 = 0.393469, then E[N | N >= 1] = 0.5 / 0.393469 =
    1.270747 of them: 300-token prompts make a mean step of 300 + 300 x 0.270747 = 381.22
    tokens; 3,000-token prompts at a = 5 (5.0339 a step) fill the 8,192-token budget. In the
    load model, at its own tau: the share of carrying steps is 1 - e^-(lambda tau) and the mean
    chunk S x lambda tau / (1 - e^-(lambda tau)), fewer tokens for a cached prompt."""
    from planner.physics.load import _prompt_batch
    assert 1.0 - math.exp(-0.5) == pytest.approx(0.393469, abs=1e-6)
    assert _prompt_batch(np.array([300.0]), np.array([8192.0]), np.array([300.0]), np.array([0.5]))[0] == \
        pytest.approx(381.22, abs=0.01)
    assert _prompt_batch(np.array([3000.0]), np.array([8192.0]), np.array([3000.0]), np.array([5.0]))[0] == 8192.0
    assert _prompt_batch(np.array([300.0]), np.array([8192.0]), np.array([300.0]), np.array([0.0]))[0] == 300.0
    ph = _phys(S=293, out=157, batch=64, o=PRESETS["sglang"])
    eng = engine(ph)
    chunks = []
    for cached in (0.0, 100.0):
        r = load_metrics(ph, eng, Workload(isl=293.0, osl=157.0, cached=cached), rate=np.array([10.0]))
        a = 10.0 * r.get("itl", "mean")[0]
        assert r.prefill_step_fraction[0] == pytest.approx(-math.expm1(-a), rel=1e-9)
        assert r.chunk_tokens[0] == pytest.approx((293.0 - cached) * a / -math.expm1(-a), rel=1e-9)
        chunks.append(r.chunk_tokens[0] / (293.0 - cached))
    assert chunks[1] < chunks[0]         # shorter steps: fewer prompts a step


def test_prefill_first_prompt_steps_agree_with_the_simulator():
    """The simulator's prefill-first scheduler (Llama-3.1-8B H100, 293 / 157 tokens, Poisson at
    half of saturation): its prompt steps carry 310 tokens on average (seed 1, 3,000 requests),
    the closed form's 309 (the chunk fill it replaced: 702, a 28-prompt budget filled with the
    probability that one more prompt waits)."""
    from planner.physics.step import scalar_step_fn
    from planner.simulate import simulate as run
    ph = _phys(S=293, out=157, batch=64, o=PRESETS["sglang"])
    eng = engine(ph)
    wl = Workload(isl=293.0, osl=157.0)
    rate = 0.5 * load_metrics(ph, eng, wl, rate=np.array([0.0])).saturation_rate[0]
    T, cap = int(eng.token_budget[0]), int(eng.max_seqs[0])
    base, prompts = scalar_step_fn(ph, 0, T + cap + 1), []

    def step(n, ctx, c=0, *rest):
        if c > 0:
            prompts.append(c)
        return base(n, ctx, c, *rest)
    run(step, Arrivals("poisson", rate=rate), Lengths(293), Lengths(157), token_budget=T, max_seqs=cap,
        kv_pool_tokens=float(eng.kv_pool_tokens[0]), n_requests=3000, seed=1, prefill_first=True,
        serving_s=ph.o.serving_overhead_s)
    closed = load_metrics(ph, eng, wl, rate=np.array([rate])).chunk_tokens[0]
    assert abs(closed / np.mean(prompts) - 1.0) < 0.05, (closed, np.mean(prompts))


def test_more_reuse_never_costs_more_on_a_plan():
    """A shipped instance planned at hit rates 0, 0.3 and 0.6: the optimum's cost never rises."""
    from plan_checks import violations

    from planner.plan.solve import plan, prepare
    doc = load_yaml(ROOT / "instances" / "chat_llama70b.yaml")
    costs = []
    for h in (0.0, 0.3, 0.6):
        data = copy.deepcopy(doc.data)
        data["workload"]["prefix_cache"] = {"hit_rate": h}
        spec = plan_spec_of(parse_yaml(_dump(data), str(doc.file)))
        r = plan(spec, backend="highs", top_k=1)
        costs.append(r.plans[0].objective_value)
        problem = prepare(spec)[1]
        assert violations(problem, r.plans[0]) == []     # the tests' own check, the cache included
    assert costs[0] >= costs[1] * (1 - 1e-9) >= costs[2] * (1 - 1e-9)


def _dump(data) -> str:
    import yaml
    return yaml.safe_dump(data)


# ----------------------------------------------------------------------------------------
# The LRU rule, the engine's count of cached tokens, the simulator's hook
# ----------------------------------------------------------------------------------------

def test_lru_evicts_least_recent_and_keeps_pinned_blocks():
    c = BlockLRU(3)
    c.use([1, 2])
    c.pin([3, 4])            # in flight: 3 and 4 held, 2 evicted (1 is more recent: used last)
    assert 1 in c.free and 2 not in c.free and set(c.pinned) == {3, 4}
    assert c.hits([1, 3, 4]) == 3 and c.hits([2, 1]) == 0
    c.release([3, 4])        # 4 freed first, 3 last: 3 the most recent
    c.pin([5, 6])            # room for 2 only beside... capacity 3: evicts 1, then 4
    assert set(c.free) == {3} and set(c.pinned) == {5, 6}
    assert cached_tokens(3, 512, 1500) == 1499      # a full hit still computes the last token
    assert cached_tokens(2, 512, 1500) == 1024


def test_simulator_counts_cached_and_computed_tokens():
    """A stated hit rate 0.75 on 2,000-token prompts: every request's prefill computes 500
    tokens; the summary counts 1,500 cached and 500 computed a request, and TTFT falls."""
    ph = _phys()
    eng = engine(ph)
    a = Arrivals("poisson", rate=1.0)
    kw = dict(n_requests=200, seed=1)
    plain = simulate_config(ph, eng, 0, a, Lengths(2000), Lengths(50), **kw)
    cached = simulate_config(ph, eng, 0, a, Lengths(2000), Lengths(50), prefix_cache=StatedCache(0.75), **kw)
    assert cached.summary["prompt_tokens_cached"] == 200 * 1500
    assert cached.summary["prompt_tokens_computed"] == 200 * 500
    assert cached.summary["cache_hit_rate"] == 0.75
    assert "cache_hit_rate" not in plain.summary
    assert cached.summary["ttft_mean"] < 0.6 * plain.summary["ttft_mean"]


def test_simulator_hit_rate_zero_is_the_simulator_without_a_cache():
    ph = _phys()
    eng = engine(ph)
    a = Arrivals("poisson", rate=2.0)
    kw = dict(n_requests=300, seed=3)
    plain = simulate_config(ph, eng, 0, a, Lengths([500, 3000], [0.5, 0.5]), Lengths([20, 200]), **kw)
    zero = simulate_config(ph, eng, 0, a, Lengths([500, 3000], [0.5, 0.5]), Lengths([20, 200]),
                           prefix_cache=StatedCache(0.0), **kw)
    assert np.array_equal(plain.ttft, zero.ttft) and np.array_equal(plain.e2e, zero.e2e)


@pytest.mark.parametrize("model,gpu,tp", [("llama-3.1-70b", "h100-sxm", 4), ("llama-3.1-8b", "h200", 1)])
def test_simulators_lru_agrees_with_the_closed_forms_reuse_on_mooncake(model, gpu, tp):
    """The Mooncake conversation sample replayed in order (its lengths, at its mean rate) with
    an LRU of the configuration's KV pool in 512-token blocks, the blocks of requests in
    flight pinned: its hit rate is within 5 points of the closed form's (the trace's reuse at
    a cache of the pool's size, docs/workloads.md section 4)."""
    trace = read_trace(str(ROOT / "instances" / "traces" / "mooncake-conversation-sample.jsonl"))
    S, Out = trace.input_tokens, trace.output_tokens
    ph = _phys(model, gpu, tp, 64, float(S.mean()), float(Out.mean()))
    eng = engine(ph)
    pool = float(eng.kv_pool_tokens[0])
    blocks = int(pool // trace.block_tokens)
    assert trace.block_ids is not None and trace.block_offsets is not None
    ids, off = trace.block_ids.tolist(), trace.block_offsets.tolist()
    per_request = [ids[off[i]:off[i + 1]] for i in range(trace.requests)]
    cache = TraceCache(per_request, trace.block_tokens, blocks)
    span = float(trace.time_s[-1] - trace.time_s[0])
    T, cap = int(eng.token_budget[0]), int(eng.max_seqs[0])
    from planner.physics.step import scalar_step_fn
    fn = scalar_step_fn(ph, 0, T + cap + 1)
    keep = S + Out <= pool
    assert keep.all()
    r = simulate(fn, Arrivals("poisson", rate=(trace.requests - 1) / span), Lengths(S.tolist(), in_order=True),
                 Lengths(Out.tolist(), in_order=True), token_budget=T, max_seqs=cap, kv_pool_tokens=pool,
                 n_requests=trace.requests, prefix_cache=cache)
    closed = prefix_reuse(trace, blocks)
    assert closed is not None
    assert abs(r.summary["cache_hit_rate"] - closed) <= 0.05, (r.summary["cache_hit_rate"], closed, blocks)


# ----------------------------------------------------------------------------------------
# Inputs: the schema piece and its located errors
# ----------------------------------------------------------------------------------------

BASE = """
schema_version: 1
model: llama-3.1-8b
workload: {input_tokens: 2000, output_tokens: 200, demand: {requests_per_s: 5}, prefix_cache: PC}
slo: {ttft_ms: {p90: 2000}, tpot_ms: 50}
search: {gpus: [h100-sxm]}
objective: cost_per_hour
"""


def _spec(pc: str):
    return plan_spec_of(parse_yaml(BASE.replace("PC", pc), "inst.yaml"))


@pytest.mark.parametrize("pc,needle", [("{hit_rate: 1.5}", "hit_rate"), ("{hit_rate: 0.2, prefix_tokens: 100}", "one of"),
                                        ("{}", "one of"), ("{from_trace: true}", "trace"),
                                        ("{hit_rate: 0.2, extra: 1}", "extra")])
def test_bad_prefix_cache_is_located(pc, needle):
    with pytest.raises(InputError) as e:
        _spec(pc)
    assert e.value.file == "inst.yaml" and str(e.value.path).startswith("workload")
    assert needle in str(e.value) and "prefix_cache" in f"{e.value.path} {e.value}"


def test_stated_cache_resolves_over_the_length_distribution():
    p = resolve(_spec("{prefix_tokens: 1500}"))
    s = p.slots[0]
    assert s.cache is not None and s.cache.cached_tokens == 1500 and s.cache.share == 0.75
    lengths = BASE.replace("input_tokens: 2000", "input_tokens: {histogram: [[1000, 0.5], [3000, 0.5]]}")
    p = resolve(plan_spec_of(parse_yaml(lengths.replace("PC", "{prefix_tokens: 1500}"), "inst.yaml")))
    # min(1500, S - 1) per prompt: 999 and 1500
    assert p.slots[0].cache.cached_tokens == pytest.approx(0.5 * 999 + 0.5 * 1500)


def test_from_trace_needs_block_hashes():
    text = (ROOT / "instances" / "trace_azure_conv.yaml").read_text()
    data = parse_yaml(text, str(ROOT / "instances" / "trace_azure_conv.yaml")).data
    data["workload"]["prefix_cache"] = {"from_trace": True}
    with pytest.raises(InputError) as e:
        resolve(plan_spec_of(parse_yaml(_dump(data), str(ROOT / "instances" / "trace_azure_conv.yaml"))),
                parse_yaml(_dump(data), str(ROOT / "instances" / "trace_azure_conv.yaml")))
    assert e.value.path == "workload.prefix_cache.from_trace"


# ----------------------------------------------------------------------------------------
# Launch flags and the plan's record
# ----------------------------------------------------------------------------------------

def _planned(hit_rate: float | None):
    import json

    from planner.plan.result import PlanResult
    from planner.whatif.relax import plan_and_relax
    doc = load_yaml(ROOT / "instances" / "latency_llama8b.yaml")
    data = copy.deepcopy(doc.data)
    if hit_rate is not None:
        data["workload"]["prefix_cache"] = {"hit_rate": hit_rate}
    doc = parse_yaml(_dump(data), str(doc.file))
    r = plan_and_relax(plan_spec_of(doc), doc, top_k=1, time_limit=60.0, simulate=False)
    return PlanResult.from_dict(json.loads(json.dumps(r.to_dict())))    # as `planner launch` reads it


def test_launch_turns_caching_on_where_the_plan_counts_on_it():
    from planner.launch.scripts import launch
    with_cache, without = _planned(0.4), _planned(None)
    w = next(iter(with_cache.inputs["workloads"].values()))
    assert w["prefix_cache"]["share"] == pytest.approx(0.4) and w["prefix_cache"]["source"] == "hit_rate"
    assert w["prefix_cache"]["cached_tokens_per_request"] + w["prefix_cache"]["computed_tokens_per_request"] \
        == pytest.approx(w["input_tokens_mean"])
    assert "prefix_cache" not in next(iter(without.inputs["workloads"].values()))
    for result, on in ((with_cache, True), (without, False)):
        plan = result.plans[0]
        vllm, sglang, trt = (launch(result, plan, e) for e in ("vllm", "sglang", "trtllm"))
        assert any(a.flag == "--enable-prefix-caching" for a in vllm.args) is on
        assert not any(a.flag == "--disable-radix-cache" for a in sglang.args)
        assert any("radix cache" in n for n in sglang.notes) is on
        assert (trt.yaml or {}).get("kv_cache_config", {}).get("enable_block_reuse", False) is on


def test_plan_output_shows_cached_and_computed_prompt_tokens():
    from planner.cli.render import notes
    from planner.report.html import render_report
    r = _planned(0.4)
    line = [n for n in notes(r) if n.startswith("prefix cache")]
    assert len(line) == 1 and "40.0% of prompt tokens" in line[0] and "its stated hit rate" in line[0]
    w = next(iter(r.inputs["workloads"].values()))
    cached, computed = w["prefix_cache"]["cached_tokens_per_request"], w["prefix_cache"]["computed_tokens_per_request"]
    assert f"{cached:,.0f} cached + {computed:,.0f} computed" in line[0]
    assert line[0] in render_report(r)
    plain = _planned(None)
    assert not [n for n in notes(plain) if n.startswith("prefix cache")]
    # the zero-load TTFT is the computed part's (review finding 5), below the uncached one's
    idle, idle0 = r.plans[0].load["idle"]["ttft_ms"], plain.plans[0].load["idle"]["ttft_ms"]
    assert idle < idle0 and idle <= r.plans[0].load["percentiles_ms"]["ttft_mean"]


def test_prefill_pool_skips_the_cached_prefill_but_sends_the_whole_context():
    """Disaggregated (docs/disaggregation.md section 1): the cache lives in the prefill pool.
    Its saturation rises and its TTFT falls with the cached share, its KV transfer stays the
    whole prompt's, and at P = 0 it is the pool without a cache exactly."""
    from planner.physics import disagg
    ph = _phys(S=4000, out=300)
    eng = engine(ph)
    plain, zero, cached = (Workload(isl=4000.0, osl=300.0), Workload(isl=4000.0, osl=300.0, cached=0.0),
                           Workload(isl=4000.0, osl=300.0, cached=3000.0))
    rate = np.array([0.5 * float(disagg.prefill_saturation(ph, eng, 4000.0)[0])])
    a, z, b = (disagg.prefill_metrics(ph, eng, w, rate, "inter") for w in (plain, zero, cached))
    for key in a.stats:
        assert np.array_equal(a.stats[key], z.stats[key])
    assert b.transfer[0] == a.transfer[0] > 0
    assert disagg.prefill_saturation(ph, eng, 4000.0, 3000.0)[0] > 3 * disagg.prefill_saturation(ph, eng, 4000.0)[0]
    assert b.get("ttft", "mean")[0] < a.get("ttft", "mean")[0]
    assert b.get("ttft", "p99")[0] < a.get("ttft", "p99")[0]


@pytest.mark.parametrize("name", ["mooncake-conversation-sample.jsonl", "mooncake-synthetic-sample.jsonl"])
def test_reuse_curve_is_the_lru_at_every_size(name):
    """The one-pass reuse curve (stack distances, LRU inclusion) against the LRU itself
    (``prefix_reuse``) at sizes from 1 block to unbounded: the same share, exactly."""
    from planner.traces.cache import ReuseCurve
    trace = read_trace(str(ROOT / "instances" / "traces" / name))
    assert trace.block_ids is not None and trace.block_offsets is not None
    ids, off = trace.block_ids.tolist(), trace.block_offsets.tolist()
    curve = ReuseCurve([ids[off[i]:off[i + 1]] for i in range(trace.requests)], trace.input_tokens.tolist(),
                       trace.block_tokens)
    shares = [curve.share(n) for n in (0, 1, 3, 10, 40, 100, 338, 887, 1721, 3000, 10**6)]
    for n, s in zip((0, 1, 3, 10, 40, 100, 338, 887, 1721, 3000, 10**6), shares):
        assert s == (prefix_reuse(trace, n) if n else 0.0), n
    assert curve.share(None) == prefix_reuse(trace)
    assert shares == sorted(shares)


def test_from_trace_takes_each_configurations_kv_pool():
    """``from_trace`` without ``cache_blocks``: each configuration's cached tokens are the
    trace's reuse in an LRU of its own KV pool (in 512-token blocks), more for a larger pool,
    never more than an unbounded cache's; with ``cache_blocks`` one figure for all."""
    path = ROOT / "instances" / "trace_mooncake_synthetic.yaml"
    data = copy.deepcopy(load_yaml(path).data)
    data["workload"].pop("cache_blocks", None)
    data["workload"]["prefix_cache"] = {"from_trace": True}
    doc = parse_yaml(_dump(data), str(path))
    slot = resolve(plan_spec_of(doc), doc).slots[0]
    assert slot.cache is not None and slot.cache.curve is not None
    pools = np.array([1e4, 1e5, 4.5e5, 9e5, 1e9])
    cached = np.asarray(slot.cache.cached_at(pools))
    assert np.all(np.diff(cached) >= 0) and cached[-1] == pytest.approx(slot.cache.cached_tokens)
    for pool, got in zip(pools, cached):
        assert got == pytest.approx(prefix_reuse(read_trace(str(ROOT / "instances" / "traces" /
                                                                "mooncake-synthetic-sample.jsonl")),
                                                 int(pool // 512)) * slot.input.mean)
    data["workload"]["cache_blocks"] = 500
    doc = parse_yaml(_dump(data), str(path))
    fixed = resolve(plan_spec_of(doc), doc).slots[0].cache
    assert fixed is not None and fixed.curve is None and fixed.cached_at(pools) == fixed.cached_tokens


def test_a_shared_prefix_never_costs_a_disaggregated_fleet_more():
    """fleet_disagg_wins (4,096-token prompts, prefill and decode pools) with a 3,000-token
    shared prefix: the prefill pool computes 1,096 tokens a prompt, so the fleet costs no more
    (here less), and its prefill plan records the split."""
    from planner.plan.solve import plan
    path = ROOT / "instances" / "fleet_disagg_wins.yaml"
    data = copy.deepcopy(load_yaml(path).data)
    costs, results = [], []
    for prefix in (None, 3000):
        if prefix is not None:
            data["workloads"][0]["prefix_cache"] = {"prefix_tokens": prefix}
        doc = parse_yaml(_dump(data), str(path))
        r = plan(fleet_spec_of(doc), doc, backend="highs")
        costs.append(r.answers[0].totals.cost_per_hour)
        results.append(r)
    assert costs[1] <= costs[0] * (1 + 1e-9)
    prefill = [p for p in results[1].plans if p.role == "prefill"]
    assert prefill and prefill[0].load["prompt_tokens"] == {"cached_per_request": 3000.0,
                                                            "computed_per_request": 1096.0}
    assert all("prompt_tokens" not in p.load for p in results[1].plans if p.role == "decode")


# ----------------------------------------------------------------------------------------
# Review of issue 25 (the percentile's joiners): open defects of the same family, the fluid
# lambda S w tokens that join a prompt's last step
# ----------------------------------------------------------------------------------------

def _vanishing(S: int, out: int, preset: str):
    """Llama-3.1-8B on one H100 (batch 64), Poisson at 10^-9 of saturation: the load model's result."""
    ph = _phys("llama-3.1-8b", "h100-sxm", 1, 64, S, out, o=PRESETS[preset])
    eng = engine(ph)
    w = Workload(isl=float(S), osl=float(out))
    sat = load_metrics(ph, eng, w, rate=np.array([0.0])).saturation_rate[0]
    return load_metrics(ph, eng, w, rate=np.array([1e-9 * sat]))


def test_a_vanishing_rate_leaves_the_percentiles_at_the_idle_prompt():
    """The percentiles at a vanishing rate are the idle prompt's (its last step carries no
    joiners since 3aeac8f): SGLang, 512-token prompts, 128 output tokens, p50 117.3 and p99
    120.6 ms (the simulator at 0.01 of saturation, 3,000 requests, seed 1: p50 113.9, p99
    120.4 ms; `python benchmarks/joiner_defects.py vanishing`); and 500-token prompts, below
    the 512-token CUDA graphs, keep mean = p50."""
    r = _vanishing(512, 128, "sglang")
    assert 1e3 * r.get("ttft", "p50")[0] == pytest.approx(117.3, abs=0.1)
    assert 1e3 * r.get("ttft", "p99")[0] == pytest.approx(120.6, abs=0.1)
    below = _vanishing(500, 128, "sglang")
    assert below.get("ttft", "mean")[0] == pytest.approx(below.get("ttft", "p50")[0], rel=1e-3)


def test_a_vanishing_rate_leaves_the_mean_ttft_at_the_idle_prompt():
    """SGLang's prefill first, Llama-3.1-8B on one H100, 512-token prompts (exactly the CUDA
    graphs' 512 tokens), 128 output tokens, Poisson at 10^-9 of saturation: the mean TTFT was
    143.7 ms, above its own p99 (120.6 ms) and the p50 (117.3 ms): the mean's last step was
    512 + lambda S (R + W_backlog) tokens, a fraction of a token past the graphs, so the eager
    step's floor, however small lambda. A joiner is a whole prompt that comes with probability
    1 - exp(-lambda w), not a fluid (docs/load.md section 5, 'whole joiners'): the mean is
    117.3 ms, the p50's (the simulator's mean at 0.01 of saturation is 114.7 ms, 3,000
    requests, seed 1: `python benchmarks/joiner_defects.py vanishing`)."""
    r = _vanishing(512, 128, "sglang")
    assert r.get("ttft", "mean")[0] <= r.get("ttft", "p99")[0]
    assert r.get("ttft", "mean")[0] == pytest.approx(r.get("ttft", "p50")[0], rel=1e-2)


def _disagg_reuse_pair(S: int, preset: str, shares: tuple[float, float], load: float):
    """Llama-3.1-8B on one H100 (batch 64) as a disaggregated prefill pool, Poisson at ``load`` x
    the less cached prefill saturation, and at 10^-6 of that (nearly idle): four results."""
    from planner.physics.disagg import prefill_metrics, prefill_saturation
    ph = _phys("llama-3.1-8b", "h100-sxm", 1, 64, S, 2, o=PRESETS[preset])
    eng = engine(ph)
    wl = [Workload(isl=float(S), osl=2.0, cached=x * S) for x in shares]
    rate = load * prefill_saturation(ph, eng, float(S), cached=shares[0] * S)[0]
    return [prefill_metrics(ph, eng, w, np.array([x])) for x in (rate, rate * 1e-6) for w in wl]


def test_disaggregated_prefill_with_more_reuse_is_shorter_idle():
    """The case below: 8,193-token prompts, 0 and 6.25 % cached, a disaggregated prefill pool
    on vLLM's mixed steps: idle the cached prompt's prefill is one step against two (mean TTFT
    lower), so the property's idle-replica condition holds there."""
    a, b, a0, b0 = _disagg_reuse_pair(8193, "realistic", (0.0, 0.0625), 0.5)
    assert a.stable[0] and b.stable[0]
    assert b0.get("ttft", "mean")[0] < a0.get("ttft", "mean")[0]
    # pins, not derived: 467.3 and 414.2 at 2465cce; issue 25's busy branch (the busy step's
    # mean over the piece count, joined_step's 0-or-exponential backlog wait, the backlog still
    # at the busy share: docs/disaggregation.md section 1) moves them by +1.8 and +0.4 ms, well
    # inside the simulator's distance (523.5 and 378.1); the property is the order above
    assert 1e3 * a.get("ttft", "mean")[0] == pytest.approx(469.1, abs=0.1)
    assert 1e3 * b.get("ttft", "mean")[0] == pytest.approx(414.6, abs=0.1)


def test_disaggregated_prefill_mean_ttft_never_rises_with_reuse():
    """More reuse never raises TTFT (issue 25) on a disaggregated prefill pool: 8,193-token
    prompts (a 8,192-token chunk and 1 token uncached, 7,681 tokens in one step at 6.25 %
    cached), Poisson at half the uncached prefill saturation: the mean TTFT rose 397.8 ->
    417.6 ms although the idle prefill falls (test above): the uncached prompt's 1-token last
    piece carried none of the prompts that arrived during its own 8,192-token chunk (lambda
    t(8,192) = 0.5 of them, at half of saturation). With them (whole prompts, docs/load.md
    section 5, 'whole joiners') 469.1 -> 414.6 ms; the simulator's 523.5 -> 378.1 (seeds 1-2,
    4,000 requests each: simulate_prefill_pool with the KV transfer). The sweep of 11 lengths x
    5 share pairs x 2 arrival CV^2 x 5 loads x 2 engines (`python benchmarks/joiner_defects.py
    disagg`) found 61 of 4,400 statistics rising where the nearly idle one does not; 42 with
    whole joiners at E[N | N >= 1], 30 with the step the expectation over their count, all
    SGLang 512-token prompts at 0.75-0.9 of saturation and arrival CV^2 4, by 0.1-0.5 ms: a last
    step filled to the budget either way, whose cached tokens attend to more keys (section 5,
    'reuse and TTFT')."""
    a, b, _, _ = _disagg_reuse_pair(8193, "realistic", (0.0, 0.0625), 0.5)
    _never_rises(a, b)
