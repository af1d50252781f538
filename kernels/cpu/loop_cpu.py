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

import numpy as np
from numba import njit

from .. import ACTIVATION_CODES, LOOP_LOSS_CODES
from .loop_loss import output_delta
from .loop_rows import FORWARD, NOALIAS, UPDATE, address, call
from .simd import LINE, aligned_zeros, host_aligned_zeros, padded
from .vmath import exp

RELU, TANH = ACTIVATION_CODES["relu"], ACTIVATION_CODES["tanh"]
MSE, SOFTMAX_MSE = LOOP_LOSS_CODES["mse"], LOOP_LOSS_CODES["softmax-mse"]


@njit(cache=True, nogil=True, fastmath={"contract", "reassoc"})
def _dot_row(a, k, h, start):
    """start + a[k] . h. A reduction vectorizes only where its sum may be reordered (partial sums in four
    lanes instead of one chain of dependent FMAs): rounding-level differences, for a shorter epoch (with
    the transposed w2, whose rows it then reads contiguously)."""
    acc = start
    for j in range(len(h)):
        acc += h[j] * a[k, j]
    return acc


@njit(cache=True, nogil=True)
def padded_state(w1, block):
    """(row stride, w1's padded copy for the epoch, the block's forward products, its deltas), the last two
    in the same stride. The copy has a last row of zeros that an odd pixel out pairs with (its padding,
    like the deltas', stays zero; the zero row gains only zero updates)."""
    n_features, hidden = w1.shape
    width = padded(hidden, w1)
    w1p = aligned_zeros((n_features + 1) * width, w1)
    for r in range(n_features):  # element by element: see ``unpad``
        for j in range(hidden):
            w1p[r * width + j] = w1[r, j]
    return width, w1p, aligned_zeros(block * width, w1), aligned_zeros(block * width, w1)


@njit(cache=True, nogil=True)
def unpad(w1p, width, w1):
    """w1 <- the padded copy's rows, at the epoch's end. (Copies in this module are loops: a slice
    assignment brings in Numba's shape-mismatch message, whose string formatting took longer to compile
    than the kernel.)"""
    for r in range(w1.shape[0]):
        for j in range(w1.shape[1]):
            w1[r, j] = w1p[r * width + j]


def sgd_epoch(gptr, grow, esam, evals, bgrp, gram, labels, masks, use_masks, scale, w1, b1, w2, b2, use_bias,
              lr, activation, loss):
    """Train one epoch in place on ``loop_layout.prepare``'s arrays; returns (summed loss, correct count,
    first sample whose loss was not finite or -1).

    ``masks`` is (n, hidden) int8 (ignored unless ``use_masks``); ``b1``/``b2`` are ignored unless
    ``use_bias``. ``activation`` and ``loss`` take the integer codes of ``ACTIVATION_CODES`` and
    ``LOOP_LOSS_CODES``.
    """
    n_features, hidden = w1.shape
    block, lanes = gram.shape[1], LINE // w1.itemsize
    width = -(-hidden // lanes) * lanes  # as ``padded_state``'s, built here: nothing of it to compile
    w1p = host_aligned_zeros((n_features + 1) * width, w1.dtype)
    rows = w1p.reshape(n_features + 1, width)
    rows[:n_features, :hidden] = w1
    fwd, delta = host_aligned_zeros(block * width, w1.dtype), host_aligned_zeros(block * width, w1.dtype)
    w2t = np.ascontiguousarray(w2.T)  # rows of 100 (one per output) instead of 100 rows of 10: long vectorized loops
    sample = [host_aligned_zeros(size, w1.dtype) for size in (hidden, hidden, hidden, w2.shape[1], w2.shape[1])]
    out = epoch_kernel(int(activation), int(loss), bool(use_masks), bool(use_bias))(
        gptr, grow, esam, evals, bgrp, gram, labels, masks, scale, w1p, width, fwd, delta, fwd.reshape(block, width),
        delta.reshape(block, width), b1, w2t, b2, lr, *sample, address(w1.dtype))
    w1[...] = rows[:n_features, :hidden]
    w2[...] = w2t.T
    return out


@functools.cache
def epoch_kernel(activation: int, loss: int, use_masks: bool, use_bias: bool):
    """``sgd_epoch``'s kernel for one activation, loss, dropout and bias setting: they are constants of the
    compiled function (Numba drops the branches they rule out before compiling), so a run compiles only the
    code it runs, where one kernel for every setting took several times as long to compile. Numba caches
    each setting's kernel apart (keyed by these values). It allocates nothing and fills no slices: each
    brings in code of Numba's own to compile (allocation, slice assignment), which took longer than the
    loops that use it. A sample's hidden and output rows come as arrays apart (``h``, ``deriv``, ``back``;
    ``out``, ``d2``), which LLVM then knows never overlap (noalias; views of one array would not), and
    aligned to cache lines as the kernel's own allocations were (unaligned, the epoch was slower). Its sums
    may be reordered (``reassoc``): the output products then vectorize in partial sums, as ``_dot_row``'s do
    for the deep kernel, with no function of their own to compile; rounding-level differences."""

    @njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract", "reassoc"}, **NOALIAS)
    def kernel(gptr, grow, esam, evals, bgrp, gram, labels, masks, scale, w1p, width, fwd_flat, delta_flat, fwd,
               delta, b1, w2t, b2, lr, h, deriv, back, out, d2, passes):
        # fwd: x_m @ w1 at the block's start; delta: the block's first-layer deltas, applied at its end (each
        # also flat, as the row passes take them); back: the output layer's error sent back to each hidden unit
        n_out, hidden = w2t.shape
        block = gram.shape[1]
        dt = w1p.dtype.type
        total = 0.0
        correct = 0
        bad = -1
        one = dt(1.0)
        n = len(labels)
        for b in range(len(bgrp) - 1):
            for j in range(len(fwd_flat)):
                fwd_flat[j] = 0
            call(passes, FORWARD, fwd_flat, w1p, gptr, grow, esam, evals, width, bgrp[b], bgrp[b + 1], lr)
            lo = b * block
            for m in range(n - lo if n - lo < block else block):  # (``min`` compiled code of its own)
                i = lo + m
                for j in range(hidden):
                    h[j] = b1[j] + fwd[m, j] if use_bias else fwd[m, j]
                for l in range(m):  # the updates of the block's earlier samples, not yet in w1
                    c = lr * gram[b, m, l]
                    if c != 0:
                        for j in range(hidden):
                            h[j] += c * delta[l, j]
                for j in range(hidden):  # the activation, its derivative and dropout: one loop that vectorizes
                    a = h[j]
                    if activation == RELU:
                        a = a if a >= 0 else dt(0.0)
                    elif activation == TANH:
                        a = math.tanh(a)
                    else:
                        a = one / (one + exp(-a))  # vmath's exp, which vectorizes (libm's is a call)
                    a_dropped = a * (masks[i, j] * scale) if use_masks else a
                    if activation == RELU:
                        deriv[j] = one if a_dropped >= 0 else dt(0.0)
                    elif activation == TANH:
                        deriv[j] = one - a * a
                    else:
                        deriv[j] = a * (one - a)
                    h[j] = a_dropped
                for k in range(n_out):
                    acc = b2[k] if use_bias else dt(0.0)
                    for j in range(hidden):
                        acc += h[j] * w2t[k, j]
                    out[k] = acc
                best = 0
                for k in range(n_out):
                    if out[k] > out[best]:
                        best = k
                label = labels[i]
                correct += best == label
                if loss == MSE:
                    for k in range(n_out):
                        d2[k] = (one if k == label else dt(0.0)) - out[k]
                        total += d2[k] * d2[k]
                elif loss == SOFTMAX_MSE:
                    total += output_delta(out, d2, label, loss)
                else:
                    peak = out[best]
                    norm = 0.0
                    for k in range(n_out):
                        norm += math.exp(out[k] - peak)
                    log_norm = math.log(norm)
                    total -= out[label] - peak - log_norm
                    for k in range(n_out):
                        d2[k] = (one if k == label else dt(0.0)) - math.exp(out[k] - peak - log_norm)
                if bad < 0 and not math.isfinite(total):
                    bad = i
                for j in range(hidden):
                    back[j] = 0
                for k in range(n_out):  # each hidden unit's sum runs over k in order, with w2 before its update
                    dk = d2[k]
                    for j in range(hidden):
                        back[j] += w2t[k, j] * dk
                        w2t[k, j] += lr * (h[j] * dk)
                for j in range(hidden):
                    s = back[j] * deriv[j]
                    delta[m, j] = s * masks[i, j] if use_masks else s
                if use_bias:
                    for j in range(hidden):
                        b1[j] += lr * delta[m, j]
                    for k in range(n_out):
                        b2[k] += lr * d2[k]
            call(passes, UPDATE, w1p, delta_flat, gptr, grow, esam, evals, width, bgrp[b], bgrp[b + 1], lr)
        return total, correct, bad

    return kernel
