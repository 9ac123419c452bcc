"""The ``cluttered-digits`` dataset: scikit-learn's bundled 8x8 digits rendered into cluttered 32x32 RGB canvases.

Offline, deterministic by seed and cached by its generation parameters (``ClutteredDigitsConfig``).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Dict, Optional, Tuple

import numpy as np
import torch

from evaluator.data.errors import DatasetError
from evaluator.data.generated import generated_splits
from evaluator.data.registry import DATASETS
from evaluator.data.splits import SPLITS, DatasetSplits, holdout_count, stratified_holdout

# Bump when the renderer changes what the same parameters produce: old cache files are then ignored.
CLUTTERED_DIGITS_VERSION = 1
DIGIT_SIZE = 8  # scikit-learn's digits are 8x8, values 0..16
COLOURS = ("random", "white")


@dataclass(frozen=True)
class ClutteredDigitsConfig:
    """Every parameter of a cluttered-digits set; equal configs give byte-identical images.

    Base images are split first: ``test_fraction`` of the 1,797 go to test, then ``val_fraction`` of
    the rest to val (held out of the training pool, so val is split off the training data), the
    remainder is train's pool; all stratified by class. Each split then renders ``*_size`` samples
    from its own pool only: digit and clutter alike.
    """

    train_size: int = 10_000
    val_size: int = 2_000
    test_size: int = 2_000
    val_fraction: float = 0.2  # of the non-test base images
    test_fraction: float = 0.2  # of all base images
    canvas_size: int = 32
    scale: Tuple[float, float] = (2.0, 3.0)  # digit and fragment magnification, uniform in the range
    clutter: Tuple[int, int] = (2, 5)  # fragments per image, uniform in the range (inclusive)
    fragment_size: int = 4  # side of a fragment in base-image pixels
    noise: float = 0.1  # std of Gaussian pixel noise on the [0, 1] scale
    colour: str = "random"  # "random": dark background, bright strokes, each its own colour; "white": white on black
    seed: int = 0

    def __post_init__(self) -> None:
        # options arrive as keyword arguments (lists from YAML, ints for floats): one type each, one cache key
        object.__setattr__(self, "scale", tuple(float(s) for s in self.scale))
        object.__setattr__(self, "clutter", tuple(int(c) for c in self.clutter))
        object.__setattr__(self, "noise", float(self.noise))
        low, high = self.scale
        if min(self.train_size, self.val_size, self.test_size) < 1:
            raise DatasetError(f"cluttered-digits: split sizes must be positive, got "
                               f"{self.train_size}/{self.val_size}/{self.test_size}")
        if not 0 < low <= high or DIGIT_SIZE * high > self.canvas_size:
            raise DatasetError(f"cluttered-digits: scale {self.scale} must satisfy 0 < low <= high and "
                               f"{DIGIT_SIZE} * high <= canvas_size {self.canvas_size}")
        if not 0 <= self.clutter[0] <= self.clutter[1]:
            raise DatasetError(f"cluttered-digits: clutter {self.clutter} must satisfy 0 <= low <= high")
        if not 1 <= self.fragment_size <= DIGIT_SIZE:
            raise DatasetError(f"cluttered-digits: fragment_size must be in 1..{DIGIT_SIZE}, got {self.fragment_size}")
        if self.noise < 0:
            raise DatasetError(f"cluttered-digits: noise must be >= 0, got {self.noise}")
        if self.colour not in COLOURS:
            raise DatasetError(f"cluttered-digits: colour must be one of {', '.join(COLOURS)}, got {self.colour!r}")

    def key(self) -> str:
        """Hash of every generation parameter and the renderer version: the cache file's name."""
        described = json.dumps({"version": CLUTTERED_DIGITS_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(described.encode()).hexdigest()[:20]


def base_digits() -> Tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits: float32 ``(1797, 8, 8)`` in [0, 1] and int64 labels."""
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    digits = load_digits()
    return (digits.images / 16.0).astype(np.float32), digits.target.astype(np.int64)


def split_base_images(labels: np.ndarray, config: ClutteredDigitsConfig) -> Dict[str, np.ndarray]:
    """Disjoint pools of base-image indices for train, val and test, stratified by class."""
    rng = np.random.default_rng([config.seed, 0])
    test_count = holdout_count(len(labels), config.test_fraction, None, "cluttered-digits test pool")
    rest, test = stratified_holdout(labels, test_count, rng)
    val_count = holdout_count(len(rest), config.val_fraction, None, "cluttered-digits val pool")
    train, val = stratified_holdout(labels[rest], val_count, rng)
    return {"train": np.sort(rest[train]), "val": np.sort(rest[val]), "test": np.sort(test)}


def interpolation_weights(offset: np.ndarray, scale: np.ndarray, length: int, canvas: int) -> torch.Tensor:
    """Bilinear weights ``(N, canvas, length)`` of a magnified 1-D patch whose first edge is at ``offset``.

    Canvas pixel p (centre p + 0.5) reads the patch at u = (p + 0.5 - offset) / scale - 0.5; patch
    pixel i weighs max(0, 1 - |u - i|), zero beyond the patch: grid_sample's bilinear with zero
    padding, as a matrix, since magnifying without rotation is separable.
    """
    pixel = torch.arange(canvas, dtype=torch.float32) + 0.5
    off = torch.from_numpy(offset.astype(np.float32))[:, None]
    u = (pixel[None, :] - off) / torch.from_numpy(scale.astype(np.float32))[:, None] - 0.5
    return (1 - (u[:, :, None] - torch.arange(length, dtype=torch.float32)).abs()).clamp_min_(0)


def place(patches: np.ndarray, scale: np.ndarray, top: np.ndarray, left: np.ndarray, canvas: int) -> torch.Tensor:
    """Magnify each patch by ``scale`` and put its top-left corner at (top, left) on an empty canvas.

    ``(N, h, w)`` in [0, 1] -> ``(N, canvas, canvas)``, bilinear, zero outside the patch.
    """
    n, h, w = patches.shape
    rows = interpolation_weights(top, scale, h, canvas)  # (N, canvas, h)
    cols = interpolation_weights(left, scale, w, canvas)  # (N, canvas, w)
    source = torch.from_numpy(np.ascontiguousarray(patches, dtype=np.float32))
    return rows @ source @ cols.transpose(1, 2)


def paint(canvas: torch.Tensor, ink: np.ndarray, alpha: torch.Tensor) -> None:
    """Lay ink of colour ``(N, 3)`` with coverage ``(N, S, S)`` over ``canvas`` ``(N, 3, S, S)``, in place."""
    colour = torch.from_numpy(ink)[:, :, None, None].expand_as(canvas)
    canvas.lerp_(colour, alpha[:, None].expand_as(canvas))  # in place and expanded: ~10x faster than broadcasting


def draw_placements(rng: np.random.Generator, n: int, size: int,
                    config: ClutteredDigitsConfig) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale and top-left corner of ``n`` patches of side ``size``, each wholly inside the canvas."""
    scale = rng.uniform(*config.scale, n)
    room = config.canvas_size - size * scale
    return scale, rng.uniform(0, 1, n) * room, rng.uniform(0, 1, n) * room


def round_robin_by_class(pool: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The pool shuffled, then dealt class by class in turn: any prefix is balanced while each class lasts."""
    shuffled = rng.permutation(pool)
    classes = labels[shuffled]
    by_class = np.argsort(classes, kind="stable")
    first_of_class = np.searchsorted(classes[by_class], classes[by_class])
    rank = np.empty(len(shuffled), np.int64)
    rank[by_class] = np.arange(len(shuffled)) - first_of_class  # how many of its class come before it
    return shuffled[np.argsort(rank, kind="stable")]


def render_split(images: np.ndarray, labels: np.ndarray, pool: np.ndarray, count: int,
                 config: ClutteredDigitsConfig, rng: np.random.Generator, chunk: int = 4096) -> Dict[str, np.ndarray]:
    """Render ``count`` cluttered canvases from the base images in ``pool`` only.

    Returns uint8 ``images`` ``(count, 3, S, S)``, ``labels``, ``digit_index`` (base image of each
    digit) and ``clutter_index`` ``(count, max fragments)``, -1 where an image has fewer fragments.
    All random draws are made up front except the noise, which is drawn chunk by chunk in order,
    so the bytes depend on the config alone.
    """
    f, most = config.fragment_size, config.clutter[1]
    # classes in turn, every base image of the pool once before any twice
    digit_index = rng.permutation(np.resize(round_robin_by_class(pool, labels, rng), count))
    digit_place = draw_placements(rng, count, DIGIT_SIZE, config)
    fragments = rng.integers(config.clutter[0], most + 1, count)
    # fragment sources: other images of the same pool (a clash with the digit's own moves one along)
    slots = rng.integers(0, len(pool), (count, most))
    source = pool[slots]
    source = np.where(source == digit_index[:, None], pool[(slots + 1) % len(pool)], source)
    corner = rng.integers(0, DIGIT_SIZE - f + 1, (2, count, most))
    fragment_place = [draw_placements(rng, count, f, config) for _ in range(most)]
    if config.colour == "random":
        background = rng.uniform(0.0, 0.35, (count, 3)).astype(np.float32)
        ink = rng.uniform(0.55, 1.0, (count, most + 1, 3)).astype(np.float32)
    else:
        background = np.zeros((count, 3), np.float32)
        ink = np.ones((count, most + 1, 3), np.float32)
    offsets = np.arange(f)
    out = np.empty((count, 3, config.canvas_size, config.canvas_size), np.uint8)
    for start in range(0, count, chunk):
        part = slice(start, min(start + chunk, count))
        canvas = torch.from_numpy(background[part])[:, :, None, None].expand(-1, -1, config.canvas_size,
                                                                              config.canvas_size).clone()
        for j in range(most):  # clutter under the digit, so the digit stays whole
            ys, xs = corner[0, part, j], corner[1, part, j]
            patch = images[source[part, j, None, None], ys[:, None, None] + offsets[None, :, None],
                           xs[:, None, None] + offsets[None, None, :]]
            alpha = place(patch, *(p[part] for p in fragment_place[j]), config.canvas_size)
            alpha = alpha * torch.from_numpy(j < fragments[part]).float()[:, None, None]
            paint(canvas, ink[part, j], alpha)
        alpha = place(images[digit_index[part]], *(p[part] for p in digit_place), config.canvas_size)
        paint(canvas, ink[part, most], alpha)
        if config.noise > 0:
            canvas += config.noise * torch.from_numpy(rng.standard_normal(canvas.shape, dtype=np.float32))
        out[part] = canvas.clamp_(0, 1).mul_(255).round_().to(torch.uint8).numpy()
    clutter_index = np.where(np.arange(most)[None, :] < fragments[:, None], source, -1)
    return {"images": out, "labels": labels[digit_index], "digit_index": digit_index, "clutter_index": clutter_index}


def generate_cluttered_digits(config: ClutteredDigitsConfig) -> Dict[str, np.ndarray]:
    """All three splits as flat arrays ``{split}_{images,labels,digit_index,clutter_index,pool}``."""
    images, labels = base_digits()
    pools = split_base_images(labels, config)
    arrays: Dict[str, np.ndarray] = {}
    for number, split in enumerate(SPLITS, start=1):
        count = getattr(config, f"{split}_size")
        rng = np.random.default_rng([config.seed, number])
        rendered = render_split(images, labels, pools[split], count, config, rng)
        arrays.update({f"{split}_{k}": v for k, v in rendered.items()})
        arrays[f"{split}_pool"] = pools[split]
    return arrays


@DATASETS.register("cluttered-digits", options=ClutteredDigitsConfig)
def cluttered_digits(data_dir: Optional[str], *, download: bool, seed: int, cache: bool = True,
                     **options) -> DatasetSplits:
    """Digits in clutter, offline (``download`` is ignored); cached under ``data_dir`` or the cache dir.

    No augmentation: placement, scale, clutter, colours and noise are drawn per sample already,
    and a mirrored digit is not a digit.
    """
    config = ClutteredDigitsConfig(**options, seed=seed)
    return generated_splits("cluttered-digits", config, lambda: generate_cluttered_digits(config), data_dir=data_dir,
                            cache=cache, num_classes=10, sources=("digit_index", "clutter_index", "pool"))
