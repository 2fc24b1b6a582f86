"""ResNets (He et al. 2016), LeNet, and the classifier heads of the long-tail baselines.

ResNet-18 as in the seed report: the stem is a 3x3 convolution with stride 1 and the max-pool is replaced by
the identity, so that small images keep their resolution. ``width`` is the number of channels of the first
stage (64 in the standard network); the penultimate features are the globally pooled output of the last
stage, of dimension ``8 * width`` (512 for width 64), taken after the last ReLU so they are non-negative.

ResNet-32 as in the long-tail literature (Cao et al. 2019's code): three stages of five basic blocks with
``width``, 2 ``width`` and 4 ``width`` channels (16/32/64), parameter-free shortcuts (option A: subsample
and zero-pad), 64-dim features for width 16.

ResNet-50 as in torchvision (the ImageNet-LT network of the long-tail literature): the ImageNet stem (7x7
convolution with stride 2, 3x3 max-pool with stride 2), four stages of 3/4/6/3 bottleneck blocks (stride on
the 3x3 convolution, "ResNet v1.5"), projection shortcuts; 2048-dim features for width 64 (``32 * width``).

LeNet as OpenOOD v1.0 builds it for 28x28 images (``openood/networks/lenet.py``): convolutions 6@5x5 (padding
2), 16@5x5 and 120@5x5, each followed by a ReLU, the first two by a 2x2 max-pool; then fc 120->84 with a ReLU and
fc 84->C. Its widths are fixed (no ``width``); its features are the 84-dim input of the last layer.

Heads (``model.fc``): ``linear`` z = W h + b; ``normed`` z = s cos(h, w_c) (LDAM); ``etf`` a fixed simplex
ETF W* with unit rows, z = W* h / ||h|| (Yang et al. 2022). Every head exposes ``weight`` and ``bias``.

The features h are what the head reads (``model.features``): the pooled output of the last stage, followed by
the network's ``neck``. The neck is the identity except for the ETF head, where it is the BatchNorm1d that
Yang et al.'s ETF classifier applies before the L2 normalisation: pooled post-ReLU features are non-negative,
and a non-negative h cannot point along ETF rows of mixed signs (w*_y . h / ||h|| stays well below 1), so
without it the dot-regression optimum is out of reach.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nclab.plan import FIXED_WIDTHS


class PaddingShortcut(nn.Module):
    """Parameter-free shortcut: subsample by ``stride`` and zero-pad the new channels (ResNet-32's option A)."""

    def __init__(self, stride: int, extra_channels: int) -> None:
        super().__init__()
        self.stride, self.extra = stride, extra_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return nn.functional.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut: a 1x1 convolution (``projection``) or :class:`PaddingShortcut`
    (``padding``) where the shape changes, the identity elsewhere."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, shortcut: str = "projection") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = (
                PaddingShortcut(stride, out_channels - in_channels)
                if shortcut == "padding"
                else nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
                )
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand to 4x the block's width; projection shortcut where
    the shape changes."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return torch.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """Stem, stages, global average pooling and the neck: ``features`` gives h, ``fc`` maps h to the logits."""

    def __init__(self, stem: nn.Module, stages: nn.Module, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        self.stem, self.stages = stem, stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = feature_dim
        self.neck: nn.Module = nn.Identity()
        self.fc = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.neck(torch.flatten(self.pool(self.stages(self.stem(x))), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


class ResNet32(ResNet):
    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 16) -> None:
        stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        )
        blocks, channels = [], width
        for stage, stride in enumerate((1, 2, 2)):
            out_channels = width * 2**stage
            for block in range(5):
                blocks.append(BasicBlock(channels, out_channels, stride if block == 0 else 1, shortcut="padding"))
                channels = out_channels
        super().__init__(stem, nn.Sequential(*blocks), channels, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)


class NormedLinear(nn.Module):
    """z_c = scale * cos(h, w_c), no bias (LDAM's normalised classifier; ``bias`` is a zero buffer)."""

    def __init__(self, dim: int, num_classes: int, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.weight = nn.Parameter(torch.empty(num_classes, dim).uniform_(-1, 1))
        self.register_buffer("bias", torch.zeros(num_classes))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.scale * nn.functional.normalize(h, dim=1) @ nn.functional.normalize(self.weight, dim=1).T


def simplex_etf(num_classes: int, dim: int, seed: int = 0) -> torch.Tensor:
    """(C, d) rows forming a simplex equiangular tight frame: unit norms, pairwise cosines -1/(C-1).

    W*^T = sqrt(C/(C-1)) U (I - 11^T/C), U a (d, C) orthonormal basis drawn with ``seed``; needs d >= C.
    """
    if dim < num_classes:
        raise ValueError(f"a simplex ETF of {num_classes} classes needs feature dimension >= {num_classes}, got {dim}")
    generator = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(dim, num_classes, generator=generator, dtype=torch.float64))
    centring = torch.eye(num_classes, dtype=torch.float64) - 1.0 / num_classes
    return (math.sqrt(num_classes / (num_classes - 1)) * basis @ centring).T.float()


class FixedETF(nn.Module):
    """z_c = w*_c . h / ||h|| with a fixed simplex ETF W* (buffers ``weight`` and zero ``bias``, no parameters)."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.register_buffer("weight", simplex_etf(num_classes, dim))
        self.register_buffer("bias", torch.zeros(num_classes))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(h, dim=1) @ self.weight.T


class ResNet18(ResNet):
    """ResNet-18 with a CIFAR stem."""

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 64) -> None:
        stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Identity(),  # the ImageNet max-pool, removed for small images
        )
        stages, channels = [], width
        for stage, stride in enumerate((1, 2, 2, 2)):
            out_channels = width * 2**stage
            stages.append(
                nn.Sequential(BasicBlock(channels, out_channels, stride), BasicBlock(out_channels, out_channels, 1))
            )
            channels = out_channels
        super().__init__(stem, nn.Sequential(*stages), channels, num_classes)


class ResNet50(ResNet):
    """ResNet-50 with the ImageNet stem, for ImageNet-sized inputs (ImageNet-LT)."""

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 64) -> None:
        stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 7, 2, 3, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        stages, channels = [], width
        for stage, (blocks, stride) in enumerate(((3, 1), (4, 2), (6, 2), (3, 2))):
            stage_width = width * 2**stage
            layers = []
            for block in range(blocks):
                layers.append(Bottleneck(channels, stage_width, stride if block == 0 else 1))
                channels = stage_width * Bottleneck.expansion
            stages.append(nn.Sequential(*layers))
        super().__init__(stem, nn.Sequential(*stages), channels, num_classes)


class LeNet(nn.Module):
    """LeNet for 28x28 images (OpenOOD v1.0): ``features`` gives the 84-dim h, ``fc`` maps it to the logits."""

    def __init__(self, num_classes: int, in_channels: int = 1) -> None:
        super().__init__()
        self.convolutions = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 120, 5),
            nn.ReLU(),
        )
        self.hidden = nn.Sequential(nn.Linear(120, 84), nn.ReLU())
        self.feature_dim = 84
        self.neck: nn.Module = nn.Identity()
        self.fc = nn.Linear(84, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.neck(self.hidden(torch.flatten(self.convolutions(x), 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


ARCHITECTURES = {"resnet18": ResNet18, "resnet32": ResNet32, "resnet50": ResNet50, "lenet": LeNet}


def head_kind(fc: nn.Module) -> str:
    """The name of a classifier head built by :func:`build_model` (``linear``, ``normed`` or ``etf``)."""
    return {NormedLinear: "normed", FixedETF: "etf", nn.Linear: "linear"}[type(fc)]


def build_model(
    arch: str,
    num_classes: int,
    in_channels: int,
    width: int | None = None,
    head: str = "linear",
    scale: float | None = None,
) -> nn.Module:
    """``arch`` (a ResNet at ``width``, or LeNet, which has none) with a ``head`` classifier (``scale``: the
    normed head's s, required by it and only by it); the ETF head comes with its BatchNorm1d neck (Yang et al.
    2022's ETF classifier: BN, then L2 normalisation, then the fixed W*)."""
    if (head == "normed") != (scale is not None):
        raise ValueError(f"scale is the normed head's s: give it for head 'normed' only (head {head!r})")
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; allowed: {sorted(ARCHITECTURES)}")
    if (width is None) != (arch in FIXED_WIDTHS):
        raise ValueError(f"width: the first-stage channels of a ResNet; give it for the ResNets only ({arch!r})")
    sizing = {} if width is None else {"width": width}
    model = ARCHITECTURES[arch](num_classes=num_classes, in_channels=in_channels, **sizing)
    if head == "normed":
        model.fc = NormedLinear(model.feature_dim, num_classes, scale)
    elif head == "etf":
        model.neck = nn.BatchNorm1d(model.feature_dim)
        model.fc = FixedETF(model.feature_dim, num_classes)
    elif head != "linear":
        raise ValueError(f"unknown classifier head {head!r}; allowed: ['etf', 'linear', 'normed']")
    return model
