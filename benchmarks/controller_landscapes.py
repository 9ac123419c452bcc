"""Controllers against random sampling on reward landscapes over the SASE space.

Landscapes. ``synthetic``: each seed draws one table; every canonical genotype gets main effects per
decision plus pairwise interactions between all decisions (Gaussian, sd ``--interaction``), scaled
to accuracies in [0.6, 0.9]. A Parquet path (columns ``genotype``, a key string, and
``val_accuracy``): the exhaustive supernet landscape, the same table for every seed; a genotype
missing from it (a subset table) or without an accuracy gets the table's minimum, so it is never a
top-1% genotype. ``--landscape-reward likelihood``: a genotype is worth ``exp(-val_loss)`` instead,
the reward of ``evaluator.reward_metric: likelihood``.

Each candidate searches with noisy rewards for ``--samples`` samples: true reward + Gaussian of sd
``--noise`` per sample + Gaussian of sd ``--round-noise`` shared by the samples of one update
batch (a round scored on common validation images: the images' difficulty moves every sample of
the round alike, and a batch-mean baseline cancels it; an EMA baseline does not). Issue 15 measured
both parts on the default search's supernets (``reward_fidelity.json``): two genotypes' rewards on
the same 256 images differ with sd 1.81 points, i.e. 1.28 per sample, and one genotype's reward
moves 2.82 from round to round, i.e. a shared part of sqrt(2.82^2 - 1.28^2) = 2.51.

We track the best-found regret (the best *true* reward among the genotypes sampled so far,
against the optimum) and the first sample that hits a top-1% genotype. The reference is random
sampling, ``--random-repeats`` runs per seed. Reported per landscape, noise
level and budget: the area under the regret curve over random's (pooled mean over seeds, and the
median of per-seed ratios), and the median samples to a top-1% genotype (a run that never hits
counts as budget + 1). Per landscape also: how many top-1% genotypes have an absent branch, and how
likely one random draw hits top-1%.

    python benchmarks/controller_landscapes.py --seeds 20 --samples 1000 \\
        --candidate enas=enas --candidate fast=enas:lr=0.1,baseline=batch_mean,tanh_constant=None \\
        --candidate ppo=ppo/sase:ppo_epochs=4
    python benchmarks/controller_landscapes.py --ablation --first-seed 100 --interaction 0.5 1.0 \\
        --landscape synthetic --landscape benchmarks/results/supernet_landscape.parquet
    python benchmarks/controller_landscapes.py --table benchmarks/results/controller_ablation.json
"""
from __future__ import annotations

import argparse
import ast
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # common and machine, also when imported from elsewhere
from common import RESULTS, fail, repository_path, write_result  # noqa: E402
from controller.policy import DecisionSpace, LSTMPolicy  # noqa: E402
from controller.ppo import PPO  # noqa: E402
from controller.presets import ControllerConfig, preset  # noqa: E402
from controller.random_policy import RandomPolicy  # noqa: E402
from controller.reinforce import Reinforce  # noqa: E402
from evaluator.training import metric_value  # noqa: E402

TOP_FRACTION = 0.01
UPDATE_BATCH = 10  # genotypes per controller update (a search's samples_per_round), the random policy's too
LEARNERS = {"rl": Reinforce, "ppo": PPO}
# The ablation's rows: ENAS's preset, ours, ours trained by PPO, and the baseline (see README).
ABLATION = ("enas=rl/enas", "sase=rl/sase", "ppo=ppo/sase", "random=random")


def search_space() -> Tuple[DecisionSpace, str]:
    """The SASE space from the op registries, its genotypes as index tuples."""
    return DecisionSpace(DecisionSpace.sase().decisions), "registries"


@dataclass
class Landscape:
    """True rewards of every canonical genotype, and a lookup for raw index tuples."""

    every: torch.Tensor  # (N, D) canonical indices
    rewards: torch.Tensor  # (N,) float64
    table: torch.Tensor  # (prod(sizes),) float64, moot choices resolved to their canonical genotype
    strides: torch.Tensor  # (D,)
    best: float
    top_threshold: float  # the reward a top-1% canonical genotype reaches

    def reward(self, indices: torch.Tensor) -> torch.Tensor:
        """(n, D) -> (n,) true rewards."""
        return self.table[(indices * self.strides).sum(dim=1)]


def landscape_of(space: DecisionSpace, rewards: torch.Tensor, top_count: Optional[int] = None) -> Landscape:
    """(N,) rewards in the order of ``space.all_indices()`` -> a Landscape; top-1% of N by default."""
    sizes = space.sizes
    every = space.all_indices()
    strides = torch.tensor([math.prod(sizes[d + 1:]) for d in range(len(sizes))])
    raw = torch.cartesian_prod(*(torch.arange(k) for k in sizes)).reshape(-1, len(sizes))
    row_of = {tuple(row): i for i, row in enumerate(every.tolist())}
    table = rewards[[row_of[tuple(r)] for r in space.canonicalise(raw).tolist()]]
    top_count = top_count or max(1, math.ceil(TOP_FRACTION * len(every)))
    return Landscape(every, rewards, table, strides, rewards.max().item(), rewards.topk(top_count).values[-1].item())


def synthetic_landscape(space: DecisionSpace, seed: int, interaction: float) -> Landscape:
    g = torch.Generator().manual_seed(seed)
    every = space.all_indices()
    score = torch.zeros(len(every), dtype=torch.float64)
    for d, k in enumerate(space.sizes):
        score += torch.randn(k, generator=g, dtype=torch.float64)[every[:, d]]
        for e in range(d + 1, len(space.sizes)):
            pair = interaction * torch.randn(k, space.sizes[e], generator=g, dtype=torch.float64)
            score += pair[every[:, d], every[:, e]]
    return landscape_of(space, 0.6 + 0.3 * (score - score.min()) / (score.max() - score.min()))


def parquet_landscape(space: DecisionSpace, path: Path, reward: str = "accuracy") -> Tuple[Landscape, Dict[str, object]]:
    """The table's val_accuracy per genotype key (``reward`` "likelihood": ``exp(-val_loss)``, the
    reward of ``evaluator.reward_metric: likelihood``); genotypes it lacks get its minimum (module docstring)."""
    import pandas as pd

    column = "val_accuracy" if reward == "accuracy" else "val_loss"
    frame = pd.read_parquet(path, columns=["genotype", column]).dropna().astype({column: float})
    accuracy = dict(zip(frame["genotype"], metric_value(frame.get("val_accuracy"), frame.get("val_loss"), reward)))
    keys = ["|".join(d.options[i] for d, i in zip(space.decisions, row)) for row in space.all_indices().tolist()]
    unknown = set(accuracy) - set(keys)
    if unknown:
        raise ValueError(f"{path}: {len(unknown)} genotypes are not canonical genotypes of the space, e.g. {min(unknown)}")
    floor = min(accuracy.values())
    rewards = torch.tensor([accuracy.get(k, floor) for k in keys], dtype=torch.float64)
    # Top-1% of the genotypes the table scored: the filled-in ones are not candidates.
    landscape = landscape_of(space, rewards, max(1, math.ceil(TOP_FRACTION * len(accuracy))))
    return landscape, {"path": repository_path(path), "reward": reward,
                       "genotypes_in_table": len(accuracy), "filled_with_minimum": len(keys) - len(accuracy)}


@dataclass(frozen=True)
class Candidate:
    """A policy and its learner: ``learner`` rl (REINFORCE), ppo, or random (``config`` None);
    ``batch`` genotypes per update (a search's samples_per_round)."""

    learner: str
    config: Optional[ControllerConfig]
    batch: int = UPDATE_BATCH


def search(space: DecisionSpace, candidate: Candidate, landscape: Landscape, samples: int, noise: float,
           seed: int, round_noise: float = 0.0) -> torch.Tensor:
    """True rewards (samples,) of the genotypes a candidate draws, in order.

    The learner sees each true reward plus per-sample noise (sd ``noise``) plus one draw per batch
    (sd ``round_noise``) shared by the whole batch.
    """
    init, draws, noise_rng = (torch.Generator().manual_seed(seed * 3 + i) for i in range(3))
    config = candidate.config
    if config is None:
        policy, learner, batch = RandomPolicy(space), None, UPDATE_BATCH
    else:
        policy = LSTMPolicy.from_config(space, config, init)
        learner, batch = LEARNERS[candidate.learner](policy, config), candidate.batch
    found: List[torch.Tensor] = []
    while sum(len(f) for f in found) < samples:
        indices = policy.sample(batch, draws).indices
        true = landscape.reward(indices)
        found.append(true)
        if learner is not None:
            seen = true + noise * torch.randn(len(true), generator=noise_rng, dtype=torch.float64)
            if round_noise:  # drawn only when asked, so runs without it keep their random streams
                seen = seen + round_noise * torch.randn(1, generator=noise_rng, dtype=torch.float64)
            learner.update(indices, seen)
    return torch.cat(found)[:samples]


def regret_area(run: torch.Tensor, best: float, budget: int) -> float:
    """Area under the regret curve of the first ``budget`` samples: sum of (best - best found so far)."""
    return (best - run[:budget].cummax(dim=0).values).sum().item()


def samples_to_top(run: torch.Tensor, threshold: float, budget: int) -> int:
    """How many samples it took to draw one at or above ``threshold`` (1-based); ``budget + 1`` if none."""
    hits = (run[:budget] >= threshold).nonzero()
    return hits[0].item() + 1 if len(hits) else budget + 1


def summarise(runs: Sequence[torch.Tensor], random_runs: Sequence[Sequence[torch.Tensor]],
              landscapes: Sequence[Landscape], budget: int) -> Dict[str, float]:
    """Area-under-regret ratios and samples to a top-1% genotype over seeds, at one budget.

    ``random_runs`` holds several random runs per landscape: random's samples to a top-1% genotype
    are geometric, and the median of 20 of them is too noisy to divide by (it varied 2x between
    seed sets), so random's area is the mean over its repeats and its median pools them all.
    """
    def area(run, landscape):
        return regret_area(run, landscape.best, budget)

    def hit(run, landscape):
        return samples_to_top(run, landscape.top_threshold, budget)

    areas = torch.tensor([area(r, l) for r, l in zip(runs, landscapes)])
    random_areas = torch.tensor([sum(area(r, l) for r in rs) / len(rs) for rs, l in zip(random_runs, landscapes)])
    hits = torch.tensor([hit(r, l) for r, l in zip(runs, landscapes)], dtype=torch.float64)
    random_hits = torch.tensor([hit(r, l) for rs, l in zip(random_runs, landscapes) for r in rs], dtype=torch.float64)
    return {
        "area_ratio": (areas.mean() / random_areas.mean()).item(),
        "area_ratio_median_per_seed": (areas / random_areas).median().item(),
        "samples_to_top1": hits.median().item(),
        "random_samples_to_top1": random_hits.median().item(),
        "samples_to_top1_ratio": (hits.median() / random_hits.median()).item(),
        "hit_rate": (hits <= budget).double().mean().item(),
        "final_regret": sum(l.best - r[:budget].max().item() for r, l in zip(runs, landscapes)) / len(runs),
    }


def top_genotype_odds(space: DecisionSpace, landscapes: Sequence[Landscape]) -> Dict[str, float]:
    """Why random sampling is hard to beat here: per landscape, the share of top-1% genotypes with an
    absent branch and the chance that one draw hits a top-1% genotype, per-decision uniform (our
    random policy) and uniform over canonical genotypes; means over the landscapes."""
    uniform = RandomPolicy(space)
    parents = [parent_none for parent_none in {(p, none) for p, none, _ in space.branches.values()}]
    shares, per_decision, per_genotype = [], [], []
    for landscape in landscapes:
        top = landscape.every[landscape.rewards >= landscape.top_threshold]
        absent = torch.zeros(len(top), dtype=torch.bool)
        for parent, none in parents:
            absent |= top[:, parent] == none
        shares.append(absent.double().mean().item())
        per_decision.append(uniform.log_prob(top).exp().sum().item())
        per_genotype.append(len(top) / len(landscape.every))
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    return {
        "top1_genotypes": mean([float((l.rewards >= l.top_threshold).sum()) for l in landscapes]),
        "top1_with_absent_branch": mean(shares),
        "random_draw_hits_top1": mean(per_decision),
        "uniform_genotype_hits_top1": mean(per_genotype),
        "random_median_draws_to_top1": mean([math.log(0.5) / math.log1p(-p) for p in per_decision]),
        "uniform_genotype_median_draws_to_top1": mean([math.log(0.5) / math.log1p(-p) for p in per_genotype]),
    }


def parse_candidate(text: str) -> Tuple[str, Candidate]:
    """``name=[learner/]preset[:field=value,...]``, learner rl (default) or ppo; preset ``random``.
    The field ``samples_per_update`` (a controller field when the stored results were measured) is
    the candidate's batch; the others are the preset's."""
    name, _, spec = text.partition("=")
    base, _, overrides = spec.partition(":")
    learner, _, base = base.rpartition("/")
    if base == "random":
        return name, Candidate("random", None)
    if (learner or "rl") not in LEARNERS:
        fail(f"{text}: learner must be one of {', '.join(LEARNERS)}")
    values = {}
    for item in filter(None, overrides.split(",")):
        key, _, value = item.partition("=")
        try:
            values[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            values[key] = value
    batch = values.pop("samples_per_update", UPDATE_BATCH)
    return name, Candidate(learner or "rl", preset(base, **values), batch)


def landscape_families(space: DecisionSpace, sources: Sequence[str], seeds: Sequence[int],
                       interactions: Sequence[float], reward: str = "accuracy"
                       ) -> Dict[str, Tuple[List[Landscape], Dict[str, object]]]:
    """name -> (one landscape per seed, what it is); a missing Parquet file is skipped, and said so.
    ``reward``: what a Parquet landscape's genotypes are worth (:func:`parquet_landscape`)."""
    families: Dict[str, Tuple[List[Landscape], Dict[str, object]]] = {}
    for source in sources:
        if source == "synthetic":
            for interaction in interactions:
                landscapes = [synthetic_landscape(space, seed, interaction) for seed in seeds]
                families[f"synthetic, interaction {interaction}"] = (
                    landscapes, {"kind": "synthetic", "interaction": interaction, "one_table_per_seed": True})
        elif Path(source).exists():
            landscape, about = parquet_landscape(space, Path(source), reward)
            name = Path(source).stem + ("" if reward == "accuracy" else f" ({reward})")
            families[name] = ([landscape] * len(seeds), {"kind": "parquet", **about})
        else:
            print(f"skipped {source}: no such file", flush=True)
    return families


def run(space: DecisionSpace, candidates: Dict[str, Candidate], landscapes: Sequence[Landscape], seeds: Sequence[int],
        samples: int, budgets: Sequence[int], noises: Sequence[float], label: str,
        random_repeats: int, round_noise: float = 0.0) -> Dict[str, Dict[str, object]]:
    """Every candidate on one family of landscapes: {candidate: {noise=x: {budget: summary}}}.

    A ``random`` candidate is one random run per seed (the first of the reference's repeats), so
    its ratios show how far 20 seeds of random sampling stray from the reference."""
    results: Dict[str, Dict[str, object]] = {}
    baseline = Candidate("random", None)
    for noise in noises:
        random_runs = [[search(space, baseline, l, samples, noise, s + 100_000 * r) for r in range(random_repeats)]
                       for s, l in zip(seeds, landscapes)]
        for name, candidate in candidates.items():
            clock = time.perf_counter()
            runs = [search(space, candidate, l, samples, noise, s, round_noise) for s, l in zip(seeds, landscapes)]
            row = {str(b): summarise(runs, random_runs, landscapes, b) for b in budgets}
            entry = results.setdefault(name, {
                "learner": candidate.learner, "batch": candidate.batch,
                "config": None if candidate.config is None else candidate.config.to_dict()})
            entry[f"noise={noise}"] = {**row, "seconds": time.perf_counter() - clock}
            last = row[str(budgets[-1])]
            print(f"{label} | noise {noise} {name:>16}: area ratio {last['area_ratio']:.3f}  "
                  f"top-1% after {last['samples_to_top1']:.0f} (random {last['random_samples_to_top1']:.0f})  "
                  f"at {budgets[-1]} samples", flush=True)
    return results


def markdown_table(report: Dict[str, object]) -> str:
    """The README's ablation table: one row per landscape, noise and candidate."""
    budgets = report["settings"]["budgets"]
    head = ["landscape", "noise", "controller"] + [f"area ratio @{b}" for b in budgets] + [
        f"samples to top-1% @{b} (x random)" for b in budgets]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for family, block in report["landscapes"].items():
        for noise in report["settings"]["noise"]:
            for name, result in block["results"].items():
                row = [result[f"noise={noise}"][str(b)] for b in budgets]
                cells = [family, str(noise), name] + [f"{r['area_ratio']:.2f}" for r in row] + [
                    f"{r['samples_to_top1']:.0f} ({r['samples_to_top1_ratio']:.2f}x)" for r in row]
                lines.append("| " + " | ".join(cells) + " |")
    odds = ["", "| landscape | top-1% genotypes | with an absent branch | one random draw hits top-1% | "
            "median random draws to top-1% | same, uniform over genotypes |", "| --- | --- | --- | --- | --- | --- |"]
    for family, block in report["landscapes"].items():
        o = block["top1_odds"]
        odds.append(f"| {family} | {o['top1_genotypes']:.0f} | {100 * o['top1_with_absent_branch']:.0f}% | "
                    f"{100 * o['random_draw_hits_top1']:.2f}% | {o['random_median_draws_to_top1']:.0f} | "
                    f"{o['uniform_genotype_median_draws_to_top1']:.0f} |")
    return "\n".join(lines + odds)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first_seed .. first_seed + seeds - 1")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--budgets", type=int, nargs="+", default=[200, 500, 1000])
    parser.add_argument("--noise", type=float, nargs="+", default=[0.01, 0.03], help="sd of each sample's own noise")
    parser.add_argument("--round-noise", type=float, default=0.0,
                        help="sd of a noise shared by the samples of one update batch (common reward images)")
    parser.add_argument("--landscape", action="append", default=[], help="synthetic (default) or a Parquet path")
    parser.add_argument("--landscape-reward", choices=["accuracy", "likelihood"], default="accuracy",
                        help="a Parquet landscape's reward: val_accuracy (default) or exp(-val_loss), the likelihood reward")
    parser.add_argument("--interaction", type=float, nargs="+", default=[0.5], help="synthetic: sd of pairwise terms")
    parser.add_argument("--candidate", action="append", default=[], help="name=[learner/]preset[:field=value,...]")
    parser.add_argument("--random-repeats", type=int, default=10, help="random runs per seed for the reference")
    parser.add_argument("--ablation", action="store_true", help=f"the README's candidates: {', '.join(ABLATION)}")
    parser.add_argument("--table", type=Path, help="print the markdown table of a result file and exit")
    parser.add_argument("--out", type=Path, help="default: results/controller_ablation.json with --ablation, "
                                                 "else results/controller_landscapes.json")
    args = parser.parse_args(argv)
    if args.table is not None:
        print(markdown_table(json.loads(args.table.read_text())))
        return 0
    torch.set_num_threads(1)
    from machine import describe_machine

    space, space_source = search_space()
    specs = list(ABLATION) if args.ablation else (args.candidate or ["enas=enas"])
    candidates = dict(parse_candidate(c) for c in specs)
    budgets = [b for b in args.budgets if b <= args.samples]
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    families = landscape_families(space, args.landscape or ["synthetic"], seeds, args.interaction, args.landscape_reward)
    started = time.perf_counter()
    blocks = {}
    for family, (landscapes, about) in families.items():
        blocks[family] = {**about, "top1_odds": top_genotype_odds(space, landscapes[:1] if about["kind"] == "parquet"
                                                                  else landscapes),
                          "results": run(space, candidates, landscapes, seeds, args.samples, budgets, args.noise, family,
                                         args.random_repeats, args.round_noise)}
    report = {
        "benchmark": "controller_ablation" if args.ablation else "controller_landscapes",
        "machine": describe_machine(),
        "settings": {
            "space": space_source, "sizes": list(space.sizes), "canonical_genotypes": len(space.all_indices()),
            "seeds": seeds, "samples": args.samples, "budgets": budgets, "noise": args.noise,
            "round_noise": args.round_noise,
            "top_fraction": TOP_FRACTION, "random_batch": UPDATE_BATCH, "candidates": specs,
            "random_repeats_per_seed": args.random_repeats,
        },
        "landscapes": blocks,
        "seconds": time.perf_counter() - started,
    }
    out = args.out or RESULTS / ("controller_ablation.json" if args.ablation else "controller_landscapes.json")
    write_result(out, report)
    print(f"wrote {out}")
    if args.ablation:
        print(markdown_table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
