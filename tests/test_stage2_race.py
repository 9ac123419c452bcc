"""Stage 2's race on Ray Tune: rounds paired by seed, the verdict in winner.json, resume without a
trial run twice, and the budget stop. Its bad input is in tests/test_bad_input.py's matrix."""
import json

import pandas as pd
import pytest

import stage2.retrain
from experiments_paths import load_script
from rundir import RunDir
from searchspace import KNOWN, from_key, load
from stage2.race import RaceSettings, race
from stage2.retrain import Stage2Result, retrain
from stage2.rounds import TuneRounds, round_experiment, run_race
from stage2.settings import Stage2Error, Stage2Settings
from stage2.summary import summarise
from tiny_run import POOL, make_run

TINY_RACE = dict(race=True, k=2, baselines=["none", "se"], max_seeds=3, epochs=1, cpus_per_trial=0.5,
                 overrides={"latency_repeats": 1})


@pytest.fixture(scope="module")
def raced(tmp_path_factory, local_ray):
    """A tiny run after a race on Tune: 2 candidates, none and SE, up to 3 seeds of 1 epoch."""
    rundir = make_run(tmp_path_factory.mktemp("race") / "run")
    return rundir, retrain(rundir, Stage2Settings(**TINY_RACE), verbose=0)


def test_every_model_of_a_round_trains_that_rounds_seed_and_the_survivors_go_on(raced):
    rundir, result = raced
    rows = rundir.read_retrain()
    meta = load(rundir.path("winner.json")).metadata["race"]
    assert rows["round"].notna().all() and len(rows) == meta["runs"]
    for round_number, trials in rows.groupby("round"):
        assert set(trials["seed"]) == {round_number - 1}  # the plan's seeds 0, 1, 2 in order
        alive = [name for name in ["rank-1", "rank-2", "none", "se"]
                 if meta["dropped_in_round"].get(name, 99) >= round_number]
        assert sorted(trials["name"]) == sorted(alive)
    # the race's rule replayed on the rows reaches the same answer
    scores = {(r.round, r.name): r.test_accuracy for r in rows.itertuples()}
    again = race(["rank-1", "rank-2", "none", "se"], [0, 1, 2],
                 lambda n, names, s: {name: scores[(n, name)] for name in names}, RaceSettings(max_seeds=3))
    assert again.survivors == meta["survivors"] and again.dropped == meta["dropped_in_round"]


def test_winner_json_carries_the_verdict(raced):
    rundir, result = raced
    winner = load(rundir.path("winner.json"))
    meta = winner.metadata
    found = meta["race"]
    assert meta["stage"] == "race" and winner.key == {"rank-1": POOL[0], "rank-2": POOL[1], "none": KNOWN["none"].key,
                                                       "se": KNOWN["se"].key}[found["winner"]]
    ok = result.rows[(result.rows["name"] == found["winner"])]
    assert found["seeds"] == sorted(ok["seed"]) and found["mean"] == pytest.approx(100 * ok["test_accuracy"].mean())
    assert found["settings"] == {"min_seeds": 2, "max_seeds": 3, "alpha": 0.05, "budget_runs": None}
    assert found["best_known"] in ("none", "se")
    assert any(found["sentence"].startswith(start) for start in (
        "searched genotype", "no searched genotype beat", "unresolved at this budget"))
    if found["winner"] != "none":
        assert set(found["against_none"]) == {"mean", "se", "t", "p", "seeds"}
    json.dumps(meta, allow_nan=False)  # plain JSON, no NaN


def test_a_finished_race_resumed_trains_nothing(raced):
    rundir, result = raced
    with pytest.raises(Stage2Error, match="started with max seeds 3, not 4"):
        retrain(rundir, Stage2Settings(race=True, max_seeds=4, resume=True), verbose=0)
    resumed = retrain(rundir, Stage2Settings(resume=True), verbose=0)
    pd.testing.assert_frame_equal(resumed.rows, result.rows)  # wall times included: nothing ran again
    assert resumed.winner.metadata["race"]["sentence"] == result.winner.metadata["race"]["sentence"]


def fake_rows(names, seed):
    """What a round's trials would write: none far behind, the others within each run's noise."""
    accuracy = {"rank-1": 0.800, "rank-2": 0.799, "none": 0.600, "se": 0.798}
    return pd.DataFrame([{"name": name, "seed": seed, "status": "ok", "kind": "baseline",
                          "test_accuracy": accuracy[name] + 0.01 * seed + 0.01 * ((seed + i) % 2)}
                         for i, name in enumerate(names)])


class Interrupted(Exception):
    pass


def test_an_interrupted_race_resumes_without_training_a_finished_round_again(tmp_path, monkeypatch):
    rundir = make_run(tmp_path / "run")
    written = {}
    monkeypatch.setattr(RunDir, "write_retrain", lambda self, rows: written.update(rows=rows.copy()))
    monkeypatch.setattr(RunDir, "read_retrain", lambda self: written.get("rows"))
    plan = {"entries": dict.fromkeys(["rank-1", "rank-2", "none", "se"]), "seeds": [4, 5, 6, 7],
            "race": {"min_seeds": 2, "max_seeds": 4, "alpha": 0.05, "budget_runs": None}}
    calls = []

    def train_round(experiment, names, seed, stop_at=None):
        calls.append((experiment, tuple(names), seed))
        if experiment == stop_at:
            raise Interrupted
        return fake_rows(names, seed)

    with pytest.raises(Interrupted):
        run_race(rundir, plan, lambda e, n, s: train_round(e, n, s, stop_at=round_experiment(3)))
    assert sorted(written["rows"]["round"].unique()) == [1, 2]
    before = len(calls)
    rows, result = run_race(rundir, plan, train_round)
    resumed = calls[before:]
    assert [experiment for experiment, _, _ in resumed] == [round_experiment(3), round_experiment(4)][:len(resumed)]
    assert resumed[0][2] == 6  # round 3 trains the plan's third seed
    trained = [(name, seed) for _, names, seed in calls[:2] + resumed for name in names]
    assert len(trained) == len(set(trained)) == len(rows)  # no trial twice
    assert result.dropped == {"none": 2} and result.seeds == [4, 5, 6, 7]


def test_the_budget_stops_the_race_before_a_round_it_cannot_pay_for(tmp_path, monkeypatch):
    rundir = make_run(tmp_path / "run")
    monkeypatch.setattr(RunDir, "write_retrain", lambda self, rows: None)
    plan = {"entries": dict.fromkeys(["rank-1", "rank-2", "none", "se"]), "seeds": list(range(12)),
            "race": {"min_seeds": 2, "max_seeds": 12, "alpha": 0.05, "budget_runs": 9}}
    rows, result = run_race(rundir, plan, lambda e, names, s: fake_rows(names, s))
    assert len(rows) == result.runs == 8 and result.seeds == [0, 1]  # a third round of 4 would pass 9
    assert result.stopped == "the budget of 9 runs"


def test_a_round_on_disk_that_the_rule_does_not_ask_for_is_refused(tmp_path):
    rundir = make_run(tmp_path / "run")
    rounds = TuneRounds(rundir, lambda e, n, s: fake_rows(n, s))
    rounds.rows = fake_rows(["none", "se"], 0).assign(round=1)
    with pytest.raises(Stage2Error, match="round 1 trained"):
        rounds(1, ["none", "se", "rank-1"], 0)


def test_the_search_command_races_its_run_when_asked(tmp_path, monkeypatch, capsys):
    """``run_rl_search.py --race``: the search, then stage 2's race on its run, resumed if one was started."""
    rundir = make_run(tmp_path / "run")
    script = load_script("run_rl_search")
    monkeypatch.setattr(script, "run_from_command_line", lambda *a, **k: (rundir, rundir.top_k(5)))
    asked = []

    def fake_retrain(run, settings, verbose=1):
        asked.append((run.root, settings.race, settings.resume))
        rows = fake_rows(["none", "se"], 0).assign(genotype="g", search_rank=pd.NA, test_loss=1.0, params=1, macs=1,
                                                   latency_ms=1.0)
        genotype = from_key(KNOWN["se"].key).with_metadata(
            stage="race", name="se", race={"runs": 2, "seeds": [0], "stopped": "1 seeds run", "mean": 79.8, "se": None,
                                           "sentence": "no searched genotype beat se; se is the answer"})
        return Stage2Result(rows=rows, summary=summarise(rows), winner=genotype, resumed=settings.resume)

    monkeypatch.setattr(stage2.retrain, "retrain", fake_retrain)
    assert script.main(["--race"]) == 0
    assert "no searched genotype beat se; se is the answer" in capsys.readouterr().out
    rundir.write_stage2_plan({"race": {}})  # a race begun: the next --race continues it
    assert script.main(["--race", "--resume", "--out", rundir.out]) == 0
    assert asked == [(rundir.root, True, False), (rundir.root, True, True)]


def test_the_report_draws_the_race_and_states_its_answer(raced):
    from reporting.page import write_report

    rundir, result = raced
    written = write_report(rundir)
    assert "race.png" in written.images and "retrain.png" in written.images
    page = open(written.index).read()
    assert "The race's answer:" in page and result.winner.metadata["race"]["sentence"].split(":")[0] in page


def test_a_searched_genotype_that_is_a_raced_known_module_races_once(tmp_path):
    from stage2.plan import make_plan

    rundir = make_run(tmp_path / "run")  # its rank-2 genotype is ECA's ops, with ECA's (sequential) rule
    assert POOL[1] == KNOWN["eca"].key
    plan = make_plan(rundir, Stage2Settings(race=True, k=3, baselines=["none", "eca"]))
    assert list(plan["entries"]) == ["rank-1", "rank-3", "none", "eca"]
    assert plan["entries"]["eca"]["search_rank"] == 2
    grid = make_plan(rundir, Stage2Settings(k=3, baselines=["none", "eca"], seeds=1))  # not a race: both train
    assert list(grid["entries"]) == ["rank-1", "rank-2", "rank-3", "none", "eca"]


def test_stage_2_sets_each_models_predicted_latency_beside_the_one_it_will_measure(tmp_path):
    from evaluator.latency import measure_table, predict_ms
    from stage2.plan import make_plan
    from stage2.summary import summary_table

    rundir = make_run(tmp_path / "run")
    assert all(e["predicted_latency_ms"] is None for e in make_plan(rundir, Stage2Settings(k=1, seeds=1))["entries"].values())
    table = measure_table("resnet20", 16, 10, [1], repeats=1)
    rundir.write_latency_table(table)
    plan = make_plan(rundir, Stage2Settings(race=True, k=1, baselines=["none", "bam"]))
    entries = plan["entries"]
    assert entries["rank-1"]["predicted_latency_ms"] == predict_ms(table, POOL[0], 1, "sequential")
    assert entries["bam"]["predicted_latency_ms"] == predict_ms(table, KNOWN["bam"].key, 1, "parallel")  # its own rule
    assert entries["none"]["predicted_latency_ms"] == table["backbone_ms"]["1"]
    rows = fake_rows(["none", "se"], 0).assign(
        genotype=[KNOWN["none"].key, KNOWN["se"].key], search_rank=pd.NA, test_loss=1.0, params=1, macs=1,
        latency_ms=1.0, predicted_latency_ms=[entries["none"]["predicted_latency_ms"], 2.0])
    assert "predicted ms" in summary_table(summarise(rows)).columns


def test_a_round_interrupted_by_ctrl_c_is_reported_as_interrupted_not_collected():
    from types import SimpleNamespace

    from stage2.retrain import fit

    done = SimpleNamespace(error=None, config={"model": "se", "seed": 0}, metrics={"test_accuracy": 0.7})
    running = SimpleNamespace(error=None, config={"model": "srm", "seed": 0}, metrics={"val_accuracy": 0.6})
    never = SimpleNamespace(error=None, config=None, metrics=None)  # what Tune may hand back after Ctrl-C
    tuner = SimpleNamespace(fit=lambda: [done, running, never])
    with pytest.raises(Stage2Error, match="interrupted with 1 of 3 trials finished; continue it with --resume"):
        fit(tuner, asha=False)
    with pytest.raises(Stage2Error, match="interrupted with 2 of 3 trials finished"):
        fit(tuner, asha=True)  # with ASHA a trial that reported may have been stopped by it
    assert fit(SimpleNamespace(fit=lambda: [done]), asha=False) == [done]
