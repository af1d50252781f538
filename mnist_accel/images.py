"""Turning an ordinary picture of a digit into an MNIST-style 28x28 input, the way MNIST was made:
grayscale, white digit on black, the digit scaled to fit a 20x20 box (aspect kept, anti-aliased), then
placed in a 28x28 field with its centre of mass at the centre.

A dark digit on light paper (the usual photo or drawing) is detected from the border, which is mostly
background, and inverted; the background level is subtracted so paper grey does not read as ink, and
the contrast stretched so the strongest ink is 1, as in MNIST.
"""

from __future__ import annotations

import os

import numpy as np

INK_THRESHOLD = 0.1  # after background removal, brightness above this counts as ink


def to_mnist(gray: np.ndarray) -> np.ndarray:
    """A 2-D array of brightness in [0, 1] (any size) -> (28, 28) float64 in [0, 1], MNIST-style."""
    from PIL import Image

    g = np.asarray(gray, dtype=np.float64)
    if g.ndim != 2 or min(g.shape) < 2:
        raise ValueError(f"expected a 2-D image of at least 2x2 pixels, got shape {g.shape}")
    border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
    if np.median(border) > 0.5:
        g = 1.0 - g
        border = 1.0 - border
    background = np.median(border)
    g = np.clip((g - background) / max(g.max() - background, 1e-6), 0.0, 1.0)  # MNIST ink peaks at 1
    rows, cols = np.nonzero(g > INK_THRESHOLD)
    if rows.size == 0:
        raise ValueError("no digit found: the image is blank after removing its background")
    crop = g[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize(size, Image.LANCZOS), np.float64) / 255
    field = np.zeros((28, 28))
    top, left = (28 - small.shape[0]) // 2, (28 - small.shape[1]) // 2
    field[top:top + small.shape[0], left:left + small.shape[1]] = small
    mass = field.sum()
    cy, cx = (np.indices(field.shape) * field).reshape(2, -1).sum(axis=1) / mass
    dy, dx = int(round(13.5 - cy)), int(round(13.5 - cx))
    return np.clip(_shift(field, dy, dx), 0.0, 1.0)


def _shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(a)
    h, w = a.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = a[ys, xs]
    return out


def load_digit(path: str | os.PathLike) -> np.ndarray:
    """Read a PNG/JPEG (any mode, alpha composited on white) as an MNIST-style (28, 28) array."""
    from PIL import Image

    with Image.open(path) as img:
        img.load()
        if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
            rgba = img.convert("RGBA")
            canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            canvas.alpha_composite(rgba)
            img = canvas
        gray = np.asarray(img.convert("L"), dtype=np.float64) / 255
    return to_mnist(gray)
