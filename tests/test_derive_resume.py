"""A derive stage killed part-way keeps the scores it finished: resumed, it scores only the rest
and writes the same candidates and winner as a derive stage that was never interrupted."""
import zlib
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import search.derive
import search.loop
from controller.service import ControllerService
from evaluator.worker import RewardResult
from in_process import InProcess
from rundir import RunDir
from search.config import SearchConfig
from search.derive import derive
from search.loop import controller_settings, run_round

CONFIG = SearchConfig(rounds=1, samples_per_round=6, seed=4, derive_top=3, derive_samples=5)


class Killed(Exception):
    """What a killed search is, for the derive stage: it stops between two scores."""


class GenotypePool:
    """Scores without a network, each genotype its own fixed value; calls ``on_result`` as each score
    is final, as the worker pool does; after ``stop_after`` scores it stops as a killed process would."""

    def __init__(self, stop_after=None) -> None:
        self.scored, self.stop_after = [], stop_after

    def score(self, weights, tasks, on_result=None):
        results = []
        for task in tasks:
            if self.stop_after is not None and len(self.scored) == self.stop_after:
                raise Killed
            value = 0.5 + (zlib.crc32(task.genotype.encode()) % 1000) / 10_000
            result = RewardResult(task.sample, task.genotype, value, value, 1.0 - value, "ok", 1000, images=2000,
                                  val_loss_sd=2 * value, image_losses=(1.0 - value) * np.linspace(0.5, 1.5, 2000),
                                  image_correct=np.arange(2000) < round(2000 * value))
            self.scored.append(task.genotype)
            results.append(result)
            if on_result is not None:
                on_result(result)
        return results

    def take_events(self):
        return []


@pytest.fixture
def without_ray(monkeypatch):
    same = SimpleNamespace(get=lambda value: value)
    monkeypatch.setattr(search.loop, "ray", same)
    monkeypatch.setattr(search.derive, "ray", same)
    monkeypatch.setattr(search.loop, "train_shared", lambda config, round_number, shared, genotypes, pool: shared)


def searched(path):
    """A run directory with one round logged, and its controller as the checkpoint would restore it."""
    service = ControllerService(controller_settings(CONFIG), CONFIG.policy, CONFIG.seed)
    rundir = RunDir(path)
    rundir.create({"run_id": "resumed"})
    run_round(CONFIG, "resumed", 1, {"weights": {}}, InProcess(service), GenotypePool(), rundir)
    return rundir, service.state_dict()


def controller(state):
    service = ControllerService(controller_settings(CONFIG), CONFIG.policy, CONFIG.seed)
    service.load_state_dict(state)
    return InProcess(service)


def test_a_resumed_derive_stage_scores_only_the_rest_and_writes_the_same_winner(without_ray, tmp_path):
    whole, state = searched(tmp_path / "whole")
    pool = GenotypePool()
    derive(CONFIG, "resumed", {"weights": {}}, controller(state), pool, whole, progress=False)
    keys = pool.scored
    assert len(keys) >= 5

    killed, state = searched(tmp_path / "killed")
    first = GenotypePool(stop_after=3)
    with pytest.raises(Killed):
        derive(CONFIG, "resumed", {"weights": {}}, controller(state), first, killed, progress=False)
    assert killed.read_candidates() is None and killed.read_winner() is None
    assert list(killed.read_derive_scores(CONFIG.rounds)["genotype"]) == keys[:3]

    rest = GenotypePool()
    derive(CONFIG, "resumed", {"weights": {}}, controller(state), rest, killed, progress=False)
    assert rest.scored == keys[3:]
    pd.testing.assert_frame_equal(killed.read_candidates(), whole.read_candidates())
    pd.testing.assert_frame_equal(killed.top_k(), whole.top_k())  # the gaps paired by image too
    assert killed.top_k()["gap_se"].iloc[1:].gt(0).all()
    assert killed.read_winner().key == whole.read_winner().key
    assert killed.read_winner().metadata["reward"] == whole.read_winner().metadata["reward"]


def test_scores_of_other_weights_or_a_damaged_file_are_scored_again(without_ray, tmp_path):
    rundir, state = searched(tmp_path / "run")
    derive(CONFIG, "resumed", {"weights": {}}, controller(state), GenotypePool(), rundir, progress=False)
    assert rundir.read_derive_scores(CONFIG.rounds + 1).empty  # a search continued to more rounds derives afresh

    with open(rundir.path("derive_scores.parquet"), "wb") as damaged:
        damaged.write(b"not parquet")
    with pytest.warns(RuntimeWarning, match="scores its candidates again"):
        assert rundir.read_derive_scores(CONFIG.rounds).empty


def test_scores_saved_before_the_loss_spread_was_kept_are_used_with_it_unknown(without_ray, tmp_path):
    rundir, state = searched(tmp_path / "run")
    with pytest.raises(Killed):
        derive(CONFIG, "resumed", {"weights": {}}, controller(state), GenotypePool(stop_after=2), rundir, progress=False)
    path = rundir.path("derive_scores.parquet")
    pq.write_table(pq.read_table(path).drop(["val_loss_sd"]), path)  # as an older version wrote it

    rest = GenotypePool()
    derive(CONFIG, "resumed", {"weights": {}}, controller(state), rest, rundir, progress=False)
    candidates = rundir.read_candidates().set_index("genotype")
    old = list(rundir.read_derive_scores(CONFIG.rounds)["genotype"][:2])
    assert not set(old) & set(rest.scored)  # not scored again
    assert candidates.loc[old, "val_loss_sd"].isna().all()
    assert candidates.loc[rest.scored, "val_loss_sd"].notna().all()
