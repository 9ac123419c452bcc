"""What the controller maximises: accuracy alone, or MnasNet's accuracy weighted by latency.

MnasNet (Tan et al., CVPR 2019) rewards ``ACC x (LAT / T) ** w``: with ``w`` < 0 a genotype slower
than the target ``T`` loses reward and a faster one gains a little (the soft form, ``w`` = -0.07 in
the paper); the hard form weights by ``(LAT / T) ** -1`` above the target and not at all below it.
``LAT`` is the genotype's latency predicted from the run's per-op latency table
(``evaluator.latency``) at ``batch`` images, in ms per image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence

OBJECTIVES = ("accuracy", "mnas")


class ObjectiveError(ValueError):
    """An objective setting that makes no sense; the message names the key."""


@dataclass
class ObjectiveConfig:
    """``name`` accuracy (the default: the reward as measured) or mnas; for mnas, ``target_ms`` (ms
    per image), the exponent ``w``, ``hard`` for the hard form, the ``batch`` the latency is
    predicted at (None: the search's training batch), and ``latency_table``: a table measured
    beforehand (``python -m evaluator.latency --out FILE``), e.g. on the device the model will be
    deployed on, instead of one a worker measures on the search's device (None)."""

    name: str = "accuracy"
    target_ms: Optional[float] = None
    w: float = -0.07
    hard: bool = False
    batch: Optional[int] = None
    latency_table: Optional[str] = None

    def __post_init__(self) -> None:
        if self.name not in OBJECTIVES:
            raise ObjectiveError(f"objective.name must be one of {', '.join(OBJECTIVES)}, got {self.name!r}")
        if self.name == "mnas" and self.target_ms is None:
            raise ObjectiveError("objective.target_ms is required with objective.name mnas (ms per image)")
        if self.target_ms is not None and not (math.isfinite(self.target_ms) and self.target_ms > 0):
            raise ObjectiveError(f"objective.target_ms must be above 0, got {self.target_ms}")
        if not math.isfinite(self.w):
            raise ObjectiveError(f"objective.w must be a finite number, got {self.w}")
        if self.batch is not None and self.batch < 1:
            raise ObjectiveError(f"objective.batch must be at least 1, got {self.batch}")

    @property
    def uses_latency(self) -> bool:
        return self.name != "accuracy"


def mnas(accuracy: float, latency_ms: float, target_ms: float, w: float, hard: bool = False) -> float:
    """MnasNet's reward: soft ``acc * (lat / T) ** w``; hard ``acc * (lat / T) ** -1`` above T, ``acc`` below."""
    ratio = latency_ms / target_ms
    exponent = (-1.0 if ratio > 1 else 0.0) if hard else w
    return accuracy * ratio ** exponent


def objective_values(config: ObjectiveConfig, rewards: Sequence[float], latencies: Sequence[Optional[float]]) -> List[float]:
    """What the controller learns from, one per reward (the reward itself for ``accuracy``)."""
    if not config.uses_latency:
        return list(rewards)
    return [mnas(r, lat, config.target_ms, config.w, config.hard) for r, lat in zip(rewards, latencies)]



def pareto_front(values: Sequence[float], costs: Sequence[float]) -> List[bool]:
    """Which points no other point dominates (as high a value at no more cost, better in one):
    accuracy against latency, the candidates a user trades between."""
    points = list(zip(values, costs))
    return [not any(v >= value and c <= cost and (v > value or c < cost) for v, c in points)
            for value, cost in points]
