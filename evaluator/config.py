"""What an evaluator needs to know: the data, the proxy network, shared-weight training, resources."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from evaluator.data.registry import DEFAULT_DATASET
from evaluator.training import SharedTrainingConfig
from searchspace import GATE_BIAS


@dataclass
class EvaluatorConfig:
    dataset: str = DEFAULT_DATASET
    data_dir: Optional[str] = None
    download: bool = False
    dataset_options: Dict[str, Any] = field(default_factory=dict)  # the dataset's own settings (sizes, ...)
    arch: str = "resnet20"
    reduction: int = 16
    combine: str = "sequential"
    gate_bias: float = GATE_BIAS
    training: SharedTrainingConfig = field(default_factory=SharedTrainingConfig)
    val_batch_size: int = 256
    channels_last: bool = True
    seed: int = 0
    # Ray resources of one evaluator actor; fractional GPUs share a device between actors.
    num_cpus: float = 1.0
    num_gpus: float = 0.0
