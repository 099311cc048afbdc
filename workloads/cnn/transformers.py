"""Transformer-base (Vaswani et al. 2017) and ViT-B/16 (Dosovitskiy et al. 2021) for COSMA.

Token tensors are ``(n, t, d)``. Attention is Q, K, V projections, ``QK^T`` per head, one
softmax Einsum (scale, max, exp, sum, divide fused; causal mask applied inside it; scores are
computed densely), ``AV`` per head and the output projection (``NetBuilder.attention``).
LayerNorm is a ``norm`` Einsum with a (2, D) scale/shift weight; GELU/ReLU are fused into the
first FFN linear. Residual adds are ``add`` Einsums.

ViT-B/16 follows torchvision's ``vision_transformer.py``: a 16x16 stride-16 patch conv written
as one Einsum that emits the 196 tokens directly (flatten + transpose is layout only), a class
token concatenated in front (a copy), learned position embeddings added, 12 pre-LN encoder
blocks (width 768, 12 heads, MLP 3072), a final LayerNorm, and the head applied to the class
token (a copy selecting token 0).

Transformer-base: d_model 512, 8 heads, FFN 2048, 6 encoder and 6 decoder layers, post-LN
(``x = LN(x + sublayer(x))``), as in the paper's Table 3 "base" row. The sequence length is our
choice (the paper trains on batches of ~25000 tokens of varying length): source and target
``seq_len = 128`` tokens by default. The encoder and decoder inputs are the embedded,
position-encoded token sequences (role input): the embedding lookup is a gather outside the
graph and sinusoidal encodings have no parameters. The pre-softmax projection to the
vocabulary uses the embedding matrix shared between source, target and output (Section 3.4),
with the ~37000-token shared BPE vocabulary of WMT 2014 EN-DE (Section 5.1). Linear layers
carry biases (PyTorch ``nn.Transformer`` convention).
"""
from __future__ import annotations

from accelsim.ir import Einsum, Graph, Operand, OpKind, Tensor, TensorRole

from workloads.cnn.builder import NetBuilder

# Vaswani et al. 2017, Table 3 (base model)
BASE_D_MODEL, BASE_HEADS, BASE_FFN, BASE_LAYERS = 512, 8, 2048, 6
BASE_VOCAB = 37000  # Section 5.1: shared source-target BPE vocabulary of about 37000 tokens (EN-DE)


def _ffn(b: NetBuilder, name: str, x: Tensor, hidden: int, act: str) -> Tensor:
    h = b.linear(f"{name}.fc1", x, hidden, act=act)
    return b.linear(f"{name}.fc2", h, x.shape[2])


def transformer_base(seq_len: int = 128, target_len: int | None = None, d_model: int = BASE_D_MODEL,
                     heads: int = BASE_HEADS, ffn: int = BASE_FFN, layers: int = BASE_LAYERS,
                     vocab: int = BASE_VOCAB, **opts) -> Graph:
    target_len = seq_len if target_len is None else target_len
    b = NetBuilder("transformer-base", **opts)
    x = b.token_input("source", seq_len, d_model)
    for i in range(layers):
        name = f"encoder.{i}"
        a = b.attention(f"{name}.self_attn", x, x, heads)
        x = b.layernorm(f"{name}.norm1", b.add(f"{name}.add1", x, a))
        f = _ffn(b, f"{name}.ffn", x, ffn, "relu")
        x = b.layernorm(f"{name}.norm2", b.add(f"{name}.add2", x, f))
    memory = x
    y = b.token_input("target", target_len, d_model)
    for i in range(layers):
        name = f"decoder.{i}"
        a = b.attention(f"{name}.self_attn", y, y, heads, causal=True)
        y = b.layernorm(f"{name}.norm1", b.add(f"{name}.add1", y, a))
        c = b.attention(f"{name}.cross_attn", y, memory, heads)
        y = b.layernorm(f"{name}.norm2", b.add(f"{name}.add2", y, c))
        f = _ffn(b, f"{name}.ffn", y, ffn, "relu")
        y = b.layernorm(f"{name}.norm3", b.add(f"{name}.add3", y, f))
    b.linear("generator", y, vocab, bias=False)  # weight = the shared embedding matrix
    return b.graph()


def _select_token(b: NetBuilder, name: str, x: Tensor, token: int = 0) -> Tensor:
    """Copy one token (the class token) out of a sequence."""
    name = b._name(name)
    n, _, d = x.shape
    out = b.tensor(name, ("n", "t", "d"), (n, 1, d))
    return b._append(Einsum(name, Operand(out, ("n", "0", "d")), (Operand(x, ("n", str(token), "d")),),
                            {"n": n, "d": d}, OpKind.COPY, {"kind": "select"}))


def vit_b_16(image_size: int = 224, patch: int = 16, width: int = 768, heads: int = 12, mlp: int = 3072,
             layers: int = 12, classes: int = 1000, **opts) -> Graph:
    b = NetBuilder("vit-b-16", **opts)
    image = b.input("image", 3, (image_size, image_size))
    grid = image_size // patch
    # Patch embedding: tokens[n, grid*p+q, k] = sum_{c,r,s} image[n, c, 16p+r, 16q+s] * W[k, c, r, s]
    name = b._name("conv_proj")
    weight = b.tensor(f"{name}.weight", ("k", "c", "r", "s"), (width, 3, patch, patch), TensorRole.WEIGHT)
    patches = b.tensor(name, ("n", "t", "d"), (b.batch, grid * grid, width))
    b._append(Einsum(name, Operand(patches, ("n", f"{grid}*p+q", "k")),
                     (Operand(image, ("n", "c", f"{patch}*p+r", f"{patch}*q+s")),
                      Operand(weight, ("k", "c", "r", "s"))),
                     {"n": b.batch, "k": width, "c": 3, "p": grid, "q": grid, "r": patch, "s": patch}, OpKind.MAC,
                     {"kind": "conv", "stride": patch, "kernel": (patch, patch), "bias_elements": width}))
    cls = b.tensor("class_token", ("n", "t", "d"), (1, 1, width), TensorRole.WEIGHT)  # broadcast over the batch
    x = b.concat("cat_class_token", [cls, patches])
    pos = b.tensor("pos_embedding", ("n", "t", "d"), (1, grid * grid + 1, width), TensorRole.WEIGHT)
    x = b.add("add_pos_embedding", x, pos)
    for i in range(layers):
        name = f"encoder.layers.{i}"
        h = b.layernorm(f"{name}.ln_1", x)
        h = b.attention(f"{name}.self_attention", h, h, heads)
        x = b.add(f"{name}.add1", x, h)
        h = b.layernorm(f"{name}.ln_2", x)
        h = _ffn(b, f"{name}.mlp", h, mlp, "gelu")
        x = b.add(f"{name}.add2", x, h)
    x = b.layernorm("encoder.ln", x)
    x = _select_token(b, "class_token_out", x)
    b.linear("heads.head", x, classes)
    return b.graph()
