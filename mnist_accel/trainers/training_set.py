"""The vectorized trainer's training set as it holds it: the rows' features (dense, or a scipy.sparse matrix
on the CPU) and their targets (class labels, or float targets), checked, split into training and validation
rows, and placed on the device.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mnist_accel.backends.selection import Backend, to_device
from mnist_accel.backends.sparse_rows import as_csr, is_sparse
from mnist_accel.config import TrainConfig
from mnist_accel.data.mnist import normalize, one_hot
from mnist_accel.errors import ConfigError


def as_features(x: Any, dtype: Any, xp: Any) -> Any:
    """Rows of features: uint8 pixels scaled to [0, 1], anything else converted to ``dtype``; a scipy.sparse
    matrix stays sparse, as compressed rows of ``dtype`` (``model.forward`` multiplies it as it is)."""
    if is_sparse(x):
        return as_csr(x, dtype)
    return normalize(x, dtype, xp) if x.dtype == np.uint8 else x.reshape(len(x), -1).astype(dtype)


SPARSE_ON_GPU = ("a scipy.sparse training set trains on the CPU backends only: use backend 'numpy' or 'numba', "
                 "or pass a dense array (X.toarray())")


def as_rows(images: Any, dtype: Any, be: Backend) -> Any:
    """The training set one row per sample, still on the host: a scipy.sparse matrix as compressed rows of
    ``dtype`` (the CPU backends only), a dense array as it is (uint8 pixels stay uint8)."""
    if is_sparse(images):
        if be.on_gpu:
            raise ConfigError(SPARSE_ON_GPU)
        return as_csr(images, dtype)
    return images.reshape(images.shape[0], -1)


def device_targets(targets: np.ndarray, rows: Any, as_labels: bool, n_out: int, dtype: Any, be: Backend) -> Any:
    """The targets of ``rows`` on the device: class labels as int32 labels where ``as_labels`` (the label
    losses take them so), else as one-hot float rows; float targets as given, in ``dtype``."""
    if targets.ndim == 1 and as_labels:
        return to_device(targets[rows].astype(np.int32), be)
    if targets.ndim == 1:
        return one_hot(to_device(targets[rows], be), dtype, be.xp, n_out)
    return to_device(np.ascontiguousarray(targets[rows], dtype=dtype), be)


def check_targets(targets: np.ndarray, n: int, n_out: int) -> np.ndarray:
    """``targets`` as an array: n class labels (integers in [0, n_out)) or an (n, n_out) float array."""
    targets = np.asarray(targets)
    if targets.ndim == 1 and targets.dtype.kind not in "iu":
        raise ValueError(f"1-D targets are class labels and must be integers, got {targets.dtype}; pass float "
                         "targets as a 2-D (samples, outputs) array")
    if targets.ndim not in (1, 2) or len(targets) != n or (targets.ndim == 2 and targets.shape[1] != n_out):
        raise ValueError(f"targets of shape {targets.shape} do not fit {n} samples and {n_out} outputs: pass "
                         f"({n},) class labels or ({n}, {n_out}) float targets")
    return targets


def split_validation(cfg: TrainConfig, rng: np.random.Generator, images: Any, targets: np.ndarray, n_out: int,
                     dtype: Any, be: Backend) -> tuple[Any, np.ndarray, tuple[Any, Any] | None]:
    """(training rows, their targets, the validation set): ``cfg.val_split`` of the rows held out, drawn from
    ``rng`` or the last ones (``cfg.val_from``), as (features on the device, float targets with labels
    one-hot), or None when no row is held out."""
    n = images.shape[0]
    n_val = int(round(n * cfg.val_split))
    if cfg.val_from == "end":  # Keras's count: floor(n * (1 - split)) images train
        n_val = n - math.floor(n * (1.0 - cfg.val_split))
    if not n_val:
        return images, targets, None
    if cfg.val_from == "end":  # Keras's validation_split: the last images, before any shuffling
        val, train = np.arange(n - n_val, n), np.arange(n - n_val)
    else:
        order = rng.permutation(n)
        val, train = order[:n_val], np.sort(order[n_val:])
    val_x = images[val] if is_sparse(images) else to_device(images[val], be)
    val_y = device_targets(targets, val, False, n_out, dtype, be)  # floats: labels one-hot
    return images[train], targets[train], (as_features(val_x, dtype, be.xp), val_y)
