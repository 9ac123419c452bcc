"""Stage 2: the search's top-K genotypes and hand-designed baselines trained from scratch on Ray Tune.

Shared-weight rewards only rank genotypes; a genotype is believed once it beats the known modules
in stand-alone training over several seeds. One Tune trial trains one (model, seed) with
:func:`evaluator.standalone.train_standalone`, reporting once per epoch (validation accuracy, for
ASHA); its last report also carries the test figures. The training settings are the run's own
(dataset, its options and seed, arch, reduction, gate bias) so that stage 2 measures what the
search ranked.

Tune keeps its experiment in ``<out>/tune/retrain`` and what it trains in ``<out>/tune/plan.json``,
so an interrupted stage 2 continues with ``resume=True`` (``Tuner.restore``). On a cluster
``<out>`` must be storage every node reaches (``s3://...``, ``gs://...`` or a shared disk).
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Sequence

import pandas as pd
import ray
import torch
from ray import tune
from ray.tune.schedulers import ASHAScheduler

from controller.config import SearchConfig, build
from controller.rundir import RunDir
from evaluator.data import DatasetSplits
from evaluator.standalone import StandaloneConfig, load_config_dataset, train_standalone
from searchspace import KNOWN, Genotype, from_key

DEFAULT_K = 5
DEFAULT_BASELINES = ("none", "se", "eca", "cbam")
DEFAULT_SEEDS = 3
EXPERIMENT = "retrain"
METRIC = "val_accuracy"
# Per-trial settings that stage 2 sets itself, not the run's config.
PER_TRIAL = ("seed", "combine")


class Stage2Error(ValueError):
    """Stage 2 cannot run as asked; the message says why and what to do."""


@dataclass
class Stage2Settings:
    """What the user asks for; None means: the default, or on resume what the interrupted stage 2 used.

    ``seeds`` is a count (seeds 0..seeds-1). ``overrides`` sets further StandaloneConfig fields
    (``batch_size``, ``lr``, ``latency_repeats``, ...)."""

    k: Optional[int] = None
    baselines: Optional[Sequence[str]] = None
    seeds: Optional[int] = None
    epochs: Optional[int] = None
    asha: Optional[bool] = None
    cpus_per_trial: Optional[float] = None
    gpus_per_trial: Optional[float] = None
    max_failures: int = 2
    resume: bool = False
    ray_address: Optional[str] = None
    overrides: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Stage2Result:
    rows: pd.DataFrame  # retrain.parquet's rows
    summary: pd.DataFrame  # one row per model: mean and std over seeds
    winner: Genotype  # what winner.json holds
    resumed: bool


# -- the plan: what to train ----------------------------------------------------------------

def check_settings(settings: Stage2Settings) -> None:
    """Refuse numbers and names that make no sense, naming the flag."""
    for name in ("k", "seeds", "epochs"):
        value = getattr(settings, name)
        if value is not None and value < 1:
            raise Stage2Error(f"{name} must be at least 1, got {value}")
    cpus, gpus = settings.cpus_per_trial, settings.gpus_per_trial
    if cpus is not None and not (math.isfinite(cpus) and cpus > 0):
        raise Stage2Error(f"cpus per trial must be above 0, got {cpus}")
    if gpus is not None and not (math.isfinite(gpus) and gpus >= 0):
        raise Stage2Error(f"gpus per trial must be 0 or more, got {gpus}")
    if gpus is not None and gpus > 1 and gpus != int(gpus):
        raise Stage2Error(f"gpus per trial above 1 must be a whole number (Ray shares only one GPU), got {gpus}")
    if settings.max_failures < 0:
        raise Stage2Error(f"max failures must be 0 or more, got {settings.max_failures}")
    unknown = [name for name in settings.baselines or () if name not in KNOWN]
    if unknown:
        raise Stage2Error(f"unknown baseline {unknown[0]!r}; valid: {', '.join(KNOWN)}")


def run_settings(rundir: RunDir) -> SearchConfig:
    """The run's config.yaml as a SearchConfig (stage 2 takes its data and network settings)."""
    return build(SearchConfig, rundir.read_config())


def standalone_settings(config: SearchConfig, epochs: Optional[int], overrides: Dict[str, Any]) -> Dict[str, Any]:
    """StandaloneConfig fields from the run's evaluator config; the data seed is the search's, so the
    splits are the ones the search saw. Optimisation keeps StandaloneConfig's recipe."""
    evaluator = config.evaluator
    known = {f.name for f in fields(StandaloneConfig)}
    bad = sorted(set(overrides) - known) + sorted(set(overrides) & set(PER_TRIAL))
    if bad:
        raise Stage2Error(f"cannot override StandaloneConfig field {bad[0]!r}; valid: "
                          f"{', '.join(sorted(known - set(PER_TRIAL)))}")
    values = {"arch": evaluator.arch, "dataset": evaluator.dataset, "data_dir": evaluator.data_dir,
              "download": evaluator.download, "data_seed": evaluator.seed,
              "dataset_options": dict(evaluator.dataset_options), "reduction": evaluator.reduction,
              "gate_bias": evaluator.gate_bias, "channels_last": evaluator.channels_last,
              "eval_batch_size": evaluator.val_batch_size, **overrides}
    if epochs is not None:
        values["epochs"] = epochs
    standalone = asdict(StandaloneConfig(**values))  # checks epochs and the like
    return {k: v for k, v in standalone.items() if k not in PER_TRIAL}


def candidate_entries(rundir: RunDir, k: Optional[int], combine: str) -> Dict[str, Dict[str, Any]]:
    """The top-k genotypes as plan entries, labelled ``rank-R``."""
    ranked = rundir.top_k()
    if k is not None and k > len(ranked):
        raise Stage2Error(f"-k {k} is more than the run has: {len(ranked)} ranked genotype"
                          f"{'s' if len(ranked) != 1 else ''} in {rundir.show(rundir.root)}")
    entries = {}
    for row in ranked.head(k if k is not None else DEFAULT_K).itertuples():
        entries[f"rank-{row.rank}"] = {"kind": "candidate", "name": f"rank-{row.rank}", "search_rank": int(row.rank),
                                       "genotype": row.genotype, "attention": row.genotype, "combine": combine,
                                       "search_reward": float(row.reward), "source": str(row.source)}
    return entries


def baseline_entries(names: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """Known modules by name; ``combine`` None keeps each one's published rule (BAM: parallel)."""
    return {name: {"kind": "baseline", "name": name, "search_rank": None, "genotype": KNOWN[name].key,
                   "attention": name, "combine": None, "search_reward": None, "source": "known"}
            for name in dict.fromkeys(names)}


def make_plan(rundir: RunDir, settings: Stage2Settings) -> Dict[str, Any]:
    """Everything a stage 2 trains and how, as JSON-ready values."""
    config = run_settings(rundir)
    baselines = DEFAULT_BASELINES if settings.baselines is None else tuple(settings.baselines)
    seeds = settings.seeds or DEFAULT_SEEDS
    entries = {**candidate_entries(rundir, settings.k, config.evaluator.combine), **baseline_entries(baselines)}
    standalone = standalone_settings(config, settings.epochs, settings.overrides)
    return {
        "run_id": rundir.run_id, "k": sum(e["kind"] == "candidate" for e in entries.values()),
        "baselines": list(dict.fromkeys(baselines)), "seeds": list(range(seeds)), "epochs": standalone["epochs"],
        "asha": bool(settings.asha), "max_failures": settings.max_failures,
        "cpus_per_trial": settings.cpus_per_trial if settings.cpus_per_trial is not None else config.evaluator.num_cpus,
        "gpus_per_trial": settings.gpus_per_trial if settings.gpus_per_trial is not None else config.evaluator.num_gpus,
        "ray_address": config.ray_address, "standalone": standalone, "entries": entries,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def check_resumable(plan: Dict[str, Any], settings: Stage2Settings, where: str) -> None:
    """A resumed stage 2 trains what it started with, where it started (Tune keeps each trial's
    resources): a flag that asks for something else is refused."""
    asked = {"k": settings.k, "seeds": settings.seeds, "epochs": settings.epochs, "asha": settings.asha,
             "cpus_per_trial": settings.cpus_per_trial, "gpus_per_trial": settings.gpus_per_trial,
             "baselines": list(dict.fromkeys(settings.baselines)) if settings.baselines is not None else None}
    stored = {**plan, "seeds": len(plan["seeds"])}
    for name, value in asked.items():
        if value is not None and value != stored[name]:
            raise Stage2Error(f"the stage 2 in {where} was started with {name.replace('_', ' ')} {stored[name]}, "
                              f"not {value}; drop the flag to resume it, or remove {where} to start another")


# -- one trial ------------------------------------------------------------------------------

def epoch_metrics(row: Dict[str, Any]) -> Dict[str, Any]:
    """An epoch's history row as a Tune report. A diverged epoch has no validation score; ASHA needs
    a number, and 0 ranks it last."""
    return {**row, METRIC: row["val_accuracy"] if row["val_accuracy"] is not None else 0.0}


def train_trial(config: Dict[str, Any], plan: Dict[str, Any], data: DatasetSplits) -> None:
    """Ray Tune function trainable: train ``config["model"]`` with ``config["seed"]``.

    Reports once per epoch, so Tune's ``training_iteration`` is the epoch (ASHA's time axis); the
    last epoch's report is held back until the test split is scored and goes out with the figures.
    """
    entry = plan["entries"][config["model"]]
    torch.set_num_threads(max(1, int(plan["cpus_per_trial"])))
    standalone = StandaloneConfig(**plan["standalone"], seed=int(config["seed"]), combine=entry["combine"])
    held: List[Dict[str, Any]] = []

    def report(row: Dict[str, Any]) -> None:
        if held:
            tune.report(epoch_metrics(held.pop()))
        held.append(row)

    device = "cuda" if plan["gpus_per_trial"] > 0 else "cpu"
    result = train_standalone(standalone, entry["attention"], device=device, report=report, data=data)
    final = {key: result.metrics()[key] for key in (
        "status", "test_accuracy", "test_loss", "val_accuracy", "val_loss", "params", "macs",
        "latency_ms_batch1", "latency_ms_batch64", "wall_time_s")}
    tune.report({**epoch_metrics(held.pop()), **final, "epochs_trained": len(result.history)})


# -- running it on Tune ---------------------------------------------------------------------

def connect(address: Optional[str]) -> bool:
    """Join the cluster at ``address`` (or RAY_ADDRESS) or start a local Ray; True when Ray is local."""
    address = address or os.environ.get("RAY_ADDRESS")
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, configure_logging=False) if address \
            else ray.init(include_dashboard=False)
    return address is None


def check_local_resources(plan: Dict[str, Any]) -> None:
    """On a local Ray instance a trial asking for more than the machine has would wait forever."""
    available = ray.cluster_resources()
    for resource, key in (("CPU", "cpus_per_trial"), ("GPU", "gpus_per_trial")):
        if plan[key] > available.get(resource, 0):
            raise Stage2Error(f"{key.replace('_', ' ')} is {plan[key]:g} but the local Ray instance has "
                              f"{available.get(resource, 0):g} {resource}s; lower it or give --ray-address")


def make_tuner(rundir: RunDir, plan: Dict[str, Any], data: DatasetSplits, restore: bool, verbose: int) -> tune.Tuner:
    storage, filesystem = rundir.stage2_storage()
    trainable = tune.with_resources(tune.with_parameters(train_trial, plan=plan, data=data),
                                    {"cpu": plan["cpus_per_trial"], "gpu": plan["gpus_per_trial"]})
    if restore:
        return tune.Tuner.restore(f"{storage}/{EXPERIMENT}", trainable, resume_unfinished=True,
                                  restart_errored=True, storage_filesystem=filesystem)
    scheduler = ASHAScheduler(time_attr="training_iteration", max_t=plan["epochs"], grace_period=1,
                              reduction_factor=2) if plan["asha"] else None
    return tune.Tuner(
        trainable,
        param_space={"model": tune.grid_search(list(plan["entries"])), "seed": tune.grid_search(plan["seeds"])},
        tune_config=tune.TuneConfig(metric=METRIC, mode="max", scheduler=scheduler),
        run_config=tune.RunConfig(name=EXPERIMENT, storage_path=storage, storage_filesystem=filesystem,
                                  failure_config=tune.FailureConfig(max_failures=plan["max_failures"]),
                                  verbose=verbose),
    )


def prepare(rundir: RunDir, settings: Stage2Settings) -> tuple[Dict[str, Any], bool]:
    """The plan to run and whether Tune restores an interrupted experiment. Never runs over a
    finished or interrupted stage 2 unless asked to resume it."""
    check_settings(settings)
    rundir.check()
    stored = rundir.read_stage2_plan()
    storage, filesystem = rundir.stage2_storage()
    where = rundir.show(storage)
    if not settings.resume:
        if stored is not None:
            raise Stage2Error(f"{where} already holds a stage 2; pass --resume to continue it, "
                              f"or remove {where} to start another")
        return make_plan(rundir, settings), False
    if stored is None:
        raise Stage2Error(f"nothing to resume: no stage 2 in {where}; drop --resume to start one")
    check_resumable(stored, settings, where)
    return stored, tune.Tuner.can_restore(f"{storage}/{EXPERIMENT}", storage_filesystem=filesystem)


def retrain(rundir: RunDir, settings: Stage2Settings, *, verbose: int = 1) -> Stage2Result:
    """Run (or resume) stage 2; write retrain.parquet and winner.json; return what they hold."""
    plan, restore = prepare(rundir, settings)
    local = connect(settings.ray_address or plan["ray_address"])
    if local:
        check_local_resources(plan)
    data = load_config_dataset(StandaloneConfig(**plan["standalone"]))
    if not settings.resume:
        rundir.write_stage2_plan(plan)
    results = make_tuner(rundir, plan, data, restore, verbose).fit()
    finished = results.num_terminated + results.num_errors
    if finished < len(results):  # Tune returns on Ctrl-C with its state saved; nothing is final yet
        raise Stage2Error(f"stage 2 was interrupted with {finished} of {len(results)} trials finished; "
                          "continue it with --resume")
    rows = collect_rows(results, plan)
    rundir.write_retrain(rows)
    summary = summarise(rows)
    winner = choose_winner(summary, plan)
    rundir.write_winner(winner)
    return Stage2Result(rows=rows, summary=summary, winner=winner, resumed=settings.resume)


# -- results --------------------------------------------------------------------------------

def collect_rows(results: tune.ResultGrid, plan: Dict[str, Any]) -> pd.DataFrame:
    """One retrain.parquet row per trial. ``status``: the run's own (``ok``, ``nan``), ``stopped``
    (ASHA ended it early, no test figures) or ``error`` (failed after every retry)."""
    rows = []
    for result in results:
        entry = plan["entries"][result.config["model"]]
        metrics = result.metrics or {}
        finished = "test_accuracy" in metrics
        status = "error" if result.error is not None else metrics["status"] if finished else "stopped"

        def figure(key: str) -> Optional[float]:
            return metrics.get(key) if finished and status != "error" else None

        rows.append({
            "genotype": entry["genotype"], **from_key(entry["genotype"]).ops, "kind": entry["kind"],
            "name": entry["name"], "search_rank": entry["search_rank"], "seed": int(result.config["seed"]),
            "epochs": int(metrics.get("epochs_trained", metrics.get("training_iteration", 0))),
            "test_accuracy": figure("test_accuracy"), "test_loss": figure("test_loss"),
            "val_accuracy": metrics.get("val_accuracy"), "val_loss": metrics.get("val_loss"),
            "params": figure("params"), "macs": figure("macs"), "latency_ms": figure("latency_ms_batch1"),
            "latency_ms_batch64": figure("latency_ms_batch64"), "wall_time_s": figure("wall_time_s"),
            "status": status, "error": _first_line(result.error) if result.error is not None else "",
        })
    frame = pd.DataFrame(rows)
    for column in ("test_accuracy", "test_loss", "val_accuracy", "val_loss", "latency_ms", "latency_ms_batch64",
                   "wall_time_s"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in ("search_rank", "params", "macs"):
        frame[column] = pd.array(frame[column].tolist(), dtype="Int64")
    return sort_trials(frame)


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
        test_accuracy_mean=_number(best["test_accuracy_mean"]), test_accuracy_std=_number(best["test_accuracy_std"]),
        seeds=list(best["seeds"]), epochs=plan["epochs"], params=_number(best["params"]),
        macs=_number(best["macs"]), latency_ms=_number(best["latency_ms"]),
        best_baseline=None if top_baseline is None else top_baseline["name"],
        best_baseline_test_accuracy_mean=None if top_baseline is None else _number(top_baseline["test_accuracy_mean"]),
        best_baseline_test_accuracy_std=None if top_baseline is None else _number(top_baseline["test_accuracy_std"]),
        dataset=plan["standalone"]["dataset"], arch=plan["standalone"]["arch"],
        written=datetime.now(timezone.utc).isoformat(timespec="seconds"))


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
    })


def describe_winner(winner: Genotype) -> str:
    meta = winner.metadata
    spread = "" if meta["test_accuracy_std"] is None else f" ± {100 * meta['test_accuracy_std']:.2f}"
    line = (f"winner: {winner.key} (search rank {meta['rank']}), test accuracy "
            f"{100 * meta['test_accuracy_mean']:.2f}{spread} % over {len(meta['seeds'])} seed"
            f"{'s' if len(meta['seeds']) != 1 else ''}")
    if meta["best_baseline"] is not None and meta["best_baseline_test_accuracy_mean"] is not None:
        line += f"; best baseline {meta['best_baseline']} {100 * meta['best_baseline_test_accuracy_mean']:.2f} %"
    return line


def _number(value: Any) -> Optional[float]:
    """A JSON-safe number: NaN and missing become None, numpy and pandas scalars plain Python."""
    if value is None or pd.isna(value):
        return None
    return int(value) if float(value).is_integer() and not isinstance(value, float) else float(value)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__

