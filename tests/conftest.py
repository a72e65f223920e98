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
