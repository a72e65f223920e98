"""Objectives (docs/formulation.md section 4), from the registry in
planner/candidates/objectives.py. The ratio objective $/token is linear here: with one
candidate chosen, its cost per million tokens C_j / THR_j is a constant per candidate
(exact); with a demand, the served tokens are fixed and $/token is $/hour / D."""

from __future__ import annotations

from typing import TYPE_CHECKING

from planner.candidates.objectives import OBJECTIVES

if TYPE_CHECKING:
    from constraints import Formulation


def add(f: Formulation) -> None:
    c, m = f.cands, f.model
    obj = OBJECTIVES[c.objective]
    t = obj.terms(c)
    coeffs: dict[int, float] = {}
    for j in f.alive:
        if t.x[j]:
            coeffs[int(f.x[j])] = coeffs.get(int(f.x[j]), 0.0) + float(t.x[j])
        if t.y[j]:
            coeffs[int(f.y[j])] = coeffs.get(int(f.y[j]), 0.0) + float(t.y[j])
    for name, a in t.scalars.items():
        for s in range(c.n_slots):
            coeffs[f.scalars[f.scalar_name(name, s)]] = a
    m.objective, m.objective_dimension, m.objective_sense, m.objective_name = coeffs, t.dimension, obj.sense, obj.name
