"""A measurement the corpus lists more than once, and a configuration measured twice at once.

`planner validate` predicts a measurement once, at the row that states most of its deployment
(``measurement_of``), and reads InferenceX's speculative-decoding runs of a configuration, for
which the source has no column, from the rows' columns (``speculative_twins``) or, off by
default, from their TPOT against a labelled plain run (``mtp_by_donor``). Split from rows.py,
which reads one row; this module reads rows against each other (docs/validation.md, "The
silicon corpus" and "Speculative twins")."""

from __future__ import annotations

from dataclasses import replace

from planner.fidelity.rows import POOL_COLUMNS, Case, cell_int, run_day

# --- the same measurement listed again -------------------------------------------------

def measurement_of(rows: list[dict]) -> list[int]:
    """For each row, the index of the row that stands for its measurement and metric: rows
    naming each other in ``same_measurement_as`` (by ``silicon_id``) are one measurement,
    counted once. The stand-in is the row that states most of the deployment (worker counts,
    then a layout validate can read), then the first. A file without these columns: each
    row stands for itself."""
    if not rows or "silicon_id" not in rows[0]:
        return list(range(len(rows)))
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        while parent.get(a, a) != a:
            parent[a] = parent.get(parent[a], parent[a])
            a = parent[a]
        return a

    for r in rows:
        for other in r.get("same_measurement_as", "").split():
            x, y = find(r["silicon_id"].strip()), find(other)
            if x != y:
                parent[max(x, y)] = min(x, y)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(rows):
        key = (find(r["silicon_id"].strip()), r["metric"]) if r["silicon_id"].strip() else (f"row {i}", r["metric"])
        groups.setdefault(key, []).append(i)
    out = list(range(len(rows)))
    for members in groups.values():
        def score(i: int) -> tuple[int, int, int]:
            r = rows[i]
            return (cell_int(r.get("decode_workers", "")) is not None, r.get("expressible", "") == "yes", -i)
        best = max(members, key=score)
        for i in members:
            out[i] = best
    return out


# --- a configuration measured twice at once: InferenceX's speculative-decoding variant ---

MTP_TOKENS = 1
"""Draft tokens of the MTP variant: DeepSeek-V3/R1 ship one multi-token-prediction module
(``num_nextn_predict_layers`` 1 in their config.json), one draft token a step."""

_TWIN_COLUMNS = ("framework", "image", "attention_tp", "attention_dp", "moe_tp", "moe_ep", "replicas",
                 "concurrency_total", "mode", "metric") + POOL_COLUMNS


def speculative_twins(rows: list[dict], family, stand_in: list[int]) -> set[int]:
    """The stand-in rows (``measurement_of``) of measurements read as InferenceX's
    speculative-decoding (MTP) run of a configuration. InferenceX measures some recipes twice,
    with and without MTP, and the source has no column for it (measured-silicon.md, "Not
    recorded"). That the DB dump lists the plain configurations is read from the source, not
    stated by it: in 32 of 36 such pairs the dump's is the slower measurement (benchmarks/
    tpot_groups.py section 2, a count over the corpus, never a rule per row). Where the same configuration
    (``family(row)``: system, engine, architecture, weights, lengths; the engine version and
    image, layout, pool columns, clients, mode and metric) measured the same day is two
    distinct measurements and exactly one of them is the DB dump's, the other is the MTP run.
    Columns only, never a measured value; a configuration listed once stays plain (docs/validation.md,
    "Speculative twins")."""
    if not rows or "silicon_id" not in rows[0]:
        return set()
    groups: dict[tuple, set[int]] = {}
    for i, r in enumerate(rows):
        if r.get("provenance", "").startswith("InferenceX"):
            key = (family(r), run_day(r), *(r.get(c, "").strip() for c in _TWIN_COLUMNS))
            groups.setdefault(key, set()).add(stand_in[i])
    in_dump = {stand_in[i] for i, r in enumerate(rows) if r.get("provenance", "").startswith("InferenceX DB")}
    out = set()
    for members in groups.values():
        plain = members & in_dump
        if len(members) == 2 and len(plain) == 1:
            out |= members - plain
    return out


MTP_TPOT_RATIO = 0.75
"""A recipe row is read as an MTP run where its measured / predicted TPOT (as a plain run) is
below this share of its donor's: the value (grid 0.50-0.95) that best separates two labelled
readings, the largest share of the speculative twins (labelled MTP by their columns,
predicted plain: 22 of 25 below 0.75) less the share of ordered pairs of two stated runs of
one deployment (both plain: 9 of 218). Each system's fold chooses 0.75 but H200's (0.70);
``python benchmarks/disagg_tpot.py`` sections 5 and 10. Not fitted to the rows it reads."""


def mtp_by_donor(rows: list[dict], recipes: dict[int, int], stand_in: list[int],
                 tpot_error: dict[int, float]) -> set[int]:
    """The stand-in rows (every metric) of measurements read as InferenceX's MTP runs by their
    TPOT against a labelled plain run of the same pools: a disaggregated row that takes its
    pools from a recipe's stated row (``pool_recipes``: the DB dump's or NVIDIA's, plain) and
    whose measured / predicted TPOT as a plain run is below ``MTP_TPOT_RATIO`` times its
    donor's, the model carrying the concurrency between the two. InferenceX's results
    exports hold MTP runs of the same recipes without a column for it (measured-silicon.md,
    "Not recorded"; docs/validation.md "Disaggregated TPOT"). ``tpot_error``: measured /
    predicted TPOT of the stand-in TPOT rows predicted as plain runs. The reading uses the
    row's own measured TPOT: the rows it serves are not an independent test of the model's
    plain decode, and validate labels them so ("MTP by its TPOT")."""
    ids: dict[str, list[int]] = {}
    for k, r in enumerate(rows):
        ids.setdefault(r.get("silicon_id", "").strip(), []).append(k)

    def tpot_row(k: int) -> int | None:
        r = rows[k]
        for sid in (r.get("silicon_id", "").strip(), *r.get("same_measurement_as", "").split()):
            for m in ids.get(sid, []):
                if rows[m]["metric"].startswith("tpot") and stand_in[m] in tpot_error:
                    return stand_in[m]
        return None
    flagged = set()
    for i, j in recipes.items():
        d = tpot_row(j)
        if i in tpot_error and d is not None and tpot_error[i] < MTP_TPOT_RATIO * tpot_error[d]:
            flagged.add(rows[i].get("silicon_id", "").strip())
    return {stand_in[k] for k, r in enumerate(rows) if r.get("silicon_id", "").strip() in flagged - {""}}


def with_speculation(case: Case) -> Case:
    """``case`` predicted as its MTP run: ``MTP_TOKENS`` draft tokens a step on top of its
    engine's profile (the acceptance and the drafter's cost stay the priors:
    ``speculative_acceptance``, ``speculative_draft_layers``; docs/model.md section 4)."""
    return replace(case, engine=case.engine + (("speculative_tokens", MTP_TOKENS),))
