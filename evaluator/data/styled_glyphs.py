"""The ``styled-glyphs`` dataset: glyphs from matplotlib's fonts in clutter, each image with its own style.

Each 32x32 RGB image holds one glyph (32 classes: letters A-Z without I and O, digits 2-9) over
fragments of other glyphs, and then a style of its own: a contrast factor and coloured noise of
a random strength and colour mix. Recognising the glyph is local; how much to trust each channel
depends on the image's style, a per-image context that batch norm's fixed statistics cannot give
and channel attention (SE's global squeeze, SRM's style pooling) computes. The benchmarks
measure whether that makes the architecture matter (``benchmarks/results/proxy_designs.json``).

With ``glyphs`` of 2 to 4, each glyph gets its own palette colour and a frame around the image has
the colour of the label's glyph (a global cue that has to select a local object); that design
was tried too and is documented beside the chosen one.

Base variety is effectively unlimited: 18 fonts x 2 stroke weights, then per glyph a continuous
rotation, shear, size and position, and per image a background, clutter, contrast and noise;
train, val and test are drawn from their own random streams. Rendering is one PIL pass over a
small glyph bank, then batched affine warps in torch: seconds for the default sizes,
byte-identical for one seed, and cached on disk by every generation parameter
(``StyledGlyphsConfig``).
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from evaluator.data.errors import DatasetError
from evaluator.data.generated import generated_splits
from evaluator.data.registry import DATASETS
from evaluator.data.splits import SPLITS, DatasetSplits

# Bump when the renderer changes what the same parameters produce: old cache files are then ignored.
STYLED_GLYPHS_VERSION = 1
SYMBOLS = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no I/1, O/0: they are the same shape in many fonts
# The text fonts inside matplotlib's package (no symbol fonts): nothing to download.
FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSansMono.ttf",
         "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
         "DejaVuSerif-Italic.ttf", "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf",
         "STIXGeneralBolIta.ttf", "cmr10.ttf", "cmb10.ttf", "cmss10.ttf", "cmtt10.ttf", "cmti10.ttf")
STROKES = (0, 2)  # extra stroke width in bank pixels: regular and heavy
BANK = 64  # side of a glyph's bitmap in the bank
BANK_GLYPH_HEIGHT = 0.47  # median glyph height in the bank, as a fraction of BANK (measured)
# Red, green, blue, yellow: far apart in RGB, so a colour names one glyph even under noise and jitter.
PALETTE = np.array([[1.0, 0.15, 0.15], [0.15, 1.0, 0.15], [0.2, 0.35, 1.0], [1.0, 0.9, 0.1]], dtype=np.float32)


@dataclass(frozen=True)
class StyledGlyphsConfig:
    """Every parameter of a styled-glyphs set; equal configs give byte-identical images.

    ``glyph_size`` is a glyph's height as a fraction of the canvas, ``fragments`` the count of
    clutter fragments, ``contrast`` the factor each image's contrast is scaled by and ``noise``
    the std of its coloured Gaussian noise (on the [0, 1] scale): each uniform in its range, per
    image. ``glyphs`` above 1 makes the colour-cued variant (see the module docstring).
    """

    train_size: int = 10_000
    val_size: int = 2_000
    test_size: int = 2_000
    classes: int = 32
    glyphs: int = 1
    glyph_size: Tuple[float, float] = (0.5, 0.75)
    fragments: Tuple[int, int] = (3, 6)
    rotation: float = 20.0  # degrees, uniform in +-rotation
    contrast: Tuple[float, float] = (0.25, 1.0)
    noise: Tuple[float, float] = (0.0, 0.45)
    frame: int = 2  # width in pixels of the frame that names the label's glyph (glyphs > 1)
    canvas_size: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        # options arrive as keyword arguments (lists from YAML, ints for floats): one type each, one cache key
        object.__setattr__(self, "glyph_size", tuple(float(s) for s in self.glyph_size))
        object.__setattr__(self, "fragments", tuple(int(c) for c in self.fragments))
        object.__setattr__(self, "contrast", tuple(float(s) for s in self.contrast))
        object.__setattr__(self, "noise", tuple(float(s) for s in self.noise))
        object.__setattr__(self, "rotation", float(self.rotation))
        problem = self.problem()
        if problem:
            raise DatasetError(f"styled-glyphs: {problem}")

    def problem(self) -> Optional[str]:
        """What is wrong with these parameters, or None."""
        low, high = self.glyph_size
        if min(self.train_size, self.val_size, self.test_size) < 1:
            return f"split sizes must be positive, got {self.train_size}/{self.val_size}/{self.test_size}"
        if not 2 <= self.classes <= len(SYMBOLS):
            return f"classes must be in 2..{len(SYMBOLS)}, got {self.classes}"
        if not 1 <= self.glyphs <= min(len(PALETTE), self.classes):
            return f"glyphs must be in 1..{min(len(PALETTE), self.classes)}, got {self.glyphs}"
        if not 0 < low <= high <= 1:
            return f"glyph_size {self.glyph_size} must satisfy 0 < low <= high <= 1"
        if not 0 <= self.fragments[0] <= self.fragments[1]:
            return f"fragments {self.fragments} must satisfy 0 <= low <= high"
        if not 0 <= self.rotation <= 180:
            return f"rotation must be in 0..180 degrees, got {self.rotation}"
        if not 0 < self.contrast[0] <= self.contrast[1]:
            return f"contrast {self.contrast} must satisfy 0 < low <= high"
        if not 0 <= self.noise[0] <= self.noise[1]:
            return f"noise {self.noise} must satisfy 0 <= low <= high"
        if self.canvas_size < 16 or not 0 <= self.frame <= self.canvas_size // 4:
            return f"canvas_size must be at least 16 and frame in 0..canvas_size/4, got {self.canvas_size}, {self.frame}"
        return None

    def key(self) -> str:
        """Hash of every generation parameter and the renderer version: the cache file's name."""
        described = json.dumps({"version": STYLED_GLYPHS_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(described.encode()).hexdigest()[:20]


def font_folder() -> Path:
    import matplotlib  # its package carries the fonts; imported here only, when a bank is drawn

    return Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf"


@lru_cache(maxsize=4)
def glyph_bank(classes: int) -> torch.Tensor:
    """Every (font, stroke) style of every symbol: float32 alpha ``(styles, classes, BANK, BANK)``, centred."""
    from PIL import Image, ImageDraw, ImageFont

    bank = np.zeros((len(FONTS) * len(STROKES), classes, BANK, BANK), dtype=np.float32)
    for f, name in enumerate(FONTS):
        font = ImageFont.truetype(str(font_folder() / name), 40)
        for s, stroke in enumerate(STROKES):
            for c, symbol in enumerate(SYMBOLS[:classes]):
                image = Image.new("L", (2 * BANK, 2 * BANK), 0)
                ImageDraw.Draw(image).text((BANK, BANK), symbol, fill=255, font=font, anchor="mm",
                                           stroke_width=stroke, stroke_fill=255)
                alpha = np.asarray(image, dtype=np.float32) / 255
                rows, cols = np.nonzero(alpha > 0.05)
                top, left = (rows.min() + rows.max()) // 2 - BANK // 2, (cols.min() + cols.max()) // 2 - BANK // 2
                bank[f * len(STROKES) + s, c] = alpha[top : top + BANK, left : left + BANK]
    return torch.from_numpy(bank)


def place(bank: torch.Tensor, style: np.ndarray, symbol: np.ndarray, height: np.ndarray, angle: np.ndarray,
          shear: np.ndarray, centre: np.ndarray, canvas_size: int) -> torch.Tensor:
    """Alpha ``(N, S, S)`` of bank glyphs, each ``height`` of the canvas tall, rotated by ``angle``
    (radians), sheared, and centred at ``centre`` ``(N, 2)`` in [-1, 1] canvas coordinates."""
    source = bank[torch.from_numpy(style), torch.from_numpy(symbol)][:, None]  # (N, 1, BANK, BANK)
    k = torch.from_numpy(BANK_GLYPH_HEIGHT / height).float()  # bank units per canvas unit
    cos, sin = torch.from_numpy(np.cos(angle)).float(), torch.from_numpy(np.sin(angle)).float()
    shear = torch.from_numpy(shear).float()
    theta = torch.zeros(len(symbol), 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = k * cos, k * (shear * cos - sin)
    theta[:, 1, 0], theta[:, 1, 1] = k * sin, k * (shear * sin + cos)
    offset = torch.from_numpy(centre).float()[:, :, None]
    theta[:, :, 2:] = -(theta[:, :, :2] @ offset)  # the bank's centre lands on ``centre``
    grid = F.affine_grid(theta, [len(symbol), 1, canvas_size, canvas_size], align_corners=False)
    return F.grid_sample(source, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]


def paint(canvas: torch.Tensor, colour: np.ndarray, alpha: torch.Tensor) -> None:
    """Composite ``colour`` ``(N, 3)`` over ``canvas`` ``(N, 3, H, W)`` with ``alpha`` ``(N, H, W)``, in place."""
    a = alpha[:, None]
    canvas.mul_(1 - a).add_(torch.from_numpy(np.ascontiguousarray(colour))[:, :, None, None] * a)


def clutter(canvas: torch.Tensor, bank: torch.Tensor, config: StyledGlyphsConfig, rng: np.random.Generator) -> None:
    """Paint 0..``fragments`` pieces of random glyphs: each a glyph at any angle, seen through a square window."""
    n, size = len(canvas), config.canvas_size
    count = rng.integers(config.fragments[0], config.fragments[1] + 1, n)
    rows, cols = np.arange(size)[None, :, None], np.arange(size)[None, None, :]
    for j in range(config.fragments[1]):
        alpha = place(bank, rng.integers(0, len(bank), n), rng.integers(0, config.classes, n),
                      rng.uniform(0.6, 1.2, n), rng.uniform(-math.pi, math.pi, n), rng.uniform(-0.3, 0.3, n),
                      rng.uniform(-1, 1, (n, 2)), size)
        side = rng.integers(size // 5, size * 3 // 8, n)[:, None, None]
        top, left = (rng.integers(0, size - size // 4, (2, n))[..., None, None])
        window = (rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side) & (j < count)[:, None, None]
        paint(canvas, rng.uniform(0.3, 1.0, (n, 3)).astype(np.float32), alpha * torch.from_numpy(window))


def glyph_centres(n: int, glyphs: int, rng: np.random.Generator) -> np.ndarray:
    """``(N, glyphs, 2)`` centres in [-1, 1]: one near the middle, or evenly spaced on a circle at a random turn."""
    if glyphs == 1:
        return rng.uniform(-0.3, 0.3, (n, 1, 2))
    turn = rng.uniform(0, 2 * math.pi, (n, 1)) + 2 * math.pi * np.arange(glyphs)[None, :] / glyphs
    radius = rng.uniform(0.35, 0.5, (n, glyphs))
    return np.stack([radius * np.cos(turn), radius * np.sin(turn)], -1) + rng.uniform(-0.08, 0.08, (n, glyphs, 2))


def render_split(config: StyledGlyphsConfig, count: int, rng: np.random.Generator) -> Dict[str, np.ndarray]:
    """``count`` images uint8 ``(N, 3, S, S)``, labels, and each glyph's symbol, style and colour index."""
    bank = glyph_bank(config.classes)
    size, k = config.canvas_size, config.glyphs
    labels = rng.integers(0, config.classes, count)
    background = rng.uniform(0.0, 0.35, (count, 3)).astype(np.float32)
    canvas = torch.from_numpy(background)[:, :, None, None].expand(count, 3, size, size).contiguous()
    clutter(canvas, bank, config, rng)
    # glyph 0 is the label's; the others are distinct from it (else the frame would not matter)
    symbols = np.concatenate([labels[:, None], (labels[:, None] + rng.integers(1, config.classes, (count, k - 1)))
                              % config.classes], axis=1)
    colours = np.argsort(rng.random((count, len(PALETTE))), axis=1)[:, :k]  # distinct colours in one image
    ink = PALETTE[colours] * rng.uniform(0.8, 1.0, (count, k, 1)).astype(np.float32)
    if k == 1:
        ink = rng.uniform(0.5, 1.0, (count, 1, 3)).astype(np.float32)  # no frame: any bright colour
    styles = rng.integers(0, len(bank), (count, k))
    centres = glyph_centres(count, k, rng)
    order = np.argsort(rng.random((count, k)), axis=1)  # drawn in random order: the label's glyph is not always on top
    every = np.arange(count)
    for step in range(k):
        j = order[:, step]
        alpha = place(bank, styles[every, j], symbols[every, j], rng.uniform(*config.glyph_size, count),
                      np.deg2rad(rng.uniform(-config.rotation, config.rotation, count)), rng.uniform(-0.2, 0.2, count),
                      centres[every, j], size)
        paint(canvas, ink[every, j], alpha)
    if k > 1 and config.frame > 0:
        frame = torch.ones(size, size)
        frame[config.frame : size - config.frame, config.frame : size - config.frame] = 0
        paint(canvas, ink[:, 0], frame.expand(count, size, size))
    canvas = style(canvas, config, rng)
    images = canvas.clamp_(0, 1).mul_(255).round_().to(torch.uint8).numpy()
    return {"images": images, "labels": labels, "symbols": symbols, "styles": styles,
            "colours": colours if k > 1 else np.full((count, 1), -1)}


def style(canvas: torch.Tensor, config: StyledGlyphsConfig, rng: np.random.Generator) -> torch.Tensor:
    """Each image's own contrast about its mean, then coloured noise: iid normal pixels mixed by a
    random unit-row 3x3 matrix, so the noise is correlated across channels in a colour of its own."""
    n = len(canvas)
    factor = torch.from_numpy(rng.uniform(*config.contrast, n).astype(np.float32))[:, None, None, None]
    mean = canvas.mean(dim=(1, 2, 3), keepdim=True)
    canvas = mean + factor * (canvas - mean)
    strength = torch.from_numpy(rng.uniform(*config.noise, n).astype(np.float32))[:, None, None, None]
    mix = rng.standard_normal((n, 3, 3)).astype(np.float32)
    mix /= np.linalg.norm(mix, axis=2, keepdims=True)
    pixels = torch.from_numpy(rng.standard_normal(canvas.shape, dtype=np.float32))
    return canvas + strength * torch.einsum("nij,njhw->nihw", torch.from_numpy(mix), pixels)


def generate_styled_glyphs(config: StyledGlyphsConfig) -> Dict[str, np.ndarray]:
    """All three splits as flat arrays ``{split}_{images,labels,symbols,styles,colours}``, each from its own stream."""
    arrays: Dict[str, np.ndarray] = {}
    for number, split in enumerate(SPLITS, start=1):
        rng = np.random.default_rng([config.seed, number])  # every draw is numpy's: torch's generator is untouched
        rendered = render_split(config, getattr(config, f"{split}_size"), rng)
        arrays.update({f"{split}_{k}": v for k, v in rendered.items()})
    return arrays


@DATASETS.register("styled-glyphs", options=StyledGlyphsConfig)
def styled_glyphs(data_dir: Optional[str], *, download: bool, seed: int, cache: bool = True,
                  **options) -> DatasetSplits:
    """Glyphs in clutter, each image in its own style; offline (``download`` is ignored), cached under
    ``data_dir`` or the cache dir. No augmentation: pose, colours, clutter and style are drawn per
    sample already, and a mirrored glyph is another glyph."""
    config = StyledGlyphsConfig(**options, seed=seed)
    return generated_splits("styled-glyphs", config, lambda: generate_styled_glyphs(config), data_dir=data_dir,
                            cache=cache, num_classes=config.classes, sources=("symbols", "styles", "colours"))
