"""A Hugging Face ``config.json`` (a local file) becomes a ModelConfig.

Only the families whose architecture this package builds are accepted; any other
``model_type`` is an error naming the supported ones, never a best guess. Field names follow
the transformers library's configuration classes for each family.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from accelsim.errors import AccelsimError
from accelsim.yamlio import read_yaml
from workloads.config import ModelConfig, config_from_dict

# torch dtype names a config.json's ``torch_dtype`` may hold -> bytes per element
_DTYPE_BYTES = {"float32": 4, "float": 4, "float16": 2, "half": 2, "bfloat16": 2, "float8_e4m3fn": 1,
                "float8_e5m2": 1, "int8": 1, "uint8": 1}
# quantization_config.quant_method values whose weight element size is certain: "fp8" is
# DeepSeek-V3's block-wise e4m3 (config.json: quant_method fp8, fmt e4m3, weight_block_size
# [128, 128]) and transformers' FineGrainedFP8Config; 1 byte per weight (block scales ignored,
# 1/16384 of the weight bytes for 128x128 blocks). GPTQ/AWQ/bitsandbytes are 4-bit or mixed
# layouts that a whole-byte dtype cannot express, so they are rejected.
_QUANT_WEIGHT_BYTES = {"fp8": 1}


def _dtypes(data: dict[str, Any], source: str) -> dict[str, int]:
    """``dtype_bytes``/``kv_dtype_bytes`` from ``torch_dtype`` and ``quantization_config``.

    A missing ``torch_dtype`` keeps ModelConfig's default (2 bytes, fp16/bf16) and records
    ``dtype_source: assumed``, which ``workloads show`` and the roofline/simulate JSON print (a
    checkpoint such as gpt2-large is fp32 on disk, so the assumption can be wrong by 2x); an
    unknown one is an error naming it. Quantised weights set ``dtype_bytes`` (which this package also uses for
    activations) while the KV cache stays in ``torch_dtype``.
    """
    out: dict[str, int] = {}
    dtype = data.get("torch_dtype", data.get("dtype"))
    if dtype is not None:
        if not isinstance(dtype, str) or dtype not in _DTYPE_BYTES:  # a list is not a name
            raise AccelsimError(f"unknown torch_dtype {dtype!r}", field="torch_dtype", allowed=sorted(_DTYPE_BYTES),
                                source=source)
        out["dtype_bytes"] = _DTYPE_BYTES[dtype]
    else:
        out["dtype_source"] = "assumed"
    quant = data.get("quantization_config")
    if quant is not None:
        method = quant.get("quant_method") if isinstance(quant, dict) else None
        if not isinstance(method, str) or method not in _QUANT_WEIGHT_BYTES:
            raise AccelsimError(f"unsupported quantization_config.quant_method {method!r} (weight element size "
                                "unknown or below one byte)", field="quantization_config.quant_method",
                                allowed=sorted(_QUANT_WEIGHT_BYTES), source=source)
        out["kv_dtype_bytes"] = out.get("dtype_bytes", 2)
        out["dtype_bytes"] = _QUANT_WEIGHT_BYTES[method]
    return out


def _get(cfg: dict[str, Any], key: str, source: str) -> Any:
    if key not in cfg:
        raise AccelsimError("required field is missing", field=key, source=source)
    return cfg[key]


def _opt(cfg: dict[str, Any], key: str, default: Any) -> Any:
    """``cfg[key]``, or ``default`` when absent or null (never when 0: a 0 is an error to report)."""
    value = cfg.get(key)
    return default if value is None else value


_QWEN = ("qwen2", "qwen3", "qwen2_moe", "qwen3_moe")


def _sliding_window(c: dict[str, Any], src: str) -> int | None:
    """The attention window a config.json sets for every layer, or None.

    Mistral and Mixtral attend within ``sliding_window`` when it is set (MistralAttention passes
    it to every layer). Qwen2 uses it only when ``use_sliding_window`` is true, and then only in
    layers ``>= max_window_layers`` (transformers Qwen2Attention); a model with some windowed and
    some full layers is refused rather than approximated.
    """
    window = c.get("sliding_window")
    if c["model_type"] in ("mistral", "mixtral"):
        return window
    if c["model_type"] in _QWEN and c.get("use_sliding_window") and window is not None:
        layers = _get(c, "num_hidden_layers", src)
        full = _opt(c, "max_window_layers", layers)
        if full >= layers:
            return None
        if full > 0:
            raise AccelsimError(f"{full} of {layers} layers use full attention and the rest a {window}-token window; "
                                "per-layer windows are not modelled", field="max_window_layers",
                                allowed=f"0 (every layer windowed) or >= num_hidden_layers ({layers})", source=src)
        return window
    return None


def _llama_like(c: dict[str, Any], src: str) -> dict[str, Any]:
    """llama, mistral, mixtral, qwen2: RMSNorm, RoPE, SwiGLU, optional GQA, optional sliding window."""
    heads = _get(c, "num_attention_heads", src)
    out = dict(
        architecture="decoder", hidden_size=_get(c, "hidden_size", src), num_layers=_get(c, "num_hidden_layers", src),
        num_heads=heads, num_kv_heads=_opt(c, "num_key_value_heads", heads), head_dim=c.get("head_dim"),
        max_position_embeddings=c.get("max_position_embeddings"), sliding_window=_sliding_window(c, src),
        ffn_size=_get(c, "intermediate_size", src), ffn_gated=True, activation="silu",
        vocab_size=_get(c, "vocab_size", src), tie_embeddings=bool(c.get("tie_word_embeddings", False)),
        position="rope", norm="rmsnorm", qkv_bias=bool(c.get("attention_bias", False)),
    )
    if c["model_type"] in ("qwen2", "qwen2_moe"):
        out["qkv_bias"] = True  # Qwen2Attention and Qwen2MoeAttention always have q/k/v biases
    if c["model_type"] in ("qwen3", "qwen3_moe"):
        out["qk_norm"] = True  # Qwen3Attention: q_norm/k_norm (RMSNorm over head_dim) before RoPE
    if c["model_type"] in ("qwen2_moe", "qwen3_moe"):
        out["moe"] = _qwen_moe(c, src)
    if c["model_type"] == "mixtral":
        out["moe"] = dict(num_experts=_get(c, "num_local_experts", src), top_k=_get(c, "num_experts_per_tok", src),
                          expert_ffn_size=out["ffn_size"])
    return out


def _qwen_moe(c: dict[str, Any], src: str) -> dict[str, Any]:
    """Qwen2-MoE / Qwen3-MoE experts (transformers Qwen2MoeSparseMoeBlock, Qwen3MoeSparseMoeBlock).

    A layer is sparse unless listed in ``mlp_only_layers`` or skipped by ``decoder_sparse_step``;
    only leading dense layers (``first_dense_layers``) are modelled, any other pattern is refused.
    Qwen2-MoE adds one shared expert of ``shared_expert_intermediate_size`` behind a sigmoid gate.
    """
    layers = _get(c, "num_hidden_layers", src)
    step = _opt(c, "decoder_sparse_step", 1)
    dense = sorted(_opt(c, "mlp_only_layers", []))
    if step != 1 or dense != list(range(len(dense))):
        raise AccelsimError(f"dense layers {dense} with decoder_sparse_step {step}: only leading dense layers are "
                            "modelled", field="mlp_only_layers", allowed="[] or [0, 1, ..., k-1] with "
                            "decoder_sparse_step 1", source=src)
    moe = dict(num_experts=_get(c, "num_experts", src), top_k=_get(c, "num_experts_per_tok", src),
               expert_ffn_size=_get(c, "moe_intermediate_size", src), first_dense_layers=min(len(dense), layers))
    shared = c.get("shared_expert_intermediate_size") if c["model_type"] == "qwen2_moe" else None
    if shared:
        moe.update(shared_experts=1, shared_ffn_size=shared, shared_expert_gate=True)
    return moe


def _gemma2(c: dict[str, Any], src: str) -> dict[str, Any]:
    """Gemma 2 (transformers Gemma2Config / modeling_gemma2; Gemma Team, arXiv 2408.00118, Table 1):
    GeGLU FFN (gelu tanh), RMSNorm before and after attention and FFN, embeddings scaled by
    sqrt(d), tied head, logit soft-capping, and local sliding-window layers alternating with
    global ones (layer i is windowed when i is even; ``layer_types`` in newer configs)."""
    layers = _get(c, "num_hidden_layers", src)
    window = c.get("sliding_window")
    every = 2
    types = c.get("layer_types")
    if types is not None:
        full = [i for i, t in enumerate(types) if t == "full_attention"]
        every = full[0] + 1 if full else None
        if len(types) != layers or (every and full != list(range(every - 1, layers, every))):
            raise AccelsimError("layer_types is not a repeating local/global pattern", field="layer_types",
                                allowed="every k-th layer full_attention, the rest sliding_attention", source=src)
    heads = _get(c, "num_attention_heads", src)
    return dict(
        architecture="decoder", hidden_size=_get(c, "hidden_size", src), num_layers=layers, num_heads=heads,
        num_kv_heads=_opt(c, "num_key_value_heads", heads), head_dim=c.get("head_dim"),
        ffn_size=_get(c, "intermediate_size", src), ffn_gated=True, activation="gelu",
        vocab_size=_get(c, "vocab_size", src), tie_embeddings=bool(_opt(c, "tie_word_embeddings", True)),
        position="rope", norm="rmsnorm", qkv_bias=bool(c.get("attention_bias", False)),
        max_position_embeddings=c.get("max_position_embeddings"), sliding_window=window,
        full_attention_every=every if window is not None else None, post_norms=True, embed_scale=True,
        attn_logit_softcap=c.get("attn_logit_softcapping"), final_logit_softcap=c.get("final_logit_softcapping"))


def _gpt2(c: dict[str, Any], src: str) -> dict[str, Any]:
    d = _get(c, "n_embd", src)
    return dict(architecture="decoder", hidden_size=d, num_layers=_get(c, "n_layer", src),
                num_heads=_get(c, "n_head", src), ffn_size=_opt(c, "n_inner", 4 * d), activation="gelu",
                vocab_size=_get(c, "vocab_size", src), tie_embeddings=True, position="learned",
                max_positions=_get(c, "n_positions", src), norm="layernorm", qkv_bias=True, proj_bias=True)


def _bert(c: dict[str, Any], src: str) -> dict[str, Any]:
    return dict(architecture="encoder", hidden_size=_get(c, "hidden_size", src),
                num_layers=_get(c, "num_hidden_layers", src), num_heads=_get(c, "num_attention_heads", src),
                ffn_size=_get(c, "intermediate_size", src), activation="gelu", vocab_size=_get(c, "vocab_size", src),
                position="learned", max_positions=_get(c, "max_position_embeddings", src),
                type_vocab_size=c.get("type_vocab_size", 2), embed_norm=True, final_norm=False, norm="layernorm",
                qkv_bias=True, proj_bias=True, pooler=True, lm_head=False)


def _deepseek_v3(c: dict[str, Any], src: str) -> dict[str, Any]:
    heads = _get(c, "num_attention_heads", src)
    return dict(
        architecture="decoder", hidden_size=_get(c, "hidden_size", src), num_layers=_get(c, "num_hidden_layers", src),
        num_heads=heads, head_dim=c.get("v_head_dim", 128), ffn_size=_get(c, "intermediate_size", src),
        max_position_embeddings=c.get("max_position_embeddings"),
        ffn_gated=True, activation="silu", vocab_size=_get(c, "vocab_size", src),
        tie_embeddings=bool(c.get("tie_word_embeddings", False)), position="rope", norm="rmsnorm",
        mla=dict(q_lora_rank=c.get("q_lora_rank"), kv_lora_rank=_get(c, "kv_lora_rank", src),
                 qk_nope_head_dim=_get(c, "qk_nope_head_dim", src), qk_rope_head_dim=_get(c, "qk_rope_head_dim", src),
                 v_head_dim=_get(c, "v_head_dim", src)),
        moe=dict(num_experts=_get(c, "n_routed_experts", src), top_k=_get(c, "num_experts_per_tok", src),
                 expert_ffn_size=_get(c, "moe_intermediate_size", src), shared_experts=c.get("n_shared_experts") or 0,
                 first_dense_layers=c.get("first_k_dense_replace", 0),
                 router_bias=c.get("topk_method") == "noaux_tc",
                 gating="sigmoid" if c.get("scoring_func") == "sigmoid" else "softmax"),
    )


FAMILIES = {"llama": _llama_like, "mistral": _llama_like, "mixtral": _llama_like, "qwen2": _llama_like,
            "qwen3": _llama_like, "qwen2_moe": _llama_like, "qwen3_moe": _llama_like,
            "gemma2": _gemma2, "gpt2": _gpt2, "bert": _bert, "deepseek_v2": _deepseek_v3,
            "deepseek_v3": _deepseek_v3}
# Families refused on purpose, with what is missing (so the message can say what to do instead).
NOT_MODELLED = {"gemma3": "per-layer rotary bases and q/k norms of Gemma 3 are not modelled",
                "mamba": "a state-space model has no attention to build"}
_HOW_TO_DESCRIBE = ("describe the model as an accelsim ModelConfig YAML instead (the fields `accelsim workloads show "
                    "llama-2-7b` prints: hidden_size, num_layers, num_heads, num_kv_heads, ffn_size, vocab_size, "
                    "...) and pass its path")


def config_from_hf(data: dict[str, Any], name: str, source: str = "<config.json>") -> ModelConfig:
    """Translate a parsed ``config.json`` dict."""
    if not isinstance(data, dict):
        raise AccelsimError("expected a JSON object", source=source)
    model_type = data.get("model_type")
    if not isinstance(model_type, str) or model_type not in FAMILIES:  # a list or mapping is not a type name
        why = f" ({NOT_MODELLED[model_type]})" if isinstance(model_type, str) and model_type in NOT_MODELLED else ""
        raise AccelsimError(f"unsupported model_type {model_type!r}{why}; {_HOW_TO_DESCRIBE}", field="model_type",
                            allowed=sorted(FAMILIES), source=source)
    fields = FAMILIES[model_type](data, source)
    fields = {k: v for k, v in fields.items() if v is not None}
    fields.update(_dtypes(data, source))
    fields.update(name=name, description=f"imported from Hugging Face config.json ({model_type})",
                  sources=[f"Hugging Face config.json: {source}"])
    return config_from_dict(fields, source=source)


def config_from_hf_file(path: str | Path) -> ModelConfig:
    path = Path(path)
    data = read_yaml(path)  # the project's one file reader (JSON parsed as JSON)
    name = path.parent.name if path.name == "config.json" and path.parent.name else path.stem
    return config_from_hf(data, name=name.lower(), source=str(path))
