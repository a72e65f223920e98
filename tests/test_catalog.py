"""Catalog contents, user overrides and Hugging Face config import."""

from pathlib import Path

import pytest

from planner.catalog.schema import MATH_FORMATS
from planner.catalog.store import Catalog, model_from_hf_config
from planner.errors import InputError
from planner.physics.params import count_parameters

DATA = Path(__file__).parent / "data" / "hf"
CAT = Catalog.default()

REQUIRED_GPUS = ["h100-sxm", "h100-pcie", "h200", "b200", "gb200", "a100-80gb", "a100-40gb", "l40s", "l4", "a10g",
                 "rtx-4090", "rtx-3090", "mi300x", "mi325x", "gaudi3"]
REQUIRED_MODELS = ["llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b",
                   "mixtral-8x7b", "mixtral-8x22b", "qwen3-32b", "qwen3-235b-a22b", "deepseek-v3", "gpt-j-6b",
                   "gpt4-like-moe"]


def test_catalog_has_required_entries_with_sources():
    assert set(REQUIRED_GPUS) <= set(CAT.gpus)
    assert set(REQUIRED_MODELS) <= set(CAT.models)
    for g in CAT.gpus.values():
        assert g.source and set(g.peak_dense_flops_per_s) <= set(MATH_FORMATS)
        if g.price_usd_per_gpu_hour is not None:
            assert g.price_source and any(ch.isdigit() for ch in g.price_source)  # dated


def test_dense_peaks_not_sparse():
    assert CAT.gpu("h100-sxm").peak_dense_flops_per_s["bf16"] == 989e12
    assert CAT.gpu("rtx-4090").peak_dense_flops_per_s["fp16"] == 165.15e12   # FP32 accumulate
    assert "fp8" not in CAT.gpu("a100-80gb").peak_dense_flops_per_s
    assert CAT.gpu("a10g").peak_dense_flops_per_s == {}                     # not published: not invented


def test_override_file_replaces_only_named_fields(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("gpus:\n  h100-sxm:\n    price_usd_per_gpu_hour: 1.5\n    intra_node: {latency_s: 5.0e-6}\n")
    cat = Catalog.load((str(f),))
    g = cat.gpu("h100-sxm")
    assert g.price_usd_per_gpu_hour == 1.5 and g.intra_node.latency_s == 5e-6
    assert g.intra_node.bandwidth_bytes_per_s == 450e9


def test_override_errors_are_located(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("gpus:\n  h100-sxm:\n    memory_bytes: -1\n")
    with pytest.raises(InputError) as err:
        Catalog.load((str(f),))
    e = err.value
    assert e.file == str(f) and e.path == "gpus.h100-sxm.memory_bytes" and e.line == 3


def test_unknown_gpu_suggests_nearest():
    # "h100" itself now resolves (issue 11: names as people type them, tests/test_aliases.py)
    assert CAT.gpu("h100").id == "h100-sxm"
    with pytest.raises(InputError) as err:
        CAT.gpu("h10")
    assert "h100-sxm" in str(err.value)


@pytest.mark.parametrize("name,catalog_id", [
    ("llama_config.json", "llama-2-70b"), ("deepseek_v3_config.json", "deepseek-v3"),
    ("qwen3_moe_config.json", "qwen3-235b-a22b"), ("mixtral_config.json", "mixtral-8x7b"),
])
def test_hf_config_matches_catalog(name, catalog_id):
    m = model_from_hf_config(DATA / name)
    assert count_parameters(m).total == pytest.approx(count_parameters(CAT.model(catalog_id)).total, rel=1e-9)
    assert count_parameters(m).active == pytest.approx(count_parameters(CAT.model(catalog_id)).active, rel=1e-9)


def test_a_config_imports_by_its_fields_not_its_model_type():
    """Issue 27: no whitelist of model_type names. GPT-2's config (n_embd, n_layer, n_head)
    reads through the usual aliases and transformers' gpt2 defaults (n_positions 1024, tied
    head, plain MLP of 4 x hidden, LayerNorm, biases): 123.6e6 parameters against the
    124.4e6 HF reports for gpt2, the 0.8e6 learned position table being the difference."""
    m = model_from_hf_config(DATA / "gpt2_config.json")
    assert (m.mlp, m.norm, m.tie_embeddings, m.intermediate_size, m.max_context_tokens) == (
        "plain", "layernorm", True, 3072, 1024)
    assert count_parameters(m).total == pytest.approx(124.44e6, rel=0.01)
    assert any("gpt2 defaults" in n for n in m.notes)


def test_every_gpu_price_has_a_kind_and_a_date():
    for g in CAT.gpus.values():
        assert g.price_kind is not None, g.id
        assert (g.price_usd_per_gpu_hour is None) == (g.price_kind == "none"), g.id
        assert (g.price_date is None) == (g.price_kind == "none"), g.id
    # L40S and L4 carry serverless (per-second platform) prices: marked as such, not on-demand
    assert CAT.gpus["l40s"].price_kind == CAT.gpus["l4"].price_kind == "serverless"


def test_catalog_corrections_issue_11():
    gaudi = CAT.gpus["gaudi3"].intra_node
    assert gaudi.per_peer_bandwidth_bytes_per_s == 75e9      # 3 x 200 GbE per pair of cards, full mesh
    assert gaudi.bandwidth_bytes_per_s == 7 * 75e9           # 21 ports to 7 peers
    assert CAT.gpus["b200"].inter_node.bandwidth_bytes_per_s == 50e9   # one 400 Gb/s ConnectX-7 per GPU
