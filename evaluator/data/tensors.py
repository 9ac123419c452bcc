"""Splits held in memory: uint8 image tensors, their normalisation and batch-wide augmentation."""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from evaluator.data.errors import DatasetError

Device = Union[str, torch.device, None]


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
