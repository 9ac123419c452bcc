"""Datasets of the search, found by name through one registry, and fast batches for training on them.

``load_dataset(name, data_dir, download=..., seed=..., **options)`` gives a ``DatasetSplits``:
``train``, ``val`` (held out of the training data, for rewards) and ``test`` (final evaluation only).

- ``styled-glyphs`` (default, offline): glyphs from matplotlib's fonts in clutter, each image with
  its own contrast and coloured noise, 32 classes; deterministic by seed, cached by its parameters.
- ``cluttered-digits`` (offline): scikit-learn's bundled 8x8 digits rendered into cluttered
  32x32 RGB canvases, deterministic by seed and cached by its generation parameters.
- ``cifar10``, ``cifar100``: torchvision's CIFAR files under ``data_dir``, downloaded only on request.
- ``imagefolder``: ``data_dir/train/<class>/*`` and ``data_dir/val/<class>/*``, ImageNet style.
- ``fake``: torchvision's FakeData, for throughput measurements.

In-memory sets (cluttered digits, CIFAR) are ``ImageTensors``: uint8 images batched by indexing
tensors, with augmentation done on the whole batch, which on a CPU is far faster than a DataLoader
with per-item transforms. The others are torchvision datasets batched by a DataLoader.

Modules, in the order the data flows: ``registry`` (names to builders, ``load_dataset``), one module
per dataset that registers itself (``styled_glyphs``, ``cluttered_digits``, ``torchvision_sets``), ``splits``
(``DatasetSplits``, held-out splits), ``tensors`` (in-memory images, augmentation), ``batches``,
and below them ``cache`` (generated arrays on disk), ``seeds`` and ``errors``.
A new dataset is one more module that registers its builder with ``@DATASETS.register(name)``,
imported once below.
"""
from evaluator.data import cluttered_digits, styled_glyphs, torchvision_sets  # noqa: F401  (register the datasets)
from evaluator.data.batches import Batch, Batches, LoaderBatches, TensorBatches
from evaluator.data.cluttered_digits import ClutteredDigitsConfig, base_digits, generate_cluttered_digits
from evaluator.data.errors import DatasetError, default_cache_dir
from evaluator.data.registry import DATASETS, DEFAULT_DATASET, DatasetRegistry, load_dataset
from evaluator.data.seeds import derived_seed, shard_seed
from evaluator.data.splits import SPLITS, DatasetSplits, holdout_count, stratified_holdout
from evaluator.data.tensors import BatchAugment, Device, ImageTensors, channel_stats
from evaluator.data.torchvision_sets import CIFAR_SOURCES

__all__ = [
    "Batch", "BatchAugment", "Batches", "CIFAR_SOURCES", "ClutteredDigitsConfig", "DATASETS", "DEFAULT_DATASET",
    "DatasetError", "DatasetRegistry", "DatasetSplits", "Device", "ImageTensors", "LoaderBatches", "SPLITS",
    "TensorBatches", "base_digits", "channel_stats", "default_cache_dir", "derived_seed", "generate_cluttered_digits",
    "holdout_count", "load_dataset", "shard_seed", "stratified_holdout",
]
