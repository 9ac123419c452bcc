"""Sample efficiency of step-synchronised shards, in one process: 1 shard against 2 shards
with the learning rate scaled linearly (lr x 2) or not.

The round is the search's own: ``Evaluator.train_shards`` with every step on every shard's batch
(one process computes both shards, which gives the same weights as two actors over gloo, see
tests/test_allreduce.py), the SGDR learning rate of the round, uniformly sampled genotypes. Every
2 rounds a fixed sample of 8 genotypes is scored on the whole validation split.

    python benchmarks/lr_scaling_probe.py [--rounds 12] [--steps 24]

Writes benchmarks/results/lr_scaling_probe.json. Wall time is not the point here (one thread does
the work of both shards): accuracy against images seen is.
"""
from __future__ import annotations

import argparse
import random
import time

from common import RESULTS, write_result

import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from controller.random_policy import RandomPolicy  # noqa: E402
from evaluator.config import EvaluatorConfig  # noqa: E402
from evaluator.data import shard_seed  # noqa: E402
from evaluator.training import learning_rate  # noqa: E402
from evaluator.worker import Evaluator, RewardTask, RoundTraining, merge  # noqa: E402
from machine import describe_machine  # noqa: E402
from searchspace import all_genotypes  # noqa: E402

VARIANTS = [("1 shard", 1, 1.0), ("2 shards linear", 2, 2.0), ("2 shards none", 2, 1.0)]


def curve(shards: int, lr_factor: float, rounds: int, steps: int, eval_keys: list) -> list:
    """(round, images seen, mean validation accuracy of ``eval_keys``) every 2 rounds."""
    config = EvaluatorConfig(num_cpus=1)
    evaluator = Evaluator(config)
    state = evaluator.initial_state()
    policy, generator = RandomPolicy.sase(), torch.Generator().manual_seed(0)
    points = []
    for round_number in tqdm(range(1, rounds + 1), desc=f"{shards} shard(s) x lr {lr_factor}", unit="round"):
        keys = [g.key for g in policy.sample(steps, generator).genotypes]
        lr = learning_rate(config.training, round_number - 1) * lr_factor
        seeds = [shard_seed(0, round_number, w) for w in range(shards)]
        state = merge(state, evaluator.train_shards(state, RoundTraining(seeds, keys, lr), list(range(shards))))
        if round_number % 2 == 0:
            results = evaluator.score(state["weights"], [RewardTask(i, k, -1) for i, k in enumerate(eval_keys)])
            accuracy = sum(r.val_accuracy for r in results) / len(results)
            points.append([round_number, round_number * steps * config.training.batch_size * shards, accuracy])
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--steps", type=int, default=24, help="steps per round (each on every shard)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    eval_keys = sorted(random.Random(0).sample([g.key for g in all_genotypes()], 8))
    start = time.perf_counter()
    curves = {name: curve(shards, factor, args.rounds, args.steps, eval_keys) for name, shards, factor in VARIANTS}
    write_result(RESULTS / "lr_scaling_probe.json", {
        "benchmark": "lr_scaling_probe", "machine": describe_machine(),
        "settings": {"rounds": args.rounds, "steps_per_round": args.steps, "batch_size_per_shard": 128,
                     "dataset": "styled-glyphs (default sizes)", "eval_genotypes": eval_keys},
        "curves_columns": ["round", "images_seen", "mean_val_accuracy"], "curves": curves,
        "total_s": time.perf_counter() - start})


if __name__ == "__main__":
    main()
