"""Video networks: R(2+1)D-18 (Tran et al., CVPR 2018) and S3D (Xie et al., ECCV 2018).

3D convolutions carry a time rank: feature maps are ``(n, c, t, h, w)``. Shapes follow
torchvision's ``video/resnet.py`` (R(2+1)D stem 3->45 (1x7x7) -> 64 (3x1x1); each 3x3x3 conv
of a BasicBlock factorized into a (1x3x3) spatial conv to ``midplanes = in*out*27 //
(in*9 + 3*out)`` channels and a (3x1x1) temporal conv, both strided in layers 2-4; midplanes is
computed from the block's input width and reused by its second conv) and ``video/s3d.py``
(separable 3D inception blocks, the Inception-v1 channel table). Default input: one 16-frame
224x224 clip, as in the COSMA evaluation; torchvision's published GFLOPS for R(2+1)D-18 are
at 16x112x112, its training size.
"""
from __future__ import annotations

from accelsim.ir import Graph, Tensor

from workloads.cnn.builder import NetBuilder


def _conv2plus1d(b: NetBuilder, name: str, x: Tensor, out: int, mid: int, stride: int, act: str | None) -> Tensor:
    y = b.conv(f"{name}.0", x, mid, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), act="relu")
    return b.conv(f"{name}.3", y, out, (3, 1, 1), stride=(stride, 1, 1), padding=(1, 0, 0), act=act)


def r2plus1d_18(frames: int = 16, image_size: int = 224, classes: int = 400, **opts) -> Graph:
    b = NetBuilder("r2plus1d-18", **opts)
    x = b.input("clip", 3, (frames, image_size, image_size))
    x = b.conv("stem.0", x, 45, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), act="relu")
    x = b.conv("stem.3", x, 64, (3, 1, 1), padding=(1, 0, 0), act="relu")
    for li, (planes, stride) in enumerate(zip((64, 128, 256, 512), (1, 2, 2, 2)), start=1):
        for bi in range(2):  # layers = [2, 2, 2, 2]
            s = stride if bi == 0 else 1
            inplanes = x.shape[1]
            mid = (inplanes * planes * 27) // (inplanes * 9 + 3 * planes)
            name = f"layer{li}.{bi}"
            y = _conv2plus1d(b, f"{name}.conv1", x, planes, mid, s, act="relu")
            y = _conv2plus1d(b, f"{name}.conv2", y, planes, mid, 1, act=None)
            if s != 1 or inplanes != planes:
                x = b.conv(f"{name}.downsample", x, planes, 1, stride=s)
            x = b.add(f"{name}.add", y, x, act="relu")
    x = b.global_pool("avgpool", x)
    b.conv("fc", x, classes, 1, bias=True, bn=False)
    return b.graph()


def _tsc(b: NetBuilder, name: str, x: Tensor, out: int, kernel: int, stride: int, padding: int) -> Tensor:
    """TemporalSeparableConv: (1,k,k) spatial conv + BN + ReLU, then (k,1,1) temporal conv + BN + ReLU."""
    y = b.conv(f"{name}.0", x, out, (1, kernel, kernel), stride=(1, stride, stride), padding=(0, padding, padding),
               act="relu")
    return b.conv(f"{name}.1", y, out, (kernel, 1, 1), stride=(stride, 1, 1), padding=(padding, 0, 0), act="relu")


def _sep_inception(b: NetBuilder, name: str, x: Tensor, b0: int, b1_mid: int, b1: int, b2_mid: int, b2: int,
                   b3: int) -> Tensor:
    y0 = b.conv(f"{name}.branch0", x, b0, 1, act="relu")
    y1 = b.conv(f"{name}.branch1.0", x, b1_mid, 1, act="relu")
    y1 = _tsc(b, f"{name}.branch1.1", y1, b1, 3, 1, 1)
    y2 = b.conv(f"{name}.branch2.0", x, b2_mid, 1, act="relu")
    y2 = _tsc(b, f"{name}.branch2.1", y2, b2, 3, 1, 1)
    y3 = b.pool(f"{name}.branch3.0", x, "max", 3, stride=1, padding=1)
    y3 = b.conv(f"{name}.branch3.1", y3, b3, 1, act="relu")
    return b.concat(f"{name}.concat", [y0, y1, y2, y3])


# SepInceptionBlock3D channel arguments (b0, b1_mid, b1, b2_mid, b2, b3), torchvision s3d.py,
# the Inception-v1 (GoogLeNet) table: Mixed_3b, 3c | 4b..4f | 5b, 5c.
S3D_MIXED_3 = ((64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64))
S3D_MIXED_4 = ((192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64),
               (112, 144, 288, 32, 64, 64), (256, 160, 320, 32, 128, 128))
S3D_MIXED_5 = ((256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128))


def s3d(frames: int = 16, image_size: int = 224, classes: int = 400, **opts) -> Graph:
    b = NetBuilder("s3d", **opts)
    x = b.input("clip", 3, (frames, image_size, image_size))
    x = _tsc(b, "features.0", x, 64, 7, 2, 3)
    x = b.pool("features.1", x, "max", (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
    x = b.conv("features.2", x, 64, 1, act="relu")
    x = _tsc(b, "features.3", x, 192, 3, 1, 1)
    x = b.pool("features.4", x, "max", (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
    index = 5
    for cfg in S3D_MIXED_3:
        x = _sep_inception(b, f"features.{index}", x, *cfg)
        index += 1
    x = b.pool(f"features.{index}", x, "max", 3, stride=2, padding=1)
    index += 1
    for cfg in S3D_MIXED_4:
        x = _sep_inception(b, f"features.{index}", x, *cfg)
        index += 1
    x = b.pool(f"features.{index}", x, "max", 2, stride=2)
    index += 1
    for cfg in S3D_MIXED_5:
        x = _sep_inception(b, f"features.{index}", x, *cfg)
        index += 1
    x = b.pool("avgpool", x, "avg", (2, 7, 7), stride=1)
    x = b.conv("classifier", x, classes, 1, bias=True, bn=False)
    if any(e > 1 for e in x.shape[2:]):  # clips longer than 16 frames: average the remaining positions
        b.global_pool("mean", x)
    return b.graph()
