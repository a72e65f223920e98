"""The support matrix (planner/catalog/support.py, data/support.yaml) agrees with the facts
of ../shared/reference/engine-support.md over every (GPU, scheme, KV dtype) in the catalog.

The expectations below are written from the reference's sentences, independently of the
YAML; each fact carries the sentence it comes from."""

from __future__ import annotations

import numpy as np
import pytest

from planner.catalog.store import Catalog
from planner.catalog.support import ENGINES, support, support_table
from planner.physics.quant import KV_DTYPES, SCHEMES
from planner.physics.space import KV_NAMES, SCHEME_NAMES

NVIDIA = {"ampere", "ada", "hopper", "blackwell", "blackwell-ultra"}
AMD = {"cdna3", "cdna4"}
BLACKWELL = {"blackwell", "blackwell-ultra"}   # Blackwell Ultra (B300, GB300) is Blackwell

# (scheme, architectures where vLLM runs it, architectures where it runs degraded -> scheme
# whose physics apply, sentence of engine-support.md)
WEIGHT_FACTS = [
    ("w16a16", NVIDIA | AMD | {"gaudi3"}, {}, "unquantized baseline (not restricted by the reference)"),
    ("w8a8-fp8", {"ada", "hopper", "gaudi3"} | BLACKWELL | AMD, {"ampere": "w8a16"},
     "FP8 W8A8 needs Ada (sm89) or Hopper and later; on Ampere FP8 checkpoints run as weight-only FP8 through "
     "Marlin (W8A16); on AMD GPUs FP8 W8A8 is supported; on Intel Gaudi, only FP8 through INC"),
    ("w8a16", NVIDIA, {}, "weight-only FP8 through Marlin; Marlin not supported on AMD; Gaudi only FP8 via INC"),
    ("w8a8-int8", NVIDIA - {"blackwell-ultra"}, {}, "on AMD GPUs INT8 W8A8 is not supported; on Gaudi only FP8; "
     "gpus.csv: Blackwell Ultra cuts INT8, do not plan INT8 on B300/GB300"),
    ("w4a16", NVIDIA, {}, "on NVIDIA, AWQ/GPTQ (W4A16) run from Turing/Ampere on; not on AMD (AWQ, GPTQ, Marlin)"),
    ("w4a8", {"ada", "hopper"} | BLACKWELL, {}, "ModelOpt: W4A8 (INT4 weights, FP8 activations) from Ada and later"),
    ("fp4", BLACKWELL, {}, "NVFP4 (W4A4 FP4) on Blackwell (B200, GB200, B300, RTX 50xx) only"),
    ("mxfp4", BLACKWELL, {"hopper": "mxfp4"},
     "MXFP4: Blackwell native; on Hopper engines run it weight-only through Marlin/Triton kernels"),
    ("mxfp4-experts", {"hopper"} | BLACKWELL, {},
     "MXFP4 (gpt-oss checkpoints): Blackwell native; on Hopper engines run it weight-only: the release's "
     "experts are its only MXFP4 weights, which the scheme models weight-only at 16-bit math on both"),
    ("fp4-experts", BLACKWELL, {}, "NVFP4 (W4A4 FP4) on Blackwell only: the release's experts are its NVFP4 weights"),
    ("gguf-q8_0", NVIDIA, {}, "llama.cpp GGUF: any GPU (vLLM runs GGUF on CUDA only, experimental)"),
    ("gguf-q4_0", NVIDIA, {}, "llama.cpp GGUF: any GPU (vLLM runs GGUF on CUDA only, experimental)"),
]
KV_FACTS = {
    "bf16": (NVIDIA | AMD | {"gaudi3"}, "16-bit KV is every engine's default"),
    "fp16": (NVIDIA | AMD | {"gaudi3"}, "16-bit KV is every engine's default"),
    "fp8": ({"ada", "hopper", "cdna3"} | BLACKWELL,
            "FP8 KV cache: supported by vLLM, SGLang and TensorRT-LLM on Hopper/Ada/Blackwell and MI300-series"),
    "int8": (set(), "vLLM --kv-cache-dtype has no int8 (engine-flags.md)"),
}
CAT = Catalog.default()
CASES = [(g, s, k) for g in sorted(CAT.gpus) for s in SCHEMES for k in KV_DTYPES]


def test_the_facts_cover_every_scheme_and_kv_dtype() -> None:
    assert {f[0] for f in WEIGHT_FACTS} == set(SCHEMES)
    assert set(KV_FACTS) == set(KV_DTYPES)
    assert all(g.architecture for g in CAT.gpus.values())


@pytest.mark.parametrize("gpu,scheme,kv", CASES)
def test_vllm_support_agrees_with_the_reference(gpu: str, scheme: str, kv: str) -> None:
    g = CAT.gpus[gpu]
    native, degraded, sentence = next((n, d, t) for s, n, d, t in WEIGHT_FACTS if s == scheme)
    kv_archs, kv_sentence = KV_FACTS[kv]
    expected = (g.architecture in native or g.architecture in degraded) and g.architecture in kv_archs
    r = support(g, scheme, kv, "vllm")
    assert r.ok == expected, (sentence, kv_sentence, r)
    if r.ok:
        assert r.runs_as == degraded.get(g.architecture, scheme), sentence
        assert r.mode.startswith("native") == (g.architecture not in degraded), r.mode
        assert r.source and not r.reason
    else:
        assert r.reason and (scheme in r.reason or kv in r.reason)


def test_ampere_fp8_runs_weight_only_through_marlin() -> None:
    r = support(CAT.gpu("a100-80gb"), "w8a8-fp8", "bf16")
    assert r.ok and r.runs_as == "w8a16" and "Marlin" in r.mode and r.activation == "bf16"


def test_table_matches_the_scalar_function_and_indexes_like_a_grid() -> None:
    gpus = [CAT.gpus[i] for i in sorted(CAT.gpus)]
    for engine in ENGINES:
        t = support_table(gpus, SCHEME_NAMES, KV_NAMES, engine)
        for gi, g in enumerate(gpus):
            for si, s in enumerate(SCHEME_NAMES):
                for ki, k in enumerate(KV_NAMES):
                    r = support(g, s, k, engine)
                    assert t.ok[gi, si, ki] == r.ok
                    assert t.reasons[t.reason[gi, si, ki]] == r.reason
                    assert SCHEME_NAMES[t.runs_as[gi, si, ki]] == r.runs_as
        gi, si, ki = np.array([0, 1]), np.array([0, 2]), np.array([0, 1])
        assert (t.lookup(gi, si, ki) == t.ok[gi, si, ki]).all()


def test_engines_other_than_vllm() -> None:
    h100, mi300x = CAT.gpu("h100-sxm"), CAT.gpu("mi300x")
    assert not support(mi300x, "w16a16", "bf16", "trtllm").ok          # TensorRT-LLM is NVIDIA-only
    assert support(h100, "w4a8", "fp8", "trtllm").ok
    assert support(mi300x, "gguf-q4_0", "bf16", "llama.cpp").ok        # GGUF: any GPU
    assert support(CAT.gpu("a100-80gb"), "w16a16", "int8", "trtllm").ok
