"""Transformer blocks and whole models as Graphs of Einsums, from a ModelConfig.

Layout. Activations are ``[b, s, d]`` (batch, positions processed now, hidden). Queries are
``[b, s, g, r, e]`` with ``g`` KV heads and ``r = heads / kv_heads`` query heads per KV head,
so one Einsum ``S[b,g,r,s,m] = Q[b,s,g,r,e] * K[b,m,g,e]`` covers MHA (r = 1), GQA and MQA
(g = 1) and shows the KV reuse exactly. Every projection is an Einsum straight into that
layout (no reshape operators).

Phases. ``prefill``: ``s = seq`` new positions per sequence, keys ``m = seq``, K/V written to
the cache. ``decode``: ``s = 1`` new position, K/V of the new token written to the cache, then
attention reads ``m = context + 1`` rows from the cache (the ``context`` rows already there plus
the one just appended, as paged-attention kernels do after ``reshape_and_cache``).

Counting conventions an engine must honour (both are Einsum ``attrs``):
- ``flop_fraction``: the fraction of the iteration space that is actually computed. Causal
  prefill scores use only the lower triangle, ``s(s+1)/2`` of the ``s*s`` points per head,
  so QK^T, softmax and PV carry ``flop_fraction = (s+1)/(2s)`` and ``attrs["causal"] = True``.
  Tensor shapes stay the full rectangle. MoE experts use it too (see ``workloads.moe``).
- ``touched``: ``{tensor name: fraction}`` of a tensor an Einsum actually reads, for gathers:
  an embedding lookup touches ``min(tokens, vocab) / vocab`` of the table, an MoE layer
  touches ``distinct experts / experts`` of its expert weights.
``accelsim.engines.roofline.einsum_flops`` and ``einsum_traffic`` apply them.

Whole models. Identical layers are built once: a ``ModelGraph`` holds parts, each a Graph
and a repeat count (embedding x1, block x layers, head x1), so a 70B decode step is ~40
Einsums, not 3,000, and builds and evaluates in milliseconds. ``ModelGraph.expand()`` gives
the flat Graph when a consumer needs one.

Tensor parallelism (Megatron style). With degree ``tp`` each device holds ``heads/tp`` query
heads, ``max(1, kv_heads/tp)`` KV heads (KV heads are replicated when fewer than ``tp``),
``ffn/tp`` FFN columns (each expert's FFN is split the same way), and the vocabulary split
``vocab/tp``. Row-parallel outputs (attention output projection, FFN down) end in an
all-reduce Einsum (OpKind.ALLREDUCE) over ``[b, s, d]`` with ``attrs`` ``participants = tp`` and
``collective_bytes = 2 (tp-1)/tp * size`` (ring all-reduce, bytes each device sends). The
graph is one device's work. Norms and residuals are replicated, and so is the input token
embedding (not vocabulary-sharded, unlike Megatron's VocabParallelEmbedding: a gather of b*s rows
reads little, but every device holds the whole table). The LM head is vocabulary-sharded; tied to
the embedding, it reads ``embed.weight_shard``, a slice of the replicated table that
``accelsim.ir.resident`` does not count again.

Lengths (``workloads.context``). A model with a learned position table cannot run past
``max_positions`` (prefill ``seq``, or decode ``context + 1``); that is an error, never clamped.
A rotary model refuses lengths past ``max_position_embeddings`` unless ``allow_long_context``.
A sliding-window model (Mistral) attends to the last ``sliding_window`` positions: decode reads
``min(context + 1, W)`` cached rows, prefill's attention carries the banded ``flop_fraction``
and writes only the last ``W`` rows to the cache.

Encoder-decoders (T5). Prefill runs the encoder stack, its final norm, and the decoder, whose
cross-attention K/V of the encoder output are computed once and written to the cache; decode
runs the decoder only and reads that cache (the encoder's weights are then not part of the
graph, so they are not counted as resident). The bucketed relative position-bias tables are a
gather per stack.
"""
from __future__ import annotations

import math
from typing import Literal

from accelsim.errors import AccelsimError
from accelsim.ir import Einsum, Graph, ModelGraph, Operand, OpKind, Part, Tensor, TensorRole  # noqa: F401 (re-exported)
from workloads.config import ModelConfig
from workloads.context import attended_keys, causal_pairs, check_lengths

Phase = Literal["prefill", "decode"]
PHASES = ("prefill", "decode")
W, A, I, KV = TensorRole.WEIGHT, TensorRole.ACTIVATION, TensorRole.INPUT, TensorRole.KV_CACHE
from workloads.builder import BlockBuilder, Dims as _Dims, dense_ffn as _dense_ffn, shard as _shard  # noqa: E402,F401
from workloads.model_ends import _embedding, _encoder_final_norm, _head, _position_bias  # noqa: E402,F401


# ----------------------------------------------------------------------------------------------
def _dims(cfg: ModelConfig, phase: str, batch: int, seq: int, context: int, tp: int,
          allow_long_context: bool = False) -> _Dims:
    if phase not in PHASES:
        raise AccelsimError(f"unknown phase {phase!r}", field="phase", allowed=PHASES)
    for label, v in (("batch", batch), ("seq", seq), ("tp", tp)):
        if not isinstance(v, int) or v <= 0:
            raise AccelsimError(f"must be a positive integer, got {v!r}", field=label)
    if phase == "decode" and (not isinstance(context, int) or context < 0):
        raise AccelsimError(f"must be a non-negative integer, got {context!r}", field="context")
    check_lengths(cfg, phase, batch, seq, context, allow_long_context=allow_long_context)
    heads = _shard(cfg.num_heads, tp, "num_heads")
    kv = cfg.kv_heads
    if kv >= tp:
        g = _shard(kv, tp, "num_kv_heads")
    elif tp % kv:
        raise AccelsimError(f"num_kv_heads ({kv}) must divide the tensor-parallel degree {tp} when smaller",
                            field="tp")
    else:
        g = 1  # replicated KV head
    if cfg.mla is not None:
        g = 1  # MLA: one shared latent per token
    r = heads // g if cfg.mla is None else heads
    # prefill keeps the full [s, s] score rectangle (a window shows in flop_fraction); decode reads
    # the cached rows it attends: all context + 1, or the last sliding_window of them
    s, m = (seq, seq) if phase == "prefill" else (1, attended_keys(cfg, context + 1))
    return _Dims(b=batch, s=s, m=m, d=cfg.hidden_size, heads=heads, g=g, r=r, e=cfg.head_size,
                 ffn=_shard(cfg.ffn_size, tp, "ffn_size"), vocab=math.ceil(cfg.vocab_size / tp), tp=tp)


def _attention(bb: BlockBuilder, x: Tensor, D: _Dims, phase: str, *, causal: bool, cache: bool,
               name: str = "attn", memory: Tensor | None = None, memory_len: int | None = None) -> Tensor:
    """Multi-head / grouped-query / multi-query attention; ``memory`` makes it cross-attention."""
    cfg = bb.cfg
    sz = dict(b=D.b, s=D.s, d=D.d, g=D.g, r=D.r, e=D.e, m=D.m)
    n = name + "."
    q = bb.linear(n + "q", x, "bsd", n + "wq", "dgre", "bsgre", sz, bias=cfg.qkv_bias)
    if memory is None:
        kv_src, kv_sz = x, dict(sz)
    else:
        kv_sz = dict(sz, s=memory_len, m=memory_len)
        kv_src = memory
    mlen = D.m if memory is None else memory_len
    sz["m"] = mlen
    if memory is not None and phase == "decode":
        # cross-attention K/V of the encoder output are computed once (prefill) and cached, so
        # decode reads the cache and never touches the cross-attention K/V weights
        k = bb.t(n + "k_cache", "bmge", (D.b, mlen, D.g, D.e), KV, dtype=cfg.kv_bytes)
        v = bb.t(n + "v_cache", "bmge", (D.b, mlen, D.g, D.e), KV, dtype=cfg.kv_bytes)
    else:
        k = bb.linear(n + "k", kv_src, "bsd", n + "wk", "dge", "bsge", kv_sz, bias=cfg.qkv_bias)
        v = bb.linear(n + "v", kv_src, "bsd", n + "wv", "dge", "bsge", kv_sz, bias=cfg.qkv_bias)
        if cfg.qk_norm:
            q = bb.norm(n + "q_norm", q, "bsgre", sz)
            k = bb.norm(n + "k_norm", k, "bsge", kv_sz)
        if cfg.position == "rope" and memory is None:
            q = bb.rope(n + "q_rope", q, "bsgre", sz, "e")
            k = bb.rope(n + "k_rope", k, "bsge", sz, "e")
        if cache:
            _cache_write(bb, n, k, v, kv_sz, windowed=memory is None)
        if phase == "decode" and memory is None:
            k = bb.t(n + "k_cache", "bmge", (D.b, mlen, D.g, D.e), KV, dtype=cfg.kv_bytes)
            v = bb.t(n + "v_cache", "bmge", (D.b, mlen, D.g, D.e), KV, dtype=cfg.kv_bytes)
        else:  # prefill attends to the freshly computed keys: rename the position rank to m
            pass
    k_idx = "bmge"
    frac = 1.0
    if causal and phase == "prefill" and memory is None:
        window = cfg.sliding_window if cfg.sliding_window is not None and D.s > cfg.sliding_window else None
        # the computed share of the [s, s] rectangle: the causal triangle, or the band of a sliding window
        frac = (D.s + 1) / (2 * D.s) if window is None else causal_pairs(D.s, window) / (D.s * D.s)
    ext = {c: sz[c] for c in "bgrsme"}
    scores = bb.t(n + "scores", "bgrsm", (D.b, D.g, D.r, D.s, mlen))
    bb.add(n + "qk", scores, "bgrsm", [(q, "bsgre"), (k, k_idx)], ext, OpKind.MAC, kind="attention_qk",
           causal=frac != 1.0, flop_fraction=frac)
    if cfg.attn_logit_softcap is not None and memory is None:  # Gemma 2: c * tanh(scores / c)
        capped = bb.t(n + "scores_capped", "bgrsm", scores.shape)
        bb.add(n + "softcap", capped, "bgrsm", [(scores, "bgrsm")], {c: sz[c] for c in "bgrsm"}, OpKind.ACTIVATION,
               kind="attention_softcap", causal=frac != 1.0, flop_fraction=frac)
        scores = capped
    probs = bb.t(n + "probs", "bgrsm", scores.shape)
    bb.add(n + "softmax", probs, "bgrsm", [(scores, "bgrsm")], {c: sz[c] for c in "bgrsm"}, OpKind.EXP,
           kind="softmax", causal=frac != 1.0, flop_fraction=frac)
    ctx = bb.t(n + "ctx", "bsgre", q.shape)
    bb.add(n + "pv", ctx, "bsgre", [(probs, "bgrsm"), (v, k_idx)], ext, OpKind.MAC, kind="attention_pv",
           causal=frac != 1.0, flop_fraction=frac)
    if cfg.relative_position_projection and memory is None:
        # Transformer-XL: positional keys R = r_net(pos_emb) [m, heads, e] and their scores
        rk = bb.linear(n + "r", bb.t("rel_pos_emb", "md", (mlen, D.d), I, shared=True), "md", n + "wr", "dgre",
                       "mgre", sz)
        rs = bb.t(n + "pos_scores", "bgrsm", scores.shape)
        bb.add(n + "q_r", rs, "bgrsm", [(q, "bsgre"), (rk, "mgre")], ext, OpKind.MAC, kind="attention_qr")
        for bias in ("r_w_bias", "r_r_bias"):  # per-layer learned biases (untie_r)
            bb.ops.append(Einsum(bb.p + n + bias, Operand(bb.t(n + bias + "_q", "bsgre", q.shape), tuple("bsgre")),
                                 (Operand(q, tuple("bsgre")), Operand(bb.t(n + bias, "gre", (D.g, D.r, D.e), W),
                                                                      tuple("gre"))),
                                 {c: sz[c] for c in "bsgre"}, OpKind.ADD, {"kind": "bias"}))
    o_bias = cfg.proj_bias if cfg.attn_out_bias is None else cfg.attn_out_bias
    o = bb.linear(n + "o", ctx, "bsgre", n + "wo", "gred", "bsd", sz, bias=o_bias)
    return bb.allreduce(n + "allreduce", o, "bsd", sz, D.tp)


def _cache_write(bb: BlockBuilder, n: str, k: Tensor, v: Tensor, sz: dict[str, int], *, windowed: bool) -> None:
    """Append the new K/V rows to the cache. A sliding-window cache keeps only the last
    ``sliding_window`` positions, so a longer prefill writes just those (``w`` rows at offset ``s - w``)."""
    cfg = bb.cfg
    s = sz["s"]
    w = cfg.sliding_window if windowed and cfg.sliding_window is not None and s > cfg.sliding_window else s
    r = "s" if w == s else "w"  # the rank of the written rows
    ext = {"b": sz["b"], r: w, "g": sz["g"], "e": sz["e"]}
    rows = r if w == s else f"w+{s - w}"
    for src, name in ((k, "k_cache_write"), (v, "v_cache_write")):
        out = bb.t(n + name, f"b{r}ge", (sz["b"], w, sz["g"], sz["e"]), KV, dtype=cfg.kv_bytes)
        attrs = {} if w == s else {"touched": {src.name: w / s}}
        bb.ops.append(Einsum(bb.p + n + name, Operand(out, ("b", r, "g", "e")), (Operand(src, ("b", rows, "g", "e")),),
                             ext, OpKind.COPY, {"kind": "kv_write", **attrs}))


def _mla(bb: BlockBuilder, x: Tensor, D: _Dims, phase: str) -> Tensor:
    """DeepSeek MLA. Prefill expands the latent into per-head K/V; decode absorbs W_UK into the
    query and W_UV after attention, attending directly over the cached latent (DeepSeek-V2 Sec.
    2.1.2 'absorbed' inference), so decode reads only ``kv_lora_rank + rope`` values per token."""
    mla = bb.cfg.mla
    assert mla is not None
    h = D.heads
    sz = dict(b=D.b, s=D.s, d=D.d, h=h, m=D.m, n=mla.qk_nope_head_dim, p=mla.qk_rope_head_dim,
              v=mla.v_head_dim, c=mla.kv_lora_rank, l=mla.q_lora_rank or 1)
    if mla.q_lora_rank:
        qa = bb.linear("attn.q_a", x, "bsd", "attn.wq_a", "dl", "bsl", sz)
        qa = bb.norm("attn.q_a_norm", qa, "bsl", sz)
        q_nope = bb.linear("attn.q_nope", qa, "bsl", "attn.wq_b_nope", "lhn", "bshn", sz)
        q_pe = bb.linear("attn.q_pe", qa, "bsl", "attn.wq_b_rope", "lhp", "bshp", sz)
    else:
        q_nope = bb.linear("attn.q_nope", x, "bsd", "attn.wq_nope", "dhn", "bshn", sz)
        q_pe = bb.linear("attn.q_pe", x, "bsd", "attn.wq_rope", "dhp", "bshp", sz)
    c_kv = bb.linear("attn.kv_a", x, "bsd", "attn.wkv_a", "dc", "bsc", sz)
    k_pe = bb.linear("attn.k_pe", x, "bsd", "attn.wk_rope", "dp", "bsp", sz)
    c_kv = bb.norm("attn.kv_a_norm", c_kv, "bsc", sz)
    q_pe = bb.rope("attn.q_rope", q_pe, "bshp", sz, "p")
    k_pe = bb.rope("attn.k_rope", k_pe, "bsp", sz, "p")
    kvb = bb.cfg.kv_bytes
    bb.add("attn.ckv_cache_write", bb.t("attn.ckv_cache_write", "bsc", c_kv.shape, KV, dtype=kvb), "bsc",
           [(c_kv, "bsc")], {c: sz[c] for c in "bsc"}, OpKind.COPY, kind="kv_write")
    bb.add("attn.kpe_cache_write", bb.t("attn.kpe_cache_write", "bsp", k_pe.shape, KV, dtype=kvb), "bsp",
           [(k_pe, "bsp")], {c: sz[c] for c in "bsp"}, OpKind.COPY, kind="kv_write")
    w_uk = bb.t("attn.wkv_b_k", "chn", (sz["c"], h, sz["n"]), W)
    w_uv = bb.t("attn.wkv_b_v", "chv", (sz["c"], h, sz["v"]), W)
    causal = phase == "prefill"
    frac = (D.s + 1) / (2 * D.s) if causal else 1.0
    sc_shape = (D.b, h, D.s, D.m)
    if phase == "prefill":
        keys = bb.t("attn.k_nope", "bmhn", (D.b, D.m, h, sz["n"]))
        bb.add("attn.k_up", keys, "bmhn", [(c_kv, "bmc"), (w_uk, "chn")], {c: sz[c] for c in "bmhnc"}, OpKind.MAC,
               kind="gemm")
        vals = bb.t("attn.v", "bmhv", (D.b, D.m, h, sz["v"]))
        bb.add("attn.v_up", vals, "bmhv", [(c_kv, "bmc"), (w_uv, "chv")], {c: sz[c] for c in "bmhvc"}, OpKind.MAC,
               kind="gemm")
        s1 = bb.add("attn.qk_nope", bb.t("attn.scores_nope", "bhsm", sc_shape), "bhsm",
                    [(q_nope, "bshn"), (keys, "bmhn")], {c: sz[c] for c in "bhsmn"}, OpKind.MAC,
                    kind="attention_qk", causal=True, flop_fraction=frac)
        kpe_keys, kpe_idx = k_pe, "bmp"
    else:
        ckv_cache = bb.t("attn.ckv_cache", "bmc", (D.b, D.m, sz["c"]), KV, dtype=kvb)
        kpe_keys, kpe_idx = bb.t("attn.kpe_cache", "bmp", (D.b, D.m, sz["p"]), KV, dtype=kvb), "bmp"
        q_lat = bb.add("attn.q_absorb", bb.t("attn.q_latent", "bshc", (D.b, D.s, h, sz["c"])), "bshc",
                       [(q_nope, "bshn"), (w_uk, "chn")], {c: sz[c] for c in "bshnc"}, OpKind.MAC, kind="gemm")
        s1 = bb.add("attn.qk_nope", bb.t("attn.scores_nope", "bhsm", sc_shape), "bhsm",
                    [(q_lat, "bshc"), (ckv_cache, "bmc")], {c: sz[c] for c in "bhsmc"}, OpKind.MAC,
                    kind="attention_qk")
    s2 = bb.add("attn.qk_rope", bb.t("attn.scores_rope", "bhsm", sc_shape), "bhsm",
                [(q_pe, "bshp"), (kpe_keys, kpe_idx)], {c: sz[c] for c in "bhsmp"}, OpKind.MAC,
                kind="attention_qk", causal=causal, flop_fraction=frac)
    sc = bb.pointwise("attn.scores", OpKind.ADD, s1, s2, "bhsm", sz, kind="attention_scores", flop_fraction=frac)
    probs = bb.pointwise("attn.probs", OpKind.EXP, sc, None, "bhsm", sz, kind="softmax", causal=causal,
                         flop_fraction=frac)
    if phase == "prefill":
        ctx = bb.add("attn.pv", bb.t("attn.ctx", "bshv", (D.b, D.s, h, sz["v"])), "bshv",
                     [(probs, "bhsm"), (vals, "bmhv")], {c: sz[c] for c in "bhsmv"}, OpKind.MAC,
                     kind="attention_pv", causal=True, flop_fraction=frac)
    else:
        o_lat = bb.add("attn.pv", bb.t("attn.ctx_latent", "bshc", (D.b, D.s, h, sz["c"])), "bshc",
                       [(probs, "bhsm"), (ckv_cache, "bmc")], {c: sz[c] for c in "bhsmc"}, OpKind.MAC,
                       kind="attention_pv")
        ctx = bb.add("attn.v_absorb", bb.t("attn.ctx", "bshv", (D.b, D.s, h, sz["v"])), "bshv",
                     [(o_lat, "bshc"), (w_uv, "chv")], {c: sz[c] for c in "bshcv"}, OpKind.MAC, kind="gemm")
    o = bb.linear("attn.o", ctx, "bshv", "attn.wo", "hvd", "bsd", sz)
    return bb.allreduce("attn.allreduce", o, "bsd", sz, D.tp)


SCORE_KINDS = frozenset({"attention_qk", "attention_qr", "attention_scores", "attention_softcap", "softmax"})


def _keep_scores_on_chip(ops: list[Einsum]) -> list[Einsum]:
    """FlashAttention-style fusion: attention scores and probabilities never reach DRAM.

    Marks every score/probability tensor ``touched = 0`` in every Einsum that reads or writes
    it, so traffic engines count no bytes for them; FLOPs are unchanged. A cache tensor read
    both as keys (QK^T) and as values (PV), which is MLA's absorbed decode over the compressed
    latent, is read once by the fused kernel (FlashMLA loads each latent tile once and uses it
    for both products), so its read is counted in QK^T and ``touched = 0`` in PV.
    """
    from dataclasses import replace

    names = {e.output.tensor.name for e in ops if e.attrs.get("kind") in SCORE_KINDS}
    key_reads = {t.name for e in ops if e.attrs.get("kind") == "attention_qk" for t in (o.tensor for o in e.inputs)
                 if t.role is TensorRole.KV_CACHE}
    out = []
    for e in ops:
        hit = {t.name for t in e.tensors} & names
        if e.attrs.get("kind") == "attention_pv":
            hit |= {o.tensor.name for o in e.inputs} & key_reads
        if hit:
            touched = dict(e.attrs.get("touched", {})) | {n: 0.0 for n in hit}
            e = replace(e, attrs=dict(e.attrs) | {"touched": touched, "fused_attention": True})
        out.append(e)
    return out


def _block(cfg: ModelConfig, D: _Dims, phase: str, *, kind: str, moe_routing: object | None = None,
           memory_len: int | None = None, flash: bool = True) -> Graph:
    """One layer: pre-norm (decoder-only models) or post-norm (BERT, XLM, T5 uses pre-norm).

    ``kind``: ``encoder`` (bidirectional, no cache), ``decoder`` (causal, cache), ``cross``
    (T5 decoder: causal self-attention, cross-attention over ``memory_len`` encoder outputs).
    """
    bb = BlockBuilder(cfg, "")
    sz = dict(b=D.b, s=D.s, d=D.d)
    x = bb.t("x", "bsd", (D.b, D.s, D.d), I)
    post_norm = cfg.architecture == "encoder"  # BERT and XLM normalise after the residual add
    causal = kind != "encoder"
    h_in = x if post_norm else bb.norm("attn_norm", x, "bsd", sz)
    if cfg.mla is not None:
        a = _mla(bb, h_in, D, phase)
    else:
        a = _attention(bb, h_in, D, phase, causal=causal, cache=causal)
    if cfg.post_norms:
        a = bb.norm("post_attn_norm", a, "bsd", sz)
    h = bb.pointwise("attn_residual", OpKind.ADD, x, a, "bsd", sz, kind="residual")
    if post_norm:
        h = bb.norm("attn_norm", h, "bsd", sz)
    if kind == "cross":
        mem = bb.t("encoder_out", "bsd", (D.b, memory_len, D.d), I)
        c_in = bb.norm("cross_norm", h, "bsd", sz)
        # prefill computes the cross-attention K/V of the encoder output once and writes them to the
        # cache that every decode step reads (cache=True writes them; decode reads the cache)
        c = _attention(bb, c_in, D, phase, causal=False, cache=phase == "prefill", name="cross", memory=mem,
                       memory_len=memory_len)
        h = bb.pointwise("cross_residual", OpKind.ADD, h, c, "bsd", sz, kind="residual")
    f_in = h if post_norm else bb.norm("ffn_norm", h, "bsd", sz)
    if moe_routing is not None:
        from workloads.moe import moe_ffn

        f = moe_ffn(bb, f_in, D, moe_routing)
    else:
        f = _dense_ffn(bb, f_in, D, D.ffn)
    if cfg.post_norms:
        f = bb.norm("post_ffn_norm", f, "bsd", sz)
    y = bb.pointwise("ffn_residual", OpKind.ADD, h, f, "bsd", sz, kind="residual")
    if post_norm:
        y = bb.norm("ffn_norm", y, "bsd", sz)
    return Graph(f"{cfg.name}.{kind}-block", _keep_scores_on_chip(bb.ops) if flash else bb.ops)


def build_block(cfg: ModelConfig, phase: Phase = "prefill", *, batch: int = 1, seq: int = 512, context: int = 0,
                tp: int = 1, layer: int | None = None, routing: object | None = None,
                fused_attention: bool = True, allow_long_context: bool = False) -> Graph:
    """One transformer layer's Graph for ``phase`` (see the module docstring for the layout)."""
    k = cfg.full_attention_every
    if k is not None and layer is not None and (layer + 1) % k == 0:  # a full-attention layer (Gemma 2)
        cfg = cfg.model_copy(update={"sliding_window": None, "full_attention_every": None})
    D = _dims(cfg, phase, batch, seq, context, tp, allow_long_context)
    kind = "encoder" if cfg.architecture == "encoder" else "decoder"
    moe = cfg.moe is not None and (layer is None or layer >= cfg.moe.first_dense_layers)
    if moe:
        from workloads.moe import route

        routing = routing if routing is not None else route(D.b * D.s, cfg.moe.num_experts, cfg.moe.top_k,
                                                            capacity_factor=cfg.moe.capacity_factor)
    return _block(cfg, D, phase, kind=kind, moe_routing=routing if moe else None, flash=fused_attention)


def _chained(name: str, graph: Graph, repeat: int = 1) -> Part:
    """A Part whose hidden state enters as ``x``/``head.x`` and leaves as its last Einsum's output."""
    inp = next((n for n in ("x", "head.x") if n in graph.tensors), None)
    return Part(name, graph, repeat, input=inp, output=graph.einsums[-1].output.tensor.name)


def build_model(cfg: ModelConfig, phase: Phase = "prefill", *, batch: int = 1, seq: int = 512, context: int = 0,
                tp: int = 1, routing: object | None = None, fused_attention: bool = True,
                allow_long_context: bool = False) -> ModelGraph:
    """The whole model for one phase as a ModelGraph (embedding, repeated blocks, head).

    ``seq`` is the prompt length (prefill) and, for an encoder-decoder in decode, the encoder
    length the cross-attention reads; ``context`` is the cached length in decode. ``routing``
    (a ``workloads.moe.Routing``) overrides uniform expected routing for MoE layers.
    ``fused_attention`` (default, FlashAttention-style) keeps attention scores and
    probabilities on chip; False materialises them in DRAM (eager attention).
    ``allow_long_context`` runs a rotary model past its trained ``max_position_embeddings``
    (the user extends it, e.g. with YaRN); it is recorded in the graph's meta.
    """
    if cfg.architecture == "encoder" and phase == "decode":
        raise AccelsimError(f"{cfg.name} is an encoder-only model; it has no decode phase", field="phase",
                            allowed=["prefill"])
    D = _dims(cfg, phase, batch, seq, context, tp, allow_long_context)
    parts = [_chained("embed", _embedding(cfg, D, phase, context))]
    if cfg.relative_attention_buckets:
        parts.append(Part("position_bias", _position_bias(cfg, D, phase)))  # off the hidden-state chain
    if cfg.architecture == "encoder-decoder":
        if phase == "prefill":
            parts.append(_chained("encoder", _block(cfg, D, phase, kind="encoder", flash=fused_attention), cfg.num_layers))
            norm = _encoder_final_norm(cfg, D)
            parts.append(Part("encoder_norm", norm, input="encoder.x", output=norm.einsums[-1].output.tensor.name))
        parts.append(_chained("decoder", _block(cfg, D, phase, kind="cross", memory_len=seq, flash=fused_attention),
                              cfg.num_decoder_layers))
    elif cfg.moe is not None:
        from workloads.moe import route

        routing = routing if routing is not None else route(D.b * D.s, cfg.moe.num_experts, cfg.moe.top_k,
                                                            capacity_factor=cfg.moe.capacity_factor)
        dense = cfg.moe.first_dense_layers
        kind = "encoder" if cfg.architecture == "encoder" else "decoder"
        if dense:
            parts.append(_chained("dense_block", _block(cfg, D, phase, kind=kind, flash=fused_attention), dense))
        parts.append(_chained("moe_block", _block(cfg, D, phase, kind=kind, moe_routing=routing, flash=fused_attention),
                          cfg.num_layers - dense))
    elif cfg.full_attention_every is not None:
        # alternating windowed and full-attention layers (Gemma 2): one part for each kind, each repeated
        # (a step's cost is the sum over layers, so grouping them does not change it)
        full_cfg = cfg.model_copy(update={"sliding_window": None, "full_attention_every": None})
        n_full = cfg.num_layers // cfg.full_attention_every
        D_full = _dims(full_cfg, phase, batch, seq, context, tp, allow_long_context)
        parts.append(_chained("local_block", _block(cfg, D, phase, kind="decoder", flash=fused_attention),
                              cfg.num_layers - n_full))
        if n_full:
            parts.append(_chained("block", _block(full_cfg, D_full, phase, kind="decoder", flash=fused_attention),
                                  n_full))
    else:
        kind = "encoder" if cfg.architecture == "encoder" else "decoder"
        parts.append(_chained("block", _block(cfg, D, phase, kind=kind, flash=fused_attention), cfg.num_layers))
    head = _head(cfg, D, phase)
    if head is not None:
        parts.append(_chained("head", head))
    meta = dict(phase=phase, batch=batch, seq=seq, context=context, tp=tp, attention=cfg.attention_kind,
                fused_attention=fused_attention, sliding_window=cfg.sliding_window,
                allow_long_context=allow_long_context)
    return ModelGraph(f"{cfg.name}-{phase}-b{batch}-s{seq}-c{context}-tp{tp}", parts, cfg, meta)


def parameter_count(cfg: ModelConfig) -> int:
    """Parameters derived from the weight tensors of the built graph (tp = 1)."""
    return build_model(cfg, "prefill", batch=1, seq=1).weight_elements()
