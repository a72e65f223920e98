"""Command-line interface: parses, calls the library, renders. Nothing else."""

from __future__ import annotations

from typing import Annotated

import typer

from planner.cli import common, estimate_cmd, fidelity_cmd, launch_cmd, plan_cmd, report_cmd

app = typer.Typer(
    name="planner",
    help="Plan LLM inference deployments: GPUs, parallelism, precision and batch, with costs.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)


def version_text() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return f"planner {version('llm-deploy-planner')}"
    except PackageNotFoundError:
        return "planner (not installed)"


def _version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit(0)


@app.callback()
def _root(debug: Annotated[bool, typer.Option(
        "--debug", help="show the traceback of an unexpected error (exit 3) instead of one line")] = False,
          version: Annotated[bool, typer.Option(
              "--version", "-V", help="print the planner's version and exit", callback=_version,
              is_eager=True)] = False) -> None:
    """Plan LLM inference deployments: GPUs, parallelism, precision and batch, with costs.

    Exit codes (docs/exit-codes.md): 0 a result, 1 no plan (infeasible, out of time or unknown),
    2 bad input or an unusable path, 3 a bug, 130 Ctrl-C."""
    common.DEBUG = debug


app.command("estimate", epilog=estimate_cmd.EPILOG)(estimate_cmd.estimate)


def main() -> None:
    app()
app.command("plan", epilog=plan_cmd.EPILOG)(plan_cmd.plan_command)
app.command("schema")(plan_cmd.schema_command)
app.command("validate", epilog=fidelity_cmd.VALIDATE_EPILOG)(fidelity_cmd.validate_command)
app.command("calibrate", epilog=fidelity_cmd.CALIBRATE_EPILOG)(fidelity_cmd.calibrate_command)
app.command("launch", epilog=launch_cmd.EPILOG)(launch_cmd.launch_command)
app.command("report", epilog=report_cmd.EPILOG)(report_cmd.report_command)
