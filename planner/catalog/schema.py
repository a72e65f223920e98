"""Strict schemas for catalog entries: GPUs and model architectures.

Units are in the key names. Unknown keys, NaN, infinities, zeros and negatives are
refused where meaningless. A missing optional datum stays None and is reported by the
physics when (and only when) a computation needs it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from planner.catalog.aliases import SCHEME_ALIASES


def _not_bool(value: object) -> object:
    """A boolean is never a quantity (pydantic's lax mode would read true as 1)."""
    if isinstance(value, bool):
        raise ValueError("expected a number, not a boolean")
    return value


NotBool = BeforeValidator(_not_bool)
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False), NotBool]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False), NotBool]
PositiveInt = Annotated[int, Field(gt=0, le=10**9), NotBool]
NonNegativeInt = Annotated[int, Field(ge=0, le=10**9), NotBool]

MathFormat = Literal["bf16", "fp16", "fp8", "int8", "fp4", "fp6"]
MATH_FORMATS: tuple[str, ...] = ("bf16", "fp16", "fp8", "int8", "fp4", "fp6")
"""Tensor-core formats a GPU entry may give a peak for. fp6 (MXFP6) is recorded where the
hardware has it (Blackwell, CDNA4); no weight scheme runs in it yet (docs/support.md)."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IntraNodeLink(Strict):
    kind: str
    bandwidth_bytes_per_s: Positive = Field(description="one-way bandwidth per GPU")
    latency_s: NonNegative = Field(description="fixed cost of one collective (alpha)")
    peer_to_peer: bool = True
    per_peer_bandwidth_bytes_per_s: Positive | None = Field(
        default=None,
        description="full-mesh fabrics (xGMI): a collective among n GPUs uses n-1 peer links",
    )


class InterNodeLink(Strict):
    kind: str
    bandwidth_bytes_per_s: Positive = Field(description="one-way bandwidth per GPU")
    latency_s: NonNegative


PriceKind = Literal["on-demand", "reserved", "spot", "serverless", "estimate", "none"]
Architecture = Literal["ampere", "ada", "hopper", "blackwell", "blackwell-ultra", "cdna3", "cdna4", "gaudi3", "other"]


class Gpu(Strict):
    id: str = ""
    name: str
    vendor: str
    architecture: Architecture | None = Field(
        default=None, description="GPU generation, the key of the engine support matrix (support.yaml)")
    family: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")] | None = Field(
        default=None, description="calibration family: GPUs that share fitted efficiencies (a calibration file's "
        "per_family keys, planner/resolve/calibration.py); none: the global fit only")
    peak_dense_flops_per_s: dict[MathFormat, Positive]
    measured_mamf_flops_per_s: dict[MathFormat, Positive] = Field(
        default_factory=dict, description="measured maximum achievable matmul FLOP/s per format (MAMF)")
    memory_bytes: Positive
    memory_bandwidth_bytes_per_s: Positive
    intra_node: IntraNodeLink
    gpus_per_node: PositiveInt
    scaleup_domain_gpus: PositiveInt | None = None
    inter_node: InterNodeLink
    power_w: Positive | None = None
    price_usd_per_gpu_hour: NonNegative | None = None
    price_source: str | None = None
    price_kind: PriceKind | None = Field(
        default=None, description="on-demand, reserved, spot, serverless (per-second platforms), estimate "
        "(midpoint of a published range) or none (no price found)")
    price_date: Annotated[str, Field(pattern=r"^\d{4}-\d{2}(-\d{2})?$")] | None = Field(
        default=None, description="when the price was read, YYYY-MM or YYYY-MM-DD")
    source: str
    assumptions: str | None = None

    @property
    def domain_gpus(self) -> int:
        """GPUs reachable over the fast intra-node link (NVLink domain)."""
        return self.scaleup_domain_gpus or self.gpus_per_node


class Moe(Strict):
    num_experts: PositiveInt
    experts_per_token: PositiveInt
    expert_intermediate_size: PositiveInt
    num_shared_experts: NonNegativeInt = 0
    shared_expert_intermediate_size: PositiveInt | None = None
    first_dense_layers: NonNegativeInt = 0
    moe_layer_step: PositiveInt = Field(
        default=1, description="after the first dense layers, every n-th layer with an FFN is MoE, the others dense "
        "(Llama 4 Maverick: 2); only the counts matter to the physics")
    router_bias: bool = False
    latent_size: PositiveInt | None = Field(
        default=None, description="routed experts run in a latent of this width: the hidden state is projected "
        "down before the experts and back up after (NVIDIA LatentMoE, Nemotron 3 Super/Ultra); shared experts "
        "stay at the hidden width")

    @model_validator(mode="after")
    def _check(self) -> Moe:
        if self.experts_per_token > self.num_experts:
            raise ValueError(
                f"experts_per_token ({self.experts_per_token}) exceeds num_experts ({self.num_experts})"
            )
        return self


class Mla(Strict):
    q_lora_rank: NonNegativeInt = Field(description="0: queries are not compressed")
    kv_lora_rank: PositiveInt
    qk_nope_head_dim: PositiveInt
    qk_rope_head_dim: PositiveInt
    v_head_dim: PositiveInt


class LayerGroup(Strict):
    """Layers of one kind (docs/model.md, attention kinds). Order does not matter to the
    physics, only counts: a pattern like gpt-oss's alternation is two groups."""

    kind: Literal["full", "sliding", "chunked", "compressed", "state_space"] = Field(
        description="full attention; sliding window (caches the last window_tokens); chunked local attention "
        "(caches the current chunk of window_tokens); compressed (DeepSeek V4: the last window_tokens raw, and "
        "every compress_ratio tokens pooled into one cached entry); state_space (Mamba / linear attention: a "
        "fixed state per sequence, no KV)")
    count: PositiveInt
    window_tokens: PositiveInt | None = Field(default=None, description="sliding window W, chunk size C, or the "
                                              "raw window of a compressed layer")
    compress_ratio: PositiveInt | None = Field(default=None, description="compressed: tokens pooled into one "
                                               "cached entry")
    num_kv_heads: PositiveInt | None = Field(default=None, description="default: the model's")
    head_dim: PositiveInt | None = Field(default=None, description="default: the model's")
    k_eq_v: bool = Field(default=False, description="one projected and cached tensor serves as K and V (Gemma 4 "
                         "global layers, DeepSeek V4)")
    output_gate: bool = Field(default=False, description="a gate on the attention output, projected from the "
                              "hidden state (Qwen3.5: doubles Wq; MLA: h x heads x v_head_dim)")
    ffn: bool = Field(default=True, description="False: these layers have no MLP (Nemotron-H attention/Mamba "
                      "blocks)")
    indexer: Literal["own", "shared", "none"] | None = Field(
        default=None, description="with the model's sparse_attention: 'own' (the default) scores the cache with "
        "this layer's indexer and reads the top-k; 'shared' reads the top-k another layer's indexer chose (no "
        "indexer keys or weights of its own: GLM-5.2); 'none' attends to everything it caches")
    state_bytes_per_sequence: NonNegative | None = Field(
        default=None, description="state_space: recurrent + convolution state per sequence per layer, bytes")
    mixer_params: NonNegative | None = Field(
        default=None, description="parameters of the token mixer per layer: required for state_space; for an "
        "attention kind it replaces the formula (an attention with parts the formula has no field for)")

    @model_validator(mode="after")
    def _check(self) -> LayerGroup:
        if self.kind in ("sliding", "chunked", "compressed") and self.window_tokens is None:
            raise ValueError(f"a {self.kind} layer group needs window_tokens")
        if (self.kind == "compressed") != (self.compress_ratio is not None):
            raise ValueError("compress_ratio belongs to (and is needed by) a compressed layer group")
        if self.kind == "state_space" and (self.state_bytes_per_sequence is None or self.mixer_params is None):
            raise ValueError("a state_space layer group needs state_bytes_per_sequence and mixer_params")
        return self


class SparseAttention(Strict):
    """DeepSeek Sparse Attention (DSA): a lightning indexer scores every cached token (or
    compressed entry) with its own small keys, and the main attention reads only the top-k.
    Its queries come from the compressed queries under MLA with q_lora_rank, else from the
    hidden state (MiniMax M3's block-sparse attention on GQA)."""

    top_k_tokens: PositiveInt
    indexer_heads: PositiveInt
    indexer_head_dim: PositiveInt


class Tower(Strict):
    """A vision or audio encoder beside the language model: reported on import, its weights
    counted in memory only when the deployment serves it (``served``)."""

    kind: Literal["vision", "audio"]
    parameters: Positive
    served: bool = False
    source: str = ""


Tuning = Literal["base", "instruct"]


class PublishedCheckpoint(Strict):
    """A checkpoint of this architecture someone publishes, in a format the planner models:
    what a launch serves when a plan's format is not the release's (planner/catalog/checkpoints.py)."""

    hf_id: str
    scheme: str = Field(description="the weight scheme its files store (planner/catalog/release.py reads it from "
                        "the checkpoint's quantization_config or hf_quant_config.json)")
    tuning: Tuning | None = Field(default="instruct", description="instruct (chat) or base; None: not stated")
    source: str

    @field_validator("scheme")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        return _scheme_name(value)


def _scheme_name(value: str) -> str:
    schemes = sorted(set(SCHEME_ALIASES.values()))
    if value not in schemes:
        raise ValueError(f"{value!r} is not a weight scheme ({', '.join(schemes)})")
    return value


class ModelSpec(Strict):
    id: str = ""
    name: str
    source: str = "inline"
    hf_id: str | None = Field(default=None, description="Hugging Face repository id, e.g. meta-llama/Llama-3.1-70B")
    aliases: tuple[str, ...] = Field(default=(), description="other names Catalog.model() accepts")
    release_quantization: str | None = Field(
        default=None, description="the weight scheme the checkpoint named by hf_id is published in, read from its "
        "config.json quantization_config (deepseek-ai: block-scaled FP8 -> w8a8-fp8; gpt-oss: MXFP4 experts -> "
        "mxfp4-experts); None: 16-bit weights. Catalog.checkpoint() reports it for a name that states no format")
    hf_id_tuning: Tuning | None = Field(
        default=None, description="whether hf_id is the instruction-tuned (chat) model or the base one; None: not "
        "stated (a launch then serves hf_id and says so)")
    checkpoints: tuple[PublishedCheckpoint, ...] = Field(
        default=(), description="other published checkpoints of this architecture (instruct variants, quantized "
        "releases), each with its format and source: what a launch serves for a plan in that format")
    hidden_size: PositiveInt
    num_layers: PositiveInt
    num_attention_heads: PositiveInt
    num_kv_heads: PositiveInt
    head_dim: PositiveInt
    intermediate_size: PositiveInt
    vocab_size: PositiveInt
    max_context_tokens: PositiveInt
    tie_embeddings: bool = False
    mlp: Literal["gated", "plain"] = "gated"
    attention: Literal["gqa", "mla"] = "gqa"
    mla: Mla | None = None
    moe: Moe | None = None
    norm: Literal["rms", "layernorm"] = "rms"
    norms_per_layer: Annotated[int, Field(ge=0, le=4)] = 2
    qk_norm: bool = False
    attention_bias: bool = False
    mlp_bias: bool = False
    lm_head_bias: bool = False
    layer_groups: tuple[LayerGroup, ...] = Field(
        default=(), description="attention kinds by layer count; empty: every layer full attention")
    attention_sinks: bool = Field(default=False, description="a learned sink logit per head (gpt-oss): "
                                  "parameters only, no KV")
    sink_tokens: NonNegativeInt = Field(default=0, description="tokens a windowed layer keeps beyond its window "
                                        "(StreamingLLM-style sinks): extra KV tokens")
    sparse_attention: SparseAttention | None = None
    towers: tuple[Tower, ...] = Field(default=(), description="vision/audio encoders (served ones count in memory)")
    mtp_layers: NonNegativeInt = Field(default=0, description="multi-token-prediction layers the checkpoint ships: "
                                       "reported, not counted (speculative decoding is an assumption)")
    notes: tuple[str, ...] = Field(default=(), description="what an import read, assumed and ignored "
                                   "(planner/catalog/hf.py); shown with results")
    parameter_count: Positive | None = Field(
        default=None,
        description=(
            "a dense model known only by its parameter count: every parameter is treated as a "
            "layer weight (no separate embeddings); the architecture fields still give the KV "
            "cache, attention and communication sizes"
        ),
    )

    @field_validator("release_quantization")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        return None if value is None else _scheme_name(value)

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        if self.attention == "mla" and self.mla is None:
            raise ValueError("attention 'mla' needs an 'mla' block (kv_lora_rank, ...)")
        if self.attention == "gqa" and self.num_attention_heads % self.num_kv_heads:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of "
                f"num_kv_heads ({self.num_kv_heads})"
            )
        if self.moe and self.moe.first_dense_layers > self.num_layers:
            raise ValueError("moe.first_dense_layers exceeds num_layers")
        if self.layer_groups and sum(g.count for g in self.layer_groups) != self.num_layers:
            raise ValueError(f"layer_groups count {sum(g.count for g in self.layer_groups)} layers; "
                             f"num_layers is {self.num_layers}")
        if self.attention == "mla" and any(g.num_kv_heads or g.head_dim or g.k_eq_v for g in self.layer_groups):
            raise ValueError("MLA layers cache one latent per token: layer groups cannot set num_kv_heads, "
                             "head_dim or k_eq_v")
        if self.sparse_attention is None and any(g.indexer in ("own", "shared") for g in self.layer_groups):
            raise ValueError("a layer group's indexer needs the model's sparse_attention block")
        if self.parameter_count is not None and self.moe is not None:
            raise ValueError("parameter_count describes a dense model; it cannot be combined with 'moe'")
        return self

    @property
    def is_moe(self) -> bool:
        return self.moe is not None
