"""Golden summaries of the shipped instances: regenerate with `python tests/golden_plans.py`.

The script prints, per instance, whether the new top objective is a gain, a regression or
drift against the stored one, then rewrites tests/golden/plan_summaries.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "plan_summaries.json"
FIELDS = ("gpu", "gpus", "tp", "pp", "ep", "replicas", "quantization", "kv_dtype", "batch")


def summarise(result: dict) -> dict:
    return {"status": result["status"], "objective": result["objective"], "plans": len(result["plans"]),
            "top": {k: result["plans"][0][k] for k in FIELDS} if result["plans"] else None,
            "top_objective_value": result["plans"][0]["objective_value"] if result["plans"] else None,
            "diagnosed": sorted(f"{d['family']}:{d['name']}:{d['fact']['constraint']}" for d in result.get("diagnosis", [])),
            "relaxed_limits": sorted(x["limit"] for x in result.get("relaxations", []) if x["patch"])}


def instances() -> list[Path]:
    return sorted(p for p in (ROOT / "instances").glob("*.yaml") if not p.name.startswith(("estimate_", "fleet_", "schedule_")))


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from planner.schemas.plan import load_plan_spec
    from planner.whatif.answer import answer

    old = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    new = {}
    for path in instances():
        spec, doc = load_plan_spec(str(path))
        new[path.name] = summarise(answer(spec, doc, backend="cpsat").to_dict())   # as `plan --json --no-simulate`
        before, after = old.get(path.name, {}).get("top_objective_value"), new[path.name]["top_objective_value"]
        if path.name not in old:
            verdict = "new"
        elif before is None and after is None:
            verdict = "drift (still infeasible)"
        elif before is None or after is None:
            verdict = "gain (now feasible)" if before is None else "regression (now infeasible)"
        else:
            sense = -1 if new[path.name]["objective"] == "throughput" else 1
            delta = sense * (after - before) / abs(before)
            verdict = "drift" if abs(delta) < 1e-6 else ("regression" if delta > 0 else "gain")
        print(f"{path.name}: {verdict} ({before} -> {after})")
    GOLDEN.write_text(json.dumps(new, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
