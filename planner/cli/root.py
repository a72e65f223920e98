"""Command-line interface: parses, calls the library, renders. Nothing else."""

from __future__ import annotations

from typing import Annotated

import typer

from planner.cli import (
    check_cmd,
    common,
    estimate_cmd,
    fidelity_cmd,
    fleet_cmd,
    launch_cmd,
    plan_cmd,
    report_cmd,
    schedule_cmd,
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


def _click_exceptions() -> list:
    """The modules whose click exceptions a command line may raise: typer's vendored click
    (typer >= 0.16 raises its own) and click itself when installed (the ray extra brings it;
    older typer raises click's). Catching one of them only lets the other's usage errors
    through as a traceback."""
    import importlib

    out = []
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            out.append(importlib.import_module(name))
        except ImportError:
            pass
    return out


def main(argv: list[str] | None = None) -> None:
    """The console script: as ``app()``, with a usage error (an unknown option, a value not
    among the choices) one line on stderr, exit 2, and also a JSON object on stdout when
    --json is among the arguments."""
    import sys

    kinds = _click_exceptions()
    usage_errors = tuple(m.UsageError for m in kinds)
    aborts = tuple(m.Abort for m in kinds if hasattr(m, "Abort")) + (typer.Abort,)
    click_errors = tuple(m.ClickException for m in kinds)
    args = sys.argv[1:] if argv is None else argv
    try:
        rv = app(args=args, prog_name="planner", standalone_mode=False)
    except usage_errors as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()
            sys.exit(exc.exit_code)
        usage = exc.ctx.get_usage().removeprefix("Usage: ").strip() if exc.ctx else ""
        human = f"error: {exc.format_message()}" + (f" (usage: {usage}; --help for more)" if usage else "")
        typer.echo(human, err=True)
        if "--json" in args:
            sys.stdout.write(common.dump_json({"error": type(exc).__name__, "exit_code": exc.exit_code,
                                               "message": exc.format_message(), "text": human,
                                               "path": getattr(getattr(exc, "param", None), "opts", [None])[0],
                                               "file": None, "line": None, "value": None, "accepted": None}))
        sys.exit(exc.exit_code)
    except aborts:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except click_errors as exc:
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(rv if isinstance(rv, int) else 0)


app.command("plan", epilog=plan_cmd.EPILOG)(plan_cmd.plan_command)
app.command("fleet", epilog=fleet_cmd.EPILOG)(fleet_cmd.fleet_command)
app.command("schedule", epilog=schedule_cmd.EPILOG)(schedule_cmd.schedule_command)
app.command("schema")(plan_cmd.schema_command)
app.command("validate", epilog=fidelity_cmd.VALIDATE_EPILOG)(fidelity_cmd.validate_command)
app.command("calibrate", epilog=fidelity_cmd.CALIBRATE_EPILOG)(fidelity_cmd.calibrate_command)
app.command("sweep", epilog=whatif_cmd.SWEEP_EPILOG)(whatif_cmd.sweep_command)
app.command("pareto", epilog=whatif_cmd.PARETO_EPILOG)(whatif_cmd.pareto_command)
app.command("launch", epilog=launch_cmd.EPILOG)(launch_cmd.launch_command)
app.command("check", epilog=check_cmd.EPILOG)(check_cmd.check_command)
app.command("report", epilog=report_cmd.EPILOG)(report_cmd.report_command)
app.command("trace", epilog=trace_cmd.EPILOG)(trace_cmd.trace_command)
