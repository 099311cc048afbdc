"""The parts of a model around its blocks: token/position embeddings, T5's position-bias tables,
an encoder's final norm, and the LM head.

Why apart from ``transformer``: these run once per step (not per layer) and follow their own
conventions (gathers that touch a fraction of a table, tied and vocabulary-sharded heads).
"""
from __future__ import annotations

import math

from accelsim.ir import Graph, OpKind, Tensor, TensorRole
from workloads.builder import BlockBuilder, Dims as _Dims
from workloads.config import ModelConfig

W, A, I = TensorRole.WEIGHT, TensorRole.ACTIVATION, TensorRole.INPUT


def _embedding(cfg: ModelConfig, D: _Dims, phase: str, context: int, name: str = "embed") -> Graph:
    """Token (+ position, + token type) embedding lookups as gathers over whole tables."""
    bb = BlockBuilder(cfg, "")
    tokens = D.b * D.s
    sz = dict(b=D.b, s=D.s, d=D.d)
    ids = bb.t("token_ids", "bs", (D.b, D.s), I, dtype=4)
    if cfg.adaptive_cutoffs:
        return _adaptive_embedding(cfg, bb, D, ids)
    table = bb.t("embed.weight", "vd", (cfg.vocab_size, D.d), W, shared=True)
    x = bb.t("embed.tokens", "bsd", (D.b, D.s, D.d))
    bb.add("embed.lookup", x, "bsd", [(ids, "bs"), (table, "vd")], {"b": D.b, "s": D.s, "d": D.d, "v": cfg.vocab_size},
           OpKind.COPY, kind="gather", touched={table.name: min(tokens, cfg.vocab_size) / cfg.vocab_size})
    if cfg.position == "learned":
        pos = bb.t("embed.positions", "pd", (cfg.max_positions, D.d), W, shared=True)
        pe = bb.t("embed.pos", "bsd", x.shape)
        rows = D.s  # _dims has checked that every position has a row
        bb.add("embed.pos_lookup", pe, "bsd", [(ids, "bs"), (pos, "pd")],
               {"b": D.b, "s": D.s, "d": D.d, "p": cfg.max_positions}, OpKind.COPY, kind="gather",
               touched={pos.name: rows / cfg.max_positions})
        x = bb.pointwise("embed.add_pos", OpKind.ADD, x, pe, "bsd", sz)
    if cfg.type_vocab_size:
        tt = bb.t("embed.token_types", "yd", (cfg.type_vocab_size, D.d), W, shared=True)
        te = bb.t("embed.type", "bsd", x.shape)
        bb.add("embed.type_lookup", te, "bsd", [(ids, "bs"), (tt, "yd")],
               {"b": D.b, "s": D.s, "d": D.d, "y": cfg.type_vocab_size}, OpKind.COPY, kind="gather",
               touched={tt.name: 1.0 / cfg.type_vocab_size})
        x = bb.pointwise("embed.add_type", OpKind.ADD, x, te, "bsd", sz)
    if cfg.embed_scale:  # Gemma: x * sqrt(hidden_size)
        x = bb.pointwise("embed.scale", OpKind.MUL, x, None, "bsd", sz, kind="scale")
    if cfg.embed_norm:
        x = bb.norm("embed.norm", x, "bsd", sz)
    return Graph(f"{cfg.name}.{name}", bb.ops)


def _position_bias(cfg: ModelConfig, D: _Dims, phase: str) -> Graph:
    """T5 relative position bias: each stack's first layer looks up ``[buckets, heads]`` once per
    step into a ``[heads, s, m]`` bias that all its layers add to their scores (Raffel et al. 2020,
    Sec. 2.1; transformers' ``relative_attention_bias``). Costed as a gather; the adds are folded
    into the score computation. Prefill has an encoder and a decoder table, decode the decoder's."""
    bb = BlockBuilder(cfg, "")
    stacks = ["encoder", "decoder"] if phase == "prefill" else ["decoder"]
    k = cfg.relative_attention_buckets
    for stack in stacks:
        table = bb.t(f"{stack}.relative_attention_bias", "kh", (k, cfg.num_heads), W, shared=True)
        bias = bb.t(f"{stack}.position_bias", "hsm", (D.heads, D.s, D.m))
        bb.add(f"{stack}.position_bias", bias, "hsm", [(table, "kh")],
               {"h": D.heads, "s": D.s, "m": D.m, "k": k}, OpKind.COPY, kind="gather")
    return Graph(f"{cfg.name}.position_bias", bb.ops)


def _encoder_final_norm(cfg: ModelConfig, D: _Dims) -> Graph:
    """The encoder stack's final norm (T5 ``encoder.final_layer_norm``) before the decoder reads it."""
    bb = BlockBuilder(cfg, "")
    sz = dict(b=D.b, s=D.s, d=D.d)
    bb.norm("encoder.final_norm", bb.t("encoder.x", "bsd", (D.b, D.s, D.d), I), "bsd", sz)
    return Graph(f"{cfg.name}.encoder_norm", bb.ops)


def _adaptive_clusters(cfg: ModelConfig) -> list[tuple[int, int]]:
    """(rows, embedding width) per adaptive cluster (Baevski & Auli 2019; Transformer-XL div_val)."""
    bounds = [0, *cfg.adaptive_cutoffs, cfg.vocab_size]
    return [(bounds[i + 1] - bounds[i], cfg.hidden_size // cfg.adaptive_div ** i) for i in range(len(bounds) - 1)]


def _adaptive_embedding(cfg: ModelConfig, bb: BlockBuilder, D: _Dims, ids: Tensor) -> Graph:
    """Adaptive input: each cluster a table of narrower rows projected up to d. With
    ``adaptive_div > 1`` every cluster has a projection, the full-width first one included, as in
    the reference implementation (Transformer-XL mem_transformer.py / transformers' AdaptiveEmbedding
    append ``emb_projs`` for every cluster when div_val != 1). Tokens are costed as if all came from the head cluster (upper bound on
    gather traffic is tiny either way)."""
    for i, (rows, width) in enumerate(_adaptive_clusters(cfg)):
        table = bb.t(f"embed.cluster{i}", "vw", (rows, width), W, shared=True)
        g = bb.t(f"embed.c{i}", "bsw", (D.b, D.s, width))
        bb.add(f"embed.lookup{i}", g, "bsw", [(ids, "bs"), (table, "vw")],
               {"b": D.b, "s": D.s, "w": width, "v": rows}, OpKind.COPY, kind="gather",
               touched={table.name: min(D.b * D.s, rows) / rows})
        if cfg.adaptive_div > 1 or width != D.d:
            proj = bb.t(f"embed.proj{i}", "wd", (width, D.d), W, shared=True)
            y = bb.t(f"embed.p{i}", "bsd", (D.b, D.s, D.d))
            bb.add(f"embed.project{i}", y, "bsd", [(g, "bsw"), (proj, "wd")],
                   {"b": D.b, "s": D.s, "w": width, "d": D.d}, OpKind.MAC, kind="gemm",
                   flop_fraction=1.0 / len(_adaptive_clusters(cfg)))
    return Graph(f"{cfg.name}.embed", bb.ops)


def _head(cfg: ModelConfig, D: _Dims, phase: str) -> Graph | None:
    """Final norm, then the LM head over the last position of each sequence (generation computes
    logits for the last token only) or the BERT pooler on the first token."""
    bb = BlockBuilder(cfg, "")
    sz = dict(b=D.b, s=D.s, d=D.d, o=1, v=D.vocab)
    x = bb.t("head.x", "bsd", (D.b, D.s, D.d), I)
    if cfg.final_norm and cfg.architecture != "encoder":
        x = bb.norm("final_norm", x, "bsd", sz)
    # one position per sequence: the last (next-token logits) or, for a pooler, the first ([CLS])
    which = "first" if cfg.pooler else "last"
    last = bb.t(f"head.{which}", "bod", (D.b, 1, D.d))
    bb.add(f"head.select_{which}", last, "bod", [(x, "bsd")], {"b": D.b, "o": 1, "d": D.d, "s": D.s}, OpKind.COPY,
           kind="slice", touched={x.name: 1.0 / D.s})
    if cfg.pooler:
        bb.linear("pooler", last, "bod", "pooler.weight", "dk", "bok", dict(sz, k=D.d), bias=True)
    if cfg.lm_head and cfg.adaptive_cutoffs:
        for i, (rows, width) in enumerate(_adaptive_clusters(cfg)):
            rows_dev = math.ceil(rows / D.tp)
            h = last
            if cfg.adaptive_div > 1 or width != D.d:  # projection back to the cluster width
                tied = cfg.adaptive_tie_projs is None or cfg.adaptive_tie_projs[i]
                h = bb.linear(f"head.proj{i}", last, "bod", f"embed.proj{i}" if tied else f"head.proj{i}.weight",
                              "wd", "bow",
                              dict(sz, w=width))
            bb.linear(f"head.logits{i}", h, "bow", f"embed.cluster{i}", "vw", "bov",
                      dict(sz, w=width, v=rows_dev), bias=True)
        # adaptive softmax cluster logits: shortlist gets one extra logit per tail cluster
        bb.linear("head.cluster_logits", last, "bod", "head.cluster_weight", "dk", "bok",
                  dict(sz, k=len(cfg.adaptive_cutoffs)), bias=True)
    elif cfg.lm_head:
        if cfg.tie_embeddings:
            table = bb.t("embed.weight", "vd", (D.vocab, D.d), W, shared=True) if D.tp == 1 else \
                bb.t("embed.weight_shard", "vd", (D.vocab, D.d), W, shared=True)
            logits = bb.t("head.logits", "bov", (D.b, 1, D.vocab))
            bb.add("head.logits", logits, "bov", [(last, "bod"), (table, "vd")],
                   {"b": D.b, "o": 1, "v": D.vocab, "d": D.d}, OpKind.MAC, kind="gemm")
            if cfg.lm_head_bias:
                bb.pointwise("head.bias", OpKind.ADD, logits, bb.t("head.w_bias", "v", (D.vocab,), W), "bov", sz,
                             b_dims="v")
        else:
            bb.linear("head.logits", last, "bod", "head.weight", "dv", "bov", sz, bias=cfg.lm_head_bias)
        if cfg.final_logit_softcap is not None:  # Gemma 2: c * tanh(logits / c)
            out = bb.ops[-1].output.tensor
            bb.pointwise("head.softcap", OpKind.ACTIVATION, out, None, "bov", sz, kind="softcap")
    if not bb.ops:
        return None
    return Graph(f"{cfg.name}.head", bb.ops)
