"""Hugging Face ``config.json`` -> ModelSpec fields, per architecture (``model_type``).

Each mapping models what changes memory and step time: attention kinds per layer
(sliding window, chunked, state-space), sinks, sparse attention, shared experts,
interleaved dense/MoE layers. A feature it cannot model is refused with an InputError
naming it, never approximated silently. Vision and audio towers of multimodal configs
(``text_config``) are left out: the planner serves the language model. Multi-token
prediction (MTP) layers are left out as in the catalog (speculative decoding is not modelled).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from planner.errors import InputError

SUPPORTED_HF_ARCHITECTURES = (
    "llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen3_moe", "deepseek_v3", "kimi_k2", "deepseek_v32",
    "glm_moe_dsa", "gpt_oss", "llama4", "qwen3_5", "qwen3_5_moe", "gemma4", "nemotron_h",
)


def fields_from_config(cfg: dict, name: str, fallback_name: str) -> dict[str, Any]:
    """ModelSpec fields from a parsed config.json (``name``: the file, for messages)."""
    arch = cfg.get("model_type")
    if arch not in SUPPORTED_HF_ARCHITECTURES:
        raise InputError("unsupported architecture in config.json", file=name, path="model_type",
                         value=arch, accepted=", ".join(SUPPORTED_HF_ARCHITECTURES))
    text: dict[str, Any] = cfg["text_config"] if isinstance(cfg.get("text_config"), dict) else cfg

    def need(key: str) -> Any:
        if key not in text:
            raise InputError(f"config.json lacks {key!r}, needed for model_type {arch!r}", file=name, path=key)
        return text[key]

    def refuse(feature: str, key: str, value: Any = None) -> InputError:
        return InputError(f"model_type {arch!r}: {feature} is not modelled by the planner", file=name,
                          path=key, value=value)

    heads = need("num_attention_heads")
    hidden = need("hidden_size")
    f: dict[str, Any] = {
        "name": cfg.get("_name_or_path") or fallback_name or arch,
        "source": f"hf_config {name}" + (" (language model; vision/audio towers excluded)" if text is not cfg else ""),
        "hidden_size": hidden,
        "num_layers": need("num_hidden_layers"),
        "num_attention_heads": heads,
        "num_kv_heads": text.get("num_key_value_heads") or heads,
        "head_dim": text.get("head_dim") or (hidden // heads if isinstance(hidden, int) and isinstance(heads, int)
                                             and heads else None),
        "intermediate_size": text.get("intermediate_size") or need("moe_intermediate_size"),
        "vocab_size": need("vocab_size"),
        "max_context_tokens": need("max_position_embeddings"),
        "tie_embeddings": bool(cfg.get("tie_word_embeddings", text.get("tie_word_embeddings", False))),
    }
    if text.get("sliding_window") and text.get("use_sliding_window", True) and arch in (
            "mistral", "mixtral", "qwen2", "qwen3", "qwen3_moe"):
        raise refuse("a sliding window on every layer (use_sliding_window)", "sliding_window", text["sliding_window"])
    if arch == "qwen2":
        f["attention_bias"] = True
    if arch in ("qwen3", "qwen3_moe"):
        f["qk_norm"] = True
        f["attention_bias"] = bool(text.get("attention_bias", False))
    if arch == "mixtral":
        f["moe"] = {"num_experts": need("num_local_experts"), "experts_per_token": need("num_experts_per_tok"),
                    "expert_intermediate_size": need("intermediate_size")}
    if arch == "qwen3_moe":
        if text.get("decoder_sparse_step", 1) != 1 or text.get("mlp_only_layers"):
            raise InputError("only qwen3_moe configs with every layer MoE are supported",
                             file=name, path="decoder_sparse_step",
                             value=text.get("decoder_sparse_step"), accepted="1 with mlp_only_layers empty")
        f["moe"] = {"num_experts": need("num_experts"), "experts_per_token": need("num_experts_per_tok"),
                    "expert_intermediate_size": need("moe_intermediate_size")}
    if arch in ("deepseek_v3", "kimi_k2", "deepseek_v32", "glm_moe_dsa"):
        _deepseek(text, f, need, refuse)
    if arch == "gpt_oss":
        _gpt_oss(text, f, need, refuse)
    if arch == "llama4":
        _llama4(text, f, need, refuse)
    if arch in ("qwen3_5", "qwen3_5_moe"):
        _qwen3_5(text, f, need, refuse)
    if arch == "gemma4":
        _gemma4(text, f, need, refuse)
    if arch == "nemotron_h":
        _nemotron_h(text, f, need, refuse)
    return f


def _layer_kinds(text: dict, need, refuse) -> Counter:
    kinds = need("layer_types")
    if not isinstance(kinds, list) or len(kinds) != text.get("num_hidden_layers"):
        raise refuse("a layer_types list that does not match num_hidden_layers", "layer_types")
    return Counter(kinds)


def _deepseek(text: dict, f: dict, need, refuse) -> None:
    if text.get("moe_layer_freq", 1) != 1:
        raise InputError("only moe_layer_freq 1 is supported", path="moe_layer_freq",
                         value=text.get("moe_layer_freq"), accepted="1")
    f["attention"] = "mla"
    f["head_dim"] = need("v_head_dim")
    f["mla"] = {"q_lora_rank": text.get("q_lora_rank") or 0, "kv_lora_rank": need("kv_lora_rank"),
                "qk_nope_head_dim": need("qk_nope_head_dim"), "qk_rope_head_dim": need("qk_rope_head_dim"),
                "v_head_dim": need("v_head_dim")}
    f["moe"] = {"num_experts": need("n_routed_experts"), "experts_per_token": need("num_experts_per_tok"),
                "expert_intermediate_size": need("moe_intermediate_size"),
                "num_shared_experts": text.get("n_shared_experts") or 0,
                "first_dense_layers": text.get("first_k_dense_replace", 0),
                "router_bias": text.get("topk_method") == "noaux_tc"}
    if "index_topk" in text:   # DeepSeek Sparse Attention (V3.2, GLM-5)
        f["sparse_attention"] = {"top_k_tokens": need("index_topk"), "indexer_heads": need("index_n_heads"),
                                 "indexer_head_dim": need("index_head_dim")}


def _gpt_oss(text: dict, f: dict, need, refuse) -> None:
    kinds = _layer_kinds(text, need, refuse)
    unknown = set(kinds) - {"sliding_attention", "full_attention"}
    if unknown:
        raise refuse(f"layer kinds {sorted(unknown)}", "layer_types")
    f["attention_bias"] = bool(text.get("attention_bias", True))
    f["attention_sinks"] = True            # a learned sink logit per head; no KV
    f["mlp_bias"] = True
    f["moe"] = {"num_experts": need("num_local_experts"), "experts_per_token": need("num_experts_per_tok"),
                "expert_intermediate_size": need("intermediate_size"), "router_bias": True}
    f["layer_groups"] = [g for g in (
        {"kind": "sliding", "count": kinds["sliding_attention"], "window_tokens": need("sliding_window")},
        {"kind": "full", "count": kinds["full_attention"]}) if g["count"]]


def _llama4(text: dict, f: dict, need, refuse) -> None:
    L = f["num_layers"]
    step = text.get("interleave_moe_layer_step", 1)
    if text.get("moe_layers"):
        raise refuse("an explicit moe_layers list", "moe_layers")
    f["intermediate_size"] = need("intermediate_size_mlp") if step > 1 else need("intermediate_size")
    f["moe"] = {"num_experts": need("num_local_experts"), "experts_per_token": need("num_experts_per_tok"),
                "expert_intermediate_size": need("intermediate_size"), "num_shared_experts": 1,
                "shared_expert_intermediate_size": need("intermediate_size"), "moe_layer_step": step}
    # RoPE layers use chunked local attention; every no_rope_layer_interval-th layer (NoPE) is global.
    rope = text.get("no_rope_layers") or [int((i + 1) % text.get("no_rope_layer_interval", 4) != 0) for i in range(L)]
    chunk = text.get("attention_chunk_size")
    chunked = sum(1 for r in rope if r) if chunk else 0
    f["layer_groups"] = [g for g in ({"kind": "chunked", "count": chunked, "window_tokens": chunk},
                                     {"kind": "full", "count": L - chunked}) if g["count"]]


def _qwen3_5(text: dict, f: dict, need, refuse) -> None:
    kinds = _layer_kinds(text, need, refuse)
    unknown = set(kinds) - {"linear_attention", "full_attention"}
    if unknown:
        raise refuse(f"layer kinds {sorted(unknown)}", "layer_types")
    if text.get("mlp_only_layers"):
        raise refuse("dense-only layers in a MoE (mlp_only_layers)", "mlp_only_layers")
    h = f["hidden_size"]
    f["qk_norm"] = True
    nk, dk = need("linear_num_key_heads"), need("linear_key_head_dim")
    nv, dv = need("linear_num_value_heads"), need("linear_value_head_dim")
    kernel = need("linear_conv_kernel_dim")
    conv_dim = 2 * nk * dk + nv * dv
    # Gated DeltaNet: in_proj_qkvz, in_proj_ba, conv1d, A_log, dt_bias, gated norm, out_proj.
    mixer = h * (conv_dim + nv * dv) + h * 2 * nv + conv_dim * kernel + 2 * nv + dv + nv * dv * h
    ssm_bytes = 4 if text.get("mamba_ssm_dtype", "float32") == "float32" else 2
    state = nv * dk * dv * ssm_bytes + (kernel - 1) * conv_dim * 2   # recurrent state + conv window (bf16)
    f["layer_groups"] = [
        {"kind": "state_space", "count": kinds["linear_attention"], "state_bytes_per_sequence": float(state),
         "mixer_params": float(mixer)},
        {"kind": "full", "count": kinds["full_attention"], "output_gate": bool(text.get("attn_output_gate"))}]
    if "num_experts" in text:
        shared = text.get("shared_expert_intermediate_size") or 0
        f["moe"] = {"num_experts": need("num_experts"), "experts_per_token": need("num_experts_per_tok"),
                    "expert_intermediate_size": need("moe_intermediate_size"),
                    "num_shared_experts": 1 if shared else 0,
                    **({"shared_expert_intermediate_size": shared} if shared else {})}


def _gemma4(text: dict, f: dict, need, refuse) -> None:
    if text.get("num_kv_shared_layers"):
        raise refuse("KV cache shared across layers (num_kv_shared_layers)", "num_kv_shared_layers",
                     text["num_kv_shared_layers"])
    if text.get("hidden_size_per_layer_input"):
        raise refuse("per-layer input embeddings (hidden_size_per_layer_input)", "hidden_size_per_layer_input",
                     text["hidden_size_per_layer_input"])
    kinds = _layer_kinds(text, need, refuse)
    unknown = set(kinds) - {"sliding_attention", "full_attention"}
    if unknown:
        raise refuse(f"layer kinds {sorted(unknown)}", "layer_types")
    f["qk_norm"] = True
    f["norms_per_layer"] = 4
    f["layer_groups"] = [
        {"kind": "sliding", "count": kinds["sliding_attention"], "window_tokens": need("sliding_window")},
        {"kind": "full", "count": kinds["full_attention"],
         "num_kv_heads": text.get("num_global_key_value_heads") or f["num_kv_heads"],
         "head_dim": text.get("global_head_dim") or f["head_dim"],
         "k_eq_v": bool(text.get("attention_k_eq_v", False))}]
    if text.get("enable_moe_block"):
        # The dense MLP runs beside the routed experts in every layer: a shared expert.
        f["moe"] = {"num_experts": need("num_experts"), "experts_per_token": need("top_k_experts"),
                    "expert_intermediate_size": need("moe_intermediate_size"), "num_shared_experts": 1,
                    "shared_expert_intermediate_size": need("intermediate_size")}


def _nemotron_h(text: dict, f: dict, need, refuse) -> None:
    pattern = need("hybrid_override_pattern")
    if not isinstance(pattern, str) or len(pattern) != f["num_layers"]:
        raise refuse("a hybrid_override_pattern that does not match num_hidden_layers", "hybrid_override_pattern")
    counts = Counter(pattern)
    unknown = set(counts) - {"M", "E", "*"}
    if unknown:
        raise refuse(f"block kinds {sorted(unknown)} (only M Mamba-2, E MoE, * attention)",
                     "hybrid_override_pattern", pattern)
    h = f["hidden_size"]
    heads, hd = need("mamba_num_heads"), need("mamba_head_dim")
    ng, state, kernel = need("n_groups"), need("ssm_state_size"), need("conv_kernel")
    inner = heads * hd
    conv_dim = inner + 2 * ng * state
    # Mamba-2 mixer: in_proj (z, x, B, C, dt), conv1d (+bias), A_log, D, dt_bias, gated norm, out_proj.
    mixer = h * (2 * inner + 2 * ng * state + heads) + conv_dim * kernel + conv_dim + 3 * heads + inner + inner * h
    ssm_bytes = 4 if text.get("mamba_ssm_cache_dtype", "float32") == "float32" else 2
    state_bytes = heads * hd * state * ssm_bytes + (kernel - 1) * conv_dim * 2
    if counts["E"] != counts["M"]:
        raise refuse("a Mamba/MoE block count mismatch (each Mamba-2 block is paired with an MoE block)",
                     "hybrid_override_pattern", pattern)
    # Blocks are one mixer or one FFN each; we pair every Mamba-2 block with an MoE block
    # (a layer of mixer + MoE) and keep attention blocks as layers without an FFN. Weights,
    # KV and state are exact; the layer count (and all-reduces per step) is M + * instead of
    # M + E + * (29 vs 52 for Nemotron 3 Nano), see docs/model.md.
    f["num_layers"] = counts["M"] + counts["*"]
    f["mlp"] = "plain" if text.get("mlp_hidden_act", "relu2") == "relu2" else "gated"
    f["layer_groups"] = [
        {"kind": "state_space", "count": counts["M"], "state_bytes_per_sequence": float(state_bytes),
         "mixer_params": float(mixer)},
        {"kind": "full", "count": counts["*"], "ffn": False}]
    shared = text.get("moe_shared_expert_intermediate_size") or 0
    f["moe"] = {"num_experts": need("n_routed_experts"), "experts_per_token": need("num_experts_per_tok"),
                "expert_intermediate_size": need("moe_intermediate_size"),
                "num_shared_experts": text.get("n_shared_experts") or 0,
                **({"shared_expert_intermediate_size": shared} if shared else {}),
                "router_bias": text.get("topk_method", "noaux_tc") == "noaux_tc"}
