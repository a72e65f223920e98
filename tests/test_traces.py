"""Request traces as workloads (docs/workloads.md): the readers on hand-made files of every
format, bad rows located by line and column, hostile files, the figures computed by hand on
tiny traces, the workload a plan and a fleet take from a trace, `planner trace`, and the
shipped samples and their instances."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from planner.cli.root import app
from planner.errors import InputError
from planner.resolve.problem import resolve, resolve_fleet
from planner.resolve.workload import queue_scale
from planner.schemas.fleet import FleetSpec
from planner.schemas.plan import PlanSpec, load_plan_spec
from planner.traces import read as trace_read
from planner.traces.figures import arrivals, length_stats, peak_minute, per_minute, prefix_reuse, summarise, window
from planner.traces.read import Columns, Trace, detect_format, read_trace
from planner.whatif.sweep import apply
from planner.yamlio import Document

ROOT = Path(__file__).resolve().parents[1]
RUNNER = CliRunner()
SAMPLES = ROOT / "instances" / "traces"


def _write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


def _mooncake(rows: list[tuple]) -> str:
    return "".join(json.dumps({"timestamp": t, "input_length": s, "output_length": o, "hash_ids": h}) + "\n"
                   for t, s, o, h in rows)


def _located(fn, line: int | None = None, path_has: str | None = None, message_has: str | None = None) -> InputError:
    with pytest.raises(InputError) as e:
        fn()
    err = e.value
    if line is not None:
        assert err.line == line, err.render()
    if path_has is not None:
        assert err.path is not None and path_has in err.path, err.render()
    if message_has is not None:
        assert message_has in err.message, err.render()
    return err


# --- readers ------------------------------------------------------------------------------


def test_mooncake_reads_milliseconds_lengths_and_hash_ids(tmp_path):
    f = _write(tmp_path, "t.jsonl", _mooncake([(0, 1000, 10, [1, 2]), (1500, 600, 5, [1, 3]), (4000, 512, 1, [1])]))
    t = read_trace(f)
    assert t.format == "mooncake" and t.requests == 3 and not t.reordered
    assert t.time_s.tolist() == [0.0, 1.5, 4.0]                     # ms -> s, from the first request
    assert t.input_tokens.tolist() == [1000, 600, 512] and t.output_tokens.tolist() == [10, 5, 1]
    assert [t.blocks(i).tolist() for i in range(3)] == [[1, 2], [1, 3], [1]]


def test_azure_csv_reads_datetimes_with_seven_fractional_digits(tmp_path):
    f = _write(tmp_path, "a.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n"
               "2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:50.9951690,396,109\n"
               "2023-11-16 18:16:46.6805900,10,1")                 # no newline at the end, as published
    t = read_trace(f)
    assert t.format == "azure" and t.block_ids is None
    assert t.time_s == pytest.approx([0.0, 4.314579, 60.0], abs=1e-6)
    assert t.input_tokens.tolist() == [374, 396, 10] and t.output_tokens.tolist() == [44, 109, 1]


BURSTGPT_HEADER = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"


def test_burstgpt_reads_its_columns_and_leaves_out_failed_requests(tmp_path):
    f = _write(tmp_path, "b.csv", BURSTGPT_HEADER + "5,ChatGPT,472,18,490,Conversation log\n"
               "45,ChatGPT,1087,0,1087,Conversation log\n"          # a failure: no response
               "118,GPT-4,417,276,693,API log\n")
    t = read_trace(f)
    assert t.format == "burstgpt"
    assert t.time_s.tolist() == [0.0, 113.0]
    assert t.input_tokens.tolist() == [472, 417] and t.output_tokens.tolist() == [18, 276]
    assert t.skipped == {"0 output tokens (a failed or cancelled request)": 1}


def test_generic_csv_with_a_column_mapping_and_milliseconds(tmp_path):
    f = _write(tmp_path, "g.csv", "id, Prompt ,completion,ts\n1,100,7,2000\n2,200,8,500\n")
    t = read_trace(f, "csv", Columns("ts", "prompt", "completion", "ms"))     # names match case-insensitively
    assert t.reordered                                                     # put in time order
    assert t.time_s.tolist() == [0.0, 1.5] and t.input_tokens.tolist() == [200, 100]


def test_unsorted_mooncake_keeps_each_requests_blocks(tmp_path):
    f = _write(tmp_path, "u.jsonl", _mooncake([(3000, 10, 1, [7]), (0, 20, 2, [8, 9]), (1000, 5, 3, [10])]))
    t = read_trace(f, block_tokens=16)
    assert t.reordered and t.input_tokens.tolist() == [20, 5, 10]
    assert [t.blocks(i).tolist() for i in range(3)] == [[8, 9], [10], [7]]


def test_format_is_told_from_the_file(tmp_path):
    assert detect_format(_write(tmp_path, "m.jsonl", _mooncake([(0, 1, 1, [1])]))) == "mooncake"
    assert detect_format(_write(tmp_path, "a.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n")) == "azure"
    assert detect_format(_write(tmp_path, "b.csv", BURSTGPT_HEADER)) == "burstgpt"
    _located(lambda: detect_format(_write(tmp_path, "x.csv", "when,prompt,out\n1,2,3\n")), line=1,
             message_has="cannot tell")


# --- bad rows, located by line and column -------------------------------------------------------


@pytest.mark.parametrize("line3, column, message", [
    ('{"timestamp": 2, "input_length": 5, "output_length": 1', "column", "not a JSON object"),
    ('[1, 2, 3]', None, "JSON object"),
    ('{"timestamp": 2, "output_length": 1}', "input_length", "missing"),
    ('{"timestamp": 2, "input_length": -5, "output_length": 1}', "input_length", "out of range"),
    ('{"timestamp": 2, "input_length": 5.5, "output_length": 1}', "input_length", "whole number"),
    ('{"timestamp": 2, "input_length": true, "output_length": 1}', "input_length", "whole number"),
    ('{"timestamp": 2, "input_length": "5", "output_length": 1, "hash_ids": [4]}', "input_length", None),
    ('{"timestamp": NaN, "input_length": 5, "output_length": 1}', None, "not a JSON object"),
    ('{"timestamp": "soon", "input_length": 5, "output_length": 1}', "timestamp", "finite number"),
    ('{"timestamp": 2, "input_length": 5, "output_length": 20000000}', "output_length", "out of range"),
    ('{"timestamp": 2, "input_length": 600, "output_length": 1, "hash_ids": [1]}', "hash_ids", "blocks of 512"),
    ('{"timestamp": 2, "input_length": 5, "output_length": 1, "hash_ids": "abc"}', "hash_ids", "list"),
    ('{"timestamp": 2, "input_length": 5, "output_length": 1, "hash_ids": [1.5]}', "hash_ids[0]", "integer"),
    ('{"timestamp": 2, "input_length": 5, "output_length": 1}', "hash_ids", "some requests"),
])
def test_bad_mooncake_rows_are_located(tmp_path, line3, column, message):
    good = _mooncake([(0, 5, 1, [1]), (1, 5, 1, [1])])
    f = _write(tmp_path, "bad.jsonl", good + line3 + "\n")
    if message is None:            # accepted: "5" is a whole number of tokens
        assert read_trace(f).input_tokens.tolist() == [5, 5, 5]
        return
    err = _located(lambda: read_trace(f), line=3, message_has=message)
    assert err.file == f
    if column:
        assert err.path is not None and column in err.path


@pytest.mark.parametrize("row, column, message", [
    ("2023-11-16 18:15:47.0,abc,5", "ContextTokens (column 2)", "whole number"),
    ("2023-11-16 18:15:47.0,12,1e3000", "GeneratedTokens (column 3)", "whole number"),
    ("yesterday,12,5", "TIMESTAMP (column 1)", "date and time"),
    ("2023-11-16 18:15:47.0,12", "GeneratedTokens (column 3)", "columns"),
    ('2023-11-16 18:15:47.0,"12,5', None, "CSV"),
])
def test_bad_csv_rows_are_located(tmp_path, row, column, message):
    f = _write(tmp_path, "bad.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.0,1,1\n"
               "2023-11-16 18:15:46.5,1,1\n" + row + "\n")
    err = _located(lambda: read_trace(f, "azure"), message_has=message)
    assert err.line == 4 or (column is None and err.line is not None), err.render()
    if column:
        assert err.path == column


def test_missing_header_column_names_what_is_there(tmp_path):
    f = _write(tmp_path, "h.csv", "TIMESTAMP,Context,GeneratedTokens\n2023-11-16 18:15:46.0,1,1\n")
    err = _located(lambda: read_trace(f, "azure"), line=1, message_has="ContextTokens")
    assert "Context" in str(err.value)


# --- hostile files ------------------------------------------------------------------------------


def test_hostile_files_are_refused_with_the_file_named(tmp_path, monkeypatch):
    binary = tmp_path / "b.jsonl"
    binary.write_bytes(b'{"timestamp": 0}\x00\x01\x02' * 10)
    assert "NUL" in _located(lambda: read_trace(str(binary))).message
    packed = tmp_path / "t.jsonl.gz"
    packed.write_bytes(gzip.compress(_mooncake([(0, 1, 1, [1])]).encode()))
    assert "compressed" in _located(lambda: read_trace(str(packed), "mooncake")).message
    bad_utf8 = tmp_path / "u.jsonl"
    bad_utf8.write_bytes(_mooncake([(0, 1, 1, [1])]).encode() + b'{"timestamp": "\xff\xfe"}\n')
    _located(lambda: read_trace(str(bad_utf8)), line=2, message_has="UTF-8")
    huge_int = _write(tmp_path, "i.jsonl", '{"timestamp": 0, "input_length": ' + "9" * 5000 + ', "output_length": 1}\n')
    _located(lambda: read_trace(huge_int), line=1)
    deep = _write(tmp_path, "d.jsonl", '{"timestamp": 0, "input_length": 1, "output_length": 1, "x": '
                  + "[" * 100_000 + "]" * 100_000 + "}\n")
    _located(lambda: read_trace(deep), line=1)
    _located(lambda: read_trace(_write(tmp_path, "e.jsonl", "")), message_has="empty")
    _located(lambda: read_trace(_write(tmp_path, "h.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n")),
             message_has="no requests")
    _located(lambda: read_trace(_write(tmp_path, "z.jsonl", _mooncake([(0, 5, 0, [1])]))),
             message_has="1 rows left out")
    _located(lambda: read_trace(str(tmp_path)), message_has="directory")
    _located(lambda: read_trace(str(tmp_path / "none.jsonl")), message_has="not found")
    ok = _write(tmp_path, "ok.jsonl", _mooncake([(0, 5, 1, [1]), (1, 5, 1, [1]), (2, 5, 1, [1])]))
    monkeypatch.setattr(trace_read, "MAX_REQUESTS", 2)
    _located(lambda: read_trace(ok), line=3, message_has="more than 2 requests")
    monkeypatch.setattr(trace_read, "MAX_LINE_BYTES", 40)
    _located(lambda: read_trace(ok), line=1, message_has="longer than 40")
    monkeypatch.setattr(trace_read, "MAX_TRACE_BYTES", 100)
    _located(lambda: read_trace(ok), message_has="above the limit of 100 bytes")


def test_a_huge_csv_field_is_located_not_a_traceback(tmp_path):
    f = _write(tmp_path, "big.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.0,1,1\n"
               '"' + "x" * 200_000 + '",1,1\n')
    _located(lambda: read_trace(f, "azure"), message_has="CSV")


# --- figures, by hand -----------------------------------------------------------------------------


def test_rate_and_interarrival_cv2_by_hand():
    # gaps 1, 2, 3 s: mean 2, population variance 2/3, CV^2 = (2/3) / 4; rate = 3 gaps / 6 s
    a = arrivals(np.array([0.0, 1.0, 3.0, 6.0]))
    assert a.rate_per_s == pytest.approx(0.5) and a.span_s == 6.0
    assert a.interarrival_cv2 == pytest.approx(1 / 6) and a.burstiness == pytest.approx(1 / 6)
    assert a.basis == "inter-arrival gaps" and a.tick_s is None
    assert arrivals(np.array([5.0])).rate_per_s is None          # one request: no rate
    assert arrivals(np.array([5.0, 5.0])).burstiness is None      # one instant: no rate


def test_quantised_timestamps_take_the_dispersion_of_counts_per_tick():
    # ticks every 3 s with 3, 2, 4, 1 requests and an empty tick (at 9 s): 6 of 9 gaps are 0;
    # counts [3, 2, 4, 0, 1]: mean 2, variance (1 + 0 + 4 + 4 + 1) / 5 = 2, dispersion 1
    t = np.array([0, 0, 0, 3, 3, 6, 6, 6, 6, 12], dtype=float)
    a = arrivals(t)
    assert a.tied_share == pytest.approx(6 / 9) and a.tick_s == 3.0
    assert a.tick_dispersion == pytest.approx(1.0) and a.burstiness == pytest.approx(1.0)
    assert a.basis == "requests per clock tick"
    gaps = np.diff(t)
    assert a.interarrival_cv2 == pytest.approx(gaps.var() / gaps.mean() ** 2)   # still reported


def test_rate_scale_replays_faster_and_keeps_the_shape(tmp_path):
    f = _write(tmp_path, "t.jsonl", _mooncake([(0, 10, 1, [1]), (1000, 10, 1, [1]), (3000, 10, 1, [1]),
                                                (6000, 10, 1, [1])]))
    s1, s2 = summarise(read_trace(f)), summarise(read_trace(f), rate_scale=2.0)
    assert s2.arrivals.rate_per_s == pytest.approx(2 * s1.arrivals.rate_per_s) == pytest.approx(1.0)
    assert s2.arrivals.span_s == pytest.approx(3.0)
    assert s2.arrivals.burstiness == pytest.approx(s1.arrivals.burstiness)
    assert s2.input == s1.input and s2.reuse == s1.reuse


def test_per_minute_bins_and_the_busiest_minute_by_hand():
    t = np.array([0, 10, 20, 70, 75, 80, 85, 150], dtype=float)
    m = per_minute(t)
    assert m.start_s == (0.0, 60.0, 120.0) and m.seconds == (60.0, 60.0, 30.0) and m.requests == (3, 4, 1)
    assert m.rates == pytest.approx((0.05, 4 / 60, 1 / 30))
    t = np.array([0, 10, 20, 70, 75, 80, 85, 130], dtype=float)
    m = per_minute(t)          # the last 10 s, a sixth of a minute, joins the minute before
    assert m.start_s == (0.0, 60.0) and m.seconds == (60.0, 70.0) and m.requests == (3, 5)
    assert m.rates == pytest.approx((0.05, 5 / 70))
    # windows starting at a request inside the trace hold at most 4 (70..85); the last minute
    # [70, 130] holds 70, 75, 80, 85, 130: 5
    assert peak_minute(t) == pytest.approx(5 / 60)
    assert peak_minute(np.array([0.0, 30.0, 59.0])) is None        # shorter than a minute


def test_a_sliver_of_a_last_minute_is_not_shown_at_the_rate_of_its_few_requests():
    """61 requests a second apart then 5 more at 60.5 s: the last fixed bin is 0.5 s long and
    would read 12 requests/s against a busiest minute of 65 / 60 = 1.08 (issue 25's tester).
    A last bin shorter than half a minute is merged into the minute before: one bin of 60.5 s
    holding all 66, 1.09/s; the busiest minute stays as it is."""
    t = np.array([float(i) for i in range(61)] + [60.5] * 5)
    m = per_minute(t)
    assert m.start_s == (0.0,) and m.seconds == (60.5,) and m.requests == (66,)
    assert m.rates == pytest.approx((66 / 60.5,))
    assert peak_minute(t) == pytest.approx(65 / 60)
    assert max(r for r in m.rates if r is not None) < 2 * peak_minute(t)
    short = per_minute(np.array([0.0, 5.0, 20.0]))      # a trace shorter than half a minute: its one bin
    assert short.seconds == (20.0,) and short.requests == (3,)


def test_length_statistics_by_hand():
    x = length_stats(np.array([100, 200, 300, 400]))
    # mean 250, variance (150^2 + 50^2 + 50^2 + 150^2) / 4 = 12500, CV^2 = 12500 / 250^2 = 0.2
    assert (x.mean, x.cv2) == (250.0, pytest.approx(0.2))
    assert (x.min, x.p50, x.p90, x.p99, x.max) == (100, 200, 400, 400, 400)   # observed values


def _blocks_trace(rows: list[tuple[int, list[int]]], block: int = 4) -> Trace:
    prompts = np.array([s for s, _ in rows], dtype=np.int64)
    ids = np.array([h for _, hs in rows for h in hs], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum([len(hs) for _, hs in rows])]).astype(np.int64)
    return Trace("hand", "mooncake", np.arange(len(rows), dtype=float), prompts, np.ones(len(rows), dtype=np.int64),
                 ids, offsets, block)


def test_prefix_reuse_by_hand_unbounded_and_lru():
    # 4-token blocks. r1 10 tokens [1 2 3] (the last block 2 tokens), r2 8 [1 2], r3 6 [1 5], r4 12 [1 2 3]
    t = _blocks_trace([(10, [1, 2, 3]), (8, [1, 2]), (6, [1, 5]), (12, [1, 2, 3])])
    # unbounded: r2 reuses 2 blocks (8 tokens), r3 1 block (4), r4 3 blocks (12): 24 of 36
    assert prefix_reuse(t) == pytest.approx(24 / 36)
    # LRU of 2 blocks, each request's blocks used last to first (its first block most recent):
    # r1 -> cache [2, 1]; r2 hits 1, 2 (8) -> [2, 1]; r3 hits 1 (4), uses 5, 1 -> [5, 1];
    # r4 hits 1 (4), misses 2 -> [2, 1]: 16 of 36
    assert prefix_reuse(t, 2) == pytest.approx(16 / 36)
    assert prefix_reuse(t, 10**6) == pytest.approx(prefix_reuse(t))       # an LRU that never evicts
    assert prefix_reuse(t, 1) <= prefix_reuse(t, 2) <= prefix_reuse(t)


def test_prefix_reuse_stops_at_the_first_miss():
    t = _blocks_trace([(8, [1, 2]), (8, [9, 2])])     # block 2 was seen, but after a block that was not
    assert prefix_reuse(t) == 0.0
    no_hashes = Trace("hand", "azure", np.array([0.0]), np.array([5]), np.array([1]))
    assert prefix_reuse(no_hashes) is None


def test_window_is_on_the_traces_own_clock(tmp_path):
    f = _write(tmp_path, "t.jsonl", _mooncake([(0, 10, 1, [1]), (1000, 20, 1, [1]), (2000, 30, 1, [1]),
                                                (3000, 40, 1, [1])]))
    t = read_trace(f, block_tokens=64)
    assert window(t, 1.0, 3.0).input_tokens.tolist() == [20, 30]
    s = summarise(t, start_s=1.0, rate_scale=2.0)
    assert s.requests == 3 and s.arrivals.span_s == pytest.approx(1.0)
    with pytest.raises(ValueError, match="holds no request"):
        summarise(t, start_s=10.0)


# --- a workload from a trace ----------------------------------------------------------------


def _plan(tmp_path: Path, workload: str, extra: str = "") -> PlanSpec:
    text = f"model: llama-3.1-8b\nworkload: {workload}\nsearch: {{gpus: [h100-sxm], tp: [1], pp: [1]}}\n{extra}"
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return load_plan_spec(str(path))


TRACE = [(0, 100, 10, [1]), (1000, 300, 30, [1]), (3000, 100, 20, [2]), (6000, 500, 10, [1])]


def test_a_plan_takes_lengths_rate_and_burstiness_from_its_trace(tmp_path):
    (tmp_path / "t.jsonl").write_text(_mooncake(TRACE))
    spec, doc = _plan(tmp_path, "{trace: t.jsonl, rate_scale: 4, cache_blocks: 1}", "objective: cost_per_hour\n")
    slot = resolve(spec, doc).slots[0]
    # inputs 100, 300, 100, 500: a histogram {100: 1/2, 300: 1/4, 500: 1/4}, mean 250
    assert slot.input.values == (100.0, 300.0, 500.0) and slot.input.probabilities == (0.5, 0.25, 0.25)
    assert slot.input.mean == 250.0 and slot.input.cv2 == pytest.approx(((150**2) * 2 + 50**2 + 250**2) / 4 / 250**2)
    assert slot.output.mean == pytest.approx(17.5)
    # gaps 1, 2, 3 s: 0.5 requests/s, x4; CV^2 1/6
    assert slot.demand.requests_per_s == pytest.approx(2.0)
    assert slot.demand.value == pytest.approx(2.0 * 17.5) and slot.demand.kind == "tokens_per_s"
    assert slot.demand.arrival_cv2 == pytest.approx(1 / 6)
    assert slot.trace is not None and [r.cache_blocks for r in slot.trace.reuse] == [None, 1]
    # 512-token blocks: r2 reuses block 1 (300 tokens), r4 block 1 (500): 800 of 1000
    assert slot.trace.reuse[0].share == pytest.approx(0.8)
    assert resolve(spec, doc).inputs()["workloads"]["main"]["trace"]["requests"] == 4


def test_a_stated_demand_wins_over_the_traces_rate(tmp_path):
    (tmp_path / "t.jsonl").write_text(_mooncake(TRACE))
    spec, doc = _plan(tmp_path, "{trace: t.jsonl, window: {start_s: 1}, demand: {requests_per_s: 3}}")
    slot = resolve(spec, doc).slots[0]
    assert slot.demand.requests_per_s == 3.0 and slot.demand.arrival_cv2 == 1.0
    assert slot.input.values == (100.0, 300.0, 500.0) and slot.trace.requests == 3


def test_a_periodic_trace_gets_the_floor_burstiness(tmp_path):
    (tmp_path / "t.jsonl").write_text(_mooncake([(1000 * k, 100, 10, [k]) for k in range(5)]))
    spec, doc = _plan(tmp_path, "{trace: t.jsonl}")
    slot = resolve(spec, doc).slots[0]
    assert slot.trace.arrivals.burstiness == 0.0 and slot.demand.arrival_cv2 == pytest.approx(1e-4)


@pytest.mark.parametrize("workload, path, message", [
    ("{trace: t.jsonl, input_tokens: 10}", "workload", "a trace gives the lengths"),
    ("{input_tokens: 10, output_tokens: 5, rate_scale: 2}", "workload", "describes a trace"),
    ("{output_tokens: 5}", "workload", "give input_tokens and output_tokens, or trace"),
    ("{trace: t.jsonl, format: csv}", "workload", "needs columns"),
    ("{trace: t.jsonl, rate_scale: 0}", "workload.rate_scale", "greater than 0"),
    ("{trace: t.jsonl, window: {start_s: 5, end_s: 5}}", "workload.window", "after"),
    ("{trace: t.jsonl, format: parquet}", "workload.format", None),
    ("{trace: t.jsonl, demand: {requests_per_s: 1}, rate_scale: 2}", "workload", "rate_scale scales"),
])
def test_bad_trace_keys_are_located(tmp_path, workload, path, message):
    (tmp_path / "t.jsonl").write_text(_mooncake(TRACE))
    with pytest.raises(InputError) as e:
        _plan(tmp_path, workload)
    assert e.value.path == path and e.value.line == 2, e.value.render()
    if message:
        assert message in e.value.message


def test_trace_problems_found_when_resolving_are_located(tmp_path):
    (tmp_path / "t.jsonl").write_text(_mooncake(TRACE[:3]) + "{oops\n")
    spec, doc = _plan(tmp_path, "{trace: t.jsonl}")
    err = _located(lambda: resolve(spec, doc), line=4)
    assert err.file == str(tmp_path / "t.jsonl") and "workload.trace" in err.message
    (tmp_path / "t.jsonl").write_text(_mooncake(TRACE))
    spec, doc = _plan(tmp_path, "{trace: t.jsonl, window: {start_s: 100}}")
    _located(lambda: resolve(spec, doc), path_has="workload.window", message_has="holds no request")
    (tmp_path / "one.jsonl").write_text(_mooncake([(0, 100, 10, [1]), (0, 100, 10, [1])]))
    spec, doc = _plan(tmp_path, "{trace: one.jsonl}")
    _located(lambda: resolve(spec, doc), path_has="workload.trace", message_has="no request rate")
    (tmp_path / "long.jsonl").write_text(_mooncake([(0, 131_000, 100, list(range(256))), (5, 10, 10, [1])]))
    spec, doc = _plan(tmp_path, "{trace: long.jsonl}")
    _located(lambda: resolve(spec, doc), path_has="workload.trace", message_has="context")


def test_a_dumped_spec_validates_again(tmp_path):
    (tmp_path / "t.jsonl").write_text(_mooncake(TRACE))
    for workload in ("{trace: t.jsonl, rate_scale: 2, window: {start_s: 1}}", "{input_tokens: 10, output_tokens: 5}"):
        spec, _ = _plan(tmp_path, workload)
        assert PlanSpec.model_validate(spec.model_dump()) == spec


def test_cost_per_hour_takes_a_traces_rate_as_the_demand(tmp_path):
    (tmp_path / "t.jsonl").write_text(_mooncake(TRACE))
    spec, _ = _plan(tmp_path, "{trace: t.jsonl}", "objective: cost_per_hour\n")
    assert spec.workload.rate_given
    with pytest.raises(InputError, match="needs workload.demand or workload.trace"):
        _plan(tmp_path, "{input_tokens: 10, output_tokens: 5}", "objective: cost_per_hour\n")


def test_a_fleet_workload_from_a_trace(tmp_path):
    (tmp_path / "t.jsonl").write_text(_mooncake(TRACE))
    data = {"workloads": [{"name": "chat", "model": "llama-3.1-8b", "trace": "t.jsonl", "rate_scale": 10},
                          {"name": "fixed", "model": "llama-3.1-8b", "input_tokens": 100, "output_tokens": 10,
                           "demand": {"requests_per_s": 1}}],
            "search": {"gpus": ["h100-sxm"], "tp": [1], "pp": [1]}}
    doc = Document(data=data, file=str(tmp_path / "fleet.yaml"))
    p = resolve_fleet(doc.validate(FleetSpec), doc)
    assert p.slots[0].demand.requests_per_s == pytest.approx(5.0) and p.slots[0].trace is not None
    assert p.slots[1].trace is None and p.slots[1].demand.requests_per_s == 1.0
    del data["workloads"][1]["demand"]
    with pytest.raises(InputError, match="give demand"):
        Document(data=data, file="fleet.yaml").validate(FleetSpec)


def test_a_sweeps_demand_multiplier_scales_a_traces_replay():
    base = {"model": "m", "workload": {"trace": "t.jsonl", "rate_scale": 2.0}}
    assert apply(base, {"demand_multiplier": 1.5})["workload"]["rate_scale"] == 3.0
    fleet = {"workloads": [{"name": "a", "trace": "t.jsonl"}, {"name": "b", "demand": {"requests_per_s": 2}}]}
    out = apply(fleet, {"demand_multiplier": 2})["workloads"]
    assert out[0]["rate_scale"] == 2 and out[1]["demand"]["requests_per_s"] == 4


# --- planner trace ------------------------------------------------------------------------------


def test_planner_trace_json_and_text(tmp_path):
    f = _write(tmp_path, "t.jsonl", _mooncake(TRACE))
    r = RUNNER.invoke(app, ["trace", f, "--json", "--cache-blocks", "1", "--block-tokens", "512"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["requests"] == 4 and d["arrivals"]["rate_per_s"] == pytest.approx(0.5)
    assert d["arrivals"]["burstiness"] == pytest.approx(1 / 6) and d["input"]["p50"] == 100
    assert [x["cache_blocks"] for x in d["reuse"]] == [None, 1] and d["reuse"][0]["share"] == pytest.approx(0.8)
    assert d["minutes"]["requests"] == [4] and d["peak_minute_per_s"] is None
    text = RUNNER.invoke(app, ["trace", f]).stdout
    assert "4 requests" in text and "0.500 requests/s" in text and "unbounded cache: 80.0%" in text
    assert "LRU of 1,000 blocks" in text                       # the default LRU sizes


def test_planner_trace_reads_a_csv_with_columns_and_a_window(tmp_path):
    f = _write(tmp_path, "g.csv", "t,p,c\n0,100,5\n1,200,5\n3,300,5\n6,400,5\n")
    args = ["trace", f, "--format", "csv", "--column", "timestamp=t", "--column", "input_tokens=p",
            "--column", "output_tokens=c", "--start-s", "1", "--json"]
    d = json.loads(RUNNER.invoke(app, args).stdout)
    assert d["requests"] == 3 and d["input"]["min"] == 200 and d["reuse"] == []
    assert d["arrivals"]["rate_per_s"] == pytest.approx(2 / 5)


@pytest.mark.parametrize("args, where", [
    (["--format", "csv"], "columns"),
    (["--column", "nonsense"], "--column"),
    (["--rate-scale", "-1"], "--rate-scale"),
    (["--cache-blocks", "0"], "--cache-blocks"),
])
def test_planner_trace_bad_options_exit_2(tmp_path, args, where):
    f = _write(tmp_path, "t.jsonl", _mooncake(TRACE))
    r = RUNNER.invoke(app, ["trace", f, *args, "--json"])
    assert r.exit_code == 2, r.output
    assert where in (json.loads(r.stdout)["path"] or "") + json.loads(r.stdout)["message"]


def test_planner_trace_bad_row_is_one_located_line(tmp_path):
    f = _write(tmp_path, "t.jsonl", _mooncake(TRACE[:2]) + '{"timestamp": 5, "input_length": "x", "output_length": 1}\n')
    r = RUNNER.invoke(app, ["trace", f, "--json"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    err = json.loads(r.stdout)
    assert (err["file"], err["line"], err["path"], err["value"]) == (f, 3, "input_length", "x")


def test_planner_trace_plot(tmp_path):
    pytest.importorskip("matplotlib")
    f = _write(tmp_path, "t.jsonl", _mooncake([(1000 * k, 100 + 2 * k, 5 + k, [k]) for k in range(200)]))
    png = tmp_path / "out" / "trace.png"
    r = RUNNER.invoke(app, ["trace", f, "--plot", str(png)])
    assert r.exit_code == 0, r.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = RUNNER.invoke(app, ["trace", f, "--plot", f])          # a PNG, never over the trace it read
    assert r.exit_code == 2 and ".png" in r.output
    same = tmp_path / "t.png"
    same.write_bytes(b"x")
    r = RUNNER.invoke(app, ["trace", str(same), "--plot", str(same)])
    assert r.exit_code == 2 and "refusing to overwrite" in r.output and same.read_bytes() == b"x"


# --- the shipped samples and their instances -------------------------------------------------------


def test_shipped_samples_read_and_are_a_few_hundred_requests_each():
    samples = sorted(SAMPLES.glob("*-sample.*"))
    assert {p.name.split("-sample")[0] for p in samples} == {
        "mooncake-conversation", "mooncake-synthetic", "azure-llm-2023-conv", "azure-llm-2023-code"}
    for p in samples:
        t = read_trace(str(p))
        assert 100 <= t.requests <= 1000 and not t.skipped
        assert (t.block_ids is not None) == p.name.startswith("mooncake")
    readme = (SAMPLES / "README.md").read_text()
    for needle in ("Apache-2.0", "CC-BY 4.0", "Splitwise", "Mooncake", "sample.py"):
        assert needle in readme
    assert (SAMPLES / "LICENSE-Apache-2.0").exists()


@pytest.mark.parametrize("path", sorted((ROOT / "instances").glob("trace_*.yaml")), ids=lambda p: p.stem)
def test_trace_instances_resolve_from_their_shipped_sample(path):
    spec, doc = load_plan_spec(str(path))
    assert spec.workload.trace is not None and "shared" not in spec.workload.trace
    slot = resolve(spec, doc).slots[0]
    s = slot.trace
    assert Path(s.file).resolve().parent == SAMPLES
    assert slot.demand.requests_per_s == pytest.approx(s.arrivals.rate_per_s)
    # the burstiness at the scale of the instance's TTFT target (docs/workloads.md section 3)
    asked = queue_scale(slot.targets, s.output.mean, spec.slo.max_utilization)[0]
    assert s.queue is not None and s.queue.asked_s == asked and s.queue.scale_s <= asked
    assert slot.demand.arrival_cv2 == pytest.approx(max(s.queue.dispersion, 1e-4))
    assert slot.input.mean == pytest.approx(s.input.mean) and math.isclose(slot.input.max, s.input.max)
