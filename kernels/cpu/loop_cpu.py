"""The tutorial's per-sample SGD as one Numba-compiled epoch: same algorithm and quirks as
``mnist_accel.trainers.loop.epoch_reference``, but fused, with no allocation inside its loops, and sparse in the input.

Only about a fifth of MNIST pixels are nonzero, so only those rows of ``w1`` are touched. The epoch runs
in blocks of consecutive samples (``loop_layout``) with the first layer's update deferred to the end of
each block, which is still exact per-sample SGD: sample m's forward product with the weights it would
have seen is ``x_m @ w1_block_start + lr * sum over earlier l in the block of (x_m . x_l) * delta_l``. So
each row of ``w1`` that the block touches is read once for all its forward products and written once for
all its updates (about 14 rows per sample instead of 150), and the rest runs in L1 cache. Sums are
ordered differently and may contract into FMAs: rounding-level differences (the reference agrees to 1e-10
after an epoch).

Those two row passes are most of an epoch and are bound by stores. They walk pairs of rows (the layout's
pairs of pixels), so a sample's forward row is stored once for two pixels, and they run on a working copy
of ``w1`` (and buffers) whose rows are padded to whole 64-byte cache lines and aligned, in ``simd.axpy``'s
explicit cache-line-wide steps, which beat LLVM's own 256-bit loops on both passes. They live in
``loop_rows``, compiled once as a C callback that each setting's kernel calls through its address.
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np
from numba import carray, types

from .. import ACTIVATION_CODES, LOOP_LOSS_CODES
from .ccall import c_kernel
from .loop_loss import output_delta
from .loop_rows import FORWARD, NOALIAS, UPDATE, address, call
from .simd import LINE, host_aligned_zeros
from .vmath import exp

RELU, TANH = ACTIVATION_CODES["relu"], ACTIVATION_CODES["tanh"]
MSE, SOFTMAX_MSE = LOOP_LOSS_CODES["mse"], LOOP_LOSS_CODES["softmax-mse"]


def sgd_epoch(gptr, grow, esam, evals, bgrp, gram, labels, masks, use_masks, scale, w1, b1, w2, b2, use_bias,
              lr, activation, loss):
    """Train one epoch in place on ``loop_layout.prepare``'s arrays; returns (summed loss, correct count,
    first sample whose loss was not finite or -1).

    ``labels`` is int64, ``masks`` (n, hidden) int8 (ignored unless ``use_masks``), every array C-contiguous;
    ``b1``/``b2`` are ignored unless ``use_bias``. ``activation`` and ``loss`` take the integer codes of
    ``ACTIVATION_CODES`` and ``LOOP_LOSS_CODES``.
    """
    n_features, hidden = w1.shape
    block, lanes = gram.shape[1], LINE // w1.itemsize
    width = -(-hidden // lanes) * lanes  # rows padded to whole vector steps (``simd.padded``), in Python
    w1p = host_aligned_zeros((n_features + 1) * width, w1.dtype)
    rows = w1p.reshape(n_features + 1, width)
    rows[:n_features, :hidden] = w1
    fwd, delta = host_aligned_zeros(block * width, w1.dtype), host_aligned_zeros(block * width, w1.dtype)
    w2t = np.ascontiguousarray(w2.T)  # rows of 100 (one per output) instead of 100 rows of 10: long vectorized loops
    n_out = w2.shape[1]
    sample = [host_aligned_zeros(size, w1.dtype) for size in (hidden, hidden, hidden, n_out, n_out)]
    result = np.zeros(3)
    epoch_kernel(int(activation), int(loss), bool(use_masks), bool(use_bias), w1.dtype).call(
        gptr, grow, esam, evals, bgrp, gram, labels, masks, scale, w1p, fwd, delta, b1, w2t, b2, lr, *sample,
        address(w1.dtype), len(labels), len(bgrp) - 1, block, width, hidden, n_out, result)
    w1[...] = rows[:n_features, :hidden]
    w2[...] = w2t.T
    return float(result[0]), int(result[1]), int(result[2])


@functools.cache
def epoch_kernel(activation: int, loss: int, use_masks: bool, use_bias: bool, dtype: np.dtype):
    """``sgd_epoch``'s kernel for one activation, loss, dropout, bias setting and float dtype, compiled as a C
    callback (``ccall``: no wrapper unboxing its 29 arguments) and cached by Numba on disk. The settings
    are constants of the compiled function (Numba drops the branches they rule out before compiling), so a
    run compiles only the code it runs, where one kernel for every setting took several times as long to
    compile. It allocates nothing and fills no slices: each brings in code of Numba's own to compile
    (allocation, slice assignment), which took longer than the loops that use it.

    Its arrays are pointers, indexed directly (row-major, ``width`` apart for ``fwd`` and ``delta``, the
    block's Gram matrices ``block`` by ``block``). A sample's hidden and output rows come as arrays apart
    (``h``, ``deriv``, ``back``; ``out``, ``d2``), which LLVM is told never overlap (``NOALIAS``), aligned
    to cache lines (unaligned, the epoch was slower). Its sums may be reordered (``reassoc``): the output
    products then vectorize in partial sums; rounding-level differences."""
    real = np.dtype(dtype).type
    dt = numba.from_dtype(np.dtype(dtype))
    p, i64 = types.CPointer, types.int64
    sig = types.void(p(i64), p(types.int32), p(types.int32), p(dt), p(i64), p(dt), p(i64), p(types.int8), dt,
                     *[p(dt)] * 6, dt, *[p(dt)] * 5, *[i64] * 7, p(types.float64))

    def kernel(gptr, grow, esam, evals, bgrp, gram, labels, masks, scale, w1p, fwd, delta, b1, w2t, b2, lr, h,
               deriv, back, out, d2, passes, n, nb, block, width, hidden, n_out, result):
        # fwd: x_m @ w1 at the block's start; delta: the block's first-layer deltas, applied at its end;
        # back: the output layer's error sent back to each hidden unit
        total = 0.0
        correct = 0
        bad = -1
        zero, one = real(0.0), real(1.0)
        for b in range(nb):
            for j in range(block * width):
                fwd[j] = 0
            call(passes, FORWARD, fwd, w1p, gptr, grow, esam, evals, width, bgrp[b], bgrp[b + 1], lr)
            lo = b * block
            for m in range(n - lo if n - lo < block else block):  # (``min`` compiled code of its own)
                i, row = lo + m, m * width  # the sample's rows of fwd and delta
                for j in range(hidden):
                    h[j] = b1[j] + fwd[row + j] if use_bias else fwd[row + j]
                g = (b * block + m) * block  # this sample's row of the block's Gram matrix
                for l in range(m):  # the updates of the block's earlier samples, not yet in w1
                    c = lr * gram[g + l]
                    if c != 0:
                        for j in range(hidden):
                            h[j] += c * delta[l * width + j]
                mi = i * hidden
                for j in range(hidden):  # the activation, its derivative and dropout: one loop that vectorizes
                    a = h[j]
                    if activation == RELU:
                        a = a if a >= 0 else zero
                    elif activation == TANH:
                        a = math.tanh(a)
                    else:
                        a = one / (one + exp(-a))  # vmath's exp, which vectorizes (libm's is a call)
                    a_dropped = a * (masks[mi + j] * scale) if use_masks else a
                    if activation == RELU:
                        deriv[j] = one if a_dropped >= 0 else zero
                    elif activation == TANH:
                        deriv[j] = one - a * a
                    else:
                        deriv[j] = a * (one - a)
                    h[j] = a_dropped
                for k in range(n_out):
                    acc = b2[k] if use_bias else zero
                    for j in range(hidden):
                        acc += h[j] * w2t[k * hidden + j]
                    out[k] = acc
                best = 0
                for k in range(n_out):
                    if out[k] > out[best]:
                        best = k
                label = labels[i]
                correct += best == label
                if loss == MSE:
                    for k in range(n_out):
                        d2[k] = (one if k == label else zero) - out[k]
                        total += d2[k] * d2[k]
                elif loss == SOFTMAX_MSE:
                    total += output_delta(carray(out, n_out), carray(d2, n_out), label, loss)
                else:
                    peak = out[best]
                    norm = 0.0
                    for k in range(n_out):
                        norm += math.exp(out[k] - peak)
                    log_norm = math.log(norm)
                    total -= out[label] - peak - log_norm
                    for k in range(n_out):
                        d2[k] = (one if k == label else zero) - math.exp(out[k] - peak - log_norm)
                if bad < 0 and not math.isfinite(total):
                    bad = i
                for j in range(hidden):
                    back[j] = 0
                for k in range(n_out):  # each hidden unit's sum runs over k in order, with w2 before its update
                    dk = d2[k]
                    for j in range(hidden):
                        back[j] += w2t[k * hidden + j] * dk
                        w2t[k * hidden + j] += lr * (h[j] * dk)
                for j in range(hidden):
                    s = back[j] * deriv[j]
                    delta[row + j] = s * masks[mi + j] if use_masks else s
                if use_bias:
                    for j in range(hidden):
                        b1[j] += lr * delta[row + j]
                    for k in range(n_out):
                        b2[k] += lr * d2[k]
            call(passes, UPDATE, w1p, delta, gptr, grow, esam, evals, width, bgrp[b], bgrp[b + 1], lr)
        result[0] = total
        result[1] = correct
        result[2] = bad

    return c_kernel(kernel, sig, error_model="numpy", fastmath={"contract", "reassoc"}, **NOALIAS)
