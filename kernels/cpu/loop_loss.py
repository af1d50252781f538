"""The loop kernels' output layer on the CPU: a sample's loss and the delta it sends back, for every loss the
per-sample loop takes, in ``mnist_accel.trainers.loop.epoch_reference``'s sign: target minus prediction, so that
the weights gain ``lr`` times their gradient's negative."""

from __future__ import annotations

import math

from numba import njit

from .. import LOOP_LOSS_CODES

MSE, SOFTMAX_MSE = LOOP_LOSS_CODES["mse"], LOOP_LOSS_CODES["softmax-mse"]


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def output_delta(out, d, label, loss):
    """d <- the output delta of scores ``out`` for class ``label``; returns the sample's loss: summed squared
    error without the gradient's factor 2 (the tutorial's), cross-entropy of the softmax, or deep-sgd's
    squared error of the softmax averaged over the outputs, whose delta is 2 (y - s) / n * s (1 - s): the
    softmax's elementwise derivative, not its Jacobian (the write-up's quirk)."""
    one, zero = out.dtype.type(1.0), out.dtype.type(0.0)
    n_out = len(out)
    if loss == MSE:
        total = 0.0
        for k in range(n_out):
            d[k] = (one if k == label else zero) - out[k]
            total += d[k] * d[k]
        return total
    peak = out[0]
    for k in range(1, n_out):
        peak = max(peak, out[k])
    norm = zero
    for k in range(n_out):
        d[k] = math.exp(out[k] - peak)
        norm += d[k]
    if loss == SOFTMAX_MSE:
        total = 0.0
        two, count = out.dtype.type(2.0), out.dtype.type(n_out)
        for k in range(n_out):
            s = d[k] / norm
            e = (one if k == label else zero) - s
            total += e * e
            d[k] = two * e / count * (s * (one - s))
        return total / n_out
    log_norm = math.log(norm)
    for k in range(n_out):
        d[k] = (one if k == label else zero) - math.exp(out[k] - peak - log_norm)
    return -(out[label] - peak - log_norm)
