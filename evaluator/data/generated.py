"""A generated dataset's splits: its arrays read from the disk cache (or made and written there), held in memory."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch

from evaluator.data.cache import Arrays, cached_arrays
from evaluator.data.errors import default_cache_dir
from evaluator.data.splits import DatasetSplits
from evaluator.data.tensors import ImageTensors, channel_stats


def generated_splits(name: str, config: Any, generate: Callable[[], Arrays], *, data_dir: Optional[str], cache: bool,
                     num_classes: int, sources: Sequence[str]) -> DatasetSplits:
    """The ``DatasetSplits`` of arrays ``{split}_images`` uint8 ``(N, C, S, S)``, ``{split}_labels`` and
    ``{split}_<source>`` per split, all normalised with the training split's statistics.

    ``config`` is the dataset's frozen settings dataclass (``key()``, ``canvas_size``); the arrays are
    cached under ``data_dir`` or the cache dir unless ``cache`` is False.
    """
    folder = (Path(data_dir) if data_dir else default_cache_dir()) if cache else None
    arrays, path = cached_arrays(name, config.key(), generate, folder)
    mean, std = channel_stats(torch.from_numpy(arrays["train_images"]))

    def tensors(split: str) -> ImageTensors:
        return ImageTensors(torch.from_numpy(arrays[f"{split}_images"]), torch.from_numpy(arrays[f"{split}_labels"]),
                            mean, std, sources={k: torch.from_numpy(arrays[f"{split}_{k}"]) for k in sources})

    return DatasetSplits(name, tensors("train"), tensors("val"), tensors("test"), num_classes=num_classes,
                         image_size=config.canvas_size, channels=3, mean=mean, std=std,
                         cache_path=str(path) if path else None, options=asdict(config))
