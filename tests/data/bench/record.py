"""Run the real benchmark clients against tests/bench_stub.py with the commands `planner
launch` generates for a plan (planner/launch/bench.py), bounded to a few requests, and keep
the result files they write (tests/test_check.py reads them with `planner check`).

    python tests/data/bench/record.py PLAN.json OUT_DIR --ttft-ms 5 --itl-ms 2 [--clients aiperf,guidellm]

The clients are found on PATH (or in the folders of PLANNER_BENCH_BIN, ':'-separated): AIPerf
(`aiperf`) and GuideLLM (`guidellm`), installed with pip in a venv of their own. Only the
generated command's target (the stub's port), request count and tokenizer (a local byte
tokenizer: no hub download) are changed; everything else is as the launch script runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench_stub import serve  # noqa: E402

from planner.cli.common import read_result  # noqa: E402
from planner.launch.bench import benchmark  # noqa: E402

TOKENIZER = HERE / "tokenizer"
REQUESTS = 16


def find(program: str) -> str | None:
    path = os.environ.get("PLANNER_BENCH_BIN", "") + os.pathsep + os.environ.get("PATH", "")
    return shutil.which(program, path=path)


def command(plan_file: Path, client: str, port: int, out: Path) -> list[str]:
    result = read_result(plan_file)
    plan = result.plans[0]
    b = benchmark(result, plan, client, port)
    args: list[str] = []
    for a in b.args:
        value = a.value
        if client == "aiperf" and a.flag == "--request-count":
            value = REQUESTS
        if client == "aiperf" and a.flag == "--artifact-dir":
            value = str(out / "aiperf")
        if client == "guidellm" and a.flag == "--constraint":
            value = f"kind=max_requests,count={REQUESTS}"
        if client == "guidellm" and a.flag == "--output":
            value = f"kind=json,path={out / 'guidellm.json'}"
        args += [a.flag] if value is None else [a.flag, str(value)]
    if client == "aiperf":
        args += ["--tokenizer", str(TOKENIZER), "--ui-type", "none", "--random-seed", "1"]
    else:
        args += ["--tokenizer", f"kind=huggingface_auto,model={TOKENIZER}", "--disable-console-interactive"]
    return [*b.program.split(), *args]


def record(plan_file: Path, out: Path, ttft_ms: float, itl_ms: float, clients: list[str], port: int = 8199,
           timeout: float = 240.0) -> dict[str, Path]:
    """Run each client against a stub of the given step times; the result file of each."""
    out.mkdir(parents=True, exist_ok=True)
    server = serve(port, ttft_ms, itl_ms, "stub", lifetime_s=timeout * len(clients) + 30)
    made: dict[str, Path] = {}
    env = {**os.environ, "NO_COLOR": "1"}
    try:
        for client in clients:
            exe = find(client)
            if exe is None:
                raise FileNotFoundError(client)
            cmd = command(plan_file, client, port, out)
            cmd[0] = exe                       # "aiperf profile ...", "guidellm run ..."
            start = time.monotonic()
            run = subprocess.run(cmd, cwd=out, env=env, capture_output=True, text=True, timeout=timeout, check=False)
            (out / f"{client}.log").write_text(run.stdout[-20000:] + run.stderr[-20000:])
            if run.returncode:
                raise RuntimeError(f"{client} exited {run.returncode} after {time.monotonic() - start:.0f} s; "
                                   f"see {out / (client + '.log')}")
            made[client] = out / "aiperf" / "profile_export_aiperf.json" if client == "aiperf" \
                else out / "guidellm.json"
    finally:
        server.shutdown()
        server.server_close()
    return made


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("plan", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--ttft-ms", type=float, required=True)
    ap.add_argument("--itl-ms", type=float, required=True)
    ap.add_argument("--clients", default="aiperf,guidellm")
    ap.add_argument("--port", type=int, default=8199)
    a = ap.parse_args()
    made = record(a.plan, a.out, a.ttft_ms, a.itl_ms, a.clients.split(","), a.port)
    print(json.dumps({k: str(v) for k, v in made.items()}))


if __name__ == "__main__":
    main()
