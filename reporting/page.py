"""The report page: the plots of a run written as PNGs into ``<out>/report/`` and the ``index.html`` showing them.

Works on a run still searching (some rounds, no candidates), on one without stage 2 and on one
with no round yet (a page that says so). Every file is written atomically through RunDir.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import pandas as pd
from matplotlib.figure import Figure

from reporting.figures import (
    entropy_figure,
    latency_figure,
    op_frequency_figure,
    png_bytes,
    race_figure,
    retrain_figure,
    reward_figure,
    warmup_rounds,
)
from rundir import RunDir
from searchspace import Genotype, strict_json
from stage2.summary import summarise, summary_table


@dataclass
class Plot:
    name: str  # file name in report/
    title: str  # heading on the page
    caption: str  # what the plot shows and how to read it


@dataclass
class ReportResult:
    index: str  # path of index.html
    images: List[str]  # file names of the PNGs it shows, in page order


PLOTS: Dict[str, Plot] = {
    "reward": Plot("reward.png", "Reward over rounds",
                   "Top: each grey dot is one sampled genotype's reward (validation accuracy with the shared "
                   "weights); blue: the round's mean, which rises as the shared weights train whatever the "
                   "controller does; red dashes: the REINFORCE baseline the controller compared the rewards with "
                   "before its update. Bottom, the search's progress: each reward minus its round's mean (the "
                   "genotypes of a round share the weights, and with common reward images the images), and in "
                   "green the round's best by that measure. Rewards above the baseline pushed the policy towards "
                   "those samples. A grey band marks the warm-up rounds: the shared weights trained on the "
                   "warm-up sampler's genotypes and the controller was not updated."),
    "ops": Plot("op_probabilities.png", "Op probabilities per decision",
                "One heatmap per decision: rows are the ops, columns the rounds, colour the fraction of the "
                "round's samples that drew the op. This empirical frequency estimates the policy's probability "
                "of the op in that round (the log keeps only the joint log-probability of a sample, and the "
                "checkpoints only the last two policies). Excitations are counted among the samples whose "
                "branch exists; grey: no such sample in the round. A row turning yellow is the controller "
                "settling on that op. Warm-up rounds (left of the red line) show the warm-up sampler's draws."),
    "entropy": Plot("entropy.png", "Policy entropy over rounds",
                    "The entropy of the policy that drew each sample, summed over the four decisions: the mean "
                    "per round and its range. It falls as the controller becomes sure of its choice; a collapse "
                    "to near zero early means it stopped exploring. Warm-up rounds (grey band) have no entropy: "
                    "no policy drew their samples."),
    "retrain": Plot("retrain.png", "Stage 2: top-K against the baselines",
                    "Stand-alone training from scratch (retrain.parquet): each model's mean test accuracy over "
                    "seeds (diamond) with a bar of one standard deviation, and every seed as a dot. "
                    "Candidates in blue, hand-designed baselines in orange; the dotted line is the best baseline."),
    "latency": Plot("latency.png", "Accuracy against latency",
                    "Each genotype the search evaluated: its mean reward against its latency predicted from the "
                    "run's per-op latency table (latency.json), with the Pareto front (no other genotype is both "
                    "more accurate and faster) joined; known modules the search evaluated are squares."),
    "race": Plot("race.png", "Stage 2: the race",
                 "Each round trains every model still in the race on one more seed, the same for all. A line is "
                 "a model's mean difference in test accuracy to the race's winner over the seeds both ran "
                 "(paired by seed, so a seed's shift of every model cancels); it ends with a cross in the round "
                 "a one-sided paired t-test against the leader dropped it, with a dot if it was still in at the "
                 "end. The winner ran every round, so every model pairs with it; `none` is the thick line."),
}

STYLE = """
body { font-family: sans-serif; max-width: 1000px; margin: 2em auto; padding: 0 1em; color: #222; }
img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.9em; margin-top: 0.4em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }
code, pre { background: #f4f4f4; }
"""


def figure_html(plot: Plot) -> str:
    return (f'<h2>{html.escape(plot.title)}</h2>\n<figure>\n<img src="{html.escape(plot.name)}" '
            f'alt="{html.escape(plot.title)}">\n<figcaption>{html.escape(plot.caption)}</figcaption>\n</figure>')


def table_html(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, na_rep="-", float_format=lambda x: f"{x:.4f}")


def winner_html(winner: Genotype) -> str:
    ops = pd.DataFrame([winner.ops])
    stage = winner.metadata.get("stage", "search (derive stage)")
    return (f"<h2>Winner</h2>\n<p><code>{html.escape(winner.key)}</code>, chosen by the {html.escape(str(stage))} "
            f"stage; <code>winner.json</code> plugs into any ResNet.</p>\n{table_html(ops)}\n"
            f"<pre>{html.escape(strict_json.dumps(winner.metadata, indent=2))}</pre>")


def status_html(rundir: RunDir, log: pd.DataFrame, candidates: Optional[pd.DataFrame],
                retrain: Optional[pd.DataFrame]) -> str:
    if log.empty:
        search = "no round logged yet"
    else:
        ok = int((log["status"] == "ok").sum())
        search = (f"{log['round'].nunique()} rounds logged (last: {int(log['round'].max())}), "
                  f"{len(log)} samples, {ok} evaluated successfully")
        warm = warmup_rounds(log)
        if warm:
            search += (f"; warm-up rounds {warm[0]}-{warm[-1]} (the shared weights trained on the warm-up "
                       "sampler's genotypes, no controller update)")
    derive = "derive stage done" if candidates is not None else "no candidates yet (search running or stopped early)"
    stage2 = f"stage 2: {len(retrain)} trials" if retrain is not None else "stage 2 not run"
    return f"<p>{html.escape(rundir.show(rundir.root))}: {html.escape(search)}; {derive}; {stage2}.</p>"


def index_html(rundir: RunDir, sections: List[str], status: str) -> str:
    run_id = html.escape(rundir.run_id)
    body = "\n".join([f"<h1>SASE-NAS run {run_id}</h1>", status, *sections])
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>SASE-NAS run {run_id}</title>\n<style>{STYLE}</style>\n</head>\n"
            f"<body>\n{body}\n</body>\n</html>\n")


def write_report(rundir: RunDir, k: int = 10) -> ReportResult:
    """Write report/*.png and report/index.html for what the run holds now; return what was written.

    PNGs go first and index.html last, so the page never names an image that is not there yet;
    a plot that no longer applies (a file this function wrote before) is removed afterwards.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    rundir.check()
    log, candidates = rundir.read_rewards(), rundir.read_candidates()
    retrain, winner = rundir.read_retrain(), rundir.read_winner()
    figures: Dict[str, Callable[[], Figure]] = {}
    if not log.empty:
        figures.update(reward=lambda: reward_figure(log), ops=lambda: op_frequency_figure(log),
                       entropy=lambda: entropy_figure(log))
        if "latency_ms" in log.columns and log["latency_ms"].notna().any():
            figures["latency"] = lambda: latency_figure(log)
    summary = summarise(retrain) if retrain is not None and not retrain.empty else None
    if summary is not None:
        figures["retrain"] = lambda: retrain_figure(retrain, summary)
    if summary is not None and winner is not None and winner.metadata.get("stage") == "race":
        figures["race"] = lambda: race_figure(retrain, winner.metadata["name"])
    for key, make in figures.items():
        rundir.write_report_file(PLOTS[key].name, png_bytes(make()))

    sections = [winner_html(winner)] if winner is not None else []
    sections += [figure_html(PLOTS[key]) for key in ("reward", "ops", "entropy", "latency") if key in figures]
    if candidates is not None or (log["status"] == "ok").any():
        source = "candidates.parquet (derive stage)" if candidates is not None else "the rewards log so far"
        sections += [f"<h2>Top {k} genotypes</h2>\n<p>Ranked from {source}.</p>\n{table_html(rundir.top_k(k))}"]
    if summary is not None:
        sections += [figure_html(PLOTS["retrain"]), f"<h2>Stage 2 by model</h2>\n{table_html(summary_table(summary))}"]
    if "race" in figures:
        sentence = html.escape(winner.metadata["race"]["sentence"])
        sections += [figure_html(PLOTS["race"]), f"<p><strong>The race's answer:</strong> {sentence}.</p>"]
    if log.empty:
        sections += ["<p>No plots yet: the search has not logged its first round.</p>"]
    page = index_html(rundir, sections, status_html(rundir, log, candidates, retrain))
    index = rundir.write_report_file("index.html", page.encode())
    for key, plot in PLOTS.items():
        if key not in figures:
            rundir.remove_report_file(plot.name)
    return ReportResult(index=index, images=[PLOTS[key].name for key in PLOTS if key in figures])
