"""NAS cells and networks: DARTS (V2 genotype), NASNet-A and PNASNet-5, each cell's exact op DAG.

DARTS (Liu, Simonyan, Yang, ICLR 2019; reference code quark0/darts, facts restated): the
second-order "DARTS_V2" genotype. A cell preprocesses its two inputs (ReLU-1x1 conv-BN, or a
factorized reduction when the previous cell reduced), then builds 4 nodes, each the sum of two
ops applied to earlier states, and concatenates the 4 nodes (4C channels). Ops: sep_conv_3x3 =
twice (ReLU, depthwise 3x3, pointwise 1x1, BN); dil_conv_3x3 = ReLU, depthwise 3x3 dilation 2,
pointwise, BN; max_pool_3x3 (padding 1); skip_connect = identity, or a factorized reduction at
stride 2 (ReLU, two 1x1 stride-2 convs to C/2, the second on the input shifted by one pixel,
concatenated, BN). Networks, as evaluated in the paper: ImageNet (mobile setting) C=48, 14 cells,
reductions at cells 4 and 9, stems 3->24->48 (two stride-2 3x3 convs) and 48->48 (stride 2),
224x224 input; CIFAR-10 C=36, 20 cells, reductions at 6 and 13, stem 3->108, 32x32 input.
Auxiliary heads and drop-path are training-only and absent.

NASNet-A (Zoph, Vasudevan, Shlens, Le, CVPR 2018; reference TF-slim nasnet.py and
nasnet_utils.py, facts restated): the normal and reduction cells with their 5 blocks each, the
"none"/pool/separable ops (separable = twice (ReLU, depthwise k x k, pointwise, BN)), the
per-cell adjustment of the previous layer (factorized reduction when the spatial size differs,
ReLU-1x1-BN when the width differs) and the concatenation of unused states. Networks:
NASNet-A Mobile "4 @ 1056" (ImageNet, 44 filters, 12 cells, 2 stem reduction cells after a
3x3 stride-2 VALID conv to 32 channels, 224x224 input, 1000 classes) and
NASNet-A "6 @ 768" (CIFAR-10, 32 filters, 18 cells, 3x3 stem conv to 96 channels, 32x32).
PNASNet-5 (Liu et al., ECCV 2018; TF-slim pnasnet.py) reuses the NASNet cell machinery with its
single cell type (stride 2 where it reduces) and every cell reading the output two cells back.
AmoebaNet-D (Real et al., AAAI 2019; cell spec "amoeba_net_d" of the TensorFlow TPU reference
implementation, model_specs.py / network_utils.py, facts restated) uses the same cell frame with
its own ops: "1x1" (ReLU, 1x1 conv, BN), "none", pools (2x2 and 3x3; a 1x1 conv follows when the
width changes), and "3x3"/"1x7_7x1" convs inside a bottleneck (ReLU, 1x1 to F/4, BN, ReLU, the
conv(s) at F/4 with BN-ReLU between 1x7 and 7x1, BN, ReLU, 1x1 back to F, BN). The reference's
default size (12 cells, 256 filters, 32 stem filters) is built at 224x224; no parameter count
is published for this configuration, so only its structure is checked.
TensorFlow's SAME padding is modelled by symmetric padding (same output sizes; the window of a
stride-2 op on an even input is offset by one pixel, which changes no tensor size or MAC).
"""
from __future__ import annotations

from collections.abc import Sequence

from accelsim.ir import Graph, Tensor

from workloads.cnn.builder import NetBuilder

Genotype = tuple[tuple[str, int], ...]

# DARTS_V2 genotype, quark0/darts genotypes.py (Liu et al. 2019, Figure 4/5)
DARTS_V2_NORMAL: Genotype = (("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
                             ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2))
DARTS_V2_REDUCE: Genotype = (("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
                             ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1))
DARTS_CONCAT = (2, 3, 4, 5)


# --- DARTS ----------------------------------------------------------------------------------

def _factorized_reduce(b: NetBuilder, name: str, x: Tensor, out_channels: int, relu: bool = True) -> Tensor:
    """ReLU, two 1x1 stride-2 convs (second one shifted by a pixel) to C/2 each, concat, BN.

    The BN after the concatenation is per channel, so it folds into the two convs.
    """
    x, pre = b.pre_activation(f"{name}.relu", x) if relu else (x, None)
    y1 = b.conv(f"{name}.conv_1", x, out_channels // 2, 1, stride=2, input_activation=pre)
    y2 = b.conv(f"{name}.conv_2", x, out_channels - out_channels // 2, 1, stride=2, shift=1, input_activation=pre)
    return b.concat(f"{name}.concat", [y1, y2])


def _relu_conv_bn(b: NetBuilder, name: str, x: Tensor, out_channels: int) -> Tensor:
    x, pre = b.pre_activation(f"{name}.relu", x)
    return b.conv(f"{name}.conv", x, out_channels, 1, input_activation=pre)


def _separable(b: NetBuilder, name: str, x: Tensor, out_channels: int, kernel: int, stride: int,
               repeats: int = 2, dilation: int = 1, widen_first: bool = False) -> Tensor:
    """``repeats`` x (ReLU, depthwise kxk, pointwise 1x1, BN); only the first depthwise is strided.

    DARTS' SepConv keeps the input width until the last pointwise conv; TF-slim's NASNet
    (``widen_first``) goes to ``out_channels`` at the first pointwise conv.

    The ReLU that opens repeat i>0 follows a BN whose output has no other reader, so it is fused
    into the pointwise conv's epilogue; the first ReLU reads a shared state.
    """
    x, pre = b.pre_activation(f"{name}.relu", x)
    channels_in = x.shape[1]
    for i in range(repeats):
        last = i == repeats - 1
        width = out_channels if (last or widen_first) else channels_in
        x = b.conv(f"{name}.dw{i + 1}", x, x.shape[1], kernel, stride=stride, padding=dilation * (kernel - 1) // 2,
                   dilation=dilation, groups=x.shape[1], bn=False, input_activation=pre)
        x = b.conv(f"{name}.pw{i + 1}", x, width, 1, act=None if last else "relu")
        stride, pre = 1, None
    return x


def _darts_op(b: NetBuilder, name: str, x: Tensor, op: str, channels: int, stride: int) -> Tensor:
    if op == "sep_conv_3x3":
        return _separable(b, name, x, channels, 3, stride)
    if op == "dil_conv_3x3":
        return _separable(b, name, x, channels, 3, stride, repeats=1, dilation=2)
    if op == "max_pool_3x3":
        return b.pool(name, x, "max", 3, stride=stride, padding=1)
    if op == "avg_pool_3x3":
        return b.pool(name, x, "avg", 3, stride=stride, padding=1)
    if op == "skip_connect":
        return x if stride == 1 else _factorized_reduce(b, name, x, channels)
    raise ValueError(f"unknown DARTS op {op}")  # genotypes are module constants: a bug, not user input


def darts_cell(b: NetBuilder, name: str, s0: Tensor, s1: Tensor, channels: int, reduction: bool,
               reduction_prev: bool, genotype: Genotype | None = None,
               concat: Sequence[int] = DARTS_CONCAT) -> Tensor:
    """One DARTS cell (the evaluation network's Cell.forward order)."""
    genotype = genotype or (DARTS_V2_REDUCE if reduction else DARTS_V2_NORMAL)
    s0 = (_factorized_reduce(b, f"{name}.preprocess0", s0, channels) if reduction_prev
          else _relu_conv_bn(b, f"{name}.preprocess0", s0, channels))
    s1 = _relu_conv_bn(b, f"{name}.preprocess1", s1, channels)
    states = [s0, s1]
    for node in range(len(genotype) // 2):
        outs = []
        for j in (2 * node, 2 * node + 1):
            op, index = genotype[j]
            stride = 2 if reduction and index < 2 else 1
            outs.append(_darts_op(b, f"{name}.node{node}.op{j % 2}", states[index], op, channels, stride))
        states.append(b.add(f"{name}.node{node}", *outs))
    return b.concat(f"{name}.concat", [states[i] for i in concat])


def darts_imagenet(image_size: int = 224, channels: int = 48, cells: int = 14, classes: int = 1000,
                   **opts) -> Graph:
    b = NetBuilder("darts", **opts)
    x = b.input("image", 3, (image_size, image_size))
    s0 = b.conv("stem0.0", x, channels // 2, 3, stride=2, padding=1, act="relu")
    s0 = b.conv("stem0.3", s0, channels, 3, stride=2, padding=1)
    s1x, pre = b.pre_activation("stem1.relu", s0)
    s1 = b.conv("stem1.1", s1x, channels, 3, stride=2, padding=1, input_activation=pre)
    return _darts_stack(b, s0, s1, channels, cells, True, classes)


def darts_cifar(image_size: int = 32, channels: int = 36, cells: int = 20, classes: int = 10, **opts) -> Graph:
    b = NetBuilder("darts-cifar", **opts)
    x = b.input("image", 3, (image_size, image_size))
    stem = b.conv("stem", x, 3 * channels, 3, padding=1)
    return _darts_stack(b, stem, stem, channels, cells, False, classes)


def _darts_stack(b: NetBuilder, s0: Tensor, s1: Tensor, channels: int, cells: int, reduction_prev: bool,
                 classes: int) -> Graph:
    c = channels
    for i in range(cells):
        reduction = i in (cells // 3, 2 * cells // 3)
        if reduction:
            c *= 2
        s0, s1 = s1, darts_cell(b, f"cells.{i}", s0, s1, c, reduction, reduction_prev)
        reduction_prev = reduction
    x = b.global_pool("global_pooling", s1)
    b.conv("classifier", x, classes, 1, bias=True, bn=False)
    return b.graph()


def darts_cell_graph(reduction: bool = False, channels: int = 48, size: int = 28, **opts) -> Graph:
    """One DARTS V2 cell alone; inputs s0, s1 of ``4*channels`` channels at ``size`` (role input).

    Defaults: the first normal cell of the ImageNet network's second stack shape-wise (inputs at
    28x28 with the previous cell's 4C channels).
    """
    b = NetBuilder(f"darts-{'reduction' if reduction else 'normal'}-cell", **opts)
    s0 = b.input("s0", 4 * channels, (size, size))
    s1 = b.input("s1", 4 * channels, (size, size))
    darts_cell(b, "cell", s0, s1, channels * (2 if reduction else 1), reduction, False)
    return b.graph()


# --- NASNet-A ---------------------------------------------------------------------------------

# (operations, used_hiddenstates, hiddenstate_indices): TF-slim nasnet_utils NasNetANormalCell /
# NasNetAReductionCell (Zoph et al. 2018, Figure 4).
NASNET_A_NORMAL = (
    ("separable_5x5_2", "separable_3x3_2", "separable_5x5_2", "separable_3x3_2", "avg_pool_3x3", "none",
     "avg_pool_3x3", "avg_pool_3x3", "separable_3x3_2", "none"),
    (1, 0, 0, 0, 0, 0, 0),
    (0, 1, 1, 1, 0, 1, 1, 1, 0, 0),
)
NASNET_A_REDUCTION = (
    ("separable_5x5_2", "separable_7x7_2", "max_pool_3x3", "separable_7x7_2", "avg_pool_3x3", "separable_5x5_2",
     "none", "avg_pool_3x3", "separable_3x3_2", "max_pool_3x3"),
    (1, 1, 1, 0, 0, 0, 0),
    (0, 1, 0, 1, 0, 1, 3, 2, 2, 0),
)


def _nasnet_factorized_reduction(b: NetBuilder, name: str, x: Tensor, filters: int, stride: int,
                                 pre: str | None) -> Tensor:
    """TF-slim factorized_reduction: 1x1 conv+BN at stride 1, else two shifted stride-2 paths."""
    if stride == 1:
        return b.conv(f"{name}.conv", x, filters, 1, input_activation=pre)
    y1 = b.conv(f"{name}.path1_conv", x, filters // 2, 1, stride=2, input_activation=pre)
    y2 = b.conv(f"{name}.path2_conv", x, filters - filters // 2, 1, stride=2, shift=1, input_activation=pre)
    return b.concat(f"{name}.concat", [y1, y2])


def _nasnet_op(b: NetBuilder, name: str, x: Tensor, op: str, filters: int, stride: int) -> Tensor:
    if op.startswith("separable"):
        kernel = int(op.split("x")[0][-1])
        return _separable(b, name, x, filters, kernel, stride, repeats=int(op.split("_")[-1]), widen_first=True)
    if op == "none":
        if stride > 1 or x.shape[1] != filters:
            x, pre = b.pre_activation(f"{name}.relu", x)
            return b.conv(f"{name}.1x1", x, filters, 1, stride=stride, input_activation=pre)
        return x
    if op.endswith("pool_3x3"):
        y = b.pool(name, x, op[:3], 3, stride=stride, padding=1)
        if x.shape[1] != filters:
            y = b.conv(f"{name}.1x1", y, filters, 1)
        return y
    raise ValueError(f"unknown NASNet op {op}")


def nasnet_cell(b: NetBuilder, name: str, net: Tensor, prev: Tensor | None, filters: int, stride: int,
                spec: tuple, op_fn=None) -> Tensor:
    """One NASNet-A cell (TF-slim NasNetABaseCell.__call__); ``op_fn`` applies one op (AmoebaNet's differ)."""
    op_fn = op_fn or _nasnet_op
    operations, used, indices = spec
    # _reduce_prev_layer
    if prev is None:
        prev = net
    elif prev.shape[2] != net.shape[2]:
        p, pre = b.pre_activation(f"{name}.prev.relu", prev)
        prev = _nasnet_factorized_reduction(b, f"{name}.prev", p, filters, 2, pre)
    elif prev.shape[1] != filters:
        p, pre = b.pre_activation(f"{name}.prev.relu", prev)
        prev = b.conv(f"{name}.prev_1x1", p, filters, 1, input_activation=pre)
    x, pre = b.pre_activation(f"{name}.relu", net)
    states = [b.conv(f"{name}.1x1", x, filters, 1, input_activation=pre), prev]
    for block in range(len(operations) // 2):
        outs = []
        for j in (2 * block, 2 * block + 1):
            index = indices[j]
            s = stride if index < 2 else 1
            outs.append(op_fn(b, f"{name}.comb{block}.{'left' if j % 2 == 0 else 'right'}", states[index],
                              operations[j], filters, s))
        states.append(b.add(f"{name}.comb{block}", *outs))
    # _combine_unused_states
    final = states[-1]
    for i, is_used in enumerate(used):
        h = states[i]
        if not is_used and (h.shape[2] != final.shape[2] or h.shape[1] != filters):
            s = 2 if h.shape[2] != final.shape[2] else 1
            hx, pre = b.pre_activation(f"{name}.reduction_{i}.relu", h)
            states[i] = _nasnet_factorized_reduction(b, f"{name}.reduction_{i}", hx, filters, s, pre)
    return b.concat(f"{name}.concat", [h for h, is_used in zip(states, used) if not is_used])


def _nasnet(name: str, image_size: int, filters: int, cells: int, stem_multiplier: float, imagenet: bool,
            classes: int, skip_reduction_layer_input: bool, **opts) -> Graph:
    b = NetBuilder(name, **opts)
    x = b.input("image", 3, (image_size, image_size))
    reductions = [int(k / 3 * cells) for k in (1, 2)]  # calc_reduction_layers with 2 reductions
    if imagenet:
        net = b.conv("conv0", x, int(32 * stem_multiplier), 3, stride=2)  # VALID padding
        outputs: list[Tensor | None] = [None, net]
        scaling = 1 / 4
        for i in range(2):
            net = nasnet_cell(b, f"cell_stem_{i}", net, outputs[-2], int(filters * scaling), 2, NASNET_A_REDUCTION)
            outputs.append(net)
            scaling *= 2
    else:
        net = b.conv("conv0", x, int(32 * stem_multiplier), 3, padding=1)
        outputs = [None, net]
    scaling = 1.0
    prev: Tensor | None = None
    for cell in range(cells):
        if skip_reduction_layer_input:
            prev = outputs[-2]
        if cell in reductions:
            scaling *= 2
            net = nasnet_cell(b, f"reduction_cell_{reductions.index(cell)}", net, outputs[-2],
                              int(filters * scaling), 2, NASNET_A_REDUCTION)
            outputs.append(net)
        if not skip_reduction_layer_input:
            prev = outputs[-2]
        net = nasnet_cell(b, f"cell_{cell}", net, prev, int(filters * scaling), 1, NASNET_A_NORMAL)
        outputs.append(net)
    net, pre = b.pre_activation("final_relu", net)
    pooled = b.global_pool("global_pool", net)
    b.conv("logits", pooled, classes, 1, bias=True, bn=False, input_activation=pre)
    return b.graph()


def nasnet_a_mobile(image_size: int = 224, classes: int = 1000, **opts) -> Graph:
    """NASNet-A Mobile (4 @ 1056): TF-slim mobile_imagenet_config (1000 classes as in Keras; TF-slim has 1001)."""
    return _nasnet("nasnet-a", image_size, 44, 12, 1.0, True, classes, False, **opts)


def nasnet_a_cifar(image_size: int = 32, classes: int = 10, **opts) -> Graph:
    """NASNet-A (6 @ 768) for CIFAR-10: TF-slim cifar_config."""
    return _nasnet("nasnet-a-cifar", image_size, 32, 18, 3.0, False, classes, False, **opts)


def nasnet_cell_graph(reduction: bool = False, filters: int = 44, size: int = 28, **opts) -> Graph:
    """One NASNet-A cell alone, with inputs shaped like the first stack of NASNet-A Mobile
    (both inputs 6*filters channels at ``size``; a reduction cell doubles ``filters``)."""
    b = NetBuilder(f"nasnet-a-{'reduction' if reduction else 'normal'}-cell", **opts)
    net = b.input("h_i", 6 * filters, (size, size))
    prev = b.input("h_prev", 6 * filters, (size, size))
    nasnet_cell(b, "cell", net, prev, filters * (2 if reduction else 1), 2 if reduction else 1,
                NASNET_A_REDUCTION if reduction else NASNET_A_NORMAL)
    return b.graph()


# --- PNASNet-5 ----------------------------------------------------------------------------------

# TF-slim pnasnet.py PNasNetNormalCell (Liu et al., Progressive Neural Architecture Search, ECCV
# 2018, Figure 1): one cell type, used with stride 2 for reductions.
PNASNET_5 = (
    ("separable_5x5_2", "max_pool_3x3", "separable_7x7_2", "max_pool_3x3", "separable_5x5_2", "separable_3x3_2",
     "separable_3x3_2", "max_pool_3x3", "separable_3x3_2", "none"),
    (1, 1, 0, 0, 0, 0, 0),
    (1, 1, 0, 0, 0, 0, 4, 0, 1, 0),
)


def pnasnet_5_mobile(image_size: int = 224, classes: int = 1000, filters: int = 54, cells: int = 9,
                     **opts) -> Graph:
    """PNASNet-5 Mobile: TF-slim mobile_imagenet_config (54 filters, 9 cells, reductions at 3 and 6,
    the NASNet ImageNet stem with two stride-2 PNASNet cells, every cell reads the output two
    cells back)."""
    b = NetBuilder("pnasnet-5", **opts)
    x = b.input("image", 3, (image_size, image_size))
    net = b.conv("conv0", x, 32, 3, stride=2)  # VALID padding, stem_multiplier 1.0
    outputs: list[Tensor | None] = [None, net]
    scaling = 1 / 4
    for i in range(2):
        net = nasnet_cell(b, f"cell_stem_{i}", net, outputs[-2], int(filters * scaling), 2, PNASNET_5)
        outputs.append(net)
        scaling *= 2
    reductions = [int(k / 3 * cells) for k in (1, 2)]
    scaling = 1.0
    for cell in range(cells):
        reduction = cell in reductions
        if reduction:
            scaling *= 2
        net = nasnet_cell(b, f"cell_{cell}", net, outputs[-2], int(filters * scaling), 2 if reduction else 1,
                          PNASNET_5)
        outputs.append(net)
    net, pre = b.pre_activation("final_relu", net)
    pooled = b.global_pool("global_pool", net)
    b.conv("logits", pooled, classes, 1, bias=True, bn=False, input_activation=pre)
    return b.graph()


# --- AmoebaNet-D --------------------------------------------------------------------------------

# (operations, used_hiddenstates, hiddenstate_indices) of "amoeba_net_d", TPU reference model_specs.py
AMOEBANET_D_NORMAL = (
    ("1x1", "max_pool_3x3", "none", "1x7_7x1", "1x1", "1x7_7x1", "max_pool_3x3", "none", "avg_pool_3x3", "1x1"),
    (0, 1, 1, 0, 0, 1, 0),
    (1, 1, 1, 0, 0, 0, 2, 2, 1, 5),
)
AMOEBANET_D_REDUCTION = (
    ("max_pool_2x2", "max_pool_3x3", "none", "3x3", "1x7_7x1", "max_pool_3x3", "none", "max_pool_2x2",
     "avg_pool_3x3", "1x1"),
    (1, 1, 1, 1, 0, 0, 0),
    (0, 0, 2, 1, 2, 2, 3, 1, 2, 3),
)


def _amoeba_op(b: NetBuilder, name: str, x: Tensor, op: str, filters: int, stride: int) -> Tensor:
    if op in ("none", "1x1"):
        if stride > 1 or op == "1x1" or x.shape[1] != filters:
            x, pre = b.pre_activation(f"{name}.relu", x)
            return b.conv(f"{name}.1x1", x, filters, 1, stride=stride, input_activation=pre)
        return x
    if "pool" in op:
        kernel = int(op[-1])
        y = b.pool(name, x, op[:3], kernel, stride=stride, same=True)  # TensorFlow SAME pooling
        if x.shape[1] != filters:
            y = b.conv(f"{name}.1x1", y, filters, 1)
        return y
    if op in ("3x3", "1x7_7x1"):
        reduced = filters // 4
        x, pre = b.pre_activation(f"{name}.relu", x)
        y = b.conv(f"{name}.pre_1x1", x, reduced, 1, input_activation=pre, act="relu")
        if op == "3x3":
            y = b.conv(f"{name}.3x3", y, reduced, 3, stride=stride, padding=1, act="relu")
        else:
            y = b.conv(f"{name}.1x7", y, reduced, (1, 7), stride=(1, stride), padding=(0, 3), act="relu")
            y = b.conv(f"{name}.7x1", y, reduced, (7, 1), stride=(stride, 1), padding=(3, 0), act="relu")
        return b.conv(f"{name}.post_1x1", y, filters, 1)
    raise ValueError(f"unknown AmoebaNet op {op}")


def amoebanet_d(image_size: int = 224, classes: int = 1000, filters: int = 256, cells: int = 12,
                stem_filters: int = 32, **opts) -> Graph:
    """AmoebaNet-D with the TPU reference defaults (12 normal cells, reductions at 4 and 8)."""
    b = NetBuilder("amoebanet-d", **opts)
    x = b.input("image", 3, (image_size, image_size))
    net = b.conv("conv0", x, stem_filters, 3, stride=2)  # VALID padding
    outputs: list[Tensor | None] = [None, net]
    scaling = 1 / 4
    for i in range(2):
        net = nasnet_cell(b, f"cell_stem_{i}", net, outputs[-2], int(filters * scaling), 2, AMOEBANET_D_REDUCTION,
                          _amoeba_op)
        outputs.append(net)
        scaling *= 2
    reductions = [int(k / 3 * cells) for k in (1, 2)]
    scaling = 1.0
    for cell in range(cells):
        if cell in reductions:
            scaling *= 2
            net = nasnet_cell(b, f"reduction_cell_{reductions.index(cell)}", net, outputs[-2],
                              int(filters * scaling), 2, AMOEBANET_D_REDUCTION, _amoeba_op)
            outputs.append(net)
        net = nasnet_cell(b, f"cell_{cell}", net, outputs[-2], int(filters * scaling), 1, AMOEBANET_D_NORMAL,
                          _amoeba_op)
        outputs.append(net)
    net, pre = b.pre_activation("final_relu", net)
    pooled = b.global_pool("global_pool", net)
    b.conv("logits", pooled, classes, 1, bias=True, bn=False, input_activation=pre)
    return b.graph()
