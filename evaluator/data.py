"""Datasets of the search, found by name through one registry, and fast batches for training on them.

``load_dataset(name, data_dir, download=..., seed=..., **options)`` gives a ``DatasetSplits``:
``train``, ``val`` (held out of the training data, for rewards) and ``test`` (final evaluation only).

- ``cluttered-digits`` (default, offline): scikit-learn's bundled 8x8 digits rendered into cluttered
  32x32 RGB canvases, deterministic by seed and cached by its generation parameters.
- ``cifar10``, ``cifar100``: torchvision's CIFAR files under ``data_dir``, downloaded only on request.
- ``imagefolder``: ``data_dir/train/<class>/*`` and ``data_dir/val/<class>/*``, ImageNet style.
- ``fake``: torchvision's FakeData, for throughput measurements.

In-memory sets (cluttered digits, CIFAR) are ``ImageTensors``: uint8 images batched by indexing
tensors, with augmentation done on the whole batch, which on a CPU is far faster than a DataLoader
with per-item transforms. The others are torchvision datasets batched by a DataLoader.
"""
from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import os
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision import datasets as tv_datasets
from torchvision import transforms

DEFAULT_DATASET = "cluttered-digits"
Device = Union[str, torch.device, None]
Batch = Tuple[torch.Tensor, torch.Tensor]


class DatasetError(ValueError):
    """A dataset that cannot be loaded as asked: unknown name or option, missing or corrupt files."""


def default_cache_dir() -> Path:
    """Where generated data and downloads go without ``data_dir``: $SASE_NAS_CACHE or ~/.cache/sase-nas."""
    return Path(os.environ.get("SASE_NAS_CACHE", Path.home() / ".cache" / "sase-nas"))


def derived_seed(*parts: int) -> int:
    """One 63-bit seed from several integers (seed, epoch, split ...), well mixed."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint64)[0] >> 1)


# ---------------------------------------------------------------------------------------------
# In-memory images and batch augmentation
# ---------------------------------------------------------------------------------------------


class BatchAugment:
    """Random crop after zero padding, then random horizontal flip, on a whole batch.

    ``(B, C, H, W) -> (B, C, H, W)``, any dtype (uint8 before normalisation: padding is black, as
    torchvision's ``RandomCrop(padding=p)``). Each image gets its own offset and flip.
    """

    def __init__(self, padding: int = 4, flip: bool = True) -> None:
        self.padding, self.flip = padding, flip

    def __call__(self, images: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        b, c, h, w = images.shape
        device, p = images.device, self.padding
        if p > 0:
            padded = F.pad(images, (p, p, p, p))
            dy = torch.randint(0, 2 * p + 1, (b,), generator=generator).to(device)
            dx = torch.randint(0, 2 * p + 1, (b,), generator=generator).to(device)
            rows = dy[:, None] + torch.arange(h, device=device)  # (B, H)
            cols = dx[:, None] + torch.arange(w, device=device)  # (B, W)
            batch = torch.arange(b, device=device)[:, None, None, None]
            chans = torch.arange(c, device=device)[None, :, None, None]
            images = padded[batch, chans, rows[:, None, :, None], cols[:, None, None, :]]
        if self.flip:
            mirror = (torch.rand(b, generator=generator) < 0.5).to(device)
            images = torch.where(mirror[:, None, None, None], images.flip(3), images)
        return images

    def __repr__(self) -> str:
        return f"BatchAugment(padding={self.padding}, flip={self.flip})"


class ImageTensors(Dataset):
    """A split held in memory: uint8 images ``(N, C, H, W)`` and int64 labels ``(N,)``.

    ``mean``/``std`` (per channel, on the [0, 1] scale) are the training split's, so every split is
    normalised alike. ``augment`` is set on training splits only. ``sources`` records where the
    samples came from (for cluttered digits: the base image of each digit and of each clutter
    fragment, and the split's pool of base images).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: Sequence[float], std: Sequence[float],
                 augment: Optional[BatchAugment] = None, sources: Optional[Dict[str, torch.Tensor]] = None) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4 or len(labels) != len(images):
            raise DatasetError(f"ImageTensors wants uint8 (N, C, H, W) images and N labels, got "
                               f"{images.dtype} {tuple(images.shape)} and {len(labels)} labels")
        self.images, self.labels = images, labels.long()
        self.mean, self.std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        self.augment = augment
        self.sources = sources or {}
        self._on_device: Dict[torch.device, Tuple[torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, int]:
        """One normalised float image ``(C, H, W)`` (augmented on training splits) and its label."""
        image = self.images[index : index + 1]
        if self.augment is not None:
            image = self.augment(image)
        return self.normalise(image)[0], int(self.labels[index])

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``(B, C, H, W)`` -> float32 ``(B, C, H, W)``, normalised; keeps the memory format."""
        mean = torch.tensor(self.mean, device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=images.device).view(1, -1, 1, 1)
        return images.float().div_(255.0).sub_(mean).div_(std)

    def normalised(self, memory_format: torch.memory_format = torch.channels_last) -> torch.Tensor:
        """The whole split as normalised float32 ``(N, C, H, W)``, channels_last by default."""
        return self.normalise(self.images.contiguous(memory_format=memory_format))

    def on(self, device: Device) -> Tuple[torch.Tensor, torch.Tensor]:
        """Images and labels on ``device``, copied there once and kept."""
        device = torch.device(device or "cpu")
        if device.type == "cpu":
            return self.images, self.labels
        if device not in self._on_device:
            self._on_device[device] = (self.images.to(device), self.labels.to(device))
        return self._on_device[device]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_on_device": {}}  # device copies stay where they were made


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """Per-channel mean and std on the [0, 1] scale of uint8 ``(N, C, H, W)``, in chunks to bound memory."""
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for start in range(0, len(images), chunk):
        x = images[start : start + chunk].to(torch.float64).div_(255.0)
        total += x.sum(dim=(0, 2, 3))
        squares += x.square().sum(dim=(0, 2, 3))
    count = images.numel() / images.shape[1]
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(1e-12).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


# ---------------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------------


class TensorBatches:
    """Seeded mini-batches of an ``ImageTensors``: ``(B, C, H, W)`` float32 normalised, and ``(B,)`` labels.

    The n-th pass over the data (from 0) is shuffled and augmented by a generator seeded with
    ``(seed, n)``: passes differ, runs repeat. ``set_epoch(n)`` makes the next pass the n-th (resume).
    """

    def __init__(self, data: ImageTensors, batch_size: int, *, shuffle: bool = True, seed: int = 0,
                 augment: Optional[BatchAugment] = None, drop_last: bool = False, device: Device = None,
                 memory_format: torch.memory_format = torch.channels_last) -> None:
        if batch_size < 1:
            raise DatasetError(f"batch_size must be at least 1, got {batch_size}")
        self.data, self.batch_size = data, batch_size
        self.shuffle, self.seed, self.augment, self.drop_last = shuffle, seed, augment, drop_last
        self.device, self.memory_format = torch.device(device or "cpu"), memory_format
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.data)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        generator = torch.Generator().manual_seed(derived_seed(self.seed, self.epoch))
        self.epoch += 1
        images, labels = self.data.on(self.device)
        n = len(labels)
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        order = order.to(self.device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.assemble(images[index], generator), labels[index]

    def assemble(self, images: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """uint8 ``(B, C, H, W)`` -> augmented, normalised float32 in the chosen memory format."""
        if self.augment is not None:
            images = self.augment(images, generator)
        return self.data.normalise(images.contiguous(memory_format=self.memory_format))


class LoaderBatches:
    """A DataLoader over a torchvision dataset, giving batches on ``device`` in ``memory_format``.

    The order of the n-th pass is seeded by ``(seed, n)``; per-item random transforms draw from
    torch's global generator (seeded per worker by the DataLoader when ``num_workers > 0``).
    """

    def __init__(self, dataset: Dataset, batch_size: int, *, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False, device: Device = None,
                 memory_format: torch.memory_format = torch.channels_last, num_workers: int = 0) -> None:
        self.dataset, self.batch_size = dataset, batch_size
        self.shuffle, self.seed, self.drop_last, self.num_workers = shuffle, seed, drop_last, num_workers
        self.device, self.memory_format = torch.device(device or "cpu"), memory_format
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        generator = torch.Generator().manual_seed(derived_seed(self.seed, self.epoch))
        self.epoch += 1
        loader = DataLoader(self.dataset, self.batch_size, shuffle=self.shuffle, generator=generator,
                            drop_last=self.drop_last, num_workers=self.num_workers,
                            pin_memory=self.device.type == "cuda")
        for images, labels in loader:
            images = images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
            yield images, labels.to(self.device, non_blocking=True)


# ---------------------------------------------------------------------------------------------
# The splits of a dataset
# ---------------------------------------------------------------------------------------------

SPLITS = ("train", "val", "test")


@dataclass
class DatasetSplits:
    """The three splits of a dataset and what a network needs to know about them.

    The contract of the search: ``val`` is held out of the training data (as ENAS did) and gives
    the controller its rewards; ``test`` is never used by the search, only in final evaluation of
    the exported genotypes. ``mean``/``std`` are the per-channel statistics the images are
    normalised with (for in-memory sets: the training split's). ``cache_path`` is the file the
    set was read from or written to, when it is generated.
    """

    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    num_classes: int
    image_size: int
    channels: int
    mean: Tuple[float, ...]
    std: Tuple[float, ...]
    cache_path: Optional[str] = None
    options: Dict[str, object] = field(default_factory=dict)

    def split(self, name: str) -> Dataset:
        if name not in SPLITS:
            raise DatasetError(f"unknown split {name!r}; valid splits: {', '.join(SPLITS)}")
        return getattr(self, name)

    def batches(self, split: str, batch_size: int, *, shuffle: Optional[bool] = None, seed: int = 0,
                device: Device = None, memory_format: torch.memory_format = torch.channels_last,
                drop_last: bool = False, num_workers: int = 0) -> Union[TensorBatches, LoaderBatches]:
        """Passes over one split; ``train`` is shuffled and augmented, ``val``/``test`` neither by default."""
        data = self.split(split)
        shuffle = split == "train" if shuffle is None else shuffle
        if isinstance(data, ImageTensors):
            return TensorBatches(data, batch_size, shuffle=shuffle, seed=seed, augment=data.augment,
                                 drop_last=drop_last, device=device, memory_format=memory_format)
        return LoaderBatches(data, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last, device=device,
                             memory_format=memory_format, num_workers=num_workers)

    def train_batches(self, batch_size: int, num_batches: int, *, seed: int = 0, device: Device = None,
                      memory_format: torch.memory_format = torch.channels_last) -> Iterator[Batch]:
        """``num_batches`` full training batches, shuffled and augmented, fixed by ``seed``."""
        passes = self.batches("train", batch_size, seed=seed, device=device, memory_format=memory_format,
                              drop_last=len(self.train) >= batch_size)
        stream = itertools.chain.from_iterable(passes for _ in itertools.count())
        return itertools.islice(stream, num_batches)

    def val_batch(self, index: int, batch_size: int, *, device: Device = None,
                  memory_format: torch.memory_format = torch.channels_last) -> Batch:
        """Validation batch ``index`` of the fixed cut of ``val`` into ``len(val) // batch_size`` batches.

        The index is taken modulo the number of batches, so every index names a batch; the images
        left over by the cut are not in any batch (whole-split evaluation uses ``batches("val")``).
        """
        data = self.val
        count = max(1, len(data) // batch_size)
        start = (index % count) * batch_size
        positions = torch.arange(start, min(start + batch_size, len(data)))
        if isinstance(data, ImageTensors):
            images, labels = data.on(device)
            positions = positions.to(images.device)
            return data.normalise(images[positions].contiguous(memory_format=memory_format)), labels[positions]
        items = [data[int(i)] for i in positions]
        images = torch.stack([image for image, _ in items]).to(device or "cpu")
        return images.contiguous(memory_format=memory_format), torch.tensor([label for _, label in items],
                                                                             device=device or "cpu")


# ---------------------------------------------------------------------------------------------
# Held-out splits
# ---------------------------------------------------------------------------------------------


def holdout_count(total: int, fraction: Optional[float], size: Optional[int], what: str) -> int:
    """How many of ``total`` items to hold out: ``size`` when given, else ``round(fraction * total)``."""
    count = size if size is not None else round((fraction or 0.0) * total)
    if not 1 <= count < total:
        raise DatasetError(f"{what}: cannot hold out {count} of {total} items "
                           f"(fraction={fraction}, size={size}); need at least 1 and fewer than {total}")
    return int(count)


def stratified_holdout(labels: np.ndarray, count: int, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Split positions ``0..N-1`` into (kept, held), ``count`` held, each class in proportion to its size.

    Kept positions are in ascending order; held ones in a seeded random order, so that consecutive
    validation batches mix the classes even when the source is sorted by class (ImageFolder).
    """
    _, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    exact = sizes * count / len(labels)
    quota = np.floor(exact).astype(np.int64)
    # largest remainders get the leftover places; a stable sort keeps ties in class order
    quota[np.argsort(-(exact - quota), kind="stable")[: count - quota.sum()]] += 1
    held = np.concatenate([rng.permutation(np.flatnonzero(inverse == c))[:q] for c, q in enumerate(quota)])
    held = rng.permutation(held)
    kept = np.setdiff1d(np.arange(len(labels)), held)
    return kept, held


# ---------------------------------------------------------------------------------------------
# cluttered-digits: generation
# ---------------------------------------------------------------------------------------------

# Bump when the renderer changes what the same parameters produce: old cache files are then ignored.
CLUTTERED_DIGITS_VERSION = 1
DIGIT_SIZE = 8  # scikit-learn's digits are 8x8, values 0..16
COLOURS = ("random", "white")


@dataclass(frozen=True)
class ClutteredDigitsConfig:
    """Every parameter of a cluttered-digits set; equal configs give byte-identical images.

    Base images are split first: ``test_fraction`` of the 1,797 go to test, then ``val_fraction`` of
    the rest to val (held out of the training pool, so val is split off the training data), the
    remainder is train's pool; all stratified by class. Each split then renders ``*_size`` samples
    from its own pool only: digit and clutter alike.
    """

    train_size: int = 10_000
    val_size: int = 2_000
    test_size: int = 2_000
    val_fraction: float = 0.2  # of the non-test base images
    test_fraction: float = 0.2  # of all base images
    canvas_size: int = 32
    scale: Tuple[float, float] = (2.0, 3.0)  # digit and fragment magnification, uniform in the range
    clutter: Tuple[int, int] = (2, 5)  # fragments per image, uniform in the range (inclusive)
    fragment_size: int = 4  # side of a fragment in base-image pixels
    noise: float = 0.1  # std of Gaussian pixel noise on the [0, 1] scale
    colour: str = "random"  # "random": dark background, bright strokes, each its own colour; "white": white on black
    seed: int = 0

    def __post_init__(self) -> None:
        low, high = self.scale
        if min(self.train_size, self.val_size, self.test_size) < 1:
            raise DatasetError(f"cluttered-digits: split sizes must be positive, got "
                               f"{self.train_size}/{self.val_size}/{self.test_size}")
        if not 0 < low <= high or DIGIT_SIZE * high > self.canvas_size:
            raise DatasetError(f"cluttered-digits: scale {self.scale} must satisfy 0 < low <= high and "
                               f"{DIGIT_SIZE} * high <= canvas_size {self.canvas_size}")
        if not 0 <= self.clutter[0] <= self.clutter[1]:
            raise DatasetError(f"cluttered-digits: clutter {self.clutter} must satisfy 0 <= low <= high")
        if not 1 <= self.fragment_size <= DIGIT_SIZE:
            raise DatasetError(f"cluttered-digits: fragment_size must be in 1..{DIGIT_SIZE}, got {self.fragment_size}")
        if self.noise < 0:
            raise DatasetError(f"cluttered-digits: noise must be >= 0, got {self.noise}")
        if self.colour not in COLOURS:
            raise DatasetError(f"cluttered-digits: colour must be one of {', '.join(COLOURS)}, got {self.colour!r}")

    def key(self) -> str:
        """Hash of every generation parameter and the renderer version: the cache file's name."""
        described = json.dumps({"version": CLUTTERED_DIGITS_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(described.encode()).hexdigest()[:20]


def base_digits() -> Tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits: float32 ``(1797, 8, 8)`` in [0, 1] and int64 labels."""
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    digits = load_digits()
    return (digits.images / 16.0).astype(np.float32), digits.target.astype(np.int64)


def split_base_images(labels: np.ndarray, config: ClutteredDigitsConfig) -> Dict[str, np.ndarray]:
    """Disjoint pools of base-image indices for train, val and test, stratified by class."""
    rng = np.random.default_rng([config.seed, 0])
    test_count = holdout_count(len(labels), config.test_fraction, None, "cluttered-digits test pool")
    rest, test = stratified_holdout(labels, test_count, rng)
    val_count = holdout_count(len(rest), config.val_fraction, None, "cluttered-digits val pool")
    train, val = stratified_holdout(labels[rest], val_count, rng)
    return {"train": np.sort(rest[train]), "val": np.sort(rest[val]), "test": np.sort(test)}


def interpolation_weights(offset: np.ndarray, scale: np.ndarray, length: int, canvas: int) -> torch.Tensor:
    """Bilinear weights ``(N, canvas, length)`` of a magnified 1-D patch whose first edge is at ``offset``.

    Canvas pixel p (centre p + 0.5) reads the patch at u = (p + 0.5 - offset) / scale - 0.5; patch
    pixel i weighs max(0, 1 - |u - i|), zero beyond the patch: grid_sample's bilinear with zero
    padding, as a matrix, since magnifying without rotation is separable.
    """
    pixel = torch.arange(canvas, dtype=torch.float32) + 0.5
    off = torch.from_numpy(offset.astype(np.float32))[:, None]
    u = (pixel[None, :] - off) / torch.from_numpy(scale.astype(np.float32))[:, None] - 0.5
    return (1 - (u[:, :, None] - torch.arange(length, dtype=torch.float32)).abs()).clamp_min_(0)


def place(patches: np.ndarray, scale: np.ndarray, top: np.ndarray, left: np.ndarray, canvas: int) -> torch.Tensor:
    """Magnify each patch by ``scale`` and put its top-left corner at (top, left) on an empty canvas.

    ``(N, h, w)`` in [0, 1] -> ``(N, canvas, canvas)``, bilinear, zero outside the patch.
    """
    n, h, w = patches.shape
    rows = interpolation_weights(top, scale, h, canvas)  # (N, canvas, h)
    cols = interpolation_weights(left, scale, w, canvas)  # (N, canvas, w)
    source = torch.from_numpy(np.ascontiguousarray(patches, dtype=np.float32))
    return rows @ source @ cols.transpose(1, 2)


def paint(canvas: torch.Tensor, ink: np.ndarray, alpha: torch.Tensor) -> None:
    """Lay ink of colour ``(N, 3)`` with coverage ``(N, S, S)`` over ``canvas`` ``(N, 3, S, S)``, in place."""
    colour = torch.from_numpy(ink)[:, :, None, None].expand_as(canvas)
    canvas.lerp_(colour, alpha[:, None].expand_as(canvas))  # in place and expanded: ~10x faster than broadcasting


def draw_placements(rng: np.random.Generator, n: int, size: int,
                    config: ClutteredDigitsConfig) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale and top-left corner of ``n`` patches of side ``size``, each wholly inside the canvas."""
    scale = rng.uniform(*config.scale, n)
    room = config.canvas_size - size * scale
    return scale, rng.uniform(0, 1, n) * room, rng.uniform(0, 1, n) * room


def round_robin_by_class(pool: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The pool shuffled, then dealt class by class in turn: any prefix is balanced while each class lasts."""
    shuffled = rng.permutation(pool)
    classes = labels[shuffled]
    by_class = np.argsort(classes, kind="stable")
    first_of_class = np.searchsorted(classes[by_class], classes[by_class])
    rank = np.empty(len(shuffled), np.int64)
    rank[by_class] = np.arange(len(shuffled)) - first_of_class  # how many of its class come before it
    return shuffled[np.argsort(rank, kind="stable")]


def render_split(images: np.ndarray, labels: np.ndarray, pool: np.ndarray, count: int,
                 config: ClutteredDigitsConfig, rng: np.random.Generator, chunk: int = 4096) -> Dict[str, np.ndarray]:
    """Render ``count`` cluttered canvases from the base images in ``pool`` only.

    Returns uint8 ``images`` ``(count, 3, S, S)``, ``labels``, ``digit_index`` (base image of each
    digit) and ``clutter_index`` ``(count, max fragments)``, -1 where an image has fewer fragments.
    All random draws are made up front except the noise, which is drawn chunk by chunk in order,
    so the bytes depend on the config alone.
    """
    f, most = config.fragment_size, config.clutter[1]
    # classes in turn, every base image of the pool once before any twice
    digit_index = rng.permutation(np.resize(round_robin_by_class(pool, labels, rng), count))
    digit_place = draw_placements(rng, count, DIGIT_SIZE, config)
    fragments = rng.integers(config.clutter[0], most + 1, count)
    # fragment sources: other images of the same pool (a clash with the digit's own moves one along)
    slots = rng.integers(0, len(pool), (count, most))
    source = pool[slots]
    source = np.where(source == digit_index[:, None], pool[(slots + 1) % len(pool)], source)
    corner = rng.integers(0, DIGIT_SIZE - f + 1, (2, count, most))
    fragment_place = [draw_placements(rng, count, f, config) for _ in range(most)]
    if config.colour == "random":
        background = rng.uniform(0.0, 0.35, (count, 3)).astype(np.float32)
        ink = rng.uniform(0.55, 1.0, (count, most + 1, 3)).astype(np.float32)
    else:
        background = np.zeros((count, 3), np.float32)
        ink = np.ones((count, most + 1, 3), np.float32)
    offsets = np.arange(f)
    out = np.empty((count, 3, config.canvas_size, config.canvas_size), np.uint8)
    for start in range(0, count, chunk):
        part = slice(start, min(start + chunk, count))
        canvas = torch.from_numpy(background[part])[:, :, None, None].expand(-1, -1, config.canvas_size,
                                                                              config.canvas_size).clone()
        for j in range(most):  # clutter under the digit, so the digit stays whole
            ys, xs = corner[0, part, j], corner[1, part, j]
            patch = images[source[part, j, None, None], ys[:, None, None] + offsets[None, :, None],
                           xs[:, None, None] + offsets[None, None, :]]
            alpha = place(patch, *(p[part] for p in fragment_place[j]), config.canvas_size)
            alpha = alpha * torch.from_numpy(j < fragments[part]).float()[:, None, None]
            paint(canvas, ink[part, j], alpha)
        alpha = place(images[digit_index[part]], *(p[part] for p in digit_place), config.canvas_size)
        paint(canvas, ink[part, most], alpha)
        if config.noise > 0:
            canvas += config.noise * torch.from_numpy(rng.standard_normal(canvas.shape, dtype=np.float32))
        out[part] = canvas.clamp_(0, 1).mul_(255).round_().to(torch.uint8).numpy()
    clutter_index = np.where(np.arange(most)[None, :] < fragments[:, None], source, -1)
    return {"images": out, "labels": labels[digit_index], "digit_index": digit_index, "clutter_index": clutter_index}


def generate_cluttered_digits(config: ClutteredDigitsConfig) -> Dict[str, np.ndarray]:
    """All three splits as flat arrays ``{split}_{images,labels,digit_index,clutter_index,pool}``."""
    images, labels = base_digits()
    pools = split_base_images(labels, config)
    arrays: Dict[str, np.ndarray] = {}
    for number, split in enumerate(SPLITS, start=1):
        count = getattr(config, f"{split}_size")
        rng = np.random.default_rng([config.seed, number])
        rendered = render_split(images, labels, pools[split], count, config, rng)
        arrays.update({f"{split}_{k}": v for k, v in rendered.items()})
        arrays[f"{split}_pool"] = pools[split]
    return arrays


def cached_cluttered_digits(config: ClutteredDigitsConfig,
                            cache_dir: Optional[Path]) -> Tuple[Dict[str, np.ndarray], Optional[Path]]:
    """The arrays of ``config``, read from ``cache_dir`` when there, else generated and written there.

    Written to a temporary file in the same folder and renamed, so readers (other Ray actors)
    never see half a file; an unreadable cache file is regenerated.
    """
    if cache_dir is None:
        return generate_cluttered_digits(config), None
    path = cache_dir / f"cluttered-digits-{config.key()}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as stored:
                return {k: stored[k] for k in stored.files}, path
        except (OSError, ValueError, zipfile.BadZipFile):
            pass  # a damaged cache is only a cache: make it again
    arrays = generate_cluttered_digits(config)
    cache_dir.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=cache_dir, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, **arrays)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return arrays, path


# ---------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------

Builder = Callable[..., DatasetSplits]


class DatasetRegistry:
    """Dataset builders found by name. A builder takes ``(data_dir, *, download, seed, **options)``."""

    def __init__(self) -> None:
        self._builders: Dict[str, Builder] = {}

    def register(self, name: str) -> Callable[[Builder], Builder]:
        def add(builder: Builder) -> Builder:
            if name in self._builders:
                raise KeyError(f"dataset {name!r} registered twice")
            self._builders[name] = builder
            return builder

        return add

    def names(self) -> List[str]:
        return list(self._builders)

    def __contains__(self, name: str) -> bool:
        return name in self._builders

    def options(self, name: str) -> Dict[str, object]:
        """The options dataset ``name`` accepts, with their defaults."""
        parameters = inspect.signature(self._builders[name]).parameters
        return {k: p.default for k, p in parameters.items() if k not in ("data_dir", "download", "seed")}

    def build(self, name: str, data_dir: Optional[str], *, download: bool, seed: int, **options) -> DatasetSplits:
        if name not in self._builders:
            raise DatasetError(f"unknown dataset {name!r}; valid datasets: {', '.join(self.names())}")
        accepted = self.options(name)
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise DatasetError(f"dataset {name!r} has no option {', '.join(map(repr, unknown))}; "
                               f"valid options: {', '.join(accepted)}")
        return self._builders[name](data_dir, download=download, seed=seed, **options)


DATASETS = DatasetRegistry()


def load_dataset(name: str = DEFAULT_DATASET, data_dir: Optional[str] = None, *, download: bool = False,
                 seed: int = 0, **options) -> DatasetSplits:
    """Load dataset ``name`` (see ``DATASETS.names()``); ``options`` are the dataset's own settings.

    ``download`` fetches files only for sets that have them (CIFAR) and only when asked. ``seed``
    fixes generated data and the validation split. Raises ``DatasetError`` (a ``ValueError``) with
    a message naming what is wrong: unknown name or option, missing folder, missing or corrupt files.
    """
    return DATASETS.build(name, data_dir, download=download, seed=seed, **options)


@DATASETS.register("cluttered-digits")
def cluttered_digits(data_dir: Optional[str], *, download: bool, seed: int, train_size: int = 10_000,
                     val_size: int = 2_000, test_size: int = 2_000, val_fraction: float = 0.2,
                     test_fraction: float = 0.2, canvas_size: int = 32, scale: Sequence[float] = (2.0, 3.0),
                     clutter: Sequence[int] = (2, 5), fragment_size: int = 4, noise: float = 0.1,
                     colour: str = "random", cache: bool = True) -> DatasetSplits:
    """Digits in clutter, offline (``download`` is ignored); cached under ``data_dir`` or the cache dir.

    No augmentation: placement, scale, clutter, colours and noise are drawn per sample already,
    and a mirrored digit is not a digit.
    """
    config = ClutteredDigitsConfig(train_size, val_size, test_size, val_fraction, test_fraction, canvas_size,
                                   tuple(float(s) for s in scale), tuple(int(c) for c in clutter), fragment_size,
                                   float(noise), colour, seed)
    folder = (Path(data_dir) if data_dir else default_cache_dir()) if cache else None
    arrays, path = cached_cluttered_digits(config, folder)
    train_images = torch.from_numpy(arrays["train_images"])
    mean, std = channel_stats(train_images)

    def tensors(split: str) -> ImageTensors:
        sources = {k: torch.from_numpy(arrays[f"{split}_{k}"]) for k in ("digit_index", "clutter_index", "pool")}
        return ImageTensors(torch.from_numpy(arrays[f"{split}_images"]), torch.from_numpy(arrays[f"{split}_labels"]),
                            mean, std, sources=sources)

    return DatasetSplits("cluttered-digits", tensors("train"), tensors("val"), tensors("test"), num_classes=10,
                         image_size=canvas_size, channels=3, mean=mean, std=std,
                         cache_path=str(path) if path else None, options=asdict(config))


# ---------------------------------------------------------------------------------------------
# CIFAR
# ---------------------------------------------------------------------------------------------

# torchvision's classes check every file's MD5 before reading it: corrupt files are refused.
CIFAR_SOURCES: Dict[str, type] = {"cifar10": tv_datasets.CIFAR10, "cifar100": tv_datasets.CIFAR100}


def load_cifar(name: str, data_dir: Optional[str], download: bool, seed: int, val_fraction: float,
               val_size: Optional[int], padding: int, flip: bool) -> DatasetSplits:
    """CIFAR in memory; ``val`` is held out of the 50,000 training images, stratified and seeded."""
    source = CIFAR_SOURCES[name]
    root = Path(data_dir) if data_dir else default_cache_dir() / "data"
    try:
        train_set = source(str(root), train=True, download=download)
        test_set = source(str(root), train=False, download=False)
    except RuntimeError as error:
        raise DatasetError(f"{name}: files not found or corrupted in {root / source.base_folder}; "
                           f"pass --download (download=True) to fetch them into {root}") from error
    images = torch.from_numpy(train_set.data).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor(train_set.targets, dtype=torch.int64)
    count = holdout_count(len(labels), val_fraction, val_size, f"{name} validation split")
    kept, held = stratified_holdout(labels.numpy(), count, np.random.default_rng([seed, 1]))
    kept, held = torch.from_numpy(kept), torch.from_numpy(held)
    mean, std = channel_stats(images[kept])
    train = ImageTensors(images[kept], labels[kept], mean, std, BatchAugment(padding, flip),
                         sources={"train_index": kept})
    val = ImageTensors(images[held], labels[held], mean, std, sources={"train_index": held})
    test = ImageTensors(torch.from_numpy(test_set.data).permute(0, 3, 1, 2).contiguous(),
                        torch.tensor(test_set.targets, dtype=torch.int64), mean, std)
    return DatasetSplits(name, train, val, test, num_classes=len(train_set.classes), image_size=32, channels=3,
                         mean=mean, std=std, options={"val_size": count, "padding": padding, "flip": flip})


@DATASETS.register("cifar10")
def cifar10(data_dir: Optional[str], *, download: bool, seed: int, val_fraction: float = 0.1,
            val_size: Optional[int] = None, padding: int = 4, flip: bool = True) -> DatasetSplits:
    """CIFAR-10 from ``data_dir/cifar-10-batches-py``; train augmented by crop (``padding``) and flip."""
    return load_cifar("cifar10", data_dir, download, seed, val_fraction, val_size, padding, flip)


@DATASETS.register("cifar100")
def cifar100(data_dir: Optional[str], *, download: bool, seed: int, val_fraction: float = 0.1,
             val_size: Optional[int] = None, padding: int = 4, flip: bool = True) -> DatasetSplits:
    """CIFAR-100 (fine labels) from ``data_dir/cifar-100-python``; train augmented by crop and flip."""
    return load_cifar("cifar100", data_dir, download, seed, val_fraction, val_size, padding, flip)


# ---------------------------------------------------------------------------------------------
# ImageNet-style folders and FakeData
# ---------------------------------------------------------------------------------------------

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@DATASETS.register("imagefolder")
def imagefolder(data_dir: Optional[str], *, download: bool, seed: int, image_size: int = 224,
                val_fraction: float = 0.1, val_size: Optional[int] = None) -> DatasetSplits:
    """``data_dir/train/<class>/*`` and ``data_dir/val/<class>/*``; ``val/`` is the test split.

    As for ImageNet, whose labelled ``val/`` is the benchmark's test set, the search's validation
    set is held out of ``train/`` (stratified, seeded). Train: RandomResizedCrop + flip; eval:
    Resize(size * 256/224) + CenterCrop(size).
    """
    if download:
        raise DatasetError("imagefolder cannot be downloaded; put the images in DIR/train and DIR/val")
    if data_dir is None:
        raise DatasetError("imagefolder needs --data-dir DIR with DIR/train/<class>/ and DIR/val/<class>/")
    folders = {split: Path(data_dir) / split for split in ("train", "val")}
    for folder in folders.values():
        if not folder.is_dir():
            raise DatasetError(f"imagefolder: missing folder {folder} (expected {data_dir}/train/<class>/*.jpg "
                               f"and {data_dir}/val/<class>/*.jpg)")
    normalise = transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    train_transform = transforms.Compose([transforms.RandomResizedCrop(image_size), transforms.RandomHorizontalFlip(),
                                          transforms.ToTensor(), normalise])
    eval_transform = transforms.Compose([transforms.Resize(round(image_size * 256 / 224)),
                                         transforms.CenterCrop(image_size), transforms.ToTensor(), normalise])
    try:
        train_all = tv_datasets.ImageFolder(str(folders["train"]), train_transform)
        train_eval = tv_datasets.ImageFolder(str(folders["train"]), eval_transform)
        test = tv_datasets.ImageFolder(str(folders["val"]), eval_transform)
    except FileNotFoundError as error:
        raise DatasetError(f"imagefolder: {error}") from error
    if test.classes != train_all.classes:
        raise DatasetError(f"imagefolder: {folders['val']} has classes {test.classes}, "
                           f"{folders['train']} has {train_all.classes}; they must match")
    targets = np.asarray(train_all.targets)
    count = holdout_count(len(targets), val_fraction, val_size, "imagefolder validation split")
    kept, held = stratified_holdout(targets, count, np.random.default_rng([seed, 1]))
    return DatasetSplits("imagefolder", Subset(train_all, kept.tolist()), Subset(train_eval, held.tolist()), test,
                         num_classes=len(train_all.classes), image_size=image_size, channels=3,
                         mean=IMAGENET_MEAN, std=IMAGENET_STD, options={"val_size": count})


@DATASETS.register("fake")
def fake(data_dir: Optional[str], *, download: bool, seed: int, train_size: int = 1280, test_size: int = 256,
         val_fraction: float = 0.2, val_size: Optional[int] = None, image_size: int = 32,
         num_classes: int = 10) -> DatasetSplits:
    """torchvision's FakeData, for throughput: random images, item i fixed by (seed, i).

    ``train_size`` images form the training set, of which ``val_size`` (or ``val_fraction``) are
    held out as ``val``, as for every other dataset.
    """
    normalise = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)])
    offset = seed * (train_size + test_size)  # FakeData seeds item i with i + offset: no two items share one
    train_all = tv_datasets.FakeData(train_size, (3, image_size, image_size), num_classes, normalise,
                                     random_offset=offset)
    test = tv_datasets.FakeData(test_size, (3, image_size, image_size), num_classes, normalise,
                                random_offset=offset + train_size)
    count = holdout_count(train_size, val_fraction, val_size, "fake validation split")
    order = np.random.default_rng([seed, 1]).permutation(train_size)
    held, kept = order[:count], np.sort(order[count:])
    return DatasetSplits("fake", Subset(train_all, kept.tolist()), Subset(train_all, held.tolist()), test,
                         num_classes=num_classes, image_size=image_size, channels=3, mean=(0.5,) * 3,
                         std=(0.5,) * 3, options={"val_size": count})
