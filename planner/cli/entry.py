"""The console script's first module, importing nothing heavy: Ctrl-C while the planner is
still importing (typer, then the command's module with numpy, pydantic and the library)
exits 130 with one line, as Ctrl-C does everywhere else (docs/exit-codes.md), never with a
traceback. ``planner --version`` is answered here, importing nothing of the planner's."""

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


def version_text() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return f"planner {version('llm-deploy-planner')}"
    except PackageNotFoundError:
        return "planner (not installed)"


VERSION_ONLY = {"--version", "-V", "--debug"}


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args and VERSION_ONLY.issuperset(args) and {"--version", "-V"} & set(args):
        sys.stdout.write(version_text() + "\n")      # nothing else to import
        sys.exit(0)
    try:
        previous = signal.signal(signal.SIGINT, _interrupted_while_importing)
    except ValueError:              # not the main thread: signals are not ours to handle
        previous = None
    try:
        from planner.cli import root
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    if previous is not None:        # the command's module is imported when it runs: until then, as above
        def restore() -> None:
            signal.signal(signal.SIGINT, previous)
        root.ON_IMPORTED.append(restore)
    root.main(argv)
