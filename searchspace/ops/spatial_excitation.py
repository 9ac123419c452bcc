"""Spatial excitation ops: (B, S, H, W) spatial maps -> (B, 1, H, W) gate logits.

An op is built for the largest S it will see (``in_channels``) and accepts any S <= in_channels:
its first conv uses the first S input channels of its weight. The weight-sharing supernet holds
one op per slot and feeds it squeezes of different S; a stand-alone op built for S equals the
supernet's op with its weight sliced to S. Hidden widths depend on ``channels`` and ``reduction``
only. The last affine term starts at ``gate_bias`` so that gates start open.
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from searchspace.registry import SPATIAL_EXCITATION
from searchspace.rules import GATE_BIAS, hidden_channels


class SlicedConv2d(nn.Conv2d):
    """A conv whose forward uses the first S input channels of its weight, S = the input's channels.

    (B, S, H, W) -> (B, out_channels, H', W'), S <= in_channels; groups must be 1.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight[:, : x.shape[1]]
        return F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation)


def gate_norm(gate_bias: float) -> nn.BatchNorm2d:
    """BN on the single logit map, its beta at ``gate_bias``."""
    bn = nn.BatchNorm2d(1)
    nn.init.constant_(bn.bias, gate_bias)
    return bn


@SPATIAL_EXCITATION.register("none")
class MeanOfMaps(nn.Module):
    """No excitation: the mean of the S maps is the logit (parameter-free, as GE-theta-minus).

    (B, S, H, W) -> (B, 1, H, W)
    """

    def __init__(self, channels: int) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1, keepdim=True)


class ConvBNGate(nn.Module):
    """A k x k conv to one map, no bias, then BN, as in CBAM's spatial gate.

    (B, S, H, W) -> (B, 1, H, W)
    """

    kernel_size = 7

    def __init__(self, channels: int, in_channels: int, gate_bias: float = GATE_BIAS) -> None:
        super().__init__()
        k = self.kernel_size
        self.conv = SlicedConv2d(in_channels, 1, kernel_size=k, padding=k // 2, bias=False)
        self.bn = gate_norm(gate_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


@SPATIAL_EXCITATION.register("conv7x7")
class Conv7x7Gate(ConvBNGate):
    """CBAM's spatial excitation (Woo et al. 2018): 7x7 conv, no bias, then BN.

    (B, S, H, W) -> (B, 1, H, W)
    """

    kernel_size = 7


@SPATIAL_EXCITATION.register("conv3x3")
class Conv3x3Gate(ConvBNGate):
    """CBAM's spatial excitation with the 3x3 kernel of its ablation (Woo et al. 2018), then BN.

    (B, S, H, W) -> (B, 1, H, W)
    """

    kernel_size = 3


@SPATIAL_EXCITATION.register("dilated")
class DilatedGate(nn.Module):
    """BAM's spatial excitation (Park et al. 2018): [3x3 conv dilation 4, BN, ReLU] x2, 1x1 conv.

    (B, S, H, W) -> (B, 1, H, W). BAM's conv biases before BN are dropped: the BN cancels them.
    """

    def __init__(
        self, channels: int, in_channels: int, reduction: int = 16, gate_bias: float = GATE_BIAS
    ) -> None:
        super().__init__()
        hidden = hidden_channels(channels, reduction)
        self.conv1 = SlicedConv2d(in_channels, hidden, kernel_size=3, padding=4, dilation=4, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.conv2 = nn.Conv2d(hidden, hidden, kernel_size=3, padding=4, dilation=4, bias=False)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.activation = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(hidden, 1, kernel_size=1)
        nn.init.constant_(self.conv3.bias, gate_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.activation(self.bn1(self.conv1(x)))
        x = self.activation(self.bn2(self.conv2(x)))
        return self.conv3(x)


@SPATIAL_EXCITATION.register("strip")
class StripGate(nn.Module):
    """New: 1x7 then 7x1 conv, BN (Inception-v3's factorisation): a 7x7 reach through strips.

    Row then column strips (Szegedy et al. 2016) with a bottleneck between them, a different
    7x7 family from CBAM's dense kernel; no attention gate uses it.

    (B, S, H, W) -> (B, 1, H, W)
    """

    def __init__(
        self, channels: int, in_channels: int, reduction: int = 16, gate_bias: float = GATE_BIAS
    ) -> None:
        super().__init__()
        hidden = hidden_channels(channels, reduction)
        self.row = SlicedConv2d(in_channels, hidden, kernel_size=(1, 7), padding=(0, 3), bias=False)
        self.column = nn.Conv2d(hidden, 1, kernel_size=(7, 1), padding=(3, 0), bias=False)
        self.bn = gate_norm(gate_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.column(self.row(x)))


@SPATIAL_EXCITATION.register("multi_dilation")
class MultiDilationGate(nn.Module):
    """New: 3x3 convs at dilations 1, 2, 3 summed, BN (ASPP's rates): 7x7 reach from 27, not 49 weights.

    The parallel rates of ASPP (Chen et al. 2017), multi-scale context in one gate.

    (B, S, H, W) -> (B, 1, H, W)
    """

    dilations: Tuple[int, ...] = (1, 2, 3)

    def __init__(self, channels: int, in_channels: int, gate_bias: float = GATE_BIAS) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            SlicedConv2d(in_channels, 1, kernel_size=3, padding=d, dilation=d, bias=False) for d in self.dilations
        )
        self.bn = gate_norm(gate_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(sum(conv(x) for conv in self.convs))
