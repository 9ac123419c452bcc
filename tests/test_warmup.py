"""The supernet's warm-up (issue 15): the fair and uniform samplers, rounds that leave the controller
alone, the ``phase`` column, and the settings that switch it."""
import copy
from types import SimpleNamespace

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml

import search.loop
from controller.policy import DecisionSpace
from controller.service import ControllerService
from controller.warmup_sampler import SCORE_STREAM, TRAIN_STREAM, fair_indices, uniform_indices, warmup_draws
from evaluator.worker import RewardResult
from rundir import REWARD_SCHEMA, RunDir
from search.config import ConfigError, SearchConfig, load_config
from search.loop import controller_settings, run_round
from search.start import resolve
from searchspace import from_key
from in_process import InProcess, same_state
from tiny_run import CONFIG, make_run

SIZES = DecisionSpace.sase().sizes  # (10, 8, 8, 6)


def test_fair_sampling_uses_every_op_of_each_set_once_per_group_across_rounds():
    steps = 48
    draws = torch.cat([warmup_draws("fair", 7, TRAIN_STREAM, r, steps)[0] for r in (1, 2, 3, 4, 5)])
    for decision, size in enumerate(SIZES):
        complete = len(draws) // size * size  # groups run on over round boundaries (48 is no multiple of 10)
        groups = draws[:complete, decision].reshape(-1, size)
        assert (groups.sort(dim=1).values == torch.arange(size)).all(), decision


def test_fair_groups_are_independent_permutations():
    draws = fair_indices(SIZES, seed=0, stream=TRAIN_STREAM, first=0, count=200)
    first_set = draws[:, 0].reshape(-1, SIZES[0])
    assert len({tuple(group.tolist()) for group in first_set}) > 1  # a fresh order per group
    assert SIZES[1] == SIZES[2] and not torch.equal(draws[:8, 1], draws[:8, 2])  # sets of one size differ too


@pytest.mark.parametrize("sampling", ["fair", "uniform"])
def test_warmup_draws_depend_only_on_seed_stream_and_round(sampling):
    once = warmup_draws(sampling, 3, TRAIN_STREAM, 2, 48)
    assert torch.equal(once[0], warmup_draws(sampling, 3, TRAIN_STREAM, 2, 48)[0]) and once[1] == warmup_draws(
        sampling, 3, TRAIN_STREAM, 2, 48)[1]
    assert not torch.equal(once[0], warmup_draws(sampling, 3, TRAIN_STREAM, 3, 48)[0])  # the next round
    assert not torch.equal(once[0], warmup_draws(sampling, 4, TRAIN_STREAM, 2, 48)[0])  # another seed
    assert not torch.equal(once[0], warmup_draws(sampling, 3, SCORE_STREAM, 2, 48)[0])  # the scored samples
    assert all(from_key(key).key == key for key in once[1])  # canonical keys


def test_fair_draws_of_a_round_are_the_steps_of_one_stream():
    """Round r's draws are steps (r - 1) * count .. of one stream: no state carried between calls."""
    whole = fair_indices(SIZES, seed=1, stream=TRAIN_STREAM, first=0, count=96)
    assert torch.equal(warmup_draws("fair", 1, TRAIN_STREAM, 2, 48)[0], whole[48:])


def test_uniform_sampling_covers_every_op():
    draws = uniform_indices(SIZES, seed=0, stream=TRAIN_STREAM, first=0, count=400)
    for decision, size in enumerate(SIZES):
        assert set(draws[:, decision].tolist()) == set(range(size))


# -- the loop: warm-up rounds leave the controller alone ----------------------------------------


class ScoringPool:
    """Scores without a network: reward 0.2 + 0.05 * sample, so a round's rewards differ; keeps the tasks."""

    def __init__(self) -> None:
        self.tasks = []

    def score(self, weights, tasks, on_result=None):
        self.tasks.append(list(tasks))
        return [RewardResult(t.sample, t.genotype, 0.2 + 0.05 * t.sample, 0.2 + 0.05 * t.sample, 1.0, "ok", 1)
                for t in tasks]

    def take_events(self):
        return []


@pytest.fixture
def rounds(tmp_path, monkeypatch):
    """run_round without Ray: an in-process controller, a scoring pool, training that records its genotypes."""
    trained = []
    monkeypatch.setattr(search.loop, "ray", SimpleNamespace(get=lambda value: value))
    monkeypatch.setattr(search.loop, "train_shared",
                        lambda config, round_number, shared, genotypes, pool: trained.append(genotypes) or shared)
    config = SearchConfig(rounds=3, warmup_rounds=2, train_steps=12, samples_per_round=4, seed=5)
    service = ControllerService(controller_settings(config), config.policy, config.seed)
    rundir = RunDir(tmp_path / "run")
    rundir.create({"run_id": "warm"})
    pool = ScoringPool()

    def run(round_number):
        return run_round(config, "warm", round_number, {"weights": {}}, InProcess(service), pool, rundir)

    return SimpleNamespace(run=run, service=service, rundir=rundir, pool=pool, trained=trained, config=config)


def test_warmup_rounds_leave_the_controller_as_it_was_and_the_next_round_updates_it(rounds):
    before = copy.deepcopy(rounds.service.state_dict())  # state_dict() holds the live tensors
    for round_number in (1, 2):
        _, stats = rounds.run(round_number)
        assert np.isnan(stats["entropy"])
    assert same_state(copy.deepcopy(rounds.service.state_dict()), before)  # policy, Adam, baseline, RNG, round
    rounds.run(3)
    after = rounds.service.state_dict()
    assert not same_state(after["learner"]["policy"], before["learner"]["policy"])
    assert after["learner"]["updates"] == 1 and after["round"] == 3


def test_warmup_trains_and_scores_the_warmup_samplers_genotypes(rounds):
    rounds.run(1)
    assert rounds.trained[0] == warmup_draws("fair", 5, TRAIN_STREAM, 1, 12)[1]
    assert [t.genotype for t in rounds.pool.tasks[0]] == warmup_draws("fair", 5, SCORE_STREAM, 1, 4)[1]


def test_the_log_marks_warmup_rows_and_leaves_their_controller_columns_empty(rounds):
    for round_number in (1, 2, 3):
        rounds.run(round_number)
    log = rounds.rundir.read_rewards()
    assert list(log.columns) == REWARD_SCHEMA.names
    warm, searched = log[log["round"] <= 2], log[log["round"] == 3]
    assert (warm["phase"] == "warmup").all() and (searched["phase"] == "search").all()
    for column in ("log_prob", "entropy", "baseline", "advantage"):
        assert warm[column].isna().all() and np.isfinite(searched[column]).all(), column
    assert np.allclose(warm["reward"], warm["val_accuracy"])  # no entropy bonus without a policy


def test_a_log_written_before_the_phase_column_reads_as_search(tmp_path):
    rundir = RunDir(tmp_path / "old")
    rundir.create({"run_id": "old"})
    rundir.write_round(1, [{"run_id": "old", "round": 1, "sample": 0, "worker": 0, "genotype": "gap|eca|none|none",
                            **from_key("gap|eca|none|none").ops, "reward": 0.5, "val_accuracy": 0.5,
                            "val_loss": 1.0, "log_prob": -3.0, "entropy": 5.0, "baseline": 0.4,
                            "advantage": 0.1, "params": 10, "status": "ok", "wall_time_s": 0.1}])
    path = tmp_path / "old" / "rewards" / "round-000001.parquet"
    table = pq.read_table(path)
    pq.write_table(table.drop(["phase"]), path)  # as written before issue 15
    assert "phase" not in pq.read_schema(path).names
    assert rundir.read_rewards()["phase"].tolist() == ["search"]
    rundir.write_round(2, table.to_pandas().assign(round=2, phase="warmup"))  # a newer round beside it
    assert rundir.read_rewards()["phase"].tolist() == ["search", "warmup"]
    with pytest.raises(ValueError, match="'phase' must be one of warmup, search"):
        rundir.write_round(3, table.to_pandas().assign(round=3, phase="cooldown"))


# -- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize("values, message", [
    ({"warmup_rounds": -1}, "warmup_rounds must be at least 0, got -1"),
    ({"warmup_sampling": "greedy"}, "warmup_sampling must be one of fair, uniform, got 'greedy'"),
    ({"warmup_rounds": "four"}, "warmup_rounds: expected"),
])
def test_bad_warmup_settings_are_refused_naming_the_key(values, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, values)


def test_warmup_as_long_as_the_search_is_allowed():
    assert load_config(None, {"rounds": 3, "warmup_rounds": 5}).warmup_rounds == 5


def resume(out, config_path=None):
    overrides = {"out": str(out), "rounds": None, "seed": None}
    return resolve(config_path, overrides, resume=True)[0]


def test_a_run_saved_before_the_warmup_keys_resumes_without_them(tmp_path):
    old = make_run(tmp_path / "old")  # its config.yaml has no warm-up or common-image keys
    config = resume(old.root)
    assert config.warmup_rounds == 0 and config.evaluator.common_reward_images is False
    assert config.evaluator.sync == "round"  # and its workers merge as they did (issue 14)
    same = tmp_path / "same.yaml"  # the run's own settings, from a file that predates the keys too
    same.write_text(yaml.safe_dump(CONFIG))
    assert resume(old.root, str(same)).warmup_rounds == 0
    warm = tmp_path / "warm.yaml"
    warm.write_text(yaml.safe_dump({**CONFIG, "warmup_rounds": 2}))
    with pytest.raises(ConfigError, match="warmup_rounds: 0 -> 2"):
        resume(old.root, str(warm))


def test_resume_refuses_a_changed_warmup_setting(tmp_path):
    new = make_run(tmp_path / "new")
    new.create({**CONFIG, "warmup_rounds": 3, "warmup_sampling": "fair"})  # as a run of today saves it
    assert resume(new.root).warmup_rounds == 3
    for key, value, message in [("warmup_rounds", 1, "warmup_rounds: 3 -> 1"),
                                ("warmup_sampling", "uniform", "warmup_sampling: 'fair' -> 'uniform'")]:
        changed = tmp_path / f"{key}.yaml"
        changed.write_text(yaml.safe_dump({**CONFIG, "warmup_rounds": 3, key: value}))
        with pytest.raises(ConfigError, match=message):
            resume(new.root, str(changed))
