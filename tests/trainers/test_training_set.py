"""The vectorized trainer's targets and features as it holds them: labels kept as int32 for the label losses
and one-hot otherwise, float targets as given in the dtype, malformed targets refused, sparse features kept
sparse and refused on the GPU, validation rows held out at random or from the end."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_accel import resolve
from mnist_accel.backends.selection import Backend, get_backend
from mnist_accel.errors import ConfigError
from mnist_accel.trainers.training_set import (
    SPARSE_ON_GPU,
    as_features,
    as_rows,
    check_targets,
    device_targets,
    split_validation,
)

NUMPY = get_backend("numpy")


def test_labels_and_float_targets_on_the_device():
    labels = np.array([2, 0, 1, 2], np.uint8)
    kept = device_targets(labels, np.array([3, 1]), True, 3, np.float32, NUMPY)
    assert kept.dtype == np.int32 and kept.tolist() == [2, 0]
    hot = device_targets(labels, slice(None), False, 3, np.float32, NUMPY)
    assert hot.dtype == np.float32 and hot.tolist() == np.eye(3)[labels].tolist()
    values = np.arange(8.0).reshape(4, 2)
    got = device_targets(values, np.array([2, 0]), True, 2, np.float32, NUMPY)  # floats stay floats
    assert got.dtype == np.float32 and got.flags.c_contiguous and got.tolist() == [[4, 5], [0, 1]]


@pytest.mark.parametrize("targets, message", [
    (np.zeros(4), "1-D targets are class labels and must be integers, got float64"),
    (np.zeros(5, int), r"targets of shape \(5,\) do not fit 4 samples and 3 outputs"),
    (np.zeros((4, 2)), r"targets of shape \(4, 2\) do not fit 4 samples and 3 outputs"),
    (np.zeros((4, 3, 1)), r"targets of shape \(4, 3, 1\) do not fit"),
])
def test_malformed_targets_are_refused(targets, message):
    with pytest.raises(ValueError, match=message):
        check_targets(targets, 4, 3)


def test_features():
    pixels = np.array([[0, 255], [51, 102]], np.uint8)
    np.testing.assert_allclose(as_features(pixels, np.float32, np), [[0, 1], [0.2, 0.4]], rtol=1e-7)
    assert as_features(pixels.astype(np.float64), np.float32, np).dtype == np.float32
    sparse = pytest.importorskip("scipy.sparse")
    got = as_features(sparse.csc_matrix(pixels.astype(float)), np.float32, np)
    assert sparse.issparse(got) and got.format == "csr" and got.dtype == np.float32


def test_rows():
    pixels = np.arange(24, dtype=np.uint8).reshape(4, 2, 3)
    got = as_rows(pixels, np.float32, NUMPY)
    assert got.dtype == np.uint8 and got.shape == (4, 6)  # pixels stay pixels: the ops scale them
    sparse = pytest.importorskip("scipy.sparse")
    rows = as_rows(sparse.coo_matrix(pixels.reshape(4, 6).astype(float)), np.float32, NUMPY)
    assert rows.format == "csr" and rows.dtype == np.float32
    with pytest.raises(ConfigError, match="trains on the CPU backends only") as err:
        as_rows(rows, np.float32, Backend("cuda", np, "a stand-in device"))
    assert str(err.value) == SPARSE_ON_GPU


@pytest.mark.parametrize("val_from", ["random", "end"])
def test_validation_rows(val_from):
    """A fifth of 10 rows held out: from the end (Keras's), or drawn from the generator, the training rows then
    in their order; validation targets one-hot and features scaled."""
    cfg = resolve("default", backend="numpy", val_split=0.2, val_from=val_from)
    pixels, labels = np.arange(10, dtype=np.uint8)[:, None] * 25, np.arange(10) % 3
    rng = np.random.default_rng(7)
    train_x, train_y, (val_x, val_y) = split_validation(cfg, rng, pixels, labels, 3, np.float32, NUMPY)
    held = np.array([8, 9]) if val_from == "end" else np.random.default_rng(7).permutation(10)[:2]
    np.testing.assert_array_equal(val_x, pixels[held] / np.float32(255))
    np.testing.assert_array_equal(val_y, np.eye(3)[labels[held]])
    kept = np.setdiff1d(np.arange(10), held)
    np.testing.assert_array_equal(train_x, pixels[kept])
    np.testing.assert_array_equal(train_y, labels[kept])


def test_no_validation_rows():
    cfg = resolve("default", backend="numpy", val_split=0.0)
    pixels, labels = np.zeros((5, 2), np.uint8), np.zeros(5, int)
    got = split_validation(cfg, np.random.default_rng(0), pixels, labels, 3, np.float32, NUMPY)
    assert got[0] is pixels and got[1] is labels and got[2] is None
