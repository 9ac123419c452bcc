"""Time to accuracy: supernet validation accuracy against wall time for 1 and N Ray workers.

The supernet is trained the way a search trains it (``search.loop.train_shared``): per round
``--train-steps`` steps, each with a uniformly sampled genotype (the ``random`` policy), on the
workers of a WorkerPool, the learning rate of the round from the search's schedule. ``--sync step``
(the default) runs every step on every worker's batch with the gradients all-reduced (a global
batch of workers x batch size, the learning rate scaled by ``--lr-scaling``); ``--sync round`` is
version 1's rule: the steps split over the workers, merged by the mean of their deltas.
Every ``--eval-every`` rounds (and before the first and after the last) a fixed, seeded sample of
genotypes is scored on the whole validation split; the mean accuracy is one point of the curve.
Wall time counts only the training (train and merge), not the scoring of the curve's points.

    python benchmarks/time_to_accuracy.py [--quick] [--workers-list 1,2] [--rounds R] [--train-steps S]
        [--eval-every E] [--genotypes G] [--gpus-per-worker F] [--cpus-per-worker C]
        [--sync step|round] [--lr-scaling linear|none] [--out PATH]

For each N it reports the wall-time ratio, N workers over 1, to reach the 1-worker run's final
accuracy (first crossing, linear interpolation between points; "not reached" when it is not).
Writes benchmarks/results/time_to_accuracy.json (``_quick.json`` with --quick).
"""
from __future__ import annotations

import argparse
import os
import random
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from common import RESULTS, write_result

import ray  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from controller.random_policy import RandomPolicy  # noqa: E402
from evaluator.config import SYNC_RULES, EvaluatorConfig  # noqa: E402
from evaluator.training import LR_SCALINGS, SharedTrainingConfig  # noqa: E402
from evaluator.pool import WorkerPool  # noqa: E402
from evaluator.worker import RewardTask, SharedState  # noqa: E402
from machine import describe_machine  # noqa: E402
from search.config import SearchConfig  # noqa: E402
from search.loop import train_shared  # noqa: E402
from searchspace import all_genotypes  # noqa: E402

QUICK = {"rounds": 3, "train_steps": 8, "eval_every": 1, "genotypes": 4,
         "dataset_options": {"train_size": 1000, "val_size": 256, "test_size": 64}}
# The default search's rounds: 12 of 48 steps of 128 images (at 24 steps a round the supernet is still near chance after 12).
FULL = {"rounds": 12, "train_steps": 48, "eval_every": 2, "genotypes": 8, "dataset_options": {}}


def time_to_reach(times: Sequence[float], accuracies: Sequence[float], target: float) -> Optional[float]:
    """The first time the curve reaches ``target``, linearly interpolated between points; None if never."""
    for i, accuracy in enumerate(accuracies):
        if accuracy >= target:
            if i == 0:
                return float(times[0])
            before, t_before = accuracies[i - 1], times[i - 1]
            return float(t_before + (target - before) / (accuracy - before) * (times[i] - t_before))
    return None


def ratio(numerator: Optional[float], denominator: Optional[float]) -> Optional[float]:
    """numerator / denominator; None when either is missing (not reached) or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def parse_workers(text: str) -> List[int]:
    """"1,2,4" -> [1, 2, 4]; each at least 1."""
    workers = [int(part) for part in text.split(",") if part.strip()]
    if not workers or min(workers) < 1:
        raise argparse.ArgumentTypeError(f"workers must be positive integers, got {text!r}")
    return workers


def fixed_sample(count: int, seed: int) -> List[str]:
    """``count`` canonical genotype keys drawn without replacement with ``seed``, sorted."""
    return sorted(random.Random(seed).sample([g.key for g in all_genotypes()], count))


def mean_accuracy(pool: WorkerPool, weights: Dict[str, torch.Tensor], keys: Sequence[str]) -> Dict[str, Any]:
    """Each key scored on the whole validation split; their mean accuracy."""
    results = pool.score(weights, [RewardTask(i, key, -1) for i, key in enumerate(keys)])
    accuracies = {r.genotype: r.val_accuracy for r in results}
    return {"accuracy": sum(accuracies.values()) / len(accuracies), "per_genotype": accuracies}


def train_round(pool: WorkerPool, config: EvaluatorConfig, shared: SharedState, keys: List[str], workers: int,
                round_number: int, seed: int) -> SharedState:
    """One round of shared training exactly as the search does it (``search.loop.train_shared``)."""
    return train_shared(SearchConfig(workers=workers, seed=seed, evaluator=config), round_number, shared, keys, pool)


def images_per_round(config: EvaluatorConfig, workers: int, train_steps: int) -> int:
    """Training images one round sees: every step runs on every worker with sync "step"."""
    return train_steps * config.training.batch_size * (workers if config.sync == "step" else 1)


def run_curve(config: EvaluatorConfig, workers: int, rounds: int, train_steps: int, eval_every: int,
              eval_keys: Sequence[str], seed: int = 0, deadline: Optional[float] = None) -> Dict[str, Any]:
    """One training run's curve: accuracy of ``eval_keys`` against training seconds and images seen.

    ``deadline`` (time.monotonic): no new round starts after it; the curve says it was cut short.
    """
    setup_start = time.perf_counter()
    pool = WorkerPool(config, workers)
    try:
        shared = pool.initial_state()
        ray.get([actor.ping.remote() for actor in pool.actors])  # every actor built and its data loaded
        setup_s = time.perf_counter() - setup_start
        policy, generator = RandomPolicy.sase(), torch.Generator().manual_seed(seed)
        seconds, images, done = 0.0, 0, 0
        points = [{"round": 0, "seconds": 0.0, "images_seen": 0, **mean_accuracy(pool, shared["weights"], eval_keys)}]
        for round_number in tqdm(range(1, rounds + 1), desc=f"{workers} worker(s)", unit="round"):
            if deadline is not None and time.monotonic() > deadline:
                break
            keys = [g.key for g in policy.sample(train_steps, generator).genotypes]
            start = time.perf_counter()
            shared = train_round(pool, config, shared, keys, workers, round_number, seed)
            seconds += time.perf_counter() - start
            images += images_per_round(config, workers, train_steps)
            done = round_number
            if round_number % eval_every == 0 or round_number == rounds:
                points.append({"round": round_number, "seconds": seconds, "images_seen": images,
                               **mean_accuracy(pool, shared["weights"], eval_keys)})
        if points[-1]["round"] != done:
            points.append({"round": done, "seconds": seconds, "images_seen": images,
                           **mean_accuracy(pool, shared["weights"], eval_keys)})
    finally:
        pool.shutdown()
    return {"workers": workers, "cpus_per_worker": config.num_cpus, "setup_s": setup_s, "rounds_done": done,
            "cut_short": done < rounds, "points": points}


def compare(curves: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Each curve's time (and images) to reach the 1-worker curve's final accuracy, and over the 1-worker's."""
    base = next((c for c in curves if c["workers"] == 1), None)  # the first: --reference-cpus comes last
    if base is None:
        return {"target": None, "note": "no 1-worker curve to compare with", "rows": []}
    target = base["points"][-1]["accuracy"]

    def reach(curve: Dict[str, Any], axis: str) -> Optional[float]:
        return time_to_reach([p[axis] for p in curve["points"]], [p["accuracy"] for p in curve["points"]], target)

    base_s, base_images = reach(base, "seconds"), reach(base, "images_seen")
    rows = []
    for curve in curves:
        seconds, images = reach(curve, "seconds"), reach(curve, "images_seen")
        rows.append({"workers": curve["workers"], "cpus_per_worker": curve.get("cpus_per_worker"),
                     "final_accuracy": curve["points"][-1]["accuracy"],
                     "seconds_to_target": seconds, "images_to_target": images,
                     "wall_time_ratio": ratio(seconds, base_s), "images_ratio": ratio(images, base_images),
                     "reached": seconds is not None})
    return {"target": target, "target_is": "the 1-worker run's final mean accuracy", "rows": rows}


def measure(config: EvaluatorConfig, workers_list: Sequence[int], rounds: int, train_steps: int, eval_every: int,
            genotypes: int, seed: int = 0, deadline: Optional[float] = None,
            reference_cpus: Optional[float] = None) -> Dict[str, Any]:
    """Curves for every worker count (on the Ray already joined) and their comparison.

    ``reference_cpus``: one more curve, 1 worker with that many CPUs (the whole machine in one
    actor), compared with the same target as the others.
    """
    eval_keys = fixed_sample(genotypes, seed)
    curves = [run_curve(config, n, rounds, train_steps, eval_every, eval_keys, seed, deadline) for n in workers_list]
    if reference_cpus is not None:
        curves.append(run_curve(replace(config, num_cpus=reference_cpus), 1, rounds, train_steps, eval_every,
                                eval_keys, seed, deadline))
    return {"eval_genotypes": eval_keys, "curves": curves, "comparison": compare(curves)}


def describe(comparison: Dict[str, Any]) -> str:
    """The comparison as lines of text."""
    if comparison["target"] is None:
        return comparison["note"]
    lines = [f"target: {comparison['target']:.4f} ({comparison['target_is']})"]
    for row in comparison["rows"]:
        reached = (f"{row['seconds_to_target']:.1f} s, wall-time ratio {_number(row['wall_time_ratio'])} "
                   f"(images ratio {_number(row['images_ratio'])})" if row["reached"] else "not reached")
        lines.append(f"{row['workers']} worker(s) x {row.get('cpus_per_worker')} CPU(s): final {row['final_accuracy']:.4f}; to target: {reached}")
    return "\n".join(lines)


def _number(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="toy size (about 1-2 minutes on 2 cores)")
    parser.add_argument("--workers-list", type=parse_workers, default=[1, 2], help="comma-separated, e.g. 1,2,4")
    parser.add_argument("--rounds", type=int, help=f"default {FULL['rounds']} ({QUICK['rounds']} with --quick)")
    parser.add_argument("--train-steps", type=int, help="shared-weight steps per round, split over the workers "
                        f"(default {FULL['train_steps']}, {QUICK['train_steps']} with --quick)")
    parser.add_argument("--eval-every", type=int, help="rounds between curve points "
                        f"(default {FULL['eval_every']}, {QUICK['eval_every']} with --quick)")
    parser.add_argument("--genotypes", type=int, help=f"fixed genotypes scored per point (default {FULL['genotypes']})")
    parser.add_argument("--gpus-per-worker", type=float, default=0.0, help="fractional: 0.25 lets 4 actors share a GPU")
    parser.add_argument("--cpus-per-worker", type=float, default=1.0, help="Ray CPUs (= torch threads) per actor")
    parser.add_argument("--sync", choices=SYNC_RULES, default="step",
                        help="step: gradients all-reduced every step (default); round: version 1's mean of deltas")
    parser.add_argument("--lr-scaling", choices=LR_SCALINGS, default="linear",
                        help="with --sync step: the learning rate times the workers (linear) or not (none)")
    parser.add_argument("--reference-cpus", type=float,
                        help="also run 1 worker with this many CPUs (e.g. 2: the whole machine in one actor)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path,
                        help="where the JSON goes (default benchmarks/results/time_to_accuracy[_quick].json)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    for name in ("rounds", "train_steps", "eval_every", "genotypes"):
        if getattr(args, name) is None:
            setattr(args, name, sizes[name])
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    args.dataset_options = sizes["dataset_options"]
    args.out = args.out or RESULTS / ("time_to_accuracy_quick.json" if args.quick else "time_to_accuracy.json")
    return args


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)
    config = replace(EvaluatorConfig(), dataset_options=dict(args.dataset_options), num_cpus=args.cpus_per_worker,
                     num_gpus=args.gpus_per_worker, sync=args.sync,
                     training=replace(SharedTrainingConfig(), lr_scaling=args.lr_scaling))
    start = time.perf_counter()
    ray.init(num_cpus=max(os.cpu_count() or 1, int(max(args.workers_list) * args.cpus_per_worker),
                          int(args.reference_cpus or 0)),
             include_dashboard=False, log_to_driver=False)
    try:
        measured = measure(config, args.workers_list, args.rounds, args.train_steps, args.eval_every, args.genotypes,
                           args.seed, reference_cpus=args.reference_cpus)
    finally:
        ray.shutdown()
    result = {"benchmark": args.out.stem, "machine": describe_machine(),
              "settings": {"workers_list": args.workers_list, "rounds": args.rounds,
                           "train_steps_per_round": args.train_steps, "eval_every": args.eval_every,
                           "genotypes": args.genotypes, "seed": args.seed, "dataset": config.dataset,
                           "dataset_options": config.dataset_options, "batch_size": config.training.batch_size,
                           "cpus_per_worker": args.cpus_per_worker, "gpus_per_worker": args.gpus_per_worker,
                           "reference_cpus": args.reference_cpus,
                           "policy": "random", "sync": args.sync, "lr_scaling": args.lr_scaling,
                           "training": "search.loop.train_shared (the search's own round)",
                           "seconds_count": "training only (train + merge), not the scoring of the points"},
              **measured, "total_s": time.perf_counter() - start}
    write_result(args.out, result)
    print(describe(measured["comparison"]))
    print(f"written to {args.out} ({result['total_s']:.0f} s)")


if __name__ == "__main__":
    main()
