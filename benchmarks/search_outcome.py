"""Search outcome: the winner of a default search against none, SE, ECA and CBAM, stand-alone.

Runs the default search (`experiments/configs/default.yaml`), then stage 2 (Ray Tune) on its
best candidate and the baselines, several seeds each, and records mean, std, parameters and
latency. --quick shrinks both to a smoke run (a few rounds, 1 epoch, 1 seed, 2k images).

    python benchmarks/search_outcome.py [--quick] [--seeds 3] [--epochs 1] [--batch-size 32] [--lr 0.05] [--run DIR]

Writes benchmarks/results/search_outcome.json (search_outcome_quick.json with --quick).
"""
from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

from common import RESULTS, show_result, write_result

import ray  # noqa: E402
import torch  # noqa: E402

from evaluator.data import DEFAULT_DATASET, load_dataset  # noqa: E402
from evaluator.standalone import StandaloneConfig, measure_cost, seeded_model  # noqa: E402
from machine import describe_machine  # noqa: E402
from rundir import RunDir  # noqa: E402
from search.loop import search  # noqa: E402
from search.start import prepare  # noqa: E402
from stage2.retrain import retrain  # noqa: E402
from stage2.settings import DEFAULT_BASELINES, Stage2Settings  # noqa: E402

BASELINES = list(DEFAULT_BASELINES)
QUICK = {"rounds": 3, "train_steps": 8, "samples_per_round": 6, "derive_top": 2, "derive_samples": 2,
         "evaluator.dataset_options": {"train_size": 2000, "val_size": 500, "test_size": 500}}


def idle_latency(summary: list[dict], options: dict) -> None:
    """Latency per image at batch 1 and 64 of every model, measured one model at a time with one
    thread once stage 2 is over: stage 2's own figures were taken while other trials trained."""
    torch.set_num_threads(1)
    data = load_dataset(DEFAULT_DATASET, seed=0, **options)  # the default search's dataset
    for row in summary:
        model = seeded_model(StandaloneConfig(), row["genotype"], data.num_classes).to(memory_format=torch.channels_last)
        cost = measure_cost(model, data, torch.device("cpu"), torch.channels_last, repeats=20)
        row["latency_ms_idle_batch1"] = cost["latency_ms_batch1"]
        row["latency_ms_idle_batch64"] = cost["latency_ms_batch64"]


def winner_minus_baseline(summary: list[dict]) -> dict:
    """The winner's (the best candidate's) mean test accuracy minus the best baseline's, with the
    standard error of that difference: sqrt(s1^2/n1 + s2^2/n2) from each one's seed std and count
    (Welch's; NaN when either has one seed)."""
    def best(kind: str) -> dict:
        return max((r for r in summary if r["kind"] == kind and r["seeds_ok"] > 0), key=lambda r: r["test_accuracy_mean"])

    winner, baseline = best("candidate"), best("baseline")
    variance = sum(r["test_accuracy_std"] ** 2 / r["seeds_ok"] for r in (winner, baseline))
    return {"best_baseline": baseline["name"], "difference": winner["test_accuracy_mean"] - baseline["test_accuracy_mean"],
            "standard_error": math.sqrt(variance) if math.isfinite(variance) else math.nan}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=3)
    # the stand-alone budget of ranking_fidelity.py: 312 steps of batch 32
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--run", help="an existing search's run directory (skips the search)")
    args = parser.parse_args()
    name = "search_outcome_quick" if args.quick else "search_outcome"
    seeds, epochs = (1, 1) if args.quick else (args.seeds, args.epochs)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        if args.run:
            rundir = RunDir(args.run)
        else:
            overrides = {"out": str(Path(folder) / "outcome"), **(QUICK if args.quick else {})}
            config, rundir = prepare(None, overrides, resume=False)
            search(config, rundir)
        searched = time.perf_counter()
        outcome = retrain(rundir, Stage2Settings(k=1, baselines=BASELINES, seeds=seeds, epochs=epochs, overrides={
            "batch_size": args.batch_size, "lr": args.lr}), verbose=0)
        ray.shutdown()
    summary = outcome.summary.to_dict("records")
    idle_latency(summary, QUICK["evaluator.dataset_options"] if args.quick else {})
    winner = outcome.winner.metadata
    margin = winner_minus_baseline(summary)
    result = {
        "benchmark": name, "machine": describe_machine(),
        "settings": {"search": "default.yaml" + (" with " + json.dumps(QUICK) if args.quick else ""),
                     "seeds": seeds, "epochs": epochs, "batch_size": args.batch_size,
                     "lr": args.lr, "baselines": BASELINES},
        "seconds": {"search": searched - start, "stage2": time.perf_counter() - searched},
        "winner": outcome.winner.key, "winner_metadata": winner, "models": summary,
        "best_baseline": margin["best_baseline"],
        "winner_minus_best_baseline": margin["difference"],
        "winner_minus_best_baseline_se": margin["standard_error"],
        "target": "the winner at least matches the best baseline",
    }
    write_result(RESULTS / f"{name}.json", result)
    show_result(result)


if __name__ == "__main__":
    main()
