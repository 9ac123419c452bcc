"""The race end to end: a default search's top 5 against every known module, at budget B, on Ray Tune.

Copies a finished default search (``--run``, default: the seed-0 search of ``search_outcome_seeded``)
to ``runs/race_end_to_end/<run id>`` and runs stage 2's race there, as ``retrain_topk.py DIR --race``
would, at the stand-alone table's budget B (6 epochs, batch 64, lr 0.05), two one-core trials at a
time. Hours on 2 cores; interrupt it freely and run it again: the race resumes where it stopped
(finished rounds are read back, the running round is restored by Tune).

``--partial`` writes what the finished rounds say without training anything (``complete: false``):
the runs so far, each survivor's mean, and who was dropped when. Each known module's runs are
compared with the 12-seed table's runs of the same seed, which trained the same network.

    python benchmarks/race_end_to_end.py [--run DIR] [--partial]
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from common import RESULTS, repository_path, show_result, write_result  # first: Ray's loopback environment

import pandas as pd  # noqa: E402

from machine import describe_machine  # noqa: E402
from rundir import RunDir  # noqa: E402
from stage2.race import RaceResult, RaceSettings, compared, race  # noqa: E402
from stage2.settings import Stage2Settings  # noqa: E402

RUNS = Path(__file__).resolve().parent / "runs"
SEARCH = RUNS / "search_outcome_seeded" / "default" / "rl-seed0"
TABLE = RESULTS / "standalone_table_12seeds.parquet"
BUDGET_B = {"epochs": 6, "batch_size": 64, "lr": 0.05}
OUT = RESULTS / "race_end_to_end.json"


def state_so_far(rundir: RunDir, plan: Dict[str, Any]) -> Optional[RaceResult]:
    """The race's rule replayed on the finished rounds (survivors, results, drops), or None before
    the first round has finished."""
    rows = rundir.read_retrain()
    if rows is None or rows.empty:
        return None
    rounds = int(rows["round"].max())

    def read_round(round_number: int, names: Sequence[str], seed: int) -> Dict[str, Optional[float]]:
        done = rows[rows["round"] == round_number]
        return {r.name: float(r.test_accuracy) if r.status == "ok" else None for r in done.itertuples()}

    settings = RaceSettings(**{**plan["race"], "max_seeds": min(rounds, plan["race"]["max_seeds"])})
    return race(list(plan["entries"]), plan["seeds"][:rounds], read_round, settings)


def against_leader(state: RaceResult) -> Dict[str, Dict[str, float]]:
    """Each model minus the current leader in points, paired over the seeds both ran (the race's own
    test: a one-sided p of "worse than the leader"), with the round it was dropped in."""
    leader = state.survivors[0]
    return {name: {**compared(state, name, leader), "dropped_in_round": state.dropped.get(name)}
            for name in state.results if name != leader and state.results[name]}


def running_round(rundir: RunDir, rounds_finished: int) -> Dict[str, Any]:
    """The trials of the round after the finished ones that Tune has finished (its result files)."""
    folder = Path(rundir.root) / "tune" / f"race-{rounds_finished + 1:02d}"
    finished = {}
    for result in sorted(folder.glob("*/result.json")):
        lines = result.read_text().splitlines()
        last = json.loads(lines[-1]) if lines else {}
        if "test_accuracy" in last:
            finished[last["config"]["model"]] = {"seed": last["config"]["seed"], "test_accuracy": last["test_accuracy"],
                                                 "wall_time_s": last["wall_time_s"]}
    return {"round": rounds_finished + 1, "trials_finished": finished}


def against_table(rows: pd.DataFrame, plan: Dict[str, Any]) -> Dict[str, Any]:
    """Each known module's race runs beside the 12-seed table's run of the same name and seed (points)."""
    table = pd.read_parquet(TABLE).set_index(["name", "seed"])["test_accuracy"]
    pairs = [(100 * r.test_accuracy, 100 * table[(r.name, r.seed)]) for r in rows.itertuples()
             if r.kind == "baseline" and r.status == "ok" and (r.name, r.seed) in table.index]
    if not pairs:
        return {"runs": 0}
    differences = [a - b for a, b in pairs]
    return {"runs": len(pairs), "identical": sum(d == 0 for d in differences),
            "mean_difference_points": statistics.fmean(differences),
            "max_abs_difference_points": max(abs(d) for d in differences)}


def summary(rundir: RunDir, seconds: float) -> Dict[str, Any]:
    plan = rundir.read_stage2_plan()
    rows = rundir.read_retrain()
    state = state_so_far(rundir, plan)
    winner = rundir.read_winner()
    ok = rows[rows["status"] == "ok"] if rows is not None else pd.DataFrame()
    means = ok.groupby("name")["test_accuracy"].agg(["mean", "count"]) if len(ok) else pd.DataFrame()
    document = {
        "benchmark": "race_end_to_end", "machine": describe_machine(), "complete": winner is not None
        and winner.metadata.get("stage") == "race",
        "settings": {"search": repository_path(Path(rundir.root)), "budget": BUDGET_B, "race": plan["race"],
                     "k": plan["k"], "baselines": plan["baselines"], "cpus_per_trial": plan["cpus_per_trial"],
                     "score": "test accuracy (the stand-alone table's measure)"},
        "candidates": {name: entry["genotype"] for name, entry in plan["entries"].items()},
        "rounds_finished": len(state.seeds) if state else 0, "runs": 0 if rows is None else len(rows),
        "runs_if_every_model_ran_max_seeds": len(plan["entries"]) * plan["race"]["max_seeds"],
        "wall_seconds_total": seconds,
        "means_so_far_points": {name: {"mean": 100 * m, "seeds": int(c)} for name, (m, c) in means.iterrows()},
        "known_modules_against_12_seed_table": against_table(rows, plan) if rows is not None else {"runs": 0},
    }
    if state:
        document["leader_so_far"] = state.survivors[0]
        document["survivors_so_far"] = state.survivors
        document["against_leader_points"] = against_leader(state)
    if not document["complete"]:
        document["running_round"] = running_round(rundir, document["rounds_finished"])
    if document["complete"]:
        document["verdict"] = winner.metadata["race"]
    return document


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=SEARCH, help="a finished default search")
    parser.add_argument("--partial", action="store_true", help="summarise the finished rounds, train nothing")
    args = parser.parse_args(argv)
    target = RUNS / "race_end_to_end" / args.run.name
    if not target.exists():
        shutil.copytree(args.run, target, ignore=shutil.ignore_patterns("tune", "retrain.parquet", "report"))
    rundir = RunDir(str(target))
    previous = OUT.exists() and json.loads(OUT.read_text())
    seconds = previous["wall_seconds_total"] if previous else 0.0
    if not args.partial:
        from stage2.retrain import retrain  # Ray Tune only when training

        resume = rundir.read_stage2_plan() is not None
        start = time.perf_counter()
        try:
            retrain(rundir, Stage2Settings(race=True, k=5, cpus_per_trial=1, overrides={**BUDGET_B, "latency_repeats": 2},
                                           resume=resume), verbose=1)
        finally:
            seconds += time.perf_counter() - start
            write_result(OUT, summary(rundir, seconds))
    else:
        write_result(OUT, summary(rundir, seconds))
    show_result({k: v for k, v in summary(rundir, seconds).items() if k != "machine"})


if __name__ == "__main__":
    main()
