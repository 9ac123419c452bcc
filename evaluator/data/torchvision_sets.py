"""torchvision's sets by name: CIFAR-10 and CIFAR-100 in memory, ImageNet-style folders, and FakeData."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch
from torch.utils.data import Subset
from torchvision import datasets as tv_datasets
from torchvision import transforms

from evaluator.data.errors import DatasetError, default_cache_dir
from evaluator.data.registry import DATASETS
from evaluator.data.splits import DatasetSplits, holdout_count, stratified_holdout
from evaluator.data.tensors import BatchAugment, ImageTensors, channel_stats

# torchvision's classes check every file's MD5 before reading it: corrupt files are refused.
CIFAR_SOURCES: Dict[str, type] = {"cifar10": tv_datasets.CIFAR10, "cifar100": tv_datasets.CIFAR100}


def load_cifar(name: str, data_dir: Optional[str], download: bool, seed: int, val_fraction: float,
               val_size: Optional[int], padding: int, flip: bool) -> DatasetSplits:
    """CIFAR in memory; ``val`` is held out of the 50,000 training images, stratified and seeded."""
    source = CIFAR_SOURCES[name]
    root = Path(data_dir) if data_dir else default_cache_dir() / "data"
    try:
        train_set = source(str(root), train=True, download=download)
        test_set = source(str(root), train=False, download=False)
    except RuntimeError as error:
        raise DatasetError(f"{name}: files not found or corrupted in {root / source.base_folder}; "
                           f"pass --download (download=True) to fetch them into {root}") from error
    images = torch.from_numpy(train_set.data).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor(train_set.targets, dtype=torch.int64)
    count = holdout_count(len(labels), val_fraction, val_size, f"{name} validation split")
    kept, held = stratified_holdout(labels.numpy(), count, np.random.default_rng([seed, 1]))
    kept, held = torch.from_numpy(kept), torch.from_numpy(held)
    mean, std = channel_stats(images[kept])
    train = ImageTensors(images[kept], labels[kept], mean, std, BatchAugment(padding, flip),
                         sources={"train_index": kept})
    val = ImageTensors(images[held], labels[held], mean, std, sources={"train_index": held})
    test = ImageTensors(torch.from_numpy(test_set.data).permute(0, 3, 1, 2).contiguous(),
                        torch.tensor(test_set.targets, dtype=torch.int64), mean, std)
    return DatasetSplits(name, train, val, test, num_classes=len(train_set.classes), image_size=32, channels=3,
                         mean=mean, std=std, options={"val_size": count, "padding": padding, "flip": flip})


@DATASETS.register("cifar10")
def cifar10(data_dir: Optional[str], *, download: bool, seed: int, val_fraction: float = 0.1,
            val_size: Optional[int] = None, padding: int = 4, flip: bool = True) -> DatasetSplits:
    """CIFAR-10 from ``data_dir/cifar-10-batches-py``; train augmented by crop (``padding``) and flip."""
    return load_cifar("cifar10", data_dir, download, seed, val_fraction, val_size, padding, flip)


@DATASETS.register("cifar100")
def cifar100(data_dir: Optional[str], *, download: bool, seed: int, val_fraction: float = 0.1,
             val_size: Optional[int] = None, padding: int = 4, flip: bool = True) -> DatasetSplits:
    """CIFAR-100 (fine labels) from ``data_dir/cifar-100-python``; train augmented by crop and flip."""
    return load_cifar("cifar100", data_dir, download, seed, val_fraction, val_size, padding, flip)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@DATASETS.register("imagefolder")
def imagefolder(data_dir: Optional[str], *, download: bool, seed: int, image_size: int = 224,
                val_fraction: float = 0.1, val_size: Optional[int] = None) -> DatasetSplits:
    """``data_dir/train/<class>/*`` and ``data_dir/val/<class>/*``; ``val/`` is the test split.

    As for ImageNet, whose labelled ``val/`` is the benchmark's test set, the search's validation
    set is held out of ``train/`` (stratified, seeded). Train: RandomResizedCrop + flip; eval:
    Resize(size * 256/224) + CenterCrop(size).
    """
    if download:
        raise DatasetError("imagefolder cannot be downloaded; put the images in DIR/train and DIR/val")
    if data_dir is None:
        raise DatasetError("imagefolder needs --data-dir DIR with DIR/train/<class>/ and DIR/val/<class>/")
    folders = {split: Path(data_dir) / split for split in ("train", "val")}
    for folder in folders.values():
        if not folder.is_dir():
            raise DatasetError(f"imagefolder: missing folder {folder} (expected {data_dir}/train/<class>/*.jpg "
                               f"and {data_dir}/val/<class>/*.jpg)")
    normalise = transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    train_transform = transforms.Compose([transforms.RandomResizedCrop(image_size), transforms.RandomHorizontalFlip(),
                                          transforms.ToTensor(), normalise])
    eval_transform = transforms.Compose([transforms.Resize(round(image_size * 256 / 224)),
                                         transforms.CenterCrop(image_size), transforms.ToTensor(), normalise])
    try:
        train_all = tv_datasets.ImageFolder(str(folders["train"]), train_transform)
        train_eval = tv_datasets.ImageFolder(str(folders["train"]), eval_transform)
        test = tv_datasets.ImageFolder(str(folders["val"]), eval_transform)
    except FileNotFoundError as error:
        raise DatasetError(f"imagefolder: {error}") from error
    if test.classes != train_all.classes:
        raise DatasetError(f"imagefolder: {folders['val']} has classes {test.classes}, "
                           f"{folders['train']} has {train_all.classes}; they must match")
    targets = np.asarray(train_all.targets)
    count = holdout_count(len(targets), val_fraction, val_size, "imagefolder validation split")
    kept, held = stratified_holdout(targets, count, np.random.default_rng([seed, 1]))
    return DatasetSplits("imagefolder", Subset(train_all, kept.tolist()), Subset(train_eval, held.tolist()), test,
                         num_classes=len(train_all.classes), image_size=image_size, channels=3,
                         mean=IMAGENET_MEAN, std=IMAGENET_STD, options={"val_size": count})


@DATASETS.register("fake")
def fake(data_dir: Optional[str], *, download: bool, seed: int, train_size: int = 1280, test_size: int = 256,
         val_fraction: float = 0.2, val_size: Optional[int] = None, image_size: int = 32,
         num_classes: int = 10) -> DatasetSplits:
    """torchvision's FakeData, for throughput: random images, item i fixed by (seed, i).

    ``train_size`` images form the training set, of which ``val_size`` (or ``val_fraction``) are
    held out as ``val``, as for every other dataset.
    """
    normalise = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)])
    offset = seed * (train_size + test_size)  # FakeData seeds item i with i + offset: no two items share one
    train_all = tv_datasets.FakeData(train_size, (3, image_size, image_size), num_classes, normalise,
                                     random_offset=offset)
    test = tv_datasets.FakeData(test_size, (3, image_size, image_size), num_classes, normalise,
                                random_offset=offset + train_size)
    count = holdout_count(train_size, val_fraction, val_size, "fake validation split")
    order = np.random.default_rng([seed, 1]).permutation(train_size)
    held, kept = order[:count], np.sort(order[count:])
    return DatasetSplits("fake", Subset(train_all, kept.tolist()), Subset(train_all, held.tolist()), test,
                         num_classes=num_classes, image_size=image_size, channels=3, mean=(0.5,) * 3,
                         std=(0.5,) * 3, options={"val_size": count})
