"""What the ops, the block and the genotype share: the gate bias, the combine rules, the bottleneck width, the branch rule.

A leaf: it imports nothing of the project, so every other module of ``searchspace`` can use it.
"""
from __future__ import annotations

from typing import Dict

# sigmoid(2) = 0.88: gates open at initialisation, so a block starts close to the identity
# instead of halving the residual branch (sigmoid(0) = 0.5).
GATE_BIAS = 2.0

NONE = "none"

# How a block combines its two branches: CBAM's sequential rule (the default) or BAM's parallel one.
COMBINE_RULES = ("sequential", "parallel")
DEFAULT_COMBINE = "sequential"

# Each excitation belongs to its squeeze: with the squeeze ``none`` the branch is absent and its
# excitation is ``none`` too (docs/formats.md's canonical form). Excitation decision -> squeeze decision.
BRANCHES: Dict[str, str] = {"channel_excitation": "channel_squeeze", "spatial_excitation": "spatial_squeeze"}


def hidden_channels(channels: int, reduction: int) -> int:
    """Bottleneck width C // r, but at least min(C, 4) so that small C keep a usable bottleneck."""
    return max(channels // reduction, min(channels, 4))
