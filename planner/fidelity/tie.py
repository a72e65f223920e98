"""Tie bands: how close two plans' figures may be before the model cannot rank them.

``tie_band(family, fmt)`` is the model's median absolute relative error on published
measurements (`planner validate ../shared/reference/measured-public.csv`: the realistic
preset with each row's engine profile, no calibration: the shipped default, docs/validation.md)
for that GPU family and
math format; where the validation set has fewer than ``MIN_ROWS`` rows of that pair, the
family's figure; where the family has fewer, the median over all rows. Two plans whose
objectives differ by less than the larger of their bands (or of their GPUs' price
uncertainty) are a tie. The table is data in planner/resolve/uncertainty.py (the plan path
reads it); this module regenerates it: ``python -m planner.fidelity.tie
../shared/reference/measured-public.csv``.
"""

from __future__ import annotations

import sys

from planner.resolve.uncertainty import BANDS as BANDS
from planner.resolve.uncertainty import MIN_ROWS as MIN_ROWS
from planner.resolve.uncertainty import OVERALL as OVERALL
from planner.resolve.uncertainty import tie_band as tie_band


def derive(path: str) -> tuple[dict[tuple[str, str], tuple[int, float]], tuple[int, float]]:
    """The table from a validation run (imports the physics; not used at plan time)."""
    import numpy as np

    from planner.catalog.store import Catalog
    from planner.fidelity.rows import load_measurements, map_row
    from planner.fidelity.validate import validate
    from planner.physics.options import PRESETS
    from planner.physics.quant import SCHEMES

    cat = Catalog.default()
    v = validate(path, PRESETS["realistic"], catalog=cat)
    fmt_of = {}
    for i, r in enumerate(load_measurements(path)):
        case = map_row(i, r, cat)
        if not isinstance(case, str):
            fmt_of[i + 2] = SCHEMES[case.scheme].math_format
    groups: dict[tuple[str, str], list[float]] = {}
    every: list[float] = []
    for x in v.rows:
        if x.abs_pct_error is None or x.family is None or x.load is not None:
            continue                 # bands of the step physics; rows under load are reported apart
        e = x.abs_pct_error / 100.0
        every.append(e)
        groups.setdefault((x.family, fmt_of.get(x.row, "?")), []).append(e)
        groups.setdefault((x.family, "*"), []).append(e)
    bands = {k: (len(e), round(float(np.median(e)), 4)) for k, e in sorted(groups.items())}
    return bands, (len(every), round(float(np.median(every)), 4))


if __name__ == "__main__":
    b, overall = derive(sys.argv[1])
    print("BANDS: dict[tuple[str, str], tuple[int, float]] = {")
    for k, val in b.items():
        print(f"    {k!r}: {val!r},")
    print("}")
    print(f"OVERALL: tuple[int, float] = {overall!r}")
