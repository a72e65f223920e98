"""`planner trace FILE`: what a request trace says about a workload (docs/workloads.md)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Annotated, Any, Optional

import numpy as np
import typer
from rich.table import Table

from planner.cli.common import about, choices, dump_json, emit, guarded
from planner.cli.render import to_text
from planner.errors import InputError
from planner.resolve.workload import trace_figures
from planner.schemas.common import TraceColumns, TraceFields
from planner.traces.figures import MINUTE, TraceSummary
from planner.traces.read import BLOCK_TOKENS, FORMATS, Trace
from planner.yamlio import Document, check_output, write_atomically

EPILOG = (
    "Example: planner trace ../shared/traces/mooncake-conversation.jsonl --plot trace.png\n\n"
    "Example: planner trace requests.csv --format csv --column timestamp=ts --column input_tokens=prompt "
    "--column output_tokens=completion --column timestamp_unit=ms --json"
)

CACHE_BLOCKS = (1000, 10000)
"""LRU sizes reported by default, in blocks (0.5M and 5M tokens of 512-token blocks)."""

FormatChoice = choices("FormatChoice", FORMATS)


def trace_command(
    file: Annotated[Path, typer.Argument(help="the trace file (Mooncake JSON lines, Azure or BurstGPT CSV, a CSV)")],
    fmt: Annotated[Optional[FormatChoice], typer.Option(
        "--format", help="default: told from the file (JSON lines: mooncake; a CSV header: azure or burstgpt)")] = None,
    column: Annotated[Optional[list[str]], typer.Option(
        "--column", help="format csv: KEY=NAME for timestamp, input_tokens, output_tokens, and "
        "timestamp_unit=s|ms|us|datetime (repeatable)")] = None,
    rate_scale: Annotated[float, typer.Option("--rate-scale", help="replay the trace this many times faster")] = 1.0,
    start_s: Annotated[float, typer.Option("--start-s", help="window: seconds from the first request")] = 0.0,
    end_s: Annotated[Optional[float], typer.Option("--end-s", help="window: end, seconds from the first request")] = None,
    cache_blocks: Annotated[Optional[list[int]], typer.Option(
        "--cache-blocks", help="LRU sizes (in blocks) for the prefix reuse, besides an unbounded cache (repeatable; "
        "default 1000 and 10000)")] = None,
    block_tokens: Annotated[int, typer.Option("--block-tokens", help="prompt tokens per hash id")] = BLOCK_TOKENS,
    plot: Annotated[Optional[Path], typer.Option(
        "--plot", help="write a PNG: the rate per minute and the length histograms (needs matplotlib)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Summarise a request trace: requests, span, rate (mean, peak minute), lengths, burstiness, prefix reuse."""

    def run() -> None:
        if plot is not None:
            if plot.suffix.lower() != ".png":
                raise InputError("the plot is a PNG file", path="--plot", value=str(plot), accepted="a path ending in .png")
            _pyplot()
            check_output(plot, protected=(file,), option="--plot")       # before the work, not after
        data: dict[str, Any] = {"trace": str(file), "rate_scale": rate_scale, "block_tokens": block_tokens}
        if fmt is not None:
            data["format"] = fmt.value
        if column:
            data["columns"] = _columns(column)
        if start_s or end_s is not None:
            data["window"] = {"start_s": start_s, **({"end_s": end_s} if end_s is not None else {})}
        try:
            w = Document(data=data, file="<command line>").validate(TraceFields)
        except InputError as e:         # named by the option given, not by the YAML key it fills
            message = e.message if e.path is None or e.path in OPTIONS else f"{e.path}: {e.message}"
            raise InputError(message, file=e.file, path=_option(e.path), value=e.value, accepted=e.accepted) from None
        sizes = tuple(cache_blocks) if cache_blocks else CACHE_BLOCKS
        if any(n < 1 for n in sizes):
            raise InputError("an LRU holds at least one block", path="--cache-blocks", value=min(sizes),
                             accepted="a whole number >= 1")
        with about(file):         # a window that holds no request: located in the trace
            part, summary = trace_figures(w, None, "", sizes)
        if plot is not None:
            _plot(part, summary, plot, file)
        emit(dump_json(summary.to_dict()) if as_json else render_trace(summary))

    guarded(run, as_json=as_json)


OPTIONS = {"rate_scale": "--rate-scale", "block_tokens": "--block-tokens", "window.start_s": "--start-s",
           "window.end_s": "--end-s", "window": "--start-s/--end-s", "format": "--format"}
"""The option that fills each TraceFields key `planner trace` validates."""


def _option(path: str | None) -> str:
    if path is not None and path.startswith("columns"):
        return "--column"
    return OPTIONS.get(path or "", "--format/--column")


COLUMN_KEYS = "timestamp=NAME, input_tokens=NAME, output_tokens=NAME, timestamp_unit=s|ms|us|datetime"


def _columns(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, name = item.partition("=")
        if not sep or not key.strip() or not name.strip():
            raise InputError("a column is KEY=NAME", path="--column", value=item, accepted=COLUMN_KEYS)
        if key.strip() not in TraceColumns.model_fields:
            raise InputError(f"unknown column key {key.strip()!r}", path="--column", value=item, accepted=COLUMN_KEYS)
        out[key.strip()] = name.strip()
    missing = [k for k, f in TraceColumns.model_fields.items() if f.is_required() and k not in out]
    if missing:
        raise InputError(f"no column named for {', '.join(missing)}: a CSV trace needs its timestamp, input_tokens "
                         "and output_tokens", path="--column", value=" ".join(items), accepted=COLUMN_KEYS)
    return out


def render_trace(s: TraceSummary) -> str:
    a = s.arrivals
    lines = [f"{s.file} ({s.format}): {s.requests:,} requests"
             + (f" in [{s.window_start_s:g}, {'end' if s.window_end_s is None else f'{s.window_end_s:g}'}) s"
                if s.window_start_s or s.window_end_s is not None else "")
             + (f", replayed {s.rate_scale:g}x faster" if s.rate_scale != 1 else "")]
    for why, n in s.skipped.items():
        lines.append(f"left out: {n:,} rows with {why}")
    if s.reordered:
        lines.append("the file is not in time order: requests are taken in time order")
    if a.rate_per_s is None:
        lines.append("rate: none (every request arrives at one instant)")
    else:
        peak = s.peak_minute_per_s
        lines.append(f"span {a.span_s:,.1f} s; rate {a.rate_per_s:,.3f} requests/s mean"
                     + (f", {peak:,.3f} in the busiest minute ({peak / a.rate_per_s:.2f}x the mean)" if peak
                        else " (shorter than a minute: no full minute)"))
        lines.append(f"burstiness (squared CV of inter-arrival times): {a.burstiness:.3g}, from {a.basis}"
                     + (f" (timestamps on a {a.tick_s:g} s clock: {a.tied_share:.0%} of gaps are 0, whose CV^2 "
                        f"is {a.interarrival_cv2:.3g})" if a.tick_s is not None else "")
                     + "; 1 is Poisson")
        scales = [f"{x:g} s {v:.3g}" for x, v in a.by_scale if v is not None]
        if scales:
            lines.append("index of dispersion of counts I(t) = Var N(t) / E N(t) at t = " + ", ".join(scales)
                         + " (a plan takes I(t) at the scale of its TTFT target, docs/workloads.md section 3)")
    t = Table(title="Lengths (tokens per request)", title_justify="left")
    for h in ("", "mean", "CV^2", "min", "p50", "p90", "p99", "max"):
        t.add_column(h, justify="right" if h else "left")
    for name, x in (("input", s.input), ("output", s.output)):
        t.add_row(name, f"{x.mean:,.1f}", f"{x.cv2:.3f}", f"{x.min:,}", f"{x.p50:,}", f"{x.p90:,}", f"{x.p99:,}",
                  f"{x.max:,}")
    out = ["\n".join(lines) + "\n", t]
    if s.reuse:
        lines = [f"prefix reuse ({s.block_tokens}-token blocks; share of prompt tokens in leading blocks already "
                 "cached):"]
        for r in s.reuse:
            size = "unbounded cache" if r.cache_blocks is None else \
                f"LRU of {r.cache_blocks:,} blocks ({r.cache_blocks * (s.block_tokens or 0):,} tokens)"
            lines.append(f"  {size}: {r.share:.1%}")
        out.append("\n".join(lines))
    else:
        out.append("prefix reuse: the trace has no block hashes")
    return to_text(*out)


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise InputError("--plot needs matplotlib", path="--plot", accepted="pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _plot(part: Trace, s: TraceSummary, path: Path, source: Path) -> None:
    plt = _pyplot()
    fig, (ax_rate, ax_in, ax_out) = plt.subplots(1, 3, figsize=(15, 4.2))
    m = s.minutes
    rates = [r if r is not None else 0.0 for r in m.rates]
    edges = [x / 60 for x in m.start_s] + [(m.start_s[-1] + m.seconds[-1]) / 60]
    last = m.seconds[-1]
    ax_rate.stairs(rates, edges, baseline=None, lw=1.2,
                   label="per minute" + (f" (the last bin {last:.3g} s)" if last != MINUTE else ""))
    if s.arrivals.rate_per_s is not None:
        ax_rate.axhline(s.arrivals.rate_per_s, color="k", ls="--", lw=0.8, label="mean")
    if s.peak_minute_per_s is not None:
        ax_rate.axhline(s.peak_minute_per_s, color="tab:red", ls=":", lw=0.8, label="busiest 60 s")
    ax_rate.set_xlabel("minute (replay clock)")
    ax_rate.set_ylabel("requests/s")
    ax_rate.set_title("arrival rate")
    ax_rate.legend(fontsize=8)
    for ax, x, name in ((ax_in, part.input_tokens, "input"), (ax_out, part.output_tokens, "output")):
        lo, hi = max(1, int(x.min())), int(x.max())
        bins = np.geomspace(lo, hi + 1, 40) if hi + 1 > lo * 4 else 40
        ax.hist(x, bins=bins, color="tab:blue" if name == "input" else "tab:orange")
        if not isinstance(bins, int):
            ax.set_xscale("log")
        ax.set_xlabel(f"{name} tokens")
        ax.set_ylabel("requests")
        ax.set_title(f"{name} lengths (mean {float(np.mean(x)):,.0f})")
    fig.suptitle(f"{source.name}: {s.requests:,} requests")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    write_atomically(path, buf.getvalue(), protected=(source,), option="--plot")
