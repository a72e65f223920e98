"""The console script's first module, importing nothing heavy: Ctrl-C while the planner is
still importing (numpy, pydantic, typer, the solvers: about half a second) exits 130 with one
line, as Ctrl-C does everywhere else (docs/exit-codes.md), never with a traceback."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    try:
        from planner.cli.root import main as run
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    run(argv)
