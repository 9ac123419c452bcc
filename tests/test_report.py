"""The report: readable, non-blank PNGs and a page that shows each of them, at every stage of a run."""
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from reporting import op_frequencies, write_report
from reporting.figures import reward_figure
from rundir import RunDir
from experiments_paths import load_script
from searchspace import KNOWN, from_key
from tiny_run import POOL, make_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ALL_PLOTS = ["reward.png", "op_probabilities.png", "entropy.png", "retrain.png"]


def retrain_rows():
    """Stage 2 of 2 candidates and 2 baselines over 3 seeds, as stage 2 writes it."""
    models = [("candidate", "rank-1", POOL[0], 1, 0.80), ("candidate", "rank-2", POOL[1], 2, 0.84),
              ("baseline", "none", KNOWN["none"].key, None, 0.78), ("baseline", "se", KNOWN["se"].key, None, 0.82)]
    rows = []
    for kind, name, key, rank, accuracy in models:
        for seed in range(3):
            rows.append({"genotype": key, **from_key(key).ops, "kind": kind, "name": name, "search_rank": rank,
                         "seed": seed, "epochs": 15, "test_accuracy": accuracy + 0.01 * (seed - 1),
                         "test_loss": 0.5, "val_accuracy": accuracy, "val_loss": 0.5, "params": 272_000,
                         "macs": 41_000_000, "latency_ms": 1.5, "latency_ms_batch64": 0.1, "wall_time_s": 60.0,
                         "status": "ok", "error": ""})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A run after the search, the derive stage and stage 2, and its report."""
    rundir = make_run(tmp_path_factory.mktemp("report") / "run")
    rundir.write_retrain(retrain_rows())
    rundir.write_winner(from_key(POOL[1]).with_metadata(run_id="tiny-run", stage="retrain", rank=2))
    return rundir, write_report(rundir, k=3)


class Page(HTMLParser):
    """The images, captions, table rows (lists of cell texts) and text of an HTML page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.images, self.captions, self.rows, self.text = [], [], [], []
        self._caption = self._cell = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        if tag == "tr":
            self.rows.append([])
        self._caption, self._cell = tag == "figcaption", tag in ("td", "th")

    def handle_data(self, data):
        self.text.append(data)
        if self._caption and data.strip():
            self.captions.append(data)
            self._caption = False
        if self._cell:
            self.rows[-1].append(data.strip())
            self._cell = False


def page_of(rundir: RunDir) -> Page:
    return Page(Path(rundir.path("report", "index.html")).read_text())


def pngs_in(rundir: RunDir):
    return sorted(p.name for p in Path(rundir.path("report")).glob("*.png"))


def test_every_plot_is_a_valid_non_blank_png(finished):
    rundir, result = finished
    assert result.images == ALL_PLOTS
    for name in ALL_PLOTS:
        path = Path(rundir.path("report", name))
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        pixels = matplotlib.image.imread(path)
        assert pixels.ndim == 3 and min(pixels.shape[:2]) >= 300
        assert pixels[..., :3].var() > 0.001  # not a blank canvas


def test_index_html_shows_every_png_with_a_caption_and_names_no_missing_image(finished):
    rundir, _ = finished
    page = page_of(rundir)
    assert sorted(page.images) == pngs_in(rundir) == sorted(ALL_PLOTS)
    assert all(Path(rundir.path("report", src)).is_file() for src in page.images)
    assert len(page.captions) == len(page.images)
    text = " ".join(page.text)
    assert "estimate" in text  # the op heatmap says its probabilities are estimated from frequencies
    assert all(key in text for key in POOL[:3])  # the top-K table
    assert "Winner" in text and POOL[1] in text and "retrain" in text
    # stage 2 by model: mean and sample std over the three seeds, in %, the best candidate first
    stage2 = [row for row in page.rows if row[:1] in (["candidate"], ["baseline"])]
    assert [row[:6] for row in stage2] == [
        ["candidate", "rank-2", POOL[1], "3/3", "84.00", "1.00"],
        ["candidate", "rank-1", POOL[0], "3/3", "80.00", "1.00"],
        ["baseline", "se", KNOWN["se"].key, "3/3", "82.00", "1.00"],
        ["baseline", "none", KNOWN["none"].key, "3/3", "78.00", "1.00"],
    ]


def test_running_search_gets_its_plots_and_stale_ones_go(tmp_path):
    rundir = make_run(tmp_path / "run", rounds=2, candidates=False)
    stale = rundir.write_report_file("retrain.png", b"from an earlier report")
    result = write_report(rundir)
    assert result.images == ALL_PLOTS[:3]
    assert not Path(stale).exists()
    page = page_of(rundir)
    assert sorted(page.images) == pngs_in(rundir) == sorted(ALL_PLOTS[:3])
    text = " ".join(page.text)
    assert "the rewards log so far" in text and "no candidates yet" in text and "stage 2 not run" in text
    assert "Winner" not in text


def test_run_without_a_round_gets_a_page_without_plots(tmp_path):
    rundir = RunDir(tmp_path / "run")
    rundir.create({"run_id": "fresh"})
    result = write_report(rundir)
    page = page_of(rundir)
    assert result.images == [] and page.images == [] and pngs_in(rundir) == []
    assert "not logged its first round" in " ".join(page.text)


def test_op_frequencies_are_per_round_fractions_and_excitations_count_only_their_branch():
    keys = {1: ["gap|fc_relu_fc|none|none", "gap|eca|none|none", "none|none|mean|conv7x7", "gmp|eca|none|none"],
            2: ["none|none|none|none"] * 4}
    log = pd.DataFrame([{"round": r, **from_key(k).ops} for r, ks in keys.items() for k in ks])
    squeeze = op_frequencies(log, "channel_squeeze", [1, 2], ["none", "gap", "gmp"])
    np.testing.assert_allclose(squeeze, [[0.25, 1.0], [0.5, 0.0], [0.25, 0.0]])
    excitation = op_frequencies(log, "channel_excitation", [1, 2], ["none", "fc_relu_fc", "eca"])
    # round 1: 3 samples have a channel branch; round 2: none has, so there is no estimate
    np.testing.assert_allclose(excitation[:, 0], [0.0, 1 / 3, 2 / 3])
    assert np.isnan(excitation[:, 1]).all()


def report_main():
    return load_script("report").main


@pytest.mark.parametrize("case, message", [
    ("missing", "no such run directory"),
    ("empty", "not a run directory"),
    ("corrupt round", "corrupt Parquet file"),
    ("corrupt winner", "winner.json"),
])
def test_bad_run_directory_exits_2_with_one_error_line(tmp_path, case, message, capsys):
    target = tmp_path / "run"
    if case == "empty":
        target.mkdir()
    elif case.startswith("corrupt"):
        rundir = make_run(target, rounds=2, candidates=False)
        broken = "rewards/round-000002.parquet" if case == "corrupt round" else "winner.json"
        (target / broken).write_bytes(b"PAR1 cut short")
    with pytest.raises(SystemExit) as exit:
        report_main()([str(target)])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert not (target / "report" / "index.html").exists()


def with_warmup(rundir: RunDir, rounds) -> RunDir:
    """The run's ``rounds`` rewritten as the loop logs a warm-up: phase "warmup", no controller columns."""
    log = rundir.read_rewards()
    for r in rounds:
        nan = float("nan")
        rundir.write_round(r, log[log["round"] == r].assign(phase="warmup", log_prob=nan, entropy=nan,
                                                             baseline=nan, advantage=nan))
    return rundir


def test_the_report_marks_the_warmup_rounds(tmp_path):
    rundir = with_warmup(make_run(tmp_path / "run", rounds=4, candidates=False), [1, 2])
    result = write_report(rundir)
    assert result.images == ALL_PLOTS[:3]
    assert "warm-up rounds 1-2" in " ".join(page_of(rundir).text)
    for axes in reward_figure(rundir.read_rewards()).axes:
        assert "warm-up (rounds 1-2): no controller update" in axes.get_legend_handles_labels()[1]
    plain = make_run(tmp_path / "plain", rounds=2, candidates=False)
    write_report(plain)
    assert "warm-up rounds 1-" not in " ".join(page_of(plain).text)  # the captions explain the band in any case
    assert not any("warm-up" in label for axes in reward_figure(plain.read_rewards()).axes
                   for label in axes.get_legend_handles_labels()[1])


def test_rewards_relative_to_their_rounds_mean_average_zero_per_round(tmp_path):
    log = make_run(tmp_path / "run", rounds=3, candidates=False).read_rewards()
    relative = reward_figure(log).axes[1]
    points = relative.collections[0].get_offsets()
    frame = pd.DataFrame({"round": points[:, 0], "relative": points[:, 1]})
    np.testing.assert_allclose(frame.groupby("round")["relative"].mean(), 0.0, atol=1e-12)
    expected = log["reward"] - log.groupby("round")["reward"].transform("mean")
    np.testing.assert_allclose(np.sort(points[:, 1]), np.sort(expected.to_numpy()))
