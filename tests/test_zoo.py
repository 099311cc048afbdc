"""Every zoo model's parameter count, derived from its built graph, within 1% of the cited figure."""
from __future__ import annotations

import pytest

from tests.cli_helper import cli_in_process
from workloads.config import load_model, zoo_names
from workloads.transformer import parameter_count

REQUIRED = {"gpt2", "gpt2-medium", "gpt2-xl", "bert-base", "bert-large", "t5", "xlm", "trxl", "gpt-3", "llama-2-7b",
            "llama-2-13b", "llama-2-70b", "llama-3-8b", "llama-3-70b", "codellama-34b", "qwen2-72b", "mixtral-8x7b",
            "deepseek-v3"}


def test_zoo_has_every_required_model():
    assert REQUIRED <= set(zoo_names())


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_parameter_count_within_one_percent_of_published(name):
    cfg = load_model(name)
    assert cfg.sources and cfg.params_published
    assert any("param" in s.lower() for s in cfg.sources), "a source must cite the published parameter count"
    derived = parameter_count(cfg)
    assert abs(derived / cfg.params_published - 1) < 0.01, (derived, cfg.params_published)


def test_workloads_cli_list_and_show():
    done = cli_in_process("workloads", "list")
    assert done.returncode == 0 and all(n in done.stdout for n in REQUIRED)
    done = cli_in_process("workloads", "show", "deepseek-v3")
    assert done.returncode == 0 and "kv_lora_rank: 512" in done.stdout and "params_derived" in done.stdout
