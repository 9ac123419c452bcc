"""Plots of a search run and an HTML page that shows them: DIR/report/*.png and DIR/report/index.html.

    python experiments/report.py DIR [-k K]

Reward over rounds, the op probabilities per decision (estimated from the samples), the policy's
entropy, the top-K table, the winner and, once stage 2 has run, the top-K against the baselines.
Works while the search is still running and before stage 2.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from reporting import write_report
from rundir import RunDir
from searchspace.cli import ArgumentParser, positive_int, user_errors_exit_2


@user_errors_exit_2
def main(argv: Optional[List[str]] = None) -> int:
    parser = ArgumentParser(prog="report.py", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", metavar="DIR", help="the run directory (path or URI)")
    parser.add_argument("-k", metavar="K", type=positive_int, default=10, help="rows of the top-K table (default 10)")
    args = parser.parse_args(argv)
    rundir = RunDir(args.dir)
    result = write_report(rundir, k=args.k)
    for name in result.images:
        print(rundir.show(rundir.path("report", name)))
    print(f"open {rundir.show(result.index)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
