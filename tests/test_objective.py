"""The objective (search/objective.py): MnasNet's reward by hand, the Pareto front, bad settings."""
import math

import pytest

from search.config import load_config
from search.objective import ObjectiveConfig, ObjectiveError, mnas, objective_values, pareto_front


def test_the_soft_mnas_reward_is_accuracy_times_latency_ratio_to_the_w():
    # 0.8 * (12 / 10) ** -0.07 = 0.8 * exp(-0.07 * ln 1.2) = 0.8 * 0.987318... = 0.789854...
    assert mnas(0.8, 12.0, 10.0, -0.07) == pytest.approx(0.789854, abs=1e-6)
    assert mnas(0.8, 8.0, 10.0, -0.07) == pytest.approx(0.8 * math.exp(-0.07 * math.log(0.8)))  # faster: a little more
    assert mnas(0.8, 10.0, 10.0, -0.07) == 0.8


def test_the_hard_mnas_reward_divides_by_the_overrun_and_ignores_speed_below_the_target():
    assert mnas(0.8, 12.0, 10.0, -0.07, hard=True) == pytest.approx(0.8 * 10 / 12)
    assert mnas(0.8, 8.0, 10.0, -0.07, hard=True) == 0.8
    assert mnas(0.8, 10.0, 10.0, -0.07, hard=True) == 0.8


def test_the_accuracy_objective_is_the_reward_itself():
    assert objective_values(ObjectiveConfig(), [0.5, 0.6], [None, None]) == [0.5, 0.6]
    soft = ObjectiveConfig(name="mnas", target_ms=10.0)
    assert objective_values(soft, [0.8, 0.8], [12.0, 10.0]) == [pytest.approx(0.789854, abs=1e-6), 0.8]


def test_the_pareto_front_of_a_hand_made_set():
    accuracy = [0.70, 0.72, 0.72, 0.69, 0.75, 0.71]
    latency = [1.0, 1.2, 1.1, 0.9, 2.0, 1.5]
    # 1.1 ms at 0.72 dominates 1.2 ms at 0.72; 1.5 ms at 0.71 is beaten by 1.1 ms at 0.72
    assert pareto_front(accuracy, latency) == [True, False, True, True, True, False]
    assert pareto_front([0.7, 0.7], [1.0, 1.0]) == [True, True]  # equal points do not dominate each other


@pytest.mark.parametrize("values, message", [
    ({"name": "flops"}, "objective.name must be one of accuracy, mnas, got 'flops'"),
    ({"name": "mnas"}, "objective.target_ms is required"),
    ({"name": "mnas", "target_ms": -1.0}, "objective.target_ms must be above 0, got -1.0"),
    ({"name": "mnas", "target_ms": 0}, "objective.target_ms must be above 0, got 0"),
    ({"name": "mnas", "target_ms": 1.0, "batch": 0}, "objective.batch must be at least 1"),
])
def test_bad_objectives_are_refused_by_key(values, message):
    with pytest.raises(ObjectiveError, match=message):
        ObjectiveConfig(**values)


def test_the_default_search_keeps_the_accuracy_objective():
    config = load_config("default")
    assert config.objective == ObjectiveConfig() and not config.objective.uses_latency


def test_the_report_draws_accuracy_against_latency_when_the_log_has_latencies(tmp_path):
    from reporting.page import write_report
    from tiny_run import make_run

    rundir = make_run(tmp_path / "run")
    assert "latency.png" not in write_report(rundir).images  # the accuracy objective: no latencies
    log = rundir.read_rewards()
    for round_number, rows in log.groupby("round"):
        latency = [1.0 + 0.1 * len(key) for key in rows["genotype"]]
        rundir.write_round(round_number, rows.assign(latency_ms=latency, macs=1000))
    written = write_report(rundir)
    assert "latency.png" in written.images and "Accuracy against latency" in open(written.index).read()
