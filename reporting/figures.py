"""The report's plots as matplotlib figures (Agg canvas, no display needed), and a figure as PNG bytes.

Reward over rounds (per-round mean and the REINFORCE baseline, then each reward relative to its
round's mean), the op frequencies per decision over rounds, the policy's entropy over rounds and,
once stage 2 has run, the top-K against the baselines with the seed spread. Warm-up rounds (the
log's ``phase``) are shaded in every plot over rounds.

Search progress against supernet training: a round's mean reward rises as the shared weights
train, whatever the controller does, so a raw "best so far" line mostly draws the supernet's
training curve. A reward minus its round's mean compares the genotypes scored by the same weights
(on the same images, with common reward images); that is what the controller learns from.

The policy's probabilities per round are not logged, and the checkpoints keep only the last two
rounds' policies; a sample's ``log_prob`` is the joint probability of its four ops and cannot be
split per decision. So the heatmaps show the empirical frequency of each op among the round's
samples, an unbiased estimate of the policy's marginal probability of that op in that round
(with ``samples_per_round`` draws its noise is about ``sqrt(p(1-p)/n)``). An excitation is
counted among the samples whose branch exists: with squeeze ``none`` the canonical form forces
excitation ``none`` whatever the policy drew.
"""
from __future__ import annotations

import io
from typing import List

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Colormap
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from search.objective import pareto_front
from searchspace import BRANCHES, DECISION_NAMES, DECISIONS, KNOWN

DPI = 110
CANDIDATE_COLOUR, BASELINE_COLOUR = "tab:blue", "tab:orange"


def reward_figure(log: pd.DataFrame) -> Figure:
    """Top: every sample's reward (dots), the round's mean and the REINFORCE baseline (supernet
    training). Bottom: each reward minus its round's mean, and the round's best (search progress)."""
    figure = Figure(figsize=(8, 7), layout="constrained")
    raw, relative = figure.subplots(2, 1, sharex=True)
    finite = log[np.isfinite(log["reward"])]
    per_round = finite.groupby("round")["reward"]
    raw.scatter(finite["round"], finite["reward"], s=10, color="0.7", label="one sample")
    raw.plot(per_round.mean(), marker="o", color="tab:blue", label="mean of the round")
    raw.plot(log.groupby("round")["baseline"].mean(), linestyle="--", color="tab:red",
             label="REINFORCE baseline (before the update)")
    raw.set(ylabel="reward", title="Reward over rounds: the supernet training (round means rise with it)")
    above = finite["reward"] - per_round.transform("mean")
    relative.axhline(0.0, color="0.4", linewidth=0.8)
    relative.scatter(finite["round"], above, s=10, color="0.5", label="one sample")
    relative.plot(above.groupby(finite["round"]).max(), marker="^", color="tab:green", label="best of the round")
    relative.set(xlabel="round", ylabel="reward - round mean",
                 title="Search progress: each reward against the others of its round")
    for axes in (raw, relative):
        shade_warmup(axes, log)
        axes.grid(alpha=0.3)
        axes.legend(loc="best", fontsize="small")
    integer_rounds(relative, log)
    return figure


def warmup_rounds(log: pd.DataFrame) -> List[int]:
    """The rounds the log marks as warm-up (``phase`` "warmup"), ascending."""
    if "phase" not in log:
        return []
    return sorted(int(r) for r in log.loc[log["phase"] == "warmup", "round"].unique())


def shade_warmup(axes: Axes, log: pd.DataFrame) -> None:
    """A grey band over the warm-up rounds, labelled for the legend."""
    rounds = warmup_rounds(log)
    if rounds:
        axes.axvspan(rounds[0] - 0.5, rounds[-1] + 0.5, color="0.85", zorder=0,
                     label=f"warm-up (rounds {rounds[0]}-{rounds[-1]}): no controller update")


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
    warm = warmup_rounds(log)
    for axes in panels if warm else []:
        axes.axvline(warm[-1] + 0.5, color="tab:red", linestyle="--", linewidth=1.2)
    panels[-1].set_xlabel("round")
    integer_rounds(panels[-1], log)
    figure.colorbar(image, ax=list(panels), shrink=0.6, label="frequency in the round")
    figure.suptitle("Op probabilities per decision, estimated by each op's frequency among the round's samples"
                    + (f"\nleft of the red line: warm-up rounds {warm[0]}-{warm[-1]}, the warm-up sampler's draws"
                       if warm else ""))
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
    shade_warmup(axes, log)
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


def race_figure(rows: pd.DataFrame, winner: str) -> Figure:
    """The race: each model's paired mean difference to the winner (points) over the seeds both ran,
    round by round; a cross where a model was dropped. The winner ran every round, so every point pairs."""
    raced = rows[rows["round"].notna() & (rows["status"] == "ok")]
    by_seed = raced.pivot_table(index="seed", columns="name", values="test_accuracy", aggfunc="first")
    order = raced.groupby("seed")["round"].first().sort_values().index
    by_seed = 100 * by_seed.loc[order]
    last_round = raced.groupby("name")["round"].max()
    rounds = int(raced["round"].max())
    figure = Figure(figsize=(9, 5.5), layout="constrained")
    axes = figure.add_subplot()
    for name in by_seed.columns.drop(winner, errors="ignore"):
        paired = (by_seed[name] - by_seed[winner]).dropna()
        running = paired.expanding().mean()
        kind = raced[raced["name"] == name]["kind"].iloc[0]
        colour = CANDIDATE_COLOUR if kind == "candidate" else BASELINE_COLOUR
        steps = range(1, len(running) + 1)
        axes.plot(steps, running.to_numpy(), color=colour, alpha=0.7, linewidth=2.2 if name == "none" else 1.2)
        dropped = last_round[name] < rounds
        axes.scatter([len(running)], [running.iloc[-1]], marker="x" if dropped else "o", color=colour, zorder=3)
        axes.annotate(name, (len(running), running.iloc[-1]), xytext=(4, 0), textcoords="offset points",
                      fontsize="x-small", va="center")
    axes.axhline(0, color="black", linewidth=1, label=f"the winner, {winner}")
    axes.set(xlabel="round (one more seed for every survivor)", ylabel=f"mean paired difference to {winner} (points)",
             title="The race: searched genotypes (blue) and known modules (orange) against the winner\n"
                   "x: dropped (a paired t-test showed it worse than the leader); o: still in at the end")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize="small")
    return figure


def latency_figure(log: pd.DataFrame) -> Figure:
    """Every evaluated genotype's mean reward against its predicted latency, the Pareto front joined,
    the known modules named (a search whose objective weighs latency)."""
    ok = log[(log["status"] == "ok") & log["latency_ms"].notna()]
    points = ok.groupby("genotype").agg(reward=("reward", "mean"), latency=("latency_ms", "mean"))
    front = points[pareto_front(points["reward"].tolist(), points["latency"].tolist())].sort_values("latency")
    figure = Figure(figsize=(8, 5.5), layout="constrained")
    axes = figure.add_subplot()
    axes.scatter(points["latency"], 100 * points["reward"], s=14, color=CANDIDATE_COLOUR, alpha=0.5,
                 label="evaluated genotypes (mean reward)")
    axes.plot(front["latency"], 100 * front["reward"], "o-", color="black", markersize=4, label="Pareto front")
    for name, genotype in KNOWN.items():
        if genotype.key in points.index:
            row = points.loc[genotype.key]
            axes.scatter([row["latency"]], [100 * row["reward"]], marker="s", color=BASELINE_COLOUR, zorder=3)
            axes.annotate(name, (row["latency"], 100 * row["reward"]), xytext=(4, 2), textcoords="offset points",
                          fontsize="x-small")
    axes.set(xlabel="predicted latency (ms per image, from the run's latency table)", ylabel="reward (%)",
             title="Accuracy against latency: every evaluated genotype; known modules as squares")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize="small")
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
