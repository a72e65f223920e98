"""Release formats (issue 27 item 2): a checkpoint's quantization_config and ModelOpt's
hf_quant_config.json set its precision per module (planner/catalog/release.py); that format is
what estimate and plan assume unless the user names another, labelled as the release format;
a plan in another format says which checkpoint it needs (planner/catalog/checkpoints.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.catalog.checkpoints import serving_checkpoint
from planner.catalog.release import module_class, present_classes, release_format
from planner.catalog.store import Catalog, model_from_hf_config
from planner.cli.root import app
from planner.estimate.run import estimate_from_spec
from planner.physics.options import PRESETS
from planner.physics.params import count_parameters
from planner.physics.perf import evaluate
from planner.physics.quant import SCHEMES
from planner.physics.space import Configs, GpuTable
from planner.plan.result import quality_of
from planner.resolve.formats import default_schemes
from planner.schemas.estimate import EstimateSpec

CONFIGS = Path("/work/shared/reference/hf-configs")
if not CONFIGS.is_dir():
    CONFIGS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "hf-configs"
needs_configs = pytest.mark.skipif(not CONFIGS.is_dir(), reason="shared/reference/hf-configs not present")
CAT = Catalog.default()
RUNNER = CliRunner()

# What each shipped checkpoint stores, read by hand from its files (the scheme that models it).
EXPECTED = {
    "openai--gpt-oss-120b": "mxfp4-experts",      # quant_method mxfp4; self_attn, router, embeddings not converted
    "openai--gpt-oss-20b": "mxfp4-experts",
    "deepseek-ai--DeepSeek-R1": "w8a8-fp8",        # quant_method fp8, 128 x 128 blocks, every linear layer
    "deepseek-ai--DeepSeek-V3": "w8a8-fp8",
    "moonshotai--Kimi-K2-Instruct": "w8a8-fp8",
    "Qwen--Qwen3-32B-FP8": "w8a8-fp8",
    "Qwen--Qwen3-235B-A22B-FP8": "w8a8-fp8",       # router gates and norms left out: 16-bit in every format
    "Qwen--Qwen3-32B-FP8-Static-PerTensor": "w8a8-fp8",     # ModelOpt FP8, lm_head excluded
    "nvidia--Llama-3.1-70B-Instruct-FP8": "w8a8-fp8",
    "nvidia--Qwen3-235B-A22B-NVFP4": "fp4",        # only the router gates excluded
    "nvidia--DeepSeek-V3.1-NVFP4": "fp4",          # MLA low-rank projections 16-bit, o_proj and the MLPs NVFP4
    "nvidia--MiniMax-M2.7-NVFP4": "fp4-experts",   # self_attn and gates excluded: only the experts NVFP4
    "nvidia--GLM-5.2-NVFP4": "fp4-experts",        # self_attn, shared experts, the dense layers 0-1 excluded
    "nvidia--Kimi-K2.6-NVFP4": "fp4-experts",
    "nvidia--Qwen3.5-397B-A17B-NVFP4": "fp4-experts",   # linear_attn (Gated DeltaNet), self_attn, shared excluded
    "nvidia--DeepSeek-V4-Pro-NVFP4": "fp4-experts",     # MIXED_PRECISION: quantized_layers name only ffn.experts
    "moonshotai--Kimi-K3": "mxfp4-experts",        # compressed-tensors mxfp4-pack-quantized, attention ignored
    "zai-org--GLM-5-FP8": "w8a8-fp8",
}


def _config(stem: str) -> dict:
    return json.loads((CONFIGS / f"{stem}.json").read_text())


def _hf_quant(stem: str) -> dict | None:
    q = CONFIGS / f"{stem}.hf_quant_config.json"
    return json.loads(q.read_text()) if q.exists() else None


@needs_configs
@pytest.mark.parametrize("stem,scheme", sorted(EXPECTED.items()))
def test_shipped_checkpoints_import_in_their_release_format(stem: str, scheme: str) -> None:
    m = model_from_hf_config(CONFIGS / f"{stem}.json")
    assert m.release_quantization == scheme
    assert any(n.startswith(f"release format {scheme}") for n in m.notes)


@needs_configs
def test_every_quantized_shared_config_reads_to_a_scheme() -> None:
    """No shipped quantization_config or hf_quant_config.json is ignored any more."""
    seen = 0
    for f in sorted(CONFIGS.glob("*.json")):
        if f.name.endswith(".hf_quant_config.json"):
            continue
        cfg = json.loads(f.read_text())
        text = cfg.get("text_config") or {}
        if not (cfg.get("quantization_config") or text.get("quantization_config") or _hf_quant(f.stem)):
            continue
        seen += 1
        m = model_from_hf_config(f)
        assert m.release_quantization in SCHEMES and m.release_quantization != "w16a16", f.name
    assert seen >= 30


@needs_configs
def test_the_catalog_release_formats_are_what_the_shared_configs_say() -> None:
    checked = 0
    for ident, m in CAT.models.items():
        f = CONFIGS / f"{(m.hf_id or '').replace('/', '--')}.json"
        if m.hf_id and f.exists():
            assert model_from_hf_config(f).release_quantization == m.release_quantization, ident
            checked += 1
        for ck in m.checkpoints:          # a published checkpoint in the shared folder: its files say its format
            g = CONFIGS / f"{ck.hf_id.replace('/', '--')}.json"
            if g.exists():
                assert model_from_hf_config(g).release_quantization == ck.scheme, ck.hf_id
                checked += 1
    assert checked >= 25


def test_module_classes_by_name() -> None:
    cases = {"model.layers.3.self_attn.q_proj": "attention", "re:.*shared_experts.*": "shared_experts",
             "model.layers.7.mlp.gate": "router", "model.layers.0.block_sparse_moe.gate": "router",
             "model.layers.5.mlp.experts.12.down_proj": "routed_experts", "lm_head": "lm_head",
             "model.embed_tokens": "embeddings", "backbone.layers.4.mixer.in_proj": "mixer",
             "model.language_model.layers.0.linear_attn.in_proj_qkv": "mixer",
             "model.layers.2.mlp.down_proj": "dense_mlp", "model.layers.0*": None,
             "model.layers.0.input_layernorm": "norm", "vision_tower*": "vision"}
    for name, cls in cases.items():
        assert module_class(name) == cls, name


DENSE = {"num_layers": 4}
MOE = {"num_layers": 4, "moe": {"num_experts": 8, "num_shared_experts": 1, "first_dense_layers": 1}}


@pytest.mark.parametrize("qc,fields,scheme", [
    ({"quant_method": "awq", "bits": 4, "group_size": 128}, DENSE, "w4a16"),
    ({"quant_method": "gptq", "bits": 8, "group_size": 128}, DENSE, "w8a16"),
    ({"quant_method": "gptq", "bits": 4}, DENSE, "w4a16"),
    ({"quant_method": "bitsandbytes", "load_in_4bit": True}, DENSE, "w4a16"),
    ({"quant_method": "bitsandbytes", "load_in_8bit": True}, DENSE, "w8a16"),
    ({"quant_method": "compressed-tensors", "config_groups": {"g": {"weights": {"num_bits": 8, "type": "int"},
      "input_activations": {"num_bits": 8, "type": "int"}, "targets": ["Linear"]}}}, DENSE, "w8a8-int8"),
    ({"quant_method": "compressed-tensors", "config_groups": {"g": {"weights": {"num_bits": 8, "type": "int"},
      "targets": ["Linear"]}}}, DENSE, "w8a16"),
    ({"quant_method": "compressed-tensors", "config_groups": {"g": {"weights": {"num_bits": 4, "type": "int"},
      "targets": ["Linear"]}}}, DENSE, "w4a16"),
    ({"quant_method": "compressed-tensors", "config_groups": {"g": {"weights": {"num_bits": 8, "type": "float"},
      "input_activations": {"num_bits": 8, "type": "float"}, "targets": ["Linear"]}}}, DENSE, "w8a8-fp8"),
    ({"quant_method": "compressed-tensors", "config_groups": {"g": {"weights": {"num_bits": 4, "type": "float",
      "group_size": 16}, "input_activations": {"num_bits": 4, "type": "float"}, "targets": ["Linear"]}}},
     DENSE, "fp4"),
    ({"quant_method": "fp8", "weight_block_size": [128, 128]}, MOE, "w8a8-fp8"),
    ({"quant_method": "mxfp4", "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                                                          "model.embed_tokens", "lm_head"]},
     {"num_layers": 4, "moe": {"num_experts": 8}}, "mxfp4-experts"),
    ({"quant_method": "mxfp4"}, {"num_layers": 4, "moe": {"num_experts": 8}}, "mxfp4"),
])
def test_quantization_configs_by_method(qc: dict, fields: dict, scheme: str) -> None:
    r = release_format({"quantization_config": qc}, present=present_classes(fields))
    assert r is not None and r.scheme == scheme


def test_an_unknown_method_is_named_not_guessed() -> None:
    r = release_format({"quantization_config": {"quant_method": "hqq", "nbits": 3}}, present=present_classes(DENSE))
    assert r is not None and r.scheme == "" and "hqq" in r.notes[0]
    assert release_format({"torch_dtype": "bfloat16"}) is None


@needs_configs
def test_partly_kept_modules_are_named_in_the_notes() -> None:
    """DeepSeek-V3.1-NVFP4 keeps its MLA low-rank projections in 16-bit (o_proj and the MLPs in
    NVFP4): counted as fp4, and the note says what the checkpoint keeps."""
    m = model_from_hf_config(CONFIGS / "nvidia--DeepSeek-V3.1-NVFP4.json")
    note = next(n for n in m.notes if n.startswith("release format"))
    assert "q_a_proj" in note and "kv_b_proj" in note and "counted as fp4" in note
    assert "KV-cache scales for FP8" in note


def test_fp4_experts_weights_by_hand() -> None:
    """fp4-experts: routed experts at 4.5 bits (NVFP4: 4 + 8/16), every other layer weight at 16,
    embeddings at 16. Against w16a16 the weights shrink by exactly the experts' 11.5 bits; against
    fp4 (every layer weight 4.5 bits) they grow by the non-expert layer weights' 11.5 bits."""
    m = CAT.models["qwen3-30b-a3b"]
    p = count_parameters(m)
    table = GpuTable.build([CAT.gpus["b200"]])

    def weights(s: str) -> float:
        return float(evaluate(m, table, Configs.single(0, s, "bf16", 1, 1, 1, 1, 1024, 256),
                              PRESETS["realistic"]).weights_bytes[0])

    experts, layers = p.experts_total, p.layers_always
    assert SCHEMES["fp4-experts"].expert_bits == 4.5 and SCHEMES["fp4-experts"].bits_per_weight == 16.0
    assert weights("w16a16") - weights("fp4-experts") == pytest.approx(experts * (16 - 4.5) / 8, rel=1e-9)
    assert weights("fp4-experts") - weights("fp4") == pytest.approx(layers * (16 - 4.5) / 8, rel=1e-9)


# --- the release format as the default ---------------------------------------------------

def test_the_default_search_starts_from_the_release_format() -> None:
    gpt = CAT.models["gpt-oss-120b"]
    assert default_schemes(gpt, None, 8) == ("mxfp4-experts",)          # nothing is gained above its 4.25-bit experts
    r1 = CAT.models["deepseek-r1"]
    assert set(default_schemes(r1, None, 8)) == {"w8a8-fp8", "w8a16", "w8a8-int8"}    # no BF16 upcast
    llama = CAT.models["llama-3.1-70b"]
    assert set(default_schemes(llama, None, 8)) == {"w16a16", "w8a16", "w8a8-fp8", "w8a8-int8"}
    assert default_schemes(CAT.models["qwen3-32b"], CAT.checkpoint("Qwen/Qwen3-32B-FP8"), 8) == ("w8a8-fp8",)
    assert "fp4" in default_schemes(r1, None, 4)          # published (nvidia/DeepSeek-R1-FP4), 4-bit opted into


def test_estimate_gpt_oss_120b_fits_one_h100_in_its_release_format() -> None:
    e = estimate_from_spec(EstimateSpec(model="openai/gpt-oss-120b", gpu="H100"))
    assert e.quantization == "mxfp4-experts" and e.quantization_from == "release" and e.fits
    assert not e.quality.startswith("LOSSY") and "release format" in e.quality
    assert e.checkpoint is not None and e.checkpoint["kind"] == "release"
    assert e.checkpoint["repository"] == "openai/gpt-oss-120b"


def test_estimate_deepseek_r1_assumes_fp8() -> None:
    e = estimate_from_spec(EstimateSpec(model="deepseek-ai/DeepSeek-R1", gpu="B200", tp=8))
    assert e.quantization == "w8a8-fp8" and e.quantization_from == "release" and e.fits
    bf16 = estimate_from_spec(EstimateSpec(model="deepseek-ai/DeepSeek-R1", gpu="B200", tp=8, quantization="bf16"))
    assert bf16.quantization == "w16a16" and bf16.quantization_from == "given"
    assert bf16.checkpoint is not None and bf16.checkpoint["kind"] == "quantize"   # no BF16 release known


def test_the_cli_labels_the_release_format_and_takes_precision_words() -> None:
    r = RUNNER.invoke(app, ["estimate", "--model", "openai/gpt-oss-120b", "--gpu", "H100"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "mxfp4-experts, the release format" in r.output and "fits" in r.output and "LOSSY" not in r.output
    for word, scheme in (("fp8", "w8a8-fp8"), ("bf16", "w16a16"), ("FP8_DYNAMIC", "w8a8-fp8"), ("awq", "w4a16")):
        r = RUNNER.invoke(app, ["estimate", "--model", "llama-3.1-8b", "--gpu", "H100", "--quantization", word,
                                "--json"])
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["quantization"] == scheme


def test_quality_words() -> None:
    assert quality_of("mxfp4-experts", "mxfp4-experts").startswith("the release format")
    assert quality_of("mxfp4", "mxfp4-experts").startswith("LOSSY")
    assert quality_of("w16a16", None).startswith("the release format")
    assert quality_of("w8a8-fp8", None).startswith("8-bit")
    assert quality_of("fp4-experts", None).startswith("LOSSY")     # its experts are 4.5 bits


# --- which checkpoint a format needs ---------------------------------------------------------

def test_the_checkpoint_a_format_needs() -> None:
    llama = CAT.models["llama-3.1-70b"]
    h100, a100 = CAT.gpus["h100-sxm"], CAT.gpus["a100-80gb"]
    c = serving_checkpoint(llama, "w16a16")
    assert (c.kind, c.repository) == ("published", "meta-llama/Llama-3.1-70B-Instruct")     # chat: the instruct one
    assert serving_checkpoint(llama, "w16a16", tuning="base").repository == "meta-llama/Llama-3.1-70B"
    fp8 = serving_checkpoint(llama, "w8a8-fp8", gpu=h100)
    assert fp8.kind == "published" and fp8.stored == "w8a8-fp8" and "FP8" in (fp8.repository or "")
    r1 = CAT.models["deepseek-r1"]
    assert serving_checkpoint(r1, "w8a8-fp8").kind == "release"
    on_ampere = serving_checkpoint(r1, "w8a16", gpu=a100)          # the FP8 release runs as W8A16 on Ampere
    assert on_ampere.kind == "release" and on_ampere.stored == "w8a8-fp8"
    gpt = CAT.models["gpt-oss-20b"]
    none = serving_checkpoint(gpt, "w8a16", gpu=a100)
    assert none.kind == "quantize" and none.repository is None and none.from_repository == "openai/gpt-oss-20b"
    named = serving_checkpoint(CAT.models["qwen3-32b"], "w8a8-fp8", named=CAT.checkpoint("Qwen/Qwen3-32B-FP8"))
    assert (named.kind, named.repository) == ("named", "Qwen/Qwen3-32B-FP8")
