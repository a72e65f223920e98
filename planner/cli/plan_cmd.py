"""`planner plan`: ranked deployments for an instance file, and `planner schema`."""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Annotated, Optional, get_args

import typer

from planner.api import SCHEMAS, schema
from planner.backends.base import BACKENDS, REGISTRY
from planner.cli.common import (
    GAP_HELP,
    TIME_LIMIT_HELP,
    Progress,
    dump_json,
    emit,
    guarded,
    without_timings,
    write_result,
)
from planner.cli.render import render_plans
from planner.errors import InputError
from planner.plan.result import PlanResult
from planner.plan.solve import check_gap, check_run
from planner.report.html import render_report
from planner.report.wording import unverified
from planner.schemas.plan import Objective, load_plan_spec, with_objective
from planner.whatif.answer import answer
from planner.yamlio import check_output, write_atomically

ObjectiveChoice = enum.Enum("ObjectiveChoice", {name: name for name in get_args(Objective)}, type=str)
BackendChoice = enum.Enum("BackendChoice", {name: name for name in BACKENDS}, type=str)
BACKEND_HELP = ", ".join(f"{e.name} ({e.about})" for e in REGISTRY)
"""The --backend help of every command, from the registry (planner/backends/base.py)."""
MARGINAL_HELP = ("re-solve with one more unit of each binding limit (what it is worth) and, per workload that may run "
                 "prefill/decode pools, with each mode forced; default: on for text, off with --json")

STATUS_TEXT = {
    "optimal": "optimal: the first plan is proven best for the objective",
    "feasible": "feasible: plans found, the first is not proven best (the gap says how far it may be)",
    "time_limit": "time_limit: the time limit passed before any plan was found; feasibility is not decided",
    "infeasible": "infeasible: proven that no plan meets every limit",
    "interrupted": "interrupted: Ctrl-C before any plan was found; nothing is proven",
    "unknown": "unknown: the solver ended without an answer; nothing is proven",
}
"""What each status promises (docs/exit-codes.md); `status_detail` in the JSON output."""

EPILOG = ("Example: planner plan instances/chat_llama70b.yaml --top 3\n\n"
          "Example: planner plan instances/deepseek_v3.yaml --backend milp --json --output plans.json")


def plan_command(
    instance: Annotated[Path, typer.Argument(help="instance YAML file (docs/instances.md)")],
    top: Annotated[Optional[int], typer.Option("--top", help="how many distinct plans (default: the file's top_k)")] = None,
    objective: Annotated[Optional[ObjectiveChoice], typer.Option(
        help="what to optimise (default: the file's); gpus = fewest GPUs")] = None,
    backend: Annotated[BackendChoice, typer.Option(help=f"default cpsat; {BACKEND_HELP}")] = BackendChoice.cpsat,
    time_limit: Annotated[float, typer.Option("--time-limit", help=TIME_LIMIT_HELP)] = 60.0,
    gap: Annotated[float, typer.Option("--gap", help=GAP_HELP)] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output on stdout")] = False,
    output: Annotated[Optional[Path], typer.Option("--output", help="also write the result to FILE.json or FILE.yaml")] = None,
    calibration: Annotated[str, typer.Option(help="none, default (the shipped fit) or a calibration file")] = "none",
    reproducible: Annotated[bool, typer.Option("--reproducible", help="omit timings: the same input gives byte-identical output")] = False,
    explain_support: Annotated[bool, typer.Option("--explain-support", help="list the searched GPU x quantization x KV dtype combinations the engine does not run, and why")] = False,
    simulate: Annotated[bool, typer.Option("--simulate/--no-simulate", help="re-score each plan with the discrete-event simulator (5,000 requests, seeded)")] = True,
    report: Annotated[Optional[Path], typer.Option(
        "--report", help="also write a self-contained HTML report to FILE.html (planner report)")] = None,
    marginal: Annotated[Optional[bool], typer.Option("--marginal/--no-marginal", help=MARGINAL_HELP)] = None,
) -> None:
    """Search GPU type, count, TP/PP/EP, precision and batch; print ranked plans that explain themselves.

    Exit 0 with a plan, 1 when no plan was found (proven infeasible, with the reason and the smallest
    relaxations; or out of time; or unknown), 2 for bad input, 3 for a bug, 130 on Ctrl-C (the plans found
    so far are printed). docs/exit-codes.md says what each status promises."""

    def run() -> int:
        check_run(time_limit, top)
        check_gap(gap)
        if output is not None and output.suffix not in (".json", ".yaml", ".yml"):
            raise InputError("output file must end in .json or .yaml", path="--output", value=str(output))
        if report is not None and report.suffix not in (".html", ".htm"):
            raise InputError("report file must end in .html", path="--report", value=str(report))
        for path, option in ((output, "--output"), (report, "--report")):
            if path is not None:
                check_output(path, protected=(instance,), option=option)   # before the solve, not after
        spec, doc = load_plan_spec(str(instance))
        spec = with_objective(spec, doc, objective and objective.value)
        with Progress(f"solving {instance.name} ({backend.value}, at most {time_limit:g} s)", enabled=not as_json):
            result = answer(spec, doc, backend=backend.value, top_k=top, time_limit=time_limit,
                            calibration=calibration, simulate=simulate,
                            marginal=(not as_json) if marginal is None else marginal, gap=gap)
        if reproducible:        # on the result, so the text (and --report) has no seconds either
            without_timings(result)
        data = result.to_dict()
        data["status_detail"] = STATUS_TEXT.get(result.status, result.status) + unverified(result.verification)
        if output is not None:
            write_result(output, data, instance)
        if report is not None:
            write_atomically(report, render_report(PlanResult.from_dict(result.to_dict()), title=instance.name),
                             protected=(instance,), option="--report")
        emit(dump_json(data) if as_json else render_plans(result, explain_support=explain_support))
        if result.interrupted:
            return 130
        return 0 if result.plans else 1

    code = guarded(run, as_json=as_json)
    if code:
        raise typer.Exit(code)


SchemaChoice = enum.Enum("SchemaChoice", {name: name for name in SCHEMAS}, type=str)
SCHEMA_HELP = "; ".join(f"{name}: {about}" for name, (about, _) in SCHEMAS.items())


def schema_command(
    kind: Annotated[SchemaChoice, typer.Argument(help=f"which schema (default instance). {SCHEMA_HELP}")]
        = SchemaChoice.instance,
) -> None:
    """Print the JSON Schema of an input file or of a result (planner.api.SCHEMAS, docs/api.md)."""
    emit(json.dumps(schema(kind.value), indent=2, sort_keys=True) + "\n")
