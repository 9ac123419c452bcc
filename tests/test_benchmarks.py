"""The benchmark scripts' own logic: which genotypes ranking fidelity trains, and the README table."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import ranking_fidelity  # noqa: E402
import run_all  # noqa: E402


def landscape(n: int) -> pd.DataFrame:
    rows = [{"genotype": f"g{i:03d}", "val_accuracy": i / n, "status": "ok"} for i in range(n)]
    rows.append({"genotype": "broken", "val_accuracy": 0.0, "status": "nan"})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0)


def test_spread_covers_the_reward_range_and_skips_failed_genotypes():
    picks = ranking_fidelity.spread_over_rewards(landscape(100), 16)
    assert len(picks) == 16
    assert "broken" not in set(picks["genotype"])
    assert picks["val_accuracy"].is_monotonic_increasing
    assert picks["genotype"].iloc[0] == "g000" and picks["genotype"].iloc[-1] == "g099"
    gaps = picks["val_accuracy"].diff().dropna()
    assert gaps.max() - gaps.min() <= 0.011  # evenly spaced quantiles, up to rounding


def test_spread_never_repeats_a_genotype():
    picks = ranking_fidelity.spread_over_rewards(landscape(10), 16)
    assert picks["genotype"].is_unique and len(picks) == 10


def write(folder: Path, name: str, content: dict) -> None:
    (folder / f"{name}.json").write_text(json.dumps(content))


def test_table_shows_every_result_that_exists(tmp_path, monkeypatch):
    monkeypatch.setattr(run_all, "RESULTS", tmp_path)
    assert run_all.table(quick=False).count("\n") == 1  # the header only
    write(tmp_path, "supernet_landscape", {
        "settings": {"genotypes_scored": 3139, "rounds": 30, "train_steps_per_round": 78},
        "val_accuracy": {"min": 0.1, "median": 0.5, "max": 0.6, "std": 0.05}})
    write(tmp_path, "ranking_fidelity", {"settings": {"genotypes": 16, "seeds": 3, "epochs": 2},
                                         "kendall_tau": 0.25, "spearman_rho": 0.4})
    write(tmp_path, "search_outcome", {"settings": {"search_seeds": 3, "standalone_seeds": 3},
                                       "best_known": {"name": "srm", "mean": 75.35},
                                       "winner_mean_over_search_seeds": {"rl": 74.95, "random": 74.0},
                                       "rl_minus_best_known": {"difference": -0.4, "standard_error": 0.5},
                                       "rl_minus_random": {"difference": 0.95, "standard_error": 0.7}})
    at500 = {"area_ratio": 0.8, "samples_to_top1_ratio": 0.6}
    write(tmp_path, "controller_ablation_supernet", {
        "settings": {"noise": [0.0128], "round_noise": 0.0251}, "landscapes": {
            "supernet_landscape": {"kind": "parquet", "results": {"sase": {"noise=0.0128": {"500": at500}}}}}})
    table = run_all.table(quick=False)
    assert "3139 genotypes" in table and "max 60.0" in table
    assert "0.25 (rho 0.40)" in table
    assert "74.95" in table and "-0.40 pts" in table and "+0.95 pts" in table
    assert "`supernet_landscape`" in table and "0.80 / 0.60x" in table and "0.0128 per sample + 0.0251 per round" in table


@pytest.mark.parametrize("quick", [False, True])
def test_every_step_names_a_script_that_exists(quick):
    for name, command in run_all.steps(quick).items():
        assert (run_all.HERE / command[0]).exists(), name
