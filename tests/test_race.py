"""The race rule (stage2/race.py): rounds paired by seed, the dropping test, the budget stop, the
replay on stored and synthetic tables, and bad input refused in one line."""
import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from searchspace import KNOWN
from searchspace.cli import UsageError
from stage2.race import RaceSettings, paired_test, race, read_table, replay, verdict

TABLE_12_SEEDS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "standalone_table_12seeds.parquet"


def recorded(accuracy):
    """A round function over ``accuracy[name][seed]`` (None: the run failed) that records every run."""
    calls = []

    def run(round_number, names, seed):
        calls.extend((name, seed) for name in names)
        return {name: accuracy[name][seed] for name in names}

    return run, calls


def test_every_candidate_of_a_round_runs_that_rounds_seed():
    accuracy = {name: {s: 0.70 + 0.01 * i + 0.001 * ((s * 7 + i) % 5) for s in range(8)}
                for i, name in enumerate(["a", "b", "c", "d"])}
    run, calls = recorded(accuracy)
    result = race(list(accuracy), [5, 2, 7, 0, 1], run, RaceSettings(min_seeds=2, max_seeds=5))
    by_seed = {}
    for name, seed in calls:
        by_seed.setdefault(seed, []).append(name)
    assert [seed for seed in by_seed] == result.seeds == [5, 2, 7, 0, 1][:len(result.seeds)]
    for round_number, seed in enumerate(result.seeds, start=1):  # the round's survivors, all on its seed
        alive = [n for n in accuracy if result.dropped.get(n, math.inf) >= round_number]
        assert sorted(by_seed[seed]) == sorted(alive)
    assert len(calls) == len(set(calls)) == result.runs  # no run twice


def test_the_dropping_rule_is_the_hand_computed_paired_t_test():
    leader, other = [0.70, 0.72, 0.71], [0.68, 0.69, 0.70]
    # differences -0.02, -0.03, -0.01: mean -0.02, sd 0.01, t = -0.02 / (0.01 / sqrt 3) = -2 sqrt 3;
    # Student's t with 2 degrees of freedom has CDF 1/2 + t / (2 sqrt(2 + t^2)).
    t = -2 * math.sqrt(3)
    p = 0.5 + t / (2 * math.sqrt(2 + t * t))
    test = paired_test(other, leader)
    assert (test.mean, test.t, test.p) == (pytest.approx(-0.02), pytest.approx(t), pytest.approx(p))
    assert test.p == pytest.approx(0.0371, abs=1e-4)
    accuracy = {"lead": dict(enumerate(leader)), "other": dict(enumerate(other))}
    dropped = race(["lead", "other"], [0, 1, 2], recorded(accuracy)[0], RaceSettings(min_seeds=3, alpha=0.05))
    kept = race(["lead", "other"], [0, 1, 2], recorded(accuracy)[0], RaceSettings(min_seeds=3, alpha=0.03))
    assert dropped.dropped == {"other": 3} and dropped.survivors == ["lead"]
    assert kept.dropped == {} and kept.survivors == ["lead", "other"]


def test_identical_results_are_never_dropped_and_a_constant_loss_always_is():
    assert paired_test([0.7, 0.7], [0.7, 0.7]).p == 1.0
    assert paired_test([0.69, 0.69], [0.7, 0.7]).p == 0.0


def test_the_race_stops_before_a_round_that_would_pass_the_budget():
    accuracy = {name: {s: 0.7 for s in range(6)} for name in "abc"}  # all tied: nobody is dropped
    run, calls = recorded(accuracy)
    result = race(list(accuracy), range(6), run, RaceSettings(budget_runs=8))
    assert result.runs == len(calls) == 6 and result.seeds == [0, 1]
    assert result.stopped == "the budget of 8 runs"


def test_a_failed_run_drops_its_candidate_and_the_rest_race_on():
    accuracy = {"a": {0: 0.70, 1: 0.71, 2: 0.70}, "b": {0: 0.70, 1: None, 2: 0.70}, "c": {0: 0.69, 1: 0.70, 2: 0.69}}
    result = race(list(accuracy), [0, 1, 2], recorded(accuracy)[0], RaceSettings(min_seeds=3))
    assert result.failed == ["b"] and result.dropped["b"] == 2 and result.results["b"] == {0: 0.70}
    assert result.seeds == [0, 1, 2] and "b" not in result.survivors
    with pytest.raises(UsageError, match="every candidate's run failed in round 1"):
        race(["b"] * 1 + ["d"], [1], recorded({**accuracy, "d": {1: None}})[0], RaceSettings())


def synthetic_table(best: str, seeds: int = 8) -> pd.DataFrame:
    """Known modules and three searched genotypes; ``best`` is 0.6 points above the rest's best.
    Every seed shifts all candidates alike (sd 0.5 points); each run adds its own noise (sd 0.3)."""
    rng = random.Random(3)
    names = list(KNOWN) + ["found-1", "found-2", "found-3"]
    base = {name: 0.72 + 0.004 * rng.random() for name in names}
    base[best] = max(base.values()) + 0.006
    shift = {s: rng.gauss(0, 0.005) for s in range(seeds)}
    return pd.DataFrame([{"name": name, "genotype": f"g-{name}", "seed": s,
                          "test_accuracy": base[name] + shift[s] + rng.gauss(0, 0.003)}
                         for name in names for s in range(seeds)])


def test_a_replay_picks_a_searched_genotype_that_is_truly_best(tmp_path):
    path = tmp_path / "table.parquet"
    synthetic_table("found-2").to_parquet(path)
    summary = replay(read_table(str(path)), RaceSettings(max_seeds=8), orders=100)
    assert summary["best_by_all_seeds"] == "found-2"
    assert max(summary["picks"], key=summary["picks"].get) == "found-2"
    assert summary["runs_mean"] < summary["table_runs"]


def test_the_replay_of_the_12_seed_table_meets_the_race_targets():
    """Default settings: mean regret at most 0.1 point, at most 40 % of the table's runs."""
    summary = replay(read_table(str(TABLE_12_SEEDS)), RaceSettings(), orders=100)
    assert summary["regret_mean"] <= 0.1 and summary["runs_fraction"] <= 0.4
    assert summary["best_by_all_seeds"] == "srm"


@pytest.mark.parametrize("settings, message", [
    (dict(alpha=0.0), "alpha must be between 0 and 1, got 0.0"),
    (dict(alpha=1.5), "alpha must be between 0 and 1, got 1.5"),
    (dict(min_seeds=5, max_seeds=3), "min_seeds (5) is above max_seeds (3)"),
])
def test_bad_race_settings_are_refused_by_name(settings, message):
    with pytest.raises(UsageError) as refused:
        RaceSettings(**settings)
    assert str(refused.value) == message


def cli(*args):
    return subprocess.run([sys.executable, "-m", "stage2.race", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("extra, message", [
    (["--alpha", "2"], "alpha must be between 0 and 1, got 2.0"),
    (["--min-seeds", "6", "--max-seeds", "4"], "min_seeds (6) is above max_seeds (4)"),
    (["--candidates", "srm,nonesuch"], "unknown candidate 'nonesuch'"),
    (["--candidates", ","], "--candidates: the pool is empty"),
])
def test_bad_replay_input_is_one_line_and_exit_2(tmp_path, extra, message):
    path = tmp_path / "table.parquet"
    synthetic_table("found-1", seeds=4).to_parquet(path)
    done = cli("--replay", path, "--out", tmp_path / "out.json", *extra)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith("error: ") and message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out.json").exists()


def test_a_replay_table_without_the_needed_columns_is_refused(tmp_path):
    path = tmp_path / "table.parquet"
    pd.DataFrame({"name": ["se"], "accuracy": [0.7]}).to_parquet(path)
    done = cli("--replay", path, "--out", tmp_path / "out.json")
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"error: --replay {path}: a stand-alone table needs the columns name (or genotype), seed and "
        "test_accuracy; missing: seed, test_accuracy"]


def test_the_replay_command_writes_its_summary(tmp_path):
    path = tmp_path / "table.parquet"
    synthetic_table("found-3", seeds=6).to_parquet(path)
    done = cli("--replay", path, "--out", tmp_path / "out.json", "--orders", "20")
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "out.json").read_text())
    assert set(summary) >= {"picks", "regret_mean", "regret_p90", "runs_mean", "runs_fraction", "held_out", "settings"}
    assert sum(summary["picks"].values()) == 20


def raced(offsets, seeds=6, noise=(0.001, -0.002, 0.0015, -0.001, 0.002, -0.0005)):
    """A race of candidates whose accuracy is 0.72 + offset + a per-seed wobble of their own."""
    accuracy = {name: {s: 0.72 + offset + noise[(s + i) % len(noise)] for s in range(seeds)}
                for i, (name, offset) in enumerate(offsets.items())}
    return race(list(accuracy), range(seeds), recorded(accuracy)[0], RaceSettings(max_seeds=seeds))


def test_the_verdict_says_a_searched_genotype_beats_the_best_known_module():
    result = raced({"rank-1": 0.012, "srm": 0.0, "se": -0.004, "none": -0.015})
    found = verdict(result, known=["srm", "se", "none"], alpha=0.05)
    assert found["winner"] == "rank-1" and found["best_known"] == "srm"
    against = found["against_best_known"]
    assert against["mean"] < 0 and against["p"] < 0.05 and against["seeds"] >= 2
    assert found["sentence"] == (f"searched genotype rank-1 beats the best known module srm by "
                                 f"{-against['mean']:.2f} ± {against['se']:.2f} points")
    assert found["against_none"]["mean"] < 0 and found["against_none"]["p"] < 0.05  # none minus the winner
    assert set(found["dropped_in_round"]) == {"srm", "se", "none"}


def test_the_verdict_names_the_known_module_when_no_searched_genotype_beat_it():
    found = verdict(raced({"rank-1": -0.01, "rank-2": -0.012, "srm": 0.0, "none": -0.02}),
                    known=["srm", "none"], alpha=0.05)
    assert found["sentence"] == "no searched genotype beat srm; srm is the answer"


def test_the_verdict_says_which_candidates_tie():
    found = verdict(raced({"rank-1": 0.0, "srm": 0.0, "none": -0.02}), known=["srm", "none"], alpha=0.05)
    assert found["sentence"] in ("unresolved at this budget: rank-1 and srm tie",
                                 "unresolved at this budget: srm and rank-1 tie")
    assert sorted(found["survivors"]) == ["rank-1", "srm"]
