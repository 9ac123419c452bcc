"""The controller service called in-process the way the search loop calls its actor, and state comparison."""
from types import SimpleNamespace

import torch

from controller.service import ControllerService


class InProcess:
    """A ControllerService called the way the loop calls its actor, ``service.method.remote(...)``."""

    def __init__(self, service: ControllerService) -> None:
        self.service = service

    def __getattr__(self, name):
        return SimpleNamespace(remote=getattr(self.service, name))


def same_state(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_state(x, y) for x, y in zip(a, b))
    return a == b
