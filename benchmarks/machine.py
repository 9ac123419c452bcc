"""What every benchmark result records about the machine it was measured on."""
from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime, timezone
from typing import Any, Dict, Optional


def describe_machine() -> Dict[str, Any]:
    import numpy
    import ray
    import torch
    import torchvision

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(), "python": platform.python_version(), "cpu": cpu,
        "cpu_count": os.cpu_count(), "gpu": gpu, "torch": torch.__version__, "torchvision": torchvision.__version__,
        "ray": ray.__version__, "numpy": numpy.__version__, "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def describe_accelerator(use_cuda: bool) -> Dict[str, Any]:
    """The device a GPU measurement ran on, and the software between it and torch: the GPU's name,
    memory (GiB) and compute capability, the NVIDIA driver, and the CUDA and cuDNN that torch was
    built with. ``use_cuda`` False (or no GPU): the CPU, with torch's build versions all the same."""
    import torch

    cuda = use_cuda and torch.cuda.is_available()
    described: Dict[str, Any] = {"device": "cuda" if cuda else "cpu", "torch": torch.__version__,
                                 "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
                                 "cuda_available": torch.cuda.is_available(), "driver": nvidia_driver()}
    if cuda:
        properties = torch.cuda.get_device_properties(0)
        described.update(name=properties.name, memory_gib=properties.total_memory / 2 ** 30,
                         capability=f"{properties.major}.{properties.minor}",
                         multiprocessors=properties.multi_processor_count, count=torch.cuda.device_count())
    return described


def nvidia_driver() -> Optional[str]:
    """The NVIDIA driver's version as nvidia-smi reports it; None without nvidia-smi or a GPU."""
    try:
        answer = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = answer.stdout.split()
    return lines[0] if answer.returncode == 0 and lines else None
