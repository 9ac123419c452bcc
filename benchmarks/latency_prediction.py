"""How well the per-op latency table predicts a whole network's latency, on this CPU.

Builds the table (``evaluator.latency.measure_table``) for ResNet-20 on the bundled data's shape,
then times the 9 known modules and ``--random`` more genotypes (drawn with a fixed seed) as whole
networks, one genotype after another, at batch 1 and at the training batch, and compares each
prediction with its measurement (ratio predicted / measured). Targets: median error at most 10 %
at the training batch. Measure on a quiet machine; the JSON records the load average.

    python benchmarks/latency_prediction.py [--random 11] [--threads 2] [--repeats 20]
"""
from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Optional, Sequence

from common import RESULTS, show_result, write_result  # first: Ray's loopback environment, the import path

import torch  # noqa: E402

from evaluator.latency import measure_table, predict_ms  # noqa: E402
from evaluator.models import build_model  # noqa: E402
from evaluator.standalone import latency_ms_per_image  # noqa: E402
from machine import describe_machine  # noqa: E402
from searchspace import KNOWN, all_genotypes  # noqa: E402
from searchspace.known import KNOWN_COMBINE  # noqa: E402

TRAINING_BATCH = 128  # the default search's batch (evaluator.training.batch_size)
TARGET_MEDIAN_ERROR = 0.10


def timed_beside_prediction(model: torch.nn.Module, key: str, combine: str, table: dict,
                            batches: Sequence[int], repeats: int) -> dict:
    """The whole network timed at each batch (ms per image, 32x32 images) beside ``table``'s prediction."""
    row = {}
    for batch in batches:
        images = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        row[f"measured_ms_batch{batch}"] = latency_ms_per_image(model, images, repeats)
        row[f"predicted_ms_batch{batch}"] = predict_ms(table, key, batch, combine)
    return row


def genotypes(extra: int, seed: int = 0) -> dict:
    """The known modules by name, and ``extra`` other canonical genotypes by key."""
    known = {name: g.key for name, g in KNOWN.items()}
    pool = sorted(g.key for g in all_genotypes() if g.key not in known.values())
    return {**known, **{key: key for key in random.Random(seed).sample(pool, extra)}}


def errors(rows: Sequence[dict], batch: int) -> dict:
    ratios = [r[f"predicted_ms_batch{batch}"] / r[f"measured_ms_batch{batch}"] for r in rows]
    off = [abs(q - 1) for q in ratios]
    return {"median_ratio": statistics.median(ratios), "median_error": statistics.median(off),
            "worst_error": max(off), "worst": rows[off.index(max(off))]["name"]}


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random", type=int, default=11, help="genotypes besides the known modules")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the default search's num_cpus)")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    batches = [1, TRAINING_BATCH]
    start = time.perf_counter()
    table = measure_table("resnet20", 32, 10, batches, repeats=args.repeats)
    table_seconds = time.perf_counter() - start
    rows = []
    for name, key in genotypes(args.random).items():
        combine = KNOWN_COMBINE.get(name, "sequential")
        model = build_model("resnet20", 10, name if name in KNOWN else key, combine=combine)
        rows.append({"name": name, "genotype": key, "combine": combine,
                     **timed_beside_prediction(model, key, combine, table, batches, args.repeats)})
    result = {
        "benchmark": "latency_prediction", "machine": describe_machine(),
        "settings": {"arch": "resnet20", "image_size": 32, "batches": batches, "threads": args.threads,
                     "repeats": args.repeats, "genotypes": len(rows)},
        "target": {"median_error_at_training_batch_at_most": TARGET_MEDIAN_ERROR},
        "errors": {f"batch{b}": errors(rows, b) for b in batches},
        "met": errors(rows, TRAINING_BATCH)["median_error"] <= TARGET_MEDIAN_ERROR,
        "table_seconds": table_seconds, "seconds": time.perf_counter() - start, "rows": rows, "table": table}
    write_result(RESULTS / "latency_prediction.json", result)
    show_result({k: result[k] for k in ("errors", "met", "table_seconds", "seconds")})


if __name__ == "__main__":
    main()
