"""The report a person looks at: PNG plots of a run and ``<out>/report/index.html`` showing them.

Plots (matplotlib, Agg canvas, no display needed): reward over rounds (per-round mean, best so
far, the REINFORCE baseline), the op frequencies per decision over rounds, the policy's entropy
over rounds and, once stage 2 has run, the top-K against the baselines with the seed spread.

The policy's probabilities per round are not logged, and the checkpoints keep only the last two
rounds' policies; a sample's ``log_prob`` is the joint probability of its four ops and cannot be
split per decision. So the heatmaps show the empirical frequency of each op among the round's
samples, an unbiased estimate of the policy's marginal probability of that op in that round
(with ``samples_per_round`` draws its noise is about ``sqrt(p(1-p)/n)``). An excitation is
counted among the samples whose branch exists: with squeeze ``none`` the canonical form forces
excitation ``none`` whatever the policy drew.

Works on a run still searching (some rounds, no candidates), on one without stage 2 and on one
with no round yet (a page that says so). Every file is written atomically through RunDir.
"""
from __future__ import annotations

import html
import io
import json
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Colormap
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from controller.rundir import RunDir
from controller.stage2 import summarise, summary_table
from searchspace import BRANCHES, Genotype
from searchspace.registry import DECISION_NAMES, DECISIONS

DPI = 110
CANDIDATE_COLOUR, BASELINE_COLOUR = "tab:blue", "tab:orange"


@dataclass
class Plot:
    name: str  # file name in report/
    title: str  # heading on the page
    caption: str  # what the plot shows and how to read it


@dataclass
class ReportResult:
    index: str  # path of index.html
    images: List[str]  # file names of the PNGs it shows, in page order


# -- the plots ------------------------------------------------------------------------------

def reward_figure(log: pd.DataFrame) -> Figure:
    """Every sample's reward (dots), the per-round mean, the best so far and the REINFORCE baseline."""
    figure = Figure(figsize=(8, 4.5))
    axes = figure.add_subplot()
    finite = log[np.isfinite(log["reward"])]
    per_round = finite.groupby("round")
    axes.scatter(finite["round"], finite["reward"], s=10, color="0.7", label="one sample")
    axes.plot(per_round["reward"].mean(), marker="o", color="tab:blue", label="mean of the round")
    axes.plot(per_round["reward"].max().cummax(), color="tab:green", drawstyle="steps-post", label="best so far")
    axes.plot(log.groupby("round")["baseline"].mean(), linestyle="--", color="tab:red",
              label="REINFORCE baseline (before the update)")
    axes.set(xlabel="round", ylabel="reward", title="Reward over rounds")
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    integer_rounds(axes, log)
    return figure


def op_frequencies(log: pd.DataFrame, decision: str, rounds: List[int], ops: List[str]) -> np.ndarray:
    """(ops, rounds) fraction of the round's samples that drew each op; NaN for a round with no sample.
    Excitations count only samples whose branch exists (see the module docstring)."""
    samples = log[log[BRANCHES[decision]] != "none"] if decision in BRANCHES else log
    counts = pd.crosstab(samples[decision], samples["round"]).reindex(index=ops, columns=rounds, fill_value=0)
    totals = counts.sum(axis=0).to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, counts.to_numpy(dtype=float) / totals, np.nan)


def op_frequency_figure(log: pd.DataFrame) -> Figure:
    """One heatmap per decision: op (rows) by round (columns), colour the empirical frequency."""
    rounds = list(range(int(log["round"].min()), int(log["round"].max()) + 1))
    heights = [len(registry.names()) for registry in DECISIONS]
    figure = Figure(figsize=(9, 2.2 + 0.32 * sum(heights)), layout="constrained")
    panels = figure.subplots(len(DECISIONS), 1, sharex=True, gridspec_kw={"height_ratios": heights})
    image = None
    for axes, registry, decision in zip(panels, DECISIONS, DECISION_NAMES):
        ops = registry.names()
        frequencies = op_frequencies(log, decision, rounds, ops)
        image = axes.imshow(frequencies, aspect="auto", cmap=heatmap_colours(), vmin=0, vmax=1,
                              interpolation="nearest", extent=(rounds[0] - 0.5, rounds[-1] + 0.5, len(ops) - 0.5, -0.5))
        axes.set_yticks(range(len(ops)), ops, fontsize="small")
        among = f" (among samples with a {BRANCHES[decision].split('_')[0]} branch)" if decision in BRANCHES else ""
        axes.set_title(decision.replace("_", " ") + among, fontsize="medium", loc="left")
    panels[-1].set_xlabel("round")
    integer_rounds(panels[-1], log)
    figure.colorbar(image, ax=list(panels), shrink=0.6, label="frequency in the round")
    figure.suptitle("Op probabilities per decision, estimated by each op's frequency among the round's samples")
    return figure


def heatmap_colours() -> Colormap:
    return colormaps["viridis"].with_extremes(bad="0.85")  # grey: a round without a sample of that branch


def entropy_figure(log: pd.DataFrame) -> Figure:
    """Mean entropy of the policy over a round's samples, with the round's range."""
    figure = Figure(figsize=(8, 4))
    axes = figure.add_subplot()
    per_round = log.groupby("round")["entropy"]
    low, high = per_round.min(), per_round.max()
    axes.fill_between(low.index, low.to_numpy(), high.to_numpy(), color="tab:purple", alpha=0.2,
                      label="range over the round's samples")
    axes.plot(per_round.mean(), marker="o", color="tab:purple", label="mean of the round")
    axes.set(xlabel="round", ylabel="entropy (nats, summed over the 4 decisions)",
             title="Policy entropy over rounds (lower: a more decided controller)")
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    integer_rounds(axes, log)
    return figure


def retrain_figure(rows: pd.DataFrame, summary: pd.DataFrame) -> Figure:
    """Stage 2: each model's mean test accuracy over seeds with a ±1 std bar and every seed as a dot."""
    figure = Figure(figsize=(9, 1.6 + 0.45 * len(summary)), layout="constrained")
    axes = figure.add_subplot()
    ok = rows[rows["status"] == "ok"]
    for position, model in enumerate(summary.itertuples()):
        colour = CANDIDATE_COLOUR if model.kind == "candidate" else BASELINE_COLOUR
        seeds = ok[(ok["kind"] == model.kind) & (ok["name"] == model.name)]["test_accuracy"] * 100
        axes.scatter(seeds, [position] * len(seeds), s=14, color=colour, alpha=0.5, zorder=3)
        if model.seeds_ok:
            spread = 0.0 if pd.isna(model.test_accuracy_std) else 100 * model.test_accuracy_std
            axes.errorbar(100 * model.test_accuracy_mean, position, xerr=spread, fmt="D", color=colour,
                          capsize=4, markersize=6, zorder=4)
    baselines = summary[(summary["kind"] == "baseline") & (summary["seeds_ok"] > 0)]
    if not baselines.empty:
        axes.axvline(100 * baselines["test_accuracy_mean"].max(), color=BASELINE_COLOUR, linestyle=":", zorder=1,
                     label=f"best baseline ({baselines.iloc[0]['name']})")
        figure.legend(loc="outside lower right", fontsize="small")
    labels = [f"{m.name}  {m.genotype}" if m.kind == "candidate" else f"{m.name} (baseline)"
              for m in summary.itertuples()]
    axes.set_yticks(range(len(summary)), labels, fontsize="small")
    axes.invert_yaxis()
    axes.set(xlabel="test accuracy (%)", title="Stage 2: top-K (blue) against baselines (orange)\n"
                                                "mean ± std over seeds; dots: single seeds")
    axes.margins(x=0.15, y=0.2)
    axes.grid(axis="x", alpha=0.3)
    return figure


def integer_rounds(axes: Axes, log: pd.DataFrame) -> None:
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if log["round"].nunique() == 1:
        only = int(log["round"].iloc[0])
        axes.set_xlim(only - 1, only + 1)


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure)  # Agg: renders without a display, whatever matplotlib's default backend
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


# -- the page -------------------------------------------------------------------------------

PLOTS: Dict[str, Plot] = {
    "reward": Plot("reward.png", "Reward over rounds",
                   "Each grey dot is one sampled genotype's reward (validation accuracy with the shared weights). "
                   "Blue: the round's mean; green: the best reward so far; red dashes: the REINFORCE baseline "
                   "the controller compared the rewards with before its update. Rewards above the baseline "
                   "pushed the policy towards those samples."),
    "ops": Plot("op_probabilities.png", "Op probabilities per decision",
                "One heatmap per decision: rows are the ops, columns the rounds, colour the fraction of the "
                "round's samples that drew the op. This empirical frequency estimates the policy's probability "
                "of the op in that round (the log keeps only the joint log-probability of a sample, and the "
                "checkpoints only the last two policies). Excitations are counted among the samples whose "
                "branch exists; grey: no such sample in the round. A row turning yellow is the controller "
                "settling on that op."),
    "entropy": Plot("entropy.png", "Policy entropy over rounds",
                    "The entropy of the policy that drew each sample, summed over the four decisions: the mean "
                    "per round and its range. It falls as the controller becomes sure of its choice; a collapse "
                    "to near zero early means it stopped exploring."),
    "retrain": Plot("retrain.png", "Stage 2: top-K against the baselines",
                    "Stand-alone training from scratch (retrain.parquet): each model's mean test accuracy over "
                    "seeds (diamond) with a bar of one standard deviation, and every seed as a dot. "
                    "Candidates in blue, hand-designed baselines in orange; the dotted line is the best baseline."),
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
            f"<pre>{html.escape(json.dumps(winner.metadata, indent=2))}</pre>")


def status_html(rundir: RunDir, log: pd.DataFrame, candidates: Optional[pd.DataFrame],
                retrain: Optional[pd.DataFrame]) -> str:
    if log.empty:
        search = "no round logged yet"
    else:
        ok = int((log["status"] == "ok").sum())
        search = (f"{log['round'].nunique()} rounds logged (last: {int(log['round'].max())}), "
                  f"{len(log)} samples, {ok} evaluated successfully")
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
    summary = summarise(retrain) if retrain is not None and not retrain.empty else None
    if summary is not None:
        figures["retrain"] = lambda: retrain_figure(retrain, summary)
    for key, make in figures.items():
        rundir.write_report_file(PLOTS[key].name, png_bytes(make()))

    sections = [winner_html(winner)] if winner is not None else []
    sections += [figure_html(PLOTS[key]) for key in ("reward", "ops", "entropy") if key in figures]
    if candidates is not None or (log["status"] == "ok").any():
        source = "candidates.parquet (derive stage)" if candidates is not None else "the rewards log so far"
        sections += [f"<h2>Top {k} genotypes</h2>\n<p>Ranked from {source}.</p>\n{table_html(rundir.top_k(k))}"]
    if summary is not None:
        sections += [figure_html(PLOTS["retrain"]), f"<h2>Stage 2 by model</h2>\n{table_html(summary_table(summary))}"]
    if log.empty:
        sections += ["<p>No plots yet: the search has not logged its first round.</p>"]
    page = index_html(rundir, sections, status_html(rundir, log, candidates, retrain))
    index = rundir.write_report_file("index.html", page.encode())
    for key, plot in PLOTS.items():
        if key not in figures:
            rundir.remove_report_file(plot.name)
    return ReportResult(index=index, images=[PLOTS[key].name for key in PLOTS if key in figures])
