"""Measured A100 softmax, layer norm, all-reduce and GPT-3 decoder layers, and the graphs that predict them.

The measurements (``tests/data/a100_measured``, README there) are LLMCompass's (Zhang et al., ISCA
2024) ae/figure5 A100 runs; none of them was used to develop the ``a100-cores`` preset. This
module knows what each measured row covers (from the LLMCompass scripts that produced it) and
builds an accelsim graph with exactly those shapes; ``benchmarks/a100_operators.py`` runs them.

What a measured layer row is (LLMCompass ``software_model/transformer.py``, ``run_on_gpu``): one
device's share of a GPT-3 layer (d_model 12288, 96 heads of 128) under 4-way tensor parallelism,
batch 8, fp16, each operator timed alone as the median wall time of a PyTorch call plus
``cuda.synchronize`` (so one launch each). ``Q_K_V`` is three separate ``[b*s, d] x [d, d/4]``
GEMMs; attention is two batched GEMMs over ``b * heads/4 = 192`` matrices with a softmax between
(no causal mask, no fused attention); the layer norm row has the launch of a 1x1x1 layer norm
subtracted and is counted twice (after the attention and after the FFN). Prefill has ``s = 2048``;
decode has one new token attending to ``s + 1 = 3073`` keys (2048 prompt + 1024 generated, then
the concat). The two all-reduce rows are not produced by ``run_on_gpu`` (it sets them to 0); they
are typed into the CSV and agree within about 5 % (prefill) and 20 % (decode) with LLMCompass's
measured 4-GPU A100 all-reduce curve (figure 5h) at the layer's message size.
"""
from __future__ import annotations

import csv
from pathlib import Path

from accelsim.errors import AccelsimError
from accelsim.ir import Einsum, Graph, Operand, OpKind, Tensor, TensorRole
from workloads.builder import BlockBuilder
from workloads.models import load_model

MEASURED_DIR = Path(__file__).resolve().parents[1] / "tests" / "data" / "a100_measured"

# The order of the rows in transformer_A100.csv / transformerAR_A100.csv (LLMCompass
# ae/figure5/ijkl/plot_transformer.py, ``categories``) and the einsums of our graph each covers.
LAYER_ROWS: dict[str, tuple[str, ...]] = {
    "Q_K_V": ("q", "k", "v"), "Q_mul_K": ("qk",), "A_mul_V": ("pv",), "Wo_proj": ("o",),
    "W1_proj": ("up",), "W2_proj": ("down",), "Softmax": ("softmax",), "LayerNorm_MHA": ("ln_mha",),
    "LayerNorm_FFN": ("ln_ffn",), "GeLU": ("gelu",), "AllReduce_MHA": ("allreduce_mha",),
    "AllReduce_FFN": ("allreduce_ffn",)}
ROW_CLASS = {"Q_K_V": "gemm", "Q_mul_K": "gemm", "A_mul_V": "gemm", "Wo_proj": "gemm", "W1_proj": "gemm",
             "W2_proj": "gemm", "Softmax": "softmax", "LayerNorm_MHA": "layernorm", "LayerNorm_FFN": "layernorm",
             "GeLU": "gelu", "AllReduce_MHA": "allreduce", "AllReduce_FFN": "allreduce"}
LAUNCH_SUBTRACTED = frozenset({"LayerNorm_MHA", "LayerNorm_FFN"})  # run_on_gpu minus a 1x1x1 launch

BATCH, PROMPT, GENERATED, TP = 8, 2048, 1024, 4  # LLMCompass ae/figure5/ijkl/test_transformer.py
LAYER_FILES = {"prefill": "transformer_A100.csv", "decode": "transformerAR_A100.csv"}


def _rows(name: str) -> list[list[str]]:
    path = MEASURED_DIR / name
    if not path.exists():
        raise AccelsimError(f"measured A100 table {path} is missing", field="reference",
                            allowed="tests/data/a100_measured from the checkout")
    return [[c.strip() for c in row] for row in csv.reader(path.read_text().splitlines()) if row]


def load_rowwise(name: str) -> list[dict]:
    """softmax_A100.csv / layernorm_A100.csv: ``M, N, G elements/s`` (LLMCompass writes
    ``M*N/latency/1e9``, ae/figure5/cf/test_softmax.py), so latency = M*N / (value * 1e9)."""
    out = []
    for m, n, g_per_s in _rows(name):
        out.append({"m": int(m), "n": int(n), "measured_s": int(m) * int(n) / (float(g_per_s) * 1e9)})
    return out


def load_layer(phase: str) -> dict[str, float]:
    """Measured seconds per row of one layer (``LAYER_ROWS`` order)."""
    values = [float(r[0]) for r in _rows(LAYER_FILES[phase])]
    if len(values) != len(LAYER_ROWS):
        raise AccelsimError(f"{LAYER_FILES[phase]} has {len(values)} rows", field="reference",
                            allowed=f"{len(LAYER_ROWS)} (one per LLMCompass category)")
    return dict(zip(LAYER_ROWS, values))


def load_allreduce_node() -> list[dict]:
    """LLMCompass ae/figure5/h/test_allreduce.py's measured A100 node (4 GPUs) all-reduce:
    message bytes and latency (us)."""
    rows = _rows("allreduce_A100_node.csv")[1:]
    return [{"bytes": int(b), "measured_s": float(us) * 1e-6} for b, us in rows]


# graphs -----------------------------------------------------------------------------------
def _vector_graph(name: str, op: OpKind, m: int, n: int, extra: tuple[Tensor, ...] = ()) -> Graph:
    x = Tensor("x", ("m", "n"), (m, n), 2, TensorRole.INPUT)
    y = Tensor("y", ("m", "n"), (m, n), 2, TensorRole.OUTPUT)
    ins = (Operand(x, ("m", "n")), *(Operand(t, t.dims) for t in extra))
    return Graph(f"{name}_{m}x{n}", [Einsum(name, Operand(y, ("m", "n")), ins, {"m": m, "n": n}, op,
                                            {"kind": name})])


def softmax_graph(m: int, n: int) -> Graph:
    """``torch.softmax(x, dim=-1)`` over an fp16 ``[m, n]`` (LLMCompass ae/figure5/cf)."""
    return _vector_graph("softmax", OpKind.EXP, m, n)


def layernorm_graph(m: int, n: int) -> Graph:
    """``torch.layer_norm(x, [n])`` over an fp16 ``[m, n]``, no affine weights (ae/figure5/de)."""
    return _vector_graph("layernorm", OpKind.NORM, m, n)


def allreduce_graph(nbytes: int, participants: int = TP) -> Graph:
    """One fp16 all-reduce of ``nbytes`` among ``participants`` devices (ring byte count)."""
    x = Tensor("x", ("i",), (nbytes // 2,), 2, TensorRole.INPUT)
    y = Tensor("y", ("i",), (nbytes // 2,), 2, TensorRole.OUTPUT)
    ring = 2 * (participants - 1) / participants * nbytes
    e = Einsum("allreduce", Operand(y, ("i",)), (Operand(x, ("i",)),), {"i": nbytes // 2}, OpKind.ALLREDUCE,
               {"kind": "allreduce", "participants": participants, "collective_bytes": ring})
    return Graph(f"allreduce_{nbytes}", [e])


def layer_graph(phase: str, model: str = "gpt-3") -> Graph:
    """One device's GPT-3 layer as LLMCompass measured it (module docstring), built with the
    workload builder from the zoo's ``gpt-3`` dimensions; no biases, residuals or causal mask
    because the measured rows have none."""
    if phase not in LAYER_FILES:
        raise AccelsimError(f"unknown phase {phase!r}", field="phase", allowed=sorted(LAYER_FILES))
    cfg = load_model(model)
    bb = BlockBuilder(cfg, "")
    heads, e = cfg.num_heads // TP, cfg.hidden_size // cfg.num_heads
    s = PROMPT if phase == "prefill" else 1
    keys = PROMPT if phase == "prefill" else PROMPT + GENERATED + 1
    sz = {"b": BATCH, "s": s, "m": keys, "d": cfg.hidden_size, "h": heads, "e": e, "f": cfg.ffn_size // TP}
    x = bb.t("x", "bsd", (BATCH, s, cfg.hidden_size), TensorRole.INPUT)
    q = bb.linear("q", x, "bsd", "wq", "dhe", "bshe", sz)
    k = bb.linear("k", x, "bsd", "wk", "dhe", "bshe", sz)
    v = bb.linear("v", x, "bsd", "wv", "dhe", "bshe", sz)
    if phase == "decode":  # the new token attends to the whole cache (LLMCompass concatenates k, v)
        k = bb.t("k_cache", "bmhe", (BATCH, keys, heads, e), TensorRole.KV_CACHE)
        v = bb.t("v_cache", "bmhe", (BATCH, keys, heads, e), TensorRole.KV_CACHE)
    k_idx = "bmhe"  # prefill's keys are the fresh k and v, indexed by the key position m (= s)
    ext = {c: sz[c] for c in "bhsme"}
    scores = bb.t("scores", "bhsm", (BATCH, heads, s, keys))
    bb.add("qk", scores, "bhsm", [(q, "bshe"), (k, k_idx)], ext, OpKind.MAC, kind="attention_qk")
    probs = bb.pointwise("softmax", OpKind.EXP, scores, None, "bhsm", sz, kind="softmax")
    ctx = bb.t("ctx", "bshe", q.shape)
    bb.add("pv", ctx, "bshe", [(probs, "bhsm"), (v, k_idx)], ext, OpKind.MAC, kind="attention_pv")
    o = bb.linear("o", ctx, "bshe", "wo", "hed", "bsd", sz)
    h = bb.allreduce("allreduce_mha", bb.norm("ln_mha", o, "bsd", sz), "bsd", sz, TP)
    up = bb.linear("up", h, "bsd", "w1", "df", "bsf", sz)
    act = bb.pointwise("gelu", OpKind.ACTIVATION, up, None, "bsf", sz, kind="gelu")
    down = bb.linear("down", act, "bsf", "w2", "fd", "bsd", sz)
    bb.allreduce("allreduce_ffn", bb.norm("ln_ffn", down, "bsd", sz), "bsd", sz, TP)
    return Graph(f"gpt3_layer_{phase}_tp{TP}", bb.ops)


def row_predictions(report_layers: list[dict], launch_overhead_s: float) -> dict[str, float]:
    """Predicted seconds per measured row: the sum of its einsums' times, minus one launch where
    the measurement subtracted one (``LAUNCH_SUBTRACTED``)."""
    by_name = {r["name"]: r["total_s"] for r in report_layers}
    out = {}
    for row, names in LAYER_ROWS.items():
        missing = [n for n in names if n not in by_name]
        if missing:
            raise AccelsimError(f"the layer report has no einsum {missing}", field="report")
        out[row] = sum(by_name[n] for n in names) - (launch_overhead_s if row in LAUNCH_SUBTRACTED else 0.0)
    return out
