"""Demand: each slot's replicas, each loaded at most to its capacity at SLO, cover the
demand (docs/load.md section 6):

    sum_{j in slot} CAP_j y_j >= D_slot

CAP_j is output tokens/s at the highest rate meeting every latency target (open loop), or
the requests in flight at that rate (a closed loop of D clients).

When a slot may serve less than its demand (a fleet's objective served_demand), the share
served is a variable 0 <= served_slot <= 1 and the row reads

    sum_{j in slot} (CAP_j / D_slot) y_j >= served_slot.

A slot with disaggregated pools (docs/disaggregation.md section 7) splits its demand
between aggregated replicas and a prefill pool feeding a decode pool, one pair of pools per
KV format k (a prefill pool's cache is read by a decode pool in the same format). With
a, u_k in [0, 1] the shares of the demand each carries (dimension share, as the rows):

    a + sum_k u_k >= 1   (>= served_slot when partial)
    sum_{j agg} (CAP_j / D) y_j >= a
    sum_{j prefill, kv k} (CAP_j / D) y_j >= u_k,   sum_{j decode, kv k} (CAP_j / D) y_j >= u_k

CAP of a prefill row is its request rate at its TTFT targets, of a decode row its rate at
its TPOT/ITL targets, both times the mean output tokens (the demand's unit). The KV link
needs no row of its own: the sending side is a station of the prefill row's TTFT (its busy
share below 1 at capacity), the receiving side caps the decode row's capacity at
max_utilization of what its link can receive (planner/candidates/load.py pool_load), and
traffic goes to each row in proportion to its capacity, so sum_p bw_p y_p >= u bytes holds
whenever the rows above do."""

from __future__ import annotations

from typing import TYPE_CHECKING

from planner.candidates.load import AGGREGATED, DECODE, PREFILL
from planner.physics.space import KV_NAMES

if TYPE_CHECKING:
    from constraints import Formulation


def add(f: Formulation) -> None:
    c = f.cands
    thr = c.capacity
    for s in range(c.n_slots):
        rows = c.slot_rows(s)
        if not len(rows) or not c.has_demand[rows[0]]:
            continue
        name = "demand" if c.n_slots == 1 else f"demand[slot={c.slot_names[s]}]"
        unit = "tokens_per_s" if c.slots[s].demand_tokens_per_s is not None else "clients"
        d = float(c.demand[rows[0]])
        if c.pooled(s):
            _pooled(f, s, d, name)
            continue
        if not c.partial:
            rows = f.alive_in(s)
            f.model.row(name, "demand", dict(zip(f.y[rows].tolist(), thr[rows].tolist())), ">=", d, unit)
            continue
        served = f.scalar_name("served", s)
        f.scalars[served] = f.model.var(served, 0.0, 1.0, integer=False, dimension="share")
        coeffs = {int(f.y[j]): float(thr[j]) / d for j in f.alive_in(s)}
        coeffs[f.scalars[served]] = -1.0
        f.model.row(name, "demand", coeffs, ">=", 0.0, "share")


def _pooled(f: Formulation, s: int, d: float, name: str) -> None:
    c, m = f.cands, f.model
    thr = c.capacity
    rows = f.alive_in(s)
    tag = c.slot_names[s]
    share = m.var(f"disagg.aggregated[slot={tag}]", 0.0, 1.0, integer=False, dimension="share")
    f.scalars[f"disagg.aggregated[slot={tag}]"] = share
    split: dict[int, float] = {share: 1.0}
    agg = rows[c.role[rows] == AGGREGATED]
    m.row(f"demand.aggregated[slot={tag}]", "demand", {**{int(f.y[j]): float(thr[j]) / d for j in agg}, share: -1.0},
          ">=", 0.0, "share")
    pools = rows[c.role[rows] != AGGREGATED]
    for kv in sorted(set(c.configs.kv[pools].tolist())):
        label = f"slot={tag},kv={KV_NAMES[int(kv)]}"
        u = m.var(f"disagg.pools[{label}]", 0.0, 1.0, integer=False, dimension="share")
        f.scalars[f"disagg.pools[{label}]"] = u
        split[u] = 1.0
        for role, pool in ((PREFILL, "prefill"), (DECODE, "decode")):
            mine = pools[(c.role[pools] == role) & (c.configs.kv[pools] == kv)]
            m.row(f"demand.{pool}[{label}]", "demand", {**{int(f.y[j]): float(thr[j]) / d for j in mine}, u: -1.0},
                  ">=", 0.0, "share")
    if c.partial:
        served = f.scalar_name("served", s)
        f.scalars[served] = m.var(served, 0.0, 1.0, integer=False, dimension="share")
        split[f.scalars[served]] = -1.0
        m.row(name, "demand", split, ">=", 0.0, "share")
    else:
        m.row(name, "demand", split, ">=", 1.0, "share")
