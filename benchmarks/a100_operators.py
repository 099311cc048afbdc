"""a100-cores (multicore kind, tiling mapper + loop-nest engine) against measured A100 operators and layers.

Development sample (/work/shared/reference/a100, LLMCompass ae/figure5, A100 80GB, fp16): GEMMs with
M=8192 and N=K from 64 to 32768 (latency), and a 1-D GELU of 2^10 .. 2^29 elements. The GELU
file's second column is throughput in G elements/s (LLMCompass's plot_gelu.py reads it as
``throughput`` and labels the axis "G Elements/s"; as milliseconds 2^29 elements would take
390 ms, 5 GB/s), so the measured latency is ``elements / (value * 1e9)`` s.

Check set, not used to develop the preset (tests/data/a100_measured, README there; what each
row covers is in ``benchmarks/a100_layer.py``): softmax and layer norm over [M, N] (22 shapes
each), a measured 4-GPU A100 all-reduce curve (32 sizes), and one device's GPT-3 decoder layer
under 4-way tensor parallelism, prefill (batch 8, 2048 tokens) and decode (batch 8, one token
attending to 3073 keys), 12 rows each.

Nothing is tuned per shape: every prediction is ``simulate(graph, 'a100-cores')`` with the
preset's datasheet numbers, NVLink's 300 GB/s per direction, and its three calibrated device
constants, all from the development sample: the launch overhead (smallest GEMM), the sustained
fraction of the tensor-core peak (largest GEMMs) and of the HBM bandwidth (largest GELUs;
``benchmarks/a100_calibration.py``). The development rows' errors are therefore not an independent
check; the other classes and the layers are.

    python benchmarks/a100_operators.py                 # print the tables
    python benchmarks/a100_operators.py --write-results # also rewrite results/a100_operators.{md,csv}
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accelsim import tables
from accelsim.errors import AccelsimError
from accelsim.hardware import load_hardware
from accelsim.ir import Einsum, Graph, Operand, OpKind, Tensor, TensorRole
from accelsim.reference_data import reference_dir
from accelsim.simulate import simulate
from benchmarks import a100_layer as layer

HARDWARE = "a100-cores"
OPERATOR_CLASSES = ("gemm", "gelu", "softmax", "layernorm", "allreduce")
DEVELOPMENT = frozenset({"gemm", "gelu"})  # the classes the preset was developed on


def gemm_graph(m: int, k: int, n: int) -> Graph:
    a = Tensor("A", ("m", "k"), (m, k), 2, TensorRole.INPUT)
    b = Tensor("B", ("k", "n"), (k, n), 2, TensorRole.WEIGHT)
    c = Tensor("C", ("m", "n"), (m, n), 2, TensorRole.OUTPUT)
    e = Einsum("gemm", Operand(c, ("m", "n")), (Operand(a, ("m", "k")), Operand(b, ("k", "n"))),
               {"m": m, "k": k, "n": n})
    return Graph(f"gemm_{m}x{k}x{n}", [e])


def gelu_graph(elements: int) -> Graph:
    x = Tensor("x", ("i",), (elements,), 2, TensorRole.INPUT)
    y = Tensor("y", ("i",), (elements,), 2, TensorRole.OUTPUT)
    return Graph(f"gelu_{elements}", [Einsum("gelu", Operand(y, ("i",)), (Operand(x, ("i",)),), {"i": elements},
                                             OpKind.ACTIVATION)])


def load_reference() -> tuple[list[dict], list[dict]]:
    folder = reference_dir("a100")
    if folder is None:
        raise AccelsimError("the A100 reference tables are not on this machine", field="reference",
                            allowed="shared/reference/a100 beside the checkout or $ACCELSIM_SHARED_DIR")
    gemms = []
    for row in csv.reader((folder / "matmul_A100_m8192.csv").read_text().splitlines()):
        m, n, k, lat = int(row[0]), int(row[1]), int(row[2]), row[3].strip()
        gemms.append({"m": m, "k": k, "n": n, "measured_s": float(lat.removesuffix("ms")) * 1e-3})
    gelus = []
    for row in csv.reader((folder / "gelu_A100.csv").read_text().splitlines()):
        elements, g_per_s = int(row[0]), float(row[1])
        gelus.append({"elements": elements, "measured_s": elements / (g_per_s * 1e9)})
    return gemms, gelus


HBM_BYTES_PER_S = load_hardware(HARDWARE).dram.bandwidth_bytes_per_s


def _row(cls: str, shape: str, measured_s: float, predicted_s: float, bound: str, mapper: str = "-",
         wall_s: float = 0.0, group: str = "operator", dram_bytes: float | None = None) -> dict:
    """One compared row; ``achieved_hbm_pct`` is the model's DRAM bytes over the measured time, as a
    share of the datasheet HBM bandwidth (how much of the peak the real kernel would have reached)."""
    achieved = None if dram_bytes is None else 100 * dram_bytes / measured_s / HBM_BYTES_PER_S
    return {"group": group, "class": cls, "shape": shape, "measured_s": measured_s, "predicted_s": predicted_s,
            "error_pct": 100 * (predicted_s - measured_s) / measured_s, "bound": bound, "mapper": mapper,
            "wall_s": wall_s, "achieved_hbm_pct": achieved}


def operator_rows(time_limit_s: float) -> list[dict]:
    """Standalone operators: the development GEMMs and GELUs, then softmax, layer norm, all-reduce."""
    gemms, gelus = load_reference()
    rows = []
    for g in gemms:
        start = time.perf_counter()
        report = simulate(gemm_graph(g["m"], g["k"], g["n"]), HARDWARE, time_limit_s=time_limit_s)
        lay = report.layers[0]
        rows.append(_row("gemm", f"{g['m']}x{g['k']}x{g['n']}", g["measured_s"], report.core.total_s, lay["bound"],
                         f"{lay['mapper_status']} (gap {100 * (lay['mapper_gap'] or 0):.1f}%)",
                         time.perf_counter() - start, dram_bytes=lay["dram_bytes"]))
    for g in gelus:
        report = simulate(gelu_graph(g["elements"]), HARDWARE)
        rows.append(_row("gelu", str(g["elements"]), g["measured_s"], report.core.total_s, report.layers[0]["bound"],
                         dram_bytes=report.layers[0]["dram_bytes"]))
    for cls, load, graph in (("softmax", "softmax_A100.csv", layer.softmax_graph),
                             ("layernorm", "layernorm_A100.csv", layer.layernorm_graph)):
        for g in layer.load_rowwise(load):
            report = simulate(graph(g["m"], g["n"]), HARDWARE)
            rows.append(_row(cls, f"{g['m']}x{g['n']}", g["measured_s"], report.core.total_s,
                             report.layers[0]["bound"], dram_bytes=report.layers[0]["dram_bytes"]))
    for g in layer.load_allreduce_node():
        report = simulate(layer.allreduce_graph(g["bytes"]), HARDWARE)
        rows.append(_row("allreduce", f"{g['bytes']} B", g["measured_s"], report.core.total_s,
                         report.layers[0]["bound"]))
    return rows


def layer_rows(phase: str, time_limit_s: float) -> tuple[list[dict], dict]:
    """The measured rows of one GPT-3 layer, each predicted from the einsums it covers, and the
    layer total (the sum of the rows, measured and predicted alike)."""
    start = time.perf_counter()
    report = simulate(layer.layer_graph(phase), HARDWARE, time_limit_s=time_limit_s)
    launch_s = load_hardware(HARDWARE).launch_overhead_s
    predicted = layer.row_predictions(report.layers, launch_s)
    measured = layer.load_layer(phase)
    bounds = {r["name"]: r["bound"] for r in report.layers}
    dram = {r["name"]: r["dram_bytes"] for r in report.layers}
    status = {r["name"]: r.get("mapper_status", "-") for r in report.layers}
    rows = [_row(layer.ROW_CLASS[name], name, measured[name], predicted[name],
                 "/".join(sorted({bounds[e] for e in layer.LAYER_ROWS[name]})),
                 "/".join(sorted({status[e] for e in layer.LAYER_ROWS[name]})), group=f"layer {phase}",
                 dram_bytes=sum(dram[e] for e in layer.LAYER_ROWS[name]))
            for name in layer.LAYER_ROWS]
    total = _row("layer", f"gpt-3 layer {phase}, tp {layer.TP}", sum(measured.values()), sum(predicted.values()),
                 "-", wall_s=time.perf_counter() - start, group=f"layer {phase}")
    return rows, total


def run(time_limit_s: float) -> tuple[list[dict], list[dict]]:
    rows = operator_rows(time_limit_s)
    totals = []
    for phase in ("prefill", "decode"):
        layer_part, total = layer_rows(phase, time_limit_s)
        rows += layer_part
        totals.append(total)
    return rows, totals


def _stats(rows: list[dict]) -> dict:
    errs = [abs(r["error_pct"]) for r in rows]
    signed = [r["error_pct"] for r in rows]
    return {"rows": len(rows), "mean_abs_error_pct": sum(errs) / len(errs), "max_abs_error_pct": max(errs),
            "signed_min_pct": min(signed), "signed_max_pct": max(signed)}


def summary(rows: list[dict], totals: list[dict]) -> pd.DataFrame:
    """Error per operator class (standalone operators; then the rows inside each layer) and per layer."""
    out = []
    for cls in OPERATOR_CLASSES:
        picked = [r for r in rows if r["group"] == "operator" and r["class"] == cls]
        out.append({"what": f"{cls} ({'development' if cls in DEVELOPMENT else 'check'})", **_stats(picked)})
    for t in totals:
        out.append({"what": f"{t['shape']} (check)", **_stats([t])})
        for cls in ("gemm", "softmax", "layernorm", "gelu", "allreduce"):
            picked = [r for r in rows if r["group"] == t["group"] and r["class"] == cls]
            out.append({"what": f"  {t['group']}: {cls} rows", **_stats(picked)})
    return pd.DataFrame(out)


def markdown(rows: list[dict], totals: list[dict], time_limit_s: float) -> str:
    detail = pd.DataFrame([{**r, "measured_ms": r["measured_s"] * 1e3, "predicted_ms": r["predicted_s"] * 1e3}
                           for r in (*rows, *totals)])
    detail_md = tables.markdown_table(
        detail, ["group", "class", "shape", "measured_ms", "predicted_ms", "error_pct", "achieved_hbm_pct", "bound",
                 "mapper", "wall_s"],
        float_format=lambda v: f"{v:.4g}")
    summary_md = tables.markdown_table(summary(rows, totals), float_format=lambda v: f"{v:.1f}")
    return "\n".join([
        "# a100-cores vs measured A100 operators and GPT-3 layers", "",
        (f"Generated by `python benchmarks/a100_operators.py --write-results` (tiling mapper time limit "
        f"{time_limit_s} s per GEMM; wall times taken on a shared, loaded machine). Measured: LLMCompass "
        "ae/figure5 (A100 80GB, fp16, PyTorch, median wall time with launch; see tests/data/a100_measured/README.md "
        "and benchmarks/a100_layer.py for what each row covers). Predicted: `simulate(graph, 'a100-cores')`, "
        "nothing tuned per shape; 'development' classes were used to build the preset and set its three calibrated "
        "constants (launch overhead 28 us from the smallest GEMM, compute_efficiency 0.927 from the three largest "
        "GEMMs, memory_efficiency 0.777 from the three largest GELUs; benchmarks/a100_calibration.py), so their "
        "errors are not an independent check; 'check' classes were used for nothing. "
        "Error = (predicted - measured) / measured, in %."), "",
        "## Error per class", "", summary_md, "",
        "## Why the check classes miss (diagnosis, nothing fitted to them)", "", *DIAGNOSIS, "",
        "## Every row", "", detail_md, ""])


DIAGNOSIS = [
    ("- **The two sustained fractions, set from the development sample only** (compute 0.927, memory 0.777), "
     "take the prefill layer from -15.2 % to -7.6 % and the decode layer from -15.9 % to -0.5 %. The prefill gain "
     "is mostly genuine: its projection GEMMs are compute-bound like the development GEMMs and are now 2-6 % low "
     "(were 9-13 %). The decode figure is a cancellation, not agreement: its GEMM rows are now 0.091 ms too slow "
     "(weight and K-cache streams predicted +7 to +18 %, see the next point), its layer-norm and GELU rows 0.115 ms "
     "too fast (launch, two points down) and its softmax and all-reduce rows 0.019 ms too slow."),
    ("- **One memory fraction does not fit reads and writes alike.** Achieved bandwidth (the model's DRAM bytes / "
     "measured time, column `achieved_hbm_pct`, against 2.039 TB/s) is about 94 % for the read-only decode W1/W2 "
     "weight streams without their launch (80 % with it), 75-77 % for the largest GELUs (half writes, the "
     "development rows that set 0.777), 56-58 % for softmax and layer norm over the prefill activations and 47 % "
     "for the prefill Q x K^T (89 % of its bytes are the 1.6 GB score write). So with 0.777 everywhere the "
     "decode weight and K-cache streams are 7-18 % slow and the write-heavy and row-wise kernels still 25-38 % fast. "
     "Every memory-bound development row is about half writes, so the sample fixes only one combination of a read "
     "and a write efficiency; the other extreme that also fits it (reads at the datasheet rate, writes at 0.635, "
     "a hand estimate from this table's bytes, not implemented) gives prefill -7.7 % and decode -15.8 %, and the "
     "check rows do not follow a read/write split either: the read-dominated prefill A x V reaches only 75 %. "
     "No cited HBM2e read/write-turnaround figure was found, so the single fraction is kept."),
    ("- **Launch overhead is not one number in these measurements.** The constant (28 us) was read off the "
     "smallest eager `torch.matmul`. The smallest measured eager `torch.softmax` takes 13-16 us, so tiny softmaxes "
     "are over-predicted (up to +116 %); the layer norm and GELU are `torch.compile`d in LLMCompass and their "
     "smallest calls take 48-53 us, so tiny ones are under-predicted by about 45 %. In the decode layer the two "
     "layer-norm rows are 48 us each *after* LLMCompass subtracted a 1x1x1 layer-norm call, for a [8, 12288] "
     "input that moves 0.4 MB; the model (which subtracts its launch there too) predicts 0.3 us. These three rows "
     "are 144 us of the decode layer's 1.11 ms."),
    ("- **Compute-bound GEMMs**: the three largest development GEMMs sustain 0.927 of the 312 TFLOP/s peak "
     "(launch excluded, pooled); the 8192^3 one alone reaches 0.90 and the N = K = 16384 one 0.94, and the "
     "development GEMMs with N = K from 256 to 8192 are still 3-7 % low. The model keeps the 1.41 GHz boost clock and applies the fraction to "
     "the arrays and vector units; a power-limited sustained clock is a plausible cause but no published A100 "
     "clock-under-GEMM figure was found to cite."),
    ("- **Not modelled, a candidate**: the loop-nest engine overlaps a tile's output write-back with the next "
     "tile's compute. A100 GEMM kernels whose tile fills the shared memory run one tile per SM and write it back "
     "after its (here very short, K = 128) reduction, so for the prefill Q x K^T the 1.6 GB write is serial with "
     "the compute (a hand estimate at the datasheet rates gave about 1.48 ms instead of 0.92 ms against 1.88 ms "
     "measured; not implemented: it changes the shared loop-nest latency for every kind)."),
    ("- **All-reduce**: the model sends 2(n-1)/n of the buffer over 300 GB/s (NVLink 3, one direction, A100 "
    "whitepaper); the development sample has no collective, so no link fraction is set. The measured 4-GPU curve "
    "reaches about 234 GB/s bus bandwidth at 16 GiB (78 % of the link), so all-reduces of 128 MiB and more are "
    "22-27 % low (the prefill layer's two rows: 1.70 of its 5.10 ms shortfall); small ones pay the model's 28 us "
    "launch against NCCL's 12-13 us floor. The layer's two all-reduce rows were typed into LLMCompass's CSV, not "
    "produced by its `run_on_gpu`."),
]


def write_csv(path: Path, rows: list[dict], totals: list[dict]) -> None:
    cols = ["group", "class", "shape", "measured_s", "predicted_s", "error_pct", "achieved_hbm_pct", "bound",
            "mapper", "wall_s"]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        writer.writeheader()
        writer.writerows([*rows, *totals])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time-limit", type=float, default=20.0, help="tiling search limit per GEMM (s)")
    tables.add_output_options(parser, "a100_operators")
    args = parser.parse_args(argv)
    rows, totals = run(args.time_limit)
    text = markdown(rows, totals, args.time_limit)
    for directory in tables.output_dirs(args, ROOT):
        (directory / "a100_operators.md").write_text(text)
        write_csv(directory / "a100_operators.csv", rows, totals)
    print(text)


if __name__ == "__main__":
    main()
