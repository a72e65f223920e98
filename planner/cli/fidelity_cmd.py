"""`planner validate` and `planner calibrate`: how accurate is the model, and fitting it."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer
from rich.table import Table

from planner.catalog.store import Catalog
from planner.cli.common import dump_json, emit, guarded
from planner.cli.render import to_text
from planner.errors import InputError
from planner.physics.options import PRESETS
from planner.yamlio import write_atomically

VALIDATE_EPILOG = "Example: planner validate ../shared/reference/measured-public.csv --calibration default"
CALIBRATE_EPILOG = "Example: planner calibrate ../shared/reference/measured-public.csv --out calibration.yaml"


def validate_command(
    measurements: Annotated[Path, typer.Argument(help="CSV of published measurements (docs/validation.md)")],
    calibration: Annotated[str, typer.Option(help="none, default (the shipped fit) or a calibration file")] = "none",
    as_json: Annotated[bool, typer.Option("--json", help="rows and summary as JSON")] = False,
    plot: Annotated[Optional[Path], typer.Option(help="write a log-log predicted-vs-measured plot (PNG)")] = None,
    catalog: Annotated[Optional[list[Path]], typer.Option("--catalog", help="catalog override file (repeatable)")] = None,
    csv_out: Annotated[Optional[Path], typer.Option("--csv", help="write every row's prediction beside its "
                                                    "measurement (or why it has none) as CSV")] = None,
    baseline: Annotated[Optional[Path], typer.Option(help="a --csv of an earlier run on the same file: its median "
                                                     "|error| per group beside today's")] = None,
) -> None:
    """Predict every measurement the model can express; report errors per row, metric, GPU family
    and group (system x engine x model x mode x metric), and the worst rows."""

    def run() -> None:
        from planner.fidelity.validate import validate_file, with_baseline

        if plot is not None and plot.suffix.lower() != ".png":
            raise InputError("the plot is written as PNG", path="--plot", value=str(plot),
                             accepted="a path ending in .png")
        if csv_out is not None and csv_out.suffix.lower() != ".csv":
            raise InputError("the rows are written as CSV", path="--csv", value=str(csv_out),
                             accepted="a path ending in .csv")
        result = validate_file(str(measurements), calibration=calibration, catalog=[str(c) for c in catalog or ()])
        if baseline is not None:
            result = with_baseline(result, str(baseline))
        if plot is not None:
            write_plot(result, plot, protected=(measurements,))
        if csv_out is not None:
            write_atomically(csv_out, records_csv(result.records()), protected=(measurements,), option="--csv")
        emit(dump_json(result.to_dict()) if as_json else render_validation(result))

    guarded(run, as_json=as_json)


def calibrate_command(
    measurements: Annotated[Path, typer.Argument(help="CSV of published measurements")],
    out: Annotated[Path, typer.Option("--out", help="calibration YAML to write")],
    iters: Annotated[int, typer.Option(help="Nelder-Mead iterations per fit")] = 300,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output on stdout")] = False,
    under_load: Annotated[bool, typer.Option("--under-load", help="also fit the rows measured at a stated load "
                                             "(your benchmarks, from 'planner check --append')")] = False,
) -> None:
    """Fit efficiencies and overheads; report fitted and leave-one-source-out errors."""

    def run() -> None:
        from planner.fidelity.calibrate import (
            at_bounds,
            cross_validate,
            dataset,
            errors_by_group,
            fit,
            mean_log_error,
            predict_with,
        )
        from planner.fidelity.predict import predict_all

        if out.suffix not in (".yaml", ".yml"):
            raise InputError("the calibration is written as YAML", path="--out", value=str(out),
                             accepted="a path ending in .yaml")
        if not 10 <= iters <= 10_000:
            raise InputError("iterations out of range", path="--iters", value=iters, accepted="10..10000")
        catalog, base = Catalog.default(), PRESETS["realistic"]
        ds = dataset(str(measurements), catalog, under_load=under_load)
        if not ds.cases and not under_load and dataset(str(measurements), catalog, under_load=True).cases:
            raise InputError("every row the model can express was measured under load (a concurrency or a request "
                             "rate): add --under-load to fit them", file=str(measurements), path="--under-load")
        if len(set(ds.sources)) < 2:
            raise InputError("cross-validation needs rows from at least two sources", file=str(measurements))
        every = np.arange(len(ds.cases))
        cal = fit(ds, every, base, catalog, iters=iters)
        cal.fitted_on = f"{measurements.name}: {len(ds.cases)} rows from {len(set(ds.sources))} sources"
        preds = {"uncalibrated": predict_all(ds.cases, catalog, base),
                 "fitted": predict_with(ds, every, cal, base, catalog),
                 "held_out": cross_validate(ds, base, catalog, iters=iters)}
        report = {
            **{k: errors_by_group(ds, p) for k, p in preds.items()},
            "by_family": {k: errors_by_group(ds, p, by="family") for k, p in preds.items()},
            "mean_abs_log_error": {k: mean_log_error(ds, p) for k, p in preds.items()},
            "calibration": {"assumptions": cal.assumptions, "per_family": cal.per_family},
            "at_bounds": at_bounds(cal),
        }
        write_atomically(out, cal.to_yaml(), protected=(measurements,), option="--out")
        emit(dump_json(report) if as_json else render_calibration(report, out))

    guarded(run, as_json=as_json)


def records_csv(records: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(records[0]) if records else ["row"], lineterminator="\n")
    w.writeheader()
    for r in records:
        w.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in r.items()})
    return buf.getvalue()


PER_ROW_LIMIT = 200
"""Files with more rows print the tables and the worst rows; every row goes to --csv."""
LABELS = {"system": "system", "engine": "engine", "model_id": "model", "mode": "mode", "metric": "metric",
          "concurrency_band": "clients"}


def render_groups(v) -> list:
    """The grouped tables: n, median |error| and median signed error per group."""
    out: list = []
    for name, rows in v.tables.items():
        if not rows:
            continue
        keys = [k for k in rows[0] if not k.startswith("median") and k != "n"]
        calibrated = "median_abs_pct_error_uncalibrated" in rows[0]
        before = any("median_abs_pct_error_baseline" in r for r in rows)
        t = Table(title=f"By {name}: median |error|, median signed error (predicted / measured - 1) and median "
                  "measured - predicted (the metric's unit)",
                  title_justify="left")
        for k in keys:
            t.add_column(LABELS.get(k, k))
        for col in ("n", "median |err| %", "median signed %", "median measured - predicted",
                    *(("uncalibrated median |err| %",) if calibrated else ()),
                    *(("baseline median |err| %",) if before else ())):
            t.add_column(col, justify="right")
        for r in rows:
            t.add_row(*(str(r[k]) for k in keys), str(r["n"]), f"{r['median_abs_pct_error']:.1f}",
                      f"{r['median_signed_pct_error']:+.1f}", f"{r['median_measured_minus_predicted']:+,.4g}",
                      *_uncalibrated({"median_abs_pct_error_uncalibrated": r.get("median_abs_pct_error_uncalibrated")},
                                     calibrated),
                      *((f"{r['median_abs_pct_error_baseline']:.1f}" if "median_abs_pct_error_baseline" in r else "",)
                        if before else ()))
        out.append(t)
    return out


def render_worst(v) -> Table:
    by_row = {r.row: r for r in v.rows}
    t = Table(title=f"The {len(v.worst)} largest errors", title_justify="left")
    for col in ("row", "model", "system", "engine", "mode", "load", "metric", "measured", "predicted", "error %"):
        t.add_column(col, justify="right" if col in ("measured", "predicted", "error %") else "left")
    for n in v.worst:
        r = by_row[n]
        t.add_row(str(r.row), r.model_id or "", r.system or "", r.engine, r.mode, r.load or "", r.metric,
                  f"{r.measured:,.4g}", f"{r.predicted:,.4g}", f"{r.signed_pct_error:+.1f}")
    return t


def render_coverage(v) -> str:
    c = v.coverage
    lines = [f"Predicted {c['rows_predicted']:,} of {c['rows']:,} rows ({100 * c['rows_predicted'] / max(c['rows'], 1):.1f} %);"
             f" {c['measurements_predicted']:,} of {c['measurements']:,} distinct measurements"
             f" ({100 * c['measurements_predicted'] / max(c['measurements'], 1):.1f} %, each counted once in the"
             " tables)."]
    if c["not_predicted"]:
        lines.append("Rows not predicted, by reason:")
        lines += [f"  {n:>5}  {why}" for why, n in c["not_predicted"].items()]
    return "\n".join(lines)


def _uncalibrated(stats: dict, calibrated: bool) -> tuple[str, ...]:
    """The uncalibrated median beside a calibrated one (issue 22 item 4: always shown)."""
    if not calibrated:
        return ()
    u = stats.get("median_abs_pct_error_uncalibrated")
    return (f"{u:.1f}" if u is not None else "",)


def render_validation(v) -> str:
    calibrated = v.calibration != "none"
    extra = ("uncalibrated median %",) if calibrated else ()
    t = Table(title=f"Median / mean absolute error (%), calibration: {v.calibration}", title_justify="left")
    for col in ("group", "name", "rows", "median %", "mean %", *extra):
        t.add_column(col, justify="left" if col in ("group", "name") else "right")
    for label, table in (("metric group", v.by_group), ("metric", v.summary), ("GPU family", v.by_family)):
        for name, s in table.items():
            t.add_row(label, name, str(s["rows"]), f"{s['median_abs_pct_error']:.1f}", f"{s['mean_abs_pct_error']:.1f}",
                      *_uncalibrated(s, calibrated))
    rows = Table(title="Rows (idle or saturated: batch 1, static batch, maximum throughput)", title_justify="left")
    loaded = Table(title="Rows under load (docs/load.md closed forms at the stated concurrency or rate)",
                   title_justify="left")
    for table, cols in ((rows, ("row", "model", "GPU", "metric")), (loaded, ("row", "model", "GPU", "load", "metric"))):
        for col in cols + ("measured", "predicted", "error %"):
            table.add_column(col, justify="right" if col in ("measured", "predicted", "error %") else "left")
    skipped = []
    many = len(v.rows) > PER_ROW_LIMIT
    for r in v.rows:
        if r.skipped_reason:
            skipped.append(f"  row {r.row} ({r.model}, {r.gpu}, {r.metric}): {r.skipped_reason}")
            continue
        if many:         # the per-row tables are left out below: not filled
            continue
        figures = (r.metric, f"{r.measured:,.4g}", f"{r.predicted:,.4g}", f"{r.abs_pct_error:.1f}")
        if r.load is None:
            rows.add_row(str(r.row), r.model[:24], r.gpu[:16], *figures)
        else:
            loaded.add_row(str(r.row), r.model[:24], r.gpu[:16], r.load, *figures)
    parts: list = [t, rows] if v.summary else []
    if v.under_load:
        lt = Table(title="Under load: median / mean absolute error (%)", title_justify="left")
        for col in ("group", "rows", "median %", "mean %", *extra):
            lt.add_column(col, justify="left" if col == "group" else "right")
        for name, s in v.under_load.items():
            lt.add_row(name, str(s["rows"]), f"{s['median_abs_pct_error']:.1f}", f"{s['mean_abs_pct_error']:.1f}",
                       *_uncalibrated(s, calibrated))
        parts += [lt, loaded]
    if many:       # the per-row tables would run to thousands of lines: --csv has every row
        parts = [p for p in parts if p is not rows and p is not loaded]
    parts += render_groups(v) if many or any(r.duplicate_of or r.mode != "agg" for r in v.rows) else []
    if v.worst and many:
        parts.append(render_worst(v))
    parts.append(render_coverage(v))
    if many:
        return to_text(*parts, "Every row, predicted or not and why: --csv FILE")
    return to_text(*parts, f"Skipped {len(skipped)} rows the model cannot express:", *skipped)


def render_calibration(report: dict, out: Path) -> str:
    t = Table(title="Median absolute error (%) by metric group", title_justify="left")
    t.add_column("group")
    for col in ("rows", "uncalibrated", "fitted", "held out (leave one source out)"):
        t.add_column(col, justify="right")
    for g, s in report["uncalibrated"].items():
        t.add_row(g, str(s["rows"]), f"{s['median_abs_pct_error']:.1f}",
                  f"{report['fitted'][g]['median_abs_pct_error']:.1f}",
                  f"{report['held_out'][g]['median_abs_pct_error']:.1f}")
    fam = Table(title="Median absolute error (%) by GPU family", title_justify="left")
    fam.add_column("GPU family")
    for col in ("rows", "uncalibrated", "fitted", "held out (leave one source out)"):
        fam.add_column(col, justify="right")
    by_family = report["by_family"]
    for g, s in by_family["uncalibrated"].items():
        fam.add_row(g, str(s["rows"]), *(f"{by_family[k][g]['median_abs_pct_error']:.1f}"
                                         for k in ("uncalibrated", "fitted", "held_out")))
    loss = report["mean_abs_log_error"]
    fitted = ", ".join(f"{k} {v:.3g}" for k, v in report["calibration"]["assumptions"].items())
    return to_text(t, fam, f"mean |log error| (the fit's loss): uncalibrated {loss['uncalibrated']:.4f}, "
                   f"fitted {loss['fitted']:.4f}, held out {loss['held_out']:.4f}",
                   f"fitted: {fitted}", f"per GPU family: {report['calibration']['per_family']}",
                   *([f"at a bound of its range (not determined by the data): {'; '.join(report['at_bounds'])}"]
                     if report["at_bounds"] else []),
                   f"written to {out}")


def write_plot(v, path: Path, protected=()) -> None:
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in v.rows if r.predicted is not None and np.isfinite(r.predicted) and r.predicted > 0]
    if not done:
        raise InputError("no row could be predicted: nothing to plot", path="--plot", value=str(path))
    fig, ax = plt.subplots(figsize=(6, 6))
    for group in sorted({r.group for r in done}):
        pts = [(r.measured, r.predicted) for r in done if r.group == group]
        xs, ys = zip(*pts)
        ax.scatter(xs, ys, label=group, s=18)
    lo = min(min(r.measured, r.predicted) for r in done) / 2
    hi = max(max(r.measured, r.predicted) for r in done) * 2
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.fill_between([lo, hi], [lo * 0.8, hi * 0.8], [lo * 1.2, hi * 1.2], color="grey", alpha=0.15, label="+/- 20 %")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured (row's unit)")
    ax.set_ylabel("predicted")
    ax.set_title(f"Predicted vs measured, calibration: {v.calibration}")
    ax.legend()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    write_atomically(path, buf.getvalue(), protected=protected, option="--plot")
