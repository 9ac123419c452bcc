"""Rewards against the stand-alone ground truth: reward noise and ranking fidelity.

Takes finished searches (their run directories: the shared weights of the last checkpoint, the
ones the derive stage scored with) and scores every genotype of the stand-alone table on them, on
each validation block of ``reward_images`` (256) images, with BN batch statistics and with
per-genotype recalibrated running statistics (SPOS; the search's ``recalibration_batches``
training batches). From those scores:

- **noise** (item 2): the sd of one genotype's reward across blocks (what a new round's images do
  to it), and the sd of the difference between two genotypes scored on the same block (common
  images, what REINFORCE's batch-mean baseline sees) and on different blocks (each sample on its
  own batch, the scheme before issue 15); with the same supernet throughout, so it is the images'
  share of the noise alone;
- **fidelity** (items 3-4): Kendall's tau between each scheme's score and the stand-alone table's
  mean test accuracy over its genotypes: the whole validation split (the derive stage), one
  common block (a round's reward; the mean over blocks), one block per genotype (the old
  per-sample batches; the mean over block shifts), each with both BN modes.

The searches are the variants of the default search below, each with one setting changed, at each
of ``--seeds`` (search seeds; default 0), run with ``search_outcome.run_search``; the default and
random-policy runs are ``search_outcome.py``'s (made here when missing). A variant's tau is then
given as its mean and range over the seeds, because one supernet's tau moves with its search seed.

    python benchmarks/reward_fidelity.py [--quick] [--variants default warmup-4 ...] [--seeds 0 1 2] [--runs DIR]
        [--run LABEL=DIR ...]
    python benchmarks/reward_fidelity.py --variants --run likelihood-seed0=DIR ...   # only the runs named

Each block's loss is kept beside its accuracy, so a row also gives the noise of the likelihood
reward (``likelihood_noise_points``: the same measures of ``exp(-loss)``; scores of earlier
versions kept no loss).

``--table PARQUET`` judges by another stand-alone table (another budget) and writes
``reward_fidelity_against_<its name>.json``; with ``--summary`` it searches and scores nothing, so
the stored scores are judged by it in seconds (the genotypes are the same 24).

``--run`` adds finished searches made elsewhere, for example the supernet of
``supernet_landscape.py --run DIR`` (trained longer, with the random policy).

``--quick`` scores the two runs of ``search_outcome.py --quick`` (made when missing) against the
stand-alone table: a smoke run of the code path, its figures meaningless.

Scores are appended to ``results/reward_fidelity_scores.parquet`` as each run is scored, so an
interrupted benchmark resumes at the run it was scoring; writes ``results/reward_fidelity.json``.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from common import REPOSITORY, RESULTS, fail, repository_path, show_result, write_result  # first: Ray's loopback environment, the import path

import pandas as pd  # noqa: E402
import torch  # noqa: E402
from scipy import stats  # noqa: E402
from tqdm import tqdm  # noqa: E402

from evaluator.supernet import recalibrated_bn_statistics  # noqa: E402
from evaluator.training import metric_value, reward  # noqa: E402
from evaluator.worker import Evaluator  # noqa: E402
from search.rescore import run_evaluator  # noqa: E402
from machine import describe_machine  # noqa: E402
from measures import complete_seeds, rank_model, seed_noise, seed_tau  # noqa: E402
from rundir import RunDir  # noqa: E402
from search.config import saved_config  # noqa: E402
from searchspace import from_key  # noqa: E402
import search_outcome  # noqa: E402
import standalone_table  # noqa: E402

# Each a change to the embedded default search; "default" and "random" are search_outcome.py's runs.
# The default had 4 fair warm-up rounds until this ablation chose 0 (the "no-warmup" variant of then
# is today's default): "warmup-4" and "random-warmup-4" are those earlier default runs, and the
# variants measured against them pin warmup_rounds to 4 so that their runs keep meaning what they measured.
VARIANTS: Dict[str, Dict[str, Any]] = {
    "default": {},
    "random": {"policy": "random"},
    "warmup-4": {"warmup_rounds": 4},
    "random-warmup-4": {"policy": "random", "warmup_rounds": 4},
    "uniform-warmup": {"warmup_rounds": 4, "warmup_sampling": "uniform"},
    "own-images": {"evaluator": {"common_reward_images": False}},
    "excitation-per-squeeze": {"warmup_rounds": 4, "evaluator": {"excitation_per_squeeze": True}},
}


RUNS = Path(__file__).resolve().parent / "runs" / "reward_fidelity"
OUTCOME_RUNS = Path(__file__).resolve().parent / "runs" / "search_outcome" / "default"
TABLE = RESULTS / "standalone_table.parquet"  # budget B; --table judges by another budget's table


def variant_folder(name: str, seed: int, runs: Path = RUNS, outcome_runs: Path = OUTCOME_RUNS) -> Path:
    """Where the search of a variant at search seed ``seed`` lives."""
    if name in ("default", "random"):
        return outcome_runs / f"{'rl' if name == 'default' else 'random'}-seed{seed}"
    return runs / (name if seed == 0 else f"{name}-seed{seed}")  # seed 0's folder predates --seeds


def variant_run(name: str, seed: int, runs: Path, outcome_runs: Path, base: Dict[str, Any]) -> Path:
    """The run directory of a variant at search seed ``seed``, searched first when it is not finished;
    ``base``: changes every search of this benchmark makes (search_outcome.QUICK_SEARCH with --quick)."""
    out = variant_folder(name, seed, runs, outcome_runs)
    if name in ("default", "random"):
        search_outcome.run_search(out, "rl" if name == "default" else "random", seed, base, out.parent / "seconds.json")
    else:
        search_outcome.run_search(out, VARIANTS[name].get("policy", "rl"), seed, VARIANTS[name], runs / "seconds.json")
    return out


def is_run(folder: Path) -> bool:
    """Whether ``folder`` is a search's run directory (it has checkpoints)."""
    return (Path(folder) / "checkpoints").is_dir()


def evaluator_of(run: Path, checkpoint: bool = True) -> Evaluator:
    """An evaluator with the run's settings and data, holding the shared weights of its last
    checkpoint (``checkpoint`` False: the supernet's initial weights); ``search.rescore``'s, which
    ``experiments/score.py`` uses."""
    return run_evaluator(RunDir(str(run)), checkpoint)


def score_run(run: Path, genotypes: Sequence[str]) -> pd.DataFrame:
    """Every genotype's accuracy and loss on each validation block, with batch and recalibrated BN statistics.

    Blocks are the split cut in ``reward_images`` images in order (the last one shorter): block r < the
    number of full blocks is round r + 1's common reward block. One row per (genotype, bn_mode, block).
    """
    evaluator = evaluator_of(run)
    config, supernet, data = evaluator.config, evaluator.supernet, evaluator.data
    blocks = list(data.batches("val", config.reward_images, shuffle=False, memory_format=evaluator.memory_format))
    rows = []
    for key in tqdm(genotypes, desc=f"scoring {run.name}", unit="genotype"):
        genotype = from_key(key)
        for block, (images, labels) in enumerate(blocks):
            scored = reward(supernet, genotype, images, labels)
            rows.append({"genotype": key, "bn_mode": "batch", "block": block, "images": len(labels),
                         "accuracy": scored.val_accuracy, "loss": scored.val_loss})
        calibration = data.train_batches(config.training.batch_size, config.recalibration_batches, seed=0,
                                         memory_format=evaluator.memory_format)
        with recalibrated_bn_statistics(supernet, lambda x: supernet(x, genotype), (x for x, _ in calibration)):
            for block, (images, labels) in enumerate(blocks):
                scored = reward(supernet, genotype, images, labels, False)
                rows.append({"genotype": key, "bn_mode": "recalibrate", "block": block, "images": len(labels),
                             "accuracy": scored.val_accuracy, "loss": scored.val_loss})
    return pd.DataFrame(rows).assign(run=repository_path(run), full_blocks=len(data.val) // config.reward_images)


def noise(scores: pd.DataFrame, full_blocks: int, value: str = "accuracy") -> Dict[str, float]:
    """Points of accuracy: one genotype's sd across blocks, and the sd of two genotypes' difference
    on the same block and on neighbouring blocks (each sample its own batch), pooled (root mean
    square) over genotypes and pairs; beside them the sd of the whole-split accuracy over genotypes.
    ``value`` "likelihood": the same of the likelihood reward, ``exp(-loss)`` x 100 per block."""
    blocks = scores[scores["block"] < full_blocks]
    blocks = blocks.assign(score=metric_value(blocks["accuracy"], blocks.get("loss"), value))
    wide = 100 * blocks.pivot(index="genotype", columns="block", values="score")
    shifted = wide.to_numpy()[:, list(range(1, full_blocks)) + [0]]
    same, own = [], []
    for g, h in itertools.combinations(range(len(wide)), 2):
        same.append(float(pd.Series(wide.iloc[g].to_numpy() - wide.iloc[h].to_numpy()).var()))
        own.append(float(pd.Series(wide.iloc[g].to_numpy() - shifted[h]).var()))
    return {"one_genotype_across_blocks_sd": float(wide.var(axis=1).mean() ** 0.5),
            "difference_same_block_sd": statistics.mean(same) ** 0.5,
            "difference_own_blocks_sd": statistics.mean(own) ** 0.5,
            "genotypes_whole_split_sd": float(whole_split(scores).mul(100).std()) if value == "accuracy"
            else float(wide.mean(axis=1).std())}


def whole_split(scores: pd.DataFrame) -> pd.Series:
    """Each genotype's accuracy on the whole validation split (blocks weighted by their images)."""
    weighted = scores.assign(correct=scores["accuracy"] * scores["images"]).groupby("genotype")
    return weighted["correct"].sum() / weighted["images"].sum()


def fidelity(scores: pd.DataFrame, truth: pd.Series, full_blocks: int) -> Dict[str, float]:
    """Kendall's tau against ``truth`` (stand-alone mean per genotype) of the three ways to score."""
    def tau(values: pd.Series) -> float:
        return float(stats.kendalltau(values.loc[truth.index], truth).statistic)

    wide = scores[scores["block"] < full_blocks].pivot(index="genotype", columns="block", values="accuracy").loc[truth.index]
    shifts = [pd.Series([wide.iloc[i, (i + k) % full_blocks] for i in range(len(wide))], index=wide.index)
              for k in range(full_blocks)]
    return {"whole_split": tau(whole_split(scores)),
            "common_block_mean": statistics.mean(tau(wide[b]) for b in wide.columns),
            "own_block_mean": statistics.mean(tau(s) for s in shifts)}


def summarise(scores: pd.DataFrame, table: pd.DataFrame, names: Dict[str, Tuple[str, Optional[int]]]) -> Dict[str, Any]:
    """One row per scored run and BN mode (``names``: run -> (variant, search seed)), and per variant
    and BN mode the mean and range of each tau over its search seeds; with several seeds, how alike
    their supernets rank (Kendall's tau between each pair's whole-split scores) and the tau of the
    seeds' mean score against the table (what averaging supernets buys)."""
    truth = table.groupby("genotype")["test_accuracy"].mean()
    scores = scores[scores["genotype"].isin(truth.index)]  # a partial table judges only the genotypes it holds
    ceiling = seed_tau(table)["mean"]
    bar = max(0.6, 0.8 * ceiling)
    rows, wholes = [], {}
    for run, group in scores.groupby("run", sort=False):
        full = int(group["full_blocks"].iloc[0])
        variant, seed = names.get(run, (run, None))
        for bn_mode, part in group.groupby("bn_mode"):
            rows.append({"variant": variant, "search_seed": seed, "run": run, "bn_mode": bn_mode,
                         "tau": fidelity(part, truth, full), "noise_points": noise(part, full),
                         # scores of earlier versions kept no loss
                         **({"likelihood_noise_points": noise(part, full, "likelihood")}
                            if "loss" in part and part["loss"].notna().all() else {}),
                         "supernet_whole_split_mean": float(whole_split(part).mean())})
            wholes.setdefault((variant, bn_mode), []).append(whole_split(part).loc[truth.index])
    for row in rows:
        row["target_met_whole_split"] = bool(row["tau"]["whole_split"] >= bar)
    by_variant = []
    for (variant, bn_mode), group in itertools.groupby(sorted(rows, key=lambda r: (r["variant"], r["bn_mode"])),
                                                       key=lambda r: (r["variant"], r["bn_mode"])):
        group = list(group)
        by_variant.append({"variant": variant, "bn_mode": bn_mode, "search_seeds": [r["search_seed"] for r in group],
                           "tau": {k: spread([r["tau"][k] for r in group]) for k in group[0]["tau"]},
                           "supernet_whole_split_mean": statistics.mean(r["supernet_whole_split_mean"] for r in group)})
        by_variant[-1]["target_met_whole_split"] = bool(by_variant[-1]["tau"]["whole_split"]["mean"] >= bar)
        by_variant[-1].update(across_seeds(wholes[(variant, bn_mode)], truth))
    return {"ceiling_seed_tau": ceiling, **mean_ceilings(table), "genotypes": int(len(truth)), "rows": rows,
            "by_variant": by_variant, "target": "tau >= 0.6 and >= 0.8 x the ceiling"}


def across_seeds(wholes: Sequence[pd.Series], truth: pd.Series) -> Dict[str, Any]:
    """Several supernets' whole-split scores (one Series per search seed, indexed like ``truth``):
    their pairwise tau, and the tau of their mean against ``truth``; nothing for one supernet."""
    if len(wholes) < 2:
        return {}
    pairs = [float(stats.kendalltau(a, b).statistic) for a, b in itertools.combinations(wholes, 2)]
    mean = pd.concat(wholes, axis=1).mean(axis=1)
    return {"between_supernets_whole_split_tau": spread(pairs),
            "mean_of_supernets_whole_split_tau": float(stats.kendalltau(mean, truth).statistic)}


def mean_ceilings(table: pd.DataFrame) -> Dict[str, Any]:
    """What a ground truth of seed means allows, beside the one-seed ceiling the target is judged by.

    The supernet is judged by the table's mean over its seeds, which agrees with the genotypes' true
    ranking better than one seed does: ``noiseless_against_table_mean_tau`` is that agreement as the
    rank model projects it (the most any ranking can score here), and ``one_seed_against_rest_tau``
    is what one stand-alone run of each genotype scores against the mean of the other seeds, measured.
    """
    seeds = int(table.groupby("genotype")["seed"].nunique().min())
    noise = seed_noise(complete_seeds(table))
    one_seed_tau = noise.get("rank_model", {}).get("one_seed_tau", math.nan)  # absent below 2 complete seeds
    return {"table_seeds": seeds,
            "noiseless_against_table_mean_tau": rank_model(one_seed_tau, counts=(seeds,))
            ["noiseless_against_mean_tau"].get(seeds),
            "one_seed_against_rest_tau": noise.get("one_seed_vs_mean_of_the_others_tau", {}).get("mean")}


def spread(values: Sequence[float]) -> Dict[str, float]:
    """Mean, min and max of one figure over search seeds."""
    return {"mean": statistics.mean(values), "min": min(values), "max": max(values), "n": len(values)}


def markdown(result: Dict[str, Any]) -> str:
    """The README's fidelity table: one row per variant and BN mode, the mean over its search seeds
    with the range, from a result file."""
    def cell(figure: Dict[str, float]) -> str:
        return f"{figure['mean']:.2f}" + (f" ({figure['min']:.2f} to {figure['max']:.2f})" if figure["n"] > 1 else "")

    lines = ["| supernet of the search | BN at scoring | search seeds | tau, whole split (derive) | tau, one common "
             "block of 256 (a round's reward) | tau, own block of 256 (before issue 15) | its mean accuracy over "
             f"the {result['genotypes']} genotypes, % |", "|" + " --- |" * 7]
    for row in result["by_variant"]:
        tau, seeds = row["tau"], [s for s in row["search_seeds"] if s is not None]
        lines.append(f"| {row['variant']} | {row['bn_mode']} | {', '.join(map(str, seeds)) or '-'} | "
                     f"{cell(tau['whole_split'])} | {cell(tau['common_block_mean'])} | {cell(tau['own_block_mean'])} | "
                     f"{100 * row['supernet_whole_split_mean']:.1f} |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the runs of search_outcome.py --quick")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS),
                        help="default: all; none (--variants alone): only the --run runs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="search seeds of every variant (default 0)")
    parser.add_argument("--runs", type=Path, default=RUNS)
    parser.add_argument("--outcome-runs", type=Path, default=OUTCOME_RUNS)
    parser.add_argument("--run", action="append", default=[], metavar="LABEL=DIR",
                        help="also score this finished search run (e.g. supernet_landscape.py's --run)")
    parser.add_argument("--table", type=Path, default=TABLE, metavar="PARQUET",
                        help="the stand-alone table to judge by (default results/standalone_table.parquet, budget B)")
    parser.add_argument("--summary", action="store_true", help="search and score nothing: judge the runs already "
                        "scored against --table")
    parser.add_argument("--markdown", action="store_true", help="print the README's table of the result file, run nothing")
    parser.add_argument("--label", help="appended to the result file's name: a measurement kept beside an earlier one")
    args = parser.parse_args(argv)
    name = ("reward_fidelity_quick" if args.quick else "reward_fidelity") + standalone_table.judged_by(args.table, TABLE)
    name += f"_{args.label}" if args.label else ""
    if args.markdown:
        print(markdown(json.loads((RESULTS / f"{name}.json").read_text())))
        return
    extra = [text.partition("=")[::2] for text in args.run]
    if not args.variants and not extra:
        fail("--variants: none given and no --run: nothing to score")
    for label, folder in extra:
        # --summary reads only stored scores, so a run directory deleted since it was scored still counts
        if not label or not (args.summary or is_run(Path(folder))):
            fail(f"--run {label}={folder}: want LABEL=DIR, DIR a search's run directory")
    if args.quick:
        args.variants = ["default", "random"]
        args.outcome_runs = args.outcome_runs.parent / "quick"
    scores_path = RESULTS / f"{'reward_fidelity_quick' if args.quick else 'reward_fidelity'}_scores.parquet"
    table = standalone_table.load_table(args.table, "--table")
    genotypes = sorted(table["genotype"].unique())
    base = search_outcome.QUICK_SEARCH if args.quick else {}
    if any(seed < 0 for seed in args.seeds):
        fail(f"--seeds {' '.join(map(str, args.seeds))}: search seeds are >= 0")
    wanted = [((v, seed), lambda v=v, seed=seed: variant_run(v, seed, args.runs, args.outcome_runs, base))
              for v in args.variants for seed in args.seeds]
    wanted += [((label, None), lambda folder=folder: Path(folder).resolve()) for label, folder in extra]
    # the runs that exist first, so that a long variant search never holds back what can be scored now
    wanted.sort(key=lambda item: item[0][1] is not None and
                not (variant_folder(*item[0], args.runs, args.outcome_runs) / "winner.json").exists())
    scores = pd.read_parquet(scores_path) if scores_path.exists() else pd.DataFrame(columns=["run", "genotype"])
    if args.summary:
        summarise_scored(scores, table, wanted, args, name)
        return
    names: Dict[str, Tuple[str, Optional[int]]] = {}
    for (variant, seed), obtain in wanted:
        run = repository_path(obtain())
        names[run] = (variant, seed)
        done = set(scores.loc[scores["run"] == run, "genotype"])
        if set(genotypes) - done:
            scores = pd.concat([scores, score_run(REPOSITORY / run, [g for g in genotypes if g not in done])], ignore_index=True)
            standalone_table.write_table(scores, scores_path)
        result = document(name, args, table, scores, names)
        write_result(RESULTS / f"{name}.json", result)  # after every run: an interrupted benchmark keeps its rows
    show_result(result)



def document(name: str, args: argparse.Namespace, table: pd.DataFrame, scores: pd.DataFrame,
             names: Dict[str, Tuple[str, Optional[int]]]) -> Dict[str, Any]:
    """The result file: the machine, the settings (with the table judged by) and the summary."""
    return {"benchmark": name, "machine": describe_machine(),
            "settings": {"variants": {v: VARIANTS[v] for v in args.variants}, "search_seeds": args.seeds,
                         "standalone_table": f"{Path(args.table).name} (mean over its seeds)",
                         "standalone_table_runs": int(len(table)),
                         "standalone_budget": standalone_table.budget_of(table, "--table"),
                         "supernet_init_seeds": supernet_init_seeds(names)},
            **summarise(scores[scores["run"].isin(names)], table, names)}


def supernet_init_seeds(names: Dict[str, Tuple[str, Optional[int]]]) -> Dict[str, Optional[int]]:
    """Each run's supernet initial-weight seed, from its config.yaml: before ``--seed`` reached the
    supernet every search started from seed 0 (evaluator.seed). None where the run is gone."""
    seeds = {}
    for run in names:
        try:
            seeds[run] = saved_config(RunDir(str(REPOSITORY / run)).read_config()).evaluator.seed
        except (OSError, ValueError):
            seeds[run] = None
    return seeds


def summarise_scored(scores: pd.DataFrame, table: pd.DataFrame, wanted: Sequence[Tuple[Tuple[str, Optional[int]], Any]],
                     args: argparse.Namespace, name: str) -> None:
    """--summary: judge against ``table`` the wanted runs whose scores hold every genotype of it."""
    names: Dict[str, Tuple[str, Optional[int]]] = {}
    for (label, seed), obtain in wanted:
        run = repository_path(variant_folder(label, seed, args.runs, args.outcome_runs) if seed is not None else obtain())
        if set(table["genotype"]) <= set(scores.loc[scores["run"] == run, "genotype"]):
            names[run] = (label, seed)
        elif seed is None:
            fail(f"--run {label}: {run} is not scored on every genotype of {args.table}; "
                 "run without --summary to score it")
    if not names:
        fail(f"no run of {', '.join(args.variants)} at search seeds {' '.join(map(str, args.seeds))} is scored on "
             f"every genotype of {args.table}; run without --summary to score them")
    result = document(name, args, table, scores, names)
    write_result(RESULTS / f"{name}.json", result)
    show_result(result)


if __name__ == "__main__":
    main()
