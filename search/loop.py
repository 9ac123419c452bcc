"""The search loop: shared-weight training, sampling, rewards, the controller update, the log, checkpoints."""
from __future__ import annotations

from dataclasses import replace
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
from evaluator.data import shard_seed
from evaluator.pool import WorkerPool
from evaluator.training import learning_rate
from evaluator.worker import RewardResult, RewardTask, TrainTask, merge
from rundir import RunDir, RunDirError
from search.cluster import connect
from search.config import SearchConfig, build, load_config, set_dotted, to_dict
from search.derive import derive
from searchspace import from_key


def run_id_of(config: SearchConfig) -> str:
    """The run's id: the config's, else the name of its out directory."""
    return config.run_id or PurePosixPath(config.out.rstrip("/")).name or "run"


# What may change when a run is resumed: its budget and where it runs, not what its results depend on.
RESUMABLE = ("rounds", "ray_address", "evaluator.num_gpus", "evaluator.num_cpus")


def prepare(config_path: Optional[str], overrides: Dict[str, Any], resume: bool) -> tuple[SearchConfig, RunDir]:
    """The config and the run directory: a new run (never over an existing one) or the one to resume."""
    config = load_config(config_path, overrides)
    if config.out is None:
        if resume:
            raise RunDirError("--resume needs --out DIR: the run directory to continue")
        config = replace(config, out=f"runs/search-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}")
    rundir = RunDir(config.out)
    if not resume:
        if rundir.exists() and rundir.rounds():
            raise RunDirError(f"{config.out} already holds a run; use --resume to continue it, or another --out")
        if config.run_id is None:
            config = replace(config, run_id=run_id_of(config))
        rundir.create(to_dict(config))
        return config, rundir
    if not rundir.exists():
        raise RunDirError(f"{config.out}: nothing to resume (no run directory); drop --resume to start a run")
    saved = rundir.read_config()
    for dotted in RESUMABLE:
        if overrides.get(dotted) is not None:
            set_dotted(saved, dotted, overrides[dotted])
    return build(SearchConfig, saved), rundir


def run_from_command_line(config_path: Optional[str], overrides: Dict[str, Any], resume: bool,
                          progress: bool = True) -> tuple[RunDir, pd.DataFrame]:
    """What ``experiments/run_rl_search.py`` does: the search, then the run's top-5."""
    config, rundir = prepare(config_path, overrides, resume)
    search(config, rundir, progress=progress)
    return rundir, rundir.top_k(5)


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
    """One row per sample, DESIGN.md's columns plus ``attempts`` and ``note``."""
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
