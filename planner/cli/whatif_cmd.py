"""`planner sweep` (what-if scenarios over a base instance) and `planner pareto` (cost
against a latency percentile): parse, call planner/whatif, render (docs/whatif.md)."""

from __future__ import annotations

import enum
import io
import math
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from planner.cli.common import check_time_limit, dump_json, emit, guarded
from planner.cli.plan_cmd import BackendChoice
from planner.cli.render import money, to_text
from planner.errors import InputError
from planner.schemas.fleet import is_fleet, load_fleet_spec
from planner.schemas.plan import load_plan_spec
from planner.schemas.sweep import load_sweep_spec
from planner.whatif.executors import EXECUTORS, default_executor, get_executor
from planner.whatif.pareto import FRONTIER_SCOPE, ParetoResult, pareto, pareto_fleet
from planner.whatif.sweep import SweepResult, load_base, sweep
from planner.yamlio import check_output, load_yaml, write_atomically

ExecutorChoice = enum.Enum("ExecutorChoice", {name: name for name in EXECUTORS}, type=str)


class MetricChoice(str, enum.Enum):
    ttft = "ttft"
    tpot = "tpot"


class StatisticChoice(str, enum.Enum):       # PARETO_STATISTICS
    mean = "mean"
    p50 = "p50"
    p90 = "p90"
    p99 = "p99"


MAX_WORKERS = 1024

SWEEP_EPILOG = ("Example: planner sweep instances/sweeps/demand_prices.yaml --out sweep-out/\n\n"
                "Example: planner sweep instances/sweeps/demand_prices.yaml --workers 2 --json > sweep.json\n\n"
                "Example: RAY_ADDRESS=ray://head:10001 planner sweep instances/sweeps/demand_prices.yaml --executor ray")
PARETO_EPILOG = ("Example: planner pareto instances/sweeps/llama8b_base.yaml --x tpot --points 8 "
                 "--plot pareto.png")


def sweep_command(
    sweep_file: Annotated[Path, typer.Argument(help="sweep YAML file (docs/whatif.md)")],
    out: Annotated[Optional[Path], typer.Option(
        "--out", help="folder for sweep.csv, sweep.json, cost_vs_demand.png, cost_vs_latency.png")] = None,
    executor_name: Annotated[Optional[ExecutorChoice], typer.Option(
        "--executor", help="serial, process (default with --workers > 1) or ray (optional extra: pip install -e '.[ray]')")] = None,
    workers: Annotated[int, typer.Option(
        "--workers", help="workers, this process included: N - 1 worker processes (process), or a local Ray of N - 1 "
                          "CPUs (ray)")] = 1,
    address: Annotated[Optional[str], typer.Option(
        "--address", help="Ray cluster address (default: RAY_ADDRESS, else a local Ray)")] = None,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="write the PNG plots into --out")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="the results as JSON on stdout")] = False,
) -> None:
    """Solve every scenario of a sweep file (a grid and/or a list of changes to a base instance): one row per
    scenario with its cheapest plan, as a table (or --json), plus CSV, JSON and plots with --out.

    Results are sorted by scenario id and identical whatever the executor and the number of workers. A
    progress bar goes to stderr when it is a terminal. Exit 0 when the sweep ran (scenarios without a
    plan are rows with their status), 2 for bad input, 130 on Ctrl-C."""

    def run() -> int:
        if not 1 <= workers <= MAX_WORKERS:
            raise InputError("--workers out of range", path="--workers", value=workers, accepted=f"1..{MAX_WORKERS}")
        name = executor_name.value if executor_name is not None else default_executor(workers)
        if address is not None and name != "ray":
            raise InputError("--address is for --executor ray", path="--address", value=address)
        spec, doc = load_sweep_spec(str(sweep_file))
        base_doc = load_base(spec, doc)
        base_path = Path(base_doc.file)
        if out is not None and out.exists() and not out.is_dir():
            raise InputError("--out must be a folder", path="--out", value=str(out))
        if out is not None:
            for name_ in ("sweep.csv", "sweep.json"):
                check_output(out / name_, protected=(sweep_file, base_path), option="--out")
        executor = get_executor(name, workers, address)
        t0 = time.perf_counter()
        result = _with_progress(lambda progress, start: sweep(spec, doc, base_doc, executor, progress, start))
        seconds = time.perf_counter() - t0
        typer.echo(f"{len(result.rows)} scenarios in {seconds:.1f} s ({name}, {executor.workers} "
                   f"worker{'s' if executor.workers > 1 else ''}{'; ' + executor.note if executor.note else ''})",
                   err=True)
        if out is not None:
            protected = (sweep_file, base_path)
            write_atomically(out / "sweep.csv", result.to_csv(), protected=protected, option="--out")
            write_atomically(out / "sweep.json", result.to_json(), protected=protected, option="--out")
            if plots:
                _sweep_plots(result, out, protected)
        emit(result.to_json() if as_json else render_sweep(result))
        return 0

    code = guarded(run)
    if code:
        raise typer.Exit(code)


def _with_progress(fn: Any) -> SweepResult:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(TextColumn("scenarios"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("sweep", total=None)
        return fn(lambda n: bar.advance(task, n), lambda total: bar.update(task, total=total))


def render_sweep(r: SweepResult) -> str:
    if r.fleet:
        return _render_fleet_sweep(r)
    t = Table(title=f"{r.sweep}: {len(r.rows)} scenarios over {r.base} ({r.backend})", title_justify="left")
    for col in ("scenario", "changes", "status", "plan", "$/hour", "TTFT p99 ms", "TPOT p99 ms"):
        t.add_column(col, justify="left" if col in ("scenario", "changes", "status", "plan") else "right")
    for row in r.rows:
        plan = (f"{row['replicas']} x {row['gpu']} TP{row['tp']} PP{row['pp']} {row['quantization']} "
                f"b{row['batch']}") if row["gpu"] else "-"
        changes = "; ".join(f"{a} {_show(v)}" for a, v in row["scenario"].items())
        t.add_row(row["id"], changes, row["status"], plan,
                  money(row["cost_per_hour"]) if row["gpu"] else "-", _num(row["ttft_p99_ms"]),
                  _num(row["tpot_p99_ms"]))
    with_plan = sum(1 for row in r.rows if row["gpu"])
    return to_text(t, f"{with_plan} of {len(r.rows)} scenarios have a plan.")


def _render_fleet_sweep(r: SweepResult) -> str:
    t = Table(title=f"{r.sweep}: {len(r.rows)} scenarios over the fleet {r.base} ({r.backend})",
              title_justify="left")
    for col in ("scenario", "changes", "status", "GPUs used", "$/hour", "served", "binds"):
        t.add_column(col, justify="left" if col in ("scenario", "changes", "status", "GPUs used", "binds")
                     else "right")
    for row in r.rows:
        changes = "; ".join(f"{a} {_show(v)}" for a, v in row["scenario"].items())
        ok = row["cost_per_hour"] is not None
        t.add_row(row["id"], changes, row["status"], row["gpu_mix"] or "-",
                  money(row["cost_per_hour"]) if ok else "-",
                  f"{row['served_share']:.0%}" if row["served_share"] is not None else "-", row["binding"] or "-")
    with_fleet = sum(1 for row in r.rows if row["cost_per_hour"] is not None)
    return to_text(t, f"{with_fleet} of {len(r.rows)} scenarios have a fleet.")


def _show(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, list):
        return ",".join(map(str, v))
    if isinstance(v, dict):
        return ",".join(f"{k} {x}" for k, x in v.items())
    return f"{v:g}" if isinstance(v, float) else str(v)


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:,.2f}"


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(plt: Any, fig: Any, path: Path, protected: tuple, option: str) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    write_atomically(path, buf.getvalue(), protected=protected, option=option)


def _sweep_plots(r: SweepResult, out: Path, protected: tuple) -> None:
    plt = _pyplot()
    if plt is None:
        typer.echo("note: matplotlib is not installed, no plots written (pip install matplotlib)", err=True)
        return
    done = [row for row in r.rows if row["cost_per_hour"] is not None]
    if not done:
        typer.echo("note: no scenario has a plan, no plots written", err=True)
        return
    unit: str | None = "requests_per_s"
    if r.fleet:        # a fleet's demand: its total request rate
        pts = sorted((row["demand_requests_per_s"], row["cost_per_hour"]) for row in done)
    else:
        unit = next((row["demand_unit"] for row in done if row["demand_unit"]), None)
        pts = sorted((row["demand"], row["cost_per_hour"]) for row in done if row["demand"] is not None)
    fig, ax = plt.subplots(figsize=(7, 5))
    if unit is not None and pts:
        ax.scatter(*zip(*pts), s=14, alpha=0.6, label="scenario")
        low: dict[float, float] = {}
        for d, c in pts:
            low[d] = min(c, low.get(d, math.inf))
        ax.plot(list(low), list(low.values()), "k-", lw=1, label="cheapest at this demand")
        ax.set_xlabel(f"demand ({unit.replace('_', ' ')})")
        ax.legend()
    ax.set_ylabel("cost ($/hour)")
    ax.set_title(f"{r.sweep}: cost vs demand")
    _save(plt, fig, out / "cost_vs_demand.png", protected, "--out")
    if r.fleet:        # a fleet has no one latency: its served share against cost instead
        fig, ax = plt.subplots(figsize=(7, 5))
        ax.scatter([row["cost_per_hour"] for row in done], [row["served_share"] for row in done], s=14, alpha=0.6)
        ax.set_xlabel("cost ($/hour)")
        ax.set_ylabel("weighted share of demand served")
        fig.suptitle(f"{r.sweep}: served demand vs cost")
        _save(plt, fig, out / "served_vs_cost.png", protected, "--out")
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, key, label in ((axes[0], "ttft_p99_ms", "TTFT p99 (ms)"), (axes[1], "tpot_p99_ms", "TPOT p99 (ms)")):
        pts = [(row[key], row["cost_per_hour"]) for row in done if row[key] is not None]
        if pts:
            ax.scatter(*zip(*pts), s=14, alpha=0.6)
        ax.set_xlabel(label + " at the plan's operating point")
        ax.set_ylabel("cost ($/hour)")
    fig.suptitle(f"{r.sweep}: cost vs latency")
    _save(plt, fig, out / "cost_vs_latency.png", protected, "--out")


def pareto_command(
    instance: Annotated[Path, typer.Argument(help="instance or fleet YAML file (docs/instances.md, docs/fleet.md)")],
    x: Annotated[MetricChoice, typer.Option("--x", help="the latency on the x axis")] = MetricChoice.ttft,
    statistic: Annotated[StatisticChoice, typer.Option(help="its statistic under load")] = StatisticChoice.p99,
    points: Annotated[int, typer.Option("--points", help="solves at most (2..100)")] = 8,
    backend: Annotated[Optional[BackendChoice], typer.Option(
        help="cpsat (default for an instance), milp (default for a fleet), highs, exhaustive")] = None,
    time_limit: Annotated[float, typer.Option("--time-limit", help="seconds per solve")] = 60.0,
    calibration: Annotated[str, typer.Option(help="none, default (the shipped fit) or a calibration file")] = "none",
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output on stdout")] = False,
    output: Annotated[Optional[Path], typer.Option("--output", help="also write the JSON to FILE.json")] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="write the frontier to FILE.png")] = None,
    workload: Annotated[Optional[str], typer.Option(
        "--workload", help="a fleet: the workload whose latency is traded against the fleet's $/hour")] = None,
) -> None:
    """Cost against a latency statistic (TTFT or TPOT under load): epsilon-constraint re-solves, each minimising
    cost under a tighter latency target; the non-dominated points as a table (or --json), JSON and a plot.
    On a fleet (docs/fleet.md), the fleet's $/hour against one workload's latency (--workload).

    Exit 0 with at least one point, 1 when the instance has no plan, 2 for bad input, 130 on Ctrl-C."""

    def run() -> int:
        if not 2 <= points <= 100:
            raise InputError("--points out of range", path="--points", value=points, accepted="2..100")
        check_time_limit(time_limit)
        if output is not None and output.suffix != ".json":
            raise InputError("output file must end in .json", path="--output", value=str(output))
        if plot is not None and plot.suffix != ".png":
            raise InputError("plot file must end in .png", path="--plot", value=str(plot))
        for path, option in ((output, "--output"), (plot, "--plot")):
            if path is not None:
                check_output(path, protected=(instance,), option=option)   # before the solves, not after
        doc0 = load_yaml(str(instance))
        if is_fleet(doc0.data):
            fspec, doc = load_fleet_spec(str(instance))
            r = pareto_fleet(fspec, doc, workload=workload, x=x.value, statistic=statistic.value, points=points,
                             backend=backend.value if backend else None, time_limit=time_limit,
                             calibration=calibration)
        else:
            if workload is not None:
                raise InputError("--workload is for a fleet instance", path="--workload", value=workload)
            spec, doc = load_plan_spec(str(instance))
            r = pareto(spec, doc, x=x.value, statistic=statistic.value, points=points,
                       backend=backend.value if backend else None, time_limit=time_limit, calibration=calibration)
        data = r.to_dict()
        if output is not None:
            write_atomically(output, dump_json(data), protected=(instance,), option="--output")
        if plot is not None:
            _pareto_plot(r, plot, instance)
        emit(dump_json(data) if as_json else render_pareto(r, instance.name))
        return 0 if r.frontier else 1

    code = guarded(run)
    if code:
        raise typer.Exit(code)


def render_pareto(r: ParetoResult, name: str) -> str:
    label = f"{r.x.upper()} {r.statistic}"
    t = Table(title=f"{name}: cost vs {label} (Pareto frontier, {r.unit})", title_justify="left")
    for col in (f"{label} ms", "cost", "target ms", "plan"):
        t.add_column(col, justify="left" if col == "plan" else "right")
    for p in r.frontier:
        plan = p.plan or {}
        what = "; ".join(plan["deployments"]) if "deployments" in plan else \
            f"{plan['replicas']} x {plan['gpu']} TP{plan['tp']} PP{plan['pp']} {plan['quantization']} b{plan['batch']}"
        t.add_row(_num(p.latency_ms), f"{p.cost:,.4g}", "as written" if p.target_ms is None else f"{p.target_ms:g}",
                  what)
    if not r.frontier:
        status = r.points[0].status if r.points else "unknown"
        return to_text(t, f"No plan for the instance as written ({status}): no frontier. "
                          "planner plan says why and what to relax.")
    dominated = len(r.points) - len(r.frontier)
    unproven = [p for p in r.frontier if p.status != "optimal"]
    note = "" if not unproven else (
        f" Not proven cheapest at their target (status {', '.join(sorted({p.status for p in unproven}))}: the solve "
        f"stopped before a proof): the point(s) at {', '.join(_num(p.latency_ms) for p in unproven)} ms; the frontier may lie "
        "lower there (raise --time-limit).")
    return to_text(t, f"{len(r.points)} solves; {dominated} gave a dominated, repeated or no plan and are left out."
                   + note + f" The frontier is {FRONTIER_SCOPE}.")


def _pareto_plot(r: ParetoResult, path: Path, instance: Path) -> None:
    plt = _pyplot()
    if plt is None:
        raise InputError("--plot needs matplotlib", path="--plot", accepted="pip install matplotlib")
    fig, ax = plt.subplots(figsize=(7, 5))
    front = r.frontier
    if front:
        ax.step([p.latency_ms for p in front], [p.cost for p in front], where="post", color="k", lw=1)
        ax.scatter([p.latency_ms for p in front], [p.cost for p in front], s=24, zorder=3)
    ax.set_xlabel(f"{r.x.upper()} {r.statistic} (ms) at the plan's operating point")
    ax.set_ylabel(f"cost ({r.unit})")
    ax.set_title(f"{instance.name}: Pareto frontier")
    _save(plt, fig, path, (instance,), "--plot")
