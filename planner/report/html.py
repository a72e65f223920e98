"""One self-contained HTML report of a plan result: the ranked plans; for each, a memory
breakdown, a step-time breakdown, latency percentiles under load, the binding constraints
and the explanation (the sentences of wording.py); a roofline placing each plan's decode
operating point against each GPU's ridge; cost against latency. The charts are inline SVG
written here (no plotting library, no script, no network): the file opens offline.

- ``render_report(result, title) -> str``: the HTML.
- ``charts(result) -> dict[str, Chart]``: the charts' data, for other renderers (the CLI's
  ``--png`` draws the same data with matplotlib).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any

from planner.catalog.store import Catalog
from planner.plan.result import Plan, PlanResult
from planner.report import wording
from planner.units import GB

__all__ = ["Chart", "charts", "colour", "render_report", "roofline_points", "svg"]

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f")

ACTIVATION = {"w16a16": "bf16", "w8a16": "bf16", "w4a16": "bf16", "w8a8-fp8": "fp8", "w4a8": "fp8",
              "w8a8-int8": "int8", "fp4": "fp4", "mxfp4": "fp4", "mxfp4-experts": "bf16", "gguf-q8_0": "fp16",
              "gguf-q4_0": "fp16"}
"""The math format each weight scheme's GEMMs run in (natively), for the roofline's peak."""


@dataclass
class Chart:
    """Bars (stacked per category) or points, with axis labels; everything a renderer needs."""

    kind: str                                   # stacked | grouped | scatter | roofline
    title: str
    x_label: str
    y_label: str
    categories: list[str] = field(default_factory=list)            # one per bar group / point
    series: dict[str, list[float]] = field(default_factory=dict)   # name -> value per category
    lines: dict[str, list[tuple[float, float]]] = field(default_factory=dict)   # roofline: name -> polyline
    log: bool = False


def _label(p: Plan) -> str:
    return f"#{p.rank} {p.gpus}x{p.gpu} TP{p.tp}/PP{p.pp} {p.quantization}"


def roofline_points(result: PlanResult, catalog: Catalog | None = None) -> tuple[dict, list]:
    """Each GPU's roof (peak FLOP/s of the plans' math format, bandwidth) and each plan's decode
    point: intensity = achieved FLOP/s / achieved bytes/s, from MFU and MBU."""
    catalog = catalog or Catalog.default()
    roofs: dict[str, tuple[float, float, float]] = {}
    points = []
    for p in result.plans:
        try:
            g = catalog.gpu(p.gpu)
        except Exception:
            continue
        fmt = ACTIVATION.get(p.quantization, "bf16")
        peaks: dict[str, float] = {str(k): v for k, v in g.peak_dense_flops_per_s.items()}
        peak = peaks.get(fmt) or peaks.get("bf16")
        if not peak:
            continue
        bw = g.memory_bandwidth_bytes_per_s
        roofs[f"{p.gpu} {fmt}"] = (peak, bw, peak / bw)
        if p.mbu is None:           # a prefill-pool replica: no decode operating point
            continue
        flops, traffic = p.mfu * peak, p.mbu * bw
        if flops > 0 and traffic > 0:
            points.append((_label(p), flops / traffic, flops))
    return roofs, points


def charts(result: PlanResult) -> dict[str, Chart]:
    plans = result.plans
    cats = [_label(p) for p in plans]
    mem = Chart("stacked", "Memory per GPU", "plan", "GB", cats)
    for name, key in (("weights", "weights_bytes"), ("KV cache", "kv_cache_bytes"),
                      ("activations", "activation_bytes"), ("framework reserve", "reserve_bytes")):
        mem.series[name] = [p.memory[key] / GB for p in plans]
    mem.series["free"] = [max(0.0, (p.memory["capacity_bytes"] - p.memory["total_bytes"]) / GB) for p in plans]
    step = Chart("stacked", "Decode step time per output token, by what it waits on (idle replica)", "plan",
                 "ms per token", cats)
    for name in ("weights", "kv_cache", "activations", "compute", "communication", "overhead"):
        step.series[name.replace("_", " ")] = [p.load.get("idle", {}).get("tpot_ms", p.tpot_ms)
                                               * p.regime_shares.get(name, 0.0) for p in plans]
    lat = Chart("grouped", "Latency percentiles under load (closed form at the operating point)", "plan", "ms",
                cats)
    for m in ("ttft", "tpot", "itl"):
        for q in ("p50", "p99"):
            lat.series[f"{m.upper()} {q}"] = [p.load.get("percentiles_ms", {}).get(f"{m}_{q}", float("nan"))
                                              for p in plans]
    roofs, points = roofline_points(result)
    roof = Chart("roofline", "Roofline: decode operating points against each GPU's ridge", "FLOP per byte",
                 "FLOP/s", [name for name, _, _ in points], log=True)
    roof.series["intensity"] = [x for _, x, _ in points]
    roof.series["flops"] = [y for _, _, y in points]
    for name, (peak, bw, ridge) in roofs.items():
        roof.lines[f"{name} (ridge {ridge:,.0f} FLOP/B)"] = [(1.0, bw), (ridge, peak), (ridge * 100, peak)]
    front = Chart("scatter", "Cost against latency", "TPOT mean under load (ms)", "$ per million output tokens",
                  cats)
    front.series["x"] = [p.tpot_ms for p in plans]
    front.series["y"] = [p.cost_per_million_tokens if p.cost_per_million_tokens is not None else float("nan")
                         for p in plans]
    return {"memory": mem, "step": step, "latency": lat, "roofline": roof, "cost": front}


# --- SVG ------------------------------------------------------------------------------------------------------

W, H, ML, MR, MT, MB = 760, 320, 70, 200, 34, 70


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _nice(hi: float) -> float:
    if not math.isfinite(hi) or hi <= 0:
        return 1.0
    step = 10 ** math.floor(math.log10(hi))
    for m in (1, 2, 2.5, 5, 10):
        if hi <= m * step:
            return m * step
    return 10 * step


def _frame(c: Chart, name: str) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="chart-{name}" width="{W}" height="{H}" '
            f'viewBox="0 0 {W} {H}" role="img" aria-label="{_e(c.title)}">',
            f'<text x="{ML}" y="18" font-size="14" font-weight="bold">{_e(c.title)}</text>',
            f'<line x1="{ML}" y1="{H - MB}" x2="{W - MR}" y2="{H - MB}" stroke="#333"/>',
            f'<line x1="{ML}" y1="{MT}" x2="{ML}" y2="{H - MB}" stroke="#333"/>',
            f'<text x="14" y="{(H - MB + MT) / 2}" font-size="11" transform="rotate(-90 14 {(H - MB + MT) / 2})" '
            f'text-anchor="middle">{_e(c.y_label)}</text>']


def colour(series: str, k: int) -> str:
    """A series' colour: free memory in light grey, the rest from the palette."""
    return "#dddddd" if series == "free" else PALETTE[k % len(PALETTE)]


def _legend(names: list[str]) -> list[str]:
    out = []
    for i, n in enumerate(names):
        y = MT + 16 * i
        out.append(f'<rect x="{W - MR + 12}" y="{y}" width="10" height="10" fill="{colour(n, i)}"/>'
                   f'<text x="{W - MR + 26}" y="{y + 9}" font-size="11">{_e(n)}</text>')
    return out


def _yticks(top: float, fmt: str = "{:,.4g}") -> list[str]:
    out = []
    for i in range(5):
        v = top * i / 4
        y = H - MB - (H - MB - MT) * i / 4
        out.append(f'<line x1="{ML - 4}" y1="{y:.1f}" x2="{W - MR}" y2="{y:.1f}" stroke="#ddd"/>'
                   f'<text x="{ML - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{fmt.format(v)}</text>')
    return out


def _bars(c: Chart, name: str) -> str:
    out = _frame(c, name)
    n = max(1, len(c.categories))
    names = list(c.series)
    finite = lambda v: v if math.isfinite(v) else 0.0  # noqa: E731
    if c.kind == "stacked":
        top = _nice(max([sum(finite(c.series[s][i]) for s in names) for i in range(n)] or [1]))
    else:
        top = _nice(max([finite(v) for s in names for v in c.series[s]] or [1]))
    out += _yticks(top)
    slot = (W - ML - MR) / n
    scale = (H - MB - MT) / top
    for i, cat in enumerate(c.categories):
        x0 = ML + slot * i + slot * 0.15
        if c.kind == "stacked":
            y = float(H - MB)
            for k, s in enumerate(names):
                h = finite(c.series[s][i]) * scale
                y -= h
                out.append(f'<rect x="{x0:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
                           f'fill="{colour(s, k)}"><title>{_e(s)}: {c.series[s][i]:,.3g} '
                           f'{_e(c.y_label)}</title></rect>')
        else:
            bw = slot * 0.7 / max(1, len(names))
            for k, s in enumerate(names):
                v = finite(c.series[s][i])
                out.append(f'<rect x="{x0 + bw * k:.1f}" y="{H - MB - v * scale:.1f}" width="{bw:.1f}" '
                           f'height="{v * scale:.1f}" fill="{PALETTE[k % len(PALETTE)]}"><title>{_e(s)}: '
                           f'{v:,.3g} ms</title></rect>')
        out.append(f'<text x="{x0 + slot * 0.35:.1f}" y="{H - MB + 14}" font-size="10" text-anchor="end" '
                   f'transform="rotate(-20 {x0 + slot * 0.35:.1f} {H - MB + 14})">{_e(cat)}</text>')
    out += _legend(names)
    out.append("</svg>")
    return "\n".join(out)


def _scatter(c: Chart, name: str) -> str:
    out = _frame(c, name)
    pts = [(x, y, cat) for x, y, cat in zip(c.series.get("x", []), c.series.get("y", []), c.categories)
           if math.isfinite(x) and math.isfinite(y)]
    xmax = _nice(max([x for x, _, _ in pts] or [1]) * 1.1)
    ymax = _nice(max([y for _, y, _ in pts] or [1]) * 1.1)
    out += _yticks(ymax)
    for i in range(5):
        v = xmax * i / 4
        x = ML + (W - ML - MR) * i / 4
        out.append(f'<text x="{x:.1f}" y="{H - MB + 14}" font-size="10" text-anchor="middle">{v:,.4g}</text>')
    out.append(f'<text x="{(ML + W - MR) / 2}" y="{H - 20}" font-size="11" text-anchor="middle">'
               f'{_e(c.x_label)}</text>')
    for k, (x, y, cat) in enumerate(pts):
        px, py = ML + (W - ML - MR) * x / xmax, H - MB - (H - MB - MT) * y / ymax
        out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="5" fill="{PALETTE[k % len(PALETTE)]}">'
                   f'<title>{_e(cat)}: {x:,.2f} ms, ${y:,.3f}/M</title></circle>')
    out += _legend([cat for _, _, cat in pts])
    out.append("</svg>")
    return "\n".join(out)


def _roofline(c: Chart, name: str) -> str:
    out = _frame(c, name)
    xs = [p[0] for line in c.lines.values() for p in line] + c.series.get("intensity", [])
    ys = [p[1] for line in c.lines.values() for p in line] + c.series.get("flops", [])
    xs = [x for x in xs if x > 0] or [1.0, 10.0]
    ys = [y for y in ys if y > 0] or [1.0, 10.0]
    lx0, lx1 = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
    ly0, ly1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    lx1, ly1 = max(lx1, lx0 + 1), max(ly1, ly0 + 1)

    def px(x: float) -> float:
        return ML + (W - ML - MR) * (math.log10(x) - lx0) / (lx1 - lx0)

    def py(y: float) -> float:
        return H - MB - (H - MB - MT) * (math.log10(y) - ly0) / (ly1 - ly0)

    for e in range(lx0, lx1 + 1):
        out.append(f'<text x="{px(10 ** e):.1f}" y="{H - MB + 14}" font-size="10" text-anchor="middle">1e{e}</text>')
    for e in range(ly0, ly1 + 1):
        out.append(f'<line x1="{ML}" y1="{py(10 ** e):.1f}" x2="{W - MR}" y2="{py(10 ** e):.1f}" stroke="#eee"/>'
                   f'<text x="{ML - 6}" y="{py(10 ** e) + 4:.1f}" font-size="10" text-anchor="end">1e{e}</text>')
    out.append(f'<text x="{(ML + W - MR) / 2}" y="{H - 20}" font-size="11" text-anchor="middle">'
               f'{_e(c.x_label)} (log)</text>')
    names = list(c.lines)
    for k, (label, line) in enumerate(c.lines.items()):
        d = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in line)
        out.append(f'<polyline points="{d}" fill="none" stroke="{PALETTE[k % len(PALETTE)]}" stroke-width="2">'
                   f'<title>{_e(label)}</title></polyline>')
    for k, (cat, x, y) in enumerate(zip(c.categories, c.series.get("intensity", []), c.series.get("flops", []))):
        out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="5" fill="#222" stroke="white">'
                   f'<title>{_e(cat)}: {x:,.1f} FLOP/B, {y / 1e12:,.1f} TFLOP/s</title></circle>'
                   f'<text x="{px(x) + 7:.1f}" y="{py(y) - 4:.1f}" font-size="10">#{_e(cat.split()[0][1:])}</text>')
    out += _legend(names)
    out.append("</svg>")
    return "\n".join(out)


def svg(c: Chart, name: str) -> str:
    if c.kind == "roofline":
        return _roofline(c, name)
    if c.kind == "scatter":
        return _scatter(c, name)
    return _bars(c, name)


# --- HTML -----------------------------------------------------------------------------------------------------

CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;
padding:4px 8px;text-align:right;font-size:13px}th{background:#f4f4f4}td.l,th.l{text-align:left}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}h3{font-size:1.05em}
.chart{display:block;margin:1em 0;max-width:100%;height:auto}ul.why{font-size:13px}.muted{color:#666;
font-size:12px}.status{font-weight:bold}"""


def _money(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"${x:,.{digits}f}"


def _table(head: list[str], rows: list[list[str]], left: int = 0) -> str:
    th = "".join(f'<th class="{"l" if i < left else ""}">{_e(h)}</th>' for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{_e(v)}</td>' for i, v in enumerate(r))
                   + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _plan_section(p: Plan, label: str, who: str) -> str:
    m, pct = p.memory, p.load.get("percentiles_ms", {})
    out = [f'<h3 id="plan-{label}">#{label}{_e(who)}: {p.gpus} x {_e(p.gpu)}, TP {p.tp} PP {p.pp} EP {p.ep}, '
           f'{_e(p.quantization)} / KV {_e(p.kv_dtype)}, {p.replicas} replica(s)</h3>']
    out.append(_table(["memory per GPU", "GB"], [[k, f"{m[key] / GB:,.2f}"] for k, key in (
        ("weights", "weights_bytes"), ("KV cache", "kv_cache_bytes"), ("activations", "activation_bytes"),
        ("framework reserve", "reserve_bytes"), ("total", "total_bytes"), ("usable", "usable_bytes"),
        ("capacity", "capacity_bytes"))], left=1))
    idle = p.load.get("idle", {}).get("tpot_ms", p.tpot_ms)
    out.append(_table(["decode step, idle", "ms per token", "share"],
                      [[k.replace("_", " "), f"{idle * v:,.3f}", f"{v:.0%}"] for k, v in p.regime_shares.items()]
                      + [["TPOT (idle)", f"{idle:,.3f}", ""]], left=1))
    rows = []
    for metric, label in (("ttft", "TTFT"), ("tpot", "TPOT"), ("itl", "ITL"), ("e2e", "end-to-end")):
        rows.append([label, *(f"{pct[f'{metric}_{q}']:,.1f}" if f"{metric}_{q}" in pct else "" for q in
                              ("mean", "p50", "p90", "p99"))])
    out.append(_table(["under load, ms", "mean", "p50", "p90", "p99"], rows, left=1))
    binding = [f"replica capacity bound by {p.load.get('binding', '?')}"]
    if p.explanation is not None:
        binding += [f"batch limited by {f.constraint}: {wording.batch_limit(f)}" for f in p.explanation.batch_limit[:1]]
        binding.append(f"replica count: {wording.count_limit(p.explanation.count_limit)}")
    out.append("<p><b>Binding constraints</b></p><ul class=\"why\">" + "".join(f"<li>{_e(b)}</li>" for b in binding)
               + "</ul>")
    lines = [x.strip() for x in wording.plan_lines(p)]
    if lines:
        out.append("<p><b>Explanation</b></p><ul class=\"why\">" + "".join(f"<li>{_e(x)}</li>" for x in lines)
                   + "</ul>")
    return "\n".join(out)


def render_report(result: PlanResult, title: str = "plan") -> str:
    """The whole report as one HTML string (no external resource)."""
    r = result
    head = (f"status {r.status}; objective {r.objective}; backend {r.backend}; "
            f"{r.searched_configurations:,} configurations x batch levels searched")
    models = ", ".join(f"{k}: {v}" for k, v in r.inputs.get("models", {}).items())
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>Deployment plan: {_e(title)}</title><style>{CSS}</style></head><body>",
           f"<h1>Deployment plan: {_e(title)}</h1>",
           f'<p class="status">{_e(head)}</p>',
           f'<p class="muted">model {_e(models)}; calibration {_e(r.inputs.get("calibration", "none"))}; '
           f'catalog {_e(r.inputs.get("catalog_digest", "?"))}</p>']
    out += [f'<p class="muted">{_e(x)}</p>' for x in wording.prefix_caches(r.inputs)]
    if not r.plans:
        out.append("<p>No plan was found.</p>")
        if r.diagnosis:
            out.append("<ul>" + "".join(f"<li>{_e(d.family)} {_e(d.name)}: {_e(wording.diagnosis(d))}</li>"
                                        for d in r.diagnosis) + "</ul>")
        if r.relaxations:
            out.append("<p>Smallest change to each limit that makes it feasible:</p><ul>"
                       + "".join(f"<li>{_e(wording.relaxation(x))}</li>" for x in r.relaxations) + "</ul>")
        out += [f"<p>{_e(wording.unfinished(u))}</p>" for u in r.unfinished]
        out.append("</body></html>")
        return "\n".join(out) + "\n"
    rows = []
    several = len({p.workload for p in r.plans}) > 1 or any(p.share < 1 - 1e-9 for p in r.plans)

    def who(p: Plan) -> str:
        role = f", {p.role} pool" if p.role != "aggregated" else ""
        return f" ({p.workload}{role}, {p.share:.0%} of its traffic)" if several or role else ""

    for p in r.plans:
        pct = p.load.get("percentiles_ms", {})
        a = r.answer(p.rank)
        tied = "" if a is None or a.tied_with is None else f" (tied with #{a.tied_with})"
        rows.append([r.label(p) + tied, f"{p.gpus} x {p.gpu}{who(p)}", f"{p.tp}/{p.pp}/{p.ep}", str(p.replicas),
                     f"{p.quantization} / {p.kv_dtype}", str(p.load.get("scheduler", {}).get("max_num_seqs", p.batch)),
                     f"{p.load.get('requests_per_s_per_replica', 0):,.2f}",
                     f"{p.ttft_ms:,.0f} / {pct.get('ttft_p99', float('nan')):,.0f}", f"{p.tpot_ms:,.1f}",
                     f"{p.throughput_tokens_per_s:,.0f}", _money(p.cost_per_hour),
                     _money(p.cost_per_million_tokens, 3), p.regime])
    out.append("<h2>Ranked plans</h2>")
    out.append(_table(["#", "GPUs", "TP/PP/EP", "replicas", "precision (w / kv)", "max seqs", "req/s per replica",
                       "TTFT ms mean/p99", "TPOT ms", "tokens/s", "$/hour", "$/M tokens", "regime"], rows, left=0))
    cs = charts(r)
    out.append("<h2>Charts</h2>")
    for name, c in cs.items():
        out.append(svg(c, name))
    out.append("<h2>Each plan</h2>")
    first = r.answer(1)
    summary = [wording.binding(b) for b in (first.binding if first is not None else [])]
    summary += [wording.marginal(m) for m in r.marginal]
    summary += [wording.move(m) for m in (first.moves if first is not None else [])]
    summary += [wording.mode_verdict(v) for v in r.disaggregation]
    summary += [wording.unfinished(u) for u in r.unfinished]
    summary += [f"baseline {b.baseline}: " + ("-" if b.cost_per_hour is None else f"${b.cost_per_hour:,.2f}/hour")
                + f"; {wording.baseline_how(b)}" for b in r.baselines]
    if first is not None and first.totals is not None and (several or summary):
        t = first.totals
        cost = "n/a" if t.cost_per_hour is None else f"${t.cost_per_hour:,.2f}/hour"
        summary.insert(0, f"plan #1 in all: {cost}, {t.gpus} GPUs on {t.nodes} node(s), {t.replicas} replica(s) of "
                          f"{t.configurations} configuration(s)")
    if summary:
        out.append("<h2>What plan #1 adds up to</h2><ul>" + "".join(f"<li>{_e(x)}</li>" for x in summary) + "</ul>")
    out += [_plan_section(p, r.label(p), who(p)) for p in r.plans]
    if r.notes:
        out.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in r.notes) + "</ul>")
    out.append('<p class="muted">Written by planner report; every figure is in the plan JSON '
               "(exact there, rounded here).</p></body></html>")
    return "\n".join(out) + "\n"
