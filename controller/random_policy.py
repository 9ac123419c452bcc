"""The random baseline: every decision uniform over its options, with the LSTM policy's interface."""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn as nn

from controller.policy import Choices, DecisionSpace, Samples


class RandomPolicy(nn.Module):
    """Uniform over each decision's options; no parameters, so an update never changes it.

    Moot decisions are drawn and masked as in :mod:`controller.policy`. Uniform per decision is
    not uniform per canonical genotype: a branch that is absent (squeeze ``none``) collapses all of
    its excitations into one genotype.
    """

    def __init__(self, space: DecisionSpace) -> None:
        super().__init__()
        self.space = space

    @classmethod
    def sase(cls) -> "RandomPolicy":
        return cls(DecisionSpace.sase())

    def _score(self, indices: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(n, D) canonical indices -> summed log-probabilities (n,) and entropies (n,) of live steps."""
        log_prob = torch.zeros(len(indices))
        chosen: List[torch.Tensor] = []
        for step, k in enumerate(self.space.sizes):
            live = self.space.live(step, chosen)
            weight = torch.ones(len(indices)) if live is None else live.float()
            log_prob = log_prob - weight * math.log(k)
            chosen.append(indices[:, step])
        return log_prob, -log_prob

    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> Samples:
        raw = torch.stack([torch.randint(k, (n,), generator=generator) for k in self.space.sizes], dim=1)
        indices = self.space.canonicalise(raw)
        log_prob, entropy = self._score(indices)
        return Samples(self.space.decode(indices), log_prob, entropy, indices)

    def evaluate(self, choices: Choices) -> Tuple[torch.Tensor, torch.Tensor]:
        indices = choices if isinstance(choices, torch.Tensor) else self.space.encode(choices)
        return self._score(self.space.canonicalise(indices.long()))

    def log_prob(self, choices: Choices) -> torch.Tensor:
        return self.evaluate(choices)[0]

    def greedy(self) -> Any:
        """Every option ties, so the first of each (as ``argmax`` breaks ties)."""
        return self.space.decode(self.space.canonicalise(torch.zeros(1, len(self.space.sizes), dtype=torch.long)))[0]

    def probabilities(self) -> Dict[str, torch.Tensor]:
        return {name: torch.full((k,), 1.0 / k) for name, k in zip(self.space.names, self.space.sizes)}
