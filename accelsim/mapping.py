"""Mapping: how a Graph is placed on hardware, as data.

A mapper returns one; the simulator replays it. It round-trips through YAML/JSON so a mapping
can be saved, inspected, edited and scored again. Sections a mapper does not decide stay empty.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from accelsim.errors import AccelsimError
from accelsim.ir import Graph


@dataclass(frozen=True)
class Placement:
    """A tensor at ``offset_bytes`` in a scratchpad from step ``start`` to ``end`` (inclusive)."""

    tensor: str
    offset_bytes: int
    start: int
    end: int


@dataclass(frozen=True)
class TransferEvent:
    """A spill (scratchpad to DRAM) or reload (DRAM to scratchpad) of a tensor at a step."""

    kind: str  # "spill" | "reload"
    tensor: str
    step: int
    bytes: int


@dataclass
class Pipeline:
    """A static per-tile schedule the simulator replays (FuseMax-style lock-step pipelines).

    Every tile runs ``stages`` in order; the Einsums of one stage on different units run
    concurrently and a stage starts when the previous one finished on every unit. Names are the
    Graph's Einsums or the parts of a fused recurrence the Graph records in ``attrs["fused"]``.
    """

    stages: list[list[str]] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)  # run in the next tile's stages (software pipelining)
    interleaved: bool = True  # consecutive tiles come from different query tiles: no reduction drain stall
    fused: bool = True  # False: each Einsum over the whole layer in turn, intermediates through DRAM
    offchip: list[str] = field(default_factory=list)  # intermediate tensors kept in DRAM, not on chip


@dataclass
class Mapping:
    graph: str
    hardware: str = ""
    schedule: list[str] = field(default_factory=list)  # einsum names in execution order
    binding: dict[str, str] = field(default_factory=dict)  # einsum -> unit
    tiling: dict[str, dict[str, Any]] = field(default_factory=dict)  # einsum -> tile sizes, loop order
    allocation: list[Placement] = field(default_factory=list)
    events: list[TransferEvent] = field(default_factory=list)
    pipeline: Pipeline | None = None  # per-tile stage schedule, for engines that replay one
    meta: dict[str, Any] = field(default_factory=dict)  # mapper, solver, status, objective, gap, ...

    def validate(self, graph: Graph) -> None:
        """The schedule must run every einsum exactly once, producers before consumers."""
        if self.graph != graph.name:
            raise AccelsimError(f"mapping is for graph {self.graph!r}, not {graph.name!r}", field="mapping.graph")
        if not self.schedule:
            return
        names = {e.name for e in graph.einsums}
        if sorted(self.schedule) != sorted(names):
            missing = sorted(names - set(self.schedule))
            extra = sorted(set(self.schedule) - names)
            raise AccelsimError(f"schedule must list every einsum once (missing {missing}, unknown {extra})",
                                field="mapping.schedule")
        done: set[str] = set()
        for name in self.schedule:
            e = graph.einsum(name)
            for o in e.inputs:
                p = graph.producer.get(o.tensor.name)
                if p is not None and p.name not in done:
                    raise AccelsimError(f"{name!r} runs before its producer {p.name!r}", field="mapping.schedule")
            done.add(name)

    # --- serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Mapping":
        try:
            data = dict(data)
            data["allocation"] = [Placement(**p) for p in data.get("allocation", [])]
            data["events"] = [TransferEvent(**e) for e in data.get("events", [])]
            if data.get("pipeline") is not None:
                data["pipeline"] = Pipeline(**data["pipeline"])
            return cls(**data)
        except TypeError as err:
            raise AccelsimError(f"malformed mapping: {err}", field="mapping") from None

    def save(self, path: str | Path) -> None:
        path = Path(path)
        text = json.dumps(self.to_dict(), indent=2) if path.suffix == ".json" else yaml.safe_dump(
            self.to_dict(), sort_keys=False)
        path.write_text(text)

    @classmethod
    def load(cls, path: str | Path) -> "Mapping":
        from accelsim.hardware.base import read_yaml  # YAML is a superset of JSON

        data = read_yaml(Path(path))
        if not isinstance(data, dict):
            raise AccelsimError("expected a mapping at top level", source=str(path))
        return cls.from_dict(data)
