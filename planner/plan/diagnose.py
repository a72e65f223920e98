"""Why nothing is feasible: per GPU type, the first constraint that rules it out, in figures.

Checked in the order a planner would: memory (does any layout hold the weights and at
least one sequence?), latency targets, then the plan-wide limits (demand against
inventory, GPU and node caps, budget, power)."""

from __future__ import annotations

import numpy as np

from planner.backends.exhaustive import replica_bounds
from planner.physics.space import SCHEME_NAMES
from planner.units import GB, MS


def diagnose(p, cands) -> list[dict]:
    """Per family of options (each GPU type, each quantization searched), the first
    constraint that rules the whole family out, in figures."""
    gpu, scheme = cands.configs.gpu, cands.configs.scheme
    families = [("gpu", g.id, gpu == i) for i, g in enumerate(p.gpus)]
    schemes = sorted(set(scheme.tolist()))
    if len(schemes) > 1:
        families += [("quantization", SCHEME_NAMES[q], scheme == q) for q in schemes]
    lo, hi = replica_bounds(p, cands)
    out = []
    for kind, name, mask in families:
        constraint, detail = _first_violation(p, cands, mask, lo, hi)
        if constraint is not None:
            out.append({"family": kind, kind: name, "gpu": name if kind == "gpu" else None,
                        "constraint": constraint, "detail": detail})
    return out


def _first_violation(p, cands, mine, lo, hi) -> tuple[str | None, str]:
    ev = cands.ev
    slo, out = p.spec.slo, p.spec.workload.output_tokens
    if not mine.any():
        return "search", "no valid layout in the search space (TP, PP, EP or precision)"
    ok = mine & ev.fits
    if not ok.any():
        return "memory", _memory(p, cands, mine)
    for name, target, value in (("tpot", slo.tpot_ms, ev.tpot), ("ttft", slo.ttft_ms, ev.ttft),
                                ("e2e_latency", slo.e2e_latency_ms, ev.ttft + ev.tpot * (out - 1))):
        if target is None:
            continue
        passing = ok & (value <= target * MS)
        if not passing.any():
            best = float(np.min(value[ok]))
            return name, (f"the fastest layout that fits reaches {best / MS:,.1f} ms, above the {target:g} ms "
                          f"target by {best / MS - target:,.1f} ms")
        ok = passing
    if not (lo[ok] <= hi[ok]).any():
        return "limits", _limits(p, cands, ok, lo, hi)
    return None, ""


def _memory(p, cands, mine) -> str:
    ev = cands.ev
    room = np.where(mine, ev.usable_bytes * ev.gpus, -np.inf)
    k = int(np.argmax(room))
    need_w = ev.weights_bytes[k] * ev.gpus[k]
    total_usable = ev.usable_bytes[k] * ev.gpus[k]
    fixed = (ev.reserve_bytes[k] + ev.activation_bytes[k]) * ev.gpus[k]
    d = cands.describe(k, p.table)
    short = need_w + fixed + ev.kv_bytes_per_sequence[k] * ev.gpus[k] - total_usable
    return (f"{p.model.name} in {d['quantization']} needs {need_w / GB:,.0f} GB of weights (as split over "
            f"{int(ev.gpus[k])} GPUs) plus {fixed / GB:,.1f} GB of framework memory and "
            f"{ev.kv_bytes_per_sequence[k] * ev.gpus[k] / GB:,.2f} GB of KV cache for one sequence; the largest "
            f"configuration allowed, {int(ev.gpus[k])} x {d['gpu']} (TP {d['tp']}, PP {d['pp']}) with "
            f"{total_usable / GB:,.0f} GB usable, falls short by {short / GB:,.0f} GB")


def _limits(p, cands, ok, lo, hi) -> str:
    ev = cands.ev
    k = int(np.argmin(np.where(ok, lo * ev.gpus, np.inf)))
    d = cands.describe(k, p.table)
    need = int(lo[k])
    parts = [f"meeting {p.demand_tokens_per_s:,.0f} tokens/s" if p.demand_tokens_per_s else "one replica"]
    text = (f"{parts[0]} needs at least {need} replica(s) of {int(ev.gpus[k])} x {d['gpu']} "
            f"({need * int(ev.gpus[k])} GPUs, ${need * ev.cost_per_hour[k]:,.2f}/h) but the limits allow "
            f"{int(max(hi[k], 0))}")
    lim, s = p.spec.limits, p.spec.search
    caps = []
    if d["gpu"] in lim.inventory:
        caps.append(f"inventory {lim.inventory[d['gpu']]} GPUs")
    if s.max_gpus is not None:
        caps.append(f"max_gpus {s.max_gpus}")
    if s.max_nodes is not None:
        caps.append(f"max_nodes {s.max_nodes}")
    if lim.budget_usd_per_hour is not None:
        caps.append(f"budget ${lim.budget_usd_per_hour:,.2f}/h")
    if lim.power_cap_w is not None:
        caps.append(f"power cap {lim.power_cap_w / 1e3:g} kW")
    return text + (f" ({', '.join(caps)})" if caps else "")
