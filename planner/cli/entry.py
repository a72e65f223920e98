"""The console script's first module, importing nothing heavy: Ctrl-C while the planner is
still importing (numpy, pydantic, typer, the solvers: about half a second) exits 130 with one
line, as Ctrl-C does everywhere else (docs/exit-codes.md), never with a traceback."""

from __future__ import annotations

import os
import signal
import sys


def _interrupted_while_importing(signum: int, frame: object) -> None:
    """Nothing is written yet, so end at once: a KeyboardInterrupt raised here could land inside a
    callback (importlib's module-lock weakref callback) where Python prints it as "Exception
    ignored" with a traceback and carries on with the command."""
    os.write(2, b"interrupted\n")
    os._exit(130)


def main(argv: list[str] | None = None) -> None:
    try:
        previous = signal.signal(signal.SIGINT, _interrupted_while_importing)
    except ValueError:              # not the main thread: signals are not ours to handle
        previous = None
    try:
        from planner.cli.root import main as run
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    if previous is not None:
        signal.signal(signal.SIGINT, previous)
    run(argv)
