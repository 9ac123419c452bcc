"""Step-synchronised training (evaluator/allreduce.py): the mean gradient of the shards, the same
weights whether one process or two Ray actors over gloo compute a round, and a round that loses an
actor mid-way recomputed by the survivor to the same weights."""
import threading
from dataclasses import replace

import pytest
import ray
import torch
import torch.nn.functional as F

from events import wait_for_file

from evaluator.config import EvaluatorConfig
from evaluator.pool import WorkerPool
from evaluator.training import SharedTrainingConfig, lr_scale
from evaluator.worker import Evaluator, RoundTraining, TrainTask, merge
from searchspace import from_key

TINY = dict(train_size=256, val_size=128, test_size=64)
GENOTYPES = ["avg_max|fc_relu_fc|mean_max|conv7x7", "gap|eca|none|none", "none|none|mean|strip",
             "gem|fc_relu_fc|none|none"]
ROUND = RoundTraining(seeds=[11, 12], genotypes=GENOTYPES, lr=0.05)


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return EvaluatorConfig(dataset_options=TINY, data_dir=str(tmp_path_factory.mktemp("data")),
                           training=SharedTrainingConfig(batch_size=32), val_batch_size=64)


def assert_same_state(got, expected):
    assert got["weights"].keys() == expected["weights"].keys()
    for name, tensor in expected["weights"].items():
        assert torch.equal(got["weights"][name], tensor), name
    assert got["momentum"].keys() == expected["momentum"].keys()
    for name, tensor in expected["momentum"].items():
        assert torch.equal(got["momentum"][name], tensor), name


def test_one_shard_trains_exactly_as_a_single_worker_did(config):
    """With one worker the synchronised round is version 1's round, bit for bit: old runs stay comparable."""
    evaluator = Evaluator(config)
    state = evaluator.initial_state()
    old = merge(state, [evaluator.train(state, TrainTask(0, 11, GENOTYPES, lr=0.05))])
    new = merge(state, evaluator.train_shards(state, RoundTraining([11], GENOTYPES, 0.05), [0]))
    assert_same_state(new, old)


def test_a_step_moves_the_weights_by_the_mean_gradient_of_the_shards(config, tmp_path):
    """Plain SGD (no momentum, decay or clipping), one step: delta = -lr * mean over shards of each shard's gradient."""
    plain = EvaluatorConfig(dataset_options=TINY, data_dir=config.data_dir, val_batch_size=64,
                            training=SharedTrainingConfig(batch_size=32, momentum=0.0, nesterov=False,
                                                          weight_decay=0.0, grad_clip=0.0))
    evaluator = Evaluator(plain)
    state = evaluator.initial_state()
    genotype = GENOTYPES[0]
    results = evaluator.train_shards(state, RoundTraining([11, 12], [genotype], lr=0.1), [0, 1])

    reference = Evaluator(plain)
    gradients = []
    for seed in (11, 12):  # each shard's gradient on its own batch, from the same start
        reference.supernet.load_state_dict(state["weights"])
        reference.supernet.train()
        images, labels = next(iter(reference.data.train_batches(32, 1, seed=seed)))
        reference.supernet.zero_grad(set_to_none=True)
        F.cross_entropy(reference.supernet(images, from_key(genotype)), labels).backward()
        gradients.append({n: p.grad.clone() for n, p in reference.supernet.named_parameters() if p.grad is not None})
    moved = merge(state, results)["weights"]
    assert gradients[0].keys() and gradients[0].keys() == gradients[1].keys()
    for name, gradient in gradients[0].items():
        expected = state["weights"][name] - 0.1 * (gradient + gradients[1][name]) / 2
        torch.testing.assert_close(moved[name], expected, rtol=1e-5, atol=1e-6)


def test_each_shard_keeps_its_own_batch_norm_statistics_and_the_merge_averages_them(config):
    evaluator = Evaluator(config)
    state = evaluator.initial_state()
    results = evaluator.train_shards(state, ROUND, [0, 1])
    assert [r.shard for r in results] == [0, 1]
    name = next(n for n in results[1].deltas if n.endswith("running_mean"))
    assert not torch.equal(results[0].deltas[name], results[1].deltas[name])  # different batches
    merged = merge(state, results)["weights"][name]
    torch.testing.assert_close(merged, state["weights"][name] + (results[0].deltas[name] + results[1].deltas[name]) / 2)
    assert not any(n in results[1].deltas for n, _ in evaluator.supernet.named_parameters())  # shard 0 carries them


def test_two_ray_actors_over_gloo_give_the_one_process_weights(config, local_ray):
    evaluator = Evaluator(config)
    state = evaluator.initial_state()
    expected = merge(state, evaluator.train_shards(state, ROUND, [0, 1]))

    pool = WorkerPool(config, num_workers=2)
    try:
        results = pool.train_together(state, ROUND)
        events = pool.take_events()
    finally:
        pool.shutdown()
    assert sorted(r.worker for r in results) == [0, 1] and events == []
    assert_same_state(merge(state, results), expected)


def holding_trainer(marker):
    """An Evaluator whose worker 1 touches ``marker`` on its first training call and then waits to be
    killed, after worker 0 has joined the round: the kill breaks a running process group by construction."""

    class HoldingTrainer(Evaluator):
        def train_shards(self, state, task, shards, rendezvous=None):
            if self.worker == 1 and not marker.exists():
                marker.touch()
                threading.Event().wait()  # until the test kills this process
            return super().train_shards(state, task, shards, rendezvous)

    return HoldingTrainer


def test_a_worker_lost_mid_round_leaves_the_round_to_the_survivor_with_the_same_weights(config, local_ray, tmp_path):
    evaluator = Evaluator(config)
    state = evaluator.initial_state()
    expected = merge(state, evaluator.train_shards(state, ROUND, [0, 1]))

    marker = tmp_path / "worker-1-started"
    # a short collective timeout: worker 0 waits in the rendezvous for worker 1, which never joins
    pool = WorkerPool(replace(config, collective_timeout_s=10.0), num_workers=2, poll_s=0.2,
                      actor_class=holding_trainer(marker))
    try:
        pool.initial_state()
        killer = threading.Thread(target=lambda: (wait_for_file(marker),
                                                  ray.kill(pool.actors[1], no_restart=True)))
        killer.start()
        results = pool.train_together(state, ROUND)
        killer.join()
        events = pool.take_events()
    finally:
        pool.shutdown()
    assert [r.shard for r in results] == [0, 1] and {r.worker for r in results} == {0}
    assert any("worker 1 was lost" in e for e in events) and any("starts again" in e for e in events)
    assert_same_state(merge(state, results), expected)


def test_the_learning_rate_grows_with_the_workers_and_ramps_up_over_the_warmup_rounds():
    linear = SharedTrainingConfig()
    assert [lr_scale(linear, w, 0) for w in (1, 2, 8)] == [1.0, 2.0, 8.0]
    assert lr_scale(SharedTrainingConfig(lr_scaling="none"), 8, 3) == 1.0
    ramp = SharedTrainingConfig(lr_warmup_rounds=4)
    assert [lr_scale(ramp, 8, epoch) for epoch in (0, 1, 2, 4, 9)] == [1.0, 2.75, 4.5, 8.0, 8.0]
