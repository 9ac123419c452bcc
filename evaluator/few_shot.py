"""Few-shot supernets (Zhao et al., ICML 2021): the one-shot supernet split on one decision into
sub-supernets, each trained and scored only on its own region of the search space.

Why: in one shared supernet the backbone co-adapts to the near-identity blocks the controller
samples most, and punishes every op that really changes the features (docs/ranking_fidelity.md).
A sub-supernet's backbone only ever serves its own region, so a modulating gate is judged on a
backbone trained with modulating gates.

How: ``FewShotSupernet`` holds ``shots`` copies of the supernet. Until the split, every genotype
runs in shot 0 (the one-shot supernet); the search loop calls :func:`split_when_due` at the start
of round ``few_shot_from_round + 1``, which copies shot 0's weights and SGD momentum into every shot
(the sub-supernets inherit the one-shot weights) and marks the split in the weights themselves
(buffer ``split_done``), so that a checkpoint, a worker or ``experiments/score.py`` route a genotype
to the same shot without knowing the round.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Dict, Union

import torch
import torch.nn as nn

from evaluator.supernet import Supernet
from searchspace import Genotype, resolve

# Channel excitations whose gates really modulate the features in the supernet (their SE-style gate
# sd across images 0.04-0.12 in results/gate_activity_default_search.json, against 0.005-0.03 for the
# fc excitations): eca and bn measured, eca_dilated eca's kin; "none" with a squeeze uses the
# squeeze itself as the gate (GE's 0.067).
MODULATING_EXCITATIONS = frozenset({"bn", "eca", "eca_dilated", "none"})


@dataclass(frozen=True)
class Split:
    """A partition of the search space on one decision: ``region(genotype)`` in ``range(shots)``."""

    name: str
    shots: int
    region: Callable[[Genotype], int]
    regions: str  # the regions in words, shot by shot


def gate_family(genotype: Genotype) -> int:
    """0: no channel gate, or an fc excitation (near-identity gates); 1: a modulating channel gate."""
    modulating = genotype.has_channel_branch and genotype.channel_excitation in MODULATING_EXCITATIONS
    return int(modulating)


def spatial_branch(genotype: Genotype) -> int:
    """0: no spatial branch; 1: a spatial branch."""
    return int(genotype.has_spatial_branch)


SPLITS: Dict[str, Split] = {
    "gate_family": Split("gate_family", 2, gate_family,
                         "0: no channel gate or an fc excitation; 1: bn, eca, eca_dilated, or the squeeze as the gate"),
    "spatial_branch": Split("spatial_branch", 2, spatial_branch, "0: no spatial branch; 1: a spatial branch"),
}
FEW_SHOT = ("none", *SPLITS)  # evaluator.few_shot; "none": the one-shot supernet
FEW_SHOT_TRAINING = ("controller", "balanced")  # evaluator.few_shot_training; search/shot_balance.py


class FewShotSupernet(nn.Module):
    """``split.shots`` supernets; ``forward(x, genotype)`` runs the genotype in its own shot (shot 0
    for every genotype before the split). The same interface as :class:`Supernet`.

    Shot 0 is ``supernet`` itself, so a seed gives the one-shot supernet it gives without a split;
    the other shots start as copies of it (they are overwritten at the split anyway).
    """

    def __init__(self, supernet: Supernet, split: str) -> None:
        super().__init__()
        self.split = SPLITS[split]
        self.shots = nn.ModuleList([supernet] + [copy.deepcopy(supernet) for _ in range(self.split.shots - 1)])
        self.register_buffer("split_done", torch.zeros((), dtype=torch.long))
        self.arch, self.num_classes = supernet.arch, supernet.num_classes

    def shot_of(self, genotype: Union[Genotype, str]) -> int:
        """The shot that trains and scores ``genotype`` now."""
        return self.split.region(resolve(genotype)) if bool(self.split_done) else 0

    def forward(self, x: torch.Tensor, genotype: Union[Genotype, str]) -> torch.Tensor:
        """(B, 3, H, W) -> (B, num_classes) logits of ``genotype``'s network in its shot."""
        return self.shots[self.shot_of(genotype)](x, genotype)

    def extract(self, genotype: Union[Genotype, str]) -> nn.Module:
        """A stand-alone network of ``genotype`` with its shot's weights copied in."""
        return self.shots[self.shot_of(genotype)].extract(genotype)

    def parameters_of(self, genotype: Union[Genotype, str]) -> int:
        return self.shots[0].parameters_of(genotype)


def split_shared(shared: Dict[str, Dict[str, torch.Tensor]]) -> Dict[str, Dict[str, torch.Tensor]]:
    """The shared state (weights and momentum) with shot 0 copied into every shot and the split marked."""
    shots = 1 + max(int(name.split(".")[1]) for name in shared["weights"] if name.startswith("shots."))

    def copied(tensors: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        out = dict(tensors)
        for name, tensor in tensors.items():
            if name.startswith("shots.0."):
                for shot in range(1, shots):
                    out[f"shots.{shot}." + name[len("shots.0."):]] = tensor.clone()
        return out

    weights = copied(shared["weights"])
    weights["split_done"] = torch.ones((), dtype=torch.long)
    return {"weights": weights, "momentum": copied(shared["momentum"])}


def split_by(few_shot: str, from_round: int, round_number: int) -> bool:
    """Whether round ``round_number`` of a search with these settings trains sub-supernets apart."""
    return few_shot != "none" and round_number > from_round


def split_when_due(shared: Dict[str, Dict[str, torch.Tensor]], few_shot: str, from_round: int,
                   round_number: int) -> Dict[str, Dict[str, torch.Tensor]]:
    """``shared`` split into its shots if round ``round_number`` is the first after ``from_round``
    and the split has not happened (a resumed search finds it in its checkpoint), else as it was."""
    if not split_by(few_shot, from_round, round_number) or bool(shared["weights"]["split_done"]):
        return shared
    return split_shared(shared)
