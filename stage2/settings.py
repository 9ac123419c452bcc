"""What the user asks of stage 2 (``Stage2Settings``), its defaults, and the refusal of settings that make no sense."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence

from searchspace import KNOWN

DEFAULT_K = 5
DEFAULT_BASELINES = ("none", "se", "eca", "cbam")  # the hand-designed modules a winner is compared with
DEFAULT_SEEDS = 3
# StandaloneConfig fields each trial sets itself
PER_TRIAL = ("seed", "combine")


class Stage2Error(ValueError):
    """Stage 2 cannot run as asked; the message says why and what to do."""


@dataclass
class Stage2Settings:
    """What the user asks for; None means: the default, or on resume what the interrupted stage 2 used.

    ``seeds`` is a count (seeds 0..seeds-1). ``overrides`` sets further StandaloneConfig fields
    (``batch_size``, ``lr``, ``latency_repeats``, ...)."""

    k: Optional[int] = None
    baselines: Optional[Sequence[str]] = None
    seeds: Optional[int] = None
    epochs: Optional[int] = None
    asha: Optional[bool] = None
    cpus_per_trial: Optional[float] = None
    gpus_per_trial: Optional[float] = None
    max_failures: int = 2
    resume: bool = False
    ray_address: Optional[str] = None
    overrides: Dict[str, Any] = field(default_factory=dict)


def check_settings(settings: Stage2Settings) -> None:
    """Refuse numbers and names that make no sense, naming the flag."""
    for name in ("k", "seeds", "epochs"):
        value = getattr(settings, name)
        if value is not None and value < 1:
            raise Stage2Error(f"{name} must be at least 1, got {value}")
    cpus, gpus = settings.cpus_per_trial, settings.gpus_per_trial
    if cpus is not None and not (math.isfinite(cpus) and cpus > 0):
        raise Stage2Error(f"cpus per trial must be above 0, got {cpus}")
    if gpus is not None and not (math.isfinite(gpus) and gpus >= 0):
        raise Stage2Error(f"gpus per trial must be 0 or more, got {gpus}")
    if gpus is not None and gpus > 1 and gpus != int(gpus):
        raise Stage2Error(f"gpus per trial above 1 must be a whole number (Ray shares only one GPU), got {gpus}")
    if settings.max_failures < 0:
        raise Stage2Error(f"max failures must be 0 or more, got {settings.max_failures}")
    unknown = [name for name in settings.baselines or () if name not in KNOWN]
    if unknown:
        raise Stage2Error(f"unknown baseline {unknown[0]!r}; valid: {', '.join(KNOWN)}")
