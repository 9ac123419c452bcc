"""The search loop: shared-weight training, sampling, rewards, the controller update, the log, checkpoints."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import Any, Dict, List, Optional

import pandas as pd
import ray
import torch
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from tqdm import tqdm

from controller.presets import ControllerConfig, from_dict as controller_config, preset
from controller.service import NAMESPACE, ControllerService, actor_name
from controller.warmup_sampler import SCORE_STREAM, TRAIN_STREAM, warmup_genotypes
from evaluator.data import derived_seed, shard_seed
from evaluator.few_shot import SPLITS, split_by, split_when_due
from evaluator.pool import WorkerPool
from evaluator.training import learning_rate, lr_scale
from evaluator.worker import RewardResult, RewardTask, RoundTraining, TrainTask, merge
from rundir import RunDir
from search.cluster import connect
from search.config import SearchConfig
from search.costs import GenotypeCosts
from search.derive import EvaluationFailed, derive
from search.objective import objective_values
from search.shot_balance import balanced_training
from searchspace import from_key


def run_id_of(config: SearchConfig) -> str:
    """The run's id: the config's, else the name of its out directory."""
    return config.run_id or PurePosixPath(config.out.rstrip("/")).name or "run"


def controller_settings(config: SearchConfig) -> ControllerConfig:
    """The run's controller settings: its preset, with the config's overrides of the preset's fields."""
    return controller_config(config.controller, base=preset(config.controller_preset))


def search(config: SearchConfig, rundir: RunDir, progress: bool = True) -> RunDir:
    """Run a search, or continue it from its last checkpoint, to ``config.rounds`` rounds; then derive."""
    run_id = run_id_of(config)
    connect(config.ray_address, namespace=NAMESPACE, log_to_driver=False)
    service = start_controller(config, run_id)
    pool = WorkerPool(config.evaluator, config.workers)
    try:
        checkpoint = rundir.load_checkpoint()
        if checkpoint is None:
            start, shared = 0, pool.initial_state()
        else:
            start, shared = int(checkpoint["round"]), checkpoint["shared"]
            ray.get(service.load_state_dict.remote(checkpoint["controller"]))
            torch.set_rng_state(checkpoint["torch_rng"])
        rundir.drop_rounds_after(start)  # a round logged but not checkpointed is recomputed identically
        costs = genotype_costs(config, rundir, pool)
        bar = tqdm(range(start + 1, config.rounds + 1), desc=f"search {run_id}", unit="round", disable=not progress,
                   initial=start, total=config.rounds)
        for round_number in bar:
            shared, stats = run_round(config, run_id, round_number, shared, service, pool, rundir, costs)
            save_round(rundir, round_number, shared, service)
            bar.set_postfix(best=f"{stats['best']:.4f}", entropy=f"{stats['entropy']:.3f}")
        derive(config, run_id, shared, service, pool, rundir, costs, progress)
    finally:
        pool.shutdown()
        ray.kill(service)
    return rundir


def genotype_costs(config: SearchConfig, rundir: RunDir, pool: WorkerPool) -> Optional[GenotypeCosts]:
    """Under an objective that weighs latency, the run's latency table: the one ``objective.latency_table``
    names, else measured by a worker on the search's device; kept in the run directory the first
    time and read back on resume."""
    if not config.objective.uses_latency:
        return None
    batch = config.objective.batch or config.evaluator.training.batch_size
    table = rundir.read_latency_table()
    if table is None and config.objective.latency_table:
        from evaluator.latency import check_fits, read_table  # torch modules the accuracy objective never needs

        table = read_table(config.objective.latency_table)
        check_fits(table, pool.network_shape(), batch, f"objective.latency_table {config.objective.latency_table}")
        rundir.write_latency_table(table)
    elif table is None:
        table = pool.latency_table(sorted({1, batch}))
        rundir.write_latency_table(table)
    return GenotypeCosts(table, batch, config.evaluator.combine)


def start_controller(config: SearchConfig, run_id: str):
    """The run's controller service, a named actor on the driver's node: a lost worker node must
    not take the policy with it."""
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    service_cls = ray.remote(ControllerService).options(name=actor_name(run_id), namespace=NAMESPACE, num_cpus=0,
                                                        scheduling_strategy=here)
    return service_cls.remote(controller_settings(config), config.policy, config.seed)


def save_round(rundir: RunDir, round_number: int, shared: Dict[str, Any], service) -> None:
    """The checkpoint after a round: everything a resumed search needs to go on bit for bit."""
    rundir.save_checkpoint({"round": round_number, "shared": shared, "torch_rng": torch.get_rng_state(),
                            "controller": ray.get(service.state_dict.remote())}, round_number)


def run_round(config: SearchConfig, run_id: str, round_number: int, shared: Dict[str, Any], service, pool: WorkerPool,
              rundir: RunDir, costs: Optional[GenotypeCosts] = None) -> tuple[Dict[str, Any], Dict[str, float]]:
    """Train the shared weights, score K samples, update the controller from the objective, log the round.

    A warm-up round (the first ``warmup_rounds``) trains and scores the warm-up sampler's genotypes
    and leaves the controller alone: no sample drawn from it, no update, its state as it was.
    """
    warmup = round_number <= config.warmup_rounds
    training = propose(config, service, round_number, config.train_steps, TRAIN_STREAM)["genotypes"]
    evaluator = config.evaluator
    if evaluator.few_shot_training == "balanced" and split_by(evaluator.few_shot, evaluator.few_shot_from_round,
                                                              round_number):
        training = balanced_training(training, SPLITS[evaluator.few_shot], config.seed, round_number)
    shared = train_shared(config, round_number, shared, training, pool)

    proposal = propose(config, service, round_number, config.samples_per_round, SCORE_STREAM)
    results = pool.score(shared["weights"], reward_tasks(config, round_number, proposal["genotypes"]))
    scored = [i for i, result in enumerate(results) if result.status != "failed"]
    rewards = [results[i].reward for i in scored]
    latencies = [costs.latency_ms(results[i].genotype) for i in scored] if costs is not None else [None] * len(scored)
    objectives = objective_values(config.objective, rewards, latencies)
    if warmup or not scored:  # no controller decision to judge: no baseline, no advantage, no entropy bonus
        nan = [float("nan")] * len(rewards)
        stats = {"reward": objectives, "baseline": nan, "advantage": nan, "entropy": float("nan")}
    else:  # a failed evaluation measured nothing: the update, its baseline and top-k never see it
        stats = ray.get(service.update.remote(round_number, proposal["indices"][scored],
                                              [proposal["genotypes"][i] for i in scored], objectives))
    # The learner returns what it learned from (the objective with its entropy bonus): the log's
    # ``objective``, and its ``reward`` too under the accuracy objective, as before objectives existed;
    # under a latency objective ``reward`` stays the accuracy measured.
    stats["objective"] = stats["reward"]
    if costs is not None:
        stats["reward"] = rewards
    stats.update(latency_ms=[pd.NA if v is None else v for v in latencies],
                 macs=[costs.macs(results[i].genotype) if costs is not None else pd.NA for i in scored])
    events = pool.take_events()
    phase = "warmup" if warmup else "search"
    for name in ("reward", "baseline", "advantage", "objective", "latency_ms", "macs"):
        stats[name] = spread(stats[name], scored, len(results))
    rundir.write_round(round_number, reward_rows(run_id, round_number, proposal, results, stats, events, phase))
    if not scored:
        raise EvaluationFailed(f"round {round_number}: all {len(results)} evaluations failed, so the controller "
                               f"was not updated; the first: {results[0].notes[-1] if results[0].notes else 'failed'} "
                               f"(the round's rows are in {rundir.show(rundir.path('rewards'))}; --resume redoes it)")
    return shared, {"best": max(objectives), "entropy": stats["entropy"]}


def spread(values: List[float], scored: List[int], count: int) -> List[Any]:
    """Per-sample values of the ``scored`` samples -> all ``count`` samples, null (pd.NA) for the failed ones."""
    full: List[Any] = [pd.NA] * count
    for i, value in zip(scored, values):
        full[i] = value
    return full


def propose(config: SearchConfig, service, round_number: int, count: int, stream: int) -> Dict[str, Any]:
    """``count`` genotypes for the round's training (``stream`` TRAIN_STREAM) or scoring: in a warm-up
    round the warm-up sampler's (no policy drew them: log_prob and entropy NaN), else the controller's."""
    if round_number > config.warmup_rounds:
        return ray.get(service.propose.remote(count))
    keys = warmup_genotypes(config.warmup_sampling, config.seed, stream, round_number, count)
    return {"genotypes": keys, "log_prob": [float("nan")] * count, "entropy": [float("nan")] * count}


def reward_tasks(config: SearchConfig, round_number: int, keys: List[str]) -> List[RewardTask]:
    """The round's scoring: with ``common_reward_images`` every sample on the round's block of
    ``reward_images`` validation images (block round - 1, wrapping around the split), else sample i on
    its own ``val_batch_size`` batch, (round - 1) * samples_per_round + i. BN recalibration (bn_mode
    "recalibrate") uses training batches seeded by the round, the same for every sample of it."""
    evaluator = config.evaluator
    recalibration = derived_seed(config.seed, round_number)
    if evaluator.common_reward_images:
        return [RewardTask(i, key, round_number - 1, evaluator.reward_images, recalibration)
                for i, key in enumerate(keys)]
    first = (round_number - 1) * config.samples_per_round
    return [RewardTask(i, key, first + i, evaluator.val_batch_size, recalibration) for i, key in enumerate(keys)]


def train_shared(config: SearchConfig, round_number: int, shared: Dict[str, Any], genotypes: List[str],
                 pool: WorkerPool) -> Dict[str, Any]:
    """The round's shared-weight training, one step per genotype, on ``config.workers`` shards.

    ``evaluator.sync`` "step": every step runs on every shard's batch, gradients all-reduced, so a
    round sees ``workers`` times the images of one worker's round in about the same time. "round"
    (version 1): the steps are split over the workers, which start from the same weights and are
    merged by the mean of their deltas (issue 14: two workers then advance no faster than one).
    """
    shared = split_when_due(shared, config.evaluator.few_shot, config.evaluator.few_shot_from_round, round_number)
    lr = learning_rate(config.evaluator.training, round_number - 1)
    seeds = [shard_seed(config.seed, round_number, w) for w in range(config.workers)]
    if config.evaluator.sync == "step":
        lr *= lr_scale(config.evaluator.training, config.workers, round_number - 1)
        return merge(shared, pool.train_together(shared, RoundTraining(seeds, genotypes, lr)))
    tasks = [TrainTask(shard=w, seed=seeds[w], genotypes=genotypes[w::config.workers], lr=lr)
             for w in range(config.workers) if genotypes[w::config.workers]]
    return merge(shared, pool.train(shared, tasks))


def reward_rows(run_id: str, round_number: int, proposal: Dict[str, Any], results: List[RewardResult],
                stats: Dict[str, Any], events: List[str], phase: str = "search") -> List[Dict[str, Any]]:
    """One row per sample, docs/formats.md's columns plus ``attempts``, ``note`` and ``phase``; a failed
    evaluation's reward, val_accuracy, val_loss, baseline and advantage are null."""
    now = datetime.now(timezone.utc)
    rows = []
    for i, result in enumerate(results):
        genotype = from_key(result.genotype)
        rows.append({
            "run_id": run_id, "round": round_number, "sample": i, "worker": result.worker, "genotype": genotype.key,
            **genotype.ops,
            "reward": stats["reward"][i], "val_accuracy": _measured(result.val_accuracy),
            "val_loss": _measured(result.val_loss),
            "log_prob": proposal["log_prob"][i], "entropy": proposal["entropy"][i],
            "baseline": stats["baseline"][i], "advantage": stats["advantage"][i],
            "params": result.params, "status": result.status, "wall_time_s": result.wall_time_s,
            "timestamp": now, "attempts": result.attempts, "note": "; ".join(result.notes + (events if i == 0 else [])),
            "phase": phase, "latency_ms": stats["latency_ms"][i], "macs": stats["macs"][i],
            "objective": stats["objective"][i],
        })
    return rows


def _measured(value: Optional[float]) -> Any:
    return pd.NA if value is None else value
