"""Controller presets against random sampling on synthetic reward tables the size of the SASE space.

Each seed draws one landscape: every canonical genotype gets main effects per decision plus pairwise
interactions between all decisions (Gaussian), scaled to accuracies in [0.6, 0.9]. Each candidate
searches it with noisy rewards (Gaussian, sd ``--noise``) for ``--samples`` samples; we track the
best-found regret (the best *true* reward among the genotypes sampled so far, against the optimum)
and the first sample that hits a top-1% genotype. Random sampling draws from the same stream of
seeds. Reported per noise level and budget: the area under the regret curve over random's (pooled
mean over seeds, and the median of per-seed ratios), and the median samples to a top-1% genotype
(a run that never hits counts as budget + 1).

    python benchmarks/controller_landscapes.py --seeds 20 --samples 1000 \\
        --candidate enas=enas --candidate fast=enas:lr=0.1,baseline=batch_mean,tanh_constant=None
"""
from __future__ import annotations

import argparse
import ast
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

# Run as a script from a checkout: the packages sit one level up, installed or not.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller.policy import NONE, Decision, DecisionSpace, LSTMPolicy  # noqa: E402
from controller.presets import ControllerConfig, preset  # noqa: E402
from controller.random_policy import RandomPolicy  # noqa: E402
from controller.reinforce import Reinforce  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
FALLBACK_SIZES = (8, 7, 6, 6)
TOP_FRACTION = 0.01


def search_space() -> Tuple[DecisionSpace, str]:
    """The registries' sizes when they are populated, else 8x7x6x6; genotypes as index tuples."""
    try:
        real = DecisionSpace.sase()
        if min(real.sizes) > 1:
            return DecisionSpace(real.decisions), "registries"
    except ImportError:
        pass
    names = ("channel_squeeze", "channel_excitation", "spatial_squeeze", "spatial_excitation")
    branch_of = (None, names[0], None, names[2])
    decisions = [
        Decision(n, (NONE,) + tuple(f"op{i}" for i in range(1, k)), b)
        for n, k, b in zip(names, FALLBACK_SIZES, branch_of)
    ]
    return DecisionSpace(decisions), "fallback 8x7x6x6"


@dataclass
class Landscape:
    """True rewards of every raw index tuple (moot choices resolve to their canonical genotype)."""

    table: torch.Tensor  # (prod(sizes),) float64
    strides: torch.Tensor  # (D,)
    best: float
    top_threshold: float  # the reward a top-1% canonical genotype reaches

    def reward(self, indices: torch.Tensor) -> torch.Tensor:
        """(n, D) -> (n,) true rewards."""
        return self.table[(indices * self.strides).sum(dim=1)]


def synthetic_landscape(space: DecisionSpace, seed: int, interaction: float) -> Landscape:
    g = torch.Generator().manual_seed(seed)
    sizes = space.sizes
    every = space.all_indices()
    score = torch.zeros(len(every), dtype=torch.float64)
    for d, k in enumerate(sizes):
        score += torch.randn(k, generator=g, dtype=torch.float64)[every[:, d]]
        for e in range(d + 1, len(sizes)):
            pair = interaction * torch.randn(k, sizes[e], generator=g, dtype=torch.float64)
            score += pair[every[:, d], every[:, e]]
    rewards = 0.6 + 0.3 * (score - score.min()) / (score.max() - score.min())

    strides = torch.tensor([math.prod(sizes[d + 1:]) for d in range(len(sizes))])
    raw = torch.cartesian_prod(*(torch.arange(k) for k in sizes)).reshape(-1, len(sizes))
    row_of = {tuple(row): i for i, row in enumerate(every.tolist())}
    table = rewards[[row_of[tuple(r)] for r in space.canonicalise(raw).tolist()]]
    top_count = max(1, math.ceil(TOP_FRACTION * len(every)))
    return Landscape(table, strides, rewards.max().item(), rewards.topk(top_count).values[-1].item())


def search(space: DecisionSpace, config: Optional[ControllerConfig], landscape: Landscape, samples: int,
           noise: float, seed: int) -> torch.Tensor:
    """True rewards (samples,) of the genotypes a candidate draws, in order; config None: random."""
    init, draws, noise_rng = (torch.Generator().manual_seed(seed * 3 + i) for i in range(3))
    batch = config.samples_per_update if config is not None else 10
    policy = LSTMPolicy.from_config(space, config, init) if config is not None else RandomPolicy(space)
    learner = Reinforce(policy, config) if config is not None else None
    found: List[torch.Tensor] = []
    while sum(len(f) for f in found) < samples:
        indices = policy.sample(batch, draws).indices
        true = landscape.reward(indices)
        found.append(true)
        if learner is not None:
            learner.update(indices, true + noise * torch.randn(len(true), generator=noise_rng, dtype=torch.float64))
    return torch.cat(found)[:samples]


def summarise(runs: Sequence[torch.Tensor], random_runs: Sequence[torch.Tensor], landscapes: Sequence[Landscape],
              budget: int) -> Dict[str, float]:
    """Area-under-regret ratios and samples to a top-1% genotype over seeds, at one budget."""
    def area(run, landscape):
        return (landscape.best - run[:budget].cummax(dim=0).values).sum().item()

    def hit(run, landscape):
        hits = (run[:budget] >= landscape.top_threshold).nonzero()
        return hits[0].item() + 1 if len(hits) else budget + 1

    areas = torch.tensor([area(r, l) for r, l in zip(runs, landscapes)])
    random_areas = torch.tensor([area(r, l) for r, l in zip(random_runs, landscapes)])
    hits = torch.tensor([hit(r, l) for r, l in zip(runs, landscapes)], dtype=torch.float64)
    random_hits = torch.tensor([hit(r, l) for r, l in zip(random_runs, landscapes)], dtype=torch.float64)
    return {
        "area_ratio": (areas.mean() / random_areas.mean()).item(),
        "area_ratio_median_per_seed": (areas / random_areas).median().item(),
        "samples_to_top1": hits.median().item(),
        "random_samples_to_top1": random_hits.median().item(),
        "samples_to_top1_ratio": (hits.median() / random_hits.median()).item(),
        "hit_rate": (hits <= budget).double().mean().item(),
        "final_regret": sum(l.best - r[:budget].max().item() for r, l in zip(runs, landscapes)) / len(runs),
    }


def parse_candidate(text: str) -> Tuple[str, Optional[ControllerConfig]]:
    """``name=preset[:field=value,...]``; the preset ``random`` is the random policy."""
    name, _, spec = text.partition("=")
    base, _, overrides = spec.partition(":")
    if base == "random":
        return name, None
    values = {}
    for item in filter(None, overrides.split(",")):
        key, _, value = item.partition("=")
        try:
            values[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            values[key] = value
    return name, preset(base, **values)


def machine() -> Dict[str, object]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0, help="landscapes first_seed .. first_seed + seeds - 1")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--budgets", type=int, nargs="+", default=[200, 500, 1000])
    parser.add_argument("--noise", type=float, nargs="+", default=[0.01, 0.03])
    parser.add_argument("--interaction", type=float, default=0.5, help="sd of pairwise terms, main effects' sd 1")
    parser.add_argument("--candidate", action="append", default=[], help="name=preset[:field=value,...]")
    parser.add_argument("--out", type=Path, default=RESULTS / "controller_landscapes.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    space, space_source = search_space()
    candidates = dict(parse_candidate(c) for c in (args.candidate or ["enas=enas"]))
    budgets = [b for b in args.budgets if b <= args.samples]
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    landscapes = [synthetic_landscape(space, seed, args.interaction) for seed in seeds]
    results: Dict[str, Dict[str, object]] = {}
    started = time.perf_counter()
    for noise in args.noise:
        random_runs = [search(space, None, l, args.samples, noise, s) for s, l in zip(seeds, landscapes)]
        for name, config in candidates.items():
            clock = time.perf_counter()
            runs = [search(space, config, l, args.samples, noise, s) for s, l in zip(seeds, landscapes)]
            row = {str(b): summarise(runs, random_runs, landscapes, b) for b in budgets}
            results.setdefault(name, {"config": None if config is None else config.to_dict()})[f"noise={noise}"] = {
                **row, "seconds": time.perf_counter() - clock
            }
            last = row[str(budgets[-1])]
            print(f"noise {noise} {name:>24}: area ratio {last['area_ratio']:.3f}  "
                  f"top-1% after {last['samples_to_top1']:.0f} (random {last['random_samples_to_top1']:.0f})  "
                  f"at {budgets[-1]} samples", flush=True)

    report = {
        "benchmark": "controller_landscapes",
        "machine": machine(),
        "settings": {
            "space": space_source, "sizes": list(space.sizes), "canonical_genotypes": len(space.all_indices()),
            "seeds": list(seeds), "samples": args.samples, "budgets": budgets, "noise": args.noise,
            "interaction": args.interaction, "top_fraction": TOP_FRACTION, "random_batch": 10,
        },
        "results": results,
        "seconds": time.perf_counter() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
