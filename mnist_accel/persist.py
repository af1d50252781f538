"""Writing files safely (temporary file, then rename) and the model file format (.npz, no pickle)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mnist_accel.errors import DataError

FORMAT = "mnist-accel-model"
FORMAT_VERSION = 1


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], binary: bool = True) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``.

    A failure (full disk, Ctrl-C) removes the temporary file; ``path`` is never left half-written. Each
    writer gets a temporary name of its own, so writers racing on one ``path`` (two runs with the same
    ``--save``) leave one complete file, the last one renamed, never a mixture.
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
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Make the rename durable: until the folder is synced, a power cut can bring the old file back."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder as a file; nothing more can be done there
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a folder; the rename still happened
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    """The process's umask, read where the system shows it: setting it to read it back would, for that
    moment, give files other threads create (a sweep's, a user's) no protection at all."""
    try:
        with open("/proc/self/status") as f:  # Linux
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o077)  # elsewhere: the briefest and safest swap there is
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


def write_npz(path: str | os.PathLike, fmt: str, arrays: Sequence[np.ndarray], meta: dict[str, Any]) -> None:
    """Arrays ``a0, a1, ...`` plus JSON metadata tagged with ``fmt``, in one .npz written atomically."""
    payload = {f"a{i}": np.asarray(a) for i, a in enumerate(arrays)}
    payload["meta"] = np.frombuffer(json.dumps({"format": fmt, **meta}).encode(), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **payload))


def read_npz(path: str | os.PathLike, fmt: str, what: str) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Read a ``write_npz`` file of format ``fmt``, without pickle; anything else is a DataError naming
    the file and calling it by ``what`` ("model", "checkpoint")."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(npz["meta"].tobytes().decode()) if "meta" in npz.files else None
            if not isinstance(meta, dict) or meta.get("format") != fmt:
                raise DataError(f"{path}: not an mnist-accel {what}")
            names = sorted(k for k in npz.files if k != "meta")
            if names != sorted(f"a{i}" for i in range(len(names))):
                raise DataError(f"{path}: the {what}'s arrays are not numbered a0, a1, ...")
            arrays = [npz[f"a{i}"] for i in range(len(names))]
    except (DataError, FileNotFoundError):
        raise
    except Exception as exc:  # zip, npy and JSON parsers raise many types on foreign bytes
        raise DataError(f"{path}: not a readable mnist-accel {what} ({type(exc).__name__}: {exc})") from None
    return arrays, meta


def save_model(path: str | os.PathLike, params: Sequence[np.ndarray], meta: dict[str, Any]) -> None:
    """Parameters plus JSON metadata (architecture, activation, dtype, classes, normalisation, version; the
    training command adds its ``dataset`` and ``class_names``, each label's name, for predict and the others
    to show)."""
    write_npz(path, FORMAT, params, {"format_version": FORMAT_VERSION, **meta,
                                     "shapes": [list(p.shape) for p in params]})


def load_model(path: str | os.PathLike) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Read a model saved by ``save_model``, validating every shape against its metadata."""
    params, meta = read_npz(path, FORMAT, "model")
    shapes = meta.get("shapes")
    if not isinstance(shapes, list) or len(shapes) != len(params):
        raise DataError(f"{path}: model arrays do not match its metadata")
    for p, shape in zip(params, shapes):
        if list(p.shape) != shape or p.dtype.kind != "f":
            raise DataError(f"{path}: parameter of shape {p.shape} and dtype {p.dtype}, metadata says {shape}")
    return params, meta


def class_names(meta: dict[str, Any], classes: Sequence[Any]) -> list[str]:
    """How to show each of a model's ``classes`` (its labels): the metadata's ``class_names`` when it names
    them all, else the names of its ``dataset`` (see mnist_accel.data.datasets), else the labels as text."""
    from mnist_accel.data.datasets import class_names as by_dataset

    names = meta.get("class_names")
    if isinstance(names, list) and len(names) == len(classes) and all(isinstance(n, str) for n in names):
        return names
    if isinstance(meta.get("dataset"), str) and list(classes) == list(range(len(classes))):
        return by_dataset(meta["dataset"], len(classes))
    return [str(c) for c in classes]


def framing(meta: dict[str, Any]) -> str:
    """How a picture is framed for this model (see mnist_accel.data.images.to_mnist): as its dataset's
    images were, MNIST's when the metadata names none."""
    from mnist_accel.data.datasets import MNIST, REGISTRY

    dataset = meta.get("dataset")
    return (REGISTRY.get(dataset, MNIST) if isinstance(dataset, str) else MNIST).framing
