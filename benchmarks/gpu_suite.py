"""The GPU measurements in one run that stops itself within a time budget and keeps what it measured.

Made for a lent GPU machine's few minutes (docs/gpu_run.md): the parts come in the order of their
value, each started only while the budget leaves it room, and the result is written before the first
part (the device, the NVIDIA driver, torch's CUDA and cuDNN), when each part starts, and as soon as
it ends, so a run cut short keeps every part it finished. SIGTERM or Ctrl-C stops it at once: the
part under way is marked ``interrupted`` and the exit status is 128 + the signal's number.

1. ``step_times``: the supernet's training step (a genotype sampled per step) and a stand-alone
   network's (ResNet-20 with CBAM) at CIFAR size (32x32 images, batch 128), in this process:
   images/s and milliseconds per step.
2. ``time_to_accuracy``: time_to_accuracy.py's curves for 1 and several actors sharing the device
   through fractional ``num_gpus``, each run given an equal share of this part's time.
3. ``search``: the search's own rounds (``search.loop.run_round``, checkpoint included) with
   search/configs/cifar10.yaml on a CIFAR-10-sized styled-glyphs set (45k training and 5k
   validation images of 32x32, 10 classes, one epoch of steps per round), as many rounds as fit
   before the time kept for the parts after it; seconds per round and a 150-round search (ENAS's
   budget) in GPU-hours, labelled as an extrapolation.
4. ``ray_scaling``: total images/s of 1..N Ray actors training the supernet on the shared device.
5. ``channels_last``: training images/s through the evaluator's own path (WorkerPool.train, one
   actor), ``EvaluatorConfig.channels_last`` on and off.

The generated datasets (parts 2, 3 and 5) are made in a child process from the start, while part 1
uses the device; a part that needs one waits for it.

    python benchmarks/gpu_suite.py [--budget-s 600] [--cpu-smoke] [--out PATH]

``--cpu-smoke`` runs every part at toy size on the CPU (about 2 minutes). Writes
benchmarks/results/gpu_suite.json (``gpu_suite_cpu_smoke.json``).
"""
from __future__ import annotations

import argparse
import multiprocessing
import queue
import signal
import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from common import RESULTS, write_result

import ray  # noqa: E402
import torch  # noqa: E402

import evaluator_speed  # noqa: E402
import gpu_throughput  # noqa: E402
import time_to_accuracy  # noqa: E402
from controller.service import NAMESPACE  # noqa: E402
from evaluator.config import EvaluatorConfig  # noqa: E402
from evaluator.data import load_dataset  # noqa: E402
from evaluator.pool import WorkerPool  # noqa: E402
from evaluator.training import SharedTrainingConfig  # noqa: E402
from machine import describe_accelerator, describe_machine  # noqa: E402
from rundir import RunDir  # noqa: E402
from search.cluster import connect  # noqa: E402
from search.config import SearchConfig, load_config, to_dict  # noqa: E402
from search.loop import run_round, save_round, start_controller  # noqa: E402

CIFAR10_CONFIG = Path(__file__).resolve().parents[1] / "search" / "configs" / "cifar10.yaml"
ENAS_ROUNDS = 150
END_MARGIN_S = 15.0  # kept free at the end for writing the result
PARTS = ("step_times", "time_to_accuracy", "search", "ray_scaling", "channels_last")  # the order they run in
NOT_DONE = {
    "bf16_autocast": "not measured: evaluator.training.train_steps has no autocast, and evaluator/ is not "
                     "changed by this script",
    "device_resident_data_off": "not measured: the evaluator always keeps its in-memory dataset on its device "
                                "(ImageTensors.on); there is no switch to turn it off without changing evaluator/",
    "derive_stage": "not timed: the search part runs rounds only",
}
DatasetSpec = Tuple[str, Dict[str, Any], int]  # load_dataset's name, options and seed


@dataclass
class Sizes:
    """How big each part is: the GPU sizes, or toy sizes for --cpu-smoke."""

    step_times: Dict[str, int]  # steps, batch_size: gpu_throughput.images_per_second's
    tta: Dict[str, int]  # rounds, train_steps, eval_every, genotypes
    tta_batch: int
    tta_data: Dict[str, int]
    search_data: Dict[str, int]
    search: Dict[str, Any]  # train_steps (one epoch at one worker's batch), samples_per_round, batch_size, max_rounds
    scaling: Dict[str, int]  # gpu_throughput.ray_scaling's max_workers, steps, batch_size
    layout_steps: int
    layout_batch: int
    layout_data: Dict[str, int]
    min_start_s: Dict[str, float]  # a part starts only with this much of the budget left


GPU = Sizes(step_times={"steps": 50, "batch_size": 128},
            tta={"rounds": 20, "train_steps": 78, "eval_every": 2, "genotypes": 8}, tta_batch=128, tta_data={},
            # CIFAR-10's 45k/5k training and validation split; the test split is not used by the rounds
            search_data={"train_size": 45_000, "val_size": 5_000, "test_size": 1_000, "classes": 10},
            search={"train_steps": 352, "samples_per_round": 20, "batch_size": 128, "max_rounds": ENAS_ROUNDS},
            scaling={"max_workers": 4, "steps": 50, "batch_size": 128},
            layout_steps=40, layout_batch=128, layout_data={"train_size": 2000, "val_size": 256, "test_size": 256},
            min_start_s={"step_times": 30, "time_to_accuracy": 90, "search": 90, "ray_scaling": 45,
                         "channels_last": 30})
CPU_SMOKE = Sizes(step_times={"steps": 2, "batch_size": 16},
                  tta={"rounds": 2, "train_steps": 4, "eval_every": 1, "genotypes": 2}, tta_batch=16,
                  tta_data={"train_size": 256, "val_size": 64, "test_size": 32},
                  search_data={"train_size": 512, "val_size": 128, "test_size": 64, "classes": 10},
                  search={"train_steps": 4, "samples_per_round": 2, "batch_size": 16, "max_rounds": 2},
                  scaling={"max_workers": 2, "steps": 2, "batch_size": 16},
                  layout_steps=2, layout_batch=16, layout_data={"train_size": 256, "val_size": 64, "test_size": 32},
                  min_start_s={"step_times": 5, "time_to_accuracy": 10, "search": 10, "ray_scaling": 5,
                               "channels_last": 5})


class SuiteStopped(BaseException):
    """A signal to stop (SIGTERM: a time limit such as the device tool's; SIGINT: Ctrl-C). A
    BaseException, so that run_part's ``except Exception`` does not take it for a failed part."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal.Signals(signal_number).name)
        self.signal_number = signal_number


def stop_on_signal(signal_number: int, frame: Any) -> None:
    raise SuiteStopped(signal_number)


def stop_behind(err: Optional[BaseException]) -> Optional[SuiteStopped]:
    """The SuiteStopped behind ``err``: a signal that lands while Ray's compiled code runs comes out
    as a SystemError ("returned a result with an exception set") with the stop as its cause."""
    while err is not None and not isinstance(err, SuiteStopped):
        err = err.__cause__ or err.__context__
    return err


class Clock:
    """The suite's budget: seconds left, and deadlines within it (time.monotonic)."""

    def __init__(self, budget_s: float) -> None:
        self.start = time.monotonic()
        self.end = self.start + budget_s - END_MARGIN_S

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self, reserve_s: float = 0.0) -> float:
        """Seconds left of the budget, less ``reserve_s`` kept for later parts."""
        return max(0.0, self.end - time.monotonic() - reserve_s)


def reserve_after(name: str, sizes: Sizes) -> float:
    """Seconds kept for the parts after ``name``: what each needs to start."""
    return sum(sizes.min_start_s[later] for later in PARTS[PARTS.index(name) + 1:])


def room_for_another_round(left_s: float, last_round_s: float) -> bool:
    """Whether a round as long as the last one (and a fifth more) ends before ``left_s`` does."""
    return left_s >= 1.2 * last_round_s


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


def generate_datasets(specs: Sequence[DatasetSpec], done: Any) -> None:
    """(In the child process.) Each dataset generated into the on-disk cache, in order; after each,
    a report on the queue ``done``: its index and seconds, or its error, and when it finished (time.time)."""
    for index, (name, options, seed) in enumerate(specs):
        start = time.perf_counter()
        try:
            load_dataset(name, None, seed=seed, **options)
            done.put({"index": index, "seconds": time.perf_counter() - start, "finished_at": time.time()})
        except Exception as err:  # the part that needs it will generate it (and fail) itself
            done.put({"index": index, "error": f"{type(err).__name__}: {err}", "finished_at": time.time()})


class BackgroundData:
    """The suite's generated datasets, made in a child process from the start while the parts
    before them use the device (the CIFAR-sized set took 25 s of one CPU core on the 2-core
    development machine). The child is spawned, not forked: no copy of torch's or Ray's threads.
    ``wait`` before using one."""

    def __init__(self, specs: Sequence[DatasetSpec]) -> None:
        context = multiprocessing.get_context("spawn")
        self.specs = list(specs)
        self.reports: Dict[int, Dict[str, Any]] = {}
        self.started_at = time.time()
        self.done = context.Queue()
        self.process = context.Process(target=generate_datasets, args=(self.specs, self.done), daemon=True)
        self.process.start()

    def wait(self, index: int) -> Dict[str, Any]:
        """Dataset ``index``'s report once it is in the cache (or failed, or the child ended without
        it): seconds to generate, seconds after the suite's start it was ready, and seconds waited."""
        start = time.perf_counter()
        while index not in self.reports:
            try:
                report = self.done.get(timeout=1.0)
            except queue.Empty:
                if not self.process.is_alive():
                    self.reports[index] = {"index": index,
                                           "error": f"the child process ended (exit code {self.process.exitcode})"}
                continue
            report["ready_after_s"] = report.pop("finished_at") - self.started_at
            self.reports[report["index"]] = report
        name, options, seed = self.specs[index]
        return {"dataset": name, "options": options, "seed": seed, **self.reports[index],
                "waited_s": time.perf_counter() - start}

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=10)


def run_part(document: Dict[str, Any], name: str, min_start_s: float, clock: Clock, work: Callable[[], Any],
             out: Path) -> None:
    """Run one part if the budget leaves it ``min_start_s``; record its result or error, then write.

    The part is written as ``running`` before it starts, so a run killed outright still shows where it was.
    """
    if clock.left() < min_start_s:
        reason = f"{clock.left():.0f} s left, needs {min_start_s:.0f} s"
        document["parts"][name] = {"status": "skipped", "reason": reason}
    else:
        started = {"started_after_s": clock.elapsed()}
        document["parts"][name] = {"status": "running", **started}
        write_result(out, document)
        start = time.perf_counter()
        try:
            document["parts"][name] = {"status": "ok", **started, **work()}
        except Exception as err:  # a failed part must not cost the parts after it
            stop = stop_behind(err)
            if stop is not None:
                raise stop from None
            document["parts"][name] = {"status": "failed", **started, "error": f"{type(err).__name__}: {err}"}
        document["parts"][name]["seconds"] = time.perf_counter() - start
    print(f"{name}: {document['parts'][name]['status']} ({clock.left():.0f} s of the budget left)", flush=True)
    write_result(out, document)


def step_times_part(sizes: Sizes, cuda: bool) -> Dict[str, Any]:
    """One training step of the supernet and of a stand-alone network (CBAM) at CIFAR size, in this
    process: images/s and milliseconds per step; ``supernet_over_standalone`` is the step-time ratio."""
    steps, batch = sizes.step_times["steps"], sizes.step_times["batch_size"]
    device = "cuda" if cuda else "cpu"
    rates = gpu_throughput.single_process(steps, batch, device)
    rates = {"supernet": rates["supernet"], "standalone_cbam": rates["fixed_cbam"]}
    step_ms = {network: 1000.0 * batch / rate for network, rate in rates.items()}
    return {"device": device, "steps": steps, "batch_size": batch, "image_size": 32, "arch": "resnet20",
            "images_per_s": rates, "step_ms": step_ms,
            "supernet_over_standalone": step_ms["supernet"] / step_ms["standalone_cbam"]}


def tta_config(sizes: Sizes, gpus_each: float) -> EvaluatorConfig:
    return EvaluatorConfig(dataset_options=dict(sizes.tta_data), num_gpus=gpus_each,
                           training=SharedTrainingConfig(batch_size=sizes.tta_batch))


def time_to_accuracy_part(sizes: Sizes, workers_list: List[int], gpus_each: float, clock: Clock, share: float,
                          reserve_s: float, data: BackgroundData) -> Dict[str, Any]:
    """time_to_accuracy's curves on the dataset ``data`` made first; ``share`` of the time left (less
    ``reserve_s``) once it is there, split equally over the worker counts."""
    ready = data.wait(0)
    config = tta_config(sizes, gpus_each)
    eval_keys = time_to_accuracy.fixed_sample(sizes.tta["genotypes"], 0)
    per_run_s = share * clock.left(reserve_s) / len(workers_list)
    curves = [time_to_accuracy.run_curve(config, n, sizes.tta["rounds"], sizes.tta["train_steps"],
                                         sizes.tta["eval_every"], eval_keys, 0, time.monotonic() + per_run_s)
              for n in workers_list]
    comparison = time_to_accuracy.compare(curves)
    print(time_to_accuracy.describe(comparison), flush=True)
    return {"settings": {**sizes.tta, "batch_size": sizes.tta_batch, "dataset_options": sizes.tta_data,
                         "gpus_per_worker": gpus_each, "seconds_per_run": per_run_s},
            "data": ready, "eval_genotypes": eval_keys, "curves": curves, "comparison": comparison}


def search_config(sizes: Sizes, out: str, workers: int, gpus_each: float, cpus_each: float) -> SearchConfig:
    """search/configs/cifar10.yaml on the CIFAR-sized styled-glyphs set, on this machine's device."""
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


def search_part(sizes: Sizes, workers: int, gpus_each: float, cpus_each: float, clock: Clock, reserve_s: float,
                data: BackgroundData) -> Dict[str, Any]:
    """The search's rounds on the dataset ``data`` made second, until only ``reserve_s`` of the
    budget is left; seconds per round and the 150-round extrapolation."""
    start = time.perf_counter()
    ready = data.wait(1)
    with tempfile.TemporaryDirectory() as folder:
        config = search_config(sizes, str(Path(folder) / "search"), workers, gpus_each, cpus_each)
        load_start = time.perf_counter()
        evaluator = config.evaluator
        load_dataset(evaluator.dataset, None, seed=evaluator.data_seed, **evaluator.dataset_options)
        load_s = time.perf_counter() - load_start  # from the cache, unless the background generation failed
        rundir = RunDir(config.out)
        rundir.create(to_dict(config))
        setup_s, round_seconds = search_rounds(config, rundir, clock, reserve_s)
    return {"settings": {"config": str(CIFAR10_CONFIG.name), "dataset": "styled-glyphs",
                         "dataset_options": sizes.search_data, "workers": workers, "gpus_per_worker": gpus_each,
                         "cpus_per_worker": cpus_each, "train_steps_per_round": config.train_steps,
                         "samples_per_round": config.samples_per_round, "batch_size": sizes.search["batch_size"]},
            "data": ready, "dataset_generation_s": ready.get("seconds"), "dataset_load_s": load_s,
            "setup_s": setup_s, "round_seconds": round_seconds,
            "rounds_measured": len(round_seconds), "part_s": time.perf_counter() - start,
            "extrapolation": extrapolate(round_seconds, setup_s, gpus=workers * gpus_each)
            if round_seconds else None}


def search_rounds(config: SearchConfig, rundir: RunDir, clock: Clock, reserve_s: float) -> tuple[float, List[float]]:
    """(setup seconds, seconds of each round): rounds as search.loop.search runs them, checkpoint
    included, until the next round would not end before only ``reserve_s`` of the budget is left."""
    start = time.perf_counter()
    service = start_controller(config, config.run_id)
    pool = WorkerPool(config.evaluator, config.workers)
    round_seconds: List[float] = []
    try:
        shared = pool.initial_state()
        ray.get([actor.ping.remote() for actor in pool.actors])
        setup_s = time.perf_counter() - start
        for round_number in range(1, config.rounds + 1):
            if round_seconds and not room_for_another_round(clock.left(reserve_s), round_seconds[-1]):
                break
            began = time.perf_counter()
            shared, _ = run_round(config, config.run_id, round_number, shared, service, pool, rundir)
            save_round(rundir, round_number, shared, service)
            round_seconds.append(time.perf_counter() - began)
            print(f"search round {round_number}: {round_seconds[-1]:.1f} s", flush=True)
    finally:
        pool.shutdown()
        ray.kill(service)
    return setup_s, round_seconds


def ray_scaling_part(sizes: Sizes, cuda: bool) -> Dict[str, Any]:
    """gpu_throughput's scaling: total images/s of 1..N actors training the supernet on the shared device."""
    rows = gpu_throughput.ray_scaling(cuda=cuda, **sizes.scaling)
    return {"settings": sizes.scaling, "rows": rows}


def channels_last_part(sizes: Sizes, gpus: float, data: BackgroundData) -> Dict[str, Any]:
    """Images/s of one evaluator actor (WorkerPool.train) with channels_last on and off, on the
    dataset ``data`` made third."""
    ready = data.wait(2)
    rows = []
    for channels_last in (True, False):
        config = EvaluatorConfig(dataset_options=dict(sizes.layout_data),
                                 training=SharedTrainingConfig(batch_size=sizes.layout_batch),
                                 channels_last=channels_last, num_gpus=gpus)
        rows.append({"channels_last": channels_last,
                     "images_per_s": evaluator_speed.training_throughput(config, 1, sizes.layout_steps)})
    return {"steps": sizes.layout_steps, "batch_size": sizes.layout_batch, "num_gpus": gpus, "data": ready,
            "rows": rows, "on_over_off": rows[0]["images_per_s"] / rows[1]["images_per_s"]}


def dataset_specs(sizes: Sizes, search_workers: int) -> List[DatasetSpec]:
    """The generated datasets of time_to_accuracy, search and channels_last, in the order they are needed."""
    with tempfile.TemporaryDirectory() as folder:
        search = search_config(sizes, folder, search_workers, 0.0, 1.0).evaluator
    layout = EvaluatorConfig(dataset_options=dict(sizes.layout_data))
    return [(c.dataset, dict(c.dataset_options), c.data_seed) for c in (tta_config(sizes, 0.0), search, layout)]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-s", type=float, default=600.0,
                        help="the whole suite's time cap in seconds (default 600: 10 minutes)")
    parser.add_argument("--cpu-smoke", action="store_true", help="every part at toy size on the CPU (about 2 minutes)")
    parser.add_argument("--tta-workers", type=time_to_accuracy.parse_workers, default=None,
                        help="time-to-accuracy worker counts (default 1,2,4; 1,2 with --cpu-smoke)")
    parser.add_argument("--search-workers", type=int, default=None, help="actors of the search (default 4; 2 smoke)")
    parser.add_argument("--tta-share", type=float, default=0.45,
                        help="part of the time left after step_times, less what the parts after the search need, "
                             "for time-to-accuracy (the search gets the rest)")
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
                                "device_details": describe_accelerator(cuda),
                                "settings": {"budget_s": args.budget_s, "cpu_smoke": args.cpu_smoke,
                                             "tta_workers": args.tta_workers, "search_workers": args.search_workers,
                                             "tta_share": args.tta_share, "parts": list(PARTS)},
                                "not_done": NOT_DONE, "parts": {}}
    write_result(args.out, document)  # the device and versions, whatever happens next
    handlers = {number: signal.signal(number, stop_on_signal) for number in (signal.SIGTERM, signal.SIGINT)}
    stopped: Optional[SuiteStopped] = None
    data: Optional[BackgroundData] = None
    try:
        data = BackgroundData(dataset_specs(sizes, args.search_workers))
        try:
            connect(None, namespace=NAMESPACE, log_to_driver=False)
        except Exception as err:  # no Ray, no part: say so in the result rather than leave nothing
            document["ray_error"] = f"{type(err).__name__}: {err}"
            raise SystemExit(f"error: Ray did not start: {document['ray_error']}") from None
        for number in handlers:  # again: the driver's Ray core installs its own, which ends the process at once
            signal.signal(number, stop_on_signal)
        run_parts(document, args, sizes, cuda, clock, data)
    except SuiteStopped as stop:
        stopped = stop
        document["stopped"] = f"{stop} after {clock.elapsed():.0f} s"
    finally:
        for number in handlers:  # a second signal must not cut the writing short
            signal.signal(number, signal.SIG_IGN)
        for part in document["parts"].values():
            if part["status"] == "running":
                part["status"] = "interrupted"
        document["total_s"] = clock.elapsed()
        write_result(args.out, document)
        if data is not None:
            data.stop()
        ray.shutdown()
        for number, handler in handlers.items():
            signal.signal(number, handler)
    if stopped is not None:
        print(f"stopped by {stopped}; what was measured is in {args.out}")
        raise SystemExit(128 + stopped.signal_number)
    extrapolation = (document["parts"]["search"].get("extrapolation") or {}) if "search" in document["parts"] else {}
    if extrapolation:
        print(f"150-round search, {extrapolation['label']}: {extrapolation['hours']:.3f} hours on "
              f"{extrapolation['gpus']:g} GPU(s) = {extrapolation['gpu_hours']:.3f} GPU-hours "
              f"({extrapolation['seconds_per_round']:.1f} s per round)")
    print(f"written to {args.out}")


def run_parts(document: Dict[str, Any], args: argparse.Namespace, sizes: Sizes, cuda: bool, clock: Clock,
              data: BackgroundData) -> None:
    """The parts in PARTS' order, each written as it ends. Time-to-accuracy and the search share the
    time the parts after the search do not need to start."""
    reserve_s = reserve_after("search", sizes)
    tta_gpus = 1.0 / max(args.tta_workers) if cuda else 0.0
    search_gpus = 1.0 / args.search_workers if cuda else 0.0
    work = {"step_times": lambda: step_times_part(sizes, cuda),
            "time_to_accuracy": lambda: time_to_accuracy_part(sizes, args.tta_workers, tta_gpus, clock,
                                                              args.tta_share, reserve_s, data),
            "search": lambda: search_part(sizes, args.search_workers, search_gpus, 1.0 if args.cpu_smoke else 2.0,
                                          clock, reserve_s, data),
            "ray_scaling": lambda: ray_scaling_part(sizes, cuda),
            "channels_last": lambda: channels_last_part(sizes, 1.0 if cuda else 0.0, data)}
    for name in PARTS:
        run_part(document, name, sizes.min_start_s[name], clock, work[name], args.out)


if __name__ == "__main__":
    main()
