"""The model's own uncertainty, per GPU family and math format: how close two plans' figures
may be before the model cannot rank them (a tie).

``tie_band(family, fmt)`` is the model's median absolute relative error on published
measurements (`planner validate ../shared/reference/measured-public.csv`: the realistic
preset with each row's engine profile, no calibration: the shipped default, docs/validation.md)
for that GPU family and
math format; where the validation set has fewer than ``MIN_ROWS`` rows of that pair, the
family's figure; where the family has fewer, the median over all rows. Two plans whose
objectives differ by less than the larger of their bands are a tie (planner/plan/explain.py).
Data: regenerate it with ``python -m planner.fidelity.tie ../shared/reference/measured-public.csv``
(planner/fidelity/tie.py, which reads the validation and so stays off the plan path).
"""

from __future__ import annotations

from planner.resolve.calibration import family_of

MIN_ROWS = 3

# (family, math format) -> (rows, median |error| as a fraction); format "*" = all formats.
BANDS: dict[tuple[str, str], tuple[int, float]] = {
    ('amd-cdna3', '*'): (6, 0.212),
    ('amd-cdna3', 'fp8'): (6, 0.212),
    ('nvidia-ada', '*'): (5, 0.0753),
    ('nvidia-ada', 'bf16'): (2, 0.217),
    ('nvidia-ada', 'fp16'): (1, 0.0001),
    ('nvidia-ada', 'fp8'): (2, 0.1099),
    ('nvidia-ampere', '*'): (7, 0.0856),
    ('nvidia-ampere', 'bf16'): (6, 0.054),
    ('nvidia-ampere', 'fp16'): (1, 0.2528),
    ('nvidia-blackwell', '*'): (4, 0.294),
    ('nvidia-blackwell', 'fp4'): (4, 0.294),
    ('nvidia-hopper', '*'): (25, 0.071),
    ('nvidia-hopper', 'fp8'): (25, 0.071),
}
OVERALL: tuple[int, float] = (47, 0.1186)


def tie_band(family: str | None, fmt: str | None) -> float:
    """Relative error below which two plans on ``family`` GPUs in ``fmt`` math tie."""
    for key in ((family, fmt), (family, "*")):
        rows, err = BANDS.get(key, (0, 0.0))  # type: ignore[arg-type]
        if rows >= MIN_ROWS:
            return err
    return OVERALL[1]




def band_of(gpu_id: str, math_format: str) -> tuple[float, str]:
    """(tie band, what it is) of a plan on catalog GPU ``gpu_id`` in ``math_format``."""
    family = family_of(gpu_id)
    for key in ((family, math_format), (family, "*")):
        rows, err = BANDS.get(key, (0, 0.0))  # type: ignore[arg-type]
        if rows >= MIN_ROWS:
            return err, f"{key[0]} {key[1] if key[1] != '*' else 'all formats'}, {rows} published measurements"
    return OVERALL[1], f"all GPUs, {OVERALL[0]} published measurements"
