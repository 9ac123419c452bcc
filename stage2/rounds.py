"""The race on Ray Tune: each round one Tune experiment, ``race-RR``, of every survivor on that round's seed.

The rule is :func:`stage2.race.race`; this file only trains its rounds. After each round its rows
are added to retrain.parquet (with the round number), so an interrupted race resumes without
training a finished round again: the rule is replayed on those rows, and only the round that was
running is continued, from its own Tune experiment, whose finished trials Tune does not rerun.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import pandas as pd

from rundir import RunDir
from stage2.race import RaceResult, RaceSettings, race
from stage2.settings import Stage2Error

# Trains one round: (Tune experiment name, models, seed) -> their retrain.parquet rows.
TrainRound = Callable[[str, List[str], int], pd.DataFrame]


def round_experiment(round_number: int) -> str:
    return f"race-{round_number:02d}"


class TuneRounds:
    """The race's round function: trains (or reads back) one round and returns each survivor's test
    accuracy, None where its trial failed or ASHA stopped it."""

    def __init__(self, rundir: RunDir, train_round: TrainRound) -> None:
        self.rundir, self.train_round = rundir, train_round
        stored = rundir.read_retrain()
        self.rows = stored if stored is not None and "round" in stored.columns else None

    def __call__(self, round_number: int, names: Sequence[str], seed: int) -> Dict[str, Optional[float]]:
        done = self.finished_round(round_number, names, seed)
        if done is None:
            done = self.train_round(round_experiment(round_number), list(names), seed).assign(round=round_number)
            self.rows = done if self.rows is None else pd.concat([self.rows, done], ignore_index=True)
            self.rundir.write_retrain(self.rows)
        return {row.name: (float(row.test_accuracy) if row.status == "ok" else None)
                for row in done.itertuples()}

    def finished_round(self, round_number: int, names: Sequence[str], seed: int) -> Optional[pd.DataFrame]:
        """The round's rows when retrain.parquet already holds them (a resumed race)."""
        if self.rows is None:
            return None
        done = self.rows[self.rows["round"] == round_number]
        if done.empty:
            return None
        if sorted(done["name"]) != sorted(names) or set(done["seed"]) != {seed}:
            raise Stage2Error(f"retrain.parquet's round {round_number} trained {sorted(done['name'])} on seeds "
                              f"{sorted(set(done['seed']))}, not what the race's rule asks for now; it was written "
                              "by another plan")
        return done


def run_race(rundir: RunDir, plan: Dict[str, Any], train_round: TrainRound) -> Tuple[pd.DataFrame, RaceResult]:
    """Race the plan's models over its seeds in order; every trial's row and what the race found."""
    rounds = TuneRounds(rundir, train_round)
    result = race(list(plan["entries"]), plan["seeds"], rounds, RaceSettings(**plan["race"]))
    if rounds.rows is None:
        raise Stage2Error("the race ran no round")
    return rounds.rows, result
