"""Cost of the load model per distinct case (issue 26: "load model <= 5 us per distinct case"):
the ``load`` stage of the candidate table (capacity at SLO of every row that fits in memory,
planner/candidates/load.py, vectorised over the table) divided by those rows, each a distinct
(slot, configuration, batch) case, for every shipped plan instance and, with --grow, for
chat_llama70b with its catalog grown to 240 GPU types (benchmarks/solver_speed.py's ``grown``),
and with --fleet, benchmarks/fleet_scale.py's generated fleet.

    python benchmarks/load_per_case.py [--repeat 5] [--grow 240] [--instances a,b] [--small 20] [--fleet 50]

``--small N`` adds N small random plans drawn as tests/test_metamorphic.py draws them (one or
two GPU types, TP 1-2, batch up to 32, seeded): tables of a few dozen rows, where numpy's cost
per call rather than per row is the load model's cost, as in most of the test suite's plans.

Prints per instance the rows that fit, the median load-stage seconds and microseconds per case
(CPU time, so that a loaded machine's waits do not count)."""


from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fleet_scale import spec_for  # noqa: E402
from solver_speed import grown  # noqa: E402

import planner.candidates.load as load_mod  # noqa: E402
import planner.candidates.table as table_mod  # noqa: E402
from planner.candidates.table import build_candidates  # noqa: E402
from planner.resolve.problem import resolve, resolve_fleet  # noqa: E402
from planner.schemas.plan import PlanSpec, load_plan_spec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def small_specs(n: int, seed: int = 3) -> list[dict]:
    """``n`` plan specs drawn from tests/test_metamorphic.py's ranges (its ``base``), seeded."""
    rng = random.Random(seed)
    gpus = ["h100-sxm", "a100-80gb", "l40s", "rtx-4090", "l4", "mi300x", "h200", "a100-40gb"]
    models = ["llama-3.1-8b", "llama-2-7b", "llama-2-13b", "qwen3-32b"]
    return [{"model": rng.choice(models),
             "workload": {"input_tokens": rng.randint(64, 2048), "output_tokens": rng.randint(16, 512),
                          "demand": {"output_tokens_per_s": rng.uniform(50, 5000)}},
             "slo": {"tpot_ms": rng.uniform(10, 120), "ttft_ms": rng.uniform(100, 3000)},
             "search": {"gpus": sorted(rng.sample(gpus, rng.randint(1, 2))),
                        "quantizations": [rng.choice(["w16a16", "w8a16", "w4a16"])], "kv_dtypes": ["bf16"],
                        "tp": [1, 2], "pp": [1], "max_batch": 32},
             "objective": "cost_per_hour", "top_k": 1} for _ in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--grow", type=int, default=0, help="GPU types of the grown chat_llama70b (0: none)")
    ap.add_argument("--instances", default=None, help="comma-separated instance names (default: all shipped plans)")
    ap.add_argument("--small", type=int, default=0, help="small random plans as tests/test_metamorphic.py draws them")
    ap.add_argument("--fleet", type=int, default=0, help="benchmarks/fleet_scale.py's fleet of that many workloads")
    args = ap.parse_args()
    cases = []
    for path in sorted((ROOT / "instances").glob("*.yaml")):
        if path.name.startswith(("estimate_", "fleet_", "schedule_")):
            continue
        if args.instances and path.stem not in args.instances.split(","):
            continue
        spec, doc = load_plan_spec(str(path))
        cases.append((path.stem, resolve(spec, doc)))
    if args.small:
        small = [resolve(PlanSpec.model_validate(d)) for d in small_specs(args.small)]
        cases.append((f"{args.small} small random plans", small))
    if args.fleet:
        cases.append((f"fleet_scale.py's {args.fleet} workloads", resolve_fleet(spec_for(args.fleet))))
    if args.grow:
        spec, doc = load_plan_spec(str(ROOT / "instances" / "chat_llama70b.yaml"))
        cases.append((f"chat_llama70b x{args.grow} GPU types", grown(resolve(spec, doc), args.grow)))
    # the load stage's CPU seconds (the table's _load: every distinct case once, the table's
    # PhysicsCache sharing repeats) and its cases: the rows that fit of each computation
    # (load_mod._start, once per search of one slot, or of several computed together)
    acc = {"s": 0.0, "n": 0}
    load_stage, start = table_mod._load, load_mod._start

    def timed(*args, **kw):
        c0 = time.process_time()
        out = load_stage(*args, **kw)
        acc["s"] += time.process_time() - c0
        return out

    def counted(slot, table, configs, o, fits, *rest):
        acc["n"] += int(fits.sum())
        return start(slot, table, configs, o, fits, *rest)
    table_mod._load, load_mod._start = timed, counted
    print("| instance | distinct cases that fit | load model, CPU s | us / case |")
    print("|---|---|---|---|")
    total_s, total_n = 0.0, 0
    for name, p in cases:
        runs, n = [], 0
        for _ in range(args.repeat):
            acc.update(s=0.0, n=0)
            for one in (p if isinstance(p, list) else [p]):
                build_candidates(one)
            runs.append(acc["s"])
            n = acc["n"]
        s = statistics.median(runs)
        total_s, total_n = total_s + s, total_n + n
        print(f"| {name} | {n:,} | {s:.4f} | {s / max(n, 1) * 1e6:.2f} |", flush=True)
    print(f"\nall: {total_n:,} cases, {total_s:.3f} CPU s, {total_s / max(total_n, 1) * 1e6:.2f} us per case")


if __name__ == "__main__":
    main()
