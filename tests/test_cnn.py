"""CNN/transformer graphs against published parameter counts, MACs and layer shapes.

The published figures are independent of this code: torchvision's weights metadata (exact
``num_params``, "GFLOPS" = multiply-adds), and the papers' tables for the rest (cited in
``workloads.cnn.NETWORKS``).
"""
from __future__ import annotations

import pytest

from accelsim.errors import AccelsimError
from accelsim.ir import OpKind, TensorRole
from workloads.cnn import NETWORKS, build_network, parameter_count, weight_elements
from workloads.footprint import max_operator_footprint, operator_footprint_bytes

ALL = sorted(NETWORKS)
WITH_PARAMS = [n for n in ALL if NETWORKS[n].published_params]
WITH_MACS = [n for n in ALL if NETWORKS[n].published_macs]
# Networks whose published count is the exact framework count (torchvision): must match exactly.
EXACT = [n for n in WITH_PARAMS if NETWORKS[n].params_exact]


@pytest.fixture(scope="module")
def graphs():
    return {n: build_network(n) for n in ALL}


@pytest.mark.parametrize("name", ALL)
def test_graph_is_well_formed(graphs, name):
    g = graphs[name]
    # Graph() already validated DAG-ness and producers; check the roles the COSMA mapper relies on.
    inputs = [t for t in g.inputs if t.role is TensorRole.INPUT]
    assert len(inputs) >= 1
    for t in g.tensors.values():
        assert t.name in g.producer or t.role in (TensorRole.INPUT, TensorRole.WEIGHT)
        assert t.dtype_bytes == 1
    assert len(g.topological_order()) == len(g)
    # The builder's order is the framework's execution order, so it must already be topological.
    assert [e.name for e in g.topological_order()] == [e.name for e in g.einsums]
    for e in g.einsums:
        if e.attrs.get("kind") in ("conv", "conv3d", "linear", "conv_transpose"):
            e.as_gemm()  # every conv/linear is a two-operand GEMM


@pytest.mark.parametrize("name", WITH_PARAMS)
def test_weight_elements_within_tolerance_of_published(name):
    # Unfolded graph: every framework parameter except biases is a weight tensor.
    info = NETWORKS[name]
    opts = {k: v for k, v in info.published_at.items() if k != "image_size"}
    g = build_network(name, fold_bn=False, **opts)
    assert weight_elements(g) == pytest.approx(info.published_params, rel=info.params_rel_tol)


@pytest.mark.parametrize("name", ALL)
def test_folding_bn_removes_one_parameter_per_folded_channel(graphs, name):
    # Conservation: a folded BN's (scale, shift) become the conv's per-channel bias, so folding
    # removes exactly C parameters per folded BN of C channels.
    folded, unfolded = graphs[name], build_network(name, fold_bn=False)
    bn = lambda g: sum(t.elements for t in g.tensors.values()  # noqa: E731
                       if t.role is TensorRole.WEIGHT and t.dims == ("j", "c"))
    folded_channels = (bn(unfolded) - bn(folded)) // 2
    assert folded_channels >= 0  # zero for pre-activation nets (DenseNet) and transformers
    assert parameter_count(unfolded) - parameter_count(folded) == folded_channels
    assert unfolded.macs == folded.macs


@pytest.mark.parametrize("name", EXACT)
def test_unfolded_parameter_count_is_exact(name):
    info = NETWORKS[name]
    opts = {k: v for k, v in info.published_at.items() if k != "image_size"}
    assert parameter_count(build_network(name, fold_bn=False, **opts)) == info.published_params


@pytest.mark.parametrize("name", WITH_MACS)
def test_macs_match_published(graphs, name):
    info = NETWORKS[name]
    g = build_network(name, **info.published_at) if info.published_at else graphs[name]
    assert g.macs == pytest.approx(info.published_macs, rel=info.macs_rel_tol)


def test_unknown_network_lists_known_names():
    with pytest.raises(AccelsimError) as exc:
        build_network("resnet51")
    assert all(name in str(exc.value) for name in NETWORKS)


def test_bad_option_is_an_accelsim_error():
    with pytest.raises(AccelsimError):
        build_network("resnet50", widht=3)


def test_resnet50_layer_shapes(graphs):
    g = graphs["resnet50"]
    assert g.tensors["conv1"].shape == (1, 64, 112, 112)
    assert g.tensors["maxpool"].shape == (1, 64, 56, 56)
    assert g.tensors["layer1.0.conv1.weight"].shape == (64, 64, 1, 1)
    assert g.tensors["layer2.0.conv2"].shape == (1, 128, 28, 28)  # v1.5: stride on the 3x3
    assert g.tensors["layer2.0.conv1"].shape == (1, 128, 56, 56)
    assert g.tensors["layer4.2.add"].shape == (1, 2048, 7, 7)
    assert g.tensors["fc"].shape == (1, 1000, 1, 1)
    convs = [e for e in g.einsums if e.attrs.get("kind") == "conv"]
    assert len(convs) == 53 + 1  # 49 + 4 downsample convs, plus the fc as a 1x1 conv
    assert sum(e.op is OpKind.ADD and e.attrs["kind"] == "add" for e in g.einsums) == 16


def test_resnext_grouped_conv_macs_are_exact(graphs):
    e = graphs["resnext50"].einsum("layer1.0.conv2")
    # 32 groups of 4 -> 4 channels, 3x3, on 56x56: 56*56*128*4*9 MACs
    assert e.macs == 56 * 56 * 128 * 4 * 9
    gemm = e.as_gemm()
    assert (gemm.batch, gemm.m, gemm.k, gemm.n) == (32, 56 * 56, 36, 4)


def test_segmentation_output_stride_8(graphs):
    for name in ("fcn-resnet50", "deeplabv3-resnet50"):
        g = graphs[name]
        assert g.tensors["layer4.2.add"].shape == (1, 2048, 28, 28)
        assert g.tensors["upsample"].shape == (1, 21, 224, 224)
        assert [t.name for t in g.outputs] == ["upsample"]


def test_fold_and_fuse_options_change_structure_not_macs():
    folded = build_network("resnet50")
    unfolded = build_network("resnet50", fold_bn=False, fuse_activations=False)
    assert unfolded.macs == folded.macs
    assert len(unfolded) == len(folded) + 53 + 49  # one BN per conv, one ReLU per conv1/conv2/add/stem
    assert sum(e.op is OpKind.ACTIVATION for e in unfolded.einsums) == 49


def test_max_operator_footprint_is_largest_in_plus_out(graphs):
    g = graphs["resnet50"]
    # Independent recomputation from tensor shapes: brute force over einsums.
    best = 0
    for e in g.einsums:
        names = {o.tensor.name for o in e.inputs if o.tensor.role is not TensorRole.WEIGHT}
        names.add(e.output.tensor.name)
        best = max(best, sum(g.tensors[n].bytes for n in names))
    assert max_operator_footprint(g) == best
    # The stem's maxpool reads 64x112x112 and writes 64x56x56; the first residual add reads two
    # 256x56x56 tensors and writes a third: 3 * 802816 bytes is the largest.
    assert best == 3 * 256 * 56 * 56
    assert max_operator_footprint(g, with_weights=True) >= best
    e = g.einsum("layer4.0.conv2")
    assert operator_footprint_bytes(e, True) == 512 * 14 * 14 + 512 * 7 * 7 + 512 * 512 * 9


def test_transformer_base_parameters_match_closed_form(graphs):
    # Independent closed form (Vaswani et al. 2017 base: d 512, FFN 2048, 6+6 layers, shared
    # 37000-token embedding as the output projection; biases on every linear; LN scale+shift).
    d, f, layers, vocab = 512, 2048, 6, 37000
    attn = 4 * d * d + 4 * d
    ffn = 2 * d * f + f + d
    encoder = attn + ffn + 2 * 2 * d
    decoder = 2 * attn + ffn + 3 * 2 * d
    assert parameter_count(graphs["transformer-base"]) == layers * (encoder + decoder) + vocab * d


def test_transformer_base_attention_shapes(graphs):
    g = graphs["transformer-base"]
    assert g.tensors["encoder.0.self_attn.qk"].shape == (1, 8, 128, 128)
    e = g.einsum("decoder.5.cross_attn.av")
    assert e.macs == 8 * 128 * 128 * 64
    assert g.einsum("decoder.0.self_attn.softmax").attrs["causal"] is True
    assert g.tensors["generator"].shape == (1, 128, 37000)


def test_vit_shapes_and_macs(graphs):
    g = graphs["vit-b-16"]
    assert g.tensors["conv_proj"].shape == (1, 196, 768)
    assert g.tensors["add_pos_embedding"].shape == (1, 197, 768)
    assert g.tensors["encoder.layers.11.self_attention.qk"].shape == (1, 12, 197, 197)
    assert g.einsum("conv_proj").macs == 196 * 768 * 3 * 16 * 16
    assert g.tensors["heads.head"].shape == (1, 1, 1000)


def test_video_shapes(graphs):
    g = graphs["r2plus1d-18"]
    assert g.tensors["clip"].shape == (1, 3, 16, 224, 224)
    assert g.tensors["stem.0"].shape == (1, 45, 16, 112, 112)
    # midplanes of layer2.0: 64*128*27 // (64*9 + 3*128) = 230
    assert g.tensors["layer2.0.conv1.0"].shape == (1, 230, 16, 56, 56)
    assert g.tensors["layer4.1.add"].shape == (1, 512, 2, 14, 14)
    s = graphs["s3d"]
    assert s.tensors["features.15.concat"].shape == (1, 1024, 2, 7, 7)
    assert s.tensors["classifier"].shape == (1, 400, 1, 1, 1)


def test_mobilenet_depthwise_macs_are_exact(graphs):
    g = graphs["mobilenetv3-large"]
    e = g.einsum("features.4.depthwise")  # 72 channels, 5x5, stride 2: 56x56 -> 28x28
    assert g.tensors["features.4.depthwise"].shape == (1, 72, 28, 28)
    assert e.macs == 72 * 28 * 28 * 25
    assert g.tensors["features.4.se.fc1"].shape == (1, 24, 1, 1)  # make_divisible(72 // 4, 8) = 24
    lr = graphs["lraspp-mobilenetv3"]
    assert lr.tensors["features.16"].shape == (1, 960, 14, 14)  # dilated last stage: stride 16
    assert lr.tensors["head.add"].shape == (1, 21, 28, 28)


def test_fc_densenet_shapes(graphs):
    g = graphs["fc-densenet"]
    assert g.tensors["first_conv"].shape == (1, 48, 224, 224)
    assert g.tensors["down4.pool"].shape == (1, 656, 7, 7)
    assert g.tensors["bottleneck.concat14"].shape == (1, 896, 7, 7)
    assert g.tensors["up0.transition"].shape == (1, 240, 14, 14)
    assert g.tensors["up4.concat3"].shape == (1, 256, 224, 224)  # Table 2: m = 256 before the 1x1 conv
    assert g.tensors["softmax"].shape == (1, 11, 224, 224)
