"""`planner fleet`: one joint plan for several workloads on a shared inventory: parse, call
planner/fleet, render (docs/fleet.md)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from planner.cli.common import Progress, check_time_limit, dump_json, emit, guarded, write_result
from planner.cli.plan_cmd import STATUS_TEXT, BackendChoice
from planner.cli.render import money, to_text
from planner.errors import InputError
from planner.fleet import FleetResult, fleet
from planner.schemas.fleet import load_fleet_spec
from planner.yamlio import check_output

EPILOG = ("Example: planner fleet instances/fleet_three_models.yaml\n\n"
          "Example: planner fleet instances/fleet_replan.yaml --json --output fleet.json")


def fleet_command(
    instance: Annotated[Path, typer.Argument(help="fleet YAML file (docs/fleet.md)")],
    backend: Annotated[BackendChoice, typer.Option(
        help="milp (PuLP + CBC, the default: fastest on fleets, benchmarks/fleet_scale.py), cpsat, highs, "
             "exhaustive (enumeration: small fleets only)")]
        = BackendChoice.milp,  # type: ignore[attr-defined]
    time_limit: Annotated[float, typer.Option("--time-limit", help="seconds for each solve (phase)")] = 60.0,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output on stdout")] = False,
    output: Annotated[Optional[Path], typer.Option("--output", help="also write the result to FILE.json or FILE.yaml")]
        = None,
    calibration: Annotated[str, typer.Option(help="none, default (the shipped fit) or a calibration file")] = "none",
    marginal: Annotated[bool, typer.Option(
        "--marginal/--no-marginal", help="re-solve with one more unit of each binding limit (what it is worth)")]
        = True,
    baselines: Annotated[bool, typer.Option("--baselines/--no-baselines", help="compare with the baselines")] = True,
    reproducible: Annotated[bool, typer.Option("--reproducible", help="omit timings: byte-identical output")] = False,
) -> None:
    """Size a fleet: for every workload its configurations (GPU type, layout, precision, batch), replicas and
    traffic split, on the shared inventory, budget and power; what binds, what one more unit of it is worth,
    and the saving over planning each workload alone or greedily.

    Exit 0 with a fleet, 1 when none was found (infeasible, with why; or out of time), 2 for bad input, 3 for
    a bug, 130 on Ctrl-C."""

    def run() -> int:
        check_time_limit(time_limit)
        if output is not None and output.suffix not in (".json", ".yaml", ".yml"):
            raise InputError("output file must end in .json or .yaml", path="--output", value=str(output))
        if output is not None:
            check_output(output, protected=(instance,), option="--output")     # before the solve, not after
        spec, doc = load_fleet_spec(str(instance))
        with Progress(f"sizing {instance.name} ({backend.value})", enabled=not as_json):
            result = fleet(spec, doc, backend=backend.value, time_limit=time_limit, calibration=calibration,
                           marginal=marginal, baselines=baselines)
        data = result.to_dict()
        if reproducible:
            _strip_timings(data)
        data["status_detail"] = STATUS_TEXT.get(result.status, result.status)
        if output is not None:
            write_result(output, data, instance)
        emit(dump_json(data) if as_json else render_fleet(result, instance.name))
        return 0 if result.deployments else 1

    code = guarded(run, as_json=as_json)
    if code:
        raise typer.Exit(code)


def _strip_timings(data: dict[str, Any]) -> None:
    data["solve_seconds"] = None
    for p in data["phases"]:
        p["seconds"] = None


def render_fleet(r: FleetResult, name: str) -> str:
    parts: list[Any] = []
    head = f"{name}: {STATUS_TEXT.get(r.status, r.status)} ({r.backend})"
    phases = "; ".join(f"{p['objective']} = {_phase_value(p)}" + (
        "" if p["status"] == "optimal" else f" ({p['status']}" + (
            f", within {p['gap']:.1%} of the best bound" if p.get("gap") is not None else ", gap unknown") + ")")
        for p in r.phases)
    parts.append(head + ("\n" + "objectives, in order: " + phases if phases else ""))
    if r.deployments:
        t = Table(title="deployments (each replica at or below its capacity at SLO)", title_justify="left")
        for col in ("workload", "share", "deployment", "GPUs", "$/hour", "load", "TTFT p99 ms", "TPOT ms",
                    "tightest SLO margin"):
            t.add_column(col, justify="left" if col in ("workload", "deployment", "tightest SLO margin")
                         else "right")
        for d in r.deployments:
            p = d.plan
            dep = f"{p.replicas} x {p.gpu} TP{p.tp} PP{p.pp}" + (f" EP{p.ep}" if p.ep > 1 else "") + \
                f" {p.quantization}/{p.kv_dtype} b{p.batch}" + (f" ({d.role})" if d.role != "aggregated" else "")
            pct = p.load.get("percentiles_ms", {})
            margin = min(d.slo_margins_ms.items(), key=lambda kv: kv[1]) if d.slo_margins_ms else None
            t.add_row(d.workload, f"{d.share:.0%}", dep, str(p.gpus), money(p.cost_per_hour),
                      f"{p.load.get('utilization', float('nan')):.2f}", _num(pct.get("ttft_p99")),
                      _num(p.tpot_ms), f"{margin[0]} {margin[1]:+.0f} ms" if margin else "-")
        parts.append(t)
        w = Table(title="workloads", title_justify="left")
        for col in ("workload", "model", "demand", "served", "configs", "replicas", "GPUs", "$/hour", "cost share"):
            w.add_column(col, justify="left" if col in ("workload", "model") else "right")
        for x in r.workloads:
            d = x["demand"]
            demand = f"{d['requests_per_s']:.3g} req/s" if d["requests_per_s"] else \
                f"{d['value']:.0f} {'clients' if d['kind'] == 'clients' else 'tok/s'}"
            w.add_row(x["workload"], x["model"], demand, f"{x['served_share']:.0%}", str(x["configurations"]),
                      str(x["replicas"]), str(x["gpus"]), money(x["cost_per_hour"]), f"{x['cost_share']:.0%}")
        parts.append(w)
        g = Table(title="GPUs", title_justify="left")
        for col in ("GPU", "used", "inventory", "nodes", "$/hour"):
            g.add_column(col, justify="left" if col == "GPU" else "right")
        for x in r.gpus:
            g.add_row(x["gpu"], str(x["used"]), "-" if x["inventory"] is None else str(x["inventory"]),
                      str(x["nodes"]), money(x["cost_per_hour"]))
        parts.append(g)
        tot = r.totals
        nodes = f"{tot['nodes']} node" + ("s" if tot["nodes"] != 1 else "")
        parts.append(f"fleet: {money(tot['cost_per_hour'])}/hour, {tot['gpus']} GPUs on {nodes}, "
                     f"{tot['power_w'] / 1000:.1f} kW, weighted demand served {tot['served_share_weighted']:.1%}")
    for x in r.diagnosis:
        if x.get("workload"):
            line = f"{x['workload']}: {x['meet_targets']} of {x['configurations']} configurations meet its targets, " \
                f"{x['fit_limits_alone']} fit the limits alone"
            if x.get("cheapest_alone"):
                a = x["cheapest_alone"]
                line += f"; alone it needs {a['replicas']} x {a['configuration']} ({money(a['cost_per_hour'])}/hour)"
            parts.append(line + (f": {x['why']}" if x.get("why") else ""))
        else:
            gpus = ", ".join(f"{n:g} {g}" for g, n in x["gpus"].items())
            parts.append(f"{x['why']}: planned alone they cost {money(x['cheapest_alone_total_cost_per_hour'])}/hour "
                         f"on {gpus}")
    parts += _binding_lines(r)
    parts += disaggregation_lines(r)
    if r.baselines:
        b = Table(title="baselines (same physics, other decisions)", title_justify="left")
        for col in ("baseline", "$/hour", "served", "fleet saves", "how"):
            b.add_column(col, justify="left" if col in ("baseline", "how") else "right")
        for x in r.baselines:
            how = x["how"] + ("; breaks " + ", ".join(x["breaks"]) if x["breaks"] else "") + \
                (f"; {x['note']}" if x.get("note") else "")
            saving = "-" if x["saving_per_hour"] is None else f"{money(x['saving_per_hour'])}/h"
            b.add_row(x["baseline"], money(x["cost_per_hour"]), f"{x['served_share']:.0%}", saving, how)
        parts.append(b)
    parts += r.notes
    return to_text(*parts)


def disaggregation_lines(r: FleetResult) -> list[str]:
    """Per workload that may run pools: the mode chosen and the comparison with each forced mode."""
    out = []
    for x in r.disaggregation:
        out.append(f"disaggregation of {x['workload']} ({x['mode']}): {x['chosen']} chosen; {x['why']}")
    return out


def _binding_lines(r: FleetResult) -> list[str]:
    out = []
    for x in r.binding:
        out.append(f"binds: {x['limit']} ({x['used']:g} of {x['available']:g} {x['unit']})")
    for m in r.marginal:
        if m["objective"] == "served_demand":
            out.append(f"{m['unit']}: serves {m['improvement']:+.1%} more of the weighted demand")
        elif m["improvement"] > 1e-9:
            out.append(f"{m['unit']}: saves {money(m['improvement'])}/hour")
        else:
            out.append(f"{m['unit']}: saves nothing (another limit binds next)")
    return out


def _phase_value(p: dict[str, Any]) -> str:
    v = p.get("value")
    if v is None:
        return "-"
    if p["objective"] == "cost_per_hour":
        return f"{money(v)}/hour"
    if p["objective"] == "served_demand":
        return f"{v:.1%} of the weighted demand"
    return f"{v:g} GPUs changed"


def _num(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:,.0f}" if x >= 100 else f"{x:.1f}"
