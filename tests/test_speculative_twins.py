"""A configuration InferenceX measured twice at once, with and without MTP
(planner/fidelity/repeats.py ``speculative_twins``, docs/validation.md "Speculative twins"):
the DB dump's measurement is the plain run, the other the MTP run, predicted with one
draft token a step; configurations listed once, or twice without the DB dump's, stay plain."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from test_validation_rows import _write as write_rows

from planner.catalog.store import Catalog
from planner.fidelity.predict import predict
from planner.fidelity.repeats import measurement_of, speculative_twins
from planner.fidelity.rows import load_measurements, map_row, recipe_family
from planner.fidelity.validate import validate
from planner.physics.options import PRESETS

CAT = Catalog.default()
O = PRESETS["realistic"]
COLUMNS = ("source,model,precision,gpu,gpu_count,tp,pp,framework,input_len,output_len,batch_or_concurrency,metric,"
           "value,notes,silicon_id,same_measurement_as,provenance,mode,concurrency_total,replicas,gpus_per_replica,"
           "attention_tp,attention_dp,moe_tp,moe_ep,measured,image").split(",")
EXPORT, DUMP = "InferenceX results export 2026-03-25", "InferenceX DB dump 2026-04-27"


def row(sid: str, provenance: str = EXPORT, **kw) -> dict:
    base = dict.fromkeys(COLUMNS, "")
    base.update(source="test", model="DeepSeek-R1 (HF deepseek-ai/DeepSeek-R1; InferenceX model DeepSeek-R1)",
                precision="W=fp8;A=fp8;KV=unstated", gpu="B200 SXM 180GB", gpu_count="8", tp="8", pp="1",
                framework="SGLang 0.5.9", input_len="1024", output_len="1024",
                batch_or_concurrency="concurrency 16 (closed loop)", metric="tpot_ms_mean", value="10",
                notes="closed loop of 16 clients (benchmark max-concurrency)", silicon_id=sid,
                provenance=provenance, mode="agg", concurrency_total="16", replicas="1", gpus_per_replica="8",
                attention_tp="8", attention_dp="1", moe_tp="8", moe_ep="1", measured="2026-03-25T16:34:14Z",
                image="lmsysorg/sglang:v0.5.9-cu130")
    base.update(kw)
    return base


def _write(tmp_path: Path, rows: list[dict]) -> str:
    return write_rows(tmp_path, rows, COLUMNS)


def test_the_measurement_beside_the_dumps_plain_one_is_the_mtp_run(tmp_path: Path) -> None:
    """By hand: configuration A (16 clients) is listed four times: the DB dump's row (named
    DeepSeek-V3: the same network; its day only), an export row naming it as the same
    measurement, and two export rows of another measurement of that day: A has two distinct
    measurements, one the dump's, so the other (rows 2 and 3, stand-in row 2) is the MTP run.
    B (32 clients) is measured twice without the dump: which is which is not known, both plain.
    C (64 clients) is listed once (the dump): plain. A's MTP run measured another day is not a
    twin (row 6)."""
    rows = [row("db1", DUMP, model="DeepSeek-V3 (HF deepseek-ai/DeepSeek-V3; InferenceX model dsr1)",
                measured="2026-03-25T00:00:00.000Z", same_measurement_as="x1"),
            row("x1", same_measurement_as="db1"),
            row("x2", value="6.5", same_measurement_as="x3"), row("x3", value="6.5", same_measurement_as="x2"),
            row("b1", concurrency_total="32", batch_or_concurrency="concurrency 32 (closed loop)"),
            row("b2", concurrency_total="32", batch_or_concurrency="concurrency 32 (closed loop)", value="7"),
            row("x4", value="6.5", measured="2026-03-26T10:00:00Z"),
            row("c1", DUMP, concurrency_total="64", batch_or_concurrency="concurrency 64 (closed loop)")]
    path = _write(tmp_path, rows)
    loaded = load_measurements(path)
    stand_in = measurement_of(loaded)
    assert stand_in[:4] == [0, 0, 2, 2]
    assert speculative_twins(loaded, recipe_family(CAT, {}), stand_in) == {2}
    v = validate(path, O)
    assert [x.mode for x in v.rows] == ["agg"] * 2 + ["agg, MTP twin"] * 2 + ["agg"] * 4
    # the MTP run is the plain configuration with one draft token a step on its engine's profile
    plain = map_row(2, loaded[2], CAT)
    assert not isinstance(plain, str)
    mtp = replace(plain, engine=plain.engine + (("speculative_tokens", 1),))
    assert v.rows[2].predicted == pytest.approx(predict([mtp], CAT, O)[0][0], rel=1e-12)
    assert v.rows[3].predicted == v.rows[2].predicted                     # the repeat carries it
    # and a plain run's TPOT is the plain configuration's; the MTP one's is lower
    assert v.rows[0].predicted == pytest.approx(predict([plain], CAT, O)[0][0], rel=1e-12)
    assert v.rows[2].predicted < 0.8 * v.rows[0].predicted


def test_without_provenance_columns_nothing_is_a_twin(tmp_path: Path) -> None:
    rows = [row("a"), row("b", value="6.5")]
    for r in rows:
        r["provenance"] = "NVIDIA run"
    loaded = load_measurements(_write(tmp_path, rows))
    assert speculative_twins(loaded, recipe_family(CAT, {}), measurement_of(loaded)) == set()


def test_a_twin_of_a_model_without_an_mtp_module_stays_plain(tmp_path: Path) -> None:
    """The MTP reading needs a checkpoint that ships its drafter (catalog ``mtp_layers``:
    DeepSeek-V3/R1's config.json num_nextn_predict_layers 1; Llama-3.1 none): the same pair of
    Llama-3.1-70B measurements, one the dump's, is read plain."""
    assert CAT.model("deepseek-r1").mtp_layers == CAT.model("deepseek-v3").mtp_layers == 1
    assert CAT.model("llama-3.1-70b").mtp_layers == 0
    llama = dict(model="Llama-3.1-70B (HF meta-llama/Llama-3.1-70B-Instruct)", gpu_count="4", tp="4",
                 gpus_per_replica="4", attention_tp="4", moe_tp="", moe_ep="")
    rows = [row("db1", DUMP, measured="2026-03-25T00:00:00.000Z", same_measurement_as="x1", **llama),
            row("x1", same_measurement_as="db1", **llama), row("x2", value="6.5", **llama)]
    v = validate(_write(tmp_path, rows), O)
    assert [x.mode for x in v.rows] == ["agg"] * 3
    assert v.rows[2].predicted == v.rows[0].predicted
