"""Token (transformer) operators of the network builder: linear layers, layer norm, attention.

Why a mixin of their own: ViT and transformer-base are built with the same ``NetBuilder`` as the
CNNs, but these operators work on ``[tokens, features]`` tensors, not feature maps.
"""
from __future__ import annotations

from accelsim.errors import AccelsimError
from accelsim.ir import Einsum, Operand, OpKind, Tensor, TensorRole


class TokenOps:
    """Mixed into ``NetBuilder``: uses its ``tensor``, ``_name`` and ``_append``."""

    def linear(self, name: str, x: Tensor, out_features: int, *, bias: bool = True,
               act: str | None = None) -> Tensor:
        """``y[n, t, k] = x[n, t, d] * W[k, d]`` (PyTorch's (out, in) weight layout)."""
        name = self._name(name)
        n, t, d = x.shape
        weight = self.tensor(f"{name}.weight", ("k", "d"), (out_features, d), TensorRole.WEIGHT)
        out = self.tensor(name, ("n", "t", "d"), (n, t, out_features))
        act_attrs, pending = self._epilogue(act)
        attrs: dict[str, object] = {"kind": "linear", **act_attrs}
        if bias:
            attrs["bias_elements"] = out_features
        extents = {"n": n, "t": t, "k": out_features, "d": d}
        y = self._append(Einsum(name, Operand(out, ("n", "t", "k")),
                                (Operand(x, ("n", "t", "d")), Operand(weight, ("k", "d"))), extents, OpKind.MAC,
                                attrs))
        return self._activation(name, y, pending)

    def layernorm(self, name: str, x: Tensor) -> Tensor:
        """LayerNorm as one vector pass with its (2, D) scale and shift weight."""
        name = self._name(name)
        params = self.tensor(f"{name}.weight", ("j", "d"), (2, x.shape[2]), TensorRole.WEIGHT)
        out = self._like(name, x)
        extents = dict(zip(x.dims, x.shape))
        extents["j"] = 2
        return self._append(Einsum(name, Operand(out, x.dims), (Operand(x, x.dims), Operand(params, ("j", "d"))),
                                   extents, OpKind.NORM, {"kind": "layernorm"}))

    def attention(self, name: str, q_in: Tensor, kv_in: Tensor, heads: int, *, causal: bool = False,
                  bias: bool = True) -> Tensor:
        """Multi-head attention: Q, K, V projections, QK^T, softmax, AV, output projection.

        QK^T is a MAC Einsum over ``(h, t, m, e)``; the softmax (max, exp, sum, divide, with the
        1/sqrt(E) scale) is one ``exp`` Einsum over the score tensor. A causal mask is applied
        inside the softmax; the scores are computed densely, as dense kernels do.
        """
        n, tq, d = q_in.shape
        tk = kv_in.shape[1]
        if d % heads:
            raise AccelsimError(f"heads {heads} must divide width {d}", field=f"{name}.heads")
        e = d // heads
        q = self.linear(f"{name}.q", q_in, d, bias=bias)
        k = self.linear(f"{name}.k", kv_in, d, bias=bias)
        v = self.linear(f"{name}.v", kv_in, d, bias=bias)
        hd = lambda rank: f"{e}*h+{rank}"  # noqa: E731  (head h's slice of the width)
        score_name = self._name(f"{name}.qk")
        scores = self.tensor(score_name, ("n", "h", "t", "m"), (n, heads, tq, tk))
        self._append(Einsum(score_name, Operand(scores, ("n", "h", "t", "m")),
                            (Operand(q, ("n", "t", hd("e"))), Operand(k, ("n", "m", hd("e")))),
                            {"n": n, "h": heads, "t": tq, "m": tk, "e": e}, OpKind.MAC, {"kind": "attention_qk"}))
        sm_name = self._name(f"{name}.softmax")
        probs = self.tensor(sm_name, scores.dims, scores.shape)
        idx = scores.dims
        self._append(Einsum(sm_name, Operand(probs, idx), (Operand(scores, idx),), dict(zip(idx, scores.shape)),
                            OpKind.EXP, {"kind": "softmax", "causal": causal}))
        av_name = self._name(f"{name}.av")
        ctx = self.tensor(av_name, ("n", "t", "d"), (n, tq, d))
        self._append(Einsum(av_name, Operand(ctx, ("n", "t", hd("f"))),
                            (Operand(probs, ("n", "h", "t", "m")), Operand(v, ("n", "m", hd("f")))),
                            {"n": n, "h": heads, "t": tq, "m": tk, "f": e}, OpKind.MAC, {"kind": "attention_av"}))
        return self.linear(f"{name}.out", ctx, d, bias=bias)
