"""The derive stage: the search's best genotypes re-scored on the whole validation set, the winner written."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

import numpy as np
import pandas as pd
import ray
from tqdm import tqdm

from evaluator.pool import WorkerPool
from evaluator.training import metric_value
from evaluator.worker import RewardResult, RewardTask
from rundir import RunDir
from rundir.schemas import unseparated_ranks
from search.config import SearchConfig
from search.costs import GenotypeCosts
from search.objective import objective_values
from searchspace import from_key

log = logging.getLogger(__name__)


class EvaluationFailed(ValueError):
    """Every evaluation of a round (or of the derive stage) failed: the search stops with one line and
    exit code 2 instead of learning from nothing. A round is logged but not checkpointed, so
    ``--resume`` computes it again."""


def measured_rewards(rows: pd.DataFrame, metric: str) -> pd.Series:
    """The log's rewards without the controller's entropy bonus: what the evaluator measured."""
    return metric_value(rows["val_accuracy"], rows["val_loss"], metric)


def known(value: Optional[float]) -> Optional[float]:
    """``value``, or None where it was not measured (None, or NaN: a file written before it was kept)."""
    return None if value is None or pd.isna(value) else float(value)


def listed(values: Any) -> Optional[np.ndarray]:
    """A per-image column's value as an array; None where it was not kept."""
    return None if values is None or (np.ndim(values) == 0 and pd.isna(values)) else np.asarray(values)


def whole_split_scores(keys: List[str], round_number: int, shared: Dict[str, Any], pool: WorkerPool,
                       rundir: RunDir, label: str, progress: bool) -> List[RewardResult]:
    """Each genotype's whole-split score with the shared weights of ``round_number``, in the order of
    ``keys``. Each finished score is saved (derive_scores.parquet) as it comes, so a derive stage
    killed part-way scores only the rest when resumed: with a per-genotype correction a candidate
    costs minutes. A score depends on its genotype and the weights alone, so the result is the same."""
    saved = rundir.read_derive_scores(round_number)
    rows = saved.to_dict("records")
    done = {row["genotype"]: RewardResult(-1, row["genotype"], row["reward"], row["val_accuracy"], row["val_loss"],
                                          "ok", int(row["params"]), wall_time_s=row["wall_time_s"],
                                          images=int(row["val_images"]), val_loss_sd=known(row.get("val_loss_sd")),
                                          image_losses=listed(row.get("image_loss")),
                                          image_correct=listed(row.get("image_correct")))
            for row in rows}
    todo = [key for key in keys if key not in done]

    def keep(result: RewardResult) -> None:
        bar.update()
        if result.status != "failed":  # a failure is tried again on resume
            rows.append({"round": round_number, "genotype": result.genotype, "reward": result.reward,
                         "val_accuracy": result.val_accuracy, "val_loss": result.val_loss, "params": result.params,
                         "val_images": result.images, "wall_time_s": result.wall_time_s,
                         "val_loss_sd": known(result.val_loss_sd), "image_loss": result.image_losses,
                         "image_correct": result.image_correct})
            rundir.write_derive_scores(pd.DataFrame(rows))

    with tqdm(total=len(keys), initial=len(keys) - len(todo), desc=label, unit="genotype", disable=not progress) as bar:
        fresh = pool.score(shared["weights"], [RewardTask(i, key, -1) for i, key in enumerate(todo)], on_result=keep)
    done.update((result.genotype, result) for result in fresh)
    return [done[key] for key in keys]


def derive(config: SearchConfig, run_id: str, shared: Dict[str, Any], service, pool: WorkerPool,
           rundir: RunDir, costs: Optional[GenotypeCosts] = None, progress: bool = True) -> None:
    """Re-score the best genotypes on the whole validation set; write candidates.parquet and winner.json,
    ranked by the objective (the reward itself under the accuracy objective). ``progress``: a bar over
    the candidates (with a per-genotype correction they take minutes each)."""
    by_mean = rundir.rank_rewards().head(config.derive_top)
    status = ray.get(service.status.remote())
    fresh = ray.get(service.propose.remote(config.derive_samples))["genotypes"]
    sources: Dict[str, str] = {}
    for key in by_mean["genotype"]:
        sources.setdefault(key, "mean_reward")
    sources.setdefault(status["greedy"], "greedy")
    for key in fresh:
        sources.setdefault(key, "sample")
    keys = list(sources)
    results = whole_split_scores(keys, config.rounds, shared, pool, rundir, f"derive {run_id}", progress)
    log_rewards = rundir.read_rewards()
    measured = [(key, result) for key, result in zip(keys, results) if result.status != "failed"]
    for result in results:
        if result.status == "failed":  # measured nothing: not a candidate
            log.warning("derive: %s left out, its evaluation failed: %s", result.genotype, "; ".join(result.notes))
    if not measured:
        raise EvaluationFailed(f"derive: all {len(results)} evaluations failed; the first: "
                               f"{'; '.join(results[0].notes) or 'failed'} (the checkpoint is kept: --resume redoes it)")
    rows = []
    for key, result in measured:
        seen = measured_rewards(log_rewards[(log_rewards["genotype"] == key) & (log_rewards["status"] == "ok")],
                                config.evaluator.reward_metric)
        g = from_key(key)
        latency = costs.latency_ms(key) if costs is not None else None
        objective = objective_values(config.objective, [result.reward], [latency])[0]
        rows.append({"genotype": key, **g.ops, "reward": result.reward, "val_accuracy": result.val_accuracy,
                     "latency_ms": pd.NA if latency is None else latency, "objective": objective,
                     "val_loss": result.val_loss, "search_mean_reward": float(seen.mean()) if len(seen) else float("nan"),
                     "search_count": int(len(seen)), "source": sources[key], "params": result.params,
                     "val_images": result.images, "val_loss_sd": known(result.val_loss_sd)})
    rows.sort(key=lambda r: (-r["objective"], r["genotype"]))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    rundir.write_candidates(pd.DataFrame(rows))
    top = rows[0]
    ranked = rundir.top_k()
    rundir.write_winner(from_key(top["genotype"]).with_metadata(
        run_id=run_id, rank=1, reward=top["reward"], objective=top["objective"],
        latency_ms=None if costs is None else top["latency_ms"], reward_se=None if pd.isna(ranked["reward_se"].iloc[0]) else float(ranked["reward_se"].iloc[0]),
        not_separated_from_ranks=unseparated_ranks(ranked)[0], val_accuracy=top["val_accuracy"], source=top["source"],
        search_mean_reward=top["search_mean_reward"], params=top["params"], rounds=config.rounds,
        written=datetime.now(timezone.utc).isoformat(timespec="seconds")))
