"""The one registry of datasets: builders found by name, their options checked, and ``load_dataset``.

A dataset module registers its builder with ``@DATASETS.register(name)``; a builder whose settings
are a dataclass (``ClutteredDigitsConfig``) names it, ``@DATASETS.register(name, options=Config)``,
and then takes ``**options`` and builds ``Config(**options, seed=seed)``.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import TYPE_CHECKING, Callable, Dict, List, Optional

from evaluator.data.errors import DatasetError

if TYPE_CHECKING:
    from evaluator.data.splits import DatasetSplits

DEFAULT_DATASET = "styled-glyphs"
Builder = Callable[..., "DatasetSplits"]
COMMON = ("data_dir", "download", "seed")  # what every builder takes besides its options


class DatasetRegistry:
    """Dataset builders found by name. A builder takes ``(data_dir, *, download, seed, **options)``."""

    def __init__(self) -> None:
        self._builders: Dict[str, Builder] = {}
        self._options: Dict[str, Dict[str, object]] = {}

    def register(self, name: str, options: Optional[type] = None) -> Callable[[Builder], Builder]:
        """Register a builder under ``name``; ``options``: the dataclass its ``**options`` fill."""
        def add(builder: Builder) -> Builder:
            if name in self._builders:
                raise KeyError(f"dataset {name!r} registered twice")
            self._builders[name] = builder
            self._options[name] = {**config_options(options), **keyword_options(builder)}
            return builder

        return add

    def names(self) -> List[str]:
        return list(self._builders)

    def __contains__(self, name: str) -> bool:
        return name in self._builders

    def options(self, name: str) -> Dict[str, object]:
        """The options dataset ``name`` accepts, with their defaults."""
        return dict(self._options[name])

    def build(self, name: str, data_dir: Optional[str], *, download: bool, seed: int, **options) -> "DatasetSplits":
        if name not in self._builders:
            raise DatasetError(f"unknown dataset {name!r}; valid datasets: {', '.join(self.names())}")
        accepted = self.options(name)
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise DatasetError(f"dataset {name!r} has no option {', '.join(map(repr, unknown))}; "
                               f"valid options: {', '.join(accepted)}")
        return self._builders[name](data_dir, download=download, seed=seed, **options)


def config_options(config: Optional[type]) -> Dict[str, object]:
    """The fields of a settings dataclass with their defaults, ``seed`` left out (every builder takes it)."""
    if config is None:
        return {}
    return {f.name: f.default for f in dataclasses.fields(config) if f.name not in COMMON}


def keyword_options(builder: Builder) -> Dict[str, object]:
    """The named keyword parameters of a builder with their defaults (``**options`` left out)."""
    parameters = inspect.signature(builder).parameters.values()
    return {p.name: p.default for p in parameters if p.name not in COMMON and p.kind is not p.VAR_KEYWORD}


DATASETS = DatasetRegistry()


def load_dataset(name: str = DEFAULT_DATASET, data_dir: Optional[str] = None, *, download: bool = False,
                 seed: int = 0, **options) -> "DatasetSplits":
    """Load dataset ``name`` (see ``DATASETS.names()``); ``options`` are the dataset's own settings.

    ``download`` fetches files only for sets that have them (CIFAR) and only when asked. ``seed``
    fixes generated data and the validation split. Raises ``DatasetError`` (a ``ValueError``) with
    a message naming what is wrong: unknown name or option, missing folder, missing or corrupt files.
    """
    return DATASETS.build(name, data_dir, download=download, seed=seed, **options)
