"""Names people type (issue 27 item 3): every name the issue lists resolves, or is refused with
the nearest names, through the one resolver every command uses (planner/catalog/aliases.py)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from planner.catalog.store import Catalog
from planner.cli.root import app
from planner.errors import InputError

CAT = Catalog.default()
RUNNER = CliRunner()

# issue 27: "refused are ..." -> (catalog id, the format the name states or the release's)
MODELS = {
    "meta-llama/Llama-3.1-70B-Instruct": ("llama-3.1-70b", None),
    "meta-llama/Llama-3.3-70B-Instruct": ("llama-3.1-70b", None),
    "Qwen/Qwen3-32B-FP8": ("qwen3-32b", "w8a8-fp8"),
    "Qwen/Qwen2.5-72B-Instruct": ("qwen2.5-72b", None),
    "deepseek-ai/DeepSeek-R1-0528": ("deepseek-r1", "w8a8-fp8"),
    "google/gemma-3-27b-it": ("gemma-3-27b", None),
    "Llama-3-70B": ("llama-3-70b", None),
    # and the suffixes the issue names: -Instruct, -it, -Chat, -FP8, -NVFP4, -AWQ, dates
    "meta-llama/Llama-2-70b-chat-hf": ("llama-2-70b", None),
    "nvidia/DeepSeek-V3.1-NVFP4": ("deepseek-v3.1", "fp4"),
    "Qwen/Qwen2.5-72B-Instruct-AWQ": ("qwen2.5-72b", "w4a16"),
    "Qwen/Qwen2.5-72B-Instruct-GPTQ-Int8": ("qwen2.5-72b", "w8a16"),      # GPTQ 8-bit is weight-only
    "RedHatAI/Meta-Llama-3.1-70B-Instruct-quantized.w8a8": ("llama-3.1-70b", "w8a8-int8"),   # a listed checkpoint
    "openai/gpt-oss-120b": ("gpt-oss-120b", "mxfp4-experts"),
}


@pytest.mark.parametrize("name,want", sorted(MODELS.items()))
def test_model_names_of_issue_27_resolve(name: str, want: tuple[str, str | None]) -> None:
    c = CAT.checkpoint(name)
    assert (c.model_id, c.scheme) == want


@pytest.mark.parametrize("name", ["meta-llama/Llama-3.1-70B-Instruct", "Qwen/Qwen2.5-72B-Instruct",
                                  "google/gemma-3-27b-it", "Llama-3-70B", "deepseek-ai/DeepSeek-R1-0528"])
def test_estimate_takes_them(name: str) -> None:
    r = RUNNER.invoke(app, ["estimate", "--model", name, "--gpu", "NVIDIA H100 80GB HBM3", "--tp", "8", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["model"] == MODELS[name][0]


def test_new_entries_have_their_published_parameter_counts() -> None:
    """Qwen2.5-72B: 72.7B (its model card); Gemma 3 27B: 27.0B without its 0.4B vision tower;
    Llama 3 70B and 8B: Llama 3.1's dimensions, 70.6B and 8.03B, with an 8,192-token context."""
    from planner.physics.params import count_parameters
    for ident, billions in (("qwen2.5-72b", 72.7), ("gemma-3-27b", 27.0), ("llama-3-70b", 70.6), ("llama-3-8b", 8.03)):
        assert count_parameters(CAT.models[ident]).total / 1e9 == pytest.approx(billions, rel=0.02), ident
    assert CAT.models["llama-3-70b"].max_context_tokens == 8192


GPUS = {"NVIDIA H100 80GB HBM3": "h100-sxm", "H100 SXM5 80GB": "h100-sxm", "MI300X OAM": "mi300x",
        "AMD Instinct MI355X OAM": "mi355x", "HGX B300": "b300", "GB300 NVL72": "gb300", "DGX B200": "b200",
        "RTX PRO 6000 Blackwell": "rtx-pro-6000", "NVIDIA RTX PRO 6000 Blackwell Server Edition": "rtx-pro-6000",
        "H100 PCIe": "h100-pcie"}


@pytest.mark.parametrize("name,ident", sorted(GPUS.items()))
def test_gpu_names_with_vendor_words_and_form_factors(name: str, ident: str) -> None:
    assert CAT.gpu_id(name) == ident


@pytest.mark.parametrize("name,first", [("H100 NVL", "h100"), ("RTX PRO 6000 Blackwell Workstation Edition",
                                                                "rtx-pro-6000"), ("H200 NVL", "h200")])
def test_parts_the_catalog_lacks_are_refused_with_the_nearest_names(name: str, first: str) -> None:
    """The H100 NVL (94 GB) and the workstation RTX PRO 6000 are other parts: refused, not
    matched to a neighbour, with the nearest names and how to add one."""
    with pytest.raises(InputError) as e:
        CAT.gpu_id(name)
    near = e.value.message.split("did you mean ")[1].split("?")[0].split(", ")
    assert near[0].startswith(first)
    assert "catalog override" in e.value.message


@pytest.mark.parametrize("word", ["fp8", "bf16", "FP8", "int8", "awq", "nvfp4", "mxfp4"])
def test_precision_words_in_plan_and_estimate(word: str, tmp_path) -> None:
    r = RUNNER.invoke(app, ["estimate", "--model", "llama-3.1-8b", "--gpu", "B200", "--quantization", word])
    assert r.exit_code == 0, r.output
    f = tmp_path / "p.yaml"
    f.write_text("schema_version: 1\nmodel: llama-3.1-8b\nworkload: {input_tokens: 512, output_tokens: 128}\n"
                 f"slo: {{tpot_ms: 100}}\nsearch: {{gpus: [B200], quantizations: [{word}], tp: [1]}}\n")
    r = RUNNER.invoke(app, ["plan", str(f), "--no-simulate", "--json"])
    assert r.exit_code == 0, r.output


def test_an_unknown_model_lists_models_not_gpus() -> None:
    r = RUNNER.invoke(app, ["estimate", "--model", "nope", "--gpu", "H100"])
    assert r.exit_code == 2
    accepted = r.stderr.split("accepted:")[1]
    assert "llama-3.1-70b" in accepted and "h100-sxm" not in accepted
