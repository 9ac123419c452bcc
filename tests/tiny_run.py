"""A tiny run directory written without a search: config.yaml, seeded reward rounds, candidates.

Stage 2 and the report read only these files, so their tests need no search. The data settings
are the smallest cluttered-digits set (16x16, 256/64/64 images, not cached) so a stand-alone epoch
takes a second or two on one core.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import numpy as np
import pandas as pd
import yaml

from rundir import RunDir
from searchspace import from_key
from searchspace.registry import DECISION_NAMES

RUN_ID = "tiny-run"
TINY_DATA = {"train_size": 256, "val_size": 64, "test_size": 64, "canvas_size": 16, "scale": [1.0, 2.0],
             "cache": False}
CONFIG = {"run_id": RUN_ID, "rounds": 6, "workers": 1, "samples_per_round": 8, "seed": 0,
          "evaluator": {"dataset": "cluttered-digits", "dataset_options": TINY_DATA, "arch": "resnet20",
                        "num_cpus": 1.0, "num_gpus": 0.0}}
# What the fake controller samples, the first ones more and more often as rounds go by.
POOL = ["gap|fc_relu_fc|mean_max|conv7x7", "gap|eca|none|none", "avg_max|fc_relu_fc|none|none",
        "none|none|mean_max|conv3x3", "none|none|none|none"]


def write_search_config(folder: Path, *, rounds: int, derive: int, seed: int, warmup: int = 1) -> Path:
    """A search config for real (tiny) searches: 2 workers, 4 steps and 4 samples a round, the first
    ``warmup`` rounds a warm-up, 256 training images cached under ``folder``/data. Returns the YAML's path."""
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump({
        "rounds": rounds, "workers": 2, "train_steps": 4, "samples_per_round": 4, "derive_top": derive,
        "derive_samples": derive, "seed": seed, "warmup_rounds": warmup,
        "evaluator": {"dataset_options": {"train_size": 256, "val_size": 128, "test_size": 64},
                      "data_dir": str(folder / "data"), "val_batch_size": 64, "training": {"batch_size": 32},
                      "num_cpus": 1.0},  # one CPU per actor: both actors fit the 2 cores of a CI machine
    }))
    return path


def fake_round(rng: np.random.Generator, round: int, samples: int, baseline: float) -> List[Dict]:
    """One round's rows as the search loop writes them, with a policy sharpening over rounds."""
    weights = np.exp(-np.arange(len(POOL)) * 0.4 * round)
    keys = rng.choice(POOL, size=samples, p=weights / weights.sum())
    rows = []
    for sample, key in enumerate(keys):
        reward = float(0.3 + 0.05 * round - 0.04 * POOL.index(key) + rng.normal(0, 0.02))
        rows.append({"run_id": RUN_ID, "round": round, "sample": sample, "worker": 0, "genotype": key,
                     **dict(zip(DECISION_NAMES, key.split("|"))), "reward": reward, "val_accuracy": reward,
                     "val_loss": 2.0 - reward, "log_prob": float(-6.0 + 0.5 * round), "entropy": 6.0 / round,
                     "baseline": baseline, "advantage": reward - baseline, "params": 1000, "status": "ok",
                     "wall_time_s": 0.1})
        baseline = 0.9 * baseline + 0.1 * reward
    return rows


def make_run(path, rounds: int = 6, candidates: bool = True) -> RunDir:
    """A run directory at ``path`` with ``rounds`` rounds and, if asked, a derive stage's candidates."""
    rundir = RunDir(path)
    rundir.create(CONFIG)
    rng = np.random.default_rng(0)
    baseline = 0.3
    for round in range(1, rounds + 1):
        rows = fake_round(rng, round, CONFIG["samples_per_round"], baseline)
        rundir.write_round(round, rows)
        baseline = rows[-1]["baseline"]
    if candidates:
        rundir.write_candidates(pd.DataFrame([
            {"rank": rank, "genotype": key, **from_key(key).ops, "reward": 0.6 - 0.05 * rank,
             "val_accuracy": 0.6 - 0.05 * rank, "val_loss": 1.0, "search_mean_reward": 0.5, "search_count": 4,
             "source": "mean_reward", "params": 1000, "val_images": 64}
            for rank, key in enumerate(POOL[:3], start=1)]))
    return rundir
