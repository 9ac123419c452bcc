"""The stand-alone table as a figure: every run's test accuracy, genotypes best first.

One row per genotype (its mean over seeds decides the order), one marker per seed and a bar at
the mean; the known modules are named and drawn in colour, the drawn genotypes in grey; a dashed
line marks ``none``. What the ranking's noise looks like is then in plain view: where the seeds of
neighbouring rows overlap, one seed cannot order them.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from searchspace import KNOWN

MARKERS = "os^Dv<>P"


def plot_table(table: pd.DataFrame, path: Path, title: str) -> None:
    """Write the figure of ``table`` (one row per (genotype, seed)) as a PNG at ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    order = ranked(table)
    figure = Figure(figsize=(7, 1.2 + 0.24 * len(order)), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for row, (name, group) in enumerate(order):
        known = name in KNOWN
        colour = "tab:blue" if known else "0.45"
        for seed, accuracy in zip(group["seed"], 100 * group["test_accuracy"]):
            axes.plot(accuracy, row, MARKERS[int(seed) % len(MARKERS)], color=colour, markersize=4, alpha=0.8)
        axes.plot(100 * group["test_accuracy"].mean(), row, "|", color="black", markersize=11)
    none = [group for name, group in order if name == "none"]
    if none:
        axes.axvline(100 * none[0]["test_accuracy"].mean(), color="tab:red", linestyle="--", linewidth=1)
    axes.set_yticks(range(len(order)), [name for name, _ in order])
    for label, (name, _) in zip(axes.get_yticklabels(), order):
        label.set_color("tab:blue" if name in KNOWN else "0.3")
    axes.invert_yaxis()  # best at the top, as in the README's table
    seeds = sorted(int(s) for s in table["seed"].unique())
    for seed in seeds:  # a legend of the seeds' markers
        axes.plot([], [], MARKERS[seed % len(MARKERS)], color="0.45", markersize=4, label=f"seed {seed}")
    axes.plot([], [], "|", color="black", markersize=11, label="mean")
    if none:
        axes.plot([], [], "--", color="tab:red", linewidth=1, label="none's mean")
    axes.set(xlabel="test accuracy %  (blue: the known modules)", title=title)
    axes.grid(axis="x", linewidth=0.4, alpha=0.5)
    # below the axes, where no run's marker can hide under it
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.55 / (1.2 + 0.24 * len(order))), fontsize=7,
                ncol=len(seeds) + 2, frameon=False)
    figure.tight_layout()
    figure.savefig(path, bbox_inches="tight")


def ranked(table: pd.DataFrame) -> list:
    """``[(name, its rows)]``, best mean test accuracy first."""
    means = table.groupby("name")["test_accuracy"].mean().sort_values(ascending=False)
    return [(name, table[table["name"] == name]) for name in means.index]
