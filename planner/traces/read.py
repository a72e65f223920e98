"""Request traces, read: Mooncake JSONL, Azure LLM inference 2023 CSV, BurstGPT CSV, and any
CSV with a column mapping (docs/workloads.md).

Reading is bounded (a file size cap, a line length cap, a request cap) and every bad row is
an InputError naming the file, the line and the column (field), with the bad value and what
is accepted: never a traceback. Rows that are well formed but carry no work (0 prompt or 0
output tokens: a failed or cancelled request) are left out and counted in ``Trace.skipped``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import AnyStr, BinaryIO

import numpy as np

from planner.errors import InputError
from planner.yamlio import open_bounded

FORMATS: tuple[str, ...] = ("mooncake", "azure", "burstgpt", "csv")
TIMESTAMP_UNITS: tuple[str, ...] = ("s", "ms", "us", "datetime")
BLOCK_TOKENS = 512
"""Tokens per hash id in the Mooncake release (and AIPerf's default block size)."""

MAX_TRACE_BYTES = 256 * 1024 * 1024
"""Largest trace file read (256 MiB): BurstGPT's largest release file is about a third of it."""
MAX_LINE_BYTES = 1024 * 1024
"""Longest line read (1 MiB): a 2M-token prompt's hash ids take about 40 KB."""
MAX_REQUESTS = 5_000_000
"""Most requests read from one trace."""
MAX_TOKENS = 10_000_000
"""Most tokens in one request's prompt or output (the instance schema's bound on lengths)."""

_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}


@dataclass(frozen=True)
class Columns:
    """Where a CSV trace keeps each field, and the unit of its timestamps."""

    timestamp: str
    input_tokens: str
    output_tokens: str
    timestamp_unit: str = "s"


KNOWN_COLUMNS = {
    "azure": Columns("TIMESTAMP", "ContextTokens", "GeneratedTokens", "datetime"),
    "burstgpt": Columns("Timestamp", "Request tokens", "Response tokens", "s"),
}
"""The columns read from the published CSV traces (the others, such as BurstGPT's Model, Total
tokens and Log Type, are not read)."""


@dataclass(frozen=True, eq=False)
class Trace:
    """Requests in time order: arrival times in seconds from the first request, prompt and
    output tokens, and (Mooncake) the prompt's block hash ids, flattened, request i owning
    ``block_ids[block_offsets[i]:block_offsets[i + 1]]``."""

    file: str
    format: str
    time_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    block_ids: np.ndarray | None = None
    block_offsets: np.ndarray | None = None
    block_tokens: int = BLOCK_TOKENS
    skipped: dict[str, int] = field(default_factory=dict)
    reordered: bool = False             # the file was not in time order

    @property
    def requests(self) -> int:
        return int(self.time_s.size)

    def blocks(self, i: int) -> np.ndarray:
        assert self.block_ids is not None and self.block_offsets is not None
        return self.block_ids[self.block_offsets[i]:self.block_offsets[i + 1]]

    def take(self, index: np.ndarray) -> Trace:
        """The requests ``index`` (increasing), times kept on this trace's clock."""
        ids = offsets = None
        if self.block_ids is not None and self.block_offsets is not None:
            ids, offsets = _gather(self.block_ids, self.block_offsets, index)
        return Trace(self.file, self.format, self.time_s[index], self.input_tokens[index],
                     self.output_tokens[index], ids, offsets, self.block_tokens, dict(self.skipped), self.reordered)


def _gather(ids: np.ndarray, offsets: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The flattened blocks of requests ``index``, in that order, with their offsets."""
    counts = np.diff(offsets)[index]
    new_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    starts = np.repeat(offsets[:-1][index] - new_offsets[:-1], counts)
    return ids[starts + np.arange(int(new_offsets[-1]))], new_offsets


def detect_format(path: str) -> str:
    """The format of a trace file from its name and first line: JSON lines are Mooncake's,
    a CSV header is Azure's or BurstGPT's. Anything else needs ``format``."""
    with open_bounded(path, MAX_TRACE_BYTES, "trace file") as fh:
        head = fh.read(64 * 1024)
    _refuse_binary(head, path)
    if not head.strip():
        raise InputError("the trace is empty", file=path, accepted="a JSON-lines or CSV file of requests")
    first = head.splitlines()[0].decode("utf-8-sig", errors="replace").strip()   # \n, \r or \r\n
    if first.startswith("{"):
        return "mooncake"
    try:
        header = {c.strip().lower() for c in next(csv.reader([first]), [])}
    except csv.Error:              # not a CSV header either: the error below says what is accepted
        header = set()
    for fmt, cols in KNOWN_COLUMNS.items():
        if {cols.timestamp.lower(), cols.input_tokens.lower(), cols.output_tokens.lower()} <= header:
            return fmt
    raise InputError("cannot tell the trace's format from its first line", file=path, line=1, value=first[:80],
                     accepted="format: mooncake (JSON lines), azure, burstgpt, or csv with columns: {timestamp, "
                     "input_tokens, output_tokens}")


def read_trace(path: str, fmt: str | None = None, columns: Columns | None = None,
               block_tokens: int = BLOCK_TOKENS) -> Trace:
    """Read a trace file (``fmt`` None: detected). Requests are put in time order."""
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise InputError("unknown trace format", file=path, value=fmt, accepted=", ".join(FORMATS))
    if fmt == "csv" and columns is None:
        raise InputError("a CSV trace needs its column mapping", file=path, path="columns",
                         accepted="columns: {timestamp: NAME, input_tokens: NAME, output_tokens: NAME, "
                         "timestamp_unit: s|ms|us|datetime}")
    if fmt in KNOWN_COLUMNS:
        columns = KNOWN_COLUMNS[fmt]
    with open_bounded(path, MAX_TRACE_BYTES, "trace file") as fh:
        _refuse_binary(fh.read(64 * 1024), path)
        fh.seek(0)
        rows = _Rows(path, block_tokens)
        if fmt == "mooncake":
            rows.read_jsonl(fh)
        else:
            assert columns is not None
            rows.read_csv(fh, columns)
    return rows.trace(fmt)


def _refuse_binary(head: bytes, path: str) -> None:
    if head.startswith(b"\x1f\x8b") or head.startswith(b"PK\x03\x04") or head.startswith(b"\x28\xb5\x2f\xfd"):
        raise InputError("the trace is compressed: decompress it first", file=path,
                         accepted="a JSON-lines or CSV text file")
    nul = head.find(b"\x00")
    if nul >= 0:
        raise InputError(f"not a text file (a NUL byte at byte {nul})", file=path,
                         accepted="a JSON-lines or CSV text file in UTF-8")


class _Rows:
    """The columns of a trace as they are read (compact arrays), and the rows left out."""

    def __init__(self, path: str, block_tokens: int) -> None:
        self.path = path
        self.block_tokens = block_tokens
        self.time = array("d")
        self.inp = array("q")
        self.out = array("q")
        self.ids: array | None = None
        self.counts = array("q")
        self.skipped: dict[str, int] = {}

    def error(self, message: str, line: int, column: str | None = None, value: object = None,
              accepted: str | None = None) -> InputError:
        if isinstance(value, str) and len(value) > 60:
            value = value[:60] + "..."
        return InputError(message, file=self.path, line=line, path=column, value=value, accepted=accepted)

    def add(self, line: int, t: float, s: int, o: int, hashes: list[int] | None) -> None:
        if s == 0 or o == 0:
            reason = "0 prompt tokens" if s == 0 else "0 output tokens (a failed or cancelled request)"
            self.skipped[reason] = self.skipped.get(reason, 0) + 1
            return
        if len(self.time) >= MAX_REQUESTS:
            raise self.error(f"more than {MAX_REQUESTS:,} requests in one trace", line,
                             accepted="a shorter trace (cut it by time)")
        if (hashes is None) != (self.ids is None) and len(self.time):
            raise self.error("hash_ids is given for some requests and not for others", line, "hash_ids",
                             accepted="hash_ids on every line, or on none")
        self.time.append(t)
        self.inp.append(s)
        self.out.append(o)
        if hashes is not None:
            blocks = -(-s // self.block_tokens)
            if len(hashes) != blocks:
                raise self.error(f"{len(hashes)} hash ids for {s} prompt tokens, which make {blocks} blocks of "
                                 f"{self.block_tokens}", line, "hash_ids",
                                 accepted="one hash id per block of block_tokens prompt tokens (the last block may be "
                                 "partial); set block_tokens if the trace used another block size")
            if self.ids is None:
                self.ids = array("q")
            self.ids.extend(hashes)
            self.counts.append(len(hashes))

    # --- Mooncake JSON lines ---------------------------------------------------------

    def read_jsonl(self, fh: BinaryIO) -> None:
        for number, raw in enumerate(_bounded(fh.readline, self), start=1):
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise self.error(f"not UTF-8 text ({exc.reason} at byte {exc.start} of the line)", number) from None
            if not text.strip():
                continue
            try:
                obj = json.loads(text, parse_constant=_no_constant)
            except (ValueError, RecursionError) as exc:
                msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)[:80]
                col = exc.colno if isinstance(exc, json.JSONDecodeError) else None
                raise self.error(f"not a JSON object: {msg}", number, f"column {col}" if col else None,
                                 accepted='{"timestamp": ms, "input_length": N, "output_length": N, '
                                 '"hash_ids": [...]}') from None
            if not isinstance(obj, dict):
                raise self.error("a line must be a JSON object", number, value=text.strip(),
                                 accepted='{"timestamp": ms, "input_length": N, "output_length": N, "hash_ids": [...]}')
            for key in ("timestamp", "input_length", "output_length"):
                if key not in obj:
                    raise self.error(f"missing {key!r}", number, key,
                                     accepted="timestamp (ms), input_length, output_length, hash_ids (optional)")
            t = self.number(obj["timestamp"], number, "timestamp") * _SECONDS["ms"]
            s = self.tokens(obj["input_length"], number, "input_length")
            o = self.tokens(obj["output_length"], number, "output_length")
            hashes = None
            if "hash_ids" in obj:
                hashes = self.hashes(obj["hash_ids"], number)
            self.add(number, t, s, o, hashes)

    def hashes(self, value: object, line: int) -> list[int]:
        if not isinstance(value, list):
            raise self.error("hash_ids must be a list of integers", line, "hash_ids", value=_short(value),
                             accepted="[id, id, ...]: one id per block of the prompt")
        for k, h in enumerate(value):
            if isinstance(h, bool) or not isinstance(h, int) or not -2**63 <= h < 2**63:
                raise self.error("a hash id must be an integer", line, f"hash_ids[{k}]", value=_short(h),
                                 accepted="a 64-bit integer")
        return value

    # --- CSV -------------------------------------------------------------------------

    def read_csv(self, fh: BinaryIO, columns: Columns) -> None:
        text = io.TextIOWrapper(fh, encoding="utf-8-sig", newline="")
        reader = csv.reader(_bounded(text.readline, self), strict=True)
        try:
            header = next(reader, None)
            if header is None:
                raise self.error("the trace is empty", 1)
            names = [h.strip() for h in header]
            lower = [n.lower() for n in names]
            index = {}
            for role, name in (("timestamp", columns.timestamp), ("input_tokens", columns.input_tokens),
                               ("output_tokens", columns.output_tokens)):
                if name.strip().lower() not in lower:
                    raise self.error(f"no column {name!r} (the {role.replace('_', ' ')})", 1, value=", ".join(names),
                                     accepted=f"a header naming {columns.timestamp!r}, {columns.input_tokens!r} and "
                                     f"{columns.output_tokens!r}")
                index[role] = lower.index(name.strip().lower())
            unit = columns.timestamp_unit
            ti, si, oi = index["timestamp"], index["input_tokens"], index["output_tokens"]
            where = {k: f"{names[k]} (column {k + 1})" for k in (ti, si, oi)}
            need = max(ti, si, oi)
            for row in reader:
                line = reader.line_num
                try:      # the common row, fast; any doubt goes to the checks that locate what is wrong
                    t = float(row[ti]) * _SECONDS[unit]
                    s, o = int(row[si]), int(row[oi])
                    fast = math.isfinite(t) and 0 <= s <= MAX_TOKENS and 0 <= o <= MAX_TOKENS
                except (ValueError, IndexError, KeyError, OverflowError):
                    fast = False
                if not fast:
                    if not row or all(not c.strip() for c in row):
                        continue
                    if need >= len(row):
                        k = next(k for k in (ti, si, oi) if k >= len(row))
                        raise self.error(f"the row has {len(row)} columns, no {names[k]!r}", line, where[k],
                                         accepted=f"{len(names)} columns, as the header")
                    raw = row[ti].strip()
                    t = self.datetime(raw, line, where[ti]) if unit == "datetime" else \
                        self.number(raw, line, where[ti]) * _SECONDS[unit]
                    s = self.tokens(row[si].strip(), line, where[si])
                    o = self.tokens(row[oi].strip(), line, where[oi])
                self.add(line, t, s, o, None)
        except csv.Error as exc:
            raise self.error(f"not a readable CSV row: {exc}", reader.line_num + 1) from None
        except UnicodeDecodeError as exc:
            raise self.error(f"not UTF-8 text ({exc.reason})", reader.line_num + 1) from None

    # --- fields ----------------------------------------------------------------------

    def number(self, value: object, line: int, column: str) -> float:
        if isinstance(value, bool):
            value = str(value)
        try:
            x = float(value) if isinstance(value, (int, float, str)) and len(str(value)) <= 40 else math.nan
        except (ValueError, OverflowError):
            x = math.nan
        if not math.isfinite(x):
            raise self.error("not a finite number", line, column, value=_short(value), accepted="a number")
        return x

    def tokens(self, value: object, line: int, column: str) -> int:
        accepted = f"a whole number of tokens from 0 to {MAX_TOKENS:,}"
        if isinstance(value, str):
            text = value
            try:
                value = int(text) if text.lstrip("+-").isdigit() and len(text) <= 20 else float(text)
            except (ValueError, OverflowError):
                raise self.error("not a whole number of tokens", line, column, value=text, accepted=accepted) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                (isinstance(value, float) and not (math.isfinite(value) and value.is_integer())):
            raise self.error("not a whole number of tokens", line, column, value=_short(value), accepted=accepted)
        if not 0 <= value <= MAX_TOKENS:
            raise self.error("a token count out of range", line, column, value=value, accepted=accepted)
        return int(value)

    def datetime(self, value: str, line: int, column: str) -> float:
        try:
            d = datetime.fromisoformat(value) if len(value) <= 40 else None
        except ValueError:
            d = None
        if d is None:
            raise self.error("not a date and time", line, column, value=value,
                             accepted="ISO 8601, e.g. 2023-11-16 18:15:46.6805900")
        if d.tzinfo is None:
            d = d.replace(tzinfo=timezone.utc)
        return d.timestamp()

    # --- the result ------------------------------------------------------------------

    def trace(self, fmt: str) -> Trace:
        if not len(self.time):
            left = f" ({sum(self.skipped.values())} rows left out: {_reasons(self.skipped)})" if self.skipped else ""
            raise InputError(f"the trace has no requests{left}", file=self.path,
                             accepted="at least one request with prompt and output tokens")
        t = np.frombuffer(self.time, dtype=np.float64)
        order = np.argsort(t, kind="stable")
        reordered = bool(np.any(order != np.arange(order.size)))
        ids = offsets = None
        if self.ids is not None:
            counts = np.frombuffer(self.counts, dtype=np.int64)
            ids, offsets = _gather(np.frombuffer(self.ids, dtype=np.int64),
                                   np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), order)
        out = Trace(self.path, fmt, t[order] - t[order[0]], np.frombuffer(self.inp, dtype=np.int64)[order],
                    np.frombuffer(self.out, dtype=np.int64)[order], ids, offsets, self.block_tokens,
                    dict(self.skipped), reordered)
        for a in (out.time_s, out.input_tokens, out.output_tokens, out.block_ids, out.block_offsets):
            if a is not None:
                a.setflags(write=False)
        return out


def _bounded(readline: Callable[[int], AnyStr], rows: _Rows) -> Iterator[AnyStr]:
    """The lines of a file (bytes or text), none longer than MAX_LINE_BYTES (in its units)."""
    number = 0
    while True:
        line = readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES and line[-1:] not in (b"\n", "\n"):
            unit = "bytes" if isinstance(line, bytes) else "characters"
            raise rows.error(f"a line longer than {MAX_LINE_BYTES:,} {unit}", number, accepted="one request per line")
        yield line


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number a trace may hold")


def _short(value: object) -> object:
    text = repr(value)
    return value if len(text) <= 60 else text[:60] + "..."


def _reasons(skipped: dict[str, int]) -> str:
    return "; ".join(f"{n:,} with {why}" for why, n in skipped.items())


def file_stamp(path: str) -> tuple[str, int, int]:
    """What identifies a file's content for caching: its real path, size and modification time."""
    st = os.stat(path)
    return os.path.realpath(path), st.st_size, st.st_mtime_ns
