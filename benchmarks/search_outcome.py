"""The search outcome, judged against the stand-alone ground truth.

Runs the default search (``python experiments/run_rl_search.py``, the embedded config) with
``--seeds`` search seeds, and random search with weight sharing (the same command with ``--policy
random``: the same rounds, warm-up and derive stage), then trains every winner stand-alone at the
stand-alone table's budget B (``standalone_table.py``) with 3 seeds and compares:

- each winner's mean test accuracy with the best known module's, from the stand-alone table;
- the RL winners with the random-search winners, as means over the search seeds;
- each winner's percentile among the table's genotypes (share of their means below it).

    python benchmarks/search_outcome.py [--quick] [--seeds 3] [--policies rl random] [--runs DIR]
    python benchmarks/search_outcome.py --summary     # a partial result from what has finished
    python benchmarks/search_outcome.py --markdown    # the README's table of results/search_outcome.json
    python benchmarks/search_outcome.py --markdown search_outcome_warmup4   # of the default with 4 warm-up rounds
    python benchmarks/search_outcome.py --table results/standalone_table_12ep_test20k.parquet
        # the same searches judged by another table, their winners trained at that table's budget
    python benchmarks/search_outcome.py --config likelihood --table results/standalone_table_12seeds.parquet \
        --standalone-seeds 6   # a shipped config's searches (runs in RUNS/likelihood), judged by the 12-seed table

Besides the winners' means against each other, the result compares them paired by stand-alone seed
(``*_paired``): at each seed, the mean over a policy's winners against the best known module's run
(or the other policy's mean) at the same seed, the seeds sharing initial weights and batch order.

Every search keeps its run directory under ``--runs`` (default ``benchmarks/runs/search_outcome``),
so an interrupted benchmark resumes: a finished search (its ``winner.json`` written; or, where its
run directory is gone, as in a fresh checkout, its row in the result file with the same config) is
not run again, an unfinished one continues with ``--resume``, and stand-alone runs already in
``results/search_outcome_standalone.parquet`` (or at the same budget in the stand-alone table) are
not trained again. Writes ``results/search_outcome.json`` (``search_outcome_quick.json`` with
``--quick``: 1 search seed of a 3-round search on small data, winners trained 1 epoch, 1 seed).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from common import RESULTS, fail, repository_path, show_result, write_result  # first: Ray's loopback environment, the import path

import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from machine import describe_machine  # noqa: E402
from measures import difference, paired_by_seed  # noqa: E402
from rundir import RunDir  # noqa: E402
from search.config import ConfigError, config_file, saved_config  # noqa: E402
from searchspace import KNOWN, load  # noqa: E402
import standalone_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "search" / "configs" / "default.yaml"
QUICK_SEARCH = {"rounds": 3, "train_steps": 8, "samples_per_round": 6, "warmup_rounds": 1, "derive_top": 2,
                "derive_samples": 2, "evaluator": {"dataset_options": standalone_table.QUICK_DATA, "reward_images": 100}}


def search_config(folder: Path, changes: Dict[str, Any], base: Optional[str] = None) -> Optional[Path]:
    """The config ``base`` (``--config``'s name or path; the embedded default without it) with
    ``changes`` (nested dicts merged), written to ``folder``; None without changes (the search then
    runs with ``--config base``, or with none, exactly as a user's command)."""
    if not changes:
        return None
    config = yaml.safe_load((DEFAULT_CONFIG if base is None else config_file(base)).read_text()) or {}
    for key, value in changes.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    path = folder / "config.changed.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_search(out: Path, policy: str, seed: int, changes: Dict[str, Any], timings: Path,
               options: Sequence[str] = (), base: Optional[str] = None) -> Optional[float]:
    """One search in its own process, resumed when ``out`` holds an unfinished one; its wall seconds
    (summed over resumptions, kept in ``timings``). A finished search is not run again. ``options``:
    more of ``run_rl_search.py``'s options, those a resume may change (resources); ``base``: the
    ``--config`` it runs with (none: the embedded default)."""
    seconds = json.loads(timings.read_text()) if timings.exists() else {}
    if (out / "winner.json").exists():
        return seconds.get(out.name)  # None: finished by another command, not timed here
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(ROOT / "experiments" / "run_rl_search.py"), "--out", str(out),
               "--policy", policy, "--seed", str(seed), *options]
    config = search_config(out.parent, {**changes, "policy": policy, "seed": seed} if changes else {}, base)
    if config is not None or base is not None:
        command += ["--config", str(config or base)]
    if (out / "config.yaml").exists():
        command.append("--resume")
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT)
    seconds[out.name] = seconds.get(out.name, 0.0) + time.perf_counter() - start
    timings.write_text(json.dumps(seconds, indent=1))
    return seconds[out.name]


def table_at(path: Path, budget: Dict[str, Any]) -> pd.DataFrame:
    """The rows of a stand-alone table measured at ``budget``; empty when there is none at it."""
    if not path.exists():
        return pd.DataFrame()
    table = pd.read_parquet(path)
    expected = standalone_table.budget_row(budget)
    matches = pd.Series(True, index=table.index)
    for column, value in expected.items():
        matches &= table[column] == value
    return table[matches]


def train_winners(winners: Sequence[str], seeds: int, budget: Dict[str, Any], path: Path,
                  reference: pd.DataFrame) -> pd.DataFrame:
    """Every winner stand-alone at ``budget`` for ``seeds`` seeds, in ``path``; runs the reference table
    already holds are copied, not trained again."""
    table = table_at(path, budget)
    reference = reference if len(reference) else pd.DataFrame(columns=["genotype", "seed"])
    reused = reference[reference["genotype"].isin(winners) & (reference["seed"] < seeds)]
    fresh = reused[~reused.set_index(["genotype", "seed"]).index.isin(list(zip(table.get("genotype", []),
                                                                                  table.get("seed", []))))]
    if len(fresh):
        table = pd.concat([table, fresh], ignore_index=True)
        standalone_table.write_table(table, path)
    picks = [(f"winner-{i}", key) for i, key in enumerate(dict.fromkeys(winners))]
    options = standalone_table.make_parser().parse_args([])  # its defaults: 2 one-thread runs at a time on a local Ray
    return standalone_table.run_table(picks, seeds, budget, path, options)


def percentile(value: float, means: Sequence[float]) -> float:
    """Share of ``means`` below ``value`` (ties count half), in percent."""
    below = sum(m < value for m in means) + 0.5 * sum(m == value for m in means)
    return 100.0 * below / len(means)


def best_known(reference: pd.DataFrame) -> Optional[Tuple[str, str]]:
    """The known module (``none`` aside) with the best mean in ``reference``: its name and genotype key."""
    known = reference[reference["genotype"].isin({g.key for g in KNOWN.values()}) & (reference["name"] != "none")]
    if known.empty:
        return None
    name = known.groupby("name")["test_accuracy"].mean().idxmax()
    return name, known[known["name"] == name]["genotype"].iloc[0]


def compare(runs: List[Dict[str, Any]], winners: pd.DataFrame, reference: pd.DataFrame,
            seeds: int = 3) -> Dict[str, Any]:
    """Each run's winner in points of test accuracy, and the two comparisons of issue 15's item 6:
    as independent samples of the winners' means (``*_minus_*``) and paired by stand-alone seed over
    the first ``seeds`` (``*_paired``: each seed's mean over a policy's winners against the best known
    module's, or the other policy's, at that seed; the seeds share initial weights and batch order)."""
    accuracy = {} if winners.empty else {key: [100 * a for a in group["test_accuracy"]]
                                         for key, group in winners.groupby("genotype")}
    if reference.empty:  # no stand-alone table at this budget: the winners alone
        reference = pd.DataFrame(columns=["name", "genotype", "seed", "test_accuracy"])
    means = reference.groupby("genotype")["test_accuracy"].mean().mul(100)
    for run in runs:
        values = accuracy.get(run["winner"], [])  # none yet: a --summary of an unfinished benchmark
        mean = statistics.mean(values) if values else None
        run.update(standalone_mean=mean, standalone_sd=statistics.stdev(values) if len(values) > 1 else None,
                   standalone_seeds=len(values),
                   percentile_in_table=percentile(mean, list(means)) if len(means) and values else None)
    result: Dict[str, Any] = {"runs": runs}
    best = best_known(reference)
    by_policy = {p: [r["standalone_mean"] for r in runs if r["policy"] == p and r["standalone_mean"] is not None]
                 for p in dict.fromkeys(r["policy"] for r in runs)}
    if best is not None:
        runs_of_best = reference[(reference["name"] == best[0]) & (reference["genotype"] == best[1])]
        best_values = [100 * a for a in runs_of_best["test_accuracy"]]
        result["best_known"] = {"name": best[0], "mean": statistics.mean(best_values), "seeds": len(best_values)}
        for policy, values in by_policy.items():
            result[f"{policy}_minus_best_known"] = difference(values, best_values) if len(values) else None
    if len(by_policy.get("rl", [])) and len(by_policy.get("random", [])):
        result["rl_minus_random"] = difference(by_policy["rl"], by_policy["random"])
    found = {p: [r["winner"] for r in runs if r["policy"] == p and r["standalone_mean"] is not None] for p in by_policy}
    pool = pd.concat([winners, reference], ignore_index=True).drop_duplicates(["genotype", "seed"])
    if best is not None:
        for policy, keys in found.items():
            result[f"{policy}_minus_best_known_paired"] = (
                paired_by_seed(pool, {policy: keys, "best_known": [best[1]]}, seeds) if keys else None)
    if found.get("rl") and found.get("random"):
        result["rl_minus_random_paired"] = paired_by_seed(pool, {"rl": found["rl"], "random": found["random"]}, seeds)
    result["winner_mean_over_search_seeds"] = {p: statistics.mean(v) for p, v in by_policy.items() if v}
    return result


def against_default(runs: List[Dict[str, Any]], winners: pd.DataFrame, reference: pd.DataFrame,
                    default: Optional[Path] = None) -> Optional[Dict[str, Any]]:
    """A config's RL winners against the default's (``default``: its result; its winners' runs beside
    it), and each against the best known module, paired by seed over the seeds the default's
    winners ran; None without the default's result."""
    default = default or RESULTS / "search_outcome.json"
    standalone = default.with_name(default.stem + "_standalone.parquet")
    if not default.is_file() or not standalone.is_file():
        return None
    theirs = [r["winner"] for r in json.loads(default.read_text())["runs"] if r["policy"] == "rl"]
    ours = [r["winner"] for r in runs if r["policy"] == "rl" and r["standalone_mean"] is not None]
    theirs_runs = pd.read_parquet(standalone)
    pool = pd.concat([winners, theirs_runs, reference], ignore_index=True).drop_duplicates(["genotype", "seed"])
    best_key = best_known(reference)[1]
    seeds = int(theirs_runs["seed"].max()) + 1  # the default's footing: the seeds its winners ran
    return {"default_result": repository_path(default), "default_rl_winners": theirs, "seeds": seeds,
            "rl_minus_default_rl_paired": paired_by_seed(pool, {"rl": ours, "default_rl": theirs}, seeds) if ours else None,
            "default_rl_minus_best_known_paired": paired_by_seed(pool, {"default_rl": theirs, "best_known": [best_key]}, seeds),
            "rl_minus_best_known_paired": paired_by_seed(pool, {"rl": ours, "best_known": [best_key]}, seeds) if ours else None}


def judge(result: Dict[str, Any]) -> Dict[str, Optional[bool]]:
    """Item 6's two targets; None (not judged) until every winner has all its seeds."""
    def verdict(key: str, passes) -> Optional[bool]:
        found = result.get(key)
        return passes(found["difference"]) if result["complete"] and found else None

    return {"rl winner >= best known module (mean over search seeds)": verdict("rl_minus_best_known", lambda d: d >= 0),
            "rl winner > random-search winner (mean over search seeds)": verdict("rl_minus_random", lambda d: d > 0)}


def markdown(result: Dict[str, Any]) -> str:
    """The README's outcome table: one row per search, from a result file."""
    names = {"rl": "RL (`sase`)", "ppo": "PPO (`sase`)", "random": "random search"}
    lines = ["| search | search seed | winner | search time | supernet validation % (derive) | "
             "stand-alone test %, mean ± sd (seeds) | percentile in the table |", "|" + " --- |" * 7]
    for run in result["runs"]:
        mean, sd, seeds = run["standalone_mean"], run["standalone_sd"], run["standalone_seeds"]
        accuracy = "-" if mean is None else f"{mean:.2f}" + ("" if sd is None else f" ± {sd:.2f}") + f" ({seeds} seeds)"
        supernet = run["supernet_val_accuracy"]
        cells = [names.get(run["policy"], run["policy"]), str(run["search_seed"]),
                 "`" + run["winner"].replace("|", "\\|") + "`",
                 "-" if run["search_seconds"] is None else f"{run['search_seconds']:.0f} s",
                 "-" if supernet is None else f"{100 * supernet:.2f}",
                 accuracy, "-" if run["percentile_in_table"] is None else f"{run['percentile_in_table']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=3, help="search seeds per policy (default 3)")
    parser.add_argument("--standalone-seeds", type=int, default=3, help="stand-alone seeds per winner (default 3)")
    parser.add_argument("--policies", nargs="+", default=["rl", "random"], choices=["rl", "ppo", "random"])
    parser.add_argument("--runs", type=Path, default=ROOT / "benchmarks" / "runs" / "search_outcome")
    parser.add_argument("--searches-only", action="store_true", help="run the searches, train no winner")
    parser.add_argument("--summary", action="store_true", help="train nothing: summarise the finished searches "
                        "and the stand-alone runs there are (an unfinished benchmark's partial result)")
    parser.add_argument("--table", type=Path, metavar="PARQUET", help="judge by this stand-alone table and train "
                        "the winners at its budget (default: results/standalone_table.parquet at budget B); the "
                        "result is search_outcome_against_<its name>.json")
    parser.add_argument("--config", metavar="NAME|FILE", help="run the searches with this search config (a shipped "
                        "name such as likelihood, or a file); runs in RUNS/NAME, the result is search_outcome_NAME")
    parser.add_argument("--markdown", nargs="?", const="", metavar="RESULT",
                        help="print the README's table of the result file (or of results/RESULT.json), run nothing")
    return parser


def config_digest(base: Optional[str], changes: Dict[str, Any]) -> str:
    """What the searches run with, as a short hash: the config file's settings (comments aside) and
    the benchmark's changes to them."""
    config = yaml.safe_load((DEFAULT_CONFIG if base is None else config_file(base)).read_text()) or {}
    text = json.dumps({"config": config, "changes": changes}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def recorded_searches(result: Path, digest: str) -> Dict[Tuple[str, int], Dict[str, Any]]:
    """The finished searches ``result`` records with the same ``config_digest``, by (policy, seed).
    Run directories are not kept in git: in a fresh checkout a search the result file records is
    taken from it, not run again (a search repeats bit for bit only on the CPU it ran on)."""
    if not result.is_file():
        return {}
    return {(row["policy"], row["search_seed"]): row  # its stand-alone figures are computed again by compare
            for row in json.loads(result.read_text()).get("runs", []) if row.get("config_digest") == digest}


def run_searches(args: argparse.Namespace, search_seeds: int, runs_dir: Path,
                 result: Optional[Path] = None) -> List[Dict[str, Any]]:
    """Each policy's searches (run, or found finished: in ``runs_dir``, or recorded in ``result`` with
    the same config), one row per search with its winner; with ``--summary`` only the finished ones."""
    changes = QUICK_SEARCH if args.quick else {}
    digest = config_digest(args.config, changes)
    recorded = {} if result is None else recorded_searches(result, digest)
    runs = []
    for policy in args.policies:
        for seed in range(search_seeds):
            out = runs_dir / f"{policy}-seed{seed}"
            if not (out / "config.yaml").exists() and (policy, seed) in recorded:
                runs.append(dict(recorded[(policy, seed)]))
                continue
            if args.summary and not (out / "winner.json").exists():
                continue
            seconds = run_search(out, policy, seed, changes, runs_dir / "seconds.json", base=args.config)
            winner, saved = load(out / "winner.json"), RunDir(str(out)).read_config()
            runs.append({"policy": policy, "search_seed": seed, "winner": winner.key, "search_seconds": seconds,
                         "supernet_val_accuracy": winner.metadata.get("val_accuracy"),
                         # the default changed once (issue 15: 4 -> 0); a result says which it measured
                         "warmup_rounds": saved.get("warmup_rounds"),
                         # 0 for every search seed until --seed reached the supernet
                         "supernet_seed": saved_config(saved).evaluator.seed,
                         "run": repository_path(out), "config_digest": digest})
    return runs


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = make_parser().parse_args(argv)
    variant = "" if args.config is None else Path(args.config).stem
    name = ("search_outcome_quick" if args.quick else "search_outcome") + (variant and f"_{variant}") + \
        standalone_table.judged_by(args.table, RESULTS / f"standalone_table{'_quick' if args.quick else ''}.parquet")
    if args.markdown is not None:
        path = RESULTS / f"{args.markdown or name}.json"
        if not path.is_file():
            fail(f"--markdown {args.markdown}: no result file {path}")
        print(markdown(json.loads(path.read_text())))
        return
    search_seeds, seeds = (1, 1) if args.quick else (args.seeds, args.standalone_seeds)
    if args.config is not None:  # before any search: a config that does not exist is refused at once
        try:
            config_file(args.config)
        except ConfigError as err:
            fail(f"--config: {err}")
    runs_dir = args.runs / ("quick" + (variant and f"-{variant}") if args.quick else variant or "default")
    if args.table is not None:  # before any search: a bad table is refused at once
        given = standalone_table.load_table(args.table, "--table")
        budget = standalone_table.budget_of(given, "--table")
    else:
        budget = standalone_table.make_budget(args.quick)  # budget B: what the winners train at without --table
    runs = run_searches(args, search_seeds, runs_dir, RESULTS / f"{name}.json")
    if args.searches_only:
        print(json.dumps(runs, indent=1))
        return
    reference = (given if args.table is not None
                 else table_at(RESULTS / f"standalone_table{'_quick' if args.quick else ''}.parquet", budget))
    standalone = RESULTS / f"{name}_standalone.parquet"
    winners = (table_at(standalone, budget) if args.summary
               else train_winners([r["winner"] for r in runs], seeds, budget, standalone, reference))
    result = {
        "benchmark": name, "machine": describe_machine(),
        "settings": {"search": ("the embedded default config" if args.config is None else f"--config {args.config}")
                     + (f" with {json.dumps(QUICK_SEARCH)}" if args.quick else ""),
                     "search_seeds": search_seeds, "policies": args.policies, "standalone_budget": budget,
                     "standalone_seeds": seeds, "reference_table": str(args.table or "standalone_table.parquet"),
                     "reference_table_genotypes": int(reference["genotype"].nunique()) if len(reference) else 0},
        **compare(runs, winners, reference, seeds),
        "complete": all(r["standalone_seeds"] >= seeds for r in runs) and len(runs) == search_seeds * len(args.policies),
    }
    if args.config is not None and not args.quick:
        result["against_default"] = against_default(runs, winners, reference)
    result["targets"] = judge(result)
    write_result(RESULTS / f"{name}.json", result)
    show_result(result)


if __name__ == "__main__":
    main()
