"""Quantization schemes: bytes per weight and which peak FLOP/s the math runs at.

Weight-only schemes (W8A16, W4A16) dequantize in the kernel and run the math in 16-bit,
so they cut weight-read time but not the compute ceiling; W8A8/W4A8/FP4 run the math in
the low-precision format (docs/model.md section 2). Group-wise scales add to the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scheme:
    name: str
    bits_per_weight: float
    math_format: str          # key of Gpu.peak_dense_flops_per_s the GEMMs run at
    fallback_format: str | None
    description: str
    searched_by_default: bool = True   # engine-specific formats are planned only when named
    expert_bits_per_weight: float | None = None   # routed experts' bits where they differ (None: bits_per_weight)
    expert_native_format: str | None = None   # routed experts' math on a GPU with fp4 math (None: math_format)

    @property
    def bytes_per_weight(self) -> float:
        return self.bits_per_weight / 8.0

    @property
    def expert_bits(self) -> float:
        """Bits per weight of the routed experts of a MoE layer: ``expert_bits_per_weight``
        where the scheme stores them apart (the gpt-oss release), else ``bits_per_weight``."""
        return self.bits_per_weight if self.expert_bits_per_weight is None else self.expert_bits_per_weight


# W4A16: 4-bit weights in groups of 128 with one fp16 scale and one packed 4-bit zero point
# per group (GPTQ/AWQ layout): 4 + (16 + 4) / 128 = 4.156 bits.
# NVFP4: 4-bit values with one fp8 scale per 16 values: 4 + 8 / 16 = 4.5 bits.
SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme("w16a16", 16.0, "bf16", "fp16", "16-bit weights and math (bf16, fp16 where bf16 is absent)"),
        Scheme("w8a16", 8.0, "bf16", "fp16", "8-bit weights (int8/fp8, per-channel scales), 16-bit math"),
        Scheme("w8a8-fp8", 8.0, "fp8", None, "fp8 weights and activations, fp8 math (Ada/Hopper and later)"),
        Scheme("w8a8-int8", 8.0, "int8", None, "int8 weights and activations (SmoothQuant), int8 math"),
        Scheme("w4a16", 4.0 + 20.0 / 128.0, "bf16", "fp16", "4-bit weights, group 128 (GPTQ/AWQ), 16-bit math"),
        Scheme("w4a8", 4.0 + 20.0 / 128.0, "fp8", None, "4-bit weights, group 128, fp8 activations and math"),
        Scheme("fp4", 4.5, "fp4", None, "NVFP4 weights and activations (fp8 scale per 16), fp4 math (Blackwell)"),
        # llama.cpp GGUF blocks of 32 weights: Q8_0 = 32 int8 + one fp16 scale (34 bytes),
        # Q4_0 = 32 4-bit + one fp16 scale (18 bytes); dequantized to fp16 math.
        Scheme("gguf-q8_0", 34 * 8 / 32, "fp16", "bf16", "llama.cpp Q8_0 (8.5 bits per weight), fp16 math", False),
        Scheme("gguf-q4_0", 18 * 8 / 32, "fp16", "bf16", "llama.cpp Q4_0 (4.5 bits per weight), fp16 math", False),
        # MXFP4 (OCP microscaling; gpt-oss checkpoints): blocks of 32 FP4 (e2m1) values with
        # one shared 8-bit power-of-two scale (e8m0): 4 + 8 / 32 = 4.25 bits. Native fp4 math
        # on Blackwell; elsewhere weight-only (dequantized in the kernel, 16-bit math).
        Scheme("mxfp4", 4.0 + 8.0 / 32.0, "fp4", "bf16",
               "MXFP4 weights (e8m0 scale per 32), fp4 math on Blackwell, else weight-only 16-bit math", False),
        # The gpt-oss release (its config.json quantization_config: quant_method mxfp4,
        # modules_to_not_convert self_attn, router, embeddings, lm_head): the routed experts in
        # MXFP4 (4.25 bits), attention, router and every other weight in 16-bit. The math is
        # 16-bit (the experts dequantized in the kernel, weight-only, as on Hopper), except the
        # experts' on a GPU with fp4 math (Blackwell): its engines run them natively, MXFP4
        # weights x MXFP8 activations (TensorRT-LLM's and FlashInfer's trtllm-gen MoE), an
        # f8f6f4 MMA at the fp8 rate (docs/model.md section 4, 'grouped GEMMs').
        Scheme("mxfp4-experts", 16.0, "bf16", "fp16",
               "gpt-oss release: MXFP4 routed experts (4.25 bits), 16-bit attention and dense weights, 16-bit math "
               "(the experts' at the fp8 rate where the GPU has fp4 math)",
               False, expert_bits_per_weight=4.0 + 8.0 / 32.0, expert_native_format="fp8"),
        # NVIDIA's NVFP4 MoE releases (hf_quant_config.json exclude_modules: self_attn, shared
        # experts, dense layers; planner/catalog/release.py): the routed experts in NVFP4 (4.5
        # bits), every other layer weight 16-bit. Math counted at 16-bit rates, as for
        # mxfp4-experts (the experts' native FP4 GEMMs on Blackwell are not modelled apart).
        Scheme("fp4-experts", 16.0, "bf16", "fp16",
               "NVFP4 routed experts (4.5 bits), 16-bit attention, shared experts and dense weights, 16-bit math",
               False, expert_bits_per_weight=4.5),
    )
}

DEFAULT_SCHEMES: tuple[str, ...] = tuple(n for n, sc in SCHEMES.items() if sc.searched_by_default)

KV_DTYPES: dict[str, float] = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0}
"""Bytes per KV-cache element."""

EMBEDDING_BYTES = 2.0
"""Embedding table and LM head stay in 16-bit under every scheme (vLLM, TRT-LLM default)."""

ACTIVATION_BYTES = 2.0
"""Activations exchanged between GPUs (all-reduce, pipeline hops, all-to-all) in 16-bit."""
