"""The arithmetic behind the benchmarks' claims: rank agreement between seeds, and a difference with its standard error."""
from __future__ import annotations

import itertools
import math
import statistics
from typing import Dict, List, Sequence

import pandas as pd
from scipy import stats


def difference(a: Sequence[float], b: Sequence[float]) -> Dict[str, float]:
    """mean(a) - mean(b) with Welch's standard error sqrt(s_a^2/n_a + s_b^2/n_b) (independent runs).

    With one value on a side its variance is unknown: the error and z are NaN, as they are for a zero error.
    """
    if not a or not b:
        raise ValueError("difference needs at least one value on each side")
    var_a = statistics.variance(a) if len(a) > 1 else math.nan
    var_b = statistics.variance(b) if len(b) > 1 else math.nan
    gap = statistics.mean(a) - statistics.mean(b)
    error = math.sqrt(var_a / len(a) + var_b / len(b))
    return {"difference": gap, "standard_error": error, "z": gap / error if error > 0 else math.nan}


def seed_tau(table: pd.DataFrame, value: str = "test_accuracy") -> Dict[str, object]:
    """Kendall's tau between the genotype rankings of every pair of seeds, and their mean.

    ``table`` has one row per (genotype, seed). Each pair uses the genotypes measured under both
    seeds. This is the most a supernet's ranking can agree with one seed of the ground truth.
    """
    wide = table.pivot_table(index="genotype", columns="seed", values=value)
    pairs: List[Dict[str, object]] = []
    for first, second in itertools.combinations(sorted(wide.columns), 2):
        both = wide[[first, second]].dropna()
        if len(both) < 3:
            continue
        tau = stats.kendalltau(both[first], both[second]).statistic
        pairs.append({"seeds": [int(first), int(second)], "genotypes": len(both), "tau": float(tau)})
    mean = statistics.mean(p["tau"] for p in pairs) if pairs else math.nan
    return {"mean": mean, "pairs": pairs}


def seed_noise(table: pd.DataFrame, value: str = "test_accuracy") -> Dict[str, object]:
    """How far seed noise limits a table's ranking, in points of ``value`` (genotypes with 2+ seeds).

    Measured: the seed sd (root mean square over genotypes), the genotypes' sd with their means'
    own noise taken out, and the tau of each seed against the mean of the other seeds. Modelled
    (genotype and seed effects Gaussian and independent): the rank correlation rho between two
    means of n seeds and the tau it implies, (2 / pi) arcsin(rho), for n = 1, 2, 3; and the seed
    sd at which two single seeds would agree to tau 0.7 with these genotypes.
    """
    wide = 100 * table.pivot_table(index="genotype", columns="seed", values=value)
    wide = wide[wide.count(axis=1) >= 2]
    seeds = wide.count(axis=1).min()
    seed_var = float(wide.var(axis=1).mean())
    genotype_var = max(float(wide.mean(axis=1).var()) - seed_var / seeds, 0.0)
    rest = [float(stats.kendalltau(wide[s], wide.drop(columns=s).mean(axis=1), nan_policy="omit").statistic)
            for s in wide.columns]
    rho = {n: genotype_var / (genotype_var + seed_var / n) for n in (1, 2, 3)}
    needed_rho = math.sin(0.7 * math.pi / 2)
    return {"seed_sd": seed_var ** 0.5, "genotype_sd": genotype_var ** 0.5,
            "one_seed_vs_mean_of_the_others_tau": {"mean": statistics.mean(rest), "per_seed": rest},
            "model": {"rho": rho, "tau": {n: 2 / math.pi * math.asin(r) for n, r in rho.items()},
                      "seed_sd_for_single_seed_tau_0.7": (genotype_var * (1 / needed_rho - 1)) ** 0.5}}


def evaluation_noise(table: pd.DataFrame) -> Dict[str, float]:
    """How much of a run's seed noise is the evaluation set's, from its validation and test accuracy.

    Each run's deviation from its genotype's mean is measured on two independent image sets; the
    part both see is the trained network's own (its seed), the rest is which images happened to be
    drawn. With two sets of one size, their correlation over runs is the network's share of the seed
    variance, so a test set k times larger would leave a seed sd of sd * sqrt(c + (1 - c) / k). Points of accuracy.
    """
    both = table.dropna(subset=["val_accuracy", "test_accuracy"])
    both = both[both.groupby("genotype")["seed"].transform("count") >= 2]
    residual = {v: 100 * (both[v] - both.groupby("genotype")[v].transform("mean")) for v in ("val_accuracy", "test_accuracy")}
    shared = float(residual["val_accuracy"].corr(residual["test_accuracy"]))
    seed_sd = seed_noise(both)["seed_sd"]
    return {"val_test_residual_correlation": shared,
            "evaluation_share_of_seed_variance": 1 - shared,
            "seed_sd": seed_sd,
            "seed_sd_with_10x_test_images": seed_sd * (shared + (1 - shared) / 10) ** 0.5}
