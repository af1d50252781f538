"""Shared fixtures: the offline MNIST copy, small IDX folders written by the tests, and markers."""

from __future__ import annotations

import os
from pathlib import Path

# scikit-learn's conformance suite checks array-API inputs only when SciPy was imported with this set.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np
import pytest

from mnist_accel.data import idx
from mnist_accel.data.mnist import load_mnist

REPO = Path(__file__).resolve().parent.parent
_OFFLINE = REPO.parent / "shared" / "data" / "mnist"
if not os.environ.get("MNIST_ACCEL_DATA") and _OFFLINE.is_dir():
    os.environ["MNIST_ACCEL_DATA"] = str(_OFFLINE)


@pytest.fixture(scope="session")
def mnist():
    if not os.environ.get("MNIST_ACCEL_DATA"):
        pytest.skip("MNIST_ACCEL_DATA is not set and ../shared/data/mnist is missing")
    return load_mnist(progress=False)


def write_dataset(folder: Path, n_train: int = 40, n_test: int = 20, seed: int = 0, compress: bool = False) -> Path:
    """A small synthetic dataset in the four MNIST file names."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    for split, n in (("train", n_train), ("t10k", n_test)):
        idx.write_idx(folder / f"{split}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28)), compress)
        idx.write_idx(folder / f"{split}-labels-idx1-ubyte{suffix}", rng.integers(0, 10, n), compress)
    return folder


@pytest.fixture
def make_dataset():
    return write_dataset


@pytest.fixture
def tiny_dir(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "tiny")


def pytest_collection_modifyitems(config, items):
    from mnist_accel.backends.selection import cuda_unavailable_reason

    reason = cuda_unavailable_reason()
    if reason is None:
        return
    skip_gpu = pytest.mark.skip(reason=f"no GPU: {reason}")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
