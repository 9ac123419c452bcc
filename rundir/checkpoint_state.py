"""What a checkpoint may hold: the values ``torch.load(..., weights_only=True)`` loads back."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch

# What ``torch.load(..., weights_only=True)`` accepts, checked before a checkpoint is written so
# that a state it would refuse fails at save time, not at resume.
CHECKPOINT_LEAVES = (torch.Tensor, torch.nn.Parameter, int, float, bool, complex, str, bytes,
                     type(None), torch.Size, torch.dtype, torch.device)


def check_loadable(value: Any, where: str) -> None:
    """Refuse, naming the key, what ``torch.load(weights_only=True)`` would not load back."""
    kind = type(value)
    if kind in (dict, OrderedDict):
        for key, item in value.items():
            check_loadable(key, f"{where} key {key!r}")
            check_loadable(item, f"{where}[{key!r}]")
    elif kind in (list, tuple, set):
        for index, item in enumerate(value):
            check_loadable(item, f"{where}[{index}]")
    elif kind not in CHECKPOINT_LEAVES:
        raise TypeError(f"{where}: {kind.__module__}.{kind.__qualname__} cannot be loaded with "
                        "weights_only=True; convert it to a tensor or a Python number/list")
