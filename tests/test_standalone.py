"""Stand-alone training of evaluator.standalone: the figures stage 2 and the benchmarks rely on."""
import math
from dataclasses import asdict

import pytest
import torch

from evaluator.data import load_dataset
from evaluator.models import build_model, count_parameters
from evaluator.standalone import (StandaloneConfig, count_macs, load_network, lr_factor, score_split,
                                 train_standalone)

TINY = dict(train_size=256, val_size=64, test_size=64)
RESNET20_MACS = 40_551_040  # convolutions and the classifier at 32x32, counted by FlopCounterMode


@pytest.fixture(scope="module")
def tiny():
    return load_dataset("cluttered-digits", seed=0, cache=False, **TINY)


def quick_config(**overrides) -> StandaloneConfig:
    return StandaloneConfig(**{"epochs": 1, "latency_repeats": 1, "dataset_options": TINY, **overrides})


def test_one_epoch_run_reports_every_figure(tiny):
    reports = []
    result = train_standalone(quick_config(seed=3), "se", device="cpu", data=tiny, report=reports.append)
    assert result.status == "ok"
    assert result.attention == "se" and result.genotype == "gap|fc_relu_fc|none|none"
    assert 0.0 <= result.test_accuracy <= 1.0 and 0.0 <= result.val_accuracy <= 1.0
    assert math.isfinite(result.test_loss) and math.isfinite(result.val_loss)
    assert result.params == count_parameters(build_model("resnet20", 10, "se"))
    assert result.macs > RESNET20_MACS
    assert result.latency_ms_batch1 > 0 and result.latency_ms_batch64 > 0
    assert 0 < result.seconds_per_epoch <= result.wall_time_s  # no bound on time: speed belongs in benchmarks/
    assert [h["epoch"] for h in result.history] == [1]
    assert reports == result.history  # one report per epoch, with that epoch's row
    assert reports[0]["val_accuracy"] == result.val_accuracy
    assert result.config["seed"] == 3 and result.config["gate_bias"] == 2.0
    assert set(result.metrics()) >= {"test_accuracy", "test_loss", "params", "macs", "latency_ms_batch1"}
    assert "history" not in result.metrics()


def test_same_seed_repeats_exactly_and_another_seed_differs(tiny):
    config = quick_config(epochs=2, seed=1)
    first = train_standalone(config, "cbam", device="cpu", data=tiny)
    again = train_standalone(config, "cbam", device="cpu", data=tiny)
    other = train_standalone(quick_config(epochs=2, seed=2), "cbam", device="cpu", data=tiny)
    assert (first.test_accuracy, first.test_loss) == (again.test_accuracy, again.test_loss)
    assert [h["train_loss"] for h in first.history] == [h["train_loss"] for h in again.history]
    assert [h["train_loss"] for h in first.history] != [h["train_loss"] for h in other.history]


@pytest.mark.parametrize("attention", ["bam", "softpool|glu|mean_std|strip"])
def test_a_kept_network_scores_as_it_did_after_training(tiny, tmp_path, attention):
    path = tmp_path / "kept" / "run.pt"
    result = train_standalone(quick_config(seed=2), attention, device="cpu", data=tiny, weights=path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["run.pt"]  # written beside, renamed: no .tmp left
    model, config = load_network(path, tiny.num_classes)
    assert asdict(config) == result.config and not model.training
    scored = score_split(model, tiny, "test", config)
    # bam is rebuilt by its name, with its parallel rule: rebuilt by its key it would score otherwise
    assert (scored["accuracy"], scored["loss"]) == (result.test_accuracy, result.test_loss)


def test_caller_threads_and_random_state_are_left_alone(tiny):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    result = train_standalone(quick_config(val_every_epoch=False), None, device="cpu", data=tiny)
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.rand(3), expected)
    # without per-epoch validation the val split is still scored once, at the end
    assert result.history[0]["val_accuracy"] is None and 0.0 <= result.val_accuracy <= 1.0


def test_resnet20_multiply_adds_match_he_et_al_and_grow_with_attention():
    image = torch.randn(1, 3, 32, 32)
    plain = count_macs(build_model("resnet20", 10, None), image)
    assert plain == RESNET20_MACS
    assert abs(plain - 40.8e6) / 40.8e6 < 0.02
    se = count_macs(build_model("resnet20", 10, "se"), image)
    cbam = count_macs(build_model("resnet20", 10, "cbam"), image)
    assert plain < se < cbam


def test_diverging_run_is_marked_nan_and_stops(tiny):
    # an infinite lr makes the weights non-finite after the first step, so the second loss is NaN
    result = train_standalone(quick_config(epochs=3, lr=float("inf")), None, device="cpu", data=tiny)
    assert result.status == "nan"
    assert len(result.history) == 1 and math.isnan(result.history[0]["train_loss"])


def test_lr_schedule_warms_up_linearly_then_decays_by_cosine_to_zero():
    total, warmup = 100, 10
    factors = [lr_factor(step, total, warmup) for step in range(total + 1)]
    assert factors[:warmup] == pytest.approx([(s + 1) / warmup for s in range(warmup)])
    assert factors[warmup] == 1.0
    assert factors[warmup + 45] == pytest.approx(0.5)
    assert factors[total] == pytest.approx(0.0, abs=1e-12)
    decay = factors[warmup:]
    assert all(a >= b for a, b in zip(decay, decay[1:]))
    assert lr_factor(0, total, 0) == 1.0


def test_bad_budgets_are_refused():
    with pytest.raises(ValueError, match="warmup_epochs"):
        StandaloneConfig(epochs=2, warmup_epochs=2)
    with pytest.raises(ValueError, match="epochs"):
        StandaloneConfig(epochs=0)
