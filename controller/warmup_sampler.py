"""The warm-up sampler: genotypes for the supernet's warm-up, drawn without the controller (issue 15).

Before the controller learns, the shared weights train on genotypes that favour no op, so that the
rewards the controller then sees rank the ops by what they are, not by how often the controller
happened to train them (SPOS's uniform sampling, FairNAS's strict fairness).

- ``fair``: strict fairness per decision. Decision d with n_d options uses each option exactly
  once in every group of n_d consecutive steps (steps ``g*n_d .. (g+1)*n_d - 1``), in the order of
  a fresh random permutation per group. Decisions are permuted independently, so which options
  meet in one genotype is random.
- ``uniform``: every decision of every step uniform over its options, independently.

Stateless: step s of a stream is a function of (seed, stream, s) alone, so a round's genotypes
depend only on the search seed and the round (a resumed run draws what the uninterrupted run drew)
and a fairness group that a round leaves unfinished is finished by the next round. Training steps
and scored samples are separate streams. Moot excitations (squeeze ``none``) are drawn and then
made canonical as the policy does (controller/policy.py), so fairness holds for the draws, and an
excitation drawn under an absent branch is not run in that step.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

from controller.policy import DecisionSpace

WARMUP_SAMPLING = ("fair", "uniform")
TRAIN_STREAM, SCORE_STREAM = 0, 1  # the round's training steps and its scored samples


def fair_indices(sizes: Sequence[int], seed: int, stream: int, first: int, count: int) -> torch.Tensor:
    """(count, D) option indices of steps ``first .. first + count - 1``: in decision d, each group
    of ``sizes[d]`` consecutive steps holds every option once (a permutation seeded by the group)."""
    columns = []
    for decision, size in enumerate(sizes):
        permutations: Dict[int, np.ndarray] = {}
        column = []
        for step in range(first, first + count):
            group = step // size
            if group not in permutations:
                permutations[group] = np.random.default_rng((seed, stream, decision, group)).permutation(size)
            column.append(int(permutations[group][step % size]))
        columns.append(column)
    return torch.tensor(columns, dtype=torch.long).T.reshape(count, len(sizes))


def uniform_indices(sizes: Sequence[int], seed: int, stream: int, first: int, count: int) -> torch.Tensor:
    """(count, D) option indices of steps ``first .. first + count - 1``, each uniform, seeded by the step."""
    rows = [[int(rng.integers(size)) for size in sizes]
            for rng in (np.random.default_rng((seed, stream, step)) for step in range(first, first + count))]
    return torch.tensor(rows, dtype=torch.long).reshape(count, len(sizes))


SAMPLERS = {"fair": fair_indices, "uniform": uniform_indices}


def warmup_draws(sampling: str, seed: int, stream: int, round_number: int, count: int,
                 space: DecisionSpace | None = None) -> Tuple[torch.Tensor, List[str]]:
    """Round ``round_number``'s ``count`` draws of ``stream`` (its steps ``(round - 1) * count ..``):
    the (count, D) raw option indices and the canonical genotype keys."""
    if sampling not in SAMPLERS:
        raise ValueError(f"warmup_sampling must be one of {', '.join(WARMUP_SAMPLING)}, got {sampling!r}")
    if round_number < 1:
        raise ValueError(f"rounds count from 1, got {round_number}")
    space = space or DecisionSpace.sase()
    raw = SAMPLERS[sampling](space.sizes, seed, stream, (round_number - 1) * count, count)
    return raw, [genotype.key for genotype in space.decode(space.canonicalise(raw))]


def warmup_genotypes(sampling: str, seed: int, stream: int, round_number: int, count: int) -> List[str]:
    """The canonical genotype keys of :func:`warmup_draws`."""
    return warmup_draws(sampling, seed, stream, round_number, count)[1]
