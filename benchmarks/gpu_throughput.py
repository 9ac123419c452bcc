"""Training throughput on CIFAR-sized input, in one process and over 1..N Ray actors sharing the GPUs.

The supernet and the fixed network, then 1..N Ray actors sharing the GPU(s) with fractional
`num_gpus`. Runs unchanged on a CUDA machine; on a CPU-only one
it measures the CPU and says so.

    python benchmarks/gpu_throughput.py [--max-workers N] [--steps S] [--batch-size B]

Writes benchmarks/results/gpu_throughput.json with the device it ran on.
"""
from __future__ import annotations

import argparse
import os
import random
import time
from typing import Any, Dict, List

from common import RESULTS, show_result, timed, write_result

import ray  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from evaluator.supernet import Supernet  # noqa: E402
from machine import describe_machine  # noqa: E402
from searchspace import KNOWN, all_genotypes  # noqa: E402


def images_per_second(steps: int, batch_size: int, device: str, supernet: bool, seed: int = 0) -> float:
    """SGD steps of ResNet-20 on random 32x32 batches; the supernet samples a genotype per step."""
    torch.manual_seed(seed)
    genotypes = list(all_genotypes())
    picks = random.Random(seed)
    net = Supernet("resnet20").to(device, memory_format=torch.channels_last)
    model = net if supernet else net.extract(KNOWN["cbam"]).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randn(batch_size, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (batch_size,), device=device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        logits = net(images, picks.choice(genotypes)) if supernet else model(images)
        F.cross_entropy(logits, labels).backward()
        optimizer.step()

    def steps_then_wait(count: int) -> None:
        for _ in range(count):
            step()
        if device == "cuda":
            torch.cuda.synchronize()

    return steps * batch_size / timed(lambda: steps_then_wait(steps), warm_up=lambda: steps_then_wait(3))


@ray.remote
def actor_throughput(steps: int, batch_size: int, seed: int, threads: int) -> float:
    torch.set_num_threads(threads)
    device = "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"
    return images_per_second(steps, batch_size, device, supernet=True, seed=seed)


def single_process(steps: int, batch_size: int, device: str) -> Dict[str, float]:
    """Images/s of the supernet (a genotype sampled per step) and of the fixed CBAM network, in this process."""
    return {"supernet": images_per_second(steps, batch_size, device, True),
            "fixed_cbam": images_per_second(steps, batch_size, device, False)}


def ray_scaling(max_workers: int, steps: int, batch_size: int, cuda: bool) -> List[Dict[str, Any]]:
    """Total images/s of 1..``max_workers`` Ray tasks training the supernet at once, sharing the GPUs
    through fractional ``num_gpus`` when ``cuda``; joins Ray only if not joined already."""
    gpus = torch.cuda.device_count() if cuda else 0
    own_ray = not ray.is_initialized()
    if own_ray:
        ray.init(include_dashboard=False, log_to_driver=False)
    scaling = []
    try:
        for workers in range(1, max_workers + 1):
            gpu_share = gpus / workers if cuda else 0
            threads = max(1, (os.cpu_count() or 1) // workers)
            task = actor_throughput.options(num_gpus=gpu_share, num_cpus=threads)
            start = time.perf_counter()
            rates = ray.get([task.remote(steps, batch_size, w, threads) for w in range(workers)])
            scaling.append({"workers": workers, "num_gpus_each": gpu_share, "cpus_each": threads,
                            "images_per_s_total": sum(rates), "wall_s": time.perf_counter() - start})
    finally:
        if own_ray:
            ray.shutdown()
    return scaling


def measure(max_workers: int, steps: int, batch_size: int) -> dict:
    """The whole measurement as a result document (not written); joins Ray only if not joined already."""
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    single = single_process(steps, batch_size, device)
    scaling = ray_scaling(max_workers, steps, batch_size, cuda)
    return {"benchmark": "gpu_throughput", "machine": describe_machine(), "device": device,
            "settings": {"max_workers": max_workers, "steps": steps, "batch_size": batch_size},
            "single_process_images_per_s": single,
            "supernet_over_fixed": single["supernet"] / single["fixed_cbam"], "ray_scaling": scaling}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-workers", type=int, default=4)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    result = measure(args.max_workers, args.steps, args.batch_size)
    write_result(RESULTS / "gpu_throughput.json", result)
    show_result(result)


if __name__ == "__main__":
    main()
