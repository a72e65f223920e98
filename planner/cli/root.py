"""Command-line interface: parses, calls the library, renders. Nothing else.

Each command's module (and the library under it: numpy, pydantic, the solvers) is imported
when that command runs (issue 26 item 4): ``planner -h`` lists the commands from their
docstrings read without importing them, and ``planner --version`` (planner/cli/entry.py)
imports nothing of the planner's."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from planner.cli.entry import version_text

# name: (module in planner/cli/, function, its epilog's name in the module or None), in help order
COMMANDS: dict[str, tuple[str, str, str | None]] = {
    "estimate": ("estimate_cmd", "estimate", "EPILOG"),
    "plan": ("plan_cmd", "plan_command", "EPILOG"),
    "fleet": ("fleet_cmd", "fleet_command", "EPILOG"),
    "schedule": ("schedule_cmd", "schedule_command", "EPILOG"),
    "schema": ("plan_cmd", "schema_command", None),
    "validate": ("fidelity_cmd", "validate_command", "VALIDATE_EPILOG"),
    "calibrate": ("fidelity_cmd", "calibrate_command", "CALIBRATE_EPILOG"),
    "sweep": ("whatif_cmd", "sweep_command", "SWEEP_EPILOG"),
    "pareto": ("whatif_cmd", "pareto_command", "PARETO_EPILOG"),
    "launch": ("launch_cmd", "launch_command", "EPILOG"),
    "check": ("check_cmd", "check_command", "EPILOG"),
    "report": ("report_cmd", "report_command", "EPILOG"),
    "trace": ("trace_cmd", "trace_command", "EPILOG"),
}

ON_IMPORTED: list[Callable[[], None]] = []
"""Called once a command's module is imported (planner/cli/entry.py: Ctrl-C is then the
command's to handle)."""


def load(name: str) -> Any:
    """Command ``name`` as a click command, its module imported."""
    module, function, epilog = COMMANDS[name]
    mod = importlib.import_module(f"planner.cli.{module}")
    sub = typer.Typer(pretty_exceptions_enable=False, rich_markup_mode=None, add_completion=False)
    sub.command(name, epilog=getattr(mod, epilog) if epilog else None)(getattr(mod, function))
    for hook in ON_IMPORTED:
        hook()
    return typer.main.get_command(sub)


def short_help(name: str, limit: int) -> str:
    """A command's line in ``planner -h``: its function's docstring as click shortens it, read
    from the module's source without importing it."""
    module, function, _ = COMMANDS[name]
    tree = ast.parse((Path(__file__).parent / f"{module}.py").read_text(encoding="utf-8"))
    doc = next((ast.get_docstring(f) for f in tree.body
                if isinstance(f, ast.FunctionDef) and f.name == function), None)
    return TyperCommand(name=name, help=doc).get_short_help_str(limit)


class _Lazy(TyperGroup):
    """The root group: a command's module is imported when the command is looked up to run."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in COMMANDS if n not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            self.commands[cmd_name] = load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = [(n, self.commands[n].get_short_help_str(limit) if n in self.commands else short_help(n, limit))
                for n in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    cls=_Lazy,
    name="planner",
    help="Plan LLM inference deployments: GPUs, parallelism, precision and batch, with costs.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)


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
    from planner.cli import common
    common.DEBUG = debug


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
            from planner.cli.common import dump_json
            sys.stdout.write(dump_json({"error": type(exc).__name__, "exit_code": exc.exit_code,
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
