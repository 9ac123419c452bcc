"""Cost-aware search on the bundled proxy: MnasNet's objective with the target at none's latency x 1.10.

Runs the default search (the embedded config) with ``objective: {name: mnas, target_ms: T}`` for
search seeds 0-2 and compares the winners with the unconstrained default search's winners of the
same seeds (``--unconstrained``, default the seeded searches of ``search_outcome``):

1. **The latency table**, measured once (ResNet-20 on the bundled data, batches 1 and 128, torch's
   threads) or read with ``--table``; every search predicts from this one table
   (``objective.latency_table``), so the three share their target. T is 1.10 x none's predicted
   latency at the training batch (128).
2. **The searches**, each in its own process, resumable as ``search_outcome.py``'s are.
3. **Each winner's measured latency**: the whole network, timed one after another at batch 1 and
   128 beside ``none``, and its prediction.
4. **Each winner stand-alone** at budget B with ``--standalone-seeds`` seeds (runs the stand-alone
   tables already hold are reused), then the constrained winners' mean against the unconstrained
   winners' mean, paired by stand-alone seed (a one-sided paired t-test of "constrained is worse").

    python benchmarks/constrained_search.py [--table FILE] [--w -0.07 | --hard] [--standalone-seeds 3]
    python benchmarks/constrained_search.py --searches-only     # steps 1-3
    python benchmarks/constrained_search.py --summary           # train nothing; what has finished

Writes ``results/constrained_search.json`` (``constrained_search_hard.json`` with ``--hard``).
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from common import RESULTS, repository_path, show_result, write_result  # first: Ray's loopback environment

import pandas as pd  # noqa: E402
import torch  # noqa: E402

import search_outcome  # noqa: E402
import standalone_table  # noqa: E402
from evaluator.latency import measure_table, predict_ms, read_table, write_table  # noqa: E402
from evaluator.models import build_model  # noqa: E402
from latency_prediction import timed_beside_prediction  # noqa: E402
from machine import describe_machine  # noqa: E402
from measures import paired_by_seed  # noqa: E402
from searchspace import load  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "benchmarks" / "runs" / "constrained_search"
UNCONSTRAINED = ROOT / "benchmarks" / "runs" / "search_outcome_seeded" / "default"
TRAINING_BATCH = 128  # the default search's; the objective predicts at it
NONE = "none|none|none|none"
SLACK = 1.10  # the target: none's latency x 1.10
REFERENCES = ("standalone_table_12seeds.parquet", "search_outcome_standalone.parquet")


def latency_table(path: Optional[Path], out: Path) -> Dict[str, Any]:
    """The study's table: ``path``'s, else the one measured before (``out``), else measured now."""
    if path is not None:
        table = read_table(str(path))
        write_table(table, str(out))
        return table
    if out.exists():
        return read_table(str(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    table = measure_table("resnet20", 32, 32, [1, TRAINING_BATCH])  # styled-glyphs: 32x32, 32 classes
    write_table(table, str(out))
    return table


def run_searches(folder: Path, objective: Dict[str, Any], seeds: int) -> List[Dict[str, Any]]:
    """The constrained searches (run, resumed or found finished), one row each with its winner."""
    rows = []
    for seed in range(seeds):
        out = folder / f"mnas-seed{seed}"
        seconds = search_outcome.run_search(out, "rl", seed, {"objective": objective}, folder / "seconds.json")
        rows.append(search_row(out, "mnas", seed, seconds))
    return rows


def search_row(out: Path, kind: str, seed: int, seconds: Optional[float]) -> Dict[str, Any]:
    winner = load(out / "winner.json")
    return {"search": kind, "search_seed": seed, "winner": winner.key, "search_seconds": seconds,
            "supernet_val_accuracy": winner.metadata.get("val_accuracy"), "run": repository_path(out)}


def unconstrained_searches(folder: Path, seeds: int) -> List[Dict[str, Any]]:
    """The default searches of the same seeds (finished before: their times are ``seconds.json``'s)."""
    timings = folder / "seconds.json"
    seconds = json.loads(timings.read_text()) if timings.exists() else {}
    return [search_row(folder / f"rl-seed{s}", "accuracy", s, seconds.get(f"rl-seed{s}")) for s in range(seeds)]


def measured_latencies(keys: Sequence[str], table: Dict[str, Any], kept: Path,
                       repeats: int = 20) -> Dict[str, Dict[str, float]]:
    """Each genotype's whole network timed (ms per image, median of ``repeats``) at batch 1 and the
    training batch, one after another, beside its prediction from ``table``. Timed once: kept in
    ``kept`` and read back, so that a later step's training does not disturb them."""
    found = json.loads(kept.read_text()) if kept.exists() else {}
    for key in dict.fromkeys([NONE, *keys]):
        if key in found:
            continue
        torch.manual_seed(0)
        model = build_model("resnet20", 32, key, combine="sequential")
        with torch.no_grad():
            found[key] = timed_beside_prediction(model, key, "sequential", table, (1, TRAINING_BATCH), repeats)
    kept.write_text(json.dumps(found, indent=1))
    return found


def reference_runs(budget: Dict[str, Any]) -> pd.DataFrame:
    """The stand-alone runs already made at ``budget`` (the 12-seed table, earlier search winners)."""
    tables = [search_outcome.table_at(RESULTS / name, budget) for name in REFERENCES]
    tables = [t for t in tables if len(t)]
    return pd.concat(tables, ignore_index=True).drop_duplicates(["genotype", "seed"]) if tables else pd.DataFrame()


def standalone_means(runs: pd.DataFrame, keys: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    found = {}
    for key in dict.fromkeys(keys):
        values = [100 * a for a in runs[runs["genotype"] == key]["test_accuracy"]]
        found[key] = {"mean": statistics.fmean(values) if values else None, "seeds": len(values),
                      "sd": statistics.stdev(values) if len(values) > 1 else None}
    return found


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path,
                        help="a latency table to use (default: measured once, kept in the runs folder)")
    parser.add_argument("--w", type=float, default=-0.07, help="the soft form's exponent (default MnasNet's -0.07)")
    parser.add_argument("--hard", action="store_true", help="the hard form instead of the soft")
    parser.add_argument("--seeds", type=int, default=3, help="search seeds (default 3)")
    parser.add_argument("--standalone-seeds", type=int, default=3)
    parser.add_argument("--unconstrained", type=Path, default=UNCONSTRAINED, help="the default searches' folder")
    parser.add_argument("--searches-only", action="store_true", help="the table, searches and latencies; no training")
    parser.add_argument("--summary", action="store_true", help="train nothing: what has finished")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = make_parser().parse_args(argv)
    name = "constrained_search" + ("_hard" if args.hard else "")
    folder = RUNS / ("hard" if args.hard else "soft")
    table = latency_table(args.table, RUNS / "latency.json")
    target = SLACK * predict_ms(table, NONE, TRAINING_BATCH)
    objective = {"name": "mnas", "target_ms": target, "w": args.w, "hard": args.hard,
                 "latency_table": str(RUNS / "latency.json")}
    constrained = (run_searches(folder, objective, args.seeds) if not args.summary else
                   [search_row(folder / f"mnas-seed{s}", "mnas", s, None) for s in range(args.seeds)
                    if (folder / f"mnas-seed{s}" / "winner.json").exists()])
    unconstrained = unconstrained_searches(args.unconstrained, args.seeds)
    c_keys, u_keys = [r["winner"] for r in constrained], [r["winner"] for r in unconstrained]
    latencies = measured_latencies([*c_keys, *u_keys], table, folder / "measured_latency.json")
    none_measured = latencies[NONE][f"measured_ms_batch{TRAINING_BATCH}"]
    for row in constrained + unconstrained:
        row.update(latencies[row["winner"]])
        row["within_target_predicted"] = row[f"predicted_ms_batch{TRAINING_BATCH}"] <= target
        row["measured_over_none"] = row[f"measured_ms_batch{TRAINING_BATCH}"] / none_measured
        row["within_target_measured"] = row["measured_over_none"] <= SLACK
    budget = standalone_table.make_budget(False)
    standalone = RESULTS / f"{name}_standalone.parquet"
    reference = reference_runs(budget)
    if args.summary or args.searches_only:
        runs = search_outcome.table_at(standalone, budget)
    else:
        runs = search_outcome.train_winners([*c_keys, *u_keys], args.standalone_seeds, budget, standalone, reference)
    means = standalone_means(runs, [*c_keys, *u_keys]) if len(runs) else {}
    for row in constrained + unconstrained:
        row["standalone"] = means.get(row["winner"])
    paired = paired_by_seed(runs, {"constrained": c_keys, "unconstrained": u_keys}, args.standalone_seeds) if len(runs) else None
    result = {
        "benchmark": name, "machine": describe_machine(),
        "settings": {"search": "the embedded default config with the objective below", "objective": {
            **objective, "latency_table": repository_path(RUNS / "latency.json")}, "target_rule": "none's predicted "
            f"latency at batch {TRAINING_BATCH} x {SLACK}", "search_seeds": args.seeds,
            "unconstrained": repository_path(args.unconstrained), "standalone_budget": budget,
            "standalone_seeds": args.standalone_seeds, "latency_table_device": table["device"]},
        "none_ms": latencies[NONE], "target_ms": target, "searches": constrained + unconstrained,
        "constrained_minus_unconstrained_points": paired,
        "targets": {
            "every constrained winner within the target (measured, against none measured x 1.10)":
                all(r["within_target_measured"] for r in constrained) if constrained else None,
            "constrained winners not significantly below the unconstrained (paired, one-sided p >= 0.05)":
                None if paired is None else paired["p_constrained_worse"] >= 0.05},
        "complete": len(constrained) == args.seeds and paired is not None
        and len(paired["seeds"]) >= args.standalone_seeds,
    }
    write_result(RESULTS / f"{name}.json", result)
    show_result(result)


if __name__ == "__main__":
    main()
