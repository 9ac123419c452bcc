"""Stage 2's results read by a person: per-model summary over seeds, the winner, and their text forms.

Needs pandas only (no Ray Tune), so the report can draw stage 2's figures without importing Tune.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Dict, Optional

import pandas as pd

from searchspace import Genotype, from_key
from stage2.race import RaceResult, verdict
from stage2.settings import Stage2Error


def sort_trials(frame: pd.DataFrame) -> pd.DataFrame:
    """Candidates by search rank, then baselines by name; seeds ascending (retrain.parquet's order)."""
    order = frame["kind"].map({"candidate": 0, "baseline": 1})
    frame = frame.assign(_order=order).sort_values(["_order", "search_rank", "name", "seed"], na_position="last",
                                                   kind="mergesort")
    return frame.drop(columns="_order").reset_index(drop=True)


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Per model: seeds finished (``ok``) out of trials, mean and sample std of test accuracy over
    the finished seeds (std NaN with one seed), mean test loss, cost figures. Candidates first,
    each kind by mean test accuracy (ties: search rank, name)."""
    records = []
    for (kind, name), trials in rows.groupby(["kind", "name"], sort=False):
        ok = trials[trials["status"] == "ok"]
        accuracy = ok["test_accuracy"].astype("float64")
        records.append({
            "kind": kind, "name": name, "genotype": trials["genotype"].iloc[0],
            "search_rank": trials["search_rank"].iloc[0], "seeds_ok": len(ok), "trials": len(trials),
            "seeds": sorted(int(s) for s in ok["seed"]),
            "test_accuracy_mean": accuracy.mean() if len(ok) else math.nan,
            "test_accuracy_std": accuracy.std(ddof=1) if len(ok) > 1 else math.nan,
            "test_loss_mean": ok["test_loss"].astype("float64").mean() if len(ok) else math.nan,
            "params": ok["params"].iloc[0] if len(ok) else pd.NA, "macs": ok["macs"].iloc[0] if len(ok) else pd.NA,
            "latency_ms": ok["latency_ms"].astype("float64").mean() if len(ok) else math.nan,
            "predicted_latency_ms": (trials["predicted_latency_ms"].astype("float64").iloc[0]
                                     if "predicted_latency_ms" in trials else math.nan),
        })
    summary = pd.DataFrame(records)
    summary["order"] = summary["kind"].map({"candidate": 0, "baseline": 1})
    summary = summary.sort_values(["order", "test_accuracy_mean", "search_rank", "name"],
                                  ascending=[True, False, True, True], na_position="last", kind="mergesort")
    return summary.drop(columns="order").reset_index(drop=True)


def choose_winner(summary: pd.DataFrame, plan: Dict[str, Any]) -> Genotype:
    """The candidate with the best mean test accuracy over its seeds (baselines compete only for
    ``best_baseline``), with its figures and provenance as metadata."""
    finished = summary[summary["seeds_ok"] > 0]
    candidates = finished[finished["kind"] == "candidate"]
    if candidates.empty:
        raise Stage2Error("no candidate finished training; retrain.parquet's status and error columns say why")
    best = candidates.iloc[0]  # summarise sorts candidates by mean test accuracy
    baselines = finished[finished["kind"] == "baseline"]
    top_baseline = baselines.iloc[0] if not baselines.empty else None
    return from_key(best["genotype"]).with_metadata(
        run_id=plan["run_id"], stage="retrain", rank=int(best["search_rank"]),
        search_reward=plan["entries"][best["name"]]["search_reward"],
        test_accuracy_mean=json_number(best["test_accuracy_mean"]), test_accuracy_std=json_number(best["test_accuracy_std"]),
        seeds=list(best["seeds"]), epochs=plan["epochs"], params=json_number(best["params"]),
        macs=json_number(best["macs"]), latency_ms=json_number(best["latency_ms"]),
        best_baseline=None if top_baseline is None else top_baseline["name"],
        best_baseline_test_accuracy_mean=None if top_baseline is None else json_number(top_baseline["test_accuracy_mean"]),
        best_baseline_test_accuracy_std=None if top_baseline is None else json_number(top_baseline["test_accuracy_std"]),
        dataset=plan["standalone"]["dataset"], arch=plan["standalone"]["arch"],
        written=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def race_winner(summary: pd.DataFrame, plan: Dict[str, Any], result: RaceResult) -> Genotype:
    """The race's winner, a searched genotype or a known module, with its figures and the verdict
    (``race``: the paired comparisons, the round each model was dropped, and the sentence)."""
    entry = plan["entries"][result.winner]
    row = summary.set_index("name").loc[result.winner]
    known = [name for name, e in plan["entries"].items() if e["kind"] == "baseline"]
    labels = {name: name if e["kind"] == "baseline" else f"{name} ({e['genotype']})"
              for name, e in plan["entries"].items()}
    found = verdict(result, known, plan["race"]["alpha"], labels)
    best_known = found.get("best_known")
    base = summary.set_index("name").loc[best_known] if best_known is not None else None
    return from_key(entry["genotype"]).with_metadata(
        run_id=plan["run_id"], stage="race", name=result.winner, kind=entry["kind"], rank=entry["search_rank"],
        search_reward=entry["search_reward"], test_accuracy_mean=json_number(row["test_accuracy_mean"]),
        test_accuracy_std=json_number(row["test_accuracy_std"]), seeds=list(row["seeds"]), epochs=plan["epochs"],
        params=json_number(row["params"]), macs=json_number(row["macs"]), latency_ms=json_number(row["latency_ms"]),
        best_baseline=best_known,
        best_baseline_test_accuracy_mean=None if base is None else json_number(base["test_accuracy_mean"]),
        best_baseline_test_accuracy_std=None if base is None else json_number(base["test_accuracy_std"]),
        race={**{key: json_ready(value) for key, value in found.items()}, "settings": plan["race"]},
        dataset=plan["standalone"]["dataset"], arch=plan["standalone"]["arch"],
        written=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def json_ready(value: Any) -> Any:
    """Floats of the verdict as JSON allows them (NaN: None), inside dicts too."""
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    return None if isinstance(value, float) and math.isnan(value) else value


def format_summary(summary: pd.DataFrame) -> str:
    """The summary as a plain-text table: accuracies in percent, mean and sample std over seeds."""
    return summary_table(summary).to_string(index=False)


def summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary's columns as a person reads them (strings; ``-`` where there is no figure)."""
    def percent(value: float) -> str:
        return "-" if pd.isna(value) else f"{100 * value:.2f}"

    return pd.DataFrame({
        "kind": summary["kind"], "name": summary["name"], "genotype": summary["genotype"],
        "seeds": [f"{ok}/{n}" for ok, n in zip(summary["seeds_ok"], summary["trials"])],
        "test acc %": summary["test_accuracy_mean"].map(percent),
        "std": summary["test_accuracy_std"].map(percent),
        "params": summary["params"].map(lambda v: "-" if pd.isna(v) else f"{int(v):,}"),
        "MMACs": summary["macs"].map(lambda v: "-" if pd.isna(v) else f"{int(v) / 1e6:.2f}"),
        "ms/image": summary["latency_ms"].map(lambda v: "-" if pd.isna(v) else f"{v:.3f}"),
        **({"predicted ms": summary["predicted_latency_ms"].map(lambda v: "-" if pd.isna(v) else f"{v:.3f}")}
           if summary["predicted_latency_ms"].notna().any() else {}),
    })


def describe_winner(winner: Genotype) -> str:
    meta = winner.metadata
    if meta.get("stage") == "race":
        found = meta["race"]
        return (f"race: {found['runs']} runs, {len(found['seeds'])} seeds; it stopped at {found['stopped']}\n"
                f"winner: {meta['name']} = {winner.key}, test accuracy {found['mean']:.2f} ± {found['se'] or 0:.2f} % "
                f"(s.e.) over seeds {found['seeds']}\n{found['sentence']}")
    spread = "" if meta["test_accuracy_std"] is None else f" ± {100 * meta['test_accuracy_std']:.2f}"
    line = (f"winner: {winner.key} (search rank {meta['rank']}), test accuracy "
            f"{100 * meta['test_accuracy_mean']:.2f}{spread} % over {len(meta['seeds'])} seed"
            f"{'s' if len(meta['seeds']) != 1 else ''}")
    if meta["best_baseline"] is not None and meta["best_baseline_test_accuracy_mean"] is not None:
        line += f"; best baseline {meta['best_baseline']} {100 * meta['best_baseline_test_accuracy_mean']:.2f} %"
    return line


def json_number(value: Any) -> Optional[float]:
    """A JSON-safe number: NaN and missing become None, numpy and pandas scalars plain Python."""
    if value is None or pd.isna(value):
        return None
    return int(value) if float(value).is_integer() and not isinstance(value, float) else float(value)
