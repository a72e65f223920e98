"""What every command shares: error handling, JSON output, atomic writes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from planner.errors import PlannerError
from planner.yamlio import reset_reads

T = TypeVar("T")

EXIT_INTERNAL = 3
"""An unexpected exception: a bug in the planner (docs/exit-codes.md)."""

DEBUG = False
"""Set by the global --debug flag: unexpected exceptions keep their traceback."""


def guarded(fn: Callable[[], T]) -> T:
    """Run ``fn`` as one run of the planner: user errors print one located message on
    stderr and exit 2; Ctrl-C exits 130; any other exception is a bug, reported on one line
    with exit 3 (its traceback with --debug)."""
    reset_reads()
    try:
        return fn()
    except PlannerError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:
        if DEBUG:
            raise
        text = " ".join(str(exc).split())[:300]
        typer.echo(f"internal error (a bug in the planner): {type(exc).__name__}: {text}; "
                   "rerun with 'planner --debug ...' for the traceback", err=True)
        raise typer.Exit(EXIT_INTERNAL) from None


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, allow_nan=False, default=_default) + "\n"


def _default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def emit(text: str) -> None:
    sys.stdout.write(text)
