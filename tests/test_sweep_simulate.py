"""The ``simulate`` sweep evaluator: one evaluator for every hardware kind, columns from the Report core."""
from __future__ import annotations

import pytest

from accelsim.simulate import simulate
from accelsim.sweep import SweepSpec, load_results, run_sweep
from workloads.models import load_model
from workloads.transformer import build_model

KINDS = {
    "name": "every-kind",
    "parameters": {"hardware": ["tpu-v1", "edge-npu", "fusemax-cloud", "a100-80gb", "wse2"]},
    "workloads": [{"zoo": {"model": "gpt2", "phase": "decode", "batch": 1, "context": 128}},
                  {"gemm": [64, 256, 128]}],
    "evaluator": "simulate",
}


def test_one_evaluator_runs_every_kind_and_rows_equal_direct_calls(tmp_path):
    df = load_results(run_sweep(SweepSpec.from_dict(KINDS), tmp_path, executor="serial").out_dir)
    assert len(df) == 10 and (df["status"] == "ok").all(), df[["hardware", "status"]]
    model = build_model(load_model("gpt2"), "decode", batch=1, context=128)
    for _, row in df[df["workload"].str.contains("gpt2")].iterrows():
        ref = simulate(model, row["hardware"]).core
        assert row["total_s"] == pytest.approx(ref.total_s, rel=1e-12)
        assert row["macs"] == pytest.approx(ref.macs, rel=1e-12)
    assert df["total_s"].gt(0).all()
