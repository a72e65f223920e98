"""Tables for people. Every number carries its unit; the JSON output holds the same data."""

from __future__ import annotations

import io
import os
import shutil
import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from planner.physics.options import Assumptions
from planner.physics.perf import tokens_per_step
from planner.plan.result import Plan, PlanResult
from planner.report import wording
from planner.report.wording import checkpoint as checkpoint_words
from planner.units import GB, GiB

if TYPE_CHECKING:       # the estimate stage (resolve, schemas) is not loaded to render other commands
    from planner.estimate.run import Estimate


def width() -> int:
    """The terminal's width (COLUMNS, else the terminal), at least 80; 150 when not a terminal
    and COLUMNS is unset (files and pipes keep the full table)."""
    cols = os.environ.get("COLUMNS", "")
    if cols.isdigit() and int(cols) > 0:
        return max(80, int(cols))
    if sys.stdout.isatty():
        return max(80, shutil.get_terminal_size((150, 24)).columns)
    return 150


def colour() -> bool:
    """Colour only on a terminal, never with NO_COLOR set (https://no-color.org) or TERM=dumb."""
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def to_text(*renderables: object) -> str:
    buf = io.StringIO()
    color = colour()
    console = Console(file=buf, width=width(), no_color=not color, highlight=False, force_terminal=color)
    for r in renderables:
        console.print(r)
    return buf.getvalue()


def money(x: float | None, digits: int = 2) -> str:
    return "n/a (no price)" if x is None else f"${x:,.{digits}f}"


def render_estimate(e: Estimate) -> str:
    origin = {"release": ", the release format", "name": ", as the checkpoint name states"}.get(e.quantization_from, "")
    head = (f"{e.model} on {e.gpus} x {e.gpu}  (TP {e.tp}, PP {e.pp}, EP {e.ep}; {e.quantization}{origin}, "
            f"KV {e.kv_dtype}; batch {e.batch} per GPU step, {e.concurrency} sequences in flight; "
            f"{e.input_tokens} in / {e.output_tokens} out; preset {e.preset})")
    m = e.memory
    mem = Table(title="Memory per GPU", title_justify="left")
    mem.add_column("component")
    mem.add_column("GB", justify="right")
    mem.add_column("GiB", justify="right")
    for label, key in (("weights", "weights_bytes"), ("KV cache", "kv_cache_bytes"),
                       ("activations", "activation_bytes"), ("framework reserve", "reserve_bytes"),
                       ("total", "total_bytes"), ("usable (engine limit)", "usable_bytes"),
                       ("capacity", "capacity_bytes")):
        mem.add_row(label, f"{m[key] / GB:.2f}", f"{m[key] / GiB:.2f}")
    fit = "fits" if e.fits else "DOES NOT FIT"
    step = Table(title="Decode: time per output token (one pipeline cycle)", title_justify="left")
    step.add_column("component")
    step.add_column("ms per token", justify="right")
    step.add_column("share", justify="right")
    d, s = e.decode_ms, e.regime_shares
    rows = (
        ("weight reads", d["t_weights"] * e.pp, s["weights"]),
        ("linear-layer compute", d["t_linear_compute"] * e.pp, None),
        ("KV-cache reads", d["t_kv"] * e.pp, s["kv_cache"]),
        ("attention compute", d["t_attn_compute"] * e.pp, None),
        ("tensor-parallel all-reduces", d["t_tp_comm"] * e.pp, None),
        ("expert-parallel all-to-all", d["t_ep_comm"] * e.pp, None),
        ("pipeline hops", d["t_pp_comm_per_token"], None),
        ("activations moved by non-GEMM kernels", d["t_activations"] * e.pp, s["activations"]),
        ("fixed costs: kernels, GEMM latency", d["t_overhead_per_token"], s["overhead"]),
    )
    for label, ms, share in rows:
        step.add_row(label, f"{ms:.3f}", "" if share is None else f"{share:.0%}")
    step.add_row("compute-bound share", "", f"{s['compute']:.0%}")
    step.add_row("communication share", "", f"{s['communication']:.0%}")
    k_spec = int(e.assumptions.get("speculative_tokens", 0) or 0)
    if k_spec > 0:      # rows above: the verify pass; the cycle adds the drafts (docs/model.md section 4)
        E = tokens_per_step(Assumptions.model_validate(e.assumptions))
        step.add_row(f"speculative: cycle = verify of {k_spec + 1} tokens + {k_spec} drafts",
                     f"{e.tpot_ms * E:.3f}", "")
        step.add_row(f"TPOT = cycle / {E:.3f} tokens per step", f"{e.tpot_ms:.3f}", "")
    else:
        step.add_row("TPOT", f"{e.tpot_ms:.3f}", "")
    summary = Table(title="Summary", title_justify="left", show_header=False)
    summary.add_column("quantity")
    summary.add_column("value", justify="right")
    summary.add_row("regime", e.regime)
    summary.add_row("memory", f"{fit}: {m['total_bytes'] / GB:.1f} of {m['usable_bytes'] / GB:.1f} GB usable; "
                              f"max batch {int(m['max_batch'])} per GPU step")
    u0 = e.uncalibrated or {}

    def prior(key: str, fmt: str, figures: dict = u0, label: str = "uncalibrated ") -> str:
        """The uncalibrated figure beside a calibrated one (issue 22 item 4); '' without a calibration."""
        v = figures.get(key)
        text = format(v, fmt) if v is not None else "unbounded"
        return "" if not figures else (f"  (uncalibrated {text})" if label else text)

    summary.add_row("TTFT (one request, idle replica)", f"{e.ttft_ms:.1f} ms" + prior("ttft_ms", ".1f"))
    summary.add_row("TPOT (a full decode step at this batch)", f"{e.tpot_ms:.2f} ms ({1000 / e.tpot_ms:.1f} tokens/s "
                                                                f"per sequence)" + prior("tpot_ms", ".2f"))
    summary.add_row("throughput per replica", f"{e.throughput_tokens_per_s:,.0f} output tokens/s "
                                              f"({e.throughput_tokens_per_s_per_gpu:,.0f} per GPU)"
                    + prior("throughput_tokens_per_s", ",.0f"))
    summary.add_row("decode-only throughput", f"{e.decode_tokens_per_s:,.0f} tokens/s"
                    + prior("decode_tokens_per_s", ",.0f"))
    summary.add_row("MBU / MFU", f"{e.mbu:.0%} / {e.mfu:.1%}")
    summary.add_row("power", "n/a" if e.power_w is None else f"{e.power_w / 1000:.1f} kW (TDP)")
    summary.add_row("cost per hour", money(e.cost_per_hour) + f"  ({e.price_source})")
    summary.add_row("cost per million output tokens", money(e.cost_per_million_tokens, 3)
                    + (f"  (uncalibrated {money(u0['cost_per_million_tokens'], 3)})" if u0 else ""))
    out: list[object] = [head]
    if e.quality:
        out.append(f"Weights: {e.quality}")
    if e.checkpoint:
        out.append(f"Checkpoint: {checkpoint_words(e.checkpoint)}")
    out.append("")
    if e.model_notes:
        out += [f"Model {e.model}, as read from its config.json:", *(f"  - {n}" for n in e.model_notes), ""]
    out += [mem, step, summary]
    if u0:
        out.append(f"Calibration {e.calibration!r} applied; (uncalibrated ...) is the same figure under the priors "
                   "(docs/validation.md, 'The calibration decision')")
    out += [f"Calibration: {n}" for n in e.calibration_notes]
    u = e.under_load
    if u is not None:
        load = Table(title=("Under load: " + (f"{u['concurrency']:,.0f} clients in a closed loop" if u["closed_loop"]
                                              else f"Poisson arrivals at {u['requests_per_s']:,.2f} req/s")
                            + f" (continuous batching, max-num-seqs {u['max_num_seqs']}, "
                              f"{u['max_num_batched_tokens']} tokens per step; docs/load.md)"), title_justify="left")
        for col in ("metric", "mean", "p50", "p90", "p99"):
            load.add_column(col, justify="left" if col == "metric" else "right")
        for metric, label in (("ttft", "TTFT ms"), ("tpot", "TPOT ms"), ("itl", "ITL ms"), ("e2e", "end-to-end ms")):
            load.add_row(label, *(f"{v:,.1f}" if (v := u[f'{metric}_{q}_ms']) is not None else "unbounded"
                                  for q in ("mean", "p50", "p90", "p99")))
        load.add_row("throughput", f"{u['throughput_tokens_per_s']:,.0f} output tokens/s", "", "",
                     f"{u['requests_per_s'] if u['stable'] else u['capacity_requests_per_s']:,.2f} req/s")
        if u0.get("under_load"):
            ul = u0["under_load"]
            for metric in ("ttft", "tpot"):
                load.add_row(f"uncalibrated {metric.upper()} ms",
                             *(prior(f"{metric}_{q}_ms", ",.1f", ul, "") if q in ("mean", "p99") else ""
                               for q in ("mean", "p50", "p90", "p99")))
        load.add_row("utilisation", f"{u['utilization']:.0%}" if u["utilization"] is not None else "unbounded",
                     "", "", "stable" if u["stable"] else "UNSTABLE")
        out += ["", load]
        if not u["stable"]:
            out.append(f"Unstable: the replica saturates at {u['capacity_requests_per_s']:,.2f} req/s; past it the "
                       "queue grows without bound, so no latency is finite and the throughput is the replica's "
                       "capacity (closed-form load model, docs/load.md)")
    return to_text(*out)


def render_support(r: PlanResult) -> list[str]:
    if not r.unsupported:
        return ["Every searched GPU x quantization x KV dtype runs on the engine."]
    lines = [f"Not searched, the engine ({r.unsupported[0]['engine']}) does not run them (docs/support.md):"]
    lines += [f"  - {u['gpu']} {u['quantization']} / KV {u['kv_dtype']}: {u['reason']}" for u in r.unsupported]
    return lines


def render_plans(r: PlanResult, explain_support: bool = False) -> str:
    head = (f"status {r.status}; objective {r.objective}; backend {r.backend}; "
            f"{r.searched_configurations:,} configurations x batch levels searched"
            + ("" if r.solve_seconds is None else f" in {r.solve_seconds:.2f} s")
            + ("" if r.gap in (None, 0.0) else f"; within {r.gap:.2%} of the proven bound"))
    if not r.plans:
        status = "interrupted" if r.interrupted else r.status
        lines = [head, "", NO_PLAN.get(status, NO_PLAN["unknown"])]
        lines += [f"  - {wording.shortfall(x)}" for x in r.shortfalls if len(r.shortfalls) > 1]
        if r.together is not None:
            lines += [f"  - {wording.together(r.together)}"]
        if r.diagnosis:
            lines += ["What rules out each family of options:"]
        lines += [f"  - {d.workload + ': ' if d.workload else ''}{d.family} {d.name}: {d.fact.constraint}: "
                  f"{wording.diagnosis(d)}" for d in r.diagnosis]
        lines += [f"  - {n}" for n in notes(r)]
        if r.relaxations:
            lines += ["", "Smallest change to each limit that makes it feasible (others unchanged):"]
            lines += [f"  - {wording.relaxation(x)}" for x in r.relaxations]
        lines += [f"  - {wording.unfinished(u)}" for u in r.unfinished]
        if explain_support or any(d.fact.constraint == "search" for d in r.diagnosis):
            lines += [""] + render_support(r)
        return "\n".join(lines) + "\n"
    t = Table(title="Ranked plans", title_justify="left")
    for col in ("#", "GPUs", "TP/PP/EP", "x replicas", "precision (w / kv)", "max seqs", "req/s per replica",
                "TTFT ms mean/p99", "TPOT ms", "tokens/s", "$/hour", "$/M tokens", "regime"):
        t.add_column(col, justify="right" if col not in ("GPUs", "precision (w / kv)", "regime") else "left")
    several = len({p.workload for p in r.plans}) > 1 or any(p.role != "aggregated" for p in r.plans)
    for group in tie_groups(r):
        first = [p for p in r.plans if p.rank == group[0]]
        tied = [p for rank in group[1:] for p in r.plans if p.rank == rank]
        for k, p in enumerate(first):
            pct = p.load.get("percentiles_ms", {})
            label = ("=".join(str(x) for x in group) + " tied") if len(group) > 1 else str(p.rank)
            who = f"{p.workload}: " if several else ""
            role = f" ({p.role})" if p.role != "aggregated" else ""
            layouts = [p] + [q for q in tied if len(first) == 1]
            t.add_row(label if k == 0 else "", f"{who}{p.gpus} x {p.gpu}{role}",
                      " | ".join(dict.fromkeys(f"{q.tp}/{q.pp}/{q.ep}" for q in layouts)), str(p.replicas),
                      " | ".join(dict.fromkeys(f"{q.quantization} / {q.kv_dtype}" for q in layouts))
                      + (" (lossy)" if p.quality.startswith("LOSSY") else ""),
                      str(p.batch),
                      f"{p.load.get('requests_per_s_per_replica', 0):,.2f} ({p.load.get('utilization', 0):.0%})",
                      f"{p.ttft_ms:,.0f} / {pct.get('ttft_p99', float('nan')):,.0f}", f"{p.tpot_ms:.1f}",
                      f"{p.throughput_tokens_per_s:,.0f}",
                      money(p.cost_per_hour) + ("*" if p.price_kind in ("estimate", "serverless") else ""),
                      money(p.cost_per_million_tokens, 3), p.regime.replace("-bound", ""))
    out: list[object] = [head, "Latencies are under load, at each plan's operating point: the demand shared by its "
                         "replicas, or without a demand each replica at its capacity at SLO (req/s per replica, "
                         "utilisation of saturation).", "", t]
    if any(len(g) > 1 for g in tie_groups(r)):
        out.append("tied: plans with exactly the same objective value and GPUs, shown as one row; the documented "
                   "tie-break order (docs/formulation.md section 4b) ranks them")
    workloads = len({p.workload for p in r.plans}) > 1
    for p in r.plans:
        parts = ([p.workload] if workloads else []) + ([f"{p.role} pool"] if p.role != "aggregated" else []) + \
            ([f"{p.share:.0%} of {'its' if workloads else 'the'} traffic"] if p.share < 1 - 1e-9 else [])
        who = f" ({', '.join(parts)})" if parts else ""
        lines = [f"#{p.rank} {p.gpus} x {p.gpu}, TP {p.tp} PP {p.pp} EP {p.ep}, {p.quantization}, batch {p.batch}{who}"]
        explained = wording.plan_lines(p)
        versus = [x for x in explained if x.startswith("   ranks above")]
        lines += [x for x in explained if x not in versus]
        if p.mbu is not None:
            lines += [f"   memory per GPU: {p.memory['weights_bytes'] / GB:.1f} GB weights + "
                      f"{p.memory['kv_cache_bytes'] / GB:.1f} GB KV of {p.memory['usable_bytes'] / GB:.1f} GB usable; "
                      f"MBU {p.mbu:.0%}, MFU {p.mfu:.0%}"]
        else:
            lines += [f"   memory per GPU: {p.memory['weights_bytes'] / GB:.1f} GB weights + "
                      f"{p.memory['kv_cache_bytes'] / GB:.1f} GB KV of {p.memory['usable_bytes'] / GB:.1f} GB usable; "
                      f"prefill MFU {p.mfu:.0%}"]
        lines += versus + priors_line(p)
        out.append("\n".join(lines))
    if any(p.uncalibrated for p in r.plans):
        out.append(f"Calibration {r.inputs.get('calibration')!r} applied; 'under the priors' is the same deployment's "
                   "figures without it (docs/validation.md, 'The calibration decision')")
    kinds = {str(p.price_kind) for p in r.plans} & {"estimate", "serverless"}
    if kinds:
        out.append(f"* a {' or '.join(sorted(kinds))} price, not an on-demand list price (inputs.price_sources "
                   f"in --json says where each price came from)")
    out += answer_lines(r)
    out += [f"note: {n}" for n in notes(r)]
    status = WITH_PLAN.get(r.status, WITH_PLAN["feasible"])
    out.append(status[:-1] + wording.unverified(r.verification) + "." if wording.unverified(r.verification) else status)
    if r.interrupted:
        out.append(f"interrupted: {len(r.answers)} plan(s) found before Ctrl-C; later ranks were not searched")
    if explain_support:
        out += ["\n".join(render_support(r))]
    return to_text(*out)


def priors_line(p: Plan) -> list[str]:
    """A calibrated deployment's moved figures under the priors (issue 22 item 4); none without one."""
    u = p.uncalibrated
    if not u:
        return []
    load = u.get("load") or {}
    pct = load.get("percentiles_ms") or {}

    def ms(x: float | None, fmt: str) -> str:
        return "unbounded" if x is None else format(x, fmt)
    return [f"   under the priors (uncalibrated): capacity {load.get('capacity_requests_per_s_per_replica', 0):,.2f} "
            f"req/s per replica, TTFT mean/p99 {ms(u['ttft_ms'], ',.0f')} / {ms(pct.get('ttft_p99'), ',.0f')} ms, "
            f"TPOT {ms(u['tpot_ms'], '.1f')} ms, {ms(u['throughput_tokens_per_s'], ',.0f')} tokens/s, "
            f"{money(u['cost_per_million_tokens'], 3)} per M tokens (calibrated: "
            f"{p.load.get('capacity_requests_per_s_per_replica', 0):,.2f} req/s, {p.ttft_ms:,.0f} / "
            f"{p.load.get('percentiles_ms', {}).get('ttft_p99', float('nan')):,.0f} ms, {p.tpot_ms:.1f} ms, "
            f"{money(p.cost_per_million_tokens, 3)})"]


def tie_groups(r: PlanResult) -> list[list[int]]:
    """Ranks grouped by exact ties (``Answer.tied_with``), in rank order."""
    groups: list[list[int]] = []
    for a in r.answers:
        if a.tied_with is not None and groups and groups[-1][0] == a.tied_with:
            groups[-1].append(a.rank)
        else:
            groups.append([a.rank])
    return groups or [[p.rank] for p in r.plans[:1]]


def answer_lines(r: PlanResult) -> list[str]:
    """What the first answer binds, what one more unit of it is worth, the moves from today's
    fleet, and which of aggregated and disaggregated serving wins each pooling workload."""
    a = r.answer(1)
    out = wording.verification(r.verification) if r.verification is not None else []
    if a is not None:
        split = wording.capacity_split(a.gpus)
        out += ([split] if split else []) + [wording.binding(b) for b in a.binding]
    out += [wording.marginal(m) for m in r.marginal]
    if a is not None and a.moves:
        out.append("moves from the fleet running today (current):")
        out += [f"  {wording.move(m)}" for m in a.moves]
        out += [f"  {wording.gpu_moves(g)}" for g in a.gpu_moves]
    out += [wording.mode_verdict(v) for v in r.disaggregation]
    out += [wording.unfinished(u) for u in r.unfinished]
    return out


def notes(r: PlanResult) -> list[str]:
    """The result's notes in words: GPUs not searched, an answer that is the starting one."""
    out = wording.excluded(r.excluded_gpus)
    out += [wording.started(p, r.backend) for p in r.phases if p.start]
    out += [wording.started_rank(a.rank, r.backend) for a in r.answers if a.start and a.rank > 1]
    out += [wording.unproven_tie_break(p) for p in r.phases if p.kind == "tie-break" and p.status != "optimal"]
    return out + wording.prefix_caches(r.inputs) + list(r.notes)


NO_PLAN = {
    "infeasible": "No feasible plan: proven that no configuration meets every limit.",
    "time_limit": ("Time limit reached before any plan was found: feasibility is not decided "
                   "(raise --time-limit; a plan may exist)."),
    "interrupted": "Interrupted (Ctrl-C) before any plan was found: nothing is proven.",
    "unknown": "The solver ended without an answer (status unknown): nothing is proven; try another --backend.",
}
WITH_PLAN = {
    "optimal": "status optimal: plan #1 is proven best for the objective.",
    "feasible": "status feasible: plan #1 is the best found, not proven best (see the gap).",
}
"""How each status reads for people (docs/exit-codes.md); the JSON has `status` and `status_detail`."""
