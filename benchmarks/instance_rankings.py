"""Print the ranking (top plans) of each shipped instance, now and at an earlier revision.

    python benchmarks/instance_rankings.py                 # this checkout
    python benchmarks/instance_rankings.py --before REV    # REV (a git worktree) and this checkout

The earlier revision runs from a temporary `git worktree` in a subprocess, so both rankings
come from the same catalog files of their own revision. docs/model.md section 10 says which
physics change moved each ranking and why.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIELDS = ("gpu", "gpus", "tp", "pp", "ep", "quantization", "kv_dtype", "batch")


def rankings(root: Path, top: int) -> dict[str, list[dict]]:
    sys.path.insert(0, str(root))
    from planner.schemas.plan import load_plan_spec
    from planner.whatif.relax import plan_and_relax

    out = {}
    for path in sorted((root / "instances").glob("*.yaml")):
        if path.name.startswith(("estimate_", "fleet_")):
            continue
        spec, doc = load_plan_spec(str(path))
        res = plan_and_relax(spec, doc).to_dict()
        out[path.name] = [{**{k: p.get(k) for k in FIELDS}, "objective_value": p.get("objective_value")}
                          for p in res["plans"][:top]] + [{"objective": res["objective"]}]
    return out


def show(title: str, r: dict[str, list[dict]]) -> None:
    print(f"== {title}")
    for name, plans in r.items():
        objective = plans[-1]["objective"]
        print(f"{name} ({objective})")
        if len(plans) == 1:
            print("   (no plan)")
        for i, p in enumerate(plans[:-1], 1):
            cfg = f"{p['gpus']} x {p['gpu']} TP{p['tp']} PP{p['pp']} EP{p['ep']} {p['quantization']}/{p['kv_dtype']} b{p['batch']}"
            print(f"  #{i} {cfg:<48} {p['objective_value']:.6g}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", help="git revision to compare with")
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--json-from", help=argparse.SUPPRESS)  # internal: print JSON for a worktree
    args = ap.parse_args()
    if args.json_from:
        print(json.dumps(rankings(Path(args.json_from), args.top)))
        return
    if args.before:
        with tempfile.TemporaryDirectory() as tmp:
            wt = Path(tmp) / "before"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(wt), args.before],
                           check=True, capture_output=True)
            try:
                res = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--json-from", str(wt),
                                      "--top", str(args.top)], check=True, capture_output=True, text=True, cwd=wt)
                show(f"before ({args.before})", json.loads(res.stdout.strip().splitlines()[-1]))
            finally:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(wt)], check=False)
    show("now", rankings(ROOT, args.top))


if __name__ == "__main__":
    main()
