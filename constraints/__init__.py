"""The formulation: one module per constraint family, each adding named linear rows to a
solver-neutral model (docs/formulation.md). Families know nothing of the CLI or solvers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from constraints import (
    budget, choice, communication, demand, inventory, latency, memory, objective, power, roofline,
)
from constraints.model import LinearModel

SCREENING = (memory, latency)          # rows that involve one configuration's candidates only
FAMILIES = (roofline, communication, latency, demand, inventory, budget, power)


@dataclass
class Formulation:
    """The model plus the map back from variables to candidates (to invert a solution)."""

    problem: object        # planner.plan.candidates.Problem
    cands: object          # planner.plan.candidates.Candidates
    model: LinearModel = field(default_factory=LinearModel)
    x: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))   # var index per candidate
    y: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))   # replicas var per candidate
    replicas: bool = False   # False: one replica (y is x)
    scalars: dict[str, int] = field(default_factory=dict)   # named continuous variables
    excluded: set[int] = field(default_factory=set)         # configuration ids cut by ranking
    alive: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # candidates not fixed to 0

    def config_groups(self) -> list[np.ndarray]:
        """Candidate rows grouped by configuration (same layout, different batch)."""
        cfg = self.cands.config  # type: ignore[attr-defined]
        order = np.argsort(cfg, kind="stable")
        _, starts = np.unique(cfg[order], return_index=True)
        return np.split(order, starts[1:])

    def exclude_configuration(self, config_id: int, label: str) -> None:
        """A no-good cut: the next plan must differ in GPU, layout or precision."""
        self.excluded.add(config_id)
        rows = np.nonzero(self.cands.config == config_id)[0]  # type: ignore[attr-defined]
        self.model.row(f"exclude[{label}]", "ranking", {int(self.x[j]): 1.0 for j in rows}, "<=", 0.0, "count")


def build(problem, cands) -> Formulation:
    f = Formulation(problem=problem, cands=cands)
    choice.add(f)
    for family in SCREENING:
        family.add_screening(f)
    screen(f)
    choice.add_replicas(f)
    for family in FAMILIES:
        family.add(f)
    objective.add(f)
    return f


def screen(f: Formulation) -> None:
    """Fix to 0 every x that violates a single-configuration row on its own.

    Those rows read sum_b (value_cb - limit) x_cb <= 0: with one candidate chosen, x_j = 1
    is feasible only if its coefficient is <= 0. Solver presolve makes the same deduction;
    doing it here keeps the aggregated rows to the surviving candidates
    (docs/formulation.md section 3)."""
    xs = {int(v): j for j, v in enumerate(f.x)}
    dead = np.zeros(len(f.x), dtype=bool)
    for r in f.model.rows:
        if r.family in ("memory", "latency") and r.sense == "<=" and r.rhs == 0.0 and set(r.coeffs) <= xs.keys():
            for i, a in r.coeffs.items():
                if a > 0:
                    dead[xs[i]] = True
    for j in np.nonzero(dead)[0]:
        f.model.vars[int(f.x[j])].ub = 0.0
    fixed = {int(f.x[j]) for j in np.nonzero(dead)[0]}
    for r in f.model.rows:          # a variable fixed to 0 contributes nothing: drop its terms
        if fixed & r.coeffs.keys():
            r.coeffs = {i: a for i, a in r.coeffs.items() if i not in fixed}
    f.alive = np.nonzero(~dead)[0]
