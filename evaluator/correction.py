"""Per-genotype correction: undo some of what the other genotypes taught the shared backbone.

Shared weights co-adapt to the genotypes trained most (docs/ranking_fidelity.md: near-identity
gates), so a block that really changes its input meets a backbone tuned to blocks that do not.
Before a genotype's whole-split score, ``corrected`` gives it SGD steps of its own on its attention
ops and on every batch norm's scale and shift, the parameters through which a backbone adapts to
a block most cheaply; the convolutions and the classifier stay as the supernet has them. The
shared weights are put back afterwards, so the next genotype starts from the same supernet.
"""
from __future__ import annotations

import itertools
from contextlib import contextmanager
from typing import Callable, Dict, Iterable, Iterator, List, Tuple

import torch
import torch.nn as nn

from evaluator.supernet import AttentionSlot
from evaluator.training import SharedTrainingConfig, make_optimizer, train_steps
from searchspace import Genotype

# Every genotype's correction steps see the same training batches (common random numbers): this draw.
CORRECTION_BATCH_SEED = 0


def correction_parameters(supernet: nn.Module) -> List[nn.Parameter]:
    """Every attention slot's parameters (only the genotype's ops get gradients) and every batch
    norm's scale and shift, those inside attention ops included."""
    chosen: Dict[int, nn.Parameter] = {}
    for module in supernet.modules():
        if isinstance(module, (AttentionSlot, nn.modules.batchnorm._BatchNorm)):
            chosen.update({id(p): p for p in module.parameters()})
    return list(chosen.values())


@contextmanager
def correcting(supernet: nn.Module, genotype: Genotype, batches: Iterable[Tuple[torch.Tensor, torch.Tensor]],
               lr: float, training: SharedTrainingConfig, every_weight: bool = False) -> Iterator[Callable[[int], None]]:
    """Inside the block, ``advance(n)`` gives ``genotype`` its next ``n`` SGD steps on the next ``n`` of
    ``batches`` (the search's optimizer, momentum kept from one call to the next, constant ``lr``): on the
    correction's parameters, or on every shared weight with ``every_weight``. Scoring between calls
    reads one trajectory at several lengths; each length scores as ``corrected`` with that many steps.
    The weights and ``requires_grad`` flags are restored on exit."""
    saved, mode = {name: tensor.clone() for name, tensor in supernet.state_dict().items()}, supernet.training
    kept = {id(p) for p in correction_parameters(supernet)}
    frozen = [] if every_weight else [p for p in supernet.parameters() if p.requires_grad and id(p) not in kept]
    stream = iter(batches)

    def advance(steps: int) -> None:
        if steps > 0:  # no step, no change: not even train mode
            train_steps(supernet, optimizer, itertools.islice(stream, steps), [genotype] * steps, lr, training.grad_clip)

    try:
        for parameter in frozen:
            parameter.requires_grad_(False)
        optimizer = make_optimizer(supernet, training)  # frozen weights get no gradient: SGD leaves them
        yield advance
    finally:
        for parameter in frozen:
            parameter.requires_grad_(True)
        supernet.load_state_dict(saved)
        supernet.train(mode)


@contextmanager
def corrected(supernet: nn.Module, genotype: Genotype, batches: Iterable[Tuple[torch.Tensor, torch.Tensor]],
              steps: int, lr: float, training: SharedTrainingConfig, every_weight: bool = False) -> Iterator[None]:
    """Inside the block, ``supernet`` runs ``genotype`` after ``steps`` SGD steps of its own on ``batches``
    (``correcting``, all steps at once). The weights and ``requires_grad`` flags are restored on exit."""
    with correcting(supernet, genotype, batches, lr, training, every_weight) as advance:
        advance(steps)
        yield
