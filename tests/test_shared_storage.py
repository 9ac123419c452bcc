"""The run directory on shared storage: ``--out`` as a filesystem URI instead of a local path."""
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

import searchspace
from rundir import RunDir, RunDirError
from experiments_paths import EXPERIMENTS, VOLATILE
from tiny_run import write_search_config



def run(script, *args, timeout=180):
    return subprocess.run([sys.executable, str(EXPERIMENTS / script), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    return write_search_config(tmp_path_factory.mktemp("config"), rounds=2, derive=1, seed=5)


def test_a_search_into_a_file_uri_then_resumed_through_the_plain_path(tiny_config, tmp_path):
    local = tmp_path / "shared" / "uri-run"
    uri = f"file://{local}"
    first = run("run_rl_search.py", "--config", tiny_config, "--out", uri, "--quiet")
    assert first.returncode == 0, first.stderr[-3000:]
    assert f"winner: {local / 'winner.json'}" in first.stdout
    config = yaml.safe_load((local / "config.yaml").read_text())
    assert config["out"] == uri and config["run_id"] == "uri-run"
    assert sorted(p.name for p in (local / "checkpoints").iterdir()) == ["round-000001.pt", "round-000002.pt"]
    assert torch.load(local / "checkpoints" / "round-000002.pt", weights_only=True)["round"] == 2
    before = pd.read_parquet(local / "rewards")
    assert sorted(before["round"].unique()) == [1, 2] and (before["status"] == "ok").all()

    # Another driver (on another node, say) continues the same run through the plain path.
    again = run("run_rl_search.py", "--out", local, "--resume", "--rounds", 3, "--quiet")
    assert again.returncode == 0, again.stderr[-3000:]
    after = pd.read_parquet(local / "rewards")
    assert sorted(after["round"].unique()) == [1, 2, 3] and len(after) == 12
    pd.testing.assert_frame_equal(after[after["round"] <= 2].drop(columns=VOLATILE).reset_index(drop=True),
                                  before.drop(columns=VOLATILE).reset_index(drop=True))

    top = run("top_k.py", uri, "-k", 1, "--format", "json")
    assert top.returncode == 0, top.stderr
    exported = run("export_genotype.py", uri, "--out", f"file://{tmp_path}/winner.json")
    assert exported.returncode == 0, exported.stderr
    winner = searchspace.load(tmp_path / "winner.json")
    assert winner.key == json.loads(top.stdout)[0]["genotype"] == searchspace.load(local / "winner.json").key


def test_a_run_directory_on_an_fsspec_filesystem(tmp_path):
    """A protocol pyarrow does not know (fsspec's in-memory one here) goes through fsspec."""
    uri = f"memory://sase-tests/{tmp_path.name}/run-a"  # the store lives as long as this process
    rundir = RunDir(uri)
    rundir.create({"run_id": "run-a"})
    row = {"run_id": "run-a", "round": 1, "sample": 0, "worker": 0, "genotype": "gap|fc_relu_fc|none|none",
           "channel_squeeze": "gap", "channel_excitation": "fc_relu_fc", "spatial_squeeze": "none",
           "spatial_excitation": "none", "reward": 0.5, "val_accuracy": 0.5, "val_loss": 1.0, "log_prob": -3.0,
           "entropy": 2.0, "baseline": 0.0, "advantage": 0.5, "params": 10, "status": "ok", "wall_time_s": 0.1}
    for round in (1, 2):
        rundir.write_round(round, [dict(row, round=round, reward=0.5 * round)])
        rundir.save_checkpoint({"round": round, "weights": torch.full((2,), float(round))}, round)
    rundir.write_winner(searchspace.from_key(row["genotype"]))

    again = RunDir(uri)  # a second reader of the same store
    assert again.exists() and again.read_config() == {"run_id": "run-a"} and again.rounds() == [1, 2]
    assert again.read_rewards()["reward"].tolist() == [0.5, 1.0]
    assert torch.equal(again.load_checkpoint()["weights"], torch.full((2,), 2.0))
    assert again.read_winner().key == row["genotype"]
    assert again.top_k(1)["genotype"].tolist() == [row["genotype"]]
    assert again.drop_rounds_after(1) == [2] and again.rounds() == [1]


def test_an_unknown_storage_scheme_is_refused_with_one_line():
    with pytest.raises(RunDirError, match="^nosuch://bucket/run: unsupported location"):
        RunDir("nosuch://bucket/run")
    refused = run("run_rl_search.py", "--out", "nosuch://bucket/run", "--quiet", timeout=120)
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1
    assert lines[0].startswith("error: nosuch://bucket/run: unsupported location")
