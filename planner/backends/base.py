"""Solver backends with one status vocabulary and capabilities declared as data."""

from __future__ import annotations

import enum
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from planner.errors import InputError

if TYPE_CHECKING:
    from constraints.model import LinearModel


class Status(str, enum.Enum):
    OPTIMAL = "optimal"
    FEASIBLE = "feasible"          # a solution, optimality not proven (gap reported)
    INFEASIBLE = "infeasible"
    TIME_LIMIT = "time_limit"      # no solution found within the limit; feasibility not decided
    INTERRUPTED = "interrupted"    # Ctrl-C before a solution; nothing proven
    UNKNOWN = "unknown"            # the solver ended without an answer (any status we do not map)


HAS_SOLUTION = frozenset({Status.OPTIMAL, Status.FEASIBLE})


class PhaseInterrupted(KeyboardInterrupt):
    """A Ctrl-C in a later phase of the exhaustive oracle's ranking (``rank``), its earlier
    phases decided: ``answer`` is the rank as those phases leave it (status, (row, replicas)
    chosen, served share per slot, each finished phase's value), ``phase`` the one it stopped
    in. Still a KeyboardInterrupt: a caller that does not read it stops as on any Ctrl-C."""

    def __init__(self, answer: tuple[Status, list[tuple[int, int]], np.ndarray, dict[str, float]], phase: str
                 ) -> None:
        super().__init__(phase)
        self.answer = answer
        self.phase = phase

OPTIMAL_GAP = 1e-9
"""Relative gap at or under which an answer is the proven optimum: the rounding of an exact
solve (mip_rel_gap 0). An answer a backend stopped at a gap target (``solve(..., gap=...)``)
above it is ``FEASIBLE`` with its gap and bound, never ``OPTIMAL``."""


def relative_gap(value: float, bound: float) -> float:
    """How far an answer's objective ``value`` may be from the optimum, given a proven
    ``bound`` on it, as a share of the value: |value - bound| / |value|."""
    return abs(value - bound) / max(abs(value), 1e-12)


def at_gap(status: Status, gap: float, reached: float | None) -> Status:
    """``status`` as reported under a gap target ``gap``: a solver's OPTIMAL is FEASIBLE where
    the gap it ``reached`` (None: it states no bound) is above OPTIMAL_GAP, for with a target
    it stops once within it, short of a proven optimum."""
    if status == Status.OPTIMAL and gap and (reached is None or reached > OPTIMAL_GAP):
        return Status.FEASIBLE
    return status


class Feature(str, enum.Enum):
    LINEAR_MODEL = "solves the linear/integer model of constraints/"
    INTEGER = "integer and binary variables"
    TIME_LIMIT = "honours a time limit"
    PROVEN_GAP = "reports a proven optimality gap"
    INDEPENDENT_ORACLE = "evaluates the physics directly, no constraint model"


@dataclass(frozen=True)
class Solution:
    status: Status
    values: np.ndarray | None      # one value per model variable (None for the oracle)
    picks: tuple[int, ...] | None = None     # chosen candidate row per slot (the oracle sets them directly)
    replicas: tuple[int, ...] | None = None
    gap: float | None = None       # relative, proven (0 when optimal)
    seconds: float = 0.0
    bound: float | None = None     # the solver's proven bound on the objective, in the model's units (None: none given)


class Backend(Protocol):
    name: str
    features: frozenset[Feature]

    def solve(self, f: Any, time_limit: float, seed: int = 0, gap: float = 0.0) -> Solution:
        """Solve formulation ``f`` within ``time_limit`` seconds, stopping once the answer is
        proven within ``gap`` (relative) of the optimum; 0: to the proven optimum."""
        ...


def incremental(f: Any, key: str, translate: Callable[[LinearModel], tuple[Any, list]],
                add_row: Callable[[Any, list, LinearModel, int], None],
                add_var: Callable[[Any, list, LinearModel, int], None] | None = None) -> tuple[Any, list]:
    """The solver model of formulation ``f``, translated once and then extended with the
    variables and rows added since (the lazy configuration limits' binaries and rows, the
    ranking's no-good cuts): ``add_var(model, vars, linear_model, i)`` and
    ``add_row(model, vars, linear_model, k)``."""
    cache = f.__dict__.setdefault(key, {})
    if "model" not in cache:
        t0 = time.perf_counter()
        cache["model"], cache["vars"] = translate(f.model)
        cache["rows"], cache["columns"] = len(f.model.rows), len(f.model.vars)
        cache["translate_seconds"] = time.perf_counter() - t0     # read by benchmarks/solver_speed.py
    if cache["columns"] < len(f.model.vars):
        if add_var is None:
            raise ValueError(f"backend model {key} cannot take new variables")
        for i in range(cache["columns"], len(f.model.vars)):
            add_var(cache["model"], cache["vars"], f.model, i)
        cache["columns"] = len(f.model.vars)
    for k in range(cache["rows"], len(f.model.rows)):
        add_row(cache["model"], cache["vars"], f.model, k)
    cache["rows"] = len(f.model.rows)
    return cache["model"], cache["vars"]


@dataclass(frozen=True)
class Entry:
    """A backend in the registry: its name, where its class lives, and what it is (the CLI's help)."""

    name: str
    module: str
    cls: str
    about: str


REGISTRY: tuple[Entry, ...] = (
    Entry("cpsat", "planner.backends.cpsat", "CpSatBackend", "OR-Tools CP-SAT, integer units"),
    Entry("milp", "planner.backends.milp", "MilpBackend", "PuLP + CBC"),
    Entry("highs", "planner.backends.highs", "HighsBackend", "HiGHS (highspy), in-process"),
    Entry("exhaustive", "planner.backends.exhaustive", "ExhaustiveBackend", "the independent oracle, by "
          "enumeration: small instances only"),
)
"""The one list of backends: get_backend, the CLI's choices and help, the sweep schema and
the tests read it (docs/architecture.md, "a backend")."""

BACKENDS: tuple[str, ...] = tuple(e.name for e in REGISTRY)


def _make(name: str) -> Backend:
    entry = next(e for e in REGISTRY if e.name == name)
    return getattr(importlib.import_module(entry.module), entry.cls)()


def get_backend(name: str, requires: frozenset[Feature] = frozenset()) -> Backend:
    if name not in BACKENDS:
        raise InputError("unknown backend", path="--backend", value=name, accepted=", ".join(BACKENDS))
    b = _make(name)
    missing = requires - b.features
    if missing:
        able = [n for n in BACKENDS if requires <= _make(n).features]
        raise InputError(f"backend {name} cannot {', '.join(sorted(f.value for f in missing))}",
                         path="--backend", value=name, accepted=", ".join(able))
    return b
