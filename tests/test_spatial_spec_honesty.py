"""Every number in a spatial preset changes what the attention engine reports, or the spec refuses
another value: no field that validates and changes nothing."""
from dataclasses import replace

import pytest

from accelsim.engines.spatial import plan_report
from accelsim.errors import AccelsimError
from accelsim.hardware import load_hardware
from accelsim.hardware.base import spec_from_dict
from accelsim.hardware.spatial import SpatialAccelerator
from mappers.fusemax import one_pass_table, published_plan
from workloads.attention import AttentionShape

S = AttentionShape(1, 2, 1024, 512, 64, 64)
DESIGNS = {"fusemax-cloud": ("fusemax", "arch"), "flat-cloud": ("flat", "unfused", "cascade")}
# Read by the whole-model engine (engines/accelerator, sub Einsums of any model), not by the
# attention cascades: on a chip whose exp carries its own subtraction no cascade Einsum subtracts.
WHOLE_MODEL_ONLY = {("fusemax-cloud", "array_2d.ops.sub.cycles"), ("fusemax-cloud", "array_2d.ops.sub.actions.add"),
                    ("fusemax-cloud", "array_1d.ops.sub.cycles"), ("fusemax-cloud", "array_1d.ops.sub.actions.add")}


def leaves(d, prefix=""):
    for k, v in d.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from leaves(v, path + ".")
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            yield path


def perturbed(data: dict, path: str) -> dict:
    out = {**data}
    node, keys = out, path.split(".")
    for k in keys[:-1]:
        node[k] = dict(node[k])
        node = node[k]
    v = node[keys[-1]]
    node[keys[-1]] = (v + 1 if v < 4 else v * 2) if isinstance(v, int) else (v * 0.5 if v else 1.0)
    return out


def probes(hw: SpatialAccelerator, preset: str, path: str):
    """The published designs; for an op entry also a sequential plan (one Einsum per stage, so any
    binding is legal) putting each Einsum of that op on that array."""
    plans = [published_plan(d, hw, S) for d in DESIGNS[preset]]
    parts = path.split(".")
    if len(parts) > 2 and parts[1] == "ops":
        unit = "2d" if parts[0] == "array_2d" else "1d"
        base = published_plan(DESIGNS[preset][-1] if preset == "flat-cloud" else "fusemax", hw, S)
        tb = one_pass_table(S, base.m0)
        stages = tuple((e,) for e in tb.einsums)
        for e, ce in tb.einsums.items():
            if ce.op == parts[2] or (parts[2] == "sub" and ce.op == "exp"):
                plans.append(replace(base, binding={**base.binding, e: unit}, stages=stages, deferred=frozenset()))
    return plans


def outputs(hw: SpatialAccelerator, plans) -> list:
    out = []
    for plan in plans:
        try:
            out.append(tuple(sorted(plan_report(plan, hw, S, "probe").totals.items())))
        except AccelsimError as why:  # e.g. a probe binding an op the array lacks
            out.append(str(why))
    return out


@pytest.mark.parametrize("preset", sorted(DESIGNS))
def test_every_numeric_field_changes_the_attention_report(preset):
    hw = load_hardware(preset)
    data = hw.model_dump(mode="json")
    silent = []
    for path in leaves(data):
        try:
            other = spec_from_dict(perturbed(data, path))
        except (AccelsimError, ValueError):
            continue  # refused: another value is not accepted, so it cannot be silently ignored
        plans = probes(hw, preset, path)
        if outputs(hw, plans) == outputs(other, plans):
            silent.append(path)
    assert {(preset, p) for p in silent} == {x for x in WHOLE_MODEL_ONLY if x[0] == preset}, silent


def test_memory_level_energies_and_unfired_action_energies_are_refused():
    data = load_hardware("fusemax-cloud").model_dump(mode="json")
    for bad, field in (({**data, "dram": {**data["dram"], "read_energy_pj_per_byte": 1e6}}, "dram.read_energy"),
                       ({**data, "energy": {**data["energy"], "compute_pj": {**data["energy"]["compute_pj"], "exp": 1.0}}},
                        "energy.compute_pj")):
        with pytest.raises(AccelsimError, match=field.split(".")[0]):
            spec_from_dict(bad)
