"""Checks of a search's whole input before anything is written: settings, run directory, cluster, resources.

Each check raises a :class:`search.config.ConfigError` (a ``ValueError``, so the scripts print it as
one ``error:`` line and exit 2) naming the bad key or value and what is accepted.
"""
from __future__ import annotations

import math
import os
import sys
import time
from typing import Callable, Dict, Mapping, Optional

from controller.address import UnreachableAddress, check_reachable
from controller.presets import PRESETS, from_dict as controller_config
from evaluator.config import BN_MODES, REWARD_METRICS, SYNC_RULES
from evaluator.few_shot import FEW_SHOT, FEW_SHOT_TRAINING
from evaluator.data import DATASETS, DatasetError, load_dataset
from evaluator.models import ARCHS
from evaluator.training import LR_SCALINGS, TRAINING_PRESETS
from search.config import ConfigError, SearchConfig
from searchspace import COMBINE_RULES
from searchspace.cli import first_line

RESOURCE_WAIT_S = 900.0  # how long a joined cluster may take to grow (its autoscaler) before we give up
RESOURCE_POLL_S = 5.0


def check_settings(config: SearchConfig) -> None:
    """Every setting the workers and the controller will use, checked on the driver before the run starts."""
    if config.controller_preset not in PRESETS:
        raise ConfigError(f"controller_preset: unknown preset {config.controller_preset!r}; "
                          f"valid: {', '.join(PRESETS)}")
    try:
        controller_config(config.controller, base=PRESETS[config.controller_preset])
    except KeyError as err:
        raise ConfigError(f"controller: {err.args[0]}") from None
    except (TypeError, ValueError) as err:
        raise ConfigError(f"controller: {first_line(err)}") from None
    check_evaluator(config)


def check_latency_table(config: SearchConfig) -> None:
    """A new run's ``objective.latency_table``: a latency table, for this network, at the objective's
    batch. The data's shape (image size, channels, classes) is checked by a worker at the start."""
    path = config.objective.latency_table
    if not config.objective.uses_latency or path is None:
        return
    from evaluator.latency import check_fits, read_table  # torch modules the accuracy objective never needs

    try:
        table = read_table(path)
        batch = config.objective.batch or config.evaluator.training.batch_size
        check_fits(table, {"arch": config.evaluator.arch, "reduction": config.evaluator.reduction}, batch, path)
    except ValueError as err:
        raise ConfigError(f"objective.latency_table: {err}") from None


def check_evaluator(config: SearchConfig) -> None:
    """The evaluator's dataset (name, options, data folder), network and resources."""
    evaluator = config.evaluator
    if evaluator.dataset not in DATASETS:
        raise ConfigError(f"evaluator.dataset: unknown dataset {evaluator.dataset!r}; "
                          f"valid: {', '.join(DATASETS.names())}")
    accepted = DATASETS.options(evaluator.dataset)
    unknown = sorted(set(evaluator.dataset_options) - set(accepted))
    if unknown:
        raise ConfigError(f"evaluator.dataset_options: dataset {evaluator.dataset!r} has no option "
                          f"{unknown[0]!r}; valid: {', '.join(accepted) or 'none'}")
    if evaluator.data_dir is not None and os.path.exists(evaluator.data_dir) and not os.path.isdir(evaluator.data_dir):
        raise ConfigError(f"evaluator.data_dir: {evaluator.data_dir} is a file, not a folder")
    if evaluator.arch not in ARCHS:
        raise ConfigError(f"evaluator.arch: unknown arch {evaluator.arch!r}; valid: {', '.join(ARCHS)}")
    if evaluator.combine not in COMBINE_RULES:
        raise ConfigError(f"evaluator.combine: unknown rule {evaluator.combine!r}; valid: {', '.join(COMBINE_RULES)}")
    if evaluator.reward_metric not in REWARD_METRICS:
        raise ConfigError(f"evaluator.reward_metric: unknown metric {evaluator.reward_metric!r}; "
                          f"valid: {', '.join(REWARD_METRICS)}")
    if evaluator.sync not in SYNC_RULES:
        raise ConfigError(f"evaluator.sync: unknown rule {evaluator.sync!r}; valid: {', '.join(SYNC_RULES)}")
    if evaluator.training.preset not in TRAINING_PRESETS:
        raise ConfigError(f"evaluator.training.preset: unknown preset {evaluator.training.preset!r}; "
                          f"valid: {', '.join(TRAINING_PRESETS)}")
    if evaluator.training.lr_scaling not in LR_SCALINGS:
        raise ConfigError(f"evaluator.training.lr_scaling: unknown rule {evaluator.training.lr_scaling!r}; "
                          f"valid: {', '.join(LR_SCALINGS)}")
    if evaluator.training.lr_warmup_rounds < 0:
        raise ConfigError(f"evaluator.training.lr_warmup_rounds: must be at least 0, got "
                          f"{evaluator.training.lr_warmup_rounds}")
    if not math.isfinite(evaluator.gate_bias):
        raise ConfigError(f"evaluator.gate_bias: must be a finite number, got {evaluator.gate_bias}")
    for name in ("reduction", "val_batch_size", "reward_images", "recalibration_batches", "score_attempts"):
        if getattr(evaluator, name) < 1:
            raise ConfigError(f"evaluator.{name}: must be at least 1, got {getattr(evaluator, name)}")
    if evaluator.correction_steps < 0:
        raise ConfigError(f"evaluator.correction_steps: must be at least 0, got {evaluator.correction_steps}")
    if not math.isfinite(evaluator.correction_lr) or evaluator.correction_lr <= 0:
        raise ConfigError(f"evaluator.correction_lr: must be a number > 0, got {evaluator.correction_lr}")
    if evaluator.few_shot not in FEW_SHOT:
        raise ConfigError(f"evaluator.few_shot: unknown split {evaluator.few_shot!r}; valid: {', '.join(FEW_SHOT)}")
    if evaluator.few_shot_training not in FEW_SHOT_TRAINING:
        raise ConfigError(f"evaluator.few_shot_training: unknown rule {evaluator.few_shot_training!r}; "
                          f"valid: {', '.join(FEW_SHOT_TRAINING)}")
    if evaluator.few_shot_from_round < 0:
        raise ConfigError(f"evaluator.few_shot_from_round: must be at least 0, got {evaluator.few_shot_from_round}")
    if evaluator.bn_mode not in BN_MODES:
        raise ConfigError(f"evaluator.bn_mode: unknown mode {evaluator.bn_mode!r}; valid: {', '.join(BN_MODES)}")
    if evaluator.training.batch_size < 1:
        raise ConfigError(f"evaluator.training.batch_size: must be at least 1, got {evaluator.training.batch_size}")
    if not math.isfinite(evaluator.collective_timeout_s) or evaluator.collective_timeout_s <= 0:
        raise ConfigError(f"evaluator.collective_timeout_s: must be a number of seconds > 0, got "
                          f"{evaluator.collective_timeout_s}")
    for name in ("num_cpus", "num_gpus"):
        value = getattr(evaluator, name)
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"evaluator.{name}: must be a number >= 0, got {value}")


def check_dataset_loads(config: SearchConfig) -> None:
    """Load the dataset once, as every worker will: missing or corrupt files and bad option values
    fail here, in one line. For a local Ray only: on a cluster the data may live on the workers alone."""
    evaluator = config.evaluator
    try:
        load_dataset(evaluator.dataset, evaluator.data_dir, download=evaluator.download, seed=evaluator.data_seed,
                     **evaluator.dataset_options)
    except DatasetError as err:
        raise ConfigError(f"evaluator.dataset: {first_line(err)}") from None
    except (TypeError, ValueError, OSError) as err:
        raise ConfigError(f"evaluator.dataset_options: {evaluator.dataset!r} cannot be built: {first_line(err)}") from None


def check_out(out: str) -> None:
    """``--out`` must be a folder or not exist yet; a local path under a file cannot be made."""
    if "://" in out:
        return
    path = os.path.abspath(os.path.expanduser(out))
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"out: {out} is a file, not a run directory")
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ConfigError(f"out: cannot make {out}: {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK) and not os.path.isdir(path):
        raise ConfigError(f"out: cannot make {out}: {parent} is not writable")


def check_writable(out: str) -> None:
    """A local run directory to resume must let us write its log and checkpoints."""
    if "://" in out:
        return
    root = os.path.abspath(os.path.expanduser(out))
    for folder in (root, os.path.join(root, "rewards"), os.path.join(root, "checkpoints")):
        if os.path.isdir(folder) and not os.access(folder, os.W_OK | os.X_OK):
            raise ConfigError(f"out: {out}: cannot resume: {folder} is not writable")


def check_address(address: Optional[str]) -> None:
    """A ``host:port`` Ray address must accept a connection within seconds (ray.init would wait for minutes)."""
    try:
        check_reachable(address)
    except UnreachableAddress as err:
        raise ConfigError(f"ray_address: {str(err).removeprefix('ray address: ')}") from None


def shortfall(asked: Mapping[str, float], there: Mapping[str, float]) -> Dict[str, tuple[float, float]]:
    """The resources of ``asked`` the cluster lacks: {name: (asked, there)}."""
    return {name: (amount, float(there.get(name, 0.0))) for name, amount in asked.items()
            if amount > 0 and amount > float(there.get(name, 0.0)) + 1e-9}


def asked_resources(config: SearchConfig) -> Dict[str, float]:
    """What the evaluator actors need together (the controller service takes no CPU)."""
    return {"CPU": config.workers * config.evaluator.num_cpus, "GPU": config.workers * config.evaluator.num_gpus}


def describe(missing: Mapping[str, tuple[float, float]], config: SearchConfig) -> str:
    """``2 GPU (2 workers x 1) but the cluster has 0``, for each resource short."""
    parts = [f"{asked:g} {name} ({config.workers} workers x {getattr(config.evaluator, 'num_' + name.lower() + 's'):g})"
             f" but the cluster has {there:g}" for name, (asked, there) in missing.items()]
    return "; ".join(parts)


def check_resources(config: SearchConfig, local: bool, cluster_resources: Callable[[], Mapping[str, float]],
                    sleep: Callable[[float], None] = time.sleep, wait_s: float = RESOURCE_WAIT_S) -> None:
    """The evaluator actors must fit the cluster. A local Ray never grows: a shortfall fails at once,
    naming what is there. A joined cluster may grow (its autoscaler): say that we wait, up to ``wait_s``."""
    asked = asked_resources(config)
    missing = shortfall(asked, cluster_resources())
    if not missing:
        return
    hint = "lower --workers, --cpus-per-worker or --gpus-per-worker"
    if local:
        raise ConfigError(f"resources: asked {describe(missing, config)}; {hint}")
    print(f"waiting for the autoscaler: asked {describe(missing, config)} (up to {wait_s:.0f} s)", file=sys.stderr)
    waited = 0.0
    while missing and waited < wait_s:
        sleep(RESOURCE_POLL_S)
        waited += RESOURCE_POLL_S
        missing = shortfall(asked, cluster_resources())
    if missing:
        raise ConfigError(f"resources: asked {describe(missing, config)} after waiting {waited:.0f} s; {hint}")
