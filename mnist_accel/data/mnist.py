"""Where MNIST comes from (argument, environment, cache, download), how it is verified, and how it is
turned into training arrays (pixels scaled to [0, 1], one-hot labels) in the requested dtype.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnist_accel.data import download, idx
from mnist_accel.errors import DataError, DataUnavailable

# SHA-256 of each official file's decompressed bytes (the digests every MNIST mirror agrees on).
OFFICIAL_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
NUM_CLASSES = 10
ENV_VAR = "MNIST_ACCEL_DATA"


@dataclass(frozen=True)
class MnistData:
    """The four arrays as stored (uint8), and where they came from."""

    train_images: np.ndarray  # (60000, 28, 28) uint8 for MNIST
    train_labels: np.ndarray  # (60000,) uint8
    test_images: np.ndarray
    test_labels: np.ndarray
    official: bool  # every file matched the official digest
    source: str  # the folder read, and how it was chosen

    @property
    def description(self) -> str:
        kind = "official MNIST (SHA-256 verified)" if self.official else "IDX data that is not the official MNIST"
        return f"{kind} from {self.source}"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mnist_accel"


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _read_folder(folder: Path, origin: str) -> MnistData:
    missing = [s for s in OFFICIAL_SHA256 if _find(folder, s) is None]
    if missing:
        raise DataUnavailable(f"{folder} ({origin}) lacks {', '.join(missing)} (raw or .gz); "
                              "it must hold the four MNIST IDX files")
    arrays, official = {}, True
    for stem, digest in OFFICIAL_SHA256.items():
        path = _find(folder, stem)
        raw = idx.read_bytes(path)
        official &= download.sha256(raw) == digest
        arrays[stem] = idx.parse_idx(raw, path.name, 3 if "images" in stem else 1)
    return _checked(arrays, official, f"{folder} ({origin})")


def _checked(arrays: dict[str, np.ndarray], official: bool, source: str) -> MnistData:
    for split in ("train", "t10k"):
        images, labels = arrays[f"{split}-images-idx3-ubyte"], arrays[f"{split}-labels-idx1-ubyte"]
        if images.shape[1:] != (28, 28):
            raise DataError(f"{split}-images-idx3-ubyte: images are {images.shape[1]}x{images.shape[2]}, "
                            "expected 28x28")
        if len(images) != len(labels):
            raise DataError(f"{split}: {len(images)} images but {len(labels)} labels")
        if labels.size and int(labels.max()) >= NUM_CLASSES:
            raise DataError(f"{split}-labels-idx1-ubyte: label {int(labels.max())} is outside 0..9")
    return MnistData(arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"],
                     arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"], official, source)


def _verify_official(stem: str):
    def verify(path: Path) -> None:
        if download.sha256(idx.read_bytes(path)) != OFFICIAL_SHA256[stem]:
            raise DataError(f"{stem}: SHA-256 of the decompressed file does not match the official digest")
    return verify


def _ensure_cache(progress: bool) -> Path:
    folder = cache_dir()
    for stem in OFFICIAL_SHA256:
        path = _find(folder, stem)
        if path is not None:
            try:
                _verify_official(stem)(path)
                continue
            except DataError:
                path.unlink(missing_ok=True)  # a bad cached copy is never kept; fetch a fresh one
        failures = download.fetch(stem + ".gz", folder / (stem + ".gz"), _verify_official(stem),
                                  download.mirrors_from_env(), progress)
        if failures:
            raise DataUnavailable(
                f"MNIST is not cached in {folder} and could not be downloaded ({failures[-1]}); "
                f"to work offline, pass --data-dir DIR or set {ENV_VAR}=DIR to a folder holding the four "
                "MNIST IDX files (train-images-idx3-ubyte[.gz] and the three others)")
    return folder


def load_mnist(data_dir: str | os.PathLike | None = None, progress: bool = True) -> MnistData:
    """Load MNIST: ``data_dir`` if given, else $MNIST_ACCEL_DATA, else the user cache, else download."""
    if data_dir is not None:
        origin, folder = "--data-dir", Path(data_dir)
    elif os.environ.get(ENV_VAR):
        origin, folder = f"${ENV_VAR}", Path(os.environ[ENV_VAR])
    else:
        folder = _ensure_cache(progress)
        return _read_folder(folder, "cache")
    if not folder.is_dir():
        raise DataUnavailable(f"{folder} ({origin}) is not a directory; point it at the folder holding the MNIST files")
    return _read_folder(folder, origin)


def normalize(images: Any, dtype: Any, xp: Any = np) -> Any:
    """Flatten images to rows and scale uint8 pixels to [0, 1] in ``dtype``, as the tutorial does."""
    x = xp.asarray(images).reshape(len(images), -1).astype(dtype)
    x /= 255
    return x


def one_hot(labels: Any, dtype: Any, xp: Any = np, num_classes: int = NUM_CLASSES) -> Any:
    labels = xp.asarray(labels)
    return (labels[:, None] == xp.arange(num_classes)[None, :]).astype(dtype)
