"""Stage 2 on Ray Tune: the table and the winner a user relies on, resume, and clean refusals."""
import math
import subprocess
import sys

import pandas as pd
import pytest
import ray
from ray import tune

from rundir import RunDir
from stage2.retrain import retrain
from stage2.settings import Stage2Error, Stage2Settings
from stage2.summary import choose_winner, summarise
from evaluator.models import build_model, count_parameters
from experiments_paths import EXPERIMENTS, load_script
from searchspace import KNOWN, from_key, load
from searchspace.registry import DECISION_NAMES
from tiny_run import POOL, RUN_ID, make_run

TINY_STAGE2 = dict(k=2, baselines=["none"], seeds=1, epochs=1, cpus_per_trial=0.5,
                   overrides={"latency_repeats": 1})


@pytest.fixture(scope="module")
def stage2(tmp_path_factory, local_ray):
    """A tiny run after stage 2 on Tune: 2 candidates and the plain baseline, 1 seed, 1 epoch."""
    rundir = make_run(tmp_path_factory.mktemp("stage2") / "run")
    result = retrain(rundir, Stage2Settings(**TINY_STAGE2), verbose=0)
    return rundir, result


def script_main(name):
    return load_script(name).main


def test_every_model_and_seed_is_one_tune_trial_and_one_row(stage2):
    rundir, result = stage2
    table = rundir.read_retrain()
    assert list(table["name"]) == ["rank-1", "rank-2", "none"]
    assert list(table["kind"]) == ["candidate", "candidate", "baseline"]
    assert list(table["genotype"]) == [POOL[0], POOL[1], KNOWN["none"].key]
    assert table["search_rank"].iloc[:2].tolist() == [1, 2] and pd.isna(table["search_rank"].iloc[2])
    for row in table.itertuples():
        assert [getattr(row, d) for d in DECISION_NAMES] == row.genotype.split("|")
    assert (table["seed"] == 0).all() and (table["epochs"] == 1).all() and (table["status"] == "ok").all()
    assert table["test_accuracy"].between(0, 1).all() and table["val_accuracy"].between(0, 1).all()
    assert (table["test_loss"] > 0).all() and (table["latency_ms"] > 0).all() and (table["wall_time_s"] > 0).all()
    # the trials trained the networks they name: parameters and multiply-adds of each genotype on 16x16 inputs
    for row in table.itertuples():
        assert row.params == count_parameters(build_model("resnet20", 10, from_key(row.genotype)))
    plain = table.set_index("name").loc["none"]
    assert table["macs"].min() == plain["macs"] > 0
    pd.testing.assert_frame_equal(result.rows, table, check_dtype=False)
    # Tune kept its experiment under the run directory, where --resume finds it
    assert tune.Tuner.can_restore(rundir.path("tune", "retrain"))


def test_winner_json_is_the_best_mean_candidate_with_figures_and_provenance(stage2):
    rundir, result = stage2
    winner = load(rundir.path("winner.json"))
    candidates = result.summary[result.summary["kind"] == "candidate"]
    best = candidates.sort_values(["test_accuracy_mean", "search_rank"], ascending=[False, True]).iloc[0]
    assert winner.key == best["genotype"]
    meta = winner.metadata
    assert meta["run_id"] == RUN_ID and meta["stage"] == "retrain" and meta["rank"] == best["search_rank"]
    assert meta["test_accuracy_mean"] == pytest.approx(best["test_accuracy_mean"])
    assert meta["test_accuracy_std"] is None  # one seed has no spread
    assert meta["seeds"] == [0] and meta["epochs"] == 1
    assert meta["params"] == best["params"] and meta["macs"] == best["macs"] and meta["latency_ms"] > 0
    plain = result.rows.set_index("name").loc["none"]
    assert meta["best_baseline"] == "none"
    assert meta["best_baseline_test_accuracy_mean"] == pytest.approx(plain["test_accuracy"])


def test_resume_restores_the_tune_experiment_and_a_second_start_is_refused(stage2):
    rundir, result = stage2
    with pytest.raises(Stage2Error, match="already holds a stage 2.*--resume"):
        retrain(rundir, Stage2Settings(**TINY_STAGE2), verbose=0)
    with pytest.raises(Stage2Error, match="started with seeds 1, not 3"):
        retrain(rundir, Stage2Settings(seeds=3, resume=True), verbose=0)
    resumed = retrain(rundir, Stage2Settings(resume=True), verbose=0)
    # nothing retrained: the restored trials' figures, wall times included, are the ones recorded
    pd.testing.assert_frame_equal(resumed.rows, result.rows)
    assert load(rundir.path("winner.json")).key == result.winner.key


def trial(kind, name, seed, accuracy, status="ok", rank=None):
    key = KNOWN[name].key if kind == "baseline" else POOL[rank - 1]
    return {"kind": kind, "name": name, "genotype": key, "search_rank": rank, "seed": seed, "status": status,
            "test_accuracy": accuracy, "test_loss": 1.0, "params": 10, "macs": 20, "latency_ms": 0.5}


def test_summary_is_mean_and_sample_std_over_finished_seeds_and_baselines_never_win():
    rows = pd.DataFrame([
        trial("candidate", "rank-1", 0, 0.50, rank=1), trial("candidate", "rank-1", 1, 0.70, rank=1),
        trial("candidate", "rank-1", 2, math.nan, status="error", rank=1),
        trial("candidate", "rank-2", 0, 0.62, rank=2), trial("candidate", "rank-2", 1, 0.64, rank=2),
        trial("baseline", "se", 0, 0.90), trial("baseline", "se", 1, 0.80),
    ])
    summary = summarise(rows).set_index("name")
    assert summary.loc["rank-1", "seeds_ok"] == 2 and summary.loc["rank-1", "trials"] == 3
    assert summary.loc["rank-1", "test_accuracy_mean"] == pytest.approx(0.60)
    assert summary.loc["rank-1", "test_accuracy_std"] == pytest.approx(math.sqrt(0.02))
    assert summary.loc["rank-2", "test_accuracy_mean"] == pytest.approx(0.63)
    plan = {"run_id": "r", "epochs": 5, "standalone": {"dataset": "d", "arch": "resnet20"},
            "entries": {"rank-1": {"search_reward": 0.4}, "rank-2": {"search_reward": 0.3}}}
    winner = choose_winner(summarise(rows), plan)
    assert winner.key == POOL[1] and winner.metadata["rank"] == 2  # best mean, not best single seed
    assert winner.metadata["best_baseline"] == "se"
    assert winner.metadata["best_baseline_test_accuracy_mean"] == pytest.approx(0.85)
    failed = rows.assign(status=["error"] * 5 + ["ok"] * 2)
    with pytest.raises(Stage2Error, match="no candidate finished"):
        choose_winner(summarise(failed), plan)


@pytest.fixture
def runs(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    fresh = RunDir(tmp_path / "fresh")
    fresh.create({"run_id": "fresh"})  # config.yaml, no round and no candidates yet
    return {"full": make_run(tmp_path / "full").out, "fresh": fresh.out, "empty": str(empty),
            "missing": str(tmp_path / "nope")}


@pytest.mark.parametrize("run, args, message", [
    ("fresh", [], "no rounds yet"),
    ("full", ["-k", "4"], "-k 4 is more than the run has: 3 ranked genotypes"),
    ("full", ["--baselines", "se,sk"], "unknown baseline 'sk'; valid: none, se, eca, cbam"),
    ("full", ["--seeds", "0"], "seeds must be at least 1"),
    ("full", ["--epochs", "two"], "expected a whole number"),
    ("full", ["--gpus-per-trial", "1.5"], "whole number"),
    ("full", ["--cpus-per-trial", "0"], "cpus per trial must be above 0"),
    ("full", ["--resume"], "nothing to resume"),
    ("empty", [], "not a run directory"),
    ("missing", [], "no such run directory"),
])
def test_bad_input_exits_2_with_one_error_line(runs, run, args, message, capsys):
    with pytest.raises(SystemExit) as exit:
        script_main("retrain_topk")([runs[run], *args])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert RunDir(runs["full"]).read_retrain() is None


def test_k_too_large_as_a_subprocess_prints_one_line_and_no_traceback(runs):
    done = subprocess.run([sys.executable, str(EXPERIMENTS / "retrain_topk.py"), runs["full"], "-k", "7"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"error: -k 7 is more than the run has: 3 ranked genotypes in {runs['full']}"]
    assert "Traceback" not in done.stdout + done.stderr
