"""A solver-neutral linear/integer model: variables, named rows, one objective.

Each quantity has a dimension; the integer unit of each dimension is chosen once, here,
for solvers that need integers (CP-SAT). Float solvers ignore the units.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, ItemsView, Iterator, Mapping, Sequence, ValuesView
from dataclasses import dataclass, field
from typing import Literal, overload

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


@dataclass(slots=True)
class Var:
    """One variable as read back from the model (``LinearModel.vars[i]``)."""

    name: str
    lb: float
    ub: float
    integer: bool
    dimension: str = "count"


Names = Callable[[np.ndarray], list[str]]
"""The names of a block of variables, made when read: the names at the given positions in it."""


class Vars(Sequence[Var]):
    """The model's variables, held column by column (bounds, integrality, dimension), their
    names made when read: a fleet's model holds a million, and no solver on its path reads a
    name (``vars[i]`` is a ``Var``, made on each read; ``lb``, ``ub``, ``integer`` are arrays)."""

    def __init__(self) -> None:
        self._n = 0
        self._lb, self._ub = np.zeros(0), np.zeros(0)
        self._int, self._dim = np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int16)
        self._dims: list[str] = []
        self._starts: list[int] = []          # first variable of each block of names, in order
        self._names: list[tuple[int, list[str] | Names]] = []   # (block size, its names)
        self._cols: tuple[list[float], list[float], list[bool], list[str]] | None = None

    def add(self, names: list[str] | Names, lb: float, ub: np.ndarray, integer: bool, dimension: str) -> np.ndarray:
        """Variables of bounds ``lb`` and ``ub`` (one each) and ``names`` (a list, or made when
        read): their indices."""
        k = len(ub)
        if self._n + k > len(self._lb):
            size = max(2 * (self._n + k), 64)
            for name in ("_lb", "_ub", "_int", "_dim"):
                old = getattr(self, name)
                grown = np.zeros(size, dtype=old.dtype)
                grown[:self._n] = old[:self._n]
                setattr(self, name, grown)
        if dimension not in self._dims:
            self._dims.append(dimension)
        at = slice(self._n, self._n + k)
        self._lb[at], self._ub[at], self._int[at], self._dim[at] = lb, ub, integer, self._dims.index(dimension)
        if k:
            self._starts.append(self._n)
            self._names.append((k, names))
        self._n += k
        return np.arange(at.start, at.stop, dtype=np.int64)

    @property
    def lb(self) -> np.ndarray:
        return self._lb[:self._n]

    @property
    def ub(self) -> np.ndarray:
        return self._ub[:self._n]

    @property
    def integer(self) -> np.ndarray:
        return self._int[:self._n]

    def dimension_is(self, dimension: str, index: np.ndarray) -> np.ndarray:
        """Per variable of ``index``: its dimension is ``dimension``."""
        if dimension not in self._dims:
            return np.zeros(len(index), dtype=bool)
        return self._dim[index] == self._dims.index(dimension)

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> Var: ...

    @overload
    def __getitem__(self, i: slice) -> list[Var]: ...

    def __getitem__(self, i: int | slice) -> Var | list[Var]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self._n))]
        i = int(i)
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        return self._var(i, self.name(i))

    def name(self, i: int) -> str:
        """Variable i's name (its block's names made on the first read)."""
        b = bisect.bisect_right(self._starts, i) - 1
        return self._block_names(b)[i - self._starts[b]]

    def __iter__(self) -> Iterator[Var]:
        i = 0
        for b in range(len(self._names)):
            for name in self._block_names(b):
                yield self._var(i, name)
                i += 1

    def _block_names(self, b: int) -> list[str]:
        """Block b's names, made on the first read and kept."""
        size, names = self._names[b]
        if not isinstance(names, list):
            names = names(np.arange(size))
            self._names[b] = (size, names)
        return names

    def bounds(self, i: int) -> tuple[float, float, bool, str]:
        """Variable i's lower and upper bounds, integrality and dimension (its name not made)."""
        return float(self._lb[i]), float(self._ub[i]), bool(self._int[i]), self._dims[int(self._dim[i])]

    def columns(self) -> tuple[list[float], list[float], list[bool], list[str]]:
        """(lower bounds, upper bounds, integrality, dimensions), one entry per variable, as Python
        lists kept until a variable is added (bounds never change once added): for a backend that
        reads the variables one at a time (cpsat), without a ``Var`` or a name per read."""
        if self._cols is None or len(self._cols[0]) != self._n:
            self._cols = (self.lb.tolist(), self.ub.tolist(), self.integer.tolist(),
                          [self._dims[d] for d in self._dim[:self._n].tolist()])
        return self._cols

    def units(self, table: Mapping[str, float]) -> np.ndarray:
        """Per variable: 1 for an integer one, else the unit ``table`` gives its dimension."""
        per = np.array([table[d] for d in self._dims] or [1.0])
        return np.where(self.integer, 1.0, per[self._dim[:self._n]])

    def _var(self, i: int, name: str) -> Var:
        return Var(name, float(self._lb[i]), float(self._ub[i]), bool(self._int[i]), self._dims[int(self._dim[i])])


class Coeffs(Mapping[int, float]):
    """A row's (or the objective's) coefficients, variable -> coefficient in the order given,
    held as two arrays (``index``, ``value``): a fleet's model holds a million terms, which a
    dict would hold as an entry, an int and a float each. Read like a dict."""

    __slots__ = ("index", "value", "_order")

    def __init__(self, index: np.ndarray, value: np.ndarray) -> None:
        self.index = np.asarray(index, dtype=np.int64)
        self.value = np.asarray(value, dtype=np.float64)
        self._order: np.ndarray | None = None

    @classmethod
    def of(cls, coeffs: Mapping[int, float]) -> Coeffs:
        """``coeffs`` as arrays (itself when it is already)."""
        if isinstance(coeffs, Coeffs):
            return coeffs
        return cls(np.fromiter(coeffs.keys(), dtype=np.int64, count=len(coeffs)),
                   np.fromiter(coeffs.values(), dtype=np.float64, count=len(coeffs)))

    def __len__(self) -> int:
        return len(self.index)

    def __iter__(self) -> Iterator[int]:
        return iter(self.index.tolist())

    def __getitem__(self, key: int) -> float:
        if self._order is None:
            self._order = np.argsort(self.index, kind="stable")
        at = int(np.searchsorted(self.index, key, sorter=self._order))
        if at < len(self.index) and self.index[self._order[at]] == key:
            return float(self.value[self._order[at]])
        raise KeyError(key)

    def values(self) -> ValuesView[float]:
        return _Values(self)

    def dot(self, at: Sequence[float] | np.ndarray) -> float:
        """The products ``a * at[i]`` added left to right from 0.0, bit for bit (a cumulative sum
        is sequential; + 0.0 turns its -0.0 into 0.0 + -0.0's 0.0), vectorised (a fleet's
        objective has a million terms). That is Python 3.11's ``sum``; 3.12's compensates, so
        it is not the reference. Silent on inf - inf and overflow, as the Python loop is."""
        if not len(self.index):
            return 0.0
        with np.errstate(all="ignore"):
            return float(np.cumsum(self.value * np.asarray(at, dtype=np.float64)[self.index])[-1]) + 0.0

    def items(self) -> ItemsView[int, float]:
        return _Items(self)

    def __repr__(self) -> str:
        return f"Coeffs({dict(self.items())!r})"


class _Values(ValuesView[float]):
    _mapping: Coeffs

    def __iter__(self) -> Iterator[float]:
        return iter(self._mapping.value.tolist())


class _Items(ItemsView[int, float]):
    _mapping: Coeffs

    def __iter__(self) -> Iterator[tuple[int, float]]:
        return zip(self._mapping.index.tolist(), self._mapping.value.tolist())


@dataclass(slots=True)
class Row:
    name: str
    family: str
    coeffs: Coeffs
    sense: Sense
    rhs: float
    dimension: str


@dataclass
class LinearModel:
    vars: Vars = field(default_factory=Vars)
    rows: list[Row] = field(default_factory=list)
    objective: Mapping[int, float] = field(default_factory=dict)
    objective_sense: Literal["min", "max"] = "min"
    objective_dimension: str = "count"
    objective_name: str = ""

    def var(self, name: str, lb: float, ub: float, *, integer: bool, dimension: str = "count") -> int:
        if not (ub < float("inf")):
            raise ValueError(f"variable {name} has no finite upper bound")
        return int(self.vars.add([name], float(lb), np.array([float(ub)]), integer, dimension)[0])

    def var_block(self, names: list[str] | Names, lb: float, ub: np.ndarray, *, integer: bool,
                  dimension: str = "count") -> np.ndarray:
        """``var`` for each of ``names`` in turn (upper bounds ``ub``), at once: their indices.
        ``names``: a list, or made when read (``Names``)."""
        bounds = np.asarray(ub, dtype=float)
        bad = np.flatnonzero(~(bounds < float("inf")))
        if len(bad):
            k = int(bad[0])
            raise ValueError(f"variable {names[k] if isinstance(names, list) else names(bad[:1])[0]} has no "
                             "finite upper bound")
        return self.vars.add(names, float(lb), bounds, integer, dimension)

    def row(self, name: str, family: str, coeffs: Mapping[int, float], sense: Sense, rhs: float,
            dimension: str) -> None:
        c = Coeffs.of(coeffs)
        keep = c.value != 0.0
        self.rows.append(Row(name, family, c if keep.all() else Coeffs(c.index[keep], c.value[keep]), sense,
                             float(rhs), dimension))

    def in_units(self, coeffs: Mapping[int, float], dimension: str, units: dict[str, float]) -> dict[int, float]:
        """Coefficients of a row (or the objective) of ``dimension`` counted in ``units``: a
        continuous variable of the row's own dimension already counts in those units; every
        other term is divided by the dimension's unit. Backends round or condition from here."""
        c = Coeffs.of(coeffs)
        own = ~self.vars.integer[c.index] & self.vars.dimension_is(dimension, c.index)
        return dict(zip(c.index.tolist(), np.where(own, c.value, c.value / units[dimension]).tolist()))

    def objective_at(self, values: Sequence[float] | np.ndarray | Mapping[int, float]) -> float:
        """The objective at ``values`` (the model's units): one per variable, or a mapping of
        variable to value where a variable missing is 0 (a start)."""
        if isinstance(values, Mapping):
            return float(sum(a * float(values.get(i, 0.0)) for i, a in self.objective.items()))
        return Coeffs.of(self.objective).dot(values)

    def holds(self, values: Sequence[float], rel: float) -> bool:
        """Every bound and row holds at ``values`` (one per variable, the model's units) within
        ``rel`` of its right-hand side (at least 1)."""
        x, lb, ub = np.asarray(values, dtype=float), self.vars.lb, self.vars.ub
        n = min(len(x), len(lb))
        x, lb, ub = x[:n], lb[:n], ub[:n]
        if ((x < lb - rel * np.maximum(1.0, np.abs(lb))) | (x > ub + rel * np.maximum(1.0, np.abs(ub)))).any():
            return False
        for r in self.rows:
            lhs, tol = sum(a * values[i] for i, a in r.coeffs.items()), rel * max(1.0, abs(r.rhs))
            if (r.sense != ">=" and lhs > r.rhs + tol) or (r.sense != "<=" and lhs < r.rhs - tol):
                return False
        return True

    def families(self) -> list[str]:
        return sorted({r.family for r in self.rows})
