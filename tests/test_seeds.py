"""One seed for the whole search: ``--seed`` draws the controller, the batches and the supernet's
initial weights, on the same images; a run saved before that resumes with the seeds it had."""
import subprocess
import sys

import pandas as pd
import pytest
import torch
import yaml

from evaluator.worker import Evaluator
from experiments_paths import CONFIGS, SEARCH_SCRIPT, VOLATILE
from rundir import RunDir
from search.config import load_config, to_dict
from search.start import resolve


def initial(config):
    evaluator = Evaluator(config.evaluator)
    return evaluator.initial_state()["weights"], evaluator.data.val_batch(0, 64)[0]


def test_search_seeds_start_different_supernets_on_the_same_images():
    one, two = (load_config("smoke", {"seed": seed}) for seed in (1, 2))
    assert (one.evaluator.seed, two.evaluator.seed) == (1, 2)
    assert to_dict(one)["evaluator"]["seed"] == 1  # config.yaml says which supernet the run started from
    (weights_1, images_1), (weights_2, images_2) = initial(one), initial(two)
    assert not all(torch.equal(weights_1[name], weights_2[name]) for name in weights_1)
    assert torch.equal(images_1, images_2)  # evaluator.data_seed: the dataset stays, the searches pair


def test_an_explicit_evaluator_seed_fixes_the_supernet_whatever_the_search_seed():
    one, two = (load_config("smoke", {"seed": seed, "evaluator.seed": 7}) for seed in (1, 2))
    weights_1, weights_2 = initial(one)[0], initial(two)[0]
    assert all(torch.equal(weights_1[name], weights_2[name]) for name in weights_1)


def old_config(seed: int, evaluator_seed: int) -> dict:
    """config.yaml as a search saved it before ``evaluator.data_seed``: evaluator.seed drew both the
    data and the supernet, whatever ``seed`` said."""
    values = to_dict(load_config("smoke", {"seed": seed, "evaluator.seed": evaluator_seed}))
    del values["evaluator"]["data_seed"]
    return values


@pytest.mark.parametrize("config_path", [None, "smoke"], ids=["flags", "config-file"])
def test_a_run_saved_before_the_data_seed_resumes_with_the_seeds_it_had(tmp_path, config_path):
    out = tmp_path / "old"
    RunDir(str(out)).create(old_config(seed=1, evaluator_seed=2))
    config, _ = resolve(config_path, {"out": str(out), "seed": 1, "rounds": 3}, resume=True)
    assert (config.seed, config.evaluator.seed, config.evaluator.data_seed) == (1, 2, 2)


def run(config, out, *extra):
    done = subprocess.run([sys.executable, str(SEARCH_SCRIPT), "--config", str(config), "--out", str(out),
                           "--quiet", *extra], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_run_saved_before_the_data_seed_resumes_bit_identical(tmp_path):
    """A run of the old rule (dataset and supernet both from evaluator.seed 2, search seed 1), its
    config.yaml as the old code wrote it, resumed by today's code: the log of an uninterrupted run."""
    values = yaml.safe_load((CONFIGS / "smoke.yaml").read_text())
    values["seed"] = 1
    values["evaluator"].update(seed=2, data_seed=2)
    explicit = tmp_path / "explicit.yaml"
    explicit.write_text(yaml.safe_dump(values))
    whole, old = tmp_path / "runs" / "whole", tmp_path / "other" / "whole"  # one run id: it is in the log

    run(explicit, whole, "--rounds", "3")
    run(explicit, old, "--rounds", "2")
    saved = yaml.safe_load((old / "config.yaml").read_text())
    del saved["evaluator"]["data_seed"]  # as saved before the key existed
    (old / "config.yaml").write_text(yaml.safe_dump(saved))
    done = subprocess.run([sys.executable, str(SEARCH_SCRIPT), "--out", str(old), "--resume", "--rounds", "3",
                           "--quiet"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    def log(out):
        return pd.read_parquet(out / "rewards").drop(columns=VOLATILE).reset_index(drop=True)

    pd.testing.assert_frame_equal(log(old), log(whole))
    assert pd.read_parquet(old / "candidates.parquet").equals(pd.read_parquet(whole / "candidates.parquet"))
