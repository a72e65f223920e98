"""A solver-neutral linear/integer model: variables, named rows, one objective.

Each quantity has a dimension; the integer unit of each dimension is chosen once, here,
for solvers that need integers (CP-SAT). Float solvers ignore the units.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Sense = Literal["<=", ">=", "=="]

UNITS: dict[str, float] = {
    "count": 1.0,           # binaries, replicas, GPUs
    "bytes": 1.0,
    "seconds": 1e-12,       # picoseconds: a 20 ms TPOT is 2e10 units
    "usd_per_hour": 1e-6,
    "usd": 1e-6,            # dollars over a schedule's cycle (constraints/schedule.py)
    "usd_per_million_tokens": 1e-9,
    "tokens_per_s": 1e-6,
    "clients": 1e-6,        # a closed loop's requests in flight (fractional at capacity: Little's law)
    "watts": 1e-3,
    "nodes": 1.0,
    "share": 1e-9,          # a share of a demand served (objective served_demand)
}
"""Integer unit of each dimension (CP-SAT). Rounding is conservative (docs/formulation.md)."""


@dataclass(slots=True)         # a fleet's model holds a million of each: no per-object dict
class Var:
    name: str
    lb: float
    ub: float
    integer: bool
    dimension: str = "count"


@dataclass(slots=True)
class Row:
    name: str
    family: str
    coeffs: dict[int, float]
    sense: Sense
    rhs: float
    dimension: str


@dataclass
class LinearModel:
    vars: list[Var] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    objective: dict[int, float] = field(default_factory=dict)
    objective_sense: Literal["min", "max"] = "min"
    objective_dimension: str = "count"
    objective_name: str = ""

    def var(self, name: str, lb: float, ub: float, *, integer: bool, dimension: str = "count") -> int:
        if not (ub < float("inf")):
            raise ValueError(f"variable {name} has no finite upper bound")
        self.vars.append(Var(name, float(lb), float(ub), integer, dimension))
        return len(self.vars) - 1

    def var_block(self, names: list[str], lb: float, ub: np.ndarray, *, integer: bool, dimension: str = "count"
                  ) -> np.ndarray:
        """``var`` for each of ``names`` in turn (upper bounds ``ub``), at once: their indices."""
        bounds = np.asarray(ub, dtype=float)
        bad = np.flatnonzero(~(bounds < float("inf")))
        if len(bad):
            raise ValueError(f"variable {names[int(bad[0])]} has no finite upper bound")
        first, low = len(self.vars), float(lb)
        self.vars.extend([Var(n, low, u, integer, dimension) for n, u in zip(names, bounds.tolist())])
        return np.arange(first, len(self.vars), dtype=np.int64)

    def row(self, name: str, family: str, coeffs: dict[int, float], sense: Sense, rhs: float, dimension: str) -> None:
        self.rows.append(Row(name, family, {k: float(v) for k, v in coeffs.items() if v != 0.0}, sense, float(rhs),
                             dimension))

    def in_units(self, coeffs: dict[int, float], dimension: str, units: dict[str, float]) -> dict[int, float]:
        """Coefficients of a row (or the objective) of ``dimension`` counted in ``units``: a
        continuous variable of the row's own dimension already counts in those units; every
        other term is divided by the dimension's unit. Backends round or condition from here."""
        unit = units[dimension]
        return {i: (a if (not self.vars[i].integer and self.vars[i].dimension == dimension) else a / unit)
                for i, a in coeffs.items()}

    def objective_at(self, values: Sequence[float] | np.ndarray | Mapping[int, float]) -> float:
        """The objective at ``values`` (the model's units): one per variable, or a mapping of
        variable to value where a variable missing is 0 (a start)."""
        if isinstance(values, Mapping):
            return float(sum(a * float(values.get(i, 0.0)) for i, a in self.objective.items()))
        return float(sum(a * float(values[i]) for i, a in self.objective.items()))

    def holds(self, values: Sequence[float], rel: float) -> bool:
        """Every bound and row holds at ``values`` (one per variable, the model's units) within
        ``rel`` of its right-hand side (at least 1)."""
        for v, x in zip(self.vars, values):
            if x < v.lb - rel * max(1.0, abs(v.lb)) or x > v.ub + rel * max(1.0, abs(v.ub)):
                return False
        for r in self.rows:
            lhs, tol = sum(a * values[i] for i, a in r.coeffs.items()), rel * max(1.0, abs(r.rhs))
            if (r.sense != ">=" and lhs > r.rhs + tol) or (r.sense != "<=" and lhs < r.rhs - tol):
                return False
        return True

    def families(self) -> list[str]:
        return sorted({r.family for r in self.rows})
