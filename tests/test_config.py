"""Search configuration: the embedded default, YAML files, overrides, and refusals."""
import dataclasses

import pytest

from search.config import INSTALLED_PROJECT, ConfigError, SearchConfig, load_config
from experiments_paths import CONFIGS


def test_default_yaml_is_the_embedded_default():
    assert load_config(str(CONFIGS / "default.yaml")) == SearchConfig()


def test_cifar10_config_loads_and_asks_for_gpus():
    config = load_config(str(CONFIGS / "cifar10.yaml"))
    assert config.evaluator.dataset == "cifar10" and config.evaluator.num_gpus > 0


@pytest.mark.parametrize("text", ["evaluator: {reward_metric: likelihood}\n", "evaluator: {training: {batch_size: 64}}\n"])
def test_an_evaluator_section_keeps_the_searchs_two_cpus_unless_it_names_them(tmp_path, text):
    """A section that changes one evaluator key changes only that key: the search's 2 CPUs per actor
    (its torch threads) stay, not EvaluatorConfig's own 1, which halved the speed of such configs."""
    path = tmp_path / "one-key.yaml"
    path.write_text(text)
    config = load_config(str(path))
    assert config.evaluator.num_cpus == SearchConfig().evaluator.num_cpus == 2.0
    assert dataclasses.replace(config.evaluator, reward_metric="accuracy", training=SearchConfig().evaluator.training,
                               seed=0) == SearchConfig().evaluator
    path.write_text(text.replace("evaluator: {", "evaluator: {num_cpus: 1, "))
    assert load_config(str(path)).evaluator.num_cpus == 1.0
    for name in ("likelihood", "corrected"):
        assert load_config(name).evaluator.num_cpus == 2.0


def test_command_line_overrides_win_over_the_file():
    config = load_config(str(CONFIGS / "default.yaml"), {"rounds": 3, "evaluator.dataset": "fake", "seed": None})
    assert (config.rounds, config.evaluator.dataset, config.seed) == (3, "fake", 0)


@pytest.mark.parametrize("text, message", [
    ("rounds: many\n", "rounds: expected <class 'int'>, got 'many'"),
    ("roundz: 3\n", "unknown config key 'roundz'"),
    ("evaluator: {trainng: {}}\n", "unknown config key 'evaluator.trainng'"),
    ("policy: greedy\n", "policy must be one of rl, ppo, random, got 'greedy'"),
    ("workers: 0\n", "workers must be at least 1, got 0"),
    ("- 1\n", "must hold a mapping"),
    ("rounds: [\n", "is not valid YAML"),
])
def test_bad_config_files_are_refused_with_the_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert message in str(err.value) and isinstance(err.value, ValueError)


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "nope.yaml"))


@pytest.mark.parametrize("given", ["cifar10", "search/configs/cifar10.yaml"])
def test_a_shipped_config_is_found_by_name_or_project_path_from_any_directory(given, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # as `ray submit` runs the script: from the head node's home, not the project
    assert load_config(given) == load_config(str(CONFIGS / "cifar10.yaml"))


def test_a_file_in_the_working_directory_wins_over_the_shipped_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "search" / "configs").mkdir(parents=True)
    (tmp_path / "search" / "configs" / "cifar10.yaml").write_text("rounds: 2\n")
    assert load_config("search/configs/cifar10.yaml").rounds == 2


def test_a_missing_relative_config_names_both_places_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_config("experiments/configs/cifar10.yaml")
    message = str(err.value)
    assert f"looked in {tmp_path} and in the installed project {INSTALLED_PROJECT}" in message
    assert "shipped configs by name: cifar10, corrected, default, likelihood, likelihood_per_squeeze, smoke" in message


def test_config_round_trips_through_a_dict():
    config = SearchConfig(rounds=5, run_id="r")
    from search.config import build

    assert build(SearchConfig, dataclasses.asdict(config)) == config
