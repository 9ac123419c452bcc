"""The bad-input and fault matrix: every command and Python entry point, one clear line, nothing lost.

Each bad input must give exit code 2 and exactly one stderr line ``error: ...`` naming the bad key
or value, no traceback, and leave every file under the test's folder as it was (hashes compared).
The commands run in-process (their ``main`` with captured stderr) except a representative subset
run as subprocesses, which also shows that Ray's own output does not come before the error line.
The faults (damaged files, a read-only run, a full disk) are at the end.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List

from contextlib import contextmanager

import pyarrow.fs as pafs
import pytest
import torch

import rundir.directory
import rundir.files
from controller.__main__ import main as controller_main
from evaluator.data import load_dataset
from evaluator.latency import main as latency_main
from evaluator.models import build_model
from experiments_paths import EXPERIMENTS, load_script
from rundir import RunDir
from search.config import load_config
from search.preflight import check_dataset_loads
from searchspace import from_dict, from_json, from_key, load
from searchspace.__main__ import main as searchspace_main
from tiny_run import make_run

GOOD_OPS = {"channel_squeeze": "gap", "channel_excitation": "eca", "spatial_squeeze": "none",
            "spatial_excitation": "none"}


def genotype_text(**changes) -> str:
    document = {"format": "sase-genotype", "version": 1, "search_space": "sase-v1", "ops": dict(GOOD_OPS)}
    document.update(changes)
    return json.dumps(document)


CONFIGS = {  # name -> YAML text of a bad search config
    "unknown-key.yaml": "bogus: 1\n",
    "not-yaml.yaml": "rounds: [1\n",
    "list.yaml": "- 1\n- 2\n",
    "preset.yaml": "controller_preset: nope\n",
    "controller-key.yaml": "controller: {bogus: 1}\n",
    "controller-value.yaml": "controller: {temperature: -1.0}\n",
    "dataset-option.yaml": "evaluator: {dataset_options: {nope: 1}}\n",
    "combine.yaml": "evaluator: {combine: diagonal}\n",
    "sync.yaml": "evaluator: {sync: sometimes}\n",
    "reward-metric.yaml": "evaluator: {reward_metric: loss}\n",
    "lr-scaling.yaml": "evaluator: {training: {lr_scaling: cubic}}\n",
    "lr-warmup.yaml": "evaluator: {training: {lr_warmup_rounds: -2}}\n",
    "arch.yaml": "evaluator: {arch: resnet7}\n",
    "type.yaml": "samples_per_round: ten\n",
    "nested-type.yaml": "evaluator: seven\n",
    "warmup-rounds.yaml": "warmup_rounds: -1\n",
    "warmup-sampling.yaml": "warmup_sampling: greedy\n",
    "reward-images.yaml": "evaluator: {reward_images: 0}\n",
    "bn-mode.yaml": "evaluator: {bn_mode: running}\n",
    "few-shot.yaml": "evaluator: {few_shot: by_squeeze}\n",
    "few-shot-training.yaml": "evaluator: {few_shot: gate_family, few_shot_training: uniform}\n",
    "few-shot-round.yaml": "evaluator: {few_shot: gate_family, few_shot_from_round: -1}\n",
    "correction-steps.yaml": "evaluator: {correction_steps: -1}\n",
    "correction-lr.yaml": "evaluator: {correction_steps: 200, correction_lr: 0}\n",
    "collective-timeout.yaml": "evaluator: {collective_timeout_s: 0}\n",
    "samples-per-update.yaml": "controller: {samples_per_update: 20}\n",
    "training-preset.yaml": "evaluator: {training: {preset: fast}}\n",
    "score-attempts.yaml": "evaluator: {score_attempts: 0}\n",
    "objective-name.yaml": "objective: {name: flops}\n",
    "objective-no-target.yaml": "objective: {name: mnas}\n",
    "objective-negative-target.yaml": "objective: {name: mnas, target_ms: -1.0}\n",
    "objective-zero-target.yaml": "objective: {name: mnas, target_ms: 0}\n",
    "objective-no-table.yaml": "objective: {name: mnas, target_ms: 1.0, latency_table: {w}/no-such-table.json}\n",
    "objective-table-arch.yaml": "objective: {name: mnas, target_ms: 1.0, latency_table: {w}/table-resnet56.json}\n",
    "objective-table-batch.yaml": "objective: {name: mnas, target_ms: 1.0, latency_table: {w}/table-batch1.json}\n",
    "tiny-data.yaml": "evaluator: {dataset: cluttered-digits, dataset_options: {train_size: 256, val_size: 64, "
                      "test_size: 64, canvas_size: 16, scale: [1.0, 2.0], cache: false}}\n",  # loads in a second
    "option-value.yaml": "evaluator: {dataset: cluttered-digits, dataset_options: {train_size: big}}\n",
    "changed.yaml": "run_id: tiny-run\nrounds: 6\nworkers: 1\nsamples_per_round: 20\n"
                    "evaluator: {dataset: cluttered-digits, dataset_options: {train_size: 256, val_size: 64, "
                    "test_size: 64, canvas_size: 16, scale: [1.0, 2.0], cache: false}}\n",
    "changed-warmup.yaml": "run_id: tiny-run\nrounds: 6\nworkers: 1\nsamples_per_round: 8\nwarmup_rounds: 2\n"
                           "evaluator: {dataset: cluttered-digits, dataset_options: {train_size: 256, val_size: 64, "
                           "test_size: 64, canvas_size: 16, scale: [1.0, 2.0], cache: false}}\n",
}
FILES = {  # name -> content of a bad genotype file
    "nan.json": genotype_text(metadata={"reward": 0.5}).replace("0.5", "NaN"),
    "infinity.json": genotype_text(metadata={"reward": 0.5}).replace("0.5", "-Infinity"),
    "truncated.json": genotype_text()[:40],
    "array.json": "[1, 2]",
    "format.json": genotype_text(format="other"),
    "version.json": genotype_text(version=2),
    "space.json": genotype_text(search_space="sase-v9"),
    "op.json": genotype_text(ops={**GOOD_OPS, "channel_excitation": "magic"}),
    "missing-op.json": genotype_text(ops={k: v for k, v in GOOD_OPS.items() if k != "spatial_squeeze"}),
    "block.json": genotype_text(block={"combine": "diagonal"}),
    "block-bias.json": genotype_text(block={"gate_bias": "high"}),
    "top-key.json": genotype_text(extra=1),
    # latency tables whose network or batches are not the default search's (resnet20, reduction 16, batch 128)
    "table-resnet56.json": json.dumps({"format": "sase-latency", "version": 1, "arch": "resnet56", "reduction": 16,
                                       "batches": [1, 128]}),
    "table-batch1.json": json.dumps({"format": "sase-latency", "version": 1, "arch": "resnet20", "reduction": 16,
                                     "batches": [1]}),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A folder with a run (rounds, candidates), an empty folder, a plain file, bad configs and files."""
    root = tmp_path_factory.mktemp("world")
    make_run(root / "run")
    (root / "empty").mkdir()
    (root / "afile").write_text("not a run\n")
    (root / "kept.json").write_text("a previous export\n")
    for name, text in {**CONFIGS, **FILES}.items():
        (root / name).write_text(text.replace("{w}", str(root)))
    return root


def snapshot(root: Path) -> Dict[str, str]:
    """Every folder and file under ``root``, files by the hash of their bytes."""
    state = {}
    for folder, folders, files in os.walk(root):
        for name in folders:
            state[os.path.relpath(os.path.join(folder, name), root)] = "folder"
        for name in files:
            path = os.path.join(folder, name)
            state[os.path.relpath(path, root)] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return state


SCRIPTS = {name: load_script(name) for name in ("run_rl_search", "top_k", "export_genotype", "retrain_topk", "report",
                                                   "score")}
MAINS: Dict[str, Callable[[List[str]], int]] = {
    **{name: module.main for name, module in SCRIPTS.items()},
    "searchspace": searchspace_main, "controller": controller_main, "latency": latency_main,
}

# (command, arguments with {w} for the world folder, what the error line must say)
CLI_CASES = {
    # the search: every setting, the run directory, the cluster
    "search workers 0": ("run_rl_search", "--out {w}/new --workers 0", "workers must be at least 1, got 0"),
    "search rounds 0": ("run_rl_search", "--out {w}/new --rounds 0", "rounds must be at least 1, got 0"),
    "search rounds negative": ("run_rl_search", "--out {w}/new --rounds -3", "rounds must be at least 1, got -3"),
    "search rounds text": ("run_rl_search", "--out {w}/new --rounds many", "argument --rounds: invalid int value"),
    "search unknown dataset": ("run_rl_search", "--out {w}/new --dataset nope",
                               "evaluator.dataset: unknown dataset 'nope'; valid: "),
    "search unknown policy": ("run_rl_search", "--out {w}/new --policy greedy", "argument --policy: invalid choice"),
    "search negative cpus": ("run_rl_search", "--out {w}/new --cpus-per-worker -1",
                             "evaluator.num_cpus: must be a number >= 0, got -1.0"),
    "search out is a file": ("run_rl_search", "--out {w}/afile", "out: {w}/afile is a file, not a run directory"),
    "search out under a file": ("run_rl_search", "--out {w}/afile/run", "is a file"),
    "search data dir is a file": ("run_rl_search", "--out {w}/new --data-dir {w}/afile",
                                  "evaluator.data_dir: {w}/afile is a file, not a folder"),
    "search missing config": ("run_rl_search", "--out {w}/new --config {w}/none.yaml", "does not exist"),
    "search config not YAML": ("run_rl_search", "--out {w}/new --config {w}/not-yaml.yaml", "is not valid YAML"),
    "search config a list": ("run_rl_search", "--out {w}/new --config {w}/list.yaml", "must hold a mapping"),
    "search unknown key": ("run_rl_search", "--out {w}/new --config {w}/unknown-key.yaml",
                           "unknown config key 'bogus'; valid: "),
    "search unknown preset": ("run_rl_search", "--out {w}/new --config {w}/preset.yaml",
                              "controller_preset: unknown preset 'nope'; valid: enas, sase"),
    "search unknown controller key": ("run_rl_search", "--out {w}/new --config {w}/controller-key.yaml",
                                      "controller: unknown controller setting 'bogus'"),
    "search bad controller value": ("run_rl_search", "--out {w}/new --config {w}/controller-value.yaml",
                                    "controller: temperature must be positive"),
    "search unknown dataset option": ("run_rl_search", "--out {w}/new --config {w}/dataset-option.yaml",
                                      "has no option 'nope'; valid: "),
    "search unknown combine": ("run_rl_search", "--out {w}/new --config {w}/combine.yaml",
                               "evaluator.combine: unknown rule 'diagonal'; valid: sequential, parallel"),
    "search unknown sync": ("run_rl_search", "--out {w}/new --config {w}/sync.yaml",
                            "evaluator.sync: unknown rule 'sometimes'; valid: step, round"),
    "search unknown lr scaling": ("run_rl_search", "--out {w}/new --config {w}/lr-scaling.yaml",
                                  "evaluator.training.lr_scaling: unknown rule 'cubic'; valid: linear, none"),
    "search negative lr warm-up": ("run_rl_search", "--out {w}/new --config {w}/lr-warmup.yaml",
                                   "evaluator.training.lr_warmup_rounds: must be at least 0, got -2"),
    "search unknown arch": ("run_rl_search", "--out {w}/new --config {w}/arch.yaml", "evaluator.arch: unknown arch"),
    "search wrong type": ("run_rl_search", "--out {w}/new --config {w}/type.yaml", "samples_per_round: expected"),
    "search wrong nested type": ("run_rl_search", "--out {w}/new --config {w}/nested-type.yaml",
                                 "evaluator: expected a mapping"),
    "search over a run": ("run_rl_search", "--out {w}/run", "already holds a run; use --resume"),
    "search malformed address": ("run_rl_search", "--out {w}/new --ray-address nowhere",
                                 "ray_address: expected host:port, got 'nowhere'"),
    "search negative warm-up": ("run_rl_search", "--out {w}/new --config {w}/warmup-rounds.yaml",
                                "warmup_rounds must be at least 0, got -1"),
    "search unknown warm-up sampling": ("run_rl_search", "--out {w}/new --config {w}/warmup-sampling.yaml",
                                        "warmup_sampling must be one of fair, uniform, got 'greedy'"),
    "search no reward images": ("run_rl_search", "--out {w}/new --config {w}/reward-images.yaml",
                                "evaluator.reward_images: must be at least 1, got 0"),
    "search no collective timeout": ("run_rl_search", "--out {w}/new --config {w}/collective-timeout.yaml",
                                     "evaluator.collective_timeout_s: must be a number of seconds > 0, got 0"),
    "search samples_per_update": ("run_rl_search", "--out {w}/new --config {w}/samples-per-update.yaml",
                                  "controller: 'samples_per_update' is not a controller setting: how many genotypes "
                                  "one update sees is the search's samples_per_round"),
    "search unknown objective": ("run_rl_search", "--out {w}/new --config {w}/objective-name.yaml",
                                 "objective.name must be one of accuracy, mnas, got 'flops'"),
    "search mnas without target": ("run_rl_search", "--out {w}/new --config {w}/objective-no-target.yaml",
                                   "objective.target_ms is required with objective.name mnas"),
    "search negative latency target": ("run_rl_search", "--out {w}/new --config {w}/objective-negative-target.yaml",
                                       "objective.target_ms must be above 0, got -1.0"),
    "search zero latency target": ("run_rl_search", "--out {w}/new --config {w}/objective-zero-target.yaml",
                                   "objective.target_ms must be above 0, got 0"),
    "search unknown reward metric": ("run_rl_search", "--out {w}/new --config {w}/reward-metric.yaml",
                                     "evaluator.reward_metric: unknown metric 'loss'; valid: accuracy, likelihood"),
    "search latency table missing": ("run_rl_search", "--out {w}/new --config {w}/objective-no-table.yaml",
                                     "objective.latency_table: {w}/no-such-table.json: cannot read the latency table"),
    "search latency table of another arch": ("run_rl_search", "--out {w}/new --config {w}/objective-table-arch.yaml",
                                             "the latency table was measured for arch 'resnet56', the search's "
                                             "network has 'resnet20'"),
    "search latency table without the batch": ("run_rl_search", "--out {w}/new --config {w}/objective-table-batch.yaml",
                                               "the latency table has batches 1, the objective predicts at batch 128"),
    "top_k pareto without latencies": ("top_k", "{w}/run --pareto", "has no latencies: its objective is accuracy"),
    "search unknown training preset": ("run_rl_search", "--out {w}/new --config {w}/training-preset.yaml",
                                       "evaluator.training.preset: unknown preset 'fast'; valid: enas"),
    "search no score attempts": ("run_rl_search", "--out {w}/new --config {w}/score-attempts.yaml",
                                 "evaluator.score_attempts: must be at least 1, got 0"),
    "search unknown config name": ("run_rl_search", "--out {w}/new --config cifar", "config 'cifar' is neither a file in "),
    "search unknown BN mode": ("run_rl_search", "--out {w}/new --config {w}/bn-mode.yaml",
                               "evaluator.bn_mode: unknown mode 'running'; valid: batch, recalibrate"),
    "search unknown few-shot split": ("run_rl_search", "--out {w}/new --config {w}/few-shot.yaml",
                                      "evaluator.few_shot: unknown split 'by_squeeze'; valid: none, gate_family, "
                                      "spatial_branch"),
    "search unknown few-shot training": ("run_rl_search", "--out {w}/new --config {w}/few-shot-training.yaml",
                                         "evaluator.few_shot_training: unknown rule 'uniform'; valid: controller, "
                                         "balanced"),
    "search few-shot split before round 0": ("run_rl_search", "--out {w}/new --config {w}/few-shot-round.yaml",
                                             "evaluator.few_shot_from_round: must be at least 0, got -1"),
    "search negative correction steps": ("run_rl_search", "--out {w}/new --config {w}/correction-steps.yaml",
                                         "evaluator.correction_steps: must be at least 0, got -1"),
    "search correction at lr 0": ("run_rl_search", "--out {w}/new --config {w}/correction-lr.yaml",
                                  "evaluator.correction_lr: must be a number > 0, got 0"),
    # resume: what would change the results is refused, naming each key
    "resume without out": ("run_rl_search", "--resume", "--resume needs --out DIR"),
    "resume nothing there": ("run_rl_search", "--resume --out {w}/empty", "nothing to resume"),
    "resume other seed": ("run_rl_search", "--resume --out {w}/run --seed 5", "seed: 0 -> 5"),
    "resume other dataset": ("run_rl_search", "--resume --out {w}/run --dataset cifar10",
                             "evaluator.dataset: 'cluttered-digits' -> 'cifar10'"),
    "resume other config": ("run_rl_search", "--resume --out {w}/run --config {w}/changed.yaml",
                            "samples_per_round: 8 -> 20"),
    # a run saved before the warm-up existed had none: a config file asking for one is refused
    "resume other warm-up": ("run_rl_search", "--resume --out {w}/run --config {w}/changed-warmup.yaml",
                             "warmup_rounds: 0 -> 2"),
    # top_k, export_genotype, report, retrain_topk
    "top_k missing dir": ("top_k", "{w}/nope", "no such run directory"),
    "top_k not a run": ("top_k", "{w}/empty", "not a run directory"),
    "top_k a file": ("top_k", "{w}/afile", "not a directory"),
    "top_k k 0": ("top_k", "{w}/run -k 0", "argument -k: must be at least 1"),
    "top_k bad format": ("top_k", "{w}/run --format xml", "argument --format: invalid choice"),
    "export rank 0": ("export_genotype", "{w}/run --rank 0", "rank 0 out of range"),
    "export rank too large": ("export_genotype", "{w}/run --rank 99 --out {w}/kept.json", "rank 99 out of range"),
    "export out is a folder": ("export_genotype", "{w}/run --out {w}/empty", "is a directory"),
    "export out in a missing folder": ("export_genotype", "{w}/run --out {w}/nope/x.json", "does not exist"),
    "report not a run": ("report", "{w}/empty", "not a run directory"),
    "report k 0": ("report", "{w}/run -k 0", "argument -k: must be at least 1"),
    "retrain unknown baseline": ("retrain_topk", "{w}/run --baselines se,magic", "unknown baseline 'magic'"),
    "retrain seeds 0": ("retrain_topk", "{w}/run --seeds 0", "must be at least 1, got 0"),
    "retrain k text": ("retrain_topk", "{w}/run -k few", "expected a whole number"),
    "retrain nothing to resume": ("retrain_topk", "{w}/run --resume", "nothing to resume"),
    "retrain not a run": ("retrain_topk", "{w}/empty", "not a run directory"),
    "retrain unreachable address": ("retrain_topk", "{w}/run --ray-address 127.0.0.1:9",
                                    "no Ray cluster reachable at 127.0.0.1:9"),
    "retrain negative gpus": ("retrain_topk", "{w}/run --gpus-per-trial -1", "gpus per trial must be 0 or more"),
    "race alpha above 1": ("retrain_topk", "{w}/run --race --alpha 1.5", "alpha must be between 0 and 1, got 1.5"),
    "race alpha 0": ("retrain_topk", "{w}/run --race --alpha 0", "alpha must be between 0 and 1"),
    "race unknown candidate": ("retrain_topk", "{w}/run --race --baselines srm,magic", "unknown baseline 'magic'"),
    "race empty pool": ("retrain_topk", "{w}/run --race -k 0 --baselines=", "the race's pool has 0 models"),
    "race min above max seeds": ("retrain_topk", "{w}/run --race --min-seeds 5 --max-seeds 3",
                                 "min_seeds (5) is above max_seeds (3)"),
    "race with fixed seeds": ("retrain_topk", "{w}/run --race --seeds 3", "a race adds seeds until it is decided"),
    "race setting without race": ("retrain_topk", "{w}/run --max-seeds 4", "max seeds is a race setting; add --race"),
    "score not a run": ("score", "{w}/empty --known", "not a run directory"),
    "score no checkpoint": ("score", "{w}/run --known", "no checkpoint yet (the search has not finished a round)"),
    "score unknown op": ("score", "{w}/run --genotypes srm gap|magic|none|none", "unknown op 'magic'"),
    "score nothing asked": ("score", "{w}/run", "one of the arguments --genotypes --known --file is required"),
    "score missing list": ("score", "{w}/run --file {w}/nope.txt", "cannot read it"),
    "score out in a missing folder": ("score", "{w}/run --known --out {w}/nope/s.parquet", "its folder does not exist"),
    "score negative correction": ("score", "{w}/run --known --correction-steps -5", "--correction-steps -5: must be at least 0"),
    # python -m searchspace validate, python -m controller status
    "validate missing file": ("searchspace", "validate {w}/none.json", "cannot read"),
    "validate unknown command": ("searchspace", "check {w}/nan.json", "invalid choice"),
    **{f"validate {name}": ("searchspace", f"validate {{w}}/{name}", message) for name, message in [
        ("nan.json", "not strict JSON: NaN"), ("infinity.json", "not strict JSON: -Infinity"),
        ("truncated.json", "malformed JSON"), ("array.json", "must be a JSON object, got array"),
        ("format.json", "'format' must be 'sase-genotype'"), ("version.json", "'version' must be 1"),
        ("space.json", "'search_space' must be one of sase-v1"), ("op.json", "unknown op 'magic'; valid: "),
        ("missing-op.json", "'ops' is missing key 'spatial_squeeze'"),
        ("block.json", "'block.combine': unknown rule 'diagonal'"),
        ("block-bias.json", "'block.gate_bias' must be a finite number"),
        ("top-key.json", "unknown key 'extra'"),
    ]},
    "latency unknown op": ("latency", "--table {w}/array.json --genotype se gap|magic|none|none",
                           "unknown op 'magic'"),
    "latency not a table": ("latency", "--table {w}/array.json", "not a latency table"),
    "latency missing table": ("latency", "--table {w}/nope.json", "cannot read the latency table"),
    "latency batch 0": ("latency", "--batch 0", "must be at least 1"),
    "status malformed address": ("controller", "status run --ray-address nowhere", "expected host:port"),
    "status unreachable address": ("controller", "status run --ray-address 127.0.0.1:9",
                                   "no Ray cluster reachable at 127.0.0.1:9"),
    "status no run id": ("controller", "status", "the following arguments are required: run_id"),
}


def check_one_error_line(code, out: str, err: str, message: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err and "Traceback" not in out
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert message in err, err


@pytest.mark.parametrize("case", CLI_CASES)
def test_a_bad_command_line_gives_one_error_line_and_changes_nothing(case, world, capsys):
    command, arguments, message = CLI_CASES[case]
    before = snapshot(world)
    with pytest.raises(SystemExit) as exit:
        MAINS[command](arguments.format(w=world).split())
    captured = capsys.readouterr()
    check_one_error_line(exit.value.code, captured.out, captured.err, message.format(w=world))
    assert snapshot(world) == before


# Run as the user runs them: a fresh process, Ray's start-up output included.
SUBPROCESS_CASES = {
    "search asks more GPUs than the local Ray has": (  # more CPUs: tests/test_search_start.py, in-process
        "run_rl_search", "--out {w}/new --config {w}/tiny-data.yaml --gpus-per-worker 1",
        "resources: asked 1 GPU (1 workers x 1) but the cluster has 0"),
    "search without its dataset's files": ("run_rl_search", "--out {w}/new --dataset cifar10 --data-dir {w}/empty",
                                           "evaluator.dataset: cifar10: files not found or corrupted in"),
    "search at an unreachable address": (
        "run_rl_search", "--out {w}/new --ray-address 127.0.0.1:9", "no Ray cluster reachable at 127.0.0.1:9"),
    "search with an unknown preset": ("run_rl_search", "--out {w}/new --config {w}/preset.yaml", "unknown preset"),
    "resume with another seed": ("run_rl_search", "--resume --out {w}/run --seed 5", "seed: 0 -> 5"),
    "validate a NaN genotype": ("searchspace", "validate {w}/nan.json", "not strict JSON: NaN"),
}


def command_line(command: str) -> List[str]:
    if command in ("searchspace", "controller"):
        return [sys.executable, "-m", command]
    return [sys.executable, str(EXPERIMENTS / f"{command}.py")]


@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_a_bad_command_line_as_a_process_prints_one_line(case, world):
    command, arguments, message = SUBPROCESS_CASES[case]
    before = snapshot(world)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run(command_line(command) + arguments.format(w=world).split(), capture_output=True,
                          text=True, timeout=300, cwd=world, env=env)
    check_one_error_line(done.returncode, done.stdout, done.stderr, message)
    assert snapshot(world) == before


# The Python entry points: a ValueError (every input error of the project subclasses it) whose
# message is one line naming what is wrong, and nothing written.
PYTHON_CASES = {
    "from_key wrong length": (lambda w: from_key("gap|eca"), "4 op names joined by '|'"),
    "from_key unknown op": (lambda w: from_key("gap|magic|none|none"), "unknown op 'magic'"),
    "from_dict not an object": (lambda w: from_dict([]), "must be a JSON object"),
    "from_dict metadata": (lambda w: from_dict({**json.loads(genotype_text()), "metadata": 3}),
                           "'metadata' must be an object"),
    "from_json NaN": (lambda w: from_json((w / "nan.json").read_text()), "not strict JSON: NaN"),
    "load missing": (lambda w: load(w / "none.json"), "cannot read"),
    "build_model unknown arch": (lambda w: build_model("resnet7", 10), "unknown arch 'resnet7'"),
    "build_model unknown attention": (lambda w: build_model("resnet20", 10, attention="magic"),
                                      "unknown attention 'magic'"),
    "build_model bad combine": (lambda w: build_model("resnet20", 10, attention="se", combine="diagonal"),
                                "unknown combine rule 'diagonal'"),
    "build_model bad genotype file": (lambda w: build_model("resnet20", 10, attention=str(w / "block.json")),
                                      "'block.combine': unknown rule"),
    "load_dataset unknown": (lambda w: load_dataset("nope"), "unknown dataset 'nope'"),
    "load_dataset unknown option": (lambda w: load_dataset("cluttered-digits", nope=1), "has no option 'nope'"),
    "search's dataset check, imagefolder": (
        lambda w: check_dataset_loads(load_config(None, {"evaluator.dataset": "imagefolder",
                                                         "evaluator.data_dir": str(w / "empty")})),
        "evaluator.dataset: imagefolder: missing folder"),
    "search's dataset check, option value": (
        lambda w: check_dataset_loads(load_config(str(w / "option-value.yaml"))),
        "evaluator.dataset_options: 'cluttered-digits' cannot be built"),
    "load_dataset missing cifar": (lambda w: load_dataset("cifar10", str(w / "empty")), "cifar10"),
    "RunDir check of a file": (lambda w: RunDir(w / "afile").check(), "not a directory"),
    "RunDir top_k k 0": (lambda w: RunDir(w / "run").top_k(0), "k must be at least 1"),
    "RunDir rank out of range": (lambda w: RunDir(w / "run").genotype_at_rank(40), "rank 40 out of range"),
    "RunDir unsupported URI": (lambda w: RunDir("nosuchscheme://bucket/run"), "unsupported location"),
    "RunDir report file name": (lambda w: RunDir(w / "run").write_report_file("../x.png", b""),
                                "one plain file name"),
}


@pytest.mark.parametrize("case", PYTHON_CASES)
def test_a_bad_python_call_raises_one_line_naming_it(case, world):
    call, message = PYTHON_CASES[case]
    before = snapshot(world)
    with pytest.raises(ValueError) as raised:
        call(world)
    assert message in str(raised.value) and len(str(raised.value).splitlines()) == 1
    assert snapshot(world) == before


BAD_INPUTS = len(CLI_CASES) + len(SUBPROCESS_CASES) + len(PYTHON_CASES)


def test_the_matrix_holds_at_least_40_bad_inputs():
    assert BAD_INPUTS >= 40


# -- faults -------------------------------------------------------------------------------------


@pytest.fixture
def run(tmp_path) -> RunDir:
    rundir = make_run(tmp_path / "run")
    for round_number in (5, 6):
        rundir.save_checkpoint({"round": round_number, "weights": torch.full((3,), float(round_number))}, round_number)
    return rundir


def test_fault_truncated_newest_checkpoint_resumes_from_the_previous_one(run):
    newest = Path(run.path("checkpoints", "round-000006.pt"))
    newest.write_bytes(newest.read_bytes()[:40])
    with pytest.warns(RuntimeWarning, match="round-000006.pt: unreadable checkpoint"):
        state = run.load_checkpoint()
    assert state["round"] == 5 and torch.equal(state["weights"], torch.full((3,), 5.0))


def test_fault_a_foreign_file_among_rewards_is_ignored(run, capsys):
    before = run.read_rewards()
    Path(run.path("rewards", "notes.txt")).write_text("mine\n")
    Path(run.path("rewards", "round-x.parquet")).write_bytes(b"not the project's name")
    assert run.rounds() == [1, 2, 3, 4, 5, 6]
    assert run.read_rewards().equals(before)
    assert SCRIPTS["top_k"].main([run.root, "-k", "1"]) == 0 and "gap" in capsys.readouterr().out


def test_fault_a_truncated_round_file_is_an_error_naming_it_and_stops_a_resume(run, capsys):
    os.remove(run.path("candidates.parquet"))  # so that top_k ranks from the log
    path = Path(run.path("rewards", "round-000003.parquet"))
    path.write_bytes(path.read_bytes()[:100])
    before = snapshot(Path(run.root))
    for command, arguments in [("top_k", [run.root]), ("run_rl_search", ["--resume", "--out", run.root])]:
        with pytest.raises(SystemExit) as exit:
            MAINS[command](arguments)
        captured = capsys.readouterr()
        check_one_error_line(exit.value.code, captured.out, captured.err, "round-000003.parquet: corrupt Parquet file")
    assert snapshot(Path(run.root)) == before


class HalfThenFail:
    """A write stream that lets half of the first write through, then fails as ``error`` says."""

    def __init__(self, stream, error: OSError) -> None:
        self.stream, self.error, self.closed = stream, error, False

    def write(self, data) -> int:
        self.stream.write(bytes(memoryview(data))[: len(data) // 2])
        raise self.error

    def flush(self) -> None:
        pass


class NoFolders:
    """A filesystem stand-in whose create_dir fails as ``error`` says."""

    def __init__(self, error: OSError) -> None:
        self.error = error

    def create_dir(self, path, recursive=True):
        raise self.error


def storage_failing_with(monkeypatch, error: OSError) -> None:
    """Every write of the run directory fails midway with ``error``, and so does making a new folder
    (a full disk, or a read-only mount, which a root user cannot get from a file mode)."""
    real_output, real_make_dir = rundir.files.atomic_output, rundir.files.make_dir

    @contextmanager
    def failing_output(fs, path):
        with real_output(fs, path) as stream:
            yield HalfThenFail(stream, error)

    def failing_make_dir(fs, path):
        if fs.get_file_info(path).type == pafs.FileType.NotFound:
            real_make_dir(NoFolders(error), path)

    monkeypatch.setattr(rundir.directory, "atomic_output", failing_output)
    monkeypatch.setattr(rundir.files, "atomic_output", failing_output)  # write_file_atomic's (exports)
    monkeypatch.setattr(rundir.directory, "make_dir", failing_make_dir)


def files_only(state: Dict[str, str]) -> Dict[str, str]:
    return {name: digest for name, digest in state.items() if digest != "folder"}


def test_fault_a_read_only_run_directory_is_read_and_refused_in_one_line(run, capsys, monkeypatch):
    before = snapshot(Path(run.root))
    os.chmod(run.root, 0o555)  # refuses writes for a user; for root, storage_failing_with does
    try:
        assert SCRIPTS["top_k"].main([run.root]) == 0  # reading needs no write
        capsys.readouterr()
        storage_failing_with(monkeypatch, PermissionError(13, "Permission denied"))
        commands = [("report", [run.root]), ("export_genotype", [run.root, "--out", run.path("exported.json")])]
        if os.geteuid() != 0:  # the search's own check reads the mode, which binds no root user
            commands.append(("run_rl_search", ["--resume", "--out", run.root]))
        for command, arguments in commands:
            with pytest.raises(SystemExit) as exit:
                MAINS[command](arguments)
            captured = capsys.readouterr()
            check_one_error_line(exit.value.code, captured.out, captured.err, "")
            assert "Permission denied" in captured.err or "not writable" in captured.err
    finally:
        os.chmod(run.root, 0o755)
    assert snapshot(Path(run.root)) == before


def test_fault_a_full_disk_leaves_nothing_half_written(run, monkeypatch):
    before = snapshot(Path(run.root))
    rows = run.read_rewards()
    candidates = run.read_candidates()
    storage_failing_with(monkeypatch, OSError(28, "No space left on device"))
    writes = [
        lambda: run.write_round(7, rows.head(2).assign(round=7)),
        lambda: run.write_round(2, rows[rows["round"] == 2]),
        lambda: run.save_checkpoint({"round": 7, "weights": torch.zeros(3)}, 7),
        lambda: run.write_winner(from_key("gap|eca|none|none")),
        lambda: run.write_candidates(candidates),
        lambda: run.write_stage2_plan({"run_id": "x"}),
        lambda: run.write_report_file("reward.png", b"png"),
    ]
    for write in writes:
        with pytest.raises(ValueError, match="No space left on device"):
            write()
    after = snapshot(Path(run.root))
    assert files_only(after) == files_only(before)
    assert not [name for name in after if os.path.basename(name).startswith(".")]  # no temporary left


FAULTS = 5  # the fault tests above: checkpoint, foreign file, truncated round, read-only run, full disk
