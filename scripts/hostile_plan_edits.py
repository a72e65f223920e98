"""Edit one non-string field of a plan file at a time (null, "1", -1, 0, +-1e308, 5e-324, {}, [],
true; one value per field, seeded) and run launch --out, launch --k8s kserve, report and check on
each edit; print every run that did not end with exit 0, 1 or 2, or left output behind on exit 2.

    planner plan INSTANCE --output plan.json && python scripts/hostile_plan_edits.py plan.json [SEED]

(The review of issue 23 ran it on the plan of tests/test_review_findings.py's SMALL instance, seed 0:
1,080 runs, 72 exits 3.)"""

from __future__ import annotations

import copy
import json
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

from typer.testing import CliRunner

from planner.cli.root import app

VALUES = [None, "1", -1, 0, 1e308, 5e-324, {}, [], True, -1e308]
BENCH = Path(__file__).resolve().parents[1] / "tests" / "data" / "bench" / "results" / "faster" / "aiperf.json"


def leaves(x, p):
    if isinstance(x, dict):
        if p:
            yield p
        for k, v in x.items():
            yield from leaves(v, p + [k])
    elif isinstance(x, list):
        if p:
            yield p
        for i, v in enumerate(x[:1]):
            yield from leaves(v, p + [i])
    elif not isinstance(x, str):
        yield p


def main(plan: str, seed: int) -> int:
    base = json.loads(Path(plan).read_text())
    rng = random.Random(seed)
    runner = CliRunner()
    work = Path(tempfile.mkdtemp())
    out = work / "out"
    bad, runs = [], 0
    for p in [p for p in leaves(base, []) if p[0] in ("plans", "inputs", "status", "answers")]:
        value = rng.choice(VALUES)
        data = copy.deepcopy(base)
        node = data
        for k in p[:-1]:
            node = node[k]
        node[p[-1]] = value
        f = work / "edited.json"
        f.write_text(json.dumps(data))
        for args in (["launch", str(f), "--out", str(out)], ["launch", str(f), "--k8s", "kserve", "--out", str(out)],
                     ["report", str(f), "--out", str(out / "r.html")], ["check", str(f), str(BENCH)]):
            shutil.rmtree(out, ignore_errors=True)
            r = runner.invoke(app, args)
            runs += 1
            if r.exit_code not in (0, 1, 2) or "internal error" in r.output:
                bad.append((args[0], p, value, r.exit_code, r.output[-200:].replace("\n", " ")))
            elif r.exit_code == 2 and out.exists() and os.listdir(out):
                bad.append((args[0], p, value, "output left on exit 2", os.listdir(out)))
    shutil.rmtree(work, ignore_errors=True)
    for b in bad:
        print(b)
    print(f"{runs} runs, {len(bad)} bad")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0))
