"""Evaluators: shared-weight training shards and rewards, in-process or as Ray actors on GPU/CPU nodes.

An evaluator keeps nothing between calls but its dataset: every call brings the shared state
(weights and SGD momentum) and a task that fixes its own batches, so any evaluator can compute
any task and a task recomputed after a crash gives the same result.
"""
from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from evaluator.allreduce import Rendezvous, ShardStatistics, free_address, process_group, synced_steps
from evaluator.config import EvaluatorConfig
from evaluator.correction import CORRECTION_BATCH_SEED, corrected
from evaluator.data import load_dataset
from evaluator.few_shot import FewShotSupernet
from evaluator.supernet import Supernet, recalibrated_bn_statistics
from evaluator.training import make_optimizer, mean_reward, reward, train_steps
from searchspace import Genotype, from_key
from searchspace.cli import first_line

# {"weights": supernet state dict, "momentum": {parameter name: SGD momentum buffer}}, on the CPU.
SharedState = Dict[str, Dict[str, torch.Tensor]]


@dataclass
class TrainTask:
    shard: int
    seed: int  # fixes the shard's training batches
    genotypes: List[str]  # key strings, one per step
    lr: float


@dataclass
class RoundTraining:
    """A round of step-synchronised training (evaluator/allreduce.py): ``len(seeds)`` shards, each
    step one genotype on every shard's batch, the gradients averaged over the shards."""

    seeds: List[int]  # one per shard: fixes the shard's training batches
    genotypes: List[str]  # key strings, one per step, the same for every shard
    lr: float


@dataclass
class TrainResult:
    shard: int
    deltas: Dict[str, torch.Tensor]  # weight - weight before, for tensors the shard changed
    momentum: Dict[str, torch.Tensor]  # new momentum buffers of the parameters the shard updated
    losses: List[float]
    worker: int = -1
    wall_time_s: float = 0.0


@dataclass
class RewardTask:
    sample: int
    genotype: str  # key string
    batch: int  # index of the validation batch of batch_size images (wraps around); -1: the whole validation set
    batch_size: Optional[int] = None  # images per validation batch; None: the config's val_batch_size
    recalibration_seed: int = 0  # fixes the training batches of bn_mode "recalibrate" (one per round)


@dataclass
class RewardResult:
    """A reward, or a failure (``status`` "failed": reward, val_accuracy and val_loss None, ``notes`` say why)."""

    sample: int
    genotype: str
    reward: Optional[float]
    val_accuracy: Optional[float]
    val_loss: Optional[float]
    status: str
    params: int
    worker: int = -1
    wall_time_s: float = 0.0
    attempts: int = 1
    notes: List[str] = field(default_factory=list)
    images: int = 0  # how many validation images the reward was measured on
    val_loss_sd: Optional[float] = None  # the per-image losses' spread (training.Reward); None if unmeasured
    # whole-split scores only (``batch`` -1): each image's loss and correctness (training.Reward)
    image_losses: Optional[np.ndarray] = field(default=None, compare=False, repr=False)
    image_correct: Optional[np.ndarray] = field(default=None, compare=False, repr=False)


class Evaluator:
    """One evaluator: the dataset loaded once and a supernet to train and score on it."""

    def __init__(self, config: EvaluatorConfig, worker: int = 0) -> None:
        self.config, self.worker = config, worker
        torch.set_num_threads(max(1, int(config.num_cpus)))  # Ray's CPUs, never more: no oversubscription
        use_cuda = config.num_gpus > 0 and torch.cuda.is_available()
        self.device = torch.device("cuda" if use_cuda else "cpu")
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.data = load_dataset(config.dataset, config.data_dir, download=config.download, seed=config.data_seed,
                                 **config.dataset_options)
        self.supernet = self.initial_supernet(config.supernet_seed)
        self.optimizer = make_optimizer(self.supernet, config.training)
        self._params: Dict[str, int] = {}

    def initial_supernet(self, seed: int) -> Union[Supernet, FewShotSupernet]:
        """A supernet of this config at its initial weights, drawn with ``torch.manual_seed(seed)``."""
        config = self.config
        torch.manual_seed(seed)
        supernet = Supernet(config.arch, self.data.num_classes, reduction=config.reduction, combine=config.combine,
                            gate_bias=config.gate_bias, excitation_per_squeeze=config.excitation_per_squeeze)
        if config.few_shot != "none":
            supernet = FewShotSupernet(supernet, config.few_shot)
        return supernet.to(self.device, memory_format=self.memory_format)

    def latency_table(self, batches: List[int]) -> Dict[str, Any]:
        """The per-op latency table of this evaluator's network and data shape, on its device."""
        from evaluator.latency import measure_table  # a search without a latency objective never needs it

        config, data = self.config, self.data
        return measure_table(config.arch, data.image_size, data.num_classes, batches, reduction=config.reduction,
                             combine=config.combine, gate_bias=config.gate_bias, channels=data.channels,
                             device=self.device.type)

    def network_shape(self) -> Dict[str, Any]:
        """The fields of a latency table that must match this evaluator's network and data."""
        config, data = self.config, self.data
        return {"arch": config.arch, "image_size": data.image_size, "channels": data.channels,
                "num_classes": data.num_classes, "reduction": config.reduction}

    def initial_state(self) -> SharedState:
        """The supernet's initial weights (seeded by the config) and empty momentum."""
        return {"weights": {k: v.detach().cpu().clone() for k, v in self.supernet.state_dict().items()},
                "momentum": {}}

    def load(self, state: SharedState) -> None:
        self.supernet.load_state_dict(state["weights"])
        self.optimizer.state.clear()
        for name, parameter in self.supernet.named_parameters():
            if name in state["momentum"]:
                self.optimizer.state[parameter]["momentum_buffer"] = state["momentum"][name].to(self.device).clone()

    def train(self, state: SharedState, task: TrainTask) -> TrainResult:
        """Train the shared weights on the task's batches, one genotype per step."""
        start = time.perf_counter()
        self.load(state)
        batches = self.data.train_batches(self.config.training.batch_size, len(task.genotypes), seed=task.seed,
                                          device=self.device, memory_format=self.memory_format)
        losses = train_steps(self.supernet, self.optimizer, batches, [from_key(k) for k in task.genotypes],
                             task.lr, self.config.training.grad_clip)
        deltas = {}
        for name, after in self.supernet.state_dict().items():
            after = after.detach().cpu()
            if not torch.equal(after, state["weights"][name]):
                deltas[name] = after - state["weights"][name]
        return TrainResult(task.shard, deltas, self._changed_momentum(state), losses, self.worker, time.perf_counter() - start)

    def rendezvous_address(self) -> Tuple[str, int]:
        """Where the round's process group meets when this actor is rank 0."""
        return free_address()

    def train_shards(self, state: SharedState, task: RoundTraining, shards: List[int],
                     rendezvous: Optional[Rendezvous] = None) -> List[TrainResult]:
        """Train ``shards`` of the round in step with the other actors of ``rendezvous``.

        One result per shard: shard 0's carries the parameters' deltas and momentum (every actor
        ends with the same), each shard's carries the deltas of its own BN running statistics.
        """
        start = time.perf_counter()
        self.load(state)
        batches = {s: iter(self.data.train_batches(self.config.training.batch_size, len(task.genotypes),
                                                   seed=task.seeds[s], device=self.device,
                                                   memory_format=self.memory_format)) for s in shards}
        statistics = ShardStatistics(self.supernet, shards)
        with process_group(rendezvous):
            losses = synced_steps(self.supernet, self.optimizer, batches, [from_key(k) for k in task.genotypes],
                                  task.lr, self.config.training.grad_clip, len(task.seeds), statistics)
        parameters = dict(self.supernet.named_parameters())
        results = []
        for shard in shards:
            after = {**statistics.copies[shard], **(parameters if shard == 0 else {})}
            deltas = {name: value.detach().cpu() - state["weights"][name] for name, value in after.items()
                      if not torch.equal(value.detach().cpu(), state["weights"][name])}
            momentum = self._changed_momentum(state) if shard == 0 else {}
            results.append(TrainResult(shard, deltas, momentum, losses[shard], self.worker,
                                       time.perf_counter() - start))
        return results

    def _changed_momentum(self, state: SharedState) -> Dict[str, torch.Tensor]:
        momentum = {}
        for name, parameter in self.supernet.named_parameters():
            buffer = self.optimizer.state.get(parameter, {}).get("momentum_buffer")
            if buffer is not None and not (name in state["momentum"] and torch.equal(buffer.cpu(), state["momentum"][name])):
                momentum[name] = buffer.detach().cpu().clone()
        return momentum

    def score(self, weights: Dict[str, torch.Tensor], tasks: Sequence[RewardTask]) -> List[RewardResult]:
        """Rewards of genotypes on validation batches with the given shared weights; BN as
        ``bn_mode`` says (batch statistics, or running statistics recalibrated per genotype)."""
        self.supernet.load_state_dict(weights)
        return [self._score_one(task) for task in tasks]

    def _score_one(self, task: RewardTask) -> RewardResult:
        start = time.perf_counter()
        genotype = from_key(task.genotype)
        batch_size = task.batch_size or self.config.val_batch_size
        if task.batch >= 0:
            batches = [self.data.val_batch(task.batch, batch_size, device=self.device,
                                           memory_format=self.memory_format)]
        else:
            batches = self.data.batches("val", batch_size, shuffle=False, device=self.device,
                                        memory_format=self.memory_format)
        recalibrate = self.config.bn_mode == "recalibrate"
        correct = task.batch < 0 and self.config.correction_steps > 0  # whole-split scores only
        try:
            with self._corrected(genotype) if correct else nullcontext(), \
                    self._recalibrated(genotype, task.recalibration_seed) if recalibrate else nullcontext():
                parts = [(reward(self.supernet, genotype, images, labels, not recalibrate), len(labels))
                         for images, labels in batches]
            result = mean_reward(parts, self.config.reward_metric)
            values = (result.reward, result.val_accuracy, result.val_loss, result.status)
            scored_on, spread = sum(count for _, count in parts), result.val_loss_sd
            per_image = (result.image_losses, result.image_correct) if task.batch < 0 else (None, None)
        except RuntimeError as err:  # no reward measured: the pool tries again, the controller never sees a 0
            values, notes = (None, None, None, "failed"), [self._failure(err, task.genotype, batch_size)]
            scored_on, spread, per_image = 0, None, (None, None)
        else:
            notes = []
        if task.genotype not in self._params:
            self._params[task.genotype] = self.supernet.parameters_of(genotype)
        return RewardResult(task.sample, task.genotype, *values, params=self._params[task.genotype],
                            worker=self.worker, wall_time_s=time.perf_counter() - start, notes=notes, images=scored_on,
                            val_loss_sd=spread, image_losses=per_image[0], image_correct=per_image[1])

    def _failure(self, err: RuntimeError, genotype: str, batch_size: int) -> str:
        """One line on why scoring failed; out-of-memory named as such, with the genotype and the batch size."""
        text = first_line(err)
        if isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in text.lower():
            if self.device.type == "cuda":
                torch.cuda.empty_cache()  # what the failed batch held, before the pool's next try
            return f"out of memory on {self.device} scoring {genotype} at batch size {batch_size}: {text}"
        return f"{type(err).__name__} scoring {genotype} at batch size {batch_size}: {text}"

    def _corrected(self, genotype: Genotype) -> AbstractContextManager[None]:
        """The supernet after ``correction_steps`` steps of ``genotype``'s own (evaluator/correction.py)."""
        steps = self.config.correction_steps
        batches = self.data.train_batches(self.config.training.batch_size, steps, seed=CORRECTION_BATCH_SEED,
                                          device=self.device, memory_format=self.memory_format)
        return corrected(self.supernet, genotype, batches, steps, self.config.correction_lr, self.config.training)

    def _recalibrated(self, genotype: Genotype, seed: int) -> AbstractContextManager[None]:
        """BN running statistics of ``genotype`` from ``recalibration_batches`` training batches fixed
        by ``seed`` (the round's, so every genotype of a round sees the same images)."""
        batches = self.data.train_batches(self.config.training.batch_size, self.config.recalibration_batches,
                                          seed=seed, device=self.device, memory_format=self.memory_format)
        return recalibrated_bn_statistics(self.supernet, lambda images: self.supernet(images, genotype),
                                          (images for images, _ in batches))

    def ping(self) -> int:
        return self.worker


def merge(state: SharedState, results: Sequence[TrainResult]) -> SharedState:
    """One set of shared weights from the shards of a round.

    Rule: each tensor moves by the mean of the deltas of the shards that changed it (a tensor no
    shard touched, an op no sampled genotype used, stays as it is); a momentum buffer becomes the
    mean of the new buffers of the shards that updated its parameter. Integer buffers (BN's batch
    counters) take the largest delta. Shards are merged in shard order, so the result does not
    depend on which worker computed which shard or when it finished.
    """
    results = sorted(results, key=lambda r: r.shard)
    weights = dict(state["weights"])
    for name, old in state["weights"].items():
        deltas = [r.deltas[name] for r in results if name in r.deltas]
        if not deltas:
            continue
        if old.is_floating_point():
            weights[name] = old + torch.stack(deltas).mean(dim=0)
        else:
            weights[name] = old + torch.stack(deltas).amax(dim=0)
    momentum = dict(state["momentum"])
    for name in sorted({n for r in results for n in r.momentum}):
        momentum[name] = torch.stack([r.momentum[name] for r in results if name in r.momentum]).mean(dim=0)
    return {"weights": weights, "momentum": momentum}
