"""A whole training step of full-batch gradient descent on the CPU as one pass over the images: each
block of 64 samples goes forward through every layer and back again while its activations are still in
the core's cache, adding to its thread's gradients (``mnist_accel.backends.whole_step.WholeStep`` runs the
threads, sums their gradients and applies the update).

Composed from separate operations, a full-batch step writes and rereads every layer's 60,000-row
activations and deltas a dozen times, passes bound by memory (a third of a 784-16-16-10 step here), and
BLAS's GEMMs with 16 columns run far from its peak. Here every product is a run of 64-byte vector
lines (``sparse_cpu``'s ``gather_line`` and ``scatter_line``): the first layer's over each sample's lit
pixels, the small dense layers' over a row of activations as if every column were lit. So every array
here is laid out in rows padded to whole lines (``width``), with zeros in the padding of weights and
biases; padding lanes of activations hold whatever the arithmetic gives and are never read as inputs.
tanh, sigmoid and the softmax's exp use ``vmath.exp`` in float64 (arithmetic that vectorizes), as Numba's
math functions call the C library one element at a time.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .. import ACTIVATION_CODES, LOSS_CODES
from .fpenv import flush_subnormals, restore
from .simd import lanes_of
from .sparse_cpu import gather_line, scatter_line
from .vmath import exp

BLOCK = 64  # samples per block: every layer's rows of a block stay in L1 at widths up to 64
RELU, TANH, SIGMOID, IDENTITY = (ACTIVATION_CODES[a] for a in ("relu", "tanh", "sigmoid", "identity"))
MSE = LOSS_CODES["mse"]  # anything else is cross-entropy
# error_model="numpy": Python's model checks every division for zero, a branch that keeps LLVM from
# vectorizing the loop it sits in.
FAST = dict(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")


def columns_for(width: int) -> np.ndarray:
    """Column numbers for a block's rows ``width`` apart, read as one sparse matrix with every column lit:
    entry k of the flat block is column k % width."""
    return np.tile(np.arange(width, dtype=np.uint16), BLOCK)


@njit(**FAST)
def _activate(z, count, width, bias, use_bias, act):
    """The first ``count`` rows of flat ``z`` (rows ``width`` apart) <- act(z + bias), in place."""
    if use_bias:
        for r in range(count):
            for j in range(width):
                z[r * width + j] += bias[j]
    n = count * width
    if act == RELU:
        for i in range(n):
            z[i] = max(z[i], 0.0)
    elif act == TANH:
        for i in range(n):
            v = np.float64(z[i])
            z[i] = 1.0 - 2.0 / (exp(v + v) + 1.0)
    elif act == SIGMOID:
        for i in range(n):
            z[i] = 1.0 / (1.0 + exp(-np.float64(z[i])))


@njit(**FAST)
def _derivative(d, a, n, act):
    """d[:n] *= act'(.), written in terms of the activation's output a."""
    if act == RELU:
        for i in range(n):
            d[i] = d[i] if a[i] > 0 else 0.0
    elif act == TANH:
        for i in range(n):
            d[i] *= 1.0 - a[i] * a[i]
    elif act == SIGMOID:
        for i in range(n):
            d[i] *= a[i] * (1.0 - a[i])


@njit(**FAST)
def _loss(z, count, width, m, labels, first, loss, inv_n):
    """Rows of flat ``z`` (``width`` apart, ``m`` scores each) <- d(mean loss)/dz; returns (summed loss,
    correct count). Padding lanes become 0."""
    total, hits = 0.0, 0
    for r in range(count):
        o, label = r * width, labels[first + r]
        peak = z[o]
        for j in range(1, m):
            peak = max(peak, z[o + j])
        best = 0
        for j in range(m - 1, -1, -1):  # argmax's first column holding the peak, by selects
            best = j if z[o + j] == peak else best
        hits += best == label
        if loss == MSE:
            for j in range(width):
                diff = z[o + j] - (1.0 if j == label else 0.0) if j < m else 0.0
                total += diff * diff
                z[o + j] = 2.0 * diff * inv_n
        else:
            total += peak - z[o + label]
            for j in range(width):
                z[o + j] = z[o + j] - peak if j < m else -np.inf  # exp(-inf) = 0 in the padding
    if loss != MSE:
        for i in range(count * width):  # one long loop, so that exp vectorizes
            z[i] = exp(np.float64(z[i]))
        for r in range(count):
            o = r * width
            norm = 0.0
            for j in range(width):
                norm += z[o + j]
            total += math.log(norm)
            scale = inv_n / norm
            for j in range(width):
                z[o + j] *= scale
            z[o + labels[first + r]] -= inv_n
    return total, hits


@njit(**FAST)
def step_rows(starts, columns, values, weights, transposed, biases, use_bias, widths, sizes, cols, act, labels,
              loss, inv_n, acts, deltas, gp, grads, bias_grads, line, lo, hi):
    """Forward and backward for samples [lo, hi): returns (summed loss, correct count) and leaves their
    gradients in ``gp`` (the first layer's) , ``grads`` (the others') and ``bias_grads``, zeroed first.

    Layer l maps ``sizes[l]`` inputs to ``sizes[l + 1]`` outputs, its rows padded to ``widths[l]``:
    ``weights[l]`` (sizes[l] rows, widths[l] apart) and ``transposed[l]`` (sizes[l + 1] rows,
    widths[l - 1] apart; l >= 1), flat; ``biases[l]`` padded; ``acts[l]``/``deltas[l]`` flat blocks
    (``deltas[-1] is acts[-1]``); ``cols[l]`` = ``columns_for(widths[l])``; ``gp`` has the first
    layer's rows."""
    saved = flush_subnormals()  # deltas of saturated tanh units decay towards zero: no microcode assists
    gp[:] = 0
    for g in grads:
        g[:] = 0
    for g in bias_grads:
        g[:] = 0
    depth = len(acts)
    step = lanes_of(gp)
    total, hits = 0.0, 0
    one, zero = np.ones(1, gp.dtype), np.zeros(1, np.uint16)  # a bias gradient is a sum of delta rows
    for first in range(lo, hi, BLOCK):
        count = min(BLOCK, hi - first)
        w0, a0 = weights[0], acts[0]
        width = widths[0]
        for r in range(count):
            s = first + r
            for c in range(0, width, step):
                gather_line(a0, r * width + c, w0, width, c, columns, values, starts[s], starts[s + 1])
        for layer in range(depth):
            a, width = acts[layer], widths[layer]
            last = layer == depth - 1
            _activate(a, count, width, biases[layer], use_bias, IDENTITY if last else act)
            if not last:
                out, w, k = acts[layer + 1], weights[layer + 1], sizes[layer + 1]
                ow, cl = widths[layer + 1], cols[layer]
                for r in range(count):
                    for c in range(0, ow, step):
                        gather_line(out, r * ow + c, w, ow, c, cl, a, r * width, r * width + k)
        part, right = _loss(acts[depth - 1], count, widths[depth - 1], sizes[depth], labels, first, loss, inv_n)
        total += part
        hits += right
        for layer in range(depth - 1, -1, -1):
            d, width = deltas[layer], widths[layer]
            gb = bias_grads[layer]
            if use_bias:
                for r in range(count):
                    for c in range(0, width, step):
                        scatter_line(gb, width, c, zero, one, 0, 1, d, r * width + c)
            if layer == 0:
                for r in range(count):
                    s = first + r
                    for c in range(0, width, step):
                        scatter_line(gp, width, c, columns, values, starts[s], starts[s + 1], d, r * width + c)
                continue
            a, pw, k, cl = acts[layer - 1], widths[layer - 1], sizes[layer], cols[layer - 1]
            g, wt, prev, cd = grads[layer - 1], transposed[layer - 1], deltas[layer - 1], cols[layer]
            for r in range(count):
                for c in range(0, width, step):  # g += a.T @ d, a row of g per input
                    scatter_line(g, width, c, cl, a, r * pw, r * pw + k, d, r * width + c)
                for c in range(0, pw, step):  # prev <- d @ w.T
                    gather_line(prev, r * pw + c, wt, pw, c, cd, d, r * width, r * width + sizes[layer + 1])
            _derivative(prev, a, count * pw, act)
    restore(saved)
    return total, hits
