"""ResNet-50, ResNeXt-50 (32x4d) and the ResNet-50 segmentation nets (FCN, DeepLabV3).

Layer shapes follow torchvision's definitions (facts restated, no code copied):
``torchvision/models/resnet.py`` (ResNet v1.5: the stride sits on the 3x3 convolution of a
bottleneck; width = planes * base_width / 64 * groups), ``segmentation/fcn.py`` (FCNHead: 3x3
conv to in/4 channels, BN, ReLU, dropout, 1x1 conv with bias) and ``segmentation/deeplabv3.py``
(ASPP with rates 12, 24, 36 and an image-pooling branch, 256 channels, then a 3x3 conv and a
1x1 classifier). Segmentation backbones replace the strides of layer3 and layer4 by dilation 2
and 4 (output stride 8), and torchvision's pretrained segmentation models carry an auxiliary
FCNHead on layer3; it is included only with ``aux=True`` (the published parameter counts
include it; inference does not need it).
"""
from __future__ import annotations

from accelsim.ir import Graph, Tensor

from workloads.cnn.builder import NetBuilder

RESNET50_LAYERS = (3, 4, 6, 3)  # He et al. 2016, Table 1 (50-layer column)


def _bottleneck(b: NetBuilder, name: str, x: Tensor, planes: int, stride: int, groups: int,
                base_width: int, dilation: int) -> Tensor:
    width = int(planes * (base_width / 64.0)) * groups
    out_channels = planes * 4  # Bottleneck.expansion = 4
    y = b.conv(f"{name}.conv1", x, width, 1, act="relu")
    y = b.conv(f"{name}.conv2", y, width, 3, stride=stride, padding=dilation, dilation=dilation, groups=groups,
               act="relu")
    y = b.conv(f"{name}.conv3", y, out_channels, 1)
    if stride != 1 or x.shape[1] != out_channels:
        x = b.conv(f"{name}.downsample", x, out_channels, 1, stride=stride)
    return b.add(f"{name}.add", y, x, act="relu")


def resnet_features(b: NetBuilder, x: Tensor, *, groups: int = 1, base_width: int = 64,
                    dilate: tuple[bool, bool, bool] = (False, False, False)) -> dict[str, Tensor]:
    """Stem and layer1..layer4 of a bottleneck ResNet; returns each layer's output."""
    x = b.conv("conv1", x, 64, 7, stride=2, padding=3, act="relu")
    x = b.pool("maxpool", x, "max", 3, stride=2, padding=1)
    dilation = 1
    outs: dict[str, Tensor] = {}
    for li, (planes, blocks, stride) in enumerate(zip((64, 128, 256, 512), RESNET50_LAYERS, (1, 2, 2, 2))):
        previous_dilation = dilation
        if li > 0 and dilate[li - 1]:
            dilation *= stride
            stride = 1
        for bi in range(blocks):
            x = _bottleneck(b, f"layer{li + 1}.{bi}", x, planes, stride if bi == 0 else 1, groups, base_width,
                            previous_dilation if bi == 0 else dilation)
        outs[f"layer{li + 1}"] = x
    return outs


def _classifier(b: NetBuilder, x: Tensor, classes: int) -> Tensor:
    x = b.global_pool("avgpool", x)
    return b.conv("fc", x, classes, 1, bias=True, bn=False)


def resnet50(image_size: int = 224, classes: int = 1000, **opts) -> Graph:
    b = NetBuilder("resnet50", **opts)
    feats = resnet_features(b, b.input("image", 3, (image_size, image_size)))
    _classifier(b, feats["layer4"], classes)
    return b.graph()


def resnext50(image_size: int = 224, classes: int = 1000, **opts) -> Graph:
    """ResNeXt-50 32x4d: 32 groups, 4 channels per group at planes 64 (Xie et al. 2017)."""
    b = NetBuilder("resnext50", **opts)
    feats = resnet_features(b, b.input("image", 3, (image_size, image_size)), groups=32, base_width=4)
    _classifier(b, feats["layer4"], classes)
    return b.graph()


def _fcn_head(b: NetBuilder, name: str, x: Tensor, classes: int) -> Tensor:
    y = b.conv(f"{name}.0", x, x.shape[1] // 4, 3, padding=1, act="relu")
    return b.conv(f"{name}.4", y, classes, 1, bias=True, bn=False)


def fcn_resnet50(image_size: int = 224, classes: int = 21, aux: bool = False, **opts) -> Graph:
    b = NetBuilder("fcn-resnet50", **opts)
    feats = resnet_features(b, b.input("image", 3, (image_size, image_size)), dilate=(False, True, True))
    y = _fcn_head(b, "classifier", feats["layer4"], classes)
    b.upsample("upsample", y, (image_size, image_size))
    if aux:
        a = _fcn_head(b, "aux_classifier", feats["layer3"], classes)
        b.upsample("aux_upsample", a, (image_size, image_size))
    return b.graph()


def _aspp(b: NetBuilder, x: Tensor, rates: tuple[int, ...] = (12, 24, 36), channels: int = 256) -> Tensor:
    branches = [b.conv("aspp.0", x, channels, 1, act="relu")]
    for i, rate in enumerate(rates, start=1):
        branches.append(b.conv(f"aspp.{i}", x, channels, 3, padding=rate, dilation=rate, act="relu"))
    pooled = b.global_pool("aspp.pool.avgpool", x)
    pooled = b.conv("aspp.pool.conv", pooled, channels, 1, act="relu")
    branches.append(b.upsample("aspp.pool.upsample", pooled, x.shape[2:]))
    cat = b.concat("aspp.concat", branches)
    return b.conv("aspp.project", cat, channels, 1, act="relu")


def deeplabv3_resnet50(image_size: int = 224, classes: int = 21, aux: bool = False, **opts) -> Graph:
    b = NetBuilder("deeplabv3-resnet50", **opts)
    feats = resnet_features(b, b.input("image", 3, (image_size, image_size)), dilate=(False, True, True))
    y = _aspp(b, feats["layer4"])
    y = b.conv("classifier.1", y, 256, 3, padding=1, act="relu")
    y = b.conv("classifier.4", y, classes, 1, bias=True, bn=False)
    b.upsample("upsample", y, (image_size, image_size))
    if aux:
        a = _fcn_head(b, "aux_classifier", feats["layer3"], classes)
        b.upsample("aux_upsample", a, (image_size, image_size))
    return b.graph()
