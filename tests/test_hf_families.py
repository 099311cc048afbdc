"""Issue 14 section 5: more Hugging Face families (qwen3, qwen3_moe, qwen2_moe, deepseek_v2, gemma2) and the
refusal message for the rest.

Each config.json below carries the architecture fields of the named checkpoint; the derived
parameter count must equal the model card's published figure to the precision it is published
(half a unit of its last digit), which is independent of this code.
"""
from __future__ import annotations

import pytest

from accelsim.engines.roofline import einsum_traffic
from accelsim.errors import AccelsimError
from workloads.importers.hf_config import config_from_hf
from workloads.transformer import build_model, parameter_count

QWEN3_8B = dict(model_type="qwen3", hidden_size=4096, num_hidden_layers=36, num_attention_heads=32,
                num_key_value_heads=8, head_dim=128, intermediate_size=12288, vocab_size=151936,
                tie_word_embeddings=False, torch_dtype="bfloat16", max_position_embeddings=40960,
                use_sliding_window=False, sliding_window=None, max_window_layers=36)
QWEN3_30B_A3B = dict(model_type="qwen3_moe", hidden_size=2048, num_hidden_layers=48, num_attention_heads=32,
                     num_key_value_heads=4, head_dim=128, intermediate_size=6144, moe_intermediate_size=768,
                     num_experts=128, num_experts_per_tok=8, decoder_sparse_step=1, mlp_only_layers=[],
                     vocab_size=151936, tie_word_embeddings=False, torch_dtype="bfloat16")
QWEN15_MOE_A27B = dict(model_type="qwen2_moe", hidden_size=2048, num_hidden_layers=24, num_attention_heads=16,
                       num_key_value_heads=16, intermediate_size=5632, moe_intermediate_size=1408,
                       shared_expert_intermediate_size=5632, num_experts=60, num_experts_per_tok=4,
                       decoder_sparse_step=1, mlp_only_layers=[], vocab_size=151936, tie_word_embeddings=False,
                       torch_dtype="bfloat16")
DEEPSEEK_V2_LITE = dict(model_type="deepseek_v2", hidden_size=2048, num_hidden_layers=27, num_attention_heads=16,
                        num_key_value_heads=16, intermediate_size=10944, moe_intermediate_size=1408,
                        n_routed_experts=64, n_shared_experts=2, num_experts_per_tok=6, first_k_dense_replace=1,
                        kv_lora_rank=512, q_lora_rank=None, qk_nope_head_dim=128, qk_rope_head_dim=64,
                        v_head_dim=128, vocab_size=102400, tie_word_embeddings=False, torch_dtype="bfloat16",
                        topk_method="greedy", scoring_func="softmax")
DEEPSEEK_V2 = DEEPSEEK_V2_LITE | dict(hidden_size=5120, num_hidden_layers=60, num_attention_heads=128,
                                      num_key_value_heads=128, intermediate_size=12288, moe_intermediate_size=1536,
                                      n_routed_experts=160, q_lora_rank=1536, topk_method="group_limited_greedy")


@pytest.mark.parametrize("hf, published, half_unit", [
    (QWEN3_8B, 8.2e9, 0.05e9),          # Qwen/Qwen3-8B model card: "Number of Parameters: 8.2B"
    (QWEN3_30B_A3B, 30.5e9, 0.05e9),    # Qwen/Qwen3-30B-A3B card: "30.5B in total and 3.3B activated"
    (QWEN15_MOE_A27B, 14.3e9, 0.05e9),  # Qwen blog "Qwen1.5-MoE" (Mar 2024): 14.3B parameters in total
    (DEEPSEEK_V2_LITE, 15.7e9, 0.05e9),  # DeepSeek-V2 paper (arXiv 2405.04434) Sec. 1: Lite has 15.7B
    (DEEPSEEK_V2, 236e9, 0.5e9),        # same paper, abstract: 236B total parameters
])
def test_imported_families_match_published_counts(hf, published, half_unit):
    cfg = config_from_hf(hf, "x")
    assert abs(parameter_count(cfg) - published) <= half_unit
    for phase in ("prefill", "decode"):
        build_model(cfg, phase, seq=32, context=64)


def test_qwen3_non_embedding_count_and_qk_norm():
    """Qwen3-8B card: 6.95B non-embedding parameters; q_norm and k_norm add 2 x head_dim per layer."""
    cfg = config_from_hf(QWEN3_8B, "x")
    embeddings = 2 * cfg.vocab_size * cfg.hidden_size  # untied input table and LM head
    assert abs(parameter_count(cfg) - embeddings - 6.95e9) <= 0.005e9
    plain = cfg.model_copy(update={"qk_norm": False})
    assert parameter_count(cfg) - parameter_count(plain) == cfg.num_layers * 2 * cfg.head_size
    ops = {e.name for e in build_model(cfg, "decode", context=8).expand().einsums}
    assert any(n.endswith("attn.q_norm") for n in ops) and any(n.endswith("attn.k_norm") for n in ops)


def test_qwen2_moe_shared_expert_gate_is_costed():
    cfg = config_from_hf(QWEN15_MOE_A27B, "x")
    assert cfg.moe.shared_expert_gate and cfg.qkv_bias
    ungated = cfg.model_copy(update={"moe": cfg.moe.model_copy(update={"shared_expert_gate": False})})
    assert parameter_count(cfg) - parameter_count(ungated) == cfg.num_layers * cfg.hidden_size


def test_qwen_moe_dense_layer_patterns():
    assert config_from_hf(QWEN3_30B_A3B | {"mlp_only_layers": [0, 1]}, "x").moe.first_dense_layers == 2
    for bad in ({"mlp_only_layers": [3]}, {"decoder_sparse_step": 2}):
        with pytest.raises(AccelsimError, match="mlp_only_layers"):
            config_from_hf(QWEN3_30B_A3B | bad, "x")


@pytest.mark.parametrize("model_type", ["gemma3", "mamba", "no_such_type"])
def test_refused_types_say_how_to_describe_the_model(model_type):
    with pytest.raises(AccelsimError) as info:
        config_from_hf({"model_type": model_type}, "x")
    text = str(info.value)
    assert "ModelConfig YAML" in text and "qwen3_moe" in text and "gemma2" in text
    if model_type == "gemma3":
        assert "not modelled" in text  # says what is missing


# Gemma 2 (Gemma Team, arXiv 2408.00118, Table 1; google/gemma-2-*b config.json): local layers with a
# 4096-token window alternate with global ones; soft-capping 50 (attention) and 30 (logits).
GEMMA2_2B = dict(model_type="gemma2", hidden_size=2304, num_hidden_layers=26, num_attention_heads=8,
                 num_key_value_heads=4, head_dim=256, intermediate_size=9216, vocab_size=256000,
                 max_position_embeddings=8192, sliding_window=4096, attn_logit_softcapping=50.0,
                 final_logit_softcapping=30.0, torch_dtype="float32", query_pre_attn_scalar=256)
GEMMA2_9B = GEMMA2_2B | dict(hidden_size=3584, num_hidden_layers=42, num_attention_heads=16, num_key_value_heads=8,
                             intermediate_size=14336)
GEMMA2_27B = GEMMA2_2B | dict(hidden_size=4608, num_hidden_layers=46, num_attention_heads=32,
                              num_key_value_heads=16, head_dim=128, intermediate_size=36864)


@pytest.mark.parametrize("hf, published, half_unit", [
    (GEMMA2_2B, 2.61e9, 0.005e9),   # Hugging Face model page google/gemma-2-2b: "2.61B params"
    (GEMMA2_9B, 9.24e9, 0.005e9),   # google/gemma-2-9b: "9.24B params"
    (GEMMA2_27B, 27.2e9, 0.05e9),   # google/gemma-2-27b: "27.2B params"
])
def test_gemma2_counts(hf, published, half_unit):
    assert abs(parameter_count(config_from_hf(hf, "x")) - published) <= half_unit


def test_gemma2_alternates_windowed_and_global_layers():
    cfg = config_from_hf(GEMMA2_2B, "x")
    assert (cfg.sliding_window, cfg.full_attention_every, cfg.dtype_bytes) == (4096, 2, 4)
    g = build_model(cfg, "decode", context=8000)
    kv = sum(n * b for e, n in g.einsums() if e.attrs.get("kind") in ("attention_qk", "attention_pv")
             for t, b in einsum_traffic(e).items()
             if t.endswith("_cache"))
    per_row = 2 * cfg.kv_heads * cfg.head_size * cfg.kv_bytes  # K and V of one position in one layer
    assert kv == 13 * 4096 * per_row + 13 * 8001 * per_row  # 13 local layers read the window, 13 global all
    kinds = [(e.attrs.get("kind"), n) for e, n in g.einsums()]
    assert sum(n for k, n in kinds if k == "attention_softcap") == 26 and ("softcap", 1) in kinds
    assert sum(n for e, n in g.einsums() if e.name.endswith(("post_attn_norm", "post_ffn_norm"))) == 52
    from workloads.transformer import build_block

    assert build_block(cfg, "decode", context=8000, layer=1).einsums != build_block(cfg, "decode", context=8000,
                                                                                     layer=0).einsums
