"""A search on a two-node Ray cluster (head + worker node on 127.0.0.1) that loses a node or its driver.

Spread over both nodes, surviving the loss of the worker node mid-round, and resuming after its driver is killed; the
evaluator pool going on without a worker Ray will not restart."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import ray
import yaml
from ray.cluster_utils import Cluster

from evaluator.config import EvaluatorConfig
from evaluator.pool import WorkerPool
from evaluator.training import SharedTrainingConfig
from evaluator.worker import Evaluator, RewardTask
from experiments_paths import SEARCH_SCRIPT as SCRIPT, VOLATILE

ROUNDS, SAMPLES = 3, 4
WHERE = ["worker", "attempts", "note"]  # say which actor computed a reward: differ when one is lost
# Node death is noticed within about 2 s instead of Ray's default 30 s.
FAST_HEALTH_CHECKS = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
                      "health_check_failure_threshold": 4}


@pytest.fixture(scope="module")
def cluster():
    """One CPU per node and two evaluator actors of one CPU each: one actor lands on each node,
    and an actor of a lost node cannot be restarted on the head."""
    saved = {key: os.environ.get(key) for key in ("RAY_TMPDIR", "RAY_ADDRESS")}
    # Its own temp dir, so that ray.init() of other processes on this machine never finds this cluster.
    ray_tmp = os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="ray2n-", dir="/tmp")
    os.environ.pop("RAY_ADDRESS", None)
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "node_ip_address": "127.0.0.1", "_system_config": FAST_HEALTH_CHECKS})
    worker = cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        yield cluster, worker
    finally:
        ray.shutdown()
        cluster.shutdown()
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    folder = tmp_path_factory.mktemp("config")
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump({
        "rounds": ROUNDS, "workers": 2, "train_steps": 4, "samples_per_round": SAMPLES, "derive_top": 1,
        "derive_samples": 1, "seed": 3,
        "evaluator": {"dataset_options": {"train_size": 256, "val_size": 128, "test_size": 64},
                      "data_dir": str(folder / "data"), "val_batch_size": 64, "training": {"batch_size": 32},
                      "num_cpus": 1.0,  # one actor on each 1-CPU node
                      # the survivor of a node lost before its round's rendezvous waits this long, not 120 s
                      "collective_timeout_s": 20},
    }))
    return path


def search(cluster, config, out, *extra):
    """The user's script as a driver of the running cluster (the way `ray submit` runs it on the head)."""
    env = dict(os.environ, RAY_ADDRESS=cluster.address)
    command = [sys.executable, str(SCRIPT), "--config", str(config), "--out", str(out), "--quiet", *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)


def finish(process, timeout=600):  # a cap against a hang, not a speed bound
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        _, err = process.communicate()
        pytest.fail(f"the search did not finish in {timeout} s (hung?):\n{err[-3000:]}")
    assert process.returncode == 0, err[-3000:]


def wait_for_round(process, out, round, timeout=600):
    marker = Path(out) / "rewards" / f"round-{round:06d}.parquet"
    deadline = time.monotonic() + timeout
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), f"the search did not get to round {round}: {process.communicate()[1][-3000:]}"


def evaluator_nodes():
    """Node ids of the live evaluator actors."""
    actors = ray._private.state.actors().values()
    return {a["Address"]["NodeID"] for a in actors if a["ActorClassName"] == "Evaluator" and a["State"] == "ALIVE"}


def rewards(out, drop=()):
    table = pd.read_parquet(Path(out) / "rewards").sort_values(["round", "sample"]).reset_index(drop=True)
    return table.drop(columns=VOLATILE + list(drop))


def assert_complete(table):
    assert sorted(table["round"].unique()) == list(range(1, ROUNDS + 1))
    assert table.groupby("round").size().tolist() == [SAMPLES] * ROUNDS
    assert (table["status"] == "ok").all() and table["reward"].notna().all()


@pytest.fixture(scope="module")
def node_lost(cluster, tiny_config, tmp_path_factory):
    """A search whose worker node is removed mid-round (round 2): its run directory, the nodes
    its evaluators were on before, and the removed node's id. Then a new worker node joins, as
    the autoscaler's replacement, for the tests after it."""
    head, worker = cluster
    out = tmp_path_factory.mktemp("runs") / "two-nodes"
    process = search(head, tiny_config, out)
    wait_for_round(process, out, 1)
    nodes = evaluator_nodes()
    head.remove_node(worker, allow_graceful=False)
    finish(process)
    head.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    head.wait_for_nodes()
    return out, nodes, worker.node_id


def test_the_cluster_has_two_live_nodes_on_loopback(cluster):
    nodes = [node for node in ray.nodes() if node["Alive"]]
    assert len(nodes) == 2
    assert {node["NodeManagerAddress"] for node in nodes} == {"127.0.0.1"}
    assert sum(node["Resources"]["CPU"] for node in nodes) == 2


def test_a_search_spreads_its_evaluators_over_both_nodes(cluster, node_lost):
    _, nodes, worker_id = node_lost
    head_id = cluster[0].head_node.node_id
    assert nodes == {head_id, worker_id}


def test_losing_the_worker_node_mid_round_loses_no_reward(node_lost):
    out, _, worker_id = node_lost
    assert worker_id not in {node["NodeID"] for node in ray.nodes() if node["Alive"]}
    table = rewards(out)
    assert_complete(table)
    notes = " ".join(table[table["round"] >= 2]["note"])
    lost = {int(worker) for worker in re.findall(r"worker (\d) was lost during (?:training|score task)", notes)}
    assert len(lost) == 1, notes
    assert set(table[table["round"] > 2]["worker"]) == {1 - lost.pop()}  # then the survivor alone
    assert (out / "winner.json").exists() and (out / "candidates.parquet").exists()


def test_a_killed_driver_resumes_on_the_same_cluster_with_the_same_table(cluster, tiny_config, node_lost, tmp_path):
    """The same search with its driver killed after round 1 and resumed: the same table as the run
    above, whose driver ran through (a lost node changes who computed a reward, not the reward)."""
    whole, _, _ = node_lost
    out = tmp_path / "two-nodes"  # same run id as the run above
    process = search(cluster[0], tiny_config, out)
    wait_for_round(process, out, 1)
    os.killpg(process.pid, signal.SIGKILL)  # the driver only: the cluster stays up
    process.wait()
    assert len([node for node in ray.nodes() if node["Alive"]]) == 2

    finish(search(cluster[0], tiny_config, out, "--resume"))
    table = rewards(out)
    assert_complete(table)
    assert sorted(table["worker"].unique()) == [0, 1] and (table["note"] == "").all()  # no loss here
    pd.testing.assert_frame_equal(rewards(out, drop=WHERE), rewards(whole, drop=WHERE))
    winners = [json.loads((run / "winner.json").read_text())["ops"] for run in (out, whole)]
    assert winners[0] == winners[1]


def actor_state(handle):
    return ray._private.state.actors(actor_id=handle._actor_id.hex())["State"]


def kill(handle, restart: bool) -> None:
    """Kill an actor and wait until Ray has noticed, so that no call reaches the old process."""
    ray.kill(handle, no_restart=not restart)
    deadline = time.monotonic() + 30
    while actor_state(handle) == "ALIVE" and time.monotonic() < deadline:
        time.sleep(0.05)


def restart_held_by(hold: Path) -> type:
    """An Evaluator whose (re)start waits while the file ``hold`` exists: a restart the test
    releases by removing it, instead of one assumed to be slower than a timeout. Defined in a
    function so that Ray pickles the class by value."""

    class HeldEvaluator(Evaluator):
        def __init__(self, *args, **kwargs):
            while hold.exists():
                time.sleep(0.05)
            super().__init__(*args, **kwargs)

    return HeldEvaluator


def test_a_pool_goes_on_without_lost_workers_and_waits_for_them_only_so_long(cluster, tmp_path):
    """A worker Ray will not restart: its tasks go to the other one, at once. No worker left: an
    error, never a hang; with revive_timeout_s the same while the last one restarts, after which
    the pool uses it again."""
    config = EvaluatorConfig(dataset_options={"train_size": 256, "val_size": 128, "test_size": 64},
                             data_dir=str(tmp_path), training=SharedTrainingConfig(batch_size=32), val_batch_size=64)
    tasks = [RewardTask(i, key, i) for i, key in enumerate(["gap|eca|none|none", "none|none|mean|strip"] * 3)]
    hold = tmp_path / "hold-restarts"
    pool = WorkerPool(config, num_workers=2, poll_s=0.2, actor_class=restart_held_by(hold))
    try:
        weights = pool.initial_state()["weights"]
        expected = [(r.reward, r.val_loss) for r in pool.score(weights, tasks)]
        kill(pool.actors[1], restart=False)
        results = pool.score(weights, tasks)
        assert [(r.reward, r.val_loss) for r in results] == expected
        assert {r.worker for r in results} == {0}
        assert [r.attempts for r in results] == [1, 2, 1, 1, 1, 1]  # task 1 was sent to worker 1 first
        events = " ".join(pool.take_events())
        assert "worker 1 was lost" in events and "worker 1 is dead for good" in events
        assert pool.live() == [0]

        hold.touch()  # worker 0's restart waits until the file is gone
        kill(pool.actors[0], restart=True)
        pool.revive_timeout_s = 0.2
        with pytest.raises(RuntimeError, match="no evaluator worker alive for"):
            pool.score(weights, tasks)
        hold.unlink()
        pool.revive_timeout_s = 600
        assert [(r.reward, r.val_loss) for r in pool.score(weights, tasks)] == expected
        assert "worker 0 is back" in " ".join(pool.take_events())

        kill(pool.actors[0], restart=False)
        with pytest.raises(RuntimeError, match="no evaluator worker left"):
            pool.score(weights, tasks)
    finally:
        pool.shutdown()
