"""Why nothing is feasible, one diagnosis for one workload or many:

- per workload (``Shortfall``): how many configurations meet its targets, how many fit the
  limits on their own, and the cheapest way to serve it alone;
- per family of options (each GPU type, each quantization) of a workload that cannot be
  served alone, the first constraint that rules it out, as a fact with its figures, checked
  in the order a planner would: memory (does any layout hold the weights and at least one
  sequence?), latency targets, then the shared limits (demand against inventory, GPU and
  node caps, budget, power);
- when every workload can be served alone but not all together (``Together``), what the
  cheapest of each alone needs against the shared limits.

Every quantity comes from the candidate table (planner/candidates)."""

from __future__ import annotations

import numpy as np

from planner.candidates.load import ROLE_NAMES
from planner.candidates.table import MAX_REPLICAS, Candidates
from planner.physics.space import SCHEME_NAMES
from planner.plan.result import Alone, Diagnosis, Fact, Layout, Shortfall, Together
from planner.pricing import MAX_SPARES, spares_needed
from planner.resolve.problem import Problem, offer_entries


def diagnose(p: Problem, c: Candidates) -> tuple[list[Diagnosis], list[Shortfall], Together | None]:
    shortfalls = [_shortfall(c, s) for s in range(c.n_slots)]
    out: list[Diagnosis] = []
    for s, short in enumerate(shortfalls):
        if short.reason is None and c.n_slots > 1:
            continue            # this workload alone is feasible: the families of the others say why
        mine = c.slot == s
        gpu, scheme = c.configs.gpu, c.configs.scheme
        families = [("gpu", g.id, mine & (gpu == i)) for i, g in enumerate(p.gpus)]
        schemes = sorted(set(scheme[mine].tolist()))
        if len(schemes) > 1:
            families += [("quantization", SCHEME_NAMES[q], mine & (scheme == q)) for q in schemes]
        for kind, name, mask in families:
            fact = _first_violation(p, c, mask)
            if fact is not None:
                out.append(Diagnosis(kind, name, fact, None if c.n_slots == 1 else c.slot_names[s]))
    together = None
    if all(x.cheapest_alone is not None for x in shortfalls) and c.n_slots > 1:
        gpus: dict[str, float] = {}
        for x in shortfalls:
            assert x.cheapest_alone is not None
            gid = x.cheapest_alone.layout.gpu
            gpus[gid] = gpus.get(gid, 0.0) + x.cheapest_alone.gpus
        together = Together(cost_per_hour=sum(x.cheapest_alone.cost_per_hour or 0.0 for x in shortfalls
                                              if x.cheapest_alone is not None), gpus=gpus,
                            budget_usd_per_hour=c.limits.budget_usd_per_hour, inventory=dict(c.limits.inventory))
    return out, shortfalls, together


def layout(c: Candidates, j: int) -> Layout:
    """Row j's configuration by its catalog names."""
    d = c.describe(j)
    role = ROLE_NAMES[int(c.role[j])] if len(c.role) else "aggregated"
    return Layout(d["gpu"], d["tp"], d["pp"], d["ep"], d["quantization"], d["kv_dtype"], role)


def _shortfall(c: Candidates, s: int) -> Shortfall:
    """One workload: configurations meeting its targets, those fitting the limits alone (its
    demand covered by at most K configurations' replicas), its cheapest way alone."""
    rows = c.slot_rows(s)
    meets = rows[c.meets_slo[rows]]
    with np.errstate(invalid="ignore"):
        cover = np.where(c.has_demand[meets], c.capacity[meets] * c.replicas_allowed[meets] * c.max_configs
                         >= c.demand[meets], True)
    usable = meets[(c.replicas_allowed[meets] >= 1) & cover]
    reason = "targets" if not len(meets) else "limits" if not len(usable) else None
    alone = None
    if len(usable):
        cost = np.nan_to_num(c.cost_per_hour[usable] * c.replicas_needed[usable] + c.spare_cost[usable], nan=np.inf)
        k = int(np.argmin(cost)) if np.isfinite(cost).any() else int(np.argmin(c.ev.gpus[usable]
                                                                               * c.replicas_needed[usable]))
        j = int(usable[k])
        n = int(c.replicas_needed[j])
        alone = Alone(layout(c, j), int(c.configs.batch[j]), n, int(c.ev.gpus[j]) * n,
                      None if not np.isfinite(cost[k]) else float(cost[k]))
    return Shortfall(c.slot_names[s], c.slots[s].path, int(len(rows)), int(len(meets)), int(len(usable)), reason,
                     alone)


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
        unmet = ok & np.isnan(c.spares) if len(c.spares) else np.zeros_like(ok)
        return _preemption(p, c, unmet) if unmet.any() and not (ok & ~unmet).any() else _limits(c, ok & ~unmet)
    return None


def _preemption(p: Problem, c: Candidates, unmet: np.ndarray) -> Fact:
    """A spot offer whose preemption rule no deployment can meet: the spares its availability
    target asks of the fewest replicas that carry the demand, against the MAX_SPARES a spot
    deployment may carry (planner/pricing.py)."""
    k = int(np.argmin(np.where(unmet, c.replicas_needed * c.ev.gpus, np.inf)))
    g = int(c.configs.gpu[k])
    rule = c.spare_rules[g]
    assert rule is not None and rule.availability is not None and rule.replica_availability is not None
    serving = int(c.replicas_needed[k])
    needed = spares_needed(serving, rule.availability, rule.replica_availability)
    return Fact("preemption", value=None if needed is None else float(needed), limit=float(MAX_SPARES),
                unit="spare replicas", path=offer_entries(p.spec.prices.offers, {})[p.table.ids[g]][1] + ".preemption",
                context={"gpu": c.describe(k)["gpu"], "serving_replicas": serving, "availability": rule.availability,
                         "replica_availability": rule.replica_availability, "searched_to": 100_000})


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
                         "usd_per_hour": c.deployment_cost(k, need), "caps": caps})
