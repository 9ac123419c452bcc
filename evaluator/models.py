"""ResNets with an attention block in every residual block, after the last BN and before the add (as SE-ResNet).

CIFAR-style ResNet-20/32/56 and torchvision's ResNet-18/34/50/101 share one pair of residual blocks:
torchvision's BasicBlock and Bottleneck, subclassed to carry an ``attention`` submodule.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Type, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models import resnet as tv

from searchspace.block import SASEBlock
from searchspace.genotype import Genotype
from searchspace.known import KNOWN_COMBINE, resolve

AttentionSpec = Union[None, str, Path, Genotype, Mapping]
AttentionLayer = Callable[[int], nn.Module]


class AttentionBasicBlock(tv.BasicBlock):
    """torchvision's BasicBlock with ``attention`` applied to bn2's output, before the residual add."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.attention: nn.Module = nn.Identity()

    @property
    def attention_channels(self) -> int:
        return self.bn2.num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.attention(self.bn2(self.conv2(out)))
        identity = x if self.downsample is None else self.downsample(x)
        # Out of place: with an Identity attention `out` is bn2's output, which hooks may hold.
        return self.relu(out + identity)


class AttentionBottleneck(tv.Bottleneck):
    """torchvision's Bottleneck with ``attention`` applied to bn3's output, before the residual add."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.attention: nn.Module = nn.Identity()

    @property
    def attention_channels(self) -> int:
        return self.bn3.num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.attention(self.bn3(self.conv3(out)))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


ATTENTION_BLOCKS = (AttentionBasicBlock, AttentionBottleneck)


class ZeroPadShortcut(nn.Module):
    """Option A shortcut of He et al. (2016): subsample by ``stride``, zero-fill the new channels.

    (B, C_in, H, W) -> (B, C_out, ceil(H / stride), ceil(W / stride)); parameter-free.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"option A cannot reduce channels: {in_channels} -> {out_channels}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.out_channels - self.in_channels))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


def cifar_stage(in_channels: int, out_channels: int, blocks: int, stride: int) -> nn.Sequential:
    """``blocks`` BasicBlocks; the first changes width and resolution through an option A shortcut."""
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = ZeroPadShortcut(in_channels, out_channels, stride)
    layers = [AttentionBasicBlock(in_channels, out_channels, stride, downsample)]
    layers += [AttentionBasicBlock(out_channels, out_channels) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 images, He et al. 2016, section 4.2. (B, 3, H, W) -> (B, num_classes).

    A 3x3 stem with 16 channels, three stages of n BasicBlocks with 16, 32 and 64 channels (the
    second and third halve the resolution), global average pooling and a linear classifier.
    Shortcuts are option A, as in the paper's CIFAR models: identity, or stride-2 subsampling with
    zero-padded new channels where the width doubles, so shortcuts add no parameters.
    """

    def __init__(self, depth: int, num_classes: int = 10, widths: Sequence[int] = (16, 32, 64)) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2 with n >= 1, got {depth}")
        blocks = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = cifar_stage(widths[0], widths[0], blocks, stride=1)
        self.layer2 = cifar_stage(widths[0], widths[1], blocks, stride=2)
        self.layer3 = cifar_stage(widths[1], widths[2], blocks, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[2], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


CIFAR_DEPTHS: Dict[str, int] = {"resnet20": 20, "resnet32": 32, "resnet56": 56}
IMAGENET_LAYOUTS: Dict[str, Tuple[Type[nn.Module], List[int]]] = {
    "resnet18": (AttentionBasicBlock, [2, 2, 2, 2]),
    "resnet34": (AttentionBasicBlock, [3, 4, 6, 3]),
    "resnet50": (AttentionBottleneck, [3, 4, 6, 3]),
    "resnet101": (AttentionBottleneck, [3, 4, 23, 3]),
}
ARCHS: Tuple[str, ...] = tuple(CIFAR_DEPTHS) + tuple(IMAGENET_LAYOUTS)


def attention_layer_for(
    attention: AttentionSpec,
    *,
    reduction: int = 16,
    combine: Optional[str] = None,
    gate_bias: Optional[float] = None,
) -> AttentionLayer:
    """A factory channels -> attention module for anything :func:`searchspace.resolve` accepts.

    A name in KNOWN with a published combine rule (searchspace.known.KNOWN_COMBINE) uses that rule
    unless ``combine`` is given; ``gate_bias`` None keeps the block's default.
    """
    genotype = resolve(attention)
    if not genotype.has_channel_branch and not genotype.has_spatial_branch:
        # nn.Identity ignores its arguments, so the class itself is a picklable factory.
        return nn.Identity
    if combine is None and isinstance(attention, str):
        combine = KNOWN_COMBINE.get(attention)
    options = {"reduction": reduction}
    if combine is not None:
        options["combine"] = combine
    if gate_bias is not None:
        options["gate_bias"] = gate_bias
    return functools.partial(SASEBlock, genotype=genotype, **options)


def insert_attention(model: nn.Module, attention_layer: AttentionLayer) -> nn.Module:
    """Give every residual block of ``model`` its own ``attention_layer(channels)``, in forward order.

    Done after the backbone is built so that the backbone's weight init (torchvision re-initialises
    every Conv2d and BatchNorm2d it contains) leaves the attention modules' own init alone.
    """
    blocks = [m for m in model.modules() if isinstance(m, ATTENTION_BLOCKS)]
    for block in blocks:
        block.attention = attention_layer(block.attention_channels)
    return model


def build_model(
    arch: str,
    num_classes: int,
    attention: AttentionSpec = None,
    *,
    attention_layer: Optional[AttentionLayer] = None,
    reduction: int = 16,
    combine: Optional[str] = None,
    gate_bias: Optional[float] = None,
) -> nn.Module:
    """A ResNet from ARCHS with an attention block in every residual block.

    ``attention``: None, a name in searchspace.KNOWN, a Genotype, a key string or a genotype JSON
    path; ``none|none|none|none`` gives the plain network. ``attention_layer`` instead builds each
    block's module from its channel count (the supernet's slots); give one or the other.
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; valid: {', '.join(ARCHS)}")
    if attention_layer is not None and attention is not None:
        raise ValueError("give either attention or attention_layer, not both")
    if attention_layer is None:
        attention_layer = attention_layer_for(attention, reduction=reduction, combine=combine, gate_bias=gate_bias)
    if arch in CIFAR_DEPTHS:
        model: nn.Module = CifarResNet(CIFAR_DEPTHS[arch], num_classes)
    else:
        block, layers = IMAGENET_LAYOUTS[arch]
        model = tv.ResNet(block, layers, num_classes=num_classes)
    return insert_attention(model, attention_layer)


def count_parameters(model: nn.Module) -> int:
    """Number of parameter elements; a parameter shared between modules counts once."""
    return sum(p.numel() for p in model.parameters())
