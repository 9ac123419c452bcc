"""Stage 2: train the search's top-K genotypes and the known baselines from scratch on Ray Tune.

    python experiments/retrain_topk.py DIR --race [-k K] [--baselines NAMES] [--min-seeds 2] [--max-seeds 12]
                                       [--alpha 0.05] [--budget-runs N]
    python experiments/retrain_topk.py DIR [-k K] [--baselines none,se,eca,cbam] [--seeds S] [--epochs E]
                                       [--asha] [--resume] [--gpus-per-trial G] [--cpus-per-trial C]

With --race, the top-K genotypes race every known module (none included): each round trains every
survivor on one more seed, the same for all, and drops those a paired t-test shows worse than the
leader; winner.json then holds the race's answer and its evidence. Without it, one Tune trial per
(model, seed), seeds 0..S-1, and winner.json is the best mean candidate.

Data, network and resources come from DIR's config.yaml (the search's settings); the flags override
them. Writes DIR/retrain.parquet (one row per trial) and DIR/winner.json, then prints every model's
mean and spread. An interrupted stage 2 continues with --resume.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

import torch

from rundir import RunDir
from stage2.retrain import retrain
from stage2.settings import DEFAULT_BASELINES, DEFAULT_K, DEFAULT_SEEDS, Stage2Settings
from stage2.summary import describe_winner, format_summary
from searchspace.cli import ArgumentParser, user_errors_exit_2


def whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def names(text: str) -> List[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def parse(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = ArgumentParser(prog="retrain_topk.py", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", metavar="DIR", help="the run directory (path or URI)")
    parser.add_argument("-k", metavar="K", type=whole_number, help=f"top-K genotypes of the run (default {DEFAULT_K}, "
                        "or as many as it has)")
    parser.add_argument("--baselines", metavar="NAMES", type=names,
                        help=f"known modules to compare with, comma-separated; '' for none "
                             f"(default {','.join(DEFAULT_BASELINES)})")
    parser.add_argument("--seeds", metavar="S", type=whole_number, help=f"seeds per model (default {DEFAULT_SEEDS})")
    parser.add_argument("--epochs", metavar="E", type=whole_number, help="training epochs (default 15)")
    parser.add_argument("--asha", action="store_true", default=None,
                        help="stop weak trials early (ASHA on validation accuracy per epoch)")
    parser.add_argument("--race", action="store_true", default=None,
                        help="race the top-K against every known module, dropping the significantly worse")
    parser.add_argument("--min-seeds", metavar="N", type=whole_number, help="race: seeds before a drop (default 2)")
    parser.add_argument("--max-seeds", metavar="N", type=whole_number, help="race: most seeds (default 12)")
    parser.add_argument("--alpha", metavar="A", type=number, help="race: the paired test's level (default 0.05)")
    parser.add_argument("--budget-runs", metavar="N", type=whole_number, help="race: most trials in all")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted stage 2 in DIR/tune")
    parser.add_argument("--gpus-per-trial", metavar="G", type=number, help="fractions share a GPU (default: "
                        "the run's evaluator.num_gpus)")
    parser.add_argument("--cpus-per-trial", metavar="C", type=number, help="default: the run's evaluator.num_cpus")
    parser.add_argument("--max-failures", metavar="N", type=whole_number, default=2,
                        help="retries of a failed trial (default 2)")
    parser.add_argument("--ray-address", help="a running cluster (default: RAY_ADDRESS, the run's, else a local Ray)")
    return parser.parse_args(argv)


@user_errors_exit_2
def main(argv: Optional[List[str]] = None) -> int:
    args = parse(argv)
    torch.set_num_threads(1)
    settings = Stage2Settings(k=args.k, baselines=args.baselines, seeds=args.seeds, epochs=args.epochs,
                              asha=args.asha, cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
                              max_failures=args.max_failures, resume=args.resume, ray_address=args.ray_address,
                              race=args.race, min_seeds=args.min_seeds, max_seeds=args.max_seeds, alpha=args.alpha,
                              budget_runs=args.budget_runs)
    rundir = RunDir(args.dir)
    result = retrain(rundir, settings)
    print(format_summary(result.summary))
    print(describe_winner(result.winner))
    print(f"wrote {rundir.show(rundir.path('retrain.parquet'))} and {rundir.show(rundir.path('winner.json'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
