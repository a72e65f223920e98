"""The burstiness a queue sees (docs/workloads.md section 3, 'Burstiness'): the index of
dispersion of counts I(t) = Var N(t) / E N(t) of a trace's arrivals at a time scale t, and the
scale a plan reads it at (its latency targets)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from planner.resolve.problem import resolve
from planner.resolve.workload import LatencyTarget, queue_scale, relaxation_over_target
from planner.schemas.plan import load_plan_spec
from planner.traces.figures import MIN_BINS, dispersion, minute_swing, peak_minute, queue_burstiness


def _poisson(rate: float, span_s: float, rng: np.random.Generator) -> np.ndarray:
    n = rng.poisson(rate * span_s)
    return np.sort(rng.uniform(0.0, span_s, n))


# --- I(t), formulas -------------------------------------------------------------------------------


def test_dispersion_by_hand():
    # bins of 2 s from the first request: [0, 2) holds 3, [2, 4) 0, [4, 6) 1, [6, 8) 2; the request
    # at 8.5 s lies in the partial bin [8, 10) and is not counted. Counts 3, 0, 1, 2: mean 1.5,
    # population variance (2.25 + 2.25 + 0.25 + 0.25) / 4 = 1.25, I = 1.25 / 1.5
    t = np.array([0.0, 0.5, 1.9, 4.2, 6.0, 7.9, 8.5])
    assert dispersion(t, 2.0, min_bins=4, offsets=1) == pytest.approx(1.25 / 1.5)
    assert dispersion(t, 2.0, min_bins=5) is None          # four whole bins only
    # two placements: the second from 1 s has three whole bins, [1, 3), [3, 5), [5, 7) (the
    # requests at 0, 0.5, 7.9 and 8.5 s outside them), holding 1, 1, 1: I = 0
    assert dispersion(t, 2.0, min_bins=4, offsets=2) == pytest.approx((1.25 / 1.5 + 0.0) / 2)
    assert dispersion(t[:1], 2.0, min_bins=1) is None       # one request: no span


def test_poisson_arrivals_give_one_at_every_scale():
    t = _poisson(2.0, 50_000.0, np.random.default_rng(1))
    for scale in (0.01, 0.1, 1.0, 10.0, 100.0):      # 500 bins at 100 s: standard error sqrt(2 / 500) = 6 %
        assert dispersion(t, scale) == pytest.approx(1.0, abs=0.08 if scale < 100 else 0.2), scale


def test_a_gamma_renewal_process_gives_its_cv2_at_long_scales():
    # gaps Gamma(shape 1/4) of mean 1 s: CV^2 = 4. For a renewal process Var N(t) / E N(t) -> CV^2
    # as t grows (Cox 1962), from 1 at scales where a bin holds at most one request
    rng = np.random.default_rng(2)
    t = np.cumsum(rng.gamma(0.25, 4.0, 400_000))
    for scale in (100.0, 300.0):
        assert dispersion(t, scale) == pytest.approx(4.0, rel=0.1), scale
    assert dispersion(t, 1.0) < dispersion(t, 10.0) < dispersion(t, 100.0)


def test_poisson_at_two_rates_alternating_is_one_at_short_scales_and_large_at_long_ones():
    # 0.5 and 1.5 requests/s, 10 minutes each, 24 periods. Within a period a bin of t << 600 s
    # holds Poisson(lambda t) for a lambda drawn from {0.5, 1.5}: I(t) = 1 + t Var(lambda) /
    # E(lambda) = 1 + t / 4. A bin of 600 s at a uniform phase holds a mean count that is a
    # triangle wave of amplitude 600 x (1.5 - 0.5) / 2 = 300 about 600, variance 300^2 / 3:
    # I = 1 + 30,000 / 600 = 51 (bins that are the periods themselves would give 151).
    rng = np.random.default_rng(3)
    parts = [600.0 * k + _poisson(0.5 if k % 2 == 0 else 1.5, 600.0, rng) for k in range(24)]
    t = np.concatenate(parts)
    for scale in (0.01, 0.1, 1.0, 4.0):
        assert dispersion(t, scale) == pytest.approx(1.0 + scale / 4.0, rel=0.05), scale
    assert dispersion(t, 0.01) == pytest.approx(1.0, abs=0.03)
    assert dispersion(t, 600.0) == pytest.approx(51.0, rel=0.25)
    assert dispersion(t, 600.0, offsets=1) == pytest.approx(151.0, rel=0.25)


def test_two_rates_alternating_follow_the_documented_curve_between_scales():
    # docs/workloads.md section 3: I(t) = 1 + (t / 4) (1 - t / 900) for t up to 600 s. A window of
    # t <= 600 s at a uniform phase holds (rate - 1) integrated to +-t / 2 for a share (600 - t) / 600
    # of phases and uniform between for t / 600: variance (t^2 / 4) (1 - 2 t / 1800)
    rng = np.random.default_rng(8)
    t = np.concatenate([600.0 * k + _poisson(0.5 if k % 2 == 0 else 1.5, 600.0, rng) for k in range(120)])
    for scale in (150.0, 300.0, 450.0):
        assert dispersion(t, scale) == pytest.approx(1.0 + scale / 4.0 * (1.0 - scale / 900.0), rel=0.12), scale


def test_queue_burstiness_keeps_min_bins_in_the_window():
    t = _poisson(5.0, 100.0, np.random.default_rng(4))
    b = queue_burstiness(t, 60.0)            # 60 s bins: one whole bin in 100 s
    assert b.scale_s == pytest.approx((t[-1] - t[0]) / MIN_BINS) and b.asked_s == 60.0 and b.bins == MIN_BINS
    assert b.dispersion == pytest.approx(dispersion(t, b.scale_s))
    b = queue_burstiness(t, 1.0)
    assert b.scale_s == b.asked_s == 1.0 and b.bins == int((t[-1] - t[0]) // 1.0)


# --- the scale a plan reads it at -----------------------------------------------------------------


def _target(metric: str, statistic: str, seconds: float) -> LatencyTarget:
    return LatencyTarget(metric, statistic, seconds, f"slo.{metric}")


def test_the_relaxation_over_the_target_by_hand():
    # t_r = 4 W / (1 - rho); a mean target binds at W = D; a p90 at W = a D / ln(a / 0.1), a = rho
    assert relaxation_over_target("mean", 0.8) == pytest.approx(20.0)
    assert relaxation_over_target("p90", 0.8) == pytest.approx(4 * 0.8 / (0.2 * math.log(8.0)))     # 7.69
    assert relaxation_over_target("p90", 0.3) == pytest.approx(4 * 0.3 / (0.7 * math.log(3.0)))     # 1.56
    assert relaxation_over_target("p99", 0.8) == pytest.approx(4 * 0.8 / (0.2 * math.log(80.0)))    # 3.65
    # a median at 0.8: ln(1.6) = 0.47 < a = 0.8, the median wait below the mean: read as the mean's
    assert relaxation_over_target("p50", 0.8) == pytest.approx(relaxation_over_target("mean", 0.8))


def test_the_scale_is_the_ttft_targets_relaxation_at_the_cap_else_the_residence_a_target_allows():
    ttft = (_target("ttft", "p90", 1.0), _target("ttft", "p99", 2.5), _target("tpot", "mean", 0.05))
    assert queue_scale(ttft, 200.0, 0.8)[0] == pytest.approx(max(1.0 * relaxation_over_target("p90", 0.8),
                                                                 2.5 * relaxation_over_target("p99", 0.8)))
    assert queue_scale(ttft, 200.0, 0.5)[0] < queue_scale(ttft, 200.0, 0.8)[0]      # a lower cap relaxes faster
    assert queue_scale((_target("e2e_latency", "p90", 12.0), _target("tpot", "mean", 0.05)), 200.0, 0.8)[0] == 12.0
    assert queue_scale((_target("tpot", "mean", 0.05), _target("itl", "p99", 0.2)), 100.0, 0.8)[0] == \
        pytest.approx(20.0)
    assert queue_scale((), 100.0, 0.8)[0] is None


def test_a_plan_reads_its_traces_burstiness_at_its_ttft_target(tmp_path: Path):
    rng = np.random.default_rng(5)
    t = np.cumsum(rng.gamma(0.25, 0.4, 3000))           # CV^2 4 at 2.5 requests/s
    rows = "\n".join(f'{{"timestamp": {1000 * x:.3f}, "input_length": 100, "output_length": 10}}' for x in t)
    (tmp_path / "t.jsonl").write_text(rows + "\n")
    (tmp_path / "plan.yaml").write_text("model: llama-3.1-8b\nworkload: {trace: t.jsonl}\n"
                                        "search: {gpus: [h100-sxm], tp: [1], pp: [1]}\n"
                                        "slo: {ttft_ms: {p90: 2000}, tpot_ms: 50}\n")
    spec, doc = load_plan_spec(str(tmp_path / "plan.yaml"))
    slot = resolve(spec, doc).slots[0]
    q = slot.trace.queue
    scale = 2.0 * relaxation_over_target("p90", 0.8)          # the default max_utilization
    assert q is not None and q.asked_s == pytest.approx(scale) and "ttft" in q.why
    assert q.scale_s <= scale and q.bins >= MIN_BINS       # a 1,200 s trace: the scale that keeps 20 bins
    assert slot.demand.arrival_cv2 == pytest.approx(q.dispersion)
    assert q.dispersion == pytest.approx(dispersion(slot.replay.times_s, q.scale_s))
    assert slot.demand.arrival_cv2 != pytest.approx(slot.trace.arrivals.burstiness)   # the window's figure, kept
    record = resolve(spec, doc).inputs()["workloads"]["main"]["trace"]
    assert record["queue"]["asked_s"] == pytest.approx(scale) and record["arrivals"]["burstiness"] == slot.trace.arrivals.burstiness


# --- a changing rate: said, not planned -----------------------------------------------------------


def test_minute_swing_by_hand():
    # 2 requests/s, busiest minute 3/s: (3 - 2) 60 / sqrt(120) = 5.48 sd; an hour: sqrt(2 ln 3600) + 1
    z, bound = minute_swing(2.0, 3.0, 3600.0)
    assert z == pytest.approx(60 / 120 ** 0.5)
    # the bound: the largest count k a Poisson(120) minute exceeds-or-meets with probability above
    # Q(sqrt(2 ln 3600) + 1) = Q(5.05), in standard deviations, (k - 120) / sqrt(120)
    level = 0.5 * math.erfc(((2 * math.log(3600)) ** 0.5 + 1) / 2 ** 0.5)

    def tail(k: int) -> float:
        return sum(math.exp(j * math.log(120) - 120 - math.lgamma(j + 1)) for j in range(k, 400))

    k = round(bound * 120 ** 0.5 + 120)
    assert bound == pytest.approx((k - 120) / 120 ** 0.5) and tail(k) > level >= tail(k + 1)
    assert bound > (2 * np.log(3600)) ** 0.5 + 1        # a Poisson count's upper tail is the heavier
    assert minute_swing(2.0, None, 30.0) is None


def _trace_plan(tmp_path: Path, times: np.ndarray, window: str = "") -> object:
    rows = "\n".join(f'{{"timestamp": {1000 * x:.3f}, "input_length": 100, "output_length": 10}}' for x in times)
    (tmp_path / "t.jsonl").write_text(rows + "\n")
    (tmp_path / "plan.yaml").write_text(f"model: llama-3.1-8b\nworkload: {{trace: t.jsonl{window}}}\n"
                                        "search: {gpus: [h100-sxm], tp: [1], pp: [1]}\n"
                                        "slo: {ttft_ms: {p90: 1000}, tpot_ms: 50}\n")
    spec, doc = load_plan_spec(str(tmp_path / "plan.yaml"))
    return resolve(spec, doc)


def test_a_trace_whose_rate_swings_is_noted_and_a_steady_one_is_not(tmp_path: Path):
    rng = np.random.default_rng(6)
    steady = _poisson(2.0, 1800.0, rng)
    assert not [n for n in _trace_plan(tmp_path, steady).notes if "busiest minute" in n]
    swinging = np.concatenate([_poisson(1.0, 900.0, rng), 900.0 + _poisson(4.0, 300.0, rng),
                               1200.0 + _poisson(1.0, 600.0, rng)])
    notes = [n for n in _trace_plan(tmp_path, swinging).notes if "busiest minute" in n]
    assert len(notes) == 1 and notes[0].startswith("workload.trace: planned at the window's mean rate")
    # its busy stretch, planned as a window, is one steady rate again
    assert not [n for n in _trace_plan(tmp_path, swinging, ", window: {start_s: 900, end_s: 1200}").notes
                if "busiest minute" in n]


def test_minute_swing_bound_holds_poisson_noise_at_low_rates():
    # At 0.02 requests/s a minute holds Poisson(1.2): its upper tail is far heavier than a normal's
    # with that standard deviation, so a normal bound flags steady traffic. 9 requests in one of
    # the sliding minutes of 20,000 s of Poisson(1.2) minutes is noise (z = 7.1 sd above the mean;
    # the normal bound sqrt(2 ln 20000) + 1 = 5.45): the Poisson tail at the same level is above 9.
    z, bound = minute_swing(0.02, 9 / 60, 20_000.0)
    assert z > 7.0 and z < bound
    rng = np.random.default_rng(7)
    crossed = 0
    for _ in range(100):
        t = _poisson(0.02, 20_000.0, rng)
        swing = minute_swing((t.size - 1) / (t[-1] - t[0]), peak_minute(t), t[-1] - t[0])
        crossed += swing[0] > swing[1]
    assert crossed <= 1
    # at high rates the Poisson bound is the normal one, within a few tenths of a standard deviation
    assert minute_swing(10.0, 11.0, 3600.0)[1] == pytest.approx((2 * np.log(3600)) ** 0.5 + 1, abs=0.3)
