"""How many test images the stand-alone ground truth needs: its ceiling measured on subsets of one test split.

A stand-alone table's seed-against-seed tau is limited by the genotype x seed noise, and part of
that noise is which test images were drawn. With each run's network kept (``standalone_table.py
--weights DIR``), every network is scored image by image on the table's test split once; then the
split is cut into disjoint blocks of n images and, for each n, the table's seed tau and interaction
sd are measured on every block. So the curve is measured, not modelled: the same networks, only the
number of images changes. Where it flattens, more images no longer help and the rest of the noise
is the training's.

    python benchmarks/test_size_curve.py --table benchmarks/results/standalone_table_12ep_test20k.parquet \
        --weights benchmarks/runs/standalone_12ep_test20k

Writes ``<table>_test_size_curve.json`` (per n: blocks, seed tau mean and sd over blocks, interaction
sd; and ``fit``: the interaction variance split as network + images / n over the block sizes, with
what it leaves at 2x, 5x and infinitely many images, so that a larger split is chosen or skipped
by measurement), a plot beside it (``.png``), and caches the per-image correctness as ``<table>_per_image.parquet``
(one row per run, its test images' correctness packed as bits), so that a re-plot scores nothing.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from common import fail, write_result  # first: sets the import path
from evaluator.data import load_dataset
from evaluator.standalone import correct_per_image, load_network
from machine import describe_machine
from measures import model_tau, seed_noise, seed_tau
from standalone_table import load_table, require_kept, weights_file, write_table

SIZES = (250, 500, 1000, 2000, 5000, 10000, 20000)


def per_image(table: pd.DataFrame, weights: Path, cache: Path, threads: int) -> pd.DataFrame:
    """One row per run (name, genotype, seed, images, bits): cached, each run checked against its table row."""
    done = pd.read_parquet(cache) if cache.exists() else pd.DataFrame(columns=["genotype", "seed"])
    todo = table[~table.set_index(["genotype", "seed"]).index.isin(done.set_index(["genotype", "seed"]).index)]
    if todo.empty:
        return done
    require_kept(todo, weights, f"--weights {weights}")
    budget = todo.iloc[0]
    data = load_dataset(budget["dataset"], seed=0, **json.loads(budget["dataset_options"]))
    torch.set_num_threads(threads)
    runs = done
    for run in tqdm(todo.itertuples(), total=len(todo), desc="networks scored per image", unit="run"):
        model, config = load_network(weights_file(weights, run.name, run.seed), data.num_classes)
        hits = correct_per_image(model, data, "test", config).numpy()
        if int(hits.sum()) != round(run.test_accuracy * len(hits)):
            fail(f"{run.name} seed {run.seed}: the kept network scores {hits.mean():.4f} on the test split, "
                 f"its run {run.test_accuracy:.4f}: not that table's network or not its test split")
        row = {"name": run.name, "genotype": run.genotype, "seed": run.seed, "images": len(hits),
               "bits": np.packbits(hits).tobytes()}
        runs = pd.DataFrame([row]) if runs.empty else pd.concat([runs, pd.DataFrame([row])], ignore_index=True)
        write_table(runs, cache)  # each run as it is scored: an interrupted pass resumes
    return runs


def curve(runs: pd.DataFrame, sizes: Sequence[int], max_blocks: int) -> List[Dict[str, Any]]:
    """Per block size n: the seed tau and interaction sd on each of up to ``max_blocks`` disjoint blocks."""
    hits = np.stack([np.unpackbits(np.frombuffer(b, np.uint8))[:n].astype(bool)
                     for b, n in zip(runs["bits"], runs["images"])])
    points = []
    for n in sizes:
        blocks = min(hits.shape[1] // n, max_blocks)
        if blocks < 1:
            continue
        taus, sds = [], []
        for b in range(blocks):
            table = runs[["genotype", "seed"]].assign(test_accuracy=hits[:, b * n:(b + 1) * n].mean(axis=1))
            taus.append(seed_tau(table)["mean"])
            sds.append(seed_noise(table).get("interaction_sd", float("nan")))
        defined = [t for t in taus if not math.isnan(t)]  # a block where every run scores alike has no tau
        points.append({"images": n, "blocks": blocks, "blocks_with_a_tau": len(defined),
                       "seed_tau_mean": statistics.mean(defined) if defined else math.nan,
                       "seed_tau_sd_over_blocks": statistics.stdev(defined) if len(defined) > 1 else None,
                       "interaction_sd_mean": statistics.mean(sds),
                       "interaction_variance_mean": statistics.mean(sd ** 2 for sd in sds)})
    return points


def images_fit(points: List[Dict[str, Any]], genotype_variance: float, split: int) -> Dict[str, Any]:
    """The interaction variance split into the network's and the images', fitted over block sizes n as
    V(n) = network + images / n (least squares in relative error, as V spans a decade), and what it
    leaves at the whole split, 2x, 5x and infinitely many images; beside each the single-seed tau of
    ``seed_noise``'s Gaussian model with the genotypes' variance ``genotype_variance`` (points^2)."""
    sizes = np.array([p["images"] for p in points], dtype=float)
    variance = np.array([p["interaction_variance_mean"] for p in points])
    design = np.stack([np.ones_like(sizes), 1 / sizes], axis=1) / variance[:, None]
    (network, images), *_ = np.linalg.lstsq(design, np.ones_like(variance), rcond=None)
    network, images = max(float(network), 0.0), max(float(images), 0.0)

    def at(n: float) -> Dict[str, float]:
        left = network + (images / n if n != math.inf else 0.0)
        rho = genotype_variance / (genotype_variance + left) if genotype_variance + left > 0 else math.nan
        return {"interaction_sd": left ** 0.5, "model_tau": model_tau(rho)}

    return {"network_interaction_sd": network ** 0.5, "images_interaction_sd_at_1000_images": (images / 1000) ** 0.5,
            "genotype_sd": genotype_variance ** 0.5,
            "at": {str(n): at(n) for n in (split, 2 * split, 5 * split)} | {"inf": at(math.inf)}}


def plot(points: List[Dict[str, Any]], path: Path, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.6), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    shown = [p for p in points if not math.isnan(p["seed_tau_mean"])]  # sizes where every block was flat: none
    axes.errorbar([p["images"] for p in shown], [p["seed_tau_mean"] for p in shown], capsize=3, marker="o",
                  yerr=[p["seed_tau_sd_over_blocks"] or 0 for p in shown], label="seed-against-seed tau (sd over blocks)")
    axes.axhline(0.7, color="tab:red", linestyle="--", linewidth=1, label="target 0.7")
    sizes = [p["images"] for p in points]
    axes.set_xlim(min(sizes) / 1.5, max(sizes) * 1.5)
    axes.set(xscale="log", xlabel="test images (disjoint blocks of one split)", ylabel="Kendall tau", title=title)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path)


def at_seeds(table: pd.DataFrame, seeds: Sequence[int]) -> pd.DataFrame:
    """The runs at ``seeds`` of the genotypes measured at every one of them; exit 2 when fewer than 3."""
    part = table[table["seed"].isin(seeds)]
    complete = part.groupby("genotype")["seed"].nunique() == len(set(seeds))
    part = part[part["genotype"].isin(complete[complete].index)]
    if part["genotype"].nunique() < 3:
        fail(f"--seeds {' '.join(map(str, seeds))}: {part['genotype'].nunique()} genotypes are measured at all of "
             f"them; a tau needs 3")
    return part


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, required=True, help="a stand-alone table whose networks were kept")
    parser.add_argument("--weights", type=Path, required=True, help="the DIR its --weights kept them in "
                        "(read only for runs not yet in the per-image cache)")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="block sizes in images")
    parser.add_argument("--max-blocks", type=int, default=20, help="disjoint blocks per size at most")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for scoring")
    parser.add_argument("--seeds", type=int, nargs="+", help="only these seeds' runs, of the genotypes measured at "
                        "all of them (a partial table's complete part); the result is <table>_seeds<...>_test_size_curve")
    args = parser.parse_args(argv)
    if min(args.sizes) < 1 or args.max_blocks < 1:
        fail(f"--sizes and --max-blocks must be positive, got {args.sizes} and {args.max_blocks}")
    table = load_table(args.table, "--table")
    stem = args.table.with_suffix("")
    cache = Path(f"{stem}_per_image.parquet")  # one per table, whichever seeds a pass uses
    if args.seeds:
        table = at_seeds(table, args.seeds)
        stem = Path(f"{stem}_seeds{''.join(map(str, sorted(set(args.seeds))))}")
    runs = per_image(table, args.weights, cache, args.threads)
    runs = runs.merge(table[["genotype", "seed"]], on=["genotype", "seed"])  # the table's runs only
    points = curve(runs, sorted(set(args.sizes)), args.max_blocks)
    if not points:
        fail(f"--sizes {args.sizes}: every block is larger than the {int(runs['images'].min())} test images")
    split = int(runs["images"].min())
    whole = runs[["genotype", "seed"]].merge(table[["genotype", "seed", "test_accuracy"]], on=["genotype", "seed"])
    genotype_variance = seed_noise(whole).get("genotype_sd", math.nan) ** 2
    document = {"benchmark": "test_size_curve", "machine": describe_machine(), "table": str(args.table),
                "runs": len(runs), "genotypes": int(runs["genotype"].nunique()), "points": points,
                "fit": images_fit(points, genotype_variance, split) if len(points) >= 2 else None}
    write_result(Path(f"{stem}_test_size_curve.json"), document)
    plot(points, Path(f"{stem}_test_size_curve.png"),
         f"{len(runs)} runs, {document['genotypes']} genotypes: the ceiling against test images")
    for p in points:
        print(f"{p['images']:>6} images x {p['blocks']:>2} blocks: seed tau {p['seed_tau_mean']:.3f}, "
              f"interaction sd {p['interaction_sd_mean']:.3f} points")


if __name__ == "__main__":
    main()
