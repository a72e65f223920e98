"""Solver backends with one status vocabulary and capabilities declared as data."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from planner.errors import InputError


class Status(str, enum.Enum):
    OPTIMAL = "optimal"
    FEASIBLE = "feasible"          # a solution, optimality not proven (gap reported)
    INFEASIBLE = "infeasible"
    TIME_LIMIT = "time_limit"      # no solution found within the limit; feasibility not decided
    INTERRUPTED = "interrupted"    # Ctrl-C before a solution; nothing proven
    UNKNOWN = "unknown"            # the solver ended without an answer (any status we do not map)


HAS_SOLUTION = frozenset({Status.OPTIMAL, Status.FEASIBLE})


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
    pick: int | None = None        # chosen candidate row (the oracle sets it directly)
    replicas: int | None = None
    gap: float | None = None       # relative, proven (0 when optimal)
    seconds: float = 0.0


def incremental(f, key: str, translate, add_row):
    """The solver model of formulation ``f``, translated once and then extended with the
    rows added since (the ranking's no-good cuts): ``add_row(model, vars, linear_model, k)``."""
    cache = f.__dict__.setdefault(key, {})
    if "model" not in cache:
        cache["model"], cache["vars"] = translate(f.model)
        cache["rows"] = len(f.model.rows)
    for k in range(cache["rows"], len(f.model.rows)):
        add_row(cache["model"], cache["vars"], f.model, k)
    cache["rows"] = len(f.model.rows)
    return cache["model"], cache["vars"]


def get_backend(name: str, requires: frozenset[Feature] = frozenset()):
    from planner.backends.cpsat import CpSatBackend
    from planner.backends.exhaustive import ExhaustiveBackend
    from planner.backends.highs import HighsBackend
    from planner.backends.milp import MilpBackend

    backends = {b.name: b for b in (CpSatBackend(), MilpBackend(), HighsBackend(), ExhaustiveBackend())}
    if name not in backends:
        raise InputError("unknown backend", path="--backend", value=name, accepted=", ".join(backends))
    b = backends[name]
    missing = requires - b.features
    if missing:
        able = [n for n, other in backends.items() if requires <= other.features]
        raise InputError(f"backend {name} cannot {', '.join(sorted(f.value for f in missing))}",
                         path="--backend", value=name, accepted=", ".join(able))
    return b
