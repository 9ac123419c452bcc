"""Channel excitation ops: (N, C, 1, 1) descriptors -> (N, C, 1, 1) gate logits.

The last affine term of each op starts at ``gate_bias`` so that sigmoid gates start open and a
block starts close to the identity; ECA's conv has no such term and is kept as published.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from searchspace.registry import CHANNEL_EXCITATION
from searchspace.rules import GATE_BIAS, hidden_channels


def eca_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
    """ECA's adaptive kernel size: |(log2 C + b) / gamma| rounded down to an int, made odd."""
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1


@CHANNEL_EXCITATION.register("none")
class IdentityExcitation(nn.Module):
    """No excitation, the descriptor is the logit: GE-theta-minus (Hu et al. 2018, gather-excite).

    (N, C, 1, 1) -> (N, C, 1, 1)
    """

    def __init__(self, channels: int) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@CHANNEL_EXCITATION.register("fc_relu_fc")
class FcReluFc(nn.Module):
    """SE's excitation (Hu et al. 2018) and CBAM's shared MLP: 1x1 conv, ReLU, 1x1 conv, biases.

    Named as torchvision.ops.SqueezeExcitation, so its weights load directly.

    (N, C, 1, 1) -> (N, C, 1, 1)
    """

    def __init__(self, channels: int, reduction: int = 16, gate_bias: float = GATE_BIAS) -> None:
        super().__init__()
        hidden = hidden_channels(channels, reduction)
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1)
        self.activation = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1)
        nn.init.constant_(self.fc2.bias, gate_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation(self.fc1(x)))


@CHANNEL_EXCITATION.register("fc_bn_relu_fc")
class FcBnReluFc(nn.Module):
    """BAM's channel attention MLP (Park et al. 2018): FC, BN, ReLU, FC.

    (N, C, 1, 1) -> (N, C, 1, 1). BAM's first FC bias is dropped: the BN after it cancels it.
    """

    def __init__(self, channels: int, reduction: int = 16, gate_bias: float = GATE_BIAS) -> None:
        super().__init__()
        hidden = hidden_channels(channels, reduction)
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(hidden)
        self.activation = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1)
        nn.init.constant_(self.fc2.bias, gate_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation(self.bn(self.fc1(x))))


@CHANNEL_EXCITATION.register("eca")
class ECAConv(nn.Module):
    """ECA's excitation (Wang et al. 2020): 1D conv across channels, adaptive odd kernel, no bias.

    Kernel size from C with gamma=2, b=1.

    (N, C, 1, 1) -> (N, C, 1, 1)
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        k = eca_kernel_size(channels)
        self.conv = nn.Conv1d(1, 1, kernel_size=k, padding=k // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        return self.conv(x.reshape(n, 1, c)).view(n, c, 1, 1)


@CHANNEL_EXCITATION.register("bn")
class BatchNormExcitation(nn.Module):
    """SRM's excitation (Lee et al. 2019): batch normalisation of the style descriptor.

    (N, C, 1, 1) -> (N, C, 1, 1)
    """

    def __init__(self, channels: int, gate_bias: float = GATE_BIAS) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        nn.init.constant_(self.bn.bias, gate_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x)


@CHANNEL_EXCITATION.register("fc_ln_relu_fc")
class FcLnReluFc(nn.Module):
    """GCNet's transform (Cao et al. 2019): 1x1 conv, LayerNorm over (C/r, 1, 1), ReLU, 1x1 conv.

    (N, C, 1, 1) -> (N, C, 1, 1)
    """

    def __init__(self, channels: int, reduction: int = 16, gate_bias: float = GATE_BIAS) -> None:
        super().__init__()
        hidden = hidden_channels(channels, reduction)
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1)
        self.norm = nn.LayerNorm([hidden, 1, 1])
        self.activation = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1)
        nn.init.constant_(self.fc2.bias, gate_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation(self.norm(self.fc1(x))))


@CHANNEL_EXCITATION.register("glu")
class GatedBottleneck(nn.Module):
    """New: gated-linear-unit bottleneck (Dauphin et al. 2017): descriptors interact multiplicatively.

    The hidden units are products of two projections; from language modelling.

    (N, C, 1, 1) -> (N, C, 1, 1)
    """

    def __init__(self, channels: int, reduction: int = 16, gate_bias: float = GATE_BIAS) -> None:
        super().__init__()
        hidden = hidden_channels(channels, reduction)
        self.fc1 = nn.Conv2d(channels, 2 * hidden, kernel_size=1)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1)
        nn.init.constant_(self.fc2.bias, gate_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.glu(self.fc1(x), dim=1))


@CHANNEL_EXCITATION.register("eca_dilated")
class DilatedECAConv(nn.Module):
    """New: ECA's channel conv at dilations 1, 2, 3, summed: three times ECA's reach across channels.

    No attention module uses it; it has a bias, which ECA has not.

    (N, C, 1, 1) -> (N, C, 1, 1)
    """

    dilations = (1, 2, 3)

    def __init__(self, channels: int, gate_bias: float = GATE_BIAS) -> None:
        super().__init__()
        k = eca_kernel_size(channels)
        self.convs = nn.ModuleList(
            nn.Conv1d(1, 1, kernel_size=k, padding=d * (k // 2), dilation=d, bias=False) for d in self.dilations
        )
        self.bias = nn.Parameter(torch.tensor(float(gate_bias)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        row = x.reshape(n, 1, c)
        return (sum(conv(row) for conv in self.convs) + self.bias).view(n, c, 1, 1)
