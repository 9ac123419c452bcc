"""The GPU measurements of issue 14 in one run that stops itself within a time budget and writes what it has.

Parts, in order, each started only while the budget leaves it room:

1. ``throughput``: gpu_throughput.py's measurement (the supernet and a fixed network in one process,
   then 1..N Ray actors sharing the device).
2. ``channels_last``: training images/s through the evaluator's own path (WorkerPool.train, one
   actor), ``EvaluatorConfig.channels_last`` on and off.
3. ``time_to_accuracy``: time_to_accuracy.py's curves for 1 and several actors sharing the device
   through fractional ``num_gpus``, each run given an equal share of this part's time.
4. ``search``: the search's own rounds (``search.loop.run_round``, checkpoint included) with
   experiments/configs/cifar10.yaml on a CIFAR-10-sized styled-glyphs set (50k/5k/10k images of
   32x32, 10 classes, one epoch of steps per round), as many rounds as fit; seconds per round and
   a 150-round search (ENAS's budget) in GPU-hours, labelled as an extrapolation.

    python benchmarks/gpu_suite.py [--budget-s 780] [--cpu-smoke] [--out PATH]

``--cpu-smoke`` runs every part at toy size on the CPU (about 2 minutes). Writes
benchmarks/results/gpu_suite.json (``gpu_suite_cpu_smoke.json``) after every part.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from common import RESULTS, write_result

import ray  # noqa: E402
import torch  # noqa: E402

import evaluator_speed  # noqa: E402
import gpu_throughput  # noqa: E402
import time_to_accuracy  # noqa: E402
from controller.service import NAMESPACE, ControllerService, actor_name  # noqa: E402
from evaluator.config import EvaluatorConfig  # noqa: E402
from evaluator.data import load_dataset  # noqa: E402
from evaluator.pool import WorkerPool  # noqa: E402
from evaluator.training import SharedTrainingConfig  # noqa: E402
from machine import describe_machine  # noqa: E402
from rundir import RunDir  # noqa: E402
from search.cluster import connect  # noqa: E402
from search.config import SearchConfig, load_config, to_dict  # noqa: E402
from search.loop import controller_settings, run_round  # noqa: E402

CIFAR10_CONFIG = Path(__file__).resolve().parents[1] / "experiments" / "configs" / "cifar10.yaml"
ENAS_ROUNDS = 150
END_MARGIN_S = 15.0  # kept free at the end for writing the result
NOT_DONE = {
    "bf16_autocast": "not measured: evaluator.training.train_steps has no autocast, and evaluator/ is not "
                     "changed by this script",
    "device_resident_data_off": "not measured: the evaluator always keeps its in-memory dataset on its device "
                                "(ImageTensors.on); there is no switch to turn it off without changing evaluator/",
    "derive_stage": "not timed: the search part runs rounds only",
}


@dataclass
class Sizes:
    """How big each part is: the GPU sizes, or toy sizes for --cpu-smoke."""

    throughput: Dict[str, int]  # gpu_throughput.measure's arguments
    layout_steps: int
    layout_batch: int
    tta: Dict[str, int]  # rounds, train_steps, eval_every, genotypes
    tta_batch: int
    tta_data: Dict[str, int]
    search_data: Dict[str, int]
    search: Dict[str, Any]  # train_steps, samples_per_round, batch_size, max_rounds
    min_start_s: Dict[str, float]  # a part starts only with this much of the budget left


GPU = Sizes(throughput={"max_workers": 4, "steps": 50, "batch_size": 128}, layout_steps=40, layout_batch=128,
            tta={"rounds": 20, "train_steps": 78, "eval_every": 2, "genotypes": 8}, tta_batch=128, tta_data={},
            search_data={"train_size": 50_000, "val_size": 5_000, "test_size": 10_000, "classes": 10},
            search={"train_steps": 390, "samples_per_round": 20, "batch_size": 128, "max_rounds": ENAS_ROUNDS},
            min_start_s={"throughput": 60, "channels_last": 30, "time_to_accuracy": 90, "search": 90})
CPU_SMOKE = Sizes(throughput={"max_workers": 2, "steps": 2, "batch_size": 16}, layout_steps=2, layout_batch=16,
                  tta={"rounds": 2, "train_steps": 4, "eval_every": 1, "genotypes": 2}, tta_batch=16,
                  tta_data={"train_size": 256, "val_size": 64, "test_size": 32},
                  search_data={"train_size": 512, "val_size": 128, "test_size": 64, "classes": 10},
                  search={"train_steps": 4, "samples_per_round": 2, "batch_size": 16, "max_rounds": 2},
                  min_start_s={"throughput": 5, "channels_last": 5, "time_to_accuracy": 10, "search": 10})


class Clock:
    """The suite's budget: seconds left, and deadlines within it (time.monotonic)."""

    def __init__(self, budget_s: float) -> None:
        self.start = time.monotonic()
        self.end = self.start + budget_s - END_MARGIN_S

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def deadline(self, share: float = 1.0) -> float:
        """``share`` of what is left, as a time.monotonic() deadline."""
        return time.monotonic() + share * self.left()


def extrapolate(round_seconds: Sequence[float], setup_s: float, rounds: int = ENAS_ROUNDS,
                gpus: float = 1.0) -> Dict[str, Any]:
    """A ``rounds``-round search from the measured rounds: the median round (the first one left out
    as warm-up when there are others) times ``rounds``, plus setup; GPU-hours = hours x ``gpus``."""
    steady = list(round_seconds[1:]) or list(round_seconds)
    per_round = statistics.median(steady)
    total_s = setup_s + rounds * per_round
    return {"label": f"EXTRAPOLATED from {len(round_seconds)} measured round(s), not measured",
            "rounds": rounds, "seconds_per_round": per_round, "setup_s": setup_s,
            "total_s": total_s, "hours": total_s / 3600, "gpus": gpus, "gpu_hours": total_s / 3600 * gpus}


def run_part(document: Dict[str, Any], name: str, min_start_s: float, clock: Clock, work: Callable[[], Any],
             out: Path) -> None:
    """Run one part if the budget leaves it ``min_start_s``; record its result or error, then write."""
    if clock.left() < min_start_s:
        reason = f"{clock.left():.0f} s left, needs {min_start_s:.0f} s"
        document["parts"][name] = {"status": "skipped", "reason": reason}
    else:
        start = time.perf_counter()
        try:
            document["parts"][name] = {"status": "ok", **work()}
        except Exception as err:  # a failed part must not cost the parts after it
            document["parts"][name] = {"status": "failed", "error": f"{type(err).__name__}: {err}"}
        document["parts"][name]["seconds"] = time.perf_counter() - start
    print(f"{name}: {document['parts'][name]['status']} ({clock.left():.0f} s of the budget left)", flush=True)
    write_result(out, document)


def throughput_part(sizes: Sizes) -> Dict[str, Any]:
    measured = gpu_throughput.measure(**sizes.throughput)
    return {key: value for key, value in measured.items() if key not in ("machine", "benchmark")}


def channels_last_part(sizes: Sizes, gpus: float) -> Dict[str, Any]:
    """Images/s of one evaluator actor (WorkerPool.train) with channels_last on and off."""
    rows = []
    for channels_last in (True, False):
        config = EvaluatorConfig(dataset_options={"train_size": 2000, "val_size": 256, "test_size": 256},
                                 training=SharedTrainingConfig(batch_size=sizes.layout_batch),
                                 channels_last=channels_last, num_gpus=gpus)
        rows.append({"channels_last": channels_last,
                     "images_per_s": evaluator_speed.training_throughput(config, 1, sizes.layout_steps)})
    return {"steps": sizes.layout_steps, "batch_size": sizes.layout_batch, "num_gpus": gpus, "rows": rows,
            "on_over_off": rows[0]["images_per_s"] / rows[1]["images_per_s"]}


def time_to_accuracy_part(sizes: Sizes, workers_list: List[int], gpus_each: float, clock: Clock,
                          share: float) -> Dict[str, Any]:
    """time_to_accuracy's curves; each worker count gets an equal part of ``share`` of the time left."""
    config = EvaluatorConfig(dataset_options=dict(sizes.tta_data), num_gpus=gpus_each,
                             training=SharedTrainingConfig(batch_size=sizes.tta_batch))
    eval_keys = time_to_accuracy.fixed_sample(sizes.tta["genotypes"], 0)
    per_run_s = share * clock.left() / len(workers_list)
    curves = [time_to_accuracy.run_curve(config, n, sizes.tta["rounds"], sizes.tta["train_steps"],
                                         sizes.tta["eval_every"], eval_keys, 0, time.monotonic() + per_run_s)
              for n in workers_list]
    comparison = time_to_accuracy.compare(curves)
    print(time_to_accuracy.describe(comparison), flush=True)
    return {"settings": {**sizes.tta, "batch_size": sizes.tta_batch, "dataset_options": sizes.tta_data,
                         "gpus_per_worker": gpus_each, "seconds_per_run": per_run_s},
            "eval_genotypes": eval_keys, "curves": curves, "comparison": comparison}


def search_config(sizes: Sizes, out: str, workers: int, gpus_each: float, cpus_each: float) -> SearchConfig:
    """experiments/configs/cifar10.yaml on the CIFAR-sized styled-glyphs set, on this machine's device."""
    base = load_config(str(CIFAR10_CONFIG))
    training = replace(base.evaluator.training, batch_size=sizes.search["batch_size"])
    evaluator = replace(base.evaluator, dataset="styled-glyphs", data_dir=None, download=False,
                        dataset_options=dict(sizes.search_data), training=training, num_gpus=gpus_each,
                        num_cpus=cpus_each)
    # sizes.search["train_steps"] is one epoch at one worker's batch; step-synchronised workers each take
    # a batch per step, so one epoch a round is that many steps over the workers
    steps = max(1, sizes.search["train_steps"] // workers)
    return replace(base, out=out, run_id="gpu-suite", rounds=sizes.search["max_rounds"], workers=workers,
                   train_steps=steps, samples_per_round=sizes.search["samples_per_round"], evaluator=evaluator)


def search_part(sizes: Sizes, workers: int, gpus_each: float, cpus_each: float, clock: Clock) -> Dict[str, Any]:
    """The search's rounds until the budget ends; seconds per round and the 150-round extrapolation."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        config = search_config(sizes, str(Path(folder) / "search"), workers, gpus_each, cpus_each)
        generate_start = time.perf_counter()
        load_dataset(config.evaluator.dataset, None, seed=config.evaluator.seed, **config.evaluator.dataset_options)
        generate_s = time.perf_counter() - generate_start  # once per machine (cached), not per search
        rundir = RunDir(config.out)
        rundir.create(to_dict(config))
        setup_s, round_seconds = search_rounds(config, rundir, clock)
    return {"settings": {"config": str(CIFAR10_CONFIG.name), "dataset": "styled-glyphs",
                         "dataset_options": sizes.search_data, "workers": workers, "gpus_per_worker": gpus_each,
                         "cpus_per_worker": cpus_each, "train_steps_per_round": config.train_steps,
                         "samples_per_round": config.samples_per_round, "batch_size": sizes.search["batch_size"]},
            "dataset_generation_s": generate_s, "setup_s": setup_s, "round_seconds": round_seconds,
            "rounds_measured": len(round_seconds), "part_s": time.perf_counter() - start,
            "extrapolation": extrapolate(round_seconds, setup_s, gpus=workers * gpus_each)
            if round_seconds else None}


def search_rounds(config: SearchConfig, rundir: RunDir, clock: Clock) -> tuple[float, List[float]]:
    """(setup seconds, seconds of each round): rounds as search.loop.search runs them, checkpoint
    included, until the next round would not end before the budget does."""
    start = time.perf_counter()
    service = ray.remote(ControllerService).options(name=actor_name(config.run_id), namespace=NAMESPACE,
                                                    num_cpus=0).remote(controller_settings(config), config.policy,
                                                                       config.seed)
    pool = WorkerPool(config.evaluator, config.workers)
    round_seconds: List[float] = []
    try:
        shared = pool.initial_state()
        ray.get([actor.ping.remote() for actor in pool.actors])
        setup_s = time.perf_counter() - start
        for round_number in range(1, config.rounds + 1):
            if round_seconds and clock.left() < 1.2 * round_seconds[-1]:
                break
            began = time.perf_counter()
            shared, _ = run_round(config, config.run_id, round_number, shared, service, pool, rundir)
            rundir.save_checkpoint({"round": round_number, "shared": shared, "torch_rng": torch.get_rng_state(),
                                    "controller": ray.get(service.state_dict.remote())}, round_number)
            round_seconds.append(time.perf_counter() - began)
            print(f"search round {round_number}: {round_seconds[-1]:.1f} s", flush=True)
    finally:
        pool.shutdown()
        ray.kill(service)
    return setup_s, round_seconds


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-s", type=float, default=780.0, help="the whole suite's time cap (default 780)")
    parser.add_argument("--cpu-smoke", action="store_true", help="every part at toy size on the CPU (about 2 minutes)")
    parser.add_argument("--tta-workers", type=time_to_accuracy.parse_workers, default=None,
                        help="time-to-accuracy worker counts (default 1,2,4; 1,2 with --cpu-smoke)")
    parser.add_argument("--search-workers", type=int, default=None, help="actors of the search (default 4; 2 smoke)")
    parser.add_argument("--tta-share", type=float, default=0.45,
                        help="part of the time left after parts 1-2 for time-to-accuracy (the search gets the rest)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    args.tta_workers = args.tta_workers or ([1, 2] if args.cpu_smoke else [1, 2, 4])
    args.search_workers = args.search_workers or (2 if args.cpu_smoke else 4)
    args.out = args.out or RESULTS / ("gpu_suite_cpu_smoke.json" if args.cpu_smoke else "gpu_suite.json")
    return args


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    clock = Clock(args.budget_s)
    cuda = torch.cuda.is_available() and not args.cpu_smoke
    sizes = CPU_SMOKE if args.cpu_smoke else GPU
    if args.cpu_smoke:
        torch.set_num_threads(1)
    device = torch.cuda.get_device_name(0) if cuda else "cpu"
    document: Dict[str, Any] = {"benchmark": args.out.stem, "machine": describe_machine(), "device": device,
                                "settings": {"budget_s": args.budget_s, "cpu_smoke": args.cpu_smoke,
                                             "tta_workers": args.tta_workers, "search_workers": args.search_workers,
                                             "tta_share": args.tta_share},
                                "not_done": NOT_DONE, "parts": {}}
    try:
        connect(None, namespace=NAMESPACE, log_to_driver=False)
    except Exception as err:  # no Ray, no part: say so in the result rather than leave nothing
        document["ray_error"] = f"{type(err).__name__}: {err}"
        write_result(args.out, document)
        raise SystemExit(f"error: Ray did not start: {document['ray_error']}") from None
    try:
        run_part(document, "throughput", sizes.min_start_s["throughput"], clock, lambda: throughput_part(sizes),
                 args.out)
        run_part(document, "channels_last", sizes.min_start_s["channels_last"], clock,
                 lambda: channels_last_part(sizes, 1.0 if cuda else 0.0), args.out)
        tta_gpus = 1.0 / max(args.tta_workers) if cuda else 0.0
        run_part(document, "time_to_accuracy", sizes.min_start_s["time_to_accuracy"], clock,
                 lambda: time_to_accuracy_part(sizes, args.tta_workers, tta_gpus, clock, args.tta_share), args.out)
        search_gpus = 1.0 / args.search_workers if cuda else 0.0
        run_part(document, "search", sizes.min_start_s["search"], clock,
                 lambda: search_part(sizes, args.search_workers, search_gpus, 1.0 if args.cpu_smoke else 2.0, clock),
                 args.out)
    finally:
        ray.shutdown()
        document["total_s"] = clock.elapsed()
        write_result(args.out, document)
    extrapolation = (document["parts"]["search"].get("extrapolation") or {}) if "search" in document["parts"] else {}
    if extrapolation:
        print(f"150-round search, {extrapolation['label']}: {extrapolation['hours']:.3f} hours on "
              f"{extrapolation['gpus']:g} GPU(s) = {extrapolation['gpu_hours']:.3f} GPU-hours "
              f"({extrapolation['seconds_per_round']:.1f} s per round)")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
