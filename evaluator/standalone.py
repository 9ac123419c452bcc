"""Stand-alone training: one fixed network trained from scratch, then measured.

What stage 2 (``experiments/retrain_topk.py`` on Ray Tune), the benchmarks and the attention budget
study call::

    result = train_standalone(StandaloneConfig(epochs=15, seed=1), "se")
    result.test_accuracy, result.macs, result.latency_ms_batch1

Training: SGD with momentum on the training split, one cosine schedule over every step (after an
optional linear warmup), shuffling fixed by the seed; the validation split is scored after each
epoch and the test split once, at the end. Multiply-adds are counted by torch's FlopCounterMode
(convolutions and matrix products; elementwise gating, pooling and batch norm are not counted,
as in the usual ResNet figures), halved from its FLOPs.
"""
from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from evaluator.data import DEFAULT_DATASET, DatasetSplits, load_dataset
from evaluator.models import AttentionSpec, build_model, count_parameters
from searchspace import GATE_BIAS, KNOWN, resolve

Device = Union[str, torch.device, None]
Report = Callable[[Dict[str, Any]], None]
LATENCY_BATCH_SIZES = (1, 64)


@dataclass
class StandaloneConfig:
    """Everything that fixes a stand-alone run; with the same config and attention, runs repeat on the CPU.

    ``seed`` fixes the weight init and the order of the training batches; ``data_seed`` fixes the
    generated dataset and its splits, so seeds of one comparison all see the same data.
    ``combine`` None keeps the published rule of a known module (BAM: parallel), else sequential.
    """

    arch: str = "resnet20"
    epochs: int = 15
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    channels_last: bool = True
    seed: int = 0
    dataset: str = DEFAULT_DATASET
    data_dir: Optional[str] = None
    download: bool = False
    data_seed: int = 0
    dataset_options: Dict[str, Any] = field(default_factory=dict)
    reduction: int = 16
    combine: Optional[str] = None
    gate_bias: float = GATE_BIAS
    eval_batch_size: int = 256
    val_every_epoch: bool = True
    latency_repeats: int = 10

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.latency_repeats < 1:
            raise ValueError(f"epochs, batch_size and latency_repeats must be at least 1, got "
                             f"{self.epochs}, {self.batch_size}, {self.latency_repeats}")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(f"warmup_epochs must be in [0, epochs={self.epochs}), got {self.warmup_epochs}")


@dataclass
class StandaloneResult:
    """The figures of one stand-alone run. Accuracies are fractions; latencies are milliseconds per image.

    ``status`` is ``ok``, or ``nan`` when a training loss was not finite (training stopped there).
    ``history`` has one dict per epoch: epoch, lr, train_loss, train_accuracy, val_accuracy,
    val_loss (None when validation is only run at the end) and seconds (training time of the epoch).
    """

    attention: str
    genotype: str
    arch: str
    seed: int
    status: str
    test_accuracy: float
    test_loss: float
    val_accuracy: float
    val_loss: float
    params: int
    macs: int
    latency_ms_batch1: float
    latency_ms_batch64: float
    seconds_per_epoch: float
    wall_time_s: float
    device: str
    history: List[Dict[str, Any]]
    config: Dict[str, Any]

    def metrics(self) -> Dict[str, Any]:
        """The scalar figures as one flat dict (a Tune report, a Parquet row); no history, no config."""
        return {k: v for k, v in asdict(self).items() if k not in ("history", "config")}


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def lr_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """Multiplier of the base lr at ``step`` (from 0): linear warmup to 1, then cosine to 0 at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * progress))


def make_optimizer(model: nn.Module, config: StandaloneConfig,
                   steps_per_epoch: int) -> Tuple[torch.optim.SGD, torch.optim.lr_scheduler.LambdaLR]:
    """SGD and a per-step LambdaLR scheduler with the config's warmup and cosine decay."""
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                nesterov=config.nesterov, weight_decay=config.weight_decay)
    total = config.epochs * steps_per_epoch
    warmup = round(config.warmup_epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total, warmup))
    return optimizer, scheduler


def seeded_model(config: StandaloneConfig, attention: AttentionSpec, num_classes: int) -> nn.Module:
    """The network of ``attention``, initialised from ``config.seed`` without touching the caller's RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return build_model(config.arch, num_classes, attention, reduction=config.reduction,
                           combine=config.combine, gate_bias=config.gate_bias)


def train_epoch(model: nn.Module, batches: Iterable, optimizer: torch.optim.Optimizer,
                scheduler: torch.optim.lr_scheduler.LRScheduler,
                label_smoothing: float, bar: tqdm) -> Dict[str, float]:
    """One pass of SGD over ``batches``; mean loss and accuracy over the samples seen.

    Stops at the first loss that is not finite and returns it, so the caller can mark the run.
    """
    model.train()
    loss_sum = correct = seen = 0.0
    for images, labels in batches:
        optimizer.zero_grad(set_to_none=True)
        logits = model(images)
        loss = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
        if not torch.isfinite(loss):
            return {"train_loss": float("nan"), "train_accuracy": correct / max(seen, 1)}
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss_sum += loss.item() * len(labels)
        correct += (logits.argmax(dim=1) == labels).sum().item()
        seen += len(labels)
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    return {"train_loss": loss_sum / seen, "train_accuracy": correct / seen}


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable) -> Dict[str, float]:
    """Accuracy and mean cross-entropy over every sample of ``batches``, with BN running statistics."""
    model.eval()
    loss_sum = correct = seen = 0.0
    for images, labels in batches:
        logits = model(images)
        loss_sum += F.cross_entropy(logits.double(), labels, reduction="sum").item()
        correct += (logits.argmax(dim=1) == labels).sum().item()
        seen += len(labels)
    return {"accuracy": correct / seen, "loss": loss_sum / seen}


@torch.no_grad()
def count_macs(model: nn.Module, image: torch.Tensor) -> int:
    """Multiply-adds of one forward pass of ``image`` ``(1, C, H, W)``: FlopCounterMode's FLOPs / 2."""
    model.eval()
    with FlopCounterMode(display=False) as counter:
        model(image)
    return counter.get_total_flops() // 2


@torch.no_grad()
def latency_ms_per_image(model: nn.Module, images: torch.Tensor, repeats: int, warmup: int = 2) -> float:
    """Median over ``repeats`` timed forward passes of ``images`` ``(B, C, H, W)``, in ms per image."""
    model.eval()
    cuda = images.device.type == "cuda"
    times = []
    for i in range(warmup + repeats):
        if cuda:
            torch.cuda.synchronize(images.device)
        start = time.perf_counter()
        model(images)
        if cuda:
            torch.cuda.synchronize(images.device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times) / len(images)


def measure_cost(model: nn.Module, data: DatasetSplits, device: torch.device, memory_format: torch.memory_format,
                 repeats: int) -> Dict[str, float]:
    """Parameters, multiply-adds per image and latency per image at batch 1 and 64 on ``device``."""
    shape = (data.channels, data.image_size, data.image_size)

    def probe(batch_size: int) -> torch.Tensor:
        images = torch.randn(batch_size, *shape, generator=torch.Generator().manual_seed(0))  # not the caller's RNG
        return images.to(device).contiguous(memory_format=memory_format)

    latency = {b: latency_ms_per_image(model, probe(b), repeats) for b in LATENCY_BATCH_SIZES}
    return {"params": count_parameters(model), "macs": count_macs(model, probe(1)),
            "latency_ms_batch1": latency[1], "latency_ms_batch64": latency[64]}


def attention_names(attention: AttentionSpec) -> Dict[str, str]:
    """How the run names its attention (a known name or path as given, else the key) and the genotype key."""
    key = resolve(attention).key
    return {"attention": str(attention) if isinstance(attention, str) or hasattr(attention, "__fspath__") else key,
            "genotype": key}


def load_config_dataset(config: StandaloneConfig) -> DatasetSplits:
    return load_dataset(config.dataset, config.data_dir, download=config.download, seed=config.data_seed,
                        **config.dataset_options)


def train_standalone(config: StandaloneConfig, attention: AttentionSpec, *, device: Device = None,
                     progress: bool = False, report: Optional[Report] = None,
                     data: Optional[DatasetSplits] = None,
                     weights: Union[str, Path, None] = None) -> StandaloneResult:
    """Train the network of ``attention`` (anything ``build_model`` accepts) from scratch and measure it.

    ``data`` reuses splits already loaded (else they are loaded from the config); ``report`` is called
    after every epoch with that epoch's history dict (a Ray Tune trainable passes ``tune.report``).
    ``weights`` is a file to keep the trained network in (see :func:`save_network`), so that it can
    be scored again later without training. torch's thread count is left as the caller set it.
    """
    started = time.perf_counter()
    names = attention_names(attention)
    device = torch.device(device) if device is not None else default_device()
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    data = data if data is not None else load_config_dataset(config)
    model = seeded_model(config, attention, data.num_classes).to(device, memory_format=memory_format)
    train = data.batches("train", config.batch_size, seed=config.seed, device=device, memory_format=memory_format,
                         drop_last=len(data.train) > config.batch_size)

    def score(split: str) -> Dict[str, float]:
        return score_split(model, data, split, config, device)

    history, status = run_epochs(model, train, score, config, progress, report)
    val = score("val") if history[-1]["val_accuracy"] is None else \
        {"accuracy": history[-1]["val_accuracy"], "loss": history[-1]["val_loss"]}
    test = score("test")
    if weights is not None:
        save_network(weights, model, names, config)
    cost = measure_cost(model, data, device, memory_format, config.latency_repeats)
    return StandaloneResult(
        **names, arch=config.arch, seed=config.seed, status=status, test_accuracy=test["accuracy"],
        test_loss=test["loss"], val_accuracy=val["accuracy"], val_loss=val["loss"], **cost,
        seconds_per_epoch=statistics.mean(h["seconds"] for h in history),
        wall_time_s=time.perf_counter() - started, device=str(device), history=history, config=asdict(config))


def split_batches(data: DatasetSplits, split: str, config: StandaloneConfig, device: Device = "cpu") -> Iterable:
    """One split's batches as a run scores them: ``config``'s evaluation batch size and memory format."""
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    return data.batches(split, config.eval_batch_size, device=torch.device(device), memory_format=memory_format)


def score_split(model: nn.Module, data: DatasetSplits, split: str, config: StandaloneConfig,
                device: Device = "cpu") -> Dict[str, float]:
    """Accuracy and loss of ``model`` on one split: how a run scores its network at the end, and how
    a kept network is scored again, to the same bits."""
    return evaluate(model, split_batches(data, split, config, device))


@torch.no_grad()
def correct_per_image(model: nn.Module, data: DatasetSplits, split: str, config: StandaloneConfig,
                      device: Device = "cpu") -> torch.Tensor:
    """``(N,)`` bool on the CPU: which images of one split ``model`` classifies right, in the split's order."""
    model.eval()
    return torch.cat([(model(images).argmax(dim=1) == labels).cpu()
                      for images, labels in split_batches(data, split, config, device)])


def save_network(path: Union[str, Path], model: nn.Module, names: Dict[str, str], config: StandaloneConfig) -> None:
    """``{"attention", "genotype", "config", "state_dict"}`` to ``path`` (``names`` as :func:`attention_names`
    gives them; CPU tensors that ``torch.load(weights_only=True)`` reads), written beside and renamed so
    that a killed run never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    temporary = path.with_name(path.name + ".tmp")
    torch.save({**names, "config": asdict(config), "state_dict": state}, temporary)
    os.replace(temporary, path)


def load_network(path: Union[str, Path], num_classes: int,
                 device: Device = "cpu") -> Tuple[nn.Module, StandaloneConfig]:
    """The network :func:`save_network` kept, rebuilt and loaded (eval mode, in the config's memory
    format), and the config it was trained with."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    config = StandaloneConfig(**saved["config"])
    # a known module by its name, which carries its published combine rule (BAM: parallel); else the key
    attention = saved["attention"] if saved["attention"] in KNOWN else saved["genotype"]
    model = seeded_model(config, attention, num_classes)
    model.load_state_dict(saved["state_dict"])
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    return model.to(device, memory_format=memory_format).eval(), config


def run_epochs(model: nn.Module, train: Iterable, score: Callable[[str], Dict[str, float]],
               config: StandaloneConfig, progress: bool,
               report: Optional[Report]) -> Tuple[List[Dict[str, Any]], str]:
    """The training epochs; returns the per-epoch history and the status (``ok`` or ``nan``)."""
    optimizer, scheduler = make_optimizer(model, config, len(train))
    history: List[Dict[str, Any]] = []
    bar = tqdm(total=config.epochs * len(train), desc=f"{config.arch} seed {config.seed}", unit="batch",
               disable=not progress, leave=False)
    status = "ok"
    for epoch in range(config.epochs):
        lr = optimizer.param_groups[0]["lr"]
        train.set_epoch(epoch)
        start = time.perf_counter()
        row = {"epoch": epoch + 1, "lr": lr,
               **train_epoch(model, train, optimizer, scheduler, config.label_smoothing, bar)}
        row["seconds"] = time.perf_counter() - start
        finite = math.isfinite(row["train_loss"])
        scored = score("val") if config.val_every_epoch and finite else {"accuracy": None, "loss": None}
        row["val_accuracy"], row["val_loss"] = scored["accuracy"], scored["loss"]
        history.append(row)
        if report is not None:
            report(dict(row))
        if not finite:
            status = "nan"
            break
    bar.close()
    return history, status
