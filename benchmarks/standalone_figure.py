"""The stand-alone table as a figure: every run's test accuracy, genotypes best first.

One row per genotype (its mean over seeds decides the order), one marker per seed and a bar at
the mean; the known modules are named and drawn in colour, the drawn genotypes in grey; a dashed
line marks ``none``. What the ranking's noise looks like is then in plain view: where the seeds of
neighbouring rows overlap, one seed cannot order them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

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
    # below the axes, where no run's marker can hide under it; in rows of at most 7, so that many
    # seeds widen the legend no further than the axes
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.55 / (1.2 + 0.24 * len(order))), fontsize=7,
                ncol=min(len(seeds) + 2, 7), frameon=False)
    figure.tight_layout()
    figure.savefig(path, bbox_inches="tight")


def ranked(table: pd.DataFrame) -> list:
    """``[(name, its rows)]``, best mean test accuracy first."""
    means = table.groupby("name")["test_accuracy"].mean().sort_values(ascending=False)
    return [(name, table[table["name"] == name]) for name in means.index]


def plot_tau_by_seeds(document: Dict[str, Any], path: Path, title: str) -> None:
    """Write, as a PNG at ``path``, how far two disjoint k-seed means agree, against k.

    How many seeds a ground truth needs, in one picture: the measured tau of every genotype (with
    the range over the splits), of the known modules and of the genotypes spread over the space;
    the two seed-noise models' taus (``seed_noise``: from the variances, and from single seeds'
    ranks); the ceiling of a k-seed-mean ground truth (the rank model's true ranking against one
    k-seed mean); and the target. A table still being extended is read over the
    seeds every genotype has (``over_complete_seeds``).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    source = document.get("over_complete_seeds") or document
    figure = Figure(figsize=(6, 3.8), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    measured = by_k(source["mean_of_seeds_tau"])
    ks = list(measured)
    axes.fill_between(ks, [measured[k]["min"] for k in ks], [measured[k]["max"] for k in ks],
                      color="black", alpha=0.12, linewidth=0, label="all, range over the splits")
    axes.plot(ks, [measured[k]["mean"] for k in ks], "o-", color="black", label="all genotypes")
    for group, colour, label in (("known_modules", "tab:blue", "the known modules"),
                                 ("spread_genotypes", "0.5", "the spread genotypes")):
        if group in source.get("by_group", {}):
            points = by_k(source["by_group"][group]["mean_of_seeds_tau"])
            axes.plot(list(points), [p["mean"] for p in points.values()], "s-", color=colour, markersize=4, label=label)
    modelled = set()
    for model, figure_of, style, colour, label in (
            ("model", "tau", "--", "tab:orange", "variance model, all"),
            ("rank_model", "tau", "-.", "tab:green", "rank model, all"),
            ("rank_model", "noiseless_against_mean_tau", ":", "tab:green", "rank model: true ranking vs one k-seed mean")):
        points = by_k(source["seed_noise_points"].get(model, {}).get(figure_of, {}))
        if points:
            axes.plot(list(points), list(points.values()), style, color=colour, label=label)
            modelled |= set(points)
    axes.axhline(0.7, color="tab:red", linestyle=":", linewidth=1, label="target 0.7")
    seeds = source["seed_noise_points"].get("seeds", 0)  # those every genotype has
    axes.set(xlabel=f"seeds averaged on each side  (from {seeds} seeds)", ylabel="Kendall tau",
             title=title, ylim=(0, 1))
    axes.set_xticks(sorted(set(ks) | modelled))
    axes.grid(linewidth=0.4, alpha=0.5)
    axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, bbox_inches="tight")


def by_k(points: Dict[Any, Any]) -> Dict[int, Any]:
    """``points`` keyed by int k in order: written to JSON and read back, the keys are strings."""
    return dict(sorted((int(k), v) for k, v in points.items()))
