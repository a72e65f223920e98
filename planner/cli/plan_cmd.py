"""`planner plan`: ranked deployments for an instance file, and `planner schema`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
import yaml

from planner.cli.common import dump_json, emit, guarded
from planner.cli.render import render_plans
from planner.errors import InputError
from planner.schemas.plan import PlanSpec, load_plan_spec
from planner.whatif.relax import plan_and_relax
from planner.yamlio import write_atomically

EPILOG = ("Example: planner plan instances/chat_llama70b.yaml --top 3\n\n"
          "Example: planner plan instances/deepseek_v3.yaml --backend milp --json --output plans.json")


def plan_command(
    instance: Annotated[Path, typer.Argument(help="instance YAML file (docs/instances.md)")],
    top: Annotated[Optional[int], typer.Option("--top", help="how many distinct plans (default: the file's top_k)")] = None,
    objective: Annotated[Optional[str], typer.Option(
        help="cost_per_million_tokens, cost_per_hour, tpot, ttft, throughput (default: the file's)")] = None,
    backend: Annotated[str, typer.Option(help="cpsat (default), milp (PuLP + CBC), highs (HiGHS via OR-Tools), exhaustive (oracle)")] = "cpsat",
    time_limit: Annotated[float, typer.Option("--time-limit", help="seconds for all solves together")] = 60.0,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output on stdout")] = False,
    output: Annotated[Optional[Path], typer.Option("--output", help="also write the result to FILE.json or FILE.yaml")] = None,
    calibration: Annotated[str, typer.Option(help="none, default (the shipped fit) or a calibration file")] = "none",
    reproducible: Annotated[bool, typer.Option("--reproducible", help="omit timings: the same input gives byte-identical output")] = False,
    simulate: Annotated[bool, typer.Option("--simulate/--no-simulate", help="re-score each plan with the discrete-event simulator (5,000 requests, seeded)")] = True,
) -> None:
    """Search GPU type, count, TP/PP/EP, precision and batch; print ranked plans that explain themselves.

    Exit 0 with a plan, 1 when no plan is feasible (with the reason and the smallest relaxations) or the
    time limit passed before one was found, 2 for bad input, 130 on Ctrl-C (the plans found so far are printed)."""

    def run() -> int:
        if time_limit <= 0:
            raise InputError("the time limit must be positive", path="--time-limit", value=time_limit)
        if top is not None and not 1 <= top <= 50:
            raise InputError("--top must be between 1 and 50", path="--top", value=top)
        if output is not None and output.suffix not in (".json", ".yaml", ".yml"):
            raise InputError("output file must end in .json or .yaml", path="--output", value=str(output))
        spec, doc = load_plan_spec(str(instance))
        result = plan_and_relax(spec, doc, backend=backend, top_k=top, time_limit=time_limit, objective=objective,
                      calibration=calibration, simulate=simulate)
        if reproducible:
            result.solve_seconds = None
        data = result.to_dict()
        if output is not None:
            text = dump_json(data) if output.suffix == ".json" else yaml.safe_dump(json.loads(dump_json(data)),
                                                                                      sort_keys=True)
            write_atomically(output, text, protected=(instance,))
        emit(dump_json(data) if as_json else render_plans(result))
        if result.interrupted:
            return 130
        return 0 if result.plans else 1

    code = guarded(run)
    if code:
        raise typer.Exit(code)


def schema_command() -> None:
    """Print the JSON Schema of instance files."""
    emit(json.dumps(PlanSpec.model_json_schema(), indent=2, sort_keys=True) + "\n")
