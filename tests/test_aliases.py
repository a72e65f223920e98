"""Names as people type them (planner/catalog/aliases.py, docs/support.md)."""

from __future__ import annotations

import pytest

from planner.catalog.aliases import SCHEME_ALIASES, scheme_of, suggest
from planner.catalog.store import Catalog
from planner.errors import InputError
from planner.physics.quant import SCHEMES

SCHEME_SPELLINGS = {
    "bf16": "w16a16", "BF16": "w16a16", "fp16": "w16a16", "float16": "w16a16", "w16a16": "w16a16",
    "fp8": "w8a8-fp8", "FP8": "w8a8-fp8", "fp8-dynamic": "w8a8-fp8", "FP8_DYNAMIC": "w8a8-fp8",
    "fp8_e4m3": "w8a8-fp8", "w8a8-fp8": "w8a8-fp8",
    "int8": "w8a8-int8", "w8a8": "w8a8-int8", "smoothquant": "w8a8-int8", "w8a8-int8": "w8a8-int8",
    "w8a16": "w8a16", "fp8-marlin": "w8a16",
    "int4": "w4a16", "awq": "w4a16", "AWQ": "w4a16", "gptq": "w4a16", "GPTQ": "w4a16", "w4a16": "w4a16",
    "awq_marlin": "w4a16", "gptq-marlin": "w4a16",
    "w4a8": "w4a8", "nvfp4": "fp4", "NVFP4": "fp4", "fp4": "fp4", "modelopt_fp4": "fp4",
    "mxfp4": "mxfp4", "MXFP4": "mxfp4", "q4_0": "gguf-q4_0", "Q8_0": "gguf-q8_0", "gguf-q4_0": "gguf-q4_0",
}


@pytest.mark.parametrize("name,scheme", sorted(SCHEME_SPELLINGS.items()))
def test_scheme_spellings(name: str, scheme: str) -> None:
    assert scheme_of(name) == scheme


def test_every_alias_names_a_physics_scheme_and_every_scheme_has_its_own_name() -> None:
    assert set(SCHEME_ALIASES.values()) <= set(SCHEMES)
    for s in SCHEMES:
        assert scheme_of(s) == s


def test_unknown_scheme_suggests_the_nearest() -> None:
    with pytest.raises(InputError) as e:
        scheme_of("nvfp5")
    assert "nvfp4" in e.value.message.split("did you mean")[1].split("?")[0].split(", ")[0]


def test_mxfp4_bits() -> None:
    assert SCHEMES["mxfp4"].bits_per_weight == 4.25
    assert not SCHEMES["mxfp4"].searched_by_default


GPU_SPELLINGS = {
    "H100": "h100-sxm", "h100": "h100-sxm", "H100-SXM5-80GB": "h100-sxm", "h100_sxm": "h100-sxm",
    "H100 SXM": "h100-sxm", "NVIDIA H100 80GB": "h100-sxm", "H100 PCIe": "h100-pcie", "h100-pcie": "h100-pcie",
    "A100-80GB": "a100-80gb", "A100 80GB": "a100-80gb", "a100_80gb": "a100-80gb", "A100-SXM4-80GB": "a100-80gb",
    "A100 40GB": "a100-40gb", "a100-40gb": "a100-40gb",
    "MI300X": "mi300x", "mi300x": "mi300x", "AMD Instinct MI300X": "mi300x", "MI325X": "mi325x",
    "B200": "b200", "b200": "b200", "B200 SXM 180GB": "b200", "GB200": "gb200", "GB200 NVL72": "gb200",
    "H200": "h200", "H200-SXM-141GB": "h200",
    "L40S": "l40s", "l40s": "l40s", "L4": "l4", "A10G": "a10g",
    "RTX 4090": "rtx-4090", "rtx4090": "rtx-4090", "GeForce RTX 4090": "rtx-4090", "4090": "rtx-4090",
    "RTX 3090": "rtx-3090", "Gaudi 3": "gaudi3", "gaudi3": "gaudi3", "Intel Gaudi3": "gaudi3",
    "NVIDIA H100 SXM 80GB": "h100-sxm",   # the catalog's own display name
}


@pytest.mark.parametrize("name,ident", sorted(GPU_SPELLINGS.items()))
def test_gpu_spellings(name: str, ident: str) -> None:
    cat = Catalog.default()
    assert cat.gpu_id(name) == ident
    assert cat.gpu(name).id == ident


def test_every_catalog_gpu_resolves_by_id_and_display_name() -> None:
    cat = Catalog.default()
    for ident, g in cat.gpus.items():
        assert cat.gpu_id(ident) == ident
        assert cat.gpu_id(g.name) == ident, g.name


def test_a100_without_memory_is_ambiguous_not_guessed() -> None:
    with pytest.raises(InputError, match="ambiguous"):
        Catalog.default().gpu("A100")


def test_memory_that_contradicts_the_family_is_refused() -> None:
    with pytest.raises(InputError):
        Catalog.default().gpu("H100 40GB")


@pytest.mark.parametrize("typo,first", [("B20", "b200"), ("b2000", "b200"), ("B-200x", "b200"), ("bb200", "b200"),
                                        ("H2000", "h200"), ("mi300", "mi300x"), ("gaudi", "gaudi3"),
                                        ("l40ss", "l40s"), ("rtx4080", "rtx-4090"), ("B3000", "b300"),
                                        ("mi355", "mi355x"), ("rtx pro 600", "rtx-pro-6000")])
def test_suggestions_rank_the_right_family_first(typo: str, first: str) -> None:
    cat = Catalog.default()
    with pytest.raises(InputError) as e:
        cat.gpu(typo)
    near = e.value.message.split("did you mean ")[1].split("?")[0].split(", ")
    assert near[0] == first, near


def test_suggest_is_not_raw_difflib() -> None:
    # raw difflib on "B200" vs the ids ranks by case-sensitive characters; ours normalises
    assert suggest("B20", ["h200", "b200", "gb200"])[0] == "b200"


def test_models_by_hf_id_alias_and_case() -> None:
    cat = Catalog.default()
    assert cat.model("meta-llama/Llama-3.1-70B").id == "llama-3.1-70b"
    assert cat.model("LLAMA-3.1-70B").id == "llama-3.1-70b"
    with pytest.raises(InputError, match="unknown model"):
        cat.model("llama-9")
