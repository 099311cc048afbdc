"""Transformer graphs against closed-form counts written independently of the builder."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from accelsim.engines.roofline import einsum_flops, einsum_traffic
from accelsim.errors import AccelsimError
from accelsim.ir import OpKind, TensorRole
from workloads.config import ModelConfig, config_from_dict
from workloads.models import load_model
from workloads.transformer import build_block, build_model, parameter_count


def tiny(**over) -> ModelConfig:
    base = dict(name="tiny", hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2, ffn_size=128, ffn_gated=True,
                activation="silu", vocab_size=100, position="rope", norm="rmsnorm")
    return config_from_dict(base | over)


def by_kind(model, kind):
    return sum(einsum_flops(e) * n for e, n in model.einsums() if e.attrs.get("kind") == kind)


def role_bytes(model, role):
    total = 0.0
    for e, n in model.einsums():
        roles = {t.name: t.role for t in e.tensors}
        total += n * sum(b for t, b in einsum_traffic(e).items() if roles[t] is role)
    return total


@pytest.mark.parametrize("name", ["llama-2-7b", "llama-3-8b", "gpt2"])
def test_prefill_gemm_flops_are_two_per_weight_per_token(name):
    """Kaplan et al.'s 2N FLOPs per token for the weight GEMMs (N = parameters in linear layers)."""
    cfg = load_model(name)
    b, s = 2, 64
    m = build_model(cfg, "prefill", batch=b, seq=s)
    gemm_weights = 0
    gemm_flops = 0.0
    for part in m.parts:
        for e in part.graph.einsums:
            if e.attrs.get("kind") == "gemm" and part.name == "block":
                w = [o.tensor for o in e.inputs if o.tensor.role is TensorRole.WEIGHT]
                gemm_weights += w[0].elements * part.repeat
                gemm_flops += einsum_flops(e) * part.repeat
    assert gemm_flops == 2 * gemm_weights * b * s


@given(s=st.integers(1, 40), heads=st.sampled_from([1, 2, 4]), kv=st.sampled_from([1, 2]))
@settings(max_examples=25, deadline=None)
def test_causal_attention_flops_match_lower_triangle(s, heads, kv):
    """QK^T and PV FLOPs equal 2*head_dim per unmasked (query, key) pair, counted from np.tril."""
    if heads % kv:
        kv = 1
    cfg = tiny(num_heads=heads, num_kv_heads=kv, hidden_size=16 * heads)
    g = build_block(cfg, "prefill", batch=3, seq=s)
    pairs = np.tril(np.ones((s, s))).sum()
    qk = sum(einsum_flops(e) for e in g if e.attrs.get("kind") == "attention_qk")
    pv = sum(einsum_flops(e) for e in g if e.attrs.get("kind") == "attention_pv")
    assert qk == pytest.approx(3 * heads * pairs * 2 * cfg.head_size)
    assert pv == pytest.approx(qk)


def test_encoder_attention_is_not_masked():
    cfg = load_model("bert-base")
    g = build_block(cfg, "prefill", batch=1, seq=128)
    qk = sum(einsum_flops(e) for e in g if e.attrs.get("kind") == "attention_qk")
    assert qk == 2 * 12 * 128 * 128 * 64


@pytest.mark.parametrize("name, per_token_values, read_values, fused", [
    ("llama-2-7b", 2 * 32 * 128, 2 * 32 * 128, True),  # K and V, 32 heads x 128
    ("llama-2-70b", 2 * 8 * 128, 2 * 8 * 128, True),  # GQA: 8 KV heads
    # MLA caches the 512-wide latent (kv_lora_rank, DeepSeek-V3 config.json) + 64-wide rope key
    # (qk_rope_head_dim); a fused (FlashMLA-style) kernel reads each cached row once, ...
    ("deepseek-v3", 512 + 64, 512 + 64, True),
    # ... while unfused absorbed decode reads the latent twice (keys in QK^T, values in PV)
    ("deepseek-v3", 512 + 64, 2 * 512 + 64, False),
])
def test_decode_kv_cache_read_is_context_plus_one_rows(name, per_token_values, read_values, fused):
    cfg = load_model(name)
    b, ctx = 3, 1000
    m = build_model(cfg, "decode", batch=b, context=ctx, fused_attention=fused)
    # layers x rows x values per row x bytes
    expected_read = cfg.num_layers * b * (ctx + 1) * read_values * cfg.kv_bytes
    expected_write = cfg.num_layers * b * 1 * per_token_values * cfg.kv_bytes
    assert role_bytes(m, TensorRole.KV_CACHE) == pytest.approx(expected_read + expected_write)


def test_mla_decode_absorbed_equals_prefill_weights():
    cfg = load_model("deepseek-v3")
    pre = build_model(cfg, "prefill", batch=1, seq=4)
    dec = build_model(cfg, "decode", batch=1, context=4)
    assert pre.weight_elements() == dec.weight_elements()


@pytest.mark.parametrize("tp", [2, 4, 8])
def test_tensor_parallel_shards_gemm_flops_and_adds_allreduce(tp):
    cfg = load_model("llama-2-70b")
    one = build_model(cfg, "prefill", batch=1, seq=32)
    many = build_model(cfg, "prefill", batch=1, seq=32, tp=tp)
    assert by_kind(many, "gemm") * tp == pytest.approx(by_kind(one, "gemm"))
    ar = [(e, n) for e, n in many.einsums() if e.op is OpKind.ALLREDUCE]
    assert sum(n for _, n in ar) == 2 * cfg.num_layers
    size = 1 * 32 * cfg.hidden_size * cfg.dtype_bytes
    for e, _ in ar:
        assert e.attrs["participants"] == tp
        assert e.attrs["collective_bytes"] == pytest.approx(2 * (tp - 1) / tp * size)


def test_expand_gives_flat_graph_with_same_counts():
    cfg = tiny()
    m = build_model(cfg, "decode", batch=2, context=7)
    flat = m.expand()
    assert len(flat) == sum(len(p.graph) * p.repeat for p in m.parts)
    assert sum(einsum_flops(e) for e in flat) == pytest.approx(sum(einsum_flops(e) * n for e, n in m.einsums()))


def test_encoder_decoder_decode_reads_cross_cache():
    cfg = load_model("t5")
    m = build_model(cfg, "decode", batch=1, seq=100, context=10)
    per_layer = 2 * 100 * 768 + 2 * 11 * 768 + 2 * 1 * 768  # cross K/V + self K/V read + self K/V write
    assert role_bytes(m, TensorRole.KV_CACHE) == pytest.approx(12 * per_layer * 2)


@pytest.mark.parametrize("fields, field", [
    (dict(hidden_size=65), "num_heads"),
    (dict(num_kv_heads=3), "num_kv_heads"),
    (dict(moe=dict(num_experts=4, top_k=5, expert_ffn_size=32)), "moe"),
])
def test_inconsistent_config_names_the_field(fields, field):
    with pytest.raises(AccelsimError) as err:
        tiny(**fields)
    assert field in str(err.value)


def test_zero_batch_and_bad_phase_are_errors():
    with pytest.raises(AccelsimError, match="batch"):
        build_model(tiny(), "decode", batch=0)
    with pytest.raises(AccelsimError, match="phase"):
        build_model(tiny(), "generate")
    with pytest.raises(AccelsimError, match="tp"):
        build_model(tiny(), "decode", tp=3)


@pytest.mark.parametrize("name, phase", [("llama-2-7b", "decode"), ("mixtral-8x7b", "prefill"), ("t5", "prefill"),
                                         ("deepseek-v3", "decode"), ("bert-base", "prefill")])
def test_repeat_multiplier_equals_expanded_graph(name, phase):
    """Costing one block x layers must equal costing the flat, connected graph of every layer."""
    from accelsim.engines.roofline import roofline

    m = build_model(load_model(name), phase, batch=2, seq=16, context=32)
    flat = m.expand()
    assert len(flat.outputs) >= 1
    a, b = roofline(m, "a100-80gb").totals, roofline(flat, "a100-80gb").totals
    assert a["flops"] == pytest.approx(b["flops"]) and a["bytes"] == pytest.approx(b["bytes"])
    assert a["total_s"] == pytest.approx(b["total_s"])


def test_mqa_reads_one_kv_head_and_replicates_under_tp():
    cfg = tiny(num_heads=8, num_kv_heads=1, hidden_size=64)
    assert cfg.attention_kind == "mqa"
    for tp in (1, 2, 4):
        m = build_model(cfg, "decode", batch=1, context=99, tp=tp)
        # each device keeps the single KV head (replicated): 2 x layers x 100 rows x head_dim x bytes
        assert role_bytes(m, TensorRole.KV_CACHE) == pytest.approx(2 * 2 * (100 + 1) * 8 * 2)


def test_moe_graph_honours_given_routing_and_capacity():
    from workloads.moe import route

    cfg = load_model("mixtral-8x7b")
    # the most skewed top-2 routing: every token picks the same two experts (a token's k experts are
    # distinct, so one expert can receive at most 16 of the 32 slots)
    skew = route(16, 8, 2, histogram=[16, 16, 0, 0, 0, 0, 0, 0])
    expert_w = 8 * 3 * 4096 * 14336 * 2  # one layer's experts in bytes
    m = build_model(cfg, "decode", batch=16, context=8, routing=skew)
    read = sum(n * b for e, n in m.einsums() if e.attrs.get("kind") == "moe_expert"
               for t, b in einsum_traffic(e).items() if t.startswith("moe.w_"))
    assert read == pytest.approx(32 * expert_w * 2 / 8)  # two experts per layer
    capped = route(16, 8, 2, histogram=[16, 16, 0, 0, 0, 0, 0, 0], capacity_factor=1.0)
    assert capped.processed == 8  # capacity ceil(1.0 * 16 * 2 / 8) = 4 per expert, the rest dropped
    m = build_model(cfg, "decode", batch=16, context=8, routing=capped)
    flops = sum(einsum_flops(e) * n for e, n in m.einsums() if e.attrs.get("kind") == "moe_expert")
    assert flops == pytest.approx(32 * 3 * 2 * 8 * 4096 * 14336)


def test_t5_base_parameters_match_transformers_exactly():
    # transformers T5ForConditionalGeneration('google-t5/t5-base').num_parameters() = 222,903,552
    # (printed in many public training logs); this includes both stacks' final norms and the two
    # 32-bucket x 12-head relative position-bias tables
    assert parameter_count(load_model("t5")) == 222_903_552


def test_t5_prefill_writes_self_and_cross_kv_cache():
    cfg = load_model("t5")  # 12 decoder layers, d_model 768 = 12 heads x d_kv 64, bf16/fp16 (2 bytes)
    b, s = 2, 100
    m = build_model(cfg, "prefill", batch=b, seq=s)
    per_layer = 2 * b * s * 768 + 2 * b * s * 768  # self-attention K/V + cross-attention K/V of the encoder output
    assert role_bytes(m, TensorRole.KV_CACHE) == pytest.approx(12 * per_layer * 2)
