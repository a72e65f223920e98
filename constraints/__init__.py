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
    change,
    choice,
    communication,
    demand,
    inventory,
    latency,
    memory,
    objective,
    power,
    prune,
    roofline,
)
from constraints.incumbent import Incumbent as Incumbent
from constraints.incumbent import incumbent as incumbent
from constraints.model import LinearModel
from planner.candidates.table import Candidates

SCREENING = (memory, latency)          # rows that involve one configuration's candidates only
FAMILIES = (roofline, communication, latency, demand, inventory, budget, power, change)
PER_DEPLOYMENT = (roofline, communication, latency)
"""Families whose scalars are the one chosen deployment's latency terms: a slot that splits
its traffic over several deployments has no one latency, and no objective reads them."""


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
    alive: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # candidates with a variable
    nodes: dict[int, int] = field(default_factory=dict)    # node variable per GPU index (max_nodes)
    hint: dict[int, float] | None = None   # a starting assignment for the next solve (constraints.incumbent)
    size: dict[str, int] = field(default_factory=dict)     # candidates and columns before/after each reduction
    covering: bool = False   # a fleet: integer replicas covering demands (CP-SAT then keeps the full LP relaxation)

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
        cut = self.alive[np.isin(c.config[self.alive], ids)]
        label = "; ".join(c.label(j, batch=False) for j in rows)
        self.model.row(f"exclude[{label}]", "ranking", {int(self.x[j]): 1.0 for j in cut}, "<=",
                       float(len(rows) - 1), "count")


def build(cands: Candidates, ranks: int = 1) -> Formulation:
    """The model of a candidate table, reduced before any variable is made: screening fixes
    the candidates that break a single-configuration row on their own, pruning drops the
    dominated ones (safe for ``ranks`` ranked plans, constraints/prune.py)."""
    f = Formulation(cands=cands, covering=cands.split)
    f.replicas = choice.needs_replicas(cands)
    screen(f)
    screened = len(f.alive)
    f.alive = f.alive[~prune.pruned(f, max(int(ranks), 1))[f.alive]]
    choice.add(f)
    for family in FAMILIES:
        if not (cands.split and family in PER_DEPLOYMENT):
            family.add(f)
    objective.add(f)
    objective.add_bounds(f)
    f.size = {"candidates": len(cands), "after_screening": screened, "after_pruning": len(f.alive),
              "variables": len(f.model.vars), "rows": len(f.model.rows),
              "nonzeros": sum(len(r.coeffs) for r in f.model.rows)}
    return f


def screen(f: Formulation) -> None:
    """Keep the candidates that meet every single-configuration row on its own.

    Those rows (memory per configuration, each SLO per configuration, docs/formulation.md
    section 3) read sum_b (value_cb - limit) x_cb <= 0: with one candidate chosen, x_j = 1
    is feasible only if its coefficient is <= 0. The others are fixed to 0, so they get no
    variable, and then no such row can bind: the rows are not built. Solver presolve would
    make the same deduction, after paying to read them."""
    dead = ~f.cands.role_allowed()     # roles the slot's disaggregation mode rules out
    for family in SCREENING:
        dead |= family.screened(f.cands)
    f.alive = np.nonzero(~dead)[0]
