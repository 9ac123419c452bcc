"""Rewards that compare (issue 15): a round's samples scored on the same validation images, which
rotate from round to round, and BN statistics recalibrated per genotype (SPOS) without touching
the shared state."""
import dataclasses

import pytest
import torch
import torch.nn as nn

from evaluator.config import EvaluatorConfig
from evaluator.supernet import Supernet, recalibrated_bn_statistics
from evaluator.training import SharedTrainingConfig
from evaluator.worker import Evaluator
from search.config import SearchConfig
from search.loop import reward_tasks

TINY = dict(train_size=256, val_size=128, test_size=64)
KEYS = ["gap|fc_relu_fc|none|none", "none|none|mean|conv7x7", "avg_max|eca|mean_max|conv3x3"]


def search_config(**evaluator) -> SearchConfig:
    return SearchConfig(samples_per_round=len(KEYS), evaluator=EvaluatorConfig(val_batch_size=32, **evaluator))


def test_a_rounds_tasks_share_one_block_of_images_and_the_next_round_takes_the_next():
    config = search_config(reward_images=48)
    first, second = reward_tasks(config, 1, KEYS), reward_tasks(config, 2, KEYS)
    assert {(t.batch, t.batch_size, t.recalibration_seed) for t in first} == {(0, 48, first[0].recalibration_seed)}
    assert {(t.batch, t.batch_size) for t in second} == {(1, 48)}
    assert second[0].recalibration_seed != first[0].recalibration_seed
    assert [t.sample for t in first] == [0, 1, 2] and [t.genotype for t in first] == KEYS


def test_the_old_scheme_gives_each_sample_its_own_batch():
    config = search_config(common_reward_images=False, reward_images=48)
    assert [(t.batch, t.batch_size) for t in reward_tasks(config, 2, KEYS)] == [(3, 32), (4, 32), (5, 32)]


@pytest.fixture(scope="module")
def evaluator_config(tmp_path_factory):
    return EvaluatorConfig(dataset_options=TINY, data_dir=str(tmp_path_factory.mktemp("data")),
                           training=SharedTrainingConfig(batch_size=16), val_batch_size=32, reward_images=40,
                           recalibration_batches=2)


@pytest.fixture(scope="module")
def evaluator(evaluator_config):
    return Evaluator(evaluator_config)


def images_scored(evaluator, monkeypatch, tasks):
    """The validation images each task was scored on, in task order."""
    seen, val_batch = [], evaluator.data.val_batch

    def recording(index, batch_size, **kwargs):
        images, labels = val_batch(index, batch_size, **kwargs)
        seen.append(images.clone())
        return images, labels

    monkeypatch.setattr(evaluator.data, "val_batch", recording)
    evaluator.score(evaluator.initial_state()["weights"], tasks)
    monkeypatch.setattr(evaluator.data, "val_batch", val_batch)
    return seen


@pytest.mark.parametrize("common", [True, False])
def test_the_evaluator_scores_a_rounds_samples_on_the_same_images_only_with_common_images(
        evaluator, evaluator_config, monkeypatch, common):
    config = SearchConfig(samples_per_round=len(KEYS),
                          evaluator=dataclasses.replace(evaluator_config, common_reward_images=common))
    first = images_scored(evaluator, monkeypatch, reward_tasks(config, 1, KEYS))
    second = images_scored(evaluator, monkeypatch, reward_tasks(config, 2, KEYS))
    assert len(first[0]) == (40 if common else 32)
    assert all(torch.equal(images, first[0]) for images in first[1:]) == common
    assert not torch.equal(first[0], second[0])  # the next round scores on other images


# -- BN recalibration -------------------------------------------------------------------------


def test_recalibrated_statistics_are_the_batches_mean_and_variance_and_go_back_after():
    torch.manual_seed(0)
    model = nn.Sequential(nn.BatchNorm2d(3))
    model[0].running_mean.fill_(5.0)
    batches = [torch.randn(8, 3, 4, 4) * 2 + 1, torch.randn(8, 3, 4, 4) * 2 + 1]
    with recalibrated_bn_statistics(model, model, batches):
        norm = model[0]
        assert not norm.training
        means = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches])
        variances = torch.stack([b.transpose(0, 1).reshape(3, -1).var(dim=1) for b in batches])  # unbiased, as BN
        torch.testing.assert_close(norm.running_mean, means.mean(dim=0))  # cumulative average, not momentum
        torch.testing.assert_close(norm.running_var, variances.mean(dim=0))
        inside = model(batches[0])
        torch.testing.assert_close(inside, (batches[0] - norm.running_mean.view(1, 3, 1, 1))
                                   / torch.sqrt(norm.running_var.view(1, 3, 1, 1) + norm.eps))
    assert model[0].training and model[0].momentum == 0.1
    assert torch.equal(model[0].running_mean, torch.full((3,), 5.0)) and int(model[0].num_batches_tracked) == 0


def bn_buffers(supernet):
    return {name: value.clone() for name, value in supernet.state_dict().items() if "running_" in name}


def test_supernet_recalibration_depends_on_the_genotype_is_deterministic_and_leaves_the_shared_state():
    torch.manual_seed(0)
    supernet = Supernet("resnet20", num_classes=4)
    before = {name: value.clone() for name, value in supernet.state_dict().items()}
    batches = [torch.randn(8, 3, 16, 16) for _ in range(2)]

    def statistics(key):
        with recalibrated_bn_statistics(supernet, lambda x: supernet(x, key), batches):
            return bn_buffers(supernet)

    first, again, other = statistics(KEYS[0]), statistics(KEYS[0]), statistics(KEYS[1])
    assert all(torch.equal(first[name], again[name]) for name in first)
    backbone = [name for name in first if ".attention." not in name]
    assert any(not torch.equal(first[name], other[name]) for name in backbone)  # statistics fit the genotype
    assert all(torch.equal(value, before[name]) for name, value in supernet.state_dict().items())
    assert supernet.training


def test_recalibrated_rewards_are_deterministic_differ_from_batch_statistics_and_keep_the_weights(
        evaluator, evaluator_config):
    recalibrating = Evaluator(dataclasses.replace(evaluator_config, bn_mode="recalibrate"))
    weights = recalibrating.initial_state()["weights"]
    tasks = reward_tasks(SearchConfig(samples_per_round=len(KEYS), evaluator=recalibrating.config), 1, KEYS)
    results = recalibrating.score(weights, tasks)
    assert [r.status for r in results] == ["ok"] * len(KEYS)
    assert [r.val_loss for r in recalibrating.score(weights, tasks)] == [r.val_loss for r in results]
    assert all(torch.equal(value, weights[name]) for name, value in recalibrating.supernet.state_dict().items())
    batch_statistics = evaluator.score(weights, tasks)
    assert [r.val_loss for r in batch_statistics] != [r.val_loss for r in results]
