"""A slot's rows of configuration (planner/candidates/table.py): the batch levels searched and
the helpers that place a batch or a quantization scheme on configurations and keep one row per
distinct configuration."""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from planner.physics.space import Configs


def levels_to(max_batch: int) -> list[int]:
    """The batch levels searched by default: the powers of two up to ``max_batch``."""
    out, b = [], 1
    while b <= max_batch:
        out.append(b)
        b *= 2
    return out


def with_scheme(c: Configs, scheme: np.ndarray) -> Configs:
    return Configs(**{**{f.name: getattr(c, f.name) for f in fields(c)}, "scheme": scheme.astype(np.int64)})


def dedupe(c: Configs) -> Configs:
    """One row per distinct configuration (a degraded mode can map two schemes onto one)."""
    if not len(c):
        return c
    key = np.stack([c.gpu, c.scheme, c.kv, c.tp, c.pp, c.ep]).T
    _, first = np.unique(key, axis=0, return_index=True)
    return c.take(np.sort(first))


def with_batch(c: Configs, batch: np.ndarray) -> Configs:
    return Configs(**{**{f.name: getattr(c, f.name) for f in fields(c)}, "batch": batch})


def unique_rows(rows: np.ndarray, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (row, batch) pairs, sorted by row, then batch."""
    order = np.lexsort((batch, rows))
    r, b = rows[order].astype(np.int64), batch[order]
    new = np.ones(len(r), dtype=bool)
    new[1:] = (r[1:] != r[:-1]) | (b[1:] != b[:-1])
    return r[new], b[new]
