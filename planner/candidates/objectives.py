"""The objective registry: each objective's sense, unit, label and how a plan's value and
the model's coefficients are computed, in one place (docs/formulation.md section 4).

The constraint families read ``coefficients``; results and explanations read ``value``,
``unit`` and ``scale``. The exhaustive oracle keeps its own, deliberately independent copy
(planner/backends/exhaustive.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from planner.candidates.table import Candidates, row_order
from planner.units import MS


@dataclass(frozen=True)
class Terms:
    """Objective coefficients: per chosen candidate (x), per replica (y) and per named
    scalar variable of the model, in ``dimension`` units."""

    x: np.ndarray
    y: np.ndarray
    scalars: dict[str, float | np.ndarray]   # one coefficient for every slot's scalar, or one per slot
    dimension: str


@dataclass(frozen=True)
class Objective:
    name: str
    sense: Literal["min", "max"]
    unit: str                      # what a person reads, e.g. "$ per million output tokens"
    scale: float                   # value x scale is in ``unit``
    batch_note: str                # why the batch is not larger when no constraint binds it
    per_replica: Callable[[Candidates], np.ndarray]   # value of one replica of each row
    scales_with_replicas: bool     # the plan's value is per_replica x replicas
    scalar: str | None = None      # the model's scalar variable this objective reads, if any
    dimension: str = "count"

    def value(self, c: Candidates, j: int, replicas: int) -> float:
        """The plan's objective value (in SI units) for ``replicas`` replicas of row j, with what
        the deployment pays whatever its count (a spot deployment's spares, ``fixed``)."""
        v = float(c.per_row(("per_replica", self.name), lambda: self.per_replica(c))[j])
        v = v * replicas if self.scales_with_replicas and self._replicated(c, j) else v
        return v + float(c.per_row(("fixed", self.name), lambda: self.fixed(c))[j]) if replicas > 0 else v

    def fixed(self, c: Candidates) -> np.ndarray:
        """Per row: the objective's part a deployment adds once, whatever its replica count: the
        $/hour of a spot deployment's spare replicas (and, priced per replica without a demand,
        their $ per million tokens); 0 for every other objective and row."""
        if self.name == "cost_per_hour":
            return np.nan_to_num(c.spare_cost, nan=0.0)
        if self.name == "cost_per_million_tokens":
            spares = c.spares if len(c.spares) else np.zeros(len(c))
            with np.errstate(invalid="ignore"):      # 0 spares x an infinite $/token (no throughput)
                per_token = np.nan_to_num(spares * c.cost_per_million_tokens, nan=0.0, posinf=0.0)
            return np.where(c.has_demand, np.nan_to_num(c.spare_cost, nan=0.0), per_token)
        return np.zeros(len(c))

    def _replicated(self, c: Candidates, j: int) -> bool:
        return self.name != "cost_per_million_tokens" or bool(c.has_demand[j])

    def terms(self, c: Candidates) -> Terms:
        zero = np.zeros(len(c))
        if self.name == "served_demand":
            return Terms(zero, zero, {"served": served_weights(c)}, self.dimension)
        if self.scalar is not None:
            return Terms(zero, zero, {self.scalar: 1.0}, self.dimension)
        v = np.nan_to_num(self.per_replica(c), nan=0.0, posinf=0.0)
        if self.name == "cost_per_million_tokens":
            # with a demand, $/token is $/hour over a fixed served rate: minimise $/hour
            # (per replica); without one, one replica is the plan and its $/token is exact
            on_y = c.has_demand
            return Terms(np.where(on_y, 0.0, v) + self.fixed(c),
                         np.where(on_y, np.nan_to_num(c.cost_per_hour, nan=0.0), 0.0), {},
                         "usd_per_hour" if on_y.any() else "usd_per_million_tokens")
        return Terms(self.fixed(c), v, {}, self.dimension)


SERVED_SCALE = 1000.0
"""The smallest workload weight counts 1000 per share served: CP-SAT rounds objective
coefficients to integers, and weights are then kept to 0.05 % (docs/fleet.md)."""


def served_weights(c: Candidates) -> np.ndarray:
    """Objective served_demand: per slot, its weight per share of its demand served, scaled."""
    w = np.asarray(c.weight, dtype=float)
    return SERVED_SCALE * w / w.min()


def _positions(c: Candidates) -> np.ndarray:
    """Objective order: each row's position in ``row_order`` per GPU, one sort per table and
    the views sharing its per-row values (``Candidates.per_row``; workload_order reads it too)."""
    return c.per_row(("per_replica", "order"), lambda: row_order(c).astype(float) * c.ev.gpus)


def _cost_per_million(c: Candidates) -> np.ndarray:
    return np.where(c.has_demand, c.cost_per_hour, c.cost_per_million_tokens)


OBJECTIVES: dict[str, Objective] = {o.name: o for o in (
    Objective("cost_per_million_tokens", "min", "$ per million output tokens", 1.0,
              "a larger batch is not cheaper per token within the targets", _cost_per_million, True,
              dimension="usd_per_million_tokens"),
    Objective("cost_per_hour", "min", "$/hour", 1.0, "a larger batch would not save a replica",
              lambda c: c.cost_per_hour, True, dimension="usd_per_hour"),
    Objective("tpot", "min", "ms TPOT", 1 / MS, "a larger batch would lengthen TPOT at capacity",
              lambda c: c.tpot, False, scalar="tpot", dimension="seconds"),
    Objective("ttft", "min", "ms TTFT", 1 / MS, "a larger batch would lengthen TTFT at capacity",
              lambda c: c.ttft, False, scalar="ttft", dimension="seconds"),
    Objective("throughput", "max", "output tokens/s", 1.0,
              "a larger batch would not add throughput within the limits",
              lambda c: c.tokens_per_s, True, dimension="tokens_per_s"),
    Objective("gpus", "min", "GPUs", 1.0, "a larger batch would not save a replica",
              lambda c: c.ev.gpus, True, dimension="count"),
    # internal: the smallest power cap that makes an instance feasible (planner/whatif/relax.py)
    Objective("power_w", "min", "W", 1.0, "a larger batch would not save a replica",
              lambda c: c.ev.power_w, True, dimension="watts"),
    # fleet objectives (planner/fleet, docs/fleet.md): values of scalar variables per slot
    Objective("served_demand", "max", "weighted share of demand served", 1.0,
              "a larger batch would not serve more within the limits", lambda c: np.full(len(c), np.nan), False,
              scalar="served", dimension="share"),
    Objective("change", "min", "GPUs started or stopped against the current fleet", 1.0,
              "a larger batch would not save a change", lambda c: np.full(len(c), np.nan), False,
              scalar="change", dimension="count"),
    # the last tie-break (docs/formulation.md section 4b): each chosen row's position in the documented order
    Objective("order", "min", "GPU-weighted position in the tie-break order", 1.0, "a larger batch ranks later in "
              "the tie-break order", _positions, True, dimension="count"),
    # the fleets' last tie-break: the same positions, the first of n workloads' weighted n, the last's 1
    Objective("workload_order", "min", "workload-weighted position in the tie-break order", 1.0,
              "a larger batch ranks later in the tie-break order",
              lambda c: _positions(c) * (c.n_slots - c.slot), True, dimension="count"),
)}

TIE_BREAK: tuple[str, ...] = ("gpus", "order", "workload_order")
"""The phases solved after the instance's objectives, each keeping every earlier one at its
optimum (docs/formulation.md section 4b): fewer GPUs, then the smallest GPU-weighted
position in ``row_order`` (each GPU counts the position of the row it runs: lower latency,
simpler layout, then names; with one deployment, the row first in the order). On replicas
like the objectives, so a split slot needs no choice binary for it. With several workloads,
sums of positions can tie (two workloads swapping an owned and a rented GPU of one
configuration: a + (b + 1) = (a + 1) + b), so ``workload_order`` then weights the positions
of the first of n workloads in the file by n, the next by n - 1, ..., the last by 1: at an
equal order the earlier workload runs the earlier rows. They make the first answer the same whatever the number of
answers asked and whatever the backend."""


def tie_breaks(c: Candidates, objectives: tuple[str, ...]) -> tuple[str, ...]:
    """The tie-break phases solved after ``objectives``: ``TIE_BREAK`` less those already
    among them, and less ``workload_order`` with one workload (there it is ``order``)."""
    return tuple(x for x in TIE_BREAK if x not in objectives and (x != "workload_order" or c.n_slots > 1))
