"""The run directory: its Parquet columns, atomic writes, checkpoints and resume, top-k, and its scripts.

docs/formats.md's columns, and the two user scripts over it (experiments/top_k.py, experiments/export_genotype.py)."""
import io
import math
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from experiments_paths import EXPERIMENTS as SCRIPTS, load_script as script
from rundir import RunDir, RunDirError
from searchspace import from_json, from_key, load


# docs/formats.md's table, written out here rather than taken from the code: the test holds the contract.
DESIGN_COLUMNS = [
    ("run_id", pa.string()), ("round", pa.int32()), ("sample", pa.int32()), ("worker", pa.int32()),
    ("genotype", pa.string()), ("channel_squeeze", pa.string()), ("channel_excitation", pa.string()),
    ("spatial_squeeze", pa.string()), ("spatial_excitation", pa.string()), ("reward", pa.float64()),
    ("val_accuracy", pa.float64()), ("val_loss", pa.float64()), ("log_prob", pa.float64()),
    ("entropy", pa.float64()), ("baseline", pa.float64()), ("advantage", pa.float64()),
    ("params", pa.int64()), ("status", pa.string()), ("wall_time_s", pa.float64()),
    ("timestamp", pa.timestamp("us", tz="UTC")),
]

A = "avg_max|fc_relu_fc|mean_max|conv7x7"
B = "gap|eca|none|none"
E = "gap|fc_relu_fc|mean|conv3x3"
D = "gap|fc_relu_fc|none|none"
PLAIN = "none|none|none|none"


def row(round, sample, key, reward, status="ok"):
    """One rewards row as the search loop writes it; the genotype key is written as given."""
    ops = dict(zip(("channel_squeeze", "channel_excitation", "spatial_squeeze", "spatial_excitation"),
                   key.split("|")))
    return dict(run_id="test-run", round=round, sample=sample, worker=sample % 2, genotype=key, **ops,
                reward=reward, val_accuracy=reward, val_loss=1.0 - reward, log_prob=-2.5, entropy=3.0,
                baseline=0.5, advantage=reward - 0.5, params=1000 + sample, status=status,
                wall_time_s=0.25, timestamp=pd.Timestamp("2026-01-02 03:04:05.123456789", tz="UTC"))


# Rewards chosen exact in binary so that means and ties are exact: A 0.875 (2), B 0.625 (2, one
# failure not counted), E 0.625 (1, ties with B: key order), PLAIN 0.375 (2, one row written in
# non-canonical form), D never succeeded (not ranked).
LOG = {
    1: [row(1, 0, A, 0.75), row(1, 1, B, 0.5), row(1, 2, "none|eca|none|conv3x3", 0.25)],
    2: [row(2, 0, A, 1.0), row(2, 1, B, 0.75), row(2, 2, D, float("nan"), "nan"), row(2, 3, PLAIN, 0.5)],
    3: [row(3, 0, E, 0.625), row(3, 1, B, 0.0, "failed")],
}


@pytest.fixture
def run(tmp_path):
    """A run directory with config.yaml and no rounds yet."""
    rundir = RunDir(tmp_path / "run")
    rundir.create({"run_id": "test-run", "seed": 0})
    return rundir


@pytest.fixture
def logged(run):
    """A run with the three rounds of LOG."""
    for r, rows in LOG.items():
        run.write_round(r, rows)
    return run


def run_script(name, *args, cwd):
    return subprocess.run([sys.executable, str(SCRIPTS / f"{name}.py"), *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=60)


# -- the rewards log ----------------------------------------------------------------------


def test_round_file_has_designs_columns_and_types(run):
    run.write_round(1, LOG[1])
    schema = pq.read_schema(run.path("rewards", "round-000001.parquet"))
    assert [(f.name, f.type) for f in schema] == DESIGN_COLUMNS + [
        ("attempts", pa.int32()), ("note", pa.string()), ("phase", pa.string()),
        ("latency_ms", pa.float64()), ("macs", pa.int64()), ("objective", pa.float64())]
    table = pq.read_table(run.path("rewards", "round-000001.parquet"))
    assert table["timestamp"][0].as_py().isoformat() == "2026-01-02T03:04:05.123456+00:00"
    assert table["attempts"].to_pylist() == [1, 1, 1] and table["phase"].to_pylist() == ["search"] * 3
    # the accuracy objective: no latency, no multiply-adds, the objective is the reward
    assert table["latency_ms"].null_count == table["macs"].null_count == 3
    assert table["objective"].to_pylist() == table["reward"].to_pylist()
    assert table["genotype"].to_pylist() == [row["genotype"] for row in LOG[1]]


def test_nan_reward_stays_nan_and_bad_rows_are_refused_naming_the_column(run):
    run.write_round(2, LOG[2])
    assert np.isnan(run.read_rewards()["reward"][2])
    # NaN, not null: a reward that was computed and is NaN differs from one that is missing.
    assert pq.read_table(run.path("rewards", "round-000002.parquet"))["reward"].null_count == 0
    bad = [{k: v for k, v in LOG[1][0].items() if k != "reward"}]
    with pytest.raises(RunDirError, match="missing columns: reward"):
        run.write_round(1, bad)
    with pytest.raises(RunDirError, match="unknown columns: extra"):
        run.write_round(1, [dict(LOG[1][0], extra=1)])
    with pytest.raises(RunDirError, match="column 'params' is not int64"):
        run.write_round(1, [dict(LOG[1][0], params="many")])
    with pytest.raises(RunDirError, match="another 'round'"):
        run.write_round(5, LOG[1])
    with pytest.raises(RunDirError, match="round 6: no rows"):
        run.write_round(6, [])
    assert run.rounds() == [2]


def test_pandas_reads_whole_log_and_skips_what_a_killed_writer_left(logged, monkeypatch):
    whole = pq.read_table(logged.path("rewards", "round-000001.parquet"))
    sink = pa.BufferOutputStream()
    pq.write_table(whole, sink)
    half = sink.getvalue().to_pybytes()[: whole.nbytes // 2]
    in_flight = []

    def killed_midway(table, where, **kwargs):
        where.write(half)
        in_flight.extend(name for name in os.listdir(logged.path("rewards")) if not name.startswith("round-"))
        raise KeyboardInterrupt

    monkeypatch.setattr(pq, "write_table", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        logged.write_round(4, [dict(LOG[3][0], round=4)])
    monkeypatch.undo()
    # A SIGKILL runs no cleanup: put back the half file the writer had under its temporary name.
    assert len(in_flight) == 1
    stray = Path(logged.path("rewards", in_flight[0]))
    stray.write_bytes(half)

    frame = pd.read_parquet(Path(logged.root) / "rewards")
    assert len(frame) == sum(len(rows) for rows in LOG.values())
    assert sorted(set(frame["round"])) == [1, 2, 3]
    assert logged.rounds() == [1, 2, 3]
    rewards = logged.read_rewards()
    expected_order = [(r, s) for r, rows in LOG.items() for s in range(len(rows))]
    assert list(zip(rewards["round"], rewards["sample"])) == expected_order
    logged.drop_rounds_after(3)
    assert not stray.exists()


def test_writer_failing_midway_leaves_old_file_and_no_partial_one(logged, monkeypatch):
    before = logged.read_rewards()

    def dies_midway(table, where, **kwargs):
        where.write(b"PAR1" + b"\0" * 100)
        raise RuntimeError("killed while writing")

    monkeypatch.setattr(pq, "write_table", dies_midway)
    with pytest.raises(RuntimeError, match="killed"):
        logged.write_round(1, [dict(LOG[1][0], reward=0.0)])
    with pytest.raises(RuntimeError, match="killed"):
        logged.write_round(4, [dict(LOG[3][0], round=4)])
    monkeypatch.undo()

    assert sorted(os.listdir(logged.path("rewards"))) == [f"round-00000{r}.parquet" for r in (1, 2, 3)]
    pd.testing.assert_frame_equal(logged.read_rewards(), before)
    assert len(pd.read_parquet(Path(logged.root) / "rewards")) == len(before)


def test_run_directory_given_as_a_file_uri(tmp_path):
    RunDir(f"file://{tmp_path}/remote").create({"run_id": "u"})
    RunDir(f"file://{tmp_path}/remote").write_round(1, LOG[1])
    assert RunDir(tmp_path / "remote").rounds() == [1]
    assert RunDir(f"file://{tmp_path}/remote").read_config() == {"run_id": "u"}


# -- checkpoints and resume ---------------------------------------------------------------


def controller_state(seed):
    torch.manual_seed(seed)
    cell = torch.nn.LSTMCell(8, 8)
    optimizer = torch.optim.Adam(cell.parameters(), lr=3.5e-3, betas=(0.0, 0.999), eps=1e-3)
    cell(torch.randn(2, 8))[0].sum().backward()
    optimizer.step()
    rng = random.Random(seed)
    return {
        "policy": cell.state_dict(), "optimizer": optimizer.state_dict(), "baseline": 0.5 + seed,
        "torch_rng": torch.get_rng_state(), "python_rng": rng.getstate(),
        "numpy_rng": np.random.default_rng(seed).bit_generator.state,
    }


def test_checkpoint_round_trip_with_weights_only_keeps_the_last_two(run):
    for r in (1, 2, 3):
        run.save_checkpoint(controller_state(r), r)
    assert sorted(os.listdir(run.path("checkpoints"))) == ["round-000002.pt", "round-000003.pt"]

    state = run.load_checkpoint()
    expected = controller_state(3)
    assert state["round"] == 3 and state["baseline"] == 3.5
    for name, tensor in expected["policy"].items():
        assert torch.equal(state["policy"][name], tensor)
    assert torch.equal(state["optimizer"]["state"][0]["exp_avg"], expected["optimizer"]["state"][0]["exp_avg"])
    assert torch.equal(state["torch_rng"], expected["torch_rng"])
    restored = random.Random()
    restored.setstate(state["python_rng"])
    assert restored.random() == random.Random(3).random()
    generator = np.random.default_rng()
    generator.bit_generator.state = state["numpy_rng"]
    assert generator.random() == np.random.default_rng(3).random()
    # The file itself is what a resuming driver loads: nothing beyond weights_only's allow-list.
    torch.load(run.path("checkpoints", "round-000003.pt"), weights_only=True)


def test_state_that_weights_only_would_refuse_is_refused_at_save(run):
    with pytest.raises(TypeError, match=r"state\['baseline'\]: numpy.float64"):
        run.save_checkpoint({"baseline": np.float64(0.5)}, 1)
    with pytest.raises(TypeError, match="numpy.ndarray"):
        run.save_checkpoint({"rng": ("MT19937", np.zeros(3, dtype=np.uint32))}, 1)
    assert run.load_checkpoint() is None


def test_corrupt_newest_checkpoint_falls_back_to_previous_with_a_warning(run):
    run.save_checkpoint(controller_state(1), 1)
    run.save_checkpoint(controller_state(2), 2)
    newest = Path(run.path("checkpoints", "round-000002.pt"))
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])

    with pytest.warns(RuntimeWarning, match="round-000002.pt: unreadable checkpoint"):
        state = run.load_checkpoint()
    assert state["round"] == 1 and state["baseline"] == 1.5

    # weights_only: a newer file that would run arbitrary unpickling is refused, not loaded.
    torch.save({"round": 3, "baseline": np.float64(9.0)}, run.path("checkpoints", "round-000003.pt"))
    with pytest.warns(RuntimeWarning) as caught:
        assert run.load_checkpoint()["round"] == 1
    assert [Path(str(w.message).split(":")[0]).name for w in caught] == ["round-000003.pt", "round-000002.pt"]

    Path(run.path("checkpoints", "round-000001.pt")).write_bytes(b"not a checkpoint")
    with pytest.warns(RuntimeWarning), pytest.raises(RunDirError, match="none of the 3 checkpoints"):
        run.load_checkpoint()


def test_drop_rounds_after_rewinds_log_and_checkpoints_to_the_checkpoint(logged):
    logged.write_round(4, [dict(LOG[3][0], round=4)])
    logged.save_checkpoint({"round": 2}, 2)
    logged.save_checkpoint({"round": 3}, 3)
    Path(logged.path("checkpoints", ".round-000004.pt.0badc0de.tmp")).write_bytes(b"half")

    assert logged.drop_rounds_after(2) == [3, 4]
    assert logged.rounds() == [1, 2]
    assert os.listdir(logged.path("checkpoints")) == ["round-000002.pt"]
    assert logged.load_checkpoint() == {"round": 2}
    assert set(logged.read_rewards()["round"]) == {1, 2}


# -- ranking ------------------------------------------------------------------------------


def test_top_k_from_rewards_log_groups_canonical_genotypes_and_breaks_ties_by_key(logged):
    ranked = logged.top_k()
    assert ranked["genotype"].tolist() == [A, B, E, PLAIN]
    assert ranked["rank"].tolist() == [1, 2, 3, 4]
    assert ranked["reward"].tolist() == [0.875, 0.625, 0.625, 0.375]
    assert ranked["count"].tolist() == [2, 2, 1, 2]
    assert ranked["best_reward"].tolist() == [1.0, 0.75, 0.625, 0.5]
    assert ranked["first_round"].tolist() == [1, 1, 3, 1]
    assert ranked.iloc[0][["channel_squeeze", "spatial_excitation"]].tolist() == ["avg_max", "conv7x7"]
    assert logged.top_k(2)["genotype"].tolist() == [A, B]


def test_top_k_from_the_log_leaves_out_warmup_rows_once_the_search_phase_began(run):
    run.write_round(1, [dict(row, phase="warmup") for row in LOG[1]])
    assert run.top_k()["genotype"].tolist() == [A, B, PLAIN]  # only warm-up so far: it ranks
    run.write_round(2, LOG[2])
    ranked = run.top_k()  # round 2 alone: A 1.0, B 0.75, PLAIN 0.5, each seen once
    assert ranked["genotype"].tolist() == [A, B, PLAIN]
    assert ranked["reward"].tolist() == [1.0, 0.75, 0.5]
    assert ranked["count"].tolist() == [1, 1, 1]


def candidates():
    rows = [(1, E, 0.9, "greedy", 1), (2, A, 0.8, "mean_reward", 2), (3, B, 0.7, "sample", 2)]
    return pd.DataFrame([
        dict(rank=rank, genotype=key, **from_key(key).ops, reward=reward, val_accuracy=reward,
             val_loss=float("nan"), search_mean_reward=0.5, search_count=count, source=source, params=123,
             val_images=2000)
        for rank, key, reward, source, count in rows
    ])


@pytest.mark.parametrize("images, separated", [(2000, True), (20, False)])
def test_top_k_says_which_ranks_its_figures_cannot_separate(logged, images, separated, capsys):
    logged.write_candidates(candidates().assign(val_images=images))
    ranked = logged.top_k()
    expected = [(r * (1 - r) / images) ** 0.5 for r in (0.9, 0.8, 0.7)]
    assert ranked["reward_se"].tolist() == pytest.approx(expected)
    script("top_k").main([logged.out])
    out = capsys.readouterr().out
    # 0.9 against 0.8 over 20 images: 0.1 < 1.96 * hypot(0.067, 0.089); over 2000 images 0.1 is 8 s.e.
    assert ("rank 1 is separated from every other rank shown" in out) == separated
    assert ("rank 1 is not separated from ranks 2, 3" in out) != separated
    assert "--race" in out


def test_a_likelihood_rewards_standard_error_comes_from_the_losses_spread(logged, capsys):
    """Under ``evaluator.reward_metric: likelihood`` the reward is exp(-val_loss): its standard error
    is reward * val_loss_sd / sqrt(images), by the delta method; unknown where the spread was not kept."""
    losses, spread, images = [1.0, 1.02, 1.3], [1.5, 1.4, 1.6], 2000
    likely = candidates().assign(val_loss=losses, reward=[math.exp(-v) for v in losses],
                                 val_accuracy=[0.6, 0.62, 0.5], val_loss_sd=spread, val_images=images)
    logged.write_candidates(likely)
    ranked = logged.top_k()
    expected = [math.exp(-v) * s / images ** 0.5 for v, s in zip(losses, spread)]
    assert ranked["reward_se"].tolist() == pytest.approx(expected)
    script("top_k").main([logged.out])
    # rank 2 is 0.0074 below rank 1, within 1.96 * hypot(0.0123, 0.0113); rank 3 is 0.095 below
    assert "rank 1 is not separated from rank 2:" in capsys.readouterr().out

    logged.write_candidates(likely.drop(columns="val_loss_sd"))  # a run from before the spread was kept
    assert logged.top_k()["reward_se"].isna().all()
    script("top_k").main([logged.out])
    assert "no standard error for the gap between rank 1 and ranks 2, 3" in capsys.readouterr().out


def per_image_scores(ranked, correct, losses=None):
    """derive_scores rows for the candidates in ``ranked`` with each one's per-image figures."""
    return pd.DataFrame([
        dict(round=1, genotype=row.genotype, reward=row.reward, val_accuracy=row.val_accuracy, val_loss=row.val_loss,
             params=123, val_images=len(c), wall_time_s=1.0, image_correct=c,
             image_loss=np.ones(len(c)) if losses is None else losses[i])
        for i, (row, c) in enumerate(zip(ranked.itertuples(), correct))])


@pytest.mark.parametrize("overlap, separated", [("nested", True), ("crossed", False)])
def test_the_gap_to_rank_1_is_paired_image_by_image_where_the_derive_stage_kept_them(logged, overlap, separated,
                                                                                         capsys):
    """90 % against 80 % on 40 images: unpaired, within 1.96 standard errors. Where rank 2 is right
    only on images rank 1 is right on too, the pairing separates them; where they are right on
    different images, it does not."""
    logged.write_candidates(candidates().assign(val_images=40))
    first = np.arange(40) < 36
    second = np.arange(40) < 32 if overlap == "nested" else np.arange(40) >= 8
    third = np.arange(40) < 28
    logged.write_derive_scores(per_image_scores(logged.read_candidates(), [first, second, third]))
    ranked = logged.top_k()
    gaps = {"nested": (0.1 * 0.9 * 40 / 39) ** 0.5 / 40 ** 0.5, "crossed": ((12 - 40 * 0.01) / 39) ** 0.5 / 40 ** 0.5}
    assert ranked["gap_se"].iloc[1] == pytest.approx(gaps[overlap])
    assert math.isnan(ranked["gap_se"].iloc[0])
    script("top_k").main([logged.out])
    out = capsys.readouterr().out
    assert ("rank 1 is separated from every other rank shown" in out) == separated
    assert ("rank 1 is not separated from rank 2:" in out) != separated


def test_a_likelihood_candidate_worse_on_every_image_is_separated_when_paired(logged, capsys):
    """Per-image losses that vary a lot from image to image hide a uniform 0.03 margin unpaired; paired,
    each image's own difficulty cancels."""
    rng = np.random.default_rng(0)
    losses = rng.exponential(1.0, 500)
    own = [losses, losses + 0.03, losses + 0.5]
    means = [float(np.mean(v)) for v in own]
    likely = candidates().assign(val_loss=means, reward=[math.exp(-m) for m in means], val_accuracy=0.5,
                                 val_loss_sd=[float(np.std(v)) for v in own], val_images=500)
    logged.write_candidates(likely)
    unpaired = logged.top_k()
    assert unpaired["gap_se"].iloc[1] == pytest.approx(math.hypot(*unpaired["reward_se"].iloc[:2]))
    script("top_k").main([logged.out])
    assert "rank 1 is not separated from rank 2:" in capsys.readouterr().out
    logged.write_derive_scores(per_image_scores(logged.read_candidates(), [np.ones(500, bool)] * 3, own))
    paired = logged.top_k()
    assert paired["gap_se"].iloc[1] < unpaired["gap_se"].iloc[1] / 10
    script("top_k").main([logged.out])
    assert "rank 1 is separated from every other rank shown" in capsys.readouterr().out


def test_top_k_prefers_candidates_and_winner_round_trips(logged):
    logged.write_candidates(candidates().iloc[::-1])
    ranked = logged.top_k(2)
    assert ranked["genotype"].tolist() == [E, A]
    assert ranked["source"].tolist() == ["greedy", "mean_reward"]
    assert ranked["count"].tolist() == [1, 2]
    assert pq.read_schema(logged.path("candidates.parquet")).field("search_count").type == pa.int64()

    winner = logged.genotype_at_rank(1)
    assert winner.metadata == {"run_id": "test-run", "rank": 1, "reward": 0.9, "count": 1, "source": "greedy"}
    logged.write_winner(winner)
    assert logged.read_winner() == winner and logged.read_winner().metadata == winner.metadata

    with pytest.raises(RunDirError, match=r"ranks must be 1..2"):
        logged.write_candidates(candidates().iloc[1:])


# -- the scripts --------------------------------------------------------------------------


def test_top_k_script_formats_parse_back(logged, tmp_path, capsys):
    done = run_script("top_k", logged.root, "-k", "3", "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [r["genotype"] for r in json.loads(done.stdout)] == [A, B, E]
    assert json.loads(done.stdout)[0]["reward"] == 0.875

    top_k = script("top_k")
    assert top_k.main([logged.root, "--format", "csv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert table["genotype"].tolist() == [A, B, E, PLAIN] and table["count"].tolist() == [2, 2, 1, 2]

    assert top_k.main([logged.root, "-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["rank", "genotype", "channel_squeeze"]
    assert [line.split()[1] for line in lines[1:3]] == [A, B]
    assert lines[3].startswith("rank 1 is not separated from rank 2") and "--race" in lines[-1]


def test_exported_genotype_passes_searchspace_validate(logged, tmp_path, capsys):
    out = tmp_path / "best.json"
    out.write_text("an older export, replaced on success\n")
    done = run_script("export_genotype", logged.root, "--rank", "2", "--out", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    checked = subprocess.run([sys.executable, "-m", "searchspace", "validate", str(out)],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    genotype = load(out)
    assert genotype.key == B
    assert genotype.metadata == {"run_id": "test-run", "rank": 2, "reward": 0.625, "count": 2, "source": "search_log"}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    assert script("export_genotype").main([logged.root]) == 0
    assert from_json(capsys.readouterr().out).key == A


def corrupt_round(run):
    run.write_round(1, LOG[1])
    Path(run.path("rewards", "round-000001.parquet")).write_bytes(b"PAR1 this is not parquet")


def empty_dir(path):
    os.makedirs(path)
    return path


BAD_INPUT = {
    "missing dir": ("top_k", lambda run: [run.root + "-nope"], "no such run directory"),
    "empty dir": ("top_k", lambda run: [empty_dir(run.root + "-empty")], "not a run directory"),
    "no rounds yet": ("top_k", lambda run: [run.root], "no rounds yet"),
    "corrupt parquet": ("top_k", lambda run: corrupt_round(run) or [run.root],
                        "round-000001.parquet: corrupt Parquet file"),
    "k < 1": ("top_k", lambda run: [run.root, "-k", "0"], "argument -k: must be at least 1"),
    "bad format": ("top_k", lambda run: [run.root, "--format", "xml"], "argument --format"),
    "rank 0": ("export_genotype", lambda run: [run.root, "--rank", "0"], "rank 0 out of range: the run has 4"),
    "rank too large": ("export_genotype", lambda run: [run.root, "--rank", "5"], "(ranks 1..4)"),
    "export, no rounds": ("export_genotype", lambda run: [run.root], "no rounds yet"),
}
NEEDS_LOG = {"rank 0", "rank too large"}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_exits_2_with_one_error_line(case, run, capsys):
    name, argv, message = BAD_INPUT[case]
    if case in NEEDS_LOG:
        for r, rows in LOG.items():
            run.write_round(r, rows)
    with pytest.raises(SystemExit) as exit:
        script(name).main(argv(run))
    assert exit.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1 and captured.err.startswith("error: ")
    assert message in captured.err


def test_bad_input_as_a_subprocess_prints_no_traceback(logged, tmp_path):
    for name, args, message in [
        ("top_k", [tmp_path / "missing"], "no such run directory"),
        ("export_genotype", [logged.root, "--rank", "9", "--out", tmp_path / "kept.json"], "rank 9 out of range"),
    ]:
        (tmp_path / "kept.json").write_text("previous export\n")
        done = run_script(name, *args, cwd=tmp_path)
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ") and message in done.stderr
        assert (tmp_path / "kept.json").read_text() == "previous export\n"


def test_corrupt_candidates_are_named_and_failed_export_keeps_the_old_file(logged, tmp_path, capsys):
    out = tmp_path / "winner.json"
    out.write_text("previous export\n")
    Path(logged.path("candidates.parquet")).write_bytes(b"garbage")
    with pytest.raises(SystemExit):
        script("export_genotype").main([logged.root, "--out", str(out)])
    assert "candidates.parquet: corrupt Parquet file" in capsys.readouterr().err
    assert out.read_text() == "previous export\n"
