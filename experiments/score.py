"""Score genotypes on a finished run's shared weights, as its derive stage does.

    python experiments/score.py RUN --known                       # how the search rates every known module
    python experiments/score.py RUN --genotypes srm gap|eca|none|none
    python experiments/score.py RUN --file genotypes.txt --out scores.parquet
    python experiments/score.py RUN --known --correction-steps 200   # each corrected first (slow)

Each genotype (a known module's name or a key ``cs|ce|ss|se``) is scored on the whole validation
split with the newest checkpoint's supernet and the run's BN mode, in this process (no Ray). Prints
the scores best first, with each reward's standard error (binomial over the images); --out also
writes them as Parquet. --file holds one name or key per line (# starts a comment).
--correction-steps N gives each genotype N steps of its own on its attention ops and the BN scales
and shifts before it is scored (the run's evaluator.correction_steps otherwise; about 0.3-0.5 s a
step on 2 cores), the shared weights restored after each.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

import torch

from rundir import RunDir
from search.rescore import score_genotypes
from searchspace import KNOWN
from searchspace.cli import ArgumentParser, UsageError, user_errors_exit_2


def parse(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = ArgumentParser(prog="score.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", metavar="RUN", help="a run directory (path or URI) with a checkpoint")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--genotypes", nargs="+", metavar="KEY", help="known module names or genotype keys")
    which.add_argument("--known", action="store_true", help=f"every known module: {', '.join(KNOWN)}")
    which.add_argument("--file", type=Path, metavar="LIST", help="a text file, one name or key per line")
    parser.add_argument("--out", type=Path, metavar="FILE.parquet", help="also write the scores here")
    parser.add_argument("--correction-steps", type=int, metavar="N",
                        help="per-genotype correction steps before scoring (default: the run's, usually 0)")
    return parser.parse_args(argv)


def read_list(path: Path) -> List[str]:
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise UsageError(f"--file {path}: cannot read it ({err.strerror or err})") from None
    entries = [line.split("#")[0].strip() for line in lines]
    entries = [entry for entry in entries if entry]
    if not entries:
        raise UsageError(f"--file {path}: no genotype in it")
    return entries


@user_errors_exit_2
def main(argv: Optional[List[str]] = None) -> int:
    args = parse(argv)
    genotypes = list(KNOWN) if args.known else read_list(args.file) if args.file else args.genotypes
    if args.out is not None and (args.out.is_dir() or not args.out.parent.is_dir()):
        raise UsageError(f"--out {args.out}: {'is a directory' if args.out.is_dir() else 'its folder does not exist'}")
    if args.correction_steps is not None and args.correction_steps < 0:
        raise UsageError(f"--correction-steps {args.correction_steps}: must be at least 0")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    scores = score_genotypes(RunDir(args.run), genotypes, args.correction_steps)
    print(scores.drop(columns="note").to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    failed = scores[scores["status"] != "ok"]
    for row in failed.itertuples():
        print(f"{row.genotype}: {row.status} {row.note}".rstrip(), file=sys.stderr)
    if args.out is not None:
        scores.to_parquet(args.out, index=False)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
