"""Evaluator speed ratios: supernet step over stand-alone step, 2 workers over 1, Ray over in-process.

The supernet step is timed both bare and as the search runs it (``evaluator.allreduce.synced_steps``,
one shard, no process group); the throughput of N workers is that of a step-synchronised round
(``WorkerPool.train_together``: every step on every worker's batch, gradients all-reduced).

    python benchmarks/evaluator_speed.py [--quick]

Writes benchmarks/results/evaluator_speed.json. Ratios are measured in one run, so a shared,
noisy machine moves both sides of each ratio alike.
"""
from __future__ import annotations

import argparse
import os
import statistics

from common import RESULTS, show_result, timed, write_result

import ray  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from evaluator.config import EvaluatorConfig  # noqa: E402
from evaluator.pool import WorkerPool  # noqa: E402
from evaluator.supernet import Supernet  # noqa: E402
from evaluator.training import SharedTrainingConfig, make_optimizer  # noqa: E402
from evaluator.allreduce import ShardStatistics, synced_steps  # noqa: E402
from evaluator.worker import Evaluator, RoundTraining  # noqa: E402
from machine import describe_machine  # noqa: E402
from searchspace import KNOWN, from_key  # noqa: E402

GENOTYPES = [KNOWN["cbam"], KNOWN["se"], from_key("gem|glu|mean_std|strip"), KNOWN["none"]]


def step_seconds(model, forward, images, labels, steps: int) -> float:
    """Median seconds of one SGD step (forward, backward, update) after two warm-up steps."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(forward(images), labels).backward()
        optimizer.step()

    times = [timed(step) for _ in range(steps + 2)]
    return statistics.median(times[2:])


def supernet_over_standalone(batch_size: int, steps: int) -> dict:
    torch.manual_seed(0)
    images = torch.randn(batch_size, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (batch_size,))
    supernet = Supernet("resnet20").to(memory_format=torch.channels_last)
    rows = []
    for genotype in GENOTYPES:
        network = supernet.extract(genotype).to(memory_format=torch.channels_last)
        shared = step_seconds(supernet, lambda x: supernet(x, genotype), images, labels, steps)
        synced = synced_step_seconds(supernet, genotype, images, labels, steps)
        alone = step_seconds(network, network, images, labels, steps)
        rows.append({"genotype": genotype.key, "supernet_step_s": shared, "synced_step_s": synced,
                     "standalone_step_s": alone, "ratio": shared / alone, "synced_ratio": synced / alone})
    return {"batch_size": batch_size, "steps": steps, "per_genotype": rows,
            "ratio_mean": statistics.mean(r["ratio"] for r in rows),
            "synced_ratio_mean": statistics.mean(r["synced_ratio"] for r in rows), "target": "<= 1.15"}


def synced_step_seconds(supernet, genotype, images, labels, steps: int) -> float:
    """Median seconds of one step as a search's worker takes it (synced_steps, one shard)."""
    optimizer = make_optimizer(supernet, SharedTrainingConfig())
    statistics_ = ShardStatistics(supernet, [0])

    def step() -> None:
        synced_steps(supernet, optimizer, {0: iter([(images, labels)])}, [genotype], 0.01, 5.0, 1, statistics_)

    times = [timed(step) for _ in range(steps + 2)]
    return statistics.median(times[2:])


def training_throughput(config: EvaluatorConfig, workers: int, steps: int) -> float:
    """Training images per second of a step-synchronised round of `steps` steps on `workers` Ray actors."""
    pool = WorkerPool(config, workers)
    try:
        state = pool.initial_state()
        keys = [GENOTYPES[i % len(GENOTYPES)].key for i in range(steps)]
        seeds = [100 + w for w in range(workers)]
        seconds = timed(lambda: pool.train_together(state, RoundTraining(seeds, keys, 0.05)),
                        warm_up=lambda: pool.train_together(state, RoundTraining(seeds, keys[:2], 0.05)))
        return workers * steps * config.training.batch_size / seconds
    finally:
        pool.shutdown()


def in_process_throughput(config: EvaluatorConfig, steps: int) -> float:
    evaluator = Evaluator(config)
    state = evaluator.initial_state()
    keys = [GENOTYPES[i % len(GENOTYPES)].key for i in range(steps)]
    seconds = timed(lambda: evaluator.train_shards(state, RoundTraining([100], keys, 0.05), [0]),
                    warm_up=lambda: evaluator.train_shards(state, RoundTraining([0], keys[:2], 0.05), [0]))
    return steps * config.training.batch_size / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (about 2 minutes)")
    args = parser.parse_args()
    steps = 6 if args.quick else 20
    torch.set_num_threads(1)
    config = EvaluatorConfig(dataset_options={"train_size": 2000, "val_size": 256, "test_size": 256},
                             training=SharedTrainingConfig(batch_size=64), num_cpus=1)
    step = supernet_over_standalone(64, steps)
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    try:
        local = in_process_throughput(config, steps)
        one = training_throughput(config, 1, steps)
        two = training_throughput(config, 2, steps)
    finally:
        ray.shutdown()
    result = {
        "benchmark": "evaluator_speed", "machine": describe_machine(), "settings": {
            "arch": "resnet20", "batch_size": 64, "steps": steps, "torch_threads_per_worker": 1,
            "training": "step-synchronised (WorkerPool.train_together), gradients all-reduced over gloo",
            "genotypes": [g.key for g in GENOTYPES]},
        "supernet_over_standalone": step,
        "images_per_s": {"in_process": local, "ray_1_worker": one, "ray_2_workers": two},
        "two_workers_over_one": {"ratio": two / one, "target": ">= 1.6"},
        "ray_worker_over_in_process": {"ratio": one / local, "target": ">= 0.9"},
    }
    name = "evaluator_speed_quick" if args.quick else "evaluator_speed"  # quick never replaces the full result
    write_result(RESULTS / f"{name}.json", result)
    show_result(result)


if __name__ == "__main__":
    main()
