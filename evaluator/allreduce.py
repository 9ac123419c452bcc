"""Data-parallel shared-weight training: the shards of a round step together, gradients summed every step.

A round of shared-weight training is ``S`` steps over ``W`` shards. At step ``t`` every shard runs
the same genotype ``g_t`` on its own batch; the step's gradient is the mean of the shards'
gradients, so the global batch is ``W`` shard batches and every actor takes the same SGD step.
The shards are spread over the live actors (shard ``s`` to rank ``s mod world``); an actor holding
several shards sums their gradients before the all-reduce. The step therefore does not depend on
how many actors computed it: a round that lost an actor is recomputed by the survivors and gives
the same weights (bit for bit with 2 shards; with more, up to the order of float additions).

Batch norm's running statistics are kept per shard (each shard's forward updates its own copy, as it
would on an actor of its own) and averaged over the shards when the round is merged.

The actors meet through torch.distributed's gloo backend (CPU tensors; a GPU actor copies its
gradients to the host for the all-reduce, which lets fractional GPUs share one device, where NCCL
refuses two ranks on one GPU).
"""
from __future__ import annotations

import contextlib
import datetime
import ipaddress
import math
import os
import socket
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from evaluator.supernet import Supernet
from searchspace import Genotype

Batch = Tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Rendezvous:
    """Where and as whom one actor joins the round's process group."""

    host: str  # the address of rank 0's node
    port: int
    rank: int
    world: int
    timeout_s: float = 120.0  # a peer that neither joins nor answers within this fails the round


def free_address() -> Tuple[str, int]:
    """(this node's address, a free TCP port on it) for rank 0 to host the rendezvous."""
    import ray  # only actors call this, and they run inside Ray

    host = ray.util.get_node_ip_address()
    with socket.socket() as probe:
        probe.bind((host, 0))
        return host, probe.getsockname()[1]


@contextlib.contextmanager
def process_group(rendezvous: Optional[Rendezvous]) -> Iterator[None]:
    """The round's gloo process group (none for a world of one), left again however the round ends."""
    if rendezvous is None or rendezvous.world == 1:
        yield
        return
    if ipaddress.ip_address(rendezvous.host).is_loopback:
        os.environ["GLOO_SOCKET_IFNAME"] = "lo"  # else gloo picks the interface of the hostname
    dist.init_process_group("gloo", init_method=f"tcp://{rendezvous.host}:{rendezvous.port}",
                            rank=rendezvous.rank, world_size=rendezvous.world,
                            timeout=datetime.timedelta(seconds=rendezvous.timeout_s))
    try:
        yield
    finally:
        dist.destroy_process_group()


def sum_over_actors(gradients: Sequence[torch.Tensor], skipped: float) -> float:
    """Sum ``gradients`` in place over the actors of the process group; returns the summed ``skipped``.

    One flat all-reduce per step: the gradients, and a count of shards whose loss was not finite.
    """
    if not dist.is_initialized():
        return skipped
    flat = torch.cat([g.reshape(-1).float().cpu() for g in gradients] + [torch.tensor([skipped])])
    dist.all_reduce(flat)
    offset = 0
    for gradient in gradients:
        gradient.copy_(flat[offset:offset + gradient.numel()].view_as(gradient))
        offset += gradient.numel()
    return float(flat[-1])


class ShardStatistics:
    """Per-shard copies of the BN running statistics; ``use(s)`` makes shard ``s``'s the module's.

    An actor with one shard keeps them in the module itself (nothing to swap); ``copies[s]`` holds
    shard ``s``'s buffers in either case.
    """

    def __init__(self, supernet: nn.Module, shards: Sequence[int]) -> None:
        self.buffers = dict(supernet.named_buffers())
        self.swapping = len(shards) > 1
        self.copies = {s: {name: b.clone() for name, b in self.buffers.items()} if self.swapping else self.buffers
                       for s in shards}

    @contextlib.contextmanager
    def use(self, shard: int) -> Iterator[None]:
        if not self.swapping:
            yield
            return
        for name, buffer in self.buffers.items():
            buffer.copy_(self.copies[shard][name])
        try:
            yield
        finally:
            for name, buffer in self.buffers.items():
                self.copies[shard][name].copy_(buffer)


def synced_steps(supernet: Supernet, optimizer: torch.optim.Optimizer, batches: Dict[int, Iterator[Batch]],
                 genotypes: Sequence[Genotype], lr: float, grad_clip: Optional[float], num_shards: int,
                 statistics: ShardStatistics) -> Dict[int, List[float]]:
    """One SGD step per genotype on the mean gradient of every shard's batch; losses per local shard.

    ``batches``: this actor's shards, each an iterator of its (images, labels) batches. A step in
    which any shard's loss is not finite is skipped by every actor (no update), as one process
    skips it, so one broken genotype cannot poison the shared weights.
    """
    for group in optimizer.param_groups:
        group["lr"] = lr
    supernet.train()
    losses: Dict[int, List[float]] = {shard: [] for shard in batches}
    for genotype in genotypes:
        optimizer.zero_grad(set_to_none=True)
        skipped = 0.0
        for shard, stream in batches.items():
            images, labels = next(stream)
            with statistics.use(shard):
                loss = F.cross_entropy(supernet(images, genotype), labels)
            losses[shard].append(loss.detach().item())
            skipped += 0.0 if math.isfinite(losses[shard][-1]) else 1.0
            (loss / num_shards).backward()  # even when not finite: every actor must send the same tensors
        gradients = [p.grad for p in supernet.parameters() if p.grad is not None]
        if sum_over_actors(gradients, skipped) > 0:
            continue
        if grad_clip:
            nn.utils.clip_grad_norm_(supernet.parameters(), grad_clip)
        optimizer.step()
    return losses
