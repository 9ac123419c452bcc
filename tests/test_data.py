"""Datasets of evaluator.data: determinism, disjoint splits, caching, CIFAR/ImageFolder/FakeData loading, batches."""
import hashlib
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import datasets as tv_datasets

from evaluator import data
from evaluator.data import cluttered_digits
from evaluator.data import (
    DATASETS,
    BatchAugment,
    DatasetError,
    ImageTensors,
    TensorBatches,
    base_digits,
    load_dataset,
)

SMALL = dict(train_size=240, val_size=60, test_size=60)


def digest(splits) -> str:
    """sha256 over the images and labels of all three splits."""
    h = hashlib.sha256()
    for split in (splits.train, splits.val, splits.test):
        h.update(split.images.numpy().tobytes())
        h.update(split.labels.numpy().tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------- cluttered-digits


def test_same_seed_gives_identical_bytes_and_another_seed_differs():
    first = load_dataset("cluttered-digits", seed=3, cache=False, **SMALL)
    again = load_dataset("cluttered-digits", seed=3, cache=False, **SMALL)
    other = load_dataset("cluttered-digits", seed=4, cache=False, **SMALL)
    assert digest(first) == digest(again)
    assert digest(first) != digest(other)
    assert not torch.equal(first.train.images, other.train.images)


def test_no_base_image_is_in_two_splits():
    splits = load_dataset("cluttered-digits", seed=0, cache=False, **SMALL)
    _, base_labels = base_digits()
    pools = {name: set(splits.split(name).sources["pool"].tolist()) for name in ("train", "val", "test")}
    assert not pools["train"] & pools["val"]
    assert not pools["train"] & pools["test"]
    assert not pools["val"] & pools["test"]
    assert len(pools["train"] | pools["val"] | pools["test"]) == len(base_labels)
    for name, pool in pools.items():
        split = splits.split(name)
        digits = split.sources["digit_index"].numpy()
        clutter = split.sources["clutter_index"].numpy()
        assert set(digits.tolist()) <= pool
        assert set(clutter[clutter >= 0].tolist()) <= pool
        assert not np.any(clutter == digits[:, None]), "a fragment cut from the image's own digit"
        assert np.array_equal(split.labels.numpy(), base_labels[digits])
        assert set(base_labels[list(pool)].tolist()) == set(range(10)), f"{name} pool lacks a class"


def test_shapes_dtypes_labels_and_normalisation():
    splits = load_dataset("cluttered-digits", seed=0, cache=False, **SMALL)
    assert (splits.num_classes, splits.image_size, splits.channels) == (10, 32, 3)
    for name, size in (("train", 240), ("val", 60), ("test", 60)):
        split = splits.split(name)
        assert split.images.shape == (size, 3, 32, 32) and split.images.dtype == torch.uint8
        assert split.labels.dtype == torch.int64
        assert 0 <= int(split.labels.min()) and int(split.labels.max()) < 10
    for split in (splits.train, splits.val, splits.test):  # classes drawn in turn
        per_class = torch.bincount(split.labels, minlength=10)
        assert per_class.max() - per_class.min() <= 1
    normalised = splits.train.normalised()
    assert normalised.dtype == torch.float32
    assert normalised.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(normalised.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(normalised.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-2)
    image, label = splits.test[5]
    assert image.shape == (3, 32, 32) and label == int(splits.test.labels[5])


def test_rendering_options_do_what_they_say():
    plain = dict(SMALL, colour="white", clutter=(0, 0), scale=(2.0, 2.0), noise=0.0, cache=False)
    splits = load_dataset("cluttered-digits", seed=1, **plain)
    images = splits.train.images
    assert torch.equal(images[:, 0], images[:, 1]) and torch.equal(images[:, 0], images[:, 2])  # white on black
    assert (splits.train.sources["clutter_index"] == -1).all()
    ink = images[:, 0] > 0
    rows, cols = ink.any(dim=2), ink.any(dim=1)
    for r, c in zip(rows, cols):  # a digit magnified 2x covers at most 16 pixels, plus bilinear's half-pixel rims
        r, c = torch.nonzero(r)[:, 0], torch.nonzero(c)[:, 0]
        assert r.max() - r.min() < 18 and c.max() - c.min() < 18

    noisy = load_dataset("cluttered-digits", seed=1, **dict(plain, noise=0.2)).train.images
    spread = (noisy.float() - images.float()).std() / 255
    assert 0.1 < spread < 0.2  # noise 0.2 on the [0, 1] scale, less where clipped at 0

    cluttered = load_dataset("cluttered-digits", seed=1, **dict(plain, clutter=(3, 3)))
    assert ((cluttered.train.sources["clutter_index"] >= 0).sum(dim=1) == 3).all()


def test_invalid_generation_settings_are_refused():
    with pytest.raises(DatasetError, match="scale"):
        load_dataset("cluttered-digits", cache=False, scale=(2.0, 5.0))  # 8 * 5 > 32
    with pytest.raises(DatasetError, match="colour"):
        load_dataset("cluttered-digits", cache=False, colour="pink")


def test_second_load_reads_the_cache_and_a_changed_parameter_gets_a_new_file(tmp_path, monkeypatch):
    first = load_dataset("cluttered-digits", str(tmp_path), seed=0, **SMALL)
    assert first.cache_path is not None and first.cache_path.startswith(str(tmp_path))

    def refuse(config):
        raise AssertionError("generated again although the cache holds this config")

    with monkeypatch.context() as patch:
        patch.setattr(cluttered_digits, "generate_cluttered_digits", refuse)
        second = load_dataset("cluttered-digits", str(tmp_path), seed=0, **SMALL)
    assert second.cache_path == first.cache_path
    assert digest(second) == digest(first)
    assert torch.equal(second.val.sources["pool"], first.val.sources["pool"])

    changed = load_dataset("cluttered-digits", str(tmp_path), seed=0, **dict(SMALL, noise=0.05))
    assert changed.cache_path != first.cache_path
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [first.cache_path.split("/")[-1], changed.cache_path.split("/")[-1]]
    ), "left a temporary file behind"
    assert digest(changed) != digest(first)


def test_a_damaged_cache_file_is_regenerated(tmp_path):
    first = load_dataset("cluttered-digits", str(tmp_path), seed=0, **SMALL)
    with open(first.cache_path, "wb") as damaged:
        damaged.write(b"not a zip file")
    again = load_dataset("cluttered-digits", str(tmp_path), seed=0, **SMALL)
    assert digest(again) == digest(first)
    assert np.load(again.cache_path)["train_images"].shape == (240, 3, 32, 32)


# ---------------------------------------------------------------- CIFAR


def write_cifar(root, cls, train_count, test_count, num_classes):
    """CIFAR's pickled batches (python version) under root/cls.base_folder, with random pixels."""
    rng = np.random.default_rng(7)
    folder = root / cls.base_folder
    folder.mkdir(parents=True)
    label_key = "labels" if cls is tv_datasets.CIFAR10 else "fine_labels"
    written = {}
    for split, files, count in (("train", cls.train_list, train_count), ("test", cls.test_list, test_count)):
        pixels, labels = [], []
        for file_name, _ in files:
            n = count // len(files)
            batch = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
            targets = rng.integers(0, num_classes, n).tolist()
            entry = {"batch_label": file_name, label_key: targets, "data": batch,
                     "filenames": [f"{file_name}_{i}.png" for i in range(n)]}
            if label_key == "fine_labels":
                entry["coarse_labels"] = [t // 5 for t in targets]
            with open(folder / file_name, "wb") as out:
                pickle.dump(entry, out, protocol=2)
            pixels.append(batch)
            labels += targets
        written[split] = (np.concatenate(pixels).reshape(-1, 3, 32, 32), np.array(labels))
    names = {cls.meta["key"]: [f"class{i}" for i in range(num_classes)]}
    with open(folder / cls.meta["filename"], "wb") as out:
        pickle.dump(names, out, protocol=2)
    return written


def checked_against_written_files(cls, folder):
    """The torchvision class with its MD5 table replaced by the tiny files' MD5s: its own check still runs."""
    def md5(name):
        return hashlib.md5((folder / name).read_bytes()).hexdigest()

    return type(f"Tiny{cls.__name__}", (cls,), {
        "train_list": [[name, md5(name)] for name, _ in cls.train_list],
        "test_list": [[name, md5(name)] for name, _ in cls.test_list],
        "meta": {**cls.meta, "md5": md5(cls.meta["filename"])},
    })


@pytest.mark.parametrize("name, cls, num_classes", [
    ("cifar10", tv_datasets.CIFAR10, 10),
    ("cifar100", tv_datasets.CIFAR100, 100),
])
def test_cifar_loads_from_files_in_cifar_format(tmp_path, monkeypatch, name, cls, num_classes):
    written = write_cifar(tmp_path, cls, train_count=30, test_count=10, num_classes=num_classes)
    monkeypatch.setitem(data.CIFAR_SOURCES, name, checked_against_written_files(cls, tmp_path / cls.base_folder))
    splits = load_dataset(name, str(tmp_path), seed=0, val_size=6)

    assert (splits.num_classes, splits.image_size, splits.channels) == (num_classes, 32, 3)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (24, 6, 10)
    train_index = splits.train.sources["train_index"].numpy()
    val_index = splits.val.sources["train_index"].numpy()
    assert sorted(np.concatenate([train_index, val_index]).tolist()) == list(range(30))
    images, labels = written["train"]
    assert np.array_equal(splits.train.images.numpy(), images[train_index])  # CIFAR's row layout -> (3, 32, 32)
    assert np.array_equal(splits.val.labels.numpy(), labels[val_index])
    assert np.array_equal(splits.test.images.numpy(), written["test"][0])
    assert np.array_equal(splits.test.labels.numpy(), written["test"][1])
    expected_mean = images[train_index].astype(np.float64).mean(axis=(0, 2, 3)) / 255
    assert np.allclose(splits.mean, expected_mean)

    assert isinstance(splits.train.augment, BatchAugment) and splits.val.augment is None and splits.test.augment is None
    batch, batch_labels = next(iter(splits.batches("train", 8)))
    assert batch.shape == (8, 3, 32, 32) and batch.dtype == torch.float32 and batch_labels.shape == (8,)
    assert batch.is_contiguous(memory_format=torch.channels_last)

    same = load_dataset(name, str(tmp_path), seed=0, val_size=6).val.sources["train_index"]
    other = load_dataset(name, str(tmp_path), seed=1, val_size=6).val.sources["train_index"]
    assert torch.equal(same, splits.val.sources["train_index"])
    assert not torch.equal(other, same)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_missing_cifar_files_name_the_directory_and_the_download_flag(tmp_path, name):
    with pytest.raises(DatasetError) as error:
        load_dataset(name, str(tmp_path))
    assert isinstance(error.value, ValueError)
    assert str(tmp_path) in str(error.value) and "--download" in str(error.value)


def test_corrupt_cifar_files_are_refused_not_read(tmp_path):
    write_cifar(tmp_path, tv_datasets.CIFAR10, train_count=10, test_count=5, num_classes=10)  # MD5s differ from CIFAR's
    with pytest.raises(DatasetError, match="corrupted"):
        load_dataset("cifar10", str(tmp_path))


# ---------------------------------------------------------------- imagefolder and fake


def write_image_tree(root, counts):
    rng = np.random.default_rng(0)
    for split, per_class in counts.items():
        for label in ("cat", "dog"):
            (root / split / label).mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / label / f"{i}.png")


def test_imagefolder_holds_val_out_of_train_and_tests_on_val_folder(tmp_path):
    write_image_tree(tmp_path, {"train": 5, "val": 2})
    splits = load_dataset("imagefolder", str(tmp_path), seed=0, image_size=16, val_size=2)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (8, 2, 4)
    assert (splits.num_classes, splits.image_size, splits.channels) == (2, 16, 3)
    assert sorted(splits.val[i][1] for i in range(2)) == [0, 1]  # stratified: one of each class
    held = set(splits.val.indices)
    assert not held & set(splits.train.indices)
    image, _ = splits.train[0]
    assert image.shape == (3, 16, 16)
    images, labels = next(iter(splits.batches("train", 4)))
    assert images.shape == (4, 3, 16, 16) and labels.shape == (4,)
    images, labels = splits.val_batch(0, 2)
    assert images.shape == (2, 3, 16, 16) and sorted(labels.tolist()) == [0, 1]
    assert torch.equal(splits.val_batch(0, 2)[0], images)  # evaluation transforms are deterministic


def test_imagefolder_names_the_missing_folder(tmp_path):
    write_image_tree(tmp_path, {"train": 2})
    with pytest.raises(DatasetError, match=str(tmp_path / "val")):
        load_dataset("imagefolder", str(tmp_path))


def test_fake_data_holds_val_out_of_train_and_is_fixed_by_seed():
    options = dict(train_size=10, val_size=2, test_size=4, image_size=16, num_classes=3)
    splits = load_dataset("fake", seed=0, **options)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (8, 2, 4)
    assert sorted(splits.train.indices + splits.val.indices) == list(range(10))
    image, label = splits.train[0]
    assert image.shape == (3, 16, 16) and 0 <= label < 3
    assert torch.equal(load_dataset("fake", seed=0, **options).train[0][0], image)
    assert not torch.equal(splits.test[0][0], splits.train.dataset[0][0])
    assert not torch.equal(load_dataset("fake", seed=1, **options).train.dataset[0][0], splits.train.dataset[0][0])
    images, labels = next(iter(splits.batches("train", 4)))
    assert images.shape == (4, 3, 16, 16) and labels.shape == (4,)


# ---------------------------------------------------------------- registry


def test_registry_finds_every_dataset_and_refuses_unknown_names_and_options(tmp_path):
    assert set(DATASETS.names()) == {"cluttered-digits", "cifar10", "cifar100", "imagefolder", "fake", "styled-glyphs"}
    assert load_dataset(data_dir=str(tmp_path), **SMALL).name == "styled-glyphs"  # the default
    with pytest.raises(DatasetError, match="valid datasets: cluttered-digits"):
        load_dataset("mnist")
    with pytest.raises(DatasetError, match="'colour'.*valid options: train_size"):
        load_dataset("fake", colour="red")


# ---------------------------------------------------------------- batches


def indexed_images(n=50, size=4):
    """Image i is filled with the value i, label i: batches show which samples they hold."""
    images = torch.arange(n, dtype=torch.uint8)[:, None, None, None].expand(n, 3, size, size).clone()
    return ImageTensors(images, torch.arange(n), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


def test_tensor_batches_cover_each_sample_once_per_pass_and_repeat_by_seed():
    batches = TensorBatches(indexed_images(), 16, seed=5, memory_format=torch.channels_last)
    assert len(batches) == 4
    first = [labels for _, labels in batches]
    second = torch.cat([labels for _, labels in batches])
    assert sorted(torch.cat(first).tolist()) == list(range(50)) == sorted(second.tolist())
    assert not torch.equal(torch.cat(first), second), "every pass had the same order"
    replay = TensorBatches(indexed_images(), 16, seed=5)
    replay.set_epoch(1)
    assert torch.equal(torch.cat([labels for _, labels in replay]), second)
    images, labels = next(iter(TensorBatches(indexed_images(), 16, seed=5)))
    assert images.is_contiguous(memory_format=torch.channels_last)
    expected = (labels.float() / 255 - 0.5) / 0.25
    assert torch.allclose(images, expected[:, None, None, None].expand_as(images))


def test_batch_augment_gives_padded_crops_and_flips():
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 3, 6, 6), dtype=torch.uint8, generator=generator)
    out = BatchAugment(padding=2, flip=True)(images, generator)
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    seen = set()
    for original, augmented in zip(padded, out):
        matches = [(dy, dx, flip) for dy in range(5) for dx in range(5) for flip in (False, True)
                   if torch.equal(augmented, (lambda w: w.flip(2) if flip else w)(original[:, dy:dy + 6, dx:dx + 6]))]
        assert matches, "an output is no padded crop of its input"
        seen.update(matches)
    assert {flip for _, _, flip in seen} == {False, True}
    assert len({(dy, dx) for dy, dx, _ in seen}) > 5


def test_train_batches_and_val_batches_are_fixed_by_their_arguments():
    splits = load_dataset("cluttered-digits", seed=0, cache=False, **SMALL)
    stream = list(splits.train_batches(32, 10, seed=1))  # 10 batches of 32 > 240: runs into a second pass
    assert len(stream) == 10 and all(images.shape == (32, 3, 32, 32) for images, _ in stream)
    again = list(splits.train_batches(32, 10, seed=1))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(stream, again))
    other = next(splits.train_batches(32, 1, seed=2))
    assert not torch.equal(other[1], stream[0][1])

    batches = [splits.val_batch(i, 25) for i in range(2)]  # 60 images: two batches of 25, 10 left over
    assert torch.equal(torch.cat([labels for _, labels in batches]), splits.val.labels[:50])
    assert torch.equal(splits.val_batch(2, 25)[1], batches[0][1])  # the index wraps around
    assert torch.allclose(batches[1][0], splits.val.normalised()[25:50])
