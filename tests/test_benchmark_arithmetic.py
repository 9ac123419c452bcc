"""The arithmetic behind the benchmarks' met or missed claims, against answers computed by hand."""
from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import controller_landscapes  # noqa: E402
import ranking_fidelity  # noqa: E402
import search_outcome  # noqa: E402


def test_kendall_tau_on_a_known_permutation():
    # ranks 1 2 3 4 against 2 1 4 3: of the 6 pairs, (1,2) and (3,4) are discordant -> (4 - 2) / 6 = 1/3
    tau, rho = ranking_fidelity.rank_agreement([1, 2, 3, 4], [2, 1, 4, 3])
    assert tau.statistic == pytest.approx(1 / 3)
    # Spearman: d = (1, 1, 1, 1), rho = 1 - 6 * 4 / (4 * 15) = 0.6
    assert rho.statistic == pytest.approx(0.6)
    assert ranking_fidelity.rank_agreement([1, 2, 3], [3, 2, 1])[0].statistic == pytest.approx(-1.0)


def test_regret_area_of_a_known_curve():
    # best 1.0; found 0.2, 0.5, 0.4, 0.9 -> best so far 0.2 0.5 0.5 0.9 -> regret 0.8 0.5 0.5 0.1
    run = torch.tensor([0.2, 0.5, 0.4, 0.9], dtype=torch.float64)
    assert controller_landscapes.regret_area(run, 1.0, 4) == pytest.approx(1.9)
    assert controller_landscapes.regret_area(run, 1.0, 2) == pytest.approx(1.3)  # the budget cuts the curve


def test_samples_to_top_one_percent_of_a_known_sequence():
    run = torch.tensor([0.1, 0.3, 0.95, 0.2, 0.99], dtype=torch.float64)
    assert controller_landscapes.samples_to_top(run, 0.9, 5) == 3  # the third sample is the first above
    assert controller_landscapes.samples_to_top(run, 0.98, 5) == 5
    assert controller_landscapes.samples_to_top(run, 0.9, 2) == 3  # none within the budget: budget + 1


class Flat:
    """A landscape stand-in: what summarise reads."""

    def __init__(self, best: float, top_threshold: float) -> None:
        self.best, self.top_threshold = best, top_threshold


def test_area_ratio_and_samples_ratio_on_two_known_curves():
    landscape = Flat(best=1.0, top_threshold=0.9)
    controller = torch.tensor([0.5, 0.9, 1.0], dtype=torch.float64)  # regret 0.5 0.1 0.0 = 0.6; top at 2
    random_a = torch.tensor([0.0, 0.5, 0.95], dtype=torch.float64)  # regret 1.0 0.5 0.05 = 1.55; top at 3
    random_b = torch.tensor([0.5, 0.5, 0.5], dtype=torch.float64)  # regret 0.5 0.5 0.5 = 1.5; none: 4
    result = controller_landscapes.summarise([controller], [[random_a, random_b]], [landscape], budget=3)
    assert result["area_ratio"] == pytest.approx(0.6 / ((1.55 + 1.5) / 2))
    assert result["samples_to_top1"] == 2
    assert result["random_samples_to_top1"] == 3  # torch's median of (3, 4) is the lower one
    assert result["samples_to_top1_ratio"] == pytest.approx(2 / 3)
    assert result["hit_rate"] == 1.0 and result["final_regret"] == pytest.approx(0.0)


def test_percentile_counts_the_means_below_and_half_the_ties():
    assert search_outcome.percentile(75.0, [70.0, 72.0, 75.0, 80.0]) == pytest.approx(100 * 2.5 / 4)
    assert search_outcome.percentile(60.0, [70.0, 72.0]) == 0.0


def standalone_rows(name, key, accuracies):
    return [{"name": name, "genotype": key, "seed": seed, "test_accuracy": a} for seed, a in enumerate(accuracies)]


def test_compare_winners_with_the_best_known_module_and_with_random_search():
    import pandas as pd
    from searchspace import KNOWN

    srm, se = KNOWN["srm"].key, KNOWN["se"].key
    reference = pd.DataFrame(standalone_rows("none", KNOWN["none"].key, [0.70, 0.72])
                             + standalone_rows("srm", srm, [0.76, 0.74]) + standalone_rows("se", se, [0.71, 0.73]))
    found = "gap|bn|mean|conv7x7"
    winners = pd.DataFrame(standalone_rows("winner-0", found, [0.77, 0.75]) + standalone_rows("srm", srm, [0.76, 0.74]))
    runs = [{"policy": "rl", "winner": found}, {"policy": "rl", "winner": srm}, {"policy": "random", "winner": srm}]
    result = search_outcome.compare(runs, winners, reference)
    assert result["best_known"] == {"name": "srm", "mean": pytest.approx(75.0), "seeds": 2}
    assert [r["standalone_mean"] for r in result["runs"]] == pytest.approx([76.0, 75.0, 75.0])
    # 76 is above all three of the table's means (71, 75, 72); 75 ties srm's
    assert [r["percentile_in_table"] for r in result["runs"]] == pytest.approx([100.0, 100 * 2.5 / 3, 100 * 2.5 / 3])
    # rl: winners' means 76 and 75 against srm's seeds 76 and 74
    assert result["rl_minus_best_known"]["difference"] == pytest.approx(0.5)
    assert result["rl_minus_random"]["difference"] == pytest.approx(0.5)
    assert math.isnan(result["rl_minus_random"]["standard_error"])  # one random search seed: unknown variance
    # paired by seed: rl's winners average 76.5 and 74.5 at seeds 0 and 1, srm 76 and 74
    paired = result["rl_minus_best_known_paired"]
    assert paired["seeds"] == [0, 1] and paired["mean"] == pytest.approx(0.5)
    assert paired["rl_by_seed"] == pytest.approx([76.5, 74.5]) and paired["best_known_by_seed"] == pytest.approx([76.0, 74.0])
    assert result["rl_minus_random_paired"]["mean"] == pytest.approx(0.5)
    assert result["random_minus_best_known_paired"]["mean"] == pytest.approx(0.0)


def test_a_configs_winners_are_paired_with_the_defaults_on_the_seeds_the_default_ran(tmp_path):
    import json
    import pandas as pd
    from searchspace import KNOWN

    srm = KNOWN["srm"].key
    reference = pd.DataFrame(standalone_rows("srm", srm, [0.76, 0.74, 0.75]) + standalone_rows("none", KNOWN["none"].key, [0.7] * 3))
    (tmp_path / "search_outcome.json").write_text(json.dumps({"runs": [{"policy": "rl", "winner": "d"},
                                                                       {"policy": "random", "winner": "r"}]}))
    pd.DataFrame(standalone_rows("winner-0", "d", [0.72, 0.71])).to_parquet(tmp_path / "search_outcome_standalone.parquet")
    winners = pd.DataFrame(standalone_rows("winner-0", "x", [0.73, 0.73, 0.70]))
    runs = [{"policy": "rl", "winner": "x", "standalone_mean": 72.0}]
    found = search_outcome.against_default(runs, winners, reference, tmp_path / "search_outcome.json")
    assert found["seeds"] == 2 and found["default_rl_winners"] == ["d"]  # the default's winners ran seeds 0-1
    assert found["rl_minus_default_rl_paired"]["mean"] == pytest.approx(1.5)  # 73-72, 73-71
    assert found["default_rl_minus_best_known_paired"]["mean"] == pytest.approx(-3.5)  # 72-76, 71-74
    assert found["rl_minus_best_known_paired"]["mean"] == pytest.approx(-2.0)  # seed 2 left out
    assert search_outcome.against_default(runs, winners, reference, tmp_path / "missing.json") is None


def test_paired_by_seed_uses_only_the_seeds_every_genotype_ran(measures):
    """A seed one side lacks is left out; a key listed twice (two searches found it) weighs twice."""
    import pandas as pd

    rows = [("a", 0, 0.70), ("a", 1, 0.74), ("a", 2, 0.72), ("b", 0, 0.71), ("b", 1, 0.71), ("b", 2, 0.75),
            ("c", 0, 0.69), ("c", 1, 0.70)]  # c lacks seed 2
    runs = pd.DataFrame(rows, columns=["genotype", "seed", "test_accuracy"])
    found = measures.paired_by_seed(runs, {"x": ["a", "a", "b"], "y": ["c"]}, seeds=3)
    assert found["seeds"] == [0, 1]
    # x at seed 0: (70 + 70 + 71) / 3, at seed 1: (74 + 74 + 71) / 3; y: 69, 70
    assert found["x_by_seed"] == pytest.approx([211 / 3, 219 / 3]) and found["y_by_seed"] == pytest.approx([69.0, 70.0])
    differences = [211 / 3 - 69, 219 / 3 - 70]
    assert found["mean"] == pytest.approx(sum(differences) / 2)
    assert found["se"] == pytest.approx(abs(differences[0] - differences[1]) / 2)  # sd / sqrt(2) of two values
    assert 0.5 < found["p_x_worse"] < 1.0  # x is ahead: "x is worse" is unlikely
    assert measures.paired_by_seed(runs, {"x": ["a"], "y": ["c"]}, seeds=1) is None  # one seed: no test


@pytest.fixture
def measures():
    return importlib.import_module("measures")


def test_difference_of_two_known_samples(measures):
    # a: mean 2, variance 1; b: mean 1, variance 1 -> 1 +- sqrt(1/3 + 1/3)
    result = measures.difference([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    assert result["difference"] == pytest.approx(1.0)
    assert result["standard_error"] == pytest.approx(math.sqrt(2 / 3))
    assert result["z"] == pytest.approx(1 / math.sqrt(2 / 3))


def block_scores(accuracies, images=(100, 100, 50)):
    """reward_fidelity's long format from {genotype: [accuracy per block]} (the last block shorter)."""
    import pandas as pd

    return pd.DataFrame([{"genotype": g, "block": b, "images": images[b], "accuracy": a}
                         for g, values in accuracies.items() for b, a in enumerate(values)])


def test_a_parquet_landscape_is_worth_exp_minus_the_loss_under_the_likelihood_reward(tmp_path):
    """--landscape-reward likelihood: the genotype with the lowest loss is the best, whatever its accuracy."""
    import pandas as pd

    space, _ = controller_landscapes.search_space()
    keys = ["|".join(d.options[i] for d, i in zip(space.decisions, row)) for row in space.all_indices()[:3].tolist()]
    path = tmp_path / "landscape.parquet"
    pd.DataFrame({"genotype": keys, "val_accuracy": [0.9, 0.5, 0.6], "val_loss": [2.0, 1.0, 1.5]}).to_parquet(path)
    by_accuracy, _ = controller_landscapes.parquet_landscape(space, path)
    by_likelihood, about = controller_landscapes.parquet_landscape(space, path, "likelihood")
    assert by_accuracy.best == pytest.approx(0.9) and by_likelihood.best == pytest.approx(math.exp(-1.0))
    assert by_likelihood.rewards[:3].tolist() == pytest.approx([math.exp(-2.0), math.exp(-1.0), math.exp(-1.5)])
    assert by_likelihood.rewards[3:].min() == pytest.approx(math.exp(-2.0))  # the rest: the table's minimum
    assert about["reward"] == "likelihood"


def test_whole_split_weights_blocks_by_their_images():
    import reward_fidelity

    scores = block_scores({"a": [0.5, 0.7, 0.1], "b": [0.6, 0.6, 0.6]})
    whole = reward_fidelity.whole_split(scores)
    assert whole["a"] == pytest.approx((50 + 70 + 5) / 250) and whole["b"] == pytest.approx(0.6)


def test_common_images_cancel_what_the_block_does_to_every_genotype():
    import reward_fidelity

    # both genotypes move together with the block (+0, +10, -10 points) and differ by 5 points
    scores = block_scores({"a": [0.50, 0.60, 0.40, 0.5], "b": [0.45, 0.55, 0.35, 0.45]}, images=(100,) * 4)
    measured = reward_fidelity.noise(scores, full_blocks=3)
    assert measured["difference_same_block_sd"] == pytest.approx(0.0)
    # one genotype across blocks: values 50, 60, 40 -> sd 10
    assert measured["one_genotype_across_blocks_sd"] == pytest.approx(10.0)
    # own blocks: a on block i against b on block i + 1: 50-55, 60-35, 40-45 = -5, 25, -5 -> sd 17.32
    assert measured["difference_own_blocks_sd"] == pytest.approx(math.sqrt(300))


def test_the_likelihood_noise_is_measured_on_exp_minus_the_loss_of_each_block():
    import reward_fidelity

    # losses chosen so that exp(-loss) is 0.30, 0.40, 0.20 for a and 0.25, 0.35, 0.15 for b
    likelihoods = {"a": [0.30, 0.40, 0.20], "b": [0.25, 0.35, 0.15]}
    scores = block_scores({"a": [0.5, 0.5, 0.5], "b": [0.5, 0.5, 0.5]}, images=(100,) * 3)
    scores["loss"] = [-math.log(v) for g in ("a", "b") for v in likelihoods[g]]
    measured = reward_fidelity.noise(scores, full_blocks=3, value="likelihood")
    assert measured["difference_same_block_sd"] == pytest.approx(0.0)  # b is a - 5 points on every block
    assert measured["one_genotype_across_blocks_sd"] == pytest.approx(10.0)  # 30, 40, 20
    assert measured["genotypes_whole_split_sd"] == pytest.approx(math.sqrt(12.5))  # block means 30 and 25
    assert reward_fidelity.noise(scores, full_blocks=3)["one_genotype_across_blocks_sd"] == pytest.approx(0.0)


def test_fidelity_of_a_perfect_and_a_reversed_ranking():
    import pandas as pd
    import reward_fidelity

    truth = pd.Series({"a": 0.7, "b": 0.6, "c": 0.5})
    agree = block_scores({"a": [0.9, 0.8], "b": [0.7, 0.6], "c": [0.5, 0.4]}, images=(10, 10))
    assert reward_fidelity.fidelity(agree, truth, full_blocks=2) == pytest.approx(
        {"whole_split": 1.0, "common_block_mean": 1.0, "own_block_mean": 1.0})
    reverse = block_scores({"a": [0.1, 0.1], "b": [0.5, 0.5], "c": [0.9, 0.9]}, images=(10, 10))
    assert reward_fidelity.fidelity(reverse, truth, full_blocks=2)["whole_split"] == pytest.approx(-1.0)


def test_round_noise_cancels_against_a_batch_mean_baseline_but_not_an_ema_one():
    """A noise shared by a batch (common reward images) leaves a batch-mean learner's draws as they were."""
    from controller.presets import preset

    space, _ = controller_landscapes.search_space()
    landscape = controller_landscapes.synthetic_landscape(space, seed=3, interaction=0.5)

    def draws(name: str, round_noise: float) -> torch.Tensor:
        candidate = controller_landscapes.Candidate("rl", preset(name))
        return controller_landscapes.search(space, candidate, landscape, 200, 0.0, seed=5, round_noise=round_noise)

    assert torch.equal(draws("sase", 0.0), draws("sase", 0.3))  # sase: batch-mean baseline
    assert not torch.equal(draws("enas", 0.0), draws("enas", 0.3))  # enas: EMA baseline


def test_outcome_markdown_escapes_the_genotype_and_shows_an_unfinished_winner():
    runs = [{"policy": "rl", "search_seed": 0, "winner": "se|fc|none|none", "search_seconds": 342.4,
             "supernet_val_accuracy": 0.6145, "standalone_mean": 72.47, "standalone_sd": 0.81,
             "standalone_seeds": 2, "percentile_in_table": 25.0},
            {"policy": "random", "search_seed": 1, "winner": "gap|eca|none|none", "search_seconds": None,
             "supernet_val_accuracy": None, "standalone_mean": None, "standalone_sd": None,
             "standalone_seeds": 0, "percentile_in_table": None}]
    lines = search_outcome.markdown({"runs": runs}).splitlines()
    assert lines[2] == "| RL (`sase`) | 0 | `se\\|fc\\|none\\|none` | 342 s | 61.45 | 72.47 ± 0.81 (2 seeds) | 25 |"
    assert lines[3] == "| random search | 1 | `gap\\|eca\\|none\\|none` | - | - | - | - |"


def test_the_mean_ceilings_read_a_table_being_extended_over_its_complete_seeds(measures):
    """A third seed begun on two of four genotypes counts neither in the seed count nor in the noise."""
    import pandas as pd
    import reward_fidelity

    complete = pd.DataFrame([{"genotype": g, "seed": s, "test_accuracy": (70 + 2 * i + (s == i % 2)) / 100}
                             for i, g in enumerate("abcd") for s in (0, 1)])
    begun = pd.DataFrame([{"genotype": g, "seed": 2, "test_accuracy": (90 - 2 * i) / 100} for i, g in enumerate("ab")])
    ceilings = reward_fidelity.mean_ceilings(pd.concat([complete, begun]))
    assert ceilings == reward_fidelity.mean_ceilings(complete)
    assert ceilings["table_seeds"] == 2
    one_seed = measures.seed_tau(complete)["mean"]
    rho = math.sin(math.pi * one_seed / 2)
    assert ceilings["noiseless_against_table_mean_tau"] == pytest.approx(2 / math.pi * math.asin((2 * rho / (1 + rho)) ** 0.5))
    assert ceilings["one_seed_against_rest_tau"] == pytest.approx(one_seed)  # with two seeds the rest is the other seed


def test_reward_fidelity_refuses_a_run_that_is_not_a_run_directory(tmp_path, capsys):
    import reward_fidelity

    with pytest.raises(SystemExit) as stop:
        reward_fidelity.main(["--run", f"longer={tmp_path}"])
    assert stop.value.code == 2
    assert capsys.readouterr().err == f"error: --run longer={tmp_path}: want LABEL=DIR, DIR a search's run directory\n"


def test_reward_fidelity_gives_each_variant_its_mean_and_range_over_search_seeds():
    import pandas as pd
    import reward_fidelity

    table = pd.DataFrame([{"genotype": g, "seed": seed, "test_accuracy": a + seed / 100}
                          for g, a in (("a", 0.7), ("b", 0.6), ("c", 0.5)) for seed in (0, 1, 2)])
    agree = block_scores({"a": [0.9, 0.8], "b": [0.7, 0.6], "c": [0.5, 0.4]}, images=(10, 10))
    reverse = block_scores({"a": [0.1, 0.1], "b": [0.5, 0.5], "c": [0.9, 0.9]}, images=(10, 10))
    scores = pd.concat([agree.assign(run="r0"), reverse.assign(run="r1"), agree.assign(run="other")])
    scores = scores.assign(bn_mode="batch", full_blocks=2)
    names = {"r0": ("default", 0), "r1": ("default", 1), "other": ("longer", None)}
    result = reward_fidelity.summarise(scores, table, names)
    assert result["ceiling_seed_tau"] == pytest.approx(1.0) and len(result["rows"]) == 3
    default = next(row for row in result["by_variant"] if row["variant"] == "default")
    assert default["search_seeds"] == [0, 1]
    assert default["tau"]["whole_split"] == pytest.approx({"mean": 0.0, "min": -1.0, "max": 1.0, "n": 2})
    assert not default["target_met_whole_split"]
    lines = reward_fidelity.markdown(result).splitlines()
    assert len(lines) == 4 and "over the 3 genotypes" in lines[0]
    assert lines[2].startswith("| default | batch | 0, 1 | 0.00 (-1.00 to 1.00) | ")
    assert lines[3].startswith("| longer | batch | - | 1.00 | 1.00 | 1.00 | ")


def test_reward_fidelity_judges_the_scored_runs_by_another_table_without_scoring(tmp_path, monkeypatch, capsys):
    """--summary --table: the stored scores judged by another budget's table, only on the genotypes it
    holds, written to reward_fidelity_against_<table>.json; nothing searched or scored."""
    import json
    import pandas as pd
    import reward_fidelity
    import standalone_table

    monkeypatch.setattr(reward_fidelity, "RESULTS", tmp_path)
    runs, outcome = tmp_path / "runs", tmp_path / "outcome"
    rl, random = (str(reward_fidelity.variant_folder(v, 0, runs, outcome)) for v in ("default", "random"))
    agree = block_scores({"a": [0.9, 0.8], "b": [0.7, 0.6], "c": [0.5, 0.4], "d": [0.1, 0.1]}, images=(10, 10))
    reverse = block_scores({"a": [0.1, 0.1], "b": [0.5, 0.5], "c": [0.9, 0.9], "d": [0.8, 0.8]}, images=(10, 10))
    scores = pd.concat([agree.assign(run=rl), reverse.assign(run=random)]).assign(bn_mode="batch", full_blocks=2)
    scores.to_parquet(tmp_path / "reward_fidelity_scores.parquet")
    budget = {"arch": "resnet20", "epochs": 12, "batch_size": 64, "lr": 0.05, "dataset": "styled-glyphs",
              "dataset_options": {"test_size": 20000}}
    rows = [{**standalone_table.budget_row(budget), "name": g, "genotype": g, "seed": seed, "val_accuracy": 0.5,
             "test_accuracy": a + seed / 1000} for g, a in (("a", 0.7), ("b", 0.6), ("c", 0.5)) for seed in (0, 1)]
    table = tmp_path / "table_2b.parquet"
    pd.DataFrame(rows).to_parquet(table)
    common = ["--table", str(table), "--runs", str(runs), "--outcome-runs", str(outcome), "--seeds", "0"]
    reward_fidelity.main(["--summary", "--variants", "default", "random", *common])
    result = json.loads((tmp_path / "reward_fidelity_against_table_2b.json").read_text())
    assert result["genotypes"] == 3 and result["settings"]["standalone_table_runs"] == 6
    assert result["settings"]["standalone_budget"]["epochs"] == 12
    tau = {row["variant"]: row["tau"]["whole_split"]["mean"] for row in result["by_variant"]}
    assert tau == pytest.approx({"default": 1.0, "random": -1.0})
    # mean supernet accuracy over the table's 3 genotypes, not the 4 scored: (85 + 65 + 45) / 3
    assert result["by_variant"][0]["supernet_whole_split_mean"] == pytest.approx(0.65)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        reward_fidelity.main(["--summary", "--variants", "warmup-4", *common])
    assert stop.value.code == 2 and "is scored on every genotype of" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        reward_fidelity.main(["--summary", "--table", str(tmp_path / "missing.parquet")])
    assert stop.value.code == 2
    assert capsys.readouterr().err == f"error: --table {tmp_path / 'missing.parquet'}: no such table\n"


def test_reward_fidelity_summary_judges_a_run_whose_directory_is_gone(tmp_path, monkeypatch, capsys):
    """--summary --run LABEL=DIR needs only DIR's stored scores (run directories are not kept in git);
    a run with no stored scores is refused with its label named."""
    import json
    import pandas as pd
    import reward_fidelity
    import standalone_table

    monkeypatch.setattr(reward_fidelity, "RESULTS", tmp_path)
    gone = tmp_path / "landscape"  # never created: scored once, then deleted
    scores = block_scores({"a": [0.9, 0.8], "b": [0.7, 0.6], "c": [0.5, 0.4]}, images=(10, 10))
    scores.assign(run=str(gone.resolve()), bn_mode="batch", full_blocks=2).to_parquet(
        tmp_path / "reward_fidelity_scores.parquet")
    budget = {"arch": "resnet20", "epochs": 6, "batch_size": 64, "lr": 0.05, "dataset": "styled-glyphs",
              "dataset_options": {}}
    rows = [{**standalone_table.budget_row(budget), "name": g, "genotype": g, "seed": seed, "val_accuracy": 0.5,
             "test_accuracy": a + seed / 1000} for g, a in (("a", 0.7), ("b", 0.6), ("c", 0.5)) for seed in (0, 1)]
    table = tmp_path / "table.parquet"
    pd.DataFrame(rows).to_parquet(table)
    common = ["--summary", "--variants", "default", "--seeds", "0", "--table", str(table),
              "--runs", str(tmp_path / "runs"), "--outcome-runs", str(tmp_path / "outcome")]
    reward_fidelity.main([*common, "--run", f"landscape={gone}"])
    result = json.loads((tmp_path / "reward_fidelity_against_table.json").read_text())
    assert [row["variant"] for row in result["by_variant"]] == ["landscape"]
    assert result["by_variant"][0]["tau"]["whole_split"]["mean"] == pytest.approx(1.0)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        reward_fidelity.main([*common, "--run", f"other={tmp_path / 'other'}"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.startswith("error: --run other: ")


def test_reward_fidelity_refuses_a_negative_search_seed(capsys):
    import reward_fidelity

    with pytest.raises(SystemExit) as stop:
        reward_fidelity.main(["--seeds", "0", "-1"])
    assert stop.value.code == 2
    assert capsys.readouterr().err == "error: --seeds 0 -1: search seeds are >= 0\n"


def test_channel_scales_recover_a_channel_gate_and_weight_a_spatial_one_by_energy():
    import gate_activity

    x = torch.randn(3, 4, 5, 5, generator=torch.Generator().manual_seed(0))
    gate = torch.rand(3, 4, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(gate_activity.channel_scales(x, x * gate[:, :, None, None]), gate)
    mask = torch.zeros(3, 1, 5, 5)
    mask[..., :2, :] = 1.0  # keeps the first two rows of every channel
    expected = (x[..., :2, :] ** 2).sum(dim=(2, 3)) / (x ** 2).sum(dim=(2, 3))
    assert torch.allclose(gate_activity.channel_scales(x, x * mask), expected)


def test_gate_activity_refuses_a_missing_run_and_an_unknown_module(tmp_path, capsys):
    import gate_activity

    with pytest.raises(SystemExit) as stop:
        gate_activity.main(["--run", str(tmp_path)])
    assert stop.value.code == 2 and "no checkpoints/" in capsys.readouterr().err
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(SystemExit) as stop:
        gate_activity.main(["--run", str(tmp_path), "--standalone", "se", "resnext"])
    assert stop.value.code == 2 and capsys.readouterr().err.startswith("error: --standalone resnext: not a known module")


def test_evaluation_noise_separates_the_network_from_the_images(measures):
    import pandas as pd

    # per seed, in points, orthogonal and zero-mean (Hadamard rows): the network (both sets see it) and
    # each set's images, with opposite signs for the two genotypes, plus a shift every genotype shares
    network, val_images, test_images = [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]
    shift = [3, 0, -1, 0]

    def runs(val_noise: float) -> pd.DataFrame:
        return pd.DataFrame([{"genotype": g, "seed": s,
                              "val_accuracy": (70 + 5 * i + shift[s] + sign * (network[s] + val_noise * val_images[s])) / 100,
                              "test_accuracy": (70 + 5 * i + shift[s] + sign * (network[s] + test_images[s])) / 100}
                             for i, (g, sign) in enumerate([("a", 1), ("b", -1)]) for s in range(4)])

    table = runs(val_noise=1)
    noise = measures.evaluation_noise(table)
    assert noise["val_test_residual_correlation"] == pytest.approx(0.5)  # the network's half; the shift left out
    variance = 16 / 3  # residuals +-2 in 4 of the 8 cells, (2 - 1) x (4 - 1) degrees of freedom
    assert noise["interaction_sd"] == pytest.approx(variance ** 0.5)
    assert noise["interaction_sd_with_10x_test_images"] == pytest.approx((variance * (0.5 + 0.5 / 10)) ** 0.5)
    assert noise["network_interaction_sd"] == pytest.approx((variance / 2) ** 0.5)
    assert noise["test_images_interaction_sd"] == pytest.approx((variance / 2) ** 0.5)
    assert measures.evaluation_noise(table[table["genotype"] == "a"]) == {}  # one genotype: nothing to split
    # a validation set of fewer images is noisier: the correlation falls, the test set's split does not
    noisier = measures.evaluation_noise(runs(val_noise=3))
    assert noisier["val_test_residual_correlation"] < 0.5
    assert noisier["network_interaction_sd"] == pytest.approx(noise["network_interaction_sd"])
    assert noisier["interaction_sd_with_10x_test_images"] == pytest.approx(noise["interaction_sd_with_10x_test_images"])
    # few runs can correlate below 0 by chance: the network then has no share, not a negative one
    opposite = table.assign(val_accuracy=2 * table.groupby("genotype")["test_accuracy"].transform("mean")
                            - table["test_accuracy"])
    noise = measures.evaluation_noise(opposite)
    assert noise["val_test_residual_correlation"] == pytest.approx(-1.0)
    assert noise["evaluation_share_of_interaction_variance"] == 1.0
    assert noise["interaction_sd_with_10x_test_images"] == pytest.approx(noise["interaction_sd"] * 0.1 ** 0.5)


def test_a_shift_every_genotype_shares_is_not_ranking_noise(measures):
    import pandas as pd

    offsets = [-0.01, 0.0, 0.01]  # every genotype moves alike with the seed: sd exactly 1 point
    table = pd.DataFrame([{"genotype": g, "seed": s, "test_accuracy": 0.70 + 0.02 * i + offsets[s]}
                          for i, g in enumerate("abcd") for s in range(3)])
    noise = measures.seed_noise(table)
    assert noise["seed_sd"] == pytest.approx(1.0) and noise["seed_shift_sd"] == pytest.approx(1.0)
    assert noise["interaction_sd"] == pytest.approx(0.0, abs=1e-9)
    assert noise["genotype_sd"] == pytest.approx((20 / 3) ** 0.5)  # the means 70, 72, 74, 76
    assert noise["model"]["rho"][1] == pytest.approx(1.0) and noise["model"]["tau"][1] == pytest.approx(1.0)
    assert measures.seed_tau(table)["mean"] == pytest.approx(1.0)  # what the model now says
    flat = measures.seed_noise(table.assign(test_accuracy=0.5))  # every run alike (e.g. a few images at chance)
    assert flat["interaction_sd"] == 0 and math.isnan(flat["model"]["rho"][1]) and math.isnan(flat["model"]["tau"][1])


def test_seed_noise_of_a_table_with_a_known_interaction(measures):
    import pandas as pd

    crossing = [[1, -1, 0], [-1, 1, 0], [1, -1, 0], [-1, 1, 0]]  # genotype x seed, zero row and column means
    table = pd.DataFrame([{"genotype": g, "seed": s, "test_accuracy": (70 + 2 * i + [2, 0, 0][s] + crossing[i][s]) / 100}
                          for i, g in enumerate("abcd") for s in range(3)])
    noise = measures.seed_noise(table)
    interaction = 8 / 6  # eight residuals of +-1, (4 - 1) x (3 - 1) degrees of freedom
    assert noise["interaction_sd"] == pytest.approx(interaction ** 0.5)
    genotype = 20 / 3 - interaction / 3  # the means 70, 72, 74, 76 (plus the shift), less their own noise
    assert noise["genotype_sd"] == pytest.approx(genotype ** 0.5)
    assert noise["seed_shift_sd"] == pytest.approx((4 / 3 - interaction / 4) ** 0.5)  # seed means 2, 0, 0 apart
    rho = noise["model"]["rho"][1]
    assert rho == pytest.approx(genotype / (genotype + interaction))
    assert noise["model"]["tau"][1] == pytest.approx(2 / math.pi * math.asin(rho))
    needed = math.sin(0.7 * math.pi / 2)
    assert noise["model"]["interaction_sd_for_single_seed_tau_0.7"] == pytest.approx((genotype * (1 / needed - 1)) ** 0.5)
    assert measures.seed_noise(table[table["seed"] == 0]) == {"genotypes": 4, "seeds": 1}


def test_one_far_genotype_swells_the_variance_model_but_not_the_rank_model(measures):
    """Projected from single seeds' ranks, the tau of 4-seed means is what two disjoint 4-seed means give."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    quality = np.r_[rng.normal(0, 1, 40), 8.0]  # 40 near-ties and one genotype far above them
    table = pd.DataFrame([{"genotype": f"g{i}", "seed": s, "test_accuracy": (70 + q + rng.normal(0, 1)) / 100}
                          for i, q in enumerate(quality) for s in range(8)])
    measured = measures.mean_of_seeds_tau(table)[4]["mean"]
    noise = measures.seed_noise(table)
    assert noise["rank_model"]["one_seed_tau"] == pytest.approx(measures.seed_tau(table)["mean"])
    assert noise["rank_model"]["tau"][1] == pytest.approx(noise["rank_model"]["one_seed_tau"])
    assert abs(noise["rank_model"]["tau"][4] - measured) < 0.05
    assert noise["model"]["tau"][4] > measured + 0.15  # the far genotype's variance, read as everyone's spread


def test_the_rank_model_counts_the_seeds_a_mean_needs_for_tau_0_7(measures):
    rho = math.sin(0.42 * math.pi / 2)
    projected = measures.rank_model(0.42)
    assert projected["tau"][6] == pytest.approx(2 / math.pi * math.asin(6 * rho / (1 + 5 * rho)))
    assert projected["tau"][4] < 0.7 <= projected["tau"][6]
    assert projected["seeds_for_tau_0.7"] == 6
    assert measures.rank_model(0.75)["seeds_for_tau_0.7"] == 1
    for chance in (0.0, -0.2, math.nan):  # no agreement to build on: no projection
        assert measures.rank_model(chance)["tau"] == {} and measures.rank_model(chance)["seeds_for_tau_0.7"] is None


def test_finetuning_a_candidate_puts_the_shared_weights_back(tmp_path):
    """Zero steps is the plain whole-split reward; a fine-tuned candidate leaves no trace on the next one."""
    import finetune_fidelity
    from evaluator.config import EvaluatorConfig
    from evaluator.training import SharedTrainingConfig, mean_reward, reward
    from evaluator.worker import Evaluator
    from searchspace import from_key

    torch.set_num_threads(1)
    evaluator = Evaluator(EvaluatorConfig(dataset_options=dict(train_size=128, val_size=96, test_size=32),
                                          data_dir=str(tmp_path), training=SharedTrainingConfig(batch_size=32),
                                          reward_images=64))
    before = {k: v.clone() for k, v in evaluator.supernet.state_dict().items()}
    redrawn = evaluator.initial_supernet(evaluator.config.supernet_seed).state_dict()  # the control's start, init seed 0
    assert all(torch.equal(redrawn[name], tensor) for name, tensor in before.items())
    first, second = "gap|bn|mean|conv7x7", "gap|fc_relu_fc|none|none"
    plain = mean_reward([(reward(evaluator.supernet, from_key(second), x, y), len(y))
                         for x, y in evaluator.data.batches("val", 64, shuffle=False)]).val_accuracy
    assert finetune_fidelity.finetuned_reward(evaluator, second, 0, 0.05).val_accuracy == plain
    alone = finetune_fidelity.finetuned_reward(evaluator, second, 3, 0.05)
    finetune_fidelity.finetuned_reward(evaluator, first, 3, 0.05)
    assert finetune_fidelity.finetuned_reward(evaluator, second, 3, 0.05) == alone
    corrected = finetune_fidelity.finetuned_reward(evaluator, second, 3, 0.05, train="attention_bn", batch_size=16)
    assert corrected.val_loss != alone.val_loss
    for name, tensor in evaluator.supernet.state_dict().items():
        assert torch.equal(tensor, before[name]), name
    assert all(p.requires_grad for p in evaluator.supernet.parameters())  # the correction's freezing is undone
    along = finetune_fidelity.finetuned_rewards(evaluator, second, [3, 0, 5], 0.05, train="attention_bn", batch_size=16)
    assert sorted(along) == [0, 3, 5] and along[0].val_accuracy == plain and along[3] == corrected
    assert along[5] == finetune_fidelity.finetuned_reward(evaluator, second, 5, 0.05, train="attention_bn", batch_size=16)


THREE = ["none|none|none|none", "gap|fc_relu_fc|none|none", "style|bn|none|none"]  # SRM's gate modulates


def test_finetune_summary_keeps_the_scratch_control_apart_and_skips_unfinished_runs():
    import pandas as pd
    import finetune_fidelity

    truth = pd.Series(dict(zip(THREE, [0.7, 0.6, 0.5])))

    def rows(run, steps, accuracies):
        return [{"run": run, "steps": steps, "genotype": g, "accuracy": a, "seconds": 1.0}
                for g, a in zip(THREE, accuracies)]

    scores = pd.DataFrame(rows("/r0", 0, [0.3, 0.2, 0.1]) + rows("/r1", 0, [0.15, 0.3, 0.1]) + rows("/r0", 80, [0.3, 0.2, 0.1])
                          + rows("scratch (initial weights of /r0)", 80, [0.1, 0.2, 0.3]) + rows("/r1", 80, [0.3, 0.2, 0.1])[:2]
                          + rows("scratch-5068642 (init seed 0)", 80, [0.3, 0.2, 0.1]))
    summary = {(row["start"], row["steps"]): row for row in finetune_fidelity.summarise(scores, truth)}
    # /r1 swaps a and b: tau 1/3; their mean (a 0.225, b 0.25, c 0.1) swaps them too
    assert summary[("search", 0)]["tau_mean"] == pytest.approx(2 / 3)
    assert summary[("search", 0)]["tau_of_mean_accuracy"] == pytest.approx(1 / 3)
    assert summary[("search", 80)]["tau_per_run"] == {"/r0": pytest.approx(1.0)}  # /r1 has 2 of 3 genotypes
    assert summary[("scratch", 80)]["tau_mean"] == pytest.approx(-1.0)
    assert summary[("scratch-5068642", 80)]["tau_mean"] == pytest.approx(1.0)  # another draw order, apart


def test_finetune_summary_ranks_by_loss_where_the_rows_have_losses():
    import pandas as pd
    import finetune_fidelity

    truth = pd.Series(dict(zip(THREE, [0.7, 0.6, 0.5])))
    rows = [{"run": "/r0", "steps": 200, "genotype": g, "accuracy": 0.5, "loss": loss, "seconds": 1.0}
            for g, loss in zip(THREE, [0.9, 1.2, 1.0])]  # by loss a, then c, then b: one pair of three swapped
    (row,) = finetune_fidelity.summarise(pd.DataFrame(rows), truth)
    assert row["tau_by_loss_mean"] == pytest.approx(1 / 3)
    (old,) = finetune_fidelity.summarise(pd.DataFrame(rows).assign(loss=float("nan")), truth)
    assert "tau_by_loss_mean" not in old  # rows of earlier versions kept no loss


def test_finetune_summary_says_where_the_ranking_is_won_or_lost_by_gate_family():
    """Tau within the near-identity and the modulating genotypes, and each family's mean score, beside
    the stand-alone side: each family's mean and what one seed ranks within it."""
    import itertools
    import pandas as pd
    import finetune_fidelity
    from scipy import stats

    near = ["none|none|none|none", "gap|fc_relu_fc|none|none", "dct|fc_relu_fc|none|none"]
    modulating = ["style|bn|none|none", "gap|bn|mean|conv7x7", "lse|bn|lse|none"]
    truth = pd.Series(dict(zip(near + modulating, [0.72, 0.73, 0.74, 0.75, 0.73, 0.71])))
    # near-identity ranked right and scored high; the modulating ones low and in the reverse order
    scores = pd.DataFrame([{"run": "/r0", "steps": 0, "genotype": g, "accuracy": a, "loss": 2 - a, "seconds": 1.0}
                           for g, a in zip(near + modulating, [0.61, 0.62, 0.63, 0.50, 0.52, 0.54])])
    (row,) = finetune_fidelity.summarise(scores, truth)
    family = row["by_gate_family"]
    assert family["tau_per_run"] == [[pytest.approx(1.0)], [pytest.approx(-1.0)]]
    assert family["tau_by_loss_per_run"] == family["tau_per_run"]
    assert family["score_mean_points"] == [pytest.approx(62.0), pytest.approx(52.0)]
    # every seed ranks both families as the truth does: one seed against the rest at 1
    runs = pd.DataFrame([{"genotype": g, "seed": s, "test_accuracy": truth[g] + 0.001 * s}
                         for g in near + modulating for s in range(3)])
    families = finetune_fidelity.gate_families(runs)
    assert families["genotypes"] == [3, 3]
    assert families["truth_mean_points"] == [pytest.approx(73.1), pytest.approx(73.1)]
    assert families["one_seed_against_rest_tau"] == [pytest.approx(1.0), pytest.approx(1.0)]
    # the order inside one family of 3 shuffled: the 6 orders are equally likely, so the draws' mean
    # is their average (enumerated here) and the truth's own order (1 in 6) is at the top
    means = runs.groupby("genotype")["test_accuracy"].mean()
    for family, members in enumerate([near, modulating]):
        exact = []
        for order in itertools.permutations(members):
            ranking = means.copy()
            ranking[list(members)] = means[list(order)].to_numpy()
            exact.append(stats.kendalltau(ranking, means).statistic)
        shuffled = families["tau_with_order_random_within"][family]
        assert shuffled["mean"] == pytest.approx(sum(exact) / 6, abs=0.02)
        assert shuffled["p95"] == pytest.approx(1.0)


def test_finetune_summary_says_where_each_run_ranks_the_best_known_module():
    """SRM is first stand-alone among the known modules here; each run's rank of it, 1 = best."""
    import pandas as pd
    import finetune_fidelity
    from searchspace import KNOWN

    srm, se, none = KNOWN["srm"].key, KNOWN["se"].key, KNOWN["none"].key
    truth = pd.Series({srm: 0.75, se: 0.73, none: 0.72, "gap|bn|mean|conv7x7": 0.74})
    keys = list(truth.index)
    scores = pd.DataFrame([{"run": run, "steps": 0, "genotype": g, "accuracy": a, "loss": loss, "seconds": 1.0}
                           for run, accuracies, losses in (("/r0", [0.60, 0.62, 0.64, 0.61], [1.0, 1.1, 1.2, 0.9]),
                                                           ("/r1", [0.70, 0.62, 0.64, 0.61], [1.3, 1.1, 1.2, 0.9]))
                           for g, a, loss in zip(keys, accuracies, losses)])
    (row,) = finetune_fidelity.summarise(scores, truth)
    found = row["best_known_rank"]
    assert found["best_known"] == "srm"
    assert found["rank_by_accuracy_per_run"] == {"/r0": 4, "/r1": 1}
    assert found["rank_by_loss_per_run"] == {"/r0": 2, "/r1": 4}


def test_the_pooled_estimate_recovers_planted_op_effects_from_synthetic_rewards():
    """Rewards made of one planted effect per op plus noise: the ridge fit ranks genotypes it never saw
    as their planted sums do, and gets each decision's ops in the planted order."""
    import numpy as np
    import pandas as pd
    import derive_measures
    from scipy import stats
    from searchspace import all_genotypes

    rng = np.random.default_rng(0)
    space = [g.key for g in all_genotypes()]
    ops = pd.DataFrame([key.split("|") for key in space])
    effect = {(d, op): rng.normal(0, 0.02) for d in range(4) for op in ops[d].unique()}

    def planted(keys):
        return np.array([sum(effect[(d, op)] for d, op in enumerate(key.split("|"))) for key in keys])

    order = rng.permutation(len(space))
    seen, unseen = [space[i] for i in order[:400]], [space[i] for i in order[400:600]]
    log = pd.DataFrame({"genotype": seen, "status": "ok",
                        "reward": 0.6 + planted(seen) + rng.normal(0, 0.01, len(seen))})
    log.loc[0, ["status", "reward"]] = ["nan", -5.0]  # a failed reward is left out of the fit
    estimate = derive_measures.pooled_estimate(log, unseen, 0.1)
    assert stats.kendalltau(estimate, planted(unseen)).statistic > 0.85
    for d in range(4):  # each op alone against the decision's first op, everything else equal
        names = sorted(ops[d].unique())
        base = unseen[0].split("|")
        probes = ["|".join(base[:d] + [op] + base[d + 1:]) for op in names]
        assert stats.kendalltau(derive_measures.pooled_estimate(log, probes, 0.1),
                                [effect[(d, op)] for op in names]).statistic > 0.8


@pytest.mark.parametrize("argv, message", [
    (["--top", "1"], "--top 1: at least 2 (rank 1 and one to compare with it)"),
    (["--runs", "{tmp}"], "--runs {tmp}: no candidates.parquet (the search has not finished its derive stage)")])
def test_derive_separation_refuses_what_it_cannot_measure_in_one_line(tmp_path, capsys, argv, message):
    import derive_separation

    with pytest.raises(SystemExit) as stop:
        derive_separation.main([a.format(tmp=tmp_path) for a in argv])
    assert stop.value.code == 2
    assert capsys.readouterr().err == f"error: {message.format(tmp=tmp_path)}\n"


def test_finetune_fidelity_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    import finetune_fidelity

    with pytest.raises(SystemExit) as stop:
        finetune_fidelity.main(["--runs", str(tmp_path)])
    assert stop.value.code == 2
    assert capsys.readouterr().err == f"error: --runs {tmp_path}: not a search's run directory (no checkpoints/)\n"


def test_finetune_ground_truth_joins_tables_and_refuses_one_that_is_not_a_table(tmp_path, capsys):
    import pandas as pd
    import finetune_fidelity

    table, winners, bad = tmp_path / "table.parquet", tmp_path / "winners.parquet", tmp_path / "bad.parquet"
    pd.DataFrame({"genotype": ["a", "a", "b"], "seed": [0, 1, 0], "test_accuracy": [0.7, 0.8, 0.6]}).to_parquet(table)
    # a winner that is also in the table keeps its runs once; a new one joins
    pd.DataFrame({"genotype": ["a", "c"], "seed": [1, 0], "test_accuracy": [0.8, 0.5]}).to_parquet(winners)
    truth = finetune_fidelity.ground_truth([table, winners])
    assert truth.to_dict() == pytest.approx({"a": 0.75, "b": 0.6, "c": 0.5})
    pd.DataFrame({"genotype": ["a"], "accuracy": [0.5]}).to_parquet(bad)
    for path, message in [(bad, "want the columns genotype, seed and test_accuracy (a stand-alone table)"),
                          (tmp_path / "missing.parquet", "no such stand-alone table")]:
        with pytest.raises(SystemExit) as stop:
            finetune_fidelity.ground_truth([path])
        assert stop.value.code == 2
        assert capsys.readouterr().err == f"error: --truth {path}: {message}\n"


def test_search_outcome_markdown_names_a_missing_result_and_exits_2(capsys):
    with pytest.raises(SystemExit) as stop:
        search_outcome.main(["--markdown", "no-such-result"])
    assert stop.value.code == 2
    assert "--markdown no-such-result: no result file" in capsys.readouterr().err


def known_modules_table(tmp_path, budget):
    """table_2b.parquet: none, SRM and SE at ``budget``, seeds 0 and 1 (SRM best, 74 %; SE 72 %)."""
    import pandas as pd
    import standalone_table
    from searchspace import KNOWN

    rows = [{**standalone_table.budget_row(budget), "name": n, "genotype": KNOWN[n].key, "seed": seed,
             "val_accuracy": a, "test_accuracy": a + seed / 1000}
            for n, a in (("none", 0.70), ("srm", 0.74), ("se", 0.72)) for seed in (0, 1)]
    table = tmp_path / "table_2b.parquet"
    pd.DataFrame(rows).to_parquet(table)
    return table


def test_search_outcome_judges_by_another_table_at_that_tables_budget(tmp_path, monkeypatch, capsys):
    """--table: the reference and the winners' budget are the table's; a winner the table holds is
    copied, not trained; the result is search_outcome_against_<table>.json."""
    import json
    import pandas as pd
    import yaml
    from searchspace import KNOWN

    monkeypatch.setattr(search_outcome, "RESULTS", tmp_path)
    budget = {"arch": "resnet20", "epochs": 12, "batch_size": 64, "lr": 0.05, "dataset": "styled-glyphs",
              "dataset_options": {"test_size": 20000}}
    table = known_modules_table(tmp_path, budget)
    out = tmp_path / "runs" / "default" / "rl-seed0"  # a finished search whose winner is se
    out.mkdir(parents=True)
    (out / "winner.json").write_text(KNOWN["se"].to_json())
    (out / "config.yaml").write_text(yaml.safe_dump({"warmup_rounds": 0}))
    search_outcome.main(["--table", str(table), "--runs", str(tmp_path / "runs"), "--policies", "rl",
                         "--seeds", "1", "--standalone-seeds", "2"])
    result = json.loads((tmp_path / "search_outcome_against_table_2b.json").read_text())
    assert result["settings"]["standalone_budget"] == budget and result["complete"]
    assert result["runs"][0]["standalone_mean"] == pytest.approx(72.05)  # se's two seeds, from the table
    assert result["best_known"]["name"] == "srm"
    assert result["rl_minus_best_known"]["difference"] == pytest.approx(-2.0)
    assert len(pd.read_parquet(tmp_path / "search_outcome_against_table_2b_standalone.parquet")) == 2
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        search_outcome.main(["--table", str(tmp_path / "missing.parquet"), "--runs", str(tmp_path / "runs")])
    assert stop.value.code == 2
    assert capsys.readouterr().err == f"error: --table {tmp_path / 'missing.parquet'}: no such table\n"


def test_search_outcome_runs_a_named_config_in_its_own_folder_and_result(tmp_path, monkeypatch, capsys):
    """--config likelihood: the searches run with that config, in RUNS/likelihood, and the result is
    search_outcome_likelihood_<...>.json; a config that does not exist is refused in one line."""
    import json
    import yaml
    import standalone_table
    from searchspace import KNOWN

    monkeypatch.setattr(search_outcome, "RESULTS", tmp_path)
    commands = []
    monkeypatch.setattr(search_outcome.subprocess, "run", lambda command, **_: commands.append(command))
    search_outcome.run_search(tmp_path / "new" / "rl-seed1", "rl", 1, {}, tmp_path / "seconds.json", base="likelihood")
    assert commands[0][-2:] == ["--config", "likelihood"] and "--resume" not in commands[0]
    budget = standalone_table.make_budget(False)
    table = known_modules_table(tmp_path, budget)
    out = tmp_path / "runs" / "likelihood" / "rl-seed0"
    out.mkdir(parents=True)
    (out / "winner.json").write_text(KNOWN["se"].to_json())
    (out / "config.yaml").write_text(yaml.safe_dump({"warmup_rounds": 0, "evaluator": {"reward_metric": "likelihood"}}))
    search_outcome.main(["--config", "likelihood", "--table", str(table), "--runs", str(tmp_path / "runs"),
                         "--policies", "rl", "--seeds", "1", "--standalone-seeds", "2"])
    assert len(commands) == 1  # the finished search is not run again
    result = json.loads((tmp_path / "search_outcome_likelihood_against_table_2b.json").read_text())
    assert result["settings"]["search"] == "--config likelihood" and result["complete"]
    assert result["rl_minus_best_known_paired"]["mean"] == pytest.approx(-2.0)  # se against srm, seed by seed
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        search_outcome.main(["--config", "no-such-config", "--runs", str(tmp_path / "runs")])
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("error: --config: config 'no-such-config'") and error.count("\n") == 1


def test_search_outcome_takes_a_search_whose_directory_is_gone_from_its_result(tmp_path, monkeypatch):
    """Run directories are not kept in git: in a fresh checkout a search the result file records with
    the same config is not run again; one recorded under another config is."""
    import json
    import yaml
    import standalone_table
    from searchspace import KNOWN

    monkeypatch.setattr(search_outcome, "RESULTS", tmp_path)
    commands = []
    monkeypatch.setattr(search_outcome.subprocess, "run", lambda command, **_: commands.append(command))
    budget = standalone_table.make_budget(False)
    table = known_modules_table(tmp_path, budget)
    out = tmp_path / "runs" / "likelihood" / "rl-seed0"
    out.mkdir(parents=True)
    (out / "winner.json").write_text(KNOWN["se"].to_json())
    (out / "config.yaml").write_text(yaml.safe_dump({"warmup_rounds": 0}))
    args = ["--config", "likelihood", "--table", str(table), "--runs", str(tmp_path / "runs"), "--policies", "rl",
            "--seeds", "1", "--standalone-seeds", "2"]
    search_outcome.main(args)
    path = tmp_path / "search_outcome_likelihood_against_table_2b.json"
    first = json.loads(path.read_text())
    assert first["runs"][0]["config_digest"] == search_outcome.config_digest("likelihood", {})

    for item in out.iterdir():  # the checkout is fresh: the run directory is gone
        item.unlink()
    out.rmdir()
    search_outcome.main(args)
    again = json.loads(path.read_text())
    assert commands == [] and again["runs"] == first["runs"] and again["complete"]

    stale = {**first, "runs": [{**first["runs"][0], "config_digest": "another config"}]}
    path.write_text(json.dumps(stale))
    from searchspace.genotype import GenotypeError
    with pytest.raises(GenotypeError, match="winner.json: cannot read"):  # searched again: the stub writes none
        search_outcome.main(args)
    assert len(commands) == 1 and commands[0][-2:] == ["--config", "likelihood"]


def test_the_rank_model_gives_the_ceiling_of_a_mean_ground_truth(measures):
    """The true ranking against a 12-seed mean agrees as the model projects from single seeds' tau."""
    import numpy as np
    import pandas as pd
    from scipy import stats

    rng = np.random.default_rng(1)
    quality = rng.normal(0, 1, 400)
    table = pd.DataFrame([{"genotype": f"g{i}", "seed": s, "test_accuracy": (70 + q + rng.normal(0, 1.2)) / 100}
                          for i, q in enumerate(quality) for s in range(12)])
    mean = table.groupby("genotype")["test_accuracy"].mean()
    truth = pd.Series(quality, index=[f"g{i}" for i in range(len(quality))]).loc[mean.index]
    measured = stats.kendalltau(truth, mean).statistic
    projected = measures.rank_model(measures.seed_tau(table)["mean"])
    assert abs(projected["noiseless_against_mean_tau"][12] - measured) < 0.03
    assert projected["noiseless_against_mean_tau"][1] > projected["tau"][1]  # a truth beats a second seed
    assert measures.rank_model(0.0)["noiseless_against_mean_tau"] == {}


def test_a_variant_says_where_its_ranking_is_won_or_lost_per_gate_family():
    """Within the near-identity and within the modulating genotypes, per run, from derive-stage scores."""
    import pandas as pd
    import supernet_variants

    near = ["none|none|none|none", "gap|fc_relu_fc|none|none", "dct|fc_relu_fc|none|none"]
    modulating = ["style|bn|none|none", "gap|eca|none|none", "gap|bn|mean|conv7x7"]
    truth = pd.Series([1.0, 2.0, 3.0, 1.0, 2.0, 3.0], index=near + modulating)
    losses = [3.0, 2.0, 1.0, 1.0, 2.0, 3.0]  # the near-identity order right, the modulating one reversed
    found = pd.DataFrame({"val_accuracy": [0.5] * 6, "val_loss": losses}, index=pd.Index(near + modulating, name="genotype"))
    measures = supernet_variants.by_gate_family({Path("runs/a"): found, Path("runs/b"): found}, truth)
    assert measures["tau_by_loss_per_run"] == [[1.0, 1.0], [-1.0, -1.0]]
    assert measures["score_mean_points"] == [50.0, 50.0]
