"""Ranking fidelity when each candidate is fine-tuned briefly before it is scored.

A supernet's shared weights are trained under many genotypes at once, so a genotype whose block
changes the signal most (a batch-norm excitation, a log-sum-exp squeeze) meets a backbone tuned
to the others. Here every genotype of the stand-alone table gets ``--steps`` SGD steps of its own
on the shared weights of a finished search (the same training batches for every genotype, a
constant ``--lr``), is scored on the whole validation split with BN batch statistics, and the
weights are put back before the next genotype. Kendall's tau against the stand-alone table's
mean test accuracy is reported per run and step count, beside the run's tau without fine-tuning
(``--steps 0`` is always measured).
The untrained supernets scored while the supernet drew its attention ops in another order (commits
5068642 to 74008ca: other initial weights for the same init seed) are labelled ``scratch-5068642``
and summarised apart from today's ``scratch``.

    python benchmarks/finetune_fidelity.py [--runs DIR ...] [--steps 0 20 80] [--lr 0.01] [--threads 2]
        [--train all|attention_bn] [--batch-size 128] [--scratch [INIT_SEED ...]]

``--train attention_bn`` is the derive stage's per-genotype correction (``evaluator/correction.py``,
``evaluator.correction_steps``): only the genotype's attention ops and every BN scale and shift
move. The correction as measured for docs/ranking_fidelity.md:

    python benchmarks/finetune_fidelity.py --runs benchmarks/runs/search_outcome_seeded/default/rl-seed{0,1,2} \
        --steps 200 --lr 0.05 --train attention_bn --truth benchmarks/results/standalone_table_12seeds.parquet \
        --result finetune_correction

and on the likelihood search's supernets (the former ``--config corrected``'s derive stage) the same with
``--runs benchmarks/runs/supernet_variants/likelihood_reward/rl-seed{0,1,2} --result finetune_correction_likelihood``.
Each summary also says where its ranking is won or lost (``by_gate_family``: tau within the
near-identity and the modulating genotypes) and what the table allows there (``gate_families``).

``--runs`` defaults to the three RL run directories of the default search as it was measured here,
with 4 warm-up rounds (``reward_fidelity.py``'s ``warmup-4`` variant, search seeds 0-2).
``--scratch`` is the control: the same fine-tuning from a supernet at its initial weights (the
first run's config; drawn with each INIT_SEED, default 0, the embedded config's own) instead of
a search's, which tells how much of the ranking the shared weights give and how much the
fine-tuning steps alone, or the untrained network, would.
``--truth`` names the stand-alone tables (budget B, one row per genotype and seed) whose genotypes
are scored and ranked against: by default the stand-alone table's 24. Giving
``search_outcome_standalone.parquet`` as well checks a finding on genotypes outside that table
(the searches' winners); ``--result`` then names the summary so that it does not replace this one.
A genotype's step counts are read along one trajectory: it is trained to the largest and scored
on the way at each smaller one (a count scores as a trajectory of only that length would; the
``trajectory`` column says how long the one it was read from was, ``seconds`` what that took).
Scores go to ``results/finetune_fidelity_scores.parquet`` as each genotype is finished, so an
interrupted benchmark resumes; the summary to ``results/<--result>.json`` (``finetune_fidelity``).
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from common import RESULTS, fail, repository_path, show_result, write_result  # first: the import path

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from scipy import stats  # noqa: E402
from tqdm import tqdm  # noqa: E402

from evaluator.correction import CORRECTION_BATCH_SEED, correcting  # noqa: E402
from evaluator.few_shot import SPLITS, gate_family  # noqa: E402
from evaluator.training import Reward, SharedTrainingConfig, mean_reward, reward  # noqa: E402
from evaluator.worker import Evaluator  # noqa: E402
from machine import describe_machine  # noqa: E402
from reward_fidelity import evaluator_of, is_run, mean_ceilings, variant_folder  # noqa: E402
from searchspace import KNOWN, from_key  # noqa: E402
import standalone_table  # noqa: E402

WARMUP_4_RUNS = [variant_folder("warmup-4", seed) for seed in range(3)]


TRAINED = ("all", "attention_bn")  # --train: every shared weight, or the correction's attention and BN parameters


def finetuned_rewards(evaluator: Evaluator, key: str, steps: Sequence[int], lr: float, train: str = "all",
                      batch_size: Optional[int] = None) -> Dict[int, Reward]:
    """Whole-split validation reward (accuracy and loss) of ``key`` after each of ``steps`` SGD steps of
    its own, read along one trajectory (``evaluator/correction.py``: fresh momentum, constant ``lr``,
    the training batches of seed 0, as the derive stage's correction; a length scores as a
    trajectory of only that length would), on every shared weight (``train`` "all") or on the
    correction's attention and BN parameters ("attention_bn"); the weights are restored after."""
    supernet, data, config = evaluator.supernet, evaluator.data, evaluator.config
    lengths = sorted(set(steps))
    batches = data.train_batches(batch_size or config.training.batch_size, lengths[-1], seed=CORRECTION_BATCH_SEED,
                                 memory_format=evaluator.memory_format)
    genotype, scored, done = from_key(key), {}, 0
    with correcting(supernet, genotype, batches, lr, config.training, every_weight=train == "all") as advance:
        for length in lengths:
            advance(length - done)
            done = length
            parts = [(reward(supernet, genotype, images, labels), len(labels)) for images, labels in
                     data.batches("val", config.reward_images, shuffle=False, memory_format=evaluator.memory_format)]
            scored[length] = mean_reward(parts)
    return scored


def finetuned_reward(evaluator: Evaluator, key: str, steps: int, lr: float, train: str = "all",
                     batch_size: Optional[int] = None) -> Reward:
    """``finetuned_rewards`` at one length."""
    return finetuned_rewards(evaluator, key, [steps], lr, train, batch_size)[steps]


def scratch(run: Path, seed: int) -> Callable[[], Evaluator]:
    """An evaluator with ``run``'s settings and data and its supernet at initial weights drawn with ``seed``."""
    def load() -> Evaluator:
        evaluator = evaluator_of(run, checkpoint=False)
        evaluator.supernet.load_state_dict(evaluator.initial_supernet(seed).state_dict())
        return evaluator
    return load


def truth_runs(paths: Sequence[Path]) -> pd.DataFrame:
    """The stand-alone runs (genotype, seed, test accuracy) of the tables at ``paths``, a genotype in
    several with all its runs; exit 2 when a table is missing or lacks the columns."""
    tables = []
    for path in paths:
        if not path.is_file():
            fail(f"--truth {path}: no such stand-alone table")
        table = pd.read_parquet(path)
        if not {"genotype", "seed", "test_accuracy"} <= set(table.columns):
            fail(f"--truth {path}: want the columns genotype, seed and test_accuracy (a stand-alone table)")
        tables.append(table[["genotype", "seed", "test_accuracy"]])
    return pd.concat(tables, ignore_index=True).drop_duplicates(["genotype", "seed"])


def ground_truth(paths: Sequence[Path]) -> pd.Series:
    """Mean stand-alone test accuracy per genotype over the tables at ``paths``."""
    return truth_runs(paths).groupby("genotype")["test_accuracy"].mean()


def family_of(keys) -> pd.Series:
    """Each genotype key's gate family (0 near-identity, 1 modulating; ``evaluator.few_shot.gate_family``)."""
    return pd.Series([gate_family(from_key(key)) for key in keys], index=list(keys))


def gate_families(runs: pd.DataFrame) -> Dict[str, Any]:
    """The stand-alone side of :func:`within_families`: per gate family (near-identity, modulating), its
    genotypes, mean accuracy and spread, and what one stand-alone seed ranks within it against the
    other seeds' mean."""
    split = SPLITS["gate_family"]
    truth = runs.groupby("genotype")["test_accuracy"].mean()
    family = family_of(truth.index)
    means = [100 * truth[family == f] for f in range(split.shots)]
    return {"families": split.regions,
            "genotypes": [len(m) for m in means],
            "truth_mean_points": [float(m.mean()) for m in means],
            "truth_sd_points": [float(m.std()) for m in means],
            "truth_spread_points": [float(m.max() - m.min()) for m in means],
            "one_seed_against_rest_tau": [mean_ceilings(runs[runs["genotype"].isin(m.index)])["one_seed_against_rest_tau"]
                                          for m in means],
            "tau_with_order_random_within": [order_random_within(truth, family == f) for f in range(split.shots)]}


def order_random_within(truth: pd.Series, inside: pd.Series, draws: int = 2000) -> Dict[str, float]:
    """What a ranking can score over all genotypes when it is ``truth``'s except among the ``inside``
    ones, whose order is random (their values shuffled among them; seeded draws)."""
    rng, taus, where = np.random.default_rng(0), [], np.flatnonzero(inside.to_numpy())
    for _ in range(draws):
        ranking = truth.to_numpy().copy()
        ranking[where] = rng.permutation(ranking[where])
        taus.append(float(stats.kendalltau(ranking, truth.to_numpy()).statistic))
    return {"mean": statistics.fmean(taus), "p5": float(np.percentile(taus, 5)), "p95": float(np.percentile(taus, 95)),
            "draws": draws}


def within_families(group: pd.DataFrame, truth: pd.Series) -> Dict[str, Any]:
    """Where one (start, steps) group's ranking is won or lost: per gate family, tau within it per run
    (by accuracy and by loss) and the mean score, over the runs and per run; the gap between the
    families' means is the bias."""
    family = family_of(truth.index)
    measures: Dict[str, Any] = {"tau_per_run": [], "tau_by_loss_per_run": [], "score_mean_points": [],
                                "score_mean_points_per_run": []}
    for f in range(SPLITS["gate_family"].shots):
        members = family.index[family == f]
        part = group[group["genotype"].isin(members)]
        runs = list(part.groupby("run", sort=False))
        ordered = runs if len(members) > 1 else []  # no order within one genotype
        measures["tau_per_run"].append([tau(scores, truth[members]) for _, scores in ordered])
        measures["tau_by_loss_per_run"].append([tau(scores, truth[members], "loss") for _, scores in ordered]
                                               if "loss" in part and part["loss"].notna().all() else None)
        measures["score_mean_points"].append(100 * float(part["accuracy"].mean()))
        measures["score_mean_points_per_run"].append([100 * float(scores["accuracy"].mean()) for _, scores in runs])
    return measures


def tau(scores: pd.DataFrame, truth: pd.Series, by: str = "accuracy") -> float:
    """Kendall's tau of one (run, steps) group's accuracies (``by`` "loss": its losses, lowest first)
    against ``truth`` over its genotypes."""
    score = scores.set_index("genotype")[by].loc[truth.index]
    return float(stats.kendalltau(-score if by == "loss" else score, truth).statistic)


def summarise(scores: pd.DataFrame, truth: pd.Series) -> List[Dict[str, Any]]:
    """Per start (a search's weights or ``scratch``) and step count: tau per run, their mean and sd,
    the tau of the runs' mean accuracy per genotype, and the mean accuracy over the genotypes; runs
    not yet scored on every genotype are left out."""
    rows = []
    # "scratch (init seed 3)" -> "scratch"; an earlier draw order's "scratch-5068642 (init seed 3)" apart
    start = scores["run"].map(lambda run: run.split(" (")[0] if run.startswith("scratch") else "search")
    for (origin, steps), group in scores.groupby([start, "steps"]):
        per_run = {run: tau(part, truth) for run, part in group.groupby("run", sort=False) if len(part) == len(truth)}
        if per_run:
            rows.append({"start": origin, "steps": int(steps), "tau_per_run": per_run,
                         "tau_mean": statistics.mean(per_run.values()),
                         "tau_sd": statistics.stdev(per_run.values()) if len(per_run) > 1 else None,
                         # the runs' scores averaged per genotype first, as an ensemble of them would rank
                         "tau_of_mean_accuracy": tau(group[group["run"].isin(per_run)].groupby("genotype", as_index=False)
                                                     ["accuracy"].mean(), truth),
                         "accuracy_mean": float(group["accuracy"].mean()),
                         **by_loss(group[group["run"].isin(per_run)], truth),
                         "by_gate_family": within_families(group[group["run"].isin(per_run)], truth),
                         "best_known_rank": best_known_rank(group[group["run"].isin(per_run)], truth),
                         "seconds_per_genotype": float(group["seconds"].mean())})
    return rows


def best_known_rank(group: pd.DataFrame, truth: pd.Series) -> Dict[str, Any]:
    """Where each run puts the known module that is first stand-alone (SRM on the 12-seed table):
    its rank among the truth's genotypes (1 = best) by accuracy and, where there are losses, by loss."""
    known = {g.key: name for name, g in KNOWN.items() if g.key in truth.index}
    if not known:
        return {}
    best = truth.loc[list(known)].idxmax()
    found: Dict[str, Any] = {"best_known": known[best], "rank_by_accuracy_per_run": {}, "rank_by_loss_per_run": {}}
    for run, part in group.groupby("run", sort=False):
        scores = part.set_index("genotype")
        found["rank_by_accuracy_per_run"][run] = int((scores["accuracy"] > scores.loc[best, "accuracy"]).sum()) + 1
        if "loss" in scores and scores["loss"].notna().all():
            found["rank_by_loss_per_run"][run] = int((scores["loss"] < scores.loc[best, "loss"]).sum()) + 1
    return found


def by_loss(group: pd.DataFrame, truth: pd.Series) -> Dict[str, Any]:
    """Tau by loss per run and its mean, where the group's rows have losses (rows of earlier versions have none)."""
    if "loss" not in group or group["loss"].isna().any():
        return {}
    per_run = {run: tau(part, truth, "loss") for run, part in group.groupby("run", sort=False)}
    return {"tau_by_loss_per_run": per_run, "tau_by_loss_mean": statistics.mean(per_run.values())}


def same_setting(scores: pd.DataFrame, args: argparse.Namespace) -> pd.Series:
    """The rows measured with this invocation's learning rate, trained parameters and batch size."""
    return (scores["lr"] == args.lr) & (scores["train"] == args.train) & (scores["batch_size"] == args.batch_size)


def summarised(scores: pd.DataFrame, args: argparse.Namespace) -> pd.Series:
    """The rows of this invocation's ``--runs`` and of the scratch control, not those of other searches
    measured at the same setting (each such set of runs has its own ``--result``)."""
    return scores["run"].isin([repository_path(run) for run in args.runs]) | scores["run"].str.startswith("scratch")


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, nargs="+", default=WARMUP_4_RUNS)
    parser.add_argument("--steps", type=int, nargs="+", default=[0, 20, 80], help="fine-tuning steps per genotype")
    parser.add_argument("--lr", type=float, default=0.01, help="constant learning rate of the fine-tuning")
    parser.add_argument("--train", choices=TRAINED, default="all",
                        help="what the steps train: every shared weight (all, the default) or the attention and BN parameters (attention_bn)")
    parser.add_argument("--batch-size", type=int, default=SharedTrainingConfig().batch_size,
                        help="images per fine-tuning step (default: the search's)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--scratch", type=int, nargs="*", metavar="INIT_SEED",
                        help="the control: start from initial weights (the first run's config) drawn with these seeds (default 0)")
    parser.add_argument("--truth", type=Path, nargs="+", default=[RESULTS / "standalone_table.parquet"],
                        help="stand-alone tables at budget B whose genotypes are scored (default: the stand-alone table)")
    parser.add_argument("--result", default="finetune_fidelity", help="name of the summary in results/ (default finetune_fidelity)")
    args = parser.parse_args(argv)
    for run in args.runs:
        if not is_run(run):
            fail(f"--runs {run}: not a search's run directory (no checkpoints/)")
    if any(s < 0 for s in args.steps) or args.lr <= 0 or args.batch_size < 1:
        fail(f"--steps {' '.join(map(str, args.steps))} --lr {args.lr} --batch-size {args.batch_size}: "
             "steps must be >= 0, lr > 0 and the batch size >= 1")
    torch.set_num_threads(args.threads)
    truth_table = truth_runs(args.truth)
    truth = truth_table.groupby("genotype")["test_accuracy"].mean()
    scores_path = RESULTS / "finetune_fidelity_scores.parquet"
    scores = pd.read_parquet(scores_path) if scores_path.exists() else pd.DataFrame(columns=["run", "steps", "genotype", "lr"])
    # rows of earlier versions trained every weight at the search's batch size and kept no loss
    scores = scores.assign(**{column: scores[column] if column in scores else value for column, value in
                              [("train", "all"), ("batch_size", SharedTrainingConfig().batch_size), ("loss", float("nan"))]})
    # rows of earlier versions each had a trajectory of their own length
    scores["trajectory"] = scores["trajectory"].fillna(scores["steps"]) if "trajectory" in scores else scores["steps"]
    setting = same_setting(scores, args)
    if args.scratch is None:
        runs = [(repository_path(run), lambda run=run: evaluator_of(run)) for run in args.runs]
    else:
        runs = [(f"scratch (init seed {seed})", scratch(args.runs[0], seed)) for seed in args.scratch or [0]]
    plan = sorted(set([0] + args.steps))
    for label, load in runs:
        evaluator = None  # loaded only when this run has genotypes left to score
        done = scores.loc[setting & (scores["run"] == label)].groupby("genotype")["steps"].agg(set)
        left = {g: [s for s in plan if s not in done.get(g, set())] for g in truth.index
                if not set(plan) <= done.get(g, set())}
        if left:
            evaluator = load()
            torch.set_num_threads(args.threads)  # the evaluator set the run's CPUs
        for key, lengths in tqdm(left.items(), desc=f"{Path(label).name}, {' '.join(map(str, plan))} steps", unit="genotype"):
            start = time.perf_counter()
            scored = finetuned_rewards(evaluator, key, lengths, args.lr, args.train, args.batch_size)
            seconds = time.perf_counter() - start  # the whole trajectory's, on each of its rows
            rows = [{"run": label, "steps": steps, "lr": args.lr, "train": args.train, "batch_size": args.batch_size,
                     "genotype": key, "accuracy": r.val_accuracy, "loss": r.val_loss, "seconds": seconds,
                     "trajectory": max(lengths)} for steps, r in scored.items()]
            scores = pd.concat([scores, pd.DataFrame(rows)], ignore_index=True)
            standalone_table.write_table(scores, scores_path)  # each genotype saved: a stopped run resumes
        setting = same_setting(scores, args) & summarised(scores, args)
        result = {"benchmark": "finetune_fidelity", "machine": describe_machine(),
                  "settings": {"lr": args.lr, "batch_size": args.batch_size, "train": args.train,
                               "optimizer": "the search's SGD (Nesterov 0.9, L2 2.5e-4), fresh momentum",
                               "train_batches": "seed 0, the same for every genotype",
                               "scoring": "whole validation split, BN batch statistics",
                               "truth": f"{', '.join(p.name for p in args.truth)}: mean test accuracy over seeds"},
                  "genotypes": int(len(truth)), "gate_families": gate_families(truth_table),
                  "by_steps": summarise(scores[setting & scores["genotype"].isin(truth.index)], truth)}
        write_result(RESULTS / f"{args.result}.json", result)
    show_result(result)


if __name__ == "__main__":
    main()
