"""A genotype JSON of a search run's rank-R genotype (docs/formats.md's format, canonical form).

    python experiments/export_genotype.py DIR [--rank R] [--out FILE]

The ranking is top_k.py's. The JSON's metadata says where it came from: run_id, rank, reward,
count (successful search evaluations) and source. Without --out the JSON goes to stdout; with
--out (a path or URI) the file is written atomically: an existing FILE is replaced only once
the new one is complete, and left as it was on any error.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from rundir import RunDir, write_file_atomic
from searchspace.cli import ArgumentParser, user_errors_exit_2


def main(argv: Optional[List[str]] = None) -> int:
    parser = ArgumentParser(prog="export_genotype.py", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", metavar="DIR", help="the run directory (path or URI)")
    parser.add_argument("--rank", metavar="R", type=int, default=1,
                        help="which genotype of the ranking (default 1, the best)")
    parser.add_argument("--out", metavar="FILE", help="write the JSON here instead of stdout")
    return export(parser.parse_args(argv))


@user_errors_exit_2
def export(args: argparse.Namespace) -> int:
    text = RunDir(args.dir).genotype_at_rank(args.rank).to_json()
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_file_atomic(args.out, text.encode())
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
