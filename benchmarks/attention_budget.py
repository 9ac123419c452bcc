"""When does attention earn its cost? Stand-alone ResNet-20 on cluttered-digits, with and without attention.

Trains every combination of the given modules, gate biases, epoch budgets, learning rates and seeds
(``none`` once per budget, lr and seed: it has no gates) and appends each run to the JSON file as it
finishes, so an interrupted study keeps what it measured and a rerun skips the runs already there.
The file holds the machine, the settings of each run, its figures and a summary per setting (mean,
sample standard deviation, min and max over seeds).

    python benchmarks/attention_budget.py --attention none,se,cbam --gate-bias 0,2 --epochs 5 --seeds 0,1
    python benchmarks/attention_budget.py --attention none,se --epochs 15 --seeds 0 --threads 1
    python benchmarks/attention_budget.py --quick     # a 1-epoch smoke run on 512 images
    python benchmarks/attention_budget.py --table     # the summary of the results file
"""
from __future__ import annotations

import argparse
import ast
import itertools
import json
import os
import statistics
from pathlib import Path
from typing import Any, Dict, List, Sequence

import torch

from common import RESULTS, write_result
from evaluator.data import load_dataset
from evaluator.standalone import StandaloneConfig, train_standalone
from machine import describe_machine
from stage2.settings import DEFAULT_BASELINES
SETTING_KEYS = ("attention", "gate_bias", "epochs", "lr", "dataset_options")
QUICK_DATA = dict(train_size=512, val_size=128, test_size=128)


def planned_runs(args: argparse.Namespace) -> List[Dict[str, Any]]:
    """One settings dict per run; ``none`` gets gate_bias None, since it has no gate to bias."""
    runs = []
    # budget-major, then seed: a study cut short still has every module at the first budget and seed
    for epochs, lr, seed, attention in itertools.product(args.epochs, args.lr, args.seeds, args.attention):
        for gate_bias in ([None] if attention == "none" else args.gate_bias):
            runs.append({"attention": attention, "gate_bias": gate_bias, "epochs": epochs, "lr": lr,
                         "seed": seed, "dataset_options": args.dataset_options})
    return runs


def same_run(a: Dict[str, Any], b: Dict[str, Any]) -> bool:
    return all(a[k] == b[k] for k in (*SETTING_KEYS, "seed"))


def summarise(runs: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Mean, sample std (0 for one seed), min and max of test accuracy and seconds per epoch, per setting."""
    groups: Dict[str, List[Dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(json.dumps([run[k] for k in SETTING_KEYS], sort_keys=True), []).append(run)
    summary = []
    for members in groups.values():
        accuracy = [r["test_accuracy"] for r in members]
        summary.append({**{k: members[0][k] for k in SETTING_KEYS}, "seeds": [r["seed"] for r in members],
                        "test_accuracy_mean": statistics.mean(accuracy),
                        "test_accuracy_std": statistics.stdev(accuracy) if len(accuracy) > 1 else 0.0,
                        "test_accuracy_min": min(accuracy), "test_accuracy_max": max(accuracy),
                        "seconds_per_epoch_mean": statistics.mean(r["seconds_per_epoch"] for r in members)})
    return summary


def measure(settings: Dict[str, Any], data, args: argparse.Namespace) -> Dict[str, Any]:
    """Train one run and keep what the study compares, with the per-epoch curve."""
    gates = {} if settings["gate_bias"] is None else {"gate_bias": settings["gate_bias"]}
    config = StandaloneConfig(epochs=settings["epochs"], lr=settings["lr"], seed=settings["seed"],
                              dataset_options=settings["dataset_options"], latency_repeats=args.latency_repeats,
                              **gates)
    result = train_standalone(config, settings["attention"], device="cpu", progress=args.progress, data=data)
    return {**settings, "status": result.status, "test_accuracy": result.test_accuracy,
            "test_loss": result.test_loss, "val_accuracy": result.val_accuracy,
            "seconds_per_epoch": result.seconds_per_epoch, "wall_time_s": result.wall_time_s,
            "params": result.params, "macs": result.macs, "latency_ms_batch1": result.latency_ms_batch1,
            "val_accuracy_by_epoch": [h["val_accuracy"] for h in result.history],
            "train_loss_by_epoch": [h["train_loss"] for h in result.history],
            "config": result.config, "load_average": list(os.getloadavg())}


def comma_list(kind: type):
    """An argparse type: ``"0,2"`` -> ``[kind("0"), kind("2")]``."""
    def parse(text: str) -> list:
        return [kind(v) for v in text.split(",")]

    return parse


def print_table(summary: Sequence[Dict[str, Any]]) -> None:
    print(f"{'attention':>9} {'gate_bias':>9} {'epochs':>6} {'lr':>5} {'seeds':>5}  test accuracy (mean +- std)  s/epoch")
    for row in sorted(summary, key=lambda r: (json.dumps(r["dataset_options"], sort_keys=True), r["epochs"], r["lr"],
                                               r["attention"], r["gate_bias"] or 0.0)):
        options = f"  {row['dataset_options']}" if row["dataset_options"] else ""
        print(f"{row['attention']:>9} {str(row['gate_bias']):>9} {row['epochs']:>6} {row['lr']:>5} "
              f"{len(row['seeds']):>5}  {100 * row['test_accuracy_mean']:6.2f} +- {100 * row['test_accuracy_std']:4.2f}"
              f"  [{100 * row['test_accuracy_min']:.2f}, {100 * row['test_accuracy_max']:.2f}]"
              f"  {row['seconds_per_epoch_mean']:6.1f}{options}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attention", type=comma_list(str), default=list(DEFAULT_BASELINES))
    parser.add_argument("--gate-bias", type=comma_list(float), default=[0.0, 2.0])
    parser.add_argument("--epochs", type=comma_list(int), default=[5])
    parser.add_argument("--lr", type=comma_list(float), default=[0.1])
    parser.add_argument("--seeds", type=comma_list(int), default=[0, 1])
    parser.add_argument("--dataset-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a cluttered-digits option, e.g. clutter=(4,8); repeatable")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--latency-repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "attention_budget.json")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--quick", action="store_true", help="1 epoch on 512 images, written to *_quick.json")
    parser.add_argument("--table", action="store_true", help="print the summary of --out and train nothing")
    args = parser.parse_args(argv)
    args.dataset_options = {k: ast.literal_eval(v) for k, v in (o.split("=", 1) for o in args.dataset_option)}
    if args.quick:
        args.epochs, args.seeds = [1], [0]
        args.dataset_options = {**QUICK_DATA, **args.dataset_options}
        args.out = args.out.with_name(args.out.stem + "_quick.json")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.table:
        print_table(json.loads(args.out.read_text())["summary"])
        return
    torch.set_num_threads(args.threads)
    document = json.loads(args.out.read_text()) if args.out.exists() else {"runs": []}
    document["machine"] = describe_machine()
    data = load_dataset("cluttered-digits", seed=0, **args.dataset_options)
    for settings in planned_runs(args):
        if any(same_run(settings, done) for done in document["runs"]):
            continue
        run = measure(settings, data, args)
        document["runs"].append(run)
        document["summary"] = summarise(document["runs"])
        write_result(args.out, document, indent=1)
        print(f"{run['attention']:>5} gate_bias={run['gate_bias']} epochs={run['epochs']} lr={run['lr']} "
              f"seed={run['seed']}: test {100 * run['test_accuracy']:.2f}%, "
              f"{run['seconds_per_epoch']:.1f} s/epoch", flush=True)
    print_table(document.get("summary", []))


if __name__ == "__main__":
    main()
