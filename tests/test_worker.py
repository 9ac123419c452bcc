"""Evaluator workers: the merge rule, a 2-worker round on local Ray, and a worker killed mid-round."""
import dataclasses
import math
import threading

import pytest
import ray
import torch

from events import wait_for_file

from evaluator.config import EvaluatorConfig
from evaluator.data import DatasetError
from evaluator.pool import WorkerPool, WorkerStartError
from evaluator.training import SharedTrainingConfig
from evaluator.worker import Evaluator, RewardTask, TrainResult, TrainTask, merge

TINY = dict(train_size=256, val_size=128, test_size=64)
GENOTYPES = ["avg_max|fc_relu_fc|mean_max|conv7x7", "gap|eca|none|none", "none|none|mean|strip",
             "gem|fc_relu_fc|none|none"]


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return EvaluatorConfig(dataset_options=TINY, data_dir=str(tmp_path_factory.mktemp("data")),
                           training=SharedTrainingConfig(batch_size=32), val_batch_size=64)


def tasks():
    return [TrainTask(shard=0, seed=11, genotypes=GENOTYPES[:2], lr=0.05),
            TrainTask(shard=1, seed=12, genotypes=GENOTYPES[2:], lr=0.05)]


def test_merge_moves_each_tensor_by_the_mean_delta_of_the_shards_that_touched_it():
    state = {"weights": {"a": torch.zeros(2), "b": torch.ones(2), "n": torch.tensor(5)}, "momentum": {"a": torch.ones(2)}}
    results = [
        TrainResult(1, {"a": torch.tensor([2.0, 4.0]), "n": torch.tensor(2)}, {"a": torch.tensor([3.0, 3.0])}, []),
        TrainResult(0, {"a": torch.tensor([0.0, 2.0]), "n": torch.tensor(2)}, {"a": torch.tensor([1.0, 1.0])}, []),
    ]
    merged = merge(state, results)
    assert torch.equal(merged["weights"]["a"], torch.tensor([1.0, 3.0]))
    assert torch.equal(merged["weights"]["b"], torch.ones(2))  # no shard touched it
    assert int(merged["weights"]["n"]) == 7
    assert torch.equal(merged["momentum"]["a"], torch.tensor([2.0, 2.0]))
    assert torch.equal(merge(state, results[::-1])["weights"]["a"], merged["weights"]["a"])


def test_training_only_touches_the_ops_of_the_genotypes_it_ran(config):
    evaluator = Evaluator(config)
    state = evaluator.initial_state()
    result = evaluator.train(state, TrainTask(0, 3, ["gap|eca|none|none"], lr=0.05))
    touched = " ".join(result.deltas)
    assert ".channel_squeeze.gap." not in touched  # gap has no weights
    assert ".channel_excitation.eca." in touched and ".spatial_excitation." not in touched
    assert ".channel_excitation.fc_relu_fc." not in touched
    assert all(torch.isfinite(torch.tensor(result.losses)))


def test_a_likelihood_reward_is_exp_of_minus_the_loss_on_the_same_images(config):
    accuracy = Evaluator(config)
    likelihood = Evaluator(dataclasses.replace(config, reward_metric="likelihood"))
    weights = accuracy.initial_state()["weights"]
    work = [RewardTask(i, key, -1) for i, key in enumerate(GENOTYPES)]
    for plain, other in zip(accuracy.score(weights, work), likelihood.score(weights, work)):
        assert plain.reward == plain.val_accuracy and (other.val_accuracy, other.val_loss) == (plain.val_accuracy,
                                                                                               plain.val_loss)
        assert other.reward == pytest.approx(math.exp(-plain.val_loss), rel=1e-12)


def test_two_ray_workers_merge_to_the_in_process_result(config, local_ray):
    evaluator = Evaluator(config)
    state = evaluator.initial_state()
    expected = merge(state, [evaluator.train(state, task) for task in tasks()])

    pool = WorkerPool(config, num_workers=2)
    try:
        assert all(torch.equal(v, state["weights"][k]) for k, v in pool.initial_state()["weights"].items())
        results = pool.train(state, tasks())
    finally:
        pool.shutdown()
    assert sorted(r.worker for r in results) == [0, 1]
    merged = merge(state, results)
    for name, tensor in expected["weights"].items():
        assert torch.equal(merged["weights"][name], tensor), name
    assert merged["momentum"].keys() == expected["momentum"].keys()
    assert all(torch.equal(merged["momentum"][k], v) for k, v in expected["momentum"].items())


def holding_evaluator(marker):
    """An Evaluator whose worker 1, on its first whole-set reward, touches ``marker`` and then
    waits to be killed: the kill lands on a running task by construction, not by a timer.
    Defined in a function so that Ray pickles the class by value (the tests folder is not importable there)."""

    class HoldingEvaluator(Evaluator):
        def score(self, weights, tasks):
            if self.worker == 1 and not marker.exists():
                marker.touch()
                threading.Event().wait()  # until the test kills this process
            return super().score(weights, tasks)

    return HoldingEvaluator


def test_a_worker_killed_mid_round_loses_no_reward(config, local_ray, tmp_path):
    evaluator = Evaluator(config)
    weights = evaluator.initial_state()["weights"]
    work = [RewardTask(i, GENOTYPES[i % len(GENOTYPES)], -1) for i in range(12)]
    expected = evaluator.score(weights, work)

    marker = tmp_path / "worker-1-started"
    pool = WorkerPool(config, num_workers=2, actor_class=holding_evaluator(marker))
    try:
        pool.initial_state()  # both actors up
        # kill worker 1 once it has started a task (and holds it), signalled through the marker file
        killer = threading.Thread(target=lambda: (wait_for_file(marker),
                                                  ray.kill(pool.actors[1], no_restart=False)))
        killer.start()
        results = pool.score(weights, work)
        killer.join()
        events = pool.take_events()
    finally:
        pool.shutdown()
    assert [r.sample for r in results] == list(range(12))
    assert [(r.reward, r.val_loss) for r in results] == [(r.reward, r.val_loss) for r in expected]
    assert results[1].attempts == 2 and any("worker 1 was lost" in e for e in events)


def failing_start():
    """An Evaluator whose constructor fails as a worker node without the data would."""

    class NoData(Evaluator):
        def __init__(self, config, worker=0):
            raise DatasetError(f"cifar10: files not found on worker {worker}'s node")

    return NoData


def test_a_worker_that_cannot_start_stops_the_pool_with_its_reason_in_one_line(config, local_ray):
    pool = WorkerPool(config, num_workers=2, actor_class=failing_start())
    try:
        with pytest.raises(WorkerStartError) as refused:
            pool.initial_state()
    finally:
        pool.shutdown()
    message = str(refused.value)
    assert message.startswith("evaluator worker 0 could not start: ") and "files not found" in message
    assert len(message.splitlines()) == 1 and isinstance(refused.value, ValueError)
