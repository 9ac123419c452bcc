"""One registry per operation set: op names to constructors, found by name (as timm's create_* factories)."""
from __future__ import annotations

import inspect
from typing import Callable, Dict, List

import torch.nn as nn


class OpRegistry:
    """Named constructors of one operation set.

    Every constructor takes ``channels`` first; ``reduction`` and other keywords are passed on
    only when the constructor accepts them, so one call builds any op of the set.
    """

    def __init__(self, decision: str, contract: str) -> None:
        self.decision = decision
        self.contract = contract
        self._ops: Dict[str, Callable[..., nn.Module]] = {}

    def register(self, name: str) -> Callable:
        def add(cls: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
            if name in self._ops:
                raise KeyError(f"{self.decision}: op {name!r} registered twice")
            self._ops[name] = cls
            cls.op_name = name
            return cls

        return add

    def names(self) -> List[str]:
        """Op names in registration order; ``none`` first."""
        return list(self._ops)

    def __contains__(self, name: str) -> bool:
        return name in self._ops

    def __getitem__(self, name: str) -> Callable[..., nn.Module]:
        return self._ops[name]

    def describe(self, name: str) -> str:
        doc = (self._ops[name].__doc__ or "").strip().splitlines()
        return doc[0] if doc else ""

    def build(self, name: str, channels: int, **kwargs) -> nn.Module:
        """Build op ``name`` for ``channels`` input channels; unknown keywords are dropped."""
        cls = self._ops[name]
        accepted = inspect.signature(cls).parameters
        return cls(channels, **{k: v for k, v in kwargs.items() if k in accepted})


CHANNEL_SQUEEZE = OpRegistry("channel_squeeze", "(B, C, H, W) -> (B, C, K, 1): K descriptors per channel")
CHANNEL_EXCITATION = OpRegistry("channel_excitation", "(B*K, C, 1, 1) -> (B*K, C, 1, 1) gate logits")
SPATIAL_SQUEEZE = OpRegistry("spatial_squeeze", "(B, C, H, W) -> (B, S, H, W), S = op.out_channels")
SPATIAL_EXCITATION = OpRegistry(
    "spatial_excitation", "(B, S, H, W) -> (B, 1, H, W) gate logits, any S <= in_channels"
)

# The order of the decisions: the genotype's ops, its key string and the controller's steps.
DECISIONS = (CHANNEL_SQUEEZE, CHANNEL_EXCITATION, SPATIAL_SQUEEZE, SPATIAL_EXCITATION)
DECISION_NAMES = tuple(r.decision for r in DECISIONS)
