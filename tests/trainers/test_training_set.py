"""The vectorized trainer's targets and features as it holds them: labels kept as int32 for the label losses
and one-hot otherwise, float targets as given in the dtype, malformed targets refused, sparse features kept
sparse."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_accel.backends.selection import get_backend
from mnist_accel.trainers.training_set import as_features, check_targets, device_targets

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
