"""The stand-alone ground truth: genotypes trained from scratch at one budget, several seeds each, on Ray.

Every known module plus genotypes spread over the space (evenly spaced quantiles of a supernet
landscape with ``--landscape``, else a seeded uniform draw of canonical genotypes), each trained
stand-alone for ``--seeds`` seeds at budget B (``--epochs`` of ``--train-size`` images). Each
finished run is appended to the Parquet file at once, so an interrupted table resumes where it
stopped: run the same command again.

    python benchmarks/standalone_table.py                      # the table of the README (hours on 2 cores)
    python benchmarks/standalone_table.py --quick              # 4 genotypes x 2 seeds, 1 epoch of 1,000 images
    python benchmarks/standalone_table.py --gpus-per-trial 0.25 --epochs 30   # 4 trials share each GPU
    python benchmarks/standalone_table.py --summary            # only rewrite the JSON from the Parquet file
    python benchmarks/standalone_table.py --epochs 12 --seeds 4 --only srm fca none random-08 \
        --out /tmp/pilot.parquet                               # a few of the genotypes at another budget
    python benchmarks/standalone_table.py --summary --epochs 12 --out benchmarks/results/standalone_table_12ep.parquet \
        --against benchmarks/results/standalone_table.parquet  # beside budget B, on the runs both hold
    python benchmarks/standalone_table.py --epochs 12 --weights benchmarks/runs/standalone_12ep \
        --out benchmarks/results/standalone_table_12ep.parquet  # keeps each run's network (DIR/NAME-seedK.pt)
    python benchmarks/standalone_table.py --epochs 12 --weights benchmarks/runs/standalone_12ep \
        --rescore benchmarks/results/standalone_table_12ep.parquet --dataset-options '{"test_size": 50000}' \
        --out /tmp/rescored.parquet                            # those networks on a larger test split, no training
    python benchmarks/standalone_table.py --extend --landscape benchmarks/results/supernet_landscape.parquet \
        --genotypes 21                                          # + 12 genotypes at the landscape's quantiles

Writes ``benchmarks/results/standalone_table.parquet`` (one row per genotype and seed: test and
validation accuracy and loss, final training accuracy, parameters, MACs, wall time and the budget)
and ``standalone_table.json`` (machine, budget, timing, per-genotype means, the seed-against-seed
Kendall tau, and the known modules against ``none``).
"""
from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pandas as pd
from scipy import stats
from tqdm import tqdm

from common import RESULTS, fail, write_result  # first: sets Ray's loopback environment and the import path
import ray  # noqa: E402
from evaluator.data import load_dataset
from evaluator.standalone import StandaloneConfig, load_network, score_split, train_standalone
from machine import describe_machine
from searchspace import KNOWN, all_genotypes
from measures import (complete_seeds, difference, evaluation_noise, mean_of_seeds_tau, seed_noise, seed_tau,
                      seed_tau_without_each)
from standalone_figure import plot_table, plot_tau_by_seeds

# Budget B: 6 epochs of the 10,000 training images at batch 64 (938 steps), lr 0.05 with cosine
# decay: what 2 CPU cores afford for 72 runs, measured at 3 to 6 minutes a run.
DATASET, EPOCHS, BATCH_SIZE, LR = "styled-glyphs", 6, 64, 0.05
QUICK_DATA = {"train_size": 1000, "val_size": 200, "test_size": 200}
GAIN_SEEDS = 3  # the issue judges the known modules against none over 3 seeds
BUDGET_COLUMNS = ("arch", "epochs", "batch_size", "lr", "dataset", "dataset_options")
TABLE_COLUMNS = ("name", "genotype", "seed", "test_accuracy", "val_accuracy") + BUDGET_COLUMNS


def pick_genotypes(count: int, seed: int, landscape: Optional[pd.DataFrame]) -> List[Tuple[str, str]]:
    """``(name, genotype key)`` pairs: the known modules (all of them unless ``count`` is small), then others.

    The others sit at evenly spaced quantiles of a supernet landscape's validation accuracy when
    one is given (``load_landscape``'s frame), else they are a seeded uniform draw of the canonical
    genotypes; none repeats a known module.
    """
    known = list(KNOWN.items())[: min(len(KNOWN), max(1, count - 1))]  # a small table keeps one other genotype
    picks = [(name, genotype.key) for name, genotype in known]
    taken = {key for _, key in picks}
    extra = max(0, count - len(picks))
    if landscape is not None:
        ranked = landscape.query("status == 'ok'").sort_values(["val_accuracy", "genotype"])
        ranked = ranked[~ranked["genotype"].isin(taken)].reset_index(drop=True)
        positions = sorted({round(i * (len(ranked) - 1) / max(1, extra - 1)) for i in range(extra)})
        others = [(f"quantile-{i:02d}", key) for i, key in enumerate(ranked["genotype"].iloc[positions])]
    else:
        pool = sorted(g.key for g in all_genotypes() if g.key not in taken)
        others = [(f"random-{i:02d}", key) for i, key in enumerate(random.Random(seed).sample(pool, extra))]
    return picks + others


@ray.remote(max_retries=2)
def train_one(name: str, genotype: str, seed: int, budget: Dict[str, Any], threads: int,
              device: str, weights: Optional[str] = None) -> Dict[str, Any]:
    """One stand-alone run in a Ray worker: its row of the table (and the trained network in ``weights``)."""
    import torch

    torch.set_num_threads(threads)
    data = load_dataset(budget["dataset"], seed=0, **budget["dataset_options"])  # read from the disk cache
    config = StandaloneConfig(arch=budget["arch"], epochs=budget["epochs"], batch_size=budget["batch_size"],
                              lr=budget["lr"], seed=seed, dataset=budget["dataset"],
                              dataset_options=budget["dataset_options"], latency_repeats=2, val_every_epoch=False)
    result = train_standalone(config, genotype, device=device, data=data, weights=weights)
    metrics = {k: v for k, v in result.metrics().items() if not k.startswith("latency")}
    return {**metrics, "name": name, "genotype": genotype, "train_accuracy": result.history[-1]["train_accuracy"],
            "train_loss": result.history[-1]["train_loss"], **budget_row(budget)}


@ray.remote(max_retries=2)
def score_one(row: Dict[str, Any], budget: Dict[str, Any], threads: int, device: str, weights: str) -> Dict[str, Any]:
    """A kept network scored in a Ray worker on this budget's splits: ``row`` with its test figures
    (and validation accuracy, to check the network against its run) replaced, under this budget."""
    import torch

    torch.set_num_threads(threads)
    data = load_dataset(budget["dataset"], seed=0, **budget["dataset_options"])
    model, config = load_network(weights, data.num_classes, device)
    val, test = (score_split(model, data, split, config, device) for split in ("val", "test"))
    return {**row, "val_accuracy": val["accuracy"], "test_accuracy": test["accuracy"], "test_loss": test["loss"],
            **budget_row(budget)}


def weights_file(directory: Path, name: str, seed: int) -> Path:
    """Where ``--weights DIR`` keeps the network of one run."""
    return directory / f"{name}-seed{seed}.pt"


def require_kept(runs: pd.DataFrame, directory: Path, flag: str) -> None:
    """Exit 2 unless every run of ``runs`` has its network in ``directory``."""
    missing = [weights_file(directory, r.name, r.seed) for r in runs.itertuples()
               if not weights_file(directory, r.name, r.seed).is_file()]
    if missing:
        fail(f"{flag}: {len(missing)} of {len(runs)} networks are not kept, e.g. {missing[0]}")


def only(picks: Sequence[Tuple[str, str]], names: Sequence[str]) -> List[Tuple[str, str]]:
    """The planned genotypes called ``names`` (in the plan's order): a pilot on a few of them."""
    unknown = sorted(set(names) - {name for name, _ in picks})
    if unknown:
        fail(f"--only: no planned genotype is called {', '.join(unknown)} "
             f"(planned: {', '.join(name for name, _ in picks)})")
    return [(name, key) for name, key in picks if name in names]


def extended(picks: Sequence[Tuple[str, str]], table: pd.DataFrame) -> List[Tuple[str, str]]:
    """The genotypes a table already holds (their names and order kept), then the picks it lacks.

    Picks depend only on their arguments, so the same ``--extend`` command plans the same table
    again when it resumes.
    """
    have = [] if table.empty else list(dict.fromkeys(zip(table["name"], table["genotype"])))
    keys = {key for _, key in have}
    return have + [(name, key) for name, key in picks if key not in keys]


def make_budget(quick: bool, epochs: int = EPOCHS, batch_size: int = BATCH_SIZE, lr: float = LR,
                dataset: str = DATASET, dataset_options: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """A stand-alone budget (budget B by default); ``quick``: 1 epoch on the small quick splits."""
    options = {**(QUICK_DATA if quick else {}), **(dataset_options or {})}
    return {"arch": "resnet20", "epochs": 1 if quick else epochs, "batch_size": batch_size,
            "lr": lr, "dataset": dataset, "dataset_options": options}


def budget_row(budget: Dict[str, Any]) -> Dict[str, Any]:
    """The budget as flat columns (dataset options as sorted JSON), the same in every row of one table."""
    return {**{k: budget[k] for k in BUDGET_COLUMNS if k != "dataset_options"},
            "dataset_options": json.dumps(budget["dataset_options"], sort_keys=True)}


def judged_by(table: Optional[Path], default: Path) -> str:
    """A result file's suffix when a benchmark judges by a table other than its ``default``: ``_against_<its name>``."""
    return "" if table is None or Path(table).resolve() == Path(default).resolve() else f"_against_{Path(table).stem}"


def budget_of(table: pd.DataFrame, flag: str) -> Dict[str, Any]:
    """The budget a table was measured at (``budget_row`` read back); exit 2 when its rows mix budgets."""
    budget: Dict[str, Any] = {}
    for column in BUDGET_COLUMNS:
        values = table[column].unique()
        if len(values) != 1:
            fail(f"{flag}: the table's rows hold {len(values)} values of {column}, not one budget")
        value = values[0].item() if hasattr(values[0], "item") else values[0]  # numpy scalars as plain numbers
        budget[column] = json.loads(value) if column == "dataset_options" else value
    return budget


def load_table(path: Path, flag: str) -> pd.DataFrame:
    """The stand-alone table at ``path`` (any budget); exit 2 when it is missing or is not one."""
    if not path.is_file():
        fail(f"{flag} {path}: no such table")
    return read_checked(path, flag, TABLE_COLUMNS, "a stand-alone table")


def read_checked(path: Path, flag: str, columns: Sequence[str], kind: str) -> pd.DataFrame:
    """The Parquet file at ``path``; exit 2 when it is not Parquet or lacks one of ``columns``."""
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
        fail(f"{flag} {path}: not a Parquet file ({str(error).splitlines()[0]})")
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        fail(f"{flag} {path}: not {kind} (no column {', '.join(missing)})")
    return frame


def load_landscape(path: Path) -> pd.DataFrame:
    """A supernet landscape (``supernet_landscape.py``'s Parquet); exit 2 when it is missing or is not one."""
    if not path.is_file():
        fail(f"{path}: no such landscape file")
    return read_checked(path, "--landscape", ("genotype", "val_accuracy", "status"), "a supernet landscape")


def read_table(path: Path, budget: Dict[str, Any]) -> pd.DataFrame:
    """The rows already measured at this budget; a table of another budget is refused (pass another --out)."""
    if not path.exists():
        return pd.DataFrame()
    table = load_table(path, "--out")
    expected = budget_row(budget)
    for column, value in expected.items():
        found = set(table[column].unique())
        if found != {value}:
            fail(f"{path} holds runs with {column}={sorted(map(str, found))}, not {value!r}; "
                     f"pass --out for a table of another budget")
    return table


def write_table(table: pd.DataFrame, path: Path) -> None:
    """Atomically: written beside and renamed, so an interrupted write never loses the runs before it."""
    temporary = path.with_suffix(".parquet.tmp")
    table.to_parquet(temporary, index=False)
    temporary.replace(path)


def summarise(table: pd.DataFrame, planned_runs: Optional[int] = None) -> Dict[str, Any]:
    """Per-genotype means, the seed-against-seed tau, and every known module against ``none`` (in points).

    Until all ``planned_runs`` are in, the tau covers only the genotypes measured twice or more, and
    its target is reported as None (not yet judged).
    """
    per_genotype = (table.groupby(["name", "genotype"])
                    .agg(test_mean=("test_accuracy", "mean"), test_sd=("test_accuracy", "std"),
                         val_mean=("val_accuracy", "mean"), train_mean=("train_accuracy", "mean"),
                         seeds=("seed", "count"), params=("params", "first"), macs=("macs", "first"),
                         wall_time_s=("wall_time_s", "mean"))
                    .reset_index().sort_values("test_mean", ascending=False))
    accuracy = {name: [100 * a for a in group["test_accuracy"]] for name, group in table.groupby("name")}
    against_none = {}
    if len(accuracy.get("none", [])) >= 2:
        for name in KNOWN:
            if name != "none" and len(accuracy.get(name, [])) >= 2:
                against_none[name] = difference(accuracy[name], accuracy["none"])
    best = max(against_none, key=lambda n: against_none[n]["difference"]) if against_none else None
    none = per_genotype[per_genotype["name"] == "none"]
    complete = planned_runs is None or len(table) >= planned_runs
    tau = seed_tau(table)
    return {
        "complete": complete,
        "genotypes": int(per_genotype["genotype"].nunique()), "runs": len(table),
        "seed_tau": tau,
        "seed_tau_without_each_genotype": seed_tau_without_each(table),
        "mean_of_seeds_tau": mean_of_seeds_tau(table),
        "seed_noise_points": seed_noise(table),
        "by_group": by_group(table),
        "over_complete_seeds": over_complete_seeds(table),
        "evaluation_noise_points": evaluation_noise(table),
        "none_test_accuracy": float(none["test_mean"].iloc[0]) if len(none) else None,
        "none_train_minus_val_points": float(100 * (none["train_mean"] - none["val_mean"]).iloc[0]) if len(none) else None,
        "known_against_none_points": against_none,
        "best_known": best,
        "targets": {
            "best known beats none by >= 1.0 point and > 2 standard errors":
                bool(best and against_none[best]["difference"] >= 1.0 and against_none[best]["z"] > 2),
            "none below 97 %": bool(len(none) and none["test_mean"].iloc[0] < 0.97),
            "seed-against-seed tau >= 0.7": bool(tau["mean"] >= 0.7) if complete else None,
        },
        "per_genotype": per_genotype.to_dict("records"),
    }


def over_complete_seeds(table: pd.DataFrame) -> Dict[str, Any]:
    """The seed taus over only the seeds that every genotype has: a table being extended, read fairly.

    While new seeds come in, ``seed_tau`` and ``mean_of_seeds_tau`` also count pairs and splits
    over the few genotypes a new seed has so far; these use every genotype at every seed they cover.
    Empty once no seed is partial.
    """
    runs = complete_seeds(table)
    seeds = sorted(int(s) for s in runs["seed"].unique())
    if len(seeds) == table["seed"].nunique():
        return {}
    return {"seeds": seeds, "seed_tau": seed_tau(runs)["mean"], "mean_of_seeds_tau": mean_of_seeds_tau(runs),
            "by_group": by_group(runs), "seed_noise_points": seed_noise(runs)}


def by_group(table: pd.DataFrame) -> Dict[str, Any]:
    """The seed tau and noise of the known modules and of the genotypes spread over the space, apart.

    The two sets differ in kind: the known modules are far apart by design, the spread genotypes
    (drawn or at landscape quantiles) are mostly near-ties, so the whole table's ceiling hides
    which of them resolves. Each group's noise covers its genotypes measured at every seed.
    """
    known = table["name"].isin(KNOWN)
    return {group: {"genotypes": int(runs["genotype"].nunique()), "runs": len(runs),
                    "seed_tau": seed_tau(runs), "mean_of_seeds_tau": mean_of_seeds_tau(runs),
                    "seed_noise_points": seed_noise(runs)}
            for group, runs in (("known_modules", table[known]), ("spread_genotypes", table[~known]))
            if len(runs)}


def against(table: pd.DataFrame, other: pd.DataFrame) -> Dict[str, Any]:
    """This table beside another budget's, on the (genotype, seed) runs both hold, in points of test accuracy.

    Each side's noise and seed-against-seed tau on those runs, how far each genotype's mean moved,
    and the tau between the two budgets' means: whether the other budget resolves the same
    genotypes better, and whether it ranks them alike.
    """
    keys = ["genotype", "seed"]
    shared = table[keys].merge(other[keys], on=keys)
    sides = {"this": table.merge(shared, on=keys), "other": other.merge(shared, on=keys)}
    means = {side: 100 * runs.groupby("name")["test_accuracy"].mean() for side, runs in sides.items()}
    change = (means["this"] - means["other"]).sort_values(ascending=False)
    budget = json.loads(other[list(BUDGET_COLUMNS)].iloc[:1].to_json(orient="records"))  # plain JSON types
    return {"other_budget": budget[0] if budget else {},
            "runs": len(shared), "genotypes": int(shared["genotype"].nunique()),
            "seed_noise_points": {side: seed_noise(runs) for side, runs in sides.items()},
            "seed_tau": {side: seed_tau(runs) for side, runs in sides.items()},
            "by_group": {side: by_group(runs) for side, runs in sides.items()},
            "mean_change_points": {name: float(v) for name, v in change.items()},
            "tau_between_budgets": float(stats.kendalltau(means["this"], means["other"].reindex(means["this"].index)).statistic)
            if len(change) >= 3 else None}


def against_landscape(table: pd.DataFrame, landscape: pd.DataFrame) -> Dict[str, Any]:
    """How the supernet landscape the genotypes were spread over ranks them against stand-alone training.

    Kendall tau between the landscape's validation accuracy and each genotype's mean test accuracy
    over its seeds, for every genotype both hold and for the spread genotypes alone (the ones
    picked by the landscape; the known modules are in the table whatever it says).
    """
    means = table.groupby(["name", "genotype"], as_index=False)["test_accuracy"].mean()
    both = means.merge(landscape.query("status == 'ok'")[["genotype", "val_accuracy"]], on="genotype")
    spread = both[~both["name"].isin(KNOWN)]

    def tau(rows: pd.DataFrame) -> Optional[float]:
        return float(stats.kendalltau(rows["val_accuracy"], rows["test_accuracy"]).statistic) if len(rows) >= 3 else None

    return {"genotypes": len(both), "tau": tau(both), "spread_genotypes": len(spread), "tau_spread": tau(spread),
            "landscape_range": [float(both["val_accuracy"].min()), float(both["val_accuracy"].max())] if len(both) else None}


def markdown(summary: Dict[str, Any]) -> str:
    """The per-genotype table as Markdown, best first: what the README shows."""
    lines = ["| rank | name | genotype | test accuracy % (mean ± sd) | seeds | params | MMACs |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for rank, row in enumerate(summary["per_genotype"], start=1):
        sd = row["test_sd"]
        spread = "" if sd is None or sd != sd else f" ± {100 * sd:.2f}"  # one seed: no sd (NaN; null in JSON)
        lines.append(f"| {rank} | {row['name']} | `{row['genotype']}` | {100 * row['test_mean']:.2f}{spread} | "
                     f"{row['seeds']} | {row['params']:,} | {row['macs'] / 1e6:.1f} |")
    return "\n".join(lines)


def run_order(picks: Sequence[Tuple[str, str]], seeds: int) -> List[Tuple[str, str, int]]:
    """The (name, genotype, seed) runs in the order they are started.

    The known modules' first ``GAIN_SEEDS`` seeds come first, so a table cut short already answers
    whether attention pays; then seed by seed over every genotype, so it has every genotype at its
    first seeds, and a table extended to more seeds gains whole seeds (a k-seed mean over all its
    genotypes) as early as it can.
    """
    known = [p for p in picks if p[0] in KNOWN]
    first = [(n, k, s) for n, k in known for s in range(min(GAIN_SEEDS, seeds))]
    started = set(first)
    rest = [(n, k, s) for s in range(seeds) for n, k in picks if (n, k, s) not in started]
    return first + rest


def run_table(picks: Sequence[Tuple[str, str]], seeds: int, budget: Dict[str, Any], path: Path,
              args: argparse.Namespace) -> pd.DataFrame:
    """Every (genotype, seed) not yet in ``path``, on Ray, rows written as each run finishes."""
    table = read_table(path, budget)
    done = set(zip(table.get("genotype", []), table.get("seed", [])))
    todo = [(name, key, seed) for name, key, seed in run_order(picks, seeds) if (key, seed) not in done]
    if not todo:
        return table
    start_ray(budget, args)
    pending = {on_ray(train_one, args).remote(name, key, seed, budget, args.threads, device(args),
                           None if args.weights is None else str(weights_file(args.weights, name, seed))): (name, seed)
               for name, key, seed in todo}
    return gather(pending, table, path, "stand-alone runs")


def rescore_table(source: pd.DataFrame, budget: Dict[str, Any], path: Path, args: argparse.Namespace) -> pd.DataFrame:
    """The runs of ``source``, their kept networks scored on this budget's test split, into ``path``.

    Only the test split may differ from the source's budget (``--dataset-options '{"test_size": N}'``):
    training and validation data stay the same, so each network's validation accuracy must come out
    as its run's (else exit 2), which also checks that the files are that table's networks.
    """
    trained, given = source[list(BUDGET_COLUMNS)].iloc[0].to_dict(), budget_row(budget)
    for column in BUDGET_COLUMNS:
        if training_part(column, trained[column]) != training_part(column, given[column]):
            fail(f"--rescore: the table was trained with {column}={trained[column]}, not {given[column]}; "
                 f"only the test split's size may change")
    require_kept(source, args.weights, "--rescore")
    table = read_table(path, budget)
    done = set(zip(table.get("genotype", []), table.get("seed", [])))
    todo = [row for row in source.to_dict("records") if (row["genotype"], row["seed"]) not in done]
    if not todo:
        return table
    start_ray(budget, args)
    pending = {on_ray(score_one, args).remote(row, budget, args.threads, device(args),
                                              str(weights_file(args.weights, row["name"], row["seed"]))):
               (row["name"], row["seed"]) for row in todo}
    return gather(pending, table, path, "kept networks scored",
                  expected_val={(row["name"], row["seed"]): row["val_accuracy"] for row in todo})


def training_part(column: str, value: Any) -> Any:
    """A budget column's value without the test split's size, the one thing a rescoring may change."""
    if column != "dataset_options":
        return value
    return {k: v for k, v in json.loads(value).items() if k != "test_size"}


def start_ray(budget: Dict[str, Any], args: argparse.Namespace) -> None:
    """Generate the data once, before the workers read it from the disk cache; then start Ray."""
    load_dataset(budget["dataset"], seed=0, **budget["dataset_options"])
    ray.init(address=args.address, num_cpus=None if args.address else args.workers, include_dashboard=False)


def on_ray(task: Any, args: argparse.Namespace) -> Any:
    """``task`` with each run's CPUs and share of a GPU."""
    return task.options(num_cpus=args.threads, num_gpus=args.gpus_per_trial)


def device(args: argparse.Namespace) -> str:
    """Where each run trains: a GPU when runs are given a share of one."""
    return "cuda" if args.gpus_per_trial > 0 else "cpu"


def gather(pending: Dict[Any, Tuple[str, int]], table: pd.DataFrame, path: Path, desc: str,
           expected_val: Optional[Dict[Tuple[str, int], float]] = None) -> pd.DataFrame:
    """Each task's row appended to ``table`` and written as it finishes; with ``expected_val``, a row
    whose validation accuracy differs from the one expected for its (name, seed) stops it all (exit 2)."""
    wrong = None
    with tqdm(total=len(pending), desc=desc, unit="run") as bar:
        while pending and wrong is None:
            ready, _ = ray.wait(list(pending), num_returns=1)
            row = ray.get(ready[0])
            name, seed = pending.pop(ready[0])
            if expected_val is not None and row["val_accuracy"] != expected_val[name, seed]:
                wrong = (f"{name} seed {seed}: the kept network scores {row['val_accuracy']:.4f} on the validation "
                         f"split, its run scored {expected_val[name, seed]:.4f}: not the same network or not the same data")
                break
            table = pd.concat([table, pd.DataFrame([row])], ignore_index=True)
            write_table(table, path)
            bar.update(1)
            tqdm.write(f"{name:<12} {row['genotype']:<40} seed {seed}: test {100 * row['test_accuracy']:.2f} %")
    ray.shutdown()
    if wrong is not None:
        fail(wrong)
    return table


def tau_figure_path(path: Path) -> Path:
    """Where the figure of tau against the seeds averaged goes, beside the table's own figure."""
    return path.with_name(f"{path.stem}_tau_by_seeds.png")


def figure_title(document: Dict[str, Any]) -> str:
    """The figure's title: the budget, how many of the planned runs, and the seed-against-seed tau."""
    pairs = document["seed_tau"]["pairs"]
    if len({p["genotypes"] for p in pairs}) > 1:  # a partial table: its pairs cover different genotypes
        tau = "seed tau by pair " + ", ".join(f"{p['tau']:.2f} ({p['genotypes']})" for p in pairs)
    else:
        tau = f"seed tau {document['seed_tau']['mean']:.2f}"
    return f"{runs_title(document)}, {tau}"


def runs_title(document: Dict[str, Any]) -> str:
    """The budget and how many of the planned runs are in: the start of either figure's title."""
    budget = document["budget"]
    test = budget["dataset_options"].get("test_size")
    images = f", {test:,} test images" if test else ""
    return f"{budget['arch']}, {budget['epochs']} epochs{images}: {document['runs']} of {document['planned_runs']} runs"


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 genotypes x 2 seeds, 1 epoch on 1,000 images")
    parser.add_argument("--genotypes", type=int, default=24, help="known modules plus spread genotypes (default 24)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--lr", type=float, default=LR)
    parser.add_argument("--dataset", default=DATASET)
    parser.add_argument("--dataset-options", type=json.loads, default={}, help="JSON, e.g. '{\"train_size\": 50000}'")
    parser.add_argument("--landscape", type=Path, help="a supernet landscape Parquet to spread the genotypes over")
    parser.add_argument("--pick-seed", type=int, default=0, help="seed of the uniform draw without a landscape")
    parser.add_argument("--workers", type=int, default=2, help="runs at a time on a local Ray (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="CPUs (torch threads) per run")
    parser.add_argument("--gpus-per-trial", type=float, default=0.0, help="fraction of a GPU per run (0: CPU)")
    parser.add_argument("--address", help="an existing Ray cluster (default: start a local one)")
    parser.add_argument("--out", type=Path, help="the Parquet file (default results/standalone_table[_quick].parquet)")
    parser.add_argument("--weights", type=Path, metavar="DIR", help="keep each run's trained network as "
                        "DIR/NAME-seedK.pt, to score it again later without training")
    parser.add_argument("--rescore", type=Path, metavar="PARQUET", help="do not train: score the networks of "
                        "this table (kept with --weights DIR) on this budget's test split, e.g. a larger one")
    parser.add_argument("--extend", action="store_true", help="keep the genotypes the table holds and add the "
                        "picks it lacks (with --landscape: its quantiles beside the uniform draw)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="train only these of the planned genotypes "
                        "(e.g. a pilot at another budget: srm none random-08)")
    parser.add_argument("--against", type=Path, metavar="PARQUET", help="also compare with another budget's table "
                        "on the runs both hold (noise, spread, each genotype's change)")
    parser.add_argument("--summary", action="store_true", help="only summarise the Parquet file")
    parser.add_argument("--markdown", action="store_true", help="also print the per-genotype table as Markdown")
    return parser


def describe_table(table: pd.DataFrame, planned_runs: int, args: argparse.Namespace,
                   other: Optional[pd.DataFrame], landscape: Optional[pd.DataFrame]) -> Dict[str, Any]:
    """The JSON's account of ``table``: run time, the summary, where it was rescored from, and the
    comparison with ``--against``'s table and ``--landscape``'s ranking."""
    document = {"run_seconds_total": float(table["wall_time_s"].sum()), "planned_runs": planned_runs,
                **summarise(table, planned_runs)}
    if args.rescore is not None:
        document["rescored_from"] = str(args.rescore)
    if args.against is not None:
        document["against"] = {"table": str(args.against), **against(table, other)}
    if landscape is not None:
        document["against_landscape"] = {"landscape": str(args.landscape), **against_landscape(table, landscape)}
    return document


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = make_parser().parse_args(argv)
    name = "standalone_table_quick" if args.quick else "standalone_table"
    path = args.out or RESULTS / f"{name}.parquet"
    budget = make_budget(args.quick, args.epochs, args.batch_size, args.lr, args.dataset, args.dataset_options)
    landscape = None if args.landscape is None else load_landscape(args.landscape)  # checked before any run starts
    other = None if args.against is None else load_table(args.against, "--against")
    if args.rescore is not None and args.weights is None:
        fail("--rescore needs --weights DIR, where that table's networks are kept")
    source = None if args.rescore is None else load_table(args.rescore, "--rescore")
    picks = pick_genotypes(4 if args.quick else args.genotypes, args.pick_seed, landscape)
    if args.extend:
        picks = extended(picks, read_table(path, budget))
    if args.only:
        picks = only(picks, args.only)
    seeds = 2 if args.quick else args.seeds
    started = time.perf_counter()
    if args.summary:
        table = read_table(path, budget)
    elif source is not None:
        table = rescore_table(source, budget, path, args)
    else:
        table = run_table(picks, seeds, budget, path, args)
    if table.empty:
        fail(f"{path} holds no runs yet")
    document = {"benchmark": name, "machine": describe_machine(),
                "budget": budget, "seeds": seeds, "planned_genotypes": [list(p) for p in picks],
                "seconds_this_invocation": time.perf_counter() - started,
                **describe_table(table, len(picks) * seeds, args, other, landscape)}
    write_result(path.with_suffix(".json"), document)
    plot_table(table, path.with_suffix(".png"), figure_title(document))
    plot_tau_by_seeds(document, tau_figure_path(path), runs_title(document))
    print(json.dumps({k: document[k] for k in ("runs", "seed_tau", "none_test_accuracy", "best_known", "targets")},
                     indent=2, default=float))
    if args.markdown:
        print(markdown(document))


if __name__ == "__main__":
    main()
