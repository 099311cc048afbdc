"""Attention as cascades of Einsums: the 3-pass, 2-pass and 1-pass softmax forms.

Why three forms of the same function: the number of *passes* over the key/value sequence (rank
M) decides what an accelerator must keep on chip. The 3-pass cascade needs the global max and
the global sum over all of M before it can normalise, so either a whole row of scores stays on
chip (FLAT) or it is re-read from DRAM. The 1-pass cascade (FuseMax) splits M = M1 x M0 and
carries a running max, denominator and numerator per query, so its state is O(E + F) per
query whatever the sequence length. (Nayak et al., "FuseMax", MICRO 2024, Sec. 3-4; see
PAPERS.md.)

Ranks: B batch, H heads, M keys/values, P queries, E query/key embedding, F value embedding.
Tensors: Q[b,h,e,p], K[b,h,e,m], V[b,h,f,m], output AV[b,h,f,p]. The 2- and 1-pass forms tile
M into M1 tiles of M0 keys; when M0 does not divide M the last tile is partial: keys beyond M
read K and V as padding (0) and their scores are ``-inf`` (``empty_value``), so they add
nothing to the max, the denominator or the numerator. See ``workloads/executor.py`` for the
exact semantics of each op, of ``scan`` (a running reduction along M1) and of padding.

Einsum names follow the FuseMax paper so a binding can name them (QK, LM, RM, SLN, PRM, SLD,
SPD, RD, SLNV, SPNV, RNV, AV). In the 1-pass cascade the paper's pairs SPD+RD and SPNV+RNV are
each one Einsum here (``RD[m1] = SLD[m1] + PRM[m1] * RD[m1-1]``): a recurrence through two
Einsums would make the tensor graph cyclic, and the IR is a DAG. ``attrs["fused"]`` records the
paper's names so cost models still charge SPD and SPNV.
"""
from __future__ import annotations

import math

from accelsim.errors import AccelsimError
from accelsim.ir import Einsum, Graph, OpKind, Operand, Tensor, TensorRole

NEG_INF = float("-inf")
# Longest sequence an attention shape may have: 2**24 = 16.8M tokens, above the longest published
# context (Llama 4 Scout, 10M tokens: Meta AI, "The Llama 4 herd", April 2025). The tile-by-tile
# engine's work grows with M / tile, so 10**30 used to run for ever instead of being refused.


from accelsim.ir.views import MAX_RANK, MAX_SEQ, AttentionModel, AttentionShape  # noqa: E402,F401 (moved to the IR)


# FuseMax artifact workloads (PAPERS.md "Workloads [artifact]"; FPSG-UIUC/micro24-fusemax-artifact
# flat_validation.csv columns D, H, E, F, S): batch 64 by default. Named by the checkpoint they
# are, so that they never collide with a zoo model of another size: the artifact's T5 is
# T5-small (d_model 512, 8 heads, FFN 2048), while ``workloads/zoo/t5.yaml`` is t5-base.
# BERT, TrXL and XLM have the same dimensions as their zoo files (bert-base, trxl, xlm).
ATTENTION_MODELS: dict[str, AttentionModel] = {
    "bert-base": AttentionModel("bert-base", 768, 12, 64, 64, 3072),
    "trxl": AttentionModel("trxl", 1024, 16, 64, 64, 4096),
    "t5-small": AttentionModel("t5-small", 512, 8, 64, 64, 2048),
    "xlm": AttentionModel("xlm", 2048, 16, 128, 128, 8192),
}
# the artifact's own labels (its CSVs say BERT, TrXL, XLM) that name one model unambiguously
ARTIFACT_ALIASES = {"bert": "bert-base"}
AMBIGUOUS = {"t5": "the FuseMax artifact's T5 is t5-small (d_model 512, 8 heads, FFN 2048); the zoo's t5 "
                   "(accelsim roofline --model t5) is t5-base (768, 12 heads, 3072): say t5-small"}


def attention_model(name: str) -> AttentionModel:
    if not isinstance(name, str):  # a list is not a name
        raise AccelsimError(f"unknown attention model {name!r}", field="model", allowed=sorted(ATTENTION_MODELS))
    key = ARTIFACT_ALIASES.get(name.lower(), name.lower())
    if key in AMBIGUOUS:
        raise AccelsimError(f"model {name!r} is ambiguous: {AMBIGUOUS[key]}", field="model",
                            allowed=sorted(ATTENTION_MODELS))
    if key not in ATTENTION_MODELS:
        raise AccelsimError(f"unknown attention model {name!r}", field="model", allowed=sorted(ATTENTION_MODELS))
    return ATTENTION_MODELS[key]


def _t(name: str, dims: tuple[str, ...], shape: tuple[int, ...], dtype_bytes: int,
       role: TensorRole = TensorRole.ACTIVATION) -> Tensor:
    return Tensor(name, dims, shape, dtype_bytes, role)


def _inputs(s: AttentionShape, dtype_bytes: int) -> tuple[Tensor, Tensor, Tensor]:
    q = _t("Q", ("b", "h", "e", "p"), (s.b, s.h, s.e, s.p), dtype_bytes, TensorRole.INPUT)
    k = _t("K", ("b", "h", "e", "m"), (s.b, s.h, s.e, s.m), dtype_bytes, TensorRole.INPUT)
    v = _t("V", ("b", "h", "f", "m"), (s.b, s.h, s.f, s.m), dtype_bytes, TensorRole.INPUT)
    return q, k, v


def _op(t: Tensor, *index: str) -> Operand:
    return Operand(t, tuple(index))


def three_pass(s: AttentionShape, dtype_bytes: int = 2) -> Graph:
    """QK; GM = max_m QK; SN = exp(QK - GM); SD = sum_m SN; A = SN / SD; AV = sum_m A V."""
    q, k, v = _inputs(s, dtype_bytes)
    bh = {"b": s.b, "h": s.h}
    qk = _t("QK", ("b", "h", "m", "p"), (s.b, s.h, s.m, s.p), dtype_bytes)
    gm = _t("GM", ("b", "h", "p"), (s.b, s.h, s.p), dtype_bytes)
    sn = _t("SN", ("b", "h", "m", "p"), (s.b, s.h, s.m, s.p), dtype_bytes)
    sd = _t("SD", ("b", "h", "p"), (s.b, s.h, s.p), dtype_bytes)
    a = _t("A", ("b", "h", "m", "p"), (s.b, s.h, s.m, s.p), dtype_bytes)
    av = _t("AV", ("b", "h", "f", "p"), (s.b, s.h, s.f, s.p), dtype_bytes, TensorRole.OUTPUT)
    bhmp = {**bh, "m": s.m, "p": s.p}
    return Graph("attention-3pass", [
        Einsum("QK", _op(qk, "b", "h", "m", "p"), (_op(q, "b", "h", "e", "p"), _op(k, "b", "h", "e", "m")),
               {**bhmp, "e": s.e}, OpKind.MAC, {"pass": 1}),
        Einsum("GM", _op(gm, "b", "h", "p"), (_op(qk, "b", "h", "m", "p"),), bhmp, OpKind.MAX, {"pass": 1}),
        Einsum("SN", _op(sn, "b", "h", "m", "p"), (_op(qk, "b", "h", "m", "p"), _op(gm, "b", "h", "p")),
               bhmp, OpKind.EXP, {"pass": 2}),
        Einsum("SD", _op(sd, "b", "h", "p"), (_op(sn, "b", "h", "m", "p"),), bhmp, OpKind.ADD, {"pass": 2}),
        Einsum("A", _op(a, "b", "h", "m", "p"), (_op(sn, "b", "h", "m", "p"), _op(sd, "b", "h", "p")),
               bhmp, OpKind.DIV, {"pass": 3}),
        Einsum("AV", _op(av, "b", "h", "f", "p"), (_op(a, "b", "h", "m", "p"), _op(v, "b", "h", "f", "m")),
               {**bhmp, "f": s.f}, OpKind.MAC, {"pass": 3}),
    ])


def _tiling(s: AttentionShape, m0: int) -> tuple[int, int]:
    if not isinstance(m0, int) or m0 <= 0:
        raise AccelsimError(f"must be a positive integer, got {m0!r}", field="m0")
    m0 = min(m0, s.m)
    return math.ceil(s.m / m0), m0


def _tiled_qk(s: AttentionShape, m1: int, m0: int, q: Tensor, k: Tensor, dtype_bytes: int) -> tuple[Tensor, Einsum]:
    qk = _t("QK", ("b", "h", "m1", "m0", "p"), (s.b, s.h, m1, m0, s.p), dtype_bytes)
    key = f"{m0}*m1+m0"
    ext = {"b": s.b, "h": s.h, "m1": m1, "m0": m0, "p": s.p, "e": s.e}
    # keys beyond M (partial last tile) read K as padding; their scores are -inf
    return qk, Einsum("QK", _op(qk, "b", "h", "m1", "m0", "p"), (_op(q, "b", "h", "e", "p"), _op(k, "b", "h", "e", key)),
                      ext, OpKind.MAC, {"empty_value": NEG_INF})


def _tiled_setup(s: AttentionShape, m0: int, dtype_bytes: int):
    """What the 2-pass and 1-pass cascades share: the M = M1 x M0 split, the inputs, the tiled QK
    Einsum, the extents of a tile and of a per-tile row, and a tensor maker at this dtype."""
    m1, m0 = _tiling(s, m0)
    q, k, v = _inputs(s, dtype_bytes)
    qk, qk_e = _tiled_qk(s, m1, m0, q, k, dtype_bytes)
    tile = {"b": s.b, "h": s.h, "m1": m1, "m0": m0, "p": s.p}
    row = {"b": s.b, "h": s.h, "m1": m1, "p": s.p}

    def make(name: str, dims: tuple[str, ...], shape: tuple[int, ...],
             role: TensorRole = TensorRole.ACTIVATION) -> Tensor:
        return _t(name, dims, shape, dtype_bytes, role)

    return m1, m0, q, k, v, qk, qk_e, tile, row, make


def two_pass(s: AttentionShape, m0: int = 256, dtype_bytes: int = 2) -> Graph:
    """Pass 1 per tile: QK, local max LM, SLN = exp(QK - LM), local sum SLD; then the global max
    GM = max_m1 LM, the correction PRM = exp(LM - GM), SD = sum_m1 SLD * PRM. Pass 2 re-reads the
    tiles: A = SLN * PRM / SD and AV = sum A V."""
    m1, m0, q, k, v, qk, qk_e, tile, row, T = _tiled_setup(s, m0, dtype_bytes)
    lm = T("LM", ("b", "h", "m1", "p"), (s.b, s.h, m1, s.p))
    sln = T("SLN", ("b", "h", "m1", "m0", "p"), (s.b, s.h, m1, m0, s.p))
    sld = T("SLD", ("b", "h", "m1", "p"), (s.b, s.h, m1, s.p))
    gm = T("GM", ("b", "h", "p"), (s.b, s.h, s.p))
    prm = T("PRM", ("b", "h", "m1", "p"), (s.b, s.h, m1, s.p))
    spd = T("SPD", ("b", "h", "m1", "p"), (s.b, s.h, m1, s.p))
    sd = T("SD", ("b", "h", "p"), (s.b, s.h, s.p))
    sna = T("SNA", ("b", "h", "m1", "m0", "p"), (s.b, s.h, m1, m0, s.p))
    a = T("A", ("b", "h", "m1", "m0", "p"), (s.b, s.h, m1, m0, s.p))
    av = T("AV", ("b", "h", "f", "p"), (s.b, s.h, s.f, s.p), TensorRole.OUTPUT)
    t5 = ("b", "h", "m1", "m0", "p")
    t4 = ("b", "h", "m1", "p")
    return Graph("attention-2pass", [
        qk_e,
        Einsum("LM", _op(lm, *t4), (_op(qk, *t5),), tile, OpKind.MAX, {"pass": 1}),
        Einsum("SLN", _op(sln, *t5), (_op(qk, *t5), _op(lm, *t4)), tile, OpKind.EXP, {"pass": 1}),
        Einsum("SLD", _op(sld, *t4), (_op(sln, *t5),), tile, OpKind.ADD, {"pass": 1}),
        Einsum("GM", _op(gm, "b", "h", "p"), (_op(lm, *t4),), row, OpKind.MAX, {"pass": 1}),
        Einsum("PRM", _op(prm, *t4), (_op(lm, *t4), _op(gm, "b", "h", "p")), row, OpKind.EXP, {"pass": 1}),
        Einsum("SPD", _op(spd, *t4), (_op(sld, *t4), _op(prm, *t4)), row, OpKind.MUL, {"pass": 1}),
        Einsum("SD", _op(sd, "b", "h", "p"), (_op(spd, *t4),), row, OpKind.ADD, {"pass": 1}),
        Einsum("SNA", _op(sna, *t5), (_op(sln, *t5), _op(prm, *t4)), tile, OpKind.MUL, {"pass": 2}),
        Einsum("A", _op(a, *t5), (_op(sna, *t5), _op(sd, "b", "h", "p")), tile, OpKind.DIV, {"pass": 2}),
        Einsum("AV", _op(av, "b", "h", "f", "p"), (_op(a, *t5), _op(v, "b", "h", "f", f"{m0}*m1+m0")),
               {**tile, "f": s.f}, OpKind.MAC, {"pass": 2}),
    ])


def one_pass(s: AttentionShape, m0: int = 256, dtype_bytes: int = 2) -> Graph:
    """FuseMax's 1-pass cascade (PAPERS.md; the artifact's Einsums, M = M1 x M0).

    Per key tile m1: QK; LM = max_m0 QK; running max RM[m1] = max(RM[m1-1], LM[m1]);
    SLN = exp(QK - RM[m1]); PRM = exp(RM[m1-1] - RM[m1]); SLD = sum_m0 SLN;
    RD[m1] = SLD + PRM * RD[m1-1] (the paper's SPD + RD); SLNV = sum_m0 SLN * V;
    RNV[m1] = SLNV + PRM * RNV[m1-1] (SPNV + RNV); finally AV = RNV[M1-1] / RD[M1-1].
    Here ``RM[m1]`` is the paper's ``RM[m1+1]`` (the state after tile m1).
    """
    m1, m0, q, k, v, qk, qk_e, tile, row, T = _tiled_setup(s, m0, dtype_bytes)
    t5 = ("b", "h", "m1", "m0", "p")
    t4 = ("b", "h", "m1", "p")
    tf = ("b", "h", "m1", "f", "p")
    lm = T("LM", t4, (s.b, s.h, m1, s.p))
    rm = T("RM", t4, (s.b, s.h, m1, s.p))
    sln = T("SLN", t5, (s.b, s.h, m1, m0, s.p))
    prm = T("PRM", t4, (s.b, s.h, m1, s.p))
    sld = T("SLD", t4, (s.b, s.h, m1, s.p))
    rd = T("RD", t4, (s.b, s.h, m1, s.p))
    slnv = T("SLNV", tf, (s.b, s.h, m1, s.f, s.p))
    rnv = T("RNV", tf, (s.b, s.h, m1, s.f, s.p))
    av = T("AV", ("b", "h", "f", "p"), (s.b, s.h, s.f, s.p), TensorRole.OUTPUT)
    last = str(m1 - 1)
    # the max before tile m1; with a single tile there is no earlier one, and PRM[0] is never
    # used (the recurrences start from RD[-1] = RNV[-1] = 0), so read the current max instead
    prev = "m1-1" if m1 > 1 else "m1"
    return Graph("attention-1pass", [
        qk_e,
        Einsum("LM", _op(lm, *t4), (_op(qk, *t5),), tile, OpKind.MAX),
        Einsum("RM", _op(rm, *t4), (_op(lm, *t4),), row, OpKind.MAX, {"scan": "m1"}),
        Einsum("SLN", _op(sln, *t5), (_op(qk, *t5), _op(rm, *t4)), tile, OpKind.EXP),
        Einsum("PRM", _op(prm, *t4), (_op(rm, "b", "h", prev, "p"), _op(rm, *t4)), row, OpKind.EXP,
               {"pad": {"RM": NEG_INF}}),
        Einsum("SLD", _op(sld, *t4), (_op(sln, *t5),), tile, OpKind.ADD),
        Einsum("RD", _op(rd, *t4), (_op(sld, *t4), _op(prm, *t4)), row, OpKind.ADD,
               {"scan": "m1", "carry_scale": "PRM", "fused": ["SPD", "RD"]}),
        Einsum("SLNV", _op(slnv, *tf), (_op(sln, *t5), _op(v, "b", "h", "f", f"{m0}*m1+m0")),
               {**tile, "f": s.f}, OpKind.MAC),
        Einsum("RNV", _op(rnv, *tf), (_op(slnv, *tf), _op(prm, *t4)), {**row, "f": s.f}, OpKind.ADD,
               {"scan": "m1", "carry_scale": "PRM", "fused": ["SPNV", "RNV"]}),
        Einsum("AV", _op(av, "b", "h", "f", "p"), (_op(rnv, "b", "h", last, "f", "p"), _op(rd, "b", "h", last, "p")),
               {"b": s.b, "h": s.h, "f": s.f, "p": s.p}, OpKind.DIV),
    ])


CASCADES = {"3pass": three_pass, "2pass": two_pass, "1pass": one_pass}


def cascade(kind: str, s: AttentionShape, m0: int = 256, dtype_bytes: int = 2) -> Graph:
    if kind not in CASCADES:
        raise AccelsimError(f"unknown cascade {kind!r}", field="cascade", allowed=sorted(CASCADES))
    if kind == "3pass":
        return three_pass(s, dtype_bytes)
    return CASCADES[kind](s, m0, dtype_bytes)


def mapped_graph(s: AttentionShape, mapping, dtype_bytes: int = 2) -> Graph:
    """The cascade Graph a Mapping names (``attention-1pass`` split at its tiling's ``m0``,
    ``attention-2pass``, ``attention-3pass``), to replay the mapping on."""
    kinds = {f"attention-{k}": k for k in CASCADES}
    kind = kinds.get(mapping.graph)
    if kind is None:
        raise AccelsimError(f"mapping is for graph {mapping.graph!r}, not an attention cascade",
                            field="mapping.graph", allowed=sorted(kinds))
    m0 = next((t.get("m0") for t in mapping.tiling.values() if isinstance(t, dict) and "m0" in t), None)
    if kind != "3pass" and m0 is None:
        raise AccelsimError("a tiled cascade's mapping needs tiling m0", field="mapping.tiling")
    return cascade(kind, s, m0=m0 or 256, dtype_bytes=dtype_bytes)
