"""The stand-alone table's own logic: which genotypes it trains, its resume rule, and its summary arithmetic."""
from __future__ import annotations

import json
import math
import os
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import measures  # noqa: E402
import standalone_table  # noqa: E402
from searchspace import KNOWN, from_key  # noqa: E402


def test_difference_is_the_mean_gap_with_welchs_standard_error():
    result = measures.difference([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    assert result["difference"] == pytest.approx(2.0)
    assert result["standard_error"] == pytest.approx(math.sqrt(1 / 3))  # var(a) = 1, var(b) = 0, n = 3
    assert result["z"] == pytest.approx(2.0 / math.sqrt(1 / 3))
    one = measures.difference([1.0], [0.0, 1.0])
    assert one["difference"] == pytest.approx(0.5) and math.isnan(one["standard_error"])


def test_seed_tau_on_known_permutations():
    rows = []
    for seed, accuracies in enumerate([[1, 2, 3, 4], [1, 2, 4, 3], [4, 3, 2, 1]]):
        rows += [{"genotype": f"g{i}", "seed": seed, "test_accuracy": a} for i, a in enumerate(accuracies)]
    tau = measures.seed_tau(pd.DataFrame(rows))
    by_pair = {tuple(p["seeds"]): p["tau"] for p in tau["pairs"]}
    assert by_pair[(0, 1)] == pytest.approx(4 / 6)  # one discordant pair of six
    assert by_pair[(0, 2)] == pytest.approx(-1.0)
    assert by_pair[(1, 2)] == pytest.approx(-4 / 6)
    assert tau["mean"] == pytest.approx(-1 / 3)


def test_leaving_out_the_one_far_genotype_shows_it_carried_the_seed_tau():
    values = {"g0": [3, 1], "g1": [2, 2], "g2": [1, 3], "far": [-10, -10]}  # the seeds reverse g0-g2; far is last in both
    table = pd.DataFrame([{"genotype": g, "seed": s, "test_accuracy": v}
                          for g, row in values.items() for s, v in enumerate(row)])
    assert measures.seed_tau(table)["mean"] == pytest.approx(0.0)  # 3 concordant pairs with far, 3 discordant
    result = measures.seed_tau_without_each(table)
    assert result["lowest_without"] == "far" and result["min"] == pytest.approx(-1.0)
    assert result["per_genotype"]["g1"] == pytest.approx(1 / 3) and result["max"] == pytest.approx(1 / 3)
    assert measures.seed_tau_without_each(table[table["genotype"] != "far"]) == {}  # 3 genotypes: 2 left is no ranking


def test_a_table_being_extended_is_read_over_the_seeds_every_genotype_has():
    values = {"a": [0, 0, 0, 5], "b": [1, 1, 1, 4], "c": [2, 2, 2, 3], "d": [3, 3, 3, None]}  # seed 3 lacks d
    table = pd.DataFrame([{"name": g, "genotype": g, "seed": s, "test_accuracy": v}
                          for g, row in values.items() for s, v in enumerate(row) if v is not None])
    result = standalone_table.over_complete_seeds(table)
    assert result["seeds"] == [0, 1, 2] and result["seed_tau"] == pytest.approx(1.0)
    assert result["mean_of_seeds_tau"][1]["mean"] == pytest.approx(1.0)
    assert measures.seed_tau(table)["mean"] < 1.0  # the partial seed's pairs (a, b, c reversed) pull the whole-table tau down
    assert standalone_table.over_complete_seeds(table[table["seed"] < 3]) == {}


def test_mean_of_seeds_tau_splits_the_seeds_into_disjoint_halves():
    values = {"a": [0, 0, 0, 0], "b": [1, 1, 1, 1], "c": [2, 2, 2, -10]}  # seed 3 puts c last
    table = pd.DataFrame([{"genotype": g, "seed": s, "test_accuracy": v}
                          for g, row in values.items() for s, v in enumerate(row)])
    result = measures.mean_of_seeds_tau(table)
    assert sorted(result) == [1, 2]
    assert result[1]["mean"] == pytest.approx(measures.seed_tau(table)["mean"]) == pytest.approx(1 / 3)
    assert result[1]["splits"] == 6 and result[1]["min"] == pytest.approx(-1 / 3) and result[1]["max"] == pytest.approx(1.0)
    # every split of 4 seeds into two pairs holds seed 3 on one side: c's mean is -4 there, 2 on the other
    assert result[2] == {"mean": pytest.approx(-1 / 3), "min": pytest.approx(-1 / 3), "max": pytest.approx(-1 / 3),
                         "splits": 3, "genotypes": 3}
    partial = measures.mean_of_seeds_tau(table[~((table["genotype"] == "c") & (table["seed"] == 3))])
    assert sorted(partial) == [1]  # with c missing at seed 3 no split of two pairs has 3 genotypes


def test_known_modules_come_first_then_distinct_canonical_genotypes():
    picks = standalone_table.pick_genotypes(24, seed=0, landscape=None)
    assert len(picks) == 24 and len({key for _, key in picks}) == 24
    assert [name for name, _ in picks[: len(KNOWN)]] == list(KNOWN)
    for _, key in picks[len(KNOWN):]:
        assert from_key(key).key == key  # canonical
    assert picks == standalone_table.pick_genotypes(24, seed=0, landscape=None)  # seeded
    assert picks != standalone_table.pick_genotypes(24, seed=1, landscape=None)
    small = standalone_table.pick_genotypes(4, seed=0, landscape=None)
    assert [name for name, _ in small[:3]] == list(KNOWN)[:3] and len(small) == 4


def test_genotypes_spread_over_a_landscape_skip_known_and_failed_ones(tmp_path):
    keys = sorted(g.key for g in map(from_key, ["gap|eca|none|none", "gmp|eca|none|none", "gem|eca|none|none",
                                                   "lse|eca|none|none", "gap|fc_relu_fc|none|none"]))
    table = pd.DataFrame({"genotype": keys, "val_accuracy": [0.1, 0.2, 0.3, 0.4, 0.5],
                          "status": ["ok", "ok", "nan", "ok", "ok"]})
    path = tmp_path / "landscape.parquet"
    table.to_parquet(path)
    picks = standalone_table.pick_genotypes(len(KNOWN) + 2, seed=0, landscape=standalone_table.load_landscape(path))
    others = [key for name, key in picks if name.startswith("quantile")]
    known = {g.key for g in KNOWN.values()}
    eligible = [k for k, s in zip(keys, table["status"]) if s == "ok" and k not in known]
    assert others == [eligible[0], eligible[-1]]  # the lowest and the highest


def test_extend_keeps_the_tables_genotypes_and_plans_the_same_table_when_resumed():
    held = pd.DataFrame({"name": ["none", "none", "random-00"], "seed": [0, 1, 0],
                         "genotype": [KNOWN["none"].key, KNOWN["none"].key, "gap|eca|none|none"]})
    picks = [("none", KNOWN["none"].key), ("se", KNOWN["se"].key), ("quantile-00", "gap|eca|none|none"),
             ("quantile-01", "gmp|eca|none|none")]
    plan = standalone_table.extended(picks, held)
    assert plan == [("none", KNOWN["none"].key), ("random-00", "gap|eca|none|none"), ("se", KNOWN["se"].key),
                    ("quantile-01", "gmp|eca|none|none")]
    later = pd.concat([held, pd.DataFrame({"name": ["se", "quantile-01"], "seed": [0, 0],
                                           "genotype": [KNOWN["se"].key, "gmp|eca|none|none"]})])
    assert standalone_table.extended(picks, later) == plan
    assert standalone_table.extended(picks, pd.DataFrame()) == picks


def row(name: str, seed: int, accuracy: float, budget: dict) -> dict:
    genotype = KNOWN[name].key if name in KNOWN else name  # a drawn genotype stands for its own key
    return {"name": name, "genotype": genotype, "seed": seed, "test_accuracy": accuracy,
            "val_accuracy": accuracy, "train_accuracy": accuracy + 0.05, "params": 1, "macs": 1,
            "wall_time_s": 1.0, **standalone_table.budget_row(budget)}


BUDGET = {"arch": "resnet20", "epochs": 6, "batch_size": 64, "lr": 0.05, "dataset": "styled-glyphs",
          "dataset_options": {}}


def test_a_table_of_another_budget_is_refused_and_one_of_the_same_is_resumed(tmp_path, capsys):
    path = tmp_path / "table.parquet"
    standalone_table.write_table(pd.DataFrame([row("none", 0, 0.5, BUDGET)]), path)
    assert len(standalone_table.read_table(path, BUDGET)) == 1
    with pytest.raises(SystemExit) as stop:
        standalone_table.read_table(path, {**BUDGET, "epochs": 7})
    assert stop.value.code == 2 and "epochs=['6'], not 7" in capsys.readouterr().err
    assert len(standalone_table.read_table(path, BUDGET)) == 1  # nothing lost


def test_the_landscape_is_judged_by_the_seed_means_of_the_genotypes_it_spread():
    spread = ["gap|eca|none|none", "gmp|eca|none|none", "gem|eca|none|none"]
    table = pd.DataFrame([row(name, s, accuracy + s / 1000, BUDGET)  # seeds shift, never reorder
                          for name, accuracy in (("none", 0.70), ("se", 0.60), (spread[0], 0.50),
                                                 (spread[1], 0.65), (spread[2], 0.80)) for s in range(2)])
    landscape = pd.DataFrame({"genotype": [KNOWN["none"].key, KNOWN["se"].key, *spread, "lse|eca|none|none"],
                              "val_accuracy": [0.1, 0.9, 0.2, 0.3, 0.4, 0.99],
                              "status": ["ok", "ok", "ok", "ok", "ok", "ok"]})
    result = standalone_table.against_landscape(table, landscape)
    assert result["spread_genotypes"] == 3 and result["tau_spread"] == pytest.approx(1.0)
    assert result["genotypes"] == 5 and result["landscape_range"] == [0.1, 0.9]  # lse: not in the table
    assert result["tau"] == pytest.approx(0.0)  # none last and se first by the landscape: 5 of 10 pairs reversed
    failed = landscape.assign(status=["ok", "ok", "nan", "ok", "ok", "ok"])
    assert standalone_table.against_landscape(table, failed)["tau_spread"] is None  # 2 genotypes: no tau


def test_a_table_beside_another_budget_compares_only_the_runs_both_hold(tmp_path, capsys):
    names, crossing = ["none", "se", "srm", "ge"], [[1, -1, 0], [-1, 1, 0], [1, -1, 0], [-1, 1, 0]]
    shorter = pd.DataFrame([row(n, s, (70 + 2 * i + crossing[i][s]) / 100, BUDGET)
                            for i, n in enumerate(names) for s in range(3)])
    longer_budget = {**BUDGET, "epochs": 12}
    longer = pd.DataFrame([row(n, s, (72 + 3 * i) / 100, longer_budget)  # no noise, spread 1.5x, +2 points
                           for i, n in enumerate(names) for s in range(3)] + [row("cbam", 0, 0.9, longer_budget)])
    result = standalone_table.against(longer, shorter)
    assert result["runs"] == 12 and result["genotypes"] == 4  # cbam: the shorter table has no run of it
    assert result["other_budget"]["epochs"] == 6 and result["other_budget"]["dataset_options"] == "{}"
    assert result["mean_change_points"] == pytest.approx({"none": 2.0, "se": 3.0, "srm": 4.0, "ge": 5.0})
    assert result["seed_noise_points"]["this"]["interaction_sd"] == pytest.approx(0.0, abs=1e-9)
    assert result["seed_noise_points"]["other"]["interaction_sd"] == pytest.approx((8 / 6) ** 0.5)
    assert result["seed_tau"]["this"]["mean"] == pytest.approx(1.0) and result["tau_between_budgets"] == pytest.approx(1.0)

    path, other = tmp_path / "long.parquet", tmp_path / "short.parquet"
    standalone_table.write_table(longer, path)
    with pytest.raises(SystemExit) as stop:
        standalone_table.main(["--summary", "--epochs", "12", "--out", str(path), "--against", str(other)])
    assert stop.value.code == 2 and capsys.readouterr().err == f"error: --against {other}: no such table\n"
    for wrong, why in ((pd.DataFrame({"genotype": ["se"], "accuracy": [0.7]}), "not a stand-alone table (no column"),
                       (None, "not a Parquet file")):
        if wrong is None:
            other.write_text("genotype,seed\nse,0\n")
        else:
            wrong.to_parquet(other)
        with pytest.raises(SystemExit) as stop:
            standalone_table.main(["--summary", "--epochs", "12", "--out", str(path), "--against", str(other)])
        error = capsys.readouterr().err
        assert stop.value.code == 2 and error.startswith(f"error: --against {other}: {why}") and error.count("\n") == 1
    standalone_table.write_table(shorter, other)
    standalone_table.main(["--summary", "--epochs", "12", "--out", str(path), "--against", str(other)])
    written = json.loads(path.with_suffix(".json").read_text())
    assert written["against"]["table"] == str(other) and written["against"]["runs"] == 12
    assert path.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the figure beside the JSON
    assert standalone_table.tau_figure_path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # tau by seeds averaged
    assert standalone_table.figure_title(written) == "resnet20, 12 epochs: 13 of 72 runs, seed tau 1.00"
    partial = {**written, "seed_tau": {"mean": 0.6, "pairs": [{"seeds": [0, 1], "genotypes": 20, "tau": 0.5},
                                                              {"seeds": [0, 2], "genotypes": 9, "tau": 0.7}]}}
    assert standalone_table.figure_title(partial).endswith("runs, seed tau by pair 0.50 (20), 0.70 (9)")


def test_the_figure_ranks_genotypes_by_their_mean_over_seeds():
    import standalone_figure

    table = pd.DataFrame([row(n, s, a / 100, BUDGET) for n, runs in (("se", (70, 74)), ("none", (73, 72)),
                                                                      ("srm", (75, 71))) for s, a in enumerate(runs)])
    assert [name for name, _ in standalone_figure.ranked(table)] == ["srm", "none", "se"]  # 73.0, 72.5, 72.0


def test_runs_start_with_the_known_modules_gain_seeds_then_go_seed_by_seed():
    picks = [("none", "none|none|none|none"), ("se", "gap|fc_relu_fc|none|none"), ("random-00", "gem|eca|lse|strip")]
    order = [(name, seed) for name, _, seed in standalone_table.run_order(picks, seeds=5)]
    assert order[:6] == [("none", 0), ("none", 1), ("none", 2), ("se", 0), ("se", 1), ("se", 2)]
    assert order[6:] == [("random-00", 0), ("random-00", 1), ("random-00", 2),
                         ("none", 3), ("se", 3), ("random-00", 3), ("none", 4), ("se", 4), ("random-00", 4)]
    assert len(set(order)) == 15
    assert [(n, s) for n, _, s in standalone_table.run_order(picks, seeds=2)][:4] == [
        ("none", 0), ("none", 1), ("se", 0), ("se", 1)]


def test_only_keeps_the_named_genotypes_in_the_plans_order_and_refuses_an_unknown_name(tmp_path, capsys):
    picks = standalone_table.pick_genotypes(24, seed=0, landscape=None)
    chosen = standalone_table.only(picks, ["random-08", "srm", "none"])
    assert chosen == [p for p in picks if p[0] in ("none", "srm", "random-08")]  # the plan's order, not the caller's
    assert [name for name, _ in chosen] == ["none", "srm", "random-08"]
    out = tmp_path / "pilot.parquet"
    with pytest.raises(SystemExit) as stop:
        standalone_table.main(["--only", "srm", "sre", "--out", str(out)])
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("error: --only: no planned genotype is called sre (planned: none, se,")
    assert error.count("\n") == 1 and not out.exists()


def test_a_missing_or_malformed_landscape_is_one_error_line_and_exit_code_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        standalone_table.main(["--landscape", str(tmp_path / "none.parquet"), "--out", str(tmp_path / "t.parquet")])
    assert stop.value.code == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'none.parquet'}: no such landscape file\n"
    bad, out = tmp_path / "bad.parquet", tmp_path / "t.parquet"
    standalone_table.write_table(pd.DataFrame([row("none", 0, 0.5, BUDGET)]), out)
    for content, why in ((None, "not a Parquet file ("), (pd.DataFrame({"genotype": ["se"]}), "not a supernet landscape (no column val_accuracy, status)")):
        if content is None:
            bad.write_text("genotype,val_accuracy\n")
        else:
            content.to_parquet(bad)
        with pytest.raises(SystemExit) as stop:
            standalone_table.main(["--extend", "--landscape", str(bad), "--out", str(out)])
        error = capsys.readouterr().err
        assert stop.value.code == 2 and error.startswith(f"error: --landscape {bad}: {why}") and error.count("\n") == 1
    assert len(pd.read_parquet(out)) == 1  # the table already written is kept


def test_summary_finds_the_best_known_module_and_judges_the_targets():
    accuracies = {"none": [0.80, 0.81, 0.79], "se": [0.83, 0.84, 0.82], "eca": [0.80, 0.80, 0.81]}
    table = pd.DataFrame([row(name, seed, a, BUDGET) for name, values in accuracies.items()
                          for seed, a in enumerate(values)])
    summary = standalone_table.summarise(table)
    assert summary["best_known"] == "se"
    se = summary["known_against_none_points"]["se"]
    assert se["difference"] == pytest.approx(3.0)
    assert se["standard_error"] == pytest.approx(math.sqrt(2 * 1.0 / 3))  # both sides: var 1 point^2, n 3
    assert summary["targets"]["best known beats none by >= 1.0 point and > 2 standard errors"]
    assert summary["targets"]["none below 97 %"]
    assert summary["none_train_minus_val_points"] == pytest.approx(5.0)


def test_the_summary_gives_the_known_modules_and_the_spread_genotypes_their_own_ceiling():
    # known modules rank alike at both seeds; the two drawn genotypes swap places
    accuracies = {"none": [0.70, 0.71], "se": [0.75, 0.76], "eca": [0.80, 0.81],
                  "random-00": [0.72, 0.74], "random-01": [0.73, 0.725], "random-02": [0.60, 0.61]}
    table = pd.DataFrame([row(name, seed, a, BUDGET) for name, values in accuracies.items()
                          for seed, a in enumerate(values)])
    groups = standalone_table.summarise(table)["by_group"]
    assert set(groups) == {"known_modules", "spread_genotypes"}
    assert groups["known_modules"]["genotypes"] == 3 and groups["known_modules"]["runs"] == 6
    assert groups["known_modules"]["seed_tau"]["mean"] == pytest.approx(1.0)
    assert groups["spread_genotypes"]["seed_tau"]["mean"] == pytest.approx(1 / 3)  # one of 3 pairs discordant
    assert groups["spread_genotypes"]["seed_noise_points"]["genotypes"] == 3


def test_a_partial_table_does_not_judge_the_tau_target_yet():
    table = pd.DataFrame([row(name, seed, 0.8 + 0.01 * seed + (0.02 if name == "se" else 0), BUDGET)
                          for name in ("none", "se", "eca") for seed in range(3)])
    partial = standalone_table.summarise(table, planned_runs=72)
    assert partial["complete"] is False and partial["targets"]["seed-against-seed tau >= 0.7"] is None
    assert standalone_table.summarise(table, planned_runs=9)["complete"] is True


def test_the_markdown_table_lists_genotypes_best_first_with_mean_and_sd():
    accuracies = {"none": [0.80, 0.82], "se": [0.84, 0.86]}
    table = pd.DataFrame([row(name, seed, a, BUDGET) for name, values in accuracies.items()
                          for seed, a in enumerate(values)])
    lines = standalone_table.markdown(standalone_table.summarise(table)).splitlines()
    assert lines[0].startswith("| rank | name | genotype |") and len(lines) == 4
    assert lines[2].startswith(f"| 1 | se | `{KNOWN['se'].key}` | 85.00 ± 1.41 | 2 |")
    assert lines[3].startswith("| 2 | none |")


def test_the_markdown_table_reads_a_one_seed_row_from_the_json_file_too():
    """The JSON file holds a one-seed genotype's sd as null (strict JSON has no NaN)."""
    row_ = {"name": "se", "genotype": KNOWN["se"].key, "test_mean": 0.8, "test_sd": None, "seeds": 1,
            "params": 1000, "macs": 2e6}
    assert standalone_table.markdown({"per_genotype": [row_]}).splitlines()[2].endswith("| 80.00 | 1 | 1,000 | 2.0 |")


def let_ray_workers_import_the_benchmarks(patch: pytest.MonkeyPatch) -> None:
    """Ray's workers import this module's tasks by name, as they do when the script runs from benchmarks/."""
    patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(BENCHMARKS), os.environ.get("PYTHONPATH")])))


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    """A tiny table of 3 genotypes x 2 seeds trained on Ray, each run's network kept: (table, weights dir)."""
    root = tmp_path_factory.mktemp("kept")
    with pytest.MonkeyPatch.context() as patch:
        let_ray_workers_import_the_benchmarks(patch)
        standalone_table.main(TINY + ["--out", str(root / "trained.parquet"), "--weights", str(root / "kept")])
    return root / "trained.parquet", root / "kept"


TINY = ["--quick", "--only", "none", "se", "eca", "--dataset-options", '{"train_size": 128, "val_size": 64, "test_size": 64}']


def test_kept_networks_are_scored_again_on_a_larger_test_split_without_training(kept, tmp_path, capsys, monkeypatch):
    let_ray_workers_import_the_benchmarks(monkeypatch)
    trained, rescored = kept[0], tmp_path / "rescored.parquet"
    kept = shutil.copytree(kept[1], tmp_path / "kept")  # this test spoils some of them
    assert sorted(p.name for p in kept.iterdir()) == [f"{n}-seed{s}.pt" for n in ("eca", "none", "se") for s in (0, 1)]
    larger = ["--quick", "--only", "none", "se", "eca", "--dataset-options",
              '{"train_size": 128, "val_size": 64, "test_size": 256}', "--weights", str(kept), "--rescore", str(trained)]
    standalone_table.main(larger + ["--out", str(rescored)])
    before, after = (pd.read_parquet(p).sort_values(["name", "seed"]).reset_index(drop=True) for p in (trained, rescored))
    assert after["val_accuracy"].tolist() == before["val_accuracy"].tolist()  # the same networks on the same data
    assert after["train_accuracy"].tolist() == before["train_accuracy"].tolist()
    assert set(after["dataset_options"]) == {'{"test_size": 256, "train_size": 128, "val_size": 64}'}
    assert (after["test_accuracy"] * 256).round(6).eq((after["test_accuracy"] * 256).round()).all()  # of 256 images
    assert json.loads(rescored.with_suffix(".json").read_text())["rescored_from"] == str(trained)
    standalone_table.main(larger + ["--out", str(rescored)])  # resumed: nothing left to score
    assert len(pd.read_parquet(rescored)) == 6
    capsys.readouterr()

    def refused(arguments: list, message: str) -> None:
        with pytest.raises(SystemExit) as stop:
            standalone_table.main(arguments)
        last = capsys.readouterr().err.splitlines()[-1]  # after the progress bar, when there is one
        assert stop.value.code == 2 and last.startswith("error: ") and message in last

    other = tmp_path / "other.parquet"
    refused([a.replace('"train_size": 128', '"train_size": 256') for a in larger] + ["--out", str(other)],
            "only the test split's size may change")
    refused([a for a in larger if a not in ("--weights", str(kept))] + ["--out", str(other)], "--rescore needs --weights")
    (kept / "se-seed1.pt").unlink()
    refused(larger + ["--out", str(other)], "1 of 6 networks are not kept")
    (kept / "se-seed1.pt").write_bytes((kept / "se-seed0.pt").read_bytes())  # another run's network under its name
    assert before["val_accuracy"][4] != before["val_accuracy"][5]  # se at seeds 0 and 1 score apart
    refused(larger + ["--out", str(other)], "se seed 1: the kept network scores")
    assert not other.exists() or len(pd.read_parquet(other)) < 6


def test_the_ceiling_is_measured_on_disjoint_blocks_of_the_test_split(kept, tmp_path, capsys):
    import test_size_curve

    table = tmp_path / "trained.parquet"
    shutil.copy(kept[0], table)
    test_size_curve.main(["--table", str(table), "--weights", str(kept[1]), "--sizes", "16", "32", "64", "128"])
    document = json.loads((tmp_path / "trained_test_size_curve.json").read_text())
    assert [(p["images"], p["blocks"]) for p in document["points"]] == [(16, 4), (32, 2), (64, 1)]  # 128: no block
    whole = document["points"][-1]  # every network's 64 images: the table's own figure
    assert whole["interaction_sd_mean"] == pytest.approx(measures.seed_noise(pd.read_parquet(table))["interaction_sd"])
    assert (tmp_path / "trained_test_size_curve.png").stat().st_size > 0
    assert set(document["fit"]["at"]) == {"64", "128", "320", "inf"}  # the whole split, 2x, 5x, no images' noise
    assert document["fit"]["genotype_sd"] == pytest.approx(measures.seed_noise(pd.read_parquet(table))["genotype_sd"])
    # the per-image cache serves a re-plot without the networks
    test_size_curve.main(["--table", str(table), "--weights", str(tmp_path / "gone"), "--sizes", "32"])
    replot = json.loads((tmp_path / "trained_test_size_curve.json").read_text())
    test_size_curve.main(["--table", str(table), "--weights", str(tmp_path / "gone"), "--sizes", "32", "--seeds", "0"])
    assert json.loads((tmp_path / "trained_seeds0_test_size_curve.json").read_text())["runs"] == 3  # seed 0's
    assert replot["points"][0]["blocks"] == 2 and replot["fit"] is None  # one block size: nothing to fit
    capsys.readouterr()
    for arguments, message in ((["--sizes", "0"], "--sizes and --max-blocks must be positive"),
                               (["--sizes", "128"], "every block is larger than the 64 test images"),
                               (["--table", str(tmp_path / "none.parquet")], "no such table"),
                               (["--seeds", "0", "7"], "--seeds 0 7: 0 genotypes are measured at all of them")):
        with pytest.raises(SystemExit) as stop:
            test_size_curve.main(["--table", str(table), "--weights", str(kept[1])] + arguments)
        assert stop.value.code == 2 and message in capsys.readouterr().err


def test_the_curve_averages_each_block_sizes_taus_over_disjoint_blocks():
    import numpy as np
    import test_size_curve

    # correct images out of 8 in each of two blocks, per genotype and seed: block 1 ranks a < b < c at
    # both seeds (tau 1), block 2 reverses seed 1 (tau -1); all 16 images rank a < b < c again (tau 1)
    counts = {("a", 0): (2, 2), ("b", 0): (4, 4), ("c", 0): (6, 6),
              ("a", 1): (3, 6), ("b", 1): (5, 5), ("c", 1): (7, 4)}
    runs = pd.DataFrame([{"genotype": g, "seed": s, "images": 16,
                          "bits": np.packbits(np.concatenate([np.arange(8) < k for k in blocks])).tobytes()}
                         for (g, s), blocks in counts.items()])
    points = test_size_curve.curve(runs, [8, 16], max_blocks=20)
    assert [(p["images"], p["blocks"], p["blocks_with_a_tau"]) for p in points] == [(8, 2, 2), (16, 1, 1)]
    assert points[0]["seed_tau_mean"] == pytest.approx(0.0) and points[0]["seed_tau_sd_over_blocks"] == pytest.approx(2 ** 0.5)
    assert points[1]["seed_tau_mean"] == pytest.approx(1.0) and points[1]["seed_tau_sd_over_blocks"] is None
    assert test_size_curve.curve(runs, [8], max_blocks=1)[0]["seed_tau_mean"] == pytest.approx(1.0)  # block 1 only


def test_the_images_fit_splits_the_interaction_variance_into_network_and_images():
    import math

    import test_size_curve

    # V(n) = 0.09 + 600 / n exactly: the network's sd 0.3, the images' 600 / n
    points = [{"images": n, "interaction_variance_mean": 0.09 + 600 / n} for n in (250, 1000, 5000, 20000)]
    fit = test_size_curve.images_fit(points, genotype_variance=0.81, split=20000)
    assert fit["network_interaction_sd"] == pytest.approx(0.3)
    assert fit["images_interaction_sd_at_1000_images"] == pytest.approx(math.sqrt(0.6))
    assert fit["at"]["40000"]["interaction_sd"] == pytest.approx(math.sqrt(0.09 + 600 / 40000))
    # no images' noise left: rho = 0.81 / (0.81 + 0.09) = 0.9
    assert fit["at"]["inf"] == pytest.approx({"interaction_sd": 0.3, "model_tau": 2 / math.pi * math.asin(0.9)})


def test_search_outcome_trains_the_winners_the_reference_lacks_and_copies_the_rest(kept, tmp_path, monkeypatch):
    import search_outcome

    let_ray_workers_import_the_benchmarks(monkeypatch)
    reference = pd.read_parquet(kept[0])
    budget = standalone_table.make_budget(True, dataset_options={"train_size": 128, "val_size": 64, "test_size": 64})
    winners = [KNOWN["se"].key, KNOWN["ge"].key]  # SE was trained in the reference table, GE was not
    table = search_outcome.train_winners(winners, 1, budget, tmp_path / "winners.parquet", reference)
    assert sorted(zip(table["genotype"], table["seed"])) == sorted((key, 0) for key in winners)
    copied = table.set_index("genotype").loc[KNOWN["se"].key, "test_accuracy"]
    assert copied == reference[(reference["name"] == "se") & (reference["seed"] == 0)]["test_accuracy"].item()
