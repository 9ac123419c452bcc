"""Seeded passes over a split in mini-batches: tensors indexed in memory, or a DataLoader over a dataset."""
from __future__ import annotations

from typing import Iterator, Optional, Tuple

import torch
from torch.utils.data import DataLoader, Dataset

from evaluator.data.errors import DatasetError
from evaluator.data.seeds import derived_seed
from evaluator.data.tensors import BatchAugment, Device, ImageTensors

Batch = Tuple[torch.Tensor, torch.Tensor]


class Batches:
    """What both kinds of batches share: the batch size, the seeded order of each pass, the device.

    The n-th pass over the data (from 0) draws from a generator seeded with ``(seed, n)``: passes
    differ, runs repeat. ``set_epoch(n)`` makes the next pass the n-th (resume).
    """

    def __init__(self, size: int, batch_size: int, *, shuffle: bool, seed: int, drop_last: bool, device: Device,
                 memory_format: torch.memory_format) -> None:
        if batch_size < 1:
            raise DatasetError(f"batch_size must be at least 1, got {batch_size}")
        self.size, self.batch_size = size, batch_size
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.device, self.memory_format = torch.device(device or "cpu"), memory_format
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size // self.batch_size if self.drop_last else -(-self.size // self.batch_size)

    def next_pass(self) -> torch.Generator:
        """The generator of the coming pass; counts the pass."""
        generator = torch.Generator().manual_seed(derived_seed(self.seed, self.epoch))
        self.epoch += 1
        return generator


class TensorBatches(Batches):
    """Seeded mini-batches of an ``ImageTensors``: ``(B, C, H, W)`` float32 normalised, and ``(B,)`` labels.

    Each pass is shuffled and augmented by its own generator (see :class:`Batches`).
    """

    def __init__(self, data: ImageTensors, batch_size: int, *, shuffle: bool = True, seed: int = 0,
                 augment: Optional[BatchAugment] = None, drop_last: bool = False, device: Device = None,
                 memory_format: torch.memory_format = torch.channels_last) -> None:
        super().__init__(len(data), batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last, device=device,
                         memory_format=memory_format)
        self.data, self.augment = data, augment

    def __iter__(self) -> Iterator[Batch]:
        generator = self.next_pass()
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


class LoaderBatches(Batches):
    """A DataLoader over a torchvision dataset, giving batches on ``device`` in ``memory_format``.

    The order of each pass is seeded (see :class:`Batches`); per-item random transforms draw from
    torch's global generator (seeded per worker by the DataLoader when ``num_workers > 0``).
    """

    def __init__(self, dataset: Dataset, batch_size: int, *, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False, device: Device = None,
                 memory_format: torch.memory_format = torch.channels_last, num_workers: int = 0) -> None:
        super().__init__(len(dataset), batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last, device=device,
                         memory_format=memory_format)
        self.dataset, self.num_workers = dataset, num_workers

    def __iter__(self) -> Iterator[Batch]:
        loader = DataLoader(self.dataset, self.batch_size, shuffle=self.shuffle, generator=self.next_pass(),
                            drop_last=self.drop_last, num_workers=self.num_workers,
                            pin_memory=self.device.type == "cuda")
        for images, labels in loader:
            images = images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
            yield images, labels.to(self.device, non_blocking=True)
