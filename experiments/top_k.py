"""The best genotypes of a search run, from its Parquet files.

    python experiments/top_k.py DIR [-k N] [--format table|json|csv] [--pareto]

DIR is a run directory (a local path or a filesystem URI such as s3://bucket/runs/a). The ranking
comes from DIR/candidates.parquet once the search has finished (rewards re-scored on the whole
validation set), else from the rewards log so far (mean reward per genotype), so it can be read
while the search runs.

``reward_se`` is each reward's standard error as a measurement (binomial over the validation
images for an accuracy, the per-image losses' spread for a likelihood reward, or the spread of
the search's rewards); the table ends by saying which genotypes rank 1
cannot be told apart from on these figures, and, once stage 2 has raced them, the race's answer.
Under an objective that weighs latency the objective ranks, and ``--pareto`` lists the candidates
no other beats on both accuracy and predicted latency.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

import pandas as pd

from rundir import RunDir
from rundir.schemas import separation_note
from search.objective import pareto_front
from searchspace.cli import ArgumentParser, UsageError, positive_int, user_errors_exit_2

FORMATS = ("table", "json", "csv")


def as_table(ranked: pd.DataFrame) -> str:
    return ranked.to_string(index=False, float_format=lambda x: f"{x:.4f}")


def race_answer(rundir: RunDir) -> str:
    """The race's sentence, once stage 2 has raced this run."""
    winner = rundir.read_winner()
    if winner is None or winner.metadata.get("stage") != "race":
        return ""
    found = winner.metadata["race"]
    return f"stage 2's race, {found['runs']} runs over seeds {found['seeds']}: {found['sentence']}"


def as_json(ranked: pd.DataFrame) -> str:
    # NaN (a candidate without a loss, say) becomes null so that any JSON reader parses the output.
    records = ranked.astype(object).where(ranked.notna(), None).to_dict("records")
    return json.dumps(records, indent=2, allow_nan=False)


def as_csv(ranked: pd.DataFrame) -> str:
    return ranked.to_csv(index=False).rstrip("\n")


def main(argv: Optional[List[str]] = None) -> int:
    parser = ArgumentParser(prog="top_k.py", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", metavar="DIR", help="the run directory (path or URI)")
    parser.add_argument("-k", metavar="N", type=positive_int, default=10, help="how many genotypes (default 10)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
    parser.add_argument("--pareto", action="store_true",
                        help="only the non-dominated genotypes, accuracy against predicted latency")
    return show(parser.parse_args(argv))


@user_errors_exit_2
def show(args: argparse.Namespace) -> int:
    rundir = RunDir(args.dir)
    ranked = rundir.top_k() if args.pareto else rundir.top_k(args.k)
    if args.pareto:
        if "latency_ms" not in ranked.columns:
            raise UsageError(f"--pareto: {rundir.show(rundir.root)} has no latencies: its objective is accuracy "
                             "(a search with objective mnas predicts them)")
        ranked = ranked[pareto_front(ranked["reward"], ranked["latency_ms"])].sort_values("latency_ms").head(args.k)
    print({"table": as_table, "json": as_json, "csv": as_csv}[args.format](ranked))
    if args.format == "table" and not args.pareto:
        answer = race_answer(rundir)
        print(answer or separation_note(ranked))
    return 0


if __name__ == "__main__":
    sys.exit(main())
