"""The three splits of a dataset (train, val held out of train, test) and how to hold items out."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Dict, Iterator, Optional, Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from evaluator.data.batches import Batch, LoaderBatches, TensorBatches
from evaluator.data.errors import DatasetError
from evaluator.data.tensors import Device, ImageTensors

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
