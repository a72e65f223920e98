"""Checkpoint names as published -> catalog architecture and format (planner/catalog/aliases.py
``checkpoint_of``, one resolver for every command), and the gpt-oss release format
(``mxfp4-experts``: MXFP4 routed experts, 16-bit everything else) checked by hand."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
from reference import REFERENCE

from planner.catalog.store import Catalog
from planner.errors import InputError
from planner.physics.options import PRESETS
from planner.physics.params import count_parameters
from planner.physics.perf import evaluate
from planner.physics.quant import SCHEMES
from planner.physics.space import Configs, GpuTable

# name -> (catalog id, scheme, where the scheme comes from)
CHECKPOINTS = {
    "deepseek-ai/DeepSeek-R1-0528": ("deepseek-r1", "w8a8-fp8", "release"),
    "deepseek-ai/DeepSeek-R1": ("deepseek-r1", "w8a8-fp8", "release"),
    "deepseek-ai/DeepSeek-V3": ("deepseek-v3", "w8a8-fp8", "release"),
    "nvidia/DeepSeek-R1-NVFP4": ("deepseek-r1", "fp4", "name"),
    "nvidia/DeepSeek-R1-0528-FP4": ("deepseek-r1", "fp4", "name"),
    "nvidia/DeepSeek-V3.1-NVFP4": ("deepseek-v3.1", "fp4", "name"),
    "meta-llama/Llama-3.1-70B-Instruct": ("llama-3.1-70b", None, ""),
    "meta-llama/Meta-Llama-3.1-70B-Instruct": ("llama-3.1-70b", None, ""),
    "meta-llama/Llama-3.3-70B-Instruct": ("llama-3.1-70b", None, ""),
    "meta-llama/Llama-3.1-8B-Instruct": ("llama-3.1-8b", None, ""),
    "nvidia/Llama-3.1-8B-Instruct-FP8": ("llama-3.1-8b", "w8a8-fp8", "name"),
    "amd/Llama-3.1-70B-Instruct-FP8-KV": ("llama-3.1-70b", "w8a8-fp8", "name"),
    "Qwen/Qwen3-32B": ("qwen3-32b", None, ""),
    "Qwen/Qwen3-32B-FP8": ("qwen3-32b", "w8a8-fp8", "name"),
    "nvidia/Qwen3-32B-NVFP4": ("qwen3-32b", "fp4", "name"),
    "Qwen/Qwen3-235B-A22B-FP8": ("qwen3-235b-a22b", "w8a8-fp8", "name"),
    "Qwen/Qwen3-235B-A22B-Instruct-2507": ("qwen3-235b-a22b", None, ""),
    "openai/gpt-oss-120b": ("gpt-oss-120b", "mxfp4-experts", "release"),
    "mistralai/Mixtral-8x7B-Instruct-v0.1": ("mixtral-8x7b", None, ""),
    "Llama-2-70B-chat": ("llama-2-70b", None, ""),
    "TheBloke/Llama-2-7B-AWQ": ("llama-2-7b", "w4a16", "name"),
    "llama-3.1-8b": ("llama-3.1-8b", None, ""),
}


@pytest.mark.parametrize("name", sorted(CHECKPOINTS))
def test_checkpoint_names_resolve_to_architecture_and_format(name: str) -> None:
    ident, scheme, source = CHECKPOINTS[name]
    cp = Catalog.default().checkpoint(name)
    assert (cp.model_id, cp.scheme, cp.scheme_from) == (ident, scheme, source)
    assert Catalog.default().model(name).id == ident        # the same resolver behind every command


def test_words_read_off_are_reported() -> None:
    cp = Catalog.default().checkpoint("Qwen/Qwen3-32B-FP8-Static-PerTensor")
    assert cp.read_off == ("FP8", "Static", "PerTensor") and cp.scheme == "w8a8-fp8"
    assert Catalog.default().checkpoint("DeepSeek-V3.1").model_id == "deepseek-v3.1"   # not a Mistral version


def test_an_unknown_model_names_the_nearest_models_not_gpus() -> None:
    with pytest.raises(InputError) as e:
        Catalog.default().model("DeepSeek-R2")
    near = e.value.message.split("did you mean")[1].split("?")[0]
    assert "deepseek-r1" in near and "h100" not in e.value.message
    assert "llama-3.1-8b" in (e.value.accepted or "") and "h100-sxm" not in (e.value.accepted or "")


def _corpus_names(path: Path) -> tuple[set[str], set[str]]:
    models, gpus = set(), set()
    with path.open(newline="") as fh:
        for r in csv.DictReader(fh):
            m = re.search(r"\(HF ([^;)]+)", r["model"])
            models.add(m.group(1).strip() if m else r["model"].split(" (")[0].strip())
            gpus.add(r["gpu"])
    return models, gpus


@pytest.mark.skipif(not (REFERENCE / "measured-silicon.csv").exists(), reason="shared/reference not present")
def test_every_model_and_gpu_of_the_silicon_corpus_resolves() -> None:
    cat = Catalog.default()
    models, gpus = _corpus_names(REFERENCE / "measured-silicon.csv")
    assert {cat.model_id(m) for m in models} == {
        "deepseek-r1", "deepseek-v3", "deepseek-v3.1", "gpt-oss-120b", "llama-3.1-70b", "llama-3.1-8b",
        "qwen3-32b", "qwen3-235b-a22b"}
    assert {cat.gpu_id(g) for g in gpus} == {"h100-sxm", "h200", "b200", "gb200"}


@pytest.mark.skipif(not (REFERENCE / "measured-public.csv").exists(), reason="shared/reference not present")
def test_every_model_of_the_public_rows_resolves() -> None:
    cat = Catalog.default()
    models, _ = _corpus_names(REFERENCE / "measured-public.csv")
    for m in models:
        cat.model_id(m)


def test_gpt_oss_release_weights_by_hand() -> None:
    """gpt-oss-120b in its release format: 36 layers x 128 experts x (3 x 2880 x 2880 weights
    + 3 x 2880 biases) = 114,701,598,720 expert parameters at 4.25 bits (MXFP4: 4-bit values,
    one 8-bit scale per 32), every other weight at 16 bits. Against w16a16, the weights
    shrink by exactly the experts' 16 - 4.25 = 11.75 bits; against mxfp4 (every weight 4.25
    bits), they grow by the non-expert layer weights' 11.75 bits."""
    cat = Catalog.default()
    model = cat.model("gpt-oss-120b")
    p = count_parameters(model)
    experts = 36 * 128 * (3 * 2880 * 2880 + 3 * 2880)
    assert p.moe_layers * p.num_experts * p.expert_per_layer == experts == 114_701_598_720
    table = GpuTable.build([cat.gpu("h100-sxm")])
    o = PRESETS["realistic"]

    def weights(scheme: str) -> float:
        return float(evaluate(model, table, Configs.single(0, scheme, "bf16", 1, 1, 1, 1, 1024, 1024), o).weights_bytes[0])

    assert SCHEMES["mxfp4-experts"].expert_bits == 4.25 and SCHEMES["mxfp4-experts"].bits_per_weight == 16.0
    assert weights("w16a16") - weights("mxfp4-experts") == pytest.approx(experts * (16 - 4.25) / 8, rel=1e-12)
    total_layers = p.total - p.embedding - p.lm_head            # untied: embeddings and LM head stay 16-bit
    assert weights("mxfp4-experts") - weights("mxfp4") == pytest.approx((total_layers - experts) * (16 - 4.25) / 8,
                                                                        rel=1e-9)
    # released, it fits one 80 GB H100: 114.7e9 x 4.25 / 8 + (116.8e9 - 114.7e9) x 2 ~ 65 GB
    assert weights("mxfp4-experts") < 66e9


def test_gpt_oss_release_reads_fewer_bytes_per_decode_step_than_bf16_but_more_than_all_mxfp4() -> None:
    cat = Catalog.default()
    table = GpuTable.build([cat.gpu("h100-sxm")])
    c = {s: Configs.single(0, s, "bf16", 1, 1, 1, 1, 1024, 1024) for s in ("w16a16", "mxfp4-experts", "mxfp4")}
    t = {s: float(evaluate(cat.model("gpt-oss-120b"), table, cfg, PRESETS["realistic"]).tpot[0]) for s, cfg in c.items()}
    assert t["mxfp4"] < t["mxfp4-experts"] < t["w16a16"]
    assert np.isfinite(list(t.values())).all()


def test_the_load_model_reads_the_release_format_as_perf_does() -> None:
    """planner/physics/load.py's mixed step carries the experts' own bytes: a decode-only step
    is perf.py's TPOT and a prompt-only step its TTFT (less the serving path outside the engine;
    one attention group, as an idle replica prefills one prompt) in the release format of
    gpt-oss, here on a MoE of full-attention layers."""
    from planner.physics import load as L
    from planner.physics.space import SCHEME_NAMES

    cat = Catalog.default()
    m = cat.model("qwen3-235b-a22b")
    t = GpuTable.build([cat.gpu(g) for g in ("h100-sxm", "b200")])
    c = Configs.grid([0, 1], [SCHEME_NAMES.index("mxfp4-experts")], [0], [1, 2, 4], [1], [1, 4], [1, 64],
                     [1024, 8192], [1024])
    ev = evaluate(m, t, c, PRESETS["realistic"])
    ph = L.step_physics(m, t, c, PRESETS["realistic"])
    ok = ev.valid & np.isfinite(ev.tpot)
    assert ok.sum() >= 24
    np.testing.assert_allclose(L.step_time(ph, c.batch, c.batch * (c.input_tokens + c.output_tokens / 2.0))[ok],
                               ev.tpot[ok], rtol=1e-9)
    one = ok & (c.ep <= c.tp)
    np.testing.assert_allclose(L.step_time(ph, 0.0, 0.0, c.input_tokens)[one] + PRESETS["realistic"].serving_overhead_s,
                               ev.ttft[one], rtol=1e-9)


def test_estimate_takes_the_format_a_checkpoint_name_states() -> None:
    """`planner estimate --model Qwen/Qwen3-32B-FP8` runs the FP8 checkpoint it names; a
    --quantization given wins; a name stating no format keeps the default (a release format
    as the default is issue 27 item 2)."""
    import json

    from typer.testing import CliRunner

    from planner.cli.root import app

    def quantization(*args: str) -> str:
        r = CliRunner().invoke(app, ["estimate", "--gpu", "H100", "--json", *args])
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)["quantization"]

    assert quantization("--model", "Qwen/Qwen3-32B-FP8") == "w8a8-fp8"
    assert quantization("--model", "nvidia/Llama-3.1-8B-Instruct-FP8") == "w8a8-fp8"
    assert quantization("--model", "Qwen/Qwen3-32B-FP8", "--quantization", "w16a16") == "w16a16"
    assert quantization("--model", "qwen3-32b") == "w16a16"
