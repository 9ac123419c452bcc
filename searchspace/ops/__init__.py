"""The operations of the four sets; importing this package registers each op once in its registry."""
from searchspace.ops import channel_excitation, channel_squeeze, spatial_excitation, spatial_squeeze  # noqa: F401
from searchspace.registry import (
    CHANNEL_EXCITATION,
    CHANNEL_SQUEEZE,
    DECISION_NAMES,
    DECISIONS,
    SPATIAL_EXCITATION,
    SPATIAL_SQUEEZE,
)

__all__ = ["CHANNEL_EXCITATION", "CHANNEL_SQUEEZE", "DECISIONS", "DECISION_NAMES", "SPATIAL_EXCITATION", "SPATIAL_SQUEEZE"]
