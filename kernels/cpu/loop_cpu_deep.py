"""The per-sample loop at any depth as one Numba-compiled epoch: ``loop_cpu``'s sparse, block-deferred first
layer, then every later layer dense, sample by sample. Same algorithm and quirks as
``mnist_accel.trainers.loop.epoch_reference``.

Deferring the first layer's update to the end of a block stays exact SGD at any depth: sample m's first-layer
products need only the block's earlier first-layer deltas and the Gram matrix of its inputs, whatever sits
above the first hidden layer. The later layers change every sample and are small (784-128-64-10: 8,832
weights against the first layer's 100,352), so they are updated at once, each held transposed (a row per
unit it feeds) as ``loop_cpu`` holds its output layer: a forward sum is one vectorized dot product, and the
backward pass reads each weight once to send the delta down and once more to update it.

The later layers come flattened: ``wd`` is every later weight matrix (fan-in, fan-out), C order, one after
another; ``bd`` their biases; ``widths`` the layer widths from the first hidden layer to the outputs.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .. import ACTIVATION_CODES
from .loop_loss import output_delta
from .loop_rows import FORWARD, NOALIAS, UPDATE, address, call
from .simd import aligned_zeros, padded
from .vmath import exp

RELU, TANH = ACTIVATION_CODES["relu"], ACTIVATION_CODES["tanh"]


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


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"}, **NOALIAS)
def _activate(h, deriv, mask, use_masks, scale, activation):
    """h <- activation(h), dropped out by ``mask`` (a row of int8) times ``scale``; deriv <- the activation's
    derivative, ReLU's the tutorial's ``h >= 0`` after dropout. One loop per activation, so that ReLU's and
    the sigmoid's (on ``vmath.exp``) vectorize; tanh's calls the C library."""
    one, zero = h.dtype.type(1.0), h.dtype.type(0.0)
    if activation == RELU:
        for j in range(len(h)):
            h[j] = h[j] if h[j] >= 0 else zero
    elif activation == TANH:
        for j in range(len(h)):
            h[j] = math.tanh(h[j])
    else:
        for j in range(len(h)):
            h[j] = one / (one + exp(-h[j]))
    for j in range(len(h)):
        a = h[j]
        dropped = a * (mask[j] * scale) if use_masks else a
        if activation == RELU:
            deriv[j] = one if dropped >= 0 else zero
        elif activation == TANH:
            deriv[j] = one - a * a
        else:
            deriv[j] = a * (one - a)
        h[j] = dropped


@njit(cache=True, nogil=True, fastmath={"contract"}, **NOALIAS)
def _dense(wt, h, out, b, use_bias):
    """out[k] <- b[k] + wt[k] . h for the transposed output layer ``wt`` (a row per output)."""
    for k in range(len(out)):
        out[k] = _dot_row(wt, k, h, b[k] if use_bias else h.dtype.type(0.0))


@njit(cache=True, nogil=True, fastmath={"contract"}, **NOALIAS)
def _backward(wt, h, d, back, lr):
    """back <- wt^T d with the weights as the sample saw them, and wt += lr * outer(d, h), in one pass over the
    rows of the transposed output layer ``wt``: each unit's sum runs over the outputs in order."""
    back[:] = 0
    for k in range(len(d)):
        dk = d[k]
        for j in range(len(h)):
            back[j] += wt[k, j] * dk
            wt[k, j] += lr * (h[j] * dk)


@njit(cache=True, nogil=True, fastmath={"contract"}, **NOALIAS)
def _spread(w, h, out, b, use_bias):
    """out <- b + h @ w for a hidden layer's ``w`` as stored (a row per input): rows added in turn, vectorized
    across the outputs, four rows to a pass so that each output is loaded and stored once per four (the same
    operations in the same order as row by row)."""
    for k in range(len(out)):
        out[k] = b[k] if use_bias else h.dtype.type(0.0)
    j = 0
    while j + 4 <= len(h):
        h0, h1, h2, h3 = h[j], h[j + 1], h[j + 2], h[j + 3]
        for k in range(len(out)):
            acc = out[k] + h0 * w[j, k]
            acc += h1 * w[j + 1, k]
            acc += h2 * w[j + 2, k]
            out[k] = acc + h3 * w[j + 3, k]
        j += 4
    while j < len(h):
        hj = h[j]
        for k in range(len(out)):
            out[k] += hj * w[j, k]
        j += 1


@njit(cache=True, nogil=True, fastmath={"contract", "reassoc"}, **NOALIAS)
def _gather(w, h, d, back, lr):
    """back <- w d with the weights as the sample saw them, and w += lr * outer(h, d), a row of ``w`` (as
    stored) at a time: read once and written once, where the transposed form stores each unit's sum once
    per output. Each sum is reordered across vector lanes (as ``_dot_row``)."""
    for j in range(len(h)):
        hj = h[j]
        acc = h.dtype.type(0.0)
        for k in range(len(d)):
            acc += w[j, k] * d[k]
            w[j, k] += lr * (hj * d[k])
        back[j] = acc


def sgd_epoch(gptr, grow, esam, evals, bgrp, gram, labels, masks, use_masks, scale, w1, b1, wd, bd, widths,
              use_bias, lr, activation, loss):
    """Train one epoch in place on ``loop_layout.prepare``'s arrays; returns (summed loss, correct count,
    first sample whose loss was not finite or -1).

    ``masks`` is (n, sum of hidden widths) int8, each hidden layer's columns in turn (ignored unless
    ``use_masks``); biases are ignored unless ``use_bias``. ``activation`` and ``loss`` take the integer
    codes of ``ACTIVATION_CODES`` and ``LOOP_LOSS_CODES``.
    """
    return _epoch(gptr, grow, esam, evals, bgrp, gram, labels, masks, use_masks, scale, w1, b1, wd, bd, widths,
                  use_bias, lr, activation, loss, address(w1.dtype))


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"}, **NOALIAS)
def _epoch(gptr, grow, esam, evals, bgrp, gram, labels, masks, use_masks, scale, w1, b1, wd, bd, widths,
           use_bias, lr, activation, loss, passes):
    """``sgd_epoch``, given the address of the row passes (``loop_rows``)."""
    layers = len(widths) - 1  # dense layers after the first
    hidden, n_out, last = widths[0], widths[layers], widths[layers - 1]
    at = np.zeros(layers + 2, np.int64)  # hidden layer l's units: columns at[l]:at[l + 1] of masks and acts
    wat = np.zeros(layers + 1, np.int64)  # dense layer l's weights: wd[wat[l - 1]:wat[l]]
    for l in range(layers + 1):
        at[l + 1] = at[l] + widths[l]
    for l in range(layers):
        wat[l + 1] = wat[l] + widths[l] * widths[l + 1]
    wt = wd[wat[layers - 1]:].reshape((last, n_out)).T.copy()  # the output layer, a row per output
    block = gram.shape[1]
    width, w1p, fwd_flat, delta_flat = padded_state(w1, block)
    fwd = fwd_flat.reshape((block, width))  # x_m @ w1 at the block's start
    delta = delta_flat.reshape((block, width))  # the block's first-layer deltas, applied at its end
    acts = np.empty(at[layers + 1], w1.dtype)  # every hidden layer's activations after dropout, then outputs
    deriv = np.empty(at[layers], w1.dtype)
    back = np.empty(at[layers], w1.dtype)  # each hidden layer's delta
    d = np.empty(n_out, w1.dtype)
    total = 0.0
    correct = 0
    bad = -1
    n = len(labels)
    for b in range(len(bgrp) - 1):
        fwd_flat[:] = 0
        call(passes, FORWARD, fwd_flat, w1p, gptr, grow, esam, evals, width, bgrp[b], bgrp[b + 1], lr)
        lo = b * block
        for m in range(min(block, n - lo)):
            i = lo + m
            row = masks[i if use_masks else 0]  # without dropout, masks is one row, never read
            h = acts[:hidden]
            for j in range(hidden):
                h[j] = b1[j] + fwd[m, j] if use_bias else fwd[m, j]
            for l in range(m):  # the updates of the block's earlier samples, not yet in w1
                c = lr * gram[b, m, l]
                if c != 0:
                    for j in range(hidden):
                        h[j] += c * delta[l, j]
            for l in range(layers):  # hidden layer l, then what it feeds
                _activate(acts[at[l]:at[l + 1]], deriv[at[l]:at[l + 1]], row[at[l]:at[l + 1]], use_masks, scale,
                          activation)
                bias = bd[at[l + 1] - hidden:at[l + 2] - hidden]
                if l + 1 < layers:
                    _spread(wd[wat[l]:wat[l + 1]].reshape((widths[l], widths[l + 1])), acts[at[l]:at[l + 1]],
                            acts[at[l + 1]:at[l + 2]], bias, use_bias)
                else:
                    _dense(wt, acts[at[l]:at[l + 1]], acts[at[l + 1]:], bias, use_bias)
            out = acts[at[layers]:]
            best = 0
            for k in range(n_out):
                if out[k] > out[best]:
                    best = k
            correct += best == labels[i]
            total += output_delta(out, d, labels[i], loss)
            if bad < 0 and not math.isfinite(total):
                bad = i
            for l in range(layers, 0, -1):  # down through the dense layers, each updated as it is passed
                down, up = back[at[l - 1]:at[l]], d if l == layers else back[at[l]:at[l + 1]]
                if l == layers:
                    _backward(wt, acts[at[l - 1]:at[l]], up, down, lr)
                else:
                    _gather(wd[wat[l - 1]:wat[l]].reshape((widths[l - 1], widths[l])), acts[at[l - 1]:at[l]], up,
                            down, lr)
                if use_bias:
                    bias = bd[at[l] - hidden:at[l + 1] - hidden]
                    for k in range(len(bias)):
                        bias[k] += lr * up[k]
                for j in range(len(down)):
                    s = down[j] * deriv[at[l - 1] + j]
                    down[j] = s * row[at[l - 1] + j] if use_masks else s
            for j in range(hidden):
                delta[m, j] = back[j]
            if use_bias:
                for j in range(hidden):
                    b1[j] += lr * delta[m, j]
        call(passes, UPDATE, w1p, delta_flat, gptr, grow, esam, evals, width, bgrp[b], bgrp[b + 1], lr)
    unpad(w1p, width, w1)
    out = wd[wat[layers - 1]:].reshape((last, n_out))
    for j in range(last):  # a loop, not a slice assignment: see ``unpad``
        for k in range(n_out):
            out[j, k] = wt[k, j]
    return total, correct, bad
