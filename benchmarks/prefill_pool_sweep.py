"""The disaggregated prefill pool's closed form (planner/physics/disagg.py ``prefill_metrics``)
against its simulator (planner/simulate.py ``simulate_prefill_pool``) over a grid (issue 25,
the busy branch; docs/disaggregation.md section 5, 'the prefill pool over a sweep'):

    python benchmarks/prefill_pool_sweep.py closed FILE    # the closed form over the grid, as JSON
    python benchmarks/prefill_pool_sweep.py sim FILE       # the simulator over the grid, as JSON (minutes)
    python benchmarks/prefill_pool_sweep.py table SIM CLOSED [CLOSED ...]   # the checks and errors, per file

Llama-3.1-8B on one H100 (batch 64, w16a16, bf16 KV), inter-node KV link; both engine presets
(``sglang``; ``realistic``, vLLM's); prompts of 128-20,000 tokens (fixed), 0 and 30 % of each
cached (the simulator's ``StatedCache``), Poisson and gamma arrivals (CV^2 1 and 4), 11 loads
from 0.05 to 0.95 of the prefill saturation (``prefill_saturation`` at that cached share).
The simulator: seeds 1 and 2, 4,000 requests each (the pooled TTFTs' mean, p90 and p99). ``closed``
runs in any tree (copy the script to another worktree's benchmarks/ to measure that tree);
``table`` prints, per closed-form file: the stable rows with a non-finite TTFT, the stable
rows whose mean TTFT falls as the load rises, and the closed form's error against the
simulator (mean, p90, p99: the percentiles TTFT targets use) per engine and prompt band, then
per load band over the rows every file given calls stable."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.catalog.store import Catalog  # noqa: E402
from planner.physics.disagg import kv_transfer_time, prefill_metrics, prefill_saturation  # noqa: E402
from planner.physics.load import Workload, engine, step_physics  # noqa: E402
from planner.physics.options import PRESETS  # noqa: E402
from planner.physics.space import Configs, GpuTable  # noqa: E402

PRESET_NAMES = ("sglang", "realistic")
PROMPTS = (128, 170, 256, 512, 1000, 2000, 4000, 8192, 12000, 20000)
LOADS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
CV2S = (1.0, 4.0)
CACHED = (0.0, 0.3)
SEEDS = (1, 2)
REQUESTS = 4000


def _cases():
    cat = Catalog.default()
    gpus = GpuTable.build([cat.gpus["h100-sxm"]])
    for preset in PRESET_NAMES:
        for S in PROMPTS:
            ph = step_physics(cat.model("llama-3.1-8b"), gpus, Configs.single(0, "w16a16", "bf16", 1, 1, 1, 64, S, 2),
                              PRESETS[preset])
            eng = engine(ph)
            for h in CACHED:
                sat = float(prefill_saturation(ph, eng, float(S), cached=h * S)[0])
                for cv2 in CV2S:
                    yield f"{preset} {S} h{h} cv2 {cv2}", ph, eng, S, h, cv2, sat


def closed(path: str) -> None:
    out = {}
    for key, ph, eng, S, h, cv2, sat in _cases():
        w = Workload(isl=float(S), osl=2.0, arrival_cv2=cv2, cached=h * S)
        rows = []
        for x in LOADS:
            r = prefill_metrics(ph, eng, w, np.array([x * sat]))
            rows.append([bool(r.stable[0]), *(float(r.get("ttft", k)[0]) for k in ("mean", "p90", "p99"))])
        out[key] = rows
    Path(path).write_text(json.dumps(out))


def sim(path: str) -> None:
    from planner.simulate import Arrivals, Lengths, simulate_prefill_pool
    from planner.traces.cache import StatedCache
    out = {}
    for key, ph, eng, S, h, cv2, sat in _cases():
        xf = float(kv_transfer_time(ph, float(S), "inter")[0])
        rows = []
        for x in LOADS:
            arr = Arrivals("poisson", rate=x * sat) if cv2 == 1.0 else Arrivals("gamma", rate=x * sat,
                                                                                 cv=float(np.sqrt(cv2)))
            tt = np.concatenate([np.asarray(simulate_prefill_pool(
                ph, eng, 0, arr, Lengths(S), transfer_s=xf, n_requests=REQUESTS, seed=seed,
                prefix_cache=StatedCache(hit_rate=h) if h > 0 else None).ttft) for seed in SEEDS])
            rows.append([float(tt.mean()), float(np.percentile(tt, 90)), float(np.percentile(tt, 99))])
        out[key] = rows
        print(key, flush=True)
    Path(path).write_text(json.dumps(out))


def _band(S: int) -> str:
    return "128-512" if S <= 512 else "1,000-4,000" if S <= 4000 else "8,192-20,000"


def table(sim_path: str, closed_paths: list[str]) -> None:
    """Per closed-form file: the checks, then the errors per engine and prompt band over the
    stable rows, and the same per load band (<= 0.5, 0.6-0.8, 0.9-0.95 of saturation) over
    the rows stable in every file given (the medians of different files then cover the same
    rows). p99 columns where both files carry it (files written before it had mean and p90)."""
    s = json.loads(Path(sim_path).read_text())
    files = {path: json.loads(Path(path).read_text()) for path in closed_paths}
    common = {(key, i) for key in s for i in range(len(LOADS))
              if all(c[key][i][0] and np.all(np.isfinite(c[key][i][1:])) for c in files.values())}
    for path, c in files.items():
        bad, falls, errs, over = [], [], {}, 0
        by_load = {}
        for key, rows in c.items():
            preset, S = key.split()[0], int(key.split()[1])
            for i, (ok, mean, p90, *p99) in enumerate(rows):
                if not ok:
                    continue
                if not (np.isfinite(mean) and np.isfinite(p90)):
                    bad.append(f"{key} load {LOADS[i]}")
                if i and rows[i - 1][0] and mean < rows[i - 1][1] * (1 - 1e-9):
                    falls.append(f"{key} load {LOADS[i - 1]} -> {LOADS[i]}: {1e3 * rows[i - 1][1]:.1f} -> "
                                 f"{1e3 * mean:.1f} ms")
                sm, sp, *sp99 = s[key][i]
                over += mean > 3.0 * sm
                e99 = p99[0] / sp99[0] - 1.0 if p99 and sp99 else np.nan
                e = errs.setdefault((preset, _band(S)), [[], [], "", 0.0, []])
                e[0].append(mean / sm - 1.0)
                e[1].append(p90 / sp - 1.0)
                e[4].append(e99)
                if abs(mean / sm - 1.0) > abs(e[3]):
                    e[2], e[3] = f"{S} h{key.split()[2][1:]} CV^2 {key.split()[4]} at {LOADS[i]}", mean / sm - 1.0
                if (key, i) in common:
                    band = "<= 0.5" if LOADS[i] <= 0.5 else "0.6-0.8" if LOADS[i] <= 0.8 else "0.9-0.95"
                    by_load.setdefault((preset, _band(S), band), []).append((mean / sm - 1.0, p90 / sp - 1.0, e99))
        print(f"{path}: {len(bad)} stable rows with a non-finite TTFT, {len(falls)} mean TTFTs falling as load rises, "
              f"{over} stable rows with a mean TTFT over 3 x the simulator's")
        for line in (bad + falls)[:12]:
            print("  ", line)
        print("| engine | prompts | stable rows | mean: median err | median abs err | within 10 % | p90: median err "
              "| median abs err | within 20 % | p99: median err | median abs err | worst mean (prompt, cached, CV^2, load) |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for (preset, band), (em, ep, where, worst, e99) in errs.items():
            am, ap, a99 = np.abs(em), np.abs(ep), np.abs(e99)
            p99_cells = (f"{100 * np.median(e99):+.1f} % | {100 * np.median(a99):.1f} %" if np.all(np.isfinite(e99))
                         else "- | -")
            print(f"| {preset} | {band} | {len(am)} | {100 * np.median(em):+.1f} % | {100 * np.median(am):.1f} % | "
                  f"{np.mean(am <= 0.1):.0%} | {100 * np.median(ep):+.1f} % | {100 * np.median(ap):.1f} % | "
                  f"{np.mean(ap <= 0.2):.0%} | {p99_cells} | {100 * worst:+.0f} % ({where}) |")
        print(f"by load, over the {len(common)} rows stable in every file given: median err (median abs err)")
        print("| engine | prompts | load | rows | mean | p90 | p99 |")
        print("|---|---|---|---|---|---|---|")
        for (preset, band, lb), v in sorted(by_load.items()):
            a = np.array(v)
            cells = [f"{100 * np.median(a[:, j]):+.1f} % ({100 * np.median(np.abs(a[:, j])):.1f})"
                     if np.all(np.isfinite(a[:, j])) else "-" for j in range(3)]
            print(f"| {preset} | {band} | {lb} | {len(a)} | " + " | ".join(cells) + " |")


def main() -> None:
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "closed":
        closed(args[1])
    elif len(args) == 2 and args[0] == "sim":
        sim(args[1])
    elif len(args) >= 3 and args[0] == "table":
        table(args[1], args[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
