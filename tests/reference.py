"""Where ../shared/reference is: beside the checkout (a clone at /work/main), else the shared
copy at /work/shared/reference (a clone elsewhere). Tests that need it skip without it."""

from __future__ import annotations

from pathlib import Path

REFERENCE = next((p for p in (Path(__file__).resolve().parents[2] / "shared" / "reference",
                              Path("/work/shared/reference")) if p.is_dir()),
                 Path(__file__).resolve().parents[2] / "shared" / "reference")
