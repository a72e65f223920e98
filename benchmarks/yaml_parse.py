"""How fast the planner reads a large YAML file (planner/yamlio.py ``parse_yaml``): files of
growing size under the 2 MiB cap, each parsed by the planner's strict event reader (libyaml
when present), and one refused by libyaml (flow nesting 3,000 deep) that is read again by
PyYAML's own parser so the planner's depth check answers. Seconds and MB/s per file; the
time should grow linearly with the size.

    python benchmarks/yaml_parse.py

(tests/test_hostile.py class 9 checks what the reader answers, never how fast: a unit test
does not time anything.)"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.errors import InputError
from planner.yamlio import _LOADER, parse_yaml


def main() -> None:
    print(f"parser: {'libyaml (CSafeLoader)' if _LOADER is not yaml.SafeLoader else 'PyYAML (pure Python)'}")
    print(f"{'keys':>8} {'bytes':>10} {'seconds':>8} {'MB/s':>6}")
    for n in (2_500, 5_000, 10_000, 20_000, 40_000):
        text = "a:\n" + "".join(f"  k{i}: [{i}, {i + 1}, x{i}]\n" for i in range(n))
        t0 = time.perf_counter()
        parse_yaml(text, "big.yaml")
        dt = time.perf_counter() - t0
        print(f"{n:>8,} {len(text):>10,} {dt:>8.3f} {len(text) / dt / 1e6:>6.2f}")
    deep = "model: " + "[" * 3000 + "]" * 3000 + "\n"
    t0 = time.perf_counter()
    try:
        parse_yaml(deep, "deep.yaml")
    except InputError as exc:
        print(f"3,000-deep flow nesting: {time.perf_counter() - t0:.3f} s, {exc}")


if __name__ == "__main__":
    main()
