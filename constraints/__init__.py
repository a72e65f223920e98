"""The formulation: one module per constraint family, each adding named linear rows to a
solver-neutral model (docs/formulation.md). Families read the candidate table
(planner/candidates) and nothing else: no spec, no CLI, no solver.

The slot axis: every family works per slot (one deployment to choose per workload, later
per role) where its quantity is per slot (choice, latency, demand), and across all slots
where the limit is shared (inventory, budget, power). A single-model instance is one slot."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from constraints import (
    budget,
    choice,
    communication,
    demand,
    inventory,
    latency,
    memory,
    objective,
    power,
    roofline,
)
from constraints.model import LinearModel
from planner.candidates import Candidates

SCREENING = (memory, latency)          # rows that involve one configuration's candidates only
FAMILIES = (roofline, communication, latency, demand, inventory, budget, power)


@dataclass
class Formulation:
    """The model plus the map back from variables to candidates (to invert a solution)."""

    cands: Candidates
    model: LinearModel = field(default_factory=LinearModel)
    x: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))   # var index per candidate
    y: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))   # replicas var per candidate
    replicas: bool = False   # False: one replica per slot (y is x)
    scalars: dict[str, int] = field(default_factory=dict)   # named continuous variables
    excluded: list[tuple[int, ...]] = field(default_factory=list)  # configuration ids cut by ranking, per plan
    alive: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # candidates not fixed to 0

    def scalar_name(self, base: str, s: int) -> str:
        """Name of a per-slot scalar: ``tpot`` for one slot, ``tpot[slot=chat]`` for several."""
        return base if self.cands.n_slots == 1 else f"{base}[slot={self.cands.slot_names[s]}]"

    def alive_in(self, s: int) -> np.ndarray:
        return self.alive[self.cands.slot[self.alive] == s]

    def exclude(self, rows: list[int]) -> None:
        """A no-good cut on a plan (one chosen row per slot): the next plan must differ in
        some slot's GPU, layout or precision."""
        c = self.cands
        ids = tuple(int(c.config[j]) for j in rows)
        self.excluded.append(ids)
        cut = np.nonzero(np.isin(c.config, ids))[0]
        label = "; ".join(c.label(j, batch=False) for j in rows)
        self.model.row(f"exclude[{label}]", "ranking", {int(self.x[j]): 1.0 for j in cut}, "<=",
                       float(len(rows) - 1), "count")


def build(cands: Candidates) -> Formulation:
    f = Formulation(cands=cands)
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
