"""The whole training set's loss and gradient at the trainer's current parameters, for optimizers that run on
the host (SciPy's L-BFGS-B behind scikit-learn's ``solver='lbfgs'``): ``VectorizedTrainer.loss_and_grads``.

It runs the trainer's own whole-batch machinery, the fastest the ops have for the whole set in order: on
numba the images prepared once (a sparse matrix where that pays) and, for narrow networks, the fused
one-pass step's gradients (``whole_step.WholeStep.gradients``); on the GPU the device's kernels and
cuBLAS. Nothing is updated, no dropout is drawn and no weight decay is added. The gradients are copied on
the device into one float64 buffer in the caller's order, with the summed loss as its last element, so
each call reads back one array.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from mnist_accel.backends.selection import to_host

NOT_WHOLE = ("loss_and_grads needs a trainer whose batch is the whole training set in order: batch_size at least "
             "the number of training rows, and no dropout with shuffling")


class WholeGradients:
    """``trainer.loss_and_grads()`` for one order of the parameters: the flat device buffer and its views."""

    def __init__(self, trainer: Any, order: Iterable[int]) -> None:
        if not trainer.whole:
            raise ValueError(NOT_WHOLE)
        self.trainer, self.order = trainer, [int(i) for i in order]
        sizes = [trainer.params[i].size for i in self.order]
        self.flat = trainer.xp.empty(sum(sizes) + 1, np.float64)
        ends = np.cumsum(sizes)
        self.views = [self.flat[end - size:end].reshape(trainer.params[i].shape)
                      for i, size, end in zip(self.order, sizes, ends)]

    def __call__(self) -> tuple[float, np.ndarray]:
        trainer = self.trainer
        fused = getattr(trainer._fused, "gradients", None)  # a fused whole-set step that can stop before its update
        with trainer.scoring():  # the BLAS threads the trainer's epochs run with
            if fused is not None:
                loss, grads = fused(trainer.n_seen)
            else:
                loss, _, grads = trainer.gradients(None, None)
            for view, i in zip(self.views, self.order):
                view[...] = grads[i]
            self.flat[-1] = loss
            host = np.array(to_host(self.flat))  # a copy of its own: the next call reuses the buffer
        return float(host[-1]), host[:-1]
