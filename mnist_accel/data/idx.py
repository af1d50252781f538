"""Reader for the IDX files MNIST ships in (gzip-compressed or raw), with every structural check.

Untrusted bytes never drive an allocation: the header's claimed size is checked against the bytes that
actually arrive, read in bounded chunks, so a header claiming 10^9 images fails fast.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from mnist_accel.errors import DataError

_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08
_CHUNK = 1 << 20
# Far above any real IDX file; stops a header's arithmetic from promising absurd sizes.
MAX_PAYLOAD = 1 << 30


def read_bytes(path: str | os.PathLike, limit: int = MAX_PAYLOAD + 1024) -> bytes:
    """Return the decompressed contents of ``path``, reading at most ``limit`` bytes."""
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            head = raw.read(2)
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw) if head == _GZIP_MAGIC else raw
            parts, total = [], 0
            while True:
                chunk = stream.read(_CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if total > limit:
                    raise DataError(f"{path.name}: larger than {limit} bytes, not an MNIST-sized IDX file")
                parts.append(chunk)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{path.name}: corrupt gzip data ({exc}); delete the file and fetch it again") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected an IDX file") from None
    return b"".join(parts)


def parse_idx(data: bytes, name: str, ndim: int) -> np.ndarray:
    """Parse IDX bytes holding unsigned bytes of ``ndim`` dimensions; ``name`` labels errors."""
    if len(data) < 4:
        raise DataError(f"{name}: truncated header ({len(data)} bytes)")
    zero, dtype_code, dims = struct.unpack(">HBB", data[:4])
    if zero != 0:
        raise DataError(f"{name}: bad magic number 0x{data[:4].hex()} (not an IDX file)")
    if dtype_code != _UBYTE:
        raise DataError(f"{name}: type code 0x{dtype_code:02x}, expected 0x08 (unsigned byte)")
    if dims != ndim:
        raise DataError(f"{name}: {dims} dimensions, expected {ndim}")
    header = 4 + 4 * dims
    if len(data) < header:
        raise DataError(f"{name}: truncated header ({len(data)} of {header} bytes)")
    shape = struct.unpack(f">{dims}I", data[4:header])
    expected = int(np.prod(shape, dtype=np.int64))
    if expected > MAX_PAYLOAD:
        raise DataError(f"{name}: header claims {shape}, too large to be MNIST-like data")
    got = len(data) - header
    if got != expected:
        raise DataError(f"{name}: {got} data bytes, header {shape} requires exactly {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_images(path: str | os.PathLike, rows: int = 28, cols: int = 28) -> np.ndarray:
    """Read an IDX image file as a ``(n, rows, cols)`` uint8 array."""
    path = Path(path)
    images = parse_idx(read_bytes(path), path.name, 3)
    if images.shape[1:] != (rows, cols):
        raise DataError(f"{path.name}: images are {images.shape[1]}x{images.shape[2]}, expected {rows}x{cols}")
    return images


def read_labels(path: str | os.PathLike, num_classes: int = 10) -> np.ndarray:
    """Read an IDX label file as an ``(n,)`` uint8 array with every label below ``num_classes``."""
    path = Path(path)
    labels = parse_idx(read_bytes(path), path.name, 1)
    if labels.size and int(labels.max()) >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise DataError(f"{path.name}: label {int(labels[bad])} at index {bad} is outside 0..{num_classes - 1}")
    return labels


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool = False) -> None:
    """Write a uint8 array as an IDX file (used by tests and for exporting subsets)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    payload = struct.pack(">HBB", 0, _UBYTE, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += array.tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(payload)
