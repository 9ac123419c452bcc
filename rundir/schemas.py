"""The columns of the run directory's Parquet files (docs/formats.md) and the conversion of a frame to them."""
from __future__ import annotations

import math
from typing import Any, List, Optional, Tuple

import numpy as np
import pandas as pd
import pyarrow as pa

from searchspace import DECISION_NAMES
from searchspace.cli import first_line

OPS = [pa.field(name, pa.string()) for name in DECISION_NAMES]

# docs/formats.md's columns in its order; ``attempts`` and ``note`` are ours (docs/formats.md allows added columns):
# how many evaluations a reward took, > 1 when a worker died and the reward was computed again
# elsewhere, and what happened (lost workers, errors), empty when nothing did. ``phase`` (issue 15):
# "warmup" for a round of the supernet's warm-up (no controller involved: log_prob, entropy,
# baseline and advantage are NaN), "search" otherwise; a round written before it existed reads as "search".
REWARD_SCHEMA = pa.schema([
    pa.field("run_id", pa.string()),
    pa.field("round", pa.int32()),
    pa.field("sample", pa.int32()),
    pa.field("worker", pa.int32()),
    pa.field("genotype", pa.string()),
    *OPS,
    *[pa.field(name, pa.float64()) for name in (
        "reward", "val_accuracy", "val_loss", "log_prob", "entropy", "baseline", "advantage")],
    pa.field("params", pa.int64()),
    pa.field("status", pa.string()),
    pa.field("wall_time_s", pa.float64()),
    pa.field("timestamp", pa.timestamp("us", tz="UTC")),
    pa.field("attempts", pa.int32()),
    pa.field("note", pa.string()),
    pa.field("phase", pa.string()),
    # objective (docs/formats.md): the predicted latency (ms per image), multiply-adds per image, and
    # what the controller learned from; null, null and the reward under the accuracy objective
    pa.field("latency_ms", pa.float64()),
    pa.field("macs", pa.int64()),
    pa.field("objective", pa.float64()),
])
PHASES = ("warmup", "search")

CANDIDATE_SOURCES = ("mean_reward", "greedy", "sample")

# The derive stage's output: ``reward`` is re-scored on the whole validation set.
CANDIDATE_SCHEMA = pa.schema([
    pa.field("rank", pa.int32()),
    pa.field("genotype", pa.string()),
    *OPS,
    pa.field("reward", pa.float64()),
    pa.field("val_accuracy", pa.float64()),
    pa.field("val_loss", pa.float64()),
    pa.field("search_mean_reward", pa.float64()),
    pa.field("search_count", pa.int64()),
    pa.field("source", pa.string()),
    pa.field("params", pa.int64()),
    pa.field("val_images", pa.int64()),  # the images ``reward`` was measured on (null in runs before it was kept)
    # the spread (sd) of the per-image losses behind ``val_loss`` (null in runs before it was kept)
    pa.field("val_loss_sd", pa.float64()),
    pa.field("latency_ms", pa.float64()),  # predicted, under an objective that weighs latency; else null
    pa.field("objective", pa.float64()),  # what ranks: the reward itself under the accuracy objective
])

# The derive stage's scores as they finish (derive_scores.parquet), so that a resumed derive stage
# scores only the candidates it has not: ``round`` is the checkpoint whose shared weights they were
# measured with (a search continued to more rounds derives again from scratch).
DERIVE_SCORE_SCHEMA = pa.schema([
    pa.field("round", pa.int64()),
    pa.field("genotype", pa.string()),
    pa.field("reward", pa.float64()),
    pa.field("val_accuracy", pa.float64()),
    pa.field("val_loss", pa.float64()),
    pa.field("params", pa.int64()),
    pa.field("val_images", pa.int64()),
    pa.field("wall_time_s", pa.float64()),
    pa.field("val_loss_sd", pa.float64()),
    # each validation image's cross-entropy and whether it was classified right, in the split's
    # order (null in runs before they were kept): rank 1 and another candidate are compared image
    # by image (:func:`gap_standard_errors`)
    pa.field("image_loss", pa.list_(pa.float64())),
    pa.field("image_correct", pa.list_(pa.bool_())),
])

RETRAIN_KINDS = ("candidate", "baseline")

# Stage 2 (stage2/retrain.py): one row per (model, seed) trial of stand-alone training.
# ``name`` is "rank-R" for the search's rank-R genotype, the KNOWN name for a baseline;
# ``epochs`` counts the epochs the trial trained (fewer than asked when ASHA stopped it);
# ``latency_ms`` is per image at batch 1. Figures of a trial that did not finish are null/NaN.
RETRAIN_SCHEMA = pa.schema([
    pa.field("genotype", pa.string()),
    *OPS,
    pa.field("kind", pa.string()),
    pa.field("name", pa.string()),
    pa.field("search_rank", pa.int32()),
    pa.field("seed", pa.int32()),
    pa.field("round", pa.int32()),  # the race's round; null in a stage 2 that trains every seed
    pa.field("epochs", pa.int32()),
    *[pa.field(name, pa.float64()) for name in ("test_accuracy", "test_loss", "val_accuracy", "val_loss")],
    pa.field("params", pa.int64()),
    pa.field("macs", pa.int64()),
    pa.field("latency_ms", pa.float64()),
    pa.field("latency_ms_batch64", pa.float64()),
    pa.field("predicted_latency_ms", pa.float64()),  # batch 1, from the run's latency table; null without one
    pa.field("wall_time_s", pa.float64()),
    pa.field("status", pa.string()),
    pa.field("error", pa.string()),
])

# Columns every top-k table starts with, whichever file it was ranked from.
# ``reward_se``: the standard error of ``reward`` as a measurement (binomial over the validation
# images for candidates, the spread of the search's rewards over their count for the log); the
# supernet's bias is not in it.
TOP_K_COLUMNS = ["rank", "genotype", *DECISION_NAMES, "reward", "reward_se", "count", "source"]


def table_from_frame(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """``frame``'s columns as ``schema`` says, in its order; missing, unknown or unconvertible
    columns raise ValueError naming them. Floats keep NaN as NaN; ``pd.NA`` (no value was measured:
    a failed evaluation's reward) is written as null. Timestamps are floored to microseconds in UTC
    (naive ones are taken as UTC)."""
    missing = [name for name in schema.names if name not in frame.columns]
    if missing:
        raise ValueError(f"missing columns: {', '.join(missing)}")
    unknown = [str(name) for name in frame.columns if name not in schema.names]
    if unknown:
        raise ValueError(f"unknown columns: {', '.join(unknown)} (add them to the schema first)")
    arrays = []
    for field in schema:
        column = frame[field.name]
        if pa.types.is_timestamp(field.type):
            column = pd.to_datetime(column, utc=True).dt.floor("us")
        try:
            arrays.append(float_array(column, field.type) if pa.types.is_floating(field.type)
                          else pa.array(column, type=field.type, from_pandas=True))
        except (pa.ArrowException, TypeError, ValueError) as err:
            raise ValueError(f"column {field.name!r} is not {field.type}: {first_line(err)}") from None
    return pa.Table.from_arrays(arrays, schema=schema)


# Columns added after runs were first written: a frame without them is written with them null.
LATER_COLUMNS = ("val_loss_sd", "image_loss", "image_correct")


def with_unmeasured(frame: pd.DataFrame, schema: pa.Schema) -> pd.DataFrame:
    """``frame`` with each of :data:`LATER_COLUMNS` that ``schema`` has and it lacks, null: scores
    from code, or runs, from before they were kept."""
    missing = [name for name in LATER_COLUMNS if name in schema.names and name not in frame.columns]
    return frame.assign(**{name: [None] * len(frame) for name in missing})


def float_array(column: pd.Series, kind: pa.DataType) -> pa.Array:
    """A float column with NaN kept as NaN and ``pd.NA``/None as null."""
    missing = column.map(lambda value: value is None or value is pd.NA).to_numpy(dtype=bool)
    values = pd.to_numeric(column.where(~missing, float("nan"))).to_numpy(dtype="float64")
    return pa.array(values, type=kind, mask=missing if missing.any() else None, from_pandas=False)


def unseparated_ranks(ranked: pd.DataFrame) -> Tuple[List[int], List[int]]:
    """Of a top-k table's ranks after the first: those whose reward is within 1.96 standard errors
    of rank 1's (``gap_se``: paired image by image where the derive stage kept per-image figures,
    else the two standard errors combined, cautious where the scores share images), and those
    whose gap to rank 1 has no standard error."""
    if ranked.empty:
        return [], []
    first = ranked.iloc[0]
    gaps = ranked["gap_se"] if "gap_se" in ranked.columns else np.hypot(first["reward_se"], ranked["reward_se"])
    tied, unknown = [], []
    for row, se in zip(ranked.iloc[1:].itertuples(), gaps.iloc[1:]):
        if math.isnan(se):
            unknown.append(int(row.rank))
        elif first["reward"] - row.reward <= 1.96 * se:  # equal scores with no spread are not separated
            tied.append(int(row.rank))
    return tied, unknown


def image_terms(score: pd.Series, losses: Any, correct: Any) -> Optional[np.ndarray]:
    """Each image's part in ``score``'s reward, to first order: its correctness when the reward is
    the accuracy, ``-reward * loss`` when it is the likelihood ``exp(-val_loss)`` (the delta
    method); None where the per-image figures were not kept."""
    if losses is None or correct is None or np.ndim(losses) == 0:
        return None
    if score["reward"] == score["val_accuracy"]:
        return np.asarray(correct, dtype="float64")
    if is_likelihood(score["reward"], score["val_loss"]):
        return -score["reward"] * np.asarray(losses, dtype="float64")
    return None


def gap_standard_errors(ranked: pd.DataFrame, per_image: Optional[pd.DataFrame]) -> pd.Series:
    """For each rank of a top-k table, the standard error of rank 1's reward minus its own (NaN for
    rank 1). Paired image by image where ``per_image`` (derive_scores rows: ``genotype``, ``reward``,
    ``image_loss``, ``image_correct``) holds both scores on the same images: the two share every
    image, so the pairing removes how hard each image is. Else the two ``reward_se`` combined."""
    unpaired = pd.Series(np.hypot(ranked["reward_se"].iloc[0], ranked["reward_se"]), index=ranked.index)
    terms: List[Optional[np.ndarray]] = [None] * len(ranked)
    if per_image is not None and len(per_image):
        kept = {(row.genotype, row.reward): (row.image_loss, row.image_correct) for row in per_image.itertuples()}
        for i, (_, score) in enumerate(ranked.iterrows()):
            figures = kept.get((score["genotype"], score["reward"]))
            terms[i] = None if figures is None else image_terms(score, *figures)
    gaps = []
    for i, own in enumerate(terms):
        first = terms[0]
        if i == 0:
            gaps.append(math.nan)
        elif first is not None and own is not None and len(first) == len(own) and len(own) > 1:
            gaps.append(float(np.std(first - own, ddof=1) / math.sqrt(len(own))))
        else:
            gaps.append(float(unpaired.iloc[i]))
    return pd.Series(gaps, index=ranked.index, dtype="float64")


def separation_note(ranked: pd.DataFrame) -> str:
    """A person's reading of ``unseparated_ranks``, ending with what would separate them."""
    if len(ranked) < 2:
        return ""
    tied, unknown = unseparated_ranks(ranked)
    lines = []
    if tied:
        lines.append(f"rank 1 is not separated from rank{'s' if len(tied) > 1 else ''} {', '.join(map(str, tied))}: "
                     "their rewards differ by less than 1.96 standard errors, so these figures cannot order them")
    elif not unknown:
        lines.append("rank 1 is separated from every other rank shown (more than 1.96 standard errors)")
    if unknown:
        lines.append(f"no standard error for the gap between rank 1 and rank{'s' if len(unknown) > 1 else ''} "
                     f"{', '.join(map(str, unknown))} "
                     "(one reward, or a run from before the derive stage kept its image count or, under the "
                     "likelihood reward, its losses' spread)")
    lines.append("a supernet's scores rank stand-alone accuracy only loosely: race the shortlist against the "
                 "known modules with retrain_topk.py DIR --race")
    return "\n".join(lines)


def reward_se(scores: pd.DataFrame, images: pd.Series) -> pd.Series:
    """The standard error of each reward as a measurement over ``images`` validation images:
    binomial where the reward is the accuracy; where it is the likelihood ``exp(-val_loss)``
    (``evaluator.reward_metric: likelihood``), ``reward * val_loss_sd / sqrt(images)`` by the delta
    method. NaN (unknown) where no image count, or for a likelihood no loss spread, was kept."""
    reward = scores["reward"].astype("float64")
    counted = images.astype("float64").where(images > 0)
    binomial = (reward * (1 - reward) / counted) ** 0.5
    spread = scores["val_loss_sd"].astype("float64") if "val_loss_sd" in scores.columns else math.nan
    likelihood = reward * spread / counted ** 0.5
    is_accuracy = reward == scores["val_accuracy"].astype("float64")
    return binomial.where(is_accuracy, likelihood.where(is_likelihood(reward, scores["val_loss"]) & ~is_accuracy))


def is_likelihood(reward, val_loss):
    """Whether a reward is the likelihood ``exp(-val_loss)`` (``evaluator.reward_metric: likelihood``),
    floats or columns alike."""
    return np.isclose(reward, np.exp(-np.asarray(val_loss, dtype="float64")), rtol=1e-12, atol=0.0)


def rank_candidates(candidates: pd.DataFrame, per_image: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """candidates.parquet as a top-k table: :data:`TOP_K_COLUMNS`, then what the derive stage adds,
    ``gap_se`` among it (:func:`gap_standard_errors`; ``per_image``: the derive stage's scores)."""
    ranked = candidates.rename(columns={"search_count": "count"})
    images = ranked["val_images"] if "val_images" in ranked.columns else pd.Series(math.nan, index=ranked.index)
    ranked = ranked.assign(reward_se=reward_se(ranked, images))
    ranked = ranked.assign(gap_se=gap_standard_errors(ranked, per_image))
    extra = ["objective", "latency_ms"] if "latency_ms" in ranked.columns and ranked["latency_ms"].notna().any() else []
    return ranked[TOP_K_COLUMNS + ["gap_se"] + extra + ["val_accuracy", "val_loss", "search_mean_reward", "params"]]
