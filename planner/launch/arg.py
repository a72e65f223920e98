"""One flag of a generated command: the flag, its value (None for a boolean flag) and where
the value came from. Shared by the launch commands (scripts.py) and the benchmark commands
(bench.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Arg:
    flag: str
    value: Any          # None: a boolean flag
    why: str
