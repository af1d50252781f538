"""Turning an ordinary picture of a digit into an MNIST-style 28x28 input, the way MNIST was made:
grayscale, white digit on black, the digit scaled to fit a 20x20 box (aspect kept, anti-aliased), then
placed in a 28x28 field with its centre of mass at the centre. Fashion-MNIST was framed otherwise
(``framing="fill"``, as each dataset's ``framing`` in ``datasets`` says): its article's longest side
spans all 28 pixels, the box centred.

A dark digit on light paper (the usual photo or drawing) is detected from the border, which is mostly
background, and inverted; the background level is subtracted so paper grey does not read as ink, and
the contrast stretched so the strongest ink is 1, as in MNIST.
"""

from __future__ import annotations

import io
import os
import re
import warnings

import numpy as np

from mnist_accel.errors import DataError

INK_THRESHOLD = 0.1  # after background removal, brightness above this counts as ink
# Plain raster decoders only (Pillow would read EPS by running Ghostscript on it); messages name these
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")
MAX_PIXELS = 89_478_485  # Pillow's default decompression-bomb limit, about 9,500 x 9,500
MAX_SIDE = 1024  # larger pictures are box-averaged down first; the digit ends up 20 pixels tall anyway


FRAMINGS = ("digit", "fill")


def to_mnist(gray: np.ndarray, framing: str = "digit") -> np.ndarray:
    """A 2-D array of brightness in [0, 1] (any size) -> (28, 28) float64 in [0, 1], MNIST-style
    (``framing="digit"``) or filling the field as Fashion-MNIST's articles do (``"fill"``)."""
    if framing not in FRAMINGS:
        raise ValueError(f"framing {framing!r} is not one of {', '.join(FRAMINGS)}")
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
    scale = (20.0 if framing == "digit" else 28.0) / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize(size, Image.LANCZOS), np.float64) / 255
    field = np.zeros((28, 28))
    top, left = (28 - small.shape[0]) // 2, (28 - small.shape[1]) // 2
    field[top:top + small.shape[0], left:left + small.shape[1]] = small
    if framing == "fill":
        return np.clip(field, 0.0, 1.0)
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


def load_digit(path: str | os.PathLike, framing: str = "digit") -> np.ndarray:
    """Read a PNG, JPEG, BMP, GIF or WebP file (any mode; alpha composited on white) as an MNIST-style
    (28, 28) array (``framing``: see ``to_mnist``). A file that cannot give one (missing, not an image,
    damaged, too large, blank) is a DataError whose one-line message names the file and the reason."""
    if not os.path.isfile(path):  # a folder fails to open, but a pipe or device would block or never end
        raise DataError(f"{path}: no such file" if not os.path.exists(path) else f"{path} is not a regular file")
    return _digit(path, str(path), framing)


def digit_from_bytes(data: bytes, framing: str = "digit", name: str = "the image") -> np.ndarray:
    """``load_digit`` for a picture already in memory (an upload): the same decoding, checks and framing;
    the messages start with ``name`` instead of a file's."""
    return _digit(io.BytesIO(data), name, framing)


def _digit(source, name: str, framing: str) -> np.ndarray:
    gray = _read_gray(source, name)
    try:
        return to_mnist(gray, framing)
    except ValueError as exc:
        raise DataError(f"{name}: {exc}") from None


def _read_gray(source, name: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # between the limit and twice it Pillow only warns, and would decode the whole picture
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source, formats=FORMATS) as img:
                width, height = img.size
                if width * height > MAX_PIXELS:  # checked before decoding, whatever Image.MAX_IMAGE_PIXELS says
                    raise DataError(_too_large(name, f"{width} x {height} pixels, "))
                return _grayscale(img)
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # Pillow's own check, at open
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise DataError(_too_large(name, f"{int(found[1]):,} pixels, " if found else "")) from None
    except FileNotFoundError:  # removed since the check above
        raise DataError(f"{name}: no such file") from None
    except PermissionError:
        raise DataError(f"{name}: permission denied") from None
    except MemoryError:  # under the pixel limit, but this machine has less to spare than decoding needs
        raise DataError(f"{name}: not enough memory to decode the image; scale it down") from None
    except UnidentifiedImageError:
        raise DataError(f"{name}: not a readable PNG, JPEG, BMP, GIF or WebP image") from None
    except Exception as exc:  # decoders raise many types (OSError, SyntaxError, ValueError...) on damaged bytes
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())  # one line, whatever the decoder said
        raise DataError(f"{name}: damaged or unsupported image ({detail})") from None


def _too_large(name: str, size: str = "") -> str:
    return (f"{name}: the image is too large ({size}over {MAX_PIXELS / 1e6:.0f} megapixels, the limit "
            "against decompression bombs); scale it down")


def _grayscale(img) -> np.ndarray:
    """Brightness in [0, 1] of a Pillow image, at most MAX_SIDE pixels a side.

    Memory stays within a few times the decoded picture (about 0.7 GB at the pixel limit): no full-size
    copy is made that the mode does not need, a large picture is box-averaged before anything else, and
    a JPEG is decoded at 1/2, 1/4 or 1/8 of its size by libjpeg itself when that is still large enough.
    """
    from PIL import Image

    factor = -(-max(img.size) // MAX_SIDE)
    if factor > 1 and img.format == "JPEG":
        img.draft(None, (-(-img.width // factor), -(-img.height // factor)))
        factor = -(-max(img.size) // MAX_SIDE)
    img.load()  # decoding errors surface here, inside the caller's handlers
    if img.mode == "I" or img.mode.startswith("I;16"):  # 16-bit PNG: converting to L would clip at 255
        img, full_scale = img.convert("I"), 65535.0  # Pillow cannot reduce I;16
    elif img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        img, full_scale = img if img.mode in ("RGBA", "LA") else img.convert("RGBA"), 255.0
    else:
        img, full_scale = img if img.mode == "L" else img.convert("L"), 255.0
    if factor > 1:  # box-average first, so a large picture costs no more memory downstream than a small one
        img = img.reduce(factor)  # with alpha premultiplied, so transparent pixels' colour does not bleed
    if img.mode in ("RGBA", "LA"):
        canvas = Image.new("RGBA", img.size, (255, 255, 255, 255))
        canvas.alpha_composite(img.convert("RGBA"))
        img = canvas.convert("L")
    return np.clip(np.asarray(img, dtype=np.float64) / full_scale, 0.0, 1.0)
