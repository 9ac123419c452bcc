"""The styled-glyphs generator: deterministic, disjoint splits, cached by its parameters, and the cued variant's frame."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from evaluator.data import DATASETS, DatasetError, load_dataset
from evaluator.data import styled_glyphs as module
from evaluator.data.styled_glyphs import PALETTE, StyledGlyphsConfig, generate_styled_glyphs

SMALL = dict(train_size=96, val_size=32, test_size=32)


def digest(arrays) -> str:
    hasher = hashlib.sha256()
    for key in sorted(arrays):
        hasher.update(key.encode())
        hasher.update(np.ascontiguousarray(arrays[key]).tobytes())
    return hasher.hexdigest()


def test_style_varies_contrast_and_noise_per_image():
    plain = generate_styled_glyphs(StyledGlyphsConfig(**SMALL, contrast=(1.0, 1.0), noise=(0.0, 0.0)))["train_images"]
    styled = generate_styled_glyphs(StyledGlyphsConfig(**SMALL))["train_images"]
    spread = lambda images: images.reshape(len(images), -1).astype(np.float32).std(axis=1)  # noqa: E731
    assert spread(styled).std() > 1.5 * spread(plain).std()  # images differ in contrast and noise, not only in content


def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_images():
    first = generate_styled_glyphs(StyledGlyphsConfig(**SMALL, seed=3))
    again = generate_styled_glyphs(StyledGlyphsConfig(**SMALL, seed=3))
    other = generate_styled_glyphs(StyledGlyphsConfig(**SMALL, seed=4))
    assert digest(first) == digest(again)
    assert not np.array_equal(first["train_images"], other["train_images"])


def test_generation_leaves_the_callers_random_state_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    generate_styled_glyphs(StyledGlyphsConfig(**SMALL))
    assert torch.equal(torch.rand(3), expected)


def test_splits_are_disjoint_and_shaped_as_configured():
    data = load_dataset("styled-glyphs", cache=False, **SMALL)
    assert (len(data.train), len(data.val), len(data.test)) == (96, 32, 32)
    assert data.num_classes == 32 and data.image_size == 32 and data.channels == 3
    seen = {image.tobytes() for image in data.train.images.numpy()}
    for split in (data.val, data.test):
        assert split.images.dtype == torch.uint8 and split.images.shape[1:] == (3, 32, 32)
        assert not any(image.tobytes() in seen for image in split.images.numpy())
    assert not any(image.tobytes() in {i.tobytes() for i in data.val.images.numpy()} for image in data.test.images.numpy())


def test_every_class_appears_and_labels_are_in_range():
    data = load_dataset("styled-glyphs", cache=False, train_size=2000, val_size=16, test_size=16, classes=10)
    labels = data.train.labels
    assert labels.min() >= 0 and labels.max() < 10
    assert set(labels.tolist()) == set(range(10))


def test_the_frame_has_the_colour_of_the_labels_glyph_and_distractors_are_other_classes():
    config = StyledGlyphsConfig(**SMALL, glyphs=3, contrast=(1.0, 1.0), noise=(0.0, 0.0))
    arrays = generate_styled_glyphs(config)
    images, symbols, colours = arrays["train_images"], arrays["train_symbols"], arrays["train_colours"]
    assert np.array_equal(symbols[:, 0], arrays["train_labels"])
    assert (symbols[:, 1:] != symbols[:, :1]).all()
    assert all(len(set(row)) == 3 for row in colours)  # one palette colour per glyph
    corner = images[:, :, 0, 0].astype(np.float32) / 255  # the top-left pixel is frame only
    nearest = np.argmin(((corner[:, None, :] - PALETTE[None]) ** 2).sum(-1), axis=1)
    assert np.array_equal(nearest, colours[:, 0])


def test_one_glyph_has_no_frame():
    arrays = generate_styled_glyphs(StyledGlyphsConfig(**SMALL, fragments=(0, 0), contrast=(1.0, 1.0), noise=(0.0, 0.0)))
    corners = arrays["train_images"][:, :, 0, 0].astype(np.float32) / 255
    assert (corners.max(axis=1) <= 0.35 + 1e-6).all()  # the background's range: no frame drawn


def test_the_cache_is_written_once_and_read_back(tmp_path, monkeypatch):
    first = load_dataset("styled-glyphs", str(tmp_path), **SMALL)
    files = list(tmp_path.glob("styled-glyphs-*.npz"))
    assert len(files) == 1 and first.cache_path == str(files[0])

    def refuse(config):
        raise AssertionError("generated again although cached")

    monkeypatch.setattr(module, "generate_styled_glyphs", refuse)
    again = load_dataset("styled-glyphs", str(tmp_path), **SMALL)
    assert torch.equal(first.train.images, again.train.images)
    assert torch.equal(first.test.labels, again.test.labels)


def test_other_parameters_get_another_cache_file_and_a_damaged_one_is_made_again(tmp_path):
    load_dataset("styled-glyphs", str(tmp_path), **SMALL)
    load_dataset("styled-glyphs", str(tmp_path), **SMALL, noise=(0.0, 0.1))
    files = sorted(tmp_path.glob("styled-glyphs-*.npz"))
    assert len(files) == 2
    files[0].write_bytes(b"not a zip file")
    reloaded = load_dataset("styled-glyphs", str(tmp_path), **SMALL)
    assert len(reloaded.train) == 96


def test_options_from_yaml_lists_and_ints_name_the_same_set():
    assert StyledGlyphsConfig(glyph_size=[0.45, 0.6], noise=[0, 1], rotation=20).key() == \
        StyledGlyphsConfig(glyph_size=(0.45, 0.6), noise=(0.0, 1.0), rotation=20.0).key()


@pytest.mark.parametrize("options, named", [
    ({"train_size": 0}, "split sizes"),
    ({"classes": 1}, "classes"),
    ({"classes": 33}, "classes"),
    ({"glyphs": 5}, "glyphs"),
    ({"glyphs": 0}, "glyphs"),
    ({"glyph_size": (0.6, 0.4)}, "glyph_size"),
    ({"glyph_size": (0.5, 1.5)}, "glyph_size"),
    ({"fragments": (3, 1)}, "fragments"),
    ({"noise": (-0.1, 0.2)}, "noise"),
    ({"noise": (0.3, 0.2)}, "noise"),
    ({"contrast": (0.0, 1.0)}, "contrast"),
    ({"rotation": 200}, "rotation"),
    ({"frame": 20}, "frame"),
    ({"canvas_size": 8}, "canvas_size"),
])
def test_bad_parameters_are_refused_with_the_parameter_named(options, named):
    with pytest.raises(DatasetError, match=named):
        load_dataset("styled-glyphs", cache=False, **options)


def test_an_unknown_option_names_the_valid_ones():
    with pytest.raises(DatasetError, match="glyph_size"):
        load_dataset("styled-glyphs", cache=False, colour="red")
    assert "styled-glyphs" in DATASETS.names()
