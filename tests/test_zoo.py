"""Every zoo model's parameter count, derived from its built graph, within the cited figure's tolerance
(1% for rounded published counts; a checkpoint-size estimate states its own, see trxl/xlm YAML)."""
from __future__ import annotations

import pytest

from tests.cli_helper import cli_in_process
from workloads.config import zoo_names
from workloads.models import load_model
from workloads.transformer import parameter_count

REQUIRED = {"gpt2", "gpt2-medium", "gpt2-xl", "bert-base", "bert-large", "t5", "xlm", "trxl", "gpt-3", "llama-2-7b",
            "llama-2-13b", "llama-2-70b", "llama-3-8b", "llama-3-70b", "codellama-34b", "qwen2-72b", "mixtral-8x7b",
            "deepseek-v3"}


def test_zoo_has_every_required_model():
    assert REQUIRED <= set(zoo_names())


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_parameter_count_within_tolerance_of_published(name):
    cfg = load_model(name)
    assert cfg.sources and cfg.params_published
    assert any("param" in s.lower() for s in cfg.sources), "a source must cite the published parameter count"
    derived = parameter_count(cfg)
    assert abs(derived / cfg.params_published - 1) < cfg.params_published_rel_tol, (derived, cfg.params_published)


def test_workloads_cli_list_and_show():
    done = cli_in_process("workloads", "list")
    assert done.returncode == 0 and all(n in done.stdout for n in REQUIRED)
    done = cli_in_process("workloads", "show", "deepseek-v3")
    assert done.returncode == 0 and "kv_lora_rank: 512" in done.stdout and "params_derived" in done.stdout


def test_trxl_count_equals_reference_implementation_module_list():
    # Hand count from transformers' TransfoXLLMHeadModel for transfo-xl-wt103 (config: d 1024, 16 heads x 64,
    # d_inner 4096, 18 layers, cutoffs 20000/40000/200000, vocab 267735, div_val 4, tie_projs F,T,T,T)
    d, layers, bounds = 1024, 18, [0, 20000, 40000, 200000, 267735]
    widths = [d // 4 ** i for i in range(4)]
    rows = [bounds[i + 1] - bounds[i] for i in range(4)]
    emb = sum(r * w for r, w in zip(rows, widths)) + sum(d * w for w in widths)  # emb_layers + emb_projs
    softmax = 267735 + d * widths[0] + 3 * d + 3  # out_layers biases, untied out_projs[0], cluster weight/bias
    layer = (d * 3 * d + d * d + d * d  # qkv_net, o_net, r_net (no biases)
             + 2 * 16 * 64 + 2 * d  # r_w_bias, r_r_bias, attention layer norm
             + d * 4096 + 4096 + 4096 * d + d + 2 * d)  # FFN with biases, its layer norm
    assert parameter_count(load_model("trxl")) == emb + softmax + layers * layer == 285_205_322


def test_xlm_count_equals_reference_implementation_module_list():
    # Hand count from transformers' XLMWithLMHeadModel for xlm-mlm-en-2048 (d 2048, 12 layers, FFN 4d,
    # vocab 30145, 512 positions, one language so no language embedding, tied projection with bias)
    d, layers, vocab = 2048, 12, 30145
    layer = 4 * (d * d + d) + 2 * d + (d * 4 * d + 4 * d) + (4 * d * d + d) + 2 * d
    total = vocab * d + 512 * d + 2 * d + layers * layer + vocab
    assert parameter_count(load_model("xlm")) == total == 667_119_041
