"""Supernet variants against the default: does a change to the search make its supernet rank like stand-alone training?

Each variant is the embedded default config with a few settings changed (``VARIANTS``). It runs
the variant's search at search seeds 0-2 (each with its own supernet seed, as the default's
seeded searches), resumable as ``search_outcome.py``'s searches are, then scores the 12-seed
stand-alone table's 24 genotypes on each finished search as its derive stage scores them
(``derive_measures.measure_run``) and ranks them against the table's means (Kendall tau): by
accuracy, by loss and by pooled ridge estimates. The default's figures are
``results/derive_measures.json`` (the same measures on the seeded default searches).

Budget rule (the issue's): about 45 min of 2 cores per variant for its 3 seeds; a variant that
loses to the default on the 3-seed mean of its derive-stage ranking is recorded and dropped.

    python benchmarks/supernet_variants.py likelihood_reward [--seeds 3]

Writes ``results/supernet_variant_<name>.json``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from common import RESULTS, repository_path, show_result, write_result  # first: Ray's loopback environment

import pandas as pd  # noqa: E402

import derive_measures  # noqa: E402
import search_outcome  # noqa: E402
from finetune_fidelity import within_families  # noqa: E402
from machine import describe_machine  # noqa: E402
from rundir import RunDir  # noqa: E402
from searchspace import from_key  # noqa: E402

RUNS = Path(__file__).resolve().parent / "runs" / "supernet_variants"
# name -> (the settings changed from the default, what the derive stage ranks by under it, why)
VARIANTS: Dict[str, Dict[str, Any]] = {
    "likelihood_reward": {
        "changes": {"evaluator": {"reward_metric": "likelihood"}}, "derive_ranks_by": "loss",
        "why": "ranking the default searches' derive scores by loss beat accuracy (0.32 against 0.25); "
               "as the reward, the controller also samples and trains by it"},
    "few_shot_gate_family": {
        "changes": {"evaluator": {"few_shot": "gate_family"}}, "derive_ranks_by": "accuracy",
        "why": "the bias splits along gate activity (near-identity fc gates on top, modulating bn/eca gates and "
               "squeezes as gates at the bottom): with a sub-supernet per family from round 7 on, a modulating "
               "gate is judged on a backbone trained with modulating gates (few-shot NAS, Zhao et al. 2021)"},
    "few_shot_gate_family_balanced": {
        "changes": {"evaluator": {"few_shot": "gate_family", "few_shot_training": "balanced"}},
        "derive_ranks_by": "accuracy",
        "why": "few_shot_gate_family's controller sampled the modulating region 5-10 % of the time after the split, "
               "so that sub-supernet stopped learning: here each sub-supernet gets half of every round's steps"},
    "likelihood_few_shot_gate_family": {
        "changes": {"evaluator": {"reward_metric": "likelihood", "few_shot": "gate_family"}}, "derive_ranks_by": "loss",
        "why": "the two that beat the default, combined: likelihood as the reward (0.36) and the gate-family split "
               "(0.32); the likelihood controller may starve the modulating sub-supernet less"},
    "likelihood_excitation_per_squeeze": {
        "changes": {"evaluator": {"reward_metric": "likelihood", "excitation_per_squeeze": True}},
        "derive_ranks_by": "loss",
        "why": "the near-identity genotypes that no variant orders differ mostly by their squeeze under the same fc "
               "excitation, whose weights the default shares across squeezes; with an excitation per squeeze "
               "(measured with accuracy rewards and 4 warm-up rounds) the supernets ordered that family at 0.17 by "
               "accuracy where their baseline's did at -0.07, so it is added to the best reward, likelihood"},
    "few_shot_spatial_branch": {
        "changes": {"evaluator": {"few_shot": "spatial_branch"}}, "derive_ranks_by": "accuracy",
        "why": "the other split: a spatial gate rescales every position, a channel gate every map; two "
               "sub-supernets from round 7 on, without and with a spatial branch"},
}


def run_variant(name: str, seeds: int, cpus: Optional[float] = None) -> Dict[str, Optional[float]]:
    """The variant's searches, run or resumed or found finished; their wall seconds by run."""
    folder = RUNS / name
    options = ["--cpus-per-worker", str(cpus)] if cpus else []
    return {f"rl-seed{s}": search_outcome.run_search(folder / f"rl-seed{s}", "rl", s, VARIANTS[name]["changes"],
                                                     folder / "seconds.json", options) for s in range(seeds)}


def few_shot_measures(split_name: str, scores: Dict[Path, pd.DataFrame], truth: pd.Series) -> Dict[str, Any]:
    """Where a few-shot variant's ranking is won or lost: tau within each shot's region (its own
    supernets, and the default's seeded searches scored alike), and the share of each run's scored
    samples in each region after the split (the controller trains a shot as often as it samples it)."""
    from evaluator.few_shot import SPLITS
    from search.config import saved_config

    split = SPLITS[split_name]
    region = pd.Series([split.region(from_key(k)) for k in truth.index], index=truth.index)
    after = saved_config(RunDir(str(next(iter(scores)))).read_config()).evaluator.few_shot_from_round
    default_runs = [derive_measures.SEEDED / f"rl-seed{s}" for s in range(len(scores))]
    default_scores = [derive_measures.truth_scores(run, truth) for run in default_runs]

    def within(frames: Sequence[pd.DataFrame], shot: int) -> list:
        members = region.index[region == shot]
        return [derive_measures.tau(f.loc[members, "val_accuracy"], truth[members]) for f in frames]

    def sample_shares(run: Path) -> list:
        log = RunDir(str(run)).read_rewards()
        later = log[log["round"] > after]["genotype"].map(lambda k: split.region(from_key(k)))
        return [float((later == shot).mean()) for shot in range(split.shots)]

    return {"regions": split.regions, "from_round": after,
            "table_genotypes_per_region": [int((region == shot).sum()) for shot in range(split.shots)],
            "tau_within_region": {str(shot): {"variant": within(list(scores.values()), shot),
                                              "default": within(default_scores, shot)} for shot in range(split.shots)},
            "sample_share_after_split": {"variant": [sample_shares(run) for run in scores],
                                         "default": [sample_shares(run) for run in default_runs]},
            "truth_mean_per_region_points": [100 * float(truth[region == s].mean()) for s in range(split.shots)],
            "score_mean_per_region_points": {
                "variant": [100 * statistics.fmean(float(f.loc[region == s, "val_accuracy"].mean())
                                                   for f in scores.values()) for s in range(split.shots)],
                "default": [100 * statistics.fmean(float(f.loc[region == s, "val_accuracy"].mean())
                                                   for f in default_scores) for s in range(split.shots)]}}


def by_gate_family(scores: Dict[Path, pd.DataFrame], truth: pd.Series) -> Dict[str, Any]:
    """Where each run's ranking is won or lost, as ``finetune_fidelity`` reports it: tau within the
    near-identity and the modulating genotypes, by accuracy and by loss, and their mean scores.
    ``scores``: each run's ``derive_measures.truth_scores``."""
    frame = pd.concat([found.reset_index().assign(run=repository_path(run)) for run, found in scores.items()])
    return within_families(frame.rename(columns={"val_accuracy": "accuracy", "val_loss": "loss"}), truth)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cpus-per-worker", type=float, help="the searches' torch threads (default: the config's 2); "
                        "1 beside another job, so that the two do not oversubscribe the cores")
    args = parser.parse_args(argv)
    variant = VARIANTS[args.variant]
    seconds = run_variant(args.variant, args.seeds, args.cpus_per_worker)
    truth = pd.read_parquet(derive_measures.TABLE).groupby("genotype")["test_accuracy"].mean()
    start = time.perf_counter()
    runs = [RUNS / args.variant / run for run in seconds]
    scores = {run: derive_measures.truth_scores(run, truth) for run in runs}
    per_run = {repository_path(run): derive_measures.measure_run(run, truth, derive_measures.RIDGE, scores[run])
               for run in runs}
    measures = list(next(iter(per_run.values())))
    summary = {m: {"mean": statistics.fmean(r[m] for r in per_run.values()),
                   "per_run": [r[m] for r in per_run.values()]} for m in measures}
    default = json.loads((RESULTS / "derive_measures.json").read_text())["summary"]
    ranked_by = variant["derive_ranks_by"]
    result = {
        "benchmark": f"supernet_variant_{args.variant}", "machine": describe_machine(),
        "settings": {"variant": args.variant, "changes": variant["changes"], "why": variant["why"],
                     "search_seeds": args.seeds, "table": repository_path(derive_measures.TABLE),
                     "truth": "mean test accuracy over 12 seeds", "genotypes": len(truth),
                     "derive_ranks_by": ranked_by, "cpus_per_worker": args.cpus_per_worker or "the config's"},
        "search_seconds": seconds, "winners": {run: RunDir(str(RUNS / args.variant / run)).read_winner().key
                                               for run in seconds},
        "per_run": per_run, "summary": summary,
        "default": {"derive_ranks_by": "accuracy", "tau_mean": default["accuracy"]["mean"], "summary": default},
        "tau_mean_as_its_derive_stage_ranks": summary[ranked_by]["mean"],
        "beats_default": summary[ranked_by]["mean"] > default["accuracy"]["mean"],
        "scoring_seconds": time.perf_counter() - start}
    result["by_gate_family"] = by_gate_family(scores, truth)
    few_shot = variant["changes"].get("evaluator", {}).get("few_shot")
    if few_shot:
        result["few_shot"] = few_shot_measures(few_shot, scores, truth)
    write_result(RESULTS / f"supernet_variant_{args.variant}.json", result)
    shown = ("search_seconds", "winners", "tau_mean_as_its_derive_stage_ranks", "beats_default")
    show_result({k: result[k] for k in shown} | {"summary": {m: round(v["mean"], 3) for m, v in summary.items()}})


if __name__ == "__main__":
    main()
