"""MobileNetV3-Large and LR-ASPP (Howard et al., Searching for MobileNetV3, ICCV 2019).

Shapes follow torchvision's ``mobilenetv3.py`` configuration table and
``segmentation/lraspp.py`` (facts restated). Squeeze-and-excitation: global pool, 1x1 conv with
bias to ``make_divisible(C/4, 8)`` + ReLU, 1x1 conv with bias back to C + hardsigmoid, then a
channel-wise scale. For segmentation the last stage (C4) is dilated (stride 1, dilation 2);
LR-ASPP takes the 40-channel stride-8 feature (output of block 4) as "low" and the last
960-channel conv as "high".
"""
from __future__ import annotations

from accelsim.ir import Graph, Tensor

from workloads.cnn.builder import NetBuilder

# (in, kernel, expanded, out, use_se, activation, stride): torchvision _mobilenet_v3_conf
# "mobilenet_v3_large", from Table 1 of the paper.
LARGE = (
    (16, 3, 16, 16, False, "relu", 1),
    (16, 3, 64, 24, False, "relu", 2),
    (24, 3, 72, 24, False, "relu", 1),
    (24, 5, 72, 40, True, "relu", 2),
    (40, 5, 120, 40, True, "relu", 1),
    (40, 5, 120, 40, True, "relu", 1),
    (40, 3, 240, 80, False, "hardswish", 2),
    (80, 3, 200, 80, False, "hardswish", 1),
    (80, 3, 184, 80, False, "hardswish", 1),
    (80, 3, 184, 80, False, "hardswish", 1),
    (80, 3, 480, 112, True, "hardswish", 1),
    (112, 3, 672, 112, True, "hardswish", 1),
    (112, 5, 672, 160, True, "hardswish", 2),
    (160, 5, 960, 160, True, "hardswish", 1),
    (160, 5, 960, 160, True, "hardswish", 1),
)
C4_START = 12  # index of the first block of the last stage (dilated for segmentation)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to a multiple of ``divisor``, never below 90% of ``value`` (MobileNet convention)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def _block(b: NetBuilder, name: str, x: Tensor, cfg: tuple, dilation: int) -> Tensor:
    cin, kernel, expanded, cout, use_se, act, stride = cfg
    y = x
    if expanded != cin:
        y = b.conv(f"{name}.expand", y, expanded, 1, act=act)
    stride = 1 if dilation > 1 else stride
    y = b.conv(f"{name}.depthwise", y, expanded, kernel, stride=stride, padding=(kernel - 1) // 2 * dilation,
               dilation=dilation, groups=expanded, act=act)
    if use_se:
        s = b.global_pool(f"{name}.se.avgpool", y)
        s = b.conv(f"{name}.se.fc1", s, make_divisible(expanded // 4), 1, bias=True, bn=False, act="relu")
        s = b.conv(f"{name}.se.fc2", s, expanded, 1, bias=True, bn=False, act="hardsigmoid")
        y = b.scale(f"{name}.se.scale", y, s)
    y = b.conv(f"{name}.project", y, cout, 1)
    if stride == 1 and cin == cout:
        y = b.add(f"{name}.add", y, x)
    return y


def mobilenetv3_features(b: NetBuilder, x: Tensor, dilated: bool = False) -> dict[str, Tensor]:
    """features[0..16]; returns the outputs LR-ASPP needs ("low": block 4, "high": last conv)."""
    x = b.conv("features.0", x, 16, 3, stride=2, padding=1, act="hardswish")
    outs: dict[str, Tensor] = {}
    for i, cfg in enumerate(LARGE, start=1):
        x = _block(b, f"features.{i}", x, cfg, 2 if dilated and i - 1 >= C4_START else 1)
        if i == 4:
            outs["low"] = x
    outs["high"] = b.conv("features.16", x, 6 * LARGE[-1][3], 1, act="hardswish")
    return outs


def mobilenetv3_large(image_size: int = 224, classes: int = 1000, **opts) -> Graph:
    b = NetBuilder("mobilenetv3-large", **opts)
    feats = mobilenetv3_features(b, b.input("image", 3, (image_size, image_size)))
    x = b.global_pool("avgpool", feats["high"])
    x = b.conv("classifier.0", x, 1280, 1, bias=True, bn=False, act="hardswish")
    b.conv("classifier.3", x, classes, 1, bias=True, bn=False)
    return b.graph()


def lraspp_mobilenetv3(image_size: int = 224, classes: int = 21, inter_channels: int = 128, **opts) -> Graph:
    b = NetBuilder("lraspp-mobilenetv3", **opts)
    feats = mobilenetv3_features(b, b.input("image", 3, (image_size, image_size)), dilated=True)
    low, high = feats["low"], feats["high"]
    x = b.conv("head.cbr", high, inter_channels, 1, act="relu")
    s = b.global_pool("head.scale.avgpool", high)
    s = b.conv("head.scale.conv", s, inter_channels, 1, bn=False, act="sigmoid")
    x = b.scale("head.scale.mul", x, s)
    x = b.upsample("head.upsample", x, low.shape[2:])
    lo = b.conv("head.low_classifier", low, classes, 1, bias=True, bn=False)
    hi = b.conv("head.high_classifier", x, classes, 1, bias=True, bn=False)
    y = b.add("head.add", lo, hi)
    b.upsample("upsample", y, (image_size, image_size))
    return b.graph()
