"""What every benchmark result records about the machine it was measured on."""
from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from typing import Any, Dict


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
