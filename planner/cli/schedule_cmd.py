"""`planner schedule`: the fleet per period of a demand profile, as one program over the
periods: parse, call the library (planner/plan/schedule.py), render (docs/workloads.md,
"Demand over time: schedules")."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from planner.cli.common import GAP_HELP, Progress, check_time_limit, dump_json, emit, guarded, write_result
from planner.cli.plan_cmd import BACKEND_HELP, STATUS_TEXT, BackendChoice
from planner.cli.render import money, to_text
from planner.cli.trace_cmd import _pyplot
from planner.cli.whatif_cmd import _save
from planner.errors import InputError
from planner.plan.schedule import Bound, ScheduleResult
from planner.schemas.fleet import is_fleet, load_fleet_spec
from planner.schemas.plan import load_plan_spec
from planner.schemas.slo import Slo
from planner.whatif.schedule_sweep import schedule_with_sweep
from planner.yamlio import check_output, load_yaml

DEFAULT_UTILIZATION = Slo().max_utilization
EPILOG = ("Example: planner schedule instances/schedule_day.yaml\n\n"
          "Example: planner schedule instances/schedule_day.yaml --json --output schedule.json --plot schedule.png")


def schedule_command(
    instance: Annotated[Path, typer.Argument(help="plan or fleet YAML file whose demand has a profile")],
    backend: Annotated[BackendChoice, typer.Option(help=f"default milp; {BACKEND_HELP}")] = BackendChoice.milp,
    time_limit: Annotated[float, typer.Option("--time-limit", help="seconds for all solves together")] = 60.0,
    gap: Annotated[float, typer.Option("--gap", help=GAP_HELP + "; the schedule's solve only, its comparisons "
                                       "stay exact")] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output on stdout")] = False,
    output: Annotated[Optional[Path], typer.Option("--output", help="also write the result to FILE.json or FILE.yaml")]
        = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="write a PNG: GPUs held per type over the cycle "
                                                 "(needs matplotlib)")] = None,
    calibration: Annotated[str, typer.Option(help="none, default (the shipped fit) or a calibration file")] = "none",
    start_costs: Annotated[Optional[str], typer.Option(
        "--start-costs", help="also solve the schedule at each of these $ per GPU started, e.g. 0,1,5,20: the "
        "trade-off between following the demand and keeping GPUs up")] = None,
    reproducible: Annotated[bool, typer.Option("--reproducible", help="omit timings: byte-identical output")] = False,
) -> None:
    """Schedule a fleet over the periods of its demand profile (demand.profile): per period the deployments and
    GPUs held, committed GPUs (owned, or schedule.committed) held all cycle, burst GPUs started and stopped
    between periods; the cost per day against the static fleet (one fleet all cycle serving each period at its
    own demand and SLO) and against the sum of per-period optima, and the autoscaler bounds it implies.

    Exit 0 with a schedule, 1 when none was found (infeasible, or out of time), 2 for bad input, 3 for a bug."""

    def run() -> int:
        check_time_limit(time_limit, gap)
        if output is not None and output.suffix not in (".json", ".yaml", ".yml"):
            raise InputError("output file must end in .json or .yaml", path="--output", value=str(output))
        if plot is not None and plot.suffix.lower() != ".png":
            raise InputError("the plot is a PNG file", path="--plot", value=str(plot), accepted="a path ending in .png")
        for path, option in ((output, "--output"), (plot, "--plot")):
            if path is not None:
                check_output(path, protected=(instance,), option=option)     # before the solve, not after
        if plot is not None:
            _pyplot()
        spec: Any
        spec, doc = load_fleet_spec(str(instance)) if is_fleet(load_yaml(str(instance)).data) \
            else load_plan_spec(str(instance))
        with Progress(f"scheduling {instance.name} ({backend.value})", enabled=not as_json):
            result = schedule_with_sweep(spec, doc, backend=backend.value, time_limit=time_limit,
                                         calibration=calibration, start_costs=_costs(start_costs), gap=gap)
        if reproducible:      # on the result, so the JSON, --output and the text all come without seconds
            result.solve_seconds = None
        data = result.to_dict()
        if output is not None:
            write_result(output, data, instance)
        if plot is not None and result.periods:
            _plot(result, plot, instance)
        emit(dump_json(data) if as_json else render_schedule(result, instance.name))
        return 0 if result.periods else 1

    code = guarded(run, as_json=as_json)
    if code:
        raise typer.Exit(code)


def _costs(text: str | None) -> list[float]:
    if text is None:
        return []
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError("not a list of numbers", path="--start-costs", value=text,
                         accepted="$ per GPU started, comma-separated: 0,1,5,20") from None


def _bound(b: Bound, per_day: float) -> str:
    if b.usd_per_cycle is None:
        return f"none ({b.status})"
    return f"{money(b.usd_per_cycle * per_day)}/day" + ("" if b.proven else f" (not proven optimal: {b.status})")


def _gap(gap: float | None) -> str:
    """A schedule's gap, where the solver gave a bound: none given is no gap of 0 (which proves)."""
    return "no bound found, gap unknown" if gap is None else f"gap {gap:.1%}"


def _optima_line(b: Bound, per_day: float) -> str:
    """The per-period optima: their sum bounds the schedule from below only when each period's
    solve was proven optimal; otherwise it is a sum of answers found, which bounds nothing."""
    if b.proven or b.usd_per_cycle is None:
        return f"sum of per-period optima (lower bound): {_bound(b, per_day)}"
    return (f"sum of per-period answers: {money(b.usd_per_cycle * per_day)}/day (not proven optimal: {b.status}, "
            "so not a lower bound; raise --time-limit)")


def render_schedule(r: ScheduleResult, name: str) -> str:
    parts: list[Any] = [f"{name}: {STATUS_TEXT.get(r.status, r.status)} ({r.backend}); {r.model}"]
    if not r.periods:
        parts.append("No schedule: " + ("nothing meets every period's demand within the limits (planner fleet on "
                                        "the busiest period says why)" if r.status == "infeasible" else
                                        "the solve stopped without one (raise --time-limit)"))
        alone = [str(p) for p, usd in enumerate(r.per_period_optima.usd_per_hour) if usd is None]
        if alone and len(alone) < len(r.per_period_optima.usd_per_hour):
            parts.append(f"no fleet was found for period{'s' if len(alone) > 1 else ''} {', '.join(alone)} on "
                         f"{'their' if len(alone) > 1 else 'its'} own (per-period solves: "
                         f"{r.per_period_optima.status}); the other periods have one")
        return to_text(*parts)
    t = Table(title=f"schedule over a cycle of {r.cycle_hours:g} hours", title_justify="left")
    first: dict[str, Any] = {}     # per workload its targets in the first period it is on (an off one has none)
    own = any(first.setdefault(w, x) != x for p in r.periods for w, x in p.slo.items())   # a period states its own
    cols = ("period", "hours", "demand req/s", *(("SLO",) if own else ()), "deployments", "GPUs held", "started",
            "$/hour")
    for col in cols:
        t.add_column(col, justify="left" if col in ("deployments", "GPUs held", "demand req/s", "SLO") else "right")
    for p in r.periods:
        deps = "; ".join(f"{d.workload}: {d.replicas} x {d.gpu} TP{d.tp}" + (f" PP{d.pp}" if d.pp > 1 else "") +
                         f" {d.quantization}/{d.kv_dtype} b{d.batch}" for d in p.deployments)
        off = [w for w, v in p.requests_per_s.items() if v == 0.0]     # no demand: no replica, no SLO to meet
        deps = "; ".join(x for x in (deps, *(f"{w}: off (no demand)" for w in off)) if x)
        slo = ("; ".join(f"{w}: {_targets(x)}" for w, x in p.slo.items()),) if own else ()
        t.add_row(str(p.period), f"{p.hours:g}", ", ".join(f"{w} {v:.3g}" for w, v in p.requests_per_s.items()),
                  *slo, deps, ", ".join(f"{n} {g}" for g, n in p.gpus_held.items()), str(p.gpus_started),
                  money(p.usd_per_hour))
    parts.append(t)
    a = Table(title="autoscaler bounds (replicas over the cycle)", title_justify="left")
    for col in ("workload", "deployment", "min", "max"):
        a.add_column(col, justify="left" if col in ("workload", "deployment") else "right")
    for x in r.autoscaler:
        spares = f" (incl. {x.spare_replicas} spare{'s' if x.spare_replicas > 1 else ''})" if x.spare_replicas else ""
        a.add_row(x.workload, x.deployment + spares, str(x.min_replicas), str(x.max_replicas))
    parts.append(a)
    per_day = 24.0 / r.cycle_hours
    held = ", ".join(f"{n} {g}" for g, n in r.committed.items()) or "none"
    lines = [f"committed GPUs held all cycle: {held}",
             f"schedule: {money(r.usd_per_day)}/day" + ("" if r.status == "optimal" else
                                                       f" (not proven optimal, {_gap(r.gap)})"),
             f"static fleet (each period at its own demand and SLO): {_bound(r.static, per_day)}",
             _optima_line(r.per_period_optima, per_day)]
    if r.saving_vs_static is not None:
        lines.append(f"saving over the static fleet: {r.saving_vs_static:.1%}")
    parts.append("\n".join(lines))
    if r.start_costs:
        w = Table(title="the schedule at other $ per GPU started", title_justify="left")
        for col in ("$ per GPU started", "$/day", "GPUs started/day", "GPU-hours held/day", "status"):
            w.add_column(col, justify="right")
        for point in r.start_costs:
            w.add_row(money(point.usd_per_gpu_started), money(point.usd_per_day), _num(point.gpus_started_per_day),
                      _num(point.gpu_hours_held_per_day), point.status)
        parts.append(w)
    return to_text(*parts)


def _targets(slo: dict[str, Any]) -> str:
    """A period's targets as a person reads them: "TTFT p99 1500 ms, TPOT mean 40 ms"."""
    parts = []
    for key, name in (("ttft_ms", "TTFT"), ("tpot_ms", "TPOT"), ("itl_ms", "ITL"), ("e2e_latency_ms", "E2E")):
        v = slo.get(key)
        for stat, ms in ({"mean": v} if isinstance(v, (int, float)) else v or {}).items():
            parts.append(f"{name} {stat} {ms:g} ms")
    parts = parts or ["throughput only"]
    if slo.get("max_utilization", DEFAULT_UTILIZATION) != DEFAULT_UTILIZATION:
        parts.append(f"utilisation <= {slo['max_utilization']:g}")
    return ", ".join(parts)


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:,.4g}"


def _plot(r: ScheduleResult, path: Path, instance: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    edges = [0.0]
    for p in r.periods:
        edges.append(edges[-1] + p.hours)
    types = sorted({g for p in r.periods for g in p.gpus_held})
    bottom = [0.0] * len(r.periods)
    for g in types:
        n = [float(p.gpus_held.get(g, 0)) for p in r.periods]
        ax.bar(edges[:-1], n, width=[p.hours for p in r.periods], bottom=bottom, align="edge", label=g,
               edgecolor="k", lw=0.5)
        bottom = [b + x for b, x in zip(bottom, n)]
    static = sum(d.gpus for d in r.static.deployments)
    if static:
        ax.axhline(static, color="k", ls="--", lw=1, label="static fleet")
    ax.set_xlabel("hours into the cycle")
    ax.set_ylabel("GPUs held")
    static_day = (r.static.usd_per_cycle or 0.0) * 24.0 / r.cycle_hours
    ax.set_title(f"{instance.name}: USD {r.usd_per_day or 0:,.0f} per day, static fleet USD {static_day:,.0f}")
    ax.legend(fontsize=8)
    _save(plt, fig, path, (instance,), "--plot")
