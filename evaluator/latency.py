"""A per-op latency table, and a genotype's latency predicted from it without running the genotype.

After ProxylessNAS and FBNet: each op of each set is timed alone at every shape an attention slot
of the backbone sees, at batch 1 and at the training batch, on the device and thread count the
search runs with; the plain backbone is timed once. A genotype's predicted latency is the
backbone's plus, for every slot, its four ops and its gating (the sigmoid and the multiply of the
branches it has, under the block's combine rule). Times are milliseconds per image (median of
``repeats`` forward passes), like stage 2's ``latency_ms``.

The table is JSON (``format: sase-latency``, docs/formats.md).

    python -m evaluator.latency [--genotype KEY ...] [--out FILE] [--threads N] [--batch 1 128]
    python -m evaluator.latency --table FILE --genotype srm cbam

measures the table on this machine's CPU (or reads one with ``--table``), prints it in ms per
image and each genotype's predicted latency, part by part; ``--out`` keeps the table.
"""
from __future__ import annotations

import platform
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from evaluator.models import build_model
from evaluator.standalone import latency_ms_per_image
from searchspace import KNOWN, Genotype, attend, from_key, initial_logit, resolve, strict_json
from searchspace.cli import ArgumentParser, positive_int, user_errors_exit_2
from searchspace.known import KNOWN_COMBINE
from searchspace.registry import CHANNEL_EXCITATION, CHANNEL_SQUEEZE, SPATIAL_EXCITATION, SPATIAL_SQUEEZE

FORMAT, VERSION = "sase-latency", 1
BRANCHES = ("channel", "spatial", "both")
COMBINES = ("sequential", "parallel")


class Recorder(nn.Module):
    """An attention slot that records the shape it sees and changes nothing: (B, C, H, W) -> same."""

    def __init__(self, channels: int, seen: List[Tuple[int, int, int]]) -> None:
        super().__init__()
        self.seen = seen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape[1:]))
        return x


class Constant(nn.Module):
    """Returns a fixed tensor whatever its input: a squeeze or excitation whose cost is left out."""

    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value


class Gate(nn.Module):
    """The gating of a block with the given branches, its logits precomputed: (B, C, H, W) -> same."""

    def __init__(self, x: torch.Tensor, branches: str, combine: str) -> None:
        super().__init__()
        b, c, h, w = x.shape
        zeros = dict(device=x.device, dtype=x.dtype)
        channel = (Constant(torch.zeros(b, c, 1, 1, **zeros)), nn.Identity()) if branches != "spatial" else None
        spatial = (Constant(torch.zeros(b, 1, h, w, **zeros)), nn.Identity()) if branches != "channel" else None
        self.channel, self.spatial, self.combine = channel, spatial, combine

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return attend(x, self.channel, self.spatial, self.combine)


def slot_shapes(arch: str, image_size: int, num_classes: int, channels: int = 3) -> List[Tuple[int, int, int]]:
    """The (C, H, W) every attention slot of ``arch`` sees, in forward order."""
    seen: List[Tuple[int, int, int]] = []
    model = build_model(arch, num_classes, attention_layer=lambda c: Recorder(c, seen)).eval()
    with torch.no_grad():
        model(torch.zeros(1, channels, image_size, image_size))
    return seen


def shape_key(*sizes: int) -> str:
    return ",".join(str(s) for s in sizes)


def per_image(module: nn.Module, inputs: torch.Tensor, images: int, repeats: int) -> float:
    """ms per image of ``module`` on ``inputs``, whose first axis may fold several rows per image."""
    return latency_ms_per_image(module, inputs, repeats) * len(inputs) / images


def measure_table(arch: str, image_size: int, num_classes: int, batches: Sequence[int], *, reduction: int = 16,
                  combine: str = "sequential", gate_bias: float = 2.0, repeats: int = 20,
                  channels: int = 3, device: str = "cpu") -> Dict[str, Any]:
    """Time the backbone and every op at every slot shape of ``arch`` on ``device`` (the CPU with
    torch's threads); the caller's random state is left as it was (the modules' init draws from a fork)."""
    with torch.random.fork_rng(devices=[]):
        table = _measure(arch, image_size, num_classes, batches, reduction, combine, gate_bias, repeats, channels,
                         torch.device(device))
    return table


def _measure(arch: str, image_size: int, num_classes: int, batches: Sequence[int], reduction: int, combine: str,
             gate_bias: float, repeats: int, channels: int, device: torch.device) -> Dict[str, Any]:
    slots = slot_shapes(arch, image_size, num_classes, channels)
    options = dict(reduction=reduction, gate_bias=initial_logit(combine, gate_bias))
    ops: Dict[str, Dict[str, Dict[str, Dict[str, float]]]] = {r.decision: {} for r in
                                                               (CHANNEL_SQUEEZE, CHANNEL_EXCITATION,
                                                                SPATIAL_SQUEEZE, SPATIAL_EXCITATION)}
    ops["gate"] = {}
    descriptors_of: Dict[str, int] = {}  # a channel squeeze's descriptors per channel (K)
    maps_of: Dict[str, int] = {}  # a spatial squeeze's maps (S)

    def put(decision: str, op: str, key: str, batch: int, value: float) -> None:
        ops[decision].setdefault(op, {}).setdefault(key, {})[str(batch)] = value

    generator = torch.Generator().manual_seed(0)
    for c, h, w in sorted(set(slots)):
        for batch in batches:
            x = torch.randn(batch, c, h, w, generator=generator).to(device)
            for name in CHANNEL_SQUEEZE.names()[1:]:
                squeeze = CHANNEL_SQUEEZE.build(name, c, **options).to(device).eval()
                put("channel_squeeze", name, shape_key(c, h, w), batch, per_image(squeeze, x, batch, repeats))
                with torch.no_grad():
                    k = descriptors_of[name] = int(squeeze(x).shape[2])
                descriptors = torch.randn(batch * k, c, 1, 1, generator=generator).to(device)
                for excitation in CHANNEL_EXCITATION.names():
                    module = CHANNEL_EXCITATION.build(excitation, c, **options).to(device).eval()
                    put("channel_excitation", excitation, shape_key(c, k), batch,
                        per_image(module, descriptors, batch, repeats))
            for name in SPATIAL_SQUEEZE.names()[1:]:
                squeeze = SPATIAL_SQUEEZE.build(name, c, **options).to(device).eval()
                put("spatial_squeeze", name, shape_key(c, h, w), batch, per_image(squeeze, x, batch, repeats))
                maps_of[name] = int(squeeze.out_channels)
                maps = torch.randn(batch, squeeze.out_channels, h, w, generator=generator).to(device)
                for excitation in SPATIAL_EXCITATION.names():
                    module = SPATIAL_EXCITATION.build(excitation, c, in_channels=squeeze.out_channels,
                                                      **options).to(device).eval()
                    put("spatial_excitation", excitation, shape_key(squeeze.out_channels, h, w), batch,
                        per_image(module, maps, batch, repeats))
            for rule in COMBINES:
                for branches in BRANCHES:
                    put("gate", f"{rule}:{branches}", shape_key(c, h, w), batch,
                        per_image(Gate(x, branches, rule), x, batch, repeats))
    backbone = build_model(arch, num_classes, "none|none|none|none").to(device)
    probe = {b: torch.randn(b, channels, image_size, image_size, generator=generator).to(device) for b in batches}
    return {
        "format": FORMAT, "version": VERSION,
        "device": {"kind": device.type, "threads": torch.get_num_threads(),
                   "processor": torch.cuda.get_device_name(device) if device.type == "cuda"
                   else platform.processor() or platform.machine()},
        "torch": torch.__version__, "arch": arch, "image_size": image_size, "channels": channels,
        "num_classes": num_classes,
        "reduction": reduction, "combine": combine, "batches": [int(b) for b in batches], "repeats": repeats,
        "slots": [list(s) for s in slots], "descriptors": descriptors_of, "maps": maps_of,
        "backbone_ms": {str(b): latency_ms_per_image(backbone, probe[b], repeats) for b in batches},
        "ops": ops,
    }


def predict_parts(table: Dict[str, Any], genotype: Genotype | str, batch: int,
                  combine: Optional[str] = None) -> Dict[str, float]:
    """The parts of a genotype's predicted latency at ``batch`` (ms per image): the backbone, and
    each set's ops and the gating summed over the slots. ``combine`` None: the table's rule (the run's)."""
    g = resolve(genotype)
    rule = combine or table["combine"]
    b = str(batch)
    if b not in table["backbone_ms"]:
        raise ValueError(f"the latency table has batches {', '.join(table['backbone_ms'])}, not {batch}")
    ops = table["ops"]
    parts = {"backbone": table["backbone_ms"][b], "channel_squeeze": 0.0, "channel_excitation": 0.0,
             "spatial_squeeze": 0.0, "spatial_excitation": 0.0, "gate": 0.0}
    branches = "both" if g.has_channel_branch and g.has_spatial_branch else \
        "channel" if g.has_channel_branch else "spatial" if g.has_spatial_branch else None
    for c, h, w in table["slots"]:
        if g.has_channel_branch:
            k = table["descriptors"][g.channel_squeeze]
            parts["channel_squeeze"] += ops["channel_squeeze"][g.channel_squeeze][shape_key(c, h, w)][b]
            parts["channel_excitation"] += ops["channel_excitation"][g.channel_excitation][shape_key(c, k)][b]
        if g.has_spatial_branch:
            maps = table["maps"][g.spatial_squeeze]
            parts["spatial_squeeze"] += ops["spatial_squeeze"][g.spatial_squeeze][shape_key(c, h, w)][b]
            parts["spatial_excitation"] += ops["spatial_excitation"][g.spatial_excitation][shape_key(maps, h, w)][b]
        if branches is not None:
            parts["gate"] += ops["gate"][f"{rule}:{branches}"][shape_key(c, h, w)][b]
    return parts


def predict_ms(table: Dict[str, Any], genotype: Genotype | str, batch: int, combine: Optional[str] = None) -> float:
    """A genotype's predicted latency at ``batch``, ms per image: the sum of its parts."""
    return sum(predict_parts(table, genotype, batch, combine).values())


def write_table(table: Dict[str, Any], path: str) -> None:
    with open(path, "w") as out:
        out.write(strict_json.dumps(table, indent=2) + "\n")


def read_table(path: str) -> Dict[str, Any]:
    """A latency table written by :func:`write_table`; a file that is not one is refused by name."""
    try:
        with open(path) as stream:
            table = strict_json.loads(stream.read())
    except OSError as err:
        raise ValueError(f"{path}: cannot read the latency table ({err.strerror or err})") from None
    if not isinstance(table, dict) or table.get("format") != FORMAT or table.get("version") != VERSION:
        raise ValueError(f"{path}: not a latency table (format {FORMAT!r}, version {VERSION})")
    return table


def check_fits(table: Dict[str, Any], shape: Dict[str, Any], batch: int, source: str) -> None:
    """Refuse a table measured for another network or data shape (``shape``: arch, image_size,
    channels, num_classes, reduction) or without ``batch``: its predictions would be of another model."""
    for key, expected in shape.items():
        if table.get(key) != expected:
            raise ValueError(f"{source}: the latency table was measured for {key} {table.get(key)!r}, "
                             f"the search's network has {expected!r}")
    if batch not in table["batches"]:
        raise ValueError(f"{source}: the latency table has batches {', '.join(map(str, table['batches']))}, "
                         f"the objective predicts at batch {batch}")


def format_table(table: Dict[str, Any]) -> str:
    """The table as a person reads it: ms per image of each op, summed over the slots, per batch."""
    batches = [str(b) for b in table["batches"]]
    lines = [f"latency table: {table['arch']} on {table['image_size']}x{table['image_size']}, {table['device']['processor']}, "
             f"{table['device']['threads']} threads, torch {table['torch']}; ms per image, summed over "
             f"{len(table['slots'])} slots; batches {', '.join(batches)}",
             f"  {'backbone':<36}" + "".join(f"{table['backbone_ms'][b]:>10.3f}" for b in batches)]
    slots = [shape_key(*s) for s in table["slots"]]
    for decision, by_op in table["ops"].items():
        for op, by_shape in by_op.items():
            if decision in ("channel_excitation", "spatial_excitation"):
                continue  # their shape depends on the squeeze; the predictions show them
            sums = [sum(by_shape[key][b] for key in slots) for b in batches]
            lines.append(f"  {decision + ' ' + op:<36}" + "".join(f"{v:>10.3f}" for v in sums))
    return "\n".join(lines)


def parse(argv: Optional[List[str]]) -> Any:
    parser = ArgumentParser(prog="python -m evaluator.latency", description=__doc__.splitlines()[0])
    parser.add_argument("--genotype", nargs="+", default=[], metavar="KEY", help="known names or genotype keys")
    parser.add_argument("--table", metavar="FILE", help="read this table instead of measuring one")
    parser.add_argument("--out", metavar="FILE", help="write the measured table here (JSON)")
    parser.add_argument("--arch", default="resnet20")
    parser.add_argument("--image-size", type=positive_int, default=32)
    parser.add_argument("--classes", type=positive_int, default=32,
                        help="classes (default 32: the bundled styled-glyphs)")
    parser.add_argument("--channels", type=positive_int, default=3, help="image channels (default 3)")
    parser.add_argument("--reduction", type=positive_int, default=16, help="the excitation MLPs' reduction")
    parser.add_argument("--batch", type=positive_int, nargs="+", default=[1, 128], help="batch sizes (default 1 128)")
    parser.add_argument("--threads", type=positive_int, help="torch threads (default: torch's)")
    parser.add_argument("--repeats", type=positive_int, default=20)
    return parser.parse_args(argv)


@user_errors_exit_2
def main(argv: Optional[List[str]] = None) -> int:
    args = parse(argv)
    keys = {text: KNOWN[text].key if text in KNOWN else from_key(text).key for text in args.genotype}
    if args.table:
        table = read_table(args.table)
    else:
        if args.threads:
            torch.set_num_threads(args.threads)
        table = measure_table(args.arch, args.image_size, args.classes, args.batch, repeats=args.repeats,
                              reduction=args.reduction, channels=args.channels)
        if args.out:
            write_table(table, args.out)
    print(format_table(table))
    for text, key in keys.items():
        for batch in table["batches"]:
            parts = predict_parts(table, key, batch, KNOWN_COMBINE.get(text))
            detail = ", ".join(f"{name} {value:.3f}" for name, value in parts.items() if value)
            print(f"{text} at batch {batch}: {sum(parts.values()):.3f} ms per image ({detail})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
