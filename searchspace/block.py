"""The SASE attention block: a channel branch and a spatial branch, each a squeeze then an excitation."""
from __future__ import annotations

from typing import Optional, Union

import torch
import torch.nn as nn

from searchspace.genotype import Genotype
from searchspace.known import resolve
from searchspace.ops import CHANNEL_EXCITATION, CHANNEL_SQUEEZE, SPATIAL_EXCITATION, SPATIAL_SQUEEZE
from searchspace.rules import COMBINE_RULES


def initial_logit(combine: str, gate_bias: float) -> float:
    """The bias every excitation starts its logits at. Under the parallel rule, y = x * (1 + gate),
    the identity is a closed gate, so there the excitations start at -gate_bias."""
    return -gate_bias if combine == "parallel" else gate_bias


def channel_logits(x: torch.Tensor, squeeze: nn.Module, excitation: nn.Module) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, 1, 1). With K descriptors per channel the excitation sees each one
    (folded into the batch) and the logits are summed, as CBAM does with average and max pooling."""
    descriptor = squeeze(x)  # (B, C, K, 1)
    b, c, k, _ = descriptor.shape
    if k == 1:
        return excitation(descriptor.view(b, c, 1, 1))
    folded = descriptor.permute(0, 2, 1, 3).reshape(b * k, c, 1, 1)
    return excitation(folded).view(b, k, c, 1, 1).sum(dim=1)


def spatial_logits(x: torch.Tensor, squeeze: nn.Module, excitation: nn.Module) -> torch.Tensor:
    """(B, C, H, W) -> (B, 1, H, W)."""
    return excitation(squeeze(x))


def attend(
    x: torch.Tensor,
    channel: Optional[tuple[nn.Module, nn.Module]],
    spatial: Optional[tuple[nn.Module, nn.Module]],
    combine: str = "sequential",
) -> torch.Tensor:
    """Apply the branches that exist, (B, C, H, W) -> (B, C, H, W).

    ``sequential`` (CBAM's rule, the default): y = x * sigmoid(c(x)); y = y * sigmoid(s(y)).
    ``parallel`` (BAM's rule): y = x * (1 + sigmoid(c(x) + s(x))).
    Shared by :class:`SASEBlock` and the supernet, so both compute the same function.
    """
    if combine == "sequential":
        if channel is not None:
            x = x * torch.sigmoid(channel_logits(x, *channel))
        if spatial is not None:
            x = x * torch.sigmoid(spatial_logits(x, *spatial))
        return x
    if combine == "parallel":
        if channel is None and spatial is None:
            return x
        logits = 0
        if channel is not None:
            logits = logits + channel_logits(x, *channel)
        if spatial is not None:
            logits = logits + spatial_logits(x, *spatial)
        return x * (1 + torch.sigmoid(logits))
    raise ValueError(f"unknown combine rule {combine!r}; valid: {', '.join(COMBINE_RULES)}")


class SASEBlock(nn.Module):
    """The attention block of one genotype, (B, C, H, W) -> (B, C, H, W); ``none|none|none|none`` is the identity.

    ``combine`` and ``gate_bias`` None take the genotype's ``block`` settings (the defaults without one)."""

    def __init__(
        self,
        channels: int,
        genotype: Union[Genotype, str, None],
        reduction: int = 16,
        combine: Optional[str] = None,
        gate_bias: Optional[float] = None,
    ) -> None:
        super().__init__()
        self.genotype = resolve(genotype)
        # Given ones win; else the genotype's ``block`` (a genotype file's), else the defaults.
        combine = self.genotype.combine if combine is None else combine
        gate_bias = self.genotype.gate_bias if gate_bias is None else gate_bias
        if combine not in COMBINE_RULES:
            raise ValueError(f"unknown combine rule {combine!r}; valid: {', '.join(COMBINE_RULES)}")
        self.combine = combine
        options = dict(reduction=reduction, gate_bias=initial_logit(combine, gate_bias))
        g = self.genotype
        self.channel_squeeze = self.channel_excitation = None
        self.spatial_squeeze = self.spatial_excitation = None
        if g.has_channel_branch:
            self.channel_squeeze = CHANNEL_SQUEEZE.build(g.channel_squeeze, channels, **options)
            self.channel_excitation = CHANNEL_EXCITATION.build(g.channel_excitation, channels, **options)
        if g.has_spatial_branch:
            self.spatial_squeeze = SPATIAL_SQUEEZE.build(g.spatial_squeeze, channels, **options)
            self.spatial_excitation = SPATIAL_EXCITATION.build(
                g.spatial_excitation, channels, in_channels=self.spatial_squeeze.out_channels, **options
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel = (self.channel_squeeze, self.channel_excitation) if self.channel_squeeze is not None else None
        spatial = (self.spatial_squeeze, self.spatial_excitation) if self.spatial_squeeze is not None else None
        return attend(x, channel, spatial, self.combine)

    def extra_repr(self) -> str:
        return f"genotype={self.genotype.key}, combine={self.combine}"
