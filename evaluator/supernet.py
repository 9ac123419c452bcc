"""The weight-sharing supernet: a proxy ResNet whose attention slots hold every candidate op once.

Batch norm across genotypes: the backbone's BN layers are shared by every genotype, so their
running statistics are a mixture over whatever genotypes trained them and fit none of them. The
search therefore never uses the shared running statistics: shared-weight training normalises with
the statistics of the batch at hand, and rewards either do the same (``frozen_bn_statistics``:
train-mode BN with momentum 0, so the running buffers are left alone; ENAS and most one-shot
searches) or re-estimate the running statistics for the scored genotype on a few training batches
and score in eval mode (``recalibrated_bn_statistics``; SPOS), restoring the shared buffers after.
Each attention op owns its own BN layers, so those only ever see the genotypes that use them.

Excitations across squeezes: by default one excitation of each kind serves every squeeze of its
branch, although the squeezes' descriptors differ in scale (a log-sum-exp against a mean, a
style pool's two moments against one); ``excitation_per_squeeze`` gives every (squeeze,
excitation) pair its own weights instead, so an excitation only ever sees one squeeze's
descriptors, at the price of training each pair on fewer steps.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Union

import torch
import torch.nn as nn

from evaluator.models import build_model
from searchspace import (
    CHANNEL_EXCITATION,
    CHANNEL_SQUEEZE,
    GATE_BIAS,
    SPATIAL_EXCITATION,
    SPATIAL_SQUEEZE,
    Genotype,
    attend,
    initial_logit,
    resolve,
)


class AttentionSlot(nn.Module):
    """Every op of every set once, for one residual block; runs the genotype it was last given.

    (B, C, H, W) -> (B, C, H, W). Shared excitations (the default) are built for the widest
    spatial squeeze and use the first S input channels of their first layer for a squeeze of
    width S. With ``excitation_per_squeeze`` the excitations are ``[squeeze][excitation]``, each
    built for its squeeze's width.
    """

    def __init__(self, channels: int, reduction: int = 16, combine: str = "sequential",
                 gate_bias: float = GATE_BIAS, excitation_per_squeeze: bool = False) -> None:
        super().__init__()
        options = dict(reduction=reduction, gate_bias=initial_logit(combine, gate_bias))
        self.combine, self.excitation_per_squeeze = combine, excitation_per_squeeze

        def channel_excitations() -> nn.ModuleDict:
            return nn.ModuleDict({n: CHANNEL_EXCITATION.build(n, channels, **options) for n in CHANNEL_EXCITATION.names()})

        def spatial_excitations(width: int) -> nn.ModuleDict:
            return nn.ModuleDict({n: SPATIAL_EXCITATION.build(n, channels, in_channels=width, **options)
                                  for n in SPATIAL_EXCITATION.names()})

        # Built in the order of the genotype's four sets: the random initial weights of a seed depend
        # on it, and searches of earlier versions drew them so (a seed gives the supernet it gave).
        self.channel_squeeze = nn.ModuleDict(
            {n: CHANNEL_SQUEEZE.build(n, channels, **options) for n in CHANNEL_SQUEEZE.names() if n != "none"})
        self.channel_excitation = (nn.ModuleDict({s: channel_excitations() for s in self.channel_squeeze})
                                   if excitation_per_squeeze else channel_excitations())
        self.spatial_squeeze = nn.ModuleDict(
            {n: SPATIAL_SQUEEZE.build(n, channels, **options) for n in SPATIAL_SQUEEZE.names() if n != "none"})
        self.spatial_excitation = (
            nn.ModuleDict({s: spatial_excitations(op.out_channels) for s, op in self.spatial_squeeze.items()})
            if excitation_per_squeeze else spatial_excitations(max(op.out_channels for op in self.spatial_squeeze.values())))
        self.genotype: Optional[Genotype] = None

    def _excitation(self, excitations: nn.ModuleDict, squeeze: str, name: str) -> nn.Module:
        """Excitation ``name``, among ``squeeze``'s own when each squeeze has its own."""
        return (excitations[squeeze] if self.excitation_per_squeeze else excitations)[name]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.genotype
        if g is None:
            raise RuntimeError("AttentionSlot has no genotype: call Supernet.forward(x, genotype)")
        channel = spatial = None
        if g.has_channel_branch:
            channel = (self.channel_squeeze[g.channel_squeeze],
                       self._excitation(self.channel_excitation, g.channel_squeeze, g.channel_excitation))
        if g.has_spatial_branch:
            spatial = (self.spatial_squeeze[g.spatial_squeeze],
                       self._excitation(self.spatial_excitation, g.spatial_squeeze, g.spatial_excitation))
        return attend(x, channel, spatial, self.combine)


class Supernet(nn.Module):
    """The proxy network shared by all genotypes; ``forward(x, genotype)`` runs only the chosen ops."""

    def __init__(self, arch: str = "resnet20", num_classes: int = 10, reduction: int = 16,
                 combine: str = "sequential", gate_bias: float = GATE_BIAS, excitation_per_squeeze: bool = False) -> None:
        super().__init__()
        self.arch, self.num_classes = arch, num_classes
        self.options = dict(reduction=reduction, combine=combine, gate_bias=gate_bias)  # the stand-alone block's
        self.excitation_per_squeeze = excitation_per_squeeze
        slots: List[AttentionSlot] = []

        def make_slot(channels: int) -> AttentionSlot:
            slots.append(AttentionSlot(channels, excitation_per_squeeze=excitation_per_squeeze, **self.options))
            return slots[-1]

        self.network = build_model(arch, num_classes, attention_layer=make_slot)
        self._slots = slots  # a plain list: the slots are registered once, inside self.network

    def forward(self, x: torch.Tensor, genotype: Union[Genotype, str]) -> torch.Tensor:
        """(B, 3, H, W) -> (B, num_classes) logits of ``genotype``'s network."""
        genotype = resolve(genotype)
        for slot in self._slots:
            slot.genotype = genotype
        return self.network(x)

    def extract(self, genotype: Union[Genotype, str]) -> nn.Module:
        """A stand-alone network of ``genotype`` with the supernet's weights copied in."""
        genotype = resolve(genotype)
        reference = next(self.parameters())
        network = build_model(self.arch, self.num_classes, attention=genotype, **self.options)
        network.to(device=reference.device, dtype=reference.dtype)
        shared = self.state_dict()
        copied = {}
        for name, tensor in network.state_dict().items():
            source = shared[supernet_name(name, genotype, self.excitation_per_squeeze)]
            for dim, size in enumerate(tensor.shape):
                source = source.narrow(dim, 0, size)  # the sliced first layer of spatial excitations
            copied[name] = source.clone()
        network.load_state_dict(copied)
        return network

    def parameters_of(self, genotype: Union[Genotype, str]) -> int:
        """Parameters of ``genotype``'s stand-alone network (what the ``params`` column reports)."""
        genotype = resolve(genotype)
        network = build_model(self.arch, self.num_classes, attention=genotype, **self.options)
        return sum(p.numel() for p in network.parameters())


def supernet_name(name: str, genotype: Genotype, excitation_per_squeeze: bool = False) -> str:
    """Map a stand-alone network's state-dict name to the supernet's: attention submodules live
    under their op's name in the slot (``...attention.channel_squeeze.gap.weight``), excitations
    per squeeze under their squeeze's too (``...attention.channel_excitation.gap.fc_relu_fc.fc1.weight``)."""
    for decision, op in genotype.ops.items():
        marker = f".attention.{decision}."
        if marker in name:
            if excitation_per_squeeze and decision.endswith("_excitation"):
                op = f"{genotype.ops[decision.replace('_excitation', '_squeeze')]}.{op}"
            return "network." + name.replace(marker, f"{marker}{op}.")
    return "network." + name


@contextmanager
def frozen_bn_statistics(model: nn.Module) -> Iterator[None]:
    """Train-mode BN (batch statistics) that leaves the running buffers untouched."""
    saved: Dict[nn.Module, tuple] = {}
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            saved[module] = (module.momentum, module.training, module.num_batches_tracked.clone())
            module.momentum = 0.0
            module.train()
    try:
        yield
    finally:
        for module, (momentum, training, tracked) in saved.items():
            module.momentum = momentum
            module.train(training)
            module.num_batches_tracked.copy_(tracked)


@contextmanager
def recalibrated_bn_statistics(model: nn.Module, forward: Callable[[torch.Tensor], torch.Tensor],
                               batches: Iterable[torch.Tensor]) -> Iterator[None]:
    """Eval-mode BN with running statistics re-estimated on ``batches`` (SPOS), then put back.

    Every BN layer's running statistics are reset and accumulated as a cumulative average
    (``momentum=None``) over ``forward(images)`` for each (B, C, H, W) batch, in train mode and
    without gradients; inside the block the model is in eval mode and normalises with them. On
    exit every BN buffer, momentum and every module's train/eval mode are as they were, so the
    shared state a later task loads or trains is not touched. BN layers the forward does not
    reach keep the reset statistics inside the block (they are not used).
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = {m: (m.momentum, m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone())
             for m in norms}
    modes = {m: m.training for m in model.modules()}
    try:
        for module in norms:
            module.reset_running_stats()
            module.momentum = None
        model.train()
        with torch.no_grad():
            for images in batches:
                forward(images)
        model.eval()
        yield
    finally:
        for module, (momentum, mean, var, tracked) in saved.items():
            module.momentum = momentum
            module.running_mean.copy_(mean)
            module.running_var.copy_(var)
            module.num_batches_tracked.copy_(tracked)
        for module, training in modes.items():
            module.training = training
