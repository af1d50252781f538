"""The IDX reader: good files, every malformed case, and fuzzed bytes."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mnist_accel.data import idx
from mnist_accel.errors import DataError


def _header(dims, code=0x08):
    return struct.pack(">HBB", 0, code, len(dims)) + struct.pack(f">{len(dims)}I", *dims)


@pytest.mark.parametrize("compress", [False, True])
def test_round_trip(tmp_path, compress):
    images = np.arange(3 * 28 * 28, dtype=np.uint64).reshape(3, 28, 28) % 256
    path = tmp_path / "imgs"
    idx.write_idx(path, images, compress)
    np.testing.assert_array_equal(idx.read_images(path), images)
    labels = np.array([0, 9, 3])
    idx.write_idx(tmp_path / "labs", labels, compress)
    np.testing.assert_array_equal(idx.read_labels(tmp_path / "labs"), labels)


@pytest.mark.parametrize("payload, message", [
    (b"\x00\x00", "truncated header"),
    (b"\x12\x34\x08\x03" + b"\x00" * 12, "bad magic number"),
    (_header((2, 28, 28), code=0x0D) + b"\x00" * 8 * 28 * 28, "type code 0x0d"),
    (_header((2, 28)) + b"\x00" * 56, "2 dimensions, expected 3"),
    (_header((2, 28, 28)) + b"\x00" * (2 * 28 * 28 - 1), "requires exactly 1568"),
    (_header((2, 28, 28)) + b"\x00" * (2 * 28 * 28 + 5), "requires exactly 1568"),
    (_header((3, 28, 28)) + b"\x00" * (2 * 28 * 28), "requires exactly"),
    (_header((10 ** 9, 28, 28)) + b"\x00" * 100, "too large"),
])
def test_malformed_images(tmp_path, payload, message):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(payload)
    with pytest.raises(DataError, match=message) as info:
        idx.read_images(path)
    assert "train-images-idx3-ubyte" in str(info.value)


def test_wrong_image_size(tmp_path):
    path = tmp_path / "imgs"
    idx.write_idx(path, np.zeros((2, 32, 32)))
    with pytest.raises(DataError, match="32x32, expected 28x28"):
        idx.read_images(path)


def test_labels_out_of_range(tmp_path):
    path = tmp_path / "labs"
    idx.write_idx(path, np.array([1, 2, 10, 3]))
    with pytest.raises(DataError, match="label 10 at index 2"):
        idx.read_labels(path)


def test_corrupt_gzip(tmp_path):
    good = gzip.compress(_header((1,)) + b"\x01")
    path = tmp_path / "labs.gz"
    path.write_bytes(good[:12] + b"garbage" * 3)
    with pytest.raises(DataError, match="corrupt gzip"):
        idx.read_labels(path)
    path.write_bytes(good[:-6])  # cut inside the trailer
    with pytest.raises(DataError, match="corrupt gzip"):
        idx.read_labels(path)


def test_gzip_bomb_is_bounded(tmp_path):
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(b"\x00" * (3 << 20)))
    with pytest.raises(DataError, match="larger than"):
        idx.read_bytes(path, limit=1 << 20)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_random_bytes_raise_only_data_error(data):
    try:
        out = idx.parse_idx(data, "fuzz", 1)
    except DataError:
        return
    assert out.ndim == 1 and out.dtype == np.uint8


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 19), st.integers(0, 255))
def test_fuzz_mutated_header(position, value):
    good = bytearray(_header((2, 28, 28)) + bytes(2 * 28 * 28))
    good[position] = value
    try:
        out = idx.parse_idx(bytes(good), "fuzz", 3)
    except DataError:
        return
    assert out.size == len(good) - 16
