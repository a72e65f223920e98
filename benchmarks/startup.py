"""Start-up of the command line (issue 26 item 4), before (a git revision with every command
imported up front, default e0f71d0) and after, in one run: wall seconds of a fresh
interpreter doing ``import planner.cli.root``, ``planner --version``, ``planner -h`` and
``planner trace -h`` (a command importing its own module only), the best of ``--repeat``.

    python benchmarks/startup.py [--baseline-rev REV] [--repeat N]

Wall seconds on this machine (noisy, shared: take the best and the ratios)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "import planner.cli.root": ["-c", "import planner.cli.root"],
    "planner --version": ["-m", "planner", "--version"],
    "planner -h": ["-m", "planner", "-h"],
    "planner trace -h": ["-m", "planner", "trace", "-h"],
}


def best(root: Path, argv: list[str], repeat: int) -> float:
    out = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run([sys.executable, *argv], cwd=root, capture_output=True, check=True)
        out = min(out, time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline-rev", default="e0f71d0")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    bare = best(ROOT, ["-c", "pass"], args.repeat)
    print(f"a bare interpreter: {bare:.3f} s\n")
    print("| command | before s | after s | ratio |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(base), args.baseline_rev], cwd=ROOT,
                       check=True)
        try:
            for name, argv in CASES.items():
                before = best(base, argv, args.repeat)
                after = best(ROOT, argv, args.repeat)
                print(f"| {name} | {before:.3f} | {after:.3f} | {after / before:.2f}x |", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)


if __name__ == "__main__":
    main()
