"""The formulation: the solver-neutral model of a candidate table, reduced before any
variable is made (screening, pruning), with the map back from variables to candidates, and
the registry of constraint families (docs/formulation.md)."""

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
from constraints.model import LinearModel
from planner.candidates.cache import grouped
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
    cuts: tuple[frozenset[int], ...] = ()  # configuration ids of each earlier ranked answer (ranking)
    alive: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # candidates with a variable
    nodes: dict[int, int] = field(default_factory=dict)    # node variable per GPU index (max_nodes)
    hint: dict[int, float] | None = None   # a starting assignment for the next solve (constraints.incumbent)
    size: dict[str, int] = field(default_factory=dict)     # candidates and columns before/after each reduction
    covering: bool = False   # a fleet: integer replicas covering demands (CP-SAT then keeps the full LP relaxation)
    _by_slot: tuple[np.ndarray, np.ndarray, list[np.ndarray]] | None = field(
        default=None, init=False, repr=False, compare=False)

    def scalar_name(self, base: str, s: int) -> str:
        """Name of a per-slot scalar: ``tpot`` for one slot, ``tpot[slot=chat]`` for several."""
        return base if self.cands.n_slots == 1 else f"{base}[slot={self.cands.slot_names[s]}]"

    def alive_in(self, s: int) -> np.ndarray:
        """The candidates of slot s with a variable, in order (grouped once per ``alive``
        array: the families read each of a fleet's thousand slots)."""
        held = self._by_slot
        if held is None or held[0] is not self.alive or held[1] is not self.cands.slot:
            held = self._by_slot = (self.alive, self.cands.slot,
                                    grouped(self.cands.slot[self.alive], self.cands.n_slots))
        return self.alive[held[2][s]] if 0 <= s < len(held[2]) else self.alive[:0]

    def add_cut(self, ids: frozenset[int]) -> None:
        """A no-good cut on an earlier answer, the set S of configuration ids it uses (one per
        slot, or several when a slot splits its traffic): the next answer uses another set,

            sum_{j in S} x_j - sum_{j alive, not in S} x_j <= |S| - 1,

        summed over every batch level of each configuration (x binary here: a slot whose
        configuration count is enforced). An answer with exactly S violates it; one that drops
        a configuration of S or adds another meets it."""
        c = self.cands
        inside = np.isin(c.config[self.alive], list(ids))
        coeffs = {int(self.x[j]): 1.0 for j in self.alive[inside]}
        coeffs.update({int(self.x[j]): -1.0 for j in self.alive[~inside]})
        names = sorted({c.label(int(j), batch=False) for j in self.alive[inside]})
        self.model.row(f"exclude[{'; '.join(names)}]", "ranking", coeffs, "<=", float(len(ids) - 1), "count")


def build(cands: Candidates, cuts: tuple[frozenset[int], ...] = (), ranks: int = 1) -> Formulation:
    """The model of a candidate table, reduced before any variable is made: screening fixes
    the candidates that break a single-configuration row on their own (or an earlier phase's
    bound), pruning drops the dominated ones, and ``cuts`` exclude the earlier ranked answers.

    With one slot and one configuration per answer a cut fixes that configuration's rows to
    0 and pruning stays safe for one answer; otherwise each cut is a row (``add_cut``, every
    slot's configuration count enforced) and pruning is safe for ``len(cuts) + 1`` answers
    (constraints/prune.py: a row goes only when rows of that many other configurations
    dominate it, so one of them swaps in for it without repeating a cut answer). ``ranks``:
    prune safely for at least that many answers (benchmarks and tests compare the sizes)."""
    f = Formulation(cands=cands, covering=cands.split)
    f.replicas = choice.needs_replicas(cands)
    single = cands.n_slots == 1 and not cands.split
    if cuts and not single and cands.limited is not None:
        raise ValueError("a ranked answer's cut needs every slot's configuration count enforced (limited=None)")
    screen(f, frozenset().union(*cuts) if single and cuts else frozenset())
    screened = len(f.alive)
    f.alive = f.alive[~prune.pruned(f, max(ranks, 1 if single else len(cuts) + 1))[f.alive]]
    choice.add(f)
    for family in FAMILIES:
        if not (cands.split and family in PER_DEPLOYMENT):
            family.add(f)
    objective.add(f)
    objective.add_bounds(f)
    for ids in cuts if not single else ():
        f.add_cut(ids)
    f.cuts = tuple(cuts)
    f.size = {"candidates": len(cands), "after_screening": screened, "after_pruning": len(f.alive),
              "variables": len(f.model.vars), "rows": len(f.model.rows),
              "nonzeros": sum(len(r.coeffs) for r in f.model.rows)}
    return f


def screen(f: Formulation, cut: frozenset[int] = frozenset()) -> None:
    """Keep the candidates that meet every single-configuration row on its own.

    Those rows (memory per configuration, each SLO per configuration, docs/formulation.md
    section 3) read sum_b (value_cb - limit) x_cb <= 0: with one candidate chosen, x_j = 1
    is feasible only if its coefficient is <= 0. The others are fixed to 0, so they get no
    variable, and then no such row can bind: the rows are not built. Solver presolve would
    make the same deduction, after paying to read them."""
    dead = ~f.cands.role_allowed()     # roles the slot's disaggregation mode rules out
    for family in SCREENING:
        dead |= family.screened(f.cands)
    dead |= objective.screened(f.cands, f.replicas)
    if cut:
        dead |= np.isin(f.cands.config, list(cut))
    f.alive = np.nonzero(~dead)[0]
