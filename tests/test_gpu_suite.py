"""gpu_suite.py: a run stopped after its first part keeps it; --cpu-smoke runs every part in order; the budget."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "benchmarks" / "gpu_suite.py"
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_suite  # noqa: E402
from gpu_suite import CPU_SMOKE, GPU, PARTS, Clock, reserve_after, room_for_another_round, run_part  # noqa: E402


def read_document(path: Path):
    """The suite's JSON, or None before its first write (it is written whole: renamed into place)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def start_suite(out: Path, log: Path, *flags: str) -> subprocess.Popen:
    """gpu_suite.py --cpu-smoke in its own session, so a test that fails can end it and what it started."""
    with open(log, "w") as output:
        return subprocess.Popen([sys.executable, str(SUITE), "--cpu-smoke", "--out", str(out), *flags], cwd=ROOT,
                                stdout=output, stderr=subprocess.STDOUT, start_new_session=True)


def end(process: subprocess.Popen) -> None:
    """A suite still running after its test: killed with everything in its session."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_a_run_stopped_after_its_first_part_keeps_that_part(tmp_path):
    out, log = tmp_path / "suite.json", tmp_path / "suite.log"
    process = start_suite(out, log)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            document = read_document(out)
            if document and document["parts"].get("step_times", {}).get("status") not in (None, "running"):
                break
            time.sleep(0.2)
        assert process.poll() is None, f"the suite ended before it was stopped:\n{log.read_text()}"
        process.send_signal(signal.SIGTERM)  # what `timeout` and the device tool's time limit send
        assert process.wait(timeout=120) == 128 + signal.SIGTERM, log.read_text()
    finally:
        end(process)
    document = read_document(out)
    first = document["parts"]["step_times"]
    assert first["status"] == "ok", first
    assert first["images_per_s"]["supernet"] > 0 and first["step_ms"]["standalone_cbam"] > 0
    # the parts after it: never started, or cut off and marked so; none measured
    assert all(document["parts"].get(name, {"status": "interrupted"})["status"] == "interrupted" for name in PARTS[1:])
    assert document["stopped"].startswith("SIGTERM") and document["total_s"] > 0
    details = document["device_details"]
    assert details["device"] == "cpu" and {"torch", "cuda", "cudnn", "driver"} <= set(details)


def test_cpu_smoke_runs_every_part_in_order(tmp_path):
    out, log = tmp_path / "suite.json", tmp_path / "suite.log"
    process = start_suite(out, log)
    try:
        assert process.wait(timeout=600) == 0, log.read_text()
    finally:
        end(process)
    document = read_document(out)
    assert list(document["parts"]) == list(PARTS)
    assert {name: part["status"] for name, part in document["parts"].items()} == {name: "ok" for name in PARTS}
    search = document["parts"]["search"]
    assert search["rounds_measured"] >= 1 and "EXTRAPOLATED" in search["extrapolation"]["label"]
    assert "error" not in search["data"] and search["data"]["dataset"] == "styled-glyphs"
    assert [row["workers"] for row in document["parts"]["ray_scaling"]["rows"]] == [1, 2]
    assert document["device"] == "cpu" and "stopped" not in document


def test_the_most_valuable_parts_come_first_and_the_search_leaves_the_later_ones_room():
    assert PARTS[:3] == ("step_times", "time_to_accuracy", "search")
    # the search keeps what ray_scaling (45 s) and channels_last (30 s) need to start
    assert reserve_after("search", GPU) == 75 and reserve_after("channels_last", GPU) == 0
    assert reserve_after("step_times", CPU_SMOKE) == 10 + 10 + 5 + 5
    assert room_for_another_round(left_s=12.0, last_round_s=10.0)
    assert not room_for_another_round(left_s=11.9, last_round_s=10.0)
    assert gpu_suite.parse_args([]).budget_s == 600


def test_the_gpu_search_is_cifar10_sized_one_epoch_a_round(tmp_path):
    data = GPU.search_data
    assert (data["train_size"], data["val_size"], data["classes"]) == (45_000, 5_000, 10)
    config = gpu_suite.search_config(GPU, str(tmp_path), workers=4, gpus_each=0.25, cpus_each=2.0)
    images_per_round = config.train_steps * config.workers * config.evaluator.training.batch_size
    assert data["train_size"] <= images_per_round < data["train_size"] + config.workers * 128


def test_a_part_without_room_is_skipped_and_a_failed_part_costs_no_other(tmp_path):
    out = tmp_path / "suite.json"
    document = {"parts": {}}
    clock = Clock(budget_s=gpu_suite.END_MARGIN_S + 20)

    def broken():
        raise RuntimeError("CUDA out of memory")

    run_part(document, "step_times", 1000, clock, lambda: {"never": "run"}, out)
    run_part(document, "time_to_accuracy", 1, clock, broken, out)
    run_part(document, "search", 1, clock, lambda: {"rounds_measured": 3}, out)
    parts = read_document(out)["parts"]
    assert parts["step_times"]["status"] == "skipped" and "needs 1000 s" in parts["step_times"]["reason"]
    assert parts["time_to_accuracy"]["status"] == "failed" and "out of memory" in parts["time_to_accuracy"]["error"]
    assert parts["search"]["status"] == "ok" and parts["search"]["rounds_measured"] == 3
    assert parts["search"]["started_after_s"] >= 0 and parts["search"]["seconds"] >= 0
