"""`planner check PLAN.json RESULT...`: a benchmark's result beside the plan's prediction."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from planner.cli.common import about, dump_json, emit, guarded, read_result
from planner.cli.render import to_text
from planner.errors import InputError

EngineChoice = enum.Enum("EngineChoice", {"vllm": "vllm", "sglang": "sglang", "trtllm": "trtllm"}, type=str)

EPILOG = ("Example: planner check plan.json plan1-vllm-bench.json plan1-aiperf/profile_export_aiperf.json "
          "--append mine.csv && planner calibrate mine.csv --under-load --out mine.yaml")


def check_command(
    plan_file: Annotated[Path, typer.Argument(help="a plan or fleet written by 'planner plan|fleet --output'")],
    results: Annotated[list[Path], typer.Argument(help="result files: vllm bench serve --save-result JSON, AIPerf "
                                                  "profile_export_aiperf.json, GuideLLM benchmarks JSON")],
    rank: Annotated[int, typer.Option("--rank", help="the plan (or fleet deployment) the benchmark ran")] = 1,
    engine: Annotated[Optional[EngineChoice], typer.Option("--engine", help="the engine that served the run "
                                                           "(default: the plan's engine profile)")] = None,
    append: Annotated[Optional[Path], typer.Option("--append", help="append the measurements to this CSV "
                                                   "(docs/validation.md rows; 'planner calibrate --under-load' fits "
                                                   "them)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output on stdout")] = False,
) -> None:
    """Each figure the run measured (TTFT, TPOT, ITL, end-to-end; mean and percentiles) beside the plan's
    prediction under load, with a verdict: as predicted (within the model's median error for the plan's GPU
    family and format), slower or faster; and each latency target of the plan, met or missed.

    Exit 0 when every target the run measured is met, 1 when one is missed, 2 for a bad file."""

    def run() -> int:
        from planner.fidelity.check import append_csv, compare, rows
        from planner.fidelity.check import read_result as read_measured

        result = read_result(plan_file)
        plan = next((p for p in result.plans if p.rank == rank), None)
        if plan is None:
            raise InputError("no plan of that rank in the file", file=str(plan_file), path="--rank", value=rank,
                             accepted=", ".join(str(p.rank) for p in result.plans) or "none (no plan)")
        if plan.role != "aggregated":
            raise InputError(f"plan {rank} is a {plan.role} pool: a benchmark measures the pair through its router, "
                             "not one pool", path="--rank", value=rank,
                             accepted=", ".join(str(p.rank) for p in result.plans if p.role == "aggregated")
                             or "an aggregated deployment")
        eng = engine.value if engine is not None else str(result.inputs.get("engine") or "vllm")
        seen: dict[Path, Path] = {plan_file.resolve(): plan_file}
        for r in results:
            if r.resolve() in seen:
                raise InputError(f"{r} is named twice (as {seen[r.resolve()]}): one run would count twice",
                                 file=str(r), path="RESULTS", value=str(r),
                                 accepted="each result file once, none of them the plan file")
            seen[r.resolve()] = r
        checks = [compare(result, plan, read_measured(str(r))) for r in results]
        written = 0
        if append is not None:
            if append.suffix.lower() != ".csv":
                raise InputError("the measurements are written as CSV", path="--append", value=str(append),
                                 accepted="a path ending in .csv")
            new = [row for c in checks for row in rows(result, plan, c, eng)]
            written = append_csv(append, new, protected=(plan_file, *results))
        missed = any(line.meets is False for c in checks for line in c.lines)
        if as_json:
            emit(dump_json({"plan_file": str(plan_file), "rank": rank, "engine": eng,
                            "checks": [c.to_dict() for c in checks], "appended_rows": written,
                            "targets_met": not missed}))
        else:
            emit(render(checks, append, written))
        return 1 if missed else 0

    code = guarded(about(plan_file, plan_file=True)(run), as_json=as_json)
    if code:
        raise typer.Exit(code)


def render(checks, append: Path | None, written: int) -> str:
    parts: list = []
    for c in checks:
        m = c.measured
        load = (f"{m.concurrency} clients" if m.concurrency else f"{m.rate:g} requests/s" if m.rate else "load unknown")
        t = Table(title=f"{m.file}: {m.version}, {m.completed or 0} requests at {load}; plan #{c.rank} "
                        f"(closed-form prediction under load)", title_justify="left")
        for col in ("figure", "statistic", "predicted ms", "measured ms", "error", "verdict", "target ms", "target"):
            t.add_column(col, justify="right" if col.endswith("ms") or col == "error" else "left")
        for x in c.lines:
            t.add_row(x.figure.upper(), x.statistic, _ms(x.predicted), _ms(x.measured),
                      f"{x.error:+.1%}" if x.error is not None else "", x.verdict, _ms(x.target),
                      "" if x.meets is None else ("met" if x.meets else "MISSED"))
        parts.append(t)
        parts.append(f"verdict band: +/-{c.band:.1%}, the model's median error on {c.band_source}")
        parts += [f"note: {n}" for n in c.notes]
    if append is not None:
        parts.append(f"{written} measurement rows appended to {append}")
    return to_text(*parts)


def _ms(x: float | None) -> str:
    return "" if x is None else f"{x:,.1f}"
