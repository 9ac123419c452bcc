"""Spatial squeeze ops: (B, C, H, W) -> (B, S, H, W), S = ``out_channels`` maps per position."""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from searchspace.registry import SPATIAL_SQUEEZE
from searchspace.rules import hidden_channels


@SPATIAL_SQUEEZE.register("none")
class NoSpatialSqueeze(nn.Module):
    """No spatial branch: the block builds nothing; as a module it gives one zero map.

    (B, C, H, W) -> (B, 1, H, W)
    """

    out_channels = 1

    def __init__(self, channels: int) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[0], 1, x.shape[2], x.shape[3])


@SPATIAL_SQUEEZE.register("mean_max")
class MeanMaxPool(nn.Module):
    """CBAM's spatial squeeze (Woo et al. 2018): mean and max over channels, in the paper's order.

    CBAM's released code puts max first.

    (B, C, H, W) -> (B, 2, H, W), mean first
    """

    out_channels = 2

    def __init__(self, channels: int) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)), dim=1)


@SPATIAL_SQUEEZE.register("mean")
class MeanPool(nn.Module):
    """Mean over channels, CBAM's first spatial map on its own (Woo et al. 2018).

    (B, C, H, W) -> (B, 1, H, W)
    """

    out_channels = 1

    def __init__(self, channels: int) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1, keepdim=True)


@SPATIAL_SQUEEZE.register("max")
class MaxPool(nn.Module):
    """Max over channels, CBAM's second spatial map on its own (Woo et al. 2018).

    (B, C, H, W) -> (B, 1, H, W)
    """

    out_channels = 1

    def __init__(self, channels: int) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=1, keepdim=True)


@SPATIAL_SQUEEZE.register("conv1x1")
class ReduceConv(nn.Module):
    """BAM's spatial channel reduction (Park et al. 2018): 1x1 conv to the bottleneck width, BN, ReLU.

    (B, C, H, W) -> (B, S, H, W), S = max(C // r, min(C, 4)). BAM's conv bias is dropped: the BN
    after it cancels it.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.out_channels = hidden_channels(channels, reduction)
        self.conv = nn.Conv2d(channels, self.out_channels, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(self.out_channels)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.bn(self.conv(x)))


@SPATIAL_SQUEEZE.register("lse")
class LogSumExpChannelPool(nn.Module):
    """New: log-sum-exp over channels, learnable sharpness (Pinheiro & Collobert 2015): mean to max.

    A smooth, learned mix of the two ends CBAM hard-codes.

    (B, C, H, W) -> (B, 1, H, W)
    """

    out_channels = 1

    def __init__(self, channels: int, sharpness: float = 1.0) -> None:
        super().__init__()
        self.sharpness = nn.Parameter(torch.tensor(float(sharpness)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Below 0.01 the pool is the mean already; the floor keeps the division well conditioned.
        r = self.sharpness.clamp(min=0.01)
        return (torch.logsumexp(r * x, dim=1, keepdim=True) - math.log(x.shape[1])) / r


@SPATIAL_SQUEEZE.register("softpool")
class SoftChannelPool(nn.Module):
    """New: SoftPool (Stergiou et al. 2021) over channels, weighted by softmax of each activation.

    No attention module uses it.

    (B, C, H, W) -> (B, 1, H, W)
    """

    out_channels = 1

    def __init__(self, channels: int) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (torch.softmax(x, dim=1) * x).sum(dim=1, keepdim=True)


@SPATIAL_SQUEEZE.register("mean_std")
class MeanStdPool(nn.Module):
    """New: mean and std over channels (SRM's style statistics turned spatial): std marks disagreement.

    SRM (Lee et al. 2019) takes them over positions; no spatial gate uses the std map.

    (B, C, H, W) -> (B, 2, H, W), mean first
    """

    out_channels = 2

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        std = (x.var(dim=1, unbiased=False, keepdim=True) + self.eps).sqrt()
        return torch.cat((x.mean(dim=1, keepdim=True), std), dim=1)
