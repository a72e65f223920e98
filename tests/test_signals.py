"""Ctrl-C at any moment is one line and exit 130, never a traceback (issue 23 item 10): while
the planner is still importing, and while a sweep's worker processes are still starting."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


INTERRUPTED = (130, -signal.SIGINT)
"""Exit 130, or ended by SIGINT itself (what a shell also shows as 130): Python may re-raise
the signal at exit when it arrived inside an import."""


def _interrupt(args: list[str], after: float, loaded: str | None = None) -> tuple[int, str]:
    """Start the planner, wait ``after`` seconds (and until a shared library whose path holds
    ``loaded`` is mapped: the planner's own imports have begun), send Ctrl-C."""
    proc = subprocess.Popen([sys.executable, "-m", "planner", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    time.sleep(after)
    maps = Path(f"/proc/{proc.pid}/maps")
    deadline = time.monotonic() + 30
    while loaded and proc.poll() is None and time.monotonic() < deadline:
        try:
            if loaded in maps.read_text():
                break
        except OSError:
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    return proc.returncode, stderr


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc to see the imports begin")
@pytest.mark.parametrize("after", [0.0, 0.05, 0.2])
def test_ctrl_c_while_importing(after):
    """The imports (numpy first, imported by the planner's modules, not by Python's start-up)
    take about half a second: a signal inside them, or after, ends the run quietly."""
    rc, stderr = _interrupt(["plan", "instances/chat_llama70b.yaml", "--no-simulate"], after, loaded="numpy")
    assert "Traceback" not in stderr, stderr
    assert rc in INTERRUPTED, (rc, stderr)


@pytest.mark.parametrize("after", [0.8, 2.0])
def test_ctrl_c_while_sweep_workers_start(after):
    """Spawned workers import the planner before their first task: none prints a traceback."""
    rc, stderr = _interrupt(["sweep", "instances/sweeps/demand_prices.yaml", "--executor", "process",
                             "--workers", "2"], after)
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert rc in INTERRUPTED, (rc, stderr)


def test_a_ctrl_c_while_a_worker_starts_is_held_then_raised():
    """The sweep's process pool starts its workers with Ctrl-C held (executors._ctrl_c_held): a
    SIGINT then is not lost (an ignored one was, and the sweep ran on to exit 0) but raised
    once the workers are started, and a process started meanwhile inherits SIGINT blocked,
    so that it prints no traceback while it imports."""
    import os

    from planner.whatif.executors import _ctrl_c_held
    probe = "import signal; print(signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []))"
    reached = False
    with pytest.raises(KeyboardInterrupt):
        with _ctrl_c_held():
            os.kill(os.getpid(), signal.SIGINT)
            child = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
            reached = True
    assert reached and child.stdout.strip() == "True"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])


def test_an_import_a_ctrl_c_cut_short_is_an_interruption():
    """A Ctrl-C inside an extension's initialisation (OR-Tools' CP-SAT helper, imported when the
    first solve starts) comes out as ImportError("initialization failed") raised from the
    KeyboardInterrupt: exit 130 and "interrupted", not exit 3 as a bug."""
    import typer

    from planner.cli.common import guarded

    def run() -> int:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise ImportError("initialization failed") from exc

    with pytest.raises(typer.Exit) as e:
        guarded(run)
    assert e.value.exit_code == 130
