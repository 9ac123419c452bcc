"""Balanced training of few-shot sub-supernets: every shot gets its share of a round's steps.

A sub-supernet trains only on the genotypes sampled in its region, and an RL controller soon
samples one region 90-95 % of the time (docs/ranking_fidelity.md, "Few-shot supernets"), so the
other shots stop learning and every genotype in them is ranked low for being under-trained, not for
what it is. With ``evaluator.few_shot_training: balanced`` a round's training steps after the split
are shared equally among the shots: each shot takes the controller's genotypes that fall in its
region, in the controller's order, up to its quota, and a shot short of its quota is filled with
uniform draws from its region (rejection from the uniform sampler's stream ``FILL_STREAM``, seeded
by the search seed and the round, so a resumed search draws the same). The controller's own draws
and its updates are untouched: it still learns only from the scored samples.
"""
from __future__ import annotations

from typing import List

from controller.policy import DecisionSpace
from controller.warmup_sampler import uniform_indices
from evaluator.few_shot import Split
from searchspace import from_key

FILL_STREAM = 2  # beside warmup_sampler's TRAIN_STREAM (0) and SCORE_STREAM (1)
MAX_FILL_DRAWS = 100_000  # per round; every split's regions hold a share of the uniform draws far above 1e-4


def balanced_training(keys: List[str], split: Split, seed: int, round_number: int) -> List[str]:
    """The round's training genotypes, ``len(keys)`` of them, shared equally among ``split``'s shots
    (the first ``len(keys) % shots`` shots one more), interleaved shot by shot."""
    quotas = [len(keys) // split.shots + (shot < len(keys) % split.shots) for shot in range(split.shots)]
    chosen: List[List[str]] = [[] for _ in range(split.shots)]
    for key in keys:
        shot = split.region(from_key(key))
        if len(chosen[shot]) < quotas[shot]:
            chosen[shot].append(key)
    space = DecisionSpace.sase()
    draw = 0
    while any(len(c) < q for c, q in zip(chosen, quotas)):
        if draw == MAX_FILL_DRAWS:
            raise RuntimeError(f"few-shot split {split.name}: {MAX_FILL_DRAWS} uniform draws did not fill every shot")
        raw = uniform_indices(space.sizes, seed, FILL_STREAM, (round_number - 1) * MAX_FILL_DRAWS + draw, 1)
        genotype = space.decode(space.canonicalise(raw))[0]
        shot = split.region(genotype)
        if len(chosen[shot]) < quotas[shot]:
            chosen[shot].append(genotype.key)
        draw += 1
    return [c[i] for i in range(max(quotas)) for c in chosen if i < len(c)]
