"""What the user asks of stage 2 (``Stage2Settings``), its defaults, and the refusal of settings that make no sense."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence

from searchspace import KNOWN
from stage2.race import RaceSettings

DEFAULT_K = 5
DEFAULT_BASELINES = ("none", "se", "eca", "cbam")  # the hand-designed modules a winner is compared with
DEFAULT_SEEDS = 3
RACE_BASELINES = tuple(KNOWN)  # a race meets every known module, none included
RACE_FIELDS = ("min_seeds", "max_seeds", "alpha", "budget_runs")
# StandaloneConfig fields each trial sets itself
PER_TRIAL = ("seed", "combine")


class Stage2Error(ValueError):
    """Stage 2 cannot run as asked; the message says why and what to do."""


@dataclass
class Stage2Settings:
    """What the user asks for; None means: the default, or on resume what the interrupted stage 2 used.

    ``seeds`` is a count (seeds 0..seeds-1). ``overrides`` sets further StandaloneConfig fields
    (``batch_size``, ``lr``, ``latency_repeats``, ...). ``race`` races the pool instead of training
    every model on every seed (``stage2.race``), with ``min_seeds``, ``max_seeds``, ``alpha`` and
    ``budget_runs`` (None: RaceSettings' defaults)."""

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
    race: Optional[bool] = None
    min_seeds: Optional[int] = None
    max_seeds: Optional[int] = None
    alpha: Optional[float] = None
    budget_runs: Optional[int] = None

    def race_settings(self) -> RaceSettings:
        """The race's rule: the fields given, RaceSettings' defaults for the rest (checked there)."""
        given = {name: getattr(self, name) for name in RACE_FIELDS if getattr(self, name) is not None}
        try:
            return RaceSettings(**given)
        except ValueError as err:
            raise Stage2Error(str(err)) from None


def check_settings(settings: Stage2Settings) -> None:
    """Refuse numbers and names that make no sense, naming the flag."""
    for name in ("k", "seeds", "epochs"):
        value = getattr(settings, name)
        least = 0 if name == "k" and settings.race else 1  # a race of the known modules alone has -k 0
        if value is not None and value < least:
            raise Stage2Error(f"{name} must be at least {least}, got {value}")
    given = [name for name in RACE_FIELDS if getattr(settings, name) is not None]
    if settings.race:
        if settings.seeds is not None:
            raise Stage2Error("seeds fixes every model's seeds; a race adds seeds until it is decided "
                              "(set max seeds instead)")
        settings.race_settings()
    elif given and not settings.resume:
        raise Stage2Error(f"{given[0].replace('_', ' ')} is a race setting; add --race")
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
