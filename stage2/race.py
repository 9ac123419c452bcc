"""Racing candidates, paired by seed (F-Race's scheme with a paired t-test), and its replay on a stored table.

Each round every surviving candidate runs on one more seed, the same seed for all, so results pair:
a seed shifts every genotype alike (its initialisation and batch order), and a paired difference
cancels that shift. From ``min_seeds`` seeds on, a candidate whose paired difference to the leader
(the survivor with the best mean) is significantly negative is dropped: a one-sided paired t-test
at ``alpha``, candidate against leader over the seeds they share. The t-test rather than F-Race's
Friedman test: with a handful of seeds the ranks of a Friedman test cannot reach significance, and
paired accuracy differences are close to normal (a seed's common shift removed). The race stops
when one candidate is left, at ``max_seeds`` seeds, or when the next round would pass the run budget.

``python -m stage2.race --replay TABLE.parquet --out FILE.json`` runs the rule on a stand-alone table
(``name``, ``seed``, ``test_accuracy`` columns; ``genotype`` names a candidate without a name) over
resampled seed orders, reading runs instead of training them, to choose ``min_seeds`` and ``alpha``.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import pandas as pd
from scipy import stats

from searchspace.cli import ArgumentParser, UsageError, positive_int, user_errors_exit_2

# One round: (round number, surviving candidates, seed) -> each one's test accuracy on that seed, or
# None for a run that failed (or that ASHA stopped); a stage 2 trains them, a replay reads them.
RoundResults = Callable[[int, Sequence[str], int], Dict[str, Optional[float]]]
REPLAY_COLUMNS = ("seed", "test_accuracy")


@dataclass(frozen=True)
class RaceSettings:
    """``min_seeds`` seeds before anything is dropped; ``alpha`` the one-sided test's level;
    at most ``max_seeds`` seeds; ``budget_runs`` runs in all (None: no limit)."""

    min_seeds: int = 2
    max_seeds: int = 12
    alpha: float = 0.05
    budget_runs: Optional[int] = None

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise UsageError(f"alpha must be between 0 and 1, got {self.alpha}")
        if self.min_seeds < 2:
            raise UsageError(f"min_seeds must be at least 2 (a paired test needs two seeds), got {self.min_seeds}")
        if self.min_seeds > self.max_seeds:
            raise UsageError(f"min_seeds ({self.min_seeds}) is above max_seeds ({self.max_seeds})")
        if self.budget_runs is not None and self.budget_runs < 1:
            raise UsageError(f"budget_runs must be at least 1, got {self.budget_runs}")


@dataclass
class PairedTest:
    """Candidate minus leader over shared seeds: mean difference (points of accuracy x 100 is the
    caller's choice), its standard error, t and the one-sided p of "the candidate is worse"."""

    mean: float
    se: float
    t: float
    p: float
    seeds: int


def paired_test(candidate: Sequence[float], leader: Sequence[float]) -> PairedTest:
    """One-sided paired t-test of H1: candidate < leader, on results paired by seed (same order)."""
    differences = [c - l for c, l in zip(candidate, leader)]
    n = len(differences)
    mean = statistics.fmean(differences)
    sd = statistics.stdev(differences) if n > 1 else math.nan
    if sd == 0:  # identical differences every seed: certain, whichever sign
        t = 0.0 if mean == 0 else math.copysign(math.inf, mean)
        return PairedTest(mean, 0.0, t, 1.0 if mean >= 0 else 0.0, n)
    se = sd / math.sqrt(n)
    t = mean / se
    return PairedTest(mean, se, t, float(stats.t.cdf(t, n - 1)), n)


@dataclass
class RaceResult:
    """The survivors (best mean first), each candidate's results by seed, the round each dropped one
    left in (``failed``: those whose run failed rather than lost), the seeds run in order, and why
    the race stopped."""

    survivors: List[str]
    results: Dict[str, Dict[int, float]]
    dropped: Dict[str, int] = field(default_factory=dict)
    failed: List[str] = field(default_factory=list)
    seeds: List[int] = field(default_factory=list)
    stopped: str = ""

    @property
    def winner(self) -> str:
        return self.survivors[0]

    @property
    def runs(self) -> int:
        return sum(len(by_seed) for by_seed in self.results.values())


def mean_over(results: Dict[int, float], seeds: Sequence[int]) -> float:
    return statistics.fmean(results[s] for s in seeds)


def ranked(names: Sequence[str], results: Dict[str, Dict[int, float]], seeds: Sequence[int]) -> List[str]:
    """``names`` by their mean over ``seeds``, best first; ties by name."""
    return sorted(names, key=lambda name: (-mean_over(results[name], seeds), name))


def drop_round(survivors: Sequence[str], results: Dict[str, Dict[int, float]], seeds: Sequence[int],
               alpha: float) -> List[str]:
    """The survivors a one-sided paired t-test at ``alpha`` shows worse than the leader over ``seeds``."""
    leader, *others = ranked(survivors, results, seeds)
    lead = [results[leader][s] for s in seeds]
    return [name for name in others if paired_test([results[name][s] for s in seeds], lead).p < alpha]


def race(candidates: Sequence[str], seeds: Sequence[int], run_round: RoundResults,
         settings: RaceSettings) -> RaceResult:
    """Race ``candidates`` over ``seeds`` in that order (at most ``settings.max_seeds`` of them).

    Deterministic given what ``run_round`` returns, so a resumed race that reads its finished rounds
    back reaches the same state and trains only what is left."""
    if not candidates:
        raise UsageError("the race has no candidate")
    if len(set(candidates)) != len(candidates):
        raise UsageError(f"a candidate is named twice: {sorted(candidates)}")
    result = RaceResult(list(candidates), {name: {} for name in candidates})
    for round_number, seed in enumerate(list(seeds)[:settings.max_seeds], start=1):
        if len(result.survivors) == 1:
            result.stopped = "one candidate left"
            break
        if settings.budget_runs is not None and result.runs + len(result.survivors) > settings.budget_runs:
            result.stopped = f"the budget of {settings.budget_runs} runs"
            break
        scores = run_round(round_number, list(result.survivors), seed)  # one seed for every survivor: results pair
        for name in list(result.survivors):
            if scores.get(name) is None:
                result.failed.append(name)
                result.dropped[name] = round_number
            else:
                result.results[name][seed] = scores[name]
        result.survivors = [name for name in result.survivors if name not in result.dropped]
        if not result.survivors:
            raise UsageError(f"every candidate's run failed in round {round_number} (seed {seed})")
        result.seeds.append(seed)
        if len(result.seeds) >= settings.min_seeds:
            for name in drop_round(result.survivors, result.results, result.seeds, settings.alpha):
                result.dropped[name] = round_number
            result.survivors = [name for name in result.survivors if name not in result.dropped]
    else:
        result.stopped = "one candidate left" if len(result.survivors) == 1 else f"{len(result.seeds)} seeds run"
    result.survivors = ranked(result.survivors, result.results, result.seeds)
    return result


def compared(result: RaceResult, name: str, other: str) -> Dict[str, float]:
    """``name`` minus ``other`` in points over the seeds both ran: mean, s.e., t, the one-sided p
    of "``name`` is worse", and how many seeds."""
    shared = [s for s in result.seeds if s in result.results[name] and s in result.results[other]]
    test = paired_test([result.results[name][s] for s in shared], [result.results[other][s] for s in shared])
    return {"mean": 100 * test.mean, "se": 100 * test.se, "t": test.t, "p": test.p, "seeds": test.seeds}


def verdict(result: RaceResult, known: Sequence[str], alpha: float,
            labels: Optional[Dict[str, str]] = None) -> Dict[str, object]:
    """What the race found, for ``winner.json``: the winner with its mean and s.e. over its seeds;
    its paired difference to the best known module and to ``none`` (where they raced); the round
    each dropped candidate left in; and one sentence. ``known``: the candidates that are known
    modules; ``labels``: how the sentence names a candidate (default: its name)."""
    label = (lambda name: (labels or {}).get(name, name))  # noqa: E731
    winner, seeds = result.winner, result.seeds
    scores = [100 * result.results[winner][s] for s in seeds]
    found: Dict[str, object] = {
        "winner": winner, "mean": statistics.fmean(scores),
        "se": statistics.stdev(scores) / math.sqrt(len(scores)) if len(scores) > 1 else math.nan,
        "seeds": list(seeds), "dropped_in_round": dict(result.dropped), "failed": list(result.failed),
        "survivors": list(result.survivors), "runs": result.runs, "stopped": result.stopped}
    raced_known = [name for name in result.results if name in known]
    if not raced_known:
        found["sentence"] = f"{label(winner)} won; no known module raced, so nothing says it beats one"
        return found
    best_known = max(raced_known, key=lambda name: (statistics.fmean(result.results[name].values()), name))
    found["best_known"] = best_known
    if "none" in result.results and winner != "none":
        found["against_none"] = compared(result, "none", winner)  # none minus winner, as against_best_known
    tied = [name for name in result.survivors if name != winner]
    if winner in known:
        searched_left = [name for name in tied if name not in known]
        found["sentence"] = (f"unresolved at this budget: {winner} and {', '.join(map(label, tied))} tie"
                             if searched_left else f"no searched genotype beat {winner}; {winner} is the answer")
        return found
    against = found["against_best_known"] = compared(result, best_known, winner)  # known minus winner
    if against["p"] < alpha:
        found["sentence"] = (f"searched genotype {label(winner)} beats the best known module {best_known} by "
                             f"{-against['mean']:.2f} ± {against['se']:.2f} points")
    else:
        found["sentence"] = (f"unresolved at this budget: {label(winner)} and "
                             f"{', '.join(map(label, tied or [best_known]))} tie")
    return found


# -- replay on a stored table ---------------------------------------------------------------------


def read_table(path: str) -> pd.DataFrame:
    """A stand-alone table as (candidate, seed, test_accuracy): ``name`` where it has one, else ``genotype``."""
    try:
        table = pd.read_parquet(path)
    except (OSError, ValueError) as err:
        raise UsageError(f"--replay {path}: not a readable Parquet table ({str(err).splitlines()[0]})") from None
    missing = [c for c in REPLAY_COLUMNS if c not in table.columns]
    if missing or not {"name", "genotype"} & set(table.columns):
        raise UsageError(f"--replay {path}: a stand-alone table needs the columns name (or genotype), seed and "
                         f"test_accuracy; missing: {', '.join(missing) or 'name and genotype'}")
    names = table["name"] if "name" in table.columns else table["genotype"]
    if "genotype" in table.columns:
        names = names.fillna(table["genotype"])
    table = pd.DataFrame({"candidate": names, "seed": table["seed"].astype(int),
                          "test_accuracy": table["test_accuracy"].astype(float)}).dropna()
    return table.groupby(["candidate", "seed"], as_index=False)["test_accuracy"].mean()


def complete_seeds(table: pd.DataFrame, candidates: Sequence[str]) -> List[int]:
    """The seeds every candidate has a run of."""
    counts = table[table["candidate"].isin(candidates)].groupby("seed")["candidate"].nunique()
    return sorted(int(s) for s in counts[counts == len(candidates)].index)


def replay(table: pd.DataFrame, settings: RaceSettings, orders: int = 300, seed: int = 0,
           candidates: Optional[Sequence[str]] = None) -> Dict[str, object]:
    """The race over ``orders`` random seed orders of ``table``: what it picks, its regret in points
    against the best all-seed mean, the runs it uses; and held out: racing on half of the seeds
    (random halves), each pick judged by the means of the other half."""
    pool = list(candidates) if candidates is not None else sorted(table["candidate"].unique())
    unknown = sorted(set(pool) - set(table["candidate"]))
    if unknown:
        raise UsageError(f"unknown candidate {unknown[0]!r}; the table has {', '.join(sorted(table['candidate'].unique()))}")
    seeds = complete_seeds(table, pool)
    if len(seeds) < settings.min_seeds:
        raise UsageError(f"the table has {len(seeds)} seeds that every candidate ran; the race needs {settings.min_seeds}")
    lookup = {(c, int(s)): a for c, s, a in table[["candidate", "seed", "test_accuracy"]].itertuples(index=False)}
    run = lambda _, names, s: {name: lookup[(name, s)] for name in names}  # noqa: E731
    means = {name: mean_over({s: lookup[(name, s)] for s in seeds}, seeds) for name in pool}
    best = max(means.values())
    rng = random.Random(seed)
    picks: Dict[str, int] = {}
    regrets, runs, held_regrets = [], [], []
    for _ in range(orders):
        order = rng.sample(seeds, len(seeds))
        result = race(pool, order, run, settings)
        picks[result.winner] = picks.get(result.winner, 0) + 1
        regrets.append(100 * (best - means[result.winner]))
        runs.append(result.runs)
        half = order[:len(order) // 2]
        held = [s for s in order if s not in half]
        on_half = RaceSettings(**{**asdict(settings), "max_seeds": max(len(half), settings.min_seeds)})
        pick = race(pool, half, run, on_half).winner
        held_means = {name: statistics.fmean(lookup[(name, s)] for s in held) for name in pool}
        held_regrets.append(100 * (max(held_means.values()) - held_means[pick]))
    return {"candidates": len(pool), "seeds": len(seeds), "table_runs": len(pool) * len(seeds), "orders": orders,
            "picks": dict(sorted(picks.items(), key=lambda item: -item[1])),
            "best_by_all_seeds": max(means, key=means.get),
            "regret_mean": statistics.fmean(regrets), "regret_p90": quantile(regrets, 0.9),
            "runs_mean": statistics.fmean(runs), "runs_fraction": statistics.fmean(runs) / (len(pool) * len(seeds)),
            "held_out": {"race_seeds": len(seeds) // 2, "regret_mean": statistics.fmean(held_regrets),
                         "regret_p90": quantile(held_regrets, 0.9)}}


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def parse(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = ArgumentParser(prog="python -m stage2.race", description=__doc__.splitlines()[0])
    parser.add_argument("--replay", required=True, metavar="TABLE.parquet", help="a stand-alone table to race on")
    parser.add_argument("--out", required=True, metavar="FILE.json", help="where the replay's summary goes")
    parser.add_argument("--min-seeds", type=positive_int, default=RaceSettings.min_seeds)
    parser.add_argument("--max-seeds", type=positive_int, default=RaceSettings.max_seeds)
    parser.add_argument("--alpha", type=float, default=RaceSettings.alpha)
    parser.add_argument("--orders", type=positive_int, default=300, help="resampled seed orders (default 300)")
    parser.add_argument("--candidates", help="comma-separated names to race (default: every one in the table)")
    return parser.parse_args(argv)


@user_errors_exit_2
def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse(argv)
    settings = RaceSettings(min_seeds=args.min_seeds, max_seeds=args.max_seeds, alpha=args.alpha)
    candidates = None if args.candidates is None else [c for c in args.candidates.split(",") if c]
    if candidates is not None and not candidates:
        raise UsageError("--candidates: the pool is empty")
    summary = {"table": args.replay, "settings": asdict(settings),
               **replay(read_table(args.replay), settings, args.orders, candidates=candidates)}
    with open(args.out, "w") as out:
        json.dump(summary, out, indent=2)
        out.write("\n")
    print(json.dumps({k: summary[k] for k in ("picks", "regret_mean", "runs_fraction", "held_out")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
