"""What every command shares: error handling, JSON output, atomic writes."""

from __future__ import annotations

import enum
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer
import yaml

from planner.errors import InputError, PlannerError
from planner.plan.result import PlanResult
from planner.yamlio import dump_json, load_json, load_yaml, reset_reads, staged_outputs, write_atomically

T = TypeVar("T")

EXIT_INTERNAL = 3
"""An unexpected exception: a bug in the planner (docs/exit-codes.md)."""

DEBUG = False
"""Set by the global --debug flag: unexpected exceptions keep their traceback."""


def choices(name: str, values: tuple[str, ...]) -> type[enum.Enum]:
    """A str enum for a typed option: the help lists the choices and completion offers them."""
    return enum.Enum(name, {v: v for v in values}, type=str)  # type: ignore[return-value]


def error_fields(exc: BaseException, exit_code: int) -> dict[str, Any]:
    """The fields of an error message, for the JSON form of it (--json): the same as the
    human line, which is ``message`` rendered with its place, value and what is accepted."""
    out: dict[str, Any] = {"error": type(exc).__name__, "exit_code": exit_code}
    if isinstance(exc, InputError):
        out.update(message=exc.message, file=exc.file, line=exc.line, path=exc.path,
                   value=exc.value if isinstance(exc.value, (str, int, float, bool)) or exc.value is None
                   else repr(exc.value), accepted=exc.accepted)
    else:
        out["message"] = " ".join(str(exc).split())[:300]
    return out


def _fail(exc: BaseException, human: str, exit_code: int, as_json: bool) -> typer.Exit:
    typer.echo(human, err=True)
    if as_json:
        fields = error_fields(exc, exit_code)
        fields["text"] = human
        sys.stdout.write(json.dumps(fields, indent=2, sort_keys=True, default=str) + "\n")
    return typer.Exit(exit_code)


def guarded(fn: Callable[[], T], as_json: bool = False) -> T:
    """Run ``fn`` as one run of the planner: user errors print one located message on
    stderr and exit 2; Ctrl-C exits 130; any other exception is a bug, reported on one line
    with exit 3 (its traceback with --debug). With ``as_json`` the error is also written to
    stdout as a JSON object with the message's fields (file, line, path, value, accepted)."""
    reset_reads()
    try:
        with staged_outputs():         # every file the command writes, written at its end or not at all
            return fn()
    except PlannerError as exc:
        raise _fail(exc, f"error: {exc}", exc.exit_code, as_json) from None
    except KeyboardInterrupt as exc:
        raise _fail(exc, "interrupted", 130, as_json) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:
        if interrupted(exc):
            raise _fail(exc, "interrupted", 130, as_json) from None
        if DEBUG:
            raise
        text = " ".join(str(exc).split())[:300]
        raise _fail(exc, f"internal error (a bug in the planner): {type(exc).__name__}: {text}; "
                         "rerun with 'planner --debug ...' for the traceback", EXIT_INTERNAL, as_json) from None


def interrupted(exc: BaseException) -> bool:
    """Whether a Ctrl-C caused ``exc``: a KeyboardInterrupt among its causes, as when it lands
    in the initialisation of an extension module imported lazily (OR-Tools' CP-SAT helper when
    the first solve starts), which pybind11 reports as ImportError("initialization failed")
    raised from it."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


MAX_PLAN_FILE_BYTES = 64 * 1024 * 1024
"""Largest plan or fleet file read back (64 MiB): a thousand-workload fleet is a few MiB."""


def read_result(path: Path) -> PlanResult:
    """A plan result from the JSON (or YAML) that 'planner plan --output' wrote."""
    name = str(path)
    # bounded and strict: a regular file of at most MAX_PLAN_FILE_BYTES (not /dev/zero, not a FIFO),
    # JSON nested no deeper than its parser recurses, YAML without anchors or aliases
    data = (load_json(path, MAX_PLAN_FILE_BYTES, "plan file") if path.suffix == ".json"
            else load_yaml(path, max_bytes=MAX_PLAN_FILE_BYTES).data)
    try:
        if not isinstance(data, dict) or "plans" not in data:
            raise InputError("not a plan file: no 'plans' (write one with 'planner plan --output FILE.json' or "
                             "'planner fleet --output FILE.json')", file=name)
        result = PlanResult.from_dict(data)
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise InputError(f"not a plan file of this planner version: {type(exc).__name__}: {exc}", file=name) from None
    for i, p in enumerate(result.plans):
        for key in ("tp", "pp", "ep", "replicas", "gpus", "batch", "rank"):
            v = getattr(p, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InputError("not a plan this planner wrote", file=name, path=f"plans[{i}].{key}", value=v,
                                 accepted="an integer >= 1")
        if p.role not in ("aggregated", "prefill", "decode"):
            raise InputError("not a plan this planner wrote", file=name, path=f"plans[{i}].role", value=p.role,
                             accepted="aggregated, prefill, decode")
    return result


@contextmanager
def about(path: Path, plan_file: bool = False) -> Iterator[None]:
    """Errors in what a command makes of a file's content (a launch script, a report, a check
    of a plan file; a trace's window) name the file: an unlocated InputError raised inside is
    placed in ``path``; one about a command-line option (``--out``, ``--rank``) stays on its
    option. With ``plan_file``, a value of the wrong kind deep in a hand-edited plan file (a
    list for a number, a missing key of a free-form figure) is the file's fault, as it is
    when ``read_result`` meets one: exit 2 naming the file, not an internal error."""
    try:
        yield
    except InputError as exc:
        if exc.file is None and not (exc.path or "").startswith("--"):
            raise exc.located(file=str(path)) from None
        raise
    except (TypeError, KeyError, ValueError, AttributeError, IndexError, ZeroDivisionError, OverflowError) as exc:
        if not plan_file:
            raise
        raise InputError(f"the plan file holds a value this planner does not write ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:160]})", file=str(path),
                         accepted="a plan or fleet file as 'planner plan --output' or 'planner fleet --output' "
                                  "writes it") from None


def without_timings(result: PlanResult) -> None:
    """--reproducible: the same input gives byte-identical output, no seconds anywhere; on the
    result itself, so its JSON, the text rendered from it and any report all come without them."""
    result.solve_seconds = None
    for p in result.phases:
        p.seconds = None
    for u in result.unfinished:
        u.seconds = None


def check_time_limit(seconds: float, gap: float = 0.0) -> None:
    """--time-limit: a finite number of seconds, at most a day (planner/plan/solve.py check_run);
    --gap: a fraction in [0, 1) (check_gap)."""
    from planner.plan.solve import check_gap, check_run  # the solve stage loads the solvers: not for every command

    check_run(seconds)
    check_gap(gap)


TIME_LIMIT_HELP = ("seconds for all solves together: the answer's solve may use all of it; the what-ifs (the "
                   "simulator's check, marginal values, disaggregation verdicts, relaxations) share what it leaves and "
                   "say which they did not finish (docs/whatif.md, 'One time limit')")
"""The --time-limit help of `plan` and `fleet` (planner/whatif/budget.py)."""
GAP_HELP = ("stop each solve once its answer is proven within this relative gap of the best bound, a fraction "
            "0 <= G < 1 (0.005: within 0.5 %); the answer is then 'feasible' with its gap, not 'optimal'. "
            "0 (default): to the proven optimum. The exhaustive backend ignores it (exact)")


def write_result(output: Path, data: dict[str, Any], read: Path) -> None:
    """--output: the result as JSON (FILE.json) or YAML (FILE.yaml), never over ``read``."""
    text = dump_json(data) if output.suffix == ".json" else yaml.safe_dump(json.loads(dump_json(data)),
                                                                          sort_keys=True)
    write_atomically(output, text, protected=(read,), option="--output")


def emit(text: str) -> None:
    sys.stdout.write(text)


class Progress:
    """A progress line on stderr for work that lasts more than ``after`` seconds: the label and
    the seconds elapsed, redrawn twice a second, erased at the end. Only on a terminal and
    never with --json (the caller passes ``enabled=False``): stdout is never touched."""

    def __init__(self, label: str, enabled: bool = True, after: float = 1.0, stream: Any = None) -> None:
        self.label, self.after = label, after
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and (stream is not None or self.stream.isatty())
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self.shown = False

    def _run(self) -> None:
        start = time.monotonic()
        if self._done.wait(self.after):
            return
        while not self._done.is_set():
            self.stream.write(f"\r{self.label}... {time.monotonic() - start:.0f} s")
            self.stream.flush()
            self.shown = True
            self._done.wait(0.5)

    def __enter__(self) -> Progress:
        if self.enabled:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
            if self.shown:
                self.stream.write("\r" + " " * (len(self.label) + 12) + "\r")
                self.stream.flush()
