"""What every command shares: error handling, JSON output, atomic writes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from planner.errors import PlannerError

T = TypeVar("T")


def guarded(fn: Callable[[], T]) -> T:
    """Run ``fn``; user errors print one located message on stderr and exit 2."""
    try:
        return fn()
    except PlannerError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, allow_nan=False, default=_default) + "\n"


def _default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def emit(text: str) -> None:
    sys.stdout.write(text)
