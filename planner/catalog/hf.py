"""Hugging Face ``config.json`` -> ModelSpec fields, read by what the fields say.

There is no list of architectures. A decoder config (or the ``text_config`` of a
multimodal one) is read feature by feature:

- dimensions under their usual names (``hidden_size`` or ``n_embd`` or ``d_model``...);
- the mixer of every layer: full, sliding-window or chunked attention, compressed
  attention (DeepSeek V4), or a state-space / linear-attention layer (Mamba-2, Gated
  DeltaNet, Kimi Delta Attention), from ``layer_types``, ``hybrid_override_pattern``,
  ``layers_block_type``, ``attn_type_list``, ``linear_attn_config``, ``compress_ratios``,
  ``full_attention_interval``, or the sliding-window fields;
- its attention: GQA heads (per-kind heads and K = V), MLA (``kv_lora_rank``), sparse
  attention with an indexer (DSA ``index_topk``, shared indexers ``indexer_types``,
  MiniMax's ``sparse_attention_config``), output gates, sinks;
- the FFN of every layer: dense or MoE (routed and shared experts, expert widths, dense
  layers first or interleaved, latent experts), or none (Nemotron-H's single-purpose blocks);
- multi-token-prediction layers and vision/audio towers, reported (a served tower counts
  in memory).

Fields a config omits because transformers supplies them come from
``data/hf_defaults.yaml`` (by ``model_type``), each named in the notes. Keys the reader
does not know are listed as ignored; only a feature that changes memory or step time and
cannot be modelled is refused, by name (InputError naming the file and the key).
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from typing import Any

from planner.catalog.release import present_classes, release_format
from planner.errors import InputError
from planner.yamlio import parse_yaml

NO_COST_KEYS = frozenset("""
architectures auto_map model_type transformers_version torch_dtype dtype _name_or_path _attn_implementation
_commit_hash tokenizer_class use_cache num_logits_to_keep pretraining_tp ep_size initializer_range
initializer_factor bos_token_id eos_token_id pad_token_id sep_token_id decoder_start_token_id ignore_index
image_token_id image_token_index video_token_id video_token_index audio_token_id boi_token_id eoi_token_id
boi_token_index eoi_token_index boa_token_id eoa_token_id eoa_token_index vision_start_token_id
vision_end_token_id vision_token_id media_placeholder_token_id image_placeholder video_placeholder
attention_dropout hidden_dropout dropout embd_pdrop resid_pdrop attn_pdrop aux_loss_alpha
router_aux_loss_coef router_jitter_noise router_z_loss_coef output_router_logits seq_aux rms_norm_eps
layer_norm_epsilon layer_norm_eps norm_eps rope_theta rope_scaling rope_parameters partial_rotary_factor
rotary_dim rotary_pct rope_interleave compress_rope_theta indexer_rope_interleave use_mrope mrope_section
query_pre_attn_scalar final_logit_softcapping attn_logit_softcapping swiglu_alpha swiglu_limit
routed_scaling_factor scoring_func norm_topk_prob n_group topk_group num_expert_group use_grouped_topk
moe_renormalize moe_router_activation_func moe_router_dtype rescale_prenorm_residual residual_in_fp32
time_step_floor time_step_limit time_step_max time_step_min time_step_rank use_mamba_kernels
mamba_hidden_act chunk_size use_gemma_norm gate_lower_bound hc_eps hc_sinkhorn_iters output_gate_type
use_bidirectional_attention qk_norm_type initial_context_length index_share_for_mtp_iteration
use_mtp mtp_use_dedicated_embeddings moe_shared_expert_overlap use_unified_vision_chunk language_model_only
image_seq_length mm_tokens_per_image vision_feature_layer vision_feature_select_strategy
vision_soft_tokens_per_image image_grid_pinpoints process_image_mode img_token_compression_config
num_reward_heads vocab_size_per_layer_input max_length min_length do_sample early_stopping num_beams
num_beam_groups diversity_penalty temperature top_k top_p typical_p repetition_penalty length_penalty
no_repeat_ngram_size encoder_no_repeat_ngram_size bad_words_ids num_return_sequences output_scores
return_dict_in_generate forced_bos_token_id forced_eos_token_id remove_invalid_values
exponential_decay_length_penalty suppress_tokens begin_suppress_tokens output_attentions
output_hidden_states return_dict torchscript use_bfloat16 tf_legacy_loss pruned_heads tie_encoder_decoder
is_decoder add_cross_attention cross_attention_hidden_size chunk_size_feed_forward finetuning_task id2label
label2id prefix problem_type task_specific_params hidden_act hidden_activation mlp_hidden_act
activation_function projector_hidden_act
""".split())
"""Keys that change neither memory nor step time (token ids, numerics, training and
generation settings): read by nobody, listed nowhere."""

RELEASE_FORMAT_KEYS = ("quantization_config", "compression_config", "expert_dtype")
"""The checkpoint's release format: read by planner/catalog/release.py, not by the architecture import."""

TOWER_KEYS = {"vision_config": "vision", "vision_tower_config": "vision", "audio_config": "audio",
              "speech_config": "audio"}
TEXT_KEYS = ("text_config", "llm_config", "language_config")
TOWER_SIDE_KEYS = frozenset({"projector_hidden_size", "multimodal_projector_bias", "mm_projector_type",
                             "mm_hidden_size"})


@dataclass(frozen=True)
class HfImport:
    """What an import read: the ModelSpec fields, one note per feature read or assumed,
    and the keys no rule read (unknown to the importer)."""

    fields: dict[str, Any]
    notes: tuple[str, ...]
    ignored: tuple[str, ...]


@functools.cache
def _defaults_table() -> dict[str, dict[str, Any]]:
    text = (resources.files("planner.catalog") / "data" / "hf_defaults.yaml").read_text(encoding="utf-8")
    data = parse_yaml(text, "planner/catalog/data/hf_defaults.yaml").data
    return {k: dict(v.get("defaults") or {}) | {"__source__": v.get("source", "")}
            for k, v in (data.get("model_types") or {}).items()}


class _Config:
    """The text config with its model type's defaults; records every key it is asked for."""

    def __init__(self, text: dict, top: dict, file: str, prefix: str) -> None:
        self.text, self.top, self.file, self.prefix = text, top, file, prefix
        self.model_type = str(text.get("model_type") or top.get("model_type") or "")
        self.defaults = _defaults_table().get(self.model_type, {})
        self.read: set[str] = set()
        self.defaulted: list[str] = []

    def path(self, key: str) -> str:
        return self.prefix + key

    def get(self, *keys: str, default: Any = None) -> Any:
        self.read.update(keys)
        for k in keys:
            if self.text.get(k) is not None:
                return self.text[k]
        for k in keys:
            if self.defaults.get(k) is not None:
                if k not in self.defaulted:
                    self.defaulted.append(k)
                return self.defaults[k]
        return default

    def has(self, *keys: str) -> bool:
        return self.get(*keys) is not None

    def integer(self, *keys: str, default: int | None = None, why: str = "", zero: bool = False) -> int:
        """A count: one integer, or a per-layer list of equal ones (Hunyuan's moe_topk)."""
        value = self.get(*keys)
        if isinstance(value, list) and value and all(v == value[0] for v in value):
            value = value[0]
        elif isinstance(value, list) and value:
            key = next(k for k in keys if self.text.get(k) is not None)
            raise self.refuse(f"per-layer values of {key} that differ", key, value)
        if value is None:
            if default is not None:
                return default
            raise InputError(f"config.json lacks {keys[0]!r}" + (f", needed for {why}" if why else ""),
                             file=self.file, path=self.path(keys[0]),
                             accepted=" or ".join(repr(k) for k in keys))
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero else 1):
            raise InputError("expected a positive integer" if not zero else "expected a non-negative integer",
                             file=self.file, path=self.path(next(k for k in keys if self.text.get(k) is not None
                                                                  or k in self.defaults)), value=value)
        return value

    def int_list(self, key: str, length: int | None = None) -> list[int] | None:
        value = self.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise InputError("expected a list of integers", file=self.file, path=self.path(key), value=value)
        if length is not None and len(value) < length:
            raise InputError(f"expected one entry per layer ({length})", file=self.file, path=self.path(key),
                             value=f"{len(value)} entries")
        return value

    def refuse(self, feature: str, key: str, value: Any = None) -> InputError:
        return InputError(f"{feature} is not modelled by the planner", file=self.file, path=self.path(key),
                          value=value)


@dataclass
class _Layer:
    mixer: str                 # full | sliding | chunked | compressed | mamba2 | gdn | kda
    ffn: str | None            # dense | moe | None
    ratio: int = 0             # compressed: tokens per entry
    indexer: str | None = None  # own | shared | none | None (no sparse attention)


def read_hf_config(cfg: dict, name: str, fallback_name: str, hf_quant: dict | None = None) -> HfImport:
    """Read a parsed config.json (``name``: the file, for messages) and, with it, the release
    format its ``quantization_config`` (and ModelOpt's ``hf_quant_config.json``, ``hf_quant``)
    state: ``release_quantization`` is the scheme that models it (planner/catalog/release.py)."""
    text_key = next((k for k in TEXT_KEYS if isinstance(cfg.get(k), dict)), None)
    text: dict[str, Any] = cfg[text_key] if text_key else cfg
    c = _Config(text, cfg, name, f"{text_key}." if text_key else "")
    notes: list[str] = []
    if cfg.get("is_encoder_decoder") or c.get("is_encoder_decoder"):
        raise c.refuse("an encoder-decoder model (the planner serves decoders)", "is_encoder_decoder", True)

    h = c.integer("hidden_size", "n_embd", "d_model", why="the hidden width")
    n_blocks = c.integer("num_hidden_layers", "n_layer", "num_layers", "n_layers", default=0, zero=True)
    heads = c.integer("num_attention_heads", "n_head", "num_heads", why="attention")
    kv_heads = 1 if c.get("multi_query") is True else c.integer("num_key_value_heads", "num_kv_heads",
                                                                "n_head_kv", default=heads)
    head_dim = c.integer("head_dim", "attention_head_dim", "kv_channels", default=h // heads or 1)
    vocab = c.integer("vocab_size", "padded_vocab_size", why="the embeddings")
    context = c.integer("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length",
                        why="the context length")
    tie = c.get("tie_word_embeddings")
    if tie is None:
        tie = cfg.get("tie_word_embeddings", False)
    if not isinstance(tie, bool):
        raise InputError("expected true or false", file=name, path=c.path("tie_word_embeddings"), value=tie)
    act = str(c.get("mlp_hidden_act", "hidden_act", "hidden_activation", "activation_function") or "")
    mlp_type = c.get("mlp_type")
    if mlp_type is None:
        plain = act in ("relu2", "squared_relu", "relu", "gelu_new", "gelu_fast", "quick_gelu")
        mlp_type = "plain" if plain else "gated"
        if not plain and "glu" not in act and act not in ("silu", "swish"):
            notes.append(f"MLP: gated (gate, up, down) assumed for activation {act or 'unstated'!r}: no field says")

    layers, mtp = _layers(c, n_blocks)
    L = len(layers)
    f: dict[str, Any] = {
        "name": cfg.get("_name_or_path") or text.get("_name_or_path") or fallback_name or c.model_type or "model",
        "source": f"hf_config {name}",
        "hidden_size": h, "num_layers": L, "num_attention_heads": heads, "num_kv_heads": kv_heads,
        "head_dim": head_dim, "vocab_size": vocab, "max_context_tokens": context, "tie_embeddings": tie,
        "mlp": mlp_type,
    }
    if c.get("norm") == "layernorm":
        f["norm"] = "layernorm"
    norms = c.get("norms_per_layer")
    if norms is not None:
        f["norms_per_layer"] = norms
    if c.get("use_qk_norm", "qk_norm") and c.get("qk_norm_weights") is not False:
        f["qk_norm"] = True
    if c.get("attention_bias", "qkv_bias", "add_qkv_bias"):
        f["attention_bias"] = True
    if c.get("mlp_bias"):
        f["mlp_bias"] = True
    if c.get("attention_sinks"):
        f["attention_sinks"] = True
    _attention(c, f, layers, notes)
    _ffn(c, f, layers, notes)
    _groups(c, f, layers)
    if mtp:
        f["mtp_layers"] = mtp
        notes.append(f"multi-token prediction: {mtp} MTP layer(s) shipped, not counted (speculative decoding is "
                     "the speculative_tokens assumption)")
    towers = _towers(cfg, notes)
    if towers:
        f["towers"] = towers
    if c.get("hc_mult"):
        notes.append(f"hyper-connections (hc_mult {c.get('hc_mult')}): the widened residual stream's mixing "
                     "weights (< 0.1 % of the parameters) and traffic are not counted")
    if c.get("num_hash_layers"):
        notes.append(f"{c.get('num_hash_layers')} MoE layers route by token hash: their router weights "
                     "(< 0.01 %) are counted as learned")
    if c.defaulted:
        notes.append(f"from transformers' {c.model_type} defaults (data/hf_defaults.yaml): "
                     + ", ".join(f"{k}={c.defaults[k]}" for k in c.defaulted))
    f["source"] += f" (language model of {cfg.get('model_type')}; towers reported)" if text_key else ""
    ignored = _ignored(cfg, text, text_key, c)
    rf = release_format(cfg, hf_quant, present=present_classes(f), source=name.rsplit("/", 1)[-1])
    if rf is not None and not rf.scheme:
        notes.append(f"release format: {rf.notes[0]}; the precision is the quantization the run names")
    elif rf is not None and rf.scheme != "w16a16":
        f["release_quantization"] = rf.scheme
        notes.append(f"release format {rf.scheme} ({rf.describe()}; from {rf.source})"
                     + "".join(f"; {n}" for n in rf.notes))
    if ignored:
        notes.append("ignored (unknown to the importer): " + ", ".join(ignored))
    f["notes"] = tuple(notes)
    return HfImport(fields=f, notes=tuple(notes), ignored=tuple(ignored))


def fields_from_config(cfg: dict, name: str, fallback_name: str) -> dict[str, Any]:
    """ModelSpec fields from a parsed config.json (``name``: the file, for messages)."""
    return read_hf_config(cfg, name, fallback_name).fields


# --- the layers: mixer and FFN of each -------------------------------------------------

_KIND_OF_TYPE = {"full_attention": "full", "attention": "full", "global": "full", "global_attention": "full",
                 "deepseek_sparse_attention": "full", "sparse_attention": "full",
                 "sliding_attention": "sliding", "sliding": "sliding", "local": "sliding",
                 "local_attention": "sliding", "chunked_attention": "chunked", "linear_attention": "linear",
                 "mamba": "mamba2", "mamba2": "mamba2"}
_BLOCK = {"M": "mamba2", "*": "full", "E": "moe", "-": "dense", "mamba": "mamba2", "attention": "full",
          "moe": "moe", "mlp": "dense"}


def _layers(c: _Config, n_blocks: int) -> tuple[list[_Layer], int]:
    """Every layer's mixer and FFN, and the number of MTP layers."""
    mtp = c.integer("num_nextn_predict_layers", "mtp_num_hidden_layers", default=0, zero=True)
    modules = c.integer("num_mtp_modules", default=0, zero=True)
    if not mtp and modules and c.get("use_mtp") is not False:
        mtp = modules * c.integer("mtp_transformer_layers", default=1)
    for key in ("mtp_hybrid_override_pattern", "mtp_layers_block_type"):
        pattern = c.get(key)
        if pattern and not mtp:
            mtp = sum(1 for b in pattern if _BLOCK.get(b) in ("full", "mamba2"))
    pattern = c.get("hybrid_override_pattern", "layers_block_type")
    if pattern is not None:
        return _blocks(c, pattern), mtp
    if not n_blocks:
        raise InputError("config.json lacks 'num_hidden_layers', needed for the layer count", file=c.file,
                         path=c.path("num_hidden_layers"))
    mixers = _mixers(c, n_blocks)
    ffns = _ffn_kinds(c, n_blocks)
    return [_Layer(mixer=m, ffn=ffns[i], ratio=r) for i, (m, r) in enumerate(mixers)], mtp


def _blocks(c: _Config, pattern: Any) -> list[_Layer]:
    """Nemotron-H: every block is one mixer (M Mamba-2, * attention) or one FFN (E MoE, -
    MLP). An FFN block is paired with a mixer block to make a layer, Mamba blocks first:
    weights, KV and state are exact; the layer count (hence all-reduces per step) is the
    mixer count, not the block count (docs/model.md section 9)."""
    key = "hybrid_override_pattern" if c.get("hybrid_override_pattern") is not None else "layers_block_type"
    if not isinstance(pattern, str | list) or not pattern:
        raise InputError("expected a block pattern (string or list)", file=c.file, path=c.path(key), value=pattern)
    unknown = sorted({str(b) for b in pattern if b not in _BLOCK})
    if unknown:
        raise c.refuse(f"block kinds {unknown} (known: M/mamba Mamba-2, */attention, E/moe, -/mlp)", key, pattern)
    kinds = [_BLOCK[b] for b in pattern]
    n = c.get("num_hidden_layers")
    if isinstance(n, int) and n != len(kinds):
        raise InputError(f"{key} has {len(kinds)} blocks; num_hidden_layers is {n}", file=c.file,
                         path=c.path(key), value=f"{len(kinds)} blocks")
    mixers = sorted((k for k in kinds if k in ("mamba2", "full")), key=lambda k: k != "mamba2")
    ffns = [k for k in kinds if k in ("moe", "dense")]
    if len(ffns) > len(mixers):
        raise c.refuse("more FFN blocks than mixer blocks", key, pattern)
    if not mixers:
        raise c.refuse("a pattern without mixer blocks", key, pattern)
    return [_Layer(mixer=m, ffn=ffns[i] if i < len(ffns) else None) for i, m in enumerate(mixers)]


_MIXER_KEYS = ("layer_types", "attn_type_list", "linear_attn_config", "compress_ratios", "full_attention_interval",
               "sliding_window", "sliding_window_pattern", "use_sliding_window", "max_window_layers",
               "attention_chunk_size", "no_rope_layers", "no_rope_layer_interval")
_FFN_KEYS = ("mlp_layer_types", "moe_layer_freq", "moe_layers", "first_k_dense_replace", "moe_layer_start_index",
             "decoder_sparse_step", "interleave_moe_layer_step", "moe_layer_interval", "mlp_only_layers",
             "enable_moe_block", "n_routed_experts", "num_local_experts", "num_experts", "moe_num_experts",
             "n_experts", "moe_intermediate_size", "expert_intermediate_size", "num_experts_per_tok",
             "experts_per_token", "num_experts_per_token", "top_k_experts")


def _mixers(c: _Config, L: int) -> list[tuple[str, int]]:
    """(mixer, compress ratio) of each layer. Every key that can say it is read, whichever
    one decides (a config states several: Qwen3.5's layer_types and full_attention_interval)."""
    c.read.update(_MIXER_KEYS)
    types = c.get("layer_types")
    if types is not None:
        if not isinstance(types, list) or len(types) != L:
            raise c.refuse("a layer_types list that does not match num_hidden_layers", "layer_types")
        unknown = sorted({str(t) for t in types if t not in _KIND_OF_TYPE})
        if unknown:
            raise c.refuse(f"layer kinds {unknown} in layer_types (known: {', '.join(sorted(_KIND_OF_TYPE))})",
                           "layer_types", unknown)
        return [(_linear_kind(c) if _KIND_OF_TYPE[t] == "linear" else _KIND_OF_TYPE[t], 0) for t in types]
    attn_types = c.get("attn_type_list")
    if attn_types is not None:
        if not isinstance(attn_types, list) or len(attn_types) != L:
            raise c.refuse("an attn_type_list that does not match num_hidden_layers", "attn_type_list")
        if any(t != 1 for t in attn_types):
            raise c.refuse("lightning (linear) attention layers (attn_type_list 0)", "attn_type_list",
                           f"{attn_types.count(0)} of {L} layers")
        return [("full", 0)] * L
    linear = c.get("linear_attn_config")
    if isinstance(linear, dict) and (linear.get("kda_layers") or linear.get("full_attn_layers")):
        full = set(linear.get("full_attn_layers") or [])
        kda = set(linear.get("kda_layers") or [])
        if full | kda != set(range(1, L + 1)) or full & kda:
            raise c.refuse("linear_attn_config layer lists that do not cover layers 1..num_hidden_layers once",
                           "linear_attn_config")
        return [("full" if i + 1 in full else "kda", 0) for i in range(L)]
    ratios = c.get("compress_ratios")
    if ratios is not None:
        ratios = c.int_list("compress_ratios", L)
        assert ratios is not None
        return [("compressed", r) if r else ("sliding", 0) for r in ratios[:L]]
    interval = c.integer("full_attention_interval", default=0, zero=True)
    if interval and c.has("linear_num_value_heads"):
        return [("full" if (i + 1) % interval == 0 else "gdn", 0) for i in range(L)]
    window = c.integer("sliding_window", default=0, zero=True)
    pattern = c.integer("sliding_window_pattern", default=0, zero=True)
    if window and pattern:
        return [("full" if (i + 1) % pattern == 0 else "sliding", 0) for i in range(L)]
    if window and c.get("use_sliding_window") is not False:
        if c.get("use_sliding_window"):     # Qwen2: layers from max_window_layers on slide
            first = c.integer("max_window_layers", default=0, zero=True)
            return [("sliding" if i >= first else "full", 0) for i in range(L)]
        return [("sliding", 0)] * L        # Mistral: every layer
    chunk = c.integer("attention_chunk_size", default=0, zero=True)
    if chunk:
        # Llama 4: RoPE layers attend within chunks; every no_rope_layer_interval-th (NoPE) is global.
        rope = c.get("no_rope_layers")
        if not isinstance(rope, list) or len(rope) != L:
            every = c.integer("no_rope_layer_interval", default=4)
            rope = [int((i + 1) % every != 0) for i in range(L)]
        return [("chunked" if r else "full", 0) for r in rope]
    return [("full", 0)] * L


def _linear_kind(c: _Config) -> str:
    if c.has("linear_num_value_heads"):
        return "gdn"
    if isinstance(c.get("linear_attn_config"), dict):
        return "kda"
    if c.has("mamba_num_heads", "mamba_n_heads"):
        return "mamba2"
    raise c.refuse("linear-attention layers without Gated DeltaNet (linear_*), KDA (linear_attn_config) or "
                   "Mamba-2 (mamba_*) fields", "layer_types")


def _experts(c: _Config) -> int:
    if c.get("enable_moe_block") is False:
        return 0
    n = c.get("n_routed_experts", "num_local_experts", "num_experts", "moe_num_experts", "n_experts")
    if n is None or n == 0:
        return 0
    return c.integer("n_routed_experts", "num_local_experts", "num_experts", "moe_num_experts", "n_experts")


def _ffn_kinds(c: _Config, L: int) -> list[str | None]:
    """dense or moe, per layer (every key that can say it read, as for the mixers)."""
    c.read.update(_FFN_KEYS)
    if not _experts(c):
        return ["dense"] * L
    types = c.get("mlp_layer_types")
    if types is not None:
        if not isinstance(types, list) or len(types) != L or not set(types) <= {"dense", "sparse", "moe"}:
            raise c.refuse("an mlp_layer_types list other than dense/sparse per layer", "mlp_layer_types", types)
        return ["dense" if t == "dense" else "moe" for t in types]
    freq = c.get("moe_layer_freq")
    if isinstance(freq, list):
        flags = c.int_list("moe_layer_freq", L)
        assert flags is not None
        return ["moe" if v else "dense" for v in flags[:L]]
    explicit = c.get("moe_layers")
    if explicit is not None:
        listed = set(c.int_list("moe_layers") or [])
        return ["moe" if i in listed else "dense" for i in range(L)]
    first = c.integer("first_k_dense_replace", "moe_layer_start_index", default=0, zero=True)
    every = c.integer("moe_layer_freq", default=1)
    step = c.integer("decoder_sparse_step", "interleave_moe_layer_step", "moe_layer_interval", default=1)
    dense_only = set(c.int_list("mlp_only_layers") or [])
    return ["moe" if i >= first and i % every == 0 and (i + 1) % step == 0 and i not in dense_only else "dense"
            for i in range(L)]


# --- attention ----------------------------------------------------------------------------

def _attention(c: _Config, f: dict, layers: list[_Layer], notes: list[str]) -> None:
    """MLA, sparse attention and indexers, per-kind heads, windows; attention notes."""
    kinds = Counter(x.mixer for x in layers)
    if c.has("kv_lora_rank"):
        f["attention"] = "mla"
        f["head_dim"] = c.integer("v_head_dim")
        f["mla"] = {"q_lora_rank": c.integer("q_lora_rank", default=0, zero=True),
                    "kv_lora_rank": c.integer("kv_lora_rank"), "qk_nope_head_dim": c.integer("qk_nope_head_dim"),
                    "qk_rope_head_dim": c.integer("qk_rope_head_dim"), "v_head_dim": c.integer("v_head_dim")}
        c.get("mla_use_nope", "qk_head_dim")
    sparse = c.get("sparse_attention_config")
    if c.has("index_topk"):
        f["sparse_attention"] = {"top_k_tokens": c.integer("index_topk"), "indexer_heads": c.integer("index_n_heads"),
                                 "indexer_head_dim": c.integer("index_head_dim")}
        types = c.get("indexer_types")
        c.get("index_topk_freq", "index_topk_pattern", "index_skip_topk_offset")
        if types is not None:
            attn = [x for x in layers if x.mixer != "mamba2"]
            if not isinstance(types, list) or len(types) != len(attn) or not set(types) <= {"full", "shared"}:
                raise c.refuse("an indexer_types list other than full/shared per layer", "indexer_types", types)
            for x, t in zip(attn, types):
                x.indexer = "own" if t == "full" else "shared"
        elif kinds["compressed"]:   # DeepSeek V4: the indexer picks among the finest compressed entries
            finest = min(x.ratio for x in layers if x.mixer == "compressed")
            for x in layers:
                x.indexer = "own" if x.mixer == "compressed" and x.ratio == finest else "none"
        else:
            for x in layers:
                x.indexer = "own" if x.mixer in ("full", "sliding", "chunked") else None
    elif isinstance(sparse, dict) and sparse.get("use_sparse_attention"):
        _block_sparse(c, f, layers, sparse)
    if kinds["compressed"]:
        c.get("qk_rope_head_dim")   # the rotary share of head_dim: no size of its own
        notes.append("compressed attention (DeepSeek V4): one cached vector per entry serves as K and V; the "
                     f"last {c.get('sliding_window')} tokens raw; the compressors' pending tokens not counted")
    if kinds["sliding"] or kinds["compressed"]:
        f["_window"] = c.integer("sliding_window", why="sliding-window layers")
    if kinds["chunked"]:
        f["_chunk"] = c.integer("attention_chunk_size", why="chunked attention layers")
    if c.get("num_kv_shared_layers"):
        raise c.refuse("KV cache shared across layers (num_kv_shared_layers)", "num_kv_shared_layers",
                       c.get("num_kv_shared_layers"))
    if c.get("hidden_size_per_layer_input"):
        raise c.refuse("per-layer input embeddings (hidden_size_per_layer_input)", "hidden_size_per_layer_input",
                       c.get("hidden_size_per_layer_input"))
    if c.get("use_double_wide_mlp"):
        raise c.refuse("double-wide MLPs on some layers (use_double_wide_mlp)", "use_double_wide_mlp", True)


def _block_sparse(c: _Config, f: dict, layers: list[_Layer], s: dict) -> None:
    """MiniMax M3: an indexer scores blocks of tokens; the attention reads the top blocks,
    the local block and the initial blocks (taken as extra blocks: an upper bound)."""
    key = "sparse_attention_config"
    sub = _Config(s, {}, c.file, f"{c.prefix}{key}.")
    block = sub.integer("sparse_block_size")
    top = sub.integer("sparse_topk_blocks")
    extra = sub.integer("sparse_local_block", default=0, zero=True) + sub.integer("sparse_init_block", default=0,
                                                                                    zero=True)
    f["sparse_attention"] = {"top_k_tokens": (top + extra) * block,
                             "indexer_heads": sub.integer("sparse_num_index_heads"),
                             "indexer_head_dim": sub.integer("sparse_index_dim")}
    flags = sub.int_list("sparse_attention_freq", len(layers))
    for i, x in enumerate(layers):
        x.indexer = "own" if flags is None or flags[i] else "none"
    sub.get("use_sparse_attention", "sparse_score_type", "sparse_disable_index_value")
    c.read.update(f"{key}.{k}" for k in sub.read)


# --- the FFN: dense and MoE ---------------------------------------------------------------

def _ffn(c: _Config, f: dict, layers: list[_Layer], notes: list[str]) -> None:
    n_exp = _experts(c)
    if not n_exp:
        if any(x.ffn == "moe" for x in layers):
            raise InputError("config.json has MoE blocks but no expert count", file=c.file,
                             path=c.path("n_routed_experts"), accepted="n_routed_experts or num_experts")
        keys = ("dense_intermediate_size", "intermediate_size_mlp", "ffn_hidden_size", "intermediate_size", "n_inner")
        if not c.has(*keys):
            notes.append(f"MLP width 4 x hidden ({4 * f['hidden_size']}): no intermediate_size")
        f["intermediate_size"] = c.integer(*keys, default=4 * f["hidden_size"])
        return
    has_moe_width = c.has("moe_intermediate_size", "expert_intermediate_size")
    expert_w = c.integer("moe_intermediate_size", "expert_intermediate_size", "intermediate_size",
                         why="the expert width")
    dense_keys = ("dense_intermediate_size", "intermediate_size_mlp", "ffn_hidden_size") + (
        ("intermediate_size",) if has_moe_width else ())
    f["intermediate_size"] = c.integer(*dense_keys, default=expert_w)
    moe: dict[str, Any] = {
        "num_experts": n_exp,
        "experts_per_token": c.integer("num_experts_per_tok", "experts_per_token", "num_experts_per_token",
                                       "top_k_experts", "moe_topk", "moe_k", why="routing"),
        "expert_intermediate_size": expert_w,
    }
    n_keys = ("n_shared_experts", "num_shared_experts", "moe_num_shared_experts", "shared_expert_count",
              "num_shared_expert")
    shared_w = c.integer("shared_expert_intermediate_size", "moe_shared_expert_intermediate_size",
                         "shared_intermediate_size", "moe_shared_intermediate_size", default=0, zero=True)
    shared_n = c.integer(*n_keys, default=1 if shared_w else 0, zero=True)
    if c.get("enable_moe_block"):      # Gemma 4: the dense MLP runs beside the experts, a shared expert
        shared_n, shared_w = 1, c.integer("intermediate_size")
    if shared_n:
        moe["num_shared_experts"] = shared_n
        if shared_w:
            moe["shared_expert_intermediate_size"] = shared_w
    latent = c.integer("moe_latent_size", "routed_expert_hidden_size", default=0, zero=True)
    if latent:
        moe["latent_size"] = latent
        c.get("latent_moe_use_norm")
        notes.append(f"latent experts: routed experts run at width {latent} (projected from {f['hidden_size']})")
    if c.get("topk_method") == "noaux_tc" or c.get("use_routing_bias"):
        moe["router_bias"] = True
    ffn = [x.ffn for x in layers if x.ffn]
    dense = ffn.count("dense")
    moe_flags = [x.ffn == "moe" for x in layers if x.ffn]
    step = _interleave(moe_flags)
    if step > 1:
        moe["moe_layer_step"] = step
    elif dense:
        moe["first_dense_layers"] = dense
    f["moe"] = moe


def _interleave(flags: list[bool]) -> int:
    """s > 1 when every s-th FFN layer (and only those) is MoE: Llama 4 Maverick's 2."""
    for s in range(2, len(flags) + 1):
        if all(v == ((i + 1) % s == 0) for i, v in enumerate(flags)):
            return s
    return 1


# --- layer groups -------------------------------------------------------------------------

_ORDER = {"sliding": 0, "chunked": 1, "compressed": 2, "mamba2": 3, "gdn": 3, "kda": 3, "full": 4}


def _groups(c: _Config, f: dict, layers: list[_Layer]) -> None:
    """Layers of one kind as ModelSpec layer groups (none when every layer is plain full
    attention with the model's heads and an FFN)."""
    window, chunk = f.pop("_window", None), f.pop("_chunk", None)
    h = f["hidden_size"]
    full_extra: dict[str, Any] = {}
    if f.get("attention") != "mla":
        if c.has("num_global_key_value_heads"):
            full_extra["num_kv_heads"] = c.integer("num_global_key_value_heads")
        if c.has("global_head_dim"):
            full_extra["head_dim"] = c.integer("global_head_dim")
        if c.get("attention_k_eq_v"):
            full_extra["k_eq_v"] = True
    if c.get("attn_output_gate", "attention_output_gate", "mla_use_output_gate"):
        full_extra["output_gate"] = True
    keyed: dict[tuple, dict[str, Any]] = {}
    for x in layers:
        g: dict[str, Any]
        if x.mixer in ("mamba2", "gdn", "kda"):
            mixer, state = _state_space(c, x.mixer, h)
            g = {"kind": "state_space", "state_bytes_per_sequence": state, "mixer_params": mixer}
        elif x.mixer == "compressed" or (x.mixer == "sliding" and c.has("compress_ratios")):
            g = {"kind": x.mixer, "window_tokens": window, "k_eq_v": True,
                 "mixer_params": _v4_attention(c, f, x.ratio)}
            if x.ratio:
                g["compress_ratio"] = x.ratio
        elif x.mixer == "sliding":
            g = {"kind": "sliding", "window_tokens": window}
        elif x.mixer == "chunked":
            g = {"kind": "chunked", "window_tokens": chunk}
        else:
            g = {"kind": "full", **full_extra}
        if x.ffn is None:
            g["ffn"] = False
        if x.indexer is not None and g["kind"] != "state_space" and (x.indexer != "own" or _mixed(layers)):
            g["indexer"] = x.indexer
        key = tuple(sorted((k, repr(v)) for k, v in g.items()))
        if key in keyed:
            keyed[key]["count"] += 1
        else:
            keyed[key] = {**g, "count": 1}
    groups = sorted(keyed.values(), key=lambda g: (_ORDER.get(g["kind"], 3), not g.get("ffn", True),
                                                   str(g.get("indexer"))))
    plain = len(groups) == 1 and set(groups[0]) <= {"kind", "count", "indexer"} and groups[0]["kind"] == "full"
    if not plain:
        f["layer_groups"] = groups


def _mixed(layers: list[_Layer]) -> bool:
    return len({x.indexer for x in layers if x.mixer not in ("mamba2", "gdn", "kda")}) > 1


def _state_space(c: _Config, kind: str, h: int) -> tuple[float, float]:
    """(mixer parameters, state bytes per sequence) of one state-space layer."""
    if kind == "mamba2":
        heads = c.integer("mamba_num_heads", "mamba_n_heads", why="Mamba-2 layers")
        hd = c.integer("mamba_head_dim", "mamba_d_head", why="Mamba-2 layers")
        ng = c.integer("n_groups", "mamba_n_groups", why="Mamba-2 layers")
        state = c.integer("ssm_state_size", "mamba_d_state", "state_size", why="Mamba-2 layers")
        kernel = c.integer("conv_kernel", "mamba_d_conv", why="Mamba-2 layers")
        c.get("expand", "mamba_expand", "use_conv_bias", "mamba_proj_bias", "use_bias")
        inner = heads * hd
        conv_dim = inner + 2 * ng * state
        # in_proj (z, x, B, C, dt), conv1d (+bias), A_log, D, dt_bias, gated norm, out_proj.
        mixer = h * (2 * inner + 2 * ng * state + heads) + conv_dim * kernel + conv_dim + 3 * heads + inner + inner * h
        ssm_bytes = 4 if c.get("mamba_ssm_cache_dtype", default="float32") == "float32" else 2
        return float(mixer), float(heads * hd * state * ssm_bytes + (kernel - 1) * conv_dim * 2)
    if kind == "gdn":
        nk, dk = c.integer("linear_num_key_heads"), c.integer("linear_key_head_dim")
        nv, dv = c.integer("linear_num_value_heads"), c.integer("linear_value_head_dim")
        kernel = c.integer("linear_conv_kernel_dim")
        conv_dim = 2 * nk * dk + nv * dv
        # Gated DeltaNet: in_proj_qkvz, in_proj_ba, conv1d, A_log, dt_bias, gated norm, out_proj.
        mixer = h * (conv_dim + nv * dv) + h * 2 * nv + conv_dim * kernel + 2 * nv + dv + nv * dv * h
        ssm_bytes = 4 if c.get("mamba_ssm_dtype", default="float32") == "float32" else 2
        return float(mixer), float(nv * dk * dv * ssm_bytes + (kernel - 1) * conv_dim * 2)
    cfg = c.get("linear_attn_config")
    sub = _Config(cfg, {}, c.file, f"{c.prefix}linear_attn_config.")
    H, d, K = sub.integer("num_heads"), sub.integer("head_dim"), sub.integer("short_conv_kernel_size")
    full_gate = bool(sub.get("use_full_rank_gate"))
    sub.get("full_attn_layers", "kda_layers", "gate_lower_bound")
    c.read.update(f"linear_attn_config.{k}" for k in sub.read)
    Hd = H * d
    # Kimi Delta Attention: q, k, v projections and their short convolutions, forget gate f
    # (low rank h -> d -> H*d, or full rank), beta, A_log, dt_bias, output gate g (low rank,
    # biased), gated norm, out_proj.
    forget = h * Hd if full_gate else h * d + d * Hd
    mixer = 3 * h * Hd + 3 * Hd * K + forget + h * H + H + Hd + (h * d + d * Hd + Hd) + d + Hd * h
    return float(mixer), float(H * d * d * 4 + (K - 1) * 3 * Hd * 2)


def _v4_attention(c: _Config, f: dict, ratio: int) -> float:
    """Parameters of one DeepSeek V4 attention layer: compressed queries (q_lora_rank),
    one shared K = V projection (num_key_value_heads x head_dim), the grouped low-rank
    output projection (o_groups, o_lora_rank), a sink logit per head, and for a compressed
    layer its compressor (K/V and gate projections, overlapping windows at the finest ratio,
    a position embedding over the window) and, at the finest ratio, its indexer (query
    up-projection, head weights, its own key compressor)."""
    h, nq, d = f["hidden_size"], f["num_attention_heads"], f["head_dim"]
    nkv = f["num_kv_heads"]
    rq = c.integer("q_lora_rank", why="compressed attention")
    groups, ro = c.integer("o_groups", default=1), c.integer("o_lora_rank", default=0, zero=True)
    wq = h * rq + rq + rq * nq * d
    wkv = h * nkv * d + d
    wo = nq * d * ro + groups * ro * h if ro else nq * d * h
    total = wq + wkv + wo + nq
    finest = min((r for r in (c.int_list("compress_ratios") or []) if r), default=0)
    if ratio:
        overlap = 2 if ratio == finest else 1
        total += 2 * h * overlap * d + ratio * overlap * d + d
        if ratio == finest and c.has("index_topk"):
            ih, idim = c.integer("index_n_heads"), c.integer("index_head_dim")
            total += rq * ih * idim + h * ih + 2 * h * overlap * idim + ratio * overlap * idim + idim
    return float(total)


# --- towers and what was not read ---------------------------------------------------------

def _towers(cfg: dict, notes: list[str]) -> list[dict[str, Any]]:
    out = []
    for key, kind in TOWER_KEYS.items():
        t = cfg.get(key)
        if not isinstance(t, dict) or not t:
            continue
        layers = _first(t, "depth", "num_hidden_layers", "vt_num_hidden_layers", "num_layers", "encoder_layers")
        width = _first(t, "hidden_size", "vt_hidden_size", "embed_dim", "d_model", "width")
        if not layers or not width:
            notes.append(f"{kind} tower ({key}): present, size not stated in fields the importer reads; not counted")
            continue
        params, how = tower_parameters(t, layers, width)
        out.append({"kind": kind, "parameters": params, "source": f"{key}: {how}"})
        notes.append(f"{kind} tower: {params / 1e9:.2f}B parameters ({how}); counted in memory only when served")
    return out


def _first(d: dict, *keys: str) -> Any:
    return next((d[k] for k in keys if isinstance(d.get(k), int) and not isinstance(d.get(k), bool)), None)


def tower_parameters(t: dict, layers: int, width: int) -> tuple[float, str]:
    """A closed-form estimate of a ViT / audio encoder: per layer q, k, v, o (with biases),
    a plain MLP (with biases) and two LayerNorms; the patch embedding; a merger MLP onto the
    language model's width (one per deepstack level). An estimate: encoders differ in
    details the config does not state."""
    inter = _first(t, "intermediate_size", "vt_intermediate_size", "encoder_ffn_dim", "mlp_dim", "ffn_dim") or 4 * width
    per_layer = 4 * width * width + 4 * width + 2 * width * inter + inter + width + 4 * width
    patch = t.get("patch_size", 14)
    patch = patch[0] if isinstance(patch, list) and patch else patch
    channels = _first(t, "in_channels", "num_channels") or 3
    temporal = _first(t, "temporal_patch_size") or 1
    embed = channels * (patch if isinstance(patch, int) else 14) ** 2 * temporal * width
    out = _first(t, "out_hidden_size", "projection_dim", "text_hidden_size", "projector_hidden_size")
    merge = t.get("spatial_merge_size") or t.get("merge_kernel_size") or 1
    m2 = merge[0] * merge[-1] if isinstance(merge, list) and merge else (merge * merge if isinstance(merge, int) else 1)
    mergers = 1 + len(t.get("deepstack_visual_indexes") or [])
    merger = mergers * ((width * m2) ** 2 + width * m2 * out) if out else 0
    total = float(layers * per_layer + embed + merger)
    return total, f"closed-form estimate: {layers} layers of width {width}, MLP {inter}" + (
        f", {mergers} merger(s) onto {out}" if out else "")


def _ignored(cfg: dict, text: dict, text_key: str | None, c: _Config) -> list[str]:
    """Keys of the text config (and of a multimodal config's top level) that no rule read
    and that are not known to cost nothing."""
    skip = NO_COST_KEYS | set(RELEASE_FORMAT_KEYS) | set(TOWER_KEYS) | set(TEXT_KEYS)
    out = [k for k in text if k not in c.read and k not in skip and not k.startswith("mtp_") and text[k] is not None]
    for sub in ("sparse_attention_config", "linear_attn_config"):
        if isinstance(text.get(sub), dict) and sub in c.read:   # read key by key: list its unread keys
            out = [k for k in out if k != sub] + [f"{sub}.{k}" for k in text[sub] if f"{sub}.{k}" not in c.read]
    if text_key:
        out += [k for k in cfg if k not in skip and k not in TOWER_SIDE_KEYS and k != "tie_word_embeddings"
                and not k.endswith("_token_id") and not k.endswith("_token_index")]
    return sorted(set(out))

