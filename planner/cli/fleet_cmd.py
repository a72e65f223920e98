"""`planner fleet`: one joint plan for several workloads on a shared inventory: parse, call
the one solve path (planner/whatif/answer.py, planner/plan/solve.py), render (docs/fleet.md)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from planner.cli.common import (
    GAP_HELP,
    TIME_LIMIT_HELP,
    Progress,
    check_time_limit,
    dump_json,
    emit,
    guarded,
    without_timings,
    write_result,
)
from planner.cli.plan_cmd import BACKEND_HELP, MARGINAL_HELP, STATUS_TEXT, BackendChoice
from planner.cli.render import answer_lines, money, notes, to_text
from planner.errors import InputError
from planner.plan.result import PlanResult
from planner.report import wording
from planner.schemas.fleet import load_fleet_spec
from planner.whatif.answer import answer
from planner.yamlio import check_output

EPILOG = ("Example: planner fleet instances/fleet_three_models.yaml\n\n"
          "Example: planner fleet instances/fleet_replan.yaml --json --output fleet.json")


def fleet_command(
    instance: Annotated[Path, typer.Argument(help="fleet YAML file (docs/fleet.md)")],
    backend: Annotated[BackendChoice, typer.Option(
        help=f"default milp; highs scales further, with a proven gap (benchmarks/fleet_scale.py); {BACKEND_HELP}")]
        = BackendChoice.milp,
    time_limit: Annotated[float, typer.Option("--time-limit", help=TIME_LIMIT_HELP)] = 60.0,
    gap: Annotated[float, typer.Option("--gap", help=GAP_HELP)] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output on stdout")] = False,
    output: Annotated[Optional[Path], typer.Option("--output", help="also write the result to FILE.json or FILE.yaml")]
        = None,
    calibration: Annotated[str, typer.Option(help="none, default (the shipped fit) or a calibration file")] = "none",
    marginal: Annotated[Optional[bool], typer.Option("--marginal/--no-marginal", help=MARGINAL_HELP)] = None,
    baselines: Annotated[bool, typer.Option("--baselines/--no-baselines", help="compare with the baselines")] = True,
    reproducible: Annotated[bool, typer.Option("--reproducible", help="omit timings: byte-identical output")] = False,
    simulate: Annotated[bool, typer.Option("--simulate/--no-simulate", help="re-score each aggregated deployment "
                                           "with the discrete-event simulator at its share of the traffic")] = False,
) -> None:
    """Size a fleet: for every workload its configurations (GPU type, layout, precision, batch), replicas and
    traffic split, on the shared inventory, budget and power; what binds, what one more unit of it is worth,
    the moves from the fleet running today, and the saving over planning each workload alone or greedily.

    Exit 0 with a fleet, 1 when none was found (infeasible, with why; or out of time), 2 for bad input, 3 for
    a bug, 130 on Ctrl-C."""

    def run() -> int:
        check_time_limit(time_limit, gap)
        if output is not None and output.suffix not in (".json", ".yaml", ".yml"):
            raise InputError("output file must end in .json or .yaml", path="--output", value=str(output))
        if output is not None:
            check_output(output, protected=(instance,), option="--output")     # before the solve, not after
        spec, doc = load_fleet_spec(str(instance))
        with Progress(f"sizing {instance.name} ({backend.value})", enabled=not as_json):
            result = answer(spec, doc, backend=backend.value, time_limit=time_limit, calibration=calibration,
                            marginal=(not as_json) if marginal is None else marginal, baselines=baselines,
                            simulate=simulate, gap=gap)
        if reproducible:        # on the result, so the text (and --report) has no seconds either
            without_timings(result)
        data = result.to_dict()
        data["status_detail"] = STATUS_TEXT.get(result.status, result.status)
        if output is not None:
            write_result(output, data, instance)
        emit(dump_json(data) if as_json else render_fleet(result, instance.name))
        if result.interrupted:
            return 130
        return 0 if result.plans else 1

    code = guarded(run, as_json=as_json)
    if code:
        raise typer.Exit(code)


def render_fleet(r: PlanResult, name: str) -> str:
    parts: list[Any] = []
    head = f"{name}: {STATUS_TEXT.get(r.status, r.status)} ({r.backend})"
    parts.append(head + ("\nobjectives, in order: " + wording.phases(r.phases) if r.phases else ""))
    a = r.answer(1)
    if r.plans and a is not None and a.totals is not None:
        t = Table(title="deployments (each replica at or below its capacity at SLO)", title_justify="left")
        for col in ("workload", "share", "deployment", "GPUs", "$/hour", "load", "TTFT p99 ms", "TPOT ms",
                    "tightest SLO margin"):
            t.add_column(col, justify="left" if col in ("workload", "deployment", "tightest SLO margin")
                         else "right")
        for p in r.deployments(1):
            dep = f"{p.replicas} x {p.gpu} TP{p.tp} PP{p.pp}" + (f" EP{p.ep}" if p.ep > 1 else "") + \
                f" {p.quantization}/{p.kv_dtype} b{p.batch}" + (f" ({p.role})" if p.role != "aggregated" else "")
            pct = p.load.get("percentiles_ms", {})
            margin = min(p.slo_margins_ms.items(), key=lambda kv: kv[1]) if p.slo_margins_ms else None
            t.add_row(p.workload, f"{p.share:.0%}", dep, str(p.gpus), money(p.cost_per_hour),
                      f"{p.load.get('utilization', float('nan')):.2f}", _num(pct.get("ttft_p99")),
                      _num(p.tpot_ms), f"{margin[0]} {margin[1]:+.0f} ms" if margin else "-")
        parts.append(t)
        w = Table(title="workloads", title_justify="left")
        for col in ("workload", "model", "demand", "served", "configs", "replicas", "GPUs", "$/hour", "cost share"):
            w.add_column(col, justify="left" if col in ("workload", "model") else "right")
        for x in a.workloads:
            demand = f"{x.requests_per_s:.3g} req/s" if x.requests_per_s else \
                f"{x.demand:.0f} {'clients' if x.demand_kind == 'clients' else 'tok/s'}"
            w.add_row(x.workload, x.model, demand, f"{x.served_share:.0%}", str(x.configurations),
                      str(x.replicas), str(x.gpus), money(x.cost_per_hour), f"{x.cost_share:.0%}")
        parts.append(w)
        g = Table(title="GPUs", title_justify="left")
        offered = wording.capacity_split(a.gpus) is not None     # priced by offers: say how each row is paid
        for col in ("GPU", "used", "inventory", "nodes", "$/hour") + (("paid as",) if offered else ()):
            g.add_column(col, justify="left" if col in ("GPU", "paid as") else "right")
        for u in a.gpus:
            paid = (wording.offer_words(u.offer, u.committed) + (f", {wording.spare_gpus(u.spare_gpus)}" if u.spare_gpus
                                                                 else ""),) if offered else ()
            g.add_row(u.gpu, str(u.used), "-" if u.inventory is None else str(u.inventory), str(u.nodes),
                      money(u.cost_per_hour), *paid)
        parts.append(g)
        for p in r.deployments(1):
            sim = wording.simulation(p)
            if sim:
                parts.append(f"{p.workload}, {p.replicas} x {p.gpu} TP{p.tp}:\n" + "\n".join(sim))
        tot = a.totals
        nodes = f"{tot.nodes} node" + ("s" if tot.nodes != 1 else "")
        parts.append(f"fleet: {money(tot.cost_per_hour)}/hour, {tot.gpus} GPUs on {nodes}, "
                     f"{(tot.power_w or 0.0) / 1000:.1f} kW, weighted demand served {tot.served_share_weighted:.1%}")
    if not r.plans:
        parts += [wording.shortfall(x) for x in r.shortfalls]
        if r.together is not None:
            parts.append(wording.together(r.together))
        parts += [f"{d.workload + ': ' if d.workload else ''}{d.family} {d.name}: {wording.diagnosis(d)}"
                  for d in r.diagnosis]
    parts += answer_lines(r)
    if r.baselines:
        b = Table(title="baselines (same physics, other decisions)", title_justify="left")
        for col in ("baseline", "$/hour", "served", "fleet saves", "how"):
            b.add_column(col, justify="left" if col in ("baseline", "how") else "right")
        for base in r.baselines:
            saving = "-" if base.saving_per_hour is None else f"{money(base.saving_per_hour)}/h"
            b.add_row(base.baseline, money(base.cost_per_hour), f"{base.served_share:.0%}", saving,
                      wording.baseline_how(base))
        parts.append(b)
    parts += notes(r)
    return to_text(*parts)


def _num(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:,.0f}" if x >= 100 else f"{x:.1f}"
