"""``XpOps``: the elementwise parts of a training step written once against ``xp`` (NumPy or CuPy), the
reference every fused implementation is tested against.

Everything works in place on preallocated buffers and returns device scalars (no host sync). The training
set may also be a scipy.sparse matrix on the CPU (``sparse_rows``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mnist_accel import losses, optim
from mnist_accel.backends.sparse_rows import SparseBatches, as_csr, is_sparse
from mnist_accel.config import TrainConfig
from mnist_accel.kernels import LABEL_LOSSES


@dataclass(frozen=True)
class StepBuffers:
    """The device memory a step reads and writes besides the model: the trainer owns these."""

    inputs: Any  # the training set: uint8 pixels or features in the model's dtype
    labels: Any  # the targets: an int32 label per training sample, or (samples, outputs) floats
    order: Any  # int64: this epoch's shuffle
    k: Any  # int64 0-d: the step within the epoch, advanced by the step's last kernel
    sched: Any  # (steps, 3) of (lr, step size, eps), one row per step
    keys: Any  # uint32 (steps, hidden layers): dropout keys
    step_loss: Any  # float64 per step: its summed loss
    loss_sum: Any  # float64 0-d: the epoch's summed loss
    hits: Any  # float64 0-d: the epoch's correct count


class XpOps:
    def __init__(self, xp: Any) -> None:
        self.xp = xp
        self._x: dict[int, Any] = {}  # scaled input batches, one buffer per batch size
        self._last_x: Any = None
        self._sparse_batches = SparseBatches()

    def empty(self, shape: tuple, dtype: Any) -> Any:
        """A work buffer of the trainer's (activations, deltas)."""
        return self.xp.empty(shape, dtype)

    def prepare_inputs(self, inputs: Any, dtype: Any, whole: bool = False, threads: int = 1) -> Any:
        """uint8 inputs are pixels: kept as uint8 (a quarter of float32's bytes) and scaled by 1/255 per
        batch. Any other inputs are features, converted to ``dtype`` once and used as given.

        ``whole``: every step trains on all rows in order (``batch`` None below), so pixels are scaled
        once here and a step gathers nothing. ``threads``: CPU threads the ops may use. A scipy.sparse matrix
        (features, whatever its dtype) becomes compressed rows of ``dtype``, gathered per batch.
        """
        self.dtype = np.dtype(dtype)
        if is_sparse(inputs):
            self._pixels = False
            return as_csr(inputs, self.dtype)
        self._pixels = inputs.dtype == np.uint8 and not whole
        self._x.clear()  # batch buffers of an earlier dtype
        if inputs.dtype == np.uint8 and whole:
            scaled = inputs.astype(self.dtype)
            scaled /= self.dtype.type(255)  # the numbers input_matmul's per-batch division gives
            return scaled
        return inputs if self._pixels else inputs.astype(self.dtype, copy=False)

    def input_matmul(self, inputs: Any, batch: Any, w: Any, out: Any) -> None:
        """out <- x[batch] @ w (``batch`` None: every row, in order); the batch's x is kept for ``input_grad``."""
        if is_sparse(inputs):
            self._last_x = self._sparse_batches
            self._sparse_batches.matmul(inputs, batch, w, out)
            return
        if batch is None:
            self._last_x = inputs
            self.xp.matmul(inputs, w, out=out)
            return
        n = len(batch)
        if n not in self._x:
            self._x[n] = self.xp.empty((n, inputs.shape[1]), self.dtype)
        x = self._last_x = self._x[n]
        if self._pixels:
            self.xp.divide(inputs[batch], self.dtype.type(255), out=x)
        else:
            self.xp.take(inputs, batch, axis=0, out=x)
        self.xp.matmul(x, w, out=out)

    def input_grad(self, inputs: Any, batch: Any, delta: Any, out: Any) -> None:
        """out <- x.T @ delta for the batch of the last ``input_matmul``."""
        if self._last_x is self._sparse_batches:
            self._sparse_batches.grad(delta, out)
            return
        self.xp.matmul(self._last_x.T, delta, out=out)

    def warm_up(self, cfg: TrainConfig) -> float:
        return 0.0

    def blas_threads(self, threads: int) -> int:
        """The BLAS threads a step should run with, given the threads the run may use."""
        return threads

    def fused_step(self, cfg: TrainConfig, params: Sequence[Any], state: Sequence[Sequence[Any]],
                   buffers: StepBuffers) -> Callable[[int], None] | None:
        """A whole training step as one call ``step(n)``, reading what changes per step from ``buffers``
        (``StepBuffers``), or None: the trainer then composes the step from the ops below."""
        return None

    def bias_act(self, z: Any, b: Any | None, activation: str, mask: Any | None) -> None:
        """z <- act(z + b) * mask, in place."""
        xp = self.xp
        if b is not None:
            z += b
        if activation == "relu":
            xp.maximum(z, 0, out=z)
        elif activation == "tanh":
            xp.tanh(z, out=z)
        elif activation == "sigmoid":
            xp.negative(z, out=z)
            xp.exp(z, out=z)
            z += 1
            xp.reciprocal(z, out=z)
        if mask is not None:
            z *= mask

    def act_backward(self, delta: Any, h: Any, activation: str, mask: Any | None, inv_scale: float) -> None:
        """delta <- delta * act'(a) * mask, where h = a * mask is the layer's output."""
        if activation == "relu":
            delta *= h > 0
        elif activation != "identity":
            a = h * inv_scale if mask is not None else h
            delta *= (1 - a * a) if activation == "tanh" else a * (1 - a)
        if mask is not None:
            delta *= mask

    def loss_grad(self, z: Any, labels: Any, grad: Any, loss: str) -> tuple[Any, Any]:
        """grad <- d(mean loss)/dz; returns (summed loss, correct count) as device scalars. ``labels``: an int
        label per row (the label losses), or the rows' float targets (any loss: ``losses``'s formulas)."""
        xp = self.xp
        n = z.shape[0]
        if labels.ndim == 2 or loss not in LABEL_LOSSES:
            return self._target_loss_grad(z, labels, grad, loss)
        rows = xp.arange(n)
        correct = (z.argmax(axis=1) == labels).sum()
        if loss == "mse":
            xp.multiply(z, 2.0 / n, out=grad)
            grad[rows, labels] -= 2.0 / n
            diff = z.copy()
            diff[rows, labels] -= 1
            return (diff * diff).sum(), correct
        peak = z.max(axis=1, keepdims=True)
        xp.subtract(z, peak, out=grad)
        xp.exp(grad, out=grad)
        norm = grad.sum(axis=1, keepdims=True)
        total = (xp.log(norm[:, 0]) + peak[:, 0] - z[rows, labels]).sum()
        grad /= norm
        grad[rows, labels] -= 1
        grad *= 1.0 / n
        return total, correct

    def _target_loss_grad(self, z: Any, targets: Any, grad: Any, loss: str) -> tuple[Any, Any]:
        """loss_grad against float targets, as ``losses.loss_sum``, ``output_grad`` and ``correct_count``."""
        xp = self.xp
        if targets.ndim == 1:  # labels for a loss of float targets: the trainer passes targets; others one-hot
            targets = (xp.arange(z.shape[1]) == targets[:, None]).astype(z.dtype)
        xp.multiply(losses.output_grad(z, targets, loss, xp), z.dtype.type(1.0 / z.shape[0]), out=grad)
        return losses.loss_sum(z, targets, loss, xp).astype(np.float64), losses.correct_count(z, targets, loss)

    def bias_grad(self, delta: Any, out: Any) -> None:
        """out <- the bias gradient, delta summed over the batch."""
        self.xp.sum(delta, axis=0, out=out)

    def update(self, params: Sequence[Any], grads: Sequence[Any], state: list[list[Any]], cfg: TrainConfig,
               scalars: Any) -> None:
        """One optimizer step; ``scalars`` is (lr, step size, eps) in device memory (``optim.step_scalars``)."""
        optim.update(params, grads, state, cfg, scalars, self.xp)
