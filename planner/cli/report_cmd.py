"""`planner report PLAN.json --out report.html [--png DIR]`: the plan as one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from planner.cli.common import about, emit, guarded, read_result
from planner.errors import InputError
from planner.report.html import Chart, charts, colour, render_report
from planner.yamlio import check_output, write_atomically

EPILOG = ("Example: planner plan instances/chat_llama70b.yaml --output plan.json && "
          "planner report plan.json --out report.html --png plots/")


def report_command(
    plan_file: Annotated[Path, typer.Argument(help="a plan written by 'planner plan --output FILE.json'")],
    out: Annotated[Path, typer.Option("--out", "-o", help="the HTML file to write (self-contained, opens offline)")]
    = Path("report.html"),
    png: Annotated[Optional[Path], typer.Option("--png", help="also write each chart as DIR/NAME.png "
                                                "(needs matplotlib)")] = None,
    title: Annotated[Optional[str], typer.Option("--title", help="the report's title (default: the file's name)")]
    = None,
) -> None:
    """Write one HTML report of a plan: ranked plans, memory and step-time breakdowns, a roofline, latency
    percentiles under load, cost against latency, binding constraints and explanations.

    Exit 0, 2 for a bad file or path, 3 for a bug."""

    def run() -> None:
        if out.suffix not in (".html", ".htm"):
            raise InputError("report file must end in .html", path="--out", value=str(out))
        check_output(out, protected=(plan_file,), option="--out")
        result = read_result(plan_file)
        write_atomically(out, render_report(result, title=title or plan_file.stem), protected=(plan_file,),
                         option="--out")
        written = [str(out)]
        if png is not None:
            written += write_pngs(charts(result), png, protected=(plan_file,))
        emit("wrote " + ", ".join(written) + "\n")

    guarded(about(plan_file, plan_file=True)(run))


def write_pngs(cs: dict[str, Chart], folder: Path, protected: tuple = ()) -> list[str]:
    """The report's charts as PNG files, drawn with matplotlib from the same data."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--png needs matplotlib: pip install matplotlib (or the 'dev' extra)",
                         path="--png") from None
    import io
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the folder: {exc.strerror or exc}", path="--png", value=str(folder)) from None
    written = []
    for name, c in cs.items():
        fig, ax = plt.subplots(figsize=(8, 4))
        if c.kind in ("stacked", "grouped"):
            n, names = len(c.categories), list(c.series)
            xs = list(range(n))
            bottom = [0.0] * n
            width = 0.7 / (len(names) if c.kind == "grouped" else 1)
            for k, s in enumerate(names):
                vals = [v if v == v else 0.0 for v in c.series[s]]
                if c.kind == "stacked":
                    ax.bar(xs, vals, 0.7, bottom=bottom, label=s, color=colour(s, k))
                    bottom = [b + v for b, v in zip(bottom, vals)]
                else:
                    ax.bar([x - 0.35 + width * (k + 0.5) for x in xs], vals, width, label=s, color=colour(s, k))
            ax.set_xticks(xs, c.categories, rotation=20, ha="right", fontsize=7)
        elif c.kind == "roofline":
            for k, (label, line) in enumerate(c.lines.items()):
                ax.plot([p[0] for p in line], [p[1] for p in line], label=label, color=colour(label, k))
            ax.scatter(c.series["intensity"], c.series["flops"], color="black", zorder=3)
            for cat, x, y in zip(c.categories, c.series["intensity"], c.series["flops"]):
                ax.annotate(cat.split()[0], (x, y), fontsize=7)
            ax.set_xscale("log")
            ax.set_yscale("log")
        else:
            ax.scatter(c.series["x"], c.series["y"])
            for cat, x, y in zip(c.categories, c.series["x"], c.series["y"]):
                ax.annotate(cat.split()[0], (x, y), fontsize=7)
        ax.set_title(c.title, fontsize=10)
        ax.set_xlabel(c.x_label)
        ax.set_ylabel(c.y_label)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        path = folder / f"{name}.png"
        write_atomically(path, buf.getvalue(), protected=protected, option="--png")
        written.append(str(path))
    return written
