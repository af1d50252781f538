"""When a training run has diverged: its loss became NaN or infinite, or left the range sound runs stay in.

An exploding run can stay finite (Adam at ``--lr 1e6`` reaches a mean loss of 4.5e15 and no NaN), so
finiteness alone is not the test. The range is set by where the run starts: the **reference** is the
untrained model's mean loss on (up to) the first ``REFERENCE_SAMPLES`` training images, but never less
than the mean loss of a model that knows nothing (``trivial_loss``). An epoch has diverged when its mean
training loss is not finite or exceeds ``LIMIT`` times the reference. Per loss function (K classes):

- ``cross-entropy``: knowing nothing is uniform probabilities, ln K (2.30 for MNIST); the loss is
  unbounded, and an exploding run's logits drive it far past 100 times that.
- ``mse``, the tutorial's squared error summed over the outputs: knowing nothing is every output 0, a
  loss of 1; unbounded, like cross-entropy.
- ``softmax-mse``, deep-sgd's squared error of the softmax averaged over the outputs: uniform
  probabilities give (K - 1) / K^2 (0.09), and no output can do worse than 2 / K, about 2.2 times that.
  A bounded loss cannot leave its range, so for it only NaN or infinity counts.

Why 100: no epoch of a sound run comes near it (every preset, optimizer and loss tried stayed within a
small multiple of the reference), while exploding runs pass it at once, by orders of magnitude. The
runs behind this are in ``docs/design/engine-notes-2026-12.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mnist_accel import model
from mnist_accel.data.mnist import one_hot
from mnist_accel.trainers.training_set import as_features

LIMIT = 100.0
REFERENCE_SAMPLES = 512  # enough for a stable mean; few enough to cost nothing beside an epoch


def trivial_loss(loss: str, n_classes: int) -> float:
    """The mean loss of a model that knows nothing: uniform probabilities, or every output 0 for ``mse``."""
    if loss == "cross-entropy":
        return math.log(n_classes)
    if loss == "softmax-mse":
        return (n_classes - 1) / n_classes ** 2
    return 1.0


def reference_loss(params: Sequence[np.ndarray], images: Any, targets: np.ndarray, activation: str,
                   loss: str) -> float:
    """The untrained model's mean loss on the first rows, floored by ``trivial_loss``. Host arrays: uint8
    pixels (scaled as training scales them) or rows of features, dense or scipy.sparse; class labels, or
    float targets (samples, outputs)."""
    n = min(images.shape[0], REFERENCE_SAMPLES)
    dtype = params[0].dtype
    n_out = params[-1].shape[-1]
    x = as_features(images[:n], dtype, np)
    y = one_hot(targets[:n], dtype, np, n_out) if targets.ndim == 1 else np.asarray(targets[:n], dtype)
    with np.errstate(all="ignore"):
        total, _ = model.evaluate(params, x, y, activation, loss, np)
    measured = float(total) / n
    floor = trivial_loss(loss, n_out)
    return max(measured, floor) if math.isfinite(measured) else floor


def reason(mean_loss: float, reference: float) -> str | None:
    """Why an epoch with this mean training loss has diverged, or None if it has not."""
    if not math.isfinite(mean_loss):
        return "the loss became NaN or infinite"
    if mean_loss > LIMIT * reference:
        return (f"its mean training loss {mean_loss:.3g} is over {LIMIT:g} times the untrained model's "
                f"{reference:.3g}")
    return None
