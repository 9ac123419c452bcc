"""The configuration of a search: a dataclass tree loaded from YAML, with command-line overrides."""
from __future__ import annotations

import copy
import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import yaml

from controller.warmup_sampler import WARMUP_SAMPLING
from evaluator.config import EvaluatorConfig
from search.objective import ObjectiveConfig

POLICIES = ("rl", "ppo", "random")  # rl: REINFORCE; ppo: PPO (controller/ppo.py); random: the baseline
# The shipped configs (package data), found by name: ``--config cifar10`` is ``search/configs/cifar10.yaml``.
NAMED_CONFIGS = Path(__file__).resolve().parent / "configs"
# Where the project's packages are installed: the repository for an editable install, else site-packages.
# A relative --config missing from the working directory is looked for here (``ray submit`` runs its
# script from the head node's home directory, not from the project).
INSTALLED_PROJECT = NAMED_CONFIGS.parents[1]


class ConfigError(ValueError):
    """A configuration file or override that does not fit the dataclasses; names the key."""


@dataclass
class SearchConfig:
    """One search. Per round: ``train_steps`` shared-weight steps (each on every worker's batch with
    ``evaluator.sync`` "step", split over the workers with "round"), then
    ``samples_per_round`` genotypes scored and one controller update; ``rounds`` rounds, then the
    derive stage re-scores ``derive_top`` genotypes by mean reward, the greedy one and
    ``derive_samples`` fresh samples on the whole validation set."""

    out: Optional[str] = None  # default: runs/search-<UTC date and time>
    run_id: Optional[str] = None  # default: the name of the out directory
    rounds: int = 12
    workers: int = 1  # one actor with both cores of a laptop: the timed default (README)
    policy: str = "rl"
    controller_preset: str = "sase"  # measured: benchmarks/controller_landscapes.py (issue 8)
    controller: Dict[str, Any] = field(default_factory=dict)  # overrides of the preset's fields
    train_steps: int = 48
    # Warm-up: the first warmup_rounds rounds train the shared weights on genotypes of the warm-up
    # sampler (controller/warmup_sampler.py: "fair" or "uniform"), not the controller's, and leave the
    # controller as it was. Default 0, measured (docs/ranking_fidelity.md): at 3 search seeds the
    # supernet ranks the stand-alone table better without warm-up (whole-split tau 0.27 against 0.21
    # for 4 fair rounds, results/reward_fidelity.json; the 3 searches shared their starting supernet).
    warmup_rounds: int = 0
    warmup_sampling: str = "fair"
    samples_per_round: int = 10
    derive_top: int = 5
    derive_samples: int = 10
    seed: int = 0
    ray_address: Optional[str] = None
    evaluator: EvaluatorConfig = field(default_factory=lambda: EvaluatorConfig(num_cpus=2.0))
    # What the controller maximises (search/objective.py): accuracy, or MnasNet's latency-weighted form.
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ConfigError(f"policy must be one of {', '.join(POLICIES)}, got {self.policy!r}")
        for name in ("rounds", "workers", "train_steps", "samples_per_round"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.warmup_rounds < 0:  # as many as rounds, or more: the controller never learns
            raise ConfigError(f"warmup_rounds must be at least 0, got {self.warmup_rounds}")
        if self.evaluator.seed is None:  # one --seed for the whole search: the supernet's start too
            self.evaluator = dataclasses.replace(self.evaluator, seed=self.seed)
        if self.warmup_sampling not in WARMUP_SAMPLING:
            raise ConfigError(f"warmup_sampling must be one of {', '.join(WARMUP_SAMPLING)}, "
                              f"got {self.warmup_sampling!r}")


def build(cls: type, values: Mapping[str, Any], where: str = "") -> Any:
    """A dataclass from nested mappings; an unknown key or a value of the wrong type is refused."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in known:
            raise ConfigError(f"unknown config key {path!r}; valid: {', '.join(sorted(known))}")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            given = {**section_defaults(cls, key, hint), **value} if isinstance(value, Mapping) else value
            kwargs[key] = build(hint, given, path)
        else:
            kwargs[key] = _check_type(hint, value, path)
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f"{where or 'config'}: {err}") from None


def section_defaults(cls: type, name: str, section_class: type) -> Dict[str, Any]:
    """The values of ``cls``'s nested section ``name`` where ``cls``'s default for it differs from the
    section class's own defaults: a file whose section leaves such a key out keeps ``cls``'s value
    (a search's ``evaluator:`` keeps its 2 CPUs, not ``EvaluatorConfig``'s 1)."""
    spec = next(f for f in dataclasses.fields(cls) if f.name == name)
    if spec.default_factory is dataclasses.MISSING:
        return {}
    section, own = spec.default_factory(), section_class()
    return {f.name: getattr(section, f.name) for f in dataclasses.fields(section)
            if getattr(section, f.name) != getattr(own, f.name)}


def _check_type(hint: Any, value: Any, path: str) -> Any:
    allowed = typing.get_args(hint) if typing.get_origin(hint) is typing.Union else (hint,)
    for kind in allowed:
        origin = typing.get_origin(kind) or kind
        if kind is type(None) and value is None:
            return value
        if origin is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if origin is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if origin in (str, bool, dict, list, tuple) and isinstance(value, origin):
            return value
        if origin is typing.Any:
            return value
    raise ConfigError(f"{path}: expected {hint}, got {value!r}")


def load_config(path: Optional[str] = None, overrides: Optional[Mapping[str, Any]] = None,
                defaults: Optional[Mapping[str, Any]] = None) -> SearchConfig:
    """The config file (or the defaults), then ``overrides`` given as dotted keys (``evaluator.dataset``).

    ``defaults``: dotted keys that stand for the dataclasses' defaults where the file lacks them
    (resuming a run saved before a key existed: :func:`predated_settings`).
    """
    values: Dict[str, Any] = {}
    if path is not None:
        try:
            values = yaml.safe_load(config_file(path).read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"config file {path} is not valid YAML: {str(err).splitlines()[0]}") from None
        if not isinstance(values, dict):
            raise ConfigError(f"config file {path} must hold a mapping")
    values = with_defaults(values, defaults or {})
    for dotted, value in (overrides or {}).items():
        if value is not None:
            set_dotted(values, dotted, value)
    return build(SearchConfig, values)


def config_names() -> List[str]:
    """The shipped configs' names (``--config NAME``)."""
    return sorted(p.stem for p in NAMED_CONFIGS.glob("*.yaml"))


def config_file(given: str) -> Path:
    """The file ``--config`` means: a path as given (relative to the working directory), else a
    shipped config by name (``cifar10``), else a relative path inside the installed project."""
    path = Path(given)
    if path.is_file():
        return path
    if path.exists():
        raise ConfigError(f"config file {given} is not a file")
    if path.suffix == "" and len(path.parts) == 1:
        named = NAMED_CONFIGS / f"{given}.yaml"
        if named.is_file():
            return named
        raise ConfigError(f"config {given!r} is neither a file in {Path.cwd()} nor a shipped config; "
                          f"shipped: {', '.join(config_names())}")
    places = [str(Path.cwd())]
    if not path.is_absolute():
        installed = INSTALLED_PROJECT / path
        if installed.is_file():
            return installed
        places.append(f"the installed project {INSTALLED_PROJECT}")
    raise ConfigError(f"config file {given} does not exist (looked in {' and in '.join(places)}); "
                      f"shipped configs by name: {', '.join(config_names())}")


def set_dotted(values: Dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``values["a"]["b"] = value`` for the dotted key ``a.b``, making the mappings on the way."""
    node = values
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


# Keys added after runs were saved, with what a run whose config.yaml lacks them did (before issue 15:
# no warm-up, each sample on its own batch; before issue 14: workers merged by the mean of their
# deltas): a resumed run goes on as it began, not with today's defaults.
PREDATED = {"warmup_rounds": 0, "evaluator.common_reward_images": False, "evaluator.sync": "round"}


def predated_settings(saved: Mapping[str, Any]) -> Dict[str, Any]:
    """The :data:`PREDATED` keys (dotted) that a saved config.yaml's values lack, with what its run did.

    A run saved before ``evaluator.data_seed`` existed drew its dataset and its supernet alike from
    ``evaluator.seed`` (0 unless its config set it, whatever ``seed`` said): both stay that value.
    """
    settings = {dotted: value for dotted, value in PREDATED.items() if not has_dotted(saved, dotted)}
    if not has_dotted(saved, "evaluator.data_seed"):
        evaluator = saved.get("evaluator")
        old = evaluator.get("seed", 0) if isinstance(evaluator, Mapping) else 0
        settings.update({"evaluator.data_seed": old, "evaluator.seed": old})
    return settings


def saved_config(saved: Mapping[str, Any]) -> SearchConfig:
    """A run's config.yaml as the config the run used: the keys it predates set as the run ran."""
    return build(SearchConfig, with_defaults(saved, predated_settings(saved)))


def has_dotted(values: Mapping[str, Any], dotted: str) -> bool:
    node: Any = values
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return False
        node = node[key]
    return True


def with_defaults(values: Mapping[str, Any], defaults: Mapping[str, Any]) -> Dict[str, Any]:
    """A copy of the nested ``values`` with each dotted key of ``defaults`` that it lacks set (not
    under a value that is not a mapping: :func:`build` refuses that one, naming it)."""
    values = copy.deepcopy(dict(values))
    for dotted, value in defaults.items():
        *parents, leaf = dotted.split(".")
        node: Any = values
        for key in parents:
            node = node.setdefault(key, {}) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.setdefault(leaf, value)
    return values


def to_dict(config: Any) -> Dict[str, Any]:
    return dataclasses.asdict(config)
