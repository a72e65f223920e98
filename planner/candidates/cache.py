"""The physics of each distinct case computed once (issue 26): a cache keyed by the physics
inputs, shared by the workloads of a fleet and, when the caller keeps one across builds, by
the scenarios of a sweep or the periods of a schedule.

A *case* is one row of configuration (GPU, formats, layout, batch, lengths: the columns of
``Configs``) under one set of physics inputs: the model, the GPU table, the assumptions and,
for the load model, the workload's length distributions, arrival variability, latency targets,
utilisation ceiling, KV link and role (``physics_key``, ``load_key``). Every physics function
cached here computes each row on its own (the vectorised bisections and fixed points keep
each configuration's iterates its own: planner/physics/numerics.py), so a row computed among
other rows is the same, bit for bit, as computed alone: the cache changes no figure
(tests/test_candidate_cache.py; the goldens).

Fifty workloads of the fleet benchmark hold about 2.7 rows per distinct case, a thousand
about 36 (benchmarks/fleet_scale.py)."""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar, cast

import numpy as np

from planner.physics.space import Configs

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


def digest(obj: Any) -> str:
    """A content digest of physics inputs (a model, a GPU table, assumptions): equal objects
    that pickle alike share it; anything else only misses the cache, never hits a wrong entry."""
    return hashlib.sha256(pickle.dumps(obj, protocol=5)).hexdigest()


def row_matrix(c: Configs) -> np.ndarray:
    """The configuration columns of every row, as one float matrix (rows x columns)."""
    return np.stack([np.asarray(getattr(c, f.name), dtype=np.float64) for f in fields(c)], axis=1)


_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5,
                 0x94D049BB133111EB, 0xBF58476D1CE4E5B9, 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53],
                dtype=np.uint64)


def row_hashes(m: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row of a float matrix (its bit patterns mixed): equal rows, equal
    hashes. Two different rows may share one (never seen, but possible): ``PhysicsCache.rows``
    compares the rows themselves before reusing a result."""
    bits = np.ascontiguousarray(m).view(np.uint64)
    h = np.zeros(len(m), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(bits.shape[1]):
            h = (h ^ bits[:, j]) * _MIX[j % len(_MIX)]
            h ^= h >> np.uint64(29)
    return h


Source = tuple[np.ndarray | None, Any]
"""Rows of a result: (their positions in it, None for all of them in order; where their
arrays come from: a dataclass of per-row arrays, or a ``(_Columns, positions)`` pair)."""


class _Gather:
    """A dataclass of per-row arrays whose fields are gathered from their sources (the
    cache's stores, other results) on first read, and kept: a table holds only the physics
    it reads, not a copy of every field (``scatter``). Pickled (a sweep's worker) or passed
    to ``dataclasses.replace`` it is the plain dataclass, every field read."""

    def __getattr__(self, name: str) -> Any:
        plan = self.__dict__.get("_plan")
        if plan is None or name not in plan[1]:
            raise AttributeError(name)
        value = _read(plan, name)
        object.__setattr__(self, name, value)
        return value

    def __reduce__(self) -> tuple[Any, ...]:
        kind = _kind(self)
        return (_plain, (kind, {f.name: getattr(self, f.name) for f in fields(kind)}))


def _kind(obj: Any) -> type:
    """The dataclass of a result, gathered or plain."""
    return type(obj).__mro__[2] if isinstance(obj, _Gather) else type(obj)


def _plain(kind: type, values: dict[str, Any]) -> Any:
    return kind(**values)


_LAZY: dict[type, type] = {}


def _lazy(kind: type, n: int, sources: list[Source], missing: float) -> Any:
    """An instance of ``kind`` (a lazy subclass of it) whose fields are gathered from
    ``sources`` on first read."""
    if kind not in _LAZY:
        _LAZY[kind] = type(f"Gathered{kind.__name__}", (_Gather, kind), {"__module__": __name__})
    out: Any = object.__new__(_LAZY[kind])
    names = {f.name for f in fields(kind)}
    object.__setattr__(out, "_plan", (kind, names, n, sources, missing))
    return out


def _sources(index: np.ndarray | None, part: Any) -> list[Source]:
    """``part``'s sources, placed at rows ``index`` of a whole (None: all, in order)."""
    plan = part.__dict__.get("_plan") if isinstance(part, _Gather) else None
    if plan is None:
        return [(index, part)]
    return [(j if index is None else (index if j is None else index[j]), src) for j, src in plan[3]]


def _part(src: Any, name: str) -> Any:
    """Field ``name`` of a source: an array, or a dict of arrays."""
    if isinstance(src, tuple):
        columns, pos = src
        if name in columns.dicts:
            return {k: a for (f, k), a in columns.arrays.items() if f == name}, pos
        return columns.arrays[(name, None)], pos
    return getattr(src, name), None


def _read(plan: tuple[type, set[str], int, list[Source], float], name: str) -> Any:
    """Field ``name`` of a gathered result, its arrays read row by row from the sources (the
    dtype that holds every source's; a dict's key a source lacks is ``missing`` on its rows)."""
    _, _, n, sources, missing = plan
    parts = [(index, *_part(src, name)) for index, src in sources]
    if isinstance(parts[0][1], Mapping):
        def one(key: Any) -> np.ndarray:
            whole = np.full(n, missing)
            for index, values, pos in parts:
                if key in values:
                    rows = values[key] if pos is None else values[key][pos]
                    if index is None:
                        whole[:] = rows
                    else:
                        whole[index] = rows
            return whole
        return _Keyed(list(dict.fromkeys(k for _, values, _ in parts for k in values)), one)
    whole = np.empty(n, dtype=np.result_type(*[np.asarray(a).dtype for _, a, _ in parts]))
    for index, a, pos in parts:
        rows = np.asarray(a) if pos is None else a[pos]
        if index is None:
            whole[:] = rows
        else:
            whole[index] = rows
    return whole


def scatter(n: int, parts: list[tuple[np.ndarray, T]], missing: float = np.inf) -> T:
    """One dataclass of per-row arrays of length ``n`` from ``parts`` (rows ``index`` of it,
    the part's arrays): each field in the type that holds every part's values; a dict field's
    key that a part lacks is ``missing`` on its rows. Its fields are read from the parts (and
    from the cache's stores behind them) when first used, not copied here."""
    sources = [s for index, part in parts for s in _sources(index, part)]
    return cast(T, _lazy(_kind(parts[0][1]), n, sources, missing))


def rows_at(result: T, pos: np.ndarray) -> T:
    """A plain copy of ``result`` (a dataclass of per-row arrays, gathered or plain; no dict
    fields) at rows ``pos``."""
    kind = _kind(result)
    return cast(T, kind(**{f.name: getattr(result, f.name)[pos] for f in fields(kind)}))


def grouped(key: np.ndarray, n: int) -> list[np.ndarray]:
    """For each value 0..n-1 of ``key`` (integers), the positions holding it, in order: one
    sort instead of a pass over every position per value (a fleet's rows by workload)."""
    order = np.argsort(key, kind="stable")
    bounds = np.searchsorted(key[order], np.arange(n + 1))
    return [order[bounds[v]:bounds[v + 1]] for v in range(n)]


def picked(result: T, rows: Iterable[int]) -> T:
    """``result`` read at ``rows`` (an answer's deployments): a field of a gathered result not
    read yet gives each of those rows from its source, not a gathered copy of every row (a
    thousand workloads' table: 3.8 M rows, 29 MiB a field, some thirty fields read to describe
    an answer). Any other read of a field (another row, a slice, arithmetic on the whole) reads
    it whole, as ``result``'s own attribute does, and gets the same figures. A plain result is
    itself."""
    if not isinstance(result, _Gather) or "_plan" not in result.__dict__:
        return result
    return cast(T, _Picked(result, np.unique(np.fromiter(rows, dtype=np.int64))))


class _Picked:
    """A gathered result as ``picked`` reads it: each row of ``rows`` located in its source once."""

    def __init__(self, of: _Gather, rows: np.ndarray) -> None:
        self._of = of
        self._at: dict[int, tuple[int, int]] = {}       # row -> (source, its position there)
        for s, (index, _) in enumerate(of.__dict__["_plan"][3]):
            local = rows if index is None else np.flatnonzero(np.isin(index, rows))
            whole = rows if index is None else index[local]
            self._at.update(zip(whole.tolist(), zip([s] * len(local), local.tolist())))

    def __getattr__(self, name: str) -> Any:
        of = self._of
        plan = of.__dict__["_plan"]
        if name in plan[1] and name in of.__dict__:
            return of.__dict__[name]           # read already: the whole array
        if name not in plan[1]:
            value = getattr(type(of), name, None)
            if callable(value) and not isinstance(value, type):
                return value.__get__(self)     # a method (RowLoad.get): reading this view's fields
            return getattr(of, name)
        _, src = plan[3][0]
        if isinstance(_part(src, name)[0], Mapping):
            return _PickedKeys(self, name, getattr(of, name))
        return _Field(self, name, None, lambda: getattr(of, name))

    def row(self, name: str, key: Any, j: int, whole: Callable[[], Any]) -> Any:
        """Field ``name`` (its ``key`` for a dict field) at row j: from its source when j is one
        of the rows, else from the whole field."""
        at = self._at.get(j)
        if at is None:
            return whole()[j]
        _, src = self._of.__dict__["_plan"][3][at[0]]
        values, pos = _part(src, name)
        if key is not None:
            if key not in values:
                return np.float64(self._of.__dict__["_plan"][4])
            values = values[key]
        return values[at[1] if pos is None else pos[at[1]]]


class _PickedKeys(Mapping):
    """A dict field (the load model's statistics) as ``picked`` reads it."""

    def __init__(self, of: _Picked, name: str, whole: Mapping) -> None:
        self._of, self._name, self._whole = of, name, whole

    def __getitem__(self, key: Any) -> Any:
        arrays = getattr(self._whole, "_arrays", self._whole)
        if key in arrays:
            return arrays[key]
        if key not in getattr(self._whole, "_known", arrays):
            raise KeyError(key)
        return _Field(self._of, self._name, key, lambda: self._whole[key])

    def __iter__(self) -> Iterator[Any]:
        return iter(self._whole)

    def __len__(self) -> int:
        return len(self._whole)


class _Field:
    """One field of a ``picked`` result: ``field[j]`` (j an integer, or a list of them) reads
    rows; anything else is the whole field's (numpy reads it through ``__array__``)."""

    def __init__(self, of: _Picked, name: str, key: Any, whole: Callable[[], Any]) -> None:
        self._of, self._name, self._key, self._whole = of, name, key, whole

    def __getitem__(self, j: Any) -> Any:
        if isinstance(j, (int, np.integer)) and not isinstance(j, bool):
            return self._of.row(self._name, self._key, int(j), self._whole)
        if isinstance(j, list) and all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in j):
            return np.array([self._of.row(self._name, self._key, int(k), self._whole) for k in j])
        return self._whole()[j]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self._whole(), dtype=dtype)

    def __len__(self) -> int:
        return len(self._whole())

    def __iter__(self) -> Iterator[Any]:
        return iter(self._whole())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._whole(), name)


for _op in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "and", "or", "xor", "radd", "rsub", "rmul",
            "rtruediv", "rfloordiv", "rmod", "rpow", "rand", "ror", "rxor", "lt", "le", "eq", "ne", "gt", "ge",
            "neg", "pos", "abs", "invert", "bool", "matmul", "rmatmul"):
    setattr(_Field, f"__{_op}__", lambda self, *a, _op=_op: getattr(self._whole(), f"__{_op}__")(*a))
_Field.__hash__ = None  # type: ignore[assignment]      # like an array


class _Keyed(Mapping):
    """A dict field of a gathered result (the load model's statistics), each key's array read
    from the sources when first used: a fleet's table reads five of a dozen, at 8 bytes a row
    each. Pickled, a plain dict."""

    def __init__(self, keys: list[Any], read: Callable[[Any], np.ndarray]) -> None:
        self._keys, self._known, self._readkey = keys, set(keys), read
        self._arrays: dict[Any, np.ndarray] = {}

    def __getitem__(self, key: Any) -> np.ndarray:
        if key not in self._arrays:
            if key not in self._known:
                raise KeyError(key)
            self._arrays[key] = self._readkey(key)
        return self._arrays[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self.items()),))


class _Columns:
    """A growing store of per-row results (a dataclass of arrays, dict fields per key):
    appended in place with room doubled when full, so adding rows costs their own size."""

    def __init__(self, first: Any) -> None:
        self.kind = type(first)
        self.rows = 0
        self.arrays: dict[tuple[str, Any], np.ndarray] = {}
        self.dicts = {f.name for f in fields(first) if isinstance(getattr(first, f.name), dict)}
        self.append(first)

    def _flat(self, obj: Any) -> dict[tuple[str, Any], np.ndarray]:
        out: dict[tuple[str, Any], np.ndarray] = {}
        for f in fields(obj):
            v = getattr(obj, f.name)
            if f.name in self.dicts:
                out |= {(f.name, k): np.asarray(a) for k, a in v.items()}
            else:
                out[(f.name, None)] = np.asarray(v)
        return out

    def append(self, obj: Any) -> None:
        flat = self._flat(obj)
        n = len(next(iter(flat.values())))
        if self.arrays and set(flat) != set(self.arrays):
            raise ValueError("rows of one physics key must hold the same fields")
        for key, a in flat.items():
            store = self.arrays.get(key)
            if store is None or len(store) < self.rows + n:
                grown = np.empty((max(2 * (self.rows + n), 1024), *a.shape[1:]), dtype=a.dtype)
                if store is not None:
                    grown[:self.rows] = store[:self.rows]
                store = self.arrays[key] = grown
            store[self.rows:self.rows + n] = a
        self.rows += n


@dataclass
class _Entry:
    hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))   # sorted
    where: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))     # position of each hash's row
    matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))               # rows computed, in order
    columns: _Columns | None = None


@dataclass
class PhysicsCache:
    """Per physics key, every row computed so far and its result (a dataclass of per-row
    arrays: an ``Evaluation``, a ``RowLoad``), and whole results memoised by key
    (``memo``). ``computed`` and ``reused`` count rows."""

    entries: dict[Hashable, _Entry] = field(default_factory=dict)
    memos: dict[Hashable, Any] = field(default_factory=dict)
    computed: int = 0
    reused: int = 0

    def rows(self, key: Hashable, configs: Configs, compute: Callable[[np.ndarray], T]) -> T:
        """The result for every row of ``configs`` under physics ``key``: ``compute(index)``
        (the result of rows ``configs.take(index)``) runs once, on the rows never seen
        under this key; the others are read back."""
        return self.rows_together([(key, configs)], lambda fresh: [compute(fresh[0])])[0]

    def rows_together(self, items: list[tuple[Hashable, Configs]], compute: Callable[[list[np.ndarray]], list[T]]
                      ) -> list[T]:
        """``rows`` of several physics keys whose rows one call computes together:
        ``compute(fresh)`` (fresh: per item, the index of its rows never seen under its key)
        returns each item's result on those rows; each row's result is its own, so the same
        as computed under its key alone (the load model of a fleet's workloads of one model,
        planner/candidates/load.py ``row_loads``). The items' keys are distinct."""
        looks = [self._look(key, configs) for key, configs in items]
        work = any(len(fresh) or not rows for fresh, rows, _ in looks)
        parts = compute([fresh for fresh, _, _ in looks]) if work else []
        out = []
        for k, ((key, _), (fresh, rows, store)) in enumerate(zip(items, looks)):
            if store is None:       # no rows, or two rows share a hash: this call's rows, computed afresh
                out.append(parts[k])
                continue
            e = self.entries[key]
            pos, uniq_new, pos_new, matrix = store
            if len(fresh):
                if e.columns is None:
                    e.columns = _Columns(parts[k])
                else:
                    e.columns.append(parts[k])
                e.matrix = matrix
                order = np.argsort(np.concatenate([e.hashes, uniq_new]), kind="stable")
                e.hashes = np.concatenate([e.hashes, uniq_new])[order]
                e.where = np.concatenate([e.where, pos_new])[order]
            self.computed += len(fresh)
            self.reused += rows - len(fresh)
            assert e.columns is not None
            out.append(cast(T, _lazy(e.columns.kind, rows, [(None, (e.columns, pos))], np.inf)))
        return out

    def _look(self, key: Hashable, configs: Configs) -> tuple[np.ndarray, int, Any]:
        """(the rows of ``configs`` never seen under ``key``, how many rows, what storing their
        result needs: None where two rows share a hash, and every row is computed)."""
        m = row_matrix(configs)
        if not len(m):
            return np.zeros(0, dtype=np.int64), 0, None
        e = self.entries.setdefault(key, _Entry(matrix=np.zeros((0, m.shape[1]))))
        h = row_hashes(m)
        uniq, first, inverse = np.unique(h, return_index=True, return_inverse=True)
        at = np.minimum(np.searchsorted(e.hashes, uniq), max(len(e.hashes) - 1, 0))
        known = (e.hashes[at] == uniq) if len(e.hashes) else np.zeros(len(uniq), dtype=bool)
        pos_u = np.where(known, e.where[at] if len(e.where) else 0, -1)
        fresh = first[~known]
        pos_u[~known] = e.matrix.shape[0] + np.arange(len(fresh))
        pos = pos_u[inverse]
        matrix = np.concatenate([e.matrix, m[fresh]]) if len(fresh) else e.matrix
        if not np.array_equal(matrix[pos], m):
            return np.arange(len(m)), len(m), None
        return fresh.astype(np.int64), len(m), (pos, uniq[~known], pos_u[~known], matrix)

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, once per key."""
        return self.memo_together([key], lambda keys: [compute()])[0]

    def memo_together(self, keys: list[K], compute: Callable[[list[K]], list[T]]) -> list[T]:
        """``memo`` of several keys whose values one call computes: ``compute(missing)`` returns the
        value of each key not yet held, in order (the configurations of a model's slots,
        planner/candidates/table.py ``_slot_bases``)."""
        missing = list(dict.fromkeys(k for k in keys if k not in self.memos))
        if missing:
            self.memos.update(zip(missing, compute(missing)))
        return [self.memos[k] for k in keys]
