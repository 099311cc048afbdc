"""Small built-in workloads that need no configuration file."""
from __future__ import annotations

from accelsim.ir import Einsum, Graph, Operand, OpKind, Tensor, TensorRole


def transformer_layer_gemms(seq: int = 512, d_model: int = 768, d_ff: int = 3072, heads: int = 12,
                            dtype_bytes: int = 1) -> Graph:
    """The weight GEMMs of one BERT-base-sized encoder layer (QKV, output projection, FFN up and down).

    Defaults are BERT-base's (d_model 768, 12 heads, FFN 3072; Devlin et al. 2019) at sequence
    512, 8-bit, which matches the TPU-v1-like default preset's integer datapath.
    """
    from accelsim.errors import AccelsimError
    from accelsim.fieldchecks import MAX_TOKENS

    if isinstance(seq, int) and seq > MAX_TOKENS:
        raise AccelsimError(f"{seq} is above the supported {MAX_TOKENS:,}", field="seq", allowed=f"1..{MAX_TOKENS}")
    def act(name: str, cols: int, role: TensorRole = TensorRole.ACTIVATION) -> Tensor:
        return Tensor(name, ("s", "d"), (seq, cols), dtype_bytes, role)

    def weight(name: str, rows: int, cols: int) -> Tensor:
        return Tensor(name, ("k", "n"), (rows, cols), dtype_bytes, TensorRole.WEIGHT)

    def linear(name: str, x: Tensor, w: Tensor, y: Tensor) -> Einsum:
        k, n = w.shape
        return Einsum(name, Operand(y, ("m", "n")), (Operand(x, ("m", "k")), Operand(w, ("k", "n"))),
                      {"m": seq, "k": k, "n": n}, OpKind.MAC, {"kind": "gemm"})

    x = act("x", d_model, TensorRole.INPUT)
    qkv, attn = act("qkv", 3 * d_model), act("attn", d_model, TensorRole.INPUT)
    proj, up, down = act("proj", d_model), act("ffn_up", d_ff), act("ffn_down", d_model)
    return Graph(f"transformer-layer-s{seq}-d{d_model}", [
        linear("qkv_proj", x, weight("w_qkv", d_model, 3 * d_model), qkv),
        linear("out_proj", attn, weight("w_o", d_model, d_model), proj),
        linear("ffn_up", proj, weight("w_up", d_model, d_ff), up),
        linear("ffn_down", up, weight("w_down", d_ff, d_model), down),
    ])


default_example = transformer_layer_gemms
