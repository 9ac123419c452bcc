"""Starting a search: resume's rule (budget and resources applied, nothing else changed) and the resource check."""
import pytest
import yaml

from search.config import ConfigError, SearchConfig
from search.preflight import check_resources
from search.start import resolve
from tiny_run import CONFIG, make_run


@pytest.fixture
def saved(tmp_path):
    return make_run(tmp_path / "run")


def flags(out, **values):
    overrides = {"out": str(out), "rounds": None, "workers": None, "policy": None, "seed": None, "ray_address": None,
                 "evaluator.num_gpus": None, "evaluator.num_cpus": None, "evaluator.dataset": None}
    overrides.update(values)
    return overrides


def test_resume_applies_rounds_and_resources_and_keeps_every_other_saved_setting(saved):
    config, _ = resolve(None, flags(saved.root, rounds=10, **{"evaluator.num_gpus": 0.5, "evaluator.num_cpus": 2}),
                        resume=True)
    assert (config.rounds, config.evaluator.num_gpus, config.evaluator.num_cpus) == (10, 0.5, 2.0)
    assert config.samples_per_round == CONFIG["samples_per_round"] and config.workers == CONFIG["workers"]
    assert config.evaluator.dataset_options == CONFIG["evaluator"]["dataset_options"]


def test_resume_with_the_saved_settings_given_again_is_accepted(saved, tmp_path):
    same = tmp_path / "same.yaml"
    same.write_text(yaml.safe_dump({**CONFIG, "rounds": 9}))
    config, _ = resolve(str(same), flags(saved.root, seed=0), resume=True)
    assert config.rounds == 9


def test_resume_may_change_how_long_a_round_waits_for_a_lost_worker(saved, tmp_path):
    patient = tmp_path / "patient.yaml"
    patient.write_text(yaml.safe_dump({**CONFIG, "evaluator": {**CONFIG["evaluator"], "collective_timeout_s": 30}}))
    config, _ = resolve(str(patient), flags(saved.root), resume=True)
    assert config.evaluator.collective_timeout_s == 30.0 and SearchConfig().evaluator.collective_timeout_s == 120.0


def test_resume_names_every_differing_setting_with_its_old_and_new_value(saved, tmp_path):
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump({**CONFIG, "samples_per_round": 20, "train_steps": 4}))
    with pytest.raises(ConfigError) as refused:
        resolve(str(changed), flags(saved.root, seed=3), resume=True)
    message = str(refused.value)
    assert "samples_per_round: 8 -> 20" in message and "seed: 0 -> 3" in message
    assert f"train_steps: {SearchConfig().train_steps} -> 4" in message and "rounds" not in message.split("differ:")[1].split("(")[0]


def test_a_local_ray_short_of_resources_fails_at_once_naming_what_it_has():
    config = SearchConfig(workers=2)
    config.evaluator.num_cpus, config.evaluator.num_gpus = 1.0, 1.0
    with pytest.raises(ConfigError, match=r"asked 2 GPU \(2 workers x 1\) but the cluster has 0"):
        check_resources(config, local=True, cluster_resources=lambda: {"CPU": 2.0},
                        sleep=lambda s: pytest.fail("a local Ray never grows: no waiting"))


def test_a_joined_cluster_says_it_waits_for_the_autoscaler_until_the_nodes_come(capsys):
    config = SearchConfig(workers=4)
    config.evaluator.num_cpus, config.evaluator.num_gpus = 1.0, 0.5
    sizes = iter([{"CPU": 4.0}, {"CPU": 8.0, "GPU": 1.0}, {"CPU": 8.0, "GPU": 2.0}])
    check_resources(config, local=False, cluster_resources=lambda: next(sizes), sleep=lambda s: None)
    assert capsys.readouterr().err.startswith("waiting for the autoscaler: asked 2 GPU")
    with pytest.raises(ConfigError, match="after waiting 10 s"):
        check_resources(config, local=False, cluster_resources=lambda: {"CPU": 8.0}, sleep=lambda s: None, wait_s=10)


def test_a_config_file_that_drops_a_saved_override_differs_too(tmp_path):
    run = make_run(tmp_path / "run")
    run.create({**CONFIG, "controller": {"lr": 0.02}})
    same_but_lr = tmp_path / "plain.yaml"
    same_but_lr.write_text(yaml.safe_dump(CONFIG))
    with pytest.raises(ConfigError, match=r"controller.lr: 0.02 -> '\(unset\)'"):
        resolve(str(same_but_lr), flags(run.root), resume=True)
