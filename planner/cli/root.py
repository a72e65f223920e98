"""Command-line interface: parses, calls the library, renders. Nothing else."""

from __future__ import annotations

from typing import Annotated

import typer

from planner.cli import (
    common,
    estimate_cmd,
    fidelity_cmd,
    fleet_cmd,
    launch_cmd,
    plan_cmd,
    report_cmd,
    trace_cmd,
    whatif_cmd,
)

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


def main(argv: list[str] | None = None) -> None:
    """The console script: as ``app()``, and a usage error (an unknown option, a value not among
    the choices) is also a JSON object on stdout when --json is among the arguments."""
    import sys

    try:
        import click
    except ImportError:          # typer >= 0.16 vendors click
        from typer import _click as click

    args = sys.argv[1:] if argv is None else argv
    try:
        rv = app(args=args, prog_name="planner", standalone_mode=False)
    except click.exceptions.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()
            sys.exit(exc.exit_code)
        human = f"error: {exc.format_message()}"
        typer.echo((exc.ctx.get_usage() + "\n" if exc.ctx else "") + human, err=True)
        if "--json" in args:
            sys.stdout.write(common.dump_json({"error": type(exc).__name__, "exit_code": exc.exit_code,
                                               "message": exc.format_message(), "text": human,
                                               "path": getattr(getattr(exc, "param", None), "opts", [None])[0],
                                               "file": None, "line": None, "value": None, "accepted": None}))
        sys.exit(exc.exit_code)
    except getattr(click.exceptions, "Abort", typer.Abort):      # typer's vendored click has no Abort
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(rv if isinstance(rv, int) else 0)
app.command("plan", epilog=plan_cmd.EPILOG)(plan_cmd.plan_command)
app.command("fleet", epilog=fleet_cmd.EPILOG)(fleet_cmd.fleet_command)
app.command("schema")(plan_cmd.schema_command)
app.command("validate", epilog=fidelity_cmd.VALIDATE_EPILOG)(fidelity_cmd.validate_command)
app.command("calibrate", epilog=fidelity_cmd.CALIBRATE_EPILOG)(fidelity_cmd.calibrate_command)
app.command("sweep", epilog=whatif_cmd.SWEEP_EPILOG)(whatif_cmd.sweep_command)
app.command("pareto", epilog=whatif_cmd.PARETO_EPILOG)(whatif_cmd.pareto_command)
app.command("launch", epilog=launch_cmd.EPILOG)(launch_cmd.launch_command)
app.command("report", epilog=report_cmd.EPILOG)(report_cmd.report_command)
app.command("trace", epilog=trace_cmd.EPILOG)(trace_cmd.trace_command)
