"""Converting pictures to MNIST-style inputs: framing, centring, inversion, and blank images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mnist_accel.images import load_digit, to_mnist


def _bar(h=60, w=40, top=10, left=25, height=30, width=6):
    img = np.zeros((h, w))
    img[top:top + height, left:left + width] = 1.0
    return img


def test_digit_fits_20_pixels_and_is_centred_by_mass():
    out = to_mnist(_bar())
    rows, cols = np.nonzero(out > 0.1)
    assert rows.max() - rows.min() + 1 <= 21 and out.shape == (28, 28)
    cy, cx = (np.indices(out.shape) * out).reshape(2, -1).sum(axis=1) / out.sum()
    assert abs(cy - 13.5) <= 0.75 and abs(cx - 13.5) <= 0.75
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_dark_digit_on_light_paper_is_inverted():
    light = 0.9 - 0.8 * _bar()  # grey paper, dark ink
    np.testing.assert_allclose(to_mnist(light), to_mnist(_bar()), atol=0.02)


def test_blank_image_is_an_error():
    with pytest.raises(ValueError, match="blank"):
        to_mnist(np.full((30, 30), 0.7))


def test_png_with_alpha_and_jpeg(tmp_path):
    rgba = np.zeros((50, 50, 4), np.uint8)
    rgba[10:40, 22:28] = (0, 0, 0, 255)  # a black stroke on a transparent background
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    Image.fromarray(((1 - _bar(50, 50, 10, 22, 30, 6)) * 255).astype(np.uint8)).save(tmp_path / "b.jpg", quality=95)
    a, b = load_digit(tmp_path / "a.png"), load_digit(tmp_path / "b.jpg")
    assert np.abs(a - b).max() < 0.15 and a.sum() > 10
