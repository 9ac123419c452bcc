"""The exhaustive supernet landscape: every canonical genotype's validation accuracy under one supernet.

The supernet is trained with uniformly sampled genotypes (a `--policy random` search), then
scores every canonical genotype on the validation set.

    python benchmarks/supernet_landscape.py [--quick] [--rounds R] [--train-steps S] [--workers W]
        [--val-size N] [--run DIR]

Writes benchmarks/results/supernet_landscape.parquet (genotype, the four ops, val_accuracy,
val_loss, params) and supernet_landscape.json (machine, settings, timings, summary). --quick
trains less and scores a seeded subset of 100 genotypes; the full run scores all 3,139.

--run DIR keeps the supernet's run directory there. Run the same command again after a crash:
a finished supernet is not trained again and genotypes already scored (saved every chunk to
DIR/landscape_partial.parquet) are not scored again.
"""
from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from common import RESULTS, show_result, write_result

import pandas as pd  # noqa: E402
import ray  # noqa: E402
from tqdm import tqdm  # noqa: E402

from controller.service import NAMESPACE  # noqa: E402
from evaluator.data import DEFAULT_DATASET  # noqa: E402
from evaluator.pool import WorkerPool  # noqa: E402
from evaluator.worker import RewardTask  # noqa: E402
from machine import describe_machine  # noqa: E402
from rundir import RunDir  # noqa: E402
from search.cluster import connect  # noqa: E402
from search.config import saved_config  # noqa: E402
from search.loop import search  # noqa: E402
from search.start import prepare  # noqa: E402
from searchspace import DECISION_NAMES, all_genotypes  # noqa: E402


def train_supernet(out: str, rounds: int, train_steps: int, workers: int, dataset_options: dict) -> RunDir:
    """A random-policy search: shared weights trained on uniformly sampled genotypes.

    Resumes a search interrupted in ``out``; a finished one (its winner written) is reused.
    """
    overrides = {"out": out, "rounds": rounds, "train_steps": train_steps, "workers": workers,
                 "policy": "random", "samples_per_round": 2, "derive_top": 1, "derive_samples": 1,
                 "evaluator.dataset_options": dataset_options}
    if (Path(out) / "winner.json").exists():
        return RunDir(out)
    config, rundir = prepare(None, overrides, resume=(Path(out) / "config.yaml").exists())
    search(config, rundir)
    return rundir


def score_all(rundir: RunDir, keys: list[str], workers: int, partial: Path, chunk: int = 64) -> pd.DataFrame:
    """Every key scored on the whole validation split, in chunks saved to ``partial`` as they finish."""
    config = saved_config(rundir.read_config())
    shared = rundir.load_checkpoint()["shared"]
    done = pd.read_parquet(partial) if partial.exists() else pd.DataFrame()
    scored = set() if done.empty else set(done["genotype"])
    todo = [key for key in keys if key not in scored]
    pool = WorkerPool(config.evaluator, workers)
    try:
        with tqdm(total=len(keys), initial=len(keys) - len(todo), desc="scoring", unit="genotype") as bar:
            for start in range(0, len(todo), chunk):
                tasks = [RewardTask(i, key, -1) for i, key in enumerate(todo[start:start + chunk])]
                rows = pd.DataFrame([{"genotype": r.genotype, "val_accuracy": r.val_accuracy,
                                      "val_loss": r.val_loss, "params": r.params, "status": r.status,
                                      "seconds": r.wall_time_s} for r in pool.score(shared["weights"], tasks)])
                done = pd.concat([done, rows], ignore_index=True)
                done.to_parquet(partial.with_suffix(".tmp"), index=False)
                partial.with_suffix(".tmp").replace(partial)
                bar.update(len(tasks))
    finally:
        pool.shutdown()
    return done.set_index("genotype").loc[keys].reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--train-steps", type=int, help="steps per round (default 78, one epoch of 10k "
                        "images at batch 128; 24 with --quick)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--val-size", type=int, help="images in the validation split every genotype is "
                        "scored on (default: 1,000; 256 with --quick)")
    parser.add_argument("--run", type=Path, help="keep the supernet's run here and resume from it")
    args = parser.parse_args()
    # 30 rounds end SGDR's second cycle (10 + 20 rounds) at the smallest step size
    rounds = args.rounds or (4 if args.quick else 30)
    train_steps = args.train_steps or (24 if args.quick else 78)
    keys = [g.key for g in all_genotypes()]
    options = {"val_size": args.val_size or (256 if args.quick else 1000)}
    if args.quick:
        keys = sorted(random.Random(0).sample(keys, 100))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        out = args.run or Path(folder) / "landscape"
        rundir = train_supernet(str(out), rounds, train_steps, args.workers, options)
        trained = time.perf_counter()
        connect(None, namespace=NAMESPACE, log_to_driver=False)
        landscape = score_all(rundir, keys, args.workers, Path(out) / "landscape_partial.parquet")
        ray.shutdown()
    scored = time.perf_counter()
    landscape = pd.concat([landscape, pd.DataFrame([k.split("|") for k in landscape["genotype"]],
                                                   columns=list(DECISION_NAMES))], axis=1)
    RESULTS.mkdir(exist_ok=True)
    name = "supernet_landscape_quick" if args.quick else "supernet_landscape"
    landscape.to_parquet(RESULTS / f"{name}.parquet", index=False)
    ok = landscape[landscape["status"] == "ok"]
    summary = {
        "benchmark": name, "machine": describe_machine(),
        "settings": {"rounds": rounds, "train_steps_per_round": train_steps, "workers": args.workers,
                     "policy": "random", "genotypes_scored": len(keys), "dataset": DEFAULT_DATASET,
                     "dataset_options": options,
                     "scored_on": "whole validation split"},
        "seconds": {"train": trained - start, "score": scored - trained,
                    "per_genotype_mean": float(landscape["seconds"].mean())},
        "val_accuracy": {"min": ok["val_accuracy"].min(), "median": ok["val_accuracy"].median(),
                         "max": ok["val_accuracy"].max(), "std": ok["val_accuracy"].std()},
        "not_ok": int((landscape["status"] != "ok").sum()),
        "best": ok.nlargest(10, "val_accuracy")[["genotype", "val_accuracy"]].to_dict("records"),
    }
    write_result(RESULTS / f"{name}.json", summary)
    show_result(summary)


if __name__ == "__main__":
    main()
