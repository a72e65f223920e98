"""Objectives (docs/formulation.md section 4), from the registry in
planner/candidates/objectives.py. The ratio objective $/token is linear here: with one
candidate chosen, its cost per million tokens C_j / THR_j is a constant per candidate
(exact); with a demand, the served tokens are fixed and $/token is $/hour / D."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from planner.candidates.objectives import OBJECTIVES

if TYPE_CHECKING:
    from constraints import Formulation


def add(f: Formulation) -> None:
    c, m = f.cands, f.model
    obj = OBJECTIVES[c.objective]
    coeffs = coefficients(f, c.objective)
    m.objective, m.objective_dimension, m.objective_sense, m.objective_name = (
        coeffs, obj.terms(c).dimension, obj.sense, obj.name)


def coefficients(f: Formulation, name: str) -> dict[int, float]:
    """The linear expression of objective ``name`` over the model's variables."""
    c = f.cands
    t = OBJECTIVES[name].terms(c)
    coeffs: dict[int, float] = {}
    for j in f.alive:
        if t.x[j]:
            coeffs[int(f.x[j])] = coeffs.get(int(f.x[j]), 0.0) + float(t.x[j])
        if t.y[j]:
            coeffs[int(f.y[j])] = coeffs.get(int(f.y[j]), 0.0) + float(t.y[j])
    for name, a in t.scalars.items():
        for s in range(c.n_slots):
            key = f.scalar_name(name, s)
            if key in f.scalars:
                coeffs[f.scalars[key]] = float(a[s]) if isinstance(a, np.ndarray) else a
    return coeffs


def add_bounds(f: Formulation) -> None:
    """A fleet's lexicographic phases: each earlier objective kept at the value it reached
    (within the tolerance the fleet driver chose, planner/fleet): sum <= bound when it was
    minimised, >= when maximised."""
    for name, bound in f.cands.bounds:
        obj = OBJECTIVES[name]
        f.model.row(f"keep[{name}]", "lexicographic", coefficients(f, name), "<=" if obj.sense == "min" else ">=",
                    bound, obj.terms(f.cands).dimension)
