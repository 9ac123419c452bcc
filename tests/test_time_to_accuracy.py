"""time_to_accuracy.py and gpu_suite.py: time to reach, the ratio, the extrapolation, by hand; their options."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from time_to_accuracy import FULL, QUICK, compare, fixed_sample, parse_args, ratio, time_to_reach  # noqa: E402

TIMES = [0.0, 10.0, 20.0, 30.0]
ACCURACIES = [0.10, 0.30, 0.50, 0.40]


def test_time_to_reach_interpolates_between_the_points_around_the_first_crossing():
    # 0.40 lies halfway between 0.30 (10 s) and 0.50 (20 s): 15 s, not the later 30 s at 0.40
    assert time_to_reach(TIMES, ACCURACIES, 0.40) == pytest.approx(15.0)
    # 0.35 is a quarter of the way from 0.30 to 0.50: 10 + 0.25 * 10
    assert time_to_reach(TIMES, ACCURACIES, 0.35) == pytest.approx(12.5)


def test_time_to_reach_on_a_point_at_the_start_and_never():
    assert time_to_reach(TIMES, ACCURACIES, 0.30) == pytest.approx(10.0)
    assert time_to_reach(TIMES, ACCURACIES, 0.05) == 0.0
    assert time_to_reach(TIMES, ACCURACIES, 0.51) is None


def test_ratio_and_its_missing_cases():
    assert ratio(13.0, 20.0) == pytest.approx(0.65)
    assert ratio(None, 20.0) is None
    assert ratio(13.0, None) is None
    assert ratio(13.0, 0.0) is None


def curve(workers, points):
    return {"workers": workers, "points": [{"seconds": s, "images_seen": i, "accuracy": a} for s, i, a in points]}


def test_compare_against_the_one_worker_final_accuracy():
    one = curve(1, [(0, 0, 0.1), (100, 1000, 0.5), (200, 2000, 0.6)])
    two = curve(2, [(0, 0, 0.1), (60, 1000, 0.4), (120, 2000, 0.8)])  # 0.6 at 60 + 0.5 * 60 = 90 s, 1500 images
    four = curve(4, [(0, 0, 0.1), (50, 1000, 0.3)])
    result = compare([one, two, four])
    assert result["target"] == 0.6
    rows = {row["workers"]: row for row in result["rows"]}
    assert rows[1]["wall_time_ratio"] == pytest.approx(1.0)
    assert rows[2]["seconds_to_target"] == pytest.approx(90.0)
    assert rows[2]["wall_time_ratio"] == pytest.approx(0.45)  # 90 / 200
    assert rows[2]["images_ratio"] == pytest.approx(0.75)  # 1500 / 2000
    assert rows[4]["reached"] is False and rows[4]["wall_time_ratio"] is None


def test_compare_without_a_one_worker_curve_says_so():
    result = compare([curve(2, [(0, 0, 0.1)])])
    assert result["target"] is None and "1-worker" in result["note"]


def test_fixed_sample_is_seeded_and_distinct():
    assert fixed_sample(8, 0) == fixed_sample(8, 0)
    assert len(set(fixed_sample(8, 0))) == 8
    assert fixed_sample(8, 0) != fixed_sample(8, 1)


def test_options_quick_defaults_and_overrides(tmp_path):
    quick = parse_args(["--quick", "--out", str(tmp_path / "r.json")])
    assert (quick.rounds, quick.train_steps, quick.eval_every, quick.genotypes) == (
        QUICK["rounds"], QUICK["train_steps"], QUICK["eval_every"], QUICK["genotypes"])
    assert quick.workers_list == [1, 2] and quick.out == tmp_path / "r.json"
    full = parse_args(["--workers-list", "1,2,4", "--rounds", "30", "--gpus-per-worker", "0.25"])
    assert full.workers_list == [1, 2, 4] and full.rounds == 30 and full.gpus_per_worker == 0.25
    assert full.train_steps == FULL["train_steps"] and full.out.name == "time_to_accuracy.json"


@pytest.mark.parametrize("argv", [["--workers-list", "0,2"], ["--workers-list", "x"], ["--rounds", "0"]])
def test_bad_options_are_refused(argv):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2


def test_gpu_suite_extrapolates_from_the_median_round_after_the_first():
    from gpu_suite import extrapolate

    # rounds after the first: 4, 6, 5 -> median 5 s; 20 s setup + 150 x 5 s = 770 s on 1 GPU
    result = extrapolate([10.0, 4.0, 6.0, 5.0], setup_s=20.0, rounds=150, gpus=1.0)
    assert result["seconds_per_round"] == 5.0 and result["total_s"] == pytest.approx(770.0)
    assert result["gpu_hours"] == pytest.approx(770.0 / 3600)
    assert "EXTRAPOLATED" in result["label"]
    # one measured round is all there is; 4 actors of a quarter GPU are one GPU
    assert extrapolate([7.0], setup_s=0.0, rounds=10, gpus=4 * 0.25)["total_s"] == pytest.approx(70.0)
    assert extrapolate([7.0], setup_s=0.0, rounds=10, gpus=0.5)["gpu_hours"] == pytest.approx(70.0 / 3600 * 0.5)


def test_gpu_suite_options():
    from gpu_suite import parse_args

    smoke = parse_args(["--cpu-smoke"])
    assert smoke.tta_workers == [1, 2] and smoke.search_workers == 2 and smoke.out.name == "gpu_suite_cpu_smoke.json"
    gpu = parse_args(["--budget-s", "600", "--tta-workers", "1,4,8"])
    assert gpu.budget_s == 600 and gpu.tta_workers == [1, 4, 8] and gpu.out.name == "gpu_suite.json"
