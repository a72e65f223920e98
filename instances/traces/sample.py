"""Cut the shipped trace samples from the full traces of ../shared/traces (README.md here).

    python instances/traces/sample.py [FOLDER]      # default: ../shared/traces beside the repository

Each sample is the requests of one time window of its trace, their lines copied verbatim
(and the CSV header), so that the sample keeps the trace's arrivals, lengths and, for
Mooncake, the block hashes shared within the window. The planner never reads ../shared.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
WINDOWS_S = {                      # trace file: [start, end) seconds from its first request
    "mooncake-conversation.jsonl": (0.0, 120.0),
    "mooncake-synthetic.jsonl": (0.0, 100.0),
    "azure-llm-2023-conv.csv": (0.0, 90.0),
    "azure-llm-2023-code.csv": (0.0, 240.0),
}


def _time(line: str, jsonl: bool) -> float:
    if jsonl:
        return json.loads(line)["timestamp"] / 1000.0
    return datetime.fromisoformat(line.split(",", 1)[0]).timestamp()


def cut(source: Path, target: Path, start: float, end: float) -> int:
    lines = source.read_text(encoding="utf-8").splitlines()
    jsonl = source.suffix == ".jsonl"
    header, rows = ([], lines) if jsonl else (lines[:1], lines[1:])
    t0 = min(_time(r, jsonl) for r in rows)
    kept = [r for r in rows if start <= _time(r, jsonl) - t0 < end]
    target.write_text("\n".join(header + kept) + "\n", encoding="utf-8")
    return len(kept)


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2] / "shared" / "traces"
    for name, (start, end) in WINDOWS_S.items():
        source = folder / name
        target = HERE / name.replace(".", "-sample.", 1)
        print(f"{target.name}: {cut(source, target, start, end)} requests of {source} in [{start:g}, {end:g}) s")


if __name__ == "__main__":
    main()
