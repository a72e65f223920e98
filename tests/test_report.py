"""The HTML report (planner/report/): self-contained, rendered in headless Chromium (Debian's
`chromium`, installed by .ci/run when missing; the browser test is skipped only when no
chromium can be found), with its charts present and non-empty and the top plan's figures in
the page; `planner report` and `planner plan --report`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli.root import app
from planner.plan.result import PlanResult
from planner.report.html import charts, render_report
from planner.schemas.plan import load_plan_spec
from planner.whatif.relax import plan_and_relax

ROOT = Path(__file__).resolve().parents[1]
RUNNER = CliRunner()
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHARTS = ("memory", "step", "latency", "roofline", "cost")


@pytest.fixture(scope="module")
def result() -> PlanResult:
    spec, doc = load_plan_spec(str(ROOT / "instances" / "chat_llama70b.yaml"))
    r = plan_and_relax(spec, doc, top_k=3, time_limit=60.0, simulate=False)
    return PlanResult.from_dict(json.loads(json.dumps(r.to_dict())))


def _top_figures(r: PlanResult) -> list[str]:
    p = r.plans[0]
    return [f"{p.gpus} x {p.gpu}", f"{p.tp}/{p.pp}/{p.ep}", f"${p.cost_per_million_tokens:,.3f}",
            f"{p.throughput_tokens_per_s:,.0f}", f"{p.tpot_ms:,.1f}"]


def test_report_is_self_contained_and_carries_the_figures(result):
    page = render_report(result, "chat")
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "no external resource"
    assert "<script" not in page
    for name in CHARTS:
        assert f'id="chart-{name}"' in page
    for text in _top_figures(result):
        assert text in page, text
    for p in result.plans:
        assert f'id="plan-{p.rank}"' in page


def test_charts_have_data(result):
    cs = charts(result)
    assert set(cs) == set(CHARTS)
    assert all(sum(v) > 0 for v in cs["memory"].series.values() if v)
    assert cs["roofline"].lines and len(cs["roofline"].series["intensity"]) == len(result.plans)


def test_infeasible_result_renders(tmp_path):
    r = PlanResult(status="infeasible", objective="tpot", backend="cpsat", plans=[], searched_configurations=0,
                   solve_seconds=None, gap=None, excluded_gpus={})
    assert "No plan was found" in render_report(r)


def test_cli_report_and_plan_report(result, tmp_path):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(result.to_dict()))
    r = RUNNER.invoke(app, ["report", str(path), "--out", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "r.html").read_text().count("<svg") == len(CHARTS)
    bad = RUNNER.invoke(app, ["report", str(path), "--out", str(tmp_path / "r.txt")])
    assert bad.exit_code == 2
    r = RUNNER.invoke(app, ["plan", str(ROOT / "instances" / "seed_4090_vs_h100.yaml"), "--no-simulate",
                            "--report", str(tmp_path / "p.html")])
    assert r.exit_code == 0, r.output
    assert "Ranked plans" in (tmp_path / "p.html").read_text()


def test_png_plots(result, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(result.to_dict()))
    r = RUNNER.invoke(app, ["report", str(path), "--out", str(tmp_path / "r.html"), "--png", str(tmp_path / "png")])
    assert r.exit_code == 0, r.output
    for name in CHARTS:
        data = (tmp_path / "png" / f"{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (.ci/run installs Debian's package)")
def test_report_renders_in_headless_chromium(result, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(render_report(result, "chat"))
    base = [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr", "--v=0",
            f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "CONSOLE" not in dom.stderr, "console messages: " + dom.stderr[-2000:]
    html = dom.stdout
    assert "<h1>Deployment plan: chat</h1>" in html
    for name in CHARTS:
        svg = re.search(rf'<svg[^>]*id="chart-{name}".*?</svg>', html, re.S)
        assert svg, name
        assert len(re.findall(r"<(rect|circle|polyline)\b", svg.group(0))) >= 3, f"{name} is empty"
    for text in _top_figures(result):
        assert text.replace("&", "&amp;") in html, text
    shot = tmp_path / "shot.png"
    out = subprocess.run([*base, "--hide-scrollbars", "--window-size=1100,900", f"--screenshot={shot}",
                          page.as_uri()], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 20_000
