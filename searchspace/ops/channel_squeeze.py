"""Channel squeeze ops: (B, C, H, W) -> (B, C, K, 1), K = ``num_descriptors`` summaries per channel.

The block folds K into the batch, runs the excitation on each descriptor and sums the logits.
"""
from __future__ import annotations

import math
from typing import Dict, Tuple

import torch
import torch.nn as nn

from searchspace.registry import CHANNEL_SQUEEZE


@CHANNEL_SQUEEZE.register("none")
class NoChannelSqueeze(nn.Module):
    """No channel branch: the block builds nothing; as a module it gives a zero descriptor.

    (B, C, H, W) -> (B, C, 1, 1)
    """

    num_descriptors = 1

    def __init__(self, channels: int) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[0], x.shape[1], 1, 1)


@CHANNEL_SQUEEZE.register("gap")
class GlobalAvgPool(nn.Module):
    """Global average pooling, the squeeze of SE (Hu et al. 2018), ECA, BAM and GE-theta-minus.

    (B, C, H, W) -> (B, C, 1, 1)
    """

    num_descriptors = 1

    def __init__(self, channels: int) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3), keepdim=True)


@CHANNEL_SQUEEZE.register("gmp")
class GlobalMaxPool(nn.Module):
    """Global max pooling, CBAM's second descriptor (Woo et al. 2018) on its own.

    (B, C, H, W) -> (B, C, 1, 1)
    """

    num_descriptors = 1

    def __init__(self, channels: int) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=(2, 3), keepdim=True)


@CHANNEL_SQUEEZE.register("avg_max")
class AvgMaxPool(nn.Module):
    """CBAM's channel squeeze (Woo et al. 2018): average and max pooling, two descriptors.

    (B, C, H, W) -> (B, C, 2, 1), average first
    """

    num_descriptors = 2

    def __init__(self, channels: int) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack((x.mean(dim=(2, 3)), x.amax(dim=(2, 3))), dim=2).unsqueeze(-1)


@CHANNEL_SQUEEZE.register("style")
class StylePool(nn.Module):
    """SRM's style pooling and channel-wise FC (Lee et al. 2019): per-channel mean and std, mixed.

    The CFC has two weights per channel and no bias.

    (B, C, H, W) -> (B, C, 1, 1)
    """

    num_descriptors = 1

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        # SRM starts its CFC at zero: the excitation then sees a constant and the gate its bias.
        self.cfc = nn.Parameter(torch.zeros(channels, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(2)
        mean = flat.mean(dim=2)
        # The paper's 1/HW variance (not the unbiased one), so 1x1 maps give a finite std.
        std = (flat.var(dim=2, unbiased=False) + self.eps).sqrt()
        mixed = mean * self.cfc[:, 0] + std * self.cfc[:, 1]
        return mixed[:, :, None, None]


@CHANNEL_SQUEEZE.register("context")
class ContextPool(nn.Module):
    """GCNet's context modelling (Cao et al. 2019): attention pooling, softmax over HW of a 1x1 conv.

    (B, C, H, W) -> (B, C, 1, 1)
    """

    num_descriptors = 1

    def __init__(self, channels: int) -> None:
        super().__init__()
        # GCNet's conv has a bias, but softmax ignores a constant shift, so it would never learn.
        self.conv_mask = nn.Conv2d(channels, 1, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.conv_mask(x).flatten(2), dim=2)  # (B, 1, HW)
        pooled = torch.bmm(x.flatten(2), weights.transpose(1, 2))  # (B, C, 1)
        return pooled.unsqueeze(-1)


# FcaNet's "top16" frequencies (u, v), selected on a 7x7 grid (Qin et al. 2021, Fig. 4).
FCANET_TOP16 = (
    (0, 0), (0, 1), (6, 0), (0, 5), (0, 2), (1, 0), (1, 2), (4, 0),
    (5, 0), (1, 6), (3, 0), (0, 4), (0, 6), (0, 3), (3, 5), (2, 2),
)


def dct_basis(frequency: int, length: int) -> torch.Tensor:
    """Orthonormal DCT-II basis vector ``frequency`` of ``length`` samples, (length,)."""
    position = torch.arange(length, dtype=torch.float64)
    basis = torch.cos(math.pi * frequency * (position + 0.5) / length) / math.sqrt(length)
    return basis * (math.sqrt(2.0) if frequency else 1.0)


@CHANNEL_SQUEEZE.register("dct")
class DCTPool(nn.Module):
    """FcaNet's multi-spectral DCT pooling (Qin et al. 2021): channel groups, top-16 2D DCT bases.

    (B, C, H, W) -> (B, C, 1, 1). Frequencies chosen on 7x7 are scaled by H/7 and W/7 (FcaNet's
    rule where 7 divides the size, and defined for any size; on 1x1 all become DC).
    """

    num_descriptors = 1

    def __init__(self, channels: int) -> None:
        super().__init__()
        groups = min(len(FCANET_TOP16), channels)
        # Contiguous, near-equal channel groups: exactly FcaNet's split when 16 divides C.
        self.frequency_of_channel = [c * groups // channels for c in range(channels)]
        self._filters: Dict[Tuple[int, int, torch.dtype, torch.device], torch.Tensor] = {}

    def filters(self, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
        """The (C, H, W) DCT filter of every channel, built once per size, dtype and device."""
        key = (height, width, like.dtype, like.device)
        if key not in self._filters:
            per_frequency = []
            for u, v in FCANET_TOP16:
                row = dct_basis(u * height // 7, height)
                column = dct_basis(v * width // 7, width)
                per_frequency.append(torch.outer(row, column))
            stacked = torch.stack(per_frequency)[self.frequency_of_channel]
            self._filters[key] = stacked.to(dtype=like.dtype, device=like.device)
        return self._filters[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.filters(x.shape[2], x.shape[3], x)
        return (x * weights).sum(dim=(2, 3), keepdim=True)


@CHANNEL_SQUEEZE.register("gem")
class GeMPool(nn.Module):
    """New: generalised-mean pooling, learnable p (Radenovic et al. 2018, retrieval), avg to max.

    Between average (p=1) and max (p -> inf) pooling; no attention module uses it.

    (B, C, H, W) -> (B, C, 1, 1)
    """

    num_descriptors = 1

    def __init__(self, channels: int, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.p.clamp(min=1.0)
        log_x = x.clamp(min=self.eps).log().flatten(2)
        # (mean x^p)^(1/p) in the log domain, so large activations cannot overflow x^p.
        log_mean = torch.logsumexp(p * log_x, dim=2) - math.log(log_x.shape[2])
        return torch.exp(log_mean / p)[:, :, None, None]


@CHANNEL_SQUEEZE.register("lse")
class LogSumExpPool(nn.Module):
    """New: log-sum-exp pooling, learnable sharpness (Pinheiro & Collobert 2015), smooth avg to max.

    From weakly supervised segmentation; no attention module uses it.

    (B, C, H, W) -> (B, C, 1, 1)
    """

    num_descriptors = 1

    def __init__(self, channels: int, sharpness: float = 1.0) -> None:
        super().__init__()
        self.sharpness = nn.Parameter(torch.tensor(float(sharpness)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Below 0.01 the pool is the mean already; the floor keeps the division well conditioned.
        r = self.sharpness.clamp(min=0.01)
        flat = x.flatten(2)
        pooled = (torch.logsumexp(r * flat, dim=2) - math.log(flat.shape[2])) / r
        return pooled[:, :, None, None]


@CHANNEL_SQUEEZE.register("softpool")
class SoftPool(nn.Module):
    """New: SoftPool (Stergiou et al. 2021) over the map, positions weighted by softmax of activation.

    A downsampling method; no attention module uses it.

    (B, C, H, W) -> (B, C, 1, 1)
    """

    num_descriptors = 1

    def __init__(self, channels: int) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(2)
        return (torch.softmax(flat, dim=2) * flat).sum(dim=2)[:, :, None, None]
