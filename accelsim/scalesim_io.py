"""Read SCALE-Sim configuration (.cfg) and topology (.csv) files, so its users keep their inputs.

Formats (learned from SCALE-Sim 3.0's ``scale_config.py`` and ``topology_utils.py``):

* ``.cfg``: INI sections ``[general] run_name``; ``[architecture_presets] ArrayHeight,
  ArrayWidth, IfmapSramSzkB, FilterSramSzkB, OfmapSramSzkB, Dataflow (os|ws|is), Bandwidth``
  (words per cycle, one number or a comma list whose first entry SCALE-Sim uses); ``[run_presets]
  InterfaceBandwidth`` (USER: use Bandwidth; CALC: SCALE-Sim sizes the interface so the array never
  waits). Keys are case-insensitive (``configparser``); other keys and sections (sparsity,
  Ramulator, layouts) are not modelled: ``ignored_settings`` lists them and the CLI warns.
  SCALE-Sim's word is one byte (``word_size = 1`` in its ``single_layer_sim.py``) and sizes are
  in KiB (``1024 * kB``).
* Convolution topology: header, then ``name, IFMAP Height, IFMAP Width, Filter Height, Filter
  Width, Channels, Num Filter, Strides,`` per layer (ifmap sizes already include padding; the
  output is ``ceil((H - R + stride) / stride)``). A name containing ``DP`` is a depthwise layer,
  which SCALE-Sim runs as one single-channel layer per channel; we do the same.
* GEMM topology: header, then ``name, M, N, K,``. SCALE-Sim turns it into a convolution with
  ifmap M x K, a 1 x K filter, one channel and N filters, so M is the ifmap rows (output
  pixels), K the reduction and N the filters (columns of the output): ``GemmShape(m=M, k=K, n=N)``.

SCALE-Sim drops the last comma-separated field of every row (it expects a trailing comma); we
accept rows with or without it. Because of that rule, a marker after the last comma is ignored by
SCALE-Sim: its own ``topologies/conv_nets/mobilnet_paper.csv`` (scale-sim-v2) tags depthwise rows
with a trailing ``#dw`` while writing their channels and filters as 1, so the row already describes
one channel's work. We do the same: a last field that starts with ``#`` is a comment and the row is
simulated as written (a name containing ``DP`` is what asks for the per-channel split).

An optional ``Batch`` (or ``Batch Size``) column after ``Strides``, named in the header, gives the
images per layer; newer SCALE-Sim versions read it and scale the ifmap rows, so ``M = batch x
output pixels`` while the filter is shared (SCALE-Sim 3.0.0 on PyPI still fixes ``batch_size = 1``
in ``compute/operand_matrix.py``). Without that header column a row has no batch. An optional
sparsity field ``N:M`` after the dimensions is accepted only as dense ``1:1`` (sparse mappings
are not modelled).
"""
from __future__ import annotations

import configparser
import math
from pathlib import Path

from accelsim.engines.systolic import GemmLayer
from accelsim.errors import AccelsimError
from accelsim.hardware.base import spec_from_dict
from accelsim.hardware.systolic import DATAFLOWS, SystolicAccelerator
from accelsim.ir import GemmShape

# SCALE-Sim counts cycles only; seconds need a clock. 1 GHz is a neutral choice, stated in the spec.
DEFAULT_CLOCK_HZ = 1.0e9
# CALC mode: SCALE-Sim computes the bandwidth the array needs to never stall; an interface this
# wide (the largest per-cycle rate a spec accepts, accelsim.fieldchecks) moves any fold's tiles,
# which are bounded by the SRAM sizes (KiB to MiB), in one cycle: "no stalls".
CALC_BANDWIDTH_BYTES_PER_CYCLE = 1.0e9
SCALESIM_WORD_BYTES = 1  # scalesim/single_layer_sim.py: word_size = 1 (bytes)

CONV_FIELDS = ("IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width", "Channels", "Num Filter", "Strides")
GEMM_FIELDS = ("M", "N", "K")


def _int_field(raw: str, *, source: str, field: str, minimum: int = 1) -> int:
    text = raw.strip()
    try:
        value = int(text)
    except ValueError:
        raise AccelsimError(f"not an integer: {text!r}", field=field, source=source,
                            allowed=f"an integer >= {minimum}") from None
    if value < minimum:
        raise AccelsimError(f"must be >= {minimum}, got {value}", field=field, source=source)
    return value


# What accelsim reads from a .cfg; the offsets only place operands in SCALE-Sim's address traces.
READ_KEYS = {"general": {"run_name"},
             "architecture_presets": {"arrayheight", "arraywidth", "ifmapsramszkb", "filtersramszkb",
                                      "ofmapsramszkb", "dataflow", "bandwidth", "ifmapoffset", "filteroffset",
                                      "ofmapoffset"},
             "run_presets": {"interfacebandwidth"}}


def ignored_settings(path: str | Path) -> list[str]:
    """Settings of a SCALE-Sim ``.cfg`` that accelsim does not model (sparsity, Ramulator, layouts,
    memory banks, ...), as ``[section] key`` strings, so the CLI can say so instead of ignoring them
    silently. A file that cannot be read yields nothing here; ``read_scalesim_config`` reports it."""
    parser = configparser.ConfigParser(inline_comment_prefixes=("#", ";"), interpolation=None)
    try:
        parser.read_string(Path(path).read_text(), source=str(path))
    except (OSError, UnicodeDecodeError, configparser.Error):
        return []
    return [f"[{section}] {key}" for section in parser.sections() for key in parser.options(section)
            if key not in READ_KEYS.get(section, set())]


def read_scalesim_config(path: str | Path) -> SystolicAccelerator:
    """A SCALE-Sim ``.cfg`` as a SystolicAccelerator (sizes from KiB, words of one byte)."""
    source = str(path)
    # Raw: a "%" in a value (a run name such as "50%_sparse") is text, not configparser interpolation.
    parser = configparser.ConfigParser(inline_comment_prefixes=("#", ";"), interpolation=None)
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise AccelsimError("file not found", source=source) from None
    except (OSError, UnicodeDecodeError) as error:  # a directory, no permission, a name too long
        raise AccelsimError(f"cannot read: {error}", source=source) from None
    try:
        parser.read_string(text, source=source)
    except configparser.Error as error:
        raise AccelsimError(f"malformed .cfg: {str(error).splitlines()[0]}", source=source) from None

    arch = "architecture_presets"
    if not parser.has_section(arch):
        raise AccelsimError("missing section", field=f"[{arch}]", source=source,
                            allowed="[general], [architecture_presets], [run_presets]")

    def get(section: str, key: str, default: str | None = None) -> str:
        if parser.has_option(section, key):
            return parser.get(section, key)
        if default is not None:
            return default
        raise AccelsimError("required field is missing", field=f"[{section}] {key}", source=source)

    def integer(key: str) -> int:
        return _int_field(get(arch, key), source=source, field=f"[{arch}] {key}")

    rows, cols = integer("ArrayHeight"), integer("ArrayWidth")
    ifmap_kb, filter_kb, ofmap_kb = integer("IfmapSramSzkB"), integer("FilterSramSzkB"), integer("OfmapSramSzkB")
    dataflow = get(arch, "Dataflow").strip().lower()
    if dataflow not in DATAFLOWS:
        raise AccelsimError(f"unknown dataflow {dataflow!r}", field=f"[{arch}] Dataflow", source=source,
                            allowed=DATAFLOWS)
    mode = get("run_presets", "InterfaceBandwidth", "CALC").strip().upper() if parser.has_section(
        "run_presets") else "CALC"
    if mode not in ("USER", "CALC"):
        raise AccelsimError(f"unknown mode {mode!r}", field="[run_presets] InterfaceBandwidth", source=source,
                            allowed=("USER", "CALC"))
    if mode == "USER":
        first = get(arch, "Bandwidth").split(",")[0]
        try:
            bandwidth = float(first.strip())
        except ValueError:
            raise AccelsimError(f"not a number: {first.strip()!r}", field=f"[{arch}] Bandwidth", source=source,
                                allowed="a positive number of words per cycle") from None
        if not bandwidth > 0:
            raise AccelsimError(f"must be > 0, got {first.strip()}", field=f"[{arch}] Bandwidth", source=source)
        bandwidth_bytes = bandwidth * SCALESIM_WORD_BYTES
    else:
        bandwidth_bytes = CALC_BANDWIDTH_BYTES_PER_CYCLE
    name = get("general", "run_name", Path(path).stem) if parser.has_section("general") else Path(path).stem
    # through spec_from_dict: a size the spec refuses (ArrayHeight: 10**30) is one error naming the field
    return spec_from_dict(dict(
        kind="systolic",
        name=name.strip(),
        description=f"from SCALE-Sim config {Path(path).name} ({mode} interface bandwidth)",
        sources=[f"SCALE-Sim configuration file {source}"],
        clock_hz=DEFAULT_CLOCK_HZ,
        word_bytes=SCALESIM_WORD_BYTES,
        array={"rows": rows, "cols": cols, "dataflow": dataflow},
        sram={"ifmap_bytes": 1024 * ifmap_kb, "filter_bytes": 1024 * filter_kb, "ofmap_bytes": 1024 * ofmap_kb},
        dram={"name": "dram", "bandwidth_bytes_per_cycle": bandwidth_bytes},
    ), source=source)


def conv_layer(name: str, ifmap_h: int, ifmap_w: int, filter_h: int, filter_w: int, channels: int,
               filters: int, stride: int, batch: int = 1) -> GemmLayer:
    """SCALE-Sim's im2col view of a convolution: M = batch x output pixels, K = R*S*C, N = filters.

    The ifmap footprint counts the input rows and columns some window touches (the tail that a
    stride skips is never read), once per image of the batch; the filter is read once for all.
    """
    out_h = math.ceil((ifmap_h - filter_h + stride) / stride)
    out_w = math.ceil((ifmap_w - filter_w + stride) / stride)
    touched_h = (out_h - 1) * stride + filter_h
    touched_w = (out_w - 1) * stride + filter_w
    shape = GemmShape(m=batch * out_h * out_w, k=filter_h * filter_w * channels, n=filters,
                      ifmap=f"{name}.ifmap", filter=f"{name}.filter", ofmap=f"{name}.ofmap")
    return GemmLayer(name, shape, min(shape.m * shape.k, batch * touched_h * touched_w * channels))


def _fields(line: str) -> list[str]:
    parts = [p.strip() for p in line.split(",")]
    while parts and parts[-1] == "":
        parts.pop()  # SCALE-Sim's trailing comma is optional here
    if len(parts) > 1 and parts[-1].startswith("#"):
        parts.pop()  # a marker after the last comma (SCALE-Sim's "#dw"): SCALE-Sim drops it too
    return parts


def _has_batch_column(header: list[str], fields: tuple[str, ...]) -> bool:
    """True when the header names a batch column right after the dimensions."""
    return len(header) > 1 + len(fields) and header[1 + len(fields)].replace(" ", "") in ("batch", "batchsize")


def _sparsity_ok(parts: list[str], expected: int, source: str, where: str) -> None:
    if len(parts) > expected:
        extra = parts[expected]
        if extra.replace(" ", "") not in ("1:1",) or len(parts) > expected + 1:
            raise AccelsimError(f"unexpected extra fields {parts[expected:]}", field=where, source=source,
                                allowed="no sparsity field, or dense 1:1")


def read_topology(path: str | Path, kind: str | None = None) -> list[GemmLayer]:
    """Layers of a SCALE-Sim topology CSV; ``kind`` is ``conv`` or ``gemm``, else read from the header."""
    source = str(path)
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        raise AccelsimError("file not found", source=source) from None
    except (OSError, UnicodeDecodeError) as error:  # a directory, no permission, a name too long
        raise AccelsimError(f"cannot read: {error}", source=source) from None
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
    if not numbered:
        raise AccelsimError("empty topology file", source=source, allowed="a header line and one row per layer")
    header = [h.lower() for h in _fields(numbered[0][1])]
    if kind is None:
        if any("ifmap" in h for h in header):
            kind = "conv"
        elif header[1:4] == ["m", "n", "k"]:
            kind = "gemm"
        else:
            raise AccelsimError(f"cannot tell the format from header {numbered[0][1].strip()!r}", field="header",
                                source=source, allowed="conv: 'Layer name, IFMAP Height, ...'; gemm: 'Layer, M, N, K'")
    if kind not in ("conv", "gemm"):
        raise AccelsimError(f"unknown topology kind {kind!r}", field="kind", allowed=("conv", "gemm"))
    names = CONV_FIELDS if kind == "conv" else GEMM_FIELDS
    if kind == "conv" and _has_batch_column(header, names):
        names = (*names, "Batch")
    layers: list[GemmLayer] = []
    for number, line in numbered[1:]:
        parts = _fields(line)
        where = f"line {number}"
        if len(parts) < 1 + len(names):
            missing = names[max(0, len(parts) - 1):]
            raise AccelsimError(f"has {len(parts)} fields, needs {1 + len(names)}; missing {', '.join(missing)}",
                                field=where, source=source, allowed="name, " + ", ".join(names))
        _sparsity_ok(parts, 1 + len(names), source, where)
        name = parts[0] or f"layer{len(layers)}"
        values = [_int_field(v, source=source, field=f"{where} {n}") for v, n in zip(parts[1:], names)]
        if kind == "gemm":
            m, n, k = values
            layers.append(GemmLayer(name, GemmShape(m=m, k=k, n=n, ifmap=f"{name}.ifmap", filter=f"{name}.filter",
                                                    ofmap=f"{name}.ofmap")))
            continue
        ifmap_h, ifmap_w, filter_h, filter_w, channels, filters, stride, *batch_field = values
        batch = batch_field[0] if batch_field else 1
        if filter_h > ifmap_h or filter_w > ifmap_w:
            raise AccelsimError(f"filter {filter_h}x{filter_w} is larger than the ifmap {ifmap_h}x{ifmap_w}",
                                field=f"{where} Filter Height/Width", source=source,
                                allowed="filter no larger than the (padded) ifmap")
        if "DP" in name:  # depthwise: SCALE-Sim runs one single-channel layer per channel
            layers.extend(conv_layer(f"{name}Channel_{c}", ifmap_h, ifmap_w, filter_h, filter_w, 1, filters, stride,
                                     batch) for c in range(channels))
        else:
            layers.append(conv_layer(name, ifmap_h, ifmap_w, filter_h, filter_w, channels, filters, stride, batch))
    if not layers:
        raise AccelsimError("no layer rows after the header", source=source)
    return layers
