"""Facts into sentences: the one place where explanations, diagnoses and relaxations become
English (the CLI tables and the HTML report, planner/report/). The library returns facts
(planner/plan/result.py); nothing below computes a figure that is not in the fact."""

from __future__ import annotations

from planner.plan.result import (
    Alone,
    Baseline,
    Binding,
    Diagnosis,
    Fact,
    GpuMoves,
    GpuUse,
    Layout,
    Marginal,
    ModeVerdict,
    Move,
    Parting,
    Phase,
    Plan,
    Relaxation,
    Shortfall,
    Together,
    Unfinished,
    Verification,
)
from planner.units import GB, MS


def _ms(seconds: float | None) -> float:
    return (seconds or 0.0) / MS


def batch_limit(f: Fact) -> str:
    b = f.context.get("batch")
    if f.constraint == "memory":
        return f"batch {b} would need {(f.value or 0) / GB:.2f} GB per GPU of {(f.limit or 0) / GB:.2f} GB usable"
    if f.constraint == "tpot":
        return f"batch {b} would take {_ms(f.value):.2f} ms per token, over the {_ms(f.limit):g} ms TPOT target"
    if f.constraint == "e2e_latency":
        return f"batch {b} would take {_ms(f.value):.0f} ms end to end, over {_ms(f.limit):g} ms"
    if f.constraint == "max_batch":
        return f"search.max_batch is {int(f.limit or 0)}"
    if f.constraint == "running_batch":
        return (f"a larger max-num-seqs adds no capacity: at capacity a lane runs {f.value:,.0f} sequences on "
                f"average, below the cap of {f.limit:,.0f}")
    return str(f.context.get("reason", "the next batch level is not better"))


def headroom(f: Fact) -> str:
    if f.constraint == "memory":
        return (f"memory {(f.value or 0) / GB:.1f} of {(f.limit or 0) / GB:.1f} GB usable per GPU "
                f"({(f.value or 0) / (f.limit or 1):.0%})")
    return f"{f.constraint} {_ms(f.value):.1f} of {_ms(f.limit):g} ms ({(f.value or 0) / (f.limit or 1):.0%})"


def count_limit(f: Fact) -> str:
    c = f.context
    if f.constraint == "demand":
        r, thr = c["replicas"], c["tokens_per_s_per_replica"]
        share = c.get("share", 1.0)
        what = "demanded" if share >= 1 - 1e-9 else f"of its {share:.0%} share of the demand"
        return (f"{r} replicas x {thr:,.0f} tokens/s = {r * thr:,.0f} >= {f.limit:,.0f} tokens/s {what}; "
                f"{r - 1} would give {(r - 1) * thr:,.0f}")
    if f.constraint == "none":
        return "one replica: no demand given, so the plan is priced per replica"
    r = c.get("replicas", 0)
    what = {"budget": f"the ${f.limit:,.2f}/h budget (${f.value:,.2f}/h)",
            "inventory": f"the inventory of {f.limit:g} {f.path.rsplit('.', 1)[-1] if f.path else ''} "
                         f"({f.value:g} GPUs)",
            "max_gpus": f"max_gpus {f.limit:g} ({f.value:g})",
            "power": f"the {(f.limit or 0) / 1e3:g} kW power cap ({(f.value or 0) / 1e3:.1f} kW)",
            "max_nodes": f"max_nodes {f.limit:g} ({f.value:g} nodes)"}.get(f.constraint, "the search's replica cap")
    return f"{r} replicas; {r + 1} would exceed {what}"


def regime(f: Fact) -> str:
    shares = f.context["shares"]
    parts = ", ".join(f"{k.replace('_', ' ')} {v:.0%}" for k, v in shares.items() if v >= 0.005)
    if f.context.get("phase") == "prefill":
        return f"{f.context['regime']} prefill: of the {f.value:.2f} ms prefill of one prompt, {parts}"
    return f"{f.context['regime']}: of the {f.value:.2f} ms of a full decode step, {parts}"


STAT = {"mean": "mean", "p50": "p50", "p90": "p90", "p95": "p95", "p99": "p99"}


def capacity(f: Fact) -> str:
    c = f.context
    rate, sat = c["capacity_requests_per_s"], c["saturation_requests_per_s"]
    share = rate / sat if sat else 0.0
    if f.constraint == "max_utilization":
        return (f"no latency target binds first: slo.max_utilization {f.limit:g} caps this replica at "
                f"{rate:,.2f} req/s (utilisation {f.value:.2f}; {share:.2f} of the {sat:,.2f} req/s at which "
                f"its steps saturate)")
    name = {"ttft": "TTFT", "tpot": "TPOT", "itl": "ITL", "e2e_latency": "end-to-end"}.get(f.constraint, f.constraint)
    return (f"{name} {c['statistic']} <= {_ms(f.limit):g} ms caps this replica at {share:.2f} of saturation, "
            f"{rate:,.2f} req/s ({_ms(f.value):,.1f} ms there)")


def target_headroom(f: Fact) -> str:
    name = {"ttft": "TTFT", "tpot": "TPOT", "itl": "ITL", "e2e_latency": "end-to-end"}.get(f.constraint, f.constraint)
    return f"{name} {f.context.get('statistic', 'mean')} {_ms(f.value):,.1f} of {_ms(f.limit):g} ms"


def versus(f: Fact) -> str:
    c = f.context
    a, b = c["this"], c["next"]
    better = "higher" if c["sense"] == "max" else "lower"
    text = f"{f.value:,.4g} vs {f.limit:,.4g} {f.unit} ({c['relative']:+.1%}, {better} is better)"
    drivers = []
    if "deployments" in a or "deployments" in b:
        drivers.append(f"{layout(a)} vs {layout(b)}")
    elif any(a[k] != b[k] for k in ("gpu", "quantization", "tp", "pp")):
        drivers.append(f"{a['gpus']} x {a['gpu']} {a['quantization']} TP{a['tp']}/PP{a['pp']} vs "
                       f"{b['gpus']} x {b['gpu']} {b['quantization']} TP{b['tp']}/PP{b['pp']}")
    if "usd_per_gpu_hour" in a and "usd_per_gpu_hour" in b:
        drivers.append(f"${a['usd_per_gpu_hour']:.2f} vs ${b['usd_per_gpu_hour']:.2f} per GPU-hour")
        drivers.append(f"{a['throughput_tokens_per_s_per_gpu']:,.0f} vs {b['throughput_tokens_per_s_per_gpu']:,.0f} "
                       f"tokens/s per GPU (batch {a['batch']} vs {b['batch']})")
    else:
        drivers.append(f"TPOT {a['tpot_ms']:.2f} vs {b['tpot_ms']:.2f} ms, TTFT {a['ttft_ms']:.0f} vs "
                       f"{b['ttft_ms']:.0f} ms")
    out = text + ": " + "; ".join(drivers)
    if c.get("tied"):
        out += ". Exactly TIED on the objective and GPUs: the documented tie-break order put this one first"
    elif c.get("tie"):
        out += (f". A TIE within the model's uncertainty: the difference is below its median error of "
                f"{c['tie_band']:.0%} ({c['tie_band_source']}); choose between them on other grounds")
    return out


def diagnosis(d: Diagnosis) -> str:
    f, c = d.fact, d.fact.context
    if f.constraint == "search":
        return str(c["reason"])
    if f.constraint == "memory":
        short = (f.value or 0) - (f.limit or 0)
        return (f"{c['model']} in {c['quantization']} needs {c['weights_bytes'] / GB:,.0f} GB of weights (as split "
                f"over {c['gpus']} GPUs) plus {c['framework_bytes'] / GB:,.1f} GB of framework memory and "
                f"{c['kv_one_sequence_bytes'] / GB:,.2f} GB of KV cache for one sequence; the largest configuration "
                f"allowed, {c['gpus']} x {c['gpu']} (TP {c['tp']}, PP {c['pp']}) with {(f.limit or 0) / GB:,.0f} GB "
                f"usable, falls short by {short / GB:,.0f} GB")
    if f.constraint in ("tpot", "ttft", "e2e_latency") or f.unit == "s":     # a percentile target: ttft_p99, ...
        v, t = _ms(f.value), _ms(f.limit)
        return f"{c['best']} reaches {v:,.1f} ms, above the {t:g} ms target by {v - t:,.1f} ms"
    if f.constraint == "preemption":
        needs = f"more than {c['searched_to']:,}" if f.value is None else f"{f.value:,.0f}"
        return (f"{f.path}: an availability of {c['availability']:g} with each replica up "
                f"{c['replica_availability']:g} of the time needs {needs} spare replicas beside the "
                f"{c['serving_replicas']} serving on {c['gpu']}, "
                f"more than the {f.limit:,.0f} a spot deployment may carry (planner/pricing.py MAX_SPARES): "
                f"lower the availability target or state spare_replicas")
    need = int(f.value or 0)
    first = (f"meeting {c['demand_tokens_per_s']:,.0f} tokens/s" if c["demand_tokens_per_s"] else "one replica")
    text = (f"{first} needs at least {need} replica(s) of {c['gpus_per_replica']} x {c['gpu']} "
            f"({need * c['gpus_per_replica']} GPUs, ${c['usd_per_hour']:,.2f}/h) but the limits allow "
            f"{int(f.limit or 0)}")
    caps = [_cap(path, v) for path, v in c["caps"].items()]
    return text + (f" ({', '.join(caps)})" if caps else "")


def _cap(path: str, v: float) -> str:
    if path.startswith("limits.inventory."):
        return f"inventory {v:g} GPUs"
    if path == "limits.budget_usd_per_hour":
        return f"budget ${v:,.2f}/h"
    if path == "limits.power_cap_w":
        return f"power cap {v / 1e3:g} kW"
    if path.startswith("planner:"):
        return f"the planner's cap of {v:,.0f} replicas per configuration (docs/instances.md)"
    return f"{path.rsplit('.', 1)[-1]} {v:g}"


def relaxation(r: Relaxation) -> str:
    if r.needed is None or r.plan is None:
        return f"relaxing {r.limit} alone does not make the instance feasible"
    deployments = r.plan.get("deployments") or [r.plan]
    workloads = {d.get("workload") for d in deployments}
    parts = [(f"{d['workload']}: " if len(workloads) > 1 else "") +
             f"{d['gpus']} x {d['gpu']} (TP {d['tp']}, PP {d['pp']}, {d['quantization']}, batch {d['batch']}"
             + (f", plus {d['spare_gpus']} spare GPUs" if d.get("spare_gpus") else "") + ")" for d in deployments]
    held = r.plan.get("gpus_held")
    split = held is not None and (len(deployments) > 1 or held != deployments[0]["gpus"])
    whole = f", {held} GPUs in all" if split else ""
    return f"{r.limit}: {r.current} -> {r.needed} gives {' + '.join(parts)}{whole}"


WHATIFS = {"verification": "the simulator's check of plan #1", "simulation": "the re-score by simulation",
           "marginal": "the worth of one more unit of each binding limit",
           "disaggregation": "aggregated against disaggregated serving",
           "relaxations": "the smallest change to each limit"}
"""Each what-if (``Unfinished.whatif``), in words."""


def unfinished(u: Unfinished) -> str:
    """A what-if the command's one time limit cut short (planner/whatif/budget.py): what it does
    not state, never a figure from a solve the limit stopped."""
    had = ("" if u.seconds is None else " (no time was left for it)" if u.seconds <= 0
           else f" (its share was {u.seconds:.3g} s)")
    return (f"NOT FINISHED within --time-limit{had}: {WHATIFS.get(u.whatif, u.whatif)} is not stated for "
            f"{', '.join(u.left)}; raise --time-limit for it")


def checkpoint(ck: dict) -> str:
    """Which checkpoint serves a plan's format, in words (planner/catalog/checkpoints.py)."""
    runs = (f", which runs as {ck['scheme']} on this GPU" if ck["stored"] != ck["scheme"] else "")
    if ck["kind"] == "release":
        return f"{ck['repository']}, the release ({ck['stored']}{runs})"
    if ck["kind"] == "named":
        return f"{ck['repository']}, as named ({ck['stored']}{runs})"
    if ck["kind"] == "published":
        return (f"needs a different checkpoint than the release ({ck['release']}): {ck['repository']}, published in "
                f"{ck['stored']}{runs}")
    return (f"needs a {ck['scheme']} checkpoint, which no one publishes that the planner knows: quantize "
            f"{ck['from_repository'] or 'the model'} yourself (the release is {ck['release']})")


def plan_lines(p: Plan) -> list[str]:
    """The explanation block of one plan."""
    e = p.explanation
    if e is None:
        return []
    first = e.batch_limit[0]
    load = p.load
    price = "no price" if p.price_usd_per_gpu_hour is None else \
        f"price ${p.price_usd_per_gpu_hour:,.2f}/GPU-hour ({p.price_kind or 'kind unknown'}" \
        f"{', ' + p.price_date if p.price_date else ''})"
    lines = [f"   quality: {p.quality}; {price}"]
    if p.offer not in ("rented", "owned"):      # priced by an offer (prices.offers): say how it is paid
        lines.append(f"   offer: {offer_words(p.offer, p.committed)}"
                     + (f"; {p.spare_replicas} spare replica{'s' if p.spare_replicas != 1 else ''} against "
                        f"preemption, in its $/hour, not in its replicas or capacity" if p.spare_replicas else "")
                     + (f"; a {p.term_years:g}-year term commits ${p.commitment_usd:,.0f}"
                        if p.term_years and p.commitment_usd is not None else ""))
    if p.checkpoint:
        lines.append(f"   checkpoint: {checkpoint(p.checkpoint)}")
    lines += [
             f"   load: {load['requests_per_s_per_replica']:,.2f} req/s per replica ({load['utilization']:.0%} of "
             f"saturation), {p.concurrency:,.0f} requests in flight; scheduler max-num-seqs "
             f"{load['scheduler']['max_num_seqs']}, max-num-batched-tokens "
             f"{load['scheduler']['max_num_batched_tokens']}"]
    if "prompt_tokens" in load:      # a prefix cache (docs/workloads.md section 7)
        pt = load["prompt_tokens"]
        lines.append(f"   prompt tokens a request: {pt['cached_per_request']:,.0f} cached + "
                     f"{pt['computed_per_request']:,.0f} computed (prefix cache)")
    if e.capacity is not None:
        lines.append(f"   capacity: {capacity(e.capacity)}")
    targets = [target_headroom(h) for h in e.headroom if h.constraint != "memory"]
    if targets:
        lines.append(f"   at this load: {'; '.join(targets)}")
    lines += [f"   batch limited by {first.constraint}: {batch_limit(first)}",
              f"   count: {count_limit(e.count_limit)}",
              f"   {regime(e.regime)}"]
    lines += simulation(p)
    if e.versus_next is not None:
        lines.append(f"   ranks above #{p.rank + 1}: {versus(e.versus_next)}")
    return lines


def verification(v: Verification) -> list[str]:
    """The simulator's check of plan #1 (planner/whatif/verify.py), and which figure decided."""
    lowered = [f"  {x.configuration} ({x.workload}): {x.target} {x.statistic} simulated {x.simulated_ms:,.1f} of "
               f"{x.target_ms:g} ms at the closed form's capacity {x.closed_form_capacity:,.3g} {x.unit} per "
               f"replica; capacity lowered to {x.simulated_capacity:,.3g} {x.unit} (the simulation decides)"
               for x in v.tightened]
    parted = [parting(x) for x in v.parted]
    if v.status == "holds" and not lowered:
        return ["simulation: plan #1 meets every target in the simulator at its load; its capacities are the "
                "closed form's"] + parted
    if v.status == "holds":
        return ([f"simulation: plan #1 meets every target in the simulator after {len(lowered)} configuration(s) "
                 f"had their capacity lowered where the simulation missed ({v.rounds} rounds); the proof of "
                 "optimality is over these capacities:"] + lowered + parted)
    if v.status == "missed":
        why = {"rounds": f"after {v.rounds} rounds", "time_limit": "when the time limit ran out",
               "no_answer": "and no configuration is left that holds them"}.get(v.stopped or "", "")
        return ([f"simulation: plan #1 still MISSES a target in the simulator {why}: treat its latency figures as "
                 "optimistic"] + lowered + parted)
    if v.stopped == "time_limit":
        return ["simulation: plan #1 was NOT checked: the time limit ran out first (raise --time-limit)"]
    return [f"simulation: plan #1 was not checked ({v.stopped})"]


def unverified(v: Verification | None) -> str:
    """What the status of a plan leaves out when the simulator did not confirm plan #1: '' when
    it holds (or nothing was simulated)."""
    if v is None or v.status == "holds":
        return ""
    if v.status == "missed":
        return ("; NOT verified: plan #1 misses a target in the simulator, so its proof of optimality is over "
                "latency figures the simulation does not bear out (see 'simulation' and verification.parted)")
    return f"; not verified: plan #1 was not checked in the simulator ({v.stopped})"


CAUSES = {
    "trace": ("the trace's own arrivals and order of lengths: simulated with the closed form's arrival process and "
              "lengths sampled from the trace's distributions, it is within docs/load.md's bounds of the closed "
              "form; the load model is stationary and does not see the trace's bursts and runs of long prompts"),
    "load_model": ("the load model: simulated under the closed form's own assumptions it is beyond docs/load.md's "
                   "bounds of the closed form too, so the closed form's approximation is what parts "
                   "(docs/load.md section 9)"),
}
"""The cause a ``Parting`` names, in words (planner/whatif/verify.py ``partings``)."""


def parting(x: Parting) -> str:
    """Where rank 1's simulation and the closed form part, by how much, and why."""
    cf = "" if x.closed_form_ms is None else \
        f" against the closed form's {x.closed_form_ms:,.1f} ms ({x.simulated_ms / x.closed_form_ms - 1.0:+.0%})"
    assumed = "" if x.assumptions_ms is None else f"; under the closed form's assumptions {x.assumptions_ms:,.1f} ms"
    return (f"  where they part: {x.configuration} ({x.workload}): {x.target} {x.statistic} simulated "
            f"{x.simulated_ms:,.1f} ms{cf}, target {x.target_ms:g} ms ({'met' if x.met else 'MISSED'}){assumed}; "
            f"cause: {CAUSES.get(x.cause, x.cause)}")


def simulation(p: Plan) -> list[str]:
    sim = p.simulation
    if not sim:
        return []
    if "error" in sim:
        return [f"   simulated: not run ({sim['error']})"]
    s, cf = sim["simulated_ms"], sim["closed_form_ms"]

    def pair(k: str) -> str:
        return f"{s[k]:,.1f}" + (f" ({cf[k]:,.1f})" if k in cf else "")

    what = "of the trace's requests replayed" if sim.get("arrivals") == "trace" else "requests"
    text = (f"   simulated, {sim['requests']:,} {what} (closed form in brackets): TTFT mean {pair('ttft_mean')}, "
            f"p99 {pair('ttft_p99')} ms; TPOT mean {pair('tpot_mean')}, p99 {pair('tpot_p99')} ms; "
            f"ITL p99 {pair('itl_p99')} ms")
    met = [f"{t['path']} {'met' if t['met'] else 'MISSED'} ({t['simulated_ms']:,.1f} of {t['target_ms']:g} ms)"
           for t in sim["targets"]]
    return [text] + ([f"   simulated targets: {'; '.join(met)}"] if met else [])


def layout(x: dict) -> str:
    """An answer in a comparison: its deployments, or its one configuration."""
    if "deployments" in x:
        return " + ".join(f"{d['gpus']} x {d['gpu']} {d['quantization']} TP{d['tp']}/PP{d['pp']}"
                          + (f" ({d['role']})" if d["role"] != "aggregated" else "") for d in x["deployments"])
    return f"{x['gpus']} x {x['gpu']} {x['quantization']} TP{x['tp']}/PP{x['pp']}"


def layout_of(x: Layout, batch: int | None = None) -> str:
    """A configuration by its names: GPU, TP/PP/EP, precision, batch, role."""
    ep = f" EP{x.ep}" if x.ep > 1 else ""
    role = f" ({x.role} pool)" if x.role != "aggregated" else ""
    return f"{x.gpu} TP{x.tp} PP{x.pp}{ep} {x.quantization}/{x.kv_dtype}" + \
        (f" batch {batch}" if batch is not None else "") + role


def alone(a: Alone) -> str:
    cost = "no price" if a.cost_per_hour is None else f"${a.cost_per_hour:,.2f}/hour"
    return f"{a.replicas} replica(s) of {layout_of(a.layout, a.batch)}, {a.gpus} GPUs, {cost}"


def shortfall(x: Shortfall) -> str:
    line = (f"{x.workload}: {x.meet_targets} of {x.configurations} configurations meet its targets, "
            f"{x.fit_limits_alone} fit the limits alone")
    if x.cheapest_alone is not None:
        line += f"; alone it needs {alone(x.cheapest_alone)}"
    why = {"targets": "no configuration meets this workload's latency targets and fits in memory",
           "limits": "every configuration meeting the targets needs more than the shared limits allow"}
    return line + (f": {why[x.reason]}" if x.reason in why else "")


def together(t: Together) -> str:
    gpus = ", ".join(f"{n:g} {g}" for g, n in t.gpus.items())
    return (f"each workload can be served alone, not all together within the shared limits (objective "
            f"served_demand serves the most they allow): planned alone they cost ${t.cost_per_hour:,.2f}/hour on "
            f"{gpus}")


def excluded(gpus: dict[str, str]) -> list[str]:
    """One line per reason a GPU is not searched, naming the GPUs."""
    by_reason: dict[str, list[str]] = {}
    for gid, why in gpus.items():
        by_reason.setdefault(why, []).append(gid)
    return [f"not searched ({why}): {', '.join(gids)}" for why, gids in by_reason.items()]


def started(p: Phase, backend: str) -> str:
    """An answer that is the solve's starting answer (planner/plan/start.py)."""
    text = (f"the answer is the starting answer (the best single configuration, each workload alone, or "
            f"greedy): {backend} found none within the time limit; optimality is not proven")
    if p.lower_bound is not None and p.gap is not None:
        text += (f", it is within {p.gap:.1%} of a lower bound (every demand at its cheapest $/token, no integer "
                 f"replicas, no shared limit)")
    return text


def started_rank(rank: int, backend: str) -> str:
    return (f"plan {rank} is the starting answer of its rank (the best single configuration left): {backend} "
            f"found none within the time limit; not proven the next best")


def unproven_tie_break(p: Phase) -> str:
    return (f"the tie-break {p.objective} ({p.status}) was not proven within its time: among answers equal on the "
            f"objectives, another backend may pick another (docs/formulation.md section 4b)")


def phase_value(p: Phase) -> str:
    if p.value is None:
        return "-"
    if p.objective in ("cost_per_hour", "cost_per_million_tokens") and p.unit == "$/hour":
        return f"${p.value:,.2f}/hour"
    if p.objective == "served_demand":
        return f"{p.value:.1%} of the weighted demand"
    if p.objective == "change":
        return f"{p.value:g} GPUs changed"
    if p.objective == "gpus":
        return f"{p.value:g} GPUs"
    if p.objective in ("order", "workload_order"):
        return f"position {p.value:g}"
    return f"{p.value:,.4g} {p.unit}"


def phases(ps: list[Phase]) -> str:
    """The solves in order, with what is not proven."""
    out = []
    for p in ps:
        text = f"{p.objective} = {phase_value(p)}" + (" (tie-break)" if p.kind == "tie-break" else "")
        if p.status != "optimal":
            text += f" ({p.status}" + (f", within {p.gap:.2%} of the proven bound" if p.gap is not None
                                       else ", gap unknown") + ")"
        out.append(text)
    return "; ".join(out)


def binding(b: Binding) -> str:
    return f"binds: {b.limit} ({b.used:g} of {b.available:g} {b.unit})"


def marginal(m: Marginal) -> str:
    what = {"gpu": f"one more {(m.gpu or '').replace('@', ' in ')}", "budget": f"${m.amount:g}/hour more budget",
            "power": f"{m.amount / 1e3:g} kW more power"}[m.kind]
    if m.objective == "served_demand":
        return f"{what}: serves {m.improvement:+.1%} more of the weighted demand"
    if m.improvement <= 1e-9:
        return f"{what}: gains nothing (another limit binds next)"
    if m.objective in ("cost_per_hour", "cost_per_million_tokens"):
        return f"{what}: saves ${m.improvement:,.2f}/hour"
    return f"{what}: improves {m.objective} by {m.improvement:,.4g}"


def mode_verdict(v: ModeVerdict) -> str:
    """Which of aggregated and disaggregated serving wins a workload, with its figures."""
    a, d = v.aggregated, v.disaggregated
    head = f"disaggregation of {v.workload} ({v.mode}): {v.chosen} chosen; "
    if v.reason == "neither":
        return head + "neither mode alone serves this workload within the limits"
    if v.reason == "no_aggregated_configuration":
        return head + "disaggregated wins: no aggregated configuration meets this workload's targets with prefill " \
                      "chunks mixed in"
    if v.reason == "aggregated_over_limits":
        return head + "disaggregated wins: aggregated replicas alone do not fit the limits"
    if v.reason == "no_pool_configuration":
        return head + "aggregated wins: no prefill or decode pool meets its targets"
    if v.reason == "pools_over_limits":
        return head + "aggregated wins: pools alone do not fit the limits"
    assert a.cost_per_hour is not None and d.cost_per_hour is not None
    if v.reason == "tie":
        return head + f"a tie: ${a.cost_per_hour:.2f}/hour either way"
    pre = [x.utilization for x in d.deployments if x.role == "prefill" and x.utilization is not None]
    dec = [x.utilization for x in d.deployments if x.role == "decode" and x.utilization is not None]
    margin = v.margin or 0.0
    if v.winner == "aggregated":
        why = (f"aggregated wins by {margin:.0%}: ${a.cost_per_hour:.2f}/hour against ${d.cost_per_hour:.2f}/hour "
               f"in pools")
        if pre:
            why += f"; a prefill pool would run at rho = {max(pre):.2f}"
        if dec:
            why += f", a decode pool at rho = {max(dec):.2f}"
    else:
        binds = sorted({x.binding for x in a.deployments if x.binding})
        why = (f"disaggregated wins by {margin:.0%}: ${d.cost_per_hour:.2f}/hour against ${a.cost_per_hour:.2f}/hour "
               f"aggregated")
        if binds:
            why += f"; aggregated replicas are held back by {', '.join(binds)}"
        if pre:
            why += f"; the prefill pool runs at rho = {max(pre):.2f}"
    if v.within_uncertainty:
        why += f" (under the model's ~{v.uncertainty:.0%} uncertainty: a tie, check with the simulator)"
    return head + why


BASELINE_HOW = {
    "alone": "each workload planned on its own: its cheapest configuration, shared limits ignored",
    "greedy": "cheapest $/token first, dearest workloads first, repaired with the next cheapest when a resource "
              "runs out",
    "current": "the fleet running today, at its capacity at SLO",
}


def baseline_how(b: Baseline) -> str:
    text = BASELINE_HOW.get(b.baseline, b.baseline)
    if b.breaks:
        text += "; breaks " + ", ".join(f"{x.limit}: {x.used:,.4g} > {x.available:,.4g}" for x in b.breaks)
    if b.unmatched_gpus:
        text += f"; {b.unmatched_gpus:g} GPUs run configurations outside the searched table"
    return text


def move(m: Move) -> str:
    """One configuration of one workload against today: replicas started, stopped, kept."""
    what = f"{m.workload}: {layout_of(m.layout)}, {m.gpus_per_replica} GPU(s) per replica"
    acts = [f"{verb} {n} replica(s)" for verb, n in (("start", m.start), ("stop", m.stop), ("keep", m.keep)) if n]
    return f"{what}: {', '.join(acts) or 'nothing'} ({m.before} -> {m.after})"


def gpu_moves(g: GpuMoves) -> str:
    return f"{g.gpu}: start {g.start} GPUs, stop {g.stop}, keep {g.keep}"


OFFER_WORDS = {"owned": "owned", "rented": "rented", "on_demand": "on-demand", "spot": "spot",
               "commit_1y": "1-year commitment", "commit_3y": "3-year commitment"}


def offer_words(kind: str, committed: bool) -> str:
    """How a deployment's GPUs are paid for, and whether they are committed or burst capacity."""
    how = "committed (paid whether it runs or not)" if committed else "burst (paid per hour it runs)"
    return f"{OFFER_WORDS.get(kind, kind)}, {how}"


def capacity_split(gpus: list[GpuUse]) -> str | None:
    """One line over an answer's GPU entries (``GpuUse``): committed and burst GPUs and their
    $/hour; None when none is priced by an offer (prices.offers)."""
    if all(g.offer in ("rented", "owned") for g in gpus):
        return None
    parts = []
    for committed, name in ((True, "committed"), (False, "burst")):
        mine = [g for g in gpus if g.committed == committed and g.used]
        if mine:
            cost = sum(g.cost_per_hour or 0.0 for g in mine)
            kinds = ", ".join(dict.fromkeys(OFFER_WORDS.get(g.offer, g.offer) for g in mine))
            spare = sum(g.spare_gpus for g in mine)
            parts.append(f"{name} {sum(g.used for g in mine):g} GPUs ({kinds}"
                         + (f", plus {spare_gpus(spare)}" if spare else "") + f", ${cost:,.2f}/hour)")
    return "paid as: " + "; ".join(parts) if parts else None


def spare_gpus(n: int) -> str:
    return f"{n:g} spare GPU" + ("s" if n != 1 else "")


_CACHE_SOURCE = {"hit_rate": "its stated hit rate", "prefix_tokens": "its stated shared prefix",
                 "trace": "its trace's prefix reuse"}


def prefix_caches(inputs: dict) -> list[str]:
    """Each workload's prefix cache as the figures take it (``inputs.workloads.<name>.prefix_cache``,
    docs/workloads.md section 7): cached against computed prompt tokens a request."""
    out = []
    workloads = inputs.get("workloads") or {}
    for name, w in workloads.items():
        c = w.get("prefix_cache")
        if not c:
            continue
        who = f" of workload {name}" if len(workloads) > 1 else ""
        if c.get("kv_pool"):
            out.append(f"prefix cache{who}: its trace's prefix reuse in an LRU of each configuration's KV pool, "
                       f"at most {c['share']:.1%} of prompt tokens (an unbounded cache's: "
                       f"{c['cached_tokens_per_request']:,.0f} cached + {c['computed_tokens_per_request']:,.0f} "
                       "computed a request); each plan says its own; cached tokens skip prefill but hold KV")
            continue
        lru = f", an LRU of {c['cache_blocks']:,} blocks" if c.get("cache_blocks") else ""
        source = _CACHE_SOURCE.get(c.get("source"), "stated")
        out.append(f"prefix cache{who}: {c['share']:.1%} of prompt tokens served from the cache ({source}{lru}): "
                   f"{c['cached_tokens_per_request']:,.0f} cached + {c['computed_tokens_per_request']:,.0f} computed "
                   "prompt tokens a request; cached tokens skip prefill but hold KV")
    return out
