"""How much the attention of a supernet depends on its input: each genotype's channel rescaling, per image.

A block multiplies its input by gates; for a gate that does its job the scale differs from image
to image. For every attention slot of the supernet we measure, per image and channel, the scale
the block applied, ``s = <y, x> / <x, x>`` over the positions (exact for a channel gate, the
position-weighted mean for a spatial one), then report per genotype:

- ``scale_mean``: the mean scale (the open gates start at sigmoid(2) = 0.88, two of them at 0.77);
- ``scale_sd_across_images``: its sd across the images, averaged over channels and slots: 0 means a
  constant rescaling that batch norm could do, the same for every image;

beside the genotype's accuracy on those images, scored as rewards are (BN batch statistics).

    python benchmarks/gate_activity.py --run benchmarks/runs/landscape_styled_glyphs [--images 512]
        [--genotype KEY ...] [--standalone se srm ...] [--out results/gate_activity.json]

The known modules are always measured in the supernet; ``--genotype`` adds others by key.
``--standalone`` also trains the named known modules from scratch at the stand-alone table's
budget (6 epochs, seed 0, on the run's data) and measures their own blocks, in eval mode: what
the same ops do when they are not shared.
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from common import RESULTS, fail, show_result, write_result  # first: the import path

import torch  # noqa: E402
from torch import nn  # noqa: E402

from evaluator.data import DatasetSplits  # noqa: E402
from evaluator.standalone import StandaloneConfig, run_epochs, seeded_model  # noqa: E402
from evaluator.supernet import AttentionSlot, Supernet  # noqa: E402
from machine import describe_machine  # noqa: E402
from searchspace import KNOWN, SASEBlock, from_key  # noqa: E402
from reward_fidelity import evaluator_of, is_run  # noqa: E402
import standalone_table  # noqa: E402


def channel_scales(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) input and output of a block -> (B, C) the scale it applied to each channel."""
    return (y * x).sum(dim=(2, 3)) / (x * x).sum(dim=(2, 3)).clamp_min(1e-12)


@torch.no_grad()
def activity(network: Callable[[torch.Tensor], torch.Tensor], blocks: Sequence[nn.Module], images: torch.Tensor,
             labels: torch.Tensor) -> Dict[str, float]:
    """A network's accuracy on ``images`` and its attention ``blocks``' scales (module docstring)."""
    scales: List[torch.Tensor] = []
    hooks = [block.register_forward_hook(lambda _, inputs, output: scales.append(channel_scales(inputs[0], output)))
             for block in blocks]
    try:
        accuracy = (network(images).argmax(dim=1) == labels).double().mean().item()
    finally:
        for hook in hooks:
            hook.remove()
    if not scales:  # no attention block: nothing rescales
        return {"accuracy": accuracy, "scale_mean": 1.0, "scale_sd_across_images": 0.0, "slots": 0}
    return {"accuracy": accuracy,
            "scale_mean": statistics.mean(s.mean().item() for s in scales),
            "scale_sd_across_images": statistics.mean(s.std(dim=0).mean().item() for s in scales),
            "slots": len(scales)}


def on_supernet(supernet: Supernet, key: str, images: torch.Tensor, labels: torch.Tensor) -> Dict[str, float]:
    """``activity`` of one genotype inside the supernet, with BN batch statistics as rewards are scored."""
    supernet.train()  # no step is taken
    slots = [m for m in supernet.modules() if isinstance(m, AttentionSlot)]
    return activity(lambda x: supernet(x, from_key(key)), slots, images, labels)


def stand_alone(key: str, data: DatasetSplits, epochs: int, images: torch.Tensor,
                labels: torch.Tensor) -> Dict[str, float]:
    """``activity`` of the genotype's own network trained from scratch at the table's budget (seed 0)."""
    config = StandaloneConfig(epochs=epochs, batch_size=standalone_table.BATCH_SIZE, lr=standalone_table.LR, seed=0,
                              dataset=standalone_table.DATASET, val_every_epoch=False)
    model = seeded_model(config, key, data.num_classes).to(memory_format=torch.channels_last)
    train = data.batches("train", config.batch_size, seed=0, drop_last=True)
    run_epochs(model, train, lambda split: {}, config, progress=True, report=None)
    model.eval()
    blocks = [m for m in model.modules() if isinstance(m, SASEBlock)]
    return {**activity(model, blocks, images, labels), "epochs": epochs}


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a search's run directory (its last checkpoint)")
    parser.add_argument("--images", type=int, default=512, help="validation images (default 512)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--genotype", action="append", default=[], help="also this genotype key")
    parser.add_argument("--standalone", nargs="*", default=[], metavar="NAME",
                        help="also train these known modules stand-alone (seed 0) and measure their own blocks")
    parser.add_argument("--epochs", type=int, default=standalone_table.EPOCHS, help="stand-alone epochs (budget B: 6)")
    parser.add_argument("--out", type=Path, default=RESULTS / "gate_activity.json")
    args = parser.parse_args(argv)
    if not is_run(args.run):
        fail(f"{args.run}: not a search's run directory (no checkpoints/)")
    unknown = sorted(set(args.standalone) - set(KNOWN))
    if unknown:
        fail(f"--standalone {' '.join(unknown)}: not a known module ({', '.join(KNOWN)})")
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    evaluator = evaluator_of(args.run)
    images, labels = next(iter(evaluator.data.batches("val", args.images, shuffle=False,
                                                      memory_format=evaluator.memory_format)))
    keys = {name: genotype.key for name, genotype in KNOWN.items()}
    keys.update({key: from_key(key).key for key in args.genotype})
    rows = {name: {"genotype": key, **on_supernet(evaluator.supernet, key, images, labels)} for name, key in keys.items()}
    alone = {name: {"genotype": KNOWN[name].key, **stand_alone(KNOWN[name].key, evaluator.data, args.epochs, images, labels)}
             for name in args.standalone}
    result = {"benchmark": "gate_activity", "machine": describe_machine(),
              "settings": {"run": str(args.run), "images": len(labels), "supernet_bn": "batch statistics",
                           "standalone": {"epochs": args.epochs, "batch_size": standalone_table.BATCH_SIZE,
                                          "lr": standalone_table.LR, "seed": 0, "bn": "running statistics (eval)",
                                          "data": "the run's dataset and splits"}},
              "supernet": rows, "standalone": alone}
    write_result(args.out, result)
    show_result(result)


if __name__ == "__main__":
    main()
