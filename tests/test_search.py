"""The search end to end: the run directory it leaves, and SIGKILL-and-resume giving the same log."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import ray
import yaml

import searchspace
from rundir import REWARD_SCHEMA
from experiments_paths import SEARCH_SCRIPT as SCRIPT, VOLATILE
from experiments_paths import load_script
from tiny_run import write_search_config



@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    return write_search_config(tmp_path_factory.mktemp("config"), rounds=4, derive=2, seed=3)


def search(config, out, *extra, **popen):
    command = [sys.executable, str(SCRIPT), "--config", str(config), "--out", str(out), "--quiet", *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **popen)


def finish(process, timeout=600):
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return out


def table(out):
    return pd.read_parquet(Path(out) / "rewards").drop(columns=VOLATILE).reset_index(drop=True)


@pytest.fixture(scope="module")
def uninterrupted(tiny_config, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "whole"
    stdout = finish(search(tiny_config, out))
    return out, stdout


def test_search_leaves_a_complete_run_directory(uninterrupted):
    out, stdout = uninterrupted
    rewards = pd.read_parquet(out / "rewards")
    assert sorted(rewards["round"].unique()) == [1, 2, 3, 4]
    assert len(rewards) == 16 and list(rewards.columns) == REWARD_SCHEMA.names
    assert rewards.groupby("round")["phase"].first().tolist() == ["warmup", "search", "search", "search"]
    assert (rewards["status"] == "ok").all() and rewards["reward"].between(0, 1.01).all()
    assert rewards["genotype"].map(lambda k: searchspace.from_key(k).key == k).all()  # canonical keys
    winner = searchspace.load(out / "winner.json")
    candidates = pd.read_parquet(out / "candidates.parquet")
    assert winner.key == candidates.sort_values("rank")["genotype"].iloc[0]
    assert winner.metadata["run_id"] == "whole" and winner.metadata["rank"] == 1
    # the winner's uncertainty travels with it: binomial over the 128 validation images it was scored on
    assert candidates["val_images"].eq(128).all()
    assert candidates["val_loss_sd"].gt(0).all()  # what a likelihood reward's standard error needs
    reward = winner.metadata["reward"]
    assert winner.metadata["reward_se"] == pytest.approx((reward * (1 - reward) / 128) ** 0.5)
    tied = winner.metadata["not_separated_from_ranks"]
    assert set(tied) <= set(candidates["rank"]) - {1}
    assert ("rank 1 is not separated from" in stdout) == bool(tied) and "--race" in stdout
    assert "winner: " in stdout and winner.key in stdout
    assert yaml.safe_load((out / "config.yaml").read_text())["run_id"] == "whole"


def test_score_rates_genotypes_on_a_finished_run_as_its_derive_stage_did(uninterrupted, tmp_path, capsys):
    out, _ = uninterrupted
    candidates = pd.read_parquet(out / "candidates.parquet").set_index("genotype")
    score = load_script("score").main
    assert score([str(out), "--genotypes", *candidates.index, "srm", "--out", str(tmp_path / "s.parquet")]) == 0
    printed = capsys.readouterr().out
    scores = pd.read_parquet(tmp_path / "s.parquet").set_index("genotype")
    for key, row in candidates.iterrows():  # the same weights, images and BN mode: the same figures
        assert scores.loc[key, "reward"] == pytest.approx(row["reward"], abs=1e-9)
        assert scores.loc[key, "val_loss"] == pytest.approx(row["val_loss"], rel=1e-5)
        assert scores.loc[key, "val_loss_sd"] == pytest.approx(row["val_loss_sd"], rel=1e-5)
    srm = searchspace.KNOWN["srm"].key
    assert scores.loc[srm, "name"] == "srm" and scores.loc[srm, "val_images"] == 128 and srm in printed
    assert list(scores["reward"]) == sorted(scores["reward"], reverse=True)
    assert score([str(out), "--known"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1 + len(searchspace.KNOWN)


def test_the_derive_stages_gaps_to_rank_1_are_paired_by_image_and_the_benchmark_finds_the_same(uninterrupted, tmp_path,
                                                                                                monkeypatch):
    """The derive stage kept each candidate's per-image figures, so top_k's gap_se is paired; the
    benchmark that re-scores the candidates finds the same rewards and the same paired gaps."""
    out, _ = uninterrupted
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import derive_separation
    from rundir import RunDir
    from rundir.schemas import gap_standard_errors

    ranked = RunDir(str(out)).top_k(3)
    unpaired = gap_standard_errors(ranked.drop(columns="gap_se"), None)
    assert ranked["gap_se"].iloc[1:].notna().all()
    assert not ranked["gap_se"].iloc[1:].equals(unpaired.iloc[1:])  # 128 shared images: the pairing changed them
    monkeypatch.setattr(derive_separation, "RESULTS", tmp_path)
    derive_separation.main(["--runs", str(out), "--top", "3"])
    measured = json.loads((tmp_path / "derive_separation.json").read_text())["runs"][0]
    assert measured["max_reward_difference_from_candidates"] < 1e-9 and measured["val_images"] == 128
    assert [r["gap_se_paired"] for r in measured["ranks"][1:]] == pytest.approx(list(ranked["gap_se"].iloc[1:]))
    assert [r["gap_se_unpaired"] for r in measured["ranks"][1:]] == pytest.approx(list(unpaired.iloc[1:]))


def test_score_corrects_each_genotype_when_asked_and_leaves_the_run_as_it_was(uninterrupted, tmp_path):
    out, _ = uninterrupted
    checkpoints = {path.name: path.read_bytes() for path in (out / "checkpoints").iterdir()}
    score = load_script("score").main
    keys = ["srm", "gap|bn|mean|conv7x7"]
    assert score([str(out), "--genotypes", *keys, "--out", str(tmp_path / "plain.parquet")]) == 0
    for name in ("corrected", "again"):
        assert score([str(out), "--genotypes", *keys, "--correction-steps", "3", "--out", str(tmp_path / f"{name}.parquet")]) == 0
    plain, corrected, again = (pd.read_parquet(tmp_path / f"{n}.parquet").set_index("genotype").sort_index()
                               for n in ("plain", "corrected", "again"))
    assert (corrected["val_loss"] != plain["val_loss"]).all()
    pd.testing.assert_frame_equal(corrected, again)  # the same correction batches: the same scores
    assert {path.name: path.read_bytes() for path in (out / "checkpoints").iterdir()} == checkpoints


def test_a_second_search_into_the_same_directory_is_refused(uninterrupted, tiny_config):
    out, _ = uninterrupted
    before = table(out)
    process = search(tiny_config, out)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert "--resume" in err and "Traceback" not in err
    pd.testing.assert_frame_equal(table(out), before)


@pytest.mark.parametrize("kill_after_round", [1, 2])
def test_sigkill_then_resume_gives_the_uninterrupted_table(uninterrupted, tiny_config, tmp_path, kill_after_round):
    whole, _ = uninterrupted
    out = tmp_path / "whole"  # same run id as the uninterrupted run
    process = search(tiny_config, out)
    marker = out / "rewards" / f"round-{kill_after_round:06d}.parquet"
    deadline = time.monotonic() + 600  # only against a hang: the loop waits for the file
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the search did not get to the round to kill it in"
    os.killpg(process.pid, signal.SIGKILL)  # the driver and the local Ray it started
    process.wait()

    finish(search(tiny_config, out, "--resume"))
    pd.testing.assert_frame_equal(table(out), table(whole))
    assert pd.read_parquet(out / "candidates.parquet").equals(pd.read_parquet(whole / "candidates.parquet"))
    assert json.loads((out / "winner.json").read_text())["ops"] == json.loads((whole / "winner.json").read_text())["ops"]


def test_resume_without_a_run_is_refused(tiny_config, tmp_path):
    process = search(tiny_config, tmp_path / "nothing", "--resume")
    _, err = process.communicate(timeout=300)
    assert process.returncode == 2
    assert err.strip().splitlines() == [f"error: {tmp_path / 'nothing'}: nothing to resume (no run directory); "
                                        "drop --resume to start a run"]


@pytest.fixture
def own_cluster():
    """A Ray instance of this test's own, by address: ``auto`` would find whichever Ray on the
    machine started last (another test's, another user's)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def test_status_attaches_to_a_running_search(tiny_config, tmp_path, own_cluster):
    process = search(tiny_config, tmp_path / "watched", "--rounds", "40", "--ray-address", own_cluster)
    try:
        marker = tmp_path / "watched" / "rewards" / "round-000002.parquet"  # round 1 is the warm-up
        deadline = time.monotonic() + 600  # only against a hang: the loop waits for the file
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists()
        # The driver stopped: the search cannot end before the status call lands. Its controller
        # actor, a separate Ray process, still answers.
        os.kill(process.pid, signal.SIGSTOP)
        status = subprocess.run([sys.executable, "-m", "controller", "status", "watched", "--json",
                                 "--ray-address", own_cluster],
                                capture_output=True, text=True, timeout=300)
        assert status.returncode == 0, status.stderr[-2000:]
        state = json.loads(status.stdout)
        assert state["round"] >= 1 and searchspace.from_key(state["greedy"])
        for decision, probabilities in state["probabilities"].items():
            assert list(probabilities) == searchspace.DECISIONS[searchspace.DECISION_NAMES.index(decision)].names()
            assert sum(probabilities.values()) == pytest.approx(1.0)
        assert state["best"] and state["best"][0]["count"] >= 1
        missing = subprocess.run([sys.executable, "-m", "controller", "status", "no-such-run",
                                  "--ray-address", own_cluster],
                                 capture_output=True, text=True, timeout=300)
        assert missing.returncode == 2 and "Traceback" not in missing.stderr
        assert missing.stderr.strip().splitlines()[-1].startswith("error: no running search 'no-such-run'")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_a_latency_objective_search_logs_predicted_latencies_ranks_by_mnas_and_resumes_on_its_table(
        tiny_config, tmp_path, capsys):
    from evaluator.latency import predict_ms
    from search.objective import mnas

    config = yaml.safe_load(Path(tiny_config).read_text())
    config.update(rounds=3, objective={"name": "mnas", "target_ms": 1.0, "w": -0.07})
    path = tmp_path / "mnas.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "mnas"
    finish(search(path, out))
    table = json.loads((out / "latency.json").read_text())
    assert table["format"] == "sase-latency" and table["batches"] == [1, 32]  # the training batch of tiny.yaml
    log = pd.read_parquet(out / "rewards")
    assert (log["status"] == "ok").all() and (log["macs"] > 0).all()
    for row in log.itertuples():  # each latency is the table's prediction at the training batch
        assert row.latency_ms == pytest.approx(predict_ms(table, row.genotype, 32, "sequential"), rel=1e-12)
        expected = mnas(row.reward, row.latency_ms, 1.0, -0.07)
        if row.phase == "warmup":  # no controller update: the objective as computed
            assert row.objective == pytest.approx(expected, rel=1e-12)
        else:  # what the controller learned from: the objective plus its entropy bonus (1e-4 x entropy)
            assert abs(row.objective - expected) <= 1e-4 * row.entropy + 1e-12
    candidates = pd.read_parquet(out / "candidates.parquet").sort_values("rank")
    assert list(candidates["objective"]) == sorted(candidates["objective"], reverse=True)
    assert (candidates["objective"] == [mnas(r, lat, 1.0, -0.07) for r, lat in
                                        zip(candidates["reward"], candidates["latency_ms"])]).all()
    assert load_script("top_k").main([str(out), "--pareto"]) == 0
    front = capsys.readouterr().out.splitlines()[1:]
    assert front and all(line.split()[1] in set(candidates["genotype"]) for line in front)
    # resume: the stored table, not a new measurement, predicts the new round's latencies
    stored = (out / "latency.json").read_bytes()
    finish(search(path, out, "--resume", "--rounds", "4"))
    assert (out / "latency.json").read_bytes() == stored
    resumed = pd.read_parquet(out / "rewards")
    assert sorted(resumed["round"].unique()) == [1, 2, 3, 4]
    fourth = resumed[resumed["round"] == 4]
    assert all(lat == pytest.approx(predict_ms(table, key, 32, "sequential"), rel=1e-12)
               for key, lat in zip(fourth["genotype"], fourth["latency_ms"]))


def test_a_latency_table_given_in_the_config_is_kept_and_predicts_every_latency(tiny_config, tmp_path):
    from evaluator.latency import measure_table, predict_ms, write_table

    # a table "from another device": measured here, every time tripled, so a re-measurement would show
    table = measure_table("resnet20", 32, 32, [1, 32], repeats=1)  # styled-glyphs: 32x32 images, 32 classes
    def tripled(by_batch):
        return {b: 3 * ms for b, ms in by_batch.items()}

    table["backbone_ms"] = tripled(table["backbone_ms"])
    table["ops"] = {decision: {op: {shape: tripled(by_batch) for shape, by_batch in shapes.items()}
                               for op, shapes in ops.items()} for decision, ops in table["ops"].items()}
    given = tmp_path / "deployment-latency.json"
    write_table(table, str(given))
    config = yaml.safe_load(Path(tiny_config).read_text())
    config.update(rounds=1, derive_top=1, derive_samples=1,
                  objective={"name": "mnas", "target_ms": 1.0, "latency_table": str(given)})
    path = tmp_path / "given.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "given"
    finish(search(path, out))
    assert json.loads((out / "latency.json").read_text()) == json.loads(given.read_text())
    log = pd.read_parquet(out / "rewards")
    assert all(lat == pytest.approx(predict_ms(table, key, 32, "sequential"), rel=1e-12)
               for key, lat in zip(log["genotype"], log["latency_ms"]))
