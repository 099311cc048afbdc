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
        if e.op is OpKind.MAC:
            # every conv, linear and attention product is a two-operand GEMM with the same MACs
            assert len(e.inputs) == 2
            assert e.as_gemm().macs == e.macs


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


# --- semantics of the index expressions, against direct loop references -----------------------

import itertools  # noqa: E402

import numpy as np  # noqa: E402
from hypothesis import assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from accelsim.ir import AffineIndex  # noqa: E402
from workloads.cnn.builder import NetBuilder  # noqa: E402


def _evaluate(einsum, arrays):
    """Slow generic evaluator: visit every iteration point, skip reads outside a tensor (padding)."""
    out_t = einsum.output.tensor
    init = -np.inf if einsum.op is OpKind.MAX else 0.0
    out = np.full(out_t.shape, init)
    ranks = list(einsum.extents)
    parse = lambda operand: [AffineIndex.parse(i) for i in operand.index]  # noqa: E731
    out_idx, in_idx = parse(einsum.output), [parse(o) for o in einsum.inputs]

    def at(affs, env, shape):
        idx = tuple(a.offset + sum(c * env[r] for r, c in a.coefs) for a in affs)
        return idx if all(0 <= i < n for i, n in zip(idx, shape)) else None

    for point in itertools.product(*(range(einsum.extents[r]) for r in ranks)):
        env = dict(zip(ranks, point))
        o = at(out_idx, env, out_t.shape)
        if o is None:
            continue
        vals = []
        for operand, affs in zip(einsum.inputs, in_idx):
            i = at(affs, env, operand.tensor.shape)
            vals.append(None if i is None else arrays[operand.tensor.name][i])
        if einsum.op is OpKind.MAC:
            if None not in vals:
                out[o] += vals[0] * vals[1]
        elif einsum.op is OpKind.MAX:
            if vals[0] is not None:
                out[o] = max(out[o], vals[0])
        elif einsum.op is OpKind.COPY:
            present = [v for v in vals if v is not None]
            assert len(present) == 1  # concat pieces never overlap
            out[o] = present[0]
    return out


def _conv_reference(x, w, stride, pad, dil, groups, shift):
    """Direct grouped/dilated 2D convolution (cross-correlation, zero padding, input shift)."""
    _, cin, h, wd = x.shape
    k, cg, r, s = w.shape
    p_out = (h + 2 * pad - dil * (r - 1) - 1) // stride + 1
    q_out = (wd + 2 * pad - dil * (s - 1) - 1) // stride + 1
    y = np.zeros((1, k, p_out, q_out))
    kg = k // groups
    for ko in range(k):
        g = ko // kg
        for p in range(p_out):
            for q in range(q_out):
                acc = 0.0
                for c in range(cg):
                    for i in range(r):
                        for j in range(s):
                            hh = p * stride + i * dil - pad + shift
                            ww = q * stride + j * dil - pad + shift
                            if 0 <= hh < h and 0 <= ww < wd:
                                acc += x[0, g * cg + c, hh, ww] * w[ko, c, i, j]
                y[0, ko, p, q] = acc
    return y


@settings(max_examples=25, deadline=None, derandomize=True)
@given(groups=st.sampled_from([1, 2, 4]), per_in=st.integers(1, 2), per_out=st.integers(1, 2),
       size=st.integers(3, 7), kernel=st.integers(1, 3), stride=st.integers(1, 2), pad=st.integers(0, 2),
       dil=st.integers(1, 2), shift=st.integers(0, 1))
def test_conv_einsum_computes_a_convolution(groups, per_in, per_out, size, kernel, stride, pad, dil, shift):
    assume(size + 2 * pad >= dil * (kernel - 1) + 1)
    b = NetBuilder("t")
    x_t = b.input("x", groups * per_in, (size, size))
    y_t = b.conv("conv", x_t, groups * per_out, kernel, stride=stride, padding=pad, dilation=dil, groups=groups,
                 bn=False, shift=shift)
    e = b.einsums[-1]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_t.shape)
    w = rng.standard_normal(e.inputs[1].tensor.shape)
    got = _evaluate(e, {"x": x, "conv.weight": w})
    want = _conv_reference(x, w, stride, pad, dil, groups, shift)
    assert got.shape == want.shape == y_t.shape
    np.testing.assert_allclose(got, want, atol=1e-9)
    assert e.macs == want.size * per_in * kernel * kernel


def test_pool_and_concat_einsums_compute_what_they_say():
    b = NetBuilder("t")
    x_t = b.input("x", 2, (5, 5))
    pooled_t = b.pool("pool", x_t, "max", 3, stride=2, padding=1)
    x2_t = b.input("x2", 3, (3, 3))
    cat_t = b.concat("cat", [pooled_t, x2_t])
    rng = np.random.default_rng(1)
    x, x2 = rng.standard_normal(x_t.shape), rng.standard_normal(x2_t.shape)
    pooled = _evaluate(b.einsums[0], {"x": x})
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    want = np.array([[[[padded[0, c, 2 * p:2 * p + 3, 2 * q:2 * q + 3].max() for q in range(3)] for p in range(3)]
                      for c in range(2)]])
    np.testing.assert_allclose(pooled, want)
    cat = _evaluate(b.einsums[1], {"pool": pooled, "x2": x2})
    np.testing.assert_allclose(cat, np.concatenate([pooled, x2], axis=1))
    assert cat_t.shape == (1, 5, 3, 3)


def test_nas_cells_have_their_published_structure(graphs):
    normal = graphs["darts-normal-cell"]
    # 8 ops: 5 sep convs (2 dw + 2 pw each), 2 identities, 1 dil conv (dw + pw); 2 preprocess convs;
    # 4 node sums; 1 concat.
    convs = [e for e in normal.einsums if e.attrs.get("kind") == "conv"]
    assert len(convs) == 2 + 5 * 4 + 2
    assert sum(e.attrs.get("kind") == "add" for e in normal.einsums) == 4
    assert [t.shape for t in normal.outputs] == [(1, 4 * 48, 28, 28)]
    reduction = graphs["darts-reduction-cell"]
    assert [t.shape for t in reduction.outputs] == [(1, 4 * 96, 14, 14)]
    assert sum(e.op is OpKind.MAX for e in reduction.einsums) == 5
    nas_normal = graphs["nasnet-a-normal-cell"]
    assert [t.shape for t in nas_normal.outputs] == [(1, 6 * 44, 28, 28)]  # concat of h_prev and 5 blocks
    nas_red = graphs["nasnet-a-reduction-cell"]
    assert [t.shape for t in nas_red.outputs] == [(1, 4 * 88, 14, 14)]
    assert graphs["nasnet-a"].tensors["cell_11.concat"].shape == (1, 1056, 7, 7)  # "4 @ 1056"
    assert graphs["nasnet-a-cifar"].tensors["cell_17.concat"].shape == (1, 768, 8, 8)  # "6 @ 768"
    assert graphs["pnasnet-5"].tensors["cell_8.concat"].shape == (1, 1080, 7, 7)


@pytest.mark.parametrize("name", ALL)
def test_unfused_activations_add_tensors_not_macs(graphs, name):
    unfused = build_network(name, fuse_activations=False)
    fused = graphs[name]
    acts = sum(e.op is OpKind.ACTIVATION for e in unfused.einsums)
    fused_acts = sum(e.op is OpKind.ACTIVATION for e in fused.einsums)
    assert unfused.macs == fused.macs
    assert fused_acts == 0  # every activation is fused into a producer or consumer by default
    assert len(unfused) == len(fused) + acts
    assert len(unfused.tensors) == len(fused.tensors) + acts  # each out-of-place activation is a new tensor


def test_amoebanet_d_structure(graphs):
    g = graphs["amoebanet-d"]
    # normal cell concatenates 4 states (h0, h3, h4, h6), the reduction cell 3 (h4, h5, h6)
    assert g.tensors["cell_0.concat"].shape == (1, 4 * 256, 28, 28)
    assert g.tensors["reduction_cell_0.concat"].shape == (1, 3 * 512, 14, 14)
    assert g.tensors["cell_11.concat"].shape == (1, 4 * 1024, 7, 7)
    # TF SAME pooling on the odd 111x111 stem output gives 56x56
    assert g.tensors["conv0"].shape == (1, 32, 111, 111)
    assert g.tensors["cell_stem_0.concat"].shape == (1, 3 * 64, 56, 56)
    # "1x7_7x1" runs inside a 1x1 bottleneck at a quarter of the width
    assert g.tensors["cell_0.comb1.right.1x7"].shape == (1, 64, 28, 28)


@pytest.mark.parametrize("name", ALL)
def test_batch_scales_work_not_weights(graphs, name):
    one, two = graphs[name], build_network(name, batch=2)
    assert two.macs == 2 * one.macs
    assert weight_elements(two) == weight_elements(one)
    acts = lambda g: sum(t.bytes for t in g.tensors.values() if t.role is not TensorRole.WEIGHT)  # noqa: E731
    assert acts(two) == 2 * acts(one)
