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
    variable: bool = False   # the value is the launch script's $MODEL, written unquoted as "$MODEL"


MODEL_VARIABLE = "MODEL"
"""The launch script's variable holding the checkpoint served (planner/launch/scripts.py)."""
