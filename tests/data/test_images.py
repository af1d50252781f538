"""Converting pictures to MNIST-style inputs: framing, centring, inversion, and blank images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mnist_accel.data.images import load_digit, to_mnist


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


# --- every kind of file: read as the plain 8-bit picture would be, or refused in one line ---------------

import io
import struct
import zlib

from hypothesis import HealthCheck, given, settings, strategies as st

from mnist_accel.data.images import MAX_PIXELS
from mnist_accel.errors import DataError

PAPER, INK = 155, 20  # light grey paper, dark ink: the paper is above 0.5, so the picture must be inverted


def _seven() -> np.ndarray:
    img = np.full((56, 56), PAPER, np.uint8)
    img[10:16, 12:44] = INK
    img[10:46, 38:44] = INK
    return img


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _variants() -> dict[str, bytes]:
    plain = Image.fromarray(_seven())
    ink = _seven() == INK
    rgba = np.zeros((56, 56, 4), np.uint8)  # black ink on a transparent background that is black underneath
    rgba[ink] = (0, 0, 0, 255)
    palette = Image.fromarray(np.where(ink, 1, 0).astype(np.uint8), "P")
    palette.putpalette([0, 0, 0, 0, 0, 0])  # both entries black: only the transparency tells paper from ink
    return {
        "png-L": _encode(plain, "PNG"),
        "png-16bit": _encode(Image.fromarray(_seven().astype(np.uint16) * 257), "PNG"),
        "png-RGBA": _encode(Image.fromarray(rgba, "RGBA"), "PNG"),
        "png-LA": _encode(Image.fromarray(rgba[..., [0, 3]], "LA"), "PNG"),
        "png-palette-transparent": _encode(palette, "PNG", transparency=0),
        "png-palette": _encode(plain.convert("P"), "PNG"),
        "png-1bit": _encode(Image.fromarray(~ink), "PNG"),
        "jpeg-L": _encode(plain, "JPEG", quality=95),
        "jpeg-CMYK": _encode(plain.convert("CMYK"), "JPEG", quality=95),
        "bmp": _encode(plain.convert("RGB"), "BMP"),
        "gif": _encode(plain, "GIF"),
        "webp": _encode(plain, "WEBP", lossless=True),
    }


VARIANTS = _variants()


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_mode_reads_like_the_plain_picture(name, tmp_path):
    reference = to_mnist(_seven() / 255)
    path = tmp_path / name
    path.write_bytes(VARIANTS[name])
    np.testing.assert_allclose(load_digit(path), reference, atol=0.25 if "jpeg" in name else 0.1)


def test_a_large_picture_is_reduced_first_and_reads_the_same(tmp_path):
    Image.fromarray(_seven()).resize((3000, 3000), Image.NEAREST).save(tmp_path / "big.png")
    np.testing.assert_allclose(load_digit(tmp_path / "big.png"), to_mnist(_seven() / 255), atol=0.1)


def _png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims another size (its CRC fixed, so only the size is wrong)."""
    blob = bytearray(VARIANTS["png-L"])
    header = struct.pack(">II", width, height) + blob[24:29]
    blob[16:33] = header + struct.pack(">I", zlib.crc32(b"IHDR" + header))
    return bytes(blob)


def _jpeg_claiming(blob: bytes, width: int, height: int) -> bytes:
    """A JPEG whose frame header (SOF0) claims another size."""
    at = blob.index(b"\xff\xc0") + 5  # marker, length (2), precision (1), then height and width
    return blob[:at] + struct.pack(">HH", height, width) + blob[at + 4:]


@pytest.mark.parametrize("pillow_limit", ["default", "off"])
@pytest.mark.parametrize("width, height", [(10_000, 10_000), (40_000, 40_000), (MAX_PIXELS + 1, 1)])
def test_a_decompression_bomb_is_refused_before_decoding(width, height, pillow_limit, tmp_path, monkeypatch):
    if pillow_limit == "off":  # an application may lift Pillow's limit; ours still holds
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_claiming(width, height))
    with pytest.raises(DataError, match=r"bomb.png: the image is too large \(.* pixels, over 89 megapixels.*scale it "
                                        r"down"):
        load_digit(path)


def test_running_out_of_memory_while_decoding_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "a.png").write_bytes(VARIANTS["png-RGBA"])

    def exhausted(self, *args):
        raise MemoryError

    monkeypatch.setattr(Image.Image, "convert", exhausted)  # where the full-size copy would be made
    with pytest.raises(DataError, match=r"a.png: not enough memory to decode the image; scale it down$"):
        load_digit(tmp_path / "a.png")


def test_missing_files_folders_and_blank_pictures(tmp_path):
    with pytest.raises(DataError, match="nope.png: no such file"):
        load_digit(tmp_path / "nope.png")
    with pytest.raises(DataError, match="is not a regular file"):
        load_digit(tmp_path)
    Image.new("L", (30, 30), 200).save(tmp_path / "blank.png")
    with pytest.raises(DataError, match="blank.png: no digit found"):
        load_digit(tmp_path / "blank.png")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_load_digit(tmp_path, data):
    seed = VARIANTS[data.draw(st.sampled_from(sorted(VARIANTS)))]
    kind = data.draw(st.sampled_from(["random", "mutated", "truncated", "resized"]))
    if kind == "random":  # behind a real signature, so the decoders themselves see the noise
        blob = seed[:data.draw(st.integers(0, 16))] + data.draw(st.binary(max_size=600))
    elif kind == "mutated":
        blob = bytearray(seed)
        for _ in range(data.draw(st.integers(1, 16))):
            blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
        blob = bytes(blob)
    elif kind == "truncated":
        blob = seed[:data.draw(st.integers(0, len(seed) - 1))]
    elif data.draw(st.booleans()):
        side = st.one_of(st.integers(0, 12_000), st.integers(0, 2 ** 31 - 1))
        blob = _png_claiming(data.draw(side), data.draw(side))
    else:
        side = st.one_of(st.integers(0, 12_000), st.integers(0, 2 ** 16 - 1))
        blob = _jpeg_claiming(VARIANTS[data.draw(st.sampled_from(["jpeg-L", "jpeg-CMYK"]))], data.draw(side),
                              data.draw(side))
    path = tmp_path / "fuzz.img"
    path.write_bytes(blob)
    try:
        out = load_digit(path)
    except DataError as exc:
        message = str(exc)
        assert message.startswith(str(path)) and "\n" not in message
    else:
        assert out.shape == (28, 28) and np.isfinite(out).all() and 0 <= out.min() and out.max() <= 1


# --- memory: bounded by the pixel limit, whatever the mode ----------------------------------------------

import subprocess
import sys

# A child process writes PNGs at the pixel limit (zero rows streamed through zlib: a few hundred KB each) in
# the modes that cost most once decoded, and reports after each load how far the peak memory has risen.
PEAK = ("import resource, struct, sys, zlib; from mnist_accel.errors import DataError; "
        "from mnist_accel.data.images import load_digit\n"
        "def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))\n"
        "side, before = int(sys.argv[1]), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "for color, depth, channels, extra in ((6, 8, 4, b''), (4, 16, 2, b''), (0, 16, 1, b''), (2, 8, 3, b''),\n"
        "        (3, 8, 1, chunk(b'PLTE', bytes(6)) + chunk(b'tRNS', b'\\0'))):\n"
        "    z, row = zlib.compressobj(9), bytes(1 + side * channels * depth // 8)\n"
        "    body = b''.join(z.compress(row) for _ in range(side)) + z.flush()\n"
        "    header = struct.pack('>IIBBBBB', side, side, depth, color, 0, 0, 0)\n"
        "    blob = (b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', header)\n"
        "            + extra + chunk(b'IDAT', body) + chunk(b'IEND', b''))\n"
        "    open('big.png', 'wb').write(blob)\n"
        "    try: load_digit('big.png')\n"
        "    except DataError as exc: assert 'no digit found' in str(exc), exc\n"
        "    print(color, depth, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)\n")


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB")
def test_memory_at_the_pixel_limit_is_bounded(tmp_path):
    """RGBA, 16-bit grey with alpha, 16-bit grey, RGB and a transparent palette, each just under the limit:
    the peak over all of them stays under 10 bytes a pixel of the limit (0.9 GB; 0.79 GB measured, the
    palette's; 1.0 GB when every mode was converted at full size before reducing)."""
    side = int(MAX_PIXELS ** 0.5)
    proc = subprocess.run([sys.executable, "-c", PEAK, str(side)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    rises = [int(line.split()[2]) for line in proc.stdout.splitlines()]
    assert len(rises) == 5 and max(rises) < 10 * MAX_PIXELS, proc.stdout


@pytest.mark.parametrize("mode", ["L", "RGB", "CMYK"])
def test_a_large_jpeg_is_decoded_at_a_fraction_of_its_size(mode, tmp_path, monkeypatch):
    from PIL import JpegImagePlugin

    Image.fromarray(_seven()).resize((5600, 5600), Image.NEAREST).convert(mode).save(tmp_path / "big.jpg", quality=90)
    original, decoded = JpegImagePlugin.JpegImageFile.load, []

    def load(self):
        decoded.append(self.size)
        return original(self)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", load)
    np.testing.assert_allclose(load_digit(tmp_path / "big.jpg"), to_mnist(_seven() / 255), atol=0.25)
    assert decoded and set(decoded) == {(1400, 1400)}  # libjpeg's 1/4 scale: 2 MB decoded, not 31 MB


def test_fill_framing_reproduces_fashion_mnist_articles():
    """Fashion-MNIST's articles fill the field (longest side 28 pixels): framed so, its own test images
    come back close to themselves; framed as MNIST digits (20 pixels, centre of mass) they do not."""
    from pathlib import Path

    from mnist_accel.data.mnist import load_mnist

    folder = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
    if not (folder / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("Debian's dataset-fashion-mnist is not installed: apt-get install dataset-fashion-mnist")
    images = load_mnist(folder, progress=False, dataset="fashion-mnist").test_images[:100] / 255.0
    error = {f: np.median([np.abs(to_mnist(g, f) - g).mean() for g in images]) for f in ("fill", "digit")}
    assert error["fill"] < 0.1 < error["digit"]
    with pytest.raises(ValueError, match="framing 'crop' is not one of digit, fill"):
        to_mnist(images[0], "crop")
