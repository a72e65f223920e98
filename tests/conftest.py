import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def pytest_terminal_summary(terminalreporter):
    """The fuzzer's case counts (tests/test_fuzz.py), when it ran."""
    fuzz = sys.modules.get("test_fuzz")
    counts = getattr(fuzz, "COUNTS", None)
    if counts:
        terminalreporter.write_sep("-", "fuzzer cases (tests/test_fuzz.py)")
        for key in sorted(counts):
            terminalreporter.write_line(f"{counts[key]:>7,}  {key}")
