"""Why nothing is feasible: per family of options (each GPU type, each quantization), the
first constraint that rules it out, as a fact with its figures.

Checked in the order a planner would: memory (does any layout hold the weights and at
least one sequence?), latency targets, then the plan-wide limits (demand against
inventory, GPU and node caps, budget, power). Every quantity comes from the candidate
table (planner/candidates)."""

from __future__ import annotations

import numpy as np

from planner.candidates.table import MAX_REPLICAS, Candidates
from planner.physics.space import SCHEME_NAMES
from planner.plan.result import Diagnosis, Fact
from planner.resolve.problem import Problem


def diagnose(p: Problem, c: Candidates) -> list[Diagnosis]:
    gpu, scheme = c.configs.gpu, c.configs.scheme
    families = [("gpu", g.id, gpu == i) for i, g in enumerate(p.gpus)]
    schemes = sorted(set(scheme.tolist()))
    if len(schemes) > 1:
        families += [("quantization", SCHEME_NAMES[q], scheme == q) for q in schemes]
    out = []
    for kind, name, mask in families:
        fact = _first_violation(p, c, mask)
        if fact is not None:
            out.append(Diagnosis(kind, name, fact))
    return out


def _first_violation(p: Problem, c: Candidates, mine: np.ndarray) -> Fact | None:
    ev = c.ev
    if not mine.any():
        return Fact("search", context={"reason": "no valid layout in the search space (TP, PP, EP or precision)"})
    ok = mine & ev.fits
    if not ok.any():
        return _memory(p, c, mine)
    for check in c.slo:
        passing = ok & check.ok
        if not passing.any():
            k = int(np.argmin(np.where(ok, check.value_s, np.inf)))
            return Fact(check.name, value=float(check.value_s[k]), limit=float(check.target_s[k]), unit="s",
                        path=check.path, context={"best": "the fastest layout that fits"})
        ok = passing
    lo, hi = c.replicas_needed, c.replicas_allowed
    if not (lo[ok] <= hi[ok]).any():
        return _limits(c, ok)
    return None


def _memory(p: Problem, c: Candidates, mine: np.ndarray) -> Fact:
    ev = c.ev
    room = np.where(mine, ev.usable_bytes * ev.gpus, -np.inf)
    k = int(np.argmax(room))
    g = float(ev.gpus[k])
    d = c.describe(k)
    need = (ev.weights_bytes[k] + ev.reserve_bytes[k] + ev.activation_bytes[k] + ev.kv_bytes_per_sequence[k]) * g
    return Fact("memory", value=float(need), limit=float(ev.usable_bytes[k] * g), unit="bytes",
                context={"model": p.slots[int(c.slot[k])].model.name, "quantization": d["quantization"],
                         "weights_bytes": float(ev.weights_bytes[k] * g),
                         "framework_bytes": float((ev.reserve_bytes[k] + ev.activation_bytes[k]) * g),
                         "kv_one_sequence_bytes": float(ev.kv_bytes_per_sequence[k] * g),
                         "gpus": int(g), "gpu": d["gpu"], "tp": d["tp"], "pp": d["pp"]})


def _limits(c: Candidates, ok: np.ndarray) -> Fact:
    ev, lim = c.ev, c.limits
    lo, hi = c.replicas_needed, c.replicas_allowed
    k = int(np.argmin(np.where(ok, lo * ev.gpus, np.inf)))
    d = c.describe(k)
    need = int(lo[k])
    caps: dict[str, float] = {}
    if d["gpu"] in lim.inventory:
        caps["limits.inventory." + d["gpu"]] = lim.inventory[d["gpu"]]
    for path, v in (("search.max_gpus", lim.max_gpus), ("search.max_nodes", lim.max_nodes),
                    ("limits.budget_usd_per_hour", lim.budget_usd_per_hour), ("limits.power_cap_w", lim.power_cap_w)):
        if v is not None:
            caps[path] = v
    if not caps or hi[k] >= MAX_REPLICAS:     # no limit of the file binds: the planner's own replica domain
        caps["planner: at most MAX_REPLICAS replicas of one configuration"] = float(MAX_REPLICAS)
    return Fact("limits", value=float(need), limit=float(max(hi[k], 0)), unit="replicas",
                context={"demand_tokens_per_s": None if not c.has_demand[k] else float(c.demand[k]),
                         "gpus_per_replica": int(ev.gpus[k]), "gpu": d["gpu"],
                         "usd_per_hour": float(need * c.cost_per_hour[k]), "caps": caps})
