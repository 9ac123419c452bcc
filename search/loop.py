"""The search loop: shared-weight training, sampling, rewards, the controller update, the log, checkpoints."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import Any, Dict, List

import ray
import torch
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from tqdm import tqdm

from controller.presets import ControllerConfig, from_dict as controller_config, preset
from controller.service import NAMESPACE, ControllerService, actor_name
from evaluator.data import shard_seed
from evaluator.pool import WorkerPool
from evaluator.training import learning_rate
from evaluator.worker import RewardResult, RewardTask, TrainTask, merge
from rundir import RunDir
from search.cluster import connect
from search.config import SearchConfig
from search.derive import derive
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
    # The controller lives on the driver's node: a lost worker node must not take the policy with it.
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    service_cls = ray.remote(ControllerService).options(name=actor_name(run_id), namespace=NAMESPACE, num_cpus=0,
                                                        scheduling_strategy=here)
    service = service_cls.remote(controller_settings(config), config.policy, config.seed)
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
        bar = tqdm(range(start + 1, config.rounds + 1), desc=f"search {run_id}", unit="round", disable=not progress,
                   initial=start, total=config.rounds)
        for round_number in bar:
            shared, stats = run_round(config, run_id, round_number, shared, service, pool, rundir)
            rundir.save_checkpoint({"round": round_number, "shared": shared, "torch_rng": torch.get_rng_state(),
                                    "controller": ray.get(service.state_dict.remote())}, round_number)
            bar.set_postfix(best=f"{stats['best']:.4f}", entropy=f"{stats['entropy']:.3f}")
        derive(config, run_id, shared, service, pool, rundir)
    finally:
        pool.shutdown()
        ray.kill(service)
    return rundir


def run_round(config: SearchConfig, run_id: str, round_number: int, shared: Dict[str, Any], service, pool: WorkerPool,
              rundir: RunDir) -> tuple[Dict[str, Any], Dict[str, float]]:
    """Train the shared weights, score K samples, update the controller, log the round."""
    training = ray.get(service.propose.remote(config.train_steps))["genotypes"]
    shards = [training[w::config.workers] for w in range(config.workers)]
    lr = learning_rate(config.evaluator.training, round_number - 1)
    tasks = [TrainTask(shard=w, seed=shard_seed(config.seed, round_number, w), genotypes=keys, lr=lr)
             for w, keys in enumerate(shards) if keys]
    shared = merge(shared, pool.train(shared, tasks))

    proposal = ray.get(service.propose.remote(config.samples_per_round))
    first = (round_number - 1) * config.samples_per_round
    results = pool.score(shared["weights"], [RewardTask(i, key, first + i) for i, key in enumerate(proposal["genotypes"])])
    rewards = [r.reward for r in results]
    stats = ray.get(service.update.remote(round_number, proposal["indices"], proposal["genotypes"], rewards))
    events = pool.take_events()
    rundir.write_round(round_number, reward_rows(run_id, round_number, proposal, results, stats, events))
    best = max(rewards)
    return shared, {"best": best, "entropy": stats["entropy"]}


def reward_rows(run_id: str, round_number: int, proposal: Dict[str, Any], results: List[RewardResult],
                stats: Dict[str, Any], events: List[str]) -> List[Dict[str, Any]]:
    """One row per sample, docs/formats.md's columns plus ``attempts`` and ``note``."""
    now = datetime.now(timezone.utc)
    rows = []
    for i, result in enumerate(results):
        genotype = from_key(result.genotype)
        rows.append({
            "run_id": run_id, "round": round_number, "sample": i, "worker": result.worker, "genotype": genotype.key,
            **genotype.ops,
            "reward": stats["reward"][i], "val_accuracy": result.val_accuracy, "val_loss": result.val_loss,
            "log_prob": proposal["log_prob"][i], "entropy": proposal["entropy"][i],
            "baseline": stats["baseline"][i], "advantage": stats["advantage"][i],
            "params": result.params, "status": result.status, "wall_time_s": result.wall_time_s,
            "timestamp": now, "attempts": result.attempts, "note": "; ".join(result.notes + (events if i == 0 else [])),
        })
    return rows
