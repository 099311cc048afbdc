"""Issue 14 section 4 items 5-8: sliding windows, trained context lengths, assumed element sizes,
and lengths a phase does not use.

The checks are against closed forms (KV bytes = layers x 2 x rows x kv_heads x head_dim x bytes)
and a brute-force count of the attention mask, not against numbers this code printed.
"""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.engines.roofline import einsum_flops, einsum_traffic
from accelsim.errors import AccelsimError
from tests.cli_helper import cli_in_process
from workloads.config import config_from_dict
from workloads.context import causal_pairs
from workloads.models import load_model
from workloads.transformer import build_model, parameter_count


def _kv_read_bytes(graph) -> float:
    return sum(n * b for e, n in graph.einsums() if e.attrs.get("kind") in ("attention_qk", "attention_pv")
               for t, b in einsum_traffic(e).items() if t.endswith("_cache"))


def _kind_total(graph, kind: str, what=einsum_flops) -> float:
    return sum(n * what(e) for e, n in graph.einsums() if e.attrs.get("kind") == kind)


def _without_window(cfg):
    return config_from_dict(dict(cfg.model_dump(), name=cfg.name + "-full", sliding_window=None))


MISTRAL = load_model("mistral-7b")
W = MISTRAL.sliding_window


# --- 5. sliding window -------------------------------------------------------------------------
def test_decode_reads_only_the_window():
    """Mistral 7B at context 16384: K and V of the last W = 4096 positions per layer, not 16385."""
    closed = MISTRAL.num_layers * 2 * W * MISTRAL.kv_heads * MISTRAL.head_size * MISTRAL.kv_bytes
    long = build_model(MISTRAL, "decode", context=16384)
    assert _kv_read_bytes(long) == closed
    assert _kv_read_bytes(build_model(MISTRAL, "decode", context=W - 1)) == closed  # W rows exactly
    full = build_model(_without_window(MISTRAL), "decode", context=16384)
    assert _kv_read_bytes(full) == closed * (16384 + 1) / W  # what was reported before: ~4x too much


def test_resident_kv_cache_is_capped_at_the_window():
    from accelsim.engines.roofline import roofline
    from accelsim.hardware import load_hardware

    hw = load_hardware("a100-80gb")
    at = {c: roofline(build_model(MISTRAL, "decode", context=c), hw).totals["resident_bytes"] for c in (W, 3 * W)}
    assert at[W] == at[3 * W]


def test_prefill_writes_only_the_last_window_rows():
    cfg = MISTRAL
    g = build_model(cfg, "prefill", seq=3 * W)
    written = sum(n * e.output.tensor.bytes for e, n in g.einsums() if e.attrs.get("kind") == "kv_write")
    assert written == cfg.num_layers * 2 * W * cfg.kv_heads * cfg.head_size * cfg.kv_bytes


def _mask_pairs(s: int, w: int | None) -> int:
    """Brute force over transformers' mask: key j visible to query i when j <= i and (no window or j > i - w)."""
    return sum(1 for i in range(s) for j in range(s) if j <= i and (w is None or j > i - w))


@settings(max_examples=25, deadline=None)
@given(s=st.integers(1, 40), w=st.one_of(st.none(), st.integers(1, 40)))
def test_banded_pair_count_matches_the_mask(s, w):
    assert causal_pairs(s, w) == _mask_pairs(s, w)


@settings(max_examples=8, deadline=None)
@given(s=st.integers(1, 24), w=st.integers(1, 24))
def test_prefill_attention_flops_follow_the_banded_mask(s, w):
    """QK^T FLOPs = 2 x batch x heads x head_dim x (visible pairs), for a small windowed model."""
    cfg = config_from_dict(dict(name="tiny-swa", hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2,
                                ffn_size=64, ffn_gated=True, activation="silu", vocab_size=50, sliding_window=w))
    g = build_model(cfg, "prefill", batch=3, seq=s)
    expected = cfg.num_layers * 2 * 3 * cfg.num_heads * cfg.head_size * _mask_pairs(s, w)
    assert _kind_total(g, "attention_qk") == pytest.approx(expected, rel=1e-12)
    assert _kind_total(g, "attention_pv") == pytest.approx(expected, rel=1e-12)


def test_window_changes_nothing_when_the_context_fits():
    full = _without_window(MISTRAL)
    for phase, kw in (("decode", dict(context=W - 1)), ("prefill", dict(seq=W))):
        a, b = build_model(MISTRAL, phase, **kw), build_model(full, phase, **kw)
        assert [(e.name, einsum_flops(e), einsum_traffic(e)) for e, _ in a.einsums()] == \
               [(e.name, einsum_flops(e), einsum_traffic(e)) for e, _ in b.einsums()]
    assert parameter_count(MISTRAL) == parameter_count(full)


def _hf(tmp_path, **fields):
    base = dict(model_type="mistral", hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
                num_key_value_heads=2, intermediate_size=128, vocab_size=100, torch_dtype="bfloat16",
                max_position_embeddings=256)
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**base, **fields}))
    return load_model(str(path))


def test_hf_importer_reads_the_window_and_the_trained_length(tmp_path):
    cfg = _hf(tmp_path, sliding_window=32)
    assert (cfg.sliding_window, cfg.max_position_embeddings) == (32, 256)
    assert _hf(tmp_path, sliding_window=None).sliding_window is None
    qwen = dict(model_type="qwen2", sliding_window=32)
    assert _hf(tmp_path, **qwen, use_sliding_window=False).sliding_window is None
    assert _hf(tmp_path, **qwen, use_sliding_window=True, max_window_layers=4).sliding_window is None
    assert _hf(tmp_path, **qwen, use_sliding_window=True, max_window_layers=0).sliding_window == 32
    with pytest.raises(AccelsimError, match="max_window_layers"):  # 2 full + 2 windowed layers: not modelled
        _hf(tmp_path, **qwen, use_sliding_window=True, max_window_layers=2)


# --- 6. trained context length -------------------------------------------------------------------
def test_rotary_models_refuse_contexts_past_max_position_embeddings():
    cfg = load_model("llama-2-7b")
    assert cfg.max_position_embeddings == 4096
    build_model(cfg, "decode", context=4095)  # the new token sits at position 4095, the last trained one
    build_model(cfg, "prefill", seq=4096)
    for phase, kw, field in (("decode", dict(context=4096), "context"), ("decode", dict(context=1_000_000), "context"),
                             ("prefill", dict(seq=4097), "seq")):
        with pytest.raises(AccelsimError, match="4096") as info:
            build_model(cfg, phase, **kw)
        assert info.value.field == field and "--allow-long-context" in str(info.value)
    g = build_model(cfg, "decode", context=1_000_000, allow_long_context=True)
    assert g.meta["allow_long_context"] is True


def test_every_rotary_zoo_model_states_its_trained_length():
    from workloads.config import zoo_names

    for name in zoo_names():
        cfg = load_model(name)
        if cfg.position == "rope":
            assert cfg.max_position_embeddings, name
            assert any("max_position_embeddings" in s or "context" in s for s in cfg.sources), name


def test_cli_refuses_then_records_the_extension():
    args = ("roofline", "--model", "llama-2-7b", "--device", "a100-80gb", "--context", "1000000", "--json")
    done = cli_in_process(*args)
    assert done.returncode == 2 and "4096" in done.stderr and done.stdout == ""
    done = cli_in_process(*args, "--allow-long-context")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["allow_long_context"] is True and doc["context"] == 1_000_000 and doc["max_position_embeddings"] == 4096
    done = cli_in_process("simulate", "--model", "llama-2-7b", "--hardware", "a100-80gb", "--context", "5000", "--json",
                          "--allow-long-context")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["allow_long_context"] is True


# --- 7. assumed element size ----------------------------------------------------------------------
def test_missing_torch_dtype_is_recorded_as_assumed(tmp_path):
    assumed = _hf(tmp_path, torch_dtype=None)
    assert (assumed.dtype_bytes, assumed.dtype_source) == (2, "assumed")
    stated = _hf(tmp_path, torch_dtype="float32")
    assert (stated.dtype_bytes, stated.dtype_source) == (4, "stated")
    _hf(tmp_path, torch_dtype=None)
    path = str(tmp_path / "config.json")
    shown = cli_in_process("workloads", "show", path, "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["dtype_source"] == "assumed"
    done = cli_in_process("roofline", "--model", path, "--device", "a100-80gb", "--json", "--context", "16")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["dtype_source"] == "assumed"
    text = cli_in_process("roofline", "--model", path, "--device", "a100-80gb", "--context", "16").stdout
    assert "assumed 2 bytes" in text


# --- 8. lengths a phase does not use --------------------------------------------------------------
@pytest.mark.parametrize("command", [("roofline", "--device", "a100-80gb"), ("simulate", "--hardware", "a100-80gb")])
def test_a_length_the_phase_ignores_is_refused(command):
    cmd, *hw = command
    done = cli_in_process(cmd, "--model", "llama-2-7b", *hw, "--phase", "decode", "--seq", "8192")
    assert done.returncode == 2 and "--seq" in done.stderr and "--context" in done.stderr
    done = cli_in_process(cmd, "--model", "llama-2-7b", *hw, "--phase", "prefill", "--context", "100")
    assert done.returncode == 2 and "--context" in done.stderr


def test_encoder_decoder_decode_uses_seq_as_the_encoder_length():
    runs = {}
    for seq in ("64", "512"):
        done = cli_in_process("roofline", "--model", "t5", "--device", "a100-80gb", "--phase", "decode", "--seq", seq,
                              "--json")
        assert done.returncode == 0, done.stderr
        runs[seq] = json.loads(done.stdout)
    assert runs["64"]["seq"] == 64 and runs["512"]["bytes"] > runs["64"]["bytes"]  # cross-attention K/V read


def test_a_yaml_without_dtype_bytes_is_assumed_and_says_so(tmp_path):
    import yaml

    data = load_model("llama-2-7b").model_dump(mode="json")
    assert data.pop("dtype_source") == "stated"  # the zoo entry cites torch_dtype float16
    data.pop("dtype_bytes")
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(data))
    assert load_model(str(path)).dtype_source == "assumed"
    path.write_text(yaml.safe_dump(dict(data, dtype_bytes=4)))
    assert (load_model(str(path)).dtype_bytes, load_model(str(path)).dtype_source) == (4, "stated")
    assert load_model("gpt2").dtype_source == "assumed"  # gpt2's config.json gives no torch_dtype
