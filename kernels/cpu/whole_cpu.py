"""A whole training step of full-batch gradient descent on the CPU as one pass over the images: each
block of samples (``block_rows``) goes forward through every layer and back again while its activations
are still in the core's cache, adding to its thread's gradients (``mnist_accel.backends.whole_step.WholeStep``
runs the threads, sums their gradients and applies the update).

Composed from separate operations, a full-batch step writes and rereads every layer's 60,000-row
activations and deltas a dozen times, passes bound by memory, and BLAS's GEMMs with 16 columns run far
from its peak. Here every product is a run of 64-byte vector lines (``sparse_cpu``): the first layer's
over each sample's lit pixels (``gather_line``, ``scatter_line``), the small dense layers' eight rows at a
time, each line of the other side read once for the eight (``rows``). So every array here is laid out in
rows padded to whole lines (``width``), with zeros in the padding of weights and biases; padding lanes of
activations hold whatever the arithmetic gives and are never read as inputs. Every forward product
starts from the layer's bias line, so no pass adds it. tanh, sigmoid and the softmax's exp use
``vmath.exp`` in float64 (arithmetic that vectorizes), as Numba's math functions call the C library one
element at a time; the cross-entropy runs along the block's samples (``_cross_entropy``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .. import ACTIVATION_CODES, LOSS_CODES
from .fpenv import flush_subnormals, restore
from .simd import lanes_of
from .sparse_cpu import gather_line, rows, scatter_line
from .vmath import exp

# Samples per block: a layer's rows of a block fill about BLOCK_BYTES, 64 to 256 rows (every buffer of a block
# stays in L2). Each block pays fixed costs (entering every layer's loops, the first layer's weight rows and
# gradient rows taking turns in L1) that the few operations per sample of narrow layers do not hide, so
# these get the long blocks.
BLOCK_BYTES, BLOCK_ROWS = 16384, (64, 256)
RELU, TANH, SIGMOID = (ACTIVATION_CODES[a] for a in ("relu", "tanh", "sigmoid"))
MSE = LOSS_CODES["mse"]  # anything else is cross-entropy
# error_model="numpy": Python's model checks every division for zero, a branch that keeps LLVM from
# vectorizing the loop it sits in.
FAST = dict(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")


def block_rows(row_bytes: int) -> int:
    """Samples per block for layers whose widest padded row takes ``row_bytes``."""
    return int(min(max(BLOCK_BYTES // row_bytes, BLOCK_ROWS[0]), BLOCK_ROWS[1]))


@njit(**FAST)
def _activate(z, n, act):
    """z[:n] <- act(z), in place (the bias is already in: each product starts from it)."""
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
def _scores(z, count, width, m, labels, first, t, peak, best):
    """The block's scores (rows of flat ``z``, ``width`` apart) into ``t``, a class to a row ``len(peak)``
    apart, so that the loss and the output layer's backward run along the samples, in vectors; each
    sample's peak score into ``peak``; returns the correct count. (Loops index views by their counter
    alone: an index computed from it keeps LLVM from vectorizing.)"""
    block = len(peak)
    for j in range(m):
        tj = t[j * block:j * block + count]
        for r in range(count):
            tj[r] = z[r * width + j]
    peak[:count] = t[:count]
    for j in range(1, m):
        tj = t[j * block:j * block + count]
        for r in range(count):
            peak[r] = max(peak[r], tj[r])
    best[:count] = 0
    for j in range(m - 1, -1, -1):  # argmax's first column holding the peak, by selects
        tj = t[j * block:j * block + count]
        for r in range(count):
            best[r] = j if tj[r] == peak[r] else best[r]
    hits, label = 0, labels[first:first + count]
    for r in range(count):
        hits += best[r] == label[r]
    return hits


@njit(**FAST)
def _squared_error(t, count, m, labels, first, inv_n, block):
    """``t`` (``_scores``') <- d(summed squared error)/dz * inv_n; returns the summed loss."""
    total, label = 0.0, labels[first:first + count]
    for j in range(m):
        tj = t[j * block:j * block + count]
        for r in range(count):
            diff = tj[r] - (1.0 if label[r] == j else 0.0)
            total += diff * diff
            tj[r] = 2.0 * diff * inv_n
    return total


@njit(**FAST)
def _cross_entropy(t, count, m, labels, first, inv_n, peak, norm):
    """``t`` (``_scores``') <- d(mean softmax cross-entropy)/dz; returns the summed loss. exp runs over
    the m scores alone; ``norm`` is float64 scratch, a value per sample."""
    block, label = len(peak), labels[first:first + count]
    total = 0.0
    for r in range(count):
        total += peak[r] - t[label[r] * block + r]
    norm[:count] = 0.0
    for j in range(m):
        tj = t[j * block:j * block + count]
        for r in range(count):
            tj[r] = exp(np.float64(tj[r] - peak[r]))
            norm[r] += tj[r]
    for r in range(count):
        total += math.log(norm[r])
        norm[r] = inv_n / norm[r]
    for j in range(m):
        tj = t[j * block:j * block + count]
        for r in range(count):
            tj[r] = tj[r] * norm[r] - (inv_n if label[r] == j else 0.0)
    return total


@njit(cache=True, nogil=True, fastmath={"contract", "reassoc"}, error_model="numpy")
def _row_sums(t, count, m, block, out):
    """out[j] += sum of t's row j (``block`` apart) over its first ``count`` entries, in vectors of partial
    sums (reassociated: the one sum here whose order is not the samples')."""
    for j in range(m):
        tj = t[j * block:j * block + count]
        total = 0.0
        for r in range(count):
            total += tj[r]
        out[j] += total


@njit(**FAST)
def step_rows(starts, columns, values, weights, transposed, biases, use_bias, widths, sizes, act, labels,
              loss, inv_n, acts, deltas, gp, grads, bias_grads, line, lo, hi):
    """Forward and backward for samples [lo, hi): returns (summed loss, correct count) and leaves their
    gradients in ``gp`` (the first layer's), ``grads`` (the others', the output layer's transposed) and
    ``bias_grads``, zeroed first.

    Layer l maps ``sizes[l]`` inputs to ``sizes[l + 1]`` outputs, its rows padded to ``widths[l]``:
    ``weights[l]`` (sizes[l] rows, widths[l] apart) and ``transposed[l]`` (sizes[l + 1] rows,
    widths[l - 1] apart; l >= 1), flat; ``biases[l]`` padded (zeros without biases); ``acts[l]`` (every
    layer) and ``deltas[l]`` (hidden layers) a block of rows each, flat; ``grads[l - 1]`` sizes[l] rows
    of widths[l] (l >= 1), the last sizes[-1] rows of widths[-2]; ``gp`` has the first layer's rows;
    ``line`` is not used (``SparseInputs.run`` passes it). The per-layer arrays come in tuples: a typed
    list's every read takes a reference, which at a few dozen reads a block cost more than a narrow
    network's layers."""
    saved = flush_subnormals()  # deltas of saturated tanh units decay towards zero: no microcode assists
    gp[:] = 0
    for g in grads:
        g[:] = 0
    for g in bias_grads:
        g[:] = 0
    depth = len(acts)
    step = lanes_of(gp)
    block = len(acts[0]) // widths[0]
    m = sizes[depth]
    total, hits = 0.0, 0
    one, zero = np.ones(1, gp.dtype), np.zeros(widths.max(), gp.dtype)
    t, peak = np.empty(m * block, gp.dtype), np.empty(block, gp.dtype)
    best, norm = np.empty(block, np.int64), np.empty(block)
    for first in range(lo, hi, block):
        count = min(block, hi - first)
        w0, a0, b0, width = weights[0], acts[0], biases[0], widths[0]
        for r in range(count):
            s = first + r
            for c in range(0, width, step):
                gather_line(a0, r * width + c, b0, c, w0, width, c, columns, values, starts[s], starts[s + 1])
        for layer in range(depth - 1):
            a, width = acts[layer], widths[layer]
            _activate(a, count * width, act)
            out, w, k, ow = acts[layer + 1], weights[layer + 1], sizes[layer + 1], widths[layer + 1]
            for c in range(0, ow, step):  # out <- b + a @ w, eight rows of the block at a time
                rows(out, c, ow, biases[layer + 1], c, 0, w, c, ow, a, 0, width, 1, k, count)
        hits += _scores(acts[depth - 1], count, widths[depth - 1], m, labels, first, t, peak, best)
        if loss == MSE:
            total += _squared_error(t, count, m, labels, first, inv_n, block)
        else:
            total += _cross_entropy(t, count, m, labels, first, inv_n, peak, norm)
        # the output layer from t (its deltas a class to a row): its weights' gradient transposed
        a, pw, g = acts[depth - 2], widths[depth - 2], grads[depth - 2]
        if use_bias:
            _row_sums(t, count, m, block, bias_grads[depth - 1])
        for c in range(0, pw, step):  # g.T += d.T @ a, eight classes at a time
            rows(g, c, pw, g, c, pw, a, c, pw, t, 0, block, 1, count, m)
        for c in range(0, pw, step):  # prev <- d @ w.T, eight rows of the block at a time
            rows(deltas[depth - 2], c, pw, zero, c, 0, transposed[depth - 2], c, pw, t, 0, 1, block, m, count)
        _derivative(deltas[depth - 2], a, count * pw, act)
        for layer in range(depth - 2, -1, -1):
            d, width = deltas[layer], widths[layer]
            if use_bias:  # the bias gradient: the block's delta rows summed
                gb = bias_grads[layer]
                for c in range(0, width, step):
                    rows(gb, c, 0, gb, c, 0, d, c, width, one, 0, 0, 0, count, 1)
            if layer == 0:
                for r in range(count):
                    s = first + r
                    for c in range(0, width, step):
                        scatter_line(gp, width, c, columns, values, starts[s], starts[s + 1], d, r * width + c)
                continue
            a, pw, k = acts[layer - 1], widths[layer - 1], sizes[layer]
            g, wt, prev = grads[layer - 1], transposed[layer - 1], deltas[layer - 1]
            for c in range(0, width, step):  # g += a.T @ d, eight rows of g (inputs) at a time
                rows(g, c, width, g, c, width, d, c, width, a, 0, 1, pw, count, k)
            for c in range(0, pw, step):  # prev <- d @ w.T, eight rows of the block at a time
                rows(prev, c, pw, zero, c, 0, wt, c, pw, d, 0, width, 1, sizes[layer + 1], count)
            _derivative(prev, a, count * pw, act)
    restore(saved)
    return total, hits
