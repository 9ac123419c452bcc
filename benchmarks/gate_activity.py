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
        [--genotype KEY ...] [--out results/gate_activity.json]

The known modules are always measured; ``--genotype`` adds others by key.
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from common import RESULTS, fail, show_result, write_result  # first: the import path

import torch  # noqa: E402

from evaluator.supernet import AttentionSlot, Supernet  # noqa: E402
from evaluator.worker import Evaluator  # noqa: E402
from machine import describe_machine  # noqa: E402
from rundir import RunDir  # noqa: E402
from search.config import SearchConfig, build  # noqa: E402
from searchspace import KNOWN, from_key  # noqa: E402


def channel_scales(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) input and output of a block -> (B, C) the scale it applied to each channel."""
    return (y * x).sum(dim=(2, 3)) / (x * x).sum(dim=(2, 3)).clamp_min(1e-12)


@torch.no_grad()
def activity(supernet: Supernet, key: str, images: torch.Tensor, labels: torch.Tensor) -> Dict[str, float]:
    """One genotype's accuracy on ``images`` and its blocks' scales (module docstring)."""
    scales: List[torch.Tensor] = []
    slots = [m for m in supernet.modules() if isinstance(m, AttentionSlot)]
    hooks = [slot.register_forward_hook(lambda _, inputs, output: scales.append(channel_scales(inputs[0], output)))
             for slot in slots]
    try:
        accuracy = (supernet(images, from_key(key)).argmax(dim=1) == labels).double().mean().item()
    finally:
        for hook in hooks:
            hook.remove()
    return {"accuracy": accuracy,
            "scale_mean": statistics.mean(s.mean().item() for s in scales),
            "scale_sd_across_images": statistics.mean(s.std(dim=0).mean().item() for s in scales),
            "slots": len(scales)}


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a search's run directory (its last checkpoint)")
    parser.add_argument("--images", type=int, default=512, help="validation images (default 512)")
    parser.add_argument("--genotype", action="append", default=[], help="also this genotype key")
    parser.add_argument("--out", type=Path, default=RESULTS / "gate_activity.json")
    args = parser.parse_args(argv)
    if not (args.run / "checkpoints").is_dir():
        fail(f"{args.run}: not a search's run directory (no checkpoints/)")
    torch.manual_seed(0)
    torch.set_num_threads(1)
    rundir = RunDir(str(args.run))
    config = build(SearchConfig, rundir.read_config()).evaluator
    evaluator = Evaluator(config)
    evaluator.supernet.load_state_dict(rundir.load_checkpoint()["shared"]["weights"])
    evaluator.supernet.train()  # batch statistics, as a reward is scored; no step is taken
    images, labels = next(iter(evaluator.data.batches("val", args.images, shuffle=False,
                                                      memory_format=evaluator.memory_format)))
    keys = {name: genotype.key for name, genotype in KNOWN.items()}
    keys.update({key: from_key(key).key for key in args.genotype})
    rows = {name: {"genotype": key, **activity(evaluator.supernet, key, images, labels)} for name, key in keys.items()}
    result = {"benchmark": "gate_activity", "machine": describe_machine(),
              "settings": {"run": str(args.run), "images": len(labels), "bn": "batch statistics"},
              "genotypes": rows}
    write_result(args.out, result)
    show_result(result)


if __name__ == "__main__":
    main()
