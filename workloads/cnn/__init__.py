"""The networks used to evaluate COSMA, layer by layer, as accelsim Graphs.

``build_network(name, **options)`` builds one; ``NETWORKS`` maps each name to its builder, the
source of its architecture, and its published parameter count and multiply-accumulates with
the input size at which they were published. Modelling conventions (BN folding, fused
activations, concatenation, pooling, upsampling) are in ``workloads.cnn.builder``.

Common options: ``dtype_bytes`` (default 1, the 8-bit data of the COSMA evaluation),
``fold_bn`` (default True), ``fuse_activations`` (default True), ``batch`` (default 1);
image networks take ``image_size`` (default 224), video networks ``frames`` and ``image_size``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from accelsim.errors import AccelsimError
from accelsim.ir import Graph

from workloads.cnn import densenet, mobilenet, nas, resnet, transformers, video
from workloads.cnn.builder import parameter_count, weight_elements


@dataclass(frozen=True)
class NetworkInfo:
    """A registered network: how to build it and what its authors published about it.

    ``published_params`` is the framework's parameter count (for torchvision models the exact
    ``num_params`` of the weights' metadata; those for segmentation models include the
    auxiliary head, so compare with ``aux=True``). ``published_macs`` is in multiply-accumulates
    at ``published_at`` (the options to build with for the comparison); torchvision lists it
    as "GFLOPS" but counts one multiply-add as one operation.
    """

    builder: Callable[..., Graph]
    source: str
    published_params: float | None = None
    params_source: str = ""
    published_macs: float | None = None
    macs_source: str = ""
    published_at: dict = field(default_factory=dict)
    params_rel_tol: float = 0.01  # tolerance of the weight-count comparison
    params_exact: bool = False  # the published count is the framework's exact count
    macs_rel_tol: float = 0.01  # tolerance of the MAC comparison (rounding of the published figure)


TV = "torchvision model documentation, weights metadata (num_params, GFLOPS)"

NETWORKS: dict[str, NetworkInfo] = {
    "resnet50": NetworkInfo(
        resnet.resnet50, "He et al., Deep Residual Learning, CVPR 2016; torchvision resnet50 (v1.5)",
        25_557_032, f"{TV}: ResNet50_Weights.IMAGENET1K_V1", 4.09e9, f"{TV}: 4.09 GFLOPS", params_exact=True),
    "resnext50": NetworkInfo(
        resnet.resnext50, "Xie et al., Aggregated Residual Transformations, CVPR 2017; torchvision resnext50_32x4d",
        25_028_904, f"{TV}: ResNeXt50_32X4D_Weights.IMAGENET1K_V1", 4.23e9, f"{TV}: 4.23 GFLOPS", params_exact=True),
    "fcn-resnet50": NetworkInfo(
        resnet.fcn_resnet50, "Long et al., FCN, CVPR 2015; torchvision fcn_resnet50 (dilated backbone, FCNHead)",
        35_322_218, f"{TV}: FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1 (with aux head)",
        152.72e9, f"{TV}: 152.72 GFLOPS at 520x520", {"image_size": 520, "aux": True}, params_exact=True),
    "deeplabv3-resnet50": NetworkInfo(
        resnet.deeplabv3_resnet50, "Chen et al., Rethinking Atrous Convolution, 2017; torchvision deeplabv3_resnet50",
        42_004_074, f"{TV}: DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1 (with aux head)",
        178.72e9, f"{TV}: 178.72 GFLOPS at 520x520", {"image_size": 520, "aux": True}, params_exact=True),
    "mobilenetv3-large": NetworkInfo(
        mobilenet.mobilenetv3_large, "Howard et al., Searching for MobileNetV3, ICCV 2019; torchvision mobilenet_v3_large",
        5_483_032, f"{TV}: MobileNet_V3_Large_Weights.IMAGENET1K_V1", 0.22e9,
        f"{TV}: 0.22 GFLOPS (2 decimals, hence the 2.3% tolerance); the paper's Table 3 says 219M MAdds, "
        "1.1% above our 216.6M conv/linear MACs (it presumably also counts SE scaling and other element-wise work)",
        params_exact=True, macs_rel_tol=0.023),
    "lraspp-mobilenetv3": NetworkInfo(
        mobilenet.lraspp_mobilenetv3, "Howard et al. 2019 (LR-ASPP); torchvision lraspp_mobilenet_v3_large",
        3_221_538, f"{TV}: LRASPP_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1", 2.09e9,
        f"{TV}: 2.09 GFLOPS at 520x520", {"image_size": 520}, params_exact=True),
    "r2plus1d-18": NetworkInfo(
        video.r2plus1d_18, "Tran et al., A Closer Look at Spatiotemporal Convolutions, CVPR 2018; torchvision r2plus1d_18",
        31_505_325, f"{TV}: R2Plus1D_18_Weights.KINETICS400_V1", 40.52e9,
        f"{TV}: 40.52 GFLOPS at 16x112x112", {"image_size": 112}, params_exact=True),
    "s3d": NetworkInfo(
        video.s3d, "Xie et al., Rethinking Spatiotemporal Feature Learning, ECCV 2018; torchvision s3d",
        8_320_048, f"{TV}: S3D_Weights.KINETICS400_V1", 17.98e9, f"{TV}: 17.98 GFLOPS at 16x224x224",
        params_exact=True),
    "vit-b-16": NetworkInfo(
        transformers.vit_b_16, "Dosovitskiy et al., An Image is Worth 16x16 Words, ICLR 2021; torchvision vit_b_16",
        86_567_656, f"{TV}: ViT_B_16_Weights.IMAGENET1K_V1", 17.56e9, f"{TV}: 17.56 GFLOPS",
        params_exact=True),
    "transformer-base": NetworkInfo(
        transformers.transformer_base, "Vaswani et al., Attention Is All You Need, NeurIPS 2017, Table 3 (base)",
        65e6, "Vaswani et al. 2017, Table 3: 65 x 10^6 parameters. We count 63.1M with the ~37000-token "
        "shared vocabulary of Section 5.1 and biases on every linear; the paper neither gives the exact vocabulary "
        "nor its bias convention (65M needs a ~40.7k vocabulary), hence the 4% tolerance",
        params_rel_tol=0.04),
    "fc-densenet": NetworkInfo(
        densenet.fc_densenet, "Jegou et al., The One Hundred Layers Tiramisu (FC-DenseNet103), CVPRW 2017",
        9.4e6, "Jegou et al. 2017, Table 3: FC-DenseNet103, 9.4M parameters. We count 9,322,091 trainable "
        "(conv weights and biases, BN scale and shift); adding BN's running statistics, which the reference "
        "Lasagne code also stores as parameters, gives 9,425,163"),
    "darts": NetworkInfo(
        nas.darts_imagenet, "Liu et al., DARTS, ICLR 2019 (DARTS_V2 genotype, ImageNet mobile setting: C=48, 14 cells)",
        4_718_752, "osmr/imgclsmob README (model from quark0/darts): 4,718,752 parameters; paper Table 3: 4.7M. "
        "The paper's 574M multiply-adds is 8% above our 529.9M conv/linear MACs (imgclsmob's counter gives "
        "539.86M); we could not find what else it counts, so MACs are not compared",
        params_exact=True),
    "darts-cifar": NetworkInfo(
        nas.darts_cifar, "Liu et al., DARTS, ICLR 2019 (DARTS_V2 genotype, CIFAR-10: C=36, 20 cells, 32x32 input)",
        3_349_342, "quark0/darts train.py log 'param size = 3.349342MB' (auxiliary head excluded); paper Table 1: 3.3M",
        params_exact=True),
    "nasnet-a": NetworkInfo(
        nas.nasnet_a_mobile, "Zoph et al., Learning Transferable Architectures, CVPR 2018; NASNet-A Mobile 4 @ 1056",
        5_289_978, "Keras NASNetMobile model summary, trainable parameters 5,289,978 (also osmr/imgclsmob); "
        "paper Table 2: 5.3M", 564e6, "Zoph et al. 2018, Table 2: NASNet-A (4 @ 1056), 564M mult-adds",
        params_exact=True),
    "nasnet-a-cifar": NetworkInfo(
        nas.nasnet_a_cifar, "Zoph et al., CVPR 2018; NASNet-A 6 @ 768 for CIFAR-10 (32 filters, 18 cells)",
        3.3e6, "Zoph et al. 2018, Table 1: NASNet-A (6 @ 768), 3.3M; published to 0.1M, so the tolerance is half of "
        "that last digit (1.5%); we count 3,346,538", params_rel_tol=0.05 / 3.3),
    "pnasnet-5": NetworkInfo(
        nas.pnasnet_5_mobile, "Liu et al., Progressive Neural Architecture Search, ECCV 2018; PNASNet-5 Mobile "
        "(TF-slim pnasnet.py mobile config: 54 filters, 9 cells)",
        5.1e6, "Liu et al. 2018, Table 5: PNASNet-5 (Mobile) 5.1M parameters; published to 0.1M, so the tolerance "
        "is half of that last digit (0.98%); we count 5,064,487", 588e6,
        "Liu et al. 2018, Table 5: 588M Mult-Adds", params_rel_tol=0.05 / 5.1),
    "amoebanet-d": NetworkInfo(
        nas.amoebanet_d, "Real et al., Regularized Evolution for Image Classifier Architecture Search, AAAI 2019; "
        "cell 'amoeba_net_d' and defaults (12 cells, 256 filters) of the TensorFlow TPU reference implementation, "
        "at 224x224; no published parameter count for this configuration"),
    "darts-normal-cell": NetworkInfo(
        nas.darts_cell_graph, "one DARTS_V2 normal cell (C=48, inputs 192x28x28), see darts"),
    "darts-reduction-cell": NetworkInfo(
        lambda **o: nas.darts_cell_graph(reduction=True, **o),
        "one DARTS_V2 reduction cell (C=96, inputs 192x28x28), see darts"),
    "nasnet-a-normal-cell": NetworkInfo(
        nas.nasnet_cell_graph, "one NASNet-A normal cell (44 filters, inputs 264x28x28), see nasnet-a"),
    "nasnet-a-reduction-cell": NetworkInfo(
        lambda **o: nas.nasnet_cell_graph(reduction=True, **o),
        "one NASNet-A reduction cell (88 filters, inputs 264x28x28), see nasnet-a"),
}


def build_network(name: str, **options) -> Graph:
    """Build a registered network; unknown names and options raise AccelsimError."""
    info = NETWORKS.get(name)
    if info is None:
        raise AccelsimError(f"unknown network {name!r}", field="network", allowed=sorted(NETWORKS))
    try:
        return info.builder(**options)
    except TypeError as exc:  # an option the builder does not take
        raise AccelsimError(f"bad option for network {name!r}: {exc}", field="options") from None


__all__ = ["NETWORKS", "NetworkInfo", "build_network", "parameter_count", "weight_elements"]
