"""Every numeric field of a hardware spec is read by something: perturb it, and a result changes.

Why: a field that validates and is then ignored gives a silently wrong number (the review found
``dram.read_energy_pj_per_byte`` on a spatial preset changing nothing). Each kind names the
workload that exercises every unit it has; a field that only describes (an area) must change a
descriptive output, which the kind's ``outputs`` function includes.
"""
from __future__ import annotations

from typing import Any

import pytest

from accelsim.hardware import load_hardware
from accelsim.simulate import simulate
from workloads.models import load_model
from workloads.transformer import build_model


def numeric_leaves(data: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(data, dict):
        return [leaf for k, v in data.items() for leaf in numeric_leaves(v, (*path, k))]
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        return [path]
    return []


def perturbed(data: dict, path: tuple, up: bool) -> dict:
    """The spec with one number moved up (x1.7, +1 for integers) or down (to a thousandth, at least 1)."""
    import copy

    out = copy.deepcopy(data)
    node = out
    for key in path[:-1]:
        node = node[key]
    value = node[path[-1]]
    if isinstance(value, int):
        node[path[-1]] = value * 2 + 1 if up else max(1, value // 1000)
    else:
        node[path[-1]] = value * 1.7 + 0.3 if up else value / 1000
    return out


def outputs(report) -> dict:
    core = report.core
    scalars = {k: v for k, v in report.totals.items() if isinstance(v, (int, float, str, bool))}
    rows = [(r["name"], r.get("total_s"), r.get("unit"), r.get("unit_cycles")) for r in report.layers]
    return {**scalars, **core.flat(), "rows": rows}


def kind_outputs(workload, hw) -> dict:
    """What the kind's engines report: the whole-model Report, and for a systolic chip also the
    SCALE-Sim-view layer path (``simulate_layers``, whose stall model reads every SRAM size)."""
    got = outputs(simulate(workload, hw))
    if hw.kind == "systolic":
        from accelsim.engines.systolic import simulate_graph
        from workloads.examples import default_example

        layers = simulate_graph(default_example(), hw)
        got["layers"] = (layers.totals, layers.meta.get("tile_exceeds_buffer"))
    return got


def union_workload(tp: int):
    """Every op kind a model has: a dense prefill (tp > 1 uses the links), an MoE decode block
    (top-k max, combine), and the 3-pass softmax cascade (max, sub, exp, div)."""
    from accelsim.ir import ModelGraph, Part
    from accelsim.ir.views import AttentionShape
    from workloads.attention import three_pass

    llama = load_model("llama-2-7b")
    dense = build_model(llama, "prefill", batch=1, seq=1024, tp=tp)
    int8 = build_model(type(llama).model_validate({**llama.model_dump(), "dtype_bytes": 1}), "decode", batch=1,
                       context=256, tp=tp)
    moe = build_model(load_model("mixtral-8x7b"), "decode", batch=8, context=256, tp=tp)
    cascade = three_pass(AttentionShape(b=1, h=4, m=512, p=512, e=64, f=64))
    blocks = [p for m in (moe, int8) for p in m.parts if p.repeat > 1]
    return ModelGraph("union", [*dense.parts, *[Part(f"x{i}", p.graph, 1) for i, p in enumerate(blocks)],
                                Part("cascade", cascade), Part("sub", _subtract())])


def _subtract():
    """A subtraction (no transformer builder emits one; ONNX Sub does)."""
    from accelsim.ir import Einsum, Graph, Operand, OpKind, Tensor, TensorRole

    a, b = (Tensor(n, ("i",), (4096,), 2, TensorRole.INPUT) for n in ("a", "b"))
    y = Tensor("y", ("i",), (4096,), 2, TensorRole.OUTPUT)
    return Graph("sub", [Einsum("sub", Operand(y, ("i",)), (Operand(a, ("i",)), Operand(b, ("i",))), {"i": 4096},
                                OpKind.SUB)])


# Fields no workload of this kind can read, with the reason (a datatype the IR cannot express).
DESCRIPTIVE = {
    "gpu": {"peak_flops_per_s.tf32": "models carry byte sizes; tf32 is never preferred for any size",
            "peak_flops_per_s.bf16": "2-byte MACs use fp16 where the device has it",
            "peak_flops_per_s.fp32": "no zoo model runs 4-byte MACs in these checks"},
}


# presets whose kind has links run the tensor-parallel variant so the link fields are read; the
# spatial kind's fields are checked against its attention engine in tests/test_spatial_spec_honesty.py
CASES = {"tpu-v4": 2, "tpu-v1": 1, "edge-npu": 1, "a100-80gb": 2}


@pytest.mark.parametrize("preset", sorted(CASES))
def test_every_numeric_field_changes_a_result(preset):
    from pydantic import ValidationError

    from accelsim.errors import AccelsimError

    hw = load_hardware(preset)
    workload = union_workload(CASES[preset])
    base = kind_outputs(workload, hw)
    data = hw.model_dump()
    ignored = []
    for path in numeric_leaves(data):
        name = ".".join(map(str, path))
        if name in DESCRIPTIVE.get(hw.kind, {}):
            continue
        changed = False
        for up in (True, False):
            try:
                spec = type(hw).model_validate(perturbed(data, path, up))
                changed = kind_outputs(workload, spec) != base
            except (ValidationError, AccelsimError):  # rejected: validation reads the field
                changed = True
            if changed:
                break
        if not changed:
            ignored.append(name)
    assert not ignored, f"{preset}: fields that change nothing: {ignored}"
