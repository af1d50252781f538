"""Where MNIST and its kind come from (argument, environment, cache, download), how they are verified,
and how they are turned into training arrays (pixels scaled to [0, 1], one-hot labels) in the requested
dtype. Which dataset, its mirrors, digests and class names: ``mnist_accel.data.datasets``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnist_accel.data import datasets, download, idx
from mnist_accel.errors import DataError, DataUnavailable

OFFICIAL_SHA256 = datasets.MNIST.sha256  # MNIST's, of each official file's decompressed bytes
NUM_CLASSES = 10
ENV_VAR = datasets.MNIST.data_env


@dataclass(frozen=True)
class MnistData:
    """The four arrays as stored (uint8), where they came from, and which dataset they are."""

    train_images: np.ndarray  # (60000, 28, 28) uint8 for MNIST
    train_labels: np.ndarray  # (60000,) uint8
    test_images: np.ndarray
    test_labels: np.ndarray
    official: bool  # every file matched the official digest
    source: str  # the folder read, and how it was chosen
    dataset: str = "mnist"  # its name in datasets.REGISTRY

    @property
    def classes(self) -> tuple[str, ...]:
        """The name of each label (MNIST: "0" to "9")."""
        return datasets.get(self.dataset).classes

    @property
    def description(self) -> str:
        d = datasets.get(self.dataset)
        kind = f"official {d.title} (SHA-256 verified)" if self.official else \
            f"IDX data that is not the official {d.title}"
        return f"{kind} from {self.source}"


def cache_dir(dataset: str = "mnist") -> Path:
    return datasets.get(dataset).cache_dir()


def _find(folder: Path, stem: str, d: datasets.Dataset) -> Path | None:
    # a dataset whose digests are of the .gz files can only verify a .gz: look for that first
    for name in (stem + ".gz", stem) if d.digest_of == "gz" else (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _read_folder(folder: Path, origin: str, d: datasets.Dataset) -> MnistData:
    missing = [s for s in datasets.STEMS if _find(folder, s, d) is None]
    if missing:
        raise DataUnavailable(f"{folder} ({origin}) lacks {', '.join(missing)} (raw or .gz); "
                              f"it must hold the four {d.title} IDX files")
    arrays, official = {}, True
    for stem in datasets.STEMS:
        path = _find(folder, stem, d)
        raw = idx.read_bytes(path)
        official &= d.matches(stem, path, raw)
        arrays[stem] = idx.parse_idx(raw, path.name, 3 if "images" in stem else 1)
    return _checked(arrays, official, f"{folder} ({origin})", d)


def _checked(arrays: dict[str, np.ndarray], official: bool, source: str, d: datasets.Dataset) -> MnistData:
    for split in ("train", "t10k"):
        images, labels = arrays[f"{split}-images-idx3-ubyte"], arrays[f"{split}-labels-idx1-ubyte"]
        if images.shape[1:] != (28, 28):
            raise DataError(f"{split}-images-idx3-ubyte: images are {images.shape[1]}x{images.shape[2]}, "
                            "expected 28x28")
        if len(images) != len(labels):
            raise DataError(f"{split}: {len(images)} images but {len(labels)} labels")
        if labels.size and int(labels.max()) >= len(d.classes):
            raise DataError(f"{split}-labels-idx1-ubyte: label {int(labels.max())} is outside 0..{len(d.classes) - 1}")
    return MnistData(arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"],
                     arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"], official, source, d.name)


def _verify_official(stem: str, d: datasets.Dataset):
    what = "the decompressed file" if d.digest_of == "raw" else "the .gz file"

    def verify(path: Path) -> None:
        if not d.matches(stem, path):
            raise DataError(f"{stem}: SHA-256 of {what} does not match the official {d.title} digest")
    return verify


def _ensure_cache(d: datasets.Dataset, progress: bool) -> Path:
    folder = d.cache_dir()
    for stem in datasets.STEMS:
        path = _find(folder, stem, d)
        if path is not None:
            try:
                _verify_official(stem, d)(path)
                continue
            except DataError:
                path.unlink(missing_ok=True)  # a bad cached copy is never kept; fetch a fresh one
        failures = download.fetch(stem + ".gz", folder / (stem + ".gz"), _verify_official(stem, d),
                                  d.mirror_list(), progress)
        if failures:
            raise DataUnavailable(
                f"{d.title} is not cached in {folder} and could not be downloaded ({failures[-1]}); "
                f"to work offline, pass --data-dir DIR or set {d.data_env}=DIR to a folder holding the four "
                f"{d.title} IDX files (train-images-idx3-ubyte[.gz] and the three others)")
    return folder


def load_mnist(data_dir: str | os.PathLike | None = None, progress: bool = True,
               dataset: str = "mnist") -> MnistData:
    """Load ``dataset`` (mnist, fashion-mnist or kmnist): ``data_dir`` if given, else its environment
    variable ($MNIST_ACCEL_DATA for MNIST, $MNIST_ACCEL_FASHION_MNIST_DATA, $MNIST_ACCEL_KMNIST_DATA), else
    its user cache, else a download from its mirrors."""
    d = datasets.get(dataset)
    if data_dir is not None:
        origin, folder = "--data-dir", Path(data_dir)
    elif os.environ.get(d.data_env):
        origin, folder = f"${d.data_env}", Path(os.environ[d.data_env])
    else:
        folder = _ensure_cache(d, progress)
        return _read_folder(folder, "cache", d)
    if not folder.is_dir():
        raise DataUnavailable(f"{folder} ({origin}) is not a directory; point it at the folder holding the "
                              f"{d.title} files")
    return _read_folder(folder, origin, d)


def normalize(images: Any, dtype: Any, xp: Any = np) -> Any:
    """Flatten images to rows and scale uint8 pixels to [0, 1] in ``dtype``, as the tutorial does."""
    x = xp.asarray(images).reshape(len(images), -1).astype(dtype)
    x /= 255
    return x


def one_hot(labels: Any, dtype: Any, xp: Any = np, num_classes: int = NUM_CLASSES) -> Any:
    labels = xp.asarray(labels)
    return (labels[:, None] == xp.arange(num_classes)[None, :]).astype(dtype)
