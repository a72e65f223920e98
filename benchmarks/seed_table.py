"""Print the seed reproduction table of docs/model.md from tests/seed_cases.py.

    python benchmarks/seed_table.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from seed_cases import cases  # noqa: E402


def main() -> None:
    print("| row | quantity | article | article's arithmetic | ours | error | options, note |")
    print("|---|---|---|---|---|---|---|")
    for c in cases():
        arith = "" if c.article_arithmetic is None else f"{c.article_arithmetic:.4g}"
        note = c.options + (f"; {c.note}" if c.note else "")
        print(f"| {c.ident} | {c.quantity} | {c.article:g} {c.unit} | {arith} | {c.ours:.4g} | {c.error:.1%} | {note} |")


if __name__ == "__main__":
    main()
