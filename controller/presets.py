"""Named controller settings: the policy's shape and squash, and the REINFORCE update's knobs."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Dict, Mapping, Optional, Tuple

BASELINES = ("ema", "batch_mean")


@dataclass(frozen=True)
class ControllerConfig:
    """Everything that decides how the controller samples and learns.

    Policy: ``hidden`` LSTM units; logits are divided by ``temperature`` (when set), then squashed
    to ``tanh_constant * tanh(logits)`` (when set); every weight starts uniform in
    ``[-init_range, init_range]``.

    Update: each reward gets ``entropy_weight * entropy`` of its sample added; the baseline is
    ``ema`` (decayed by ``baseline_decay`` once per sample, starting at ``baseline_init``) or
    ``batch_mean`` (the mean reward of the update's batch); ``normalise_advantages`` divides the
    batch's advantages by their standard deviation; Adam with ``lr``, ``betas``, ``eps``; the
    gradient norm is clipped to ``grad_clip`` when set. How many genotypes one update sees is the
    search's ``samples_per_round``, not a controller setting.

    PPO only (``--policy ppo``, :mod:`controller.ppo`): ``ppo_epochs`` Adam steps per batch on the
    surrogate whose probability ratio is clipped to ``[1 - ppo_clip, 1 + ppo_clip]``, with step
    size ``ppo_lr`` (None: ``lr``; several steps per batch want a smaller one).
    """

    hidden: int = 64
    tanh_constant: Optional[float] = 1.5
    temperature: Optional[float] = None
    init_range: float = 0.1
    entropy_weight: float = 1e-4
    baseline: str = "ema"
    baseline_decay: float = 0.99
    baseline_init: float = 0.0
    normalise_advantages: bool = False
    lr: float = 3.5e-3
    betas: Tuple[float, float] = (0.0, 0.999)
    eps: float = 1e-3
    grad_clip: Optional[float] = None
    ppo_clip: float = 0.2
    ppo_epochs: int = 4
    ppo_lr: Optional[float] = None

    def __post_init__(self) -> None:
        if self.baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, got {self.baseline!r}")
        if self.hidden < 1:
            raise ValueError(f"hidden must be positive, got {self.hidden}")
        if self.ppo_epochs < 1 or self.ppo_clip <= 0:
            raise ValueError(f"ppo_epochs must be at least 1 and ppo_clip positive, got {self.ppo_epochs}, {self.ppo_clip}")
        if self.temperature is not None and self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        object.__setattr__(self, "betas", tuple(self.betas))

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


# ENAS's official CIFAR-10 search (melodyguan/enas, scripts/cifar10_*_search.sh and its controllers):
# LSTM 64, tanh constant 1.5, no temperature, entropy weight 1e-4 added to the reward, baseline
# decay 0.99 per sample from 0, Adam lr 3.5e-3 with beta1 0 and eps 1e-3, weights in [-0.1, 0.1],
# no gradient clipping, 10 samples aggregated per step (the micro search's num_aggregate: our
# samples_per_round).
ENAS = ControllerConfig()

# Ours, measured with benchmarks/controller_landscapes.py (20 seeds, synthetic tables the size of
# the registries' space, 10x8x8x6 = 3139 genotypes; results/controller_landscapes_stage1.json,
# _stage2.json, _confirm*.json): the batch-mean baseline is what beats random (ENAS's EMA starts
# at 0 and lags the rewards for hundreds of samples); lr 0.035-0.1 beats 3.5e-3; no tanh squash
# converges too early (misses the optimum in 10% of runs); tanh 3 lets one genotype reach p > 0.9
# (1.5 caps a 10-way decision at 0.69), at equal area under the best-found regret curve.
# PPO with the same preset (results/controller_ppo_stage*.json, seeds 0-19, noise 0.03): 2 epochs at
# lr 0.03 matched REINFORCE; 4 epochs (NASNet's count) at 0.05 settled early on a worse genotype.
SASE = replace(ENAS, baseline="batch_mean", lr=0.05, tanh_constant=3.0, ppo_epochs=2, ppo_lr=0.03)

PRESETS: Dict[str, ControllerConfig] = {"enas": ENAS, "sase": SASE}


def preset(name: str, **overrides: Any) -> ControllerConfig:
    """The preset called ``name`` with ``overrides`` applied (e.g. from a config file)."""
    if name not in PRESETS:
        raise KeyError(f"unknown controller preset {name!r}; expected one of {', '.join(PRESETS)}")
    return from_dict(overrides, base=PRESETS[name])


def from_dict(values: Mapping[str, Any], base: ControllerConfig = ENAS) -> ControllerConfig:
    """``base`` with the fields in ``values`` replaced; an unknown field is refused by name."""
    known = {f.name for f in fields(ControllerConfig)}
    if "samples_per_update" in values:  # a controller key before; the search never read it
        raise KeyError("'samples_per_update' is not a controller setting: how many genotypes one update "
                       "sees is the search's samples_per_round")
    unknown = [k for k in values if k not in known]
    if unknown:
        raise KeyError(f"unknown controller setting {unknown[0]!r}; expected one of {', '.join(sorted(known))}")
    return replace(base, **values)
