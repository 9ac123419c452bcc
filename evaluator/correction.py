"""Per-genotype correction: undo some of what the other genotypes taught the shared backbone.

Shared weights co-adapt to the genotypes trained most (docs/ranking_fidelity.md: near-identity
gates), so a block that really changes its input meets a backbone tuned to blocks that do not.
Before a genotype's whole-split score, ``corrected`` gives it SGD steps of its own on its attention
ops and on every batch norm's scale and shift, the parameters through which a backbone adapts to
a block most cheaply; the convolutions and the classifier stay as the supernet has them. The
shared weights are put back afterwards, so the next genotype starts from the same supernet.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Dict, Iterable, Iterator, List, Tuple

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
def corrected(supernet: nn.Module, genotype: Genotype, batches: Iterable[Tuple[torch.Tensor, torch.Tensor]],
              steps: int, lr: float, training: SharedTrainingConfig, every_weight: bool = False) -> Iterator[None]:
    """Inside the block, ``supernet`` runs ``genotype`` after ``steps`` SGD steps of its own on ``batches``
    (the search's optimizer, fresh momentum, constant ``lr``): on the correction's parameters, or on
    every shared weight with ``every_weight``. The weights and ``requires_grad`` flags are restored on exit."""
    saved, mode = {name: tensor.clone() for name, tensor in supernet.state_dict().items()}, supernet.training
    kept = {id(p) for p in correction_parameters(supernet)}
    frozen = [] if every_weight else [p for p in supernet.parameters() if p.requires_grad and id(p) not in kept]
    try:
        if steps:
            for parameter in frozen:
                parameter.requires_grad_(False)
            optimizer = make_optimizer(supernet, training)  # frozen weights get no gradient: SGD leaves them
            train_steps(supernet, optimizer, batches, [genotype] * steps, lr, training.grad_clip)
        yield
    finally:
        for parameter in frozen:
            parameter.requires_grad_(True)
        supernet.load_state_dict(saved)
        supernet.train(mode)
