"""The arithmetic behind the benchmarks' claims: rank agreement between seeds, and a difference with its standard error."""
from __future__ import annotations

import itertools
import math
import statistics
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import pandas as pd
from scipy import stats

from stage2.race import paired_test  # the race's test: one definition of "worse, paired by seed"

RHO_FOR_TAU_07 = math.sin(0.7 * math.pi / 2)  # the correlation of two Gaussian rankings that agree to tau 0.7


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


def paired_by_seed(runs: pd.DataFrame, sides: Mapping[str, Sequence[str]], seeds: int) -> Optional[Dict[str, object]]:
    """The first side's mean minus the second's, in points, paired by stand-alone seed.

    ``sides``: two names, each with the genotype keys whose mean test accuracy stands for it at a seed
    (a key listed twice counts twice: one per search that found it). Only the seeds below ``seeds``
    at which every key ran are used; None with fewer than 2. Gives the mean difference, its standard
    error, t, the one-sided p of "the first side is worse" (``p_<first>_worse``) and each side by seed.
    """
    (first, first_keys), (second, second_keys) = sides.items()
    accuracy = runs.set_index(["genotype", "seed"])["test_accuracy"]
    shared = [s for s in range(seeds) if all((key, s) in accuracy.index for key in [*first_keys, *second_keys])]
    if len(shared) < 2:
        return None
    by_seed = {name: [100 * statistics.fmean(float(accuracy[(key, s)]) for key in keys) for s in shared]
               for name, keys in sides.items()}
    test = paired_test(by_seed[first], by_seed[second])
    return {"mean": test.mean, "se": test.se, "t": test.t, f"p_{first}_worse": test.p, "seeds": shared,
            f"{first}_by_seed": by_seed[first], f"{second}_by_seed": by_seed[second]}


def seed_tau(table: pd.DataFrame, value: str = "test_accuracy") -> Dict[str, object]:
    """Kendall's tau between the genotype rankings of every pair of seeds, and their mean.

    ``table`` has one row per (genotype, seed). Each pair uses the genotypes measured under both
    seeds. This is the most a supernet's ranking can agree with one seed of the ground truth.
    """
    pairs = seed_pairs(table.pivot_table(index="genotype", columns="seed", values=value))
    mean = statistics.mean(p["tau"] for p in pairs) if pairs else math.nan
    return {"mean": mean, "pairs": pairs}


def seed_pairs(wide: pd.DataFrame, fewest: int = 3) -> List[Dict[str, object]]:
    """Kendall's tau of every pair of seed columns of ``wide`` (genotype x seed), over the genotypes both
    hold; pairs over fewer than ``fewest`` genotypes are left out."""
    pairs: List[Dict[str, object]] = []
    for first, second in itertools.combinations(sorted(wide.columns), 2):
        both = wide[[first, second]].dropna()
        if len(both) < fewest:
            continue
        tau = stats.kendalltau(both[first], both[second]).statistic
        pairs.append({"seeds": [int(first), int(second)], "genotypes": len(both), "tau": float(tau)})
    return pairs


def complete_seeds(table: pd.DataFrame, value: str = "test_accuracy") -> pd.DataFrame:
    """The runs of the seeds that every genotype has: a table being extended, read fairly."""
    wide = table.pivot_table(index="genotype", columns="seed", values=value)
    return table[table["seed"].isin([s for s in wide.columns if wide[s].notna().all()])]


def seed_tau_without_each(table: pd.DataFrame, value: str = "test_accuracy") -> Dict[str, object]:
    """The seed-against-seed tau with each genotype left out in turn: whether one genotype carries it.

    A genotype far from the rest (a broken one, say) is ranked alike by every seed and lifts the
    tau by itself; the lowest leave-one-out tau and the genotype whose removal gives it say how
    much. Returns the range and, per genotype, the tau without it.
    """
    genotypes = sorted(table["genotype"].unique())
    if len(genotypes) < 4:  # fewer leave under 3 to rank
        return {}
    without = {g: float(seed_tau(table[table["genotype"] != g], value)["mean"]) for g in genotypes}
    lowest = min(without, key=without.get)
    return {"min": without[lowest], "max": max(without.values()), "lowest_without": lowest, "per_genotype": without}


def mean_of_seeds_tau(table: pd.DataFrame, value: str = "test_accuracy") -> Dict[int, Dict[str, object]]:
    """Kendall's tau between two rankings by the mean of k seeds each, the seeds disjoint, for every k.

    What a ground truth of k-seed means resolves, measured rather than modelled: with S seeds,
    each k from 1 to S // 2 averages the tau over every split into two disjoint k-seed sets
    (k = 1 is ``seed_tau``). Each split uses the genotypes measured at all of its 2k seeds.
    """
    wide = table.pivot_table(index="genotype", columns="seed", values=value)
    seeds = sorted(wide.columns)
    result: Dict[int, Dict[str, object]] = {}
    for k in range(1, len(seeds) // 2 + 1):
        taus, genotypes = [], []
        for first in itertools.combinations(seeds, k):
            # the second set's seeds all follow the first's smallest: each unordered split once
            for second in itertools.combinations([s for s in seeds if s > first[0] and s not in first], k):
                both = wide[list(first) + list(second)].dropna()
                if len(both) < 3:
                    continue
                taus.append(float(stats.kendalltau(both[list(first)].mean(axis=1),
                                                   both[list(second)].mean(axis=1)).statistic))
                genotypes.append(len(both))
        if taus:
            result[k] = {"mean": statistics.mean(taus), "min": min(taus), "max": max(taus),
                         "splits": len(taus), "genotypes": min(genotypes)}
    return result


def interaction(table: pd.DataFrame, value: str) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """``value`` in points as (genotype x seed), genotypes measured at every seed, and its two-way residual.

    The residual is what is left after each genotype's mean and each seed's shift: the genotype x
    seed interaction.
    """
    wide = (100 * table.pivot_table(index="genotype", columns="seed", values=value)).dropna()
    return wide, wide.sub(wide.mean(axis=1), axis=0).sub(wide.mean(axis=0) - wide.values.mean(), axis=1)


def seed_noise(table: pd.DataFrame, value: str = "test_accuracy") -> Dict[str, object]:
    """How far seed noise limits a table's ranking, in points of ``value`` (genotypes measured at every seed).

    A seed fixes the weight init and the order of the training batches, and the batch order is
    the same for every genotype, so part of a seed's effect shifts all genotypes alike. That shift
    cannot reorder the genotypes of one seed; what can is the genotype x seed interaction, the
    residual of a two-way (genotype + seed) fit. Measured: the seed sd of one genotype (root mean
    square over genotypes), the common shift's sd, the interaction's sd, the genotypes' sd with
    their means' own noise taken out, and the tau of each seed against the mean of the other seeds.
    Modelled (genotype and interaction Gaussian and independent): the rank correlation rho between
    two means of n seeds and the tau it implies, (2 / pi) arcsin(rho), for n = 1 to 6; the
    interaction sd at which two single seeds would agree to tau 0.7 with these genotypes; and
    ``rank_model``, the same projection started from the measured tau of single seeds.
    """
    wide, residual = interaction(table, value)
    genotypes, seeds = wide.shape
    if genotypes < 2 or seeds < 2:
        return {"genotypes": genotypes, "seeds": seeds}  # nothing to split yet (a table just begun)
    interaction_var = float((residual ** 2).values.sum()) / ((genotypes - 1) * (seeds - 1))
    genotype_var = max(float(wide.mean(axis=1).var()) - interaction_var / seeds, 0.0)
    shift_var = max(float(wide.mean(axis=0).var()) - interaction_var / genotypes, 0.0)
    rest = [float(stats.kendalltau(wide[s], wide.drop(columns=s).mean(axis=1)).statistic) for s in wide.columns]
    # identical values everywhere (a tiny table at chance) leave nothing to correlate: NaN
    rho = {n: genotype_var / (genotype_var + interaction_var / n) if genotype_var + interaction_var > 0 else math.nan
           for n in (1, 2, 3, 4, 5, 6)}
    pairs = [p["tau"] for p in seed_pairs(wide, fewest=2)]  # wide holds every genotype at every seed
    return {"genotypes": genotypes, "seeds": seeds,
            "seed_sd": float(wide.var(axis=1).mean()) ** 0.5, "seed_shift_sd": shift_var ** 0.5,
            "interaction_sd": interaction_var ** 0.5, "genotype_sd": genotype_var ** 0.5,
            "one_seed_vs_mean_of_the_others_tau": {"mean": statistics.mean(rest), "per_seed": rest},
            "model": {"rho": rho, "tau": {n: model_tau(r) for n, r in rho.items()},
                      "interaction_sd_for_single_seed_tau_0.7": (genotype_var * (1 / RHO_FOR_TAU_07 - 1)) ** 0.5},
            "rank_model": rank_model(statistics.mean(pairs))}


def rank_model(one_seed_tau: float, counts: Sequence[int] = (1, 2, 3, 4, 5, 6, 12)) -> Dict[str, object]:
    """The tau between two means of n seeds, projected from the measured tau of single seeds.

    The same Gaussian model as ``seed_noise``'s, with its one-seed correlation read off the ranks,
    rho = sin(pi tau / 2), instead of off the variances: a few far genotypes swell the genotype
    variance but barely move the ranks of the rest, which is what tau counts. A mean of n seeds
    then correlates n rho / (1 + (n - 1) rho) (Spearman-Brown). ``seeds_for_tau_0.7`` is the
    smallest n that reaches 0.7; None when single seeds do not agree above chance.

    ``noiseless_against_mean_tau`` is the ceiling of a ground truth of n-seed means: the tau of the
    genotypes' true ranking (infinitely many seeds) against one n-seed mean, whose correlation is the
    square root of the mean's reliability. No ranking, a supernet's included, agrees with that
    ground truth more, except by chance.
    """
    rho = math.sin(math.pi * one_seed_tau / 2)
    if not rho > 0:  # NaN or at most chance: averaging noise alone projects nothing
        return {"one_seed_tau": one_seed_tau, "rho": rho, "tau": {}, "noiseless_against_mean_tau": {},
                "seeds_for_tau_0.7": None}
    needed = RHO_FOR_TAU_07
    reliability = {n: n * rho / (1 + (n - 1) * rho) for n in counts}
    return {"one_seed_tau": one_seed_tau, "rho": rho,
            "tau": {n: model_tau(r) for n, r in reliability.items()},
            "noiseless_against_mean_tau": {n: model_tau(r ** 0.5) for n, r in reliability.items()},
            "seeds_for_tau_0.7": 1 if rho >= needed else math.ceil(needed * (1 - rho) / (rho * (1 - needed)) - 1e-9)}


def model_tau(rho: float) -> float:
    """Kendall's tau of two Gaussian rankings whose values correlate ``rho``: (2 / pi) arcsin(rho)."""
    return 2 / math.pi * math.asin(rho)


def evaluation_noise(table: pd.DataFrame) -> Dict[str, float]:
    """How much of the test accuracy's genotype x seed noise is the test images', from each run's validation
    and test accuracy. Points of accuracy; genotypes measured at every seed.

    Each run's interaction residual (``seed_noise``'s two-way fit) is measured on two independent
    image sets; the part both see is the trained network's own, the rest is which images happened
    to be drawn. So the covariance of the two residuals over runs is the network's variance, whatever
    each set's size, and the rest of the test residual's variance is its images': a test set k times
    larger would leave an interaction sd of sqrt(network + images / k).
    """
    val, test = interaction(table, "val_accuracy")[1].align(interaction(table, "test_accuracy")[1], join="inner")
    genotypes, seeds = val.shape
    if min(genotypes, seeds) < 2:
        return {}  # nothing to split yet (a table just begun)
    shared = float(pd.Series(val.values.ravel()).corr(pd.Series(test.values.ravel())))  # NaN, not a warning, when constant
    test_var = float((test ** 2).values.sum()) / ((genotypes - 1) * (seeds - 1))  # as seed_noise's interaction
    covariance = float((val * test).values.sum()) / ((genotypes - 1) * (seeds - 1))
    network = min(max(covariance, 0.0), test_var)  # a variance: below 0 by chance (few runs) leaves the network none
    return {"val_test_residual_correlation": shared,
            "evaluation_share_of_interaction_variance": 1 - network / test_var if test_var > 0 else math.nan,
            "interaction_sd": test_var ** 0.5, "network_interaction_sd": network ** 0.5,
            "test_images_interaction_sd": (test_var - network) ** 0.5,
            "interaction_sd_with_10x_test_images": (network + (test_var - network) / 10) ** 0.5}
