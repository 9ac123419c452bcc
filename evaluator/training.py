"""Shared-weight training steps and rewards, the work one evaluator does for the controller."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from evaluator.supernet import Supernet, frozen_bn_statistics
from searchspace import Genotype


@dataclass
class SharedTrainingConfig:
    """SGD on the shared weights. The ``enas`` preset is ENAS's CIFAR child settings: batch 128,
    Nesterov momentum 0.9, L2 2.5e-4, gradient norm bound 5, cosine lr 0.05 -> 0.0005 with warm
    restarts (first cycle 10 epochs, each next one twice as long); here one round counts as an epoch.
    ``preset`` names these defaults, the only set there is (:data:`TRAINING_PRESETS`); the fields
    given beside it replace its values."""

    preset: str = "enas"
    batch_size: int = 128
    lr_max: float = 0.05
    lr_min: float = 0.0005
    lr_t0: int = 10
    lr_t_mul: int = 2
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 2.5e-4
    grad_clip: float = 5.0
    # With step-synchronised workers (evaluator.sync "step") the global batch is workers x batch_size:
    # "linear" multiplies the learning rate by the number of workers (Goyal et al., 2017), "none" keeps it.
    lr_scaling: str = "linear"
    # Goyal et al.'s gradual warm-up: the factor grows linearly from 1 to the workers over this many
    # rounds (0: the full factor from the first round, as measured with 2 workers).
    lr_warmup_rounds: int = 0


LR_SCALINGS = ("linear", "none")
TRAINING_PRESETS = ("enas",)  # SharedTrainingConfig's defaults


def lr_scale(config: SharedTrainingConfig, shards: int, epoch: float) -> float:
    """The factor on the learning rate for a global batch of ``shards`` shard batches at ``epoch`` (from 0)."""
    if config.lr_scaling == "none" or shards == 1:
        return 1.0
    ramp = 1.0 if config.lr_warmup_rounds <= 0 else min(1.0, epoch / config.lr_warmup_rounds)
    return 1.0 + (shards - 1) * ramp


def learning_rate(config: SharedTrainingConfig, epoch: float) -> float:
    """Cosine annealing with warm restarts (SGDR) at a fractional ``epoch`` counted from 0."""
    period, start = config.lr_t0, 0.0
    while epoch >= start + period:
        start += period
        period *= config.lr_t_mul
    progress = (epoch - start) / period
    return config.lr_min + 0.5 * (config.lr_max - config.lr_min) * (1 + math.cos(math.pi * progress))


def make_optimizer(model: nn.Module, config: SharedTrainingConfig) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=config.lr_max, momentum=config.momentum,
                           nesterov=config.nesterov, weight_decay=config.weight_decay)


def train_steps(
    supernet: Supernet,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[Tuple[torch.Tensor, torch.Tensor]],
    genotypes: Sequence[Genotype],
    lr: float,
    grad_clip: float | None,
) -> List[float]:
    """One SGD step per (batch, genotype) pair on the shared weights; returns the losses.

    A step whose loss is not finite is skipped (no update), so one broken genotype cannot
    poison the weights every other genotype shares.
    """
    for group in optimizer.param_groups:
        group["lr"] = lr
    supernet.train()
    losses = []
    for (images, labels), genotype in zip(batches, genotypes):
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(supernet(images, genotype), labels)
        losses.append(loss.detach().item())
        if not math.isfinite(losses[-1]):
            continue
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(supernet.parameters(), grad_clip)
        optimizer.step()
    return losses


@dataclass
class Reward:
    """What one evaluation of a genotype gives the controller."""

    reward: float
    val_accuracy: float
    val_loss: float
    status: str  # "ok", or "nan" when the forward pass was not finite
    # each image's cross-entropy and whether it was classified right, in the images' order: two
    # genotypes scored on the same images are compared image by image (rundir/schemas.py)
    image_losses: Optional[np.ndarray] = field(default=None, compare=False, repr=False)
    image_correct: Optional[np.ndarray] = field(default=None, compare=False, repr=False)

    @property
    def val_loss_sd(self) -> Optional[float]:
        """The spread (population sd) of the per-image losses behind ``val_loss``, what makes a
        standard error of a likelihood reward; None where they were not kept."""
        return None if self.image_losses is None else float(np.std(self.image_losses))


@torch.no_grad()
def reward(supernet: Supernet, genotype: Genotype, images: torch.Tensor, labels: torch.Tensor,
           batch_statistics: bool = True) -> Reward:
    """Accuracy of ``genotype`` on a validation batch with the shared weights.

    ``batch_statistics``: BN normalises with the batch's statistics (running buffers untouched);
    False: BN as the caller set it up (eval mode with recalibrated statistics, evaluator/supernet.py).
    A genotype whose logits are NaN or infinite gets reward 0 and status ``nan``.
    """
    if batch_statistics:
        with frozen_bn_statistics(supernet):
            logits = supernet(images, genotype)
    else:
        logits = supernet(images, genotype)
    if not torch.isfinite(logits).all():
        return Reward(reward=0.0, val_accuracy=0.0, val_loss=float("nan"), status="nan")
    correct = logits.argmax(dim=1) == labels
    accuracy = correct.double().mean().item()
    loss = F.cross_entropy(logits.double(), labels).item()  # as before the per-image figures were kept: same bits
    losses = F.cross_entropy(logits.double(), labels, reduction="none")
    return Reward(reward=accuracy, val_accuracy=accuracy, val_loss=loss, status="ok",
                  image_losses=losses.cpu().numpy(), image_correct=correct.cpu().numpy())


def metric_value(accuracy, loss, metric: str):
    """What a reward metric makes of a validation accuracy and cross-entropy, floats or columns alike:
    "accuracy" the accuracy; "likelihood" ``exp(-loss)``, the geometric mean of the probability
    given to the true class. Only the one the metric needs has to be given."""
    return np.exp(-loss) if metric == "likelihood" else accuracy


def mean_reward(parts: Sequence[Tuple[Reward, int]], metric: str = "accuracy") -> Reward:
    """The reward over several batches, each weighted by its size; ``nan`` if any batch was.
    ``metric`` "accuracy": the reward is the accuracy; "likelihood": ``exp(-loss)``, the geometric
    mean of the probability given to the true class."""
    if any(r.status != "ok" for r, _ in parts):
        return next(r for r, _ in parts if r.status != "ok")
    total = sum(n for _, n in parts)
    accuracy = sum(r.val_accuracy * n for r, n in parts) / total
    loss = sum(r.val_loss * n for r, n in parts) / total
    losses = correct = None
    if all(r.image_losses is not None and r.image_correct is not None for r, _ in parts):
        losses = np.concatenate([r.image_losses for r, _ in parts])
        correct = np.concatenate([r.image_correct for r, _ in parts])
    return Reward(reward=float(metric_value(accuracy, loss, metric)), val_accuracy=accuracy, val_loss=loss, status="ok",
                  image_losses=losses, image_correct=correct)
