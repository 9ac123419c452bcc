"""Which candidates the derive stage can tell from its rank 1: the gaps' standard errors unpaired
against paired image by image.

Every candidate of a derive stage is scored on the same validation images, so the difference
between two of them can be measured image by image, which removes how hard each image is. This
re-scores a finished search's top candidates as its derive stage did (``search.rescore.score_genotypes``
with the per-image figures: the newest checkpoint, the whole validation split, the run's BN mode and
per-genotype correction), checks that each reward equals the one in its ``candidates.parquet``, and
reports for each rank its gap to rank 1, that gap's standard error both ways
(``rundir.schemas.gap_standard_errors``), and whether 1.96 of them separate it from rank 1.

Default: the corrected search's runs (``runs/search_outcome/corrected``), the top 6 of each. Under
the correction a candidate costs about 65 s on 2 cores. Writes ``results/derive_separation.json``.

    python benchmarks/derive_separation.py [--runs DIR ...] [--top 6]
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from common import RESULTS, fail, repository_path, show_result, write_result  # first: Ray's loopback environment

from machine import describe_machine  # noqa: E402
from rundir import RunDir  # noqa: E402
from rundir.schemas import gap_standard_errors  # noqa: E402
from search.rescore import score_genotypes  # noqa: E402

CORRECTED = Path(__file__).resolve().parent / "runs" / "search_outcome" / "corrected"


def separation(run: Path, top: int) -> Dict[str, Any]:
    """One run's top ``top`` candidates re-scored with per-image figures, and their gaps to rank 1."""
    rundir = RunDir(str(run))
    candidates = rundir.read_candidates()
    if candidates is None:
        fail(f"--runs {run}: no candidates.parquet (the search has not finished its derive stage)")
    candidates = candidates.head(top)
    started = time.perf_counter()
    scores = score_genotypes(rundir, list(candidates["genotype"]), per_image=True).set_index("genotype")
    seconds = time.perf_counter() - started
    ranked = candidates[["rank", "genotype"]].join(scores, on="genotype")  # score_genotypes gave reward_se
    unpaired = gap_standard_errors(ranked, None)
    paired = gap_standard_errors(ranked, ranked[["genotype", "reward", "image_loss", "image_correct"]])
    rows = []
    for i, row in enumerate(ranked.itertuples()):
        gap = float(ranked["reward"].iloc[0] - row.reward)
        rows.append({"rank": int(row.rank), "genotype": row.genotype, "reward": row.reward,
                     "reward_se": row.reward_se, "gap": gap if i else None,
                     "gap_se_unpaired": None if i == 0 else float(unpaired.iloc[i]),
                     "gap_se_paired": None if i == 0 else float(paired.iloc[i]),
                     "separated_unpaired": None if i == 0 else bool(gap > 1.96 * unpaired.iloc[i]),
                     "separated_paired": None if i == 0 else bool(gap > 1.96 * paired.iloc[i])})
    others = rows[1:]
    return {
        "run": repository_path(run), "reward_metric": "likelihood" if (ranked["reward"] != ranked["val_accuracy"]).any()
        else "accuracy", "val_images": int(ranked["val_images"].iloc[0]), "seconds": round(seconds, 1),
        # the re-scores must be the derive stage's own, or the gaps are of something else
        "max_reward_difference_from_candidates": float((ranked["reward"] - candidates["reward"].to_numpy()).abs().max()),
        "separated_unpaired": sum(r["separated_unpaired"] for r in others),
        "separated_paired": sum(r["separated_paired"] for r in others),
        "paired_over_unpaired_se_median": statistics.median(r["gap_se_paired"] / r["gap_se_unpaired"] for r in others),
        "ranks": rows,
    }


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, nargs="+", default=None,
                        help="finished search runs (default: every finished one in runs/search_outcome/corrected)")
    parser.add_argument("--top", type=int, default=6, help="candidates re-scored per run, from rank 1 (default 6)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = make_parser().parse_args(argv)
    if args.top < 2:
        fail(f"--top {args.top}: at least 2 (rank 1 and one to compare with it)")
    runs: List[Path] = args.runs or sorted(p.parent for p in CORRECTED.glob("*/candidates.parquet"))
    if not runs:
        fail(f"no finished runs in {CORRECTED}: run benchmarks/search_outcome.py --config corrected first, or give --runs")
    measured = [separation(run, args.top) for run in runs]
    result = {
        "benchmark": "derive_separation", "machine": describe_machine(),
        "settings": {"top": args.top, "scoring": "search.rescore.score_genotypes (the derive stage's), per image",
                     "separated": "gap to rank 1 at least 1.96 standard errors"},
        "runs": measured,
        "seconds": round(sum(m["seconds"] for m in measured), 1),
    }
    write_result(RESULTS / "derive_separation.json", result)
    show_result(result)


if __name__ == "__main__":
    main()
