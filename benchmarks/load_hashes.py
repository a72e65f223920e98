"""Digests of the candidate table's ``load`` stage (issue 26): for every shipped plan instance,
optionally benchmarks/fleet_scale.py's fleet (--fleet N) and N small random plans (--small N,
benchmarks/load_per_case.py's), one sha256 per instance over every array the load stage returns
(planner/candidates/table.py ``_load``: rates, statistics, scheduler figures, bit for bit).
Run at two revisions and compare the lines: a change to the load model's speed that keeps
its figures prints the same digests.

    python benchmarks/load_hashes.py [--fleet 50] [--small 20]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fleet_scale import spec_for  # noqa: E402
from load_per_case import small_specs  # noqa: E402

import planner.candidates.table as table_mod  # noqa: E402
from planner.candidates.table import build_candidates  # noqa: E402
from planner.resolve.problem import resolve, resolve_fleet  # noqa: E402
from planner.schemas.plan import PlanSpec, load_plan_spec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _feed(h, a) -> None:
    a = np.ascontiguousarray(a)
    h.update(str(a.dtype).encode() + str(a.shape).encode())
    h.update(a.tobytes())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fleet", type=int, default=0)
    ap.add_argument("--small", type=int, default=0)
    args = ap.parse_args()
    cases = []
    for path in sorted((ROOT / "instances").glob("*.yaml")):
        if path.name.startswith(("estimate_", "fleet_", "schedule_")):
            continue
        spec, doc = load_plan_spec(str(path))
        cases.append((path.stem, [resolve(spec, doc)]))
    if args.small:
        cases.append((f"{args.small} small", [resolve(PlanSpec.model_validate(d)) for d in small_specs(args.small)]))
    if args.fleet:
        cases.append((f"fleet {args.fleet}", [resolve_fleet(spec_for(args.fleet))]))
    stage = table_mod._load
    current = {"h": hashlib.sha256()}

    def hashed(*a, **k):
        out = stage(*a, **k)
        h = current["h"]
        for f in fields(out):
            if f.name != "stats":
                _feed(h, getattr(out, f.name))
        for key in sorted(out.stats):
            h.update(repr(key).encode())
            _feed(h, out.stats[key])
        return out
    table_mod._load = hashed
    for name, ps in cases:
        current["h"] = hashlib.sha256()
        for p in ps:
            build_candidates(p)
        print(f"{name} {current['h'].hexdigest()[:16]}", flush=True)


if __name__ == "__main__":
    main()
