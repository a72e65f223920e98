import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

# A test run started as a background job of a shell without job control (`sh -c 'pytest' &`,
# a script's `cmd &`) inherits SIGINT ignored, and so does every process it starts: the tests
# that send Ctrl-C to a planner (tests/test_signals.py, test_hostile.py, test_review_findings.py)
# would then see it run to exit 0, and a Ctrl-C held by the sweep's executor would be raised
# into an ignored signal. The suite runs with Python's own Ctrl-C, as a terminal starts it
# (a handled signal is reset to the default in the processes it starts).
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_terminal_summary(terminalreporter):
    """The fuzzer's case counts (tests/test_fuzz.py), when it ran."""
    fuzz = sys.modules.get("test_fuzz")
    counts = getattr(fuzz, "COUNTS", None)
    if counts:
        terminalreporter.write_sep("-", "fuzzer cases (tests/test_fuzz.py)")
        for key in sorted(counts):
            terminalreporter.write_line(f"{counts[key]:>7,}  {key}")


LONGEST_FIRST = ("test_metamorphic.py", "test_plan_random.py", "test_validation.py", "test_fuzz.py",
                 "test_hostile_surfaces.py", "test_validation_rows.py", "test_prefix_cache.py", "test_relax.py",
                 "test_sweep.py", "test_k8s.py", "test_fleet.py", "test_schedule.py")
"""The files that take longest (``--durations``: each holds a property, a fuzzer, a calibration
or a shared solve of a minute or more), in that order, run before the others. The suite is
spread over two workers a file at a time (pyproject.toml: ``--dist loadfile``, so a file's
module fixtures are built once, and a test that reads what the tests before it in its file
recorded sees all of it); a long file begun last would leave one worker idle at the end, so
the long ones start first and the many short files even out the two workers. Without
``-n`` only the order changes; the order within a file is kept."""


def pytest_collection_modifyitems(items):
    """The files of ``LONGEST_FIRST`` first, in its order; the rest in collection order."""
    rank = {name: k for k, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FIRST)))
