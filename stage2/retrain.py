"""Stage 2 on Ray Tune: one trial per (model, seed), run or resumed, and its rows collected.

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

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import pandas as pd
import ray
import torch
from ray import tune
from ray.tune.schedulers import ASHAScheduler

from evaluator.data import DatasetSplits
from evaluator.standalone import StandaloneConfig, load_config_dataset, train_standalone
from rundir import RunDir
from search.cluster import connect
from searchspace import Genotype, from_key
from searchspace.cli import first_line
from stage2.plan import check_resumable, make_plan
from stage2.rounds import run_race
from stage2.settings import Stage2Error, Stage2Settings, check_settings
from stage2.summary import choose_winner, race_winner, sort_trials, summarise

EXPERIMENT = "retrain"
METRIC = "val_accuracy"


@dataclass
class Stage2Result:
    rows: pd.DataFrame  # retrain.parquet's rows
    summary: pd.DataFrame  # one row per model: mean and std over seeds
    winner: Genotype  # what winner.json holds
    resumed: bool


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


def check_local_resources(plan: Dict[str, Any]) -> None:
    """On a local Ray instance a trial asking for more than the machine has would wait forever."""
    available = ray.cluster_resources()
    for resource, key in (("CPU", "cpus_per_trial"), ("GPU", "gpus_per_trial")):
        if plan[key] > available.get(resource, 0):
            raise Stage2Error(f"{key.replace('_', ' ')} is {plan[key]:g} but the local Ray instance has "
                              f"{available.get(resource, 0):g} {resource}s; lower it or give --ray-address")


def make_tuner(rundir: RunDir, plan: Dict[str, Any], data: DatasetSplits, verbose: int, experiment: str = EXPERIMENT,
               models: Optional[List[str]] = None, seeds: Optional[List[int]] = None) -> tune.Tuner:
    """The Tune experiment ``experiment`` over ``models`` x ``seeds`` (default: the plan's), restored
    where an interrupted one exists so that its finished trials are not run again."""
    storage, filesystem = rundir.stage2_storage()
    trainable = tune.with_resources(tune.with_parameters(train_trial, plan=plan, data=data),
                                    {"cpu": plan["cpus_per_trial"], "gpu": plan["gpus_per_trial"]})
    if tune.Tuner.can_restore(f"{storage}/{experiment}", storage_filesystem=filesystem):
        return tune.Tuner.restore(f"{storage}/{experiment}", trainable, resume_unfinished=True,
                                  restart_errored=True, storage_filesystem=filesystem)
    scheduler = ASHAScheduler(time_attr="training_iteration", max_t=plan["epochs"], grace_period=1,
                              reduction_factor=2) if plan["asha"] else None
    models = list(plan["entries"]) if models is None else models
    return tune.Tuner(
        trainable,
        param_space={"model": tune.grid_search(models), "seed": tune.grid_search(seeds or plan["seeds"])},
        tune_config=tune.TuneConfig(metric=METRIC, mode="max", scheduler=scheduler),
        run_config=tune.RunConfig(name=experiment, storage_path=storage, storage_filesystem=filesystem,
                                  failure_config=tune.FailureConfig(max_failures=plan["max_failures"]),
                                  verbose=verbose),
    )


def prepare(rundir: RunDir, settings: Stage2Settings) -> Dict[str, Any]:
    """The plan to run. Never runs over a finished or interrupted stage 2 unless asked to resume it."""
    check_settings(settings)
    rundir.check()
    stored = rundir.read_stage2_plan()
    where = rundir.show(rundir.stage2_storage()[0])
    if not settings.resume:
        if stored is not None:
            raise Stage2Error(f"{where} already holds a stage 2; pass --resume to continue it, "
                              f"or remove {where} to start another")
        return make_plan(rundir, settings)
    if stored is None:
        raise Stage2Error(f"nothing to resume: no stage 2 in {where}; drop --resume to start one")
    check_resumable(stored, settings, where)
    return stored


def retrain(rundir: RunDir, settings: Stage2Settings, *, verbose: int = 1) -> Stage2Result:
    """Run (or resume) stage 2, a grid or a race; write retrain.parquet and winner.json; return what they hold."""
    plan = prepare(rundir, settings)
    local = connect(settings.ray_address or plan["ray_address"])
    if local:
        check_local_resources(plan)
    data = load_config_dataset(StandaloneConfig(**plan["standalone"]))
    if not settings.resume:
        rundir.write_stage2_plan(plan)
    if plan.get("race"):
        def train_round(experiment: str, models: List[str], seed: int) -> pd.DataFrame:
            return collect_rows(fit(make_tuner(rundir, plan, data, verbose, experiment, models, [seed]), plan["asha"]),
                                plan)

        race_result = run_race(rundir, plan, train_round)[1]
        rows = rundir.read_retrain()  # in its file's order, also when every round was read back
        summary = summarise(rows)
        winner = race_winner(summary, plan, race_result)
    else:
        results = fit(make_tuner(rundir, plan, data, verbose), plan["asha"])
        rows = collect_rows(results, plan)
        rundir.write_retrain(rows)
        summary = summarise(rows)
        winner = choose_winner(summary, plan)
    rundir.write_winner(winner)
    return Stage2Result(rows=rows, summary=summary, winner=winner, resumed=settings.resume)


def fit(tuner: tune.Tuner, asha: bool) -> tune.ResultGrid:
    """Every trial of ``tuner`` run; Tune returns on Ctrl-C with its state saved, and nothing is final then."""
    results = tuner.fit()
    finished = sum(is_finished(result, asha) for result in results)
    if finished < len(results):
        raise Stage2Error(f"stage 2 was interrupted with {finished} of {len(results)} trials finished; "
                          "continue it with --resume")
    return results


def is_finished(result: Any, asha: bool) -> bool:
    """Whether a trial ended for good: failed, or reported its test figures, or (with ASHA) was
    stopped after reporting. Tune's own counts are not enough: after Ctrl-C it may count a trial
    that never ran (no config, no report) as terminated."""
    if result.error is not None:
        return True
    if not result.config or not result.metrics:
        return False
    return "test_accuracy" in result.metrics or asha


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
            "name": entry["name"], "search_rank": entry["search_rank"], "seed": int(result.config["seed"]), "round": None,
            "epochs": int(metrics.get("epochs_trained", metrics.get("training_iteration", 0))),
            "test_accuracy": figure("test_accuracy"), "test_loss": figure("test_loss"),
            "val_accuracy": metrics.get("val_accuracy"), "val_loss": metrics.get("val_loss"),
            "params": figure("params"), "macs": figure("macs"), "latency_ms": figure("latency_ms_batch1"),
            "latency_ms_batch64": figure("latency_ms_batch64"),
            "predicted_latency_ms": entry.get("predicted_latency_ms"), "wall_time_s": figure("wall_time_s"),
            "status": status, "error": first_line(result.error) if result.error is not None else "",
        })
    frame = pd.DataFrame(rows)
    for column in ("test_accuracy", "test_loss", "val_accuracy", "val_loss", "latency_ms", "latency_ms_batch64",
                   "wall_time_s", "predicted_latency_ms"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in ("search_rank", "params", "macs", "round"):
        frame[column] = pd.array(frame[column].tolist(), dtype="Int64")
    return sort_trials(frame)
