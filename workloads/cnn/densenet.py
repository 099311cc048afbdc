"""FC-DenseNet103 (Jegou et al., The One Hundred Layers Tiramisu, CVPRW 2017).

Architecture from the paper's Tables 1-2 and its reference Lasagne code (facts restated):
a 3x3 conv to 48 channels; dense blocks of {4, 5, 7, 10, 12} layers on the way down, 15 in the
bottleneck, {12, 10, 7, 5, 4} on the way up; growth rate 16. A layer is BN, ReLU, 3x3 conv
(with bias) to 16 channels, dropout; after each layer the block's stack is the concatenation
of its input and the new layer. Transition down: BN, ReLU, 1x1 conv (same width), dropout,
2x2 max pool. Transition up: a 3x3 stride-2 transposed conv (with bias) of only the new
feature maps of the previous block (width = growth * layers), cropped to the skip connection,
then concatenated with it. Final 1x1 conv to the classes (11, CamVid) and a softmax. Input
224x224 (the COSMA setting; the paper trains on 224x224 crops), 5 poolings -> 7x7 bottleneck.

BN here precedes a ReLU and a conv, so it cannot be folded into a preceding conv: each is a
``norm`` Einsum (ReLU fused into it) whatever ``fold_bn`` says. Every concatenation is a
materialized copy, as in the reference code's ConcatLayer: the stacks grow quadratically in
memory, which is exactly what makes this network interesting for scratchpad allocation.
"""
from __future__ import annotations

from accelsim.ir import Einsum, Graph, Operand, OpKind, Tensor

from workloads.cnn.builder import NetBuilder

LAYERS_103 = (4, 5, 7, 10, 12, 15, 12, 10, 7, 5, 4)  # Jegou et al. 2017, Table 2
GROWTH_103 = 16
FIRST_FILTERS = 48
CAMVID_CLASSES = 11


def _bn_relu_conv(b: NetBuilder, name: str, x: Tensor, filters: int, kernel: int) -> Tensor:
    y = b.batchnorm(f"{name}.bn", x, act="relu")
    return b.conv(f"{name}.conv", y, filters, kernel, padding=kernel // 2, bias=True, bn=False)


def fc_densenet(image_size: int = 224, layers: tuple[int, ...] = LAYERS_103, growth: int = GROWTH_103,
                classes: int = CAMVID_CLASSES, **opts) -> Graph:
    b = NetBuilder("fc-densenet", **opts)
    pools = (len(layers) - 1) // 2
    stack = b.conv("first_conv", b.input("image", 3, (image_size, image_size)), FIRST_FILTERS, 3, padding=1,
                   bias=True, bn=False)
    skips: list[Tensor] = []
    for i in range(pools):
        for j in range(layers[i]):
            y = _bn_relu_conv(b, f"down{i}.layer{j}", stack, growth, 3)
            stack = b.concat(f"down{i}.concat{j}", [stack, y])
        skips.append(stack)
        y = _bn_relu_conv(b, f"down{i}.transition", stack, stack.shape[1], 1)
        stack = b.pool(f"down{i}.pool", y, "max", 2)
    new: list[Tensor] = []
    for j in range(layers[pools]):
        y = _bn_relu_conv(b, f"bottleneck.layer{j}", stack, growth, 3)
        new.append(y)
        stack = b.concat(f"bottleneck.concat{j}", [stack, y])
    for i in range(pools):
        skip = skips[pools - 1 - i]
        block = b.concat(f"up{i}.block_to_upsample", new)
        keep = growth * layers[pools + i]
        up = b.transposed_conv(f"up{i}.transition", block, keep, 3, 2, skip.shape[2:])
        stack = b.concat(f"up{i}.concat_skip", [up, skip])
        new = []
        for j in range(layers[pools + i + 1]):
            y = _bn_relu_conv(b, f"up{i}.layer{j}", stack, growth, 3)
            new.append(y)
            stack = b.concat(f"up{i}.concat{j}", [stack, y])
    logits = b.conv("final_conv", stack, classes, 1, bias=True, bn=False)
    name = b._name("softmax")
    probs = b.tensor(name, logits.dims, logits.shape)
    idx = logits.dims
    b._append(Einsum(name, Operand(probs, idx), (Operand(logits, idx),), dict(zip(idx, logits.shape)), OpKind.EXP,
                     {"kind": "softmax"}))
    return b.graph()
