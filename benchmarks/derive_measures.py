"""Which measure the derive stage should rank by: accuracy, cross-entropy, or a pooled estimate of op effects.

The cheap first test of two of the supernet-bias remedies, on finished searches (default: the
default search at search seeds 0-2 with seeded supernets, ``runs/search_outcome_seeded``), before
any search is run with them. Each stand-alone table genotype is scored as the derive stage scores
(``search.rescore.score_genotypes``: the newest checkpoint, the whole validation split, the run's
BN mode) and ranked three ways against the 12-seed table's mean test accuracy (Kendall tau):

- ``accuracy``: the derive stage's ranking today;
- ``loss``: by validation cross-entropy, lowest first (a continuous measure, which may show a
  gate's effect before argmax does);
- ``pooled``: a ridge regression of the search's own rewards (its log's ``ok`` rows) on one-hot
  op indicators, every reward informing every genotype that shares its ops; predicted for the
  table's genotypes, at ridge strengths ``--ridge``.

A measure that does not beat ``accuracy`` on the mean over the searches is not worth a search of
its own. Scoring takes about 2-3 min per search on 2 cores; writes ``results/derive_measures.json``.

    python benchmarks/derive_measures.py [--runs DIR ...] [--ridge 0.1 1 10]
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from common import RESULTS, repository_path, show_result, write_result  # first: Ray's loopback environment

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from machine import describe_machine  # noqa: E402
from rundir import RunDir  # noqa: E402
from search.rescore import score_genotypes  # noqa: E402
from searchspace.registry import DECISION_NAMES  # noqa: E402

SEEDED = Path(__file__).resolve().parent / "runs" / "search_outcome_seeded" / "default"
TABLE = RESULTS / "standalone_table_12seeds.parquet"
RIDGE = (0.1, 1.0, 10.0)


def one_hot(keys: Sequence[str], columns: Optional[pd.Index] = None) -> pd.DataFrame:
    """One indicator per (decision, op) of each genotype key."""
    ops = pd.DataFrame([key.split("|") for key in keys], columns=list(DECISION_NAMES))
    encoded = pd.get_dummies(ops).astype(float)
    return encoded if columns is None else encoded.reindex(columns=columns, fill_value=0.0)


def pooled_estimate(log: pd.DataFrame, genotypes: Sequence[str], strength: float) -> np.ndarray:
    """Ridge fit of the rewards on op indicators (centred, no intercept penalty), predicted for ``genotypes``."""
    ok = log[log["status"] == "ok"]
    features = one_hot(list(ok["genotype"]))
    design = features.to_numpy()
    target = ok["reward"].to_numpy(dtype=float)
    weights = np.linalg.solve(design.T @ design + strength * np.eye(design.shape[1]), design.T @ (target - target.mean()))
    return one_hot(genotypes, features.columns).to_numpy() @ weights


def tau(score: Sequence[float], truth: Sequence[float]) -> float:
    return float(stats.kendalltau(score, truth).statistic)


def truth_scores(run: Path, truth: pd.Series) -> pd.DataFrame:
    """The derive stage's scores of the truth's genotypes on a finished search, in the truth's order."""
    return score_genotypes(RunDir(str(run)), list(truth.index)).set_index("genotype").loc[truth.index]


def measure_run(run: Path, truth: pd.Series, ridge: Sequence[float],
                scores: Optional[pd.DataFrame] = None) -> Dict[str, float]:
    """Each measure's tau for one finished search (``scores``: its :func:`truth_scores`, if at hand)."""
    scores = truth_scores(run, truth) if scores is None else scores
    log = RunDir(str(run)).read_rewards()
    found = {"accuracy": tau(scores["val_accuracy"], truth), "loss": tau(-scores["val_loss"], truth)}
    for strength in ridge:
        found[f"pooled_ridge_{strength:g}"] = tau(pooled_estimate(log, list(truth.index), strength), truth)
    return found


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, nargs="+", default=[SEEDED / f"rl-seed{s}" for s in range(3)])
    parser.add_argument("--ridge", type=float, nargs="+", default=list(RIDGE))
    args = parser.parse_args(argv)
    table = pd.read_parquet(TABLE)
    truth = table.groupby("genotype")["test_accuracy"].mean()
    start = time.perf_counter()
    per_run: Dict[str, Dict[str, float]] = {}
    for run in args.runs:
        per_run[repository_path(run)] = measure_run(run, truth, args.ridge)
    measures: List[str] = list(next(iter(per_run.values())))
    summary = {m: {"mean": statistics.fmean(r[m] for r in per_run.values()),
                   "per_run": [r[m] for r in per_run.values()]} for m in measures}
    base = summary["accuracy"]["mean"]
    write_result(RESULTS / "derive_measures.json", {
        "benchmark": "derive_measures", "machine": describe_machine(),
        "settings": {"table": repository_path(TABLE), "genotypes": len(truth), "truth": "mean test accuracy over 12 seeds",
                     "ridge": args.ridge, "scoring": "search.rescore.score_genotypes (the derive stage's)"},
        "per_run": per_run, "summary": summary,
        "beats_accuracy": {m: summary[m]["mean"] > base for m in measures if m != "accuracy"},
        "seconds": time.perf_counter() - start})
    show_result({"summary": {m: round(v["mean"], 3) for m, v in summary.items()}})


if __name__ == "__main__":
    main()
