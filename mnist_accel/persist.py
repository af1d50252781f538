"""Writing files safely (temporary file, then rename) and the model file format (.npz, no pickle)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .errors import DataError

FORMAT = "mnist-accel-model"
FORMAT_VERSION = 1


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], binary: bool = True) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``.

    A failure (full disk, Ctrl-C) removes the temporary file; ``path`` is never left half-written.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would make every output private
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_writable(path: str | os.PathLike, flag: str) -> None:
    """Raise ValueError unless ``path`` can be written (before any work starts)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{flag} {path} is a directory; give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"{flag} {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"{flag} {path}: folder {parent} is not writable")


def write_json(path: str | os.PathLike, payload: Any) -> None:
    text = json.dumps(payload, indent=2) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))


def save_model(path: str | os.PathLike, params: Sequence[np.ndarray], meta: dict[str, Any]) -> None:
    """Parameters as arrays ``p0, p1, ...`` plus JSON metadata, in one .npz written atomically."""
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta,
              "shapes": [list(p.shape) for p in params]}
    arrays = {f"p{i}": np.asarray(p) for i, p in enumerate(params)}
    arrays["meta"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_model(path: str | os.PathLike) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Read a model saved by ``save_model``; anything else is a DataError naming the problem."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "meta" not in npz.files:
                raise DataError(f"{path}: not an mnist-accel model (no metadata)")
            meta = json.loads(npz["meta"].tobytes().decode())
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise DataError(f"{path}: not an mnist-accel model")
            shapes = meta.get("shapes")
            if not isinstance(shapes, list) or sorted(npz.files) != sorted(["meta"] + [f"p{i}" for i in range(len(shapes))]):
                raise DataError(f"{path}: model arrays do not match its metadata")
            params = [npz[f"p{i}"] for i in range(len(shapes))]
    except DataError:
        raise
    except FileNotFoundError:
        raise
    except Exception as exc:  # zip, npy and JSON parsers raise many types on foreign bytes
        raise DataError(f"{path}: not a readable mnist-accel model ({type(exc).__name__}: {exc})") from None
    for p, shape in zip(params, shapes):
        if list(p.shape) != shape or p.dtype.kind != "f":
            raise DataError(f"{path}: parameter of shape {p.shape} and dtype {p.dtype}, metadata says {shape}")
    return params, meta
