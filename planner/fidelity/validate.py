"""`planner validate`: predict published measurements and report the errors (docs/validation.md).

Each CSV row becomes a configuration and a prediction rule (planner/fidelity/rows.py), or a
stated reason why the model cannot express it; no row is dropped silently. A measurement
listed more than once (``same_measurement_as``) is predicted and counted once, its repeats
carry its prediction and say so. The predictions are planner/fidelity/predict.py's.

The report: medians by metric, GPU family and metric group (as before), grouped tables
(system x engine x model x mode x metric, and each of those against the metric, with
concurrency bands: n, median |error|, median signed error), the worst rows, the coverage
with the reasons rows are not predicted, and every row as a record (``records``, the
CLI's ``--csv``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from planner.catalog.store import Catalog
from planner.fidelity.corpus import Corpus, load_corpus
from planner.fidelity.predict import predict
from planner.fidelity.repeats import mtp_by_donor, with_speculation
from planner.fidelity.rows import GROUP, LOAD_GROUP, Case, describe_load, engine_of, load_of
from planner.physics.options import PRESETS, Assumptions
from planner.resolve.calibration import FAMILY, load_calibration

CONCURRENCY_BANDS = ((4, "1-4"), (32, "5-32"), (128, "33-128"), (512, "129-512"), (math.inf, ">512"))
"""Closed-loop clients (all replicas) in bands: 1-4, where queueing is nil, up to beyond 512."""
TABLES: dict[str, tuple[str, ...]] = {
    "system x engine x model x mode x metric": ("system", "engine", "model_id", "mode", "metric"),
    "metric x system": ("metric", "system"),
    "metric x engine": ("metric", "engine"),
    "metric x model": ("metric", "model_id"),
    "metric x mode": ("metric", "mode"),
    "metric x concurrency": ("metric", "concurrency_band"),
    "concurrency x engine x model x metric": ("concurrency_band", "engine", "model_id", "metric"),
}
"""The grouped tables of a validation: name -> the row fields grouped on."""
WORST = 15
ASSUMED = {"1+1": "disagg (1+1 workers assumed)", "recipe": "disagg (workers of a recipe)"}
"""The mode of a disaggregated row whose pools are not stated, by how they were read."""


@dataclass
class RowResult:
    row: int
    source: str
    model: str
    gpu: str
    metric: str
    measured: float
    predicted: float | None = None
    abs_pct_error: float | None = None
    skipped_reason: str | None = None
    family: str | None = None
    group: str | None = None
    rule: str | None = None
    load: str | None = None            # the stated concurrency or request rate, in words
    signed_pct_error: float | None = None
    model_id: str | None = None        # the catalog architecture
    system: str | None = None          # the catalog GPU
    engine: str = "other"              # vllm, sglang, trtllm, or other (no engine profile)
    engine_version: str | None = None
    mode: str = "agg"                  # agg, disagg, or "disagg (1+1 workers assumed)"
    concurrency: float | None = None   # closed-loop clients, all replicas
    concurrency_band: str | None = None
    duplicate_of: int | None = None    # the row standing for the same measurement, counted there
    uncalibrated: float | None = None  # with a calibration: the prediction without it, shown beside it
    uncalibrated_abs_pct_error: float | None = None
    baseline_abs_pct_error: float | None = None   # the same row's |error| in a baseline run (``with_baseline``)

    @property
    def counted(self) -> bool:
        """Predicted, and this row stands for its measurement."""
        return self.abs_pct_error is not None and self.duplicate_of is None


@dataclass
class Validation:
    rows: list[RowResult]
    summary: dict[str, dict[str, float]] = field(default_factory=dict)
    by_family: dict[str, dict[str, float]] = field(default_factory=dict)
    by_group: dict[str, dict[str, float]] = field(default_factory=dict)
    under_load: dict[str, dict[str, float]] = field(default_factory=dict)   # by group, apart from the rest
    tables: dict[str, list[dict]] = field(default_factory=dict)
    worst: list[int] = field(default_factory=list)                        # row numbers, largest |error| first
    coverage: dict = field(default_factory=dict)
    calibration: str = "none"

    def to_dict(self) -> dict:
        return asdict(self)

    def records(self) -> list[dict]:
        """Every row with its prediction beside its measurement, or the reason it has none
        (the CLI's ``--csv``)."""
        out = []
        for r in self.rows:
            counted = ("yes" if r.counted else f"no: the same measurement as row {r.duplicate_of}"
                       if r.duplicate_of is not None else "no: not predicted")
            out.append({"row": r.row, "model": r.model, "model_id": r.model_id or "", "gpu": r.gpu,
                        "system": r.system or "", "engine": r.engine, "engine_version": r.engine_version or "",
                        "mode": r.mode, "load": r.load or "", "metric": r.metric, "measured": r.measured,
                        "predicted": "" if r.predicted is None else r.predicted,
                        "signed_pct_error": "" if r.signed_pct_error is None else r.signed_pct_error,
                        "abs_pct_error": "" if r.abs_pct_error is None else r.abs_pct_error,
                        "uncalibrated": "" if r.uncalibrated is None else r.uncalibrated,
                        "counted": counted, "reason_not_predicted": r.skipped_reason or ""})
        return out


def _stats(errors: list[float], uncalibrated: list[float | None] | None = None) -> dict[str, float]:
    """n, median and mean |error|; with a calibration, the median |error| of the same rows
    without it beside them."""
    out = {"rows": len(errors), "median_abs_pct_error": float(np.median(errors)),
           "mean_abs_pct_error": float(np.mean(errors))}
    known = [u for u in uncalibrated or () if u is not None]
    if known and len(known) == len(uncalibrated or ()):
        out["median_abs_pct_error_uncalibrated"] = float(np.median(known))
    return out


def group_of(case: Case, metric: str) -> str:
    """The metric group a row's error is reported in; rows under load in groups of their own."""
    if case.under_load:
        return LOAD_GROUP[case.rule.removeprefix("load_")]
    return GROUP[metric]


def _band(n: float | None) -> str | None:
    return None if n is None else next(label for top, label in CONCURRENCY_BANDS if n <= top)


def validate_file(path: str, *, calibration: str = "none", catalog: Sequence[str] = ()) -> Validation:
    """`planner validate`: every row of a measurements CSV predicted under the realistic preset,
    with a calibration ('none', 'default': the shipped fit, or a file written by ``planner
    calibrate``) and catalog override files applied in order."""
    return validate(str(path), PRESETS["realistic"], calibration=load_calibration(calibration),
                    calibration_name=calibration, catalog=Catalog.load([str(c) for c in catalog]))


def validate(path: str, o: Assumptions, *, calibration=None, calibration_name: str = "none",
             catalog: Catalog | None = None, mtp_by_tpot: bool = False) -> Validation:
    """Predict every row the model can express, with an optional calibration (global values
    and per-family efficiencies, planner/calibrate.py); each measurement once.
    ``mtp_by_tpot``: also read recipe rows far below their donor's TPOT as MTP runs
    (repeats.mtp_by_donor). Off in `planner validate`: the reading chooses a row's prediction by
    the very measurement it is then compared with, so its figures are no test of the model;
    benchmarks/disagg_tpot.py turns it on to show what it would change (docs/validation.md,
    "Disaggregated TPOT")."""
    corpus = load_corpus(path, catalog)
    catalog = corpus.catalog
    out: list[RowResult] = []
    cases: list[tuple[RowResult, Case]] = []
    for m in corpus.mapped():
        r = m.row
        load = load_of(r)
        engine, version = engine_of(r["framework"])
        res = RowResult(row=m.i + 2, source=r["source"], model=r["model"], gpu=r["gpu"], metric=r["metric"],
                        measured=float(r["value"]),        # checked finite and positive by load_measurements
                        load=describe_load(*load) if load else None, engine=engine or "other",
                        engine_version=version, mode=r.get("mode", "").strip() or "agg",
                        concurrency=load[1] if load and load[0] == "clients" else None)
        res.concurrency_band = _band(res.concurrency)
        out.append(res)
        if m.repeat:
            res.duplicate_of = m.stand_in + 2
            continue
        case = m.case
        if isinstance(case, str):
            res.skipped_reason = case
            continue
        assert case is not None
        res.family, res.group, res.rule = FAMILY.get(case.gpu), group_of(case, r["metric"]), case.rule
        res.model_id, res.system = case.model, case.gpu
        if m.pools in ASSUMED:
            res.mode = ASSUMED[m.pools]
        if m.twin:                       # a checkpoint that ships its drafter: its MTP run
            res.mode = f"{res.mode}, MTP twin"
        cases.append((res, case))
    preds, reasons = _predicted([c for _, c in cases], catalog, o, calibration)
    plain = _predicted([c for _, c in cases], catalog, o, None)[0] if calibration is not None else None
    redo = (_mtp_by_tpot(cases, preds if plain is None else plain, reasons, corpus) if mtp_by_tpot else [])
    if redo:
        again = [cases[k][1] for k in redo]
        p, why = _predicted(again, catalog, o, calibration)
        preds[redo] = p
        for k, w in zip(redo, why):
            reasons[k] = w
        if plain is not None:
            plain[redo] = _predicted(again, catalog, o, None)[0]
    for k, ((res, _), pred, reason) in enumerate(zip(cases, preds, reasons)):
        if reason is not None:
            res.skipped_reason = f"under load, {res.load}: {reason}" if res.load else reason
            continue
        res.predicted = float(pred)
        res.signed_pct_error = _signed(pred, res.measured)
        res.abs_pct_error = abs(res.signed_pct_error)
        if plain is not None:
            res.uncalibrated = float(plain[k])
            res.uncalibrated_abs_pct_error = abs(_signed(plain[k], res.measured))
    for res in out:
        if res.duplicate_of is not None:
            _copy_prediction(res, out[res.duplicate_of - 2])
    return _summarise(Validation(rows=out, calibration=calibration_name))


def _mtp_by_tpot(cases: list[tuple[RowResult, Case]], plain: np.ndarray, reasons: list, corpus: Corpus) -> list[int]:
    """The cases of measurements read as MTP runs by their TPOT against their recipe's plain
    run (repeats.mtp_by_donor, on the uncalibrated predictions ``plain``), made MTP runs in
    place, their mode saying so: the indices to predict again."""
    error = {res.row - 2: res.measured / plain[k] for k, (res, c) in enumerate(cases)
             if c.rule == "load_tpot" and reasons[k] is None and np.isfinite(plain[k])
             and res.row - 2 not in corpus.twins}
    flagged = mtp_by_donor(corpus.rows, corpus.recipes, corpus.stand_in, error)
    redo = [k for k, (res, c) in enumerate(cases)
            if res.row - 2 in flagged and corpus.catalog.model(c.model).mtp_layers > 0]
    for k in redo:
        res, c = cases[k]
        cases[k] = (res, with_speculation(c))
        res.mode = f"{res.mode}, MTP by its TPOT"
    return redo


def _signed(pred: float, measured: float) -> float:
    return (pred - measured) / measured * 100.0 if math.isfinite(pred) else float("inf")


def _predicted(cases: list[Case], catalog: Catalog, o: Assumptions, calibration) -> tuple[np.ndarray, list]:
    """Predictions and reasons, one ``predict`` call per distinct set of fitted values (per
    GPU family with a calibration, one call without)."""
    preds = np.full(len(cases), np.nan)
    reasons: list[str | None] = [None] * len(cases)
    fitted_of = {fam: calibration.values(fam) if calibration is not None else None
                 for fam in {FAMILY.get(c.gpu) for c in cases}}
    fits = [repr(sorted((fitted_of[FAMILY.get(c.gpu)] or {}).items())) for c in cases]
    for fit in sorted(set(fits)):
        idx = [k for k, f in enumerate(fits) if f == fit]
        p, because = predict([cases[k] for k in idx], catalog, o, fitted_of[FAMILY.get(cases[idx[0]].gpu)])
        preds[idx] = p
        for k, w in zip(idx, because):
            reasons[k] = w
    return preds, reasons


def _copy_prediction(res: RowResult, rep: RowResult) -> None:
    for name in ("predicted", "abs_pct_error", "signed_pct_error", "family", "group", "rule", "model_id", "system",
                 "mode", "uncalibrated", "uncalibrated_abs_pct_error"):
        setattr(res, name, getattr(rep, name))
    if rep.skipped_reason is not None:
        res.skipped_reason = f"the same measurement as row {rep.row}, not predicted: {rep.skipped_reason}"


def _summarise(v: Validation) -> Validation:
    done = [x for x in v.rows if x.counted and x.load is None]
    loaded = [x for x in v.rows if x.counted and x.load is not None]
    for key, attr, these in (("summary", "metric", done), ("by_family", "family", done), ("by_group", "group", done),
                             ("under_load", "group", loaded)):
        groups: dict[str, list[RowResult]] = {}
        for x in these:
            groups.setdefault(str(getattr(x, attr)), []).append(x)
        setattr(v, key, {k: _stats([x.abs_pct_error for x in g if x.abs_pct_error is not None],
                                   [x.uncalibrated_abs_pct_error for x in g]) for k, g in sorted(groups.items())})
    counted = [x for x in v.rows if x.counted]
    v.tables = {name: grouped(counted, keys) for name, keys in TABLES.items()}
    ranked = sorted(counted, key=lambda x: -(x.abs_pct_error or 0.0))
    v.worst = [x.row for x in ranked[:WORST]]
    v.coverage = coverage(v.rows)
    return v


def grouped(rows: list[RowResult], keys: tuple[str, ...]) -> list[dict]:
    """Rows grouped on ``keys``: n, median |error| and median signed error (%), and the median
of measured - predicted in the metric's unit (``keys`` hold the metric), sorted by the keys."""
    groups: dict[tuple, list[RowResult]] = {}
    for x in rows:
        groups.setdefault(tuple(str(getattr(x, k)) for k in keys), []).append(x)
    out = []
    order = {label: i for i, (_, label) in enumerate(CONCURRENCY_BANDS)}
    band = keys.index("concurrency_band") if "concurrency_band" in keys else None

    def sort_key(key: tuple) -> tuple:
        return key if band is None else (*key[:band], order.get(key[band], -1), *key[band + 1:])
    for key in sorted(groups, key=sort_key):
        members = groups[key]
        out.append({**dict(zip(keys, key)), "n": len(members),
                    "median_abs_pct_error": float(np.median([x.abs_pct_error for x in members])),
                    "median_signed_pct_error": float(np.median([x.signed_pct_error for x in members])),
                    "median_measured_minus_predicted": float(np.median([x.measured - (x.predicted or 0.0)
                                                                        for x in members])),
                    **{f"median_abs_pct_error_{name}": float(np.median([getattr(x, f"{name}_abs_pct_error")
                                                                          for x in members]))
                       for name in ("uncalibrated", "baseline")
                       if all(getattr(x, f"{name}_abs_pct_error") is not None for x in members)}})
    return out


def reason_kind(reason: str) -> str:
    """A skip reason without its row-specific figures, to count rows by kind of reason."""
    reason = re.sub(r"^the same measurement as row \d+, not predicted: ", "", reason)
    reason = re.sub(r"^under load, [^:]*: ", "", reason)
    reason = re.sub(r"\d+(?:\.\d+)?", "N", reason)
    return reason.split(" (got ")[0][:110]


def coverage(rows: list[RowResult]) -> dict:
    """Rows and measurements predicted, and the rows not predicted by kind of reason."""
    kinds: dict[str, int] = {}
    for x in rows:
        if x.abs_pct_error is None and x.skipped_reason is not None:
            kinds[reason_kind(x.skipped_reason)] = kinds.get(reason_kind(x.skipped_reason), 0) + 1
    stand = [x for x in rows if x.duplicate_of is None]
    return {"rows": len(rows), "rows_predicted": sum(x.abs_pct_error is not None for x in rows),
            "measurements": len(stand), "measurements_predicted": sum(x.counted for x in stand),
            "not_predicted": dict(sorted(kinds.items(), key=lambda kv: -kv[1]))}


def with_baseline(v: Validation, path: str) -> Validation:
    """``v`` with each row's |error| in a baseline run beside its own: ``path`` is a CSV that
    `planner validate FILE --csv` wrote for the same measurements (rows matched by number,
    their measured values checked equal), say before a physics change; the grouped tables gain
    the baseline's median |error| over the same rows (which physics moved which group)."""
    import csv
    import io

    from planner.errors import InputError
    from planner.yamlio import read_text_bounded

    text = read_text_bounded(path, 64 * 1024 * 1024, "baseline file")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    need = ("row", "measured", "abs_pct_error")
    if not reader.fieldnames or not set(need) <= set(reader.fieldnames):
        raise InputError("not a CSV written by planner validate --csv", file=path, path="header",
                         value=", ".join(reader.fieldnames or []), accepted="columns " + ", ".join(need))
    by_row = {r.row: r for r in v.rows}
    for line, b in enumerate(reader, start=2):
        r = by_row.get(int(b["row"])) if b["row"].strip().isdigit() else None
        try:
            same = r is not None and math.isclose(float(b["measured"]), r.measured, rel_tol=1e-5)
        except ValueError:
            same = False
        if not same:
            raise InputError("the baseline's rows are not this file's", file=path, path=f"row {line}",
                             value=b["row"], accepted="the --csv of a run on the same measurements file")
        if r is not None and b["abs_pct_error"].strip():
            r.baseline_abs_pct_error = float(b["abs_pct_error"])
    return _summarise(v)
