"""The race rule replayed on a stored stand-alone table, over a grid of min_seeds and alpha.

Each setting races every genotype of the table over ``--orders`` resampled seed orders, reading runs
instead of training them (``stage2.race.replay``), and reports what it picks, its regret against
the best all-seed mean (and held out: raced on half of the seeds, judged by the other half) and
the runs it uses. The targets: mean regret at most 0.1 point with at most 40 % of the table's runs.
Seconds on 2 cores; writes ``results/race_replay.json``.

    python benchmarks/race_replay.py [--table results/standalone_table_12seeds.parquet] [--orders 300]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Optional, Sequence

from common import RESULTS, repository_path, show_result, write_result  # first: Ray's loopback environment, the import path

from machine import describe_machine  # noqa: E402
from stage2.race import RaceSettings, read_table, replay  # noqa: E402

MIN_SEEDS = (2, 3, 4)
ALPHAS = (0.01, 0.05, 0.10, 0.20)
TARGET_REGRET, TARGET_RUNS = 0.1, 0.4


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, default=RESULTS / "standalone_table_12seeds.parquet")
    parser.add_argument("--orders", type=int, default=300)
    args = parser.parse_args(argv)
    table = read_table(str(args.table))
    start, rows = time.perf_counter(), []
    for min_seeds in MIN_SEEDS:
        for alpha in ALPHAS:
            summary = replay(table, RaceSettings(min_seeds=min_seeds, alpha=alpha), orders=args.orders)
            rows.append({"min_seeds": min_seeds, "alpha": alpha, **summary,
                         "targets_met": summary["regret_mean"] <= TARGET_REGRET and summary["runs_fraction"] <= TARGET_RUNS})
    defaults = RaceSettings()
    write_result(RESULTS / "race_replay.json", {
        "benchmark": "race_replay", "machine": describe_machine(),
        "settings": {"table": repository_path(args.table), "orders": args.orders,
                     "test": "one-sided paired t-test against the leader", "max_seeds": defaults.max_seeds},
        "targets": {"regret_mean_points_at_most": TARGET_REGRET, "runs_fraction_at_most": TARGET_RUNS},
        "defaults": {"min_seeds": defaults.min_seeds, "alpha": defaults.alpha},
        "rows": rows, "seconds": time.perf_counter() - start})
    show_result({"rows": [{k: r[k] for k in ("min_seeds", "alpha", "picks", "regret_mean", "runs_fraction",
                                             "held_out", "targets_met")} for r in rows]})


if __name__ == "__main__":
    main()
