"""`planner calibrate`: fit the model's efficiency parameters to published measurements.

Least squares on log errors would let one odd row dominate; we minimise the mean absolute
log error (a robust least-absolute-deviations fit, which targets the median error the
validation reports) over bounded parameters with Nelder-Mead. Cross-validation leaves one
source out at a time: the held-out error is what a user should expect on a new system.
Parameters are global, plus per GPU family where the data allow (>= 4 rows from >= 2
sources): a family's rows otherwise come from too few experiments to separate its
efficiency from the framework's (docs/validation.md).

Each row starts from its engine's profile (planner/fidelity/predict.py ``row_assumptions``)
and the fitted values go on top, as a calibration goes on top of a plan's preset: the fit
replaces the profiles' per-layer overheads with one global value and keeps what it does not
fit (attention format, memory convention). Per-engine overheads are not fitted: all the vLLM
rows come from one source, so a leave-one-source-out fold would have none to fit them from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from planner.catalog.store import Catalog
from planner.fidelity.predict import Prepared, predict, predict_all
from planner.fidelity.rows import GROUP, LOAD_GROUP, Case, load_measurements, map_row
from planner.physics.options import PRESETS, Assumptions
from planner.resolve.calibration import FAMILY, FAMILY_PARAMS, PARAMS, Calibration


def _decode(z: np.ndarray, names=PARAMS) -> dict[str, float]:
    return {n: lo + (hi - lo) / (1.0 + math.exp(-float(v))) for (n, lo, hi), v in zip(names, z)}


def _encode(values: dict[str, float], names=PARAMS) -> np.ndarray:
    out = []
    for n, lo, hi in names:
        t = min(max((values[n] - lo) / (hi - lo), 1e-4), 1 - 1e-4)
        out.append(math.log(t / (1 - t)))
    return np.array(out)


def nelder_mead(f, x0: np.ndarray, *, iters: int = 300, step: float = 0.8, tol: float = 1e-6) -> np.ndarray:
    """Minimise f from x0 (standard reflection/expansion/contraction/shrink, deterministic)."""
    n = len(x0)
    simplex = [x0] + [x0 + step * np.eye(n)[i] for i in range(n)]
    values = [f(x) for x in simplex]
    for _ in range(iters):
        order = np.argsort(values)
        simplex = [simplex[i] for i in order]
        values = [values[i] for i in order]
        if abs(values[-1] - values[0]) < tol:
            break
        centroid = np.mean(simplex[:-1], axis=0)
        xr = centroid + (centroid - simplex[-1])
        fr = f(xr)
        if fr < values[0]:
            xe = centroid + 2.0 * (centroid - simplex[-1])
            fe = f(xe)
            simplex[-1], values[-1] = (xe, fe) if fe < fr else (xr, fr)
        elif fr < values[-2]:
            simplex[-1], values[-1] = xr, fr
        else:
            xc = centroid + 0.5 * (simplex[-1] - centroid)
            fc = f(xc)
            if fc < values[-1]:
                simplex[-1], values[-1] = xc, fc
            else:
                simplex = [simplex[0] + 0.5 * (x - simplex[0]) for x in simplex]
                values = [f(x) for x in simplex]
    return simplex[int(np.argmin(values))]


@dataclass
class Dataset:
    cases: list[Case]
    measured: np.ndarray
    sources: list[str]
    families: list[str]
    groups: list[str]
    rows: list[int]


def dataset(path: str, catalog: Catalog, under_load: bool = False) -> Dataset:
    """The rows the fit reads: the idle and saturated rows; with ``under_load`` also the rows
    measured at a stated load (a user's benchmarks, written by ``planner check --append``),
    predicted through the load model (their step times are what the fit moves). A row the
    physics cannot express (``predict``'s reason: a layout it refuses, a GPU with no peak
    FLOP/s for the row's format, weights that leave no room for the KV cache) is left out, as
    ``planner validate`` leaves it out of its medians: it has no prediction to fit."""
    mapped = []
    for i, r in enumerate(load_measurements(path)):
        case = map_row(i, r, catalog)
        if isinstance(case, str) or (case.under_load and not under_load):
            continue                 # rows under load test the queueing model: reported, not fitted by default
        mapped.append((i, r, case))
    _, why = predict([m[2] for m in mapped], catalog, PRESETS["realistic"])
    cases, measured, sources, families, groups, rows = [], [], [], [], [], []
    for (i, r, case), reason in zip(mapped, why):
        if reason is not None:
            continue
        cases.append(case)
        measured.append(float(r["value"]))
        sources.append(source_of(r["source"]))
        families.append(FAMILY[case.gpu])
        groups.append(LOAD_GROUP[case.rule.removeprefix("load_")] if case.under_load else GROUP[r["metric"]])
        rows.append(i + 2)
    return Dataset(cases, np.array(measured), sources, families, groups, rows)


def source_of(text: str) -> str:
    """One experiment: a repository at a commit, or a page."""
    text = text.strip()
    if text.startswith("github:"):
        return text.split(":")[1]
    return text.split(" (")[0]


def predict_with(ds: Dataset, idx: np.ndarray, cal: Calibration, base: Assumptions, catalog: Catalog) -> np.ndarray:
    out = np.empty(len(idx))
    fams = np.array(ds.families)[idx]
    for fam in sorted(set(fams.tolist())):
        sel = np.nonzero(fams == fam)[0]
        out[sel] = predict_all([ds.cases[idx[k]] for k in sel], catalog, base, cal.values(fam))
    return out


def _loss(pred: np.ndarray, meas: np.ndarray) -> float:
    ratio = np.where(np.isfinite(pred) & (pred > 0), pred / meas, 1e6)
    return float(np.mean(np.abs(np.log(ratio))))


def fit(ds: Dataset, idx: np.ndarray, base: Assumptions, catalog: Catalog, *, iters: int = 300) -> Calibration:
    """Global parameters, then per-family efficiencies where the data allow."""
    x0 = _encode(base.model_dump())
    train = Prepared([ds.cases[i] for i in idx], catalog)   # one set of rows, many assumptions

    def f(z: np.ndarray) -> float:
        return _loss(predict_all(train, catalog, base, _decode(z)), ds.measured[idx])

    cal = Calibration(assumptions=_decode(nelder_mead(f, x0, iters=iters)), rows=len(idx),
                      sources=len({ds.sources[i] for i in idx}))
    fam_names = tuple(p for p in PARAMS if p[0] in FAMILY_PARAMS)
    for fam in sorted(set(ds.families[i] for i in idx)):
        mine = np.array([i for i in idx if ds.families[i] == fam])
        if len(mine) < 4 or len({ds.sources[i] for i in mine}) < 2:
            continue
        start = _encode(cal.assumptions, fam_names)
        rows = Prepared([ds.cases[i] for i in mine], catalog)

        def g(z: np.ndarray, mine=mine, rows=rows) -> float:
            fitted = {**cal.assumptions, **_decode(z, fam_names)}
            return _loss(predict_all(rows, catalog, base, fitted), ds.measured[mine])

        cal.per_family[fam] = _decode(nelder_mead(g, start, iters=iters // 2), fam_names)
    return cal


def cross_validate(ds: Dataset, base: Assumptions, catalog: Catalog, *, iters: int = 300) -> np.ndarray:
    """Held-out predictions: each source predicted by a calibration fitted without it."""
    out = np.empty(len(ds.cases))
    for src in sorted(set(ds.sources)):
        held = np.array([i for i, s in enumerate(ds.sources) if s == src])
        train = np.array([i for i, s in enumerate(ds.sources) if s != src])
        cal = fit(ds, train, base, catalog, iters=iters)
        out[held] = predict_with(ds, held, cal, base, catalog)
    return out


def at_bounds(cal: Calibration, rel: float = 1e-3) -> list[str]:
    """Fitted values pinned at a bound of their range (``PARAMS``): the data did not determine
    them (a family whose rows never exercise that term) or wanted a value past a physical
    bound (memory efficiency above 0.92, compute above the MAMF); either way not a
    measurement, and the report says so."""
    bounds = {n: (lo, hi) for n, lo, hi in PARAMS}
    out = []
    for scope, values in [("global", cal.assumptions), *sorted(cal.per_family.items())]:
        for name, v in values.items():
            lo, hi = bounds[name]
            for edge, label in ((lo, "lower"), (hi, "upper")):
                if abs(v - edge) <= rel * (hi - lo):
                    out.append(f"{scope} {name} = {v:.3g} (its {label} bound)")
    return out


def mean_log_error(ds: Dataset, pred: np.ndarray) -> float:
    """The fit's loss, mean |log(predicted / measured)|, over all rows (``_loss``)."""
    return _loss(pred, ds.measured)


def errors_by_group(ds: Dataset, pred: np.ndarray, by: str = "group") -> dict[str, dict[str, float]]:
    """Median and mean absolute % error per metric group (``by="group"``) or GPU family."""
    err = np.abs(pred - ds.measured) / ds.measured * 100.0
    keys = np.array(ds.groups if by == "group" else ds.families)
    out = {}
    for g in sorted(set(keys.tolist())):
        e = err[keys == g]
        out[g] = {"rows": int(len(e)), "median_abs_pct_error": float(np.median(e)),
                  "mean_abs_pct_error": float(np.mean(e))}
    return out


