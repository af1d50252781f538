"""When a training run has diverged: its loss became NaN or infinite, or left the range sound runs stay in.

An exploding run can stay finite (Adam at ``--lr 1e6`` reaches a mean loss of 4.5e15 and no NaN), so
finiteness alone is not the test. The range is set by where the run starts: the **reference** is the
untrained model's mean loss on (up to) the first ``REFERENCE_SAMPLES`` training images, but never less
than the loss of a model that knows nothing (``trivial_loss``: ln 10 = 2.30 for cross-entropy, uniform
probabilities; 1 for the summed squared error, every output 0). An epoch has diverged when its mean
training loss is not finite or exceeds ``LIMIT`` times the reference.

Why 100: sound runs train the loss down from the reference, and on MNIST sweeps (sgd, momentum and adam;
both losses; float32 and float64; the tutorial preset and the default; batch sizes 1 to 256; widths up
to 4096) no run that went on to learn stayed above 1.5 times it for an epoch. Runs that rose to 10-100
times it ended near chance accuracy; exploding ones pass 1000 times it within the first epoch.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from . import model
from .data import normalize, one_hot

LIMIT = 100.0
REFERENCE_SAMPLES = 512  # enough for a stable mean; few enough to cost nothing beside an epoch


def trivial_loss(loss: str, n_classes: int) -> float:
    """The mean loss of a model that knows nothing: uniform probabilities, or every output 0."""
    return math.log(n_classes) if loss == "cross-entropy" else 1.0


def reference_loss(params: Sequence[np.ndarray], images: np.ndarray, labels: np.ndarray, activation: str,
                   loss: str) -> float:
    """The untrained model's mean loss on the first images (host arrays), floored by ``trivial_loss``."""
    n = min(len(images), REFERENCE_SAMPLES)
    dtype = params[0].dtype
    n_classes = params[-1].shape[-1]
    x = normalize(images[:n], dtype)
    y = one_hot(labels[:n], dtype, np, n_classes)
    with np.errstate(all="ignore"):
        total, _ = model.evaluate(params, x, y, activation, loss, np)
    measured = float(total) / n
    floor = trivial_loss(loss, n_classes)
    return max(measured, floor) if math.isfinite(measured) else floor


def reason(mean_loss: float, reference: float) -> str | None:
    """Why an epoch with this mean training loss has diverged, or None if it has not."""
    if not math.isfinite(mean_loss):
        return "the loss became NaN or infinite"
    if mean_loss > LIMIT * reference:
        return (f"its mean training loss {mean_loss:.3g} is over {LIMIT:g} times the untrained model's "
                f"{reference:.3g}")
    return None
