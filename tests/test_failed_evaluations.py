"""Failures are not rewards: a failed evaluation is tried again, then logged with a null reward and
kept out of the controller's update; a round in which every evaluation failed stops the search."""
import dataclasses
import io
import os
from contextlib import redirect_stderr
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest
import ray
import torch

import search.loop
from controller.service import ControllerService
from evaluator.config import EvaluatorConfig
from evaluator.pool import WorkerPool
from evaluator.training import SharedTrainingConfig
from evaluator.worker import Evaluator, RewardResult, RewardTask
from experiments_paths import load_script
from in_process import InProcess, same_state
from rundir import RunDir
from search.config import SearchConfig
from search.loop import controller_settings, run_round

TINY = dict(train_size=256, val_size=128, test_size=64)
GENOTYPES = ["avg_max|fc_relu_fc|mean_max|conv7x7", "gap|eca|none|none", "none|none|mean|strip",
             "gem|fc_relu_fc|none|none"]
OOM = "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 22.20 GiB total capacity)"


def out_of_memory(marker=None):
    """An Evaluator whose network raises CUDA's out-of-memory error while it scores: once in all (the
    first call to touch ``marker``, a file every actor sees), or always (``marker`` None).
    Defined in a function so that Ray pickles the class by value (the tests folder is not importable there)."""

    def first_call() -> bool:
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL))  # atomic: two actors cannot both be first
        except FileExistsError:
            return False
        return True

    class OutOfMemory(Evaluator):
        def _score_one(self, task):
            if marker is not None and not first_call():
                return super()._score_one(task)

            def forward(*args, **kwargs):
                raise torch.cuda.OutOfMemoryError(OOM)

            self.supernet.forward = forward  # inside the worker's try, as a real allocation failure is
            try:
                return super()._score_one(task)
            finally:
                del self.supernet.forward

    return OutOfMemory


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return EvaluatorConfig(dataset_options=TINY, data_dir=str(tmp_path_factory.mktemp("data")),
                           training=SharedTrainingConfig(batch_size=32), val_batch_size=64, num_cpus=1)


def test_an_out_of_memory_error_is_retried_and_the_round_keeps_every_reward(config, local_ray, tmp_path):
    weights = Evaluator(config).initial_state()["weights"]
    work = [RewardTask(i, GENOTYPES[i % len(GENOTYPES)], i, 64) for i in range(6)]
    expected = Evaluator(config).score(weights, work)
    pool = WorkerPool(config, num_workers=2, actor_class=out_of_memory(tmp_path / "failed-once"))
    finished = []  # what a progress bar sees: one call per task once its result is final, a retry included
    try:
        results = pool.score(weights, work, on_result=finished.append)
        events = pool.take_events()
    finally:
        pool.shutdown()
    assert sorted(r.sample for r in finished) == list(range(6)) and all(r.status == "ok" for r in finished)
    assert [r.status for r in results] == ["ok"] * 6
    assert [(r.reward, r.val_loss) for r in results] == [(r.reward, r.val_loss) for r in expected]
    retried = [r for r in results if r.attempts == 2]
    assert len(retried) == 1 and sum(r.attempts for r in results) == 7
    note = retried[0].notes[0]
    assert note.startswith("attempt 1 on worker ") and "out of memory on cpu" in note
    assert retried[0].genotype in note and "batch size 64" in note
    assert len(events) == 1 and "failed on worker" in events[0]


def test_a_reward_that_always_fails_comes_back_failed_after_every_attempt(config, local_ray):
    weights = Evaluator(config).initial_state()["weights"]
    pool = WorkerPool(dataclasses.replace(config, score_attempts=2), num_workers=1,
                      actor_class=out_of_memory())
    try:
        [result] = pool.score(weights, [RewardTask(0, GENOTYPES[0], 0, 64)])
    finally:
        pool.shutdown()
    assert result.status == "failed" and result.attempts == 2
    assert (result.reward, result.val_accuracy, result.val_loss) == (None, None, None)
    assert len(result.notes) == 2 and all("out of memory" in note for note in result.notes)


class FailingPool:
    """Scores without a network; every sample of genotype ``failing`` fails as a worker reports it."""

    def __init__(self, failing: str) -> None:
        self.failing = failing

    def score(self, weights, tasks, on_result=None):
        return [RewardResult(t.sample, t.genotype, None, None, None, "failed", 1, attempts=3,
                             notes=[f"out of memory on cuda:0 scoring {t.genotype} at batch size 256"])
                if t.genotype == self.failing else
                RewardResult(t.sample, t.genotype, 0.2 + 0.05 * t.sample, 0.2 + 0.05 * t.sample, 1.0, "ok", 1)
                for t in tasks]

    def take_events(self):
        return []


@pytest.fixture
def loop_without_ray(monkeypatch):
    monkeypatch.setattr(search.loop, "ray", SimpleNamespace(get=lambda value: value))
    monkeypatch.setattr(search.loop, "train_shared", lambda config, round_number, shared, genotypes, pool: shared)


def test_a_failed_genotype_is_logged_null_and_left_out_of_the_update(loop_without_ray, tmp_path):
    config = SearchConfig(rounds=1, samples_per_round=6, seed=4)
    service = ControllerService(controller_settings(config), config.policy, config.seed)
    twin = ControllerService(controller_settings(config), config.policy, config.seed)
    twin.propose(config.train_steps)  # the round's training genotypes, then its samples
    proposal = twin.propose(config.samples_per_round)
    failing = proposal["genotypes"][1]
    rundir = RunDir(tmp_path / "run")
    rundir.create({"run_id": "failing"})

    run_round(config, "failing", 1, {"weights": {}}, InProcess(service), FailingPool(failing), rundir)

    scored = [i for i, key in enumerate(proposal["genotypes"]) if key != failing]
    assert 0 < len(scored) < config.samples_per_round
    twin.update(1, proposal["indices"][scored], [proposal["genotypes"][i] for i in scored],
                [0.2 + 0.05 * i for i in scored])
    assert same_state(service.state_dict(), twin.state_dict())  # the policy, Adam, the baseline: as without it
    log = pq.read_table(rundir.path("rewards", "round-000001.parquet")).to_pylist()
    for row in log:
        if row["genotype"] == failing:
            assert row["status"] == "failed" and "out of memory on cuda:0" in row["note"]
            assert [row[c] for c in ("reward", "val_accuracy", "val_loss", "baseline", "advantage")] == [None] * 5
        else:
            assert row["status"] == "ok" and row["reward"] is not None and row["advantage"] is not None
    assert failing not in set(rundir.rank_rewards()["genotype"])  # nor in the top-k


def test_a_round_in_which_every_evaluation_fails_stops_the_search_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(search.loop, "WorkerPool",
                        lambda config, workers: WorkerPool(config, workers, actor_class=out_of_memory()))
    out, stderr = tmp_path / "run", io.StringIO()
    ray.shutdown()  # the search starts its own local Ray, as from the command line
    try:
        with redirect_stderr(stderr), pytest.raises(SystemExit) as stopped:
            load_script("run_rl_search").main(["--config", "smoke", "--out", str(out), "--quiet"])
    finally:
        ray.shutdown()
    assert stopped.value.code == 2
    [line] = stderr.getvalue().strip().splitlines()
    assert line.startswith("error: round 1: all 4 evaluations failed, so the controller was not updated; ")
    assert "out of memory on cpu" in line and "--resume redoes it" in line
    rundir = RunDir(str(out))
    assert rundir.rounds() == [1] and set(rundir.read_rewards()["status"]) == {"failed"}
    assert rundir.load_checkpoint() is None  # not checkpointed: --resume computes the round again
